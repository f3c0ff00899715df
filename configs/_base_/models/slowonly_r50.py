# mmaction2's SlowOnly-R50 (8x8) as an RGB backbone, ImageNet weights
# inflated: the RGB stream of the G-Blend paper's Kinetics and UCF-101
# models (a flow stream takes it with pretrained=None, in_channels=2).
slowonly_r50 = dict(
    type='ResNet3dSlowOnly',
    depth=50,
    pretrained='torchvision://resnet50',
    lateral=False,
    conv1_kernel=(1, 7, 7),
    conv1_stride_t=1,
    pool1_stride_t=1,
    inflate=(0, 0, 1, 1),
    norm_eval=False)
