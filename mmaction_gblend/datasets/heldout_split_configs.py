"""Configs of the held-out split datasets G-Blend trains and measures on.

:func:`heldout_split_config`, :func:`measurement_config` and
:func:`training_subset_config` turn a training dataset config into
:class:`~mmaction_gblend.datasets.heldout_split_dataset.HeldOutSplitDataset`
configs: the training set, the held-out ``V`` and probe ``T'`` parts, and
the training subset of G-Blend's shadow estimator.
"""
import copy
from typing import Optional, Sequence, Union

from .heldout_split_dataset import SPLIT_DATASET, HeldOutSplitDataset


def _is_split(cfg: dict) -> bool:
    kind = cfg.get('type')
    return kind == SPLIT_DATASET or kind is HeldOutSplitDataset


def heldout_split_config(train_dataset: dict,
                         fraction: float,
                         seed: int,
                         exclude_heldout: bool = True,
                         owner: str = 'GradientBlendingHook',
                         group: Union[None, str, dict] = None) -> dict:
    """The training dataset config as a :class:`HeldOutSplitDataset` config.

    Args:
        train_dataset: ``train_dataloader.dataset``; not changed.
        fraction: The held-out fraction, when it is not a split already
            (a split keeps its own).
        seed: The seed of the split, likewise.
        exclude_heldout: Require the config to be a split whose training
            part (``part='train'``) leaves the held-out samples out.
            Otherwise an unwrapped dataset is split with ``part='all'``
            (a split of ``part='all'`` is kept): the model also trains on
            the held-out samples.
        owner: Who asks, for the messages.
        group: Whole groups to hold out (``HeldOutSplitDataset.group``),
            when it is not a split already; a split with another group is
            an error.

    Returns:
        A copy: the split, or the dataset wrapped in one.

    Raises:
        ValueError: A split of another part than ``'train'`` (or
            ``'all'`` without ``exclude_heldout``), a split whose group
            differs from ``group``, or, with ``exclude_heldout``, a dataset
            that is not a split.
    """
    dataset = copy.deepcopy(train_dataset)
    if _is_split(dataset):
        if group is not None and dataset.get('group') != group:
            raise ValueError(
                f'{owner}: heldout_group={group!r} but '
                'train_dataloader.dataset is a HeldOutSplitDataset with '
                f'group={dataset.get("group")!r}; set the group in one '
                'place')
        part = dataset.get('part', 'train')
        if part != 'train' and (exclude_heldout or part != 'all'):
            raise ValueError(
                'train_dataloader.dataset is a HeldOutSplitDataset with '
                f"part={part!r}; training needs part='train'"
                + ('' if exclude_heldout else " or part='all'"))
        return dataset
    if exclude_heldout:
        raise ValueError(
            f'{owner}: wrap train_dataloader.dataset in '
            "dict(type='HeldOutSplitDataset', part='train', "
            'fraction=...' + (f', group={group!r}' if group else '')
            + ', dataset=...) so the held-out samples stay out '
            'of training, or set exclude_heldout=False to measure on '
            'samples the model also trains on (not the paper\'s method)')
    split = dict(type=SPLIT_DATASET, dataset=dataset, part='all',
                 fraction=fraction, seed=seed)
    if group is not None:
        split['group'] = group
    return split


def measurement_config(split: dict,
                       part: str,
                       pipeline: Optional[Sequence[dict]] = None,
                       probe_size: Optional[int] = None) -> dict:
    """A config of one part of a split, to measure losses on.

    The samples are training samples, read with the training set's
    annotations: the inner dataset is never in test mode.

    Args:
        split: A :class:`HeldOutSplitDataset` config
            (:func:`heldout_split_config`); not changed.
        part: ``'heldout'`` (V) or ``'probe'`` (T').
        pipeline: The pipeline of the inner dataset instead of its own
            (e.g. the val pipeline, without augmentation); ``None`` keeps
            the training pipeline.
        probe_size: The size of T', if given.

    Returns:
        A copy of ``split`` for ``part``.
    """
    dataset = copy.deepcopy(split)
    dataset['part'] = part
    if probe_size is not None:
        dataset['probe_size'] = probe_size
    if pipeline is not None:
        dataset['dataset']['pipeline'] = copy.deepcopy(list(pipeline))
    dataset['dataset']['test_mode'] = False
    return dataset


def training_subset_config(split: dict, subset: float) -> dict:
    """A config of the training part of a split restricted to ``subset``
    of each class (G-Blend's shadow copies train on it; its probe is drawn
    from it).

    Args:
        split: A :class:`HeldOutSplitDataset` config; not changed.
        subset: The fraction, in (0, 1].
    """
    return dict(copy.deepcopy(split), part='train', subset=subset)
