# Three modalities on Kinetics-400 (the paper's RGB + optical flow + audio,
# where naive fusion is 2.6 points below the best single modality): a flow
# 3D ResNet-50 on TV-L1 flow frames extracted beside the videos, sampled at
# the RGB frames and cropped independently (FlowPipeline), with online
# G-Blend over the four heads.
_base_ = ['./gblend-online_r3d50-rgb_r50-audio_8xb16-8x8x1-100e_kinetics400-av.py']  # noqa: E501

flow_root = 'data/kinetics400/rawframes_train'
flow_root_val = 'data/kinetics400/rawframes_val'
flow_preprocessor = dict(
    type='ActionDataPreprocessor', mean=[128, 128], std=[128, 128],
    format_shape='NCTHW')
model = dict(
    branches=dict(
        flow=dict(
            input_key='flows',
            feat_dim=2048,
            backbone=dict(
                _base_.slowonly_r50, pretrained=None, in_channels=2))),
    blend_weights=dict(rgb=0.0, audio=0.0, flow=0.0, fused=1.0),
    data_preprocessor=dict(preprocessors=dict(flows=flow_preprocessor)))

collect = dict(type='PackActionInputs',
               collect_keys=('imgs', 'flows', 'audios'))

train_pipeline = [*_base_.train_rgb_flow, *_base_.audio_steps, collect]
val_pipeline = [*_base_.val_rgb_flow, *_base_.audio_steps, collect]
test_pipeline = [*_base_.test_rgb_flow, *_base_.audio_steps, collect]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_prefix=dict(video=_base_.data_root, flow=flow_root),
            pipeline=train_pipeline)))
val_dataloader = dict(
    dataset=dict(
        data_prefix=dict(video=_base_.data_root_val, flow=flow_root_val),
        pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(
        data_prefix=dict(video=_base_.data_root_val, flow=flow_root_val),
        pipeline=test_pipeline))
