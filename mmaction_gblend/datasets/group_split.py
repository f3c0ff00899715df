"""Whole groups of samples to G-Blend's held-out part.

Many video and audio-visual benchmarks test on *unseen groups*: UCF-101's
official splits keep whole groups (``v_<Class>_g<NN>_c<MM>``: the same
actors and backgrounds) on one side, CREMA-D is split by actor, speech
sets by speaker, Kinetics-style sets by source video. A held-out part
``V`` drawn clip by clip then shares actors, speakers or scenes with the
clips the model trains on, and a modality that memorises the group shows
less overfitting on ``V`` than it will on the test split. Holding out
whole groups makes ``V`` measure what the test measures.

:func:`check_group_spec` validates the ``group`` option,
:func:`sample_groups` reads each sample's group from its annotation and
:func:`choose_heldout_groups` picks the groups that go to ``V``: seeded,
identical on every process, and as close to ``fraction`` of every class as
whole groups allow.
"""
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

# Mixed into the seed of the groups' order ("GRUP" in ASCII), so it is a
# stream of its own beside the per-class draws of stratified_split.
GROUP_SEED_TAG = 0x47525550
# The annotation keys a sample's path is read from, in this order.
PATH_KEYS = ('filename', 'frame_dir', 'img_path', 'audio_path')


class GroupSpec(NamedTuple):
    """Where a sample's group comes from.

    Attributes:
        key: The data-info key read (``None``: the sample's path, the first
            of :data:`PATH_KEYS` it has).
        regex: The compiled pattern whose first capture group is the group
            (``None``: the key's value itself is the group).
        where: The config key, for messages.
    """
    key: Optional[str]
    regex: Optional['re.Pattern']
    where: str


def check_group_spec(group: Any,
                     where: str = 'HeldOutSplitDataset.group'
                     ) -> Optional[GroupSpec]:
    """Validate the ``group`` option of a held-out split.

    Args:
        group: ``None`` (samples are held out one by one), a regular
            expression searched in each sample's path whose first capture
            group names the sample's group (e.g. ``r'_g(\\d+)_c'`` for
            UCF-101), or a dict with ``key`` (a data-info field: its value
            is the group, as a column of a JSON annotation file) and/or
            ``regex`` (searched in that field, or in the path without
            ``key``).
        where: The config key, for messages.

    Raises:
        ValueError: An empty or invalid pattern, a pattern without a
            capture group, or a dict with other keys or neither key.
        TypeError: Any other type.
    """
    if group is None:
        return None
    if isinstance(group, str):
        group = dict(regex=group)
    if not isinstance(group, dict):
        raise TypeError(f'{where} must be None, a regular expression or a '
                        f'dict(key=..., regex=...), got {group!r}')
    unknown = sorted(set(group) - {'key', 'regex'})
    if unknown or not group:
        raise ValueError(f'{where}: a dict takes "key" and/or "regex", got '
                         f'{group!r}')
    key = group.get('key')
    if key is not None and (not isinstance(key, str) or not key):
        raise ValueError(f'{where}.key must be a non-empty string, got '
                         f'{key!r}')
    pattern = group.get('regex')
    regex = None
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f'{where}: the regular expression must be a '
                             f'non-empty string, got {pattern!r}')
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ValueError(f'{where}: invalid regular expression '
                             f'{pattern!r}: {err}') from None
        if regex.groups < 1:
            raise ValueError(
                f'{where}: the regular expression {pattern!r} has no '
                'capture group; put the part of the path that names the '
                "group in parentheses, e.g. r'_g(\\d+)_c' for UCF-101")
    return GroupSpec(key=key, regex=regex, where=where)


def describe_spec(spec: GroupSpec) -> str:
    """Where the groups come from, in words (for the log)."""
    field = spec.key or 'path'
    if spec.regex is None:
        return f'annotation field {field!r}'
    return f'{spec.regex.pattern!r} over the {field}'


def sample_path(info: dict) -> Optional[str]:
    """A sample's path: the first of :data:`PATH_KEYS` its annotation has
    (``None`` if none)."""
    for key in PATH_KEYS:
        if isinstance(info.get(key), str):
            return info[key]
    return None


def _source(info: dict, spec: GroupSpec, index: int) -> str:
    if spec.key is None:
        path = sample_path(info)
        if path is None:
            raise ValueError(
                f'{spec.where}: sample {index} has no path (none of '
                f'{", ".join(PATH_KEYS)}) to read its group from; give '
                'dict(key=...) naming the annotation field that holds it')
        return path
    if spec.key not in info:
        raise ValueError(
            f'{spec.where}: sample {index} ({sample_path(info) or "no path"})'
            f' has no annotation field {spec.key!r}')
    return str(info[spec.key])


def sample_groups(infos: Sequence[dict], spec: GroupSpec) -> List[str]:
    """Each sample's group.

    Args:
        infos: The samples' annotations (``dataset.get_data_info(i)``).
        spec: From :func:`check_group_spec`.

    Returns:
        One group name per sample.

    Raises:
        ValueError: A pattern that matches no sample (the message names the
            config key and an example path), a sample it does not match
            (named, with how many more), or a missing field.
    """
    groups: List[str] = []
    unmatched: List[str] = []
    for i, info in enumerate(infos):
        source = _source(info, spec, i)
        if spec.regex is None:
            groups.append(source)
            continue
        match = spec.regex.search(source)
        if match is None or match.group(1) is None:
            unmatched.append(source)
            groups.append('')
        else:
            groups.append(match.group(1))
    if unmatched:
        pattern = spec.regex.pattern  # type: ignore[union-attr]
        what = spec.key or 'path'
        if len(unmatched) == len(infos):
            raise ValueError(
                f'{spec.where}: the regular expression {pattern!r} matches '
                f'no sample\'s {what} (e.g. {unmatched[0]!r})')
        raise ValueError(
            f'{spec.where}: the regular expression {pattern!r} does not '
            f'match the {what} of {len(unmatched)} of {len(infos)} samples '
            f'(e.g. {unmatched[0]!r}); every sample needs a group')
    return groups


def group_class_counts(group_codes: np.ndarray, class_keys: np.ndarray,
                       num_groups: int) -> Dict[int, np.ndarray]:
    """``{class: samples of that class in each group}``, classes in
    increasing order (a ``num_groups``-long array each)."""
    return {
        int(c): np.bincount(group_codes[class_keys == c],
                            minlength=num_groups)
        for c in np.unique(class_keys)
    }


def choose_heldout_groups(group_codes: np.ndarray, class_keys: np.ndarray,
                          fraction: float, seed: int) -> np.ndarray:
    """Which groups go to the held-out part ``V``.

    The groups are visited in a seeded order (a permutation drawn from
    ``(seed, group tag)``, over the groups sorted by name, so it depends on
    nothing else); a group joins ``V`` when it brings the classes' held-out
    shares closer to ``fraction`` (the sum over classes of the squared
    difference between a class's held-out share and ``fraction``
    decreases) and leaves every class at least one training sample. So each
    class's share of ``V`` is as close to ``fraction`` as this greedy pass
    over whole groups gets; a class whose samples are all in one group
    stays in training.

    Args:
        group_codes: Each sample's group as an integer in
            ``[0, num_groups)``, the groups numbered in their sorted order.
        class_keys: Each sample's class.
        fraction: The target held-out share of each class, in (0, 1).
        seed: The split's seed.

    Returns:
        A boolean mask over the groups: ``True`` for a held-out group.
    """
    num_groups = int(group_codes.max()) + 1 if len(group_codes) else 0
    counts = group_class_counts(group_codes, class_keys, num_groups)
    classes = list(counts)
    # rows: groups; columns: classes
    per_group = np.stack([counts[c] for c in classes], axis=1).astype(float)
    sizes = per_group.sum(axis=0)
    held = np.zeros(len(classes))
    chosen = np.zeros(num_groups, dtype=bool)

    def cost(h: np.ndarray) -> float:
        return float((((h / sizes) - fraction)**2).sum())

    order = np.random.default_rng([seed, GROUP_SEED_TAG]).permutation(
        num_groups)
    feasible = []
    for g in order:
        after = held + per_group[g]
        if (after >= sizes).any():
            continue  # a class would lose its last training sample
        feasible.append(g)
        if cost(after) < cost(held) - 1e-12:
            held = after
            chosen[g] = True
    if not chosen.any() and feasible:
        # every group is larger than twice the target: V gets the one that
        # comes closest (the first in the seeded order on a tie)
        costs = [cost(per_group[g]) for g in feasible]
        chosen[feasible[int(np.argmin(costs))]] = True
    return chosen


def describe_group_split(group_names: Sequence[str], chosen: np.ndarray,
                         class_keys: np.ndarray, group_codes: np.ndarray,
                         source: str) -> str:
    """One log line: the groups on each side and the held-out share of
    every class."""
    heldout = chosen[group_codes]
    shares = []
    for c in np.unique(class_keys):
        in_class = class_keys == c
        shares.append(f'{int(c)}: {int(heldout[in_class].sum())}/'
                      f'{int(in_class.sum())}')
    example = ', '.join(str(group_names[g])
                        for g in np.flatnonzero(chosen)[:5])
    more = ', ...' if chosen.sum() > 5 else ''
    return (f'groups by {source}: {int(chosen.sum())} of {len(chosen)} '
            f'held out ({example}{more}), {int((~chosen).sum())} in '
            f'training; held out per class: {"; ".join(shares)}')


def no_group_heldout_message(where: str, example: str,
                             num_groups: int, num_classes: int) -> str:
    """The error when no whole group can be held out (``where``: the
    config key)."""
    return (
        f'{where}: no group can be held out without leaving a class '
        f'without training samples ({num_groups} groups, {num_classes} '
        'classes): each class has all its samples in one group; check the '
        'pattern '
        f'(a group should hold part of a class, e.g. an actor or a scene; '
        f'example path: {example!r})')

