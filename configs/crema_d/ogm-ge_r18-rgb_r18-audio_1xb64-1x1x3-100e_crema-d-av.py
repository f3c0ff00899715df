# OGM-GE on CREMA-D with the authors' settings (../_base_/modulation/
# ogm_ge.py): the paper's k on the leading modality's encoder convolution
# kernels, GE noise on both encoders' kernels, epochs 0-50 of 100, both
# included, alpha 0.8 (the paper's value for CREMA-D).
_base_ = [
    './naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_crema-d-av.py',
    '../_base_/modulation/ogm_ge.py'
]

optim_wrapper = _base_.ogm_ge_optim_wrapper
custom_hooks = [dict(type='OnTheFlyModulationHook')]
