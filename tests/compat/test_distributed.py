"""Multi-process pieces on CPU: the gloo fallback and the DDP wrapper."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.dist import utils as dist_utils

from mmaction_gblend.compat.distributed import AnyDeviceDistributedDataParallel
from helpers import free_port


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the fallback is for machines without CUDA')
def test_launcher_falls_back_to_gloo_without_cuda():
    # mmengine's own initialiser calls torch.cuda.set_device and fails here
    code = textwrap.dedent(f"""
        import os
        os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                          MASTER_ADDR='127.0.0.1',
                          MASTER_PORT='{free_port()}')
        import sys
        if sys.argv[1] == 'plugin':
            import mmaction_gblend
        import torch.distributed as dist
        from mmengine.dist import init_dist
        init_dist('pytorch', backend='nccl')
        print('backend', dist.get_backend())
    """)
    plain = subprocess.run([sys.executable, '-c', code, 'plain'],
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0 and 'cuda' in plain.stderr.lower()
    patched = subprocess.run([sys.executable, '-c', code, 'plugin'],
                             capture_output=True, text=True, timeout=300)
    assert patched.returncode == 0, patched.stderr
    assert 'backend gloo' in patched.stdout


def test_patch_is_idempotent():
    from mmaction_gblend.compat import patch_cpu_process_group_init
    before = dist_utils._init_dist_pytorch
    patch_cpu_process_group_init()
    assert dist_utils._init_dist_pytorch is before


def test_wrapper_drops_device_ids_for_cpu_modules(tmp_path):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        model = torch.nn.Linear(3, 2)
        # the Runner passes device_ids=[LOCAL_RANK]; plain DDP rejects that
        # for a CPU module
        wrapped = AnyDeviceDistributedDataParallel(
            module=model, device_ids=[0], broadcast_buffers=False)
        assert wrapped.device_ids is None
        assert wrapped(torch.ones(1, 3)).shape == (1, 2)
    finally:
        dist.destroy_process_group()


def test_runner_finds_the_wrapper_by_name():
    # Runner.wrap_model resolves model_wrapper_cfg.type on the root registry
    from mmengine.model import is_model_wrapper
    from mmengine.registry import MODEL_WRAPPERS
    assert MODEL_WRAPPERS.get('AnyDeviceDistributedDataParallel') is \
        AnyDeviceDistributedDataParallel
    assert issubclass(AnyDeviceDistributedDataParallel,
                      torch.nn.parallel.DistributedDataParallel)
    assert is_model_wrapper.__module__.startswith('mmengine')


def test_end_process_group_destroys_the_group_and_is_safe_without_one(
        tmp_path):
    import torch.distributed as dist

    from mmaction_gblend.compat import end_process_group
    end_process_group()  # a one-process run has no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    end_process_group()
    assert not dist.is_initialized()
