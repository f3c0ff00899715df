"""Seeds the random generators at the start of every training epoch, so that
a resumed run draws the same random numbers as an uninterrupted one.

mmengine seeds Python's, NumPy's and torch's generators once, when the
Runner is built, and keeps no generator state in checkpoints. A run resumed
at epoch ``e`` therefore trains epoch ``e`` with the generators as they were
at epoch 0: other dropout masks, other crops and flips, other OPM drops; its
weights and G-Blend's estimates drift away from the uninterrupted run's.
Saving the generators' state in the checkpoint would not be enough either:
the epoch's checkpoint is written before that epoch's validation, whose
data loaders also draw from torch's generator.
"""
import random

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import Runner

__all__ = ['EpochSeedHook', 'epoch_seed']


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of ``epoch`` in a run seeded ``seed``: 32 bits, and
    independent streams for different epochs (not ``seed + epoch``, which
    gives run ``s``'s epoch 1 the stream of run ``s + 1``'s epoch 0).

    Args:
        seed: The run's seed (``runner.seed``; per process when
            ``randomness.diff_rank_seed``).
        epoch: 0-based epoch.
    """
    sequence = np.random.SeedSequence([seed % 2**64, epoch])
    return int(sequence.generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seeds ``random``, NumPy and torch (CPU and CUDA) from
    ``(runner.seed, epoch)`` before each training epoch.

    Every epoch then draws the same random numbers whether the run went
    through or was resumed from the previous epoch's checkpoint: dropout,
    data augmentation in the main process and in non-persistent loader
    workers, OPM, G-Blend's shadow training. The plugin's runtime config
    (``configs/_base_/default_runtime.py``) has it in ``default_hooks``;
    for other configs add ``default_hooks =
    dict(epoch_seed=dict(type='EpochSeedHook'))``. It runs first
    (``HIGHEST``), before any hook that draws random numbers in
    ``before_train_epoch``. Epoch-based loops only: an iteration-based loop
    runs ``before_train_epoch`` once.

    Persistent loader workers (``persistent_workers=True`` with
    ``num_workers > 0``) keep their own generators from epoch to epoch and
    get new ones after a resume, so augmentation done in them differs after
    a resume; the hook warns when it resumes such a run.
    """
    priority = 'HIGHEST'

    def before_train(self, runner: Runner) -> None:
        loader = runner.train_dataloader
        if runner.epoch > 0 and getattr(loader, 'persistent_workers', False) \
                and getattr(loader, 'num_workers', 0) > 0:
            runner.logger.warning(
                'EpochSeedHook: the training loader\'s persistent workers '
                'keep their random state across epochs and start afresh '
                'after a resume, so random data augmentation from here on '
                'differs from an uninterrupted run\'s; set '
                'train_dataloader.persistent_workers=False (or '
                'num_workers=0) for an exact resume')

    def before_train_epoch(self, runner: Runner) -> None:
        seed = epoch_seed(runner.seed, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # also every CUDA device's generator
