"""Which encoder parameters on-the-fly gradient modulation (OGM-GE) touches.

``optim_wrapper.params`` chooses the set; the gradient scaling and the GE
noise both act on it, per modality encoder (backbone). The heads and the
fusion are never part of it: only an encoder is ever given to
:func:`encoder_parameters`.

* ``'conv'`` (default): the kernels (weights) of the encoder's layers, as
  the authors modulate them: every convolution's (1D, 2D and 3D), and the
  weights of its linear and attention layers (``nn.MultiheadAttention``'s
  input projections). The authors' encoders are ResNets, which have
  convolutions only, so for them (and for ours: ``ResNet3d``,
  ``AudioResNet``) this is exactly their set, the convolution kernels; an
  encoder without convolutions gets its linear and attention weights.
  Biases, normalisation parameters (BatchNorm, LayerNorm) and embeddings
  (positional, class tokens) are left out. The authors' CVPR code selects
  the 4-D gradients, so it skips 3D-convolution kernels (5-D); these are
  covered here.
* ``'all'``: every trainable parameter of the encoder, BatchNorm's
  included.

Frozen parameters (``requires_grad=False``) are never selected. The order
is that of ``named_parameters()``, the same on every process.
"""
from typing import List, Set, Tuple

import torch.nn as nn
from torch.nn.modules.conv import _ConvNd

from ...utils.choices import check_choice

__all__ = ['PARAMETER_SETS', 'check_parameter_set', 'encoder_parameters']

#: The parameter sets by name; the first is the default.
PARAMETER_SETS = ('conv', 'all')

# Layers whose ``weight`` is a kernel (convolutions of any dimension,
# linear layers, attention's output projection, which is an nn.Linear).
_KERNEL_LAYERS = (_ConvNd, nn.Linear)
# nn.MultiheadAttention's input projections: packed, or one per q, k, v.
_ATTENTION_WEIGHTS = ('in_proj_weight', 'q_proj_weight', 'k_proj_weight',
                      'v_proj_weight')


def check_parameter_set(params: str, key: str = 'optim_wrapper.params') -> str:
    """:func:`~mmaction_gblend.utils.check_choice` of a parameter set among
    :data:`PARAMETER_SETS`: ``params``, or a ValueError naming ``key`` (the
    config key that gave it) and the sets."""
    return check_choice(key, params, PARAMETER_SETS)


def _kernel_ids(encoder: nn.Module) -> Set[int]:
    """The ids of the kernels of the encoder's convolution, linear and
    attention layers."""
    kernels = set()
    for module in encoder.modules():
        names = ('weight', ) if isinstance(module, _KERNEL_LAYERS) else \
            _ATTENTION_WEIGHTS if isinstance(module, nn.MultiheadAttention) \
            else ()
        for name in names:
            weight = getattr(module, name, None)
            if isinstance(weight, nn.Parameter):
                kernels.add(id(weight))
    return kernels


def encoder_parameters(encoder: nn.Module,
                       params: str = 'conv') -> List[Tuple[str, nn.Parameter]]:
    """The trainable parameters of one encoder in a parameter set.

    Args:
        encoder: A modality's encoder (backbone), nothing else.
        params: ``'conv'`` (the kernels, the authors' set) or ``'all'``
            (every parameter); see the module's description.

    Returns:
        ``[(name, parameter)]``, names relative to ``encoder``, in the
        order of ``encoder.named_parameters()``.

    Raises:
        ValueError: For an unknown set, naming ``optim_wrapper.params``.
    """
    check_parameter_set(params)
    named = [(name, p) for name, p in encoder.named_parameters()
             if p.requires_grad]
    if params == 'all':
        return named
    kernels = _kernel_ids(encoder)
    return [(name, p) for name, p in named if id(p) in kernels]
