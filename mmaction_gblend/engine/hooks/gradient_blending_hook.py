"""Gradient Blending as a training hook: measure, estimate, set, log.

The hook is thin: the schedule is :func:`blend_schedule`, the measurement
:func:`measure_models`, the shadow training :func:`shadow_train`, and the
weights :func:`~mmaction_gblend.blending.blend_statistics`. The weights live
in the recognizer's ``blend_weights`` buffer, so checkpoints carry them and
every process uses the same values.
"""
import copy
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmaction.registry import HOOKS
from mmengine.dist import broadcast
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...blending import BlendEstimate, blend_statistics
from ...models.recognizers.multi_head_recognizer import check_blend_weights
from ..blend_schedule import HOOK_KEY, Estimate, blend_schedule
from ..heldout_evaluation import ModelHeads, measure_models, unwrap
from ..history_file import append_history, rewrite_history
from ..shadow_training import shadow_train

SPLIT_DATASET = 'HeldOutSplitDataset'


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.4g}'


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

    Modes: ``online`` re-estimates every super-epoch after a warm-up,
    ``offline`` estimates once, ``fixed`` keeps ``weights``. Estimators:

    * ``shadow``: the paper's Algorithm 1. At the start of each super-epoch,
      a copy of the model is trained on each head's loss alone for the
      super-epoch (``shadow_fraction`` of its iterations, to cut the cost),
      and each head's G and O are read off its own copy. The copies train
      side by side on the same batches, a modality head's copy running only
      its own branch, and are measured together with the main model in one
      pass over the held-out set and the probe; so k + 1 copies of the
      model and its optimizer state are in memory during an estimate.
    * ``trajectory`` (a deviation from the paper, much cheaper): the main
      model's own per-head losses at consecutive super-epoch boundaries; the
      warm-up trains with the initial weights, which must give every head
      some weight (default: uniform).

    Every estimate is logged (per head: train and held-out loss before and
    after, G, O, OGR, weight), written to the visualizer as scalars
    ``gblend/<quantity>/<head>`` and appended to
    ``<work_dir>/gblend_history.jsonl``. The history and the trajectory's
    reference measurement are saved in checkpoints and restored on resume.

    Args:
        mode: ``'online'``, ``'offline'`` or ``'fixed'``.
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
        probe_size: Samples of the training probe T' (default: as many as
            held out).
        seed: Seed of the split when the train dataset is not wrapped.
        exclude_heldout: Require the held-out samples to be kept out of the
            main training (the train dataset wrapped with ``part='train'``).
        measure_pipeline: ``'val'`` (the val dataloader's deterministic
            pipeline), ``'train'`` (the training pipeline, augmentation and
            all) or a list of transforms.
        measure_batch_size: Batch size of the measurement loaders (default:
            the training batch size).
        use_accuracy: Estimate from accuracies instead of losses.
        overfit_floor: Smallest ``|O|`` (see ``blend_statistics``).
        min_weight: Least weight of any head.
        smoothing: Exponential smoothing with the previous estimate's
            weights (the first estimate is not smoothed).
        noise_scale: Changes of a head's held-out value within
            ``noise_scale`` standard errors of its measurement are not
            resolved: such a G earns no weight and ``|O|`` is floored there
            (see ``blend_statistics(noise=...)``); 0 turns this off. Small
            held-out sets need it: a held-out loss that moved by chance
            otherwise earns a huge ``G / O**2``.
        shadow_fraction: Fraction of a super-epoch's iterations each shadow
            copy trains for.
        history_file: Name of the JSON-lines history in the work dir.
    """
    priority = 'NORMAL'  # after SyncBuffersHook, before CheckpointHook

    def __init__(self,
                 mode: str = 'online',
                 estimator: str = 'trajectory',
                 warmup_epochs: int = 10,
                 super_epochs: int = 5,
                 weights: Union[str, Dict[str, float], None] = 'uniform',
                 heldout_fraction: float = 0.08,
                 probe_size: Optional[int] = None,
                 seed: int = 0,
                 exclude_heldout: bool = True,
                 measure_pipeline: Union[str, Sequence[dict]] = 'val',
                 measure_batch_size: Optional[int] = None,
                 use_accuracy: bool = False,
                 overfit_floor: float = 1e-4,
                 min_weight: float = 0.0,
                 smoothing: float = 0.0,
                 noise_scale: float = 1.0,
                 shadow_fraction: float = 0.15,
                 history_file: str = 'gblend_history.jsonl') -> None:
        # validated here so a typo fails before any training
        blend_schedule(mode, estimator, max(warmup_epochs, 1) + 1,
                       warmup_epochs, super_epochs)
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
        if not 0 < shadow_fraction <= 1:
            raise ValueError(f'{HOOK_KEY}.shadow_fraction must be in '
                             f'(0, 1], got {shadow_fraction}')
        if isinstance(measure_pipeline, str) and \
                measure_pipeline not in ('val', 'train'):
            raise ValueError(
                f"{HOOK_KEY}.measure_pipeline must be 'val', 'train' "
                f'or a list of transforms, got {measure_pipeline!r}')
        self.mode = mode
        self.estimator = estimator
        self.warmup_epochs = warmup_epochs
        self.super_epochs = super_epochs
        self.weights = weights
        self.heldout_fraction = heldout_fraction
        self.probe_size = probe_size
        self.seed = seed
        self.exclude_heldout = exclude_heldout
        self.measure_pipeline = measure_pipeline
        self.measure_batch_size = measure_batch_size
        self.policy = dict(
            use_accuracy=use_accuracy,
            overfit_floor=overfit_floor,
            min_weight=min_weight,
            smoothing=smoothing)
        if not 0 <= noise_scale < float('inf'):
            raise ValueError(f'{HOOK_KEY}.noise_scale must be >= 0, '
                             f'got {noise_scale}')
        self.noise_scale = noise_scale
        self.shadow_fraction = shadow_fraction
        self.history_file = history_file

        self.plan: List[Estimate] = []
        self.history: List[dict] = []
        # the trajectory estimator's last measurement: (epoch, measures)
        self.reference: Optional[dict] = None
        self.heldout_loader = None
        self.probe_loader = None

    # set-up ---------------------------------------------------------------

    def _split_config(self, runner: Runner) -> dict:
        """The train dataset config as a ``HeldOutSplitDataset``."""
        dataset = copy.deepcopy(runner.cfg.train_dataloader['dataset'])
        if dataset.get('type') == SPLIT_DATASET:
            if dataset.get('part', 'train') != 'train':
                raise ValueError(
                    'train_dataloader.dataset is a HeldOutSplitDataset with '
                    f"part={dataset.get('part')!r}; training needs "
                    "part='train'")
            return dataset
        if self.exclude_heldout:
            raise ValueError(
                'GradientBlendingHook: wrap train_dataloader.dataset in '
                "dict(type='HeldOutSplitDataset', part='train', "
                'fraction=..., dataset=...) so the held-out samples stay out '
                'of training, or set exclude_heldout=False to measure on '
                'samples the model also trains on (not the paper\'s method)')
        return dict(type=SPLIT_DATASET, dataset=dataset, part='all',
                    fraction=self.heldout_fraction, seed=self.seed)

    def _measure_loader(self, runner: Runner, split: dict, part: str):
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        dataset = copy.deepcopy(split)
        dataset['part'] = part
        if self.probe_size is not None:
            dataset['probe_size'] = self.probe_size
        if self.measure_pipeline == 'val':
            if not runner.cfg.get('val_dataloader'):
                raise ValueError(
                    "GradientBlendingHook.measure_pipeline='val' needs a "
                    "val_dataloader; set measure_pipeline='train' or give "
                    'a list of transforms')
            val = runner.cfg.val_dataloader['dataset']
            # a dataset wrapper (WithAudioTrack) keeps it in its dataset
            pipeline = val.get('pipeline') or (
                val.get('dataset') or {}).get('pipeline')
            if pipeline is not None:
                dataset['dataset']['pipeline'] = copy.deepcopy(pipeline)
        elif not isinstance(self.measure_pipeline, str):
            dataset['dataset']['pipeline'] = list(self.measure_pipeline)
        dataset['dataset']['test_mode'] = False
        cfg['dataset'] = dataset
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

    def _initial_weights(self, model) -> Optional[Dict[str, float]]:
        if self.weights == 'uniform':
            return {h: 1 / len(model.head_names) for h in model.head_names}
        return self.weights

    def before_train(self, runner: Runner) -> None:
        model = unwrap(runner.model)
        self.plan = blend_schedule(self.mode, self.estimator,
                                   runner.max_epochs, self.warmup_epochs,
                                   self.super_epochs)
        resumed = runner.epoch > 0 or bool(self.history)
        if not resumed and self._initial_weights(model) is not None:
            model.set_blend_weights(self._initial_weights(model),
                                    key=f'{HOOK_KEY}.weights')
        if self.mode == 'fixed':
            return
        split = self._split_config(runner)
        self.heldout_loader = self._measure_loader(runner, split, 'heldout')
        self.probe_loader = self._measure_loader(runner, split, 'probe')
        runner.logger.info(
            f'G-Blend: {self.mode}, {self.estimator} estimator, estimates '
            f'at epochs {[e.epoch for e in self.plan]}; held-out '
            f'{len(self.heldout_loader.dataset)} samples, probe '
            f'{len(self.probe_loader.dataset)}')
        if self.estimator == 'trajectory' and self.reference is None:
            self.reference = dict(
                epoch=runner.epoch, measures=self._measure(runner.model))
        # Also when starting afresh (an empty history): a run killed before
        # its first checkpoint, or an earlier run in this work dir, may have
        # left lines in the file.
        self._rewrite_history(runner)

    # measurement and estimation -------------------------------------------

    def _measure(self, model) -> Dict[str, List[float]]:
        """``{head: [train, heldout, heldout standard error]}`` of the loss
        (or accuracy)."""
        return self._measure_models({'model': (model, None)})['model']

    def _measure_models(self, models: Dict[str, ModelHeads]
                        ) -> Dict[str, Dict[str, List[float]]]:
        """:meth:`_measure` of several models, one pass over each set."""
        probe = measure_models(models, self.probe_loader)
        heldout = measure_models(models, self.heldout_loader)
        field = 'accuracy' if self.policy['use_accuracy'] else 'loss'
        return {
            name: {
                head: [getattr(probe[name][head], field),
                       getattr(heldout[name][head], field),
                       getattr(heldout[name][head], f'{field}_se')]
                for head in probe[name]
            }
            for name in models
        }

    def _shadow_measures(self, runner: Runner, horizon: int):
        """Before and after ``horizon`` epochs of each head's own copy."""
        iters = max(1, math.ceil(self.shadow_fraction * horizon *
                                 len(runner.train_dataloader)))
        optim_wrapper = runner.optim_wrapper
        clip = getattr(optim_wrapper, 'clip_grad_kwargs', None) or None
        if clip is not None:
            clip = {k: v for k, v in clip.items() if k != 'type'}
        heads = unwrap(runner.model).head_names
        shadows = shadow_train(runner.model, optim_wrapper.optimizer,
                               runner.train_dataloader, heads, iters, clip)
        # the main model is untouched by the shadows' training, so its
        # "before" is measured in the same pass as their "after"
        measures = self._measure_models(
            {'before': (runner.model, None),
             **{head: (shadow, [head]) for head, shadow in shadows.items()}})
        del shadows
        after = {head: measures[head][head] for head in heads}
        return measures['before'], after

    def _apply(self, runner: Runner, plan: Estimate, before: dict,
               after: dict) -> BlendEstimate:
        model = unwrap(runner.model)
        policy = dict(self.policy)
        if not self.history:
            # smoothing is towards the previous *estimate*, not the
            # warm-up's initial weights
            policy['smoothing'] = 0.0
        estimate = blend_statistics(
            {h: tuple(v[:2]) for h, v in before.items()},
            {h: tuple(v[:2]) for h, v in after.items()},
            previous=model.get_blend_weights(),
            # a non-finite measurement has no standard error either; the
            # estimator gives such a head weight 0 instead of failing
            noise={h: self.noise_scale * v[2]
                   for h, v in after.items() if math.isfinite(v[2])},
            **policy)
        weights = torch.tensor(
            [estimate.weights[h] for h in model.head_names],
            dtype=torch.float32, device=model.blend_weights.device)
        # the inputs were all-reduced, so every rank computed the same; the
        # broadcast makes it exact whatever the floating-point paths did
        broadcast(weights, src=0)
        model.set_blend_weights(dict(zip(model.head_names,
                                         weights.tolist())))
        self._record(runner, plan, estimate,
                     {h: v[2] for h, v in after.items()})
        return estimate

    def _record(self, runner: Runner, plan: Estimate,
                estimate: BlendEstimate, noise: Dict[str, float]) -> None:
        heads = {}
        scalars = {}
        for head, s in estimate.stats.items():
            heads[head] = dict(
                train_before=s.train_before, heldout_before=s.heldout_before,
                train_after=s.train_after, heldout_after=s.heldout_after,
                heldout_se=noise[head], G=s.generalization,
                O=s.overfitting, OGR=s.ogr, weight=s.weight, note=s.note)
            heads[head] = {k: _finite_or_none(v) if isinstance(v, float)
                           else v for k, v in heads[head].items()}
            for key in ('train_after', 'heldout_after', 'G', 'O', 'OGR',
                        'weight'):
                if heads[head][key] is not None:
                    scalars[f'gblend/{key}/{head}'] = heads[head][key]
        entry = dict(epoch=plan.epoch, horizon=plan.horizon, mode=self.mode,
                     estimator=self.estimator, fallback=estimate.fallback,
                     weights=dict(estimate.weights), heads=heads)
        self.history.append(entry)
        runner.visualizer.add_scalars(scalars, step=plan.epoch)
        lines = [f'G-Blend estimate at epoch {plan.epoch} '
                 f'({self.estimator}, over {plan.horizon} epochs):']
        for head, h in heads.items():
            lines.append(
                f'  {head:>8}: train {_fmt(h["train_before"])} -> '
                f'{_fmt(h["train_after"])}, held-out '
                f'{_fmt(h["heldout_before"])} -> {_fmt(h["heldout_after"])}, '
                f'G {_fmt(h["G"])}, O {_fmt(h["O"])}, OGR {_fmt(h["OGR"])}, '
                f'weight {h["weight"]:.4f}'
                + (f' ({h["note"]})' if h['note'] else ''))
        if estimate.fallback:
            lines.append(f'  no head generalised: {estimate.fallback} weights')
        runner.logger.info('\n'.join(lines))
        untrained = [h for h, w in estimate.weights.items() if w == 0]
        if untrained:
            # A zero weight stops that head's training until the next
            # estimate; if it is the prediction head, the test prediction
            # stays untrained (seen on the demo: 6 % top-1, below chance).
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
        if self.estimator != 'shadow':
            return
        plan = self._planned(runner.epoch)
        if plan is not None:
            before, after = self._shadow_measures(runner, plan.horizon)
            self._apply(runner, plan, before, after)

    def after_train_epoch(self, runner: Runner) -> None:
        if self.estimator != 'trajectory' or self.mode == 'fixed':
            return
        plan = self._planned(runner.epoch + 1)
        if plan is None:
            return
        measures = self._measure(runner.model)
        self._apply(runner, plan, self.reference['measures'], measures)
        self.reference = dict(epoch=plan.epoch, measures=measures)

    # checkpoints ----------------------------------------------------------

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['gblend'] = dict(
            history=copy.deepcopy(self.history),
            reference=copy.deepcopy(self.reference))

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('gblend')
        if state is None or not runner._resume:
            return
        self.history = list(state.get('history', []))
        self.reference = state.get('reference')
