"""What a G-Blend estimator is: when it measures, and what it returns."""
from typing import Dict, NamedTuple, Optional

from mmengine.runner import Runner

from ..blend_policy import Samples
from ..blend_schedule import Estimate
from ..measurement_loaders import LoaderFactory
from .measurer import HeadMeasurer


class Measurement(NamedTuple):
    """Every head's per-sample values on T' and V at the two ends of a
    super-epoch, from which the policy computes G, O, their paired
    standard errors and the weights.

    Attributes:
        before: At checkpoint N.
        after: At checkpoint N + n: measured (trajectory, shadow) or
            predicted (first order).
        trained_with: Weights the heads trained with over the super-epoch,
            by which G and O are divided (the trajectory estimator's
            correction); ``None``: measured per unit weight already.
    """
    before: Samples
    after: Samples
    trained_with: Optional[Dict[str, float]] = None


class EstimatorData(NamedTuple):
    """What the hook prepares for every estimator.

    Attributes:
        measurer: Measures heads on V and T'.
        split: The train dataset's ``HeldOutSplitDataset`` config
            (``part='train'`` or ``'all'``), for the loaders an estimator
            builds itself.
        loaders: Builds measurement and training loaders over parts of
            the split.
    """
    measurer: HeadMeasurer
    split: dict
    loaders: LoaderFactory


class BlendEstimator:
    """One way to measure each head's G and O (Wang et al. 2020, Sec. 3).

    ``at_start`` says when :meth:`measure` is called: at the start of the
    super-epoch whose weights it sets (``True``: before training epoch
    ``plan.epoch``, from the model as it is), or at its end (``False``:
    after ``plan.epoch`` epochs, from how the main run's heads moved over
    the ``plan.horizon`` epochs before). An estimator keeps what it needs
    between calls in :meth:`state_dict`, which checkpoints carry.
    """
    name = ''
    at_start = True

    def prepare(self, runner: Runner,
                data: EstimatorData) -> Optional[Samples]:
        """Build what the estimates need, before training; return the
        main model's samples if it measured them (at epoch 0: the initial
        losses the hook checks against log C)."""
        self.data = data
        return None

    def measure(self, runner: Runner, plan: Estimate) -> Measurement:
        raise NotImplementedError

    def describe(self) -> str:
        """What the start-of-training log line says of its data."""
        return ''

    def state_dict(self) -> Optional[dict]:
        return None

    def load_state_dict(self, state: Optional[dict]) -> None:
        pass
