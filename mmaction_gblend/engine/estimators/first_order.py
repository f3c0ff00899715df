"""The first-order estimator: Proposition 1 at the checkpoint.

Algorithm 1 trains a copy of the model on each head's loss for a
super-epoch and reads the head's G and O off the copy. To first order in
the step, a copy trained on the probe T' moves along ``-u``, ``u`` the
mean gradient of the head's loss over T'; every sample's loss then falls
by ``S <g_i, u>`` (``g_i`` its own gradient, ``S`` the super-epoch's
summed step size). On V that is the generalisation the paper's Section 3.2
writes as the inner product of the true-loss gradient with the update; on
T' the samples' own gradients are part of ``u``, so their losses fall
further: the memorisation that makes O. Both come from one gradient pass
over T' and two forward passes over T' and V per head, at the checkpoint:
no training, usable from epoch 0.

``<g_i, u>`` is the directional derivative of sample i's loss along u,
taken by a central difference of the losses at ``θ ± ε u`` (forward passes
only, no per-sample gradients). ``ε`` moves the mean probe loss by
``FIRST_ORDER_STEP`` nats to first order. The predicted losses after the
super-epoch, ``L_i - S <g_i, u>``, go to the same policy as the other
estimators' measured ones (G, O, their paired standard errors, the
bootstrap); ``S`` scales every head alike, so it cancels from the
normalised weights and only sets the units G and O are logged in.
"""
import copy
import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.runner import Runner

from ...models.recognizers.multi_head_contract import MultiHeadModel
from ...utils.model_wrappers import unwrap
from ..blend_policy import Samples
from ..blend_schedule import Estimate
from ..heldout_evaluation import class_labels, head_scores
from .base import BlendEstimator, Measurement
from .measurer import MAIN

#: First-order change of the mean probe loss, in nats, of the difference
#: step ``ε u``: small against the losses (second-order terms cancel in
#: the central difference), large against float32 rounding.
FIRST_ORDER_STEP = 1e-3


def _trainable(model: torch.nn.Module) -> List[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def probe_gradient(model: MultiHeadModel, head: str,
                   loader) -> List[Optional[torch.Tensor]]:
    """The mean gradient, over every sample of ``loader`` (on every
    process), of ``head``'s cross-entropy, in eval mode; ``None`` for
    parameters the head does not read. ``model`` is left in eval mode with
    no gradients."""
    params = _trainable(model)
    model.eval()
    model.zero_grad(set_to_none=True)
    count = torch.zeros((), dtype=torch.float64)
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        labels = class_labels(data['data_samples'],
                              model.blend_weights.device)
        scores = head_scores(model, data['inputs'], labels.shape[0], [head])
        F.cross_entropy(scores[head].float(), labels,
                        reduction='sum').backward()
        count += labels.shape[0]
    grads = [p.grad for p in params]
    present = [g for g in grads if g is not None]
    if present:
        flat = torch.cat([g.reshape(-1) for g in present] +
                         [count.to(present[0])[None]])
        all_reduce(flat, op='sum')
        total = flat[-1].item()
        offset = 0
        for g in present:
            g.copy_(flat[offset:offset + g.numel()].view_as(g) / total)
            offset += g.numel()
    model.zero_grad(set_to_none=True)
    return grads


def summed_step(runner: Runner, horizon: int) -> float:
    """``S``: the learning rate now, times the horizon's iterations, times
    ``1 / (1 - momentum)`` (SGD's long-run step): the distance SGD moves
    along a constant gradient over the super-epoch."""
    group = runner.optim_wrapper.optimizer.param_groups[0]
    momentum = group.get('momentum', 0.0) or 0.0
    return group['lr'] * len(runner.train_dataloader) * horizon / (
        1 - momentum)


class FirstOrderEstimator(BlendEstimator):
    """G and O from each head's gradient at the checkpoint (see the
    module's docstring): a cheap estimator close to Algorithm 1's
    definition, with no training and one gradient pass over T' per head.
    Losses only (``use_accuracy`` is refused: a 0/1 correctness has no
    gradient)."""
    name = 'first_order'
    at_start = True

    def measure(self, runner: Runner, plan: Estimate) -> Measurement:
        measurer = self.data.measurer
        model = unwrap(runner.model)
        base = measurer.recalibrated_copy(model, runner.train_dataloader)
        models = {MAIN: (base, None)}
        steps: Dict[str, float] = {}
        for head in model.head_names:
            twin = copy.deepcopy(base)
            twin.set_blend_weights(
                {h: float(h == head) for h in twin.head_names})
            grads = probe_gradient(twin, head, measurer.probe_loader)
            norm2 = math.fsum(float((g.double()**2).sum())
                              for g in grads if g is not None)
            if not norm2 > 0 or not math.isfinite(norm2):
                continue  # no direction: the head gets no estimate
            steps[head] = FIRST_ORDER_STEP / norm2
            down = copy.deepcopy(twin)
            with torch.no_grad():
                for p, q, g in zip(_trainable(twin), _trainable(down),
                                   grads):
                    if g is not None:
                        p.add_(g, alpha=steps[head])
                        q.sub_(g, alpha=steps[head])
            models[head + '+'] = (twin, [head])
            models[head + '-'] = (down, [head])
        # the statistics stay those of the checkpoint: the derivative is
        # of the loss the other estimators measure
        samples = measurer.measure(models, None)
        before = samples[MAIN]
        scale = summed_step(runner, plan.horizon)
        after: Samples = {}
        for head in model.head_names:
            after[head] = {}
            for part, values in before[head].items():
                if head not in steps:
                    after[head][part] = [math.nan] * len(values)
                    continue
                up = samples[head + '+'][head][part]
                down = samples[head + '-'][head][part]
                after[head][part] = [
                    v - scale * (u - d) / (2 * steps[head])
                    for v, u, d in zip(values, up, down)
                ]
        return Measurement(before, after)
