# Online G-Blend, then a final model on the whole training set: the demo's
# online G-Blend (trajectory estimator, estimates after epochs 4 and 8 from
# the 320 held-out clips V), and from the last estimate on (epoch 8) V
# joins training with the weights of that estimate: the last 4 epochs train
# on all 800 clips. See docs/gradient_blending.md (a final model on all the
# training data).
_base_ = ['./gblend-online_r3d18-rgb_r18-audio_demo-av.py']

custom_hooks = [
    dict(_base_.gblend_hook, release_heldout=True),
    _base_.prediction_mix_hook
]
