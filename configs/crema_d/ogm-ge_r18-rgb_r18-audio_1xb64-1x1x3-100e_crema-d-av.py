# OGM-GE on CREMA-D: the leading modality's encoder gradients scaled by
# k = 1 - tanh(alpha * (ratio - 1)), GE noise, epochs 0-50 of 100 (the
# CVPR setting). alpha 0.8 (the paper's value for CREMA-D).
_base_ = ['./naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_crema-d-av.py']

optim_wrapper = dict(
    type='OGMGEOptimWrapper',
    alpha=0.8,
    coefficient='continuous',
    ge_noise=True,
    start_epoch=0,
    end_epoch=50)
custom_hooks = [dict(type='OnTheFlyModulationHook')]
