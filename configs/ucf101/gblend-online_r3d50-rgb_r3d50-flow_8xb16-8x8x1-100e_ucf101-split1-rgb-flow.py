# UCF-101 (split 1), RGB + TV-L1 optical flow: a 3D ResNet-50 per stream
# (RGB from inflated ImageNet weights, flow from scratch), concat fusion,
# online G-Blend (8% held out, estimates after 10 epochs, then every 5).
# The official splits test on unseen groups (v_<Class>_g<NN>_c<MM>: the same
# actors and scenes), so V holds out whole group numbers too.
# The RGB frames come from the videos, the flow frames from the folders
# mmaction2's build_rawframes.py writes beside them (see README.md).
_base_ = [
    '../_base_/models/slowonly_r50.py',
    '../_base_/models/av_data_preprocessor.py',
    '../_base_/datasets/steps_8x8x1.py', '../_base_/gblend_online.py',
    '../_base_/schedules/sgd_cosine_100e.py', '../_base_/default_runtime.py'
]

backbone = _base_.slowonly_r50
model = dict(
    type='MultiHeadRecognizer',
    num_classes=101,
    branches=dict(
        rgb=dict(input_key='imgs', feat_dim=2048, backbone=backbone),
        flow=dict(
            input_key='flows',
            feat_dim=2048,
            backbone=dict(backbone, pretrained=None, in_channels=2))),
    fusion=dict(type='ConcatFusion', hidden_channels=512, num_layers=2),
    head=dict(type='ClassifierHead', dropout_ratio=0.5),
    # the base's RGB preprocessing; flow instead of audio
    data_preprocessor=dict(
        preprocessors=dict(
            _delete_=True,
            imgs=_base_.model.data_preprocessor.preprocessors.imgs,
            flows=dict(
                type='ActionDataPreprocessor',
                mean=[128, 128],
                std=[128, 128],
                format_shape='NCTHW'))))

data_root = 'data/ucf101/videos'
flow_root = 'data/ucf101/rawframes'
ann_file_train = 'data/ucf101/ucf101_train_split_1_videos.txt'
ann_file_val = 'data/ucf101/ucf101_val_split_1_videos.txt'
collect = dict(type='PackActionInputs', collect_keys=('imgs', 'flows'))
train_pipeline = [*_base_.train_rgb_flow, collect]
val_pipeline = [*_base_.val_rgb_flow, collect]
test_pipeline = [*_base_.test_rgb_flow, collect]
# AudioVisualDataset reads video files with optional audio and flow; here
# no audio step runs, so videos without sound are fine.
dataset = dict(
    type='AudioVisualDataset',
    data_prefix=dict(video=data_root, flow=flow_root))
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _base_.heldout_split,
        seed=0,
        group=r'_g(\d+)_c',
        dataset=dict(dataset, ann_file=ann_file_train,
                     pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, ann_file=ann_file_val, pipeline=val_pipeline,
                 test_mode=True))
test_dataloader = dict(
    val_dataloader,
    batch_size=1,
    dataset=dict(val_dataloader['dataset'], pipeline=test_pipeline))
val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
custom_hooks = [dict(_base_.gblend_hook, weights='uniform')]
