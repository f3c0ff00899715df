"""The dataset wrapper that exposes one part of the held-out split.

:class:`HeldOutSplitDataset` wraps the user's own dataset (any mmengine
``BaseDataset``, with its own pipeline and options), reads its labels and
exposes one part of
:func:`~mmaction_gblend.datasets.stratified_split.stratified_heldout_split`.
"""
import copy
import logging
import math
import operator
from numbers import Real
from typing import Any, Dict, List, Optional, Union

import numpy as np
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..utils.choices import check_choice
from .errors import BadSampleError
from .group_split import (check_group_spec, describe_spec, sample_groups,
                          sample_path)
from .stratified_split import (check_fraction, check_probe_size, check_seed,
                               heldout_group_samples, label_from_data_info,
                               split_by_keys, stratum_keys)

SPLIT_PARTS = ('train', 'heldout', 'probe', 'all')
#: The registered name of :class:`HeldOutSplitDataset`.
SPLIT_DATASET = 'HeldOutSplitDataset'

def _check_subset(subset: Any) -> Optional[float]:
    if subset is None:
        return None
    if isinstance(subset, bool) or not isinstance(subset, Real) or \
            not math.isfinite(float(subset)) or \
            not 0.0 < float(subset) <= 1.0:
        raise ValueError('HeldOutSplitDataset.subset must be None or a '
                         f'number with 0 < subset <= 1, got {subset!r}')
    return float(subset)




def _sample_name(info: dict, inner_index: int) -> str:
    return sample_path(info) or f'sample {inner_index}'


@DATASETS.register_module()
class HeldOutSplitDataset:
    """One part of a seeded, class-stratified held-out split of a dataset.

    Wraps the user's own training dataset (its pipeline and options are
    untouched) and exposes one part of
    :func:`~.stratified_split.stratified_heldout_split`:

    * ``'train'``: the training set without the held-out samples ``V``
      (what the main training should use);
    * ``'heldout'``: ``V``, on which the held-out loss ``L^V`` is measured;
    * ``'probe'``: ``T'``, a fixed subset of ``'train'`` on which the
      training loss ``L^T'`` is measured;
    * ``'all'``: every sample (to train on ``V`` as well, on purpose).

    ``subset`` restricts ``'train'`` to a seeded, class-stratified fraction
    of itself and draws ``'probe'`` from that fraction (``V`` is
    unchanged): the data of G-Blend's shadow estimator on a subset, whose
    copies train on the subset for a whole super-epoch and so must have
    their training loss measured on samples they trained on.

    The labels are read with ``dataset.get_data_info(i)['label']``, without
    running the pipeline, and the split depends only on the labels,
    ``fraction``, ``seed`` and ``probe_size``, so every process builds the
    same one. The paper holds out 8% of the training set for Kinetics and
    mini-Sports and 13% for mini-AudioSet.

    Loading a sample runs the inner dataset's ``prepare_data`` on it. Unlike
    ``BaseDataset.__getitem__``, a sample whose pipeline returns ``None`` is
    never replaced by a random other sample of the inner dataset (which
    could leak a held-out sample into training): it raises a
    :class:`BadSampleError` naming the sample. Only a sample that the inner
    dataset skipped by its own policy (``AudioVisualDataset(
    bad_sample='skip')``, which logs and counts it) is replaced, by a random
    other sample of the same part.

    Args:
        dataset: The dataset to split, or its config (built with mmaction2's
            ``DATASETS``); an mmengine ``BaseDataset``.
        part: ``'train'``, ``'heldout'``, ``'probe'`` or ``'all'``.
        fraction: The held-out fraction, ``0 < fraction < 1``.
        seed: The seed of the split, an integer ``>= 0``.
        probe_size: The size of ``T'``; defaults to the size of ``V`` (at
            most the size of ``'train'``).
        subset: ``None`` (default) or a fraction in (0, 1]: ``'train'``
            becomes ``subset`` of each class's training samples (rounded
            half up, at least one), drawn from a stream of its own, and
            ``'probe'`` is drawn from it. Not allowed with ``part='all'``.
        group: ``None`` (default: samples are held out one by one), or
            where each sample's group comes from, to hold out whole groups
            (set it whenever the test split is by subject, speaker, actor,
            scene or source video): a regular expression searched in the
            sample's path, whose first capture group names the group
            (UCF-101: ``r'_g(\\d+)_c'``; CREMA-D: ``r'(\\d{4})_[A-Z]{3}_'``),
            or ``dict(key=..., regex=...)``: a data-info field (a column of
            a JSON annotation file), its value or the pattern's first
            capture group in it. See
            :mod:`~mmaction_gblend.datasets.group_split`.
        lazy_init: Defer reading the labels and splitting to
            :meth:`full_init` (mmengine's convention; data loaders and the
            Runner call it).
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 part: str = 'train',
                 fraction: float = 0.08,
                 seed: int = 0,
                 probe_size: Optional[int] = None,
                 subset: Optional[float] = None,
                 group: Union[None, str, dict] = None,
                 lazy_init: bool = False) -> None:
        self.part = check_choice('HeldOutSplitDataset.part', part,
                                 SPLIT_PARTS)
        self.group = check_group_spec(group)
        try:
            self.fraction = check_fraction(fraction)
        except ValueError as err:  # name the config key, not the argument
            raise ValueError(f'HeldOutSplitDataset.fraction: {err}') from None
        self.seed = check_seed(seed)
        self.subset = _check_subset(subset)
        if self.subset is not None and part == 'all':
            raise ValueError("HeldOutSplitDataset.subset restricts the "
                             "training part; it cannot be used with "
                             "part='all'")
        self.probe_size = check_probe_size(probe_size)
        if self.probe_size is not None and self.probe_size < 1:
            raise ValueError(
                f'probe_size must be at least 1, got {self.probe_size}')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not isinstance(dataset, BaseDataset):
            raise TypeError('HeldOutSplitDataset.dataset must be a config '
                            'dict or an mmengine BaseDataset, got '
                            f'{type(dataset).__name__}')
        self.dataset = dataset
        self._metainfo = dataset.metainfo
        self._parts: Dict[str, np.ndarray] = {}
        self._class_keys = np.empty(0, dtype=np.int64)
        self._group_names: List[str] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The inner dataset's meta information (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Initialise the inner dataset, read its labels and split them."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        infos = [
            self.dataset.get_data_info(i) for i in range(len(self.dataset))
        ]
        keys = stratum_keys([
            label_from_data_info(self._label_field(info, i))
            for i, info in enumerate(infos)
        ])
        heldout_samples, groups_line = None, ''
        if self.group is not None:
            self._group_names = sample_groups(infos, self.group)
            heldout_samples, groups_line = heldout_group_samples(
                keys, self._group_names, self.fraction, self.seed,
                self.group.where, describe_spec(self.group))
            groups_line = '; ' + groups_line
        train, heldout, probe = split_by_keys(keys, self.fraction, self.seed,
                                               self.probe_size, self.subset,
                                               heldout_samples)
        self._class_keys = keys
        self._parts = dict(
            train=train,
            heldout=heldout,
            probe=probe,
            all=np.arange(len(keys), dtype=np.int64))
        self._fully_initialized = True
        print_log(
            f'HeldOutSplitDataset: part {self.part!r} has '
            f'{len(self._parts[self.part])} of {len(keys)} samples '
            f'(train {len(train)}, heldout {len(heldout)}, probe '
            f'{len(probe)}, {len(np.unique(keys))} classes; '
            f'heldout_fraction={self.fraction}, seed={self.seed}'
            + (f', training subset {self.subset}' if self.subset else '')
            + ')' + groups_line,
            logger='current')

    @staticmethod
    def _label_field(info: dict, index: int) -> Any:
        if 'label' not in info:
            raise ValueError(
                f'HeldOutSplitDataset: sample {index} '
                f'({_sample_name(info, index)}) has no "label"; the held-out '
                'split is stratified by class and needs labels')
        return info['label']

    def _ensure_init(self) -> None:
        if not self._fully_initialized:
            self.full_init()

    @property
    def indices(self) -> np.ndarray:
        """The inner dataset's indices of this part (sorted, a copy)."""
        self._ensure_init()
        return self._parts[self.part].copy()

    def _inner_index(self, idx: int) -> int:
        self._ensure_init()
        indices = self._parts[self.part]
        i = operator.index(idx)
        if i < 0:
            i += len(indices)
        if not 0 <= i < len(indices):
            raise IndexError(f'index {idx} out of range for the '
                             f'{self.part!r} part of {len(indices)} samples')
        return int(indices[i])

    def __len__(self) -> int:
        self._ensure_init()
        return len(self._parts[self.part])

    def get_data_info(self, idx: int) -> dict:
        """The inner dataset's annotation of this part's ``idx``-th sample."""
        return self.dataset.get_data_info(self._inner_index(idx))

    def __getitem__(self, idx: int) -> Any:
        """The ``idx``-th sample of this part through the inner pipeline.

        Raises:
            BadSampleError: The pipeline returned ``None`` for the sample
                (the message starts with its file); no other sample is
                fetched in its place, unless the inner dataset skips bad
                samples (then one of this part is).
        """
        if not self._fully_initialized:
            print_log(
                'Please call `full_init()` method manually to accelerate '
                'the speed.',
                logger='current',
                level=logging.WARNING)
            self.full_init()
        inner_index = self._inner_index(idx)
        data = self.dataset.prepare_data(inner_index)
        if data is None and getattr(self.dataset, 'skips_bad_samples', False):
            data = self._another_of_this_part()
        if data is None:
            name = _sample_name(
                self.dataset.get_data_info(inner_index), inner_index)
            raise BadSampleError(
                name,
                f'the pipeline returned None for sample {inner_index} of the '
                f'dataset (index {idx} of the {self.part!r} part); '
                'HeldOutSplitDataset does not fetch a random other sample '
                'instead, which could come from another part of the '
                'held-out split; fix or remove this sample')
        return data

    def _another_of_this_part(self) -> Any:
        # as BaseDataset.__getitem__ refetches, but never from another part
        indices = self._parts[self.part]
        for _ in range(self.dataset.max_refetch):
            data = self.dataset.prepare_data(
                int(indices[np.random.randint(len(indices))]))
            if data is not None:
                return data
        return None

    def split_summary(self) -> Dict[str, Any]:
        """Counts per part and per class.

        Returns:
            ``part``, ``fraction``, ``seed``, ``num_samples`` (``{part:
            count}`` for all four parts), ``per_class`` (``{class:
            {part: count}}``, classes being the labels the split is
            stratified by) and, with ``group``, ``groups`` (``{part:
            sorted group names}``).
        """
        self._ensure_init()
        summary: Dict[str, Any] = {}
        if self._group_names:
            names = np.asarray(self._group_names, dtype=object)
            summary['groups'] = {
                part: sorted(set(names[idx].tolist()))
                for part, idx in self._parts.items()
            }
        per_class: Dict[int, Dict[str, int]] = {}
        for c in np.unique(self._class_keys):
            per_class[int(c)] = {
                name: int(np.count_nonzero(self._class_keys[idx] == c))
                for name, idx in self._parts.items()
            }
        return dict(
            part=self.part,
            fraction=self.fraction,
            seed=self.seed,
            num_samples={
                name: int(len(idx))
                for name, idx in self._parts.items()
            },
            per_class=per_class,
            **summary)

    def __repr__(self) -> str:
        size = len(self._parts[self.part]) \
            if self._fully_initialized else 'not initialised'
        return (f'{type(self).__name__}(part={self.part!r}, '
                f'fraction={self.fraction}, seed={self.seed}, '
                f'size={size}, dataset={type(self.dataset).__name__})')
