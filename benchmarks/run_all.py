"""Run every benchmark and write ``benchmarks/RESULTS.md``.

Each benchmark runs in its own process and writes a JSON result; this
script then renders them, with the machine's description, into one
markdown file: a summary of every figure against its target, then a
section per benchmark with its absolute numbers.

    python benchmarks/run_all.py               # full run, about an hour
    python benchmarks/run_all.py --quick       # smoke run, a few minutes
    python benchmarks/run_all.py --render-only # re-render from the JSONs

A quick run writes to ``work_dirs/benchmarks/`` unless told otherwise, so
it never replaces the committed ``RESULTS.md``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from _common import (BENCH_DIR, DEFAULT_WORK_DIR, figure_row,
                     machine_description, markdown_table, render_result,
                     run_child, say)

SCRIPTS = ('data_loading', 'train_step', 'strategy_overhead', 'scaling')
MACHINE_FILE = 'machine.json'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='smoke run of every script (numbers are not '
                        'measurements)')
    parser.add_argument('--scripts', nargs='+', choices=SCRIPTS,
                        default=list(SCRIPTS), help='which benchmarks')
    parser.add_argument('--repeats', type=int,
                        help='repetitions for every script (default: each '
                        "script's own)")
    parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                        help='data and runs (default: %(default)s)')
    parser.add_argument('--json-dir',
                        help='where the JSON results go (default: '
                        'benchmarks/results, or WORK_DIR/quick-results '
                        'with --quick)')
    parser.add_argument('--results',
                        help='the markdown file (default: '
                        'benchmarks/RESULTS.md, or WORK_DIR/RESULTS.quick.md '
                        'with --quick)')
    parser.add_argument('--render-only', action='store_true',
                        help='measure nothing; render the JSON results')
    args = parser.parse_args(argv)
    work = osp.abspath(args.work_dir)
    if args.json_dir is None:
        args.json_dir = osp.join(work, 'quick-results') if args.quick \
            else osp.join(BENCH_DIR, 'results')
    if args.results is None:
        args.results = osp.join(work, 'RESULTS.quick.md') if args.quick \
            else osp.join(BENCH_DIR, 'RESULTS.md')
    return args


def run_script(name: str, args: argparse.Namespace) -> dict:
    """Run one benchmark; return its result, or a record of its failure."""
    out = osp.join(args.json_dir, f'{name}.json')
    command = ['python', osp.join(BENCH_DIR, f'{name}.py'), '--out', out,
               '--work-dir', args.work_dir]
    if args.quick:
        command.append('--quick')
    if args.repeats:
        command += ['--repeats', args.repeats]
    say(f'== {name}: {" ".join(map(str, command[1:]))}')
    start = time.time()
    try:
        # the scripts print their tables and write the JSON file
        run_child(command, timeout=6 * 3600, expect_result=False,
                  log_file=osp.join(args.json_dir, f'{name}.log'))
    except RuntimeError as err:
        say(f'   {name} FAILED: {str(err)[-2000:]}')
        return dict(script=name, failed=str(err)[-2000:],
                    wall_s=time.time() - start)
    with open(out) as f:
        result = json.load(f)
    result['wall_s'] = time.time() - start
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    say(f'   {name} done in {result["wall_s"] / 60:.1f} min')
    return result


def load_results(args: argparse.Namespace) -> List[dict]:
    results = []
    for name in args.scripts:
        path = osp.join(args.json_dir, f'{name}.json')
        if osp.exists(path):
            with open(path) as f:
                results.append(json.load(f))
        else:
            results.append(dict(script=name, failed=f'{path} not found'))
    return results


# rendering -------------------------------------------------------------------


def machine_table(machine: dict) -> str:
    rows = [
        ('date', machine['date']), ('CPU', machine['cpu']),
        ('cores (logical / usable)',
         f'{machine["logical_cores"]} / {machine["usable_cores"]}'),
        ('memory', f'{machine["memory_gib"]} GiB'),
        ('GPU', machine['gpu'] or 'none'), ('OS', machine['host_os']),
        ('Python', machine['python']),
        ('torch (threads)',
         f'{machine["torch"]} ({machine["torch_threads"]})'),
        ('mmengine / mmaction / mmcv',
         f'{machine["mmengine"]} / {machine["mmaction"]} / '
         f'{machine["mmcv"]}'),
        ('decord / librosa / numpy',
         f'{machine["decord"]} / {machine["librosa"]} / '
         f'{machine["numpy"]}'),
        ('load average at start (1, 5, 15 min)', machine['load_average']),
    ]
    return markdown_table(('', ''), rows)


def summary_table(results: List[dict]) -> str:
    rows = []
    for result in results:
        for fig in result.get('figures', []):
            rows.append([result['script']] + figure_row(fig)[:5])
    return markdown_table(('benchmark', 'figure', 'ratio (median)',
                           'min–max', 'target', 'verdict'), rows)


def section(result: dict) -> str:
    head = f'## {result["script"]}'
    if result.get('failed'):
        return f'{head}\n\nFAILED:\n\n```\n{result["failed"]}\n```'
    settings = ', '.join(f'{k}={v}' for k, v in result['settings'].items())
    meta = (f'{result["title"]}. Device {result["device"]}, '
            f'{result["repeats"]} repetition(s), {settings}; '
            f'{result["started"]} to {result["finished"]}, load average '
            f'{result["load_average_start"]} -> '
            f'{result["load_average_end"]}.')
    if 'wall_s' in result:
        meta += f' Took {result["wall_s"] / 60:.1f} min.'
    return f'{head}\n\n{meta}\n\n{render_result(result)}'


HOW_TO_READ = """\
Every figure is the ratio of two configurations measured side by side in
the same run, alternating (A B, B A, ...) so that changes in the machine's
load hit both; the ratio is the median of the per-repetition ratios, and
min–max is their range. Warm-up iterations are discarded. Absolute numbers
are medians too. How each is measured, and the cost model of each
estimator: `benchmarks/README.md`."""


def render(results: List[dict], machine: dict, quick: bool,
           wall_s: Optional[float]) -> str:
    parts = ['# Benchmark results']
    if quick:
        parts.append('**QUICK SMOKE RUN** (`--quick`): tiny sizes, one '
                     'repetition; the numbers only show that the scripts '
                     'work. They are not measurements.')
    took = f' in {wall_s / 60:.0f} min' if wall_s else ''
    parts.append('Written by `python benchmarks/run_all.py'
                 f'{" --quick" if quick else ""}`{took}.\n\n' + HOW_TO_READ)
    parts.append('## Machine\n\n' + machine_table(machine))
    parts.append('## Every target\n\n' + summary_table(results))
    parts += [section(r) for r in results]
    return '\n\n'.join(parts) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.json_dir, exist_ok=True)
    machine_path = osp.join(args.json_dir, MACHINE_FILE)
    wall_s = None
    if args.render_only:
        with open(machine_path) as f:
            machine = json.load(f)
    else:
        machine = machine_description()
        with open(machine_path, 'w') as f:
            json.dump(machine, f, indent=1)
        start = time.time()
        for name in args.scripts:
            run_script(name, args)
        wall_s = time.time() - start
    results = load_results(args)
    os.makedirs(osp.dirname(osp.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as f:
        f.write(render(results, machine, args.quick, wall_s))
    say(f'wrote {args.results}')
    return 1 if any(r.get('failed') for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
