"""Make mmengine's Runner load local checkpoints on torch >= 2.6.

mmengine 0.10.7's ``load_from_local`` calls ``torch.load`` without
``weights_only``; torch 2.6 made ``True`` the default, which refuses the
``HistoryBuffer`` objects and numpy arrays of mmengine's own checkpoints, so
``--resume`` and ``load_from`` fail (open-mmlab/mmengine#1655). mmengine's
fix after 0.10.7 passes ``weights_only=False``, which runs any code a file
carries. We register a loader under the same scheme that uses the restricted
unpickler of :mod:`mmaction_gblend.checkpoint` instead: mmengine's
checkpoints load, crafted ones are refused.
"""
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import load_checkpoint_file


def load_from_local(filename, map_location):
    """Load a local checkpoint with the restricted unpickler.

    The name matches mmengine's, whose log prints it.
    """
    return load_checkpoint_file(filename, map_location=map_location)


def register_restricted_checkpoint_loader() -> None:
    """Register :func:`load_from_local` for plain paths (idempotent)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
