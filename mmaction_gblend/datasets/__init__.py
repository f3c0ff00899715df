from .audio_visual_dataset import AudioVisualDataset, has_audio_stream
from .dataset_wrappers import (dataset_pipeline, dataset_pipelines,
                               inner_dataset_configs)
from .errors import BadSampleError, TooManyBadSamplesError
from .heldout_split_configs import (heldout_split_config, measurement_config,
                                    training_subset_config)
from .heldout_split_dataset import HeldOutSplitDataset
from .stratified_split import label_from_data_info, stratified_heldout_split
from .transforms import *  # noqa: F401,F403
from .with_audio_track import add_audio_to_pipeline, with_audio_track

__all__ = [
    'AudioVisualDataset', 'BadSampleError', 'TooManyBadSamplesError',
    'has_audio_stream', 'dataset_pipeline', 'dataset_pipelines',
    'inner_dataset_configs', 'HeldOutSplitDataset', 'heldout_split_config',
    'label_from_data_info', 'measurement_config', 'stratified_heldout_split',
    'training_subset_config', 'add_audio_to_pipeline', 'with_audio_track'
]
