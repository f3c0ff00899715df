"""When G-Blend estimates its weights, and over how many epochs (pure)."""
from typing import List, NamedTuple, Optional

from ..utils.choices import check_choice

MODES = ('online', 'offline', 'fixed', 'replay')
ESTIMATORS = ('trajectory', 'shadow', 'first_order')
#: Estimators that measure at the start of the super-epoch they set the
#: weights for (from the model as it is); the others at its end.
AT_START = ('shadow', 'first_order')
#: Where the hook's arguments are in a config, for error messages.
HOOK_KEY = 'custom_hooks[GradientBlendingHook]'


class Estimate(NamedTuple):
    """One planned estimate.

    Attributes:
        epoch: Completed training epochs when it happens. ``trajectory``
            estimates after that many epochs (from the change over the
            ``horizon`` epochs before); ``shadow`` estimates before training
            epoch ``epoch`` by training copies for ``horizon`` epochs.
        horizon: Epochs the estimate spans (the super-epoch).
    """
    epoch: int
    horizon: int


def blend_schedule(mode: str,
                   estimator: str,
                   max_epochs: int,
                   warmup_epochs: int,
                   super_epochs: int,
                   offline_horizon: Optional[int] = None) -> List[Estimate]:
    """Plan the estimates of a run (Wang et al. 2020, Algorithms 2 and 3).

    * ``online``: a warm-up super-epoch of ``warmup_epochs`` (the paper:
      10), then one every ``super_epochs`` (the paper: 5).
    * ``offline`` (Algorithm 2): one estimate, then fixed weights. With
      ``shadow`` (or ``first_order``), from the initial model over the whole training
      (``w = GB_Estimate(phi_0, N)``, the paper's N = ``max_epochs``), or
      over ``offline_horizon`` epochs, a cheaper, shorter horizon. With
      ``trajectory`` (no shadow copies), after the warm-up, from the
      change over it: a cheap variant, not Algorithm 2.
    * ``fixed`` and ``replay`` (a recorded schedule,
      :mod:`~mmaction_gblend.engine.weight_replay`): none.

    With ``shadow`` (the paper's Algorithm 1) and ``first_order`` each
    estimate happens at the start of the super-epoch it sets the weights for, from epoch 0 on; with
    ``trajectory`` at the end of the super-epoch it measured, so the
    warm-up trains with the initial weights. The last super-epoch may be
    shorter when ``max_epochs`` cuts it; an estimate after the last epoch
    would change nothing and is not planned.

    Raises:
        ValueError: an unknown mode or estimator, non-positive lengths, or a
            warm-up that is not shorter than the training (for
            ``trajectory``: no estimate would ever be used); the message
            names the key. ``offline_horizon`` outside ``[1, max_epochs]``
            or given for another mode or estimator.
    """
    check_choice(f'{HOOK_KEY}.mode', mode, MODES)
    check_choice(f'{HOOK_KEY}.estimator', estimator, ESTIMATORS)
    if mode in ('fixed', 'replay'):
        return []
    for key, value in (('train_cfg.max_epochs', max_epochs),
                       (f'{HOOK_KEY}.warmup_epochs', warmup_epochs),
                       (f'{HOOK_KEY}.super_epochs', super_epochs)):
        if int(value) != value or value <= 0:
            raise ValueError(
                f'{key} must be a positive integer, got {value!r}')
    if estimator == 'trajectory' and warmup_epochs >= max_epochs:
        raise ValueError(
            f'{HOOK_KEY}.warmup_epochs={warmup_epochs} must be shorter than '
            f'the training (train_cfg.max_epochs={max_epochs}): the '
            'trajectory estimator estimates after the warm-up')
    if estimator in AT_START and mode == 'online' and \
            warmup_epochs > max_epochs:
        raise ValueError(
            f'{HOOK_KEY}.warmup_epochs={warmup_epochs} is longer than the '
            f'training (train_cfg.max_epochs={max_epochs})')
    if offline_horizon is not None:
        if mode != 'offline' or estimator not in AT_START:
            raise ValueError(
                f'{HOOK_KEY}.offline_horizon is for mode=\'offline\' with '
                f'estimator in {AT_START} (the trajectory estimator\'s '
                'horizon is warmup_epochs)')
        if int(offline_horizon) != offline_horizon or \
                not 1 <= offline_horizon <= max_epochs:
            raise ValueError(
                f'{HOOK_KEY}.offline_horizon must be an integer in '
                f'[1, train_cfg.max_epochs={max_epochs}], got '
                f'{offline_horizon!r}')
    if mode == 'offline' and estimator in AT_START:
        return [Estimate(0, int(offline_horizon or max_epochs))]
    starts = [0, warmup_epochs]
    if mode == 'online':
        while starts[-1] + super_epochs < max_epochs:
            starts.append(starts[-1] + super_epochs)
    plan = []
    for start, end in zip(starts, starts[1:] + [max_epochs]):
        end = min(end, max_epochs)
        if estimator in AT_START and start < max_epochs:
            plan.append(Estimate(start, end - start))
        elif estimator == 'trajectory' and start > 0 and start < max_epochs:
            previous = starts[starts.index(start) - 1]
            plan.append(Estimate(start, start - previous))
    if mode == 'offline':
        plan = plan[:1]
    return plan
