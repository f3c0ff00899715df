# Kinetics-Sounds (the Kinetics-400 classes one can hear; 31 in the OGM-GE
# paper), videos with their own sound; see configs/kinetics_sounds/README.md.
# Audio: 5 s around the middle of the sampled frames at 16 kHz, 128-bin
# log-mel, 500 frames (ours: the paper pads 128-bin fbanks to 1024 frames).
_base_ = ['./steps_1x1x3_av.py']

data_root = 'data/kinetics_sounds/videos'
ann_file_train = 'data/kinetics_sounds/train_list.txt'
ann_file_val = 'data/kinetics_sounds/val_list.txt'
ann_file_test = 'data/kinetics_sounds/test_list.txt'
audio_steps = [
    dict(type='DecodeAudioTrack', sample_rate=16000, duration=5.0,
         fit_in_track=True, single_window=True),
    dict(type='LogMelSpectrogram', n_fft=512, hop_length=160, n_mels=128,
         num_frames=500),
    dict(type='FormatAudioShape', input_format='NCTF'),
]
train_pipeline = [*_base_.train_rgb, *audio_steps, _base_.collect]
val_pipeline = [*_base_.val_rgb, *audio_steps, _base_.collect]
dataset = dict(
    data_prefix=dict(video=data_root),
    missing_audio='silence')
train_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_train, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_val, pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_test, pipeline=val_pipeline))
