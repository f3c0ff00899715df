# OPM (Wei et al., TPAMI 2024) on naive late fusion: after a 2-epoch
# warm-up (a sixth of the 12-epoch schedule, rounded down; the authors: 5 of
# 100), from epoch 2 to the last, on 70% of the batches, the features of
# the modality that is ahead on the batch are dropped before the fused
# head, per sample with probability q = 0.5 * (1 + 0.5 * tanh(ratio - 1)),
# and all features are rescaled by 1 / (1 - theta). Nothing is dropped at
# evaluation.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']

model = dict(
    opm=dict(q_base=0.5, lam=0.5, p_exe=0.7, start_epoch=2, end_epoch=None))
custom_hooks = [
    dict(type='OnTheFlyModulationHook'), _base_.prediction_mix_hook
]
