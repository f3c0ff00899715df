"""The trajectory estimator: the main run's own heads, per unit weight."""
from typing import Optional

from mmengine.runner import Runner

from ...utils.model_wrappers import unwrap
from ..blend_policy import Samples
from ..blend_schedule import Estimate
from .base import BlendEstimator, EstimatorData, Measurement


class TrajectoryEstimator(BlendEstimator):
    """Each head's losses on T' and V in the main model at consecutive
    super-epoch boundaries (a deviation from the paper: no copies, one
    measurement pass per estimate).

    A head trained with weight w moves about w times as far as its shadow
    copy would, so G and O are divided by the weight each head trained
    with over the super-epoch (``correction``); exact only for heads that
    share no parameters (``docs/gblend_estimators.md``).

    Args:
        correction: Divide G and O by the weights trained with.
    """
    name = 'trajectory'
    at_start = False

    def __init__(self, correction: bool = True) -> None:
        self.correction = correction
        # the last measurement: its epoch and samples
        self.reference: Optional[dict] = None

    def prepare(self, runner: Runner,
                data: EstimatorData) -> Optional[Samples]:
        super().prepare(runner, data)
        if self.reference is not None:  # resumed
            return None
        samples = data.measurer.measure_main(runner.model,
                                             runner.train_dataloader)
        self.reference = dict(epoch=runner.epoch, samples=samples)
        return samples if runner.epoch == 0 else None

    def measure(self, runner: Runner, plan: Estimate) -> Measurement:
        samples = self.data.measurer.measure_main(runner.model,
                                                  runner.train_dataloader)
        # the weights in use since the reference (set at its estimate)
        trained_with = unwrap(runner.model).get_blend_weights()
        before = self.reference['samples']
        self.reference = dict(epoch=plan.epoch, samples=samples)
        return Measurement(before, samples,
                           trained_with if self.correction else None)

    def state_dict(self) -> Optional[dict]:
        return self.reference

    def load_state_dict(self, state: Optional[dict]) -> None:
        self.reference = state
