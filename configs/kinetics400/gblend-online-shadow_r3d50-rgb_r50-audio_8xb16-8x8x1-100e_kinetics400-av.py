# Online G-Blend with the paper's estimator (Algorithm 1 inside Algorithm
# 3): at each super-epoch boundary one shadow copy per head trains on that
# head's loss alone for the super-epoch; their train/held-out losses give
# the weights. With shadow_fraction=1.0 every shadow sees the whole
# training set, as in the paper, which costs k + 1 extra trainings per
# super-epoch (k modalities); a smaller fraction trains the copies on a
# stratified part of the training set for the same super-epoch (fewer steps,
# each sample repeated as often).
_base_ = ['./gblend-online_r3d50-rgb_r50-audio_8xb16-8x8x1-100e_kinetics400-av.py']  # noqa: E501

custom_hooks = [
    dict(_base_.gblend_hook, estimator='shadow', shadow_fraction=1.0)
]
