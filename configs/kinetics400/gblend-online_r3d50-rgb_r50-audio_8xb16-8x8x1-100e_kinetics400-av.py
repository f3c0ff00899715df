# Online G-Blend on Kinetics-400 in the paper's setup: 8% of each class of
# the training set held out, first estimate after a 10-epoch super-epoch,
# then every 5 (Wang et al., CVPR 2020: 75.8 top-1 against naive 71.4).
# Estimator: the main model's loss trajectory (cheap; ours, not the
# paper's). The paper's shadow trainings: the "-shadow" config.
_base_ = [
    './naive-fusion_r3d50-rgb_r50-audio_8xb16-8x8x1-100e_kinetics400-av.py',
    '../_base_/gblend_online.py'
]

train_dataloader = dict(
    dataset=dict(
        _base_.heldout_split,
        _delete_=True,
        seed=0,
        dataset=_base_.train_dataset))
gblend_hook = dict(_base_.gblend_hook, weights='uniform')
custom_hooks = [gblend_hook]
