# SGD with a linear warm-up and cosine decay over 100 epochs, for 8
# processes x 16 clips (mmaction2's usual 3D-CNN setting; the G-Blend paper
# does not state its full schedule).
max_epochs = 100
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
    val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, eta_min=0,
         by_epoch=True, begin=10, end=max_epochs)
]
auto_scale_lr = dict(enable=False, base_batch_size=128)
