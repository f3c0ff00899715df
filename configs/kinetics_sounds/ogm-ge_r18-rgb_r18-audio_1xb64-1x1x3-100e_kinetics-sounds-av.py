# OGM-GE on Kinetics-Sounds: the leading modality's encoder gradients scaled by
# k = 1 - tanh(alpha * (ratio - 1)), GE noise, epochs 0-50 of 100 (the
# CVPR setting). alpha 0.5 (ours: the paper gives 0.8 for CREMA-D, 0.1
# for VGGSound).
_base_ = ['./naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_kinetics-sounds-av.py']  # noqa: E501

optim_wrapper = dict(
    type='OGMGEOptimWrapper',
    alpha=0.5,
    coefficient='continuous',
    ge_noise=True,
    start_epoch=0,
    end_epoch=50)
custom_hooks = [dict(type='OnTheFlyModulationHook')]
