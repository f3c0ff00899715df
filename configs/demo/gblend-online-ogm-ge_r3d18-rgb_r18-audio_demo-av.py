# Online G-Blend and OGM-GE together: G-Blend sets each head's weight in
# the loss every super-epoch (from held-out data); OGM-GE scales the leading
# modality's encoder gradients step by step, with the demo OGM-GE config's
# settings (the paper's k, convolution kernels, epochs 0-5 of 12, both
# included). The scores come from the modality heads, which G-Blend trains.
_base_ = [
    './gblend-online_r3d18-rgb_r18-audio_demo-av.py',
    '../_base_/modulation/ogm_ge.py'
]

model = dict(score_source='heads')
optim_wrapper = dict(_base_.ogm_ge_optim_wrapper, end_epoch=5)
# A config's custom_hooks replaces its base's list: keep G-Blend's hook.
custom_hooks = [
    _base_.gblend_hook,
    dict(type='OnTheFlyModulationHook'), _base_.prediction_mix_hook
]
