"""Round trips of the MP4/WAV writer through decord, PyAV and ``wave``."""
import hashlib
import wave

import av
import decord
import numpy as np
import pytest

from mmaction_gblend.utils import write_video_with_audio, write_wav

SAMPLE_RATE = 16000


def _frames(num_frames=12, height=32, width=64):
    """Frames whose brightness encodes the frame index (20, 40, ...)."""
    levels = 20 + 15 * np.arange(num_frames, dtype=np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None],
                             (num_frames, height, width, 3)).copy()
    # A red left half, so swapped channels or a mirrored image would show.
    frames[:, :, :width // 2, 0] = 220
    return frames


def _sine(freq, duration, amplitude=0.5):
    t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_freq(samples, sample_rate=SAMPLE_RATE):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return np.fft.rfftfreq(samples.size, 1 / sample_rate)[spectrum.argmax()]


def _md5(path):
    with open(path, 'rb') as f:
        return hashlib.md5(f.read()).hexdigest()


def test_video_and_audio_round_trip(tmp_path):
    frames = _frames(num_frames=12, height=32, width=64)
    fps = 6
    path = str(tmp_path / 'clip.mp4')
    write_video_with_audio(path, frames, fps, _sine(1000.0, 2.0))

    reader = decord.VideoReader(path)
    assert len(reader) == 12
    assert reader.get_avg_fps() == pytest.approx(fps)
    decoded = reader.get_batch(list(range(12))).asnumpy()
    assert decoded.shape == (12, 32, 64, 3)
    # Lossy, but each frame's brightness and the red half must survive.
    right = decoded[:, :, 40:].astype(float).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(right, frames[:, 0, -1, 1], atol=4)
    assert decoded[:, :, :24, 0].mean() > 200
    assert decoded[:, :, 40:, 0].mean() < 200

    audio = decord.AudioReader(path, sample_rate=SAMPLE_RATE, mono=True)
    samples = audio[:].asnumpy()
    assert samples.shape[0] == 1
    # AAC pads a little (priming + last frame); the video lasts 2 s too.
    assert samples.shape[1] / SAMPLE_RATE == pytest.approx(2.0, abs=0.1)
    assert _dominant_freq(samples[0]) == pytest.approx(1000.0, abs=5.0)
    assert np.abs(samples).max() == pytest.approx(0.5, abs=0.1)


def test_streams_and_codecs(tmp_path):
    path = str(tmp_path / 'clip.mp4')
    write_video_with_audio(path, _frames(), 8, _sine(440.0, 1.5))
    with av.open(path) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        audio = container.streams.audio[0]
        assert audio.codec_context.sample_rate == SAMPLE_RATE
        assert audio.codec_context.channels == 1
        assert container.streams.video[0].codec_context.pix_fmt == 'yuv420p'
    assert kinds == {'video': 'h264', 'audio': 'aac'}


def test_video_only_file_has_no_audio_stream(tmp_path):
    path = str(tmp_path / 'sub' / 'silent.mp4')  # parent made by the writer
    write_video_with_audio(path, _frames(num_frames=5), 10)
    assert len(decord.VideoReader(path)) == 5
    with av.open(path) as container:
        assert len(container.streams.audio) == 0
    with pytest.raises(decord.DECORDError, match='audio stream'):
        decord.AudioReader(path, sample_rate=SAMPLE_RATE, mono=True)


def test_identical_inputs_give_identical_bytes(tmp_path):
    frames = np.random.default_rng(0).integers(
        0, 256, size=(10, 32, 64, 3), dtype=np.uint8)
    waveform = _sine(700.0, 1.0)
    paths = [str(tmp_path / f'{name}.mp4') for name in 'abc']
    write_video_with_audio(paths[0], frames, 10, waveform)
    write_video_with_audio(paths[1], frames, 10, waveform)
    write_video_with_audio(paths[2], frames, 10, waveform, crf=35)
    assert _md5(paths[0]) == _md5(paths[1])
    assert _md5(paths[0]) != _md5(paths[2])


def test_wav_round_trip(tmp_path):
    waveform = _sine(523.0, 0.75, amplitude=0.9)
    waveform[:3] = [1.0, -1.0, 0.0]
    path = str(tmp_path / 'deep' / 'tone.wav')
    write_wav(path, waveform, sample_rate=SAMPLE_RATE)
    with wave.open(path, 'rb') as f:
        assert f.getnchannels() == 1
        assert f.getsampwidth() == 2
        assert f.getframerate() == SAMPLE_RATE
        assert f.getnframes() == waveform.size
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype='<i2')
    np.testing.assert_allclose(pcm / 32767.0, waveform, atol=1 / 32767)
    assert _dominant_freq(pcm.astype(float)) == pytest.approx(523.0, abs=3)


@pytest.mark.parametrize('frames, fps, waveform, match', [
    (np.zeros((4, 32, 64, 3), np.float32), 8, None, 'uint8'),
    (np.zeros((32, 64, 3), np.uint8), 8, None, 'shape'),
    (np.zeros((4, 32, 64, 4), np.uint8), 8, None, 'shape'),
    (np.zeros((4, 31, 64, 3), np.uint8), 8, None, 'even'),
    (np.zeros((4, 32, 63, 3), np.uint8), 8, None, 'even'),
    (np.zeros((0, 32, 64, 3), np.uint8), 8, None, 'empty'),
    ([[0]], 8, None, 'numpy'),
    (np.zeros((4, 32, 64, 3), np.uint8), 0, None, 'fps'),
    (np.zeros((4, 32, 64, 3), np.uint8), 8, np.zeros(100), 'float32'),
    (np.zeros((4, 32, 64, 3), np.uint8), 8, np.zeros(
        (2, 100), np.float32), 'mono'),
    (np.zeros((4, 32, 64, 3), np.uint8), 8, np.full(100, 1.5,
                                                    np.float32), r'\[-1, 1\]'),
    (np.zeros((4, 32, 64, 3), np.uint8), 8, np.array([0.0, np.nan],
                                                     np.float32), 'NaN'),
])
def test_invalid_video_inputs_raise(tmp_path, frames, fps, waveform, match):
    path = tmp_path / 'bad.mp4'
    with pytest.raises(ValueError, match=match):
        write_video_with_audio(str(path), frames, fps, waveform)
    assert not path.exists()  # validated before anything is written


def test_invalid_sample_rate_and_crf_raise(tmp_path):
    frames = _frames(num_frames=2)
    with pytest.raises(ValueError, match='sample rate'):
        write_video_with_audio(
            str(tmp_path / 'a.mp4'),
            frames,
            8,
            _sine(440, 0.1),
            sample_rate=12345)
    with pytest.raises(ValueError, match='crf'):
        write_video_with_audio(str(tmp_path / 'b.mp4'), frames, 8, crf=60)


@pytest.mark.parametrize('waveform, sample_rate', [
    (np.zeros(10), SAMPLE_RATE),
    (np.zeros((10, 1), np.float32), SAMPLE_RATE),
    (np.full(10, -2.0, np.float32), SAMPLE_RATE),
    (np.zeros(10, np.float32), 0),
])
def test_invalid_wav_inputs_raise(tmp_path, waveform, sample_rate):
    path = tmp_path / 'bad.wav'
    with pytest.raises(ValueError):
        write_wav(str(path), waveform, sample_rate=sample_rate)
    assert not path.exists()
