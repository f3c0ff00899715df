# OPM on CREMA-D with the authors' defaults: q_base 0.5, lambda 0.5,
# executed on 70% of the batches, after a 5-epoch warm-up.
_base_ = ['./naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_crema-d-av.py']

model = dict(opm=dict(q_base=0.5, lam=0.5, p_exe=0.7, start_epoch=5))
custom_hooks = [dict(type='OnTheFlyModulationHook')]
