"""Faults on purpose, for testing interrupted runs: a hook and a transform
that kill their own process with SIGKILL at a chosen point of training.

Import it to register its modules (``custom_imports=dict(imports=[
'mmaction_gblend', 'fault_injection'])``, with this folder on the training
process's ``PYTHONPATH``); the plugin does not. Each kills once: before
dying it creates a marker file, and while the marker exists it does
nothing, so the run resumed from the same config goes on to the end.
SIGKILL cannot be caught: no ``finally`` block, no exit hook and no
checkpoint-on-exit runs, as when the machine runs out of memory or a
scheduler evicts the job.
"""
import os
import os.path as osp
import signal
from typing import Dict, Optional

from mmaction.registry import HOOKS, TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.hooks import Hook

# Samples seen by the SigkillTransforms of this process, per marker.
_seen: Dict[str, int] = {}


def kill_once(marker: str) -> None:
    """SIGKILL this process unless ``marker`` exists; create it first.

    Args:
        marker: The file that records the kill, so it happens once.
    """
    if osp.exists(marker):
        return
    # The marker is written before the kill: a resumed run must not die
    # again. Closing the file hands it to the OS, which SIGKILL keeps.
    with open(marker, 'w') as f:
        f.write(f'{os.getpid()}\n')
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class SigkillHook(Hook):
    """Kills the training process once, mid-epoch or at an epoch's end.

    Args:
        marker: File recording the kill (see :func:`kill_once`).
        epoch: 0-based epoch to die in.
        iteration: 0-based iteration of that epoch to die before (after the
            previous iteration's update); ``None`` dies in
            ``after_train_epoch`` instead, where the hook's priority (set
            ``priority`` in its config) decides which other hooks ran
            first: e.g. ``'LOW'`` dies after GradientBlendingHook recorded
            its estimate and before CheckpointHook saved the epoch.
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 marker: str,
                 epoch: int,
                 iteration: Optional[int] = None) -> None:
        self.marker = marker
        self.epoch = epoch
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.iteration is not None and runner.epoch == self.epoch and \
                batch_idx == self.iteration:
            kill_once(self.marker)

    def after_train_epoch(self, runner) -> None:
        if self.iteration is None and runner.epoch == self.epoch:
            kill_once(self.marker)


@TRANSFORMS.register_module()
class SigkillTransform(BaseTransform):
    """Passes samples through, and kills the process at the ``after + 1``-th
    sample that the transforms with this ``marker`` see in that process
    (once, see :func:`kill_once`).

    Put it in a pipeline to die while that pipeline's loader runs, e.g.
    ``GradientBlendingHook.measure_pipeline`` to die during an estimate.
    The count is per process, over every copy of the transform with the
    same marker (each loader builds its own pipeline), so count samples in
    the main process (``num_workers=0``): a worker process counts on its
    own.

    Args:
        marker: File recording the kill.
        after: Samples let through first.
    """

    def __init__(self, marker: str, after: int = 0) -> None:
        self.marker = marker
        self.after = after

    def transform(self, results: dict) -> dict:
        _seen[self.marker] = _seen.get(self.marker, 0) + 1
        if _seen[self.marker] > self.after:
            kill_once(self.marker)
        return results
