"""The GPU check's ``bench`` step: the benchmarks' step and epoch ratios
(``benchmarks/train_step.py``, ``benchmarks/strategy_overhead.py``, with
their own model builders) and each strategy's peak CUDA memory."""
import argparse
import datetime
import gc
import os
import os.path as osp
import sys
import time
import traceback
import uuid
from typing import Callable, Dict, Iterable, List, Optional

from gpu_check.common import MIB, REPO, write_json

BENCH_DIR = osp.join(REPO, 'benchmarks')


def _bench_modules() -> tuple:
    """``_common``, ``_workload``, ``_train_worker``, ``train_step`` and
    ``strategy_overhead`` from ``benchmarks/``."""
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    import _common
    import _train_worker
    import _workload
    import strategy_overhead
    import train_step
    return _common, _workload, _train_worker, train_step, strategy_overhead


def _cuda_reset() -> Optional[int]:
    """Free what can be freed, reset the peak; the bytes still held."""
    import torch
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return None


def _cuda_peak() -> Optional[int]:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return None


def step_memory(build: Callable[[str], Callable], names: Iterable[str],
                warmup: int, steps: int, C) -> Dict[str, dict]:
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


def epoch_run(strategy: str, tag: str, args: argparse.Namespace, W,
              T) -> dict:
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


class Bench:
    """The bench's parts, each recorded on its own: a part that fails is
    an error in the results, and the others still run.

    Args:
        args: The ``bench`` sub-command's options (``worker.parse_args``).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.C, self.W, self.T, self.TS, self.SO = _bench_modules()
        self.W.init_scope()
        self.work = osp.abspath(args.work_dir)
        os.makedirs(self.work, exist_ok=True)
        self.result = dict(
            device=self.C.device_name(),
            settings={k: v for k, v in vars(args).items() if k != 'func'},
            figures=[], step_seconds={}, epoch_runs={}, cuda_peak_mib={},
            notes=[], errors=[], machine=self.C.machine_description())

    def build_train_step(self, name: str) -> Callable:
        return self.TS.build_step(name, self.args.batch)

    def build_strategy_step(self, name: str) -> Callable:
        return self.SO.build_step(name, self.args.batch, self.work)

    def part(self, name: str, fn: Callable[[], None]) -> None:
        """Run one part, recording its time or its traceback."""
        start = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001 (the other parts still run)
            self.result['errors'].append(f'{name}: {traceback.format_exc()}')
            print(f'{name} FAILED:\n{traceback.format_exc()}', flush=True)
        self.result.setdefault('part_seconds', {})[name] = round(
            time.monotonic() - start, 1)
        write_json(self.args.out, self.result)

    def memory(self) -> None:
        """Each step configuration's peak CUDA memory, built alone."""
        peaks = self.result['cuda_peak_mib']
        for family, names, build in (
                ('train_step', list(self.TS.CONFIGS), self.build_train_step),
                ('strategy_overhead', list(self.SO.STEP_CONFIGS),
                 self.build_strategy_step)):
            for name, m in step_memory(build, names, 1, 2, self.C).items():
                key = name if family == 'strategy_overhead' else \
                    f'train_step:{name}'
                peaks.setdefault(key, {}).update(
                    step=m['peak_mib'], step_baseline=m['baseline_mib'])

    def timing(self, family: str, names: List[str],
               build: Callable[[str], Callable]) -> Dict[str, list]:
        """Interleaved step times of ``names`` (seconds per step)."""
        C, args = self.C, self.args
        steps = {n: build(n) for n in names}
        print(f'{family}: {", ".join(names)}, batch {args.batch}',
              flush=True)
        times = C.interleave(
            {n: (lambda s=s: C.median_time(s, args.steps, args.warmup))
             for n, s in steps.items()}, args.repeats, log=C.say)
        self.result['step_seconds'][family] = times
        del steps
        _cuda_reset()
        return times

    def train_step_figures(self) -> None:
        times = self.timing('train_step', list(self.TS.CONFIGS),
                            self.build_train_step)
        self.TS.figures(times, self.result)

    def strategy_step_figures(self) -> None:
        times = self.timing('strategy_overhead', list(self.SO.STEP_CONFIGS),
                            self.build_strategy_step)
        self.SO.step_figures(times, self.result, self.args.batch)

    def epoch_figures(self) -> None:
        """Each strategy's epoch time over naive fusion's, interleaved, and
        the peak CUDA memory of each whole run."""
        args = self.args
        runs: Dict[str, List[dict]] = {s: [] for s in args.strategies}
        for i in range(args.epoch_warmup):  # discarded
            epoch_run('naive', f'warm-up{i}', args, self.W, self.T)

        def measure(name: str) -> float:
            out = epoch_run(name, f'rep{len(runs[name])}', args, self.W,
                            self.T)
            runs[name].append(out)
            return out['train_s'] / out['epochs']

        seconds = self.C.interleave(
            {n: (lambda n=n: measure(n)) for n in runs}, args.epoch_repeats,
            log=self.C.say)
        self.result['epoch_runs'] = runs
        for name, rs in runs.items():
            if name != 'naive':
                self._epoch_ratio(name, seconds[name], seconds['naive'],
                                  rs[0]['iters_per_epoch'])
            peaks = [r.get('cuda_peak_mib') for r in rs]
            if all(p is not None for p in peaks):
                self.result['cuda_peak_mib'].setdefault(name, {})['run'] = \
                    max(peaks)

    def _epoch_ratio(self, name: str, seconds: List[float],
                     naive: List[float], iters_per_epoch: int) -> None:
        """``seconds`` per epoch of ``name`` against naive fusion's."""
        args = self.args
        self.result['figures'].append(self.C.ratio_figure(
            f'{name} epoch / naive epoch', seconds, naive,
            self.SO.EPOCH_TARGETS.get(name), name, 'naive fusion',
            unit='s/epoch',
            note=f'{args.super_epochs} super-epochs of {args.super_epoch} '
            f'epochs, {iters_per_epoch} iterations per epoch'))

    def run(self) -> int:
        """Every part, then the results; 1 if a part failed."""
        import torch
        if self.C.cuda_in_use():
            self.part('memory', self.memory)
        else:
            self.result['notes'].append(
                'no CUDA: peak CUDA memory not measured')
        self.part('train_step', self.train_step_figures)
        self.part('strategy_steps', self.strategy_step_figures)
        self.part('strategy_epochs', self.epoch_figures)
        self.result['torch'] = torch.__version__
        self.result['finished'] = datetime.datetime.now().astimezone(
        ).isoformat(timespec='seconds')
        write_json(self.args.out, self.result)
        for fig in self.result['figures']:
            r = fig['ratio']
            print(f'{fig["name"]}: {r["median"]:.3f} '
                  f'({r["min"]:.3f}-{r["max"]:.3f}), target {fig["target"]}')
        for name, m in self.result['cuda_peak_mib'].items():
            print(f'peak CUDA memory {name}: {m}')
        return 1 if self.result['errors'] else 0


def bench(args: argparse.Namespace) -> int:
    """The ``bench`` sub-command."""
    return Bench(args).run()
