# Naive late fusion: only the fused head's loss trains the model (the
# modality heads are computed and evaluated, with weight 0).
_base_ = [
    '../_base_/models/r3d18-rgb_r18-audio.py',
    '../_base_/datasets/demo_av.py', '../_base_/schedules/sgd_demo.py',
    '../_base_/default_runtime.py'
]
model = dict(blend_weights=dict(rgb=0.0, audio=0.0, fused=1.0))
# Every multi-head strategy predicts alike: the trained heads' probabilities
# mixed by weights fitted on the val split after training (the model's
# prediction='mix'); naive fusion trains only the fused head, so it
# predicts with it. Configs with hooks of their own list this one too.
prediction_mix_hook = dict(type='PredictionMixHook')
custom_hooks = [prediction_mix_hook]
# The demo compares runs: the same seed for each.
randomness = dict(seed=0, deterministic=False)
