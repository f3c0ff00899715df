from .audio_visual_dataset import AudioVisualDataset, has_audio_stream
from .errors import BadSampleError
from .heldout_split import (HeldOutSplitDataset, label_from_data_info,
                            stratified_heldout_split)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'AudioVisualDataset', 'BadSampleError', 'has_audio_stream',
    'HeldOutSplitDataset', 'label_from_data_info', 'stratified_heldout_split'
]
