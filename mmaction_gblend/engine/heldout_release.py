"""Returning G-Blend's held-out samples to training after its last estimate.

With ``GradientBlendingHook(release_heldout=True)`` the held-out set V
trains too once no estimate needs it: the runner's training loader is
replaced by one of the whole training set (the split's ``part='all'``),
built from the same ``train_dataloader`` config with the runner's seed.

Iteration-based parameter schedulers (``by_epoch=False``, which is what
``convert_to_iter_based=True`` makes of an epoch-based one) count their
iterations with the epoch length the runner had when it built them, the
training part's. The whole set's epochs are longer, so such a scheduler
would end early after the release: :func:`check_schedulers_for_release`
refuses one that is still running at the release. A release at epoch 0
(the offline shadow estimate, made before any step) rebuilds the
schedulers instead (:func:`rebuild_param_schedulers`), so any schedule
works there.
"""
import copy
from typing import Optional, Tuple

from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.runner import Runner

from .blend_schedule import HOOK_KEY
from .shadow_training import flatten_schedulers, set_sampler_epoch

__all__ = [
    'RELEASE_KEY', 'HeldOutRelease', 'check_release_option', 'check_schedulers_for_release',
    'release_heldout', 'rebuild_param_schedulers', 'shutdown_workers',
    'whole_set_dataloader_config'
]

#: Where the option is in a config, for messages.
RELEASE_KEY = f'{HOOK_KEY}.release_heldout'


def check_release_option(release: bool, mode: str,
                         exclude_heldout: Optional[bool]) -> None:
    """Check ``release_heldout`` against the hook's other options (as
    given: ``exclude_heldout=None`` is the hook's default).

    Raises:
        ValueError: A release outside ``online`` and ``offline``, or with
            ``exclude_heldout=False`` (V then trains from the start).
    """
    if not release:
        return
    if mode not in ('online', 'offline'):
        raise ValueError(f"{RELEASE_KEY} is for mode='online' or "
                         f"'offline' (no held-out set in mode={mode!r})")
    if exclude_heldout is False:
        raise ValueError(f'{RELEASE_KEY} returns the held-out samples to '
                         'training after the last estimate; it needs '
                         'exclude_heldout=True (without it they train from '
                         'the start)')


def check_schedulers_for_release(schedulers, release_epoch: int,
                                 epoch_length: int) -> None:
    """Refuse iteration-based schedulers still running at the release.

    Args:
        schedulers: The runner's ``param_schedulers`` (built).
        release_epoch: The epoch from which V trains.
        epoch_length: Iterations of an epoch of the training part.

    Raises:
        ValueError: Naming ``param_scheduler`` and the schedulers that end
            after iteration ``release_epoch * epoch_length``. A release at
            epoch 0 passes: the schedulers are rebuilt then.
    """
    if release_epoch == 0:
        return
    release_iter = release_epoch * epoch_length
    late = [s for s in flatten_schedulers(schedulers)
            if not s.by_epoch and s.end > release_iter]
    if late:
        names = ', '.join(
            f'{type(s).__name__}(' +
            ('no end' if s.end >= INF else f'end=iteration {s.end}') + ')'
            for s in late)
        raise ValueError(
            f'{RELEASE_KEY}: param_scheduler has iteration-based schedulers '
            f'that run past the release of the held-out samples at epoch '
            f'{release_epoch} (iteration {release_iter}): {names}. Their '
            f'iterations were counted with the training part\'s '
            f'{epoch_length} iterations an epoch, and the whole set\'s '
            'epochs are longer, so they would end early. Make them '
            'epoch-based (by_epoch=True, no convert_to_iter_based), end them '
            f'by epoch {release_epoch}, or set release_heldout=False')


def shutdown_workers(loader) -> None:
    """Stop a loader's persistent workers (a no-op without them); the
    loader starts new ones if it is iterated again."""
    iterator = getattr(loader, '_iterator', None)
    if iterator is not None:
        shutdown = getattr(iterator, '_shutdown_workers', None)
        if shutdown is not None:
            shutdown()
        loader._iterator = None


def rebuild_param_schedulers(runner: Runner) -> None:
    """Build the runner's schedulers again from ``param_scheduler``, with
    the current loader's epoch length; only before the first step.

    Each scheduler stepped once when built, from the value it recorded as
    ``initial_<param>``; those values are put back first, so the new ones
    start from where the old ones did.
    """
    schedulers = flatten_schedulers(runner.param_schedulers)
    if not schedulers:
        return
    for scheduler in schedulers:
        for group in scheduler.optimizer.param_groups:
            group[scheduler.param_name] = \
                group[f'initial_{scheduler.param_name}']
    runner.param_schedulers = runner.build_param_scheduler(
        copy.deepcopy(runner.cfg.param_scheduler))


def release_heldout(runner: Runner, dataloader_cfg: dict,
                    rebuild_schedulers: bool = False) -> Tuple[int, int]:
    """Replace the runner's training loader by one of ``dataloader_cfg``.

    Built as mmengine's loop builds its own (the runner's seed,
    ``randomness.diff_rank_seed``), its sampler set to the current epoch;
    the old loader's persistent workers are shut down. The loop's
    ``max_iters`` (the log's ETA) and the optimizer wrapper's count (the
    last gradient accumulation) are updated for the longer epochs.
    Every process does the same.

    Args:
        runner: The runner, at the start of a training epoch.
        dataloader_cfg: ``train_dataloader`` with the whole training set.
        rebuild_schedulers: Build the schedulers again for the new epoch
            length (:func:`rebuild_param_schedulers`; before the first step
            only).

    Returns:
        The sizes of the old and the new training set.
    """
    loop = runner.train_loop
    old = loop.dataloader
    new = runner.build_dataloader(
        dataloader_cfg, seed=runner.seed,
        diff_rank_seed=runner._randomness_cfg.get('diff_rank_seed', False))
    # DistSamplerSeedHook has run for this epoch already, on the old loader
    set_sampler_epoch(new, runner.epoch)
    shutdown_workers(old)
    loop.dataloader = new
    loop._max_iters = runner.iter + (loop.max_epochs - runner.epoch) * len(
        new)
    runner.optim_wrapper.initialize_count_status(runner.model, runner.iter,
                                                 loop.max_iters)
    if rebuild_schedulers:
        rebuild_param_schedulers(runner)
    return len(old.dataset), len(new.dataset)


def whole_set_dataloader_config(train_dataloader: dict,
                                split: dict) -> dict:
    """``train_dataloader`` with the whole training set: ``split`` (a
    ``HeldOutSplitDataset`` config of the training part) with
    ``part='all'``."""
    cfg = copy.deepcopy(train_dataloader)
    cfg['dataset'] = dict(copy.deepcopy(split), part='all')
    if cfg['dataset'].get('subset') is not None:
        raise ValueError(f'{RELEASE_KEY}: train_dataloader.dataset trains on '
                         'a subset (HeldOutSplitDataset.subset); the release '
                         'would add samples that never trained')
    return cfg


class HeldOutRelease:
    """When V joins training (``release_heldout``), and whether it has in
    this process."""

    def __init__(self) -> None:
        self.epoch: Optional[int] = None
        self.loader_cfg: Optional[dict] = None
        self.released = False

    def plan(self, runner: Runner, split: dict, epoch: int) -> None:
        """From ``epoch`` on, train on ``split``'s whole set; schedulers
        the release would cut short are refused now, before training."""
        if split.get('part', 'train') == 'all':
            runner.logger.warning(
                f'{RELEASE_KEY}: the main run trains on the whole training '
                'set already; there is nothing to release')
            return
        self.epoch = epoch
        self.loader_cfg = whole_set_dataloader_config(
            runner.cfg.train_dataloader, split)
        check_schedulers_for_release(runner.param_schedulers, epoch,
                                     len(runner.train_dataloader))

    def due(self, runner: Runner) -> bool:
        """From the release epoch on (a resumed run: at its first epoch)."""
        return self.epoch is not None and not self.released and \
            runner.epoch >= self.epoch

    def release(self, runner: Runner) -> Tuple[int, int]:
        """Train on the whole set from now; the sizes before and after."""
        self.released = True
        return release_heldout(
            runner, self.loader_cfg,
            rebuild_schedulers=self.epoch == 0 and runner.iter == 0)
