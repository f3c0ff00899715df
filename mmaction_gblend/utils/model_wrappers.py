"""The model inside a data-parallel wrapper."""
import torch.nn as nn
from mmengine.model import is_model_wrapper

__all__ = ['unwrap']


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other mmengine) wrapper, else ``model``.

    The hooks and G-Blend's measurement read the recognizer's own members
    (heads, blend weights, modulation state), which a wrapper hides.
    """
    return model.module if is_model_wrapper(model) else model
