"""DecodeAudioTrack, LogMelSpectrogram and LoadLogMelFeature on real files."""
import librosa
import numpy as np
import pytest
from mmaction.registry import TRANSFORMS

from mmaction_gblend.datasets import BadSampleError
from mmaction_gblend.datasets.transforms import (DecodeAudioTrack,
                                                 LoadLogMelFeature,
                                                 LogMelSpectrogram,
                                                 clip_time_windows,
                                                 log_mel_spectrogram)
from mmaction_gblend.utils import write_wav
from helpers import dominant_frequency, tone

SR = 16000


def clip_results(filename, frame_inds, num_clips=1, fps=16.0,
                 frame_interval=1, **extra):
    return dict(filename=filename, frame_inds=np.asarray(frame_inds),
                num_clips=num_clips, avg_fps=fps,
                frame_interval=frame_interval, **extra)


def test_clip_time_windows():
    # 8 frames every 2nd at 16 fps: one second from frame 4 on
    inds = np.arange(4, 20, 2)
    assert clip_time_windows(inds, 1, 16.0, frame_interval=2) == [(0.25,
                                                                  1.25)]
    two = np.concatenate([np.arange(0, 4), np.arange(16, 20)])
    assert clip_time_windows(two, 2, 16.0) == [(0.0, 0.25), (1.0, 1.25)]
    # a fixed duration is centred on the clip
    assert clip_time_windows(inds, 1, 16.0, 2, duration=0.5) == [(0.5, 1.0)]
    with pytest.raises(ValueError, match='fps'):
        clip_time_windows(inds, 1, 0.0)


def test_decode_audio_track_takes_the_clip_window(make_clip):
    # the first second plays 440 Hz, the second 1000 Hz
    path = make_clip(seconds=2.0, freqs=(440.0, 1000.0))
    decode = TRANSFORMS.build(dict(type='DecodeAudioTrack', sample_rate=SR))
    first = decode(clip_results(path, np.arange(0, 16, 2), frame_interval=2))
    second = decode(
        clip_results(path, np.arange(16, 32, 2), frame_interval=2))
    assert first['audios'].shape == (1, SR)
    assert first['audios'].dtype == np.float32
    assert first['audio_sample_rate'] == SR
    assert abs(dominant_frequency(first['audios'][0]) - 440) < 10
    assert abs(dominant_frequency(second['audios'][0]) - 1000) < 10


def test_decode_audio_track_several_clips_and_duration(make_clip):
    path = make_clip(seconds=2.0, freqs=(300.0, 600.0, 900.0, 1200.0))
    decode = DecodeAudioTrack(sample_rate=SR, duration=0.25)
    inds = np.concatenate([np.arange(0, 8), np.arange(24, 32)])
    out = decode(clip_results(path, inds, num_clips=2))
    assert out['audios'].shape == (2, SR // 4)
    # clip 1 is centred at 0.25 s (300 Hz), clip 2 at 1.75 s (1200 Hz)
    assert abs(dominant_frequency(out['audios'][0]) - 300) < 20
    assert abs(dominant_frequency(out['audios'][1]) - 1200) < 20


def test_decode_audio_track_reads_a_separate_wav(make_clip, tmp_path):
    video = make_clip(freqs=(440.0, ))
    wav = str(tmp_path / 'clip.wav')
    write_wav(wav, tone(2.0, (2000.0, )), SR)
    out = DecodeAudioTrack()(
        clip_results(video, np.arange(8), audio_path=wav))
    assert abs(dominant_frequency(out['audios'][0]) - 2000) < 20


def test_small_shortfall_is_mirrored_not_zero_filled(make_clip):
    # audio 1.97 s under a 2 s video: the last window runs 30 ms past it
    path = make_clip(seconds=2.0, audio_seconds=1.97, freqs=(440.0, ))
    out = DecodeAudioTrack(max_shortfall=0.1)(
        clip_results(path, np.arange(16, 32)))
    tail = out['audios'][0, -800:]
    assert np.abs(tail).max() > 0.1  # no run of zeros at the end


@pytest.mark.parametrize('kind', ['missing', 'empty', 'truncated', 'silent'])
def test_bad_media_names_the_file(make_clip, tmp_path, kind):
    if kind == 'missing':
        path = str(tmp_path / 'nope.mp4')
        reason = 'not found'
    elif kind == 'empty':
        path = str(tmp_path / 'empty.mp4')
        open(path, 'wb').close()
        reason = 'empty'
    elif kind == 'truncated':
        path = make_clip('truncated.mp4')
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 2])
        reason = 'cannot decode audio'
    else:
        path = make_clip('silent.mp4', freqs=None)
        reason = 'no audio stream'
    with pytest.raises(BadSampleError, match=reason) as info:
        DecodeAudioTrack()(clip_results(path, np.arange(8)))
    assert str(info.value).startswith(path)
    assert info.value.path == path


def test_fit_in_track_slides_end_windows_inside(make_clip):
    # 4 quarters at 300/600/900/1200 Hz; 1 s windows centred on the first
    # and the last frame run 0.5 s past either end
    path = make_clip(seconds=2.0, freqs=(300.0, 600.0, 900.0, 1200.0))
    inds = np.array([0, 31])
    with pytest.raises(BadSampleError, match='needs audio from'):
        DecodeAudioTrack(duration=1.0)(clip_results(path, inds, 2))
    out = DecodeAudioTrack(duration=1.0, fit_in_track=True)(
        clip_results(path, inds, 2))
    assert out['audios'].shape == (2, SR)
    # the first window is the track's first second, the last its last
    head, tail = out['audios'][:, :SR // 4], out['audios'][:, -SR // 4:]
    assert abs(dominant_frequency(head[0]) - 300) < 20
    assert abs(dominant_frequency(tail[0]) - 600) < 20
    assert abs(dominant_frequency(head[1]) - 900) < 20
    assert abs(dominant_frequency(tail[1]) - 1200) < 20
    # a track shorter than the window still is an error
    short = make_clip('short.mp4', seconds=2.0, audio_seconds=0.5)
    with pytest.raises(BadSampleError, match='long'):
        DecodeAudioTrack(duration=1.0, fit_in_track=True)(
            clip_results(short, inds, 2))


def test_single_window_spans_every_clip(make_clip):
    path = make_clip(seconds=2.0, freqs=(300.0, 600.0, 900.0, 1200.0))
    # TSN-style: 3 single frames across the video
    inds = np.array([2, 14, 26])
    per_clip = DecodeAudioTrack(duration=0.25)(clip_results(path, inds, 3))
    assert per_clip['audios'].shape == (3, SR // 4)
    one = DecodeAudioTrack(single_window=True)(clip_results(path, inds, 3))
    # from frame 2 (0.125 s) to the end of frame 26 (1.6875 s)
    assert one['audios'].shape == (1, int(round(1.5625 * SR)))
    centred = DecodeAudioTrack(duration=1.0, single_window=True)(
        clip_results(path, inds, 3))
    assert centred['audios'].shape == (1, SR)
    # centred on 0.906 s: from 0.406 s (300 Hz until 0.5 s) to 1.406 s
    # (900 Hz from 1.0 s)
    assert abs(dominant_frequency(centred['audios'][0, :SR // 16]) -
               300) < 20
    assert abs(dominant_frequency(centred['audios'][0, -SR // 8:]) -
               900) < 20


def test_audio_shorter_than_window_is_an_error(make_clip):
    path = make_clip(seconds=2.0, audio_seconds=1.0)
    with pytest.raises(BadSampleError, match=r'track is 1\.\d+ s long') as e:
        DecodeAudioTrack()(clip_results(path, np.arange(16, 32)))
    assert path in str(e.value)


def test_audio_marked_missing_gets_silence(make_clip):
    path = make_clip(freqs=None)
    out = DecodeAudioTrack()(
        clip_results(path, np.arange(8), audio_missing=True))
    assert out['audios'].shape == (1, SR // 2)
    assert not out['audios'].any()


@pytest.mark.parametrize('kwargs', [
    dict(sample_rate=0), dict(duration=-1.0), dict(max_shortfall=-0.1)
])
def test_decode_audio_track_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='DecodeAudioTrack'):
        DecodeAudioTrack(**kwargs)


def test_log_mel_matches_librosa_reference():
    wave = tone(1.0, (440.0, ))
    feats = log_mel_spectrogram(wave, SR, n_fft=512, hop_length=160,
                                n_mels=40)
    assert feats.shape == (1 + SR // 160, 40)
    reference = librosa.feature.melspectrogram(
        y=wave, sr=SR, n_fft=512, hop_length=160, n_mels=40, fmin=125.0,
        fmax=7600.0, power=1.0)
    reference = np.clip(
        (20 * np.log10(np.maximum(reference, 1e-5)) - 20 + 100) / 100, 0, 1)
    np.testing.assert_allclose(feats, reference.T, atol=1e-4)
    # the tone's energy sits in the mel bin whose centre is nearest 440 Hz
    centres = librosa.mel_frequencies(n_mels=42, fmin=125.0, fmax=7600.0)[1:-1]
    assert feats.mean(axis=0).argmax() == np.abs(centres - 440).argmin()


def test_log_mel_batches_and_log_scale():
    waves = np.stack([tone(0.5, (300.0, )), tone(0.5, (3000.0, ))])
    batched = log_mel_spectrogram(waves, SR, scale='log')
    assert batched.shape == (2, 1 + 8000 // 256, 80)
    np.testing.assert_allclose(
        batched[1], log_mel_spectrogram(waves[1], SR, scale='log'), atol=1e-5)
    assert batched[0].mean(0).argmax() < batched[1].mean(0).argmax()
    with pytest.raises(ValueError, match='scale'):
        log_mel_spectrogram(waves, SR, scale='linear')


def test_log_mel_transform_crops_to_num_frames_and_checks():
    transform = TRANSFORMS.build(
        dict(type='LogMelSpectrogram', hop_length=160, n_mels=40,
             num_frames=100))
    out = transform(dict(audios=np.stack([tone(1.0, (440.0, ))] * 2),
                         audio_sample_rate=SR, filename='a.mp4'))
    assert out['audios'].shape == (2, 100, 40)
    with pytest.raises(BadSampleError, match='fewer than num_frames'):
        transform(dict(audios=tone(0.5, (440.0, ))[None],
                       audio_sample_rate=SR, filename='short.mp4'))
    nan = tone(1.0, (440.0, ))[None].copy()
    nan[0, 100] = np.nan
    with pytest.raises(BadSampleError,
                       match='nan.mp4: audio samples are not finite'):
        transform(dict(audios=nan, audio_sample_rate=SR,
                       filename='nan.mp4'))
    assert 'num_frames=100' in repr(transform)
    with pytest.raises(ValueError, match='LogMelSpectrogram.scale'):
        LogMelSpectrogram(scale='linear')


def feature_results(path, frame_inds, total_frames, num_clips=1):
    return dict(audio_path=path, frame_inds=np.asarray(frame_inds),
                num_clips=num_clips, total_frames=total_frames)


def test_load_log_mel_feature_cuts_each_clip(tmp_path):
    path = str(tmp_path / 'feat.npy')
    # row r holds the value r, so the rows taken can be read off
    np.save(path, np.repeat(np.arange(200, dtype=np.float32)[:, None], 8, 1))
    load = TRANSFORMS.build(dict(type='LoadLogMelFeature', num_frames=50))
    inds = np.concatenate([np.arange(0, 10), np.arange(50, 60)])
    out = load(feature_results(path, inds, total_frames=100, num_clips=2))
    assert out['audios'].shape == (2, 50, 8)
    assert out['audios'][0, 0, 0] == 0 and out['audios'][1, 0, 0] == 100
    # a clip near the end is moved back rather than padded
    out = load(feature_results(path, np.arange(90, 100), total_frames=100))
    assert out['audios'][0, -1, 0] == 199


@pytest.mark.parametrize('content,reason', [
    (None, 'not found'),
    (b'', 'empty'),
    (np.zeros(10, np.float32), r'shape \(num_frames, num_bins\)'),
    (np.full((80, 4), np.nan, np.float32), 'NaN or inf'),
    (np.zeros((20, 4), np.float32), 'fewer than the num_frames=50'),
    (b'garbage bytes', 'cannot read features'),
    (np.array([['a', 'b']] * 60), 'expected real-valued features'),
    (np.full((80, 4), 1e39), 'NaN or inf'),  # inf once cast to float32
])
def test_load_log_mel_feature_bad_files(tmp_path, content, reason):
    path = str(tmp_path / 'bad.npy')
    if isinstance(content, bytes):
        open(path, 'wb').write(content)
    elif content is not None:
        np.save(path, content)
    with pytest.raises(BadSampleError, match=reason) as info:
        LoadLogMelFeature(num_frames=50)(
            feature_results(path, np.arange(8), total_frames=32))
    assert str(info.value).startswith(path)


def test_load_log_mel_feature_checks_num_bins(tmp_path):
    path = str(tmp_path / 'feat.npy')
    np.save(path, np.zeros((60, 32), np.float32))
    results = feature_results(path, np.arange(8), total_frames=32)
    assert LoadLogMelFeature(num_frames=50)(dict(results))['audios'].shape \
        == (1, 50, 32)
    with pytest.raises(BadSampleError, match='32 feature bins, but '
                       'num_bins=40') as info:
        LoadLogMelFeature(num_frames=50, num_bins=40)(results)
    assert str(info.value).startswith(path)
    with pytest.raises(ValueError, match='num_bins must be positive'):
        LoadLogMelFeature(num_bins=0)


def test_a_clip_longer_than_its_video_is_an_error(make_clip):
    """SampleFrames loops a short video's frames; the audio window would
    then be shorter than the other clips' (decoded or silent)."""
    path = make_clip(seconds=0.3)  # 5 frames; a clip spans 8 x 2
    results = clip_results(path, np.arange(0, 16, 2) % 5, frame_interval=2,
                           total_frames=5)
    for audio_missing in (False, True):
        with pytest.raises(BadSampleError, match='video is 5 frames long, '
                           'shorter than a clip of 8 frames every 2') as info:
            DecodeAudioTrack()(dict(results, audio_missing=audio_missing))
        assert str(info.value).startswith(path)
    # a fixed window does not depend on the clip's span
    out = DecodeAudioTrack(duration=0.25, fit_in_track=True)(dict(results))
    assert out['audios'].shape == (1, 4000)
