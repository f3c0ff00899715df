# Online G-Blend on CREMA-D with the OGM-GE paper's model and schedule
# (ours: the paper reports no G-Blend on CREMA-D). The test split is by
# actor, so V is too: 8% of the training clips in whole actors (the actor
# id that starts each file name, 1001_DFA_ANG_XX.flv), so that a modality
# that memorises a speaker's voice or face cannot look as if it
# generalised (configs/crema_d/README.md). Estimates after 10 epochs, then
# every 5.
_base_ = [
    './naive-fusion_r18-rgb_r18-audio_1xb64-1x1x3-100e_crema-d-av.py',
    '../_base_/gblend_online.py'
]

train_dataloader = dict(
    dataset=dict(
        _base_.heldout_split,
        _delete_=True,
        seed=0,
        group=r'(\d{4})_[A-Z]{3}_',
        dataset=_base_.train_dataloader.dataset))
custom_hooks = [dict(_base_.gblend_hook, weights='uniform')]
