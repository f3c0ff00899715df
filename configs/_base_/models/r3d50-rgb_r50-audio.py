# The G-Blend paper's Kinetics model (Wang et al., CVPR 2020, Sec. 5): a 3D
# ResNet-50 on RGB clips and a ResNet-50 on 100 x 40 log-mel spectrograms,
# late fusion by concatenation and two FC layers, one head per modality plus
# the fused one. The RGB branch is mmaction2's SlowOnly-R50 (ImageNet
# weights inflated); the audio branch mmaction2's ResNetAudio-50.
_base_ = ['./slowonly_r50.py', './av_data_preprocessor.py']

model = dict(
    type='MultiHeadRecognizer',
    num_classes=400,
    branches=dict(
        rgb=dict(
            input_key='imgs',
            feat_dim=2048,
            backbone=_base_.slowonly_r50),
        audio=dict(
            input_key='audios',
            feat_dim=1024,
            backbone=dict(
                type='ResNetAudio',
                depth=50,
                pretrained=None,
                in_channels=1,
                norm_eval=False))),
    fusion=dict(type='ConcatFusion', hidden_channels=512, num_layers=2),
    head=dict(type='ClassifierHead', dropout_ratio=0.5),
    average_clips='prob')
