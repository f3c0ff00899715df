"""The shadow estimator: the paper's Algorithm 1 (GB_Estimate)."""
import copy
from typing import Optional

from mmengine.runner import Runner

from ...datasets.heldout_split_configs import training_subset_config
from ...utils.model_wrappers import unwrap
from ..blend_policy import Samples
from ..blend_schedule import Estimate
from ..shadow_training import flatten_schedulers, shadow_train
from .base import BlendEstimator, EstimatorData, Measurement
from .measurer import MAIN

#: How far ``reorder`` shifts the sampler's epoch: past any real run's.
REORDER = 100_003


class ShadowEstimator(BlendEstimator):
    """At the start of a super-epoch of n epochs, a copy of the model is
    trained on each head's loss alone for n epochs (following the main
    run's learning-rate schedule and sample order, from a fresh optimizer
    state of the main optimizer's type and settings), and each head's G
    and O are read off its own copy (Wang et al. 2020, Algorithm 1).

    Args:
        fraction: Fraction of the training set (per class) the copies train
            on, for the whole super-epoch; their training loss is measured
            on a probe drawn from that part. 1: the whole training set.
        reorder: Train the copies on other sample orders than the main
            run's (the sampler's epochs shifted by :data:`REORDER`): a
            second estimate from the same checkpoint, whose difference from
            the first is the estimator's own repeatability.
    """
    name = 'shadow'
    at_start = True

    def __init__(self, fraction: float = 1.0, reorder: bool = False) -> None:
        self.fraction = fraction
        self.reorder = reorder
        self.loader = None        # the copies' training data
        self.probe_loader = None  # their T'

    def prepare(self, runner: Runner,
                data: EstimatorData) -> Optional[Samples]:
        super().prepare(runner, data)
        split = data.split
        if self.fraction < 1:
            subset = training_subset_config(split, self.fraction)
            self.probe_loader = data.loaders.measurement(subset, 'probe')
        else:
            self.probe_loader = data.measurer.probe_loader
            if split['part'] == 'train':
                self.loader = runner.train_dataloader
                return None
            # the main run trains on V as well; the copies must not
            subset = dict(copy.deepcopy(split), part='train')
        self.loader = data.loaders.training(subset)
        return None

    def describe(self) -> str:
        return (f'shadows train on {len(self.loader.dataset)} samples '
                f'(shadow_fraction={self.fraction}), probed on '
                f'{len(self.probe_loader.dataset)}')

    def measure(self, runner: Runner, plan: Estimate) -> Measurement:
        optim_wrapper = runner.optim_wrapper
        clip = getattr(optim_wrapper, 'clip_grad_kwargs', None) or None
        if clip is not None:
            clip = {k: v for k, v in clip.items() if k != 'type'}
        heads = unwrap(runner.model).head_names
        shadows = shadow_train(
            runner.model, optim_wrapper.optimizer, self.loader, heads,
            plan.horizon, clip,
            schedulers=flatten_schedulers(runner.param_schedulers),
            epoch_length=len(runner.train_dataloader),
            start_epoch=runner.epoch,
            order_epoch=runner.epoch + REORDER if self.reorder else None)
        # the main model is untouched by the copies' training, so its
        # "before" is measured in the same pass as their "after"
        samples = self.data.measurer.measure(
            {MAIN: (runner.model, None),
             **{head: (shadow, [head]) for head, shadow in shadows.items()}},
            self.loader, self.probe_loader)
        return Measurement(samples[MAIN],
                           {head: samples[head][head] for head in heads})
