"""Gradient Blending as a training hook: schedule, estimate, set, record.

The hook keeps the schedule (:func:`blend_schedule`), the weights (the
recognizer's ``blend_weights`` buffer, so checkpoints carry them and every
process uses the same values), the history and the checkpoint state. An
estimator object (:mod:`~mmaction_gblend.engine.estimators`) measures each
head's G and O; a :class:`BlendPolicy`, validated when the hook is built,
turns them into weights; :mod:`..estimate_record` formats what is logged.
"""
import copy
import inspect
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmaction.registry import HOOKS
from mmengine.dist import broadcast
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...blending import initial_loss_check
from ...datasets.heldout_split_configs import heldout_split_config
from ...models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ...utils.model_wrappers import unwrap
from ..blend_history import BlendHistory
from ..blend_options import check_hook_options
from ..blend_policy import BlendPolicy
from ..blend_schedule import AT_START, HOOK_KEY, Estimate, blend_schedule
from ..estimate_record import (check_record, estimate_log, estimate_scalars,
                               head_records, start_log, zero_weight_warning)
from ..estimators import (EstimatorData, HeadMeasurer, Measurement,
                          ShadowEstimator, build_estimator)
from ..heldout_release import HeldOutRelease
from ..measurement_loaders import LoaderFactory
from ..weight_replay import REPLAY_KEY, WeightReplay

@HOOKS.register_module()
class GradientBlendingHook(Hook):
    """Blend the heads' losses by G-Blend weights (Wang et al., CVPR 2020).

    Each head i (every modality and the fused head) gets the weight
    ``w_i ∝ G_i / O_i²``: G is how much its held-out loss falls over a
    super-epoch, O how much its held-out-minus-train gap grows, on a
    class-stratified held-out part V of the *training* set (by default kept
    out of training: ``HeldOutSplitDataset(part='train')``) and a training
    probe T'. Modes: ``online`` (Algorithm 3), ``offline`` (Algorithm 2),
    ``fixed``, ``replay`` (an earlier run's schedule, in a run on all the
    data). Estimators (:mod:`~mmaction_gblend.engine.estimators`):
    ``shadow`` (Algorithm 1), ``first_order`` (Proposition 1 at the
    checkpoint), ``trajectory`` (the main run's own heads, per unit
    weight). Each estimate is logged, written to the visualizer
    (``gblend/<quantity>/<head>``) and to the history file; the history and
    the estimator's state are restored on resume. Every option is checked
    when the hook is built, naming its config key; an option the mode
    ignores is warned about by name. See ``docs/gradient_blending.md`` and
    ``docs/gblend_estimators.md``.

    Args:
        mode: ``'online'``, ``'offline'``, ``'fixed'`` or ``'replay'``.
        estimator: ``'first_order'`` (default, cheap), ``'shadow'`` (the
            paper's) or ``'trajectory'``.
        warmup_epochs: Length of the first super-epoch (paper: 10).
        super_epochs: Length of the later super-epochs (paper: 5).
        weights: For ``fixed``, the weights; otherwise the initial ones
            (``'uniform'``, ``None`` to keep the model's, or a dict, which
            must be finite, >= 0 and sum to 1).
        heldout_fraction: Fraction of each class held out, in (0, 1) (an
            unwrapped train dataset; a ``HeldOutSplitDataset``'s wins).
        heldout_group: Hold out whole groups (actors, speakers, source
            videos): ``HeldOutSplitDataset``'s ``group``. Set it whenever
            the test split is by group.
        probe_size: Samples of T' (default: as many as held out).
        seed: Seed of the split (unwrapped dataset) and of the bootstrap.
        exclude_heldout: Require V to be kept out of the main training.
            ``None``: required, except for offline estimates from the
            start, where only the estimate needs V out.
        measure_pipeline: ``'val'``, ``'train'`` or a list of transforms.
        measure_batch_size: Batch size of the measurement loaders.
        use_accuracy: Estimate from accuracies instead of losses.
        overfit_floor, min_weight, prediction_floor, smoothing,
            noise_scale, bootstrap: The weight policy (:class:`BlendPolicy`):
            smallest ``|O|``; least weight of any head; of the prediction
            head (0: the paper, which has none); weight of the previous
            estimate; standard errors taken off G and added to O (0: the
            paper's exact ``G / O²``); resamples of each weight's interval.
        shadow_fraction: Fraction of the training set the shadow copies
            train on (1: all).
        offline_horizon: Offline estimate's horizon from the start, in
            epochs (``None``: the whole training, as Algorithm 2).
        recalibrate_bn: Training batches over which BatchNorm statistics
            are recomputed before a measurement (0: none).
        trajectory_correction: Divide the trajectory estimator's G and O
            by the weights the heads trained with.
        shadow_check: Also run Algorithm 1 on the whole training set from
            the same checkpoints and record its weights and the largest
            difference (its weights are not used): how far a cheap
            estimator is from it. With the shadow estimator on the whole
            set, the second estimate trains on other sample orders: its
            own repeatability.
        history_file: Name of the JSON-lines history in the work dir.
        replay: For ``replay``: a ``gblend_history.jsonl``, a checkpoint of
            a G-Blend run, or a list of ``dict(epoch=p, weights={...})``.
        replay_epochs: ``'scale'`` (by the runs' lengths) or ``'same'``.
        release_heldout: Train on the whole training set from the epoch
            the last estimate's weights apply.
    """
    priority = 'NORMAL'  # after SyncBuffersHook, before CheckpointHook

    def __init__(self,
                 mode: str = 'online',
                 estimator: str = 'first_order',
                 warmup_epochs: int = 10,
                 super_epochs: int = 5,
                 weights: Union[str, Dict[str, float], None] = 'uniform',
                 heldout_fraction: float = 0.08,
                 heldout_group: Union[None, str, dict] = None,
                 probe_size: Optional[int] = None,
                 seed: int = 0,
                 exclude_heldout: Optional[bool] = None,
                 measure_pipeline: Union[str, Sequence[dict]] = 'val',
                 measure_batch_size: Optional[int] = None,
                 use_accuracy: bool = False,
                 overfit_floor: float = 1e-4,
                 min_weight: float = 0.0,
                 prediction_floor: float = 0.1,
                 smoothing: float = 0.0,
                 noise_scale: float = 1.0,
                 bootstrap: int = 200,
                 shadow_fraction: float = 1.0,
                 offline_horizon: Optional[int] = None,
                 recalibrate_bn: int = 20,
                 trajectory_correction: bool = True,
                 shadow_check: bool = False,
                 history_file: str = 'gblend_history.jsonl',
                 replay: Union[str, Sequence[dict], None] = None,
                 replay_epochs: str = 'scale',
                 release_heldout: bool = False) -> None:
        options = {k: v for k, v in locals().items()
                   if k not in ('self', '__class__')}
        replay_source = check_hook_options(options, self.default_options())
        self.policy = BlendPolicy(**{
            k: options[k] for k in inspect.signature(BlendPolicy).parameters})
        self.options = options
        self.mode, self.weights = mode, weights
        self.replay = None if replay_source is None else WeightReplay(
            replay_source, replay_epochs)
        self.release = HeldOutRelease() if release_heldout else None
        # offline estimates from the start need V out of their data only
        self.exclude_heldout = exclude_heldout if exclude_heldout is not \
            None else not (mode == 'offline' and estimator in AT_START)
        self.estimator = build_estimator(estimator, shadow_fraction,
                                         trajectory_correction)
        # Algorithm 1 as published, on the whole training set; beside
        # itself, on other sample orders (its repeatability)
        self.check = ShadowEstimator(reorder=estimator == 'shadow' and
                                     shadow_fraction == 1) \
            if shadow_check else None
        self.check_weights: Optional[Dict[str, float]] = None
        self.record = BlendHistory(history_file)
        self.plan: List[Estimate] = []
        self.measurer: Optional[HeadMeasurer] = None

    @classmethod
    def default_options(cls) -> Dict[str, object]:
        """Every option's default, from the signature (their one home)."""
        return {k: p.default for k, p in inspect.signature(
            cls.__init__).parameters.items() if k != 'self'}

    # set-up ---------------------------------------------------------------

    history = property(lambda self: self.record.entries,
                       doc="The run's entries (:class:`BlendHistory`).")
    heldout_loader = property(lambda self: getattr(
        self.measurer, 'heldout_loader', None), doc='V\'s loader.')
    probe_loader = property(lambda self: getattr(
        self.measurer, 'probe_loader', None), doc="T''s loader.")

    def _split_config(self, runner: Runner) -> dict:
        """The train dataset config as a ``HeldOutSplitDataset``."""
        return heldout_split_config(
            runner.cfg.train_dataloader['dataset'],
            self.options['heldout_fraction'], self.options['seed'],
            self.exclude_heldout, owner='GradientBlendingHook',
            group=self.options['heldout_group'])

    def _initial_weights(self, model: MultiHeadModel) -> Optional[dict]:
        return {h: 1 / len(model.head_names) for h in model.head_names} \
            if self.weights == 'uniform' else self.weights

    def before_train(self, runner: Runner) -> None:
        model = check_multi_head_model(
            unwrap(runner.model), 'GradientBlendingHook needs a model with '
            'a head per modality and a fused head (MultiHeadRecognizer)')
        o = self.options
        self.plan = blend_schedule(self.mode, o['estimator'],
                                   runner.max_epochs, o['warmup_epochs'],
                                   o['super_epochs'], o['offline_horizon'])
        resumed = runner.epoch > 0 or bool(self.history)
        if not resumed and self._initial_weights(model) is not None:
            model.set_blend_weights(self._initial_weights(model),
                                    key=f'{HOOK_KEY}.weights')
        self.record.initial_weights = self._run_initial_weights(model)
        if self.replay is not None:
            return self._start_replay(runner, model)
        if self.mode == 'fixed':  # no release either (refused when built)
            return
        split = self._split_config(runner)
        if self.release is not None:
            self.release.plan(runner, split, self.plan[-1].epoch)
        self.policy.check_heads(len(model.head_names))
        loaders = LoaderFactory(runner, o['measure_pipeline'],
                                o['probe_size'], o['measure_batch_size'])
        self.measurer = HeadMeasurer(
            loaders.measurement(split, 'heldout'),
            loaders.measurement(split, 'probe'), o['recalibrate_bn'],
            self.policy.use_accuracy)
        data = EstimatorData(self.measurer, split, loaders)
        initial = self.estimator.prepare(runner, data)
        if self.check is not None:
            self.check.prepare(runner, data)
        self.record.main_data = 'all' if split['part'] == 'all' else 'part'
        runner.logger.info(start_log(
            self.mode, self.estimator.name, self.plan,
            len(self.heldout_loader.dataset), len(self.probe_loader.dataset),
            self.estimator.describe() or (
                self.check.describe() if self.check else ''),
            len(runner.train_dataloader.dataset), self.record.main_data))
        if initial is not None:
            self._check_initial_losses(runner, initial)
        self.record.open(runner.work_dir)

    def _check_initial_losses(self, runner: Runner, samples) -> None:
        """Warn when an untrained head's held-out loss is far from log C;
        recorded in the first estimate's history entry."""
        num_classes = getattr(unwrap(runner.model), 'num_classes', None)
        if self.policy.use_accuracy or runner.epoch != 0 or \
                not num_classes or self.record.initial_check is not None:
            return
        self.record.initial_check, message = initial_loss_check(
            {h: v['heldout'] for h, v in samples.items()}, num_classes)
        if message:
            runner.logger.warning(message)

    # estimates ------------------------------------------------------------

    def _planned(self, epoch: int) -> Optional[Estimate]:
        return next((p for p in self.plan if p.epoch == epoch), None)

    def before_train_epoch(self, runner: Runner) -> None:
        if self.replay is not None:
            return self._replay_epoch(runner)
        if self.mode != 'fixed':
            if self.estimator.at_start:
                plan = self._planned(runner.epoch)
                if plan is not None:
                    self._estimate(runner, plan)
            elif self.check is not None:
                # the trajectory estimate whose super-epoch starts now
                plan = next((p for p in self.plan
                             if p.epoch - p.horizon == runner.epoch), None)
                if plan is not None:
                    self.check_weights = self._check_weights(
                        runner, Estimate(runner.epoch, plan.horizon))
        # after an estimate made now, which measures on the training part
        if self.release is not None and self.release.due(runner):
            self._release(runner)

    def after_train_epoch(self, runner: Runner) -> None:
        if self.mode == 'fixed' or self.replay is not None or \
                self.estimator.at_start:
            return
        plan = self._planned(runner.epoch + 1)
        if plan is not None:
            self._estimate(runner, plan)

    def _check_weights(self, runner: Runner,
                       plan: Estimate) -> Dict[str, float]:
        """The shadow estimator's weights from this checkpoint."""
        measurement = self.check.measure(runner, plan)
        model = unwrap(runner.model)
        result, _, _ = self.policy.estimate(
            model.head_names, measurement.before, measurement.after,
            previous=model.get_blend_weights(), first=not self.history,
            predict_head=model.predict_head)
        return dict(result.weights)

    def _estimate(self, runner: Runner, plan: Estimate) -> None:
        if self.check is not None and self.estimator.at_start:
            self.check_weights = self._check_weights(runner, plan)
        measurement = self.estimator.measure(runner, plan)
        if plan.epoch == (0 if self.estimator.at_start else plan.horizon):
            self._check_initial_losses(runner, measurement.before)
        self._apply(runner, plan, measurement)

    def _apply(self, runner: Runner, plan: Estimate,
               measurement: Measurement) -> None:
        """Estimate the weights from ``measurement``, set and record them."""
        model = unwrap(runner.model)
        result, ses, intervals = self.policy.estimate(
            model.head_names, measurement.before, measurement.after,
            previous=model.get_blend_weights(), first=not self.history,
            predict_head=model.predict_head,
            trained_with=measurement.trained_with,
            bootstrap_seed=self.options['seed'] + plan.epoch)
        weights = torch.tensor([result.weights[h] for h in model.head_names],
                               dtype=torch.float32,
                               device=model.blend_weights.device)
        # the inputs were all-reduced, so every rank computed the same; the
        # broadcast makes it exact whatever the floating-point paths did
        broadcast(weights, src=0)
        model.set_blend_weights(dict(zip(model.head_names,
                                         weights.tolist())))
        heads = head_records(result, ses, intervals, measurement.trained_with)
        entry = dict(epoch=plan.epoch, horizon=plan.horizon, mode=self.mode,
                     estimator=self.estimator.name, fallback=result.fallback,
                     weights=dict(result.weights), heads=heads)
        if self.check_weights is not None:
            entry['shadow_check'] = check_record(result.weights,
                                                 self.check_weights)
            self.check_weights = None
        self.record.add(entry, runner.max_epochs)
        runner.visualizer.add_scalars(estimate_scalars(heads),
                                      step=plan.epoch)
        runner.logger.info(estimate_log(
            entry, 'accuracy' if self.policy.use_accuracy else 'loss',
            measurement.trained_with is not None,
            self.estimator.name == 'first_order'))
        warning = zero_weight_warning(result.weights, model.predict_head)
        if warning:
            runner.logger.warning(warning)

    # replay and release ---------------------------------------------------

    def _run_initial_weights(self,
                             model: MultiHeadModel) -> Dict[str, float]:
        """The weights the run started with: the history's (a resumed run),
        the replayed source's, or the initial ones (with ``weights=None``
        the model's, untouched until the first entry)."""
        if self.history and self.history[0].get('initial_weights'):
            return dict(self.history[0]['initial_weights'])
        if self.replay is not None and \
                self.replay.source.initial_weights is not None:
            return dict(self.replay.source.initial_weights)
        return dict(self._initial_weights(model) or model.get_blend_weights())

    def _add_entry(self, runner: Runner, entry: dict, message: str) -> None:
        """Record and log an entry that is not an estimate."""
        self.record.add(entry, runner.max_epochs)
        runner.logger.info(message)

    def _start_replay(self, runner: Runner, model: MultiHeadModel) -> None:
        warning = self.replay.part_warning(runner.train_dataloader.dataset)
        if warning:
            runner.logger.warning(warning)
        runner.logger.info(self.replay.start(
            runner.max_epochs, self.record.initial_weights, model.head_names))
        self.record.open(runner.work_dir)

    def _replay_epoch(self, runner: Runner) -> None:
        """Set this epoch's replayed weights; a change that starts now is
        recorded and logged."""
        weights, change = self.replay.at_epoch(runner.epoch,
                                               self.record.initial_weights)
        unwrap(runner.model).set_blend_weights(weights, key=REPLAY_KEY)
        if change is not None:
            runner.visualizer.add_scalars(
                {f'gblend/weight/{h}': w for h, w in weights.items()},
                step=runner.epoch)
            self._add_entry(runner, *change)

    def _release(self, runner: Runner) -> None:
        """V joins training; recorded once (not again on resume)."""
        before, after = self.release.release(runner)
        self.record.main_data = 'all'
        if self.record.has_event('release_heldout'):
            runner.logger.info(
                'G-Blend: resumed after the release of the held-out '
                f'samples: training on all {after} samples')
            return
        self._add_entry(
            runner,
            dict(epoch=runner.epoch, event='release_heldout', mode=self.mode,
                 estimator=self.estimator.name,
                 weights=unwrap(runner.model).get_blend_weights(),
                 samples_before=before, samples_after=after),
            f'G-Blend: the {after - before} held-out samples join training '
            f'from epoch {runner.epoch}: {before} -> {after} samples')

    # checkpoints ----------------------------------------------------------

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['gblend'] = dict(
            self.record.state_dict(),
            reference=copy.deepcopy(self.estimator.state_dict()),
            check_weights=copy.deepcopy(self.check_weights))

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('gblend')
        if state is None or not runner._resume:
            return
        self.record.load_state_dict(state)
        self.estimator.load_state_dict(state.get('reference'))
        self.check_weights = state.get('check_weights')
