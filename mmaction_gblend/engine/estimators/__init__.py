"""G-Blend's estimators of each head's G and O, one object each.

* :class:`ShadowEstimator`: the paper's Algorithm 1, a copy of the model
  trained on each head's loss for the super-epoch.
* :class:`FirstOrderEstimator`: Proposition 1 at the checkpoint, from
  each head's gradient (no training).
* :class:`TrajectoryEstimator`: the main run's own heads at consecutive
  super-epoch boundaries, per unit weight.

They share :class:`BlendEstimator`'s interface; the hook schedules them,
and :class:`~mmaction_gblend.engine.blend_policy.BlendPolicy` turns what
they measured into weights.
"""
from .base import BlendEstimator, EstimatorData, Measurement
from .first_order import FirstOrderEstimator
from .measurer import MAIN, HeadMeasurer
from .shadow import ShadowEstimator
from .trajectory import TrajectoryEstimator

__all__ = [
    'BlendEstimator', 'EstimatorData', 'Measurement', 'FirstOrderEstimator',
    'HeadMeasurer', 'MAIN', 'ShadowEstimator', 'TrajectoryEstimator',
    'build_estimator'
]


def build_estimator(name: str, shadow_fraction: float = 1.0,
                    trajectory_correction: bool = True) -> BlendEstimator:
    """The estimator called ``name``, with its options."""
    if name == 'shadow':
        return ShadowEstimator(shadow_fraction)
    if name == 'trajectory':
        return TrajectoryEstimator(trajectory_correction)
    return FirstOrderEstimator()
