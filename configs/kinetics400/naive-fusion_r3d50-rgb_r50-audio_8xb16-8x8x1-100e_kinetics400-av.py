# The G-Blend paper's baseline on Kinetics-400: naive late fusion of a 3D
# ResNet-50 (RGB) and a ResNet-50 (log-mel audio); only the fused head's
# loss trains (the paper reports 71.4 top-1, below RGB alone at 72.6).
_base_ = [
    '../_base_/models/r3d50-rgb_r50-audio.py',
    '../_base_/datasets/kinetics400_av.py',
    '../_base_/schedules/sgd_cosine_100e.py', '../_base_/default_runtime.py'
]
model = dict(blend_weights=dict(rgb=0.0, audio=0.0, fused=1.0))
