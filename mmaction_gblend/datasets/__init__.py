from .audio_visual_dataset import AudioVisualDataset, has_audio_stream
from .errors import BadSampleError, TooManyBadSamplesError
from .heldout_split import (HeldOutSplitDataset, label_from_data_info,
                            stratified_heldout_split)
from .transforms import *  # noqa: F401,F403
from .with_audio_track import add_audio_to_pipeline, with_audio_track

__all__ = [
    'AudioVisualDataset', 'BadSampleError', 'TooManyBadSamplesError',
    'has_audio_stream',
    'HeldOutSplitDataset', 'label_from_data_info', 'stratified_heldout_split',
    'add_audio_to_pipeline', 'with_audio_track'
]
