"""How far each G-Blend estimator's weights are from Algorithm 1's.

Reads runs made with ``shadow_check=True`` (Algorithm 1 run beside the
estimator from the same checkpoints, its weights recorded, not used): the
mechanism task's records (``benchmarks/mechanism_task.py --out``, the
``*-check`` strategies) and G-Blend histories of demo runs
(``gblend_history.jsonl``). For each estimator, over every estimate of
every seed: the largest absolute weight difference over heads, its mean,
median and maximum, and the share of estimates within 0.10 and 0.25; the
first estimate of each run separately. With the shadow estimator itself,
the check trains on other sample orders: the estimator's repeatability.

    python benchmarks/estimator_agreement.py \\
        --mechanism benchmarks/results/estimators/mechanism_test.jsonl \\
        --history demo:first_order=work_dirs/estimators_demo/first_order_s*/gblend_history.jsonl \\
        --out benchmarks/results/estimators/agreement.md
"""
import argparse
import glob
import json
import statistics
from collections import defaultdict
from typing import Dict, List, Sequence


def differences(histories: Sequence[List[dict]]) -> Dict[str, List[float]]:
    """Every checked estimate's largest weight difference; and the first
    estimate's of each history."""
    out = dict(all=[], first=[])
    for history in histories:
        checked = [e for e in history if 'shadow_check' in e]
        out['all'] += [e['shadow_check']['max_abs_difference']
                       for e in checked]
        out['first'] += [e['shadow_check']['max_abs_difference']
                         for e in checked[:1]]
    return out


def row(task: str, name: str, runs: int, diffs: Dict[str, List[float]]
        ) -> str:
    values = diffs['all']
    if not values:
        return f'| {task} | {name} | {runs} | 0 | | | | | | |'
    near = sum(v <= 0.10 for v in values) / len(values)
    within = sum(v <= 0.25 for v in values) / len(values)
    first = statistics.fmean(diffs['first'])
    return (f'| {task} | {name} | {runs} | {len(values)} | '
            f'{statistics.fmean(values):.3f} | '
            f'{statistics.median(values):.3f} | {max(values):.3f} | '
            f'{near:.0%} | {within:.0%} | {first:.3f} |')


def mechanism_rows(path: str) -> List[str]:
    by_strategy = defaultdict(list)
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if record['strategy'].endswith('-check'):
                by_strategy[record['strategy']].append(record['history'])
    split = {json.loads(line)['split'] for line in open(path)}
    task = f'mechanism ({"/".join(sorted(split))})'
    return [row(task, name, len(h), differences(h))
            for name, h in sorted(by_strategy.items())]


def history_rows(spec: str) -> List[str]:
    """``task:name=glob`` of history files."""
    task, rest = spec.split(':', 1)
    name, pattern = rest.split('=', 1)
    histories = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            histories.append([json.loads(line) for line in f])
    return [row(task, name, len(histories), differences(histories))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mechanism', nargs='*', default=[],
                        help="mechanism_task.py records (JSON lines)")
    parser.add_argument('--history', nargs='*', default=[],
                        help='TASK:NAME=GLOB of gblend_history.jsonl files')
    parser.add_argument('--out', help='write the table here as well')
    args = parser.parse_args(argv)
    lines = [
        '| task | estimator | runs | estimates | mean | median | largest | '
        '≤ 0.10 | ≤ 0.25 | first estimate, mean |',
        '|---|---|---|---|---|---|---|---|---|---|']
    for path in args.mechanism:
        lines += mechanism_rows(path)
    for spec in args.history:
        lines += history_rows(spec)
    text = '\n'.join(lines) + '\n'
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
