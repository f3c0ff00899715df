"""Dataset configs through their wrappers, without naming the wrappers.

A dataset config may wrap others: under ``dataset`` (``HeldOutSplitDataset``,
``WithAudioTrack``, mmengine's ``RepeatDataset`` and
``ClassBalancedDataset``) or ``datasets`` (``ConcatDataset``). Some build
another pipeline than the one their config holds (``WithAudioTrack`` adds
its audio steps). Hooks read the pipelines through these helpers, so what a
wrapper does is known here, next to the wrappers, and nowhere else.
"""
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from .with_audio_track import built_pipeline as audio_track_pipeline

__all__ = ['inner_dataset_configs', 'dataset_pipeline', 'dataset_pipelines']

#: ``(config, key path) -> (key path, pipeline)``, or ``None`` if none.
PipelineBuilder = Callable[[dict, str], Optional[Tuple[str, List[dict]]]]

# Wrappers whose samples go through another pipeline than their config's.
_PIPELINE_BUILDERS: Dict[str, PipelineBuilder] = {
    'WithAudioTrack': audio_track_pipeline,
}


def _kind(cfg: dict) -> Optional[str]:
    """The ``type`` of a config as a name (it may be a class)."""
    kind = cfg.get('type')
    return getattr(kind, '__name__', kind)


def inner_dataset_configs(cfg: dict,
                          path: str = 'dataset') -> List[Tuple[str, dict]]:
    """The dataset configs a wrapper config wraps, with their key paths.

    Args:
        cfg: A dataset config.
        path: Its key path, e.g. ``train_dataloader.dataset``.

    Returns:
        ``[(path.dataset, config)]`` or ``[(path.datasets[i], config)]``;
        empty for a dataset that wraps none.
    """
    inner = []
    if isinstance(cfg.get('dataset'), dict):
        inner.append((f'{path}.dataset', cfg['dataset']))
    for i, sub in enumerate(cfg.get('datasets') or []):
        if isinstance(sub, dict):
            inner.append((f'{path}.datasets[{i}]', sub))
    return inner


def dataset_pipeline(cfg: Optional[dict]) -> Optional[List[dict]]:
    """The pipeline a dataset config gives, as its ``pipeline`` key would
    take it: its own, else that of the one dataset it wraps.

    For ``WithAudioTrack`` that is the video pipeline (the audio steps are
    added when it is built), so the result can be set as the ``pipeline``
    of another dataset of the same kind.

    Returns:
        The pipeline, or ``None`` if the config has none.
    """
    if not isinstance(cfg, dict):
        return None
    if cfg.get('pipeline'):
        return cfg['pipeline']
    return dataset_pipeline(cfg.get('dataset'))


def dataset_pipelines(cfg: Optional[dict],
                      path: str) -> Iterator[Tuple[str, List[dict]]]:
    """Every pipeline a dataset config runs, as built, with its key path.

    Follows wrappers (``dataset``, ``datasets``); a wrapper that builds its
    own pipeline (``WithAudioTrack``) gives that one, audio steps included.

    Args:
        cfg: A dataset config.
        path: Its key path, e.g. ``train_dataloader.dataset``.

    Yields:
        ``(key path of the pipeline, pipeline)``.
    """
    if not isinstance(cfg, dict):
        return
    builder = _PIPELINE_BUILDERS.get(_kind(cfg))
    if builder is not None:
        built = builder(cfg, path)
        if built is not None:
            yield built
        return
    if isinstance(cfg.get('pipeline'), (list, tuple)):
        yield f'{path}.pipeline', cfg['pipeline']
    for sub_path, sub in inner_dataset_configs(cfg, path):
        yield from dataset_pipelines(sub, sub_path)
