from .audio_decoding import (DecodeAudioTrack, clip_time_windows,
                             read_audio_track)
from .audio_features import LoadLogMelFeature, load_feature_file
from .flow_frames import FlowPipeline, LoadFlowFrames
from .log_mel import LogMelSpectrogram, log_mel_spectrogram

__all__ = [
    'DecodeAudioTrack', 'clip_time_windows', 'read_audio_track',
    'LoadLogMelFeature', 'load_feature_file', 'LogMelSpectrogram',
    'log_mel_spectrogram', 'FlowPipeline', 'LoadFlowFrames'
]
