# Online Gradient Blending (Wang et al. 2020, Algorithm 3) on the demo data.
# 40% of each class of the training set is held out (never trained on): 320
# clips in V, and a training probe T' of as many from the 480 trained on;
# the paper's 8% of Kinetics is ~19k clips. The weights of the RGB, audio
# and fused heads are re-estimated from the trajectory of their losses:
# after a 4-epoch warm-up with equal weights, then every 4 epochs (the
# paper: 10, then 5, on Kinetics). Each estimate is smoothed with the previous weights and no head
# drops below 0.02.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='HeldOutSplitDataset',
        part='train',
        fraction=0.4,
        seed=0,
        dataset={{_base_.train_dataset}}))
gblend_hook = dict(
    type='GradientBlendingHook',
    mode='online',
    estimator='trajectory',
    warmup_epochs=4,
    super_epochs=4,
    weights='uniform',
    smoothing=0.5,
    min_weight=0.02)
custom_hooks = [gblend_hook, _base_.prediction_mix_hook]
