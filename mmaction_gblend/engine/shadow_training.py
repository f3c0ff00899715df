"""Train a copy of the model on one head's loss: G-Blend's Algorithm 1.

``GB_Estimate`` (Wang et al. 2020) measures how each uni-modal network and
the fused network would overfit and generalise over the next super-epoch by
training each, from the current state, with only its own loss, for the
super-epoch's n epochs. We train a deep copy of the model (and of its
optimizer, so the settings and momentum are inherited) with one-hot blend
weights; the main model, its optimizer and its schedulers are never touched.
What makes a copy follow the main run rather than a frozen snapshot of it:

* its learning rate follows the main run's schedule over the same epochs
  (copies of the parameter schedulers step with the copy, at the main run's
  iteration they correspond to: :class:`ScheduleFollower`);
* each pass over the training data has a new sample order, the one the
  main run will have in that epoch (the sampler's epoch);
* the n epochs are whole passes over the data it is given: on a subset of
  the training set, every sample is repeated as often as in the real run,
  with fewer steps per epoch (not a fraction of the full set's iterations,
  which would shorten the horizon and leave nothing time to overfit).

The copies train side by side on the same batches (see :func:`shadow_train`).
On several processes every copy starts identical (the main model is), each
process trains on its shard of the training data, and the gradients are
averaged over processes before each step, as DDP would, so the copies stay
identical; normalisation buffers are averaged at the end.
"""
import copy
import warnings
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_reduce, get_world_size, is_distributed

from ..models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ..utils.model_wrappers import unwrap


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


def flatten_schedulers(schedulers) -> List:
    """A Runner's ``param_schedulers`` (``None``, a list, or a dict of
    lists for several optimizers) as one list."""
    if not schedulers:
        return []
    if isinstance(schedulers, dict):
        return [s for group in schedulers.values() for s in group]
    return list(schedulers)


class ScheduleFollower:
    """Copies of the main run's parameter schedulers, driving another
    optimizer along the same schedule.

    The main run steps its iteration-based schedulers after every one of
    its ``epoch_length`` iterations and its epoch-based ones after every
    epoch (mmengine's ``ParamSchedulerHook``). A shadow copy may take
    another number of steps per epoch (on a subset of the data); its step
    ``j`` of ``steps_per_epoch`` in an epoch is given the learning rate of
    the main run's iteration ``floor(j * epoch_length / steps_per_epoch)``
    of the same epoch: the schedule in epochs is the main run's.

    Args:
        schedulers: The main run's schedulers (left unchanged).
        optimizer: The optimizer the copies drive; its parameter groups
            must hold the main optimizer's current values (a deep copy of
            the main optimizer does).
        epoch_length: Iterations per epoch of the main run.
    """

    def __init__(self, schedulers: Sequence, optimizer: torch.optim.Optimizer,
                 epoch_length: int) -> None:
        self.epoch_length = max(int(epoch_length), 1)
        self.schedulers = []
        for scheduler in schedulers:
            # all its state but the optimizer, which becomes ours
            twin = copy.copy(scheduler)
            twin.__dict__ = copy.deepcopy(scheduler.state_dict())
            twin.optimizer = optimizer
            self.schedulers.append(twin)
        self._iters_done = 0  # iteration-based steps, from the start

    def _step(self, by_epoch: bool) -> None:
        with warnings.catch_warnings():
            # mmengine warns about step order on a scheduler's first steps;
            # the copy's optimizer has stepped as the main one has
            warnings.simplefilter('ignore', UserWarning)
            for scheduler in self.schedulers:
                if scheduler.by_epoch == by_epoch:
                    scheduler.step()

    def before_step(self, epoch: int, step: int,
                    steps_per_epoch: int) -> None:
        """Bring the iteration-based schedulers to the main run's
        iteration for ``step`` of ``steps_per_epoch`` in ``epoch`` (counted
        from the copy's start)."""
        target = epoch * self.epoch_length + \
            step * self.epoch_length // max(steps_per_epoch, 1)
        while self._iters_done < target:
            self._step(by_epoch=False)
            self._iters_done += 1

    def after_epoch(self, epoch: int) -> None:
        """The end of the copy's ``epoch``: iteration-based schedulers to
        the epoch's end, epoch-based ones one step."""
        while self._iters_done < (epoch + 1) * self.epoch_length:
            self._step(by_epoch=False)
            self._iters_done += 1
        self._step(by_epoch=True)


def set_sampler_epoch(dataloader: Iterable, epoch: int) -> None:
    """``set_epoch`` on the loader's sampler (or its batch sampler's), as
    ``DistSamplerSeedHook`` does."""
    for holder in (getattr(dataloader, 'sampler', None),
                   getattr(dataloader, 'batch_sampler', None)):
        if hasattr(holder, 'set_epoch'):
            holder.set_epoch(epoch)
            return
        # a batch sampler wrapping the sampler (mmengine's aspect ratio
        # samplers, torch's BatchSampler)
        inner = getattr(holder, 'sampler', None)
        if hasattr(inner, 'set_epoch'):
            inner.set_epoch(epoch)
            return


def shadow_train(model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer,
                 dataloader: Iterable,
                 heads: Sequence[str],
                 num_epochs: int,
                 clip_grad: Optional[dict] = None,
                 schedulers: Sequence = (),
                 epoch_length: Optional[int] = None,
                 start_epoch: int = 0,
                 order_epoch: Optional[int] = None
                 ) -> Dict[str, MultiHeadModel]:
    """Train one copy of ``model`` per head, each on its head's loss alone,
    for ``num_epochs`` passes over ``dataloader``.

    The copies train in lockstep on the same batches, each loaded and
    preprocessed once: the data cost is paid once for all heads, and the
    heads' G and O are measured over the same samples. A modality head's
    copy runs only its own branch and head (its loss reads nothing else),
    so it costs that branch's share of a step.

    Args:
        model: The main model, a
            :class:`~mmaction_gblend.models.recognizers.MultiHeadModel`
            (wrapped or not); left unchanged.
        optimizer: The main optimizer; each copy gets one of its type and
            settings with a fresh state (see the module's docstring); left
            unchanged.
        dataloader: The training batches of one epoch (the main run's
            loader, or one over a subset of its data).
        heads: The heads, one copy each.
        num_epochs: Passes over ``dataloader`` (the super-epoch's length).
        clip_grad: ``clip_grad_norm_`` arguments, as the optim wrapper has.
        schedulers: The main run's parameter schedulers, at the main run's
            current point (start of epoch ``start_epoch``); the copies
            follow them (:class:`ScheduleFollower`). Empty: a constant
            learning rate.
        epoch_length: Iterations per epoch of the main run (default: the
            length of ``dataloader``).
        start_epoch: The main run's epoch the copies start at: pass ``e``
            of the data uses the sampler's epoch ``start_epoch + e``, the
            order the main run has in that epoch. The sampler is set back to
            ``start_epoch`` at the end.
        order_epoch: Take pass ``e``'s order from the sampler's epoch
            ``order_epoch + e`` instead (another order than the main
            run's); the schedule still follows ``start_epoch``.

    Returns:
        ``{head: trained copy}``, in train mode; the copies' optimizers are
        dropped.
    """
    module = check_multi_head_model(
        unwrap(model), 'shadow_train needs a multi-head model')
    steps_per_epoch = len(dataloader)
    if epoch_length is None:
        epoch_length = steps_per_epoch
    copies = {}
    for head in heads:
        if head not in module.head_names:
            raise KeyError(f'shadow_train: no head {head!r} in '
                           f'{module.head_names}')
        # One deepcopy of both keeps the optimizer pointing at the copy's
        # parameters (the memo maps each parameter to its copy).
        shadow, shadow_optimizer = copy.deepcopy((module, optimizer))
        # a fresh state: no momentum or second moments of the blend
        shadow_optimizer.state.clear()
        shadow.set_blend_weights(
            {h: float(h == head) for h in shadow.head_names})
        shadow.train()
        copies[head] = (shadow, shadow_optimizer, [
            p for p in shadow.parameters() if p.requires_grad
        ], ScheduleFollower(schedulers, shadow_optimizer, epoch_length))
    try:
        for epoch in range(num_epochs):
            set_sampler_epoch(dataloader, epoch + (
                start_epoch if order_epoch is None else order_epoch))
            for step, batch in enumerate(dataloader):
                data = module.data_preprocessor(batch, True)
                for head, (shadow, shadow_optimizer, params,
                           follower) in copies.items():
                    follower.before_step(epoch, step, steps_per_epoch)
                    loss = shadow.loss(data['inputs'], data['data_samples'],
                                       heads=[head])[f'loss_{head}']
                    shadow_optimizer.zero_grad()
                    loss.backward()
                    # a branch the head does not read has no gradient, so
                    # the optimizer leaves it (and its weight decay) alone
                    _average_gradients(params)
                    if clip_grad:
                        torch.nn.utils.clip_grad_norm_(params, **clip_grad)
                    shadow_optimizer.step()
            for _, _, _, follower in copies.values():
                follower.after_epoch(epoch)
    finally:
        set_sampler_epoch(dataloader, start_epoch)
    trained = {}
    for head, (shadow, shadow_optimizer, _, _) in copies.items():
        shadow_optimizer.zero_grad()
        _average_buffers(shadow)
        trained[head] = shadow
    return trained
