# Building blocks of the OGM-GE benchmark pipelines (Kinetics-Sounds,
# CREMA-D): 3 frames spread over the video (TSN sampling), 224 crops, fed
# to a 2D network whose frame features are averaged; the sound heard once
# per sample (DecodeAudioTrack single_window). Each dataset sets its own
# audio window and spectrogram (audio_steps).
train_rgb = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=3),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCHW'),
]
val_rgb = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, frame_interval=1, num_clips=3,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCHW'),
]
collect = dict(type='PackActionInputs', collect_keys=('imgs', 'audios'))
# The loaders; each dataset config fills in its files and pipelines.
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='AudioVisualDataset'))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AudioVisualDataset', test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
