# Audio alone: the audio branch of the audio-visual model and its head.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']
model = dict(
    branches=dict(_delete_=True, audio={{_base_.audio_branch}}),
    fusion=None,
    blend_weights=None)
