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
    sync_buffers=dict(type='SyncBuffersHook'))

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
