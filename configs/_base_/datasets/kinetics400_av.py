# Kinetics-400 videos with their own sound (see configs/kinetics400/README.md
# for the data). RGB: 8 frames every 8th (SlowOnly 8x8), 224 crops. Audio:
# 1 s centred on the clip, at 16 kHz, as 100 x 40 log-mel (the G-Blend
# paper's audio input). Videos without an audio track get silence, counted
# and logged when the dataset is built (missing_audio='silence').
_base_ = ['./steps_8x8x1.py']

dataset_type = 'AudioVisualDataset'
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'

collect = dict(type='PackActionInputs', collect_keys=('imgs', 'audios'))
train_pipeline = [
    *_base_.train_decode, *_base_.train_crop, *_base_.audio_steps, collect
]
val_pipeline = [
    *_base_.val_decode, *_base_.val_crop, *_base_.audio_steps, collect
]
test_pipeline = [
    *_base_.test_decode, *_base_.test_crop, *_base_.audio_steps, collect
]
train_dataset = dict(
    type=dataset_type,
    ann_file=ann_file_train,
    data_prefix=dict(video=data_root),
    missing_audio='silence',
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=train_dataset)
val_dataset = dict(
    type=dataset_type,
    ann_file=ann_file_val,
    data_prefix=dict(video=data_root_val),
    missing_audio='silence',
    pipeline=val_pipeline,
    test_mode=True)
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=val_dataset)
# The val videos again, 10 clips x 3 crops each, one video a batch.
test_dataloader = dict(
    val_dataloader,
    batch_size=1,
    dataset=dict(val_dataset, pipeline=test_pipeline))
val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
