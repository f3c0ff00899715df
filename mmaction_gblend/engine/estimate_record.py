"""What G-Blend records of an estimate: the history entry, the visualizer's
scalars and the log's table (pure functions, tested without a Runner)."""
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..blending import BlendEstimate

Pair = Tuple[float, float]


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.4g}'


def format_weights(weights: Mapping[str, float]) -> str:
    """``'rgb 0.6000, audio 0.1000, ...'``."""
    return ', '.join(f'{h} {w:.4f}' for h, w in weights.items())


def head_records(estimate: BlendEstimate, ses: Mapping[str, Pair],
                 intervals: Mapping[str, Pair],
                 trained_with: Optional[Mapping[str, float]] = None
                 ) -> Dict[str, dict]:
    """Per head: the losses at both ends, G and O with their standard
    errors, OGR, the weight and its interval, the policy's note; non-finite
    values as ``None`` (the history is strict JSON)."""
    heads = {}
    for head, s in estimate.stats.items():
        low, high = intervals.get(head, (math.nan, math.nan))
        record = dict(
            train_before=s.train_before, heldout_before=s.heldout_before,
            train_after=s.train_after, heldout_after=s.heldout_after,
            G=s.generalization, G_se=ses[head][0], O=s.overfitting,
            O_se=ses[head][1], OGR=s.ogr, weight=s.weight,
            weight_low=low, weight_high=high, note=s.note)
        if trained_with is not None:
            record['trained_with'] = trained_with[head]
        heads[head] = {k: _finite_or_none(v) if isinstance(v, float) else v
                       for k, v in record.items()}
    return heads


def estimate_scalars(heads: Mapping[str, dict]) -> Dict[str, float]:
    """``gblend/<quantity>/<head>`` for the visualizer."""
    return {f'gblend/{key}/{head}': record[key]
            for head, record in heads.items()
            for key in ('train_after', 'heldout_after', 'G', 'O', 'OGR',
                        'weight') if record[key] is not None}


def check_record(weights: Mapping[str, float],
                 check: Mapping[str, float]) -> dict:
    """The shadow estimator's weights from the same checkpoints, and the
    largest absolute difference from ``weights``."""
    return dict(weights=dict(check),
                max_abs_difference=max(abs(weights[h] - check[h])
                                       for h in weights))


def estimate_log(entry: Mapping, what: str, per_unit_weight: bool,
                 predicted: bool) -> str:
    """The log's table of one estimate (``entry``: a history entry)."""
    lines = [f'G-Blend estimate at epoch {entry["epoch"]} '
             f'({entry["estimator"]}, over {entry["horizon"]} epochs; {what}'
             + (', G and O per unit weight' if per_unit_weight else '')
             + (', "after" predicted to first order' if predicted else '')
             + '):']
    for head, h in entry['heads'].items():
        interval = '' if h['weight_low'] is None else \
            f' [{h["weight_low"]:.3f}, {h["weight_high"]:.3f}]'
        lines.append(
            f'  {head:>8}: train {_fmt(h["train_before"])} -> '
            f'{_fmt(h["train_after"])}, held-out '
            f'{_fmt(h["heldout_before"])} -> {_fmt(h["heldout_after"])}, '
            f'G {_fmt(h["G"])} ± {_fmt(h["G_se"])}, '
            f'O {_fmt(h["O"])} ± {_fmt(h["O_se"])}, '
            f'OGR {_fmt(h["OGR"])}, weight {h["weight"]:.4f}{interval}'
            + (f' ({h["note"]})' if h['note'] else ''))
    if entry.get('fallback'):
        lines.append(f'  no head generalised: {entry["fallback"]} weights')
    check = entry.get('shadow_check')
    if check is not None:
        lines.append('  shadow estimator from the same checkpoints: '
                     + format_weights(check['weights'])
                     + f' (largest difference '
                     f'{check["max_abs_difference"]:.4f})')
    return '\n'.join(lines)


def zero_weight_warning(weights: Mapping[str, float],
                        predict_head: str) -> Optional[str]:
    """The warning for heads given weight 0 (``None``: there are none).

    A zero weight stops that head's training until the next estimate (for
    the trajectory estimator, for good: it measures how the head trains);
    if it is the prediction head, the prediction stays untrained.
    """
    untrained: List[str] = [h for h, w in weights.items() if w == 0]
    if not untrained:
        return None
    return (f'G-Blend gave weight 0 to {untrained}: '
            + (f'the {predict_head} head is the prediction, and it will '
               'not be trained; ' if predict_head in untrained else '')
            + 'set GradientBlendingHook.min_weight > 0 to keep every head '
            'training')


def start_log(mode: str, estimator: str, plan: Sequence, heldout: int,
              probe: int, shadows: str, train: int,
              main_data: Optional[str]) -> str:
    """The line logged before training: the plan and the data."""
    return (f'G-Blend: {mode}, {estimator} estimator, estimates at epochs '
            + ', '.join(f'{e.epoch} (over {e.horizon})' for e in plan)
            + f'; held-out {heldout} samples, probe {probe}'
            + (f'; {shadows}' if shadows else '')
            + f'; the main run trains on {train} samples, '
            + ('the whole training set, V included' if main_data == 'all'
               else 'the training part, V left out'))
