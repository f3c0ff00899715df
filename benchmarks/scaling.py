"""Scaling: each strategy's cost on 1 and on 2 processes.

Every strategy of the epoch-level benchmark (naive fusion, online G-Blend
with the trajectory and the shadow estimator, OGM-GE, OPM) trains the same
generated demo data with a real mmengine Runner on 1 process (as
``tools/train.py`` runs) and on 2 processes (``torchrun
--nproc_per_node 2``: gloo on CPU, nccl on GPUs, the plugin's DDP wrapper),
with the same per-process batch, so 2 processes take half the iterations
each. Every run is a fresh process (group); the runs alternate.

Reported:

* each strategy's epoch time against naive fusion's, at 1 and at 2
  processes (the same targets as ``strategy_overhead.py``): how its cost
  changes with the number of processes;
* naive fusion's epoch time on 2 processes against 1 (the data-parallel
  speed-up of the machine itself, for reference: on a CPU machine both use
  the same cores, ``cores / processes`` threads each).

    python benchmarks/scaling.py --out scaling.json
"""
import os.path as osp
from typing import Dict, List, Sequence, Tuple

from _common import (add_table, add_training_run_options, base_parser,
                     interleave, new_result, parse_common, ratio_figure, say,
                     summary, write_result)
from _train_worker import launch, warm_up
from _workload import STRATEGIES, ensure_demo_data, warm_file_cache

TARGETS = {'gblend-trajectory': 1.10, 'gblend-shadow': 1.5,
           'ogm-ge': 1.03, 'opm': 1.03}
FULL = dict(strategies=list(STRATEGIES), nprocs=[1, 2], train_per_class=20,
            super_epoch=4, super_epochs=2, num_workers=None, batch_size=None)
QUICK = dict(strategies=['naive', 'gblend-trajectory'], nprocs=[1, 2],
             train_per_class=2, super_epoch=1, super_epochs=2, num_workers=0,
             batch_size=4)


def parse_args(argv=None):
    parser = base_parser(__doc__.splitlines()[0], repeats=3)
    parser.add_argument('--strategies', nargs='+', choices=list(STRATEGIES),
                        help='strategies (default: all; naive is always '
                        'run)')
    parser.add_argument('--nprocs', type=int, nargs='+',
                        help='process counts (default 1 2)')
    add_training_run_options(parser)
    parser.add_argument('--batch-size', type=int,
                        help="batch per process (default: the config's)")
    args = parse_common(parser, argv, FULL, QUICK)
    if 'naive' not in args.strategies:
        args.strategies = ['naive'] + list(args.strategies)
    return args


Key = Tuple[str, int]


def all_runs(args, data_root: str,
             keys: Sequence[Key]) -> Dict[Key, List[dict]]:
    """Every (strategy, processes) run ``repeats`` times, interleaved."""
    runs: Dict[Key, List[dict]] = {key: [] for key in keys}

    def measure(key: Key) -> float:
        strategy, nproc = key
        out = launch(strategy, osp.join(
            args.work_dir, 'runs', f'{strategy}-np{nproc}-'
            f'rep{len(runs[key])}'), data_root, args.super_epoch,
            args.super_epochs, nproc=nproc, num_workers=args.num_workers,
            batch_size=args.batch_size)
        runs[key].append(out)
        return out['train_s'] / out['epochs']

    warm_up(osp.join(args.work_dir, 'runs'), data_root,
            sorted({n for _, n in keys}), num_workers=args.num_workers,
            batch_size=args.batch_size)
    interleave({f'{s} x{n}': (lambda k=(s, n): measure(k))
                for s, n in keys}, args.repeats, log=say)
    return runs


def processes(n: int) -> str:
    return f'{n} process{"es" if n > 1 else ""}'


def usable_nprocs(nprocs: Sequence[int]) -> Tuple[List[int], List[str]]:
    """The process counts this machine can run, and why others cannot
    (with CUDA, one GPU per process)."""
    import torch
    if not torch.cuda.is_available():
        return list(nprocs), []
    gpus = torch.cuda.device_count()
    kept = [n for n in nprocs if n <= gpus]
    return kept, [f'{processes(n)} skipped: {gpus} GPU(s)'
                  for n in nprocs if n > gpus]


def per_epoch(runs: List[dict]) -> List[float]:
    return [r['train_s'] / r['epochs'] for r in runs]


def add_figures(runs: Dict[Key, List[dict]], args, result: dict) -> None:
    for nproc in args.nprocs:
        naive = per_epoch(runs[('naive', nproc)])
        for strategy in args.strategies:
            if strategy == 'naive':
                continue
            result['figures'].append(ratio_figure(
                f'{strategy} / naive, {processes(nproc)}',
                per_epoch(runs[(strategy, nproc)]), naive,
                TARGETS.get(strategy), strategy, 'naive fusion',
                unit='s/epoch'))
    if len(args.nprocs) > 1:
        low, high = min(args.nprocs), max(args.nprocs)
        result['figures'].append(ratio_figure(
            f'naive fusion, {processes(high)} / {low}',
            per_epoch(runs[('naive', high)]),
            per_epoch(runs[('naive', low)]), None, processes(high),
            processes(low), unit='s/epoch',
            note='the machine\'s own data-parallel scaling'))


def add_tables(runs: Dict[Key, List[dict]], result: dict) -> None:
    rows = []
    for (strategy, nproc), rs in runs.items():
        first = rs[0]
        rows.append([
            strategy, nproc, first['threads'],
            summary(per_epoch(rs))['median'], first['iters_per_epoch'],
            summary([r['measure_s'] for r in rs])['median'],
            summary([r['shadow_s'] for r in rs])['median'],
            max(m['peak_rss_mib'] for r in rs
                for m in r['memory_per_rank'])
        ])
    add_table(result, 'Per run (medians; memory: the largest rank)',
              ['strategy', 'processes', 'threads/process', 's/epoch',
               'iters/epoch/process', 'measuring (s)', 'shadow training (s)',
               'peak RSS/process (MiB)'], rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    result = new_result('scaling', 'Scaling with the number of processes',
                        args, {k: getattr(args, k) for k in FULL})
    data_root = ensure_demo_data(
        osp.join(args.work_dir, 'data',
                 f'demo-train{args.train_per_class}'), args.train_per_class)
    warm_file_cache(data_root)
    args.nprocs, skipped = usable_nprocs(args.nprocs)
    result['notes'] += skipped
    keys = [(s, n) for n in args.nprocs for s in args.strategies]
    runs = all_runs(args, data_root, keys)
    add_figures(runs, args, result)
    add_tables(runs, result)
    result['notes'].append(
        'Same per-process batch at every process count (data parallel: '
        'each process takes 1/P of the iterations). G-Blend shards its '
        'measurements the same way and all-reduces their sums once per '
        'measurement; shadow copies all-reduce their gradients every step '
        'as DDP does; OGM-GE and OPM all-reduce M + 1 numbers per step.')
    write_result(result, args.out)


if __name__ == '__main__':
    main()
