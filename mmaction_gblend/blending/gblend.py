"""Gradient-Blending weights from per-head train / held-out measurements.

Pure functions (standard library only: no torch, no mmengine) implementing
the weight estimate of Gradient Blending (G-Blend): Wang, Tran, Feiszli,
"What Makes Training Multi-Modal Classification Networks Hard?", CVPR 2020
(arXiv:1905.12681), Sec. 3, Proposition 1 and Eq. 7.

Each head ``i`` (every modality's own head and the fused head) is measured at
two checkpoints ``N`` (``before``) and ``N + n`` (``after``): its mean loss
on a fixed subset ``T'`` of the training data (``L^T``) and on a held-out
subset ``V`` of the training set (``L^V``). With ``O_N = L^V_N - L^T_N``:

* generalization ``G_i = L^V_N - L^V_{N+n}`` (decrease of held-out loss),
* overfitting ``O_i = O_{N+n} - O_N`` (increase of the train/held-out gap),
* overfitting-to-generalization ratio ``OGR_i = |O_i / G_i|``,
* weight ``w_i = (1 / Z) * G_i / O_i**2`` with ``Z = sum_i G_i / O_i**2``.

The blended training loss is then ``L_blend = sum_i w_i * L_i`` (Eq. 7).
The printed paper has a stray factor 2 in ``Z``, which would make the weights
sum to 2; the plain sum is used here so they sum to 1.

Everything the paper leaves undefined (``G <= 0``, ``O ~ 0``, NaN, all heads
unusable) is decided by the policy documented in :func:`blend_statistics`.
"""
import math
import numbers
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = [
    'HeadBlendStats', 'BlendEstimate', 'blend_statistics',
    'estimate_blend_weights', 'check_blend_weights'
]

#: Tolerance on ``sum(previous) == 1`` for user-supplied previous weights.
PREVIOUS_SUM_TOL = 1e-6
#: Tolerance on ``sum(weights) == 1`` of :func:`check_blend_weights` by
#: default: a float32 buffer (the model's ``blend_weights``) read back as
#: floats misses 1 by far more than ``PREVIOUS_SUM_TOL``.
BLEND_WEIGHT_SUM_TOL = 1e-4
#: Tolerance on ``sum(weights) == 1`` checked before returning.
RESULT_SUM_TOL = 1e-9

NOTE_NON_FINITE = 'non-finite'
NOTE_NO_GENERALIZATION = 'no generalization (G <= 0)'
NOTE_WITHIN_NOISE = 'G within noise'
NOTE_OVERFIT_FLOORED = 'overfitting floored'
NOTE_SCORE_CLIPPED = 'score above float range (clipped; weight exact)'
NOTE_SCORE_UNDERFLOW = 'score below float range (reported 0; weight exact)'
NOTE_MIN_WEIGHT = 'min_weight'
NOTE_PREVIOUS_MIN_WEIGHT = 'previous raised to min_weight'
NOTE_SMOOTHED = 'smoothed'
NOTE_FLOOR = 'floor'
NOTE_UNTRAINED = 'trained with weight 0: no estimate'

_FLOAT_MAX = sys.float_info.max


@dataclass(frozen=True)
class HeadBlendStats:
    """One head's numbers behind its blend weight, for logging.

    Attributes:
        train_before: Train-subset value (loss, or accuracy) at checkpoint N.
        heldout_before: Held-out value at checkpoint N.
        train_after: Train-subset value at checkpoint N + n.
        heldout_after: Held-out value at checkpoint N + n.
        generalization: ``G`` after the sign convention (positive means the
            held-out value improved). May be negative, or NaN when an input
            is not finite.
        overfitting: ``O``, the increase of the train/held-out gap (raw, not
            floored). May be negative, or NaN.
        ogr: ``|O / G|``; ``inf`` if ``G == 0``; NaN if ``G`` or ``O`` is not
            finite.
        score: The unnormalised weight ``G_eff / O_eff**2`` (0 for a head
            the policy excluded; ``G_eff = G - se_G`` and
            ``O_eff**2 = max(O**2 + se_O**2, overfit_floor**2)``, see
            :func:`blend_statistics`); always finite and ``>= 0``. A score
            beyond the float range is reported as the largest float (or 0
            below it) while the weight is still computed exactly in log
            space.
        weight: The final weight of the head.
        note: ``''``, or why the policy intervened (``'; '``-separated):
            ``'non-finite'``, ``'no generalization (G <= 0)'``,
            ``'G within noise'``, ``'overfitting floored'``,
            ``'min_weight'``, ``'smoothed'``, ``'floor'``, ...
    """

    train_before: float
    heldout_before: float
    train_after: float
    heldout_after: float
    generalization: float
    overfitting: float
    ogr: float
    score: float
    weight: float
    note: str


@dataclass(frozen=True)
class BlendEstimate:
    """The result of :func:`blend_statistics`.

    Attributes:
        weights: Head name -> weight, in the key order of ``after``; every
            value finite and ``>= 0``, summing to 1.
        stats: Head name -> :class:`HeadBlendStats`, same order.
        fallback: ``None`` when at least one head had a usable score;
            otherwise ``'previous'`` (the previous weights were kept) or
            ``'uniform'`` (no previous weights were given).
    """

    weights: Dict[str, float]
    stats: Dict[str, HeadBlendStats]
    fallback: Optional[str]


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _to_float(value: Any, what: str) -> float:
    """``value`` as a float; TypeError unless it is a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{what} must be a real number, got {value!r} '
                        f'({type(value).__name__})')
    try:
        return float(value)
    except OverflowError:  # e.g. an int beyond the float range
        return math.inf if value > 0 else -math.inf


def _to_pair(value: Any, what: str) -> Tuple[float, float]:
    """``(train, heldout)`` as two floats."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f'{what} must be a (train, heldout) pair of numbers, '
                        f'got {value!r}')
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f'{what} must be a (train, heldout) pair of numbers, '
                        f'got {value!r}') from None
    if len(items) != 2:
        raise TypeError(f'{what} must be a (train, heldout) pair of numbers, '
                        f'got {len(items)} values: {value!r}')
    return (_to_float(items[0], f'{what}[0] (train)'),
            _to_float(items[1], f'{what}[1] (heldout)'))


def _check_same_heads(reference: Mapping[str, Any], other: Mapping[str, Any],
                      ref_name: str, other_name: str) -> None:
    """ValueError naming the heads present in only one of the two mappings."""
    only_ref = [k for k in reference if k not in other]
    only_other = [k for k in other if k not in reference]
    if only_ref or only_other:
        raise ValueError(
            f'{ref_name} and {other_name} must have the same heads; '
            f'only in {ref_name}: {only_ref}, '
            f'only in {other_name}: {only_other}')


def _check_mapping(value: Any, name: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f'{name} must be a mapping head name -> '
                        f'(train, heldout), got {type(value).__name__}')


def _check_head_mapping(value: Any, name: str, what: str,
                        heads: List[str]) -> None:
    """TypeError unless ``value`` is a mapping; ValueError naming the heads
    it has that are not measured."""
    if not isinstance(value, Mapping):
        raise TypeError(f'{name} must be a mapping head name -> {what}, '
                        f'got {type(value).__name__}')
    unknown = sorted(set(value) - set(heads))
    if unknown:
        raise ValueError(f'{name} names heads that are not measured: '
                         f'{unknown}')


def _validate_noise(noise: Any, heads: List[str]
                    ) -> Dict[str, Tuple[float, float]]:
    """``noise`` as ``{head: (se_G, se_O)}`` floats (NaN kept: unusable).
    """
    _check_head_mapping(noise, 'noise', '(se_G, se_O)', heads)
    result = {}
    for head, value in noise.items():
        if isinstance(value, numbers.Real):
            raise TypeError(
                f'noise[{head!r}] must be a (se_G, se_O) pair of standard '
                f'errors (paired_standard_errors), got the number {value!r}')
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
        if len(pair) != 2:
            raise TypeError(f'noise[{head!r}] must be a (se_G, se_O) pair, '
                            f'got {value!r}')
        ses = (_to_float(pair[0], f'noise[{head!r}][0] (se_G)'),
               _to_float(pair[1], f'noise[{head!r}][1] (se_O)'))
        for what, se in zip(('se_G', 'se_O'), ses):
            # NaN is let through: the head is then unusable (score 0)
            if se < 0:
                raise ValueError(f'noise[{head!r}] {what} must be >= 0, '
                                 f'got {se!r}')
        result[head] = ses
    return result


def _validate_floors(floors: Any, heads: List[str],
                     min_weight: float) -> Dict[str, float]:
    """``floors`` as floats; ValueError if it cannot be met."""
    _check_head_mapping(floors, 'floors', 'minimum weight', heads)
    result = {}
    for head, value in floors.items():
        floor = _check_option(value, f'floors[{head!r}]')
        if not 0.0 <= floor < 1.0:
            raise ValueError(f'floors[{head!r}] must be in [0, 1), got '
                             f'{value!r}')
        result[head] = floor
    # every head keeps max(its floor, min_weight): these must fit in 1
    need = math.fsum(max(result.get(h, 0.0), min_weight) for h in heads)
    if need > 1.0 + 1e-12:
        raise ValueError(
            f'floors (with min_weight={min_weight!r} for the other heads) '
            f'need a total weight of {need!r} > 1: {result}')
    return result


def _check_option(value: Any, name: str) -> float:
    """A finite real option value."""
    number = _to_float(value, name)
    if not math.isfinite(number):
        raise ValueError(f'{name} must be finite, got {value!r}')
    return number


def check_blend_weights(weights: Mapping[str, float],
                        heads: Optional[Sequence[str]],
                        key: str,
                        sum_tolerance: float = BLEND_WEIGHT_SUM_TOL
                        ) -> List[float]:
    """Validate blend weights: one per head, finite, >= 0, summing to 1.

    The one check of a set of blend weights ``{head: w}``: the model's
    ``blend_weights``, ``GradientBlendingHook.weights`` and the
    ``previous`` weights of :func:`blend_statistics`, each under its name.

    Args:
        weights: ``{head: weight}``.
        heads: The heads, in order; ``None`` checks the values only (a
            hook's config, before the model exists).
        key: The config key or argument, for the messages (e.g.
            ``model.blend_weights``).
        sum_tolerance: How far the sum may be from 1.

    Returns:
        The weights as floats, in the order of ``heads`` (else of
        ``weights``).

    Raises:
        ValueError: Naming ``key``, the heads and what was expected.
    """
    if not isinstance(weights, Mapping):
        raise ValueError(f'{key} must be a dict {{head: weight}}, got '
                         f'{weights!r}')
    if heads is None:
        heads = list(weights)
    if set(weights) != set(heads):
        raise ValueError(
            f'{key} must give one weight per head {list(heads)}, got '
            f'{sorted(weights)}')
    for head in heads:
        value = weights[head]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f'{key}[{head!r}] must be a number, got '
                             f'{value!r}')
    values = [float(weights[h]) for h in heads]
    if not values:
        raise ValueError(f'{key} must give a weight to at least one head')
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f'{key} must be finite, got {dict(weights)}')
    if min(values) < 0:
        raise ValueError(f'{key} must be >= 0, got {dict(weights)}')
    total = math.fsum(values)
    if abs(total - 1.0) > sum_tolerance:
        raise ValueError(f'{key} must sum to 1, got {dict(weights)} '
                         f'(sum {total:.6g})')
    return values


# --------------------------------------------------------------------------
# math helpers
# --------------------------------------------------------------------------
def _normalise(values: Dict[str, float]) -> Dict[str, float]:
    """Divide by the (exact) sum; the sum must be positive and finite."""
    total = math.fsum(values.values())
    return {k: v / total for k, v in values.items()}


def _reported_score(g: float, o_eff: float, log_score: float) -> float:
    """``g / o_eff**2`` as a finite float (clipped outside the float range).
    """
    denom = o_eff * o_eff
    if 0.0 < denom < math.inf:
        score = g / denom
        if math.isfinite(score) and score > 0.0:
            return score
    try:
        return math.exp(log_score)  # underflow gives 0.0 quietly
    except OverflowError:
        return _FLOAT_MAX


def _apply_min_weight(weights: Dict[str, float],
                      min_weight: float) -> Dict[str, float]:
    """``min_weight + (1 - K * min_weight) * w`` for each head."""
    spare = max(0.0, 1.0 - len(weights) * min_weight)
    return {k: min_weight + spare * w for k, w in weights.items()}


def _apply_floors(weights: Dict[str, float], floors: Dict[str, float],
                  min_weight: float) -> Tuple[Dict[str, float], List[str]]:
    """Raise every head to ``max(floor, min_weight)``, scaling the others
    down proportionally (sum 1); returns the weights and the heads raised
    to their floor.

    Scaling the others down may take one of them below its own bound; it
    is then fixed at that bound too and the rest rescaled, until none is
    below (at most K rounds).
    """
    bounds = {h: max(floors.get(h, 0.0), min_weight) for h in weights}
    fixed: Dict[str, float] = {}
    result = dict(weights)
    for _ in range(len(weights)):
        below = [
            h for h in weights
            if h not in fixed and result[h] < bounds[h] * (1 - 1e-15)
        ]
        if not below:
            break
        for head in below:
            fixed[head] = bounds[head]
        free = [h for h in weights if h not in fixed]
        spare = max(0.0, 1.0 - math.fsum(fixed.values()))
        mass = math.fsum(weights[h] for h in free)
        result = {}
        for head in weights:  # keeps the heads' order
            if head in fixed:
                result[head] = fixed[head]
            else:
                # all the free mass 0 (only if the bounds sum to ~1): share
                # what is left evenly
                result[head] = (spare * weights[head] / mass if mass > 0
                                else spare / len(free))
    raised = [h for h in fixed if floors.get(h, 0.0) > 0
              and weights[h] < floors[h] * (1 - 1e-15)]
    return result, raised


def _add_note(notes: Dict[str, List[str]], head: str, note: str) -> None:
    if note not in notes[head]:
        notes[head].append(note)


# --------------------------------------------------------------------------
# the steps of blend_statistics
# --------------------------------------------------------------------------
Pairs = Tuple[Tuple[float, float], Tuple[float, float]]


def _check_heads(before: Mapping[str, Any],
                 after: Mapping[str, Any]) -> Dict[str, Pairs]:
    """Head -> its ``(train, heldout)`` pairs before and after, checked; in
    the order of ``after``."""
    _check_mapping(before, 'before')
    _check_mapping(after, 'after')
    _check_same_heads(before, after, 'before', 'after')
    if len(after) == 0:
        raise ValueError('before/after must hold at least one head')
    return {head: (_to_pair(before[head], f'before[{head!r}]'),
                   _to_pair(after[head], f'after[{head!r}]'))
            for head in after}


def _check_weight_options(
    overfit_floor: Any, min_weight: Any, smoothing: Any, previous: Any,
    heads: List[str]
) -> Tuple[float, float, float, Optional[Dict[str, float]]]:
    """``overfit_floor``, ``min_weight``, ``smoothing`` and ``previous``,
    checked."""
    floor = _check_option(overfit_floor, 'overfit_floor')
    if not floor > 0:
        raise ValueError(f'overfit_floor must be > 0, got {overfit_floor!r}')
    num_heads = len(heads)
    min_w = _check_option(min_weight, 'min_weight')
    if min_w < 0 or min_w * num_heads > 1.0 + 1e-12:
        raise ValueError(f'min_weight must be in [0, 1/{num_heads}] for '
                         f'{num_heads} heads, got {min_weight!r}')
    smooth = _check_option(smoothing, 'smoothing')
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f'smoothing must be in [0, 1), got {smoothing!r}')
    if smooth > 0 and previous is None:
        raise ValueError('smoothing > 0 needs the previous weights '
                         '(previous=...)')
    prev = None
    if previous is not None:
        _check_mapping(previous, 'previous')
        prev = dict(zip(heads, check_blend_weights(
            previous, heads, 'previous', sum_tolerance=PREVIOUS_SUM_TOL)))
    return floor, min_w, smooth, prev


def _check_response_scale(response_scale: Any, after: Mapping[str, Any],
                          heads: List[str]) -> Dict[str, float]:
    """Head -> the factor its changes are divided by (``{}``: none)."""
    if response_scale is None:
        return {}
    _check_mapping(response_scale, 'response_scale')
    _check_same_heads(after, response_scale, 'after', 'response_scale')
    scale = {}
    for head in heads:
        value = _check_option(response_scale[head],
                              f'response_scale[{head!r}]')
        if value < 0:
            raise ValueError(f'response_scale[{head!r}] must be >= 0, '
                             f'got {value!r}')
        scale[head] = value
    return scale


def _changes(pairs: Pairs, use_accuracy: bool) -> Tuple[float, float, float]:
    """One head's ``G``, ``O`` and ``OGR = |O / G|``."""
    (t_before, v_before), (t_after, v_after) = pairs
    if use_accuracy:
        g = v_after - v_before
        o = (t_after - v_after) - (t_before - v_before)
    else:
        g = v_before - v_after
        o = (v_after - t_after) - (v_before - t_before)
    if not (math.isfinite(g) and math.isfinite(o)):
        ogr = math.nan
    elif g == 0:
        ogr = math.inf
    else:
        ogr = abs(o) / abs(g)
    return g, o, ogr


def _head_score(pairs: Pairs, g: float, o: float, se: Tuple[float, float],
                unit: float,
                floor: float) -> Tuple[Optional[float], float, List[str]]:
    """One head's ``log(G_eff / O_eff**2)`` (``None``: score 0), its
    reported score and the notes of the policy.

    ``se``: ``(se_G, se_O)``; ``unit``: the loss weight the head trained
    with (its ``response_scale``, 1 by default).
    """
    se_g, se_o = se
    if not all(map(math.isfinite, pairs[0] + pairs[1] + (g, o, se_g, se_o))):
        return None, 0.0, [NOTE_NON_FINITE]
    if unit == 0:
        return None, 0.0, [NOTE_UNTRAINED]
    if g <= 0:
        return None, 0.0, [NOTE_NO_GENERALIZATION]
    if g - se_g <= 0:
        return None, 0.0, [NOTE_WITHIN_NOISE]
    notes = []
    g_eff = (g - se_g) / unit
    # sqrt(O**2 + se_O**2) without overflow; exactly |O| if se_O = 0
    o_eff = math.hypot(o, se_o) / unit
    if o_eff < floor:
        o_eff = floor
        notes.append(NOTE_OVERFIT_FLOORED)
    log_score = math.log(g_eff) - 2.0 * math.log(o_eff)
    score = _reported_score(g_eff, o_eff, log_score)
    if score == _FLOAT_MAX:
        notes.append(NOTE_SCORE_CLIPPED)
    elif score == 0.0:
        notes.append(NOTE_SCORE_UNDERFLOW)
    return log_score, score, notes


def _estimated_weights(log_scores: Dict[str, float], heads: List[str],
                       min_w: float,
                       notes: Dict[str, List[str]]) -> Dict[str, float]:
    """The scores normalised in log space, then ``min_weight`` applied."""
    shift = max(log_scores.values())
    raw = _normalise({
        h: math.exp(log_scores[h] - shift) if h in log_scores else 0.0
        for h in heads})
    if not min_w > 0:
        return raw
    for head in heads:
        if raw[head] < min_w:
            _add_note(notes, head, NOTE_MIN_WEIGHT)
    return _apply_min_weight(raw, min_w)


def _blended_weights(
        log_scores: Dict[str, float], heads: List[str], min_w: float,
        smooth: float, prev: Optional[Dict[str, float]],
        notes: Dict[str, List[str]]
) -> Tuple[Dict[str, float], Optional[str]]:
    """The weights before the floors and the fallback used, if any."""
    # previous, raised to min_weight if it violates it (noted where used)
    prev_raised = prev is not None and min(prev.values()) < min_w
    if prev_raised:
        prev = _apply_min_weight(prev, min_w)
    if log_scores:
        weights = _estimated_weights(log_scores, heads, min_w, notes)
        if smooth > 0:
            assert prev is not None
            weights = {
                head: (1.0 - smooth) * weights[head] + smooth * prev[head]
                for head in heads
            }
            for head in heads:
                _add_note(notes, head, NOTE_SMOOTHED)
                if prev_raised:
                    _add_note(notes, head, NOTE_PREVIOUS_MIN_WEIGHT)
        return weights, None
    if prev is not None:
        if prev_raised:
            for head in heads:
                _add_note(notes, head, NOTE_PREVIOUS_MIN_WEIGHT)
        return dict(prev), 'previous'
    return {head: 1.0 / len(heads) for head in heads}, 'uniform'


def _final_weights(weights: Dict[str, float], head_floors: Dict[str, float],
                   min_w: float,
                   notes: Dict[str, List[str]]) -> Dict[str, float]:
    """The weights renormalised, raised to their floors and checked."""
    weights = _normalise(weights)
    if head_floors:
        weights, raised = _apply_floors(weights, head_floors, min_w)
        for head in raised:
            _add_note(notes, head, NOTE_FLOOR)
        weights = _normalise(weights)
    if (abs(math.fsum(weights.values()) - 1.0) > RESULT_SUM_TOL
            or not all(math.isfinite(w) and w >= 0 for w in weights.values())):
        raise RuntimeError(f'internal error: invalid blend weights {weights}')
    return weights


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def blend_statistics(before: Mapping[str, Any],
                     after: Mapping[str, Any],
                     *,
                     use_accuracy: bool = False,
                     overfit_floor: float = 1e-4,
                     previous: Optional[Mapping[str, float]] = None,
                     min_weight: float = 0.0,
                     smoothing: float = 0.0,
                     noise: Optional[Mapping[str, Tuple[float, float]]] = None,
                     floors: Optional[Mapping[str, float]] = None,
                     response_scale: Optional[Mapping[str, float]] = None
                     ) -> BlendEstimate:
    """G-Blend weights and the per-head numbers behind them.

    Implements Proposition 1 / Eq. 7 of Wang, Tran, Feiszli, "What Makes
    Training Multi-Modal Classification Networks Hard?" (CVPR 2020, Sec. 3).
    For every head ``i``, from its values at checkpoints N (``before``) and
    N + n (``after``)::

        O_N = L^V_N - L^T_N                 # train/held-out gap
        G_i = L^V_N - L^V_{N+n}             # held-out loss decrease
        O_i = O_{N+n} - O_N                 # gap increase
        OGR_i = |O_i / G_i|
        w_i = (G_i / O_i**2) / Z,   Z = sum_j G_j / O_j**2

    The printed paper has a stray factor 2 in ``Z`` (erratum): it would make
    the weights sum to 2, so the plain sum is used and the weights sum to 1.

    With ``use_accuracy=True`` the values are accuracies (higher is better)
    and the signs flip: ``G_i = A^V_{N+n} - A^V_N``, gap ``= A^T - A^V``,
    ``O_i = gap_{N+n} - gap_N``. Accuracies ``a = 1 - l`` give exactly the
    same ``G``, ``O`` and weights as the losses ``l``.

    Policy (the paper gives no rule for these cases):
        * Non-finite input: a head with any NaN/inf value (or whose ``G`` /
          ``O`` overflows) gets score 0, note ``'non-finite'``; NaN never
          reaches a weight.
        * ``G_i <= 0`` (held-out loss did not decrease / held-out accuracy
          did not increase): score 0, note ``'no generalization (G <= 0)'``.
          A head that did not generalise earns no weight; ``abs(G)`` is not
          taken, so a rising held-out loss is never rewarded.
        * ``O`` enters squared (the derivation's sigma**2 is a variance), so
          its sign does not matter. ``|O_i| < overfit_floor`` is raised to
          ``overfit_floor`` (note ``'overfitting floored'``): a head that did
          not overfit gets a large but finite score. ``overfit_floor`` must
          be finite and > 0.
        * Measurement noise (``noise``, optional): ``noise[i] =
          (se_G, se_O)``, the standard errors of head ``i``'s ``G`` and
          ``O`` (of the paired per-sample differences, see
          :func:`.paired_standard_errors`; a caller's multiple of them
          sets how cautious the rule is). The score becomes
          ``G_eff / O_eff**2`` with ``G_eff = G - se_G`` and
          ``O_eff**2 = max(O**2 + se_O**2, overfit_floor**2)``.
          ``G - se_G`` is a lower confidence bound on the true ``G``:
          generalisation the measurement cannot resolve earns nothing
          (``G_eff <= 0``: score 0, note ``'G within noise'``), and the
          score grows continuously from 0 as ``G`` clears its noise, so
          a change of ``G`` by a fraction of ``se_G`` cannot make the
          weight jump (a hard threshold at ``se_G`` would). ``O**2 +
          se_O**2`` is the posterior mean of the true ``O**2`` given the
          estimate (flat prior, Gaussian error), the quantity that enters
          the derivation; a near-zero but noisy ``O`` can then not give a
          huge score. Without a noise model a held-out loss that moved by
          chance (``G`` and ``O`` both near 0) earns a huge ``G / O**2``
          and takes nearly all the weight. A head missing from ``noise``
          (or with zeros) gets the paper's exact ``G / O**2``. A NaN in
          ``noise[i]`` (from a non-finite sample) makes head ``i``
          unusable: score 0, note ``'non-finite'``.
        * Overflow: scores are normalised in log space
          (``log G - 2 log O_eff``, shifted by the maximum), so huge or tiny
          finite scores still give exact, finite weights. The reported
          ``score`` is clipped to the float range (noted).
        * All scores 0 (no usable head): fallback to ``previous`` if given
          (kept as they are, only renormalised; smoothing towards them is
          a no-op), else uniform weights;
          ``BlendEstimate.fallback`` is ``'previous'`` / ``'uniform'``.
          ``previous`` must have the same heads, finite values >= 0 summing
          to 1 within 1e-6 (ValueError otherwise).
        * ``min_weight`` in ``[0, 1 / K]`` for K heads: final
          ``w = min_weight + (1 - K * min_weight) * w_raw``, so every head
          keeps at least ``min_weight`` and the sum stays 1 (note
          ``'min_weight'`` on heads whose raw weight was below it).
          If ``previous`` has a head below ``min_weight``, the same map is
          applied to ``previous`` before it is used (fallback or smoothing),
          note ``'previous raised to min_weight'``; the bound therefore
          holds for every result.
        * ``smoothing`` ``s`` in ``[0, 1)``: after ``min_weight``,
          ``w = (1 - s) * w_new + s * w_previous`` (note ``'smoothed'``);
          ``s > 0`` requires ``previous``.
        * ``floors`` (optional, ``{head: f}`` with each ``f`` in
          ``[0, 1)``), applied last, to the estimate as to the fallback
          weights: a head below its floor is raised to it and the other
          heads are scaled down proportionally so the sum stays 1 (note
          ``'floor'``; a head scaled below ``min_weight`` stays at it). For
          the prediction (fused) head: a head with weight 0 is not trained
          until the next estimate, and the model's prediction would stay
          untrained. The floors, with ``min_weight`` for the other heads,
          must sum to at most 1, and name measured heads (ValueError).
        * ``response_scale`` (optional, ``{head: s}``, every head, each
          finite and ``>= 0``): the measured changes are ``s`` times what
          the estimate wants, so ``G``, ``O`` and their standard errors are
          divided by ``s`` before scoring (the reported ``G`` and ``O`` stay
          as measured). The trajectory estimator passes the loss weights
          the heads trained with: to first order a head trained with weight
          ``w`` moves ``w`` times as far as on its own loss alone
          (Algorithm 1's shadow copy), so ``G / O**2`` measured on the main
          run is the shadow's score divided by ``w``. ``s = 0``: the head
          did not train; score 0, note ``'trained with weight 0: no
          estimate'``.
        * Finally the weights are renormalised (float error) and checked:
          finite, ``>= 0``, sum 1 within 1e-9; keys follow ``after``.
        * Input errors: ``before`` / ``after`` with different heads or no
          head, bad option values -> ValueError (naming the heads);
          values that are not ``(train, heldout)`` pairs of real numbers ->
          TypeError. Inputs are never mutated.

    Args:
        before: Head name -> ``(train_value, heldout_value)`` at checkpoint
            N. Heads are every modality's head and the fused head; names are
            free.
        after: The same heads at checkpoint N + n. Its key order is the
            order of the result.
        use_accuracy: Values are accuracies (higher is better), not losses.
        overfit_floor: Lower bound on ``|O_i|`` (> 0).
        previous: Weights of the previous estimate (online G-Blend), used
            for smoothing and as the first fallback.
        min_weight: Minimum weight of every head, in ``[0, 1 / K]``.
        smoothing: Exponential smoothing factor towards ``previous``, in
            ``[0, 1)``.
        noise: Head name -> ``(se_G, se_O)``, the standard errors (>= 0)
            of its ``G`` and ``O``, already scaled as the caller wants;
            heads it does not name have none.
        floors: Head name -> least weight of that head, applied last.
        response_scale: Head name -> the factor its measured changes are
            divided by (the trajectory estimator's weights in use).

    Returns:
        BlendEstimate: the weights, per-head :class:`HeadBlendStats` and the
        fallback used, if any.

    Raises:
        ValueError: Heads differ or are empty, or an option is out of range.
        TypeError: A value is not a ``(train, heldout)`` pair of numbers.

    Example:
        >>> before = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)}
        >>> after = {'rgb': (0.5, 1.0), 'audio': (0.25, 1.25)}
        >>> est = blend_statistics(before, after)
        >>> # rgb:   G = 1.25 - 1.0 = 0.25, O = 0.5 - 0.25 = 0.25 -> 4
        >>> # audio: G = 1.5 - 1.25 = 0.25, O = 1.0 - 0.5 = 0.5  -> 1
        >>> {k: round(w, 6) for k, w in est.weights.items()}
        {'rgb': 0.8, 'audio': 0.2}
        >>> est.stats['audio'].ogr, est.fallback
        (2.0, None)
    """
    values = _check_heads(before, after)
    heads = list(values)
    floor, min_w, smooth, prev = _check_weight_options(
        overfit_floor, min_weight, smoothing, previous, heads)
    ses = _validate_noise(noise, heads) if noise is not None else {}
    scale = _check_response_scale(response_scale, after, heads)
    head_floors = (
        _validate_floors(floors, heads, min_w) if floors is not None else {})

    changes = {head: _changes(values[head], use_accuracy) for head in heads}
    notes: Dict[str, List[str]] = {}
    scores: Dict[str, float] = {}
    log_scores: Dict[str, float] = {}
    for head in heads:
        g, o, _ = changes[head]
        log_score, scores[head], notes[head] = _head_score(
            values[head], g, o, ses.get(head, (0.0, 0.0)),
            scale.get(head, 1.0), floor)
        if log_score is not None:
            log_scores[head] = log_score

    weights, fallback = _blended_weights(log_scores, heads, min_w, smooth,
                                         prev, notes)
    weights = _final_weights(weights, head_floors, min_w, notes)
    stats = {
        head: HeadBlendStats(*values[head][0], *values[head][1],
                             *changes[head], score=scores[head],
                             weight=weights[head],
                             note='; '.join(notes[head]))
        for head in heads
    }
    return BlendEstimate(weights=weights, stats=stats, fallback=fallback)


def estimate_blend_weights(before: Mapping[str, Any], after: Mapping[str, Any],
                           **policy: Any) -> Dict[str, float]:
    """G-Blend weights ``w_i = (G_i / O_i**2) / sum_j G_j / O_j**2``.

    Shorthand for ``blend_statistics(before, after, **policy).weights``; see
    :func:`blend_statistics` for the formula (Wang, Tran, Feiszli, CVPR
    2020, Sec. 3, Proposition 1, Eq. 7; the paper's factor 2 in ``Z`` is an
    erratum and is not used), the sign conventions, the Policy for the cases
    the paper leaves undefined, and the errors raised.

    Args:
        before: Head name -> ``(train_value, heldout_value)`` at checkpoint
            N.
        after: The same heads at checkpoint N + n (its key order is kept).
        **policy: Keyword options of :func:`blend_statistics`
            (``use_accuracy``, ``overfit_floor``, ``previous``,
            ``min_weight``, ``smoothing``, ``noise``, ``floors``).

    Returns:
        Dict[str, float]: Head name -> weight; finite, ``>= 0``, sum 1.

    Example:
        >>> w = estimate_blend_weights(
        ...     {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)},
        ...     {'rgb': (0.5, 1.0), 'audio': (0.25, 1.25)})
        >>> round(w['rgb'], 6), round(w['audio'], 6)
        (0.8, 0.2)
    """
    return blend_statistics(before, after, **policy).weights
