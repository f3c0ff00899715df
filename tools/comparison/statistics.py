"""The runs summed up per strategy, and paired per seed against the
references (:mod:`mmaction_gblend.evaluation.paired_statistics`)."""
import math
import statistics
from collections import OrderedDict
from typing import List, Mapping, Optional, Sequence

from mmaction_gblend.evaluation.paired_statistics import paired_comparison
from mmaction_gblend.models.recognizers import FUSED
from .strategies import EVERY_REFERENCE, Strategy

#: The paired tables' name of each training set (by ``Strategy.part``).
TRAINING_SETS = {False: 'whole training set',
                 True: "G-Blend's training part"}


def mean_std(values: Sequence[Optional[float]]) -> Optional[tuple]:
    """Mean and sample standard deviation (0 for a single value) of the
    values that are not ``None`` (``None`` if none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _median_minutes(runs: List[dict]) -> Optional[float]:
    """Median wall time in minutes of the runs that have one (``None`` if
    none): robust to a run that shared the cores with another job."""
    walls = [r['wall_s'] / 60 for r in runs if r.get('wall_s') is not None]
    return statistics.median(walls) if walls else None


def _modality_heads(results: Sequence[dict]) -> List[str]:
    heads = {h for r in results for h in r['accuracy'] if h != 'prediction'}
    return sorted(heads)


def _weights(runs: List[dict], heads: List[str]) -> Optional[OrderedDict]:
    """The final weights by head (mean, min, max over the runs): the
    modality heads in the table's order, then fused."""
    weights = [r['weights'] for r in runs if r.get('weights')]
    if not weights:
        return None
    first = weights[0]
    names = [h for h in heads if h in first] + sorted(
        h for h in first if h not in heads and h != FUSED)
    names += [FUSED] if FUSED in first else []
    return OrderedDict(
        (h, dict(mean=statistics.fmean(w[h] for w in weights),
                 min=min(w[h] for w in weights),
                 max=max(w[h] for w in weights)))
        for h in names)


def summarise(results: Sequence[dict],
              order: Optional[Sequence[str]] = None,
              heads: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per strategy: top-1 (mean, std) of the prediction and each
    modality head, final weights by head (mean, min, max over seeds),
    median wall time, training clips, the number of seeds and the seeds
    themselves (``seed_list``).

    Args:
        results: The runs.
        order: The strategies' order (default: as they first appear).
        heads: The modality heads, in the table's order (default: those of
            the runs, sorted).
    """
    names = list(order or [])
    for r in results:
        if r['strategy'] not in names:
            names.append(r['strategy'])
    heads = list(heads) if heads is not None else _modality_heads(results)
    rows = []
    for strategy in names:
        runs = [r for r in results if r['strategy'] == strategy]
        if not runs:
            continue
        samples = {r.get('train_samples') for r in runs} - {None}
        rows.append(dict(
            strategy=strategy, seeds=len(runs),
            seed_list=[r['seed'] for r in runs],
            prediction=mean_std([r['accuracy']['prediction'] for r in runs]),
            heads={h: mean_std([r['accuracy'].get(h) for r in runs])
                   for h in heads},
            wall_min=_median_minutes(runs),
            train_samples=sorted(samples),
            weights=_weights(runs, heads)))
    return rows


def paired_tables(results: Sequence[dict],
                  strategies: Mapping[str, Strategy]) -> List[dict]:
    """The paired comparisons of the report, by reference.

    References: the strategies with a ``reference`` name (the best single
    modality, naive fusion), the best of each name by mean top-1, trained
    on the whole training set and on G-Blend's part. Each strategy is
    compared with the references its ``paired`` says: trained on the same
    clips as itself, or all.

    Args:
        results: The runs.
        strategies: The strategies by name, in the report's order (runs of
            others are not compared).

    Returns:
        ``dict(label, reference, rows)`` per reference that ran; ``rows``:
        :func:`paired_comparison` per strategy.
    """
    means = {r['strategy']: r['prediction'][0]
             for r in summarise(results, list(strategies))
             if r['strategy'] in strategies}
    names = list(OrderedDict.fromkeys(
        s.reference for s in strategies.values() if s.reference))
    tables = []
    score = lambda r: r['accuracy']['prediction']  # noqa: E731
    for part, training_set in TRAINING_SETS.items():
        for name in names:
            candidates = [n for n in means
                          if strategies[n].reference == name
                          and strategies[n].part == part]
            if not candidates:
                continue
            ref = max(candidates, key=lambda n: means[n])
            rows = [paired_comparison(results, n, ref, score) for n in means
                    if n != ref and (strategies[n].paired == EVERY_REFERENCE
                                     or strategies[n].part == part)]
            rows = [row for row in rows if row is not None]
            if rows:
                tables.append(dict(label=f'{name} ({training_set})',
                                   reference=ref, rows=rows))
    return tables
