# Online G-Blend in the paper's setup (Wang et al., CVPR 2020): 8% of each
# class of the training set held out (a config wraps its training dataset
# in dict(_base_.heldout_split, dataset=...)); the first estimate after a
# 10-epoch warm-up, then every 5 epochs; estimator: first order
# (Proposition 1 at the checkpoint from each head's gradient: cheap, no
# training; the paper's shadow trainings are estimator='shadow', see
# docs/gblend_estimators.md). Configs that change the hook take
# dict(_base_.gblend_hook, ...).
heldout_split = dict(type='HeldOutSplitDataset', part='train', fraction=0.08)
gblend_hook = dict(
    type='GradientBlendingHook',
    mode='online',
    estimator='first_order',
    warmup_epochs=10,
    super_epochs=5)
custom_hooks = [gblend_hook]
