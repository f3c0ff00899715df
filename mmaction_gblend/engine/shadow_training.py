"""Train a copy of the model on one head's loss: G-Blend's Algorithm 1.

``GB_Estimate`` (Wang et al. 2020) measures how each uni-modal network and
the fused network would overfit and generalise over the next super-epoch by
training each, from the current state, with only its own loss. We train a
deep copy of the model (and of its optimizer, so the settings, learning rate
and momentum are inherited) with one-hot blend weights; the main model and
its optimizer are never touched. The copies train side by side on the same
batches (see :func:`shadow_train`).

On several processes every copy starts identical (the main model is), each
process trains on its shard of the training data, and the gradients are
averaged over processes before each step, as DDP would, so the copies stay
identical; normalisation buffers are averaged at the end.
"""
import copy
import itertools
from typing import Dict, Iterable, Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_reduce, get_world_size, is_distributed

from .heldout_evaluation import unwrap


def _average_gradients(params) -> None:
    """All-reduce the gradients of ``params`` as one flat buffer."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or not is_distributed():
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch_dist.all_reduce(flat)
    flat /= get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _average_buffers(model: torch.nn.Module) -> None:
    for buffer in model.buffers():
        if buffer.is_floating_point():
            all_reduce(buffer, op='mean')


def shadow_train(model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer,
                 dataloader: Iterable,
                 heads: Sequence[str],
                 num_iters: int,
                 clip_grad: Optional[dict] = None
                 ) -> Dict[str, torch.nn.Module]:
    """Train one copy of ``model`` per head, each on its head's loss alone.

    The copies train in lockstep on the same batches, each loaded and
    preprocessed once: the data cost is paid once for all heads, and the
    heads' G and O are measured over the same samples. A modality head's
    copy runs only its own branch and head (its loss reads nothing else),
    so it costs that branch's share of a step.

    Args:
        model: The main :class:`MultiHeadRecognizer` (wrapped or not); left
            unchanged.
        optimizer: The main optimizer; copied with its state, left unchanged.
        dataloader: Training batches; cycled if shorter than ``num_iters``.
        heads: The heads, one copy each.
        num_iters: Optimisation steps of each copy.
        clip_grad: ``clip_grad_norm_`` arguments, as the optim wrapper has.

    Returns:
        ``{head: trained copy}``, in train mode; the copies' optimizers are
        dropped.
    """
    module = unwrap(model)
    copies = {}
    for head in heads:
        if head not in module.head_names:
            raise KeyError(f'shadow_train: no head {head!r} in '
                           f'{module.head_names}')
        # One deepcopy of both keeps the optimizer pointing at the copy's
        # parameters (the memo maps each parameter to its copy).
        shadow, shadow_optimizer = copy.deepcopy((module, optimizer))
        shadow.set_blend_weights(
            {h: float(h == head) for h in shadow.head_names})
        shadow.train()
        copies[head] = (shadow, shadow_optimizer, [
            p for p in shadow.parameters() if p.requires_grad])
    batches = itertools.chain.from_iterable(itertools.repeat(dataloader))
    for batch in itertools.islice(batches, num_iters):
        data = module.data_preprocessor(batch, True)
        for head, (shadow, shadow_optimizer, params) in copies.items():
            loss = shadow.loss(data['inputs'], data['data_samples'],
                               heads=[head])[f'loss_{head}']
            shadow_optimizer.zero_grad()
            loss.backward()
            # a branch the head does not read has no gradient, so the
            # optimizer leaves it (and its weight decay) alone
            _average_gradients(params)
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(params, **clip_grad)
            shadow_optimizer.step()
    trained = {}
    for head, (shadow, shadow_optimizer, _) in copies.items():
        shadow_optimizer.zero_grad()
        _average_buffers(shadow)
        trained[head] = shadow
    return trained
