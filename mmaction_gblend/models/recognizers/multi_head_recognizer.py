"""A recognizer with one branch and head per modality and a fused head.

The model of G-Blend (Wang, Tran, Feiszli, CVPR 2020, Sec. 3): k modality
branches, each an encoder with its own classification head, and a fused head
on the fused features; k + 1 losses blended as ``sum_i w_i * L_i``.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.model import BaseModel, ModuleDict

from ...blending.gblend import check_blend_weights
from ...utils.choices import check_choice, check_integer
from ..modulation import (SCORE_SOURCES, ModulationState,
                          PredictionModulation, encoder_parameters,
                          modality_logits, resolve_score_source,
                          true_class_probability)
from ..utils import global_avg_pool, load_branch_checkpoint, stack_labels
from .recognizer_checks import (DEFAULT_INPUT_FORMAT, FUSED, INPUT_FORMATS,
                                BranchConfig, check_batch_keys, check_branch,
                                check_filled_in, check_fused_settings,
                                check_fusion, check_modality_names, check_opm,
                                check_preprocessor_keys)

#: How ``pred_score`` is made (see ``MultiHeadRecognizer(prediction=...)``).
PREDICTIONS = ('head', 'mix')

# The constants and the weight check are re-exported for code that imports
# them from the recognizer's module.
__all__ = [
    'MultiHeadRecognizer', 'FUSED', 'INPUT_FORMATS', 'DEFAULT_INPUT_FORMAT',
    'check_blend_weights'
]


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

    At test time ``pred_score`` holds the prediction: the fused head's
    scores (or those of ``predict_head``), or with ``prediction='mix'``
    the heads' class probabilities mixed by :attr:`prediction_weights`
    (fitted on held-out data by ``PredictionMixHook``); ``head_scores``
    holds every head's own scores, the fused head's too.

    Configs are checked when the model is built (branches against
    ``data_preprocessor.preprocessors``, the fusion against the number of
    modalities, ``blend_weights``, ``predict_head``, ``prediction``, the
    OPM settings, every number's type and range, and settings that would
    have no effect, such as ``fused_head`` for one modality), and every
    batch's input keys against
    the preprocessors (:mod:`.recognizer_checks`); errors name the config
    keys (``model.fusion.type``, ``model.branches.<m>.input_key``, ...).
    ``ConfigCheckHook`` checks the pipelines before the run starts.

    On-the-fly modulation (OGM-GE, OPM) reads per-modality scores of each
    training batch (``score_source``, summed over all processes); OPM drops
    features before the fused head (``opm``); OGM-GE modulates the encoders'
    gradients through :meth:`modality_parameters` (see
    ``OGMGEOptimWrapper``). Epoch, scores and what each step did live in
    :attr:`modulation_state` (a
    :class:`~mmaction_gblend.models.modulation.ModulationState`), which
    ``OnTheFlyModulationHook`` drives.

    What the engine (hooks, G-Blend's measurement and shadow training, the
    OGM-GE wrapper) uses of this class is written down in
    :class:`~.multi_head_contract.MultiHeadModel`.

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
        num_classes: Number of classes, an integer >= 1.
        fusion: Fusion module config (its ``in_channels`` is filled in from
            the branches' ``feat_dim``, so it must not set it). Required
            for 2 or more modalities, not allowed for one (a uni-modal
            model has no fused head).
        head: Config of each head, without ``in_channels``/``num_classes``
            (a config that sets them is refused).
        fused_head: Keys of ``head`` that differ for the fused head (e.g.
            its ``init_cfg``: the fused features are smaller than the
            branches' and need a larger classifier scale to start near
            ``log C`` and still learn). Not allowed for one modality.
        loss_cls: Classification loss of every head.
        blend_weights: ``{head: weight}`` for the modality heads and
            ``'fused'``; >= 0, summing to 1. Default: the fused head alone
            (naive late fusion), or 1 for a uni-modal model.
        predict_head: The head whose scores are ``pred_score``; defaults to
            ``'fused'`` (the modality for a uni-modal model). G-Blend's
            prediction floor keeps this head training.
        prediction: ``'head'`` (default; the paper): ``pred_score`` is
            ``predict_head``'s scores. ``'mix'`` (an extension of the
            paper): ``sum_i a_i * p_i``, the heads' class probabilities
            ``p_i`` (views averaged) mixed by the buffer
            :attr:`prediction_weights` ``a`` (saved in checkpoints), which
            ``PredictionMixHook`` fits on held-out data after training;
            until then it is one-hot on ``predict_head``. See
            ``docs/models.md#the-prediction``.
        average_clips: ``'prob'`` or ``'score'``: how views are averaged at
            test time.
        score_source: Where on-the-fly modulation reads each modality's
            logits: ``'auto'`` (default: ``'linear_split'`` where the fusion
            allows it, else ``'zero_out'``), ``'linear_split'``,
            ``'zero_out'`` or ``'heads'``; see
            :mod:`~mmaction_gblend.models.modulation.modality_scores`.
            Only ``'auto'`` for one modality (nothing is modulated).
        opm: OPM settings, ``dict(q_base=0.5, lam=0.5, p_exe=0.7,
            start_epoch=5, end_epoch=None, rescale=True)``
            (:class:`~mmaction_gblend.models.modulation.PredictionModulation`,
            which checks each value); ``None`` (default) for no feature
            drop. Not allowed for one modality.
        data_preprocessor: As for mmaction2's recognizers.
        init_cfg: As for ``BaseModel``.
    """

    def __init__(self,
                 branches: Dict[str, dict],
                 num_classes: int,
                 fusion: Optional[dict] = None,
                 head: Optional[dict] = None,
                 fused_head: Optional[dict] = None,
                 loss_cls: Optional[dict] = None,
                 blend_weights: Optional[Dict[str, float]] = None,
                 predict_head: Optional[str] = None,
                 prediction: str = 'head',
                 average_clips: str = 'prob',
                 score_source: str = 'auto',
                 opm: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ActionDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # By name, not by the config's dict order: mmengine writes configs
        # back (work_dir/<config>.py) with their keys sorted, and a model
        # built from that copy must be the same model (same concatenation
        # order in the fusion, same order of blend_weights).
        self.modalities = check_modality_names(branches)
        self._check_settings(num_classes, fusion, head, fused_head,
                             score_source, opm)
        check_choice('MultiHeadRecognizer.average_clips', average_clips,
                     ['prob', 'score'])
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
        check_preprocessor_keys(data_preprocessor, {
            name: cfg.get('input_key', name)
            for name, cfg in branches.items()
            if isinstance(cfg, Mapping)  # else check_branch refuses it
        })
        if hasattr(self.data_preprocessor, 'preprocessors'):
            self.data_preprocessor.register_forward_pre_hook(
                check_batch_keys, with_kwargs=True)
        for name in self.modalities:
            self._build_branch(name, check_branch(name, branches[name]))

        self._build_heads(num_classes, head, fused_head, fusion)

        if blend_weights is None:
            default = FUSED if self.fusion is not None else self.modalities[0]
            blend_weights = {h: float(h == default) for h in self.head_names}
        self.register_buffer(
            'blend_weights',
            torch.tensor(
                check_blend_weights(blend_weights, self.head_names,
                                    'model.blend_weights'),
                dtype=torch.float32))
        self.predict_head = predict_head if predict_head is not None else (
            FUSED if self.fusion is not None else self.modalities[0])
        check_choice('MultiHeadRecognizer.predict_head', self.predict_head,
                     list(self.head_names))
        self.prediction = check_choice('MultiHeadRecognizer.prediction',
                                       prediction, PREDICTIONS)
        self.register_buffer(
            'prediction_weights',
            torch.tensor([float(h == self.predict_head)
                          for h in self.head_names]))
        self.loss_cls = MODELS.build(
            loss_cls or dict(type='CrossEntropyLoss'))
        self._build_modulation(score_source, opm)

    def _build_heads(self, num_classes: int, head: Optional[dict],
                     fused_head: Optional[dict],
                     fusion: Optional[dict]) -> None:
        """Build a head per branch, then the fusion and its fused head."""
        head = dict(head or dict(type='ClassifierHead'))
        head.setdefault('type', 'ClassifierHead')
        self.heads = ModuleDict({
            name: MODELS.build(
                dict(head, in_channels=self.feat_dims[name],
                     num_classes=num_classes))
            for name in self.modalities
        })
        check_fusion(fusion, self.modalities)
        self.fusion = None
        if fusion is not None:
            self.fusion = MODELS.build(
                dict(fusion, in_channels=dict(self.feat_dims)))
            self.heads[FUSED] = MODELS.build(
                dict(head, **(fused_head or {}),
                     in_channels=self.fusion.out_channels,
                     num_classes=num_classes))
        self.head_names = list(self.heads)

    def _check_settings(self, num_classes: int, fusion: Optional[dict],
                        head: Optional[dict], fused_head: Optional[dict],
                        score_source: str, opm: Optional[dict]) -> None:
        """Check the settings that no branch check covers, before anything
        is built: ``num_classes``, the head and fusion configs (which must
        leave ``in_channels`` and ``num_classes`` to the recognizer), and
        the fused head's settings, which a uni-modal model refuses."""
        check_integer('MultiHeadRecognizer.num_classes', num_classes, 1)
        for key, cfg, filled in (
                ('head', head, ('in_channels', 'num_classes')),
                ('fused_head', fused_head, ('in_channels', 'num_classes')),
                ('fusion', fusion, ('in_channels', ))):
            check_filled_in(f'MultiHeadRecognizer.{key}', cfg, filled)
        check_choice('MultiHeadRecognizer.score_source', score_source,
                     SCORE_SOURCES)
        check_fused_settings(
            self.modalities, fused_head=fused_head, opm=opm,
            score_source=None if score_source == 'auto' else score_source)

    def _build_modulation(self, score_source: str,
                          opm: Optional[dict]) -> None:
        opm = check_opm(opm)
        self.score_source = None if self.fusion is None else \
            resolve_score_source(score_source, self.fusion, self.heads[FUSED])
        #: What on-the-fly modulation knows during training; the hook, OPM
        #: and the OGM-GE optim wrapper all go through it.
        self.modulation_state = ModulationState()
        self.opm = None if opm is None else PredictionModulation(
            self.modalities, self.feat_dims, state=self.modulation_state,
            **opm)

    def _build_branch(self, name: str, branch: BranchConfig) -> None:
        self.backbones[name] = MODELS.build(branch.backbone)
        self.input_keys[name] = branch.input_key
        self.input_formats[name] = branch.input_format
        self.feat_dims[name] = branch.feat_dim
        if branch.init_from is not None:
            self.branch_init[name] = branch.init_from

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

    def _score_modalities(self, maps: Dict[str, torch.Tensor],
                          labels: torch.Tensor) -> torch.Tensor:
        """This batch's discrepancy ratios, from all processes' scores."""
        logits = modality_logits(self.score_source, self.modalities, maps,
                                 self.fusion, self.heads, self.heads[FUSED])
        return self.modulation_state.observe_scores(
            true_class_probability(logits, labels), labels.shape[0])

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
                opm_on or self.modulation_state.wants_scores):
            ratios = self._score_modalities(maps, labels)
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

    @staticmethod
    def _view_probabilities(logits: torch.Tensor,
                            batch_size: int) -> torch.Tensor:
        """Class probabilities ``[batch, C]``, averaged over the views of
        ``logits`` ``[batch * views, C]``."""
        logits = logits.reshape((batch_size, -1) + logits.shape[1:])
        return F.softmax(logits, dim=2).mean(dim=1)

    def _average_views(self, logits: torch.Tensor,
                       batch_size: int) -> torch.Tensor:
        if self.average_clips == 'prob':
            return self._view_probabilities(logits, batch_size)
        return logits.reshape((batch_size, -1) +
                              logits.shape[1:]).mean(dim=1)

    def get_prediction_weights(self) -> Dict[str, float]:
        """``{head: weight}`` of the ``'mix'`` prediction."""
        return dict(zip(self.head_names, self.prediction_weights.tolist()))

    def set_prediction_weights(
            self,
            weights: Dict[str, float],
            key: str = 'MultiHeadRecognizer.prediction_weights') -> None:
        """Set the ``'mix'`` prediction's weights (checked as blend
        weights are: every head, finite, >= 0, summing to 1)."""
        values = check_blend_weights(weights, self.head_names, key)
        self.prediction_weights.copy_(
            torch.tensor(values, dtype=self.prediction_weights.dtype))

    def _mixed_probabilities(self, logits: Dict[str, torch.Tensor],
                             batch_size: int) -> torch.Tensor:
        """``sum_i a_i * p_i`` over the heads with a non-zero weight
        ``a_i``: class probabilities (views averaged); ``[batch, C]``."""
        mixed = 0
        for name, head_logits in logits.items():
            weight = self.prediction_weights[self.head_names.index(name)]
            if weight > 0:
                mixed = mixed + weight * self._view_probabilities(
                    head_logits, batch_size)
        return mixed

    def predict(self, inputs: Dict[str, torch.Tensor],
                data_samples: List[ActionDataSample]
                ) -> List[ActionDataSample]:
        """The prediction as ``pred_score`` (``prediction``); every
        head's own scores, the fused head's too, in ``head_scores``."""
        maps, _ = self.extract_feat(inputs)
        logits = self.head_logits(maps)
        scores = {
            name: self._average_views(head_logits, len(data_samples))
            for name, head_logits in logits.items()
        }
        pred = scores[self.predict_head] if self.prediction == 'head' \
            else self._mixed_probabilities(logits, len(data_samples))
        for i, sample in enumerate(data_samples):
            sample.set_pred_score(pred[i])
            sample.set_field({name: scores[name][i] for name in scores},
                             'head_scores')
        return data_samples
