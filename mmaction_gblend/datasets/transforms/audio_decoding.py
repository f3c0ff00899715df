"""Decode the audio of a sample over the time window of its video clips."""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ..errors import BadSampleError


def clip_time_windows(frame_inds: np.ndarray,
                      num_clips: int,
                      fps: float,
                      frame_interval: int = 1,
                      duration: Optional[float] = None
                      ) -> List[Tuple[float, float]]:
    """The time span, in seconds, of each sampled video clip.

    A clip spans from its first sampled frame's start to the end of the
    stretch its last sampled frame stands for (``frame_interval`` frames):
    8 frames taken every 2nd frame at 16 fps span 1 s. With ``duration``,
    every window is that long instead and centred on its clip.

    Args:
        frame_inds: Sampled frame indices, ``num_clips`` clips one after the
            other (as ``SampleFrames`` writes them).
        num_clips: Number of clips in ``frame_inds``.
        fps: Frame rate of the video.
        frame_interval: Frames between two sampled frames.
        duration: Optional fixed window length in seconds.

    Returns:
        One ``(start, end)`` pair per clip.
    """
    if fps <= 0:
        raise ValueError(f'fps must be positive, got {fps}')
    clips = np.asarray(frame_inds).reshape(num_clips, -1)
    windows = []
    for clip in clips:
        start = clip.min() / fps
        end = (clip.max() + frame_interval) / fps
        if duration is not None:
            centre = (start + end) / 2
            start, end = centre - duration / 2, centre + duration / 2
        windows.append((float(start), float(end)))
    return windows


def read_audio_track(path: str, sample_rate: int) -> np.ndarray:
    """Decode the whole audio track of a media file as mono float32.

    Args:
        path: A video with an audio stream, or an audio file (``.wav``,
            ``.m4a``, ...).
        sample_rate: Rate to resample to.

    Returns:
        The samples, shape ``(num_samples,)``.

    Raises:
        BadSampleError: the file is missing, empty, unreadable or has no
            audio stream.
    """
    if not osp.isfile(path):
        raise BadSampleError(path, 'file not found')
    if os.path.getsize(path) == 0:
        raise BadSampleError(path, 'file is empty')
    import decord
    try:
        reader = decord.AudioReader(path, sample_rate=sample_rate, mono=True)
        samples = reader[:].asnumpy()
    except (decord.DECORDError, RuntimeError) as err:
        # decord raises DECORDError, or a bare RuntimeError for some damage
        message = str(err)
        if "Can't find audio stream" in message:
            raise BadSampleError(path, 'no audio stream') from None
        # decord prefixes its messages with a timestamp and source location
        raise BadSampleError(
            path, f'cannot decode audio ({message.split(": ", 1)[-1]})'
        ) from None
    return np.ascontiguousarray(samples.reshape(-1), dtype=np.float32)


@TRANSFORMS.register_module()
class DecodeAudioTrack(BaseTransform):
    """Decode the audio that plays during each sampled video clip.

    The audio comes from ``results['audio_path']`` when the dataset sets it
    (a separate ``.wav`` file, say), else from the audio track of the video
    file itself (``results['filename']``). Place it after the frame sampler
    (``SampleFrames``) and ``DecordInit``, which give ``frame_inds``,
    ``num_clips`` and ``avg_fps``.

    Bad input is an error naming the file: missing, empty or undecodable
    file, no audio stream, non-finite samples, or a track that ends more
    than ``max_shortfall`` seconds before (or starts after) the window.
    A shortfall within ``max_shortfall`` (AAC priming and rounding) is
    filled by mirroring the adjacent samples, never with zeros. A sample
    the dataset marked ``audio_missing`` (its ``missing_audio='silence'``
    policy, which counts and logs them) gets silence.

    Required keys: ``frame_inds``, ``num_clips``, ``avg_fps``, ``filename``
    (or ``audio_path``); optional: ``frame_interval``, ``audio_missing``.
    Added keys: ``audios`` (float32, ``(num_clips, num_samples)``),
    ``audio_sample_rate``.

    Args:
        sample_rate: Rate to resample the audio to, in Hz.
        duration: Window length in seconds, centred on each clip; ``None``
            takes the clip's own span.
        max_shortfall: Longest stretch, in seconds, of the window that may
            lie outside the track.
        fit_in_track: Slide a window that runs past either end of the track
            back inside it (when the track is at least that long), instead
            of treating the overrun as a shortfall. For fixed ``duration``
            windows around sparsely sampled frames (TSN), whose first and
            last frames sit near the ends of the video.
        single_window: One window for the whole sample, spanning all its
            clips (with ``duration``: centred on that span), instead of one
            per clip; ``audios`` is then ``(1, num_samples)``. For models
            that hear the whole clip once while seeing several frames
            (TSN-style sampling).
    """

    def __init__(self,
                 sample_rate: int = 16000,
                 duration: Optional[float] = None,
                 max_shortfall: float = 0.1,
                 fit_in_track: bool = False,
                 single_window: bool = False) -> None:
        if sample_rate <= 0:
            raise ValueError('DecodeAudioTrack.sample_rate must be positive, '
                             f'got {sample_rate}')
        if duration is not None and duration <= 0:
            raise ValueError('DecodeAudioTrack.duration must be positive, '
                             f'got {duration}')
        if max_shortfall < 0:
            raise ValueError('DecodeAudioTrack.max_shortfall must be >= 0, '
                             f'got {max_shortfall}')
        self.sample_rate = sample_rate
        self.duration = duration
        self.max_shortfall = max_shortfall
        self.fit_in_track = bool(fit_in_track)
        self.single_window = bool(single_window)

    def _window_samples(self, windows: List[Tuple[float, float]]) -> int:
        # One length for every clip, so the clips stack into one array.
        return max(1, int(round((windows[0][1] - windows[0][0]) *
                                self.sample_rate)))

    def _cut(self, track: np.ndarray, start: int, length: int,
             path: str) -> np.ndarray:
        if self.fit_in_track and len(track) >= length:
            start = min(max(start, 0), len(track) - length)
        before = max(0, -start)
        after = max(0, start + length - len(track))
        if max(before, after) > self.max_shortfall * self.sample_rate:
            raise BadSampleError(
                path, f'audio track is {len(track) / self.sample_rate:.3f} s '
                f'long, but the clip needs audio from '
                f'{start / self.sample_rate:.3f} s to '
                f'{(start + length) / self.sample_rate:.3f} s')
        if before >= len(track) or after >= len(track):
            raise BadSampleError(path, 'audio track is too short to mirror')
        piece = track[max(0, start):start + length]
        if before or after:
            piece = np.pad(piece, (before, after), mode='reflect')
        return piece

    def transform(self, results: Dict) -> Dict:
        path = results.get('audio_path') or results['filename']
        num_clips = results['num_clips']
        if self.single_window:  # all clips' frames as one clip
            num_clips = 1
        windows = clip_time_windows(
            results['frame_inds'],
            num_clips,
            results['avg_fps'],
            frame_interval=results.get('frame_interval', 1),
            duration=self.duration)
        length = self._window_samples(windows)
        if results.get('audio_missing', False):
            audios = np.zeros((len(windows), length), dtype=np.float32)
        else:
            track = read_audio_track(path, self.sample_rate)
            if not np.isfinite(track).all():
                raise BadSampleError(path, 'audio samples are not finite')
            audios = np.stack([
                self._cut(track, int(round(start * self.sample_rate)),
                          length, path) for start, _ in windows
            ])
        results['audios'] = audios
        results['audio_sample_rate'] = self.sample_rate
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sample_rate={self.sample_rate}, '
                f'duration={self.duration}, '
                f'max_shortfall={self.max_shortfall}, '
                f'fit_in_track={self.fit_in_track}, '
                f'single_window={self.single_window})')
