# Building blocks of 8x8x1 clip pipelines (SlowOnly-style: 8 frames every
# 8th), shared by the Kinetics-400 and UCF-101 recipes: decoding, spatial
# steps (also run on optical flow frames by FlowPipeline), and 1 s of audio
# as 100 x 40 log-mel (the G-Blend paper's audio input).
train_decode = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1),
    dict(type='DecordDecode'),
]
val_decode = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'),
]
test_decode = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=10,
         test_mode=True),
    dict(type='DecordDecode'),
]
train_crop = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
]
val_crop = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
]
test_crop = [
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
]
audio_steps = [
    dict(type='DecodeAudioTrack', sample_rate=16000, duration=1.0,
         fit_in_track=True),
    dict(type='LogMelSpectrogram', n_fft=512, hop_length=160, n_mels=40,
         num_frames=100),
    dict(type='FormatAudioShape', input_format='NCTF'),
]
load_flow = dict(type='LoadFlowFrames')
# RGB and TV-L1 flow of the same clip: the flow frames at the sampled RGB
# frames, through the same spatial steps drawn on their own (FlowPipeline),
# then the RGB frames through them.
train_rgb_flow = [
    *train_decode, load_flow,
    dict(type='FlowPipeline', transforms=train_crop), *train_crop
]
val_rgb_flow = [
    *val_decode, load_flow,
    dict(type='FlowPipeline', transforms=val_crop), *val_crop
]
test_rgb_flow = [
    *test_decode, load_flow,
    dict(type='FlowPipeline', transforms=test_crop), *test_crop
]
