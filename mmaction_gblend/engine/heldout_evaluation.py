"""Per-head mean loss and accuracy of a model over a data loader.

What G-Blend measures on the held-out set V and the training probe T'. The
loop runs on the unwrapped model in eval mode without gradients and fires no
hooks (running a ValLoop would trigger save-best, logging and EMA swaps on
held-out numbers). Each process sums over its shard; the sums and counts are
all-reduced once at the end, so N processes give the single-process result.
"""
import math
from typing import Dict, Iterable, NamedTuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import is_model_wrapper

from ..models.utils import stack_labels


class HeadMeasure(NamedTuple):
    """One head's mean per-sample loss and accuracy over ``count`` samples,
    with the standard errors of the two means (``std / sqrt(count)``)."""
    loss: float
    accuracy: float
    count: int
    loss_se: float
    accuracy_se: float


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP (or other mmengine) wrapper."""
    return model.module if is_model_wrapper(model) else model


@torch.no_grad()
def measure_heads(model: torch.nn.Module,
                  dataloader: Iterable) -> Dict[str, HeadMeasure]:
    """Mean cross-entropy and top-1 accuracy of every head.

    Args:
        model: A :class:`MultiHeadRecognizer`, wrapped or not. It is put in
            eval mode for the loop and back in its former mode after.
        dataloader: Batches as the data preprocessor takes them. Use a
            sampler without padding (``DefaultSampler(round_up=False)``) so
            every sample counts exactly once across processes.

    Returns:
        ``{head: HeadMeasure}``, identical on every process. A sample's
        loss is the plain cross-entropy of its view-averaged logits (the
        configured ``loss_cls`` may add smoothing or weights; G-Blend wants
        the loss itself).
    """
    model = unwrap(model)
    was_training = model.training
    model.eval()
    device = model.blend_weights.device
    heads = list(model.head_names)
    # sums[h] = [loss sum, squared-loss sum, correct count, sample count],
    # reduced at the end
    sums = torch.zeros(len(heads), 4, dtype=torch.float64, device=device)
    try:
        for batch in dataloader:
            data = model.data_preprocessor(batch, False)
            logits = model(**data, mode='tensor')
            labels = stack_labels(data['data_samples']).to(device)
            if labels.dim() == 2:  # one-hot or soft targets: their arg-max
                labels = labels.argmax(dim=1)
            n = labels.shape[0]
            for i, head in enumerate(heads):
                scores = logits[head].reshape((n, -1) +
                                              logits[head].shape[1:]).mean(1)
                loss = F.cross_entropy(
                    scores.float(), labels, reduction='none').double()
                correct = (scores.argmax(dim=1) == labels).sum()
                sums[i] += torch.stack([
                    loss.sum(), (loss**2).sum(),
                    correct.double(),
                    torch.tensor(float(n), dtype=torch.float64,
                                 device=device)
                ])
    finally:
        model.train(was_training)
    all_reduce(sums, op='sum')
    result = {}
    for i, head in enumerate(heads):
        loss, squares, correct, count = sums[i].tolist()
        if count == 0:
            raise ValueError('measure_heads: the data loader gave no samples')
        mean, accuracy = loss / count, correct / count
        variance = max(squares / count - mean**2, 0.0)
        result[head] = HeadMeasure(
            mean, accuracy, int(count), math.sqrt(variance / count),
            math.sqrt(accuracy * (1 - accuracy) / count))
    return result
