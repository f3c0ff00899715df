"""The steps of ``tools/gpu_check.py`` that run Python of their own.

    python tools/gpu_check_worker.py install --wheels .whl --site DIR
    python tools/gpu_check_worker.py environment --device cuda --out env.json
    python tools/gpu_check_worker.py bench --out bench.json --data-root DIR

``install`` uses the standard library and pip only (nothing else is there
before it); ``environment`` and ``bench`` import torch, mmengine, mmaction2
and the plugin, from the wheel folder's install when ``PYTHONPATH`` names it.
"""
import argparse
import datetime
import gc
import glob
import importlib
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH_DIR = osp.join(REPO, 'benchmarks')
MIB = 1024.0 * 1024.0
#: Wheels never installed from the folder: the machine's own CUDA stack.
NEVER_INSTALL = ('torch-', 'torchvision-', 'torchaudio-', 'triton-',
                 'nvidia_')


def write_json(path: str, data: dict) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(path + '.tmp', path)


# install ---------------------------------------------------------------------


def install(args) -> int:
    """The wheel folder into ``--site`` on top of the machine's torch."""
    wheels = sorted(glob.glob(osp.join(args.wheels, '*.whl')))
    refused = [w for w in wheels
               if osp.basename(w).lower().startswith(NEVER_INSTALL)]
    wheels = [w for w in wheels if w not in refused]
    for w in refused:
        print(f'refusing {osp.basename(w)}: the machine\'s own torch and '
              'CUDA libraries are used')
    if not wheels:
        print(f'no wheels in {args.wheels}: run tools/gpu_check.sh --prepare '
              'on a machine with network first, and carry the folder')
        return 1
    manifest = osp.join(args.wheels, 'MANIFEST.json')
    if osp.isfile(manifest):
        with open(manifest) as f:
            expected = {w['file'] for w in json.load(f)['wheels']}
        have = {osp.basename(w) for w in wheels}
        if expected - have:
            print(f'missing from the folder (MANIFEST.json lists them): '
                  f'{sorted(expected - have)}')
    start = time.monotonic()
    cmd = [sys.executable, '-m', 'pip', 'install', '-q', '--no-index',
           '--no-deps', '--no-compile', '--no-cache-dir', '--upgrade',
           '--disable-pip-version-check', '--target', args.site] + wheels
    print('$ ' + ' '.join(cmd[:12]) + f' ... ({len(wheels)} wheels)',
          flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        return proc.returncode
    print(f'installed {len(wheels)} wheels into {args.site} in '
          f'{time.monotonic() - start:.1f} s')
    if osp.isdir(osp.join(args.site, 'torch')):
        print(f'ERROR: {args.site} holds a torch package')
        return 1
    probe = subprocess.run(
        [sys.executable, '-c', 'import torch; print(torch.__version__, '
         'torch.__file__)'], capture_output=True, text=True)
    print(f'torch used: {probe.stdout.strip() or probe.stderr[-500:]}')
    return probe.returncode


# environment -----------------------------------------------------------------

#: Imported: what the plugin's trainings import.
MODULES = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmaction',
           'mmaction_gblend', 'decord', 'av', 'librosa')
#: Only their versions and places, read from their metadata (cheaper).
DISTRIBUTIONS = ('soundfile', 'soxr', 'audioread', 'numba', 'scipy',
                 'scikit-learn', 'opencv-python-headless', 'opencv-python',
                 'matplotlib', 'pillow', 'pyyaml', 'importlib-metadata',
                 'setuptools', 'addict', 'yapf', 'termcolor', 'cffi')


def _origin(module, site: str) -> str:
    path = osp.abspath(getattr(module, '__file__', None) or '')
    if site and path.startswith(osp.abspath(site) + os.sep):
        return 'wheel folder'
    if path.startswith(REPO + os.sep):
        return 'repository'
    return osp.dirname(osp.dirname(path)) if path else 'built-in'


def _check(results: list, name: str, fn, essential: bool = True) -> None:
    """Run one probe; record ok, its value or the error."""
    try:
        value = fn()
        results.append(dict(check=name, ok=True, value=value,
                            essential=essential))
    except Exception as err:  # noqa: BLE001 (recorded, not raised)
        results.append(dict(check=name, ok=False, error=repr(err)[-600:],
                            essential=essential))


def _checkpoint_round_trip(device: str) -> str:
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


def environment(args) -> int:
    info = dict(python=platform.python_version(), executable=sys.executable,
                platform=platform.platform(), cpu_count=os.cpu_count(),
                date=datetime.datetime.now().astimezone().isoformat(
                    timespec='seconds'),
                pythonpath=os.environ.get('PYTHONPATH', ''))
    versions, origins, checks = {}, {}, []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
            versions[name] = str(getattr(module, '__version__', '?'))
            origins[name] = _origin(module, args.site)
        except Exception as err:  # noqa: BLE001
            checks.append(dict(check=f'import {name}', ok=False,
                               error=repr(err)[-600:], essential=True))
    from importlib import metadata
    for name in DISTRIBUTIONS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        versions[name] = dist.version
        where = osp.abspath(str(dist.locate_file('')))
        origins[name] = 'wheel folder' if args.site and where.startswith(
            osp.abspath(args.site)) else where
    info.update(versions=versions, origins=origins)
    import torch

    def attr(path):
        obj = importlib.import_module(path.split('.')[0])
        for part in path.split('.')[1:]:
            obj = getattr(obj, part)
        return True

    # what the plugin and mmengine 0.10.7 take from torch
    for api in ('torch._weights_only_unpickler._get_allowed_globals',
                'torch.cuda.amp.GradScaler', 'torch.amp.GradScaler',
                'torch.autocast', 'torch._foreach_mul_',
                'torch.distributed.run'):
        _check(checks, api, lambda api=api: attr(api) if '.run' not in api
               else bool(importlib.import_module(api)))
    _check(checks, 'distutils.errors (mmengine collect_env, every Runner)',
           lambda: importlib.import_module('distutils.errors').__name__ + (
               ' (the plugin\'s stand-in)' if getattr(
                   sys.modules['distutils'], '_mmaction_gblend_stand_in',
                   False) else ''))
    _check(checks, "pkg_resources (mmengine, only for 'mmaction::' "
           'configs)', lambda: bool(importlib.import_module('pkg_resources')),
           essential=False)
    _check(checks, 'gloo available',
           lambda: torch.distributed.is_gloo_available())
    device = 'cpu'
    cuda = dict(available=torch.cuda.is_available(),
                torch_cuda=torch.version.cuda)
    if args.device == 'cuda':
        def devices():
            assert torch.cuda.is_available(), 'torch sees no CUDA device'
            out = []
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                out.append(dict(name=p.name, capability=f'{p.major}.{p.minor}',
                                total_mib=round(p.total_memory / MIB)))
            cuda['devices'] = out
            return len(out)

        _check(checks, 'CUDA devices', devices)
        _check(checks, 'NCCL available',
               lambda: torch.distributed.is_nccl_available())

        def nccl():
            v = torch.cuda.nccl.version()
            cuda['nccl'] = '.'.join(map(str, v)) if isinstance(
                v, tuple) else str(v)
            return cuda['nccl']

        _check(checks, 'NCCL version', nccl)
        cuda['cudnn'] = torch.backends.cudnn.version() \
            if torch.backends.cudnn.is_available() else None

        def matmul():
            x = torch.randn(2048, 2048, device='cuda', dtype=torch.float16)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(10):
                y = x @ x
            torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / 10
            assert torch.isfinite(y).all()
            return f'{2 * 2048 ** 3 / seconds / 1e12:.1f} TFLOP/s fp16'

        _check(checks, 'CUDA matmul', matmul)
        device = 'cuda'
    _check(checks, f'checkpoint round trip ({device})',
           lambda: _checkpoint_round_trip(device))
    info.update(cuda=cuda, checks=checks)
    failed = [c for c in checks if not c['ok'] and c['essential']]
    info['passed'] = not failed
    write_json(args.out, info)
    for c in checks:
        print(f'{"ok  " if c["ok"] else "FAIL"} {c["check"]}: '
              f'{c.get("value", c.get("error"))}')
    print('versions: ' + ', '.join(f'{k} {v}' for k, v in versions.items()))
    print('from the wheel folder: ' + ', '.join(
        k for k, v in origins.items() if v == 'wheel folder'))
    return 0 if not failed else 1


# bench -----------------------------------------------------------------------


def _bench_modules():
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    import _common
    import _train_worker
    import _workload
    import strategy_overhead
    import train_step
    return _common, _workload, _train_worker, train_step, strategy_overhead


def _cuda_reset():
    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return None


def _cuda_peak():
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return None


def step_memory(build, names, warmup: int, steps: int, C) -> dict:
    """Peak CUDA memory of each configuration alone: built, stepped,
    measured and freed one at a time."""
    out = {}
    for name in names:
        base = _cuda_reset()
        step = build(name)
        C.median_time(step, steps, warmup)
        peak = _cuda_peak()
        out[name] = dict(peak_mib=peak / MIB, baseline_mib=base / MIB)
        del step
    _cuda_reset()
    return out


def epoch_run(strategy: str, tag: str, args, W, T) -> dict:
    """One short training of ``strategy`` in this process, timed as
    ``benchmarks/_train_worker.py`` times it (first ``before_train`` to
    last ``after_train``), with its peak CUDA memory."""
    from mmengine.runner import Runner
    cfg = W.runner_config(strategy, args.data_root,
                          osp.join(args.work_dir, 'runs', f'{strategy}-{tag}'),
                          args.super_epoch, args.super_epochs,
                          num_workers=args.epoch_workers,
                          batch_size=args.epoch_batch)
    # a fresh logger, message hub and visualizer for every run
    cfg.experiment_name = f'gpu-check-{strategy}-{tag}-{uuid.uuid4().hex[:6]}'
    base = _cuda_reset()
    runner = Runner.from_cfg(cfg)
    clocks = T.stamp_hook_class()
    first, last = clocks(), clocks()
    runner.register_hook(first, priority='HIGHEST')
    runner.register_hook(last, priority='LOWEST')
    runner.train()
    out = dict(strategy=strategy, epochs=runner.max_epochs,
               iters_per_epoch=len(runner.train_dataloader),
               samples_per_epoch=len(runner.train_dataloader.dataset),
               **T.spans(first.stamps, last.stamps))
    peak = _cuda_peak()
    if peak is not None:
        out.update(cuda_peak_mib=peak / MIB, cuda_baseline_mib=base / MIB)
    del runner
    _cuda_reset()
    return out


def bench(args) -> int:
    C, W, T, TS, SO = _bench_modules()
    W.init_scope()
    import torch
    cuda = C.cuda_in_use()
    result = dict(device=C.device_name(), settings={
        k: v for k, v in vars(args).items() if k != 'func'},
        figures=[], step_seconds={}, epoch_runs={}, cuda_peak_mib={},
        notes=[], errors=[], machine=C.machine_description())
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    build_ts = lambda n: TS.build_step(n, args.batch)  # noqa: E731
    build_so = lambda n: SO.build_step(n, args.batch, work)  # noqa: E731

    def part(name, fn):
        start = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001 (the other parts still run)
            result['errors'].append(f'{name}: {traceback.format_exc()}')
            print(f'{name} FAILED:\n{traceback.format_exc()}', flush=True)
        result.setdefault('part_seconds', {})[name] = round(
            time.monotonic() - start, 1)
        write_json(args.out, result)

    def memory():
        for family, names, build in (
                ('train_step', list(TS.CONFIGS), build_ts),
                ('strategy_overhead', list(SO.STEP_CONFIGS), build_so)):
            found = step_memory(build, names, 1, 2, C)
            for name, m in found.items():
                key = name if family == 'strategy_overhead' else \
                    f'train_step:{name}'
                result['cuda_peak_mib'].setdefault(key, {})['step'] = \
                    m['peak_mib']
                result['cuda_peak_mib'][key]['step_baseline'] = \
                    m['baseline_mib']

    def timing(family, names, build, figures):
        steps = {n: build(n) for n in names}
        print(f'{family}: {", ".join(names)}, batch {args.batch}',
              flush=True)
        times = C.interleave(
            {n: (lambda s=s: C.median_time(s, args.steps, args.warmup))
             for n, s in steps.items()}, args.repeats, log=C.say)
        result['step_seconds'][family] = times
        figures(times)
        del steps
        _cuda_reset()

    def ts_figures(times):
        TS.figures(times, result)

    def so_figures(times):
        for name, target in SO.STEP_TARGETS.items():
            result['figures'].append(C.ratio_figure(
                f'{name} step / naive step', times[name], times['naive'],
                target, name, 'naive fusion',
                note=f'model.train_step + the hook, batch {args.batch}'))

    def epochs():
        runs = {s: [] for s in args.strategies}
        for i in range(args.epoch_warmup):  # discarded
            epoch_run('naive', f'warm-up{i}', args, W, T)

        def measure(name):
            out = epoch_run(name, f'rep{len(runs[name])}', args, W, T)
            runs[name].append(out)
            return out['train_s'] / out['epochs']

        C.interleave({n: (lambda n=n: measure(n)) for n in runs},
                     args.epoch_repeats, log=C.say)
        result['epoch_runs'] = runs
        naive = [r['train_s'] / r['epochs'] for r in runs['naive']]
        for name, rs in runs.items():
            if name != 'naive':
                result['figures'].append(C.ratio_figure(
                    f'{name} epoch / naive epoch',
                    [r['train_s'] / r['epochs'] for r in rs], naive,
                    SO.EPOCH_TARGETS.get(name), name, 'naive fusion',
                    unit='s/epoch', note=f'{args.super_epochs} super-epochs '
                    f'of {args.super_epoch} epochs, '
                    f'{rs[0]["iters_per_epoch"]} iterations per epoch'))
            peaks = [r.get('cuda_peak_mib') for r in rs]
            if all(p is not None for p in peaks):
                result['cuda_peak_mib'].setdefault(name, {})['run'] = max(
                    peaks)

    if cuda:
        part('memory', memory)
    else:
        result['notes'].append('no CUDA: peak CUDA memory not measured')
    part('train_step', lambda: timing('train_step', list(TS.CONFIGS),
                                      build_ts, ts_figures))
    part('strategy_steps', lambda: timing(
        'strategy_overhead', list(SO.STEP_CONFIGS), build_so, so_figures))
    part('strategy_epochs', epochs)
    result['torch'] = torch.__version__
    result['finished'] = datetime.datetime.now().astimezone().isoformat(
        timespec='seconds')
    write_json(args.out, result)
    for fig in result['figures']:
        r = fig['ratio']
        print(f'{fig["name"]}: {r["median"]:.3f} '
              f'({r["min"]:.3f}-{r["max"]:.3f}), target {fig["target"]}')
    for name, m in result['cuda_peak_mib'].items():
        print(f'peak CUDA memory {name}: {m}')
    return 1 if result['errors'] else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('install', help='the wheel folder into --site')
    p.add_argument('--wheels', required=True)
    p.add_argument('--site', required=True)
    p.set_defaults(func=install)
    p = sub.add_parser('environment', help='versions, GPUs, APIs, checks')
    p.add_argument('--device', choices=['cuda', 'cpu'], default='cuda')
    p.add_argument('--out', required=True)
    p.add_argument('--site', default='')
    p.set_defaults(func=environment)
    p = sub.add_parser('bench', help='step and epoch ratios, peak memory')
    p.add_argument('--out', required=True)
    p.add_argument('--data-root', required=True)
    p.add_argument('--work-dir', required=True)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--epoch-repeats', type=int, default=2)
    p.add_argument('--epoch-batch', type=int, default=8)
    p.add_argument('--epoch-workers', type=int, default=2)
    p.add_argument('--epoch-warmup', type=int, default=1,
                   help='discarded naive-fusion runs before the timed ones')
    p.add_argument('--super-epoch', type=int, default=1)
    p.add_argument('--super-epochs', type=int, default=2)
    p.add_argument('--strategies', nargs='+',
                   default=['naive', 'gblend-trajectory', 'gblend-shadow'])
    p.set_defaults(func=bench)
    args = parser.parse_args(argv)
    if args.command == 'bench' and 'naive' not in args.strategies:
        args.strategies = ['naive'] + args.strategies
    return args


if __name__ == '__main__':
    a = parse_args()
    sys.exit(a.func(a))
