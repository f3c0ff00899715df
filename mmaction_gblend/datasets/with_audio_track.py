"""A stock mmaction2 video dataset config, with the sound of its videos.

``WithAudioTrack`` (a dataset builder registered in DATASETS) turns the
``VideoDataset`` of any mmaction2 RGB recognition config into an
:class:`AudioVisualDataset` over the same files: the same annotation file,
prefix and pipeline, plus audio steps before the pipeline's
``PackActionInputs``, which then collects ``imgs`` and ``audios``. With
``AddAudioBranch`` on the model side, a few lines make any stock RGB config
audio-visual (see the README)::

    train_dataloader = dict(dataset=dict(
        _delete_=True, type='WithAudioTrack',
        dataset={{_base_.train_dataloader.dataset}}))
"""
import copy
from typing import List, Optional, Tuple

from mmaction.registry import DATASETS

__all__ = ['DEFAULT_AUDIO_PIPELINE', 'add_audio_to_pipeline',
           'with_audio_track', 'built_pipeline']

#: One second of audio centred on each sampled clip (slid inside the track
#: at its ends), as a 100 x 40 log-mel spectrogram: the G-Blend paper's
#: audio input.
DEFAULT_AUDIO_PIPELINE = [
    dict(type='DecodeAudioTrack', sample_rate=16000, duration=1.0,
         fit_in_track=True),
    dict(type='LogMelSpectrogram', n_fft=512, hop_length=160, n_mels=40,
         num_frames=100),
    dict(type='FormatAudioShape', input_format='NCTF'),
]
_PACK = 'PackActionInputs'


def _type_name(step) -> Optional[str]:
    kind = step.get('type') if isinstance(step, dict) else type(step)
    return kind if isinstance(kind, str) or kind is None else kind.__name__


def add_audio_to_pipeline(pipeline: List[dict],
                          audio_pipeline: Optional[List[dict]] = None,
                          where: str = 'pipeline') -> List[dict]:
    """A video pipeline with audio steps before its ``PackActionInputs``.

    Args:
        pipeline: The RGB pipeline, ending in ``PackActionInputs``.
        audio_pipeline: The audio steps; :data:`DEFAULT_AUDIO_PIPELINE` by
            default.
        where: Name of the pipeline, for the error message.

    Returns:
        A new list; the pack step collects ``imgs`` and ``audios``.

    Raises:
        ValueError: If the pipeline has no ``PackActionInputs`` or already
            decodes audio.
    """
    names = [_type_name(step) for step in pipeline]
    if _PACK not in names:
        raise ValueError(f'{where} has no {_PACK} step to add audio before '
                         f'(steps: {names})')
    if 'DecodeAudioTrack' in names or 'LoadLogMelFeature' in names:
        raise ValueError(f'{where} already reads audio (steps: {names})')
    at = len(names) - 1 - names[::-1].index(_PACK)
    pack = dict(copy.deepcopy(pipeline[at]),
                collect_keys=('imgs', 'audios'))
    audio = copy.deepcopy(
        DEFAULT_AUDIO_PIPELINE if audio_pipeline is None else audio_pipeline)
    return (copy.deepcopy(pipeline[:at]) + audio + [pack] +
            copy.deepcopy(pipeline[at + 1:]))


def built_pipeline(cfg: dict, path: str) -> Optional[Tuple[str, List[dict]]]:
    """The pipeline a ``WithAudioTrack`` config builds, with its key path.

    Args:
        cfg: The ``WithAudioTrack`` config.
        path: Its key path (e.g. ``train_dataloader.dataset``).

    Returns:
        ``(path of the video pipeline, the pipeline with its audio steps)``;
        ``None`` if no pipeline can be built (the dataset says why when it
        is built).
    """
    own = 'pipeline' in cfg
    where = f'{path}.pipeline' if own else f'{path}.dataset.pipeline'
    video = cfg['pipeline'] if own else (cfg.get('dataset') or {}).get(
        'pipeline', [])
    try:
        return where, add_audio_to_pipeline(video, cfg.get('audio_pipeline'),
                                            where)
    except ValueError:
        return None


@DATASETS.register_module(name='WithAudioTrack')
def with_audio_track(dataset: dict,
                     audio_pipeline: Optional[List[dict]] = None,
                     **kwargs):
    """Build an :class:`AudioVisualDataset` from a ``VideoDataset`` config.

    Args:
        dataset: The stock dataset config (``type='VideoDataset'``).
        audio_pipeline: Audio steps (default :data:`DEFAULT_AUDIO_PIPELINE`),
            inserted before ``PackActionInputs``.
        **kwargs: More ``AudioVisualDataset`` arguments (``audio_suffix``,
            ``missing_audio``, ...). A ``pipeline`` among them replaces the
            stock dataset's video pipeline (audio is added to it too), as
            G-Blend's hook does to measure with the val pipeline.

    Returns:
        The built dataset.

    Raises:
        ValueError: If ``dataset`` is not a video-file dataset.
    """
    cfg = copy.deepcopy(dict(dataset))
    if cfg.get('type') not in ('VideoDataset', 'AudioVisualDataset'):
        raise ValueError(
            'WithAudioTrack.dataset must be a VideoDataset (video files '
            f"with sound), got type={cfg.get('type')!r}; for frames on disk "
            'use AudioVisualDataset with audio_suffix and audio files')
    cfg['type'] = 'AudioVisualDataset'
    video = kwargs.pop('pipeline', cfg.get('pipeline', []))
    cfg['pipeline'] = add_audio_to_pipeline(
        video, audio_pipeline, where='WithAudioTrack.dataset.pipeline')
    cfg.update(kwargs)
    return DATASETS.build(cfg)
