"""Gradient Blending as a training hook: measure, estimate, set, log.

The hook is thin: the schedule is :func:`blend_schedule`, the measurement
:func:`measure_models`, the shadow training :func:`shadow_train`, the
BatchNorm statistics :func:`recalibrate_batchnorm`, and the weights
:func:`~mmaction_gblend.blending.blend_statistics` with the paired noise of
:mod:`~mmaction_gblend.blending.paired_noise`. The weights live in the
recognizer's ``blend_weights`` buffer, so checkpoints carry them and every
process uses the same values.
"""
import copy
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmaction.registry import HOOKS
from mmengine.dist import broadcast
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...blending import (INITIAL_LOSS_TOLERANCE, BlendEstimate,
                         blend_statistics, far_from_chance,
                         bootstrap_weight_intervals, check_blend_weights,
                         paired_standard_errors)
from ...datasets.dataset_wrappers import dataset_pipeline
from ...datasets.group_split import check_group_spec
from ...datasets.heldout_split import (HeldOutSplitDataset,
                                       heldout_split_config,
                                       measurement_config,
                                       training_subset_config)
from ...models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ...utils.model_wrappers import unwrap
from ..batchnorm_recalibration import batchnorm_layers, recalibrate_batchnorm
from ..blend_schedule import HOOK_KEY, Estimate, blend_schedule
from ..heldout_evaluation import ModelHeads, measure_models
from ..heldout_release import (RELEASE_KEY, check_release_option,
                               check_schedulers_for_release, release_heldout,
                               whole_set_dataloader_config)
from ..history_file import append_history, rewrite_history
from ..shadow_training import flatten_schedulers, shadow_train
from ..weight_replay import (REPLAY_KEY, Change, check_schedule_heads,
                             map_schedule, replay_option, weights_at)

#: The main model's name among the shadow copies (not an identifier, so
#: no modality can be called that).
MAIN = '<main>'

#: Per head, per-sample values on the probe T' ('train') and on V
#: ('heldout'): losses, or 0/1 correctness with ``use_accuracy``.
Samples = Dict[str, Dict[str, List[float]]]


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.4g}'


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _fmt_weights(weights: Dict[str, float]) -> str:
    return ', '.join(f'{h} {w:.4f}' for h, w in weights.items())


@HOOKS.register_module()
class GradientBlendingHook(Hook):
    """Blend the heads' losses by G-Blend weights (Wang et al., CVPR 2020).

    Each head i (every modality and the fused head) gets the weight
    ``w_i ∝ G_i / O_i²``: G is how much its held-out loss fell over a
    super-epoch, O how much its held-out-minus-train gap grew. The held-out
    set V is a class-stratified part of the *training* set, by default kept
    out of training (wrap ``train_dataloader.dataset`` in
    ``HeldOutSplitDataset(part='train')``); the train loss is measured on a
    fixed training probe T' of the same size.

    Modes: ``online`` re-estimates every super-epoch after a warm-up
    (Algorithm 3), ``offline`` estimates once (Algorithm 2), ``fixed``
    keeps ``weights``, ``replay`` applies the weight schedule of an earlier
    run (``replay``). Two ways to a final model trained on all the training
    data, V included: ``replay`` the schedule of a G-Blend run in a run on
    the whole training set (no split, no measurement), or
    ``release_heldout=True``, which returns V to training from the epoch
    the last estimate's weights apply
    (:mod:`~mmaction_gblend.engine.heldout_release`).
    Estimators:

    * ``shadow``: the paper's Algorithm 1. At the start of each super-epoch
      of n epochs, a copy of the model is trained on each head's loss alone
      for n epochs, following the main run's learning-rate schedule and
      sample order, and each head's G and O are read off its own copy.
      ``shadow_fraction`` < 1 trains the copies on a seeded,
      class-stratified part of the training set for the same n epochs
      (each sample repeated as often as in the real run, fewer steps), and
      measures their training loss on a probe drawn from that part. The
      copies train side by side on the same batches, a modality head's
      copy running only its own branch, and are measured together with the
      main model in one pass; so k + 1 copies of the model and its
      optimizer state are in memory during an estimate. Offline, the
      estimate is made from the initial model over the whole training (the
      paper's N), or over ``offline_horizon`` epochs.
    * ``trajectory`` (a deviation from the paper, much cheaper): the main
      model's own per-head losses at consecutive super-epoch boundaries.
      A head trained with weight w moves about w times as far as its
      shadow copy would (first order: its loss gradient is scaled by w), so
      its measured G and O are divided by the weight it trained with
      (``trajectory_correction``) before ``G / O²``; uncorrected, the
      estimate is about (true score) / w and the online weights oscillate.
      The warm-up trains with the initial weights, which must give every
      head some weight (default: uniform); a head trained with weight 0
      cannot be measured and keeps weight 0 (use ``min_weight``).

    Measurement: losses in eval mode on the measurement pipeline, after the
    BatchNorm statistics of what is measured are recomputed on training
    batches (``recalibrate_bn``; on a copy, the main model's own are
    untouched). G and O are paired differences over the same samples; their
    standard errors are those of the per-sample differences, and
    ``noise_scale`` of them is taken off G and added (squared) to O² (see
    ``blend_statistics(noise=...)``). Each weight's bootstrap interval
    (``bootstrap`` resamples of V and T') is logged.

    Every estimate is logged (per head: train and held-out loss before and
    after, G, O with their standard errors, OGR, weight and its interval),
    written to the visualizer as scalars ``gblend/<quantity>/<head>`` and
    appended to ``<work_dir>/gblend_history.jsonl``. The history and the
    trajectory's reference measurement are saved in checkpoints and
    restored on resume.

    Args:
        mode: ``'online'``, ``'offline'``, ``'fixed'`` or ``'replay'``.
        estimator: ``'trajectory'`` or ``'shadow'``.
        warmup_epochs: Length of the first super-epoch (paper: 10).
        super_epochs: Length of the later super-epochs (paper: 5).
        weights: For ``fixed``, the weights; otherwise the initial weights
            (``'uniform'``, ``None`` to keep the model's, or a dict). A dict
            is checked when the hook is built (finite, >= 0, summing to 1)
            and against the model's heads before training.
        heldout_fraction: Fraction of each class held out, in (0, 1), when
            the train dataset is not a ``HeldOutSplitDataset`` (whose own
            fraction wins otherwise).
        heldout_group: Hold out whole groups (actors, speakers, source
            videos) when the train dataset is not a ``HeldOutSplitDataset``
            (whose own ``group`` is used otherwise; a different one is an
            error): ``HeldOutSplitDataset``'s ``group`` option, a regular
            expression over each sample's path or ``dict(key=...,
            regex=...)``. Set it whenever the test split is by group.
        probe_size: Samples of the training probe T' (default: as many as
            held out).
        seed: Seed of the split when the train dataset is not wrapped, and
            of the bootstrap.
        exclude_heldout: Require the held-out samples to be kept out of the
            main training (the train dataset wrapped with ``part='train'``).
            ``None`` (default): required, except for offline shadow
            estimates, whose shadow copies train without V whatever the
            main run trains on: there the main run trains on the whole
            training set unless its dataset is a ``part='train'`` split
            (the strict variant, as in the paper's experiments).
        measure_pipeline: ``'val'`` (the val dataloader's deterministic
            pipeline), ``'train'`` (the training pipeline, augmentation and
            all) or a list of transforms.
        measure_batch_size: Batch size of the measurement loaders (default:
            the training batch size).
        use_accuracy: Estimate from accuracies instead of losses.
        overfit_floor: Smallest ``|O|`` (see ``blend_statistics``).
        min_weight: Least weight of any head.
        prediction_floor: Least weight of the model's prediction head
            (``predict_head``, the fused head): a head with weight 0 is not
            trained, and the prediction would stay at chance. 0 turns it
            off (the paper has no floor).
        smoothing: Exponential smoothing with the previous estimate's
            weights (the first estimate is not smoothed).
        noise_scale: How many paired standard errors are taken off G (and
            added to O in quadrature); 0 is the paper's exact ``G / O²``.
        bootstrap: Resamples of V and T' for each weight's interval
            (0: none).
        shadow_fraction: Fraction of the training set (per class) the
            shadow copies train on, for the whole super-epoch; 1 (default)
            is the whole training set.
        offline_horizon: Offline shadow estimate's horizon in epochs;
            ``None`` (default) is the whole training, as Algorithm 2.
        recalibrate_bn: Training batches over which BatchNorm statistics
            are recomputed before each measurement (0: measure with the
            running statistics as they are). Models without BatchNorm skip
            it at no cost.
        trajectory_correction: Divide the trajectory estimator's G and O by
            the weight each head trained with (see above).
        shadow_check: With ``trajectory``, also run the shadow estimator
            from the start of each super-epoch (its weights are not used)
            and record its weights and the largest absolute difference
            from the trajectory estimate over the same epochs
            (``shadow_check`` in the history): how far the cheap estimator
            is from Algorithm 1 on your data, at the shadow's cost.
        history_file: Name of the JSON-lines history in the work dir.
        replay: For ``mode='replay'``, the weight schedule to apply: a
            run's ``gblend_history.jsonl``, a checkpoint (``.pth``) of a
            G-Blend run, or a list of ``dict(epoch=p, weights={...})``, each
            meaning "from the start of training epoch p (0-based) on"; before
            the first, the source's ``initial_weights`` (else ``weights``).
            Read and checked when the hook is built, against the model's
            heads before training. The weights are set before every epoch,
            so a resumed replay needs no state of its own; each change is
            logged and recorded in the history. In this mode there is no
            split and no measurement: the options of the estimate
            (``estimator``, ``warmup_epochs``, ``super_epochs``,
            ``heldout_fraction``, ``probe_size``, ``exclude_heldout``,
            ``measure_*``, ``use_accuracy``, ``overfit_floor``,
            ``min_weight``, ``prediction_floor``, ``smoothing``,
            ``noise_scale``, ``bootstrap``, ``shadow_fraction``,
            ``offline_horizon``, ``recalibrate_bn``,
            ``trajectory_correction``, ``shadow_check``) are ignored.
        replay_epochs: How the source's epochs map onto this run's:
            ``'scale'`` (default) maps epoch p of a source of ``E_src``
            epochs to ``round(p * E / E_src)`` (half up) of this run's
            ``E`` (the source must record its ``max_epochs``), ``'same'``
            keeps p. Changes mapped to ``E`` or later are dropped, as is
            the earlier of two mapped to one epoch (both logged).
        release_heldout: ``online`` and ``offline`` with the held-out
            samples left out of training: after the last planned estimate,
            from the epoch its weights apply (trajectory: the estimate at
            epoch p is made after p epochs, so from epoch p; shadow: right
            after the estimate made before epoch p), train on the whole
            training set (the split's ``part='all'``, V and T' included).
            Logged and recorded in the history (``event='release_heldout'``);
            a resumed run trains on the right samples. Iteration-based
            parameter schedulers still running at the release are refused
            (their iterations count the shorter epochs); a release at epoch
            0 rebuilds them (see
            :mod:`~mmaction_gblend.engine.heldout_release`).
    """
    priority = 'NORMAL'  # after SyncBuffersHook, before CheckpointHook

    def __init__(self,
                 mode: str = 'online',
                 estimator: str = 'trajectory',
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
        # validated here so a typo fails before any training
        blend_schedule(
            mode, estimator,
            max(warmup_epochs, offline_horizon or 1, 1) + 1,
            warmup_epochs, super_epochs, offline_horizon)
        self.replay_source = replay_option(mode, replay, replay_epochs)
        self.replay_epochs = replay_epochs
        self.replay_changes: List[Change] = []
        check_release_option(release_heldout, mode, exclude_heldout)
        self.release_heldout = release_heldout
        # the epoch V joins training, its loader's config, and whether it
        # has joined in this process
        self.release_epoch: Optional[int] = None
        self.whole_set_loader_cfg: Optional[dict] = None
        self.released = False
        # the weights the run started with, recorded in every entry
        self.run_initial_weights: Optional[Dict[str, float]] = None
        if mode == 'fixed' and not isinstance(weights, dict):
            raise ValueError(
                f"{HOOK_KEY}.weights must be a dict for mode='fixed'")
        if isinstance(weights, str) and weights != 'uniform':
            raise ValueError(f"{HOOK_KEY}.weights must be 'uniform', "
                             f'None or a dict, got {weights!r}')
        if isinstance(weights, dict):
            # the values now; the heads against the model's in before_train
            check_blend_weights(weights, None, f'{HOOK_KEY}.weights')
        if not 0 < heldout_fraction < 1:
            raise ValueError(f'{HOOK_KEY}.heldout_fraction must be in (0, 1), '
                             f'got {heldout_fraction!r}')
        check_group_spec(heldout_group, f'{HOOK_KEY}.heldout_group')
        if not 0 < shadow_fraction <= 1:
            raise ValueError(f'{HOOK_KEY}.shadow_fraction must be in '
                             f'(0, 1], got {shadow_fraction}')
        if isinstance(measure_pipeline, str) and \
                measure_pipeline not in ('val', 'train'):
            raise ValueError(
                f"{HOOK_KEY}.measure_pipeline must be 'val', 'train' "
                f'or a list of transforms, got {measure_pipeline!r}')
        if not 0 <= noise_scale < float('inf'):
            raise ValueError(f'{HOOK_KEY}.noise_scale must be >= 0, '
                             f'got {noise_scale}')
        if not 0 <= prediction_floor < 1:
            raise ValueError(f'{HOOK_KEY}.prediction_floor must be in '
                             f'[0, 1), got {prediction_floor}')
        for key, value in (('bootstrap', bootstrap),
                           ('recalibrate_bn', recalibrate_bn)):
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f'{HOOK_KEY}.{key} must be an integer '
                                 f'>= 0, got {value!r}')
        self.mode = mode
        self.estimator = estimator
        self.warmup_epochs = warmup_epochs
        self.super_epochs = super_epochs
        self.offline_horizon = offline_horizon
        self.weights = weights
        self.heldout_fraction = heldout_fraction
        self.heldout_group = heldout_group
        self.probe_size = probe_size
        self.seed = seed
        # offline shadow estimates need V out of the shadows' data only
        self.exclude_heldout = exclude_heldout if exclude_heldout is not \
            None else not (mode == 'offline' and estimator == 'shadow')
        self.measure_pipeline = measure_pipeline
        self.measure_batch_size = measure_batch_size
        self.use_accuracy = use_accuracy
        self.policy = dict(
            use_accuracy=use_accuracy,
            overfit_floor=overfit_floor,
            min_weight=min_weight,
            smoothing=smoothing)
        self.prediction_floor = prediction_floor
        self.noise_scale = noise_scale
        self.bootstrap = int(bootstrap)
        self.shadow_fraction = shadow_fraction
        self.recalibrate_bn = int(recalibrate_bn)
        self.trajectory_correction = trajectory_correction
        if shadow_check and estimator != 'trajectory':
            raise ValueError(f'{HOOK_KEY}.shadow_check compares the '
                             "trajectory estimator with the shadow one; "
                             "it needs estimator='trajectory'")
        self.shadow_check = shadow_check
        self.history_file = history_file

        self.main_data: Optional[str] = None  # 'all' or 'part'
        # the untrained heads' held-out losses against log C, for the
        # first history entry
        self.initial_check: Optional[dict] = None
        self.plan: List[Estimate] = []
        self.history: List[dict] = []
        # the trajectory estimator's last measurement: epoch, samples and
        # the weights trained with since
        self.reference: Optional[dict] = None
        self.heldout_loader = None
        self.probe_loader = None
        # the shadows' data: the training loader and probe, or a subset's
        self.shadow_loader = None
        self.shadow_probe_loader = None

    # set-up ---------------------------------------------------------------

    def _split_config(self, runner: Runner) -> dict:
        """The train dataset config as a ``HeldOutSplitDataset``."""
        return heldout_split_config(
            runner.cfg.train_dataloader['dataset'], self.heldout_fraction,
            self.seed, self.exclude_heldout, owner='GradientBlendingHook',
            group=self.heldout_group)

    def _measure_pipeline(self, runner: Runner) -> Optional[List[dict]]:
        """The pipeline the measurement loaders run; ``None``: the
        training pipeline."""
        if self.measure_pipeline == 'train':
            return None
        if self.measure_pipeline != 'val':
            return list(self.measure_pipeline)
        if not runner.cfg.get('val_dataloader'):
            raise ValueError(
                "GradientBlendingHook.measure_pipeline='val' needs a "
                "val_dataloader; set measure_pipeline='train' or give "
                'a list of transforms')
        return dataset_pipeline(runner.cfg.val_dataloader['dataset'])

    def _measure_loader(self, runner: Runner, split: dict, part: str):
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        cfg['dataset'] = measurement_config(split, part,
                                            self._measure_pipeline(runner),
                                            self.probe_size)
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False,
                              round_up=False)
        cfg.pop('batch_sampler', None)
        # persistent_workers as the training loader's (as mmaction2's val
        # loaders): with them the workers start once, not at every pass,
        # which on a small held-out set is most of a pass's time
        # (benchmarks/README.md, cost model)
        if self.measure_batch_size:
            cfg['batch_size'] = self.measure_batch_size
        return Runner.build_dataloader(cfg, seed=runner.seed)

    def _build_shadow_loaders(self, runner: Runner, split: dict) -> None:
        """The shadows train on the split's training part (the training
        loader's data when the main run leaves V out too) and are probed
        on T'; with ``shadow_fraction`` < 1, on a stratified part of it,
        probed on a T' drawn from that part."""
        if self.shadow_fraction < 1:
            subset = training_subset_config(split, self.shadow_fraction)
            self.shadow_probe_loader = self._measure_loader(runner, subset,
                                                            'probe')
        else:
            self.shadow_probe_loader = self.probe_loader
            if split['part'] == 'train':
                self.shadow_loader = runner.train_dataloader
                return
            # the main run trains on V as well; the shadows must not
            subset = dict(copy.deepcopy(split), part='train')
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        cfg['dataset'] = subset
        self.shadow_loader = Runner.build_dataloader(cfg, seed=runner.seed)

    def _initial_weights(self,
                         model: MultiHeadModel) -> Optional[Dict[str, float]]:
        if self.weights == 'uniform':
            return {h: 1 / len(model.head_names) for h in model.head_names}
        return self.weights

    def before_train(self, runner: Runner) -> None:
        model = check_multi_head_model(
            unwrap(runner.model), 'GradientBlendingHook needs a model with '
            'a head per modality and a fused head (MultiHeadRecognizer)')
        self.plan = blend_schedule(self.mode, self.estimator,
                                   runner.max_epochs, self.warmup_epochs,
                                   self.super_epochs, self.offline_horizon)
        resumed = runner.epoch > 0 or bool(self.history)
        if not resumed and self._initial_weights(model) is not None:
            model.set_blend_weights(self._initial_weights(model),
                                    key=f'{HOOK_KEY}.weights')
        self.run_initial_weights = self._run_initial_weights(model)
        if self.mode == 'replay':
            return self._start_replay(runner, model)
        self._plan_release(runner)
        if self.mode == 'fixed':
            return
        if self.prediction_floor * len(model.head_names) > 1 or \
                self.policy['min_weight'] * len(model.head_names) > 1:
            raise ValueError(
                f'{HOOK_KEY}: min_weight and prediction_floor must be at '
                f'most 1/{len(model.head_names)} for the model\'s '
                f'{len(model.head_names)} heads')
        split = self._split_config(runner)
        self.heldout_loader = self._measure_loader(runner, split, 'heldout')
        self.probe_loader = self._measure_loader(runner, split, 'probe')
        if self.estimator == 'shadow' or self.shadow_check:
            self._build_shadow_loaders(runner, split)
        # what the history and the log say the main run trained on
        self.main_data = 'all' if split['part'] == 'all' else 'part'
        horizons = ', '.join(f'{e.epoch} (over {e.horizon})'
                             for e in self.plan)
        runner.logger.info(
            f'G-Blend: {self.mode}, {self.estimator} estimator, estimates '
            f'at epochs {horizons}; held-out '
            f'{len(self.heldout_loader.dataset)} samples, probe '
            f'{len(self.probe_loader.dataset)}'
            + (f'; shadows train on {len(self.shadow_loader.dataset)} '
               f'samples (shadow_fraction={self.shadow_fraction}), probed '
               f'on {len(self.shadow_probe_loader.dataset)}'
               if self.shadow_loader is not None else '')
            + f'; the main run trains on '
            f'{len(runner.train_dataloader.dataset)} samples, '
            + ('the whole training set, V included' if self.main_data ==
               'all' else 'the training part, V left out'))
        if self.mode == 'offline' and self.estimator == 'shadow' and \
                self.plan[0].horizon < runner.max_epochs:
            runner.logger.info(
                f'G-Blend: offline estimate over {self.plan[0].horizon} of '
                f'{runner.max_epochs} epochs (offline_horizon), a cheaper '
                'variant of Algorithm 2, which estimates over the whole '
                'training')
        if self.estimator == 'trajectory' and self.reference is None:
            self.reference = dict(
                epoch=runner.epoch,
                samples=self._measure(runner.model,
                                      runner.train_dataloader),
                trained_with=model.get_blend_weights())
            self._check_initial_losses(runner, self.reference['samples'])
        # Also when starting afresh (an empty history): a run killed before
        # its first checkpoint, or an earlier run in this work dir, may have
        # left lines in the file.
        self._rewrite_history(runner)

    # measurement and estimation -------------------------------------------

    def _check_initial_losses(self, runner: Runner, samples: Samples) -> None:
        """Warn when an untrained head's held-out loss is far from log C
        (a badly scaled classifier init inflates its first G); the result
        goes into the first estimate's history entry."""
        model = unwrap(runner.model)
        num_classes = getattr(model, 'num_classes', None)
        # once: the reference measurement and a shadow_check at epoch 0
        # both come here
        if self.use_accuracy or runner.epoch != 0 or not num_classes or \
                self.initial_check is not None:
            return
        losses = {h: _mean(v['heldout']) for h, v in samples.items()}
        far = far_from_chance(losses, num_classes)
        self.initial_check = dict(
            log_classes=math.log(num_classes),
            heldout_loss={h: _finite_or_none(v) for h, v in losses.items()},
            far=sorted(far))
        if far:
            runner.logger.warning(
                'G-Blend: before training, the held-out loss of '
                + ', '.join(f'{h} ({losses[h]:.2f} nats)' for h in far)
                + f' is more than {INITIAL_LOSS_TOLERANCE} from log '
                f'{num_classes} = {math.log(num_classes):.2f}: its logits '
                'start with a large spread, and the first estimate will '
                'credit that head with the fall of its loss as the spread '
                'shrinks (G inflated). Initialise its classifier at a '
                "smaller scale (e.g. head=dict(init_cfg=dict(type='Normal', "
                "layer='Linear', std=0.01)))")

    def _measure(self, model, train_loader) -> Samples:
        """Per-sample values of every head of ``model`` on T' and V, its
        BatchNorm statistics recomputed on a copy (``train_loader``)."""
        return self._measure_models({MAIN: (model, None)}, train_loader,
                                    self.probe_loader)[MAIN]

    def _measure_models(self, models: Dict[str, ModelHeads], train_loader,
                        probe_loader) -> Dict[str, Samples]:
        """Per-sample values of several models, one pass over each set.

        A model with BatchNorm is measured with statistics recomputed on
        ``train_loader``; the main model (``MAIN``) on a copy, the others
        (shadow copies) in place.
        """
        if self.recalibrate_bn:
            models = dict(models)
            if MAIN in models and batchnorm_layers(models[MAIN][0]):
                main, heads = models[MAIN]
                models[MAIN] = (copy.deepcopy(unwrap(main)), heads)
            recalibrate_batchnorm(models, train_loader, self.recalibrate_bn)
        probe = measure_models(models, probe_loader)
        heldout = measure_models(models, self.heldout_loader)
        field = 'correct' if self.use_accuracy else 'losses'
        return {
            name: {
                head: dict(train=list(getattr(probe[name][head], field)),
                           heldout=list(getattr(heldout[name][head], field)))
                for head in probe[name]
            }
            for name in models
        }

    def _shadow_samples(self, runner: Runner,
                        plan: Estimate) -> Tuple[Samples, Samples]:
        """Before and after ``plan.horizon`` epochs of each head's copy."""
        optim_wrapper = runner.optim_wrapper
        clip = getattr(optim_wrapper, 'clip_grad_kwargs', None) or None
        if clip is not None:
            clip = {k: v for k, v in clip.items() if k != 'type'}
        heads = unwrap(runner.model).head_names
        shadows = shadow_train(
            runner.model, optim_wrapper.optimizer, self.shadow_loader,
            heads, plan.horizon, clip,
            schedulers=flatten_schedulers(runner.param_schedulers),
            epoch_length=len(runner.train_dataloader),
            start_epoch=runner.epoch)
        # the main model is untouched by the shadows' training, so its
        # "before" is measured in the same pass as their "after"
        samples = self._measure_models(
            {MAIN: (runner.model, None),
             **{head: (shadow, [head]) for head, shadow in shadows.items()}},
            self.shadow_loader, self.shadow_probe_loader)
        del shadows
        if plan.epoch == 0:
            self._check_initial_losses(runner, samples[MAIN])
        return samples[MAIN], {head: samples[head][head] for head in heads}

    def _estimate(self, model: MultiHeadModel, before: Samples, after: Samples,
                  trained_with: Optional[Dict[str, float]], seed: int,
                  bootstrap: int
                  ) -> Tuple[BlendEstimate, Dict[str, Tuple[float, float]],
                             Dict[str, Tuple[float, float]]]:
        """The weights from per-sample values, the paired standard errors
        of G and O, and the weights' bootstrap intervals.

        ``trained_with``: the trajectory estimator's weights in use over the
        super-epoch, by which its G and O (and their errors) are divided.
        """
        heads = model.head_names
        policy = dict(self.policy)
        if not self.history:
            # smoothing is towards the previous *estimate*, not the
            # warm-up's initial weights
            policy['smoothing'] = 0.0
        policy['previous'] = model.get_blend_weights()
        if self.prediction_floor:
            policy['floors'] = {model.predict_head: self.prediction_floor}
        if trained_with is not None:
            policy['response_scale'] = dict(trained_with)
        ses = {
            head: paired_standard_errors(
                before[head]['train'], before[head]['heldout'],
                after[head]['train'], after[head]['heldout'])
            for head in heads
        }

        def scaled(noise):
            # a non-finite measurement has no standard error either; the
            # estimator gives such a head weight 0 instead of failing
            return {h: (self.noise_scale * g, self.noise_scale * o)
                    for h, (g, o) in noise.items()
                    if math.isfinite(g) and math.isfinite(o)}

        def estimate(before_means, after_means, noise):
            return blend_statistics(before_means, after_means,
                                    noise=scaled(noise), **policy)

        def means(samples):
            return {h: (_mean(samples[h]['train']),
                        _mean(samples[h]['heldout'])) for h in heads}

        result = estimate(means(before), means(after), ses)
        intervals = {}
        if bootstrap:
            intervals = bootstrap_weight_intervals(
                {h: (before[h]['train'], before[h]['heldout'])
                 for h in heads},
                {h: (after[h]['train'], after[h]['heldout'])
                 for h in heads},
                lambda b, a, noise: estimate(b, a, noise).weights,
                num_resamples=bootstrap, seed=seed)
        return result, ses, intervals

    def _apply(self, runner: Runner, plan: Estimate, before: Samples,
               after: Samples,
               trained_with: Optional[Dict[str, float]] = None,
               shadow_check: Optional[Dict[str, float]] = None
               ) -> BlendEstimate:
        """Estimate (:meth:`_estimate`), set and record the weights."""
        model = unwrap(runner.model)
        result, ses, intervals = self._estimate(
            model, before, after, trained_with, self.seed + plan.epoch,
            self.bootstrap)
        weights = torch.tensor(
            [result.weights[h] for h in model.head_names],
            dtype=torch.float32, device=model.blend_weights.device)
        # the inputs were all-reduced, so every rank computed the same; the
        # broadcast makes it exact whatever the floating-point paths did
        broadcast(weights, src=0)
        model.set_blend_weights(dict(zip(model.head_names,
                                         weights.tolist())))
        self._record(runner, plan, result, ses, intervals, trained_with,
                     shadow_check)
        return result

    def _record(self, runner: Runner, plan: Estimate,
                estimate: BlendEstimate, ses: Dict[str, Tuple[float, float]],
                intervals: Dict[str, Tuple[float, float]],
                trained_with: Optional[Dict[str, float]],
                shadow_check: Optional[Dict[str, float]] = None) -> None:
        heads = {}
        scalars = {}
        for head, s in estimate.stats.items():
            low, high = intervals.get(head, (math.nan, math.nan))
            heads[head] = dict(
                train_before=s.train_before, heldout_before=s.heldout_before,
                train_after=s.train_after, heldout_after=s.heldout_after,
                G=s.generalization, G_se=ses[head][0], O=s.overfitting,
                O_se=ses[head][1], OGR=s.ogr, weight=s.weight,
                weight_low=low, weight_high=high, note=s.note)
            if trained_with is not None:
                heads[head]['trained_with'] = trained_with[head]
            heads[head] = {k: _finite_or_none(v) if isinstance(v, float)
                           else v for k, v in heads[head].items()}
            for key in ('train_after', 'heldout_after', 'G', 'O', 'OGR',
                        'weight'):
                if heads[head][key] is not None:
                    scalars[f'gblend/{key}/{head}'] = heads[head][key]
        entry = dict(epoch=plan.epoch, horizon=plan.horizon, mode=self.mode,
                     estimator=self.estimator, fallback=estimate.fallback,
                     weights=dict(estimate.weights), heads=heads,
                     **self._run_fields(runner))
        if shadow_check is not None:
            entry['shadow_check'] = dict(
                weights=dict(shadow_check),
                max_abs_difference=max(
                    abs(estimate.weights[h] - shadow_check[h])
                    for h in estimate.weights))
        self.history.append(entry)
        runner.visualizer.add_scalars(scalars, step=plan.epoch)
        what = 'accuracy' if self.use_accuracy else 'loss'
        lines = [f'G-Blend estimate at epoch {plan.epoch} '
                 f'({self.estimator}, over {plan.horizon} epochs; {what}'
                 + (', G and O per unit weight' if trained_with else '')
                 + '):']
        for head, h in heads.items():
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
        if estimate.fallback:
            lines.append(f'  no head generalised: {estimate.fallback} weights')
        if shadow_check is not None:
            lines.append(
                '  shadow estimator from the same checkpoints: '
                + ', '.join(f'{h} {w:.4f}' for h, w in shadow_check.items())
                + f' (largest difference '
                f'{entry["shadow_check"]["max_abs_difference"]:.4f})')
        runner.logger.info('\n'.join(lines))
        untrained = [h for h, w in estimate.weights.items() if w == 0]
        if untrained:
            # A zero weight stops that head's training until the next
            # estimate (for the trajectory estimator, for good: it measures
            # how the head trains); if it is the prediction head, the
            # prediction stays untrained.
            predict_head = unwrap(runner.model).predict_head
            runner.logger.warning(
                f'G-Blend gave weight 0 to {untrained}: '
                + (f'the {predict_head} head is the prediction, and it will '
                   'not be trained; ' if predict_head in untrained else '')
                + 'set GradientBlendingHook.min_weight > 0 to keep every '
                'head training')
        append_history(self._history_path(runner), entry)

    def _history_path(self, runner: Runner) -> str:
        return osp.join(runner.work_dir, self.history_file)

    def _rewrite_history(self, runner: Runner) -> None:
        """The checkpoint's history (none when starting afresh) is the
        truth: an interrupted run may have written estimates the checkpoint
        lacks."""
        rewrite_history(self._history_path(runner), self.history)

    def _planned(self, epoch: int) -> Optional[Estimate]:
        return next((p for p in self.plan if p.epoch == epoch), None)

    def before_train_epoch(self, runner: Runner) -> None:
        if self.mode == 'replay':
            return self._replay_epoch(runner)
        if self.estimator == 'shadow':
            plan = self._planned(runner.epoch)
            if plan is not None:
                before, after = self._shadow_samples(runner, plan)
                self._apply(runner, plan, before, after)
        elif self.shadow_check and self.mode != 'fixed':
            # the trajectory estimate whose super-epoch starts now
            plan = next((p for p in self.plan
                         if p.epoch - p.horizon == runner.epoch), None)
            if plan is not None:
                before, after = self._shadow_samples(
                    runner, Estimate(runner.epoch, plan.horizon))
                result, _, _ = self._estimate(
                    unwrap(runner.model), before, after, None, 0, 0)
                self.reference['shadow_check'] = dict(result.weights)
        # after a shadow estimate made now, which trains on the part
        self._release_if_due(runner)

    def after_train_epoch(self, runner: Runner) -> None:
        if self.estimator != 'trajectory' or self.mode == 'fixed':
            return
        plan = self._planned(runner.epoch + 1)
        if plan is None:
            return
        samples = self._measure(runner.model, runner.train_dataloader)
        self._apply(runner, plan, self.reference['samples'], samples,
                    self.reference['trained_with']
                    if self.trajectory_correction else None,
                    self.reference.get('shadow_check'))
        self.reference = dict(
            epoch=plan.epoch, samples=samples,
            trained_with=unwrap(runner.model).get_blend_weights())

    # replay, and the release of V ------------------------------------------

    def _run_initial_weights(self,
                             model: MultiHeadModel) -> Dict[str, float]:
        """The weights the run started with: the history's (a resumed run),
        the replayed source's, or the initial ones (with ``weights=None``
        the model's, untouched until the first entry)."""
        if self.history and self.history[0].get('initial_weights'):
            return dict(self.history[0]['initial_weights'])
        if self.replay_source is not None and \
                self.replay_source.initial_weights is not None:
            return dict(self.replay_source.initial_weights)
        return dict(self._initial_weights(model) or model.get_blend_weights())

    def _run_fields(self, runner: Runner) -> dict:
        """What every history entry says of the run: for a replay of it,
        what the main run trains on (``'all'``: V included, ``'part'``: V
        left out), and once, the untrained heads' losses against log C."""
        fields = dict(max_epochs=runner.max_epochs,
                      initial_weights=self.run_initial_weights)
        if self.main_data is not None:
            fields['main_trains_on'] = self.main_data
        if self.initial_check is not None and not any(
                'initial_check' in e for e in self.history):
            fields['initial_check'] = self.initial_check
        return fields

    def _add_entry(self, runner: Runner, entry: dict, message: str) -> None:
        """Record and log an entry that is not an estimate."""
        entry.update(self._run_fields(runner))
        self.history.append(entry)
        append_history(self._history_path(runner), entry)
        runner.logger.info(message)

    def _start_replay(self, runner: Runner, model: MultiHeadModel) -> None:
        source = self.replay_source
        self.replay_changes, dropped = map_schedule(
            source, runner.max_epochs, self.replay_epochs)
        check_schedule_heads(self.replay_changes, self.run_initial_weights,
                             model.head_names)
        dataset = runner.train_dataloader.dataset
        if isinstance(dataset, HeldOutSplitDataset) and dataset.part != 'all':
            runner.logger.warning(
                f'{REPLAY_KEY}: train_dataloader.dataset is a '
                f'HeldOutSplitDataset with part={dataset.part!r}: the replay '
                f'trains on that part only ({len(dataset)} samples); set '
                "part='all' or unwrap the dataset to train on the whole "
                'training set')
        runner.logger.info(
            f'G-Blend: replaying {source.name} (replay_epochs='
            f'{self.replay_epochs!r}): from epoch 0 '
            f'{_fmt_weights(self.run_initial_weights)}' + ''.join(
                f'; from epoch {c.epoch} (source epoch {c.source_epoch}) '
                f'{_fmt_weights(c.weights)}' for c in self.replay_changes)
            + (f'; source epochs {dropped} dropped (past the last epoch, '
               "or on a later change's epoch)" if dropped else ''))
        self._rewrite_history(runner)

    def _replay_epoch(self, runner: Runner) -> None:
        """Set this epoch's replayed weights; every epoch, so a resumed run
        needs no state. A change that starts now is recorded and logged."""
        weights, change = weights_at(self.replay_changes, runner.epoch,
                                     self.run_initial_weights)
        unwrap(runner.model).set_blend_weights(weights, key=REPLAY_KEY)
        if change is None or change.epoch != runner.epoch:
            return
        runner.visualizer.add_scalars(
            {f'gblend/weight/{h}': w for h, w in weights.items()},
            step=runner.epoch)
        self._add_entry(
            runner,
            dict(epoch=runner.epoch, mode='replay', estimator='replay',
                 source=self.replay_source.name,
                 source_epoch=change.source_epoch, weights=weights),
            f'G-Blend: replayed weights from epoch {runner.epoch} (source '
            f'epoch {change.source_epoch}): {_fmt_weights(weights)}')

    def _plan_release(self, runner: Runner) -> None:
        """With ``release_heldout``: the epoch V joins training and the
        whole set's loader config; schedulers that it would cut short are
        refused now, before training."""
        if not self.release_heldout:
            return
        split = self._split_config(runner)
        if split.get('part', 'train') == 'all':
            runner.logger.warning(
                f'{RELEASE_KEY}: the main run trains on the whole training '
                'set already; there is nothing to release')
            return
        self.release_epoch = self.plan[-1].epoch
        self.whole_set_loader_cfg = whole_set_dataloader_config(
            runner.cfg.train_dataloader, split)
        check_schedulers_for_release(runner.param_schedulers,
                                     self.release_epoch,
                                     len(runner.train_dataloader))

    def _release_if_due(self, runner: Runner) -> None:
        """From the release epoch on (a resumed run: at its first epoch),
        train on the whole training set; recorded once."""
        if self.release_epoch is None or self.released or \
                runner.epoch < self.release_epoch:
            return
        before, after = release_heldout(
            runner, self.whole_set_loader_cfg,
            rebuild_schedulers=self.release_epoch == 0 and runner.iter == 0)
        self.released = True
        self.main_data = 'all'
        if any(e.get('event') == 'release_heldout' for e in self.history):
            runner.logger.info(
                'G-Blend: resumed after the release of the held-out '
                f'samples: training on all {after} samples')
            return
        self._add_entry(
            runner,
            dict(epoch=runner.epoch, event='release_heldout', mode=self.mode,
                 estimator=self.estimator,
                 weights=unwrap(runner.model).get_blend_weights(),
                 samples_before=before, samples_after=after),
            f'G-Blend: the {after - before} held-out samples join training '
            f'from epoch {runner.epoch}: {before} -> {after} samples')

    # checkpoints ----------------------------------------------------------

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['gblend'] = dict(
            history=copy.deepcopy(self.history),
            reference=copy.deepcopy(self.reference),
            # made before epoch 0, written with the first estimate
            initial_check=copy.deepcopy(self.initial_check))

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('gblend')
        if state is None or not runner._resume:
            return
        self.history = list(state.get('history', []))
        self.reference = state.get('reference')
        self.initial_check = state.get('initial_check')
