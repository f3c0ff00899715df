"""Fixes for defects of the pinned platform, applied once on import.

Each fix lives in its own module with the reason it exists:

* :mod:`.drn_stub`: the mmaction2 1.2.0 wheel lacks
  ``mmaction.models.localizers.drn``, so ``import mmaction.models`` fails.
* :mod:`.checkpoint_loading`: torch >= 2.6 loads with ``weights_only=True``,
  which refuses mmengine's own checkpoints (resume, ``load_from``).
* :mod:`.distributed`: mmengine's launch path assumes CUDA; multi-process
  training on CPU (gloo) needs another process-group init and
  ``device_ids=None`` for the DDP wrapper.
* :mod:`.process_exit`: a rank of a finished 2-process CPU run sometimes
  aborts in the interpreter's teardown; the scripts leave without it (not
  applied on import: a script calls it at its end).
* :mod:`.distutils_errors`: Python 3.12 has no ``distutils``, which
  mmengine's environment report (every Runner) imports; a stand-in where
  setuptools does not provide one.

Every fix is idempotent and leaves a platform that does not need it alone.
"""
from .checkpoint_loading import register_restricted_checkpoint_loader
from .distributed import (AnyDeviceDistributedDataParallel,
                          end_process_group, patch_cpu_process_group_init)
from .distutils_errors import install_distutils_errors_if_missing
from .drn_stub import install_drn_stub_if_missing
from .process_exit import exit_without_teardown


def apply_platform_fixes() -> None:
    """Apply every fix; safe to call more than once."""
    install_drn_stub_if_missing()
    register_restricted_checkpoint_loader()
    patch_cpu_process_group_init()
    install_distutils_errors_if_missing()


__all__ = [
    'apply_platform_fixes', 'install_drn_stub_if_missing',
    'register_restricted_checkpoint_loader', 'patch_cpu_process_group_init',
    'install_distutils_errors_if_missing', 'AnyDeviceDistributedDataParallel',
    'end_process_group', 'exit_without_teardown'
]
