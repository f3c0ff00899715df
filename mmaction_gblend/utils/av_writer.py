"""Write RGB frames and a mono waveform as an MP4 (H.264 + AAC) or a WAV.

The MP4s are written with PyAV and are meant to be read back with decord
(``decord.VideoReader`` for the frames, ``decord.AudioReader`` for the audio
track), like the clips of a real audio-visual dataset.

Encoding is deterministic: x264 runs with a single thread (multi-threaded
x264 may split the work differently between runs) and the MP4 muxer writes
no creation time, so identical inputs give byte-identical files with the
same PyAV/FFmpeg build. Other builds may give other (equally valid) bytes.
"""
import os
import os.path as osp
import wave
from fractions import Fraction
from typing import Optional

import av
import numpy as np

# AAC codes 1024 samples per frame; feeding whole frames avoids re-buffering.
_AUDIO_CHUNK = 1024


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray):
        raise ValueError(
            f'frames must be a numpy array, got {type(frames).__name__}')
    if frames.dtype != np.uint8:
        raise ValueError(f'frames must be uint8, got {frames.dtype}')
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError('frames must have shape (T, H, W, 3), got '
                         f'{frames.shape}')
    num_frames, height, width = frames.shape[:3]
    if num_frames < 1 or height < 2 or width < 2:
        raise ValueError(f'frames must not be empty, got {frames.shape}')
    # yuv420p halves the chroma resolution, so x264 needs even sizes.
    if height % 2 or width % 2:
        raise ValueError('frame height and width must be even for yuv420p, '
                         f'got {height}x{width}')


def _check_waveform(waveform: np.ndarray, sample_rate: int) -> None:
    if not isinstance(waveform, np.ndarray):
        raise ValueError(
            f'waveform must be a numpy array, got {type(waveform).__name__}')
    if waveform.dtype != np.float32:
        raise ValueError(f'waveform must be float32, got {waveform.dtype}')
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError('waveform must be a non-empty mono array of shape '
                         f'(num_samples, ), got {waveform.shape}')
    if not np.all(np.isfinite(waveform)):
        raise ValueError('waveform contains NaN or infinite values')
    if np.abs(waveform).max() > 1.0:
        raise ValueError('waveform must lie in [-1, 1], got a peak of '
                         f'{float(np.abs(waveform).max()):.3f}')
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(
            f'sample_rate must be a positive int, got {sample_rate!r}')


def _make_parent(path: str) -> None:
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)


def write_video_with_audio(path: str,
                           frames: np.ndarray,
                           fps: float,
                           waveform: Optional[np.ndarray] = None,
                           sample_rate: int = 16000,
                           crf: int = 23,
                           preset: str = 'ultrafast',
                           audio_bitrate: int = 48000) -> None:
    """Encode RGB frames (H.264) and optionally a mono waveform (AAC) as MP4.

    Args:
        path: The output ``.mp4`` file; parent folders are created.
        frames: ``uint8`` RGB frames of shape ``(T, H, W, 3)`` with even
            ``H`` and ``W``.
        fps: Frame rate of the video. Fractional rates are kept exactly up
            to 1/1001 (e.g. 29.97).
        waveform: ``float32`` mono samples of shape ``(num_samples, )`` in
            ``[-1, 1]``. ``None`` writes a file without an audio stream.
        sample_rate: Sample rate of ``waveform`` in Hz; must be one AAC
            supports (e.g. 8000, 16000, 22050, 44100, 48000).
        crf: x264 constant rate factor (0 lossless ... 51 worst).
        preset: x264 speed preset, e.g. ``'ultrafast'`` or ``'veryfast'``.
        audio_bitrate: AAC bit rate in bit/s.

    Raises:
        ValueError: If an argument has a wrong type, shape, dtype or range.
    """
    _check_frames(frames)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f'fps must be a positive number, got {fps!r}')
    if not 0 <= int(crf) <= 51:
        raise ValueError(f'crf must lie in [0, 51], got {crf!r}')
    if waveform is not None:
        _check_waveform(waveform, sample_rate)
        if sample_rate not in av.codec.Codec('aac', 'w').audio_rates:
            raise ValueError(
                f'AAC cannot code a sample rate of {sample_rate} Hz')
    _make_parent(path)

    rate = Fraction(fps).limit_denominator(1001)
    height, width = frames.shape[1:3]
    with av.open(path, mode='w', format='mp4') as container:
        video = container.add_stream(
            'libx264',
            rate=rate,
            options={
                'preset': preset,
                'crf': str(int(crf)),
                # One thread: the only way x264 output is reproducible.
                'threads': '1',
            })
        video.width = width
        video.height = height
        video.pix_fmt = 'yuv420p'
        audio = None
        if waveform is not None:
            audio = container.add_stream('aac', rate=int(sample_rate))
            audio.layout = 'mono'
            audio.bit_rate = int(audio_bitrate)

        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image), format='rgb24')
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))  # flush delayed frames

        if audio is not None:
            time_base = Fraction(1, int(sample_rate))
            for start in range(0, waveform.shape[0], _AUDIO_CHUNK):
                chunk = waveform[start:start + _AUDIO_CHUNK]
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk[None]),
                    format='fltp',
                    layout='mono')
                frame.sample_rate = int(sample_rate)
                frame.pts = start
                frame.time_base = time_base
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))


def write_wav(path: str,
              waveform: np.ndarray,
              sample_rate: int = 16000) -> None:
    """Write a mono waveform as a 16-bit PCM WAV file.

    Args:
        path: The output ``.wav`` file; parent folders are created.
        waveform: ``float32`` samples of shape ``(num_samples, )`` in
            ``[-1, 1]``.
        sample_rate: Sample rate in Hz.

    Raises:
        ValueError: If the waveform or the sample rate is invalid.
    """
    _check_waveform(waveform, sample_rate)
    _make_parent(path)
    # Scale by 32767 so +1.0 and -1.0 both fit without clipping asymmetry.
    pcm = np.round(waveform.astype(np.float64) * 32767).astype('<i2')
    with wave.open(path, 'wb') as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(pcm.tobytes())
