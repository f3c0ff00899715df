"""Bad input inside real training: a clear error naming the file, or the
counted and logged ``bad_sample='skip'`` policy, never a silent zero.

Each run is a real mmengine Runner training a tiny two-branch model on real
MP4 clips (decord, PyAV, librosa) or on ``.npy`` features, whose training
list mixes good samples with bad ones of every kind, with and without
data-loader worker processes.
"""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmaction_gblend.datasets import BadSampleError, TooManyBadSamplesError
from mmaction_gblend.datasets.transforms.log_mel import log_mel_spectrogram
from helpers import tiny_av_branches, tone, write_test_clip

pytestmark = pytest.mark.slow  # each test trains with a Runner

GOOD = 4  # good samples per list
FEATURE_ROWS = 50  # LoadLogMelFeature.num_frames

# kind -> what the error (and the skip warning) says about the file
VIDEO_KINDS = {
    'missing': 'video file not found',
    'empty': 'video file is empty',
    'truncated': 'Error reading',
    'no_audio': 'no audio stream',
    'short_audio': r'audio track is 0\.4\d* s long',
    'short_video': 'video is 5 frames long, shorter than a clip of 8',
}
FEATURE_KINDS = {
    'missing': 'audio file not found',
    'nan': 'features contain NaN or inf',
    'inf': 'features contain NaN or inf',
    'unreadable': 'cannot read features',
    'not_2d': r'expected features of shape \(num_frames, num_bins\)',
    'wrong_bins': 'feature bins, but num_bins=40',
    'too_few_rows': f'fewer than the num_frames={FEATURE_ROWS}',
}


def pipeline(audio_steps):
    return [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
        dict(type='DecordDecode'),
        *audio_steps,
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='FormatAudioShape', input_format='NCTF'),
        # the file name travels with the sample, so the test sees which
        # files reached the model
        dict(type='PackActionInputs', collect_keys=('imgs', 'audios'),
             meta_keys=('filename', 'audio_path')),
    ]


VIDEO_PIPELINE = pipeline([
    dict(type='DecodeAudioTrack', sample_rate=16000),
    dict(type='LogMelSpectrogram', hop_length=160, n_mels=40,
         num_frames=100),
])
FEATURE_PIPELINE = pipeline(
    [dict(type='LoadLogMelFeature', num_frames=FEATURE_ROWS, num_bins=40)])

MODEL = dict(
    type='MultiHeadRecognizer',
    num_classes=2,
    branches=tiny_av_branches(),
    fusion=dict(type='ConcatFusion', hidden_channels=16),
    head=dict(type='ClassifierHead', dropout_ratio=0.0),
    data_preprocessor=dict(
        type='MultiModalDataPreprocessor',
        preprocessors=dict(
            imgs=dict(type='ActionDataPreprocessor', format_shape='NCTHW'),
            audios=dict(type='ActionDataPreprocessor'))))


@HOOKS.register_module(force=True)
class RecordModelInputs(Hook):
    """Records, per sample of every training batch, its file and whether
    its audio input is finite and not all zeros."""

    def __init__(self):
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        for audio, sample in zip(data_batch['inputs']['audios'],
                                 data_batch['data_samples']):
            self.seen.append(
                (sample.metainfo['filename'], sample.metainfo['audio_path'],
                 bool(torch.isfinite(audio).all()), bool(audio.any())))


def write_bad_video(path, kind):
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':
        write_test_clip(path)
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    elif kind == 'no_audio':
        write_test_clip(path, freqs=None)
    elif kind == 'short_audio':
        write_test_clip(path, audio_seconds=0.4)
    elif kind == 'short_video':  # 5 frames, a clip spans 16
        write_test_clip(path, seconds=0.3)
    else:
        assert kind == 'missing'


def write_bad_features(path, kind):
    good = np.random.default_rng(0).random((100, 40)).astype(np.float32)
    if kind == 'nan':
        good[99, 3] = np.nan  # a single value: the whole file is checked
        np.save(path, good)
    elif kind == 'inf':  # float64 beyond float32's range: inf once cast
        np.save(path, np.full((100, 40), 1e39))
    elif kind == 'unreadable':  # cut short, as by a full disk
        np.save(path, good)
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
    elif kind == 'not_2d':
        np.save(path, good[None])
    elif kind == 'wrong_bins':
        np.save(path, good[:, :32])
    elif kind == 'too_few_rows':
        np.save(path, good[:FEATURE_ROWS - 1])
    else:
        assert kind == 'missing'


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One torch thread: the model is tiny, and on a shared machine two
    threads spin against each other (a step took seconds, not ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def good_clips(tmp_path_factory):
    """Good 2 s clips (with their log-mel features), written once."""
    root = tmp_path_factory.mktemp('good')
    feats = log_mel_spectrogram(tone(2.0, (440.0, )), hop_length=160,
                                n_mels=40)
    for i in range(GOOD):
        write_test_clip(str(root / f'good{i}.mp4'), seed=i,
                        freqs=(500.0 * (i % 2 + 1), ))
        np.save(str(root / f'good{i}.npy'), feats)
    return root


def make_list(tmp_path, good_clips, source, kinds):
    """A training list: the good clips, each bad kind after the second.

    Returns:
        The dataset config and ``{kind: bad file}``.
    """
    lines = [f'{good_clips}/good{i}.mp4 {i % 2}' for i in range(GOOD)]
    bad = {}
    for k, kind in enumerate(kinds):
        video = str(tmp_path / f'bad_{kind}.mp4')
        if source == 'video':
            write_bad_video(video, kind)
            bad[kind] = video
        else:  # good video, bad features
            write_test_clip(video, seed=10 + k)
            bad[kind] = video[:-4] + '.npy'
            write_bad_features(bad[kind], kind)
        lines.insert(2 + k, f'{video} 0')
    (tmp_path / 'train.txt').write_text('\n'.join(lines) + '\n')
    dataset = dict(
        type='AudioVisualDataset', ann_file=str(tmp_path / 'train.txt'),
        pipeline=VIDEO_PIPELINE if source == 'video' else FEATURE_PIPELINE)
    if source == 'features':
        # the list holds absolute paths: features beside the videos
        dataset['audio_suffix'] = '.npy'
    return dataset, bad


def make_runner(tmp_path, dataset, num_workers, max_epochs=1):
    cfg = Config(dict(
        model=MODEL,
        work_dir=str(tmp_path / 'work'),
        experiment_name=f'bad_data_{tmp_path.name}',
        default_scope='mmaction',
        train_dataloader=dict(
            batch_size=2, num_workers=num_workers,
            persistent_workers=num_workers > 0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dataset),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        custom_hooks=[dict(type='RecordModelInputs')],
        randomness=dict(seed=0),
        log_level='INFO'))
    return Runner.from_cfg(cfg)


def model_inputs(runner):
    return next(h for h in runner.hooks
                if isinstance(h, RecordModelInputs)).seen


def stop_workers(runner):
    """Stop the persistent loader workers of a run now.

    Otherwise the garbage collector meets the loader's iterator in a
    reference cycle (with a failed run's traceback, say), may close its
    queues first, and torch's shutdown then waits 5 s per worker for a
    goodbye that can no longer be sent.
    """
    iterator = getattr(runner.train_dataloader, '_iterator', None)
    if iterator is not None:
        iterator._shutdown_workers()


def read_log(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


# each bad kind alone in a list; in the main process and in workers
ERROR_CASES = [('video', kind, workers)
               for kind, workers in zip(VIDEO_KINDS, [0, 2] * 3)] + \
              [('features', kind, workers)
               for kind, workers in zip(FEATURE_KINDS, [2, 0] * 4)]


@pytest.mark.parametrize('source,kind,num_workers', ERROR_CASES)
def test_default_policy_stops_with_the_files_name(tmp_path, good_clips,
                                                  source, kind, num_workers):
    dataset, bad = make_list(tmp_path, good_clips, source, [kind])
    runner = make_runner(tmp_path, dataset, num_workers)
    reasons = VIDEO_KINDS if source == 'video' else FEATURE_KINDS
    with pytest.raises(BadSampleError) as info:
        runner.train()
    stop_workers(runner)
    message = str(info.value)
    assert bad[kind] in message and re.search(reasons[kind], message)
    if num_workers:
        assert 'DataLoader worker process' in message
    # the first batch trained; nothing bad reached the model
    assert runner.iter == 1
    assert [s[0] for s in model_inputs(runner)] == \
        [f'{good_clips}/good{i}.mp4' for i in range(2)]


@pytest.mark.parametrize('source,num_workers', [('video', 0),
                                                ('features', 2)])
def test_skip_policy_trains_logs_and_counts(tmp_path, good_clips, source,
                                            num_workers):
    kinds = VIDEO_KINDS if source == 'video' else FEATURE_KINDS
    dataset, bad = make_list(tmp_path, good_clips, source, list(kinds))
    dataset.update(bad_sample='skip', max_bad_samples=len(bad))
    runner = make_runner(tmp_path, dataset, num_workers, max_epochs=2)
    runner.train()
    stop_workers(runner)
    size = GOOD + len(bad)
    assert runner.iter == 2 * -(-size // 2)  # every batch, both epochs

    seen = model_inputs(runner)
    assert len(seen) == 2 * size  # bad samples replaced, not dropped
    for video, audio, finite, nonzero in seen:
        assert finite and nonzero  # no NaN, no zero-filled audio
        assert video not in bad.values() and audio not in bad.values()

    log = read_log(runner)
    for kind, path in bad.items():
        warnings = [line for line in log.splitlines()
                    if 'WARNING' in line and f'{path}: ' in line]
        assert warnings, f'no warning for the {kind} file'
        assert "skipped (bad_sample='skip')" in warnings[0]
        assert re.search(kinds[kind], warnings[0])
    counts = [int(n) for n in re.findall(r'(\d+) bad file\(s\)', log)]
    if num_workers == 0:
        # one process: each file counted once, over both epochs
        assert max(counts) == len(bad)
        assert runner.train_dataloader.dataset.bad_samples.keys() == \
            set(bad.values())
    else:
        # each worker counts what it met, up to every bad file
        assert 1 <= max(counts) <= len(bad)


@pytest.mark.parametrize('num_workers', [0, 1])
def test_skip_policy_stops_after_max_bad_samples(tmp_path, good_clips,
                                                 num_workers):
    kinds = ['missing', 'no_audio', 'truncated']
    dataset, bad = make_list(tmp_path, good_clips, 'video', kinds)
    dataset.update(bad_sample='skip', max_bad_samples=2)
    runner = make_runner(tmp_path, dataset, num_workers)
    with pytest.raises(TooManyBadSamplesError) as info:
        runner.train()
    stop_workers(runner)
    message = str(info.value)
    assert '3 files failed to load' in message
    assert 'max_bad_samples=2' in message
    for kind, path in bad.items():
        assert f'{path}: ' in message and re.search(VIDEO_KINDS[kind],
                                                    message)
