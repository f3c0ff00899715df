"""G-Blend's weight policy: from per-sample measurements to weights.

The paper's rule is ``w_i ∝ G_i / O_i²`` (Proposition 1); what it leaves
open (noise, floors, smoothing; see :func:`~mmaction_gblend.blending.
blend_statistics`) is one validated object, :class:`BlendPolicy`, built
and checked when ``GradientBlendingHook`` is built, so a typo fails before
any training. The estimators measure; the policy turns what they measured
into weights, the same way for every estimator.
"""
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..blending import (BlendEstimate, blend_statistics,
                        bootstrap_weight_intervals, paired_standard_errors)
from ..utils.choices import check_flag, check_integer, check_number
from .blend_schedule import HOOK_KEY

#: Per head, per-sample values on the probe T' (``'train'``) and on V
#: (``'heldout'``): losses, or 0/1 correctness with ``use_accuracy``.
Samples = Dict[str, Dict[str, List[float]]]
Pair = Tuple[float, float]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


class BlendPolicy:
    """How measured G and O become weights: the noise rule, the floors and
    the smoothing, checked when built (the defaults are
    ``GradientBlendingHook``'s).

    Args:
        use_accuracy: The values are accuracies, not losses.
        overfit_floor: Smallest ``|O|``, finite and > 0.
        min_weight: Least weight of any head, in ``[0, 1)`` (and at most
            ``1 / K`` for K heads: :meth:`check_heads`).
        prediction_floor: Least weight of the prediction head, in
            ``[0, 1)``.
        smoothing: Weight of the previous estimate, in ``[0, 1)``; the
            first estimate of a run is not smoothed.
        noise_scale: Paired standard errors taken off G (and added to O in
            quadrature), finite and >= 0.
        bootstrap: Resamples for each weight's interval (0: none).
    """

    def __init__(self, *, use_accuracy: bool, overfit_floor: float,
                 min_weight: float, prediction_floor: float,
                 smoothing: float, noise_scale: float,
                 bootstrap: int) -> None:
        # no defaults: they are the hook's (one home)
        def key(name: str) -> str:
            return f'{HOOK_KEY}.{name}'

        self.use_accuracy = check_flag(key('use_accuracy'), use_accuracy)
        self.overfit_floor = check_number(key('overfit_floor'),
                                          overfit_floor, 0, open_minimum=True)
        self.min_weight = check_number(key('min_weight'), min_weight, 0, 1,
                                       open_maximum=True)
        self.prediction_floor = check_number(key('prediction_floor'),
                                             prediction_floor, 0, 1,
                                             open_maximum=True)
        self.smoothing = check_number(key('smoothing'), smoothing, 0, 1,
                                      open_maximum=True)
        self.noise_scale = check_number(key('noise_scale'), noise_scale, 0)
        check_integer(key('bootstrap'), bootstrap, 0)
        self.bootstrap = bootstrap

    def check_heads(self, num_heads: int) -> None:
        """The floors fit ``num_heads`` heads (each at most ``1 / K``)."""
        for key in ('min_weight', 'prediction_floor'):
            if getattr(self, key) * num_heads > 1:
                raise ValueError(
                    f'{HOOK_KEY}.{key}={getattr(self, key)} must be at most '
                    f'1/{num_heads} for the model\'s {num_heads} heads')

    def estimate(self, heads: Sequence[str], before: Samples, after: Samples,
                 *, previous: Mapping[str, float], first: bool,
                 predict_head: Optional[str] = None,
                 trained_with: Optional[Mapping[str, float]] = None,
                 bootstrap_seed: Optional[int] = None
                 ) -> Tuple[BlendEstimate, Dict[str, Pair], Dict[str, Pair]]:
        """The weights from per-sample values at the two checkpoints, the
        paired standard errors of G and O, and (``bootstrap_seed`` given)
        the weights' bootstrap intervals.

        Args:
            heads: The heads, in the model's order.
            before: Per-sample values at the start (checkpoint N).
            after: The same samples at the end (N + n), measured or
                predicted.
            previous: The weights in use (the fallback, and what smoothing
                pulls towards).
            first: The run's first estimate: not smoothed (smoothing is
                towards the previous *estimate*, not the initial weights).
            predict_head: The head ``prediction_floor`` applies to.
            trained_with: The trajectory estimator's weights over the
                super-epoch, by which its G and O are divided.
            bootstrap_seed: Seed of the bootstrap; ``None``: no intervals.
        """
        policy = dict(use_accuracy=self.use_accuracy,
                      overfit_floor=self.overfit_floor,
                      min_weight=self.min_weight,
                      smoothing=0.0 if first else self.smoothing,
                      previous=dict(previous))
        if self.prediction_floor and predict_head is not None:
            policy['floors'] = {predict_head: self.prediction_floor}
        if trained_with is not None:
            policy['response_scale'] = dict(trained_with)
        ses = {
            head: paired_standard_errors(
                before[head]['train'], before[head]['heldout'],
                after[head]['train'], after[head]['heldout'])
            for head in heads
        }

        def weighed(before_means, after_means, noise) -> BlendEstimate:
            # a non-finite measurement has no standard error either; the
            # estimator gives such a head weight 0 instead of failing
            scaled = {h: (self.noise_scale * g, self.noise_scale * o)
                      for h, (g, o) in noise.items()
                      if math.isfinite(g) and math.isfinite(o)}
            return blend_statistics(before_means, after_means, noise=scaled,
                                    **policy)

        def means(samples: Samples) -> Dict[str, Pair]:
            return {h: (_mean(samples[h]['train']),
                        _mean(samples[h]['heldout'])) for h in heads}

        result = weighed(means(before), means(after), ses)
        intervals = {}
        if self.bootstrap and bootstrap_seed is not None:
            intervals = bootstrap_weight_intervals(
                {h: (before[h]['train'], before[h]['heldout'])
                 for h in heads},
                {h: (after[h]['train'], after[h]['heldout'])
                 for h in heads},
                lambda b, a, noise: weighed(b, a, noise).weights,
                num_resamples=self.bootstrap, seed=bootstrap_seed)
        return result, ses, intervals
