"""Per-head mean loss and accuracy of a model over a data loader.

What G-Blend measures on the held-out set V and the training probe T'. The
loop runs on the unwrapped model in eval mode without gradients and fires no
hooks (running a ValLoop would trigger save-best, logging and EMA swaps on
held-out numbers). Each process sums over its shard; the sums and counts are
all-reduced once at the end, so N processes give the single-process result.
"""
import math
from typing import Dict, Iterable, NamedTuple, Optional, Sequence, Tuple

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


ModelHeads = Tuple[torch.nn.Module, Optional[Sequence[str]]]


def measure_heads(model: torch.nn.Module,
                  dataloader: Iterable,
                  heads: Optional[Sequence[str]] = None
                  ) -> Dict[str, HeadMeasure]:
    """Mean cross-entropy and top-1 accuracy of every head (or of
    ``heads``, running only the branches they read).

    Args:
        model: A :class:`MultiHeadRecognizer`, wrapped or not. It is put in
            eval mode for the loop and back in its former mode after.
        dataloader: Batches as the data preprocessor takes them. Use a
            sampler without padding (``DefaultSampler(round_up=False)``) so
            every sample counts exactly once across processes.
        heads: The heads to measure (default: all).

    Returns:
        ``{head: HeadMeasure}``, identical on every process. A sample's
        loss is the plain cross-entropy of its view-averaged logits (the
        configured ``loss_cls`` may add smoothing or weights; G-Blend wants
        the loss itself).
    """
    return measure_models({'model': (model, heads)}, dataloader)['model']


@torch.no_grad()
def measure_models(models: Dict[str, ModelHeads],
                   dataloader: Iterable) -> Dict[str, Dict[str, HeadMeasure]]:
    """:func:`measure_heads` of several models in one pass over the data.

    G-Blend's shadow estimator measures the main model and one copy per
    head on the same held-out set: loading and preprocessing each batch
    once for all of them (with the first model's data preprocessor; the
    copies' are the same) saves the data loading of every other pass.

    Args:
        models: ``{name: (model, heads or None)}``.
        dataloader: As for :func:`measure_heads`.

    Returns:
        ``{name: {head: HeadMeasure}}``.
    """
    plan = []
    for name, (model, heads) in models.items():
        model = unwrap(model)
        heads = list(model.head_names if heads is None else heads)
        plan.append((name, model, heads, model.needed_modalities(heads),
                     model.training))
    first = plan[0][1]
    device = first.blend_weights.device
    # sums[k] = [loss sum, squared-loss sum, correct count, sample count]
    # of the k-th (model, head), reduced at the end
    sums = torch.zeros(sum(len(p[2]) for p in plan), 4, dtype=torch.float64,
                       device=device)
    try:
        for _, model, *_ in plan:
            model.eval()
        for batch in dataloader:
            data = first.data_preprocessor(batch, False)
            labels = stack_labels(data['data_samples']).to(device)
            if labels.dim() == 2:  # one-hot or soft targets: their arg-max
                labels = labels.argmax(dim=1)
            n = labels.shape[0]
            row = 0
            for _, model, heads, modalities, _ in plan:
                maps, _ = model.extract_feat(data['inputs'], modalities)
                logits = model.head_logits(maps, heads=heads)
                for head in heads:
                    scores = logits[head].reshape(
                        (n, -1) + logits[head].shape[1:]).mean(1)
                    loss = F.cross_entropy(
                        scores.float(), labels, reduction='none').double()
                    correct = (scores.argmax(dim=1) == labels).sum()
                    sums[row] += torch.stack([
                        loss.sum(), (loss**2).sum(),
                        correct.double(),
                        torch.tensor(float(n), dtype=torch.float64,
                                     device=device)
                    ])
                    row += 1
    finally:
        for _, model, _, _, was_training in plan:
            model.train(was_training)
    all_reduce(sums, op='sum')
    result: Dict[str, Dict[str, HeadMeasure]] = {}
    row = 0
    for name, _, heads, _, _ in plan:
        result[name] = {}
        for head in heads:
            result[name][head] = _head_measure(*sums[row].tolist())
            row += 1
    return result


def _head_measure(loss: float, squares: float, correct: float,
                  count: float) -> HeadMeasure:
    if count == 0:
        raise ValueError('measure_heads: the data loader gave no samples')
    mean, accuracy = loss / count, correct / count
    variance = max(squares / count - mean**2, 0.0)
    return HeadMeasure(mean, accuracy, int(count),
                       math.sqrt(variance / count),
                       math.sqrt(accuracy * (1 - accuracy) / count))
