"""Mixing the heads' class probabilities into one prediction (pure).

G-Blend predicts with the fused head (Wang et al. 2020); when it gives that
head little weight, the prediction can be worse than a modality head it
trained well. A late mixture ``sum_i a_i * p_i`` of every trained head's
class probabilities ``p_i``, with mixing weights ``a`` chosen on held-out
data after training, is at least as good as its best head there (the
one-hot weightings are on the grid). This is our extension of the paper,
applied alike to every multi-head strategy. Torch only.
"""
import itertools
from typing import Tuple

import torch


def simplex_grid(num_heads: int, step: float = 0.1) -> torch.Tensor:
    """Every mixing weighting of ``num_heads`` heads on a grid of ``step``.

    Args:
        num_heads: Number of heads, >= 1.
        step: Grid step; ``1 / step`` must be a whole number.

    Returns:
        ``[G, num_heads]`` float64 rows, each >= 0 and summing to 1, the
        one-hot rows among them.

    Raises:
        ValueError: A step that does not divide 1, or no heads.
    """
    if num_heads < 1:
        raise ValueError(f'simplex_grid needs at least one head, got '
                         f'{num_heads}')
    parts = round(1 / step) if step > 0 else 0
    if parts < 1 or abs(parts * step - 1) > 1e-9:
        raise ValueError(f'step must be 1/n for a whole n, got {step!r}')
    rows = [
        list(c) + [parts - sum(c)]
        for c in itertools.product(range(parts + 1), repeat=num_heads - 1)
        if sum(c) <= parts
    ]
    return torch.tensor(rows, dtype=torch.float64) / parts


def mixture_scores(probs: torch.Tensor, labels: torch.Tensor,
                   grid: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Correct predictions and summed log loss of each mixture on a batch.

    Args:
        probs: ``[H, N, C]`` class probabilities of H heads on N samples.
        labels: ``[N]`` class indices.
        grid: ``[G, H]`` mixing weightings (:func:`simplex_grid`).

    Returns:
        ``(correct, nll)``, each ``[G]`` float64: per weighting, how many of
        the N samples its mixture predicts right (top-1) and the sum of
        ``-log`` of the mixture's probability of the true class.
    """
    mixed = torch.einsum('gh,hnc->gnc', grid.to(probs.dtype), probs)
    correct = (mixed.argmax(dim=2) == labels[None]).sum(dim=1)
    true = mixed.gather(
        2, labels[None, :, None].expand(len(grid), -1, 1)).squeeze(2)
    nll = -torch.log(true.clamp_min(1e-12)).sum(dim=1)
    return correct.to(torch.float64), nll.to(torch.float64)


def best_mixture(correct: torch.Tensor, nll: torch.Tensor) -> int:
    """The index of the weighting with the most correct predictions; among
    equals, the one with the lowest log loss (then the first)."""
    most = correct.max()
    candidates = torch.nonzero(correct == most).flatten()
    return int(candidates[nll[candidates].argmin()])
