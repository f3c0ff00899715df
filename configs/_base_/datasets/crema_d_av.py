# CREMA-D (6 emotions, 7,442 clips of 91 actors): the video files and the
# separate WAV files of the release; see configs/crema_d/README.md.
# Audio: 2 s around the middle of the sampled frames at 22.05 kHz, 128-bin
# log-mel at hop 353 (the paper's STFT 512/353, as mel bands; ours).
_base_ = ['./steps_1x1x3_av.py']

data_root = 'data/crema_d'
ann_file_train = 'data/crema_d/train_list.txt'
ann_file_val = 'data/crema_d/val_list.txt'
ann_file_test = 'data/crema_d/test_list.txt'
audio_steps = [
    dict(type='DecodeAudioTrack', sample_rate=22050, duration=2.0,
         fit_in_track=True, single_window=True),
    dict(type='LogMelSpectrogram', n_fft=512, hop_length=353, n_mels=128,
         num_frames=125),
    dict(type='FormatAudioShape', input_format='NCTF'),
]
train_pipeline = [*_base_.train_rgb, *audio_steps, _base_.collect]
val_pipeline = [*_base_.val_rgb, *audio_steps, _base_.collect]
dataset = dict(
    data_prefix=dict(video=data_root + '/VideoFlash',
                     audio=data_root + '/AudioWAV'),
    audio_suffix='.wav')
train_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_train, pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_val, pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(dataset, ann_file=ann_file_test, pipeline=val_pipeline))
