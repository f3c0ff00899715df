"""The README's results, regenerated from the committed comparisons.

Usage::

    python tools/analysis/readme_results.py            # rewrite README.md and configs/demo/metafile.yml
    python tools/analysis/readme_results.py --check    # exit 1 if either is stale

Reads the runs of ``make compare`` and ``make compare-extra`` as committed
(``docs/comparison/core/comparison.json`` and, where they exist,
``docs/comparison/online/comparison.json``, online G-Blend and its final
models over fewer seeds than the core, and
``docs/comparison/extra/comparison.json``; these reuse the core runs of
their seeds, so a strategy is taken from the first file that has it) and
writes, between the ``<!-- BEGIN generated: NAME -->`` and
``<!-- END generated: NAME -->`` markers of the README:

* ``results``: top-1 per strategy (mean ± std over its seeds), on the whole
  training set and on G-Blend's part, with G-Blend's final weights; and
  the paired differences per seed against the best single modality and
  naive fusion (mean, 95 % t-interval, seeds won);
* ``models``: the model table (config, clips, seeds, top-1, time),

and ``configs/demo/metafile.yml``: the models of both comparisons'
``metafile.yml`` (core first). Every number in those blocks is computed
here from the JSON files; nothing is typed by hand.
"""
import argparse
import json
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COMPARISONS = osp.join(REPO, 'docs', 'comparison')
README = osp.join(REPO, 'README.md')
METAFILE = osp.join(REPO, 'configs', 'demo', 'metafile.yml')
sys.path.insert(0, REPO)  # this checkout's mmaction_gblend
if osp.join(REPO, 'tools') not in sys.path:  # tools/comparison/
    sys.path.append(osp.join(REPO, 'tools'))

from comparison.derivation import Derivation  # noqa: E402
from comparison.reports import write_metafile  # noqa: E402
from comparison.statistics import summarise  # noqa: E402
from comparison.strategies import PART_SUFFIX as PART  # noqa: E402
from mmaction_gblend.evaluation.paired_statistics import \
    paired_comparison  # noqa: E402
from mmaction_gblend.models.recognizers import FUSED  # noqa: E402

#: How the README names a strategy (others keep their own name).
LABELS = {
    'naive-fusion': 'naive fusion',
    'aux-heads': 'equal auxiliary heads',
    'paper-weights': "the paper's fixed weights",
    'ogm-ge': 'OGM-GE',
    'opm': 'OPM',
    'opm-ogm-ge': 'OPM + OGM-GE',
    'gblend-online-shadow': 'online G-Blend, shadow estimator (Algorithm 1)',
    'gblend-online-trajectory': 'online G-Blend, trajectory estimator',
    'gblend-offline': 'offline G-Blend (shadow estimator), main run on '
    'all clips',
    'gblend-online-trajectory-release':
    'online G-Blend (trajectory), then V returned',
    'gblend-online-trajectory-replay':
    'online G-Blend (trajectory), replayed on all clips',
    'gblend-online-shadow-release': 'online G-Blend (shadow), then V returned',
    'gblend-online-shadow-replay':
    'online G-Blend (shadow), replayed on all clips',
}


def label(name: str) -> str:
    """The README's name of a strategy (``rgb-only`` -> ``rgb only``)."""
    if name in LABELS:
        return LABELS[name]
    if name.endswith('-only'):
        modality = name[:-len('-only')]
        return f"{'RGB' if modality == 'rgb' else modality} only"
    return name


def merged_runs(files: Sequence[str]) -> List[dict]:
    """The runs of several comparison.json files: each strategy from the
    first file that has it."""
    runs: List[dict] = []
    taken = set()
    for path in files:
        with open(path) as f:
            these = json.load(f)
        names = {r['strategy'] for r in these} - taken
        runs += [r for r in these if r['strategy'] in names]
        taken |= names
    return runs


def _minus(text: str) -> str:
    return text.replace('-', '−')


def _seeds(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f'{seeds[0]}–{seeds[-1]}'
    return ', '.join(str(s) for s in seeds)


def _top1(row: dict) -> str:
    mean, std = row['prediction']
    return f'{100 * mean:.1f} ± {100 * std:.1f}'


def _weights(row: dict) -> str:
    w = row.get('weights') or {}
    return ', '.join(f"{h} {v['mean']:.2f}" for h, v in w.items())


def _clips(rows: Sequence[dict]) -> str:
    counts = sorted({n for r in rows for n in r['train_samples']})
    return '/'.join(str(n) for n in counts) or '?'


def _paired_cell(runs: List[dict], strategy: str,
                 reference: Optional[str]) -> str:
    if reference is None:
        return ''
    c = paired_comparison(runs, strategy, reference,
                          lambda r: r['accuracy']['prediction'])
    if c is None:
        return ''
    won = round(c['won'] * c['n'])
    if c['low'] is None:
        interval = ''
    else:
        interval = f" [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
    return _minus(f"{100 * c['mean']:+.1f}{interval}, won {won}/{c['n']}")


def _base_names(rows: Dict[str, dict]) -> List[str]:
    """The strategies without the part suffix, in the rows' order."""
    names: List[str] = []
    for name in rows:
        base = name[:-len(PART)] if name.endswith(PART) else name
        if base not in names:
            names.append(base)
    return names


def results_block(runs: List[dict], sources: Sequence[str]) -> str:
    """The README's results block: the strategies' table and the paired
    differences."""
    demo = Derivation()
    rows = {r['strategy']: r for r in summarise(
        runs, list(demo.strategies), demo.heads)}
    strategies = demo.strategies
    whole = [r for n, r in rows.items() if not strategies[n].part]
    part = [r for n, r in rows.items() if strategies[n].part]
    singles = [n for n in rows if n.split('@')[0].endswith('-only')]

    def best(names):
        return max(names, key=lambda n: rows[n]['prediction'][0]) \
            if names else None

    best_whole = best([n for n in singles if not n.endswith(PART)])
    best_part = best([n for n in singles if n.endswith(PART)])
    naive_whole = 'naive-fusion' if 'naive-fusion' in rows else None
    naive_part = 'naive-fusion' + PART if 'naive-fusion' + PART in rows \
        else None
    lines = [
        'Generated by `python tools/analysis/readme_results.py` from ' +
        ' and '.join(f'[`{osp.relpath(s, REPO)}`]({osp.relpath(s, REPO)})'
                     for s in sources) +
        ' (each strategy from the first file that has it). Test top-1 %, '
        'mean ± std over the seeds shown; G-Blend: its final blend '
        'weights, mean over seeds.', '',
        f'| strategy | seeds | whole training set ({_clips(whole)} clips) '
        f"| G-Blend's part ({_clips(part)} clips) |", '| --- | --- | --- | --- |'
    ]
    for base in _base_names(rows):
        at_whole = rows.get(base) if not strategies[base].part else None
        at_part = rows.get(base + PART) or (
            rows.get(base) if strategies[base].part else None)
        # the seeds column is the first cell's; a cell over other seeds
        # (a part run of the extra set) names its own
        seeds = sorted((at_whole or at_part)['seed_list'])
        cells = []
        for row in (at_whole, at_part):
            if row is None:
                cells.append('')
                continue
            cell = _top1(row)
            if strategies[row['strategy']].gblend and row.get('weights'):
                cell += f' ({_weights(row)})'
            if sorted(row['seed_list']) != seeds:
                cell += f' (seeds {_seeds(row["seed_list"])})'
            cells.append(cell)
        lines.append(f'| {label(base)} | {_seeds(seeds)} | {cells[0]} | '
                     f'{cells[1]} |')
    lines += [
        '', 'Paired per seed, top-1 points: mean difference, 95 % '
        't-interval, seeds won. The same-clips column compares runs on '
        "G-Blend's part (G-Blend and the baselines' `@gblend-part` runs); "
        f'the whole-set column compares G-Blend ({_clips(part)} clips) or '
        f'a baseline ({_clips(whole)}) with the references trained on the '
        'whole set; G-Blend is also compared with the fixed weightings '
        'trained on the whole set.', '',
        '| comparison | same clips | against the whole-set reference |',
        '| --- | --- | --- |'
    ]
    fixed = [('equal auxiliary heads', 'aux-heads'),
             ("the paper's fixed weights", 'paper-weights')]
    for base in _base_names(rows):
        if base.endswith('-only'):
            continue
        gblend = strategies[base].gblend
        on_part = base if strategies[base].part else base + PART
        references = [('naive fusion', naive_part, naive_whole),
                      (label(best_whole or ''), best_part, best_whole)]
        if gblend:
            references += [(name, ref + PART, ref) for name, ref in fixed
                           if ref in rows]
        for ref_name, ref_part, ref_whole in references:
            if base == 'naive-fusion' and ref_name == 'naive fusion':
                continue
            same = _paired_cell(runs, on_part, ref_part) \
                if on_part in rows and ref_part in rows else ''
            other = _paired_cell(runs, base, ref_whole) \
                if base in rows else ''
            if same or other:
                lines.append(f'| {label(base)} − {ref_name} | {same} | '
                             f'{other} |')
    lines += ['', *prediction_lines(runs, rows)]
    return '\n'.join(lines) + '\n'


def prediction_lines(runs: List[dict], rows: Dict[str, dict]) -> List[str]:
    """Each multi-head strategy's prediction against its best head alone
    (the head with the best mean top-1 over the seeds), paired per seed."""
    lines = [
        'The prediction (the trained heads\' probabilities mixed by weights '
        'fitted on the val split after training) against the strategy\'s '
        'best head alone, paired per seed:', '',
        '| strategy | prediction | best head alone | prediction − best head |',
        '| --- | --- | --- | --- |'
    ]
    for name, row in rows.items():
        heads = {h: v for h, v in row['heads'].items() if v is not None}
        if name.split('@')[0].endswith('-only') or \
                FUSED not in heads:
            continue
        best = max(heads, key=lambda h: heads[h][0])
        these = [r for r in runs if r['strategy'] == name]
        head_runs = [dict(strategy='head', seed=r['seed'],
                          accuracy=dict(prediction=r['accuracy'][best]))
                     for r in these]
        cell = _paired_cell(these + head_runs, name, 'head')
        if not cell:
            continue
        lines.append(f'| {label(name)} | {100 * row["prediction"][0]:.1f} | '
                     f'{best} {100 * heads[best][0]:.1f} | {cell} |')
    return lines


def models_block(index: dict) -> str:
    """The README's model table, from the model index."""
    lines = [
        'Generated by `python tools/analysis/readme_results.py` from '
        '[`configs/demo/metafile.yml`](configs/demo/metafile.yml). Test '
        'top-1 %, mean ± std over seeds; time: train + test on 2 CPU '
        'cores, median over seeds:', '',
        '| model (config in `configs/demo/`) | trained on | seeds | test top-1 | min |',
        '| --- | --- | --- | --- | --- |'
    ]
    for m in index['Models']:
        meta = m['Metadata']
        metrics = m['Results'][0]['Metrics']
        config = m['Config']
        shown = f'`{osp.basename(config)}`' if config.startswith(
            'configs/') else 'derived by the tool'
        clips = meta['Training Clips']
        minutes = meta.get('Training and Test Time (min, median)')
        lines.append(
            f"| {m['Name']} ({shown}) | {clips} clips | {meta['Seeds']} | "
            f"{metrics['Top 1 Accuracy']:.1f} ± "
            f"{metrics['Top 1 Accuracy Std']:.1f} | "
            f"{'' if minutes is None else f'{minutes:.1f}'} |")
    return '\n'.join(lines) + '\n'


def merged_index(files: Sequence[str]) -> dict:
    """The model indexes of several comparisons: each model from the first
    that has it."""
    index = None
    names = set()
    for path in files:
        with open(path) as f:
            this = yaml.safe_load(f)
        if index is None:
            index = dict(this, Models=[])
        for m in this['Models']:
            if m['Name'] not in names:
                index['Models'].append(m)
                names.add(m['Name'])
    return index


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the body between the markers of block ``name``
    replaced."""
    pattern = re.compile(
        rf'(<!-- BEGIN generated: {name} -->\n).*?'
        rf'(<!-- END generated: {name} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f'README.md has no generated block {name!r} '
                         f'(<!-- BEGIN generated: {name} --> ... '
                         f'<!-- END generated: {name} -->)')
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def render(readme: str, comparisons: str = COMPARISONS
           ) -> Tuple[str, dict]:
    """The README text and model index the committed comparisons give."""
    sources = [osp.join(comparisons, name, 'comparison.json')
               for name in ('core', 'online', 'extra')]
    sources = [p for p in sources if osp.exists(p)]
    if not sources:
        raise SystemExit(f'no comparison.json under {comparisons}')
    index = merged_index([osp.join(osp.dirname(s), 'metafile.yml')
                          for s in sources])
    text = replace_block(readme, 'results',
                         results_block(merged_runs(sources), sources))
    text = replace_block(text, 'models', models_block(index))
    return text, index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if README.md or the metafile is stale')
    args = parser.parse_args(argv)
    with open(README) as f:
        readme = f.read()
    text, index = render(readme)
    if args.check:
        stale = []
        if text != readme:
            stale.append('README.md')
        with open(METAFILE) as f:
            if yaml.safe_load(f) != index:
                stale.append(osp.relpath(METAFILE, REPO))
        if stale:
            print(f'stale: {", ".join(stale)} (run python '
                  'tools/analysis/readme_results.py)')
            return 1
        print('README.md and the metafile match the committed comparisons')
        return 0
    with open(README, 'w') as f:
        f.write(text)
    write_metafile(index, METAFILE)
    print(f'written: README.md, {osp.relpath(METAFILE, REPO)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
