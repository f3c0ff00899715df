# Fixed blend weights: the ones offline G-Blend found on Kinetics-400 for
# RGB + audio (Wang et al. 2020, [RGB, audio, fused] = [0.630, 0.014,
# 0.356]). Not an estimate on this data: the comparison runs it to separate
# what the estimators find from what well-chosen weights can reach.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']
model = dict(blend_weights=dict(rgb=0.63, audio=0.014, fused=0.356))
