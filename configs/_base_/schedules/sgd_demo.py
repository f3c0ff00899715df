# A short SGD schedule for the demo data on CPU.
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=1,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Peak lr 0.005: chosen on the val split with the RGB-only, audio-only and
# naive-fusion demo configs (0.0025-0.05 tried, naive fusion with 2 seeds);
# the runs and the reasons are in docs/lr_choice.md.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
# Warm-up over the iterations of epoch 0 (as mmaction2's configs do): an
# epoch-based LinearLR over one epoch is stepped only once, at its start,
# so its 0.2 would stay on for the whole run. The cosine, stepped after
# each epoch, overlaps it: its first step comes after the warm-up has
# reached the peak, so it decays from there.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.2,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=0,
        by_epoch=True,
        begin=0,
        end=max_epochs)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
