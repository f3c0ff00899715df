"""Log-mel spectrograms of decoded audio (librosa): a function, a transform.

The defaults reproduce the features of mmaction2's
``tools/data/build_audio_features.py`` (16 kHz, 512-point FFT, hop 256, 80 mel
bins from 125 to 7600 Hz, magnitude spectrum, ``20*log10`` minus 20 dB,
mapped from [-100, 0] dB to [0, 1]), so audio models trained on mmaction2's
features see the same scale. mmaction2 computes the STFT with ``lws``; we use
``librosa.stft``, which agrees up to the window's normalisation (not
bit-identical). The G-Blend paper's audio input is 100 frames x 40 mel bins:
``n_mels=40`` with ``num_frames=100`` and a window of about 1.6 s at hop 256.
"""
import functools
import inspect
from typing import Dict, Optional

import librosa
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...utils.choices import check_choice, check_positive
from ..errors import BadSampleError

SCALES = ('normalized_db', 'log')


@functools.lru_cache(maxsize=16)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
               fmax: Optional[float]) -> np.ndarray:
    return librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
        fmax=fmax).astype(np.float32)


@functools.lru_cache(maxsize=None)
def warm_up_librosa() -> None:
    """Pay librosa's first-call cost (lazy imports and compilation, about
    1-3 s) once, in the process that builds the pipeline: data-loader
    workers forked from it inherit the warm state instead of each paying it
    again, which matters for loaders that start workers every time (G-Blend's
    held-out measurements)."""
    librosa.stft(np.zeros(512, dtype=np.float32), n_fft=256, hop_length=128)


def log_mel_spectrogram(waveform: np.ndarray,
                        sample_rate: int = 16000,
                        n_fft: int = 512,
                        hop_length: int = 256,
                        win_length: Optional[int] = None,
                        n_mels: int = 80,
                        fmin: float = 125.0,
                        fmax: Optional[float] = 7600.0,
                        power: float = 1.0,
                        scale: str = 'normalized_db') -> np.ndarray:
    """Compute log-mel features of one or more waveforms.

    Args:
        waveform: Samples with time last, shape ``(..., num_samples)``.
        sample_rate: Sampling rate of ``waveform`` in Hz.
        n_fft: FFT size.
        hop_length: Samples between frames.
        win_length: Window length; ``None`` means ``n_fft``.
        n_mels: Number of mel bins.
        fmin: Lowest mel frequency in Hz.
        fmax: Highest mel frequency in Hz; ``None`` means Nyquist.
        power: 1 for the magnitude spectrum (mmaction2), 2 for power.
        scale: ``'normalized_db'``: ``20*log10(max(x, 1e-5)) - 20`` dB mapped
            from [-100, 0] to [0, 1] (mmaction2's features, for ``power=1``);
            ``'log'``: ``log(x + 1e-6)``.

    Returns:
        float32 array of shape ``(..., num_frames, n_mels)``, time first as
        in mmaction2's features, with
        ``num_frames = 1 + num_samples // hop_length`` (centred frames).
    """
    check_choice('scale', scale, SCALES)
    waveform = np.asarray(waveform, dtype=np.float32)
    spec = np.abs(
        librosa.stft(
            waveform, n_fft=n_fft, hop_length=hop_length,
            win_length=win_length, center=True))
    if power != 1.0:
        spec = spec**power
    mel = np.matmul(_mel_basis(sample_rate, n_fft, n_mels, fmin, fmax), spec)
    if scale == 'normalized_db':
        db = 20.0 * np.log10(np.maximum(mel, 1e-5)) - 20.0
        feats = np.clip((db + 100.0) / 100.0, 0.0, 1.0)
    else:
        feats = np.log(mel + 1e-6)
    return np.ascontiguousarray(np.swapaxes(feats, -1, -2), dtype=np.float32)


#: The settings of :func:`log_mel_spectrogram` that
#: :class:`LogMelSpectrogram` takes, with the function's defaults (the
#: sample rate comes with each sample).
_TRANSFORM_PARAMS = {
    name: param.default
    for name, param in inspect.signature(
        log_mel_spectrogram).parameters.items()
    if name not in ('waveform', 'sample_rate')
}


@TRANSFORMS.register_module()
class LogMelSpectrogram(BaseTransform):
    """Turn decoded waveforms into log-mel spectrograms.

    Required keys: ``audios`` (``(num_clips, num_samples)`` float32, from
    :class:`DecodeAudioTrack`), ``audio_sample_rate``.

    Modified keys: ``audios`` becomes ``(num_clips, num_frames, n_mels)``.

    Args:
        num_frames: If given, the number of frames to keep: a longer
            spectrogram is cropped around its centre; a shorter one is an
            error (lengthen the audio window rather than pad with zeros).
        **params: ``n_fft``, ``hop_length``, ``win_length``, ``n_mels``,
            ``fmin``, ``fmax``, ``power``, ``scale``: as for
            :func:`log_mel_spectrogram`, with its defaults.
    """

    def __init__(self,
                 *,
                 num_frames: Optional[int] = None,
                 **params) -> None:
        unknown = sorted(set(params) - set(_TRANSFORM_PARAMS))
        if unknown:
            raise TypeError(f'LogMelSpectrogram got unexpected arguments '
                            f'{unknown}; it takes num_frames and '
                            f'{list(_TRANSFORM_PARAMS)}')
        self.params = dict(_TRANSFORM_PARAMS, **params)
        check_choice('LogMelSpectrogram.scale', self.params['scale'], SCALES)
        check_positive('LogMelSpectrogram.num_frames', num_frames,
                       optional=True)
        self.num_frames = num_frames
        warm_up_librosa()

    def transform(self, results: Dict) -> Dict:
        source = results.get('audio_path', results.get('filename'))
        if not np.isfinite(results['audios']).all():
            raise BadSampleError(source, 'audio samples are not finite')
        feats = log_mel_spectrogram(
            results['audios'],
            sample_rate=int(results['audio_sample_rate']),
            **self.params)
        if self.num_frames is not None:
            total = feats.shape[-2]
            if total < self.num_frames:
                raise BadSampleError(
                    source, f'the audio window gives {total} log-mel frames, '
                    f'fewer than num_frames={self.num_frames}; lengthen the '
                    'window (DecodeAudioTrack.duration) or lower num_frames')
            start = (total - self.num_frames) // 2
            feats = feats[..., start:start + self.num_frames, :]
        if not np.isfinite(feats).all():
            raise BadSampleError(source, 'log-mel features are not finite')
        results['audios'] = feats
        return results

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.params.items())
        return (f'{self.__class__.__name__}({args}, '
                f'num_frames={self.num_frames})')
