"""Decode the audio of a sample over the time window of its video clips.

A clip needs about a second of a track that may last ten, so the transform
seeks to the window and decodes only it (PyAV), instead of decoding and
resampling the whole track (decord's ``AudioReader`` can only do that, at
about 1.7 ms per second of audio here; the window costs ~1.5 ms in all).
The two give the same samples: both are FFmpeg's decoder and resampler.
Windows the seek cannot serve exactly (at the ends of the track, where the
shortfall rules apply) take the whole-track path.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...utils.choices import check_choice, check_positive
from ..errors import BadSampleError, check_sample_file


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
    check_positive('fps', fps)
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


def check_clip_in_video(results: Dict) -> None:
    """Raise if a sampled clip is longer than its video.

    The frame sampler then loops (or repeats) the video's frames, and an
    audio window taken from the sampled frames would be shorter than other
    samples' (a batch could not be stacked).

    Args:
        results: With ``frame_inds``, ``num_clips``, ``filename`` and
            optionally ``frame_interval``, ``total_frames``.

    Raises:
        BadSampleError: naming the video.
    """
    interval = results.get('frame_interval', 1)
    clips = np.asarray(results['frame_inds']).reshape(results['num_clips'],
                                                      -1)
    needed = clips.shape[1] * interval
    if (clips.max(axis=1) - clips.min(axis=1) + interval < needed).any():
        raise BadSampleError(
            results['filename'],
            f"video is {results.get('total_frames', '?')} frames long, "
            f'shorter than a clip of {clips.shape[1]} frames every '
            f'{interval} ({needed} frames): its frames were looped, and the '
            'audio window would be shorter than the other clips\' (set '
            'DecodeAudioTrack.duration for a fixed window)')


class AudioSegment(NamedTuple):
    """A stretch of a decoded track: ``samples[i]`` is the track's sample
    ``offset + i``."""
    samples: np.ndarray
    offset: int


AUDIO_BACKENDS = ('pyav', 'decord')

# AAC frames overlap (MDCT): the first frame decoded after a seek is not
# exact, so decoding starts this long before the window.
SEEK_PREROLL = 0.25


def read_audio_segment(path: str, sample_rate: int, start: float,
                       end: float) -> AudioSegment:
    """Decode the part of a file's audio track from ``start`` to ``end``.

    Seeks to ``start`` (less :data:`SEEK_PREROLL`) and decodes, downmixes to
    mono and resamples until ``end``, or to the end of the track.

    Args:
        path: A video with an audio stream, or an audio file.
        sample_rate: Rate to resample to.
        start: Start of the stretch, in seconds from the track's start.
        end: End of the stretch, in seconds.

    Returns:
        The decoded stretch, which covers ``[start, end]`` unless the track
        is shorter (check ``offset`` and the length).

    Raises:
        BadSampleError: the file is missing, empty, unreadable or has no
            audio stream.
    """
    check_sample_file(path)
    import av
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise BadSampleError(path, 'no audio stream')
            stream = container.streams.audio[0]
            origin = stream.start_time or 0
            seek_to = start - SEEK_PREROLL
            if seek_to > 0:
                container.seek(origin + int(seek_to / stream.time_base),
                               stream=stream)
            resampler = av.AudioResampler(
                format='flt', layout='mono', rate=sample_rate)
            chunks, first = [], None
            for frame in container.decode(stream):
                if first is None:
                    first = float((frame.pts - origin) * frame.time_base)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                if (frame.pts - origin) * frame.time_base > end:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as err:
        raise BadSampleError(path, f'cannot decode audio ({err})') from None
    if first is None:
        return AudioSegment(np.zeros(0, np.float32), 0)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return AudioSegment(
        np.ascontiguousarray(samples, dtype=np.float32),
        int(round(first * sample_rate)))


def read_audio_track(path: str,
                     sample_rate: int,
                     backend: str = 'pyav') -> np.ndarray:
    """Decode the whole audio track of a media file as mono float32.

    Args:
        path: A video with an audio stream, or an audio file (``.wav``,
            ``.m4a``, ...).
        sample_rate: Rate to resample to.
        backend: ``'pyav'`` or ``'decord'`` (its ``AudioReader``). They
            give the same samples when no resampling is needed; when it is,
            decord's lag the track by about 1 ms (17 samples at 16 kHz from
            44.1 kHz) and PyAV's do not.

    Returns:
        The samples, shape ``(num_samples,)``.

    Raises:
        BadSampleError: the file is missing, empty, unreadable or has no
            audio stream.
    """
    if check_choice('backend', backend, AUDIO_BACKENDS) == 'pyav':
        return read_audio_segment(path, sample_rate, 0.0, math.inf).samples
    check_sample_file(path)
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
    than ``max_shortfall`` seconds before (or starts after) the window;
    without ``duration``, also a video shorter than a clip (see
    :func:`check_clip_in_video`). A shortfall within ``max_shortfall``
    (AAC priming and rounding) is filled by mirroring the adjacent
    samples, never with zeros. A sample
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
        backend: ``'pyav'`` (default) decodes only the stretch of the track
            the windows need, seeking to it; ``'decord'`` decodes the whole
            track with decord's ``AudioReader`` for every sample (about 10x
            slower on 10 s clips; see :func:`read_audio_track` for how the
            two differ).
    """

    def __init__(self,
                 sample_rate: int = 16000,
                 duration: Optional[float] = None,
                 max_shortfall: float = 0.1,
                 fit_in_track: bool = False,
                 single_window: bool = False,
                 backend: str = 'pyav') -> None:
        check_choice('DecodeAudioTrack.backend', backend, AUDIO_BACKENDS)
        check_positive('DecodeAudioTrack.sample_rate', sample_rate)
        check_positive('DecodeAudioTrack.duration', duration, optional=True)
        if max_shortfall < 0:
            raise ValueError('DecodeAudioTrack.max_shortfall must be >= 0, '
                             f'got {max_shortfall}')
        self.sample_rate = sample_rate
        self.duration = duration
        self.max_shortfall = max_shortfall
        self.fit_in_track = bool(fit_in_track)
        self.single_window = bool(single_window)
        self.backend = backend

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

    def _decode_windows(self, path: str, starts: List[int],
                        length: int) -> np.ndarray:
        """The windows ``[start, start + length)`` (in samples) of the
        track, decoding only their stretch where it lies inside it."""
        rate = self.sample_rate
        if self.backend == 'decord':
            return self._cut_all(read_audio_track(path, rate, 'decord'),
                                 starts, length, path)
        segment = read_audio_segment(path, rate, min(starts) / rate,
                                     (max(starts) + length) / rate)
        inside = all(segment.offset <= s and
                     s + length <= segment.offset + len(segment.samples)
                     for s in starts)
        if not inside:  # an end of the track: its length decides (_cut)
            return self._cut_all(read_audio_track(path, rate), starts,
                                 length, path)
        return self._cut_all(segment.samples,
                             [s - segment.offset for s in starts], length,
                             path)

    def _cut_all(self, track: np.ndarray, starts: List[int], length: int,
                 path: str) -> np.ndarray:
        if not np.isfinite(track).all():
            raise BadSampleError(path, 'audio samples are not finite')
        return np.stack([self._cut(track, s, length, path) for s in starts])

    def transform(self, results: Dict) -> Dict:
        path = results.get('audio_path') or results['filename']
        num_clips = results['num_clips']
        if self.single_window:  # all clips' frames as one clip
            num_clips = 1
        elif self.duration is None:  # windows as long as the clips
            check_clip_in_video(results)
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
            starts = [int(round(start * self.sample_rate))
                      for start, _ in windows]
            audios = self._decode_windows(path, starts, length)
        results['audios'] = audios
        results['audio_sample_rate'] = self.sample_rate
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sample_rate={self.sample_rate}, '
                f'duration={self.duration}, '
                f'max_shortfall={self.max_shortfall}, '
                f'fit_in_track={self.fit_in_track}, '
                f'single_window={self.single_window}, '
                f'backend={self.backend!r})')
