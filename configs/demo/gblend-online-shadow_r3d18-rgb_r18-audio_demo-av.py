# Online Gradient Blending with the paper's estimator (Algorithm 1 inside
# Algorithm 3) on the demo data: at each super-epoch boundary (after a
# 4-epoch warm-up, then every 4 epochs) one shadow copy per head (RGB,
# audio, fused) trains on that head's loss alone for the super-epoch, on the
# whole training part (shadow_fraction=1.0), and their held-out and train
# losses give the weights. The rest as the trajectory config: 15% of each
# class held out, uniform weights to start, each estimate smoothed with the
# previous weights, no head below 0.02. Costs k + 1 = 3 extra trainings per
# super-epoch.
_base_ = ['./gblend-online_r3d18-rgb_r18-audio_demo-av.py']

custom_hooks = [
    dict(_base_.gblend_hook, estimator='shadow'), _base_.prediction_mix_hook
]
