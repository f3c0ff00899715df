"""Feature-map helpers shared by heads, fusions and the recognizer."""
from torch import Tensor


def global_avg_pool(x: Tensor) -> Tensor:
    """Average a feature map over all its spatial dims.

    Args:
        x: Feature map ``[B, C, *spatial]`` with any number (also 0) of
            spatial dims.

    Returns:
        ``[B, C]``; ``x`` itself when it has no spatial dims.
    """
    if x.dim() == 2:
        return x
    # flatten(2) handles any spatial rank with one reduction.
    return x.flatten(2).mean(dim=-1)


def to_tokens(x: Tensor) -> Tensor:
    """Flatten a feature map into a sequence of tokens, channels last.

    Args:
        x: Feature map ``[B, C, *spatial]``.

    Returns:
        ``[B, L, C]`` with ``L`` the product of the spatial sizes; an already
        pooled ``[B, C]`` input is one token (``L = 1``).
    """
    if x.dim() == 2:
        return x.unsqueeze(1)
    return x.flatten(2).transpose(1, 2)
