"""DecodeAudioTrack decodes only the clip's stretch of the track (PyAV,
seeking) and gives what decoding the whole track gives."""
import numpy as np
import pytest

from mmaction_gblend.datasets import BadSampleError
from mmaction_gblend.datasets.transforms import (DecodeAudioTrack,
                                                 log_mel_spectrogram)
from mmaction_gblend.datasets.transforms.audio_decoding import (
    read_audio_segment, read_audio_track)
from mmaction_gblend.utils import write_video_with_audio
from helpers import dominant_frequency, tone

SR = 16000
FPS = 16
FREQS = (300., 500., 700., 900., 1100., 1300., 1500., 1700.)  # 1 s each


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """8 s clips with a tone per second, at the target rate and at 44.1 kHz
    (which must be resampled)."""
    root = tmp_path_factory.mktemp('window')
    frames = np.zeros((8 * FPS, 32, 32, 3), dtype=np.uint8)
    paths = {}
    for rate in (SR, 44100):
        paths[rate] = str(root / f'tone{rate}.mp4')
        write_video_with_audio(paths[rate], frames, FPS,
                               tone(8.0, FREQS, sample_rate=rate), rate)
    return paths


def decode(path, first_frame, backend, num_frames=16, **kwargs):
    """One clip of ``num_frames`` frames (1 s) from ``first_frame``."""
    transform = DecodeAudioTrack(sample_rate=SR, backend=backend, **kwargs)
    results = dict(filename=path, num_clips=1, avg_fps=float(FPS),
                   frame_inds=np.arange(first_frame,
                                        first_frame + num_frames))
    return transform(results)['audios']


@pytest.mark.parametrize('first_frame', [0, 3, 44, 77, 112])
def test_window_equals_the_whole_track_at_the_source_rate(
        clips, first_frame):
    # from the start, inside, and ending exactly at the end of the track
    window = decode(clips[SR], first_frame, 'pyav')
    whole = decode(clips[SR], first_frame, 'decord')
    assert window.shape == whole.shape == (1, SR)
    # the same decoder; float rounding of the sample format apart
    np.testing.assert_allclose(window, whole, rtol=0, atol=1e-6)
    second = (first_frame + 8) // FPS  # the tone at the clip's middle
    assert dominant_frequency(window[0]) == pytest.approx(
        FREQS[second], abs=10)


def test_only_the_window_is_decoded(clips):
    segment = read_audio_segment(clips[SR], SR, 4.0, 5.0)
    track = read_audio_track(clips[SR], SR)
    # the pre-roll, the window and about a frame after it: not 8 s
    assert segment.offset <= 4 * SR
    assert segment.offset + len(segment.samples) >= 5 * SR
    assert len(segment.samples) < 1.5 * SR < len(track) / 5
    np.testing.assert_array_equal(
        segment.samples[4 * SR - segment.offset:5 * SR - segment.offset],
        track[4 * SR:5 * SR])


@pytest.mark.parametrize('kwargs, first_frame', [
    (dict(), 113),  # 1/16 s past the end: mirrored (max_shortfall 0.1 s)
    (dict(duration=1.5, fit_in_track=True), 118),  # slid back inside
    (dict(duration=1.5, fit_in_track=True), -4),
])
def test_windows_at_the_ends_follow_the_whole_track_rules(
        clips, kwargs, first_frame):
    window = decode(clips[SR], first_frame, 'pyav', **kwargs)
    whole = decode(clips[SR], first_frame, 'decord', **kwargs)
    np.testing.assert_allclose(window, whole, rtol=0, atol=1e-6)


def test_a_window_past_the_end_names_the_file(clips):
    for backend in ('pyav', 'decord'):
        with pytest.raises(BadSampleError, match='tone16000.mp4: audio track '
                           'is 8.0'):
            decode(clips[SR], 120, backend)


@pytest.mark.parametrize('first_frame', [20, 70])
def test_resampled_window_has_the_whole_track_log_mel(clips, first_frame):
    # The resampler starts on the window's first decoded frame, whose time
    # is within half an output sample of the whole track's sample grid:
    # the waveforms differ by that sub-sample shift, the log-mel does not.
    window = decode(clips[44100], first_frame, 'pyav')[0]
    start = first_frame * SR // FPS
    whole = read_audio_track(clips[44100], SR)[start:start + SR]
    by_decord = read_audio_track(clips[44100], SR, 'decord')[start:start + SR]
    mel = log_mel_spectrogram(window, SR)
    difference = np.abs(mel - log_mel_spectrogram(whole, SR)).mean()
    decoders = np.abs(log_mel_spectrogram(by_decord, SR) -
                      log_mel_spectrogram(whole, SR)).mean()
    assert difference < 0.002 * (mel.max() - mel.min())
    assert difference < decoders  # below what decord and PyAV differ by
    second = (first_frame + 8) // FPS
    assert dominant_frequency(window) == pytest.approx(FREQS[second], abs=10)


def test_the_backend_is_checked():
    with pytest.raises(ValueError, match='DecodeAudioTrack.backend'):
        DecodeAudioTrack(backend='ffmpeg')
    with pytest.raises(ValueError, match="backend must be one of"):
        read_audio_track('any.mp4', SR, backend='ffmpeg')
