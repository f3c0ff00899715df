# OGM-GE on Kinetics-Sounds: the leading modality's encoder convolution
# kernels get their gradients scaled by k = 1 - tanh(alpha * ratio) (the
# paper's Eq. 10), GE noise on both encoders' kernels, epochs 0-50 of 100,
# both included (the CVPR setting). alpha 0.5 (ours: the paper gives 0.8
# for CREMA-D, 0.1 for VGGSound).
_base_ = ['./naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_kinetics-sounds-av.py']  # noqa: E501

optim_wrapper = dict(
    type='OGMGEOptimWrapper',
    alpha=0.5,
    coefficient='paper',
    params='conv',
    ge_noise=True,
    start_epoch=0,
    end_epoch=50)
custom_hooks = [dict(type='OnTheFlyModulationHook')]
