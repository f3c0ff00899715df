# The demo data (tools/data/make_demo_dataset.py): 2 s clips at 16 fps,
# 64x64 H.264 video with an AAC audio track, 8 classes.
# Video: 8 frames, every 2nd (1 s). Audio: the same second, 16 kHz, as a
# 100 x 40 log-mel spectrogram (the G-Blend paper's audio input size).
dataset_type = 'AudioVisualDataset'
data_root = 'data/demo_av'
ann_file_train = f'{data_root}/train_list.txt'
ann_file_val = f'{data_root}/val_list.txt'
ann_file_test = f'{data_root}/test_list.txt'

audio_decode = dict(type='DecodeAudioTrack', sample_rate=16000)
log_mel = dict(
    type='LogMelSpectrogram',
    n_fft=512,
    hop_length=160,
    n_mels=40,
    fmin=125.0,
    fmax=7600.0,
    num_frames=100)
pack = [
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='FormatAudioShape', input_format='NCTF'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'audios')),
]

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    audio_decode,
    log_mel,
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(56, 56), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    *pack,
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleFrames',
        clip_len=8,
        frame_interval=2,
        num_clips=1,
        test_mode=True),
    dict(type='DecordDecode'),
    audio_decode,
    log_mel,
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=56),
    *pack,
]
test_pipeline = val_pipeline

train_dataset = dict(
    type=dataset_type,
    ann_file=ann_file_train,
    data_prefix=dict(video=data_root),
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=train_dataset)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        ann_file=ann_file_test,
        pipeline=test_pipeline))

val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
