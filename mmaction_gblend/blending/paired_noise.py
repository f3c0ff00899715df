"""Measurement noise of G-Blend's G and O, from per-sample values.

G and O (Wang, Tran, Feiszli, CVPR 2020, Eq. 3) are differences between two
checkpoints measured on the *same* samples: the held-out set V and the
training probe T'. Their noise is that of the paired per-sample differences,
which is much smaller than the spread of the losses themselves (a hard
sample is hard at both checkpoints). With ``d_V`` and ``d_T`` the per-sample
differences (before - after) on V and on T'::

    G = mean(d_V)
    O = mean(d_T) - mean(d_V)       # (L^V - L^T)_after - (L^V - L^T)_before
    se_G = std(d_V) / sqrt(|V|)
    se_O = sqrt(var(d_V) / |V| + var(d_T) / |T'|)   # V, T' independent

(sample standard deviations, ``ddof=1``). :func:`bootstrap_weight_intervals`
propagates the same noise to the weights by resampling V and T'.

numpy only (no torch, no mmengine), like the rest of :mod:`..blending`.
"""
import math
import numbers
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np

__all__ = ['paired_standard_errors', 'bootstrap_weight_intervals']

Pair = Tuple[float, float]
#: ``{head: (train_samples, heldout_samples)}``
PerSample = Mapping[str, Tuple[Sequence[float], Sequence[float]]]
EstimateFn = Callable[[Dict[str, Pair], Dict[str, Pair], Dict[str, Pair]],
                      Mapping[str, float]]


def _samples(values: Sequence[float], what: str) -> np.ndarray:
    """``values`` as a non-empty 1-D float64 array."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f'{what} must be a 1-D sequence of per-sample '
                         f'values, got shape {array.shape}')
    if array.size == 0:
        raise ValueError(f'{what} holds no samples')
    return array


def _paired(before: Sequence[float], after: Sequence[float], before_name: str,
            after_name: str) -> Tuple[np.ndarray, np.ndarray]:
    first = _samples(before, before_name)
    second = _samples(after, after_name)
    if first.shape != second.shape:
        raise ValueError(
            f'{before_name} has {first.size} samples but {after_name} has '
            f'{second.size}: the two checkpoints must be measured on the '
            'same samples, in the same order')
    return first, second


def _variance_of_mean(diff: np.ndarray) -> float:
    """``var(diff, ddof=1) / n``: 0 for one sample, NaN if non-finite."""
    if not np.isfinite(diff).all():
        return math.nan
    if diff.size < 2:
        # one sample has no spread to estimate: no correction, rather than
        # an undefined value that would drop the head
        return 0.0
    return float(np.var(diff, ddof=1)) / diff.size


def paired_standard_errors(train_before: Sequence[float],
                           heldout_before: Sequence[float],
                           train_after: Sequence[float],
                           heldout_after: Sequence[float]) -> Pair:
    """Standard errors of one head's G and O from its per-sample values.

    ``G = mean_V(before) - mean_V(after)`` is the mean of the paired
    differences ``d_V``; its standard error is ``std(d_V) / sqrt(|V|)``.
    ``O = mean(d_T) - mean(d_V)`` (``d_T`` the differences on T'), and V and
    T' are disjoint independent samples, so
    ``se_O = sqrt(var(d_V) / |V| + var(d_T) / |T'|)``. Sample variances
    (``ddof=1``). Losses and accuracies (0/1 correctness) work alike; the
    sign convention does not change a standard error.

    Edge cases: a set of one sample contributes 0 (its spread cannot be
    estimated; the rule then falls back to the point estimate, as with no
    noise). A non-finite value in V makes both standard errors NaN, one in
    T' makes ``se_O`` NaN: such a head's means are not finite either, and
    ``blend_statistics`` gives it score 0 (note ``'non-finite'``) for a NaN
    in its ``noise`` too, so the NaN never reaches a weight.

    Args:
        train_before: Per-sample values on T' at checkpoint N.
        heldout_before: Per-sample values on V at checkpoint N.
        train_after: The same T' samples, same order, at checkpoint N + n.
        heldout_after: The same V samples, same order, at checkpoint N + n.

    Returns:
        ``(se_G, se_O)``, each ``>= 0`` or NaN.

    Raises:
        ValueError: A sequence is empty or not 1-D, or the two checkpoints'
            sequences of a set differ in length.

    Example:
        >>> # d_V = [0.1, 0.3] (var 0.02), d_T = [0.2, 0.2, 0.5] (var 0.03)
        >>> se_g, se_o = paired_standard_errors(
        ...     [1.0, 1.0, 1.0], [1.0, 1.0], [0.8, 0.8, 0.5], [0.9, 0.7])
        >>> round(se_g, 6), round(se_o, 6)  # sqrt(.01), sqrt(.01 + .01)
        (0.1, 0.141421)
    """
    t_before, t_after = _paired(train_before, train_after, 'train_before',
                                'train_after')
    v_before, v_after = _paired(heldout_before, heldout_after,
                                'heldout_before', 'heldout_after')
    var_v = _variance_of_mean(v_before - v_after)
    var_t = _variance_of_mean(t_before - t_after)
    return math.sqrt(var_v), math.sqrt(var_v + var_t)


def _check_per_sample(
        before: PerSample,
        after: PerSample) -> Tuple[List[str], Dict[str, np.ndarray]]:
    """Heads in ``after``'s order, and for each head its four arrays
    ``(train_before, heldout_before, train_after, heldout_after)`` stacked
    per set: ``{'T': (2K, |T'|), 'V': (2K, |V|)}``."""
    for name, value in (('before', before), ('after', after)):
        if not isinstance(value, Mapping):
            raise TypeError(f'{name} must be a mapping head -> (train '
                            f'samples, heldout samples), got '
                            f'{type(value).__name__}')
    only_before = [h for h in before if h not in after]
    only_after = [h for h in after if h not in before]
    if only_before or only_after:
        raise ValueError(f'before and after must have the same heads; only '
                         f'in before: {only_before}, only in after: '
                         f'{only_after}')
    heads = list(after)
    if not heads:
        raise ValueError('before/after must hold at least one head')
    rows: Dict[str, List[np.ndarray]] = {'T': [], 'V': []}
    for head in heads:
        for name, value in (('before', before[head]), ('after', after[head])):
            if isinstance(value, (str, bytes)) or len(value) != 2:
                raise TypeError(f'{name}[{head!r}] must be a (train '
                                'samples, heldout samples) pair')
        for set_name, index, what in (('T', 0, 'train'), ('V', 1, 'heldout')):
            first, second = _paired(before[head][index], after[head][index],
                                    f'before[{head!r}] {what}',
                                    f'after[{head!r}] {what}')
            if rows[set_name] and rows[set_name][0].size != first.size:
                raise ValueError(
                    f'every head must be measured on the same {what} '
                    f'samples: {heads[0]!r} has {rows[set_name][0].size}, '
                    f'{head!r} has {first.size}')
            rows[set_name] += [first, second]
    return heads, {k: np.stack(v) for k, v in rows.items()}


def _resample_counts(rng: np.random.Generator, num_resamples: int,
                     size: int) -> np.ndarray:
    """How often each sample is drawn in each resample: ``(R, size)``."""
    draws = rng.integers(0, size, size=(num_resamples, size))
    flat = draws + size * np.arange(num_resamples)[:, None]
    return np.bincount(
        flat.ravel(),
        minlength=num_resamples * size).reshape(num_resamples,
                                                size).astype(np.float64)


def _resampled_moments(counts: np.ndarray,
                       values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per resample, the mean of each row of ``values`` and the variance of
    the mean of each before - after difference.

    ``values`` holds (before, after) row pairs; returns ``means`` of shape
    ``(R, rows)`` and ``var_of_mean`` of shape ``(R, rows // 2)``.
    """
    size = values.shape[1]
    diffs = values[0::2] - values[1::2]
    # one matrix product gives every resampled mean (and the moments of the
    # differences); a non-finite value spreads to every resample of its
    # column, as it does to the point estimate
    with np.errstate(invalid='ignore', over='ignore'):
        stacked = np.concatenate([values, diffs, diffs * diffs]).T
        moments = counts @ stacked / size
    num = values.shape[0]
    means = moments[:, :num]
    diff_mean = moments[:, num:num + diffs.shape[0]]
    diff_square = moments[:, num + diffs.shape[0]:]
    if size < 2:
        var_of_mean = np.where(np.isfinite(diff_mean), 0.0, np.nan)
    else:
        with np.errstate(invalid='ignore', over='ignore'):
            # E[d^2] - E[d]^2 of the resample, made unbiased (ddof=1)
            var = (diff_square - diff_mean**2) * (size / (size - 1))
        var_of_mean = np.where(np.isnan(var), np.nan, np.maximum(var,
                                                                 0.0)) / size
    return means, var_of_mean


def bootstrap_weight_intervals(before: PerSample,
                               after: PerSample,
                               estimate_fn: EstimateFn,
                               num_resamples: int = 200,
                               level: float = 0.95,
                               seed: int = 0) -> Dict[str, Pair]:
    """Percentile bootstrap intervals of the weights that ``estimate_fn``
    computes from the heads' mean values.

    Each resample draws |V| indices of V and |T'| indices of T' with
    replacement; the same indices serve every head and both checkpoints,
    so the pairing (what makes G and O precise) and the correlation between
    heads (they see the same samples) are kept. For each resample, every
    head's four means and its paired ``(se_G, se_O)`` (as
    :func:`paired_standard_errors`, on the resample) are passed to
    ``estimate_fn``; each head's interval is the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of its values over the resamples.

    Args:
        before: ``{head: (train_samples, heldout_samples)}`` at checkpoint
            N; every head on the same T' and V samples, in the same order.
        after: The same at checkpoint N + n (its key order is the result's).
        estimate_fn: ``estimate_fn(before_means, after_means, ses)`` ->
            ``{head: weight}``, where ``*_means`` are
            ``{head: (train_mean, heldout_mean)}`` and ``ses``
            ``{head: (se_G, se_O)}`` (NaN for a head with a non-finite
            value), e.g. ``lambda b, a, s: blend_statistics(b, a,
            noise=s).weights``. Its values must be finite.
        num_resamples: Bootstrap resamples (>= 1).
        level: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling (the result is deterministic).

    Returns:
        ``{head: (low, high)}`` for every head ``estimate_fn`` returns,
        in ``after``'s order.

    Raises:
        ValueError: Heads differ, a head's sets have different sizes before
            and after or from another head's, an option is out of range, or
            ``estimate_fn`` returned a non-finite value.
        TypeError: An input is not a mapping of pairs.
    """
    if isinstance(num_resamples, bool) or not isinstance(
            num_resamples, numbers.Integral) or num_resamples < 1:
        raise ValueError(f'num_resamples must be an integer >= 1, got '
                         f'{num_resamples!r}')
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f'level must be in (0, 1), got {level!r}')
    heads, rows = _check_per_sample(before, after)
    rng = np.random.default_rng(seed)
    # V first, then T': a fixed order keeps a seed's draws reproducible
    means_v, var_v = _resampled_moments(
        _resample_counts(rng, num_resamples, rows['V'].shape[1]), rows['V'])
    means_t, var_t = _resampled_moments(
        _resample_counts(rng, num_resamples, rows['T'].shape[1]), rows['T'])
    se_g = np.sqrt(var_v)
    se_o = np.sqrt(var_v + var_t)

    values: Dict[str, List[float]] = {}
    for r in range(num_resamples):
        b_means, a_means, ses = {}, {}, {}
        for k, head in enumerate(heads):
            b_means[head] = (float(means_t[r, 2 * k]), float(means_v[r,
                                                                     2 * k]))
            a_means[head] = (float(means_t[r, 2 * k + 1]),
                             float(means_v[r, 2 * k + 1]))
            ses[head] = (float(se_g[r, k]), float(se_o[r, k]))
        for head, weight in estimate_fn(b_means, a_means, ses).items():
            values.setdefault(head, []).append(float(weight))

    alpha = (1.0 - float(level)) / 2.0
    intervals = {}
    order = heads + [h for h in values if h not in heads]
    for head in order:
        if head not in values:
            continue
        samples = np.asarray(values[head])
        if samples.size != num_resamples or not np.isfinite(samples).all():
            raise ValueError(f'estimate_fn must return a finite value for '
                             f'{head!r} on every resample')
        low, high = np.quantile(samples, [alpha, 1.0 - alpha])
        intervals[head] = (float(low), float(high))
    return intervals
