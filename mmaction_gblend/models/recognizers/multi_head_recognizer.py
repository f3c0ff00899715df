"""A recognizer with one branch and head per modality and a fused head.

The model of G-Blend (Wang, Tran, Feiszli, CVPR 2020, Sec. 3): k modality
branches, each an encoder with its own classification head, and a fused head
on the fused features; k + 1 losses blended as ``sum_i w_i * L_i``.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.dist import all_reduce
from mmengine.model import BaseModel, ModuleDict

from ...blending.modulation import discrepancy_ratios
from ..fusions import BaseFusion
from ..modulation import (PredictionModulation, encoder_parameters,
                          modality_logits, resolve_score_source,
                          true_class_probability)
from ..utils import global_avg_pool, load_branch_checkpoint, stack_labels

FUSED = 'fused'
# How a branch's input folds into a batch for its backbone (see _fold).
INPUT_FORMATS = ('NCTHW', 'NCTF', 'NCHW')
DEFAULT_INPUT_FORMAT = dict(imgs='NCTHW', audios='NCTF', flows='NCTHW')


def check_blend_weights(weights: Dict[str, float],
                        heads: Optional[Sequence[str]],
                        key: str) -> List[float]:
    """Validate blend weights: one per head, finite, >= 0, summing to 1.

    Args:
        weights: ``{head: weight}``.
        heads: The model's heads, in order; ``None`` checks the values only
            (a hook's config, before the model exists).
        key: The config key, for the messages (e.g. ``model.blend_weights``).

    Returns:
        The weights in the order of ``heads`` (else of ``weights``).

    Raises:
        ValueError: Naming ``key``, the heads and what was expected.
    """
    if not isinstance(weights, dict):
        raise ValueError(f'{key} must be a dict {{head: weight}}, got '
                         f'{weights!r}')
    if heads is None:
        heads = list(weights)
    if set(weights) != set(heads):
        raise ValueError(
            f'{key} must give one weight per head {list(heads)}, got '
            f'{sorted(weights)}')
    values = [float(weights[h]) for h in heads]
    if not all(v == v and abs(v) != float('inf') for v in values):
        raise ValueError(f'{key} must be finite, got {dict(weights)}')
    if min(values) < 0:
        raise ValueError(f'{key} must be >= 0, got {dict(weights)}')
    if abs(sum(values) - 1.0) > 1e-4:
        raise ValueError(f'{key} must sum to 1, got {dict(weights)} '
                         f'(sum {sum(values):.6g})')
    return values


def _check_batch_keys(preprocessor: nn.Module, args: tuple,
                      kwargs: dict) -> None:
    """Forward pre-hook of the data preprocessor, for every batch.

    Names both sides when the batch's inputs (the pipeline's
    ``PackActionInputs.collect_keys``) do not fit
    ``model.data_preprocessor.preprocessors``; mmaction2's preprocessor
    would fail with a bare ``KeyError`` or ``AttributeError``. It also
    catches configs run without ``ConfigCheckHook``.
    """
    data = args[0] if args else kwargs.get('data')
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if inputs is None:
        return
    known = sorted(preprocessor.preprocessors)
    if not isinstance(inputs, dict):
        raise TypeError(
            'MultiHeadRecognizer needs the batch inputs as a dict '
            f'{{input_key: tensors}}, got {type(inputs).__name__}: set the '
            f'pipeline\'s PackActionInputs.collect_keys (to {tuple(known)})')
    unknown = sorted(set(inputs) - set(known))
    if unknown:
        raise ValueError(
            f'the batch has inputs {sorted(inputs)} (the pipeline\'s '
            'PackActionInputs.collect_keys), but '
            f'model.data_preprocessor.preprocessors has none for {unknown} '
            f'(it has {known})')


@MODELS.register_module()
class MultiHeadRecognizer(BaseModel):
    """Multi-modal recognizer: one branch and head per modality, fused head.

    Each branch is any mmaction2 backbone config (2D/3D RGB, flow) or one of
    ours (audio). Every step computes every head, so DDP never sees unused
    parameters; each head's loss ``loss_<head>`` is its cross-entropy times
    its blend weight, kept in the buffer :attr:`blend_weights` (saved in
    checkpoints, the same on every process; G-Blend rewrites it). The
    unweighted cross-entropy and top-1 accuracy of every head are reported
    as ``<head>_ce`` and ``<head>_top1`` (no "loss" in the name, so they are
    logged, not optimised).

    At test time ``pred_score`` holds the fused head's scores (or those of
    ``predict_head``) and ``head_scores`` every modality head's.

    Configs are checked when the model is built (branches against
    ``data_preprocessor.preprocessors``, the fusion against the number of
    modalities, ``blend_weights``), and every batch's input keys against
    the preprocessors; errors name the config keys (``model.fusion.type``,
    ``model.branches.<m>.input_key``, ...). ``ConfigCheckHook`` checks the
    pipelines before the run starts.

    On-the-fly modulation (OGM-GE, OPM) reads per-modality scores of each
    training batch (``score_source``, summed over all processes); OPM drops
    features before the fused head (``opm``); OGM-GE modulates the encoders'
    gradients through :meth:`modality_parameters` (see
    ``OGMGEOptimWrapper``). Both are driven by ``OnTheFlyModulationHook``.

    Args:
        branches: ``{modality: dict(backbone=..., feat_dim=..., input_key=...,
            input_format=..., init_from=...)}``. Modalities are ordered by
            name whatever the dict's order (``modalities``, the fused
            concatenation, ``blend_weights``: sorted names, then
            ``'fused'``). ``input_key`` is the key of
            the batch's inputs (the pipeline's ``collect_keys``); it defaults
            to the modality name. ``input_format`` says how views fold into
            the batch: ``'NCTHW'`` (3D video) and ``'NCTF'`` (audio) take
            ``[N, V, ...]`` to ``[N*V, ...]``; ``'NCHW'`` (2D, TSN) runs the
            ``S`` frames ``[N, S, C, H, W]`` through the backbone and
            averages their feature maps. ``feat_dim`` is the channels of the
            backbone's output. ``init_from``: see
            :func:`~mmaction_gblend.models.utils.load_branch_checkpoint`.
        num_classes: Number of classes.
        fusion: Fusion module config (its ``in_channels`` is filled in from
            the branches' ``feat_dim``). Required for 2 or more modalities,
            not allowed for one (a uni-modal model has no fused head).
        head: Config of each head, without ``in_channels``/``num_classes``.
        loss_cls: Classification loss of every head.
        blend_weights: ``{head: weight}`` for the modality heads and
            ``'fused'``; >= 0, summing to 1. Default: the fused head alone
            (naive late fusion), or 1 for a uni-modal model.
        predict_head: The head whose scores are ``pred_score``; defaults to
            ``'fused'`` (the modality for a uni-modal model).
        average_clips: ``'prob'`` or ``'score'``: how views are averaged at
            test time.
        score_source: Where on-the-fly modulation reads each modality's
            logits: ``'auto'`` (default: ``'linear_split'`` where the fusion
            allows it, else ``'zero_out'``), ``'linear_split'``,
            ``'zero_out'`` or ``'heads'``; see
            :mod:`~mmaction_gblend.models.modulation.modality_scores`.
        opm: OPM settings, ``dict(q_base=0.5, lam=0.5, p_exe=0.7,
            start_epoch=5, end_epoch=None, rescale=True)``
            (:class:`~mmaction_gblend.models.modulation.PredictionModulation`);
            ``None`` (default) for no feature drop.
        data_preprocessor: As for mmaction2's recognizers.
        init_cfg: As for ``BaseModel``.
    """

    def __init__(self,
                 branches: Dict[str, dict],
                 num_classes: int,
                 fusion: Optional[dict] = None,
                 head: Optional[dict] = None,
                 loss_cls: Optional[dict] = None,
                 blend_weights: Optional[Dict[str, float]] = None,
                 predict_head: Optional[str] = None,
                 average_clips: str = 'prob',
                 score_source: str = 'auto',
                 opm: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ActionDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not branches:
            raise ValueError('MultiHeadRecognizer.branches is empty')
        # By name, not by the config's dict order: mmengine writes configs
        # back (work_dir/<config>.py) with their keys sorted, and a model
        # built from that copy must be the same model (same concatenation
        # order in the fusion, same order of blend_weights).
        self.modalities = sorted(branches)
        for name in self.modalities:
            if not name.isidentifier() or 'loss' in name or name == FUSED:
                raise ValueError(
                    f'MultiHeadRecognizer.branches: bad modality name '
                    f'{name!r} (an identifier, not {FUSED!r}, without '
                    '"loss", which would make its metrics optimised)')
        if average_clips not in ('prob', 'score'):
            raise ValueError("MultiHeadRecognizer.average_clips must be "
                             f"'prob' or 'score', got {average_clips!r}")
        self.num_classes = num_classes
        self.average_clips = average_clips

        # mmengine's ModuleDict, not torch's: BaseModule.init_weights only
        # recurses into children that have init_weights, so behind a torch
        # ModuleDict the backbones' and heads' init_cfg (Kaiming, Normal,
        # Pretrained) and mmaction2's `pretrained=` were silently skipped.
        self.backbones = ModuleDict()
        self.input_keys: Dict[str, str] = {}
        self.input_formats: Dict[str, str] = {}
        self.feat_dims: Dict[str, int] = {}
        self.branch_init: Dict[str, dict] = {}
        self._check_preprocessor_keys(data_preprocessor, {
            name: cfg.get('input_key', name)
            for name, cfg in branches.items()
        })
        if hasattr(self.data_preprocessor, 'preprocessors'):
            self.data_preprocessor.register_forward_pre_hook(
                _check_batch_keys, with_kwargs=True)
        for name in self.modalities:
            self._build_branch(name, dict(branches[name]))

        head = dict(head or dict(type='ClassifierHead'))
        head.setdefault('type', 'ClassifierHead')
        self.heads = ModuleDict({
            name: MODELS.build(
                dict(head, in_channels=self.feat_dims[name],
                     num_classes=num_classes))
            for name in self.modalities
        })
        if len(self.modalities) > 1:
            if fusion is None:
                raise ValueError(
                    'MultiHeadRecognizer.fusion is required for '
                    f'{len(self.modalities)} modalities')
            self._check_fusion(fusion, self.modalities)
            self.fusion = MODELS.build(
                dict(fusion, in_channels=dict(self.feat_dims)))
            self.heads[FUSED] = MODELS.build(
                dict(head, in_channels=self.fusion.out_channels,
                     num_classes=num_classes))
        elif fusion is not None:
            raise ValueError('MultiHeadRecognizer.fusion given for a single '
                             'modality; a uni-modal model has no fusion')
        else:
            self.fusion = None
        self.head_names = list(self.heads)

        if blend_weights is None:
            default = FUSED if self.fusion is not None else self.modalities[0]
            blend_weights = {h: float(h == default) for h in self.head_names}
        self.register_buffer(
            'blend_weights',
            torch.tensor(
                check_blend_weights(blend_weights, self.head_names,
                                    'model.blend_weights'),
                dtype=torch.float32))
        self.predict_head = predict_head or (
            FUSED if self.fusion is not None else self.modalities[0])
        if self.predict_head not in self.head_names:
            raise ValueError(
                f'MultiHeadRecognizer.predict_head must be one of '
                f'{self.head_names}, got {self.predict_head!r}')
        self.loss_cls = MODELS.build(
            loss_cls or dict(type='CrossEntropyLoss'))
        self._build_modulation(score_source, opm)

    def _build_modulation(self, score_source: str,
                          opm: Optional[dict]) -> None:
        if self.fusion is None:
            if opm is not None:
                raise ValueError('MultiHeadRecognizer.opm needs two or more '
                                 'modalities (a fused head)')
            self.score_source = None
        else:
            self.score_source = resolve_score_source(
                score_source, self.fusion, self.heads[FUSED])
        self.opm = None if opm is None else PredictionModulation(
            self.modalities, self.feat_dims, **opm)
        #: Set by OnTheFlyModulationHook while OGM-GE needs the scores.
        self.collect_modality_scores = False
        self._score_sums: Optional[torch.Tensor] = None
        #: Scores and ratios of the last training batch (for logs).
        self.last_modulation: Optional[Dict[str, torch.Tensor]] = None

    # construction helpers -------------------------------------------------

    def _build_branch(self, name: str, cfg: dict) -> None:
        where = f'MultiHeadRecognizer.branches.{name}'
        if 'backbone' not in cfg or 'feat_dim' not in cfg:
            raise ValueError(f'{where} needs "backbone" and "feat_dim"')
        key = cfg.pop('input_key', name)
        fmt = cfg.pop('input_format', DEFAULT_INPUT_FORMAT.get(key))
        if fmt not in INPUT_FORMATS:
            raise ValueError(f'{where}.input_format must be one of '
                             f'{INPUT_FORMATS}, got {fmt!r}')
        self.backbones[name] = MODELS.build(cfg.pop('backbone'))
        self.input_keys[name] = key
        self.input_formats[name] = fmt
        self.feat_dims[name] = int(cfg.pop('feat_dim'))
        if cfg.get('init_from') is not None:
            self.branch_init[name] = dict(cfg.pop('init_from'))
        cfg.pop('init_from', None)
        if cfg:
            raise ValueError(f'{where}: unknown keys {sorted(cfg)}')

    @staticmethod
    def _check_preprocessor_keys(preprocessor: dict,
                                 input_keys: Dict[str, str]) -> None:
        """The preprocessor must handle every branch's input key."""
        sub = preprocessor.get('preprocessors') \
            if isinstance(preprocessor, dict) else None
        if sub is None:
            if len(input_keys) > 1:
                raise ValueError(
                    'MultiHeadRecognizer.data_preprocessor must be a '
                    'MultiModalDataPreprocessor with one preprocessor per '
                    f'input key {sorted(set(input_keys.values()))}')
            return
        missing = [f'model.branches.{name}.input_key={key!r}'
                   for name, key in sorted(input_keys.items())
                   if key not in sub]
        if missing:
            raise ValueError(
                f'model.data_preprocessor.preprocessors (keys {sorted(sub)}) '
                f'has no preprocessor for {", ".join(missing)}: it needs one '
                'per input key, and the pipeline\'s '
                'PackActionInputs.collect_keys must name the key too')

    @staticmethod
    def _check_fusion(fusion: dict, modalities: List[str]) -> None:
        """Name the key when the fusion is unknown or cannot fuse this many
        modalities (its own error would name ``in_channels``, which the
        recognizer fills in, not the user)."""
        kind = fusion.get('type') if isinstance(fusion, dict) else None
        cls = MODELS.get(kind) if isinstance(kind, str) else kind
        fusions = {
            name: module
            for name, module in sorted(MODELS.module_dict.items())
            if isinstance(module, type) and issubclass(module, BaseFusion)
        }
        if cls is None:
            raise ValueError(
                f'model.fusion.type={kind!r} is not a registered module; '
                f'the fusions are {list(fusions)}')
        count = len(modalities)
        if isinstance(cls, type) and issubclass(cls, BaseFusion) and \
                not cls.accepts(count):
            fitting = [n for n, m in fusions.items() if m.accepts(count)]
            raise ValueError(
                f'model.fusion.type={cls.__name__!r} fuses {cls.arity()} '
                f'modalities, but model.branches has {count}: {modalities}; '
                f'fusions for {count}: {fitting}')

    def init_weights(self) -> None:
        """Initialise, then load the branches' ``init_from`` checkpoints."""
        super().init_weights()
        for name, spec in self.branch_init.items():
            load_branch_checkpoint(self.backbones[name], self.heads[name],
                                   name, **spec)

    # on-the-fly modulation -----------------------------------------------

    def modality_parameters(self, params: str = 'conv'
                            ) -> Dict[str, List[nn.Parameter]]:
        """Each modality's encoder (backbone) parameters that train, in a
        parameter set: the groups OGM-GE modulates.

        Args:
            params: ``'conv'`` (default: the kernels of the convolution,
                linear and attention layers, the authors' set) or ``'all'``
                (every trainable parameter, norms included); see
                :func:`~mmaction_gblend.models.modulation.encoder_parameters`.
                Nothing of the heads or the fusion, either way.

        Raises:
            ValueError: For a uni-modal model, which has nothing to balance,
                or an unknown ``params``.
        """
        if self.fusion is None:
            raise ValueError(
                'on-the-fly modulation needs a multi-modal model; this '
                f'MultiHeadRecognizer has one modality {self.modalities}')
        return OrderedDict(
            (m, [p for _, p in encoder_parameters(self.backbones[m], params)])
            for m in self.modalities)

    def pop_modality_scores(self) -> Optional[torch.Tensor]:
        """The ``[M]`` score sums since the last call (all processes'), or
        ``None`` if no batch was scored; the sums restart from zero."""
        sums, self._score_sums = self._score_sums, None
        return sums

    def _modulation_signal(self, maps: Dict[str, torch.Tensor],
                           labels: torch.Tensor) -> torch.Tensor:
        """This batch's discrepancy ratios, from all processes' scores."""
        logits = modality_logits(self.score_source, self.modalities, maps,
                                 self.fusion, self.heads, self.heads[FUSED])
        scores = true_class_probability(logits, labels)
        counted = torch.cat([scores, scores.new_tensor([labels.shape[0]])])
        # One collective per step, so every process gets the same ratios.
        all_reduce(counted, op='sum')
        scores, count = counted[:-1], counted[-1]
        if self.collect_modality_scores:
            self._score_sums = scores if self._score_sums is None else \
                self._score_sums + scores
        ratios, valid = discrepancy_ratios(scores)
        self.last_modulation = dict(
            scores=scores / count.clamp_min(1), ratios=ratios, valid=valid)
        return ratios

    # blend weights --------------------------------------------------------

    def get_blend_weights(self) -> Dict[str, float]:
        """The current blend weights, ``{head: weight}``."""
        return OrderedDict(
            zip(self.head_names, self.blend_weights.tolist()))

    def set_blend_weights(self,
                          weights: Dict[str, float],
                          key: str = 'blend weights') -> None:
        """Replace the blend weights (validated: >= 0, sum 1, finite).

        Args:
            weights: ``{head: weight}`` for every head.
            key: Where the weights come from, for the error message (e.g.
                ``custom_hooks[GradientBlendingHook].weights``).
        """
        values = check_blend_weights(weights, self.head_names, key)
        self.blend_weights.copy_(
            torch.tensor(values, dtype=self.blend_weights.dtype))

    # forward --------------------------------------------------------------

    def _fold(self, name: str, x: torch.Tensor) -> Tuple[torch.Tensor, int]:
        """``[N, V, ...]`` -> ``[N*V, ...]`` and the number of views V."""
        if x.dim() < 3:
            raise ValueError(
                f'branch {name}: input {self.input_keys[name]} has shape '
                f'{tuple(x.shape)}; expected [N, views, ...]')
        return x.reshape((-1, ) + x.shape[2:]), x.shape[1]

    def _backbone_map(self, name: str, x: torch.Tensor) -> torch.Tensor:
        out = self.backbones[name](x)
        if isinstance(out, (tuple, list)):
            # several pathways (e.g. SlowFast): pool each, then concatenate
            out = torch.cat([global_avg_pool(o) for o in out], dim=1)
        if out.shape[1] != self.feat_dims[name]:
            raise ValueError(
                f'branch {name}: the backbone gives {out.shape[1]} channels '
                f'but feat_dim is {self.feat_dims[name]}')
        return out

    def extract_feat(self,
                     inputs: Dict[str, torch.Tensor],
                     modalities: Optional[Sequence[str]] = None
                     ) -> Tuple[Dict[str, torch.Tensor], int]:
        """Run every branch (or those of ``modalities``); return its feature
        map per sample-view.

        Returns:
            ``({modality: [N*V, C, *spatial]}, V)``. Modalities with
            different view counts (e.g. 3 crops of video, 1 audio clip) are
            averaged over their views first, so V is 1.
        """
        if not isinstance(inputs, dict):
            raise TypeError('MultiHeadRecognizer expects inputs as a dict '
                            f'{{input_key: tensor}}, got {type(inputs)}')
        maps, views = {}, {}
        for name in self.modalities if modalities is None else modalities:
            key = self.input_keys[name]
            if key not in inputs:
                raise KeyError(
                    f'branch {name} reads input {key!r}, but the batch has '
                    f'{sorted(inputs)}; check PackActionInputs collect_keys')
            x, v = self._fold(name, inputs[key])
            fmap = self._backbone_map(name, x)
            if self.input_formats[name] == 'NCHW':
                # TSN-style: the S frames of a sample are one view
                fmap = fmap.reshape((-1, v) + fmap.shape[1:]).mean(dim=1)
                v = 1
            maps[name], views[name] = fmap, v
        if len(set(views.values())) > 1:
            maps = {
                name: fmap.reshape((-1, views[name]) +
                                   fmap.shape[1:]).mean(dim=1)
                for name, fmap in maps.items()
            }
            return maps, 1
        return maps, next(iter(views.values()))

    def head_logits(self,
                    maps: Dict[str, torch.Tensor],
                    fusion_maps: Optional[Dict[str, torch.Tensor]] = None,
                    heads: Optional[Sequence[str]] = None
                    ) -> Dict[str, torch.Tensor]:
        """Scores ``[N*V, num_classes]`` of every head (or of ``heads``),
        fused last.

        ``fusion_maps`` (default ``maps``) are what the fusion sees: OPM
        drops features there, never in the modality heads' inputs.
        """
        heads = self.head_names if heads is None else heads
        logits = OrderedDict((name, self.heads[name](maps[name]))
                             for name in self.modalities if name in heads)
        if self.fusion is not None and FUSED in heads:
            logits[FUSED] = self.heads[FUSED](
                self.fusion(maps if fusion_maps is None else fusion_maps))
        return logits

    def needed_modalities(self, heads: Sequence[str]) -> List[str]:
        """The branches that ``heads`` read: all of them for the fused
        head, a modality head's own otherwise."""
        for head in heads:
            if head not in self.head_names:
                raise KeyError(f'no head {head!r} in {self.head_names}')
        if FUSED in heads:
            return list(self.modalities)
        return [m for m in self.modalities if m in heads]

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[ActionDataSample]] = None,
                mode: str = 'tensor'):
        """``'loss'``, ``'predict'``, or ``'tensor'`` (the heads' scores)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            maps, _ = self.extract_feat(inputs)
            return self.head_logits(maps)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: List[ActionDataSample],
             heads: Optional[Sequence[str]] = None
             ) -> Dict[str, torch.Tensor]:
        """Blended losses ``loss_<head>`` and per-head monitors.

        ``heads`` restricts them to some heads, running only the branches
        those read (G-Blend's shadow copies of a modality head); the
        modulation signal, which compares all modalities, is computed only
        when every branch ran.
        """
        heads = self.head_names if heads is None else list(heads)
        maps, views = self.extract_feat(inputs,
                                        self.needed_modalities(heads))
        labels = stack_labels(data_samples)
        if views > 1:
            labels = labels.repeat_interleave(views, dim=0)
        fusion_maps = maps
        opm_on = self.training and self.opm is not None \
            and self.opm.in_window()
        if self.training and len(maps) == len(self.modalities) and (
                opm_on or self.collect_modality_scores):
            ratios = self._modulation_signal(maps, labels)
            if opm_on:
                fusion_maps = self.opm(maps, ratios, views)
        out = OrderedDict()
        for name, logits in self.head_logits(maps, fusion_maps,
                                             heads).items():
            ce = self.loss_cls(logits, labels)
            weight = self.blend_weights[self.head_names.index(name)]
            out[f'loss_{name}'] = weight * ce
            out[f'{name}_ce'] = ce.detach()
            if labels.dim() == 1:
                out[f'{name}_top1'] = (logits.detach().argmax(dim=1) ==
                                       labels).float().mean()
        return out

    def _average_views(self, logits: torch.Tensor,
                       batch_size: int) -> torch.Tensor:
        logits = logits.reshape((batch_size, -1) + logits.shape[1:])
        if self.average_clips == 'prob':
            return F.softmax(logits, dim=2).mean(dim=1)
        return logits.mean(dim=1)

    def predict(self, inputs: Dict[str, torch.Tensor],
                data_samples: List[ActionDataSample]
                ) -> List[ActionDataSample]:
        """Fused (or ``predict_head``) scores as ``pred_score``; every
        modality head's in ``head_scores``."""
        maps, _ = self.extract_feat(inputs)
        scores = {
            name: self._average_views(logits, len(data_samples))
            for name, logits in self.head_logits(maps).items()
        }
        for i, sample in enumerate(data_samples):
            sample.set_pred_score(scores[self.predict_head][i])
            sample.set_field(
                {name: scores[name][i] for name in self.modalities},
                'head_scores')
        return data_samples
