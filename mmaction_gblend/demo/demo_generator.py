"""A synthetic audio-visual classification dataset written as real MP4 files.

The data reproduce the situation Gradient Blending (Wang et al., "What Makes
Training Multi-modal Classification Networks Hard?", CVPR 2020) targets:

* Each modality carries the label only for part of the samples. A sample has
  a *video cue* with probability ``p_video`` and, independently, an *audio
  cue* with probability ``p_audio``. Without its cue a modality is
  uninformative for that sample (not misleading), so fusion beats either
  modality alone (see :func:`bayes_accuracies`).
* Audio is much easier to *memorise* than video. Every clip's audio holds a
  fingerprint of pure tones that is unique to the clip and constant over
  it, while the video changes from frame to frame (pixel noise, a moving
  disk). A naive joint model can fit the training set from audio alone and
  overfit on it.
* As on Kinetics (audio alone 19.7% top-1, RGB 72.6%), the second modality
  is the weak one: the defaults give video 78% and audio 39% Bayes
  accuracy, and fusion 85%. With an audio cue as informative as the video
  one (p_audio 0.6), fusion's gain (+16 points) swamps the overfitting and
  naive fusion beats both single modalities; with the defaults naive fusion
  falls below video alone, the paper's finding.

Video: a dim background with Gaussian pixel noise that changes every frame
and a filled disk that moves at a random velocity and bounces off the
borders. With a video cue the disk has the class colour (one of ``K``
well-separated hues, jittered a little in hue and brightness), otherwise it
is grey.

Audio: with an audio cue a class tone (fundamental plus second harmonic at a
class frequency, log-spaced over ``class_freq_range``, slowly amplitude
modulated); always low-level noise plus the fingerprint: pure tones at
random frequencies away from every class frequency and its harmonic.

Every sample is drawn from ``np.random.default_rng([seed, split_index,
index])``, so the data do not depend on the number or the order of the
worker processes; the same seed gives byte-identical files.

This module needs only numpy and PyAV; it must not import mmaction or torch.
"""
import colorsys
import json
import multiprocessing
import os
import os.path as osp
import re
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.av_writer import write_video_with_audio
from ..utils.choices import check_choice

SPLITS = ('train', 'val', 'test')
# Bump when the rendering changes, so ``skip_existing`` rebuilds old data.
FORMAT_VERSION = 1
META_FILE = 'meta.json'
CLASSES_FILE = 'classes.txt'
_CLIP_NAME = re.compile(r'^c\d+_\d+\.mp4$')
# Key of the label permutation of a split. ``SeedSequence`` pads keys with
# zeros, so ``[seed, split]`` would equal the key of sample 0; a trailing
# non-zero word keeps it apart from every ``[seed, split, index]``.
_LABEL_KEY = (0, 1)


@dataclass(frozen=True)
class DemoDatasetSpec:
    """Every number that defines the demo dataset.

    Args:
        num_classes: Number of classes ``K``.
        train_per_class: Clips per class in the train split. 100 (800
            clips) lets G-Blend hold out 40% of each class (V: 320 clips,
            and a training probe T' of as many from the 480 it trains on);
            with 77 clips in V, the standard error of a head's mean
            held-out loss was about 0.07 nats and of its overfitting O
            about 0.14, against O of 0.1-0.3. More clips per class let
            the fusion model stop overfitting in the demo's schedule
            (docs/demo_data.md): 160 per class in 6 epochs put naive
            fusion 4.7 points above RGB alone on val.
        val_per_class: Clips per class in the val split (256 clips), on
            which the demo's parameters and schedule are chosen.
        test_per_class: Clips per class in the test split. 128 (1024
            clips) puts the standard error of a top-1 near 80% at about
            1.3 points; 128 clips would give 3.7, more than the
            differences between the strategies the comparison measures.
        duration: Clip length in seconds.
        fps: Video frame rate.
        size: Frame height and width in pixels, a multiple of 32 (decord
            misreads some other widths).
        sample_rate: Audio sample rate in Hz.
        p_video: Probability that a clip's disk has its class colour.
        p_audio: Probability that a clip's audio holds its class tone.
        background: Grey level (0-255) of the background.
        pixel_noise_std: Std of the per-frame Gaussian pixel noise (0-255).
        disk_radius: Disk radius as a fraction of ``size``.
        speed_range: Disk speed range in frame sizes per second.
        saturation: Saturation of the class colours (HSV).
        hue_jitter: Max random hue shift of a class colour (turns).
        brightness_range: Range of the random brightness (HSV value) of a
            class-coloured disk.
        grey_range: Range of the grey level (0-1) of a disk without cue.
        class_freq_range: Lowest and highest class frequency in Hz; the
            class frequencies are log-spaced in between.
        harmonic_gain: Amplitude of the class tone's second harmonic
            relative to its fundamental.
        am_rate_range: Range of the class tone's amplitude modulation rate
            in Hz.
        am_depth: Depth of that modulation (0 none, 1 full).
        num_fingerprint_tones: Number of pure tones in a clip's fingerprint.
        fingerprint_freq_range: Range of the fingerprint frequencies in Hz.
        fingerprint_amp_range: Range of the fingerprint tone amplitudes,
            relative to the class tone's fundamental.
        fingerprint_exclusion: Relative distance every fingerprint tone
            keeps from each class frequency and its harmonic.
        audio_noise_std: Std of the white noise, relative to the class
            tone's fundamental.
        audio_peak: Peak level the waveform is normalised to.
        crf: x264 constant rate factor of the clips. 26 keeps most of the
            pixel noise (about 6 of its 10 grey levels survive) at about
            a third of the size of lossless-looking settings.
        audio_bitrate: AAC bit rate in bit/s; 32 kbit/s keeps every tone up
            to 6 kHz intact.
    """

    num_classes: int = 8
    train_per_class: int = 100
    val_per_class: int = 32
    test_per_class: int = 128
    duration: float = 2.0
    fps: int = 16
    size: int = 64
    sample_rate: int = 16000
    p_video: float = 0.75
    p_audio: float = 0.3
    background: int = 40
    pixel_noise_std: float = 10.0
    disk_radius: float = 0.125
    speed_range: Tuple[float, float] = (0.3, 0.9)
    saturation: float = 0.85
    hue_jitter: float = 0.02
    brightness_range: Tuple[float, float] = (0.75, 1.0)
    grey_range: Tuple[float, float] = (0.45, 0.8)
    class_freq_range: Tuple[float, float] = (300.0, 2400.0)
    harmonic_gain: float = 0.5
    am_rate_range: Tuple[float, float] = (0.5, 2.0)
    am_depth: float = 0.5
    num_fingerprint_tones: int = 3
    fingerprint_freq_range: Tuple[float, float] = (200.0, 6000.0)
    fingerprint_amp_range: Tuple[float, float] = (1.0, 2.0)
    fingerprint_exclusion: float = 0.08
    audio_noise_std: float = 0.05
    audio_peak: float = 0.5
    crf: int = 26
    audio_bitrate: int = 32000

    def __post_init__(self) -> None:
        # Tuples come back from JSON as lists; store tuples so specs compare.
        for name in ('speed_range', 'brightness_range', 'grey_range',
                     'class_freq_range', 'am_rate_range',
                     'fingerprint_freq_range', 'fingerprint_amp_range'):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or value[0] > value[1]:
                raise ValueError(f'{name} must be a (low, high) pair, got '
                                 f'{getattr(self, name)!r}')
            object.__setattr__(self, name, value)
        if self.num_classes < 2:
            raise ValueError(
                f'num_classes must be >= 2, got {self.num_classes}')
        for name in ('train_per_class', 'val_per_class', 'test_per_class'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0')
        # decord 0.6 misreads some frame widths (e.g. 16, 48, 72) as RGBA;
        # every multiple of 32 reads back correctly.
        if self.size < 32 or self.size % 32:
            raise ValueError(f'size must be a multiple of 32, got {self.size}')
        if self.duration <= 0 or self.fps <= 0:
            raise ValueError('duration and fps must be positive')
        if self.num_frames < 1:
            raise ValueError('duration * fps must give at least one frame')
        for name in ('p_video', 'p_audio', 'am_depth'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name} must lie in [0, 1]')
        nyquist = self.sample_rate / 2
        if self.class_freq_range[0] <= 0 or \
                2 * self.class_freq_range[1] >= nyquist:
            raise ValueError('class frequencies and their harmonics must lie '
                             f'in (0, {nyquist}) Hz')
        if self.fingerprint_freq_range[0] <= 0 or \
                self.fingerprint_freq_range[1] >= nyquist:
            raise ValueError(
                f'fingerprint frequencies must lie in (0, {nyquist}) Hz')
        if not 0 < self.audio_peak <= 1:
            raise ValueError('audio_peak must lie in (0, 1]')

    @property
    def num_frames(self) -> int:
        """Frames per clip."""
        return int(round(self.duration * self.fps))

    @property
    def num_audio_samples(self) -> int:
        """Audio samples per clip."""
        return int(round(self.duration * self.sample_rate))

    def split_size(self, split: str) -> int:
        """Number of clips in ``split``."""
        return self.num_classes * getattr(self, f'{split}_per_class')

    def to_dict(self) -> dict:
        """The spec as a JSON-compatible dict."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> 'DemoDatasetSpec':
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass
class DemoSample:
    """One rendered clip, before encoding.

    Attributes:
        frames: ``uint8`` RGB frames, ``(T, size, size, 3)``.
        waveform: ``float32`` mono audio, ``(num_samples, )``.
        label: The class index.
        video_cue: Whether the disk has the class colour.
        audio_cue: Whether the audio holds the class tone.
        centers: Disk centres ``(x, y)`` in pixels per frame, ``(T, 2)``.
        radius: Disk radius in pixels.
        disk_color: The disk's RGB colour in ``[0, 255]`` (before noise).
        fingerprint_freqs: Frequencies of the fingerprint tones in Hz.
        class_freq: The label's class frequency in Hz (present in the
            audio only if ``audio_cue``).
    """

    frames: np.ndarray
    waveform: np.ndarray
    label: int
    video_cue: bool
    audio_cue: bool
    centers: np.ndarray
    radius: float
    disk_color: np.ndarray
    fingerprint_freqs: np.ndarray
    class_freq: float


def class_names(num_classes: int) -> List[str]:
    """Names of the classes, ``class_00``, ``class_01``, ..."""
    width = max(2, len(str(num_classes - 1)))
    return [f'class_{k:0{width}d}' for k in range(num_classes)]


def class_colors(spec: DemoDatasetSpec) -> np.ndarray:
    """Nominal RGB colour of each class (full brightness), ``(K, 3)`` in
    ``[0, 255]``; the hues are evenly spaced around the colour wheel."""
    return np.array([
        colorsys.hsv_to_rgb(k / spec.num_classes, spec.saturation, 1.0)
        for k in range(spec.num_classes)
    ]) * 255.0


def class_frequencies(spec: DemoDatasetSpec) -> np.ndarray:
    """Fundamental frequency of each class tone in Hz, log-spaced."""
    low, high = spec.class_freq_range
    return np.geomspace(low, high, spec.num_classes)


def bayes_accuracies(spec: DemoDatasetSpec) -> Dict[str, float]:
    """Best achievable accuracy from video, audio, both, or nothing.

    A modality whose cue is present gives the label; otherwise the best
    guess is right with probability ``1 / K``. Fusion fails only if both
    cues are absent and the guess is wrong.
    """
    chance = 1.0 / spec.num_classes
    p_v, p_a = spec.p_video, spec.p_audio
    return dict(
        video=p_v + (1 - p_v) * chance,
        audio=p_a + (1 - p_a) * chance,
        fusion=1 - (1 - p_v) * (1 - p_a) * (1 - chance),
        chance=chance)


def split_labels(spec: DemoDatasetSpec, seed: int, split: str) -> np.ndarray:
    """Labels of the clips of ``split`` in clip order: balanced, shuffled."""
    split_index = SPLITS.index(split)
    per_class = getattr(spec, f'{split}_per_class')
    labels = np.repeat(np.arange(spec.num_classes), per_class)
    rng = np.random.default_rng([seed, split_index, *_LABEL_KEY])
    return rng.permutation(labels)


def clip_name(label: int, index: int, spec: DemoDatasetSpec) -> str:
    """File name of a clip, e.g. ``c03_0012.mp4`` (class, index in split)."""
    class_width = max(2, len(str(spec.num_classes - 1)))
    index_width = max(4, len(str(max(spec.split_size(s) for s in SPLITS))))
    return f'c{label:0{class_width}d}_{index:0{index_width}d}.mp4'


def _bounce(start: float, step: float, num: int, low: float,
            high: float) -> np.ndarray:
    """Positions of a point moving at constant speed between two walls."""
    span = high - low
    if span <= 0:
        return np.full(num, low)
    raw = start - low + step * np.arange(num)
    # Unfolding the reflections gives a triangle wave of period 2 * span.
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _render_video(spec: DemoDatasetSpec, label: int, video_cue: bool,
                  rng: np.random.Generator) -> Tuple[np.ndarray, ...]:
    size, num_frames = spec.size, spec.num_frames
    radius = spec.disk_radius * size
    if video_cue:
        hue = label / spec.num_classes + rng.uniform(-spec.hue_jitter,
                                                     spec.hue_jitter)
        value = rng.uniform(*spec.brightness_range)
        color = np.array(
            colorsys.hsv_to_rgb(hue % 1.0, spec.saturation, value)) * 255.0
    else:
        color = np.full(3, rng.uniform(*spec.grey_range) * 255.0)

    # Speed in frame sizes per second, so motion looks the same at any fps.
    speed = rng.uniform(*spec.speed_range) * size / spec.fps
    angle = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(radius, size - radius, size=2)
    centers = np.stack([
        _bounce(start[0], speed * np.cos(angle), num_frames, radius,
                size - radius),
        _bounce(start[1], speed * np.sin(angle), num_frames, radius,
                size - radius)
    ],
                       axis=1)

    # Pixel centres at integer coordinates + 0.5; a one-pixel soft edge.
    coords = np.arange(size, dtype=np.float32) + 0.5
    dx = coords[None, None, :] - centers[:, 0, None, None].astype(np.float32)
    dy = coords[None, :, None] - centers[:, 1, None, None].astype(np.float32)
    alpha = np.clip(radius + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0)
    frames = spec.background + alpha[..., None] * (
        color.astype(np.float32) - spec.background)
    # Fresh noise in every frame: nothing in the pixels repeats over time.
    frames += rng.normal(
        0.0, spec.pixel_noise_std, size=frames.shape).astype(np.float32)
    frames = np.clip(np.round(frames), 0, 255).astype(np.uint8)
    return frames, centers, radius, color


def _fingerprint_freqs(spec: DemoDatasetSpec,
                       rng: np.random.Generator) -> np.ndarray:
    """Random tone frequencies kept away from every class frequency and
    harmonic, so the fingerprint says nothing about the label."""
    forbidden = np.concatenate(
        [class_frequencies(spec), 2 * class_frequencies(spec)])
    freqs: List[float] = []
    for _ in range(10000):
        if len(freqs) == spec.num_fingerprint_tones:
            break
        freq = rng.uniform(*spec.fingerprint_freq_range)
        if np.all(np.abs(freq / forbidden - 1) > spec.fingerprint_exclusion):
            freqs.append(freq)
    else:
        raise ValueError('fingerprint_freq_range leaves no room outside the '
                         'class frequencies; widen it or lower '
                         'fingerprint_exclusion')
    return np.array(freqs)


def _render_audio(spec: DemoDatasetSpec, label: int, audio_cue: bool,
                  rng: np.random.Generator) -> Tuple[np.ndarray, ...]:
    t = np.arange(spec.num_audio_samples) / spec.sample_rate
    class_freq = float(class_frequencies(spec)[label])
    wave = np.zeros_like(t)
    if audio_cue:
        phases = rng.uniform(0, 2 * np.pi, size=3)
        tone = np.sin(2 * np.pi * class_freq * t + phases[0]) + \
            spec.harmonic_gain * np.sin(4 * np.pi * class_freq * t + phases[1])
        am_rate = rng.uniform(*spec.am_rate_range)
        envelope = 1 - spec.am_depth * 0.5 * (
            1 + np.sin(2 * np.pi * am_rate * t + phases[2]))
        wave += envelope * tone
    freqs = _fingerprint_freqs(spec, rng)
    amps = rng.uniform(*spec.fingerprint_amp_range, size=freqs.size)
    phases = rng.uniform(0, 2 * np.pi, size=freqs.size)
    wave += (amps[:, None] *
             np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    wave += rng.normal(0.0, spec.audio_noise_std, size=t.size)
    wave *= spec.audio_peak / np.abs(wave).max()
    return wave.astype(np.float32), freqs, class_freq


def _render(spec: DemoDatasetSpec, seed: int, split_index: int, index: int,
            label: int) -> DemoSample:
    rng = np.random.default_rng([seed, split_index, index])
    # Cues first, so they do not depend on how much the rendering draws.
    video_cue = bool(rng.random() < spec.p_video)
    audio_cue = bool(rng.random() < spec.p_audio)
    frames, centers, radius, color = _render_video(spec, label, video_cue, rng)
    waveform, freqs, class_freq = _render_audio(spec, label, audio_cue, rng)
    return DemoSample(
        frames=frames,
        waveform=waveform,
        label=int(label),
        video_cue=video_cue,
        audio_cue=audio_cue,
        centers=centers,
        radius=radius,
        disk_color=color,
        fingerprint_freqs=freqs,
        class_freq=class_freq)


def render_sample(split: str,
                  index: int,
                  spec: Optional[DemoDatasetSpec] = None,
                  seed: int = 0) -> DemoSample:
    """Render one clip of the dataset in memory, without writing it.

    Gives exactly the arrays :func:`make_demo_dataset` encodes for clip
    ``index`` of ``split`` with the same spec and seed.

    Args:
        split: ``'train'``, ``'val'`` or ``'test'``.
        index: Position of the clip in the split.
        spec: The dataset spec; the defaults if ``None``.
        seed: The dataset seed.

    Returns:
        DemoSample: The frames, waveform, label, cues and render details.
    """
    spec = spec or DemoDatasetSpec()
    _check_seed(seed)
    check_choice('split', split, SPLITS)
    labels = split_labels(spec, seed, split)
    if not 0 <= index < labels.size:
        raise ValueError(f'index {index} out of range for {labels.size} '
                         f'{split} clips')
    return _render(spec, seed, SPLITS.index(split), index, int(labels[index]))


def _write_clip(task: tuple) -> Tuple[str, bool, bool]:
    """Render and encode one clip (runs in a worker process)."""
    spec, seed, split_index, index, label, out_dir, rel_path = task
    sample = _render(spec, seed, split_index, index, label)
    path = osp.join(out_dir, rel_path)
    # Write under a temporary name so a killed run leaves no valid-looking
    # truncated clip behind.
    tmp_path = path[:-len('.mp4')] + '.tmp.mp4'
    write_video_with_audio(
        tmp_path,
        sample.frames,
        spec.fps,
        sample.waveform,
        sample_rate=spec.sample_rate,
        crf=spec.crf,
        audio_bitrate=spec.audio_bitrate)
    os.replace(tmp_path, path)
    return rel_path, sample.video_cue, sample.audio_cue


def _check_seed(seed: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) \
            or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')


def _write_json(path: str, data: dict) -> None:
    tmp_path = path + '.tmp'
    with open(tmp_path, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
        f.write('\n')
    os.replace(tmp_path, path)  # atomic: readers never see half a file


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        f.writelines(line + '\n' for line in lines)


def _existing_meta(out_dir: str) -> Optional[dict]:
    try:
        with open(osp.join(out_dir, META_FILE), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _reuse_reason(meta: Optional[dict], spec: DemoDatasetSpec, seed: int,
                  out_dir: str) -> Optional[str]:
    """Why an existing dataset cannot be reused, or None if it can."""
    if meta is None:
        return 'no readable meta.json'
    if not meta.get('complete'):
        return 'the previous build did not complete'
    if meta.get('format_version') != FORMAT_VERSION:
        return 'it was made by another generator version'
    if meta.get('seed') != seed:
        return f'its seed is {meta.get("seed")}, not {seed}'
    if meta.get('spec') != spec.to_dict():
        return 'its spec differs'
    expected = [f'{s}_list.txt' for s in SPLITS] + [CLASSES_FILE]
    expected += list(meta.get('samples', {}))
    missing = [p for p in expected if not osp.isfile(osp.join(out_dir, p))]
    if missing:
        return f'{len(missing)} file(s) are missing, e.g. {missing[0]}'
    return None


def _remove_stale_clips(out_dir: str, keep: set) -> None:
    """Delete clips of an earlier build that this build does not write."""
    for split in SPLITS:
        folder = osp.join(out_dir, split)
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            rel_path = f'{split}/{name}'
            stale = _CLIP_NAME.match(name) and rel_path not in keep
            if stale or name.endswith('.tmp.mp4'):
                os.remove(osp.join(folder, name))


def make_demo_dataset(out_dir: str,
                      spec: Optional[DemoDatasetSpec] = None,
                      seed: int = 0,
                      workers: Optional[int] = None,
                      skip_existing: bool = False,
                      verbose: bool = True) -> dict:
    """Render and write the demo dataset under ``out_dir``.

    Layout::

        out_dir/
            train/c03_0012.mp4 ...   (also val/, test/)
            train_list.txt           lines "train/c03_0012.mp4 3"
            val_list.txt, test_list.txt
            classes.txt              one class name per line
            meta.json                spec, seed, Bayes accuracies, cues

    ``meta.json`` is written first with ``"complete": false`` and rewritten
    with ``"complete": true`` once every other file is in place.

    Args:
        out_dir: The dataset folder; created if missing.
        spec: The dataset spec; the defaults if ``None``.
        seed: The dataset seed (a non-negative int).
        workers: Number of worker processes; ``min(2, cpu_count)`` if
            ``None``; 0 or 1 renders in this process.
        skip_existing: Reuse a complete dataset in ``out_dir`` made with
            the same spec and seed instead of rebuilding it.
        verbose: Print progress.

    Returns:
        dict: The content of ``meta.json``.
    """
    spec = spec or DemoDatasetSpec()
    _check_seed(seed)
    seed = int(seed)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    log = print if verbose else (lambda *args, **kwargs: None)

    if skip_existing:
        meta = _existing_meta(out_dir)
        reason = _reuse_reason(meta, spec, seed, out_dir)
        if reason is None:
            log(f'[demo data] {out_dir} is complete with this spec and '
                'seed; nothing to do')
            return meta
        if meta is not None or osp.exists(out_dir):
            log(f'[demo data] rebuilding {out_dir}: {reason}')

    os.makedirs(out_dir, exist_ok=True)
    names = class_names(spec.num_classes)
    meta = dict(
        format_version=FORMAT_VERSION,
        seed=seed,
        spec=spec.to_dict(),
        classes=names,
        class_colors=np.round(class_colors(spec), 2).tolist(),
        class_frequencies=np.round(class_frequencies(spec), 3).tolist(),
        counts={s: spec.split_size(s) for s in SPLITS},
        bayes_accuracy=bayes_accuracies(spec),
        samples={},
        complete=False)
    # Mark the folder incomplete before touching any clip.
    _write_json(osp.join(out_dir, META_FILE), meta)

    tasks, lists = [], {}
    for split_index, split in enumerate(SPLITS):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        lines = []
        for index, label in enumerate(split_labels(spec, seed, split)):
            rel_path = f'{split}/{clip_name(int(label), index, spec)}'
            lines.append(f'{rel_path} {int(label)}')
            tasks.append((spec, seed, split_index, index, int(label), out_dir,
                          rel_path))
        lists[split] = lines
    _remove_stale_clips(out_dir, {task[-1] for task in tasks})

    start = time.time()
    log(f'[demo data] writing {len(tasks)} clips to {out_dir} with '
        f'{max(workers, 1)} process(es)')
    cues = _write_clips(tasks, workers, log, start)

    for split in SPLITS:
        _write_lines(osp.join(out_dir, f'{split}_list.txt'), lists[split])
    _write_lines(osp.join(out_dir, CLASSES_FILE), names)

    # Samples in list order, so meta.json does not depend on worker timing.
    for task in tasks:
        split, rel_path, label = SPLITS[task[2]], task[-1], task[4]
        video_cue, audio_cue = cues[rel_path]
        meta['samples'][rel_path] = dict(
            split=split, label=label, video_cue=video_cue, audio_cue=audio_cue)
    meta['cue_rates'] = {
        split: _cue_rates(meta['samples'], split) for split in SPLITS}
    # Moved to the end so "complete" is literally written last.
    del meta['complete']
    meta['complete'] = True
    _write_json(osp.join(out_dir, META_FILE), meta)
    log(f'[demo data] done: {len(tasks)} clips in {time.time() - start:.1f} s')
    return meta


def _write_clips(tasks: list, workers: int, log: Callable[..., None],
                 start: float) -> Dict[str, tuple]:
    """Render and write the clips of ``tasks`` (with ``workers`` processes
    when more than one), logging progress from ``start``.

    Returns:
        ``{rel_path: (video_cue, audio_cue)}``.
    """
    cues = {}
    report_every = max(1, len(tasks) // 4)
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.Pool(workers) as pool:
            results = pool.imap_unordered(_write_clip, tasks, chunksize=4)
            for done, (rel_path, *flags) in enumerate(results, 1):
                cues[rel_path] = tuple(flags)
                if done % report_every == 0 and done < len(tasks):
                    log(f'[demo data] {done}/{len(tasks)} clips, '
                        f'{time.time() - start:.1f} s')
    else:
        for task in tasks:
            rel_path, video_cue, audio_cue = _write_clip(task)
            cues[rel_path] = (video_cue, audio_cue)
    return cues


def _cue_rates(samples: dict, split: str) -> Dict[str, Optional[float]]:
    """Fraction of the clips of ``split`` that have each cue."""
    infos = [info for info in samples.values() if info['split'] == split]
    if not infos:
        return dict(video=None, audio=None)
    return {
        kind: sum(info[f'{kind}_cue'] for info in infos) / len(infos)
        for kind in ('video', 'audio')
    }
