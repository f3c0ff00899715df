# OPM and OGM-GE in one training, as the TPAMI paper (Wei et al., 2024)
# evaluates them ("OPM + OGM"): OPM drops the leading modality's features
# before the fused head (the forward pass), OGM-GE scales its encoder's
# gradients (the backward pass), both from the same batch's scores. Each
# with its demo config's settings: OGM-GE with the paper's k on the
# convolution kernels in epochs 0-5 of 12, OPM from epoch 2 to the last
# (windows include both ends). One OnTheFlyModulationHook drives both and
# logs both coefficients (ogm_k, opm_q) in modulation_history.jsonl.
_base_ = ['./ogm-ge_r3d18-rgb_r18-audio_demo-av.py']

model = dict(
    opm=dict(q_base=0.5, lam=0.5, p_exe=0.7, start_epoch=2, end_epoch=None))
