"""Stop a run whose training loss stays NaN or inf.

A NaN loss, once back-propagated in full precision, makes every weight NaN;
the run then goes on for hours, logging ``loss: nan`` and saving useless
checkpoints. mmdet's ``CheckInvalidLossHook`` looks only every
``interval`` iterations, asserts on the first bad value and cannot say which
loss term went wrong; under data parallelism a rank that asserts alone
leaves the others waiting in the next collective.
"""
import math
from typing import Dict, List, Optional

import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import Runner

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook']


class NonFiniteLossError(RuntimeError):
    """The training loss was not finite for too many steps in a row."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Log every non-finite training loss; stop after too many in a row.

    After each training iteration it checks the values the model returned
    (``loss``, the total that is optimised, and its terms such as
    ``loss_<head>`` and the monitors ``<head>_ce``). A step counts as
    non-finite when the total is NaN or inf on any process: the flags of all
    values are summed over processes (one small all-reduce per step), so
    every process sees the same count and all stop at the same iteration,
    with no process left waiting. Each such step is logged as a warning
    naming the non-finite values; after ``max_consecutive`` of them in a row
    the run stops with :class:`NonFiniteLossError`, naming the iteration,
    the count and the terms. A finite step resets the count.

    Under mixed precision (``AmpOptimWrapper``) the loss scaler skips steps
    whose *gradients* overflow, and lowers the scale; that is normal and not
    counted here. The loss itself is computed in full precision and is what
    this hook checks.

    Args:
        max_consecutive: Non-finite steps in a row that stop the run;
            ``None`` only logs them.
    """

    priority = 'HIGH'  # before the logger and checkpoint hooks

    def __init__(self, max_consecutive: Optional[int] = 10) -> None:
        if max_consecutive is not None and (
                isinstance(max_consecutive, bool)
                or not isinstance(max_consecutive, int)
                or max_consecutive < 1):
            raise ValueError('NonFiniteLossHook.max_consecutive must be a '
                             f'positive integer or None, got '
                             f'{max_consecutive!r}')
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.first_iter: Optional[int] = None

    def before_train(self, runner: Runner) -> None:
        self.consecutive = 0
        self.first_iter = None

    @staticmethod
    def _non_finite(outputs: Dict[str, torch.Tensor]
                    ) -> Dict[str, List[float]]:
        """``{name: [processes where it is not finite, this process's
        value]}`` of every output, the same names on every process."""
        names = sorted(outputs)
        values = [
            torch.as_tensor(outputs[n]).detach().float().mean()
            for n in names
        ]
        flags = torch.stack([(~torch.isfinite(v)).float() for v in values])
        all_reduce(flags, op='sum')
        return {
            name: [count, value]
            for name, count, value in zip(names, flags.tolist(),
                                          torch.stack(values).tolist())
        }

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not isinstance(outputs, dict) or 'loss' not in outputs:
            return
        checked = self._non_finite(outputs)
        if checked['loss'][0] == 0:
            self.consecutive, self.first_iter = 0, None
            return
        iteration = runner.iter + 1  # as the logger counts
        self.consecutive += 1
        if self.first_iter is None:
            self.first_iter = iteration
        bad = [
            f'{name}={value:g}' if not math.isfinite(value) else
            f'{name} (on another process)'
            for name, (count, value) in checked.items() if count > 0
        ]
        processes = int(checked['loss'][0])
        where = (f' on {processes} of {get_world_size()} processes'
                 if get_world_size() > 1 else '')
        limit = self.max_consecutive or 'never'
        runner.logger.warning(
            f'Non-finite training loss at iteration {iteration} (epoch '
            f'{runner.epoch + 1}){where}, {self.consecutive} in a row (the '
            f'run stops at {limit}): {", ".join(bad)}')
        if self.max_consecutive is not None and \
                self.consecutive >= self.max_consecutive:
            raise NonFiniteLossError(
                f'the training loss was not finite for {self.consecutive} '
                f'consecutive iterations ({self.first_iter} to {iteration}, '
                f'epoch {runner.epoch + 1}): NonFiniteLossHook('
                f'max_consecutive={self.max_consecutive}) stops the run. '
                f'Non-finite at iteration {iteration}: {", ".join(bad)}. '
                'Look for a learning rate that is too high, inputs with NaN '
                'or inf, or a loss term that divides by zero.')
