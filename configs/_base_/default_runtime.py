# Runtime shared by the plugin's configs: mmaction2's defaults, plus the
# plugin import and a DDP wrapper that works on CPU (gloo) and GPU (nccl).
default_scope = 'mmaction'
custom_imports = dict(imports=['mmaction_gblend'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=1, save_best='auto', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    # seeds every generator from (seed, epoch): exact resumes
    epoch_seed=dict(type='EpochSeedHook'),
    # Reliability hooks sit here, not in custom_hooks, which a config's own
    # list replaces. Pipelines vs model, modulation wiring: checked before
    # anything loads or trains.
    config_check=dict(type='ConfigCheckHook'),
    # 10 NaN/inf losses in a row stop the run (max_consecutive=None: log only)
    non_finite_loss=dict(type='NonFiniteLossHook', max_consecutive=10))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # Without CUDA the plugin starts the process group with gloo instead.
    dist_cfg=dict(backend='nccl'))

# Every head is computed on every step, so no parameter goes unused.
model_wrapper_cfg = dict(
    type='AnyDeviceDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
