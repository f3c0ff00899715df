# Online Gradient Blending (Wang et al. 2020, Algorithm 3) on the demo data.
# 8% of each class of the training set is held out (never trained on); the
# weights of the RGB, audio and fused heads are re-estimated from the
# trajectory of their losses: after a 4-epoch warm-up with equal weights,
# then every 2 epochs (the paper: 10, then 5, on Kinetics).
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='HeldOutSplitDataset',
        part='train',
        fraction=0.08,
        seed=0,
        dataset={{_base_.train_dataset}}))
custom_hooks = [
    dict(
        type='GradientBlendingHook',
        mode='online',
        estimator='trajectory',
        warmup_epochs=4,
        super_epochs=2,
        weights='uniform')
]
