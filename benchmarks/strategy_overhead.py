"""Cost of each balancing strategy against naive fusion.

Two measurements, each against naive late fusion of the same demo model:

* **per step** (in this process): ``model.train_step`` on one synthetic
  batch of the demo pipeline's shapes, with OGM-GE (``OGMGEOptimWrapper``
  bound by ``OnTheFlyModulationHook``, whose ``after_train_iter`` runs
  after every step) and with OPM (``model.opm`` driven by the same hook),
  both modulating every step; targets <= 1.03;
* **per epoch** (real mmengine Runners in fresh processes, on a generated
  demo dataset): the wall time of a whole training with online G-Blend,
  divided by the epochs, with each estimator: trajectory (target <= 1.10),
  first order (the default cheap one, target <= 1.15), shadow on the whole
  training set (Algorithm 1, no target: its cost model says about
  ``1 + (1 + sum of branch shares)`` for a super-epoch) and shadow on a
  tenth of it.

Configurations alternate (A B C, B C A, ...); each figure is the median of
the per-repetition ratios, with their range. Peak memory is measured per
configuration in a fresh process.

    python benchmarks/strategy_overhead.py --out strategy_overhead.json
"""
import os
import os.path as osp
import types
from typing import Callable, Dict, List

from _common import (add_step_options, add_table, add_training_run_options,
                     base_parser, emit_peak_memory, interleave, median_time,
                     new_result, parse_common, ratio_figure, run_benchmark,
                     run_child, say, summary)
from _train_worker import launch, warm_up
from _workload import (build_trainable, ensure_demo_data, init_scope,
                       load_config, sample_shapes, synthetic_batch,
                       train_step_fn, warm_file_cache)

STEP_CONFIGS = ('naive', 'ogm-ge', 'ogm', 'opm')
# OGM without GE's noise: no target, it shows what the noise draw costs
STEP_TARGETS = {'ogm-ge': 1.03, 'ogm': None, 'opm': 1.03}
EPOCH_CONFIGS = ('naive', 'gblend-trajectory', 'gblend-first-order',
                 'gblend-shadow', 'gblend-shadow-tenth')
EPOCH_TARGETS = {'gblend-trajectory': 1.10, 'gblend-first-order': 1.15,
                 'gblend-shadow': None, 'gblend-shadow-tenth': None}
FULL = dict(batch_size=16, warmup=3, steps=10, train_per_class=20,
            super_epoch=4, super_epochs=2, num_workers=None, epoch_batch=None)
QUICK = dict(batch_size=4, warmup=1, steps=2, train_per_class=2,
             super_epoch=1, super_epochs=2, num_workers=0, epoch_batch=4)


def parse_args(argv=None):
    parser = base_parser(__doc__.splitlines()[0], repeats=5)
    parser.add_argument('--parts', nargs='+', default=['steps', 'epochs'],
                        choices=['steps', 'epochs'],
                        help='what to measure (default: both)')
    add_step_options(parser)
    add_training_run_options(parser)
    parser.add_argument('--epoch-batch', type=int,
                        help="batch of the epoch-level runs (default: the "
                        "config's, 16)")
    parser.add_argument('--probe', choices=STEP_CONFIGS,
                        help='(internal) peak memory of one configuration')
    return parse_common(parser, argv, FULL, QUICK)


# per step --------------------------------------------------------------------


def _stub_runner(model, wrapper, work_dir: str):
    """What OnTheFlyModulationHook reads from a Runner, without one."""
    from mmengine.logging import MessageHub, MMLogger
    os.makedirs(work_dir, exist_ok=True)  # as a Runner makes it
    name = 'bench-strategy'
    logger = MMLogger.get_instance(name) \
        if MMLogger.check_instance_created(name) \
        else MMLogger.get_instance(name, log_level='WARNING')
    return types.SimpleNamespace(
        model=model, optim_wrapper=wrapper, seed=0, epoch=0, iter=0,
        work_dir=work_dir, logger=logger,
        message_hub=MessageHub.get_instance(name))


def _step_config(name: str):
    """The model and optim wrapper configs of a per-step configuration,
    modulating from the first step (epoch 0)."""
    cfg = load_config({'naive': 'naive', 'ogm-ge': 'ogm', 'ogm': 'ogm',
                       'opm': 'opm'}[name])
    if name in ('ogm-ge', 'ogm'):
        cfg.optim_wrapper.update(start_epoch=0, end_epoch=None,
                                 ge_noise=name == 'ogm-ge')
    if name == 'opm':
        cfg.model.opm.update(start_epoch=0, end_epoch=None)
    return cfg


def build_step(name: str, batch_size: int, work_dir: str) -> Callable:
    """One training step of a configuration, with the hook where the
    strategy needs it."""
    from mmaction_gblend.engine.hooks import OnTheFlyModulationHook
    cfg = _step_config(name)
    model, wrapper = build_trainable(cfg.model, cfg.optim_wrapper)
    batch = synthetic_batch(sample_shapes(cfg), ('imgs', 'audios'),
                            batch_size, cfg.model.num_classes)
    if name == 'naive':
        return train_step_fn(model, wrapper, batch)
    hook = OnTheFlyModulationHook()
    runner = _stub_runner(model, wrapper, work_dir)
    hook.before_train(runner)

    def after(step: int) -> None:
        runner.iter = step
        hook.after_train_iter(runner, step)

    return train_step_fn(model, wrapper, batch, after)


def step_figures(times: Dict[str, list], result: dict, batch: int) -> None:
    """Each strategy's step time over naive fusion's (this script's and the
    GPU check's figures)."""
    for name, target in STEP_TARGETS.items():
        result['figures'].append(ratio_figure(
            f'{name} step / naive step', times[name], times['naive'],
            target, name, 'naive fusion',
            note=f'model.train_step + the hook, batch {batch}'))


def measure_steps(args, result: dict) -> None:
    init_scope()
    steps = {name: build_step(name, args.batch_size, args.work_dir)
             for name in STEP_CONFIGS}
    say(f'per step: {", ".join(STEP_CONFIGS)}, batch {args.batch_size}')
    times = interleave(
        {n: (lambda s=s: median_time(s, args.steps, args.warmup))
         for n, s in steps.items()}, args.repeats, log=say)
    step_figures(times, result, args.batch_size)
    memory = {name: probe_memory(name, args) for name in STEP_CONFIGS}
    add_table(result, f'Per step (batch {args.batch_size}): median time '
              'and peak memory (fresh process each)',
              ['configuration', 'step (s)', 'clips/s', 'peak RSS (MiB)',
               'increment (MiB)', 'CUDA peak (MiB)'],
              [[name, summary(times[name])['median'],
                args.batch_size / summary(times[name])['median'],
                memory[name]['peak_rss_mib'], memory[name]['increment_mib'],
                memory[name].get('cuda_peak_mib')]
               for name in STEP_CONFIGS])


def probe_memory(name: str, args) -> dict:
    """Peak memory of one per-step configuration in a fresh process."""
    return run_child(['python', osp.abspath(__file__), '--probe', name,
                      '--batch-size', args.batch_size, '--warmup',
                      args.warmup, '--steps', args.steps, '--work-dir',
                      args.work_dir], timeout=1800)


def run_probe(args) -> None:
    init_scope()
    emit_peak_memory(lambda: median_time(
        build_step(args.probe, args.batch_size, args.work_dir), args.steps,
        args.warmup))


# per epoch -------------------------------------------------------------------


def epoch_runs(args, data_root: str) -> Dict[str, List[dict]]:
    """Every epoch configuration ``repeats`` times, interleaved."""
    runs: Dict[str, List[dict]] = {name: [] for name in EPOCH_CONFIGS}

    def measure(name: str) -> float:
        rep = len(runs[name])
        out = launch(name, osp.join(args.work_dir, 'runs',
                                    f'{name}-rep{rep}'), data_root,
                     args.super_epoch, args.super_epochs,
                     num_workers=args.num_workers,
                     batch_size=args.epoch_batch)
        runs[name].append(out)
        return out['train_s']

    warm_up(osp.join(args.work_dir, 'runs'), data_root,
            num_workers=args.num_workers, batch_size=args.epoch_batch)
    interleave({n: (lambda n=n: measure(n)) for n in EPOCH_CONFIGS},
               args.repeats, log=say)
    return runs


def _median(runs: List[dict], key: str) -> float:
    return summary([r[key] for r in runs])['median']


def measure_epochs(args, result: dict) -> None:
    data_root = ensure_demo_data(
        osp.join(args.work_dir, 'data',
                 f'demo-train{args.train_per_class}'), args.train_per_class)
    warm_file_cache(data_root)
    say(f'per epoch: {", ".join(EPOCH_CONFIGS)} on {data_root}')
    runs = epoch_runs(args, data_root)
    naive = [r['train_s'] / r['epochs'] for r in runs['naive']]
    for name, target in EPOCH_TARGETS.items():
        result['figures'].append(ratio_figure(
            f'{name} epoch / naive epoch',
            [r['train_s'] / r['epochs'] for r in runs[name]], naive,
            target, name, 'naive fusion', unit='s/epoch',
            note=f'{args.super_epochs} super-epochs of {args.super_epoch} '
            'epochs'))
    add_table(result, 'Per epoch: where the time goes (medians; fresh '
              'process per run)',
              ['strategy', 's/epoch', 'iters/epoch', 'measurement passes',
               'estimating (s)', 'measuring (s)', 'shadow copies',
               'shadow training (s)', 'peak RSS (MiB)',
               'workers peak RSS (MiB)'],
              [[name, _median(rs, 'train_s') / rs[0]['epochs'],
                rs[0]['iters_per_epoch'], rs[0]['measure_calls'],
                _median(rs, 'estimate_s'), _median(rs, 'measure_s'),
                rs[0]['shadow_copies'],
                _median(rs, 'shadow_s'),
                max(r['memory']['peak_rss_mib'] for r in rs),
                max(r['memory']['children_peak_rss_mib'] for r in rs)]
               for name, rs in runs.items()])
    result['notes'] += epoch_notes(runs, args) + attribution(runs)


def epoch_notes(runs: Dict[str, List[dict]], args) -> List[str]:
    """The schedule's counts, which the cost model predicts from."""
    traj = runs['gblend-trajectory'][0]
    first = runs['gblend-first-order'][0]
    shadow = runs['gblend-shadow'][0]
    main_steps = shadow['epochs'] * shadow['iters_per_epoch']
    return [
        f'Schedule: {args.super_epochs} super-epochs of {args.super_epoch} '
        f'epochs; {traj["iters_per_epoch"]} iterations over '
        f'{traj["samples_per_epoch"]} training samples per epoch (the '
        'held-out split is left out for every strategy).',
        f'Trajectory: {traj["estimates"]} estimate(s) from '
        f'{traj["measure_calls"]} measurement passes (held-out set and '
        'training probe, forward only, one at the start and one per '
        'estimate).',
        f'Shadow: {shadow["estimates"]} estimate(s), '
        f'{shadow["shadow_copies"]} shadow copies training '
        f'{shadow["shadow_steps"]} steps in all against {main_steps} main '
        f'steps ({shadow["shadow_steps"] / main_steps:.2f} extra on the '
        'whole training set; a modality copy runs only its own branch, so '
        'a step costs less than a main step), and '
        f'{shadow["measure_calls"]} measurement passes (one per estimate: '
        'the main model and every copy on the same batches).',
        f'First order: {first["estimates"]} estimate(s), each one gradient '
        'pass over the probe per head and one forward pass over V and the '
        'probe for the main model and two shifted copies per head '
        f'({first["measure_calls"]} measurement passes in all).',
    ]


def attribution(runs: Dict[str, List[dict]]) -> List[str]:
    """How much of each estimator's extra time its measurements and shadow
    trainings account for (medians per epoch)."""
    naive = _median(runs['naive'], 'train_s') / runs['naive'][0]['epochs']
    notes = []
    for name in EPOCH_TARGETS:
        rs = runs[name]
        epochs = rs[0]['epochs']
        extra = _median(rs, 'train_s') / epochs - naive
        notes.append(
            f'{name}: {extra:.3g} s/epoch more than naive fusion, of which '
            f'estimating {_median(rs, "estimate_s") / epochs:.3g} (measuring '
            f'{_median(rs, "measure_s") / epochs:.3g}, shadow '
            f'training {_median(rs, "shadow_s") / epochs:.3g}); the rest is '
            'the remaining hook work and noise.')
    return notes


def make_result(args) -> dict:
    """The parts ``--parts`` names."""
    result = new_result(
        'strategy_overhead', 'Balancing strategies against naive fusion',
        args, {k: getattr(args, k) for k in FULL})
    if 'steps' in args.parts:
        measure_steps(args, result)
    if 'epochs' in args.parts:
        measure_epochs(args, result)
    return result


def main(argv=None) -> None:
    run_benchmark(parse_args(argv), make_result, run_probe)


if __name__ == '__main__':
    main()
