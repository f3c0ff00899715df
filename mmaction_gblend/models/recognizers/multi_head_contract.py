"""What the engine needs of a multi-head model, written down once.

The hooks (``GradientBlendingHook``, ``OnTheFlyModulationHook``,
``ConfigCheckHook``), G-Blend's held-out measurement and shadow training,
BatchNorm recalibration and the OGM-GE optim wrapper work on any
``nn.Module`` with the members of :class:`MultiHeadModel`;
:class:`~.multi_head_recognizer.MultiHeadRecognizer` is the one this
package builds. They check a model once, with
:func:`check_multi_head_model`, whose error names what a model lacks,
instead of failing later on the first missing attribute.
"""
from typing import (Dict, List, Optional, Protocol, Sequence, Tuple,
                    runtime_checkable)

import torch
import torch.nn as nn
from mmaction.structures import ActionDataSample

from ..modulation import ModulationState

__all__ = [
    'MultiHeadModel', 'CONTRACT_MEMBERS', 'missing_contract_members',
    'check_multi_head_model'
]


@runtime_checkable
class MultiHeadModel(Protocol):
    """A model with one branch and head per modality and a fused head.

    Besides the ``nn.Module`` methods used (``train``, ``eval``,
    ``parameters``, ``modules``, ``buffers``), the members below. Heads
    are the modalities' names and ``'fused'`` (absent from a uni-modal
    model).

    Attributes:
        modalities: Modality names, in the model's order.
        head_names: Head names, in the order of :attr:`blend_weights`.
        predict_head: The head whose scores are the prediction.
        input_keys: ``{modality: key of the batch's inputs}``.
        fusion: The fusion module, ``None`` for a uni-modal model.
        opm: OPM's module, ``None`` without OPM.
        score_source: Where on-the-fly modulation reads each modality's
            logits (``None`` for a uni-modal model).
        blend_weights: ``[heads]`` buffer of the heads' loss weights.
        data_preprocessor: Turns a loader's batch into ``inputs`` and
            ``data_samples``.
        modulation_state: The state on-the-fly modulation shares.
        training: ``nn.Module``'s mode flag.
    """

    modalities: List[str]
    head_names: List[str]
    predict_head: str
    input_keys: Dict[str, str]
    fusion: Optional[nn.Module]
    opm: Optional[nn.Module]
    score_source: Optional[str]
    blend_weights: torch.Tensor
    data_preprocessor: nn.Module
    modulation_state: ModulationState
    training: bool

    def get_blend_weights(self) -> Dict[str, float]:
        """The current blend weights, ``{head: weight}``."""

    def set_blend_weights(self,
                          weights: Dict[str, float],
                          key: str = 'blend weights') -> None:
        """Replace the blend weights (checked; ``key`` names the source)."""

    def needed_modalities(self, heads: Sequence[str]) -> List[str]:
        """The branches that ``heads`` read."""

    def extract_feat(self,
                     inputs: Dict[str, torch.Tensor],
                     modalities: Optional[Sequence[str]] = None
                     ) -> Tuple[Dict[str, torch.Tensor], int]:
        """Feature maps of the branches (all or ``modalities``), views."""

    def head_logits(self,
                    maps: Dict[str, torch.Tensor],
                    fusion_maps: Optional[Dict[str, torch.Tensor]] = None,
                    heads: Optional[Sequence[str]] = None
                    ) -> Dict[str, torch.Tensor]:
        """Scores of every head (or of ``heads``)."""

    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: List[ActionDataSample],
             heads: Optional[Sequence[str]] = None
             ) -> Dict[str, torch.Tensor]:
        """Blended losses ``loss_<head>`` (of every head or ``heads``)."""

    def modality_parameters(self, params: str = 'conv'
                            ) -> Dict[str, List[nn.Parameter]]:
        """Each modality's encoder parameters in a parameter set."""

    def train(self, mode: bool = True) -> nn.Module:
        """``nn.Module.train``."""

    def eval(self) -> nn.Module:
        """``nn.Module.eval``."""


def _protocol_members(protocol: type) -> Tuple[str, ...]:
    """The protocol's own attributes and methods, in definition order."""
    names = list(protocol.__annotations__)
    names += [
        name for name, value in vars(protocol).items()
        if callable(value) and not name.startswith('_')
    ]
    return tuple(dict.fromkeys(names))


#: Every member of :class:`MultiHeadModel`, as :func:`check_multi_head_model`
#: checks them.
CONTRACT_MEMBERS = _protocol_members(MultiHeadModel)


def missing_contract_members(model: object) -> List[str]:
    """The members of :class:`MultiHeadModel` that ``model`` lacks."""
    return [name for name in CONTRACT_MEMBERS if not hasattr(model, name)]


def check_multi_head_model(model: object, needed_by: str) -> MultiHeadModel:
    """``model``, if it has every member of :class:`MultiHeadModel`.

    Args:
        model: An unwrapped model.
        needed_by: Who needs it and what for, the start of the message
            (e.g. ``'OnTheFlyModulationHook needs a MultiHeadRecognizer'``).

    Returns:
        ``model``, typed as a :class:`MultiHeadModel`.

    Raises:
        ValueError: ``'<needed_by>; the model is a <type>, which lacks
            <members> (see MultiHeadModel)'``.
    """
    missing = missing_contract_members(model)
    if missing:
        raise ValueError(
            f'{needed_by}; the model is a {type(model).__name__}, which '
            f'lacks {", ".join(missing)} (the members of MultiHeadModel, '
            'mmaction_gblend.models.recognizers.multi_head_contract)')
    return model
