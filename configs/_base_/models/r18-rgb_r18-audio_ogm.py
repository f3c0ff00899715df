# The OGM-GE paper's model (Peng et al., CVPR 2022, Sec. 4): two ResNet-18
# trained from scratch, a 2D one on a few RGB frames (their features
# averaged) and one on a one-channel spectrogram, and a linear classifier
# on the concatenated features (ConcatFusion without FC layers, so the
# per-modality scores are an exact split of the fused logits). We add the
# per-modality heads of our recognizer (weight 0 unless G-Blend is on).
_base_ = ['./av_data_preprocessor.py']

num_classes = 31
model = dict(
    type='MultiHeadRecognizer',
    num_classes=num_classes,
    branches=dict(
        rgb=dict(
            input_key='imgs',
            input_format='NCHW',
            feat_dim=512,
            backbone=dict(
                type='ResNet', depth=18, pretrained=None, norm_eval=False)),
        audio=dict(
            input_key='audios',
            feat_dim=512,
            backbone=dict(type='AudioResNet', depth=18))),
    fusion=dict(type='ConcatFusion', num_layers=0),
    head=dict(type='ClassifierHead', dropout_ratio=0.0),
    blend_weights=dict(rgb=0.0, audio=0.0, fused=1.0),
    average_clips='prob',
    # 2D frames: the base's preprocessing, frames as a batch of images
    data_preprocessor=dict(preprocessors=dict(imgs=dict(format_shape='NCHW'))))
