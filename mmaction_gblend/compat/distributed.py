"""Multi-process training on CPU as well as on GPU.

mmengine 0.10.7 assumes CUDA on the ``pytorch`` launcher path (torchrun,
``tools/dist_train.sh``):

* ``_init_dist_pytorch`` calls ``torch.cuda.set_device(LOCAL_RANK)``
  unconditionally, which raises on a CPU-only torch, and mmaction's default
  runtime asks for the ``nccl`` backend;
* ``Runner.wrap_model`` builds the DDP wrapper with
  ``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` rejects for
  a module on the CPU.

:func:`patch_cpu_process_group_init` makes the launcher start a ``gloo``
process group when no CUDA device exists (and changes nothing when one
does). :class:`AnyDeviceDistributedDataParallel` is the stock
``MMDistributedDataParallel`` except that it drops ``device_ids`` for a CPU
module; our runtime config selects it through ``model_wrapper_cfg``.
:func:`end_process_group` ends a run's process group in order; mmengine
leaves that to the interpreter's exit.
"""
import functools
from typing import Optional, Sequence

import torch
import torch.distributed as torch_dist
from mmengine.dist import utils as dist_utils
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
# The root registry, not mmaction's child: Runner.wrap_model looks the type
# up with MODEL_WRAPPERS.get, which does not search child registries.
from mmengine.registry import MODEL_WRAPPERS

_PATCHED_ATTR = '_mmaction_gblend_cpu_aware'


def _cuda_usable() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() > 0


def patch_cpu_process_group_init() -> None:
    """Let mmengine's ``pytorch`` launcher start on machines without CUDA.

    Without CUDA the patched initialiser skips ``torch.cuda.set_device`` and
    replaces the ``nccl`` backend, which needs CUDA, by ``gloo``. With CUDA it
    calls mmengine's own initialiser unchanged. Idempotent.
    """
    original = dist_utils._init_dist_pytorch
    if getattr(original, _PATCHED_ATTR, False):
        return

    @functools.wraps(original)
    def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if _cuda_usable() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        if backend in (None, 'nccl'):
            print_log(
                f'No CUDA device: starting the process group with gloo '
                f'instead of {backend}.', logger='current')
            backend = 'gloo'
        torch_dist.init_process_group(backend=backend, **kwargs)

    setattr(init_dist_pytorch, _PATCHED_ATTR, True)
    dist_utils._init_dist_pytorch = init_dist_pytorch


def end_process_group() -> None:
    """Wait for every rank, then destroy the default process group.

    mmengine never destroys the process group it starts, which torch's
    documentation asks for at the end of a run. Does nothing when no process
    group exists (one-process runs). It does not stop the abort some ranks
    meet in the interpreter's teardown; :mod:`.process_exit` does.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps CPU modules.

    ``DistributedDataParallel`` needs ``device_ids=None`` for a module on the
    CPU, but the Runner passes ``[LOCAL_RANK]``. This wrapper drops them for a
    CPU module and keeps them otherwise, so one config trains on CPU (gloo)
    and on GPUs (nccl).

    Args:
        module: The model to wrap.
        device_ids: As for ``DistributedDataParallel``; ignored for a module
            whose parameters are on the CPU.
        **kwargs: Passed to ``MMDistributedDataParallel``.
    """

    def __init__(self,
                 module: torch.nn.Module,
                 device_ids: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        first = next(module.parameters(), None)
        if first is None or first.device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
