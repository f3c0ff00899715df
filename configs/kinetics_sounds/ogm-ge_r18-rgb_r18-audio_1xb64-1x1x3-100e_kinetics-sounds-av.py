# OGM-GE on Kinetics-Sounds with the authors' settings (../_base_/
# modulation/ogm_ge.py): the paper's k on the leading modality's encoder
# convolution kernels, GE noise on both encoders' kernels, epochs 0-50 of
# 100, both included; alpha 0.5 (ours: the paper gives 0.8 for CREMA-D,
# 0.1 for VGGSound).
_base_ = [
    './naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_kinetics-sounds-av.py',  # noqa: E501
    '../_base_/modulation/ogm_ge.py'
]

optim_wrapper = dict(_base_.ogm_ge_optim_wrapper, alpha=0.5)
custom_hooks = [dict(type='OnTheFlyModulationHook')]
