# mmaction2's stock TSN (ResNet-50, ImageNet-pretrained, Kinetics-400) made
# audio-visual with online G-Blend: these lines and the shared base are all
# it takes for any stock RGB recognition config whose dataset is a
# VideoDataset.
_base_ = [
    'mmaction::recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py',  # noqa: E501
    '../_base_/stock_with_audio.py'
]

# The stock backbone as the RGB branch, plus an audio ResNet-18 on log-mel,
# concat fusion and one head per modality plus the fused one.
model = dict(
    _delete_=True, type='AddAudioBranch', recognizer={{_base_.model}})
# The same videos, with 1 s of their sound around each sampled frame; 8% of
# each class of the training set held out for G-Blend.
train_dataloader = dict(
    dataset=dict(
        _base_.heldout_split,
        _delete_=True,
        dataset=dict(
            type='WithAudioTrack',
            dataset={{_base_.train_dataloader.dataset}})))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='WithAudioTrack',
        dataset={{_base_.val_dataloader.dataset}}))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='WithAudioTrack',
        dataset={{_base_.test_dataloader.dataset}}))
val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
