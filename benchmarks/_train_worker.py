"""One timed training run with a real mmengine Runner (a child process).

Run by ``strategy_overhead.py`` and ``scaling.py``, directly for one process
or under ``torchrun`` for several; every run is a fresh process, so its peak
memory is its own. Prints one JSON line (:func:`_common.emit_result`) from
rank 0 with:

* ``train_s``: wall time from the first ``before_train`` hook to the last
  ``after_train`` hook (everything G-Blend, OGM-GE and OPM do, the
  trajectory estimator's first measurement included; not the Runner's
  construction, identical for every strategy);
* ``epoch_s``: each epoch, from its first ``before_train_epoch`` hook (so
  a shadow estimate at its start counts) to its last ``after_train_epoch``
  hook (so a trajectory estimate at its end counts);
* ``measure_s``, ``measure_calls``, ``shadow_s``, ``shadow_copies``,
  ``shadow_steps``: the time G-Blend spent measuring heads (each call one
  pass over the held-out set and the probe, for every model measured) and
  training shadow copies, with the copies and their steps (the hook's
  methods are timed in this process only; nothing in the library
  changes);
* the peak memory of every rank.
"""
import argparse
import functools
import os
import os.path as osp
import shutil
import socket
import sys
from collections import defaultdict
from typing import Callable, Dict, List, Optional

from _common import clock, current_rss_mib, emit_result, peak_memory, run_child
from _workload import STRATEGIES, init_scope, runner_config

WORKER = osp.abspath(__file__)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--strategy', choices=sorted(STRATEGIES),
                        required=True)
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--super-epoch', type=int, default=4)
    parser.add_argument('--super-epochs', type=int, default=2)
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch'])
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads per process')
    return parser.parse_args()


def stamp_hook_class():
    """A hook that records when each training event reached it."""
    from mmengine.hooks import Hook

    class WallClockHook(Hook):

        def __init__(self) -> None:
            self.stamps: Dict[str, List[float]] = defaultdict(list)

        def _stamp(self, event: str) -> None:
            self.stamps[event].append(clock())

        def before_train(self, runner) -> None:
            self._stamp('before_train')

        def before_train_epoch(self, runner) -> None:
            self._stamp('before_train_epoch')

        def after_train_epoch(self, runner) -> None:
            self._stamp('after_train_epoch')

        def after_train(self, runner) -> None:
            self._stamp('after_train')

    return WallClockHook


def timed(fn: Callable, totals: Dict[str, float], key: str) -> Callable:
    """``fn`` that adds its wall time to ``totals[key + '_s']`` and counts
    its calls in ``totals[key + '_calls']``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[f'{key}_s'] += clock() - start
            totals[f'{key}_calls'] += 1

    return wrapper


def counted_steps(fn: Callable, totals: Dict[str, float]) -> Callable:
    """``shadow_train`` that counts its copies (one per head) in
    ``totals['shadow_copies']`` and their steps in
    ``totals['shadow_steps']``."""

    @functools.wraps(fn)
    def wrapper(model, optimizer, dataloader, heads, num_epochs, *args,
                **kwargs):
        totals['shadow_copies'] += len(heads)
        totals['shadow_steps'] += num_epochs * len(dataloader) * len(heads)
        return fn(model, optimizer, dataloader, heads, num_epochs, *args,
                  **kwargs)

    return wrapper


def gblend_hook(runner):
    """The run's GradientBlendingHook, or ``None``."""
    return next((h for h in runner.hooks
                 if type(h).__name__ == 'GradientBlendingHook'), None)


def instrument_gblend(runner, totals: Dict[str, float]) -> None:
    """Time the G-Blend hook's estimates (whatever the estimator), its
    measurement passes and shadow trainings, and count the shadow copies'
    steps."""
    from mmaction_gblend.engine.estimators import HeadMeasurer
    from mmaction_gblend.engine.estimators import shadow as shadow_module
    hook = gblend_hook(runner)
    if hook is None:
        return
    hook.estimator.measure = timed(hook.estimator.measure, totals,
                                   'estimate')
    HeadMeasurer.measure = timed(HeadMeasurer.measure, totals, 'measure')
    shadow_module.shadow_train = counted_steps(
        timed(shadow_module.shadow_train, totals, 'shadow'), totals)


def spans(first: Dict[str, List[float]],
          last: Dict[str, List[float]]) -> dict:
    """Run and epoch wall times from the two clocks' stamps."""
    return dict(
        train_s=last['after_train'][0] - first['before_train'][0],
        epoch_s=[end - start for start, end in zip(
            first['before_train_epoch'], last['after_train_epoch'])])


def run(args: argparse.Namespace) -> dict:
    """Build the Runner, train, and return this rank's numbers."""
    import torch
    from mmengine.runner import Runner
    init_scope()
    baseline = current_rss_mib()
    cfg = runner_config(args.strategy, args.data_root, args.work_dir,
                        args.super_epoch, args.super_epochs,
                        args.num_workers, args.batch_size, args.launcher)
    runner = Runner.from_cfg(cfg)
    if args.threads:
        torch.set_num_threads(args.threads)
    clocks = stamp_hook_class()
    first, last = clocks(), clocks()
    runner.register_hook(first, priority='HIGHEST')
    runner.register_hook(last, priority='LOWEST')
    totals: Dict[str, float] = defaultdict(float)
    instrument_gblend(runner, totals)
    runner.train()
    result = dict(
        strategy=args.strategy, rank=runner.rank,
        world_size=runner.world_size, threads=torch.get_num_threads(),
        iters_per_epoch=len(runner.train_dataloader),
        samples_per_epoch=len(runner.train_dataloader.dataset),
        epochs=runner.max_epochs, **spans(first.stamps, last.stamps),
        memory=peak_memory(baseline))
    for key in ('estimate', 'measure', 'shadow'):
        result[f'{key}_s'] = totals[f'{key}_s']
        result[f'{key}_calls'] = int(totals[f'{key}_calls'])
    result['shadow_copies'] = int(totals['shadow_copies'])
    result['shadow_steps'] = int(totals['shadow_steps'])
    hook = gblend_hook(runner)
    result['estimates'] = len(hook.history) if hook is not None else 0
    return result


def main() -> None:
    args = parse_args()
    os.makedirs(osp.abspath(args.work_dir), exist_ok=True)
    result = run(args)
    from mmengine.dist import all_gather_object, get_rank
    ranks = all_gather_object(result)
    if get_rank() == 0:
        summary = dict(ranks[0])
        summary['memory_per_rank'] = [r['memory'] for r in ranks]
        summary['train_s'] = max(r['train_s'] for r in ranks)
        emit_result(summary)
    sys.stdout.flush()
    close_process_group()


def close_process_group() -> None:
    """Leave together: a rank whose process group is torn down at exit
    while the other still talks to it aborts (``terminate called without
    an active exception``)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# the parent's side ---------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now (for torchrun's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch(strategy: str,
           work_dir: str,
           data_root: str,
           super_epoch: int,
           super_epochs: int,
           nproc: int = 1,
           num_workers: Optional[int] = None,
           batch_size: Optional[int] = None,
           timeout: float = 3600) -> dict:
    """Run one timed training in a fresh process (or ``nproc`` of them).

    One process runs as ``tools/train.py`` would (no launcher, torch's
    default threads); several run under ``torchrun`` (gloo on CPU, the
    plugin's DDP wrapper), each with ``cores // nproc`` threads, so both
    use the same cores.

    Args:
        strategy: A key of :data:`~_workload.STRATEGIES`.
        work_dir: The run's work dir (emptied first); its ``run.log``
            keeps the output.
        data_root: The demo dataset.
        super_epoch: Epochs per super-epoch.
        super_epochs: Super-epochs.
        nproc: Processes.
        num_workers: Data-loader workers per process (default: config's).
        batch_size: Batch size per process (default: config's).
        timeout: Seconds before the run is killed.

    Returns:
        The worker's result (see the module docstring).
    """
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    args = [WORKER, '--strategy', strategy, '--data-root', data_root,
            '--work-dir', work_dir, '--super-epoch', super_epoch,
            '--super-epochs', super_epochs]
    if num_workers is not None:
        args += ['--num-workers', num_workers]
    if batch_size is not None:
        args += ['--batch-size', batch_size]
    threads = None
    if nproc > 1:
        threads = max(1, (os.cpu_count() or 1) // nproc)
        args = ['-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
                f'--master_port={free_port()}'] + args + [
                    '--launcher', 'pytorch', '--threads', threads]
    return run_child(['python'] + args, timeout=timeout, threads=threads,
                     log_file=osp.join(work_dir, 'run.log'))


def warm_up(work_dir: str, data_root: str, nprocs=(1, ), **kwargs) -> None:
    """One discarded one-epoch naive-fusion run per process count: the
    first run after a while pays for loading libraries and files from disk,
    which no measured configuration should.

    Args:
        work_dir: Parent of the runs' work dirs.
        data_root: The demo dataset.
        nprocs: Process counts to warm up.
        **kwargs: ``num_workers`` and ``batch_size`` for :func:`launch`.
    """
    for nproc in nprocs:
        launch('naive', osp.join(work_dir, f'warm-up-np{nproc}'), data_root,
               1, 1, nproc=nproc, **kwargs)


if __name__ == '__main__':
    main()
