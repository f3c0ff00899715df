"""What on-the-fly modulation did in a comparison's runs, epoch by epoch.

    python tools/analysis/modulation_summary.py WORK_DIR \
        [--out modulation.md] [--copy-to DIR]

Reads ``WORK_DIR/<strategy>/seed<N>/modulation_history.jsonl`` (written by
``OnTheFlyModulationHook``; ``WORK_DIR`` is a ``tools/compare_strategies.py``
work dir) and writes, per strategy, a markdown table of the epoch means
over seeds: each modality's discrepancy ratio ρ (its score over the
other's), OGM-GE's coefficient ``k`` and OPM's drop probability ``q`` and
dropped share, where the run has them. ``--copy-to`` also copies the
history files, laid out as in ``WORK_DIR``
(``DIR/<strategy>/seed<N>/modulation_history.jsonl``), so that a committed
summary keeps its evidence beside it and can be made again from it.
"""
import argparse
import os
import os.path as osp
import re
import shutil
import statistics
from typing import Dict, List, Optional

from mmaction_gblend.engine.history_file import read_history

HISTORY = 'modulation_history.jsonl'
#: The per-modality entries of a history line, with their column names.
COLUMNS = (('ratio', 'ρ'), ('ogm_k', 'k'), ('opm_q', 'q'),
           ('opm_dropped', 'dropped'))


def find_histories(work_dir: str) -> Dict[str, Dict[int, str]]:
    """``{strategy: {seed: history file}}`` of the runs that have one."""
    found: Dict[str, Dict[int, str]] = {}
    for strategy in sorted(os.listdir(work_dir)):
        folder = osp.join(work_dir, strategy)
        if not osp.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            match = re.fullmatch(r'seed(\d+)', entry)
            path = osp.join(folder, entry, HISTORY)
            if match and osp.isfile(path):
                found.setdefault(strategy, {})[int(match[1])] = path
    return found


def epoch_means(runs: List[List[dict]]) -> List[dict]:
    """Per epoch, the mean over runs of every per-modality entry (and of
    ``opm_executed``); epochs where modulation was off (no steps) are
    kept with no entries."""
    by_epoch: Dict[int, List[dict]] = {}
    for entries in runs:
        for e in entries:
            by_epoch.setdefault(e['epoch'], []).append(e)
    rows = []
    for epoch in sorted(by_epoch):
        entries = by_epoch[epoch]
        row: dict = dict(epoch=epoch, runs=len(entries))
        for key, _ in COLUMNS:
            values = [e[key] for e in entries if key in e]
            if values:
                row[key] = {m: statistics.fmean(v[m] for v in values)
                            for m in values[0]}
        executed = [e['opm_executed'] for e in entries
                    if 'opm_executed' in e]
        if executed:
            row['opm_executed'] = statistics.fmean(executed)
        rows.append(row)
    return rows


def markdown(strategy: str, seeds: List[int], rows: List[dict]) -> str:
    """One strategy's table."""
    modalities: List[str] = []
    for row in rows:
        for key, _ in COLUMNS:
            for m in row.get(key, {}):
                if m not in modalities:
                    modalities.append(m)
    keys = [(k, name) for k, name in COLUMNS
            if any(k in row for row in rows)]
    header = ['epoch'] + [f'{name} {m}' for k, name in keys
                          for m in modalities]
    if any('opm_executed' in row for row in rows):
        header.append('OPM executed')
    lines = [f'### {strategy} (seeds {", ".join(map(str, seeds))})', '',
             '| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for row in rows:
        cells = [str(row['epoch'])]
        for k, _ in keys:
            cells += [_cell(row.get(k, {}).get(m)) for m in modalities]
        if 'OPM executed' in header:
            cells.append(_cell(row.get('opm_executed')))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _cell(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.3f}'


def summary(work_dir: str) -> str:
    """The markdown of every strategy of ``work_dir`` with histories."""
    found = find_histories(work_dir)
    if not found:
        raise SystemExit(f'no {HISTORY} under {work_dir}/<strategy>/seed<N>/')
    parts = [
        '# On-the-fly modulation, epoch by epoch', '',
        f'From the `{HISTORY}` of each run (`tools/analysis/'
        'modulation_summary.py`): the means over each epoch\'s steps, '
        'averaged over seeds. ρ: a modality\'s mean true-class score over '
        'the other\'s (OGM-GE modulates the modality with ρ > 1); k: '
        'OGM-GE\'s gradient coefficient (1: untouched); q: OPM\'s drop '
        'probability; dropped: the share of samples whose features OPM '
        'dropped. A dash: that part was off in that epoch (outside its '
        'window).', ''
    ]
    for strategy, files in found.items():
        runs = [read_history(path) for path in files.values()]
        parts.append(markdown(strategy, sorted(files), epoch_means(runs)))
    return '\n'.join(parts)


def copy_histories(work_dir: str, target: str) -> None:
    """Copy each history to ``target/<strategy>/seed<N>/``."""
    for strategy, files in find_histories(work_dir).items():
        for seed, path in files.items():
            folder = osp.join(target, strategy, f'seed{seed}')
            os.makedirs(folder, exist_ok=True)
            shutil.copyfile(path, osp.join(folder, HISTORY))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out', help='markdown file (default: print)')
    parser.add_argument('--copy-to', help='copy the histories here')
    args = parser.parse_args(argv)
    text = summary(args.work_dir)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
        print(f'written: {args.out}')
    else:
        print(text)
    if args.copy_to:
        copy_histories(args.work_dir, args.copy_to)


if __name__ == '__main__':
    main()
