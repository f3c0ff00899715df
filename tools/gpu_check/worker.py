"""The GPU check's steps that run Python of their own (install, probes,
benchmarks).

    python tools/gpu_check/worker.py install --wheels .whl --site DIR
    python tools/gpu_check/worker.py environment --device cuda --out env.json
    python tools/gpu_check/worker.py bench --out bench.json --data-root DIR

``install`` uses the standard library and pip only (nothing else is there
before it); ``environment`` (``worker_environment.py``) and ``bench``
(``worker_bench.py``) import torch, mmengine, mmaction2 and the plugin, from
the wheel folder's install when ``PYTHONPATH`` names it.
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time
from typing import List, Optional

# run as a script: tools/ on the path makes this folder the package
# gpu_check (appended, so that tools/test.py never shadows the stdlib's test)
sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))
from gpu_check.wheels import INSTALL_FLAGS, MANIFEST  # noqa: E402

#: Wheels never installed from the folder: the machine's own CUDA stack.
NEVER_INSTALL = ('torch-', 'torchvision-', 'torchaudio-', 'triton-',
                 'nvidia_')


def _report_missing(folder: str, wheels: List[str]) -> None:
    """Name the wheels ``MANIFEST.json`` lists that the folder lacks."""
    manifest = osp.join(folder, MANIFEST)
    if not osp.isfile(manifest):
        return
    with open(manifest) as f:
        expected = {w['file'] for w in json.load(f)['wheels']}
    missing = expected - {osp.basename(w) for w in wheels}
    if missing:
        print('missing from the folder (MANIFEST.json lists them): '
              f'{sorted(missing)}')


def install(args: argparse.Namespace) -> int:
    """The wheel folder into ``--site`` on top of the machine's torch."""
    wheels = sorted(glob.glob(osp.join(args.wheels, '*.whl')))
    refused = [w for w in wheels
               if osp.basename(w).lower().startswith(NEVER_INSTALL)]
    wheels = [w for w in wheels if w not in refused]
    for w in refused:
        print(f'refusing {osp.basename(w)}: the machine\'s own torch and '
              'CUDA libraries are used')
    if not wheels:
        print(f'no wheels in {args.wheels}: run tools/gpu_check/run.sh '
              '--prepare on a machine with network first, and carry the '
              'folder')
        return 1
    _report_missing(args.wheels, wheels)
    start = time.monotonic()
    cmd = [sys.executable, '-m', 'pip', 'install', *INSTALL_FLAGS,
           '--disable-pip-version-check', '--target', args.site]
    print('$ ' + ' '.join(cmd) + f' ... ({len(wheels)} wheels)', flush=True)
    cmd += wheels
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


def environment(args: argparse.Namespace) -> int:
    from gpu_check.worker_environment import environment as run
    return run(args)


def bench(args: argparse.Namespace) -> int:
    from gpu_check.worker_bench import bench as run
    return run(args)


def _bench_parser(sub) -> None:
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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The sub-command and its options (``func`` runs it)."""
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
    _bench_parser(sub)
    args = parser.parse_args(argv)
    # the epoch ratios are each strategy's epoch over naive fusion's
    if args.command == 'bench' and 'naive' not in args.strategies:
        args.strategies = ['naive'] + args.strategies
    return args


if __name__ == '__main__':
    a = parse_args()
    sys.exit(a.func(a))
