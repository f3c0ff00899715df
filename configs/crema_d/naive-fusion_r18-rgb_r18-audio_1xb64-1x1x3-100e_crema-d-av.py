# The OGM-GE paper's baseline on CREMA-D: two ResNet-18 from scratch (RGB
# frames, log-mel), a linear classifier on their concatenated features,
# trained on the fused loss only; the paper's SGD schedule.
_base_ = [
    '../_base_/models/r18-rgb_r18-audio_ogm.py',
    '../_base_/datasets/crema_d_av.py',
    '../_base_/schedules/sgd_ogm_100e.py', '../_base_/default_runtime.py'
]
model = dict(num_classes=6)
