"""Per-head mean loss and accuracy of a model over a data loader.

What G-Blend measures on the held-out set V and the training probe T'. The
loop runs on the unwrapped model in eval mode without gradients and fires no
hooks (running a ValLoop would trigger save-best, logging and EMA swaps on
held-out numbers). Each process sums over its shard; the sums and counts are
all-reduced once at the end, so N processes give the single-process result.

Every head's per-sample losses and correctness are returned too, in dataset
order: G and O are differences over the same samples at two checkpoints,
and their noise is that of the paired per-sample differences
(:func:`mmaction_gblend.blending.paired_standard_errors`).
"""
import math
from typing import (Dict, Iterable, List, NamedTuple, Optional, Sequence,
                    Tuple)

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size

from ..models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ..models.utils import stack_labels
from ..utils.model_wrappers import unwrap


class HeadMeasure(NamedTuple):
    """One head's mean per-sample loss and accuracy over ``count`` samples,
    with the standard errors of the two means (``std / sqrt(count)``), and
    the per-sample values behind them.

    Attributes:
        loss: Mean cross-entropy.
        accuracy: Top-1 accuracy.
        count: Samples measured.
        loss_se: Standard error of ``loss`` (population std / sqrt(count)).
        accuracy_se: Standard error of ``accuracy``.
        losses: Each sample's cross-entropy; element ``i`` is sample ``i`` of
            the data loader's dataset.
        correct: Each sample's top-1 correctness (1.0 or 0.0), same order.
    """
    loss: float
    accuracy: float
    count: int
    loss_se: float
    accuracy_se: float
    losses: Tuple[float, ...] = ()
    correct: Tuple[float, ...] = ()


ModelHeads = Tuple[torch.nn.Module, Optional[Sequence[str]]]


def measure_heads(model: torch.nn.Module,
                  dataloader: Iterable,
                  heads: Optional[Sequence[str]] = None
                  ) -> Dict[str, HeadMeasure]:
    """Mean cross-entropy and top-1 accuracy of every head (or of
    ``heads``, running only the branches they read).

    Args:
        model: A :class:`~mmaction_gblend.models.recognizers.MultiHeadModel`
            (a ``MultiHeadRecognizer``), wrapped or not. It is put in
            eval mode for the loop and back in its former mode after.
        dataloader: A data loader (``dataset`` and ``sampler``) of batches
            as the data preprocessor takes them. Its sampler must give every
            sample of the dataset exactly once across processes, in the
            order the batches come (``DefaultSampler(shuffle=False,
            round_up=False)``): its indices place the per-sample values.
        heads: The heads to measure (default: all).

    Returns:
        ``{head: HeadMeasure}``, identical on every process. A sample's
        loss is the plain cross-entropy of its view-averaged logits (the
        configured ``loss_cls`` may add smoothing or weights; G-Blend wants
        the loss itself).

    Raises:
        ValueError: The loader gave no samples, or its sampler did not give
            every sample exactly once (padding, a subset, ``drop_last``).
    """
    return measure_models({'model': (model, heads)}, dataloader)['model']


def class_labels(data_samples, device: torch.device) -> torch.Tensor:
    """The batch's class indices, the labels G-Blend's losses are measured
    against (one-hot or soft targets: their arg-max)."""
    labels = stack_labels(data_samples).to(device)
    return labels.argmax(dim=1) if labels.dim() == 2 else labels


def head_scores(model: MultiHeadModel, inputs: Dict[str, torch.Tensor],
                batch_size: int, heads: Sequence[str],
                modalities: Optional[Sequence[str]] = None
                ) -> Dict[str, torch.Tensor]:
    """Each head's logits ``[batch, C]``, averaged over a sample's views:
    what G-Blend's losses are measured on (the plain cross-entropy of
    these). ``modalities``: the branches to run (default: what the heads
    read)."""
    if modalities is None:
        modalities = model.needed_modalities(heads)
    maps, _ = model.extract_feat(inputs, modalities)
    logits = model.head_logits(maps, heads=heads)
    return {head: logits[head].reshape(
        (batch_size, -1) + logits[head].shape[1:]).mean(1) for head in heads}


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
    order = _sample_order(dataloader)
    plan = []
    for name, (model, heads) in models.items():
        model: MultiHeadModel = check_multi_head_model(
            unwrap(model), f'measure_models ({name!r}) needs a multi-head '
            'model')
        heads = list(model.head_names if heads is None else heads)
        plan.append((name, model, heads, model.needed_modalities(heads),
                     model.training))
    first = plan[0][1]
    device = first.blend_weights.device
    # sums[k] = [loss sum, squared-loss sum, correct count, sample count]
    # of the k-th (model, head), reduced at the end
    num_rows = sum(len(p[2]) for p in plan)
    sums = torch.zeros(num_rows, 4, dtype=torch.float64, device=device)
    # this process's per-sample losses and correctness of every row, in
    # loader order; placed by dataset index after the loop
    seen: List[List[torch.Tensor]] = [[] for _ in range(num_rows)]
    try:
        for _, model, *_ in plan:
            model.eval()
        for batch in dataloader:
            data = first.data_preprocessor(batch, False)
            labels = class_labels(data['data_samples'], device)
            n = labels.shape[0]
            row = 0
            for _, model, heads, modalities, _ in plan:
                scores = head_scores(model, data['inputs'], n, heads,
                                     modalities)
                for head in heads:
                    loss = F.cross_entropy(scores[head].float(), labels,
                                           reduction='none').double()
                    hits = (scores[head].argmax(dim=1) == labels).double()
                    correct = hits.sum()
                    seen[row].append(torch.stack([loss, hits]))
                    sums[row] += torch.stack([
                        loss.sum(), (loss**2).sum(),
                        correct,
                        torch.tensor(float(n), dtype=torch.float64,
                                     device=device)
                    ])
                    row += 1
    finally:
        for _, model, _, _, was_training in plan:
            model.train(was_training)
    all_reduce(sums, op='sum')
    per_sample = _place_by_index(seen, order, dataloader, device)
    result: Dict[str, Dict[str, HeadMeasure]] = {}
    row = 0
    for name, _, heads, _, _ in plan:
        result[name] = {}
        for head in heads:
            losses, correct = per_sample[row]
            result[name][head] = _head_measure(*sums[row].tolist(),
                                               tuple(losses.tolist()),
                                               tuple(correct.tolist()))
            row += 1
    return result


def _sample_order(dataloader: Iterable) -> Optional[List[int]]:
    """The dataset indices this process measures, in the loader's order;
    ``None`` for a plain iterable of batches (then in iteration order)."""
    # a loader built with a batch sampler keeps the real sampler in it
    # (its own ``sampler`` is then a default SequentialSampler)
    sampler = getattr(getattr(dataloader, 'batch_sampler', None), 'sampler',
                      None) or getattr(dataloader, 'sampler', None)
    if sampler is None or getattr(dataloader, 'dataset', None) is None:
        return None
    # A DefaultSampler's order depends only on its seed and epoch, which a
    # measurement pass does not change: this is the order the batches get.
    return [int(i) for i in iter(sampler)]


def _place_by_index(seen: List[List[torch.Tensor]],
                    order: Optional[List[int]], dataloader: Iterable,
                    device: torch.device) -> torch.Tensor:
    """Every row's (losses, correct) over the whole dataset, in dataset
    order, identical on every process: ``(rows, 2, len(dataset))``.

    Each process writes its samples at their dataset indices into zeros;
    the sum over processes fills every index once. A count per index checks
    that the sampler covered the dataset exactly once; the checks are made
    after the reduction, so every process raises alike (none is left
    waiting in a collective).
    """
    num_rows = len(seen)
    mine = torch.cat([
        torch.cat(parts, dim=1) if parts else torch.zeros(
            2, 0, dtype=torch.float64, device=device) for parts in seen
    ]) if seen else torch.zeros(0, 0, dtype=torch.float64, device=device)
    measured = mine.shape[1]
    if order is None:
        if get_world_size() > 1:
            raise ValueError(
                'measure_heads: on several processes the data loader needs '
                'a sampler (DefaultSampler(shuffle=False, round_up=False)) '
                'to place each sample')
        size, order = measured, list(range(measured))
    else:
        size = len(dataloader.dataset)
    # rows x (loss, correct) x samples, then a row counting each index; its
    # extra last column counts processes whose loader and sampler disagree
    full = torch.zeros(num_rows * 2 + 1, size + 1, dtype=torch.float64,
                       device=device)
    if measured != len(order):
        full[-1, -1] = 1
    elif order:
        index = torch.tensor(order, dtype=torch.long, device=device)
        full[:-1].index_add_(1, index, mine)
        full[-1].index_add_(0, index,
                            torch.ones(len(order), dtype=torch.float64,
                                       device=device))
    all_reduce(full, op='sum')
    if full[-1, -1] > 0:
        raise ValueError(
            'measure_heads: the data loader gave a different number of '
            'samples than its sampler has indices (drop_last, or a batch '
            'sampler of its own?); every sample must be measured once')
    counts = full[-1, :-1]
    if size and not bool((counts == 1).all()):
        missing = int((counts == 0).sum())
        repeated = int((counts > 1).sum())
        raise ValueError(
            f'measure_heads: the sampler did not give every sample of the '
            f'dataset exactly once ({missing} never, {repeated} more than '
            'once); use DefaultSampler(shuffle=False, round_up=False)')
    return full[:-1, :-1].reshape(num_rows, 2, size).cpu()


def _head_measure(loss: float, squares: float, correct: float, count: float,
                  losses: Tuple[float, ...],
                  hits: Tuple[float, ...]) -> HeadMeasure:
    if count == 0:
        raise ValueError('measure_heads: the data loader gave no samples')
    mean, accuracy = loss / count, correct / count
    variance = max(squares / count - mean**2, 0.0)
    return HeadMeasure(mean, accuracy, int(count),
                       math.sqrt(variance / count),
                       math.sqrt(accuracy * (1 - accuracy) / count), losses,
                       hits)
