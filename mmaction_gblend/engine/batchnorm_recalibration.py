"""Recompute BatchNorm running statistics for the weights being measured.

G-Blend measures losses in eval mode, where BatchNorm normalises with its
running statistics. Those are an exponential average over past batches, so
they lag weights that move fast (early training, a shadow copy after a
super-epoch of training on one loss) and say nothing about freshly
initialised weights: a "before" loss measured with them can sit far from
log(C), and a shadow copy can even seem worse on its own training data
after training on it. Recomputing the statistics as a plain average over
training batches with the weights held fixed ("precise BN") makes the
measured losses describe the weights.
"""
from typing import Dict, Iterable, List, Tuple

import torch
from mmengine.dist import all_reduce
from torch.nn.modules.batchnorm import _BatchNorm

from ..utils.model_wrappers import unwrap
from .heldout_evaluation import ModelHeads


def batchnorm_layers(model: torch.nn.Module) -> List[_BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in unwrap(model).modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(models: Dict[str, ModelHeads],
                          dataloader: Iterable,
                          num_batches: int) -> int:
    """Replace the running statistics of the BatchNorm layers that
    ``models``' heads read by their average over ``num_batches`` batches.

    Each model runs, in train mode without gradients, the branches its
    heads read (``(model, None)``: all); the batches are loaded and
    preprocessed once for all models. A layer the run did not reach keeps
    its statistics. On several processes the statistics are averaged over
    processes, so every copy stays identical. Parameters and blend weights
    are not touched.

    Args:
        models: ``{name: (model, heads or None)}``; changed in place.
        dataloader: Training batches (the data the weights trained on).
        num_batches: How many batches to average over (fewer if the loader
            is shorter); 0 does nothing.

    Returns:
        The number of batches used (0 when no model has BatchNorm).
    """
    plan = []
    for model, heads in models.values():
        model = unwrap(model)
        layers = batchnorm_layers(model)
        if layers:
            heads = list(model.head_names if heads is None else heads)
            plan.append((model, heads, model.needed_modalities(heads),
                         layers))
    if not plan or num_batches <= 0:
        return 0
    saved: List[Tuple[_BatchNorm, dict, object]] = []
    modes = [model.training for model, *_ in plan]
    for model, _, _, layers in plan:
        model.train()
        for layer in layers:
            saved.append((layer, {
                k: v.clone() for k, v in layer.state_dict().items()
            }, layer.momentum))
            layer.reset_running_stats()
            layer.momentum = None  # a cumulative (plain) average
    used = 0
    try:
        first = plan[0][0]
        for batch in dataloader:
            if used == num_batches:
                break
            data = first.data_preprocessor(batch, True)
            for model, heads, modalities, _ in plan:
                maps, _ = model.extract_feat(data['inputs'], modalities)
                model.head_logits(maps, heads=heads)
            used += 1
    finally:
        for layer, state, momentum in saved:
            layer.momentum = momentum
            if int(layer.num_batches_tracked) == 0:
                layer.load_state_dict(state)  # not reached: as it was
        for (model, *_), mode in zip(plan, modes):
            model.train(mode)
    for layer, _, _ in saved:
        if layer.running_mean is not None:
            all_reduce(layer.running_mean, op='mean')
            all_reduce(layer.running_var, op='mean')
    return used
