# OGM-GE on CREMA-D: the leading modality's encoder convolution kernels get
# their gradients scaled by k = 1 - tanh(alpha * ratio) (the paper's
# Eq. 10), GE noise on both encoders' kernels, epochs 0-50 of 100, both
# included (the CVPR setting). alpha 0.8 (the paper's value for CREMA-D).
_base_ = ['./naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_crema-d-av.py']

optim_wrapper = dict(
    type='OGMGEOptimWrapper',
    alpha=0.8,
    coefficient='paper',
    params='conv',
    ge_noise=True,
    start_epoch=0,
    end_epoch=50)
custom_hooks = [dict(type='OnTheFlyModulationHook')]
