"""The GPU check's ``environment`` step: versions and origins of every
module, the GPUs, NCCL, the torch APIs the plugin relies on, a CUDA matmul
and a checkpoint round trip through the plugin's restricted loader."""
import argparse
import datetime
import importlib
import os
import os.path as osp
import platform
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

from gpu_check.common import MIB, REPO, write_json

#: Imported: what the plugin's trainings import.
MODULES = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmaction',
           'mmaction_gblend', 'decord', 'av', 'librosa')
#: Only their versions and places, read from their metadata (cheaper).
DISTRIBUTIONS = ('soundfile', 'soxr', 'audioread', 'numba', 'scipy',
                 'scikit-learn', 'opencv-python-headless', 'opencv-python',
                 'matplotlib', 'pillow', 'pyyaml', 'importlib-metadata',
                 'setuptools', 'addict', 'yapf', 'termcolor', 'cffi')
#: What the plugin and mmengine 0.10.7 take from torch.
TORCH_APIS = ('torch._weights_only_unpickler._get_allowed_globals',
              'torch.cuda.amp.GradScaler', 'torch.amp.GradScaler',
              'torch.autocast', 'torch._foreach_mul_')


def _in_site(path: str, site: str) -> bool:
    """Whether ``path`` is, or lies in, the wheel folder's install."""
    if not site:
        return False
    path, site = osp.abspath(path), osp.abspath(site)
    return path == site or path.startswith(site + os.sep)


def _origin(path: str, site: str) -> str:
    """'wheel folder', 'repository' or the folder a module came from."""
    path = osp.abspath(path) if path else ''
    if path and _in_site(path, site):
        return 'wheel folder'
    if path.startswith(REPO + os.sep):
        return 'repository'
    return osp.dirname(osp.dirname(path)) if path else 'built-in'


def _check(results: List[dict], name: str, fn: Callable[[], object],
           essential: bool = True) -> None:
    """Run one probe; record ok, its value or the error."""
    try:
        value = fn()
        results.append(dict(check=name, ok=True, value=value,
                            essential=essential))
    except Exception as err:  # noqa: BLE001 (recorded, not raised)
        results.append(dict(check=name, ok=False, error=repr(err)[-600:],
                            essential=essential))


def versions_and_origins(site: str, checks: List[dict]
                         ) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Import :data:`MODULES` (a failure is a failed check) and read the
    metadata of :data:`DISTRIBUTIONS`."""
    from importlib import metadata
    versions, origins = {}, {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001
            checks.append(dict(check=f'import {name}', ok=False,
                               error=repr(err)[-600:], essential=True))
            continue
        versions[name] = str(getattr(module, '__version__', '?'))
        origins[name] = _origin(getattr(module, '__file__', None), site)
    for name in DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        versions[name] = dist.version
        where = osp.abspath(str(dist.locate_file('')))
        origins[name] = 'wheel folder' if _in_site(
            where, site) else where
    return versions, origins


def _has_attribute(path: str) -> bool:
    obj = importlib.import_module(path.split('.')[0])
    for part in path.split('.')[1:]:
        obj = getattr(obj, part)
    return True


def _distutils() -> str:
    name = importlib.import_module('distutils.errors').__name__
    stand_in = getattr(sys.modules['distutils'], '_mmaction_gblend_stand_in',
                       False)
    return name + (" (the plugin's stand-in)" if stand_in else '')


def api_checks(checks: List[dict]) -> None:
    """The torch APIs, distutils (Python 3.12), pkg_resources and gloo."""
    import torch
    for api in TORCH_APIS:
        _check(checks, api, lambda api=api: _has_attribute(api))
    _check(checks, 'torch.distributed.run',
           lambda: bool(importlib.import_module('torch.distributed.run')))
    _check(checks, 'distutils.errors (mmengine collect_env, every Runner)',
           _distutils)
    _check(checks, "pkg_resources (mmengine, only for 'mmaction::' "
           'configs)', lambda: bool(importlib.import_module('pkg_resources')),
           essential=False)
    _check(checks, 'gloo available',
           lambda: torch.distributed.is_gloo_available())


def _devices(cuda: dict) -> int:
    import torch
    assert torch.cuda.is_available(), 'torch sees no CUDA device'
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append(dict(name=p.name, capability=f'{p.major}.{p.minor}',
                        total_mib=round(p.total_memory / MIB)))
    cuda['devices'] = out
    return len(out)


def _nccl_version(cuda: dict) -> str:
    import torch
    v = torch.cuda.nccl.version()
    cuda['nccl'] = '.'.join(map(str, v)) if isinstance(v, tuple) else str(v)
    return cuda['nccl']


def _matmul() -> str:
    """A 2048² fp16 matmul, timed over ten."""
    import torch
    x = torch.randn(2048, 2048, device='cuda', dtype=torch.float16)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        y = x @ x
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 10
    assert torch.isfinite(y).all()
    return f'{2 * 2048 ** 3 / seconds / 1e12:.1f} TFLOP/s fp16'


def cuda_checks(checks: List[dict], cuda: dict) -> None:
    """The GPUs, NCCL and its version, cuDNN and a matmul."""
    import torch
    _check(checks, 'CUDA devices', lambda: _devices(cuda))
    _check(checks, 'NCCL available',
           lambda: torch.distributed.is_nccl_available())
    _check(checks, 'NCCL version', lambda: _nccl_version(cuda))
    cuda['cudnn'] = torch.backends.cudnn.version() \
        if torch.backends.cudnn.is_available() else None
    _check(checks, 'CUDA matmul', _matmul)


def checkpoint_round_trip(device: str) -> str:
    """An mmengine-like checkpoint (tensors on the device, numpy arrays, a
    HistoryBuffer) saved with torch.save and read back through mmengine's
    CheckpointLoader, i.e. the plugin's restricted loader."""
    import numpy as np
    import torch
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    buf = HistoryBuffer()
    buf.update(1.5)
    ckpt = dict(state_dict=dict(w=torch.arange(4.0, device=device)),
                meta=dict(seed=np.int64(3), arr=np.arange(3)),
                message_hub=dict(log_scalars={'loss': buf}))
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'epoch_1.pth')
        torch.save(ckpt, path)
        loaded = CheckpointLoader.load_checkpoint(
            path, map_location=lambda storage, loc: storage)
    assert torch.equal(loaded['state_dict']['w'].cpu(), torch.arange(4.0))
    assert loaded['message_hub']['log_scalars']['loss'].current() == 1.5
    loader = CheckpointLoader._schemes['']
    return f'ok through {loader.__module__}.{loader.__name__}'


def _print_summary(info: dict) -> None:
    for c in info['checks']:
        print(f'{"ok  " if c["ok"] else "FAIL"} {c["check"]}: '
              f'{c.get("value", c.get("error"))}')
    print('versions: ' + ', '.join(
        f'{k} {v}' for k, v in info['versions'].items()))
    print('from the wheel folder: ' + ', '.join(
        k for k, v in info['origins'].items() if v == 'wheel folder'))


def environment(args: argparse.Namespace) -> int:
    """Probe everything, write ``--out``; 0 when every essential probe
    passed."""
    info = dict(python=platform.python_version(), executable=sys.executable,
                platform=platform.platform(), cpu_count=os.cpu_count(),
                date=datetime.datetime.now().astimezone().isoformat(
                    timespec='seconds'),
                pythonpath=os.environ.get('PYTHONPATH', ''))
    checks: List[dict] = []
    versions, origins = versions_and_origins(args.site, checks)
    info.update(versions=versions, origins=origins)
    api_checks(checks)
    import torch
    cuda = dict(available=torch.cuda.is_available(),
                torch_cuda=torch.version.cuda)
    if args.device == 'cuda':
        cuda_checks(checks, cuda)
    _check(checks, f'checkpoint round trip ({args.device})',
           lambda: checkpoint_round_trip(args.device))
    failed = [c for c in checks if not c['ok'] and c['essential']]
    info.update(cuda=cuda, checks=checks, passed=not failed)
    write_json(args.out, info)
    _print_summary(info)
    return 0 if not failed else 1
