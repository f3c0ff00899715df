"""Fit the ``'mix'`` prediction's weights on held-out data after training.

The math is :mod:`mmaction_gblend.blending.prediction_mix`; this hook runs
the model over a held-out loader once, at the end of the last training
epoch (before ``CheckpointHook`` saves it, so the last checkpoint carries
the weights), and sets the recognizer's ``prediction_weights``.
"""
import copy
from typing import List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmaction.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...blending.prediction_mix import (best_mixture, mixture_scores,
                                        simplex_grid)
from ...models.utils import stack_labels
from ...utils.choices import check_number
from ...utils.model_wrappers import unwrap

KEY = 'custom_hooks[PredictionMixHook]'
#: The ``heads`` that are not a list of names.
HEAD_SETS = ('trained', 'all')


def check_dataloader(dataloader: Union[str, dict]) -> Union[str, dict]:
    """``dataloader``, if it is ``'val'`` or a dataloader config.

    Raises:
        ValueError: Naming ``custom_hooks[PredictionMixHook].dataloader``,
            for another string, a value that is no dict, or a config
            without a ``dataset`` (read only after the last epoch).
    """
    if isinstance(dataloader, str) and dataloader == 'val':
        return dataloader
    if not isinstance(dataloader, Mapping):
        raise ValueError(f"{KEY}.dataloader must be 'val' or a "
                         f'dataloader config, got {dataloader!r}')
    if 'dataset' not in dataloader:
        raise ValueError(f"{KEY}.dataloader must be 'val' or a "
                         'dataloader config with a dataset, got keys '
                         f'{sorted(dataloader)}')
    return dataloader


def check_heads(heads: Union[str, Sequence[str]]) -> Union[str, List[str]]:
    """``heads`` as :class:`PredictionMixHook` keeps them: one of
    :data:`HEAD_SETS`, or a list of distinct head names (checked against
    the model's heads in ``before_train``).

    Raises:
        ValueError: Naming ``custom_hooks[PredictionMixHook].heads``, for
            an unknown set, an empty list, a name that is no string, or a
            name given twice; else the fit would fail, or mix a head with
            itself, only after the last epoch.
    """
    expected = f"{KEY}.heads must be 'trained', 'all' or a list of head names"
    if isinstance(heads, str):
        if heads not in HEAD_SETS:
            raise ValueError(f'{expected}, got {heads!r}')
        return heads
    if not isinstance(heads, (list, tuple)) or not heads or \
            not all(isinstance(h, str) for h in heads):
        raise ValueError(f'{expected}, got {heads!r}')
    heads = list(heads)
    twice = [h for i, h in enumerate(heads) if h in heads[:i]]
    if twice:
        raise ValueError(f'{KEY}.heads names {twice[0]!r} twice')
    return heads


def check_step(step: float) -> float:
    """``step`` as a float, if it is a number ``1 / n`` for a whole ``n``.

    Raises:
        TypeError: A step that is no number (a string, a bool), naming
            ``custom_hooks[PredictionMixHook].step``.
        ValueError: A step that does not divide 1, naming it.
    """
    step = check_number(f'{KEY}.step', step)
    try:
        simplex_grid(1, step)
    except ValueError as error:
        raise ValueError(f'{KEY}.step: {error}') from None
    return step


@HOOKS.register_module()
class PredictionMixHook(Hook):
    """Mix the heads' probabilities for the prediction, fitted on held-out
    data (an extension of G-Blend, which predicts with the fused head).

    At the end of the last training epoch, every candidate mixture
    ``sum_i a_i * p_i`` of the chosen heads' class probabilities, with
    ``a`` on a grid of ``step`` over the simplex (the one-hot weightings
    included), is scored on ``dataloader`` (default: the val split); the
    one with the best top-1, then the lowest log loss, becomes the model's
    ``prediction_weights``. The model must be built with
    ``prediction='mix'``. Counts are summed over processes, so every
    process picks the same weights. The fit, every head's own top-1 and the
    mixture's are logged.

    Args:
        dataloader: ``'val'`` (the val dataloader's config) or a dataloader
            config. Its samples must not be the test split's.
        heads: ``'trained'`` (default): the heads that trained with a
            blend weight > 0 in some epoch of the run (one never trained is
            at chance; one G-Blend weighted down late still knows what it
            learnt before); ``'all'``; or a list of head names.
            The set is saved in checkpoints and restored on resume.
        step: The grid's step (``1 / step`` whole): 0.1 gives 66
            weightings for 3 heads.

    The settings are checked when the hook is built (:func:`check_dataloader`,
    :func:`check_heads`, :func:`check_step`), the heads' names against
    the model and ``model.prediction`` in ``before_train``.
    """
    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW) saves the epoch

    def __init__(self,
                 dataloader: Union[str, dict] = 'val',
                 heads: Union[str, Sequence[str]] = 'trained',
                 step: float = 0.1) -> None:
        # all checked now: they are read only after the last epoch
        self.dataloader = check_dataloader(dataloader)
        self.heads = check_heads(heads)
        self.step = check_step(step)
        #: The heads trained with a weight > 0 so far (``'trained'``).
        self.trained: List[str] = []

    def before_train(self, runner: Runner) -> None:
        model = unwrap(runner.model)
        if getattr(model, 'prediction', None) != 'mix':
            raise ValueError(
                f"{KEY} fits the weights of model.prediction='mix'; the "
                f'model predicts with '
                f"{getattr(model, 'prediction', 'its own rule')!r}")
        if not isinstance(self.heads, str):
            unknown = sorted(set(self.heads) - set(model.head_names))
            if unknown:
                raise ValueError(f'{KEY}.heads: no heads {unknown} in '
                                 f'{model.head_names}')
        if self.dataloader == 'val' and not runner.cfg.get('val_dataloader'):
            raise ValueError(f"{KEY}.dataloader='val' needs a "
                             'val_dataloader; give a dataloader config')

    def before_train_epoch(self, runner: Runner) -> None:
        # the weights the epoch starts with; a hook that sets them in its
        # own before_train_epoch may run after this one, so
        # after_train_epoch notes them again
        self._note_trained(runner)

    def _note_trained(self, runner: Runner) -> None:
        model = unwrap(runner.model)
        self.trained = [
            h for h, w in model.get_blend_weights().items()
            if w > 0 or h in self.trained
        ]

    def _chosen_heads(self, model) -> List[str]:
        if self.heads == 'all':
            return list(model.head_names)
        if self.heads == 'trained':
            return [h for h in model.head_names if h in self.trained]
        return list(self.heads)

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['prediction_mix'] = dict(trained=list(self.trained))

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('prediction_mix')
        if state is not None and runner._resume:
            self.trained = list(state.get('trained', []))

    def _build_loader(self, runner: Runner):
        cfg = copy.deepcopy(runner.cfg.val_dataloader
                            if self.dataloader == 'val' else self.dataloader)
        # every sample once across processes
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False,
                              round_up=False)
        cfg.pop('batch_sampler', None)
        cfg['persistent_workers'] = False
        return Runner.build_dataloader(cfg, seed=runner.seed)

    def after_train_epoch(self, runner: Runner) -> None:
        # the weights the epoch trained with, whatever hook set them
        # before it (G-Blend, a replay) in this or the other order
        self._note_trained(runner)
        if runner.epoch + 1 >= runner.max_epochs:
            self.fit(runner)

    @torch.no_grad()
    def fit(self, runner: Runner) -> Optional[dict]:
        """Fit, set and log the prediction weights; return the fit."""
        model = unwrap(runner.model)
        self._note_trained(runner)  # and the weights now
        heads = self._chosen_heads(model)
        if len(heads) == 1:
            # nothing to mix (a uni-modal model, naive fusion)
            weights = {h: float(h == heads[0]) for h in model.head_names}
            model.set_prediction_weights(weights, key=f'{KEY} (fitted)')
            runner.logger.info(f'PredictionMixHook: one trained head, '
                               f'{heads[0]}: it is the prediction')
            return dict(weights=weights)
        grid = simplex_grid(len(heads), self.step)
        correct = torch.zeros(len(grid), dtype=torch.float64)
        nll = torch.zeros(len(grid), dtype=torch.float64)
        count = torch.zeros(1, dtype=torch.float64)
        was_training = model.training
        model.eval()
        try:
            for batch in self._build_loader(runner):
                data = model.data_preprocessor(batch, False)
                maps, views = model.extract_feat(data['inputs'])
                labels = stack_labels(data['data_samples'])
                n = len(labels)
                logits = model.head_logits(maps, heads=heads)
                probs = torch.stack([
                    F.softmax(logits[h].reshape((n, views, -1)).double(),
                              dim=2).mean(1) for h in heads
                ])
                c, l = mixture_scores(probs, labels.to(probs.device),
                                      grid.to(probs.device))
                correct += c.cpu()
                nll += l.cpu()
                count += n
        finally:
            model.train(was_training)
        for total in (correct, nll, count):
            all_reduce(total)
        best = best_mixture(correct, nll)
        weights = {h: 0.0 for h in model.head_names}
        weights.update(zip(heads, grid[best].tolist()))
        model.set_prediction_weights(weights, key=f'{KEY} (fitted)')
        one_hot = {h: float(correct[(grid[:, i] == 1).nonzero()[0, 0]] /
                            count) for i, h in enumerate(heads)}
        fit = dict(weights=weights, top1=float(correct[best] / count),
                   head_top1=one_hot, samples=int(count))
        runner.logger.info(
            f'PredictionMixHook: prediction weights '
            + ', '.join(f'{h} {w:.2f}' for h, w in weights.items())
            + f' fitted on {int(count)} held-out samples: top-1 '
            f'{fit["top1"]:.4f} (heads alone: '
            + ', '.join(f'{h} {a:.4f}' for h, a in one_hot.items()) + ')')
        return fit
