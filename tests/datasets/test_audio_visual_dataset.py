"""AudioVisualDataset with the demo pipeline, on real generated files."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from mmaction_gblend.datasets import (AudioVisualDataset, BadSampleError,
                                      TooManyBadSamplesError)
from mmaction_gblend.utils import write_wav
from helpers import capture_log, tone, write_test_clip

DEMO_CFG = 'configs/demo/av-pipeline_demo-av.py'


@pytest.fixture
def av_root(tmp_path):
    """Four 2 s clips of two classes, each class with its own tone."""
    lines = []
    for i in range(4):
        label = i % 2
        rel = f'videos/c{label}_{i}.mp4'
        write_test_clip(str(tmp_path / rel), seconds=2.0, fps=16, size=64,
                        freqs=(500.0 * (label + 1), ), seed=i)
        lines.append(f'{rel} {label}')
    (tmp_path / 'list.txt').write_text('\n'.join(lines) + '\n')
    return tmp_path


def demo_cfg(repo_root):
    return Config.fromfile(osp.join(repo_root, DEMO_CFG))


def demo_loader(cfg, loader, root, batch_size, num_workers):
    """The demo config's ``loader`` (e.g. ``'train_dataloader'``) over the
    clips of ``root``, without persistent workers."""
    loader_cfg = cfg[loader].copy()
    loader_cfg.update(batch_size=batch_size, num_workers=num_workers,
                      persistent_workers=False)
    loader_cfg.dataset.update(ann_file=str(root / 'list.txt'),
                              data_prefix=dict(video=str(root)))
    return Runner.build_dataloader(loader_cfg, seed=0)


def build(root, pipeline, **kwargs):
    kwargs.setdefault('data_prefix', dict(video=str(root)))
    return DATASETS.build(
        dict(type='AudioVisualDataset', ann_file=str(root / 'list.txt'),
             pipeline=pipeline, **kwargs))


def test_demo_pipeline_gives_one_tensor_per_modality(av_root, repo_root):
    cfg = demo_cfg(repo_root)
    loader = demo_loader(cfg, 'train_dataloader', av_root, 2, 0)
    batch = next(iter(loader))
    assert set(batch['inputs']) == {'imgs', 'audios'}
    assert batch['inputs']['imgs'][0].shape == (1, 3, 8, 56, 56)
    assert batch['inputs']['audios'][0].shape == (1, 1, 100, 40)

    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    data = preprocessor(batch, training=True)
    imgs, audios = data['inputs']['imgs'], data['inputs']['audios']
    assert imgs.shape == (2, 1, 3, 8, 56, 56) and imgs.dtype == torch.float32
    assert audios.shape == (2, 1, 1, 100, 40)
    assert audios.dtype == torch.float32
    # RGB is normalised, log-mel left on its [0, 1] scale
    assert imgs.min() < 0 and 0 <= audios.min() and audios.max() <= 1
    labels = [int(s.gt_label) for s in data['data_samples']]
    assert all(label in (0, 1) for label in labels)


def test_audio_follows_the_label(av_root, repo_root):
    """The tone of each class shows in its log-mel features."""
    cfg = demo_cfg(repo_root)
    dataset = build(av_root, cfg.val_pipeline, test_mode=True)
    peaks = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        audio = sample['inputs']['audios'].numpy()[0, 0]
        peaks.setdefault(int(sample['data_samples'].gt_label),
                         set()).add(int(audio.mean(0).argmax()))
    assert len(peaks[0]) == 1 and len(peaks[1]) == 1
    assert peaks[0].pop() < peaks[1].pop()  # 500 Hz below 1000 Hz


def test_data_info_and_audio_paths(av_root):
    dataset = build(av_root, [])
    info = dataset.get_data_info(1)
    assert info['filename'] == osp.join(str(av_root), 'videos/c1_1.mp4')
    assert info['audio_path'] == info['filename'] and info['label'] == 1
    assert info['audio_missing'] is False

    wav = build(av_root, [], audio_suffix='.wav',
                data_prefix=dict(video=str(av_root), audio='/sounds'))
    assert wav.get_data_info(1)['audio_path'] == '/sounds/videos/c1_1.wav'
    npy = build(av_root, [], audio_suffix='.npy')
    assert npy.get_data_info(1)['audio_path'] == osp.join(
        str(av_root), 'videos/c1_1.npy')


def test_separate_wav_files(av_root, repo_root):
    for i in range(4):
        write_wav(str(av_root / f'audio/videos/c{i % 2}_{i}.wav'),
                  tone(2.0, (3000.0, )))
    cfg = demo_cfg(repo_root)
    dataset = build(av_root, cfg.val_pipeline, audio_suffix='.wav',
                    data_prefix=dict(video=str(av_root),
                                     audio=str(av_root / 'audio')),
                    test_mode=True)
    peaks = {int(dataset[i]['inputs']['audios'][0, 0].mean(0).argmax())
             for i in range(4)}
    assert len(peaks) == 1  # every sample now hears the same 3 kHz tone


def test_precomputed_features(av_root):
    for i in range(4):
        np.save(str(av_root / f'videos/c{i % 2}_{i}.npy'),
                np.full((120, 40), i, np.float32))
    pipeline = [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1,
             test_mode=True),
        dict(type='LoadLogMelFeature', num_frames=60),
        dict(type='FormatAudioShape', input_format='NCTF'),
        dict(type='PackActionInputs', collect_keys=('audios', )),
    ]
    dataset = build(av_root, pipeline, audio_suffix='.npy', test_mode=True)
    sample = dataset[3]
    assert sample['inputs']['audios'].shape == (1, 1, 60, 40)
    assert float(sample['inputs']['audios'].unique()) == 3.0


@pytest.mark.parametrize('text,match', [
    ('videos/a.mp4 x\n', r'line 1: labels must be integers'),
    ('videos/a.mp4 1\nvideos/b.mp4\n', r'line 2: expected "path label"'),
    ('videos/a.mp4 1 2\n', 'several labels but multi_class=False'),
    ('\n# only a comment\n', 'has no samples'),
])
def test_bad_annotation_lines(tmp_path, text, match):
    (tmp_path / 'list.txt').write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        build(tmp_path, [])
    assert 'list.txt' in str(info.value)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='annotation file .*nope.txt'):
        AudioVisualDataset(str(tmp_path / 'nope.txt'), [])


@pytest.mark.parametrize('kwargs,match', [
    (dict(missing_audio='zeros'), 'missing_audio must be one of'),
    (dict(audio_suffix='wav'), "audio_suffix must start with '.'"),
    (dict(audio_suffix='.npy', missing_audio='silence'), 'needs decoded'),
    (dict(bad_sample='ignore'), 'bad_sample must be one of'),
    (dict(max_bad_samples=-1), 'max_bad_samples must be an integer >= 0'),
    (dict(max_bad_samples=2.5), 'max_bad_samples must be an integer'),
])
def test_bad_dataset_options(av_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(av_root, [], **kwargs)


def add_bad_sample(root, kind):
    path = root / f'videos/{kind}.mp4'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated':
        write_test_clip(str(path))
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    elif kind == 'silent':
        write_test_clip(str(path), freqs=None)
    elif kind == 'short_audio':
        write_test_clip(str(path), seconds=2.0, audio_seconds=0.4)
    elif kind == 'short_video':
        write_test_clip(str(path), seconds=0.3)
    with open(root / 'list.txt', 'a') as f:
        f.write(f'videos/{kind}.mp4 0\n')
    return str(path)


@pytest.mark.parametrize('kind,reason', [
    ('missing', 'video file not found'),
    ('empty', 'video file is empty'),
    ('truncated', 'Error reading'),
    ('silent', 'no audio stream'),
    ('short_audio', 'audio track is 0.4'),
    ('short_video', 'video is 5 frames long, shorter than a clip of 8'),
])
def test_bad_samples_name_their_file(av_root, repo_root, kind, reason):
    path = add_bad_sample(av_root, kind)
    dataset = build(av_root, demo_cfg(repo_root).train_pipeline)
    dataset[0]  # the good samples still load
    with pytest.raises(BadSampleError, match=reason) as info:
        dataset[4]
    assert str(info.value).startswith(path)


def test_bad_sample_error_crosses_worker_processes(av_root, repo_root):
    path = add_bad_sample(av_root, 'silent')
    loader = demo_loader(demo_cfg(repo_root), 'val_dataloader', av_root, 5, 1)
    with pytest.raises(BadSampleError) as info:
        next(iter(loader))
    assert path in str(info.value) and 'no audio stream' in str(info.value)


def test_missing_audio_silence_policy_counts_and_logs(av_root, repo_root):
    silent = [add_bad_sample(av_root, 'silent')]
    dataset, out = capture_warnings(lambda: build(
        av_root, demo_cfg(repo_root).val_pipeline, missing_audio='silence',
        test_mode=True))
    assert dataset.num_missing_audio == 1
    assert '1 of 5 samples have no audio track' in out and silent[0] in out
    assert dataset.get_data_info(4)['audio_missing'] is True
    assert not dataset[4]['inputs']['audios'].any()  # silence, as logged
    assert dataset[0]['inputs']['audios'].any()


def capture_warnings(build_dataset):
    """``build_dataset()``'s result and the WARNING lines it logged."""
    result, messages = capture_log(build_dataset)
    return result, '\n'.join(messages)


def test_skip_policy_replaces_counts_and_logs(av_root, repo_root):
    path = add_bad_sample(av_root, 'silent')
    dataset = build(av_root, demo_cfg(repo_root).train_pipeline,
                    bad_sample='skip', max_bad_samples=1)
    np.random.seed(0)
    samples, out = capture_warnings(lambda: [dataset[4] for _ in range(3)])
    assert all(s['inputs']['audios'].any() for s in samples)
    assert dataset.bad_samples == {path: 'no audio stream'}
    assert dataset.num_skipped == 3
    assert f"{path}: no audio stream; skipped (bad_sample='skip'): " \
        '1 bad file(s), 3 sample(s) skipped' in out

    other = add_bad_sample(av_root, 'empty')
    with pytest.raises(TooManyBadSamplesError) as info:
        dataset = build(av_root, demo_cfg(repo_root).train_pipeline,
                        bad_sample='skip', max_bad_samples=1)
        dataset[4], dataset[5]
    message = str(info.value)
    assert '2 files failed to load' in message
    assert 'max_bad_samples=1' in message
    assert f'{path}: no audio stream' in message
    assert f'{other}: video file is empty' in message


def test_skip_policy_never_applies_in_test_mode(av_root, repo_root):
    path = add_bad_sample(av_root, 'silent')
    dataset, out = capture_warnings(lambda: build(
        av_root, demo_cfg(repo_root).val_pipeline, bad_sample='skip',
        test_mode=True))
    assert "bad_sample='skip' does not apply with test_mode=True" in out
    assert not dataset.skips_bad_samples
    with pytest.raises(BadSampleError, match='no audio stream') as info:
        dataset[4]
    assert str(info.value).startswith(path) and not dataset.bad_samples
