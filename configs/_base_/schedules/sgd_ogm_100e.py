# The OGM-GE paper's schedule (Peng et al., CVPR 2022): SGD, lr 1e-3,
# momentum 0.9, weight decay 1e-4, lr x 0.1 at epoch 70, 100 epochs.
max_epochs = 100
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[70], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=64)
