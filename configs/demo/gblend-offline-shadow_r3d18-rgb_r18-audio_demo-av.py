# Offline Gradient Blending (Wang et al. 2020, Algorithms 1 and 2): before
# training, a copy of the model is trained for each head (RGB, audio, fused)
# on that head's loss alone over the whole training (the paper's N: the 12
# epochs of the schedule, at its learning rates) on the training set minus
# the held-out 40% of each class (V); the main run trains on the whole
# training set, V included (the strict variant leaves V out of it too:
# wrap the training dataset in HeldOutSplitDataset(part='train'));
# the weights estimated from their held-out and train losses then stay fixed
# for the whole run. `offline_horizon=4` would estimate over 4 epochs only:
# cheaper, not Algorithm 2. Every head keeps at least 5 %: a head given
# weight 0 would never be trained.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']

custom_hooks = [
    dict(
        type='GradientBlendingHook',
        mode='offline',
        estimator='shadow',
        heldout_fraction=0.4,
        seed=0,
        shadow_fraction=1.0,
        min_weight=0.05), _base_.prediction_mix_hook
]
