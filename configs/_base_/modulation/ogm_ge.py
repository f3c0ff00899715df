# OGM-GE (Peng et al., CVPR 2022) with the authors' settings, to merge into
# a schedule's optim_wrapper (``optim_wrapper = _base_.ogm_ge_optim_wrapper``,
# with a config's own alpha or window): while one modality is ahead on the
# batch, its encoder's convolution kernels get their gradients scaled by
# k = 1 - tanh(alpha * ratio) (the paper's Eq. 10), and every encoder's
# kernels get Gaussian noise of their own std (GE). alpha 0.8 (the paper's
# value for CREMA-D); epochs 0-50 of 100, both included (the CVPR setting).
# A config also adds OnTheFlyModulationHook to its custom_hooks.
ogm_ge_optim_wrapper = dict(
    type='OGMGEOptimWrapper',
    alpha=0.8,
    coefficient='paper',
    params='conv',
    ge_noise=True,
    start_epoch=0,
    end_epoch=50)
