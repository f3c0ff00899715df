# A replay of a G-Blend run's weights on the whole training set (all 800
# clips, no held-out split, no estimation): the weights recorded in the
# history of the demo's online run (configs/demo/gblend-online_*.py, as
# `make demo` or tools/train.py leaves it), applied from the same epochs
# (mapped by the epochs' ratio when the schedules differ:
# replay_epochs='scale'). Point `replay` at another run's
# gblend_history.jsonl or checkpoint to reuse its weights.
_base_ = ['./naive-fusion_r3d18-rgb_r18-audio_demo-av.py']

custom_hooks = [
    dict(
        type='GradientBlendingHook',
        mode='replay',
        replay='work_dirs/demo/gblend-online/gblend_history.jsonl'),
    _base_.prediction_mix_hook
]
