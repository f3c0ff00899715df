"""Per-modality scores on the current batch, the signal of OGM-GE and OPM.

The score of modality ``m`` is ``s_m = sum_batch softmax(out_m)[y]``: how
much probability ``m``'s own logits ``out_m`` give the true class (Peng et
al., CVPR 2022, Eq. 10). Where ``out_m`` comes from is the *score source*:

* ``'linear_split'``: the fused logits split additively when the fusion is
  linear in each modality (:meth:`BaseFusion.linear_parts`) and the fused
  head is a linear classifier: ``out_m = W part_m + b / M``, the fused
  head's bias shared equally (the authors' rule for concatenation and sum
  fusion).
* ``'zero_out'``: run the fusion and the fused head with every other
  modality's features set to 0 (the TPAMI paper's rule for non-linear
  fusions such as FiLM or gating). All modalities go through in one batched
  pass.
* ``'heads'``: the modality's own classification head, where it is trained
  (G-Blend, auxiliary heads).

Scores are a measurement, not part of the model's function: they are
computed without gradients, with the heads and the fusion in eval mode (no
dropout; batch norm uses its running statistics and is not updated).
"""
from contextlib import contextmanager
from typing import Dict, Iterator, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...utils.choices import check_choice

__all__ = [
    'SCORE_SOURCES', 'resolve_score_source', 'eval_mode', 'modality_logits',
    'true_class_probability'
]

SCORE_SOURCES = ('auto', 'linear_split', 'zero_out', 'heads')


def _linear_classifier(head: nn.Module) -> nn.Linear:
    fc = getattr(head, 'fc_cls', None)
    return fc if isinstance(fc, nn.Linear) else None


def resolve_score_source(source: str, fusion: nn.Module,
                         fused_head: nn.Module) -> str:
    """Check a score source against the model; resolve ``'auto'``.

    ``'auto'`` is ``'linear_split'`` where it is exact (a fusion with
    :meth:`linear_parts` and a linear fused head) and ``'zero_out'``
    otherwise; not ``'heads'``, whose heads are untrained under naive
    fusion.

    Args:
        source: One of :data:`SCORE_SOURCES`.
        fusion: The recognizer's fusion module.
        fused_head: The recognizer's fused head.

    Returns:
        The source to use (never ``'auto'``).

    Raises:
        ValueError: Naming ``score_source``, for an unknown source or
            ``'linear_split'`` on a model where the split does not exist.
    """
    check_choice('MultiHeadRecognizer.score_source', source, SCORE_SOURCES)
    linear = (getattr(fusion, 'has_linear_parts', False)
              and _linear_classifier(fused_head) is not None)
    if source == 'auto':
        return 'linear_split' if linear else 'zero_out'
    if source == 'linear_split' and not linear:
        raise ValueError(
            "MultiHeadRecognizer.score_source='linear_split' needs a fusion "
            'that is linear in each modality (ConcatFusion with '
            'num_layers=0, SumFusion) and a fused head with a linear '
            f'fc_cls; {type(fusion).__name__} with this config has no such '
            "split: use 'zero_out' or 'heads'")
    return source


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put modules in eval mode for a block, then restore each one's mode."""
    modes = [(m, m.training) for module in modules for m in module.modules()]
    try:
        for module in modules:
            module.train(False)
        yield
    finally:
        for m, training in modes:
            m.training = training


def modality_logits(source: str, modalities: Sequence[str],
                    maps: Mapping[str, torch.Tensor], fusion: nn.Module,
                    heads: Mapping[str, nn.Module],
                    fused_head: nn.Module) -> torch.Tensor:
    """Each modality's logits ``out_m`` under a resolved score source.

    Args:
        source: ``'linear_split'``, ``'zero_out'`` or ``'heads'``.
        modalities: Modality names, in the order of the result.
        maps: Feature map ``[B, C_m, ...]`` of every modality.
        fusion: The fusion module.
        heads: Each modality's head.
        fused_head: The fused head.

    Returns:
        ``[M, B, num_classes]``, without gradients.
    """
    with torch.no_grad(), eval_mode(fusion, fused_head,
                                    *[heads[m] for m in modalities]):
        if source == 'linear_split':
            fc = _linear_classifier(fused_head)
            parts = fusion.linear_parts(maps)
            bias = 0 if fc.bias is None else fc.bias / len(modalities)
            return torch.stack(
                [F.linear(parts[m], fc.weight) + bias for m in modalities])
        if source == 'zero_out':
            batch = maps[modalities[0]].shape[0]
            # Row block i keeps modality i and zeroes the others: one pass.
            stacked: Dict[str, torch.Tensor] = {
                j: torch.cat([
                    maps[j] if j == m else torch.zeros_like(maps[j])
                    for m in modalities
                ]) for j in modalities
            }
            out = fused_head(fusion(stacked))
            return out.reshape((len(modalities), batch) + out.shape[1:])
        if source == 'heads':
            return torch.stack([heads[m](maps[m]) for m in modalities])
    raise ValueError(f'unresolved score source {source!r}')


def true_class_probability(logits: torch.Tensor,
                           labels: torch.Tensor) -> torch.Tensor:
    """``s_m``: the batch sum of the probability of the true class.

    Args:
        logits: ``[M, B, num_classes]``.
        labels: ``[B]`` class indices, or ``[B, num_classes]`` soft labels
            (mixup, label smoothing in the data), whose expectation is used.

    Returns:
        ``[M]`` float32 sums.
    """
    probs = logits.float().softmax(dim=-1)
    if labels.dim() == 1:
        index = labels.long()[None, :, None].expand(probs.shape[0], -1, 1)
        return probs.gather(2, index).squeeze(2).sum(dim=1)
    return (probs * labels.float()[None]).sum(dim=(1, 2))
