# The paper's "auxiliary losses" baseline: every head with the same weight.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']
model = dict(blend_weights=dict(rgb=1 / 3, audio=1 / 3, fused=1 / 3))
