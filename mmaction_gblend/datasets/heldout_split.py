"""The held-out split Gradient Blending measures its losses on.

Gradient Blending (Wang, Tran, Feiszli, "What Makes Training Multi-Modal
Classification Networks Hard?", CVPR 2020) estimates how much each head
generalizes (Delta G) and overfits (Delta O) from two losses measured at two
checkpoints:

* ``L^V`` on a held-out subset ``V`` of the **training** set (never the
  validation or test set). The paper holds out 8% of the training set for
  Kinetics and mini-Sports and 13% for mini-AudioSet;
* ``L^T'`` on ``T'``, a fixed subset of the rest of the training set (the
  *train probe*).

By default ``V`` is excluded from the main training, otherwise it is no
longer held out.

:func:`stratified_heldout_split` computes the split from the labels alone:
it is seeded, stratified by class and uses no global random state and no
process rank, so every process (and every data-loader worker) that builds it
gets the same split. :class:`HeldOutSplitDataset` wraps the user's own
dataset (any mmengine ``BaseDataset``, with its own pipeline and options)
and exposes one part of the split. :func:`heldout_split_config`,
:func:`measurement_config` and :func:`training_subset_config` turn a
training dataset config into the configs of the datasets G-Blend trains
and measures on.
"""
import copy
import logging
import math
import operator
from numbers import Integral, Real
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..utils.choices import check_choice
from .errors import BadSampleError
from .group_split import (check_group_spec, choose_heldout_groups,
                          describe_group_split, describe_spec,
                          no_group_heldout_message, sample_groups,
                          sample_path)

# Tags mixed into the per-class seeds, so the held-out and the probe draws
# are independent streams ("HELD" and "PROB" in ASCII).
HELDOUT_SEED_TAG = 0x48454C44
PROBE_SEED_TAG = 0x50524F42
# ... and the training subset of G-Blend's shadow estimator ("SUBS")
SUBSET_SEED_TAG = 0x53554253

SPLIT_PARTS = ('train', 'heldout', 'probe', 'all')
#: The registered name of :class:`HeldOutSplitDataset`.
SPLIT_DATASET = 'HeldOutSplitDataset'

Label = Union[int, Sequence[int]]


def _check_fraction(fraction: Any) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or \
            not math.isfinite(float(fraction)) or \
            not 0.0 < float(fraction) < 1.0:
        raise ValueError('heldout_fraction must be a number with '
                         f'0 < heldout_fraction < 1, got {fraction!r}')
    return float(fraction)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(
            f'the held-out split seed must be an integer >= 0, got {seed!r}')
    return int(seed)


def _check_probe_size_type(probe_size: Any) -> Optional[int]:
    if probe_size is None:
        return None
    if isinstance(probe_size, bool) or not isinstance(probe_size, Integral):
        raise ValueError(
            f'probe_size must be an integer or None, got {probe_size!r}')
    return int(probe_size)


def _is_label_int(value: Any) -> bool:
    return isinstance(value, (Integral, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


def _stratum_keys(labels: Sequence[Label]) -> np.ndarray:
    """The class each sample is stratified by (the first of its labels).

    Raises:
        ValueError: An unlabelled sample (label ``-1``, another negative
            label or an empty label list), or no labels at all.
        TypeError: A label that is not an integer or a list of integers.
    """
    if len(labels) == 0:
        raise ValueError('the held-out split needs a non-empty list of labels')
    keys = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        if _is_label_int(label):
            values = [label]
        elif isinstance(label, (list, tuple, np.ndarray)):
            values = list(label)
            if not values:
                raise ValueError(
                    f'sample {i} has an empty label list (unlabelled); '
                    'Gradient Blending needs a label for every training '
                    'sample')
        else:
            raise TypeError(f'sample {i}: a label must be an integer or a '
                            f'list of integers, got {label!r}')
        for value in values:
            if not _is_label_int(value):
                raise TypeError(f'sample {i}: a label must be an integer or '
                                f'a list of integers, got {label!r}')
            if value < 0:
                raise ValueError(
                    f'sample {i} has label {int(value)} (unlabelled); '
                    'Gradient Blending needs a label for every training '
                    'sample to hold out a stratified subset')
        keys[i] = int(values[0])
    return keys


def _class_members(keys: np.ndarray) -> Dict[int, np.ndarray]:
    """Sorted sample indices of each class, classes in increasing order."""
    return {
        int(c): np.flatnonzero(keys == c).astype(np.int64)
        for c in np.unique(keys)
    }


def _draw(members: np.ndarray, count: int, seed: int, tag: int,
          class_key: int) -> np.ndarray:
    """``count`` of a class's samples, from a generator of its own.

    The generator is seeded from ``(seed, tag, class_key)`` only, and the
    draw is a prefix of one permutation of the class's samples (in their
    order in the data list): the choice does not depend on the other
    classes, and a larger ``count`` picks a superset.
    """
    rng = np.random.default_rng([seed, tag, class_key])
    order = rng.permutation(len(members))
    return members[order[:count]]


def _heldout_count(n: int, fraction: float) -> int:
    """Per class: ``fraction * n`` rounded half up, at least 1 (for n >= 2),
    and at most ``n - 1``, so every class keeps a training sample."""
    if n < 2:
        return 0
    return min(max(int(math.floor(fraction * n + 0.5)), 1), n - 1)


def _proportional_counts(sizes: Dict[int, int], total: int) -> Dict[int, int]:
    """Split ``total`` over classes in proportion to ``sizes``.

    Largest-remainder (Hamilton) apportionment in exact integer arithmetic;
    ties go to the smaller class label. Each count is at most its size when
    ``total <= sum(sizes)``.
    """
    whole = sum(sizes.values())
    counts = {c: total * n // whole for c, n in sizes.items()}
    left = total - sum(counts.values())
    by_remainder = sorted(
        sizes, key=lambda c: (-(total * sizes[c] % whole), c))
    for c in by_remainder[:left]:
        counts[c] += 1
    return counts


def _check_subset(subset: Any) -> Optional[float]:
    if subset is None:
        return None
    if isinstance(subset, bool) or not isinstance(subset, Real) or \
            not math.isfinite(float(subset)) or \
            not 0.0 < float(subset) <= 1.0:
        raise ValueError('HeldOutSplitDataset.subset must be None or a '
                         f'number with 0 < subset <= 1, got {subset!r}')
    return float(subset)


def _subset_count(n: int, fraction: float) -> int:
    """Per class: ``fraction * n`` rounded half up, at least 1 (for n >= 1).
    """
    return min(max(int(math.floor(fraction * n + 0.5)), 1), n) if n else 0


def _split_by_keys(
    keys: np.ndarray,
    fraction: float,
    seed: int,
    probe_size: Optional[int],
    subset: Optional[float] = None,
    heldout_samples: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split; ``heldout_samples`` (a boolean mask over the samples, the
    members of the held-out groups) replaces the per-class draw of V."""
    members = _class_members(keys)
    heldout_parts: List[np.ndarray] = []
    train_members: Dict[int, np.ndarray] = {}
    for c, idx in members.items():
        if heldout_samples is None:
            chosen = _draw(idx, _heldout_count(len(idx), fraction), seed,
                           HELDOUT_SEED_TAG, c)
        else:
            chosen = idx[heldout_samples[idx]]
        heldout_parts.append(chosen)
        train_members[c] = np.setdiff1d(idx, chosen, assume_unique=True)
    heldout = np.sort(np.concatenate(heldout_parts)).astype(np.int64)
    if heldout.size == 0:
        raise ValueError(
            f'the held-out split is empty: heldout_fraction={fraction} of '
            f'{len(keys)} samples in {len(members)} classes holds out no '
            'sample (every class has a single sample, which stays in '
            'training); use more data per class')
    if subset is not None and subset < 1:
        # the same draw for every process; a larger subset is a superset
        train_members = {
            c: np.sort(_draw(idx, _subset_count(len(idx), subset), seed,
                             SUBSET_SEED_TAG, c))
            for c, idx in train_members.items()
        }
        train = np.sort(np.concatenate(list(
            train_members.values()))).astype(np.int64)
    else:
        train = np.setdiff1d(
            np.arange(len(keys), dtype=np.int64), heldout,
            assume_unique=True)
    if probe_size is None:
        probe_size = min(len(heldout), len(train))
    elif subset is not None and subset < 1:
        # a probe of the configured size, as far as the subset allows
        probe_size = min(probe_size, len(train))
    if not 1 <= probe_size <= len(train):
        raise ValueError(f'probe_size must be in [1, {len(train)}] (the '
                         f'size of the training part), got {probe_size}')
    counts = _proportional_counts(
        {
            c: len(idx)
            for c, idx in train_members.items()
        }, probe_size)
    probe = np.sort(
        np.concatenate([
            _draw(idx, counts[c], seed, PROBE_SEED_TAG, c)
            for c, idx in train_members.items()
        ])).astype(np.int64)
    return train, heldout, probe


def stratified_heldout_split(
    labels: Sequence[Label],
    fraction: float = 0.08,
    seed: int = 0,
    probe_size: Optional[int] = None,
    groups: Optional[Sequence[str]] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split training-set indices into train, held-out ``V`` and probe ``T'``.

    The result depends only on ``labels``, ``fraction``, ``seed`` and
    ``probe_size``: no global random state, no process rank.

    * **heldout** (``V``): from each class of ``n_c`` samples,
      ``fraction * n_c`` rounded half up, at least 1 when ``n_c >= 2`` and at
      most ``n_c - 1`` (every class keeps a training sample; a class with a
      single sample stays entirely in train). The samples are drawn by a
      generator of the class's own, seeded from ``(seed, class label)``:
      which samples of a class are held out depends only on that class's
      samples (their order in the data list), not on the other classes.
      For the same seed, a larger fraction holds out a superset.
    * **train**: all the other indices (``V`` is excluded from training by
      default; the wrapper's ``part='all'`` keeps it).
    * **probe** (``T'``): a fixed subset of train, on which the training loss
      is measured; stratified in proportion to the classes' training counts
      (largest remainders, ties to the smaller label), drawn per class like
      ``V`` but from an independent stream (a ``probe`` tag in the seed).

    With ``groups``, ``V`` is made of whole groups instead
    (:func:`~mmaction_gblend.datasets.group_split.choose_heldout_groups`:
    a seeded greedy pass that brings every class's held-out share as close
    to ``fraction`` as whole groups allow); train and the probe are then
    drawn from the other groups only.

    The paper holds out 8% of the training set for Kinetics and mini-Sports
    and 13% for mini-AudioSet.

    Args:
        labels: One label per training sample, an integer or, for
            multi-label samples, a list of integers; multi-label samples are
            stratified by their first label.
        fraction: The held-out fraction, ``0 < fraction < 1``.
        seed: The seed, an integer ``>= 0``.
        probe_size: The size of the probe ``T'``; defaults to the size of
            ``V`` (at most the size of train).
        groups: ``None``, or each sample's group (e.g. its actor or source
            video): whole groups are held out.

    Returns:
        ``(train, heldout, probe)``: sorted ``int64`` arrays of indices into
        ``labels``. ``train`` and ``heldout`` are disjoint and cover all
        indices; ``probe`` is a subset of ``train``.

    Raises:
        ValueError: ``fraction`` not in (0, 1) (the message names
            ``heldout_fraction``), an empty ``labels``, an unlabelled sample
            (label -1; the message names its index), a negative seed,
            ``probe_size`` outside ``[1, len(train)]``, or an empty held-out
            set (every class has a single sample).
        TypeError: A label that is neither an integer nor a list of them.
    """
    fraction = _check_fraction(fraction)
    seed = _check_seed(seed)
    probe_size = _check_probe_size_type(probe_size)
    keys = _stratum_keys(labels)
    heldout_samples = None
    if groups is not None:
        if len(groups) != len(keys):
            raise ValueError(f'{len(groups)} groups for {len(keys)} labels')
        heldout_samples, _ = _heldout_groups(
            keys, [str(g) for g in groups], fraction, seed, 'groups')
    return _split_by_keys(keys, fraction, seed, probe_size,
                          heldout_samples=heldout_samples)


def _heldout_groups(keys: np.ndarray, names: List[str], fraction: float,
                    seed: int, where: str,
                    source: str = '') -> Tuple[np.ndarray, str]:
    """The samples of the held-out groups (a boolean mask) and the log
    line that describes them (``where``: the config key, for the error;
    ``source``: where the groups come from, for the log)."""
    group_names, codes = np.unique(np.asarray(names, dtype=object),
                                   return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    chosen = choose_heldout_groups(codes, keys, fraction, seed)
    if not chosen.any():
        raise ValueError(
            no_group_heldout_message(where, names[0], len(group_names),
                                     len(np.unique(keys))))
    return chosen[codes], describe_group_split(
        list(group_names), chosen, keys, codes, source)


def label_from_data_info(label: Any) -> Label:
    """A dataset sample's label as an integer or a list of integers.

    Accepts an integer (Python or numpy, or a 0-d array or tensor), a list
    or tuple of integers, a 1-d integer array or tensor (a list of labels),
    or a 1-d floating/bool array or tensor: a one-hot (multi-hot) vector, as
    mmaction2's ``multi_class`` datasets give, whose first positive entry
    (its argmax) is taken; an all-zero vector gives ``-1`` (unlabelled).
    Anything else is returned unchanged (and rejected by the split).
    """
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    if isinstance(label, np.ndarray):
        if label.ndim == 0:
            label = label.item()
        elif label.ndim == 1 and label.dtype.kind in 'iu':
            return [int(v) for v in label]
        elif label.ndim == 1 and label.dtype.kind in 'fb':
            hot = label.astype(np.float64)
            return int(hot.argmax()) if (hot > 0).any() else -1
        else:
            return label
    if _is_label_int(label):
        return int(label)
    return label


def _sample_name(info: dict, inner_index: int) -> str:
    return sample_path(info) or f'sample {inner_index}'

@DATASETS.register_module()
class HeldOutSplitDataset:
    """One part of a seeded, class-stratified held-out split of a dataset.

    Wraps the user's own training dataset (its pipeline and options are
    untouched) and exposes one part of :func:`stratified_heldout_split`:

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
            self.fraction = _check_fraction(fraction)
        except ValueError as err:  # name the config key, not the argument
            raise ValueError(f'HeldOutSplitDataset.fraction: {err}') from None
        self.seed = _check_seed(seed)
        self.subset = _check_subset(subset)
        if self.subset is not None and part == 'all':
            raise ValueError("HeldOutSplitDataset.subset restricts the "
                             "training part; it cannot be used with "
                             "part='all'")
        self.probe_size = _check_probe_size_type(probe_size)
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
        keys = _stratum_keys([
            label_from_data_info(self._label_field(info, i))
            for i, info in enumerate(infos)
        ])
        heldout_samples, groups_line = None, ''
        if self.group is not None:
            self._group_names = sample_groups(infos, self.group)
            heldout_samples, groups_line = _heldout_groups(
                keys, self._group_names, self.fraction, self.seed,
                self.group.where, describe_spec(self.group))
            groups_line = '; ' + groups_line
        train, heldout, probe = _split_by_keys(keys, self.fraction, self.seed,
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


# configs of the datasets G-Blend trains and measures on -----------------


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
