"""The held-out split of a training set's indices, from its labels alone.

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
gets the same split. Pure: numpy (and torch, for the labels of
:func:`label_from_data_info`), no mmengine.
:class:`~mmaction_gblend.datasets.heldout_split_dataset.HeldOutSplitDataset`
wraps a dataset and exposes one part of the split;
:mod:`~mmaction_gblend.datasets.heldout_split_configs` builds the configs of
the datasets G-Blend trains and measures on.
"""
import math
from numbers import Integral, Real
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .group_split import (choose_heldout_groups, describe_group_split,
                          no_group_heldout_message)

# Tags mixed into the per-class seeds, so the held-out and the probe draws
# are independent streams ("HELD" and "PROB" in ASCII).
HELDOUT_SEED_TAG = 0x48454C44
PROBE_SEED_TAG = 0x50524F42
# ... and the training subset of G-Blend's shadow estimator ("SUBS")
SUBSET_SEED_TAG = 0x53554253

Label = Union[int, Sequence[int]]


def check_fraction(fraction: Any) -> float:
    """The held-out fraction as a float in (0, 1); ValueError otherwise."""
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or \
            not math.isfinite(float(fraction)) or \
            not 0.0 < float(fraction) < 1.0:
        raise ValueError('heldout_fraction must be a number with '
                         f'0 < heldout_fraction < 1, got {fraction!r}')
    return float(fraction)


def check_seed(seed: Any) -> int:
    """The split's seed as an integer >= 0; ValueError otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(
            f'the held-out split seed must be an integer >= 0, got {seed!r}')
    return int(seed)


def check_probe_size(probe_size: Any) -> Optional[int]:
    """``probe_size`` as an integer or None; ValueError otherwise."""
    if probe_size is None:
        return None
    if isinstance(probe_size, bool) or not isinstance(probe_size, Integral):
        raise ValueError(
            f'probe_size must be an integer or None, got {probe_size!r}')
    return int(probe_size)


def _is_label_int(value: Any) -> bool:
    return isinstance(value, (Integral, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


def stratum_keys(labels: Sequence[Label]) -> np.ndarray:
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


def _subset_count(n: int, fraction: float) -> int:
    """Per class: ``fraction * n`` rounded half up, at least 1 (for n >= 1).
    """
    return min(max(int(math.floor(fraction * n + 0.5)), 1), n) if n else 0


def split_by_keys(
    keys: np.ndarray,
    fraction: float,
    seed: int,
    probe_size: Optional[int],
    subset: Optional[float] = None,
    heldout_samples: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, heldout, probe)`` of the samples of stratum ``keys``.

    ``subset`` restricts train (``HeldOutSplitDataset.subset``);
    ``heldout_samples`` (a boolean mask over the samples, the members of the
    held-out groups) replaces the per-class draw of V.
    """
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
    fraction = check_fraction(fraction)
    seed = check_seed(seed)
    probe_size = check_probe_size(probe_size)
    keys = stratum_keys(labels)
    heldout_samples = None
    if groups is not None:
        if len(groups) != len(keys):
            raise ValueError(f'{len(groups)} groups for {len(keys)} labels')
        heldout_samples, _ = heldout_group_samples(
            keys, [str(g) for g in groups], fraction, seed, 'groups')
    return split_by_keys(keys, fraction, seed, probe_size,
                          heldout_samples=heldout_samples)


def heldout_group_samples(keys: np.ndarray,
                          names: List[str],
                          fraction: float,
                          seed: int,
                          where: str,
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
