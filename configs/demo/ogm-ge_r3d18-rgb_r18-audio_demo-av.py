# OGM-GE (Peng et al., CVPR 2022) on naive late fusion, with the authors'
# settings: while one modality is ahead on the current batch (discrepancy
# ratio > 1), its encoder's convolution kernels get their gradients scaled
# by k = 1 - tanh(alpha * ratio) (the paper's Eq. 10), and every encoder's
# convolution kernels get Gaussian noise of their own std (GE); BatchNorm,
# the heads and the fusion are left alone. Modulated in the first half of
# training: epochs 0-5 of 12, both included, as the CVPR setting modulates
# epochs 0-50 of 100.
# The scores come from the fused head with the other modality zeroed
# (score_source='auto' resolves to 'zero_out' for the two-layer concat
# fusion). SGD, as the authors used: Adam largely cancels a constant
# gradient scale.
_base_ = [
    './naive-fusion_r3d18-rgb_r18-audio_demo-av.py',
    '../_base_/modulation/ogm_ge.py'
]

optim_wrapper = dict(_base_.ogm_ge_optim_wrapper, end_epoch=5)
custom_hooks = [
    dict(type='OnTheFlyModulationHook'), _base_.prediction_mix_hook
]
