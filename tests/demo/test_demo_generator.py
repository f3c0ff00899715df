"""The demo dataset generator, checked on the MP4 files it writes."""
import ast
import colorsys
import dataclasses
import hashlib
import json
import os
import os.path as osp
import re

import decord
import numpy as np
import pytest

from mmaction_gblend.demo import demo_generator
from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                 bayes_accuracies,
                                                 class_colors,
                                                 class_frequencies,
                                                 make_demo_dataset,
                                                 render_sample)

pytestmark = pytest.mark.demo_tools

# 3 classes x (4 + 2 + 2) clips of 1 s: builds in about a second.
TINY = DemoDatasetSpec(
    num_classes=3,
    train_per_class=4,
    val_per_class=2,
    test_per_class=2,
    duration=1.0,
    fps=8,
    size=64,
    p_video=0.5,
    p_audio=0.5)
SPLITS = ('train', 'val', 'test')
LINE = re.compile(r'^(train|val|test)/c(\d{2})_(\d{4})\.mp4 (\d+)$')


def _build(path, seed=0, workers=1, spec=TINY, verbose=False, **kwargs):
    return make_demo_dataset(
        str(path),
        spec=spec,
        seed=seed,
        workers=workers,
        verbose=verbose,
        **kwargs)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The tiny dataset with seed 0, written by two worker processes."""
    out = tmp_path_factory.mktemp('demo_seed0')
    meta = _build(out, workers=2)
    return str(out), meta


def _all_files(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path,
                                  root)] = hashlib.md5(f.read()).hexdigest()
    return files


def _read_list(root, split):
    with open(osp.join(root, f'{split}_list.txt')) as f:
        return f.read().splitlines()


def _index(rel_path):
    return int(LINE.match(rel_path + ' 0').group(3))


def _disk_color(path, sample):
    """Mean decoded colour inside the disk, away from its blurred edge."""
    frames = decord.VideoReader(path).get_batch(list(range(
        TINY.num_frames))).asnumpy().astype(float)
    coords = np.arange(TINY.size) + 0.5
    means = []
    for frame, (cx, cy) in zip(frames, sample.centers):
        inside = ((coords[None, :] - cx)**2 + (coords[:, None] - cy)**2
                  <= (sample.radius - 2)**2)
        means.append(frame[inside].mean(axis=0))
    return np.mean(means, axis=0)


def _log_spectrum(samples, sample_rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return np.fft.rfftfreq(samples.size,
                           1 / sample_rate), np.log(spectrum + 1e-9)


def _prominence(freqs, log_spec, freq, rel_width=0.02):
    """Height of the strongest bin near ``freq`` above the median floor."""
    band = np.abs(freqs / freq - 1) < rel_width
    return log_spec[band].max() - np.median(log_spec)


def test_layout_counts_and_annotations(built):
    root, meta = built
    with open(osp.join(root, 'classes.txt')) as f:
        assert f.read().splitlines() == ['class_00', 'class_01', 'class_02']
    listed = {}
    for split in SPLITS:
        lines = _read_list(root, split)
        per_class = getattr(TINY, f'{split}_per_class')
        assert len(lines) == 3 * per_class
        labels = []
        for index, line in enumerate(lines):
            match = LINE.match(line)
            assert match, line
            assert match.group(1) == split
            label = int(match.group(4))
            assert 0 <= label < 3
            assert int(match.group(2)) == label  # class in the file name
            assert int(match.group(3)) == index
            labels.append(label)
            listed[line.split()[0]] = label
        # Balanced per class, but not sorted by class.
        assert np.bincount(labels, minlength=3).tolist() == [per_class] * 3
        if split == 'train':
            assert labels != sorted(labels)
        clips = sorted(os.listdir(osp.join(root, split)))
        assert clips == sorted(
            p.split('/')[1] for p in listed if p.startswith(split + '/'))

    assert meta['complete'] is True
    assert meta['seed'] == 0
    assert meta['counts'] == {'train': 12, 'val': 6, 'test': 6}
    assert DemoDatasetSpec.from_dict(meta['spec']) == TINY
    assert {p: m['label'] for p, m in meta['samples'].items()} == listed
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f) == meta
    # Every clip is a readable video of the right size and length.
    for rel_path in listed:
        reader = decord.VideoReader(osp.join(root, rel_path))
        assert len(reader) == TINY.num_frames
        assert reader[0].shape == (TINY.size, TINY.size, 3)


def test_bayes_accuracies():
    acc = bayes_accuracies(DemoDatasetSpec())
    assert acc['video'] == pytest.approx(0.75 + 0.25 / 8)
    assert acc['audio'] == pytest.approx(0.3 + 0.7 / 8)
    assert acc['fusion'] == pytest.approx(1 - 0.25 * 0.7 * 7 / 8)
    # the paper's regime: a weak second modality, a small fusion gain
    assert acc['audio'] < acc['video'] / 2
    assert 0 < acc['fusion'] - acc['video'] < 0.1
    tiny = bayes_accuracies(TINY)
    assert tiny == pytest.approx(
        dict(video=2 / 3, audio=2 / 3, fusion=1 - 0.25 * 2 / 3, chance=1 / 3))


def test_render_sample_matches_meta(built):
    _, meta = built
    for rel_path, info in meta['samples'].items():
        sample = render_sample(info['split'], _index(rel_path), TINY, seed=0)
        assert sample.label == info['label']
        assert sample.video_cue == info['video_cue']
        assert sample.audio_cue == info['audio_cue']
        assert sample.frames.shape == (8, 64, 64, 3)
        assert sample.frames.dtype == np.uint8
        assert sample.waveform.shape == (16000, )
        assert sample.waveform.dtype == np.float32
        assert np.abs(sample.waveform).max() == pytest.approx(0.5)
    # The cues vary: each kind of sample exists in this small dataset.
    flags = {(m['video_cue'], m['audio_cue'])
             for m in meta['samples'].values()}
    assert flags == {(True, True), (True, False), (False, True),
                     (False, False)}


def test_same_seed_gives_identical_bytes(built, tmp_path):
    root, meta = built
    # One process instead of two: the data must not depend on the workers.
    meta_again = _build(tmp_path, seed=0, workers=1)
    assert meta_again == meta
    first, second = _all_files(root), _all_files(str(tmp_path))
    assert len(first) == 24 + 5  # clips + 3 lists, classes.txt, meta.json
    assert first == second


def test_other_seed_gives_other_data(built, tmp_path):
    root, meta = built
    meta_other = _build(tmp_path, seed=1)
    assert meta_other['seed'] == 1
    ours, theirs = _all_files(root), _all_files(str(tmp_path))
    clips_ours = {h for p, h in ours.items() if p.endswith('.mp4')}
    clips_theirs = {h for p, h in theirs.items() if p.endswith('.mp4')}
    assert not clips_ours & clips_theirs
    assert _read_list(root, 'train') != _read_list(str(tmp_path), 'train')


def test_video_cue_matches_disk_colour(built):
    root, meta = built
    hues = np.arange(3) / 3
    for rel_path, info in meta['samples'].items():
        sample = render_sample(info['split'], _index(rel_path), TINY)
        color = _disk_color(osp.join(root, rel_path), sample)
        hue, saturation, _ = colorsys.rgb_to_hsv(*(color / 255))
        if info['video_cue']:
            assert saturation > 0.6, rel_path
            distance = np.abs((hues - hue + 0.5) % 1 - 0.5)
            assert distance.argmin() == info['label'], rel_path
            assert distance.min() < 0.05, rel_path
            # Close to the nominal class colour up to brightness.
            nominal = class_colors(TINY)[info['label']]
            scale = color.max() / nominal.max()
            assert np.abs(color - scale * nominal).max() < 20, rel_path
        else:
            assert saturation < 0.1, rel_path  # a grey disk


def test_audio_cue_matches_class_tone(built):
    root, meta = built
    class_freqs = class_frequencies(TINY)
    for rel_path, info in meta['samples'].items():
        reader = decord.AudioReader(
            osp.join(root, rel_path), sample_rate=TINY.sample_rate, mono=True)
        samples = reader[:].asnumpy()[0]
        assert samples.size / TINY.sample_rate == pytest.approx(
            TINY.duration, abs=0.1)
        freqs, log_spec = _log_spectrum(samples[:TINY.num_audio_samples],
                                        TINY.sample_rate)
        peaks = np.array(
            [_prominence(freqs, log_spec, f) for f in class_freqs])
        if info['audio_cue']:
            assert peaks[info['label']] > 4.0, (rel_path, peaks)
            assert peaks.argmax() == info['label'], (rel_path, peaks)
            # The second harmonic is there too.
            assert _prominence(freqs, log_spec,
                               2 * class_freqs[info['label']]) > 3.0
        else:
            assert peaks.max() < 3.0, (rel_path, peaks)


def test_fingerprints_are_unique_stable_and_label_free(built):
    root, meta = built
    class_freqs = class_frequencies(TINY)
    forbidden = np.concatenate([class_freqs, 2 * class_freqs])
    seen = []
    for rel_path, info in meta['samples'].items():
        sample = render_sample(info['split'], _index(rel_path), TINY)
        fingerprint = np.sort(sample.fingerprint_freqs)
        assert fingerprint.size == TINY.num_fingerprint_tones
        assert np.all(
            np.abs(fingerprint[:, None] / forbidden[None] - 1) > 0.08)
        for other in seen:
            assert np.abs(fingerprint - other).max() > 1.0
        seen.append(fingerprint)

        # In the decoded file every tone is there in both halves of the clip.
        samples = decord.AudioReader(
            osp.join(root, rel_path), sample_rate=TINY.sample_rate,
            mono=True)[:].asnumpy()[0][:TINY.num_audio_samples]
        half = samples.size // 2
        for part in (samples[:half], samples[half:]):
            freqs, log_spec = _log_spectrum(part, TINY.sample_rate)
            for freq in fingerprint:
                assert _prominence(freqs, log_spec, freq, 0.01) > 4.0


def test_video_changes_every_frame():
    sample = render_sample('train', 0, TINY)
    corner = sample.frames[:, :6, :6].astype(float)
    assert (sample.frames[0] != sample.frames[1]).mean() > 0.5
    assert corner.std(axis=0).mean() > 0.5 * TINY.pixel_noise_std
    # The disk moves.
    assert np.linalg.norm(sample.centers[-1] - sample.centers[0]) > 1.0
    radius = sample.radius
    assert np.all(sample.centers >= radius - 1e-6)
    assert np.all(sample.centers <= TINY.size - radius + 1e-6)


def test_skip_existing_reuses_or_rebuilds(tmp_path, capsys):
    meta = _build(tmp_path)
    files = sorted(_all_files(str(tmp_path)))

    def mtimes():
        return {p: os.stat(osp.join(tmp_path, p)).st_mtime_ns for p in files}

    before = mtimes()
    assert _build(tmp_path, skip_existing=True) == meta
    assert mtimes() == before

    # Other spec: rebuilt, and the clips the new spec lacks are gone.
    smaller = dataclasses.replace(TINY, val_per_class=1)
    new_meta = _build(tmp_path, spec=smaller, skip_existing=True, verbose=True)
    assert 'rebuilding' in capsys.readouterr().out
    assert new_meta['counts']['val'] == 3
    assert len(os.listdir(tmp_path / 'val')) == 3
    assert len(_read_list(str(tmp_path), 'val')) == 3
    assert DemoDatasetSpec.from_dict(new_meta['spec']) == smaller

    # An interrupted build is never reused.
    meta_path = tmp_path / 'meta.json'
    broken = json.loads(meta_path.read_text())
    broken['complete'] = False
    meta_path.write_text(json.dumps(broken))
    stamp = os.stat(tmp_path / 'train_list.txt').st_mtime_ns
    os.utime(tmp_path / 'train_list.txt', ns=(stamp - 10**9, stamp - 10**9))
    assert _build(tmp_path, spec=smaller, skip_existing=True)['complete']
    assert os.stat(tmp_path / 'train_list.txt').st_mtime_ns != \
        stamp - 10**9


def test_spec_validation():
    with pytest.raises(ValueError, match='multiple of 32'):
        DemoDatasetSpec(size=48)
    with pytest.raises(ValueError, match='p_video'):
        DemoDatasetSpec(p_video=1.5)
    with pytest.raises(ValueError, match='num_classes'):
        DemoDatasetSpec(num_classes=1)
    with pytest.raises(ValueError, match='seed'):
        make_demo_dataset('unused', spec=TINY, seed=-1)
    with pytest.raises(ValueError, match='split'):
        render_sample('dev', 0, TINY)


def test_generator_imports_neither_mmaction_nor_torch():
    with open(demo_generator.__file__, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split('.')[0])
    assert 'numpy' in imported
    assert not imported & {'mmaction', 'mmengine', 'mmcv', 'torch'}
