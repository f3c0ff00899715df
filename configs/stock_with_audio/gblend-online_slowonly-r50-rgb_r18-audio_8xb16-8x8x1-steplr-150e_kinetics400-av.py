# mmaction2's stock SlowOnly (3D ResNet-50, 8x8, Kinetics-400) made
# audio-visual with online G-Blend: the same lines as for TSN.
_base_ = [
    'mmaction::recognition/slowonly/slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb.py',  # noqa: E501
    '../_base_/stock_with_audio.py'
]

model = dict(
    _delete_=True, type='AddAudioBranch', recognizer={{_base_.model}})
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
