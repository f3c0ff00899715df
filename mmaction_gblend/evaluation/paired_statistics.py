"""Paired statistics of strategies over seeds (pure Python).

Two strategies run with the same seeds are compared seed by seed: the
difference of their scores per seed, its mean, a Student's t interval for
that mean and the shares of seeds won, tied and lost. Used by
``tools/comparison/statistics.py`` and ``benchmarks/mechanism_task.py``.

The t distribution is computed here (regularised incomplete beta function,
continued fraction), so nothing beyond the standard library is needed;
:func:`t_quantile` takes scipy's value where scipy is installed.
"""
import math
import statistics
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

__all__ = [
    't_cdf', 't_quantile', 't_quantile_bisect', 'paired_stats',
    'paired_differences', 'paired_comparison'
]

#: A record's score: the key of a field, or a function of the record.
Value = Union[str, Callable[[dict], float]]


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function.

    Modified Lentz's method (Numerical Recipes, ``betacf``).

    Args:
        a: The first shape parameter, > 0.
        b: The second shape parameter, > 0.
        x: The point, in (0, 1).

    Returns:
        The value of the continued fraction.
    """
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``.

    Args:
        a: The first shape parameter, > 0.
        b: The second shape parameter, > 0.
        x: The point; 0 below 0, 1 above 1.

    Returns:
        ``I_x(a, b)``, in [0, 1].
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
        a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """The CDF of Student's t distribution.

    Args:
        t: The point.
        df: The degrees of freedom, > 0.

    Returns:
        ``P(T <= t)`` for ``T`` with ``df`` degrees of freedom.
    """
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution.

    scipy's ``t.ppf`` where scipy is installed, else
    :func:`t_quantile_bisect` (to about 1e-12).

    Args:
        p: The probability, in (0, 1).
        df: The degrees of freedom, > 0.

    Returns:
        ``t`` with ``t_cdf(t, df) == p``.

    Raises:
        ValueError: ``p`` not in (0, 1) or ``df <= 0``.
    """
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f't_quantile needs 0 < p < 1 and df > 0, got '
                         f'p={p}, df={df}')
    try:
        from scipy.stats import t as student_t
    except ImportError:
        pass
    else:
        return float(student_t.ppf(p, df))
    return t_quantile_bisect(p, df)


def t_quantile_bisect(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t by bisection on :func:`t_cdf`.

    The pure-Python fallback of :func:`t_quantile` (which checks the
    arguments).

    Args:
        p: The probability, in (0, 1).
        df: The degrees of freedom, > 0.

    Returns:
        The quantile, to a relative 1e-13 of its magnitude.
    """
    if p < 0.5:
        return -t_quantile_bisect(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def paired_stats(diffs: Sequence[float], level: float = 0.95) -> dict:
    """Mean, ``level`` t-interval and share won of paired differences.

    Args:
        diffs: One difference per seed (strategy minus reference).
        level: The interval's coverage.

    Returns:
        ``dict(n, mean, sd, low, high, won, tied, lost)``: the interval is
        ``mean -/+ t_{(1+level)/2, n-1} * sd / sqrt(n)`` (``sd``, ``low``
        and ``high`` are ``None`` for a single seed); ``won``/``tied``/
        ``lost`` are the shares of seeds with a difference > 0, = 0 and
        < 0.

    Raises:
        ValueError: No difference.
    """
    n = len(diffs)
    if n == 0:
        raise ValueError('paired_stats needs at least one difference')
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else None
    if n > 1:
        half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = None
    return dict(n=n, mean=mean, sd=sd, low=low, high=high,
                won=sum(d > 0 for d in diffs) / n,
                tied=sum(d == 0 for d in diffs) / n,
                lost=sum(d < 0 for d in diffs) / n)


def _getter(value: Value) -> Callable[[dict], Any]:
    return value if callable(value) else (lambda record: record[value])


def paired_differences(records: Iterable[dict], strategy: str,
                       reference: str, value: Value = 'top1'
                       ) -> Tuple[List[int], List[float]]:
    """The per-seed differences of a strategy's score from a reference's.

    Args:
        records: One record per run, with ``strategy``, ``seed`` and the
            score ``value``; a record whose score is ``None`` is left out.
        strategy: The strategy.
        reference: The strategy it is compared with.
        value: The score: a record's key, or a function of a record.

    Returns:
        ``(seeds, diffs)``: the seeds both ran (sorted) and, per such seed,
        ``score(strategy) - score(reference)``.
    """
    get = _getter(value)
    by: Dict[str, Dict[int, float]] = {}
    for r in records:
        score = get(r)
        if score is not None:
            by.setdefault(r['strategy'], {})[r['seed']] = score
    a, b = by.get(strategy, {}), by.get(reference, {})
    seeds = sorted(set(a) & set(b))
    return seeds, [a[s] - b[s] for s in seeds]


def paired_comparison(records: Iterable[dict], strategy: str,
                      reference: str, value: Value = 'top1',
                      level: float = 0.95) -> Optional[dict]:
    """A strategy against a reference, seed by seed.

    Args:
        records: As for :func:`paired_differences`.
        strategy: The strategy.
        reference: The strategy it is compared with.
        value: As for :func:`paired_differences`.
        level: The coverage of the t-interval.

    Returns:
        ``dict(strategy, reference, seeds, diffs)`` and the entries of
        :func:`paired_stats`; ``None`` when the two share no seed.
    """
    seeds, diffs = paired_differences(records, strategy, reference, value)
    if not diffs:
        return None
    return dict(strategy=strategy, reference=reference, seeds=seeds,
                diffs=diffs, **paired_stats(diffs, level))
