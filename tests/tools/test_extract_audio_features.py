"""Tests of ``tools/data/extract_audio_features.py`` on real media files."""
import json
import os
import os.path as osp
import subprocess
import sys

import librosa
import numpy as np
import pytest

from mmaction_gblend.datasets import AudioVisualDataset
from mmaction_gblend.datasets.transforms import (load_feature_file,
                                                 log_mel_spectrogram,
                                                 read_audio_track)
from mmaction_gblend.utils import write_video_with_audio, write_wav
from helpers import load_script

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'data', 'extract_audio_features.py')

eaf = load_script(SCRIPT)

SR = 16000
HOP = 256
AAC_FRAME = 1024  # AAC codes whole frames: decoding may give up to this more


def sine(freq: float, num_samples: int) -> np.ndarray:
    t = np.arange(num_samples) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_mp4(path, freq=None, num_samples=SR, audio=True):
    """~1 s H.264 32x32 at 8 fps, with an AAC mono 16 kHz sine if ``audio``."""
    frames = np.random.RandomState(0).randint(
        0, 256, (8, 32, 32, 3), dtype=np.uint8)
    waveform = sine(freq, num_samples) if audio else None
    write_video_with_audio(str(path), frames, 8, waveform, sample_rate=SR)
    return str(path)


@pytest.fixture
def src(tmp_path):
    """Two videos with audio, a WAV and a file of another kind."""
    root = tmp_path / 'src'
    write_mp4(root / 'a' / 'tone440.mp4', 440, SR)
    write_mp4(root / 'b' / 'c' / 'tone2000.mp4', 2000, 12000)
    write_wav(str(root / 'b' / 'tone1000.wav'), sine(1000, SR), SR)
    (root / 'notes.txt').write_text('not media\n')
    return root


NUM_SAMPLES = {
    'a/tone440.mp4': SR,
    'b/c/tone2000.mp4': 12000,
    'b/tone1000.wav': SR
}


def run(src_root, dst_root, *extra, workers=1):
    return eaf.main([
        str(src_root), str(dst_root), '--num-workers',
        str(workers), *map(str, extra)
    ])


def npy_files(root):
    """Relative paths of every file under ``root``, except the metadata."""
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = osp.relpath(osp.join(dirpath, name), root)
            if rel != eaf.METADATA_FILE:
                found.add(rel.replace(os.sep, '/'))
    return found


def metadata(dst_root):
    with open(osp.join(dst_root, eaf.METADATA_FILE)) as f:
        return json.load(f)


def write_ann(path, lines):
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def check_features(src_root, dst_root, relpath, n_mels=80, hop=HOP):
    """Shape and values of one feature file against a direct computation."""
    feats = np.load(
        osp.join(dst_root, osp.splitext(relpath)[0] + '.npy'),
        allow_pickle=False)
    assert feats.dtype == np.float32
    num_samples = NUM_SAMPLES[relpath]
    if relpath.endswith('.wav'):
        assert feats.shape == (1 + num_samples // hop, n_mels)
    else:
        # AAC pads the track to whole frames of 1024 samples.
        assert 1 + num_samples // hop <= feats.shape[0] \
            <= 1 + (num_samples + AAC_FRAME) // hop
        assert feats.shape[1] == n_mels
    track = read_audio_track(osp.join(src_root, relpath), SR)
    expected = log_mel_spectrogram(
        track, sample_rate=SR, hop_length=hop, n_mels=n_mels)
    np.testing.assert_array_equal(feats, expected)
    return feats


def test_glob_mode_takes_every_file_with_the_extensions(src, tmp_path,
                                                        capsys):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ext', 'mp4', '.WAV') == 0
    assert npy_files(dst) == {
        'a/tone440.npy', 'b/c/tone2000.npy', 'b/tone1000.npy'
    }
    for relpath in NUM_SAMPLES:
        check_features(src, dst, relpath)
    assert '3 files: 3 done, 0 skipped' in capsys.readouterr().out
    meta = metadata(dst)
    assert meta['counts'] == dict(total=3, done=3, skipped=0, failed=0)
    assert meta['failures'] == []
    assert meta['params']['n_mels'] == 80

    only_wav = tmp_path / 'only_wav'
    assert run(src, only_wav, '--ext', 'wav') == 0
    assert npy_files(only_wav) == {'b/tone1000.npy'}
    assert eaf.collect_files(str(src), exts=['mp4']) == [
        'a/tone440.mp4', 'b/c/tone2000.mp4'
    ]


def test_annotation_mode_takes_the_listed_files_once(src, tmp_path, capsys):
    ann1 = write_ann(tmp_path / 'train.txt', [
        '# path label', 'a/tone440.mp4 0', '', 'b/tone1000.wav 1'])
    ann2 = write_ann(tmp_path / 'more.txt', ['./a/tone440.mp4 0'])
    assert eaf.collect_files(str(src), [ann1, ann2]) == [
        'a/tone440.mp4', 'b/tone1000.wav'
    ]
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ann-file', ann1, '--ann-file', ann2) == 0
    assert npy_files(dst) == {'a/tone440.npy', 'b/tone1000.npy'}
    assert '2 files: 2 done' in capsys.readouterr().out
    check_features(src, dst, 'a/tone440.mp4')

    # The dataset reading precomputed features finds them where we wrote them.
    dataset = AudioVisualDataset(
        ann1, pipeline=[], audio_suffix='.npy',
        data_prefix=dict(video=str(src), audio=str(dst)))
    for info in dataset.load_data_list():
        assert load_feature_file(info['audio_path']).shape[1] == 80


def test_sine_peaks_in_the_mel_bin_of_its_frequency(src, tmp_path):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--n-mels', 40, '--hop-length', 160) == 0
    mel_basis = librosa.filters.mel(
        sr=SR, n_fft=512, n_mels=40, fmin=125.0, fmax=7600.0)
    peaks = {}
    for relpath, freq in (('b/tone1000.wav', 1000), ('a/tone440.mp4', 440),
                          ('b/c/tone2000.mp4', 2000)):
        feats = check_features(src, dst, relpath, n_mels=40, hop=160)
        expected = int(mel_basis[:, round(freq / (SR / 512))].argmax())
        peaks[freq] = int(feats.mean(axis=0).argmax())
        assert peaks[freq] == expected, (relpath, peaks[freq], expected)
    assert len(set(peaks.values())) == 3
    assert metadata(dst)['params']['hop_length'] == 160


def test_rerun_skips_existing_and_overwrite_rewrites(src, tmp_path, capsys):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ext', 'mp4', 'wav') == 0
    paths = sorted(str(dst / p) for p in npy_files(dst))
    contents = {p: open(p, 'rb').read() for p in paths}
    for p in paths:
        os.utime(p, (1e9, 1e9))
    capsys.readouterr()

    assert run(src, dst, '--ext', 'mp4', 'wav') == 0
    assert '3 files: 0 done, 3 skipped' in capsys.readouterr().out
    assert all(os.stat(p).st_mtime == 1e9 for p in paths)
    assert metadata(dst)['counts'] == dict(
        total=3, done=0, skipped=3, failed=0)

    # A run that died after two files: the re-run does the missing one.
    os.remove(paths[0])
    assert run(src, dst, '--ext', 'mp4', 'wav') == 0
    assert '3 files: 1 done, 2 skipped' in capsys.readouterr().out
    assert open(paths[0], 'rb').read() == contents[paths[0]]
    assert [os.stat(p).st_mtime == 1e9 for p in paths] == [False, True, True]

    assert run(src, dst, '--ext', 'mp4', 'wav', '--overwrite') == 0
    assert '3 files: 3 done, 0 skipped' in capsys.readouterr().out
    assert all(os.stat(p).st_mtime != 1e9 for p in paths)
    assert {p: open(p, 'rb').read() for p in paths} == contents


def test_invalid_existing_feature_file_is_reported_not_skipped(
        src, tmp_path, capsys):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ext', 'wav') == 0
    target = dst / 'b' / 'tone1000.npy'
    target.write_bytes(target.read_bytes()[:-100])  # truncated by someone
    capsys.readouterr()
    assert run(src, dst, '--ext', 'wav') == 1
    out = capsys.readouterr().out
    assert f'{target}: existing feature file is invalid' in out
    assert '--overwrite' in out
    assert run(src, dst, '--ext', 'wav', '--overwrite') == 0
    check_features(src, dst, 'b/tone1000.wav')


def test_failures_are_all_reported_and_the_rest_is_done(src, tmp_path,
                                                        capsys):
    bad = src / 'bad'
    bad.mkdir()
    (bad / 'empty.mp4').write_bytes(b'')
    data = open(write_mp4(tmp_path / 'whole.mp4', 440), 'rb').read()
    (bad / 'truncated.mp4').write_bytes(data[:len(data) // 2])
    write_mp4(bad / 'video_only.mp4', audio=False)
    ann = write_ann(tmp_path / 'list.txt', [
        'a/tone440.mp4 0', 'bad/empty.mp4 1', 'bad/missing.mp4 1',
        'bad/truncated.mp4 2', 'b/tone1000.wav 0', 'bad/video_only.mp4 3'
    ])
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ann-file', ann) == 1

    out = capsys.readouterr().out
    reasons = {
        'empty.mp4': 'file is empty',
        'missing.mp4': 'file not found',
        'truncated.mp4': 'cannot decode audio',
        'video_only.mp4': 'no audio stream',
    }
    summary = out.index('6 files: 2 done, 0 skipped (features already '
                        'exist), 4 failed')
    for name, reason in reasons.items():
        line = f'{bad / name}: {reason}'
        assert line in out, line
        assert out.index(line) > summary
    # The good files got their features, the bad ones nothing, and no
    # temporary file was left anywhere.
    assert npy_files(dst) == {'a/tone440.npy', 'b/tone1000.npy'}
    check_features(src, dst, 'a/tone440.mp4')
    check_features(src, dst, 'b/tone1000.wav')
    meta = metadata(dst)
    assert meta['counts'] == dict(total=6, done=2, skipped=0, failed=4)
    assert sorted(f['path'] for f in meta['failures']) == sorted(
        f'bad/{name}' for name in reasons)


def test_interrupted_write_leaves_old_file_and_no_temp_file(
        src, tmp_path, capsys, monkeypatch):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ext', 'wav') == 0
    target = dst / 'b' / 'tone1000.npy'
    before = target.read_bytes()

    def failing_save(file, arr, allow_pickle=True):
        file.write(b'\x93NUMPY half of it')
        raise OSError('No space left on device')

    monkeypatch.setattr(eaf.np, 'save', failing_save)
    capsys.readouterr()
    assert run(src, dst, '--ext', 'wav', '--overwrite') == 1
    out = capsys.readouterr().out
    assert (f'{src / "b" / "tone1000.wav"}: OSError: No space left on device'
            in out)
    assert target.read_bytes() == before
    assert npy_files(dst) == {'b/tone1000.npy'}
    assert 'Traceback' in metadata(dst)['failures'][0]['traceback']


def test_other_parameters_are_refused_without_overwrite(src, tmp_path,
                                                        capsys):
    dst = tmp_path / 'feats'
    assert run(src, dst, '--ext', 'wav') == 0
    target = dst / 'b' / 'tone1000.npy'
    os.utime(target, (1e9, 1e9))
    capsys.readouterr()

    assert run(src, dst, '--ext', 'wav', '--n-mels', 40, '--fmin', 60) == 2
    err = capsys.readouterr().err
    assert 'differing keys: fmin, n_mels' in err
    assert 'hop_length' not in err
    assert os.stat(target).st_mtime == 1e9
    assert metadata(dst)['params']['n_mels'] == 80

    assert run(src, dst, '--ext', 'wav', '--n-mels', 40, '--fmin', 60,
               '--overwrite') == 0
    assert np.load(target).shape == (1 + SR // HOP, 40)
    assert metadata(dst)['params']['n_mels'] == 40
    assert metadata(dst)['params']['fmin'] == 60


@pytest.mark.parametrize('case', ['outside', 'collision', 'no_ann'])
def test_bad_input_is_refused_before_any_work(src, tmp_path, capsys, case):
    dst = tmp_path / 'feats'
    if case == 'outside':
        ann = write_ann(tmp_path / 'list.txt', ['a/tone440.mp4 0',
                                                '../elsewhere.mp4 1'])
        args, message = ['--ann-file', ann], 'is not inside SRC_ROOT'
    elif case == 'collision':
        write_wav(str(src / 'a' / 'tone440.wav'), sine(440, SR), SR)
        args = ['--ext', 'mp4', 'wav']
        message = 'a/tone440.npy <- a/tone440.mp4, a/tone440.wav'
    else:
        args = ['--ann-file', str(tmp_path / 'nope.txt')]
        message = 'nope.txt not found'
    assert run(src, dst, *args) == 2
    assert message in capsys.readouterr().err
    assert not dst.exists()


@pytest.mark.slow
def test_two_worker_processes_give_the_same_features(src, tmp_path):
    write_mp4(src / 'video_only.mp4', audio=False)
    inproc = tmp_path / 'inproc'
    assert run(src, inproc, '--ext', 'mp4', 'wav') == 1

    multi = tmp_path / 'multi'
    proc = subprocess.run(
        [sys.executable, SCRIPT, str(src), str(multi), '--ext', 'mp4', 'wav',
         '--num-workers', '2'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'with 2 worker(s)' in proc.stderr
    assert '4 files: 3 done, 0 skipped (features already exist), 1 failed' \
        in proc.stdout
    assert f'{src / "video_only.mp4"}: no audio stream' in proc.stdout

    assert npy_files(multi) == npy_files(inproc) == {
        'a/tone440.npy', 'b/c/tone2000.npy', 'b/tone1000.npy'
    }
    for rel in npy_files(inproc):
        np.testing.assert_allclose(
            np.load(multi / rel), np.load(inproc / rel), rtol=0, atol=1e-6)
    assert metadata(multi)['counts'] == metadata(inproc)['counts']
