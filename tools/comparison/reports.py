"""What a comparison writes: ``comparison.md`` (the setting, the
strategies' table, the paired differences, the time), ``metafile.yml``
(mmaction2's model index) and ``comparison.png`` (a bar chart)."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmaction_gblend.models.recognizers import FUSED
from . import REPO
from .derivation import Derivation
from .statistics import paired_tables, summarise
from .strategies import PART_SUFFIX, epochs_text, gblend_epochs


def _pct(value: Optional[tuple]) -> str:
    if value is None:
        return '–'
    return f'{100 * value[0]:.1f} ± {100 * value[1]:.1f}'


def _points(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{100 * value:+.1f}'


def _minutes(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def _shown(path: str) -> str:
    """A path relative to the repository where it is inside it."""
    rel = osp.relpath(path, REPO)
    return path if rel.startswith('..') else rel


def format_weights(weights: Optional[dict]) -> str:
    """``rgb 0.49 [0.40–0.55], audio 0.03, fused 0.48 [...]``: the mean
    final weight of each head, and its range over seeds where it varies."""
    if not weights:
        return '–'
    cells = []
    for head, w in weights.items():
        cell = f"{head} {w['mean']:.2f}"
        if f"{w['min']:.2f}" != f"{w['max']:.2f}":
            cell += f" [{w['min']:.2f}–{w['max']:.2f}]"
        cells.append(cell)
    return ', '.join(cells)


def markdown_table(rows: List[dict]) -> str:
    """The strategies' table (top-1 in %, mean ± std over seeds)."""
    heads = list(rows[0]['heads']) if rows else []
    lines = [
        '| strategy | prediction top-1 | ' +
        ''.join(f'{h} head | ' for h in heads) +
        'final weights (mean [min–max] over seeds) | train clips | '
        'train + test time (min, median) | seeds |',
        '|---|---|' + '---|' * len(heads) + '---|---|---|---|'
    ]
    for row in rows:
        clips = '/'.join(str(n) for n in row['train_samples']) or '–'
        lines.append(
            f"| {row['strategy']} | {_pct(row['prediction'])} | " +
            ''.join(f'{_pct(row["heads"][h])} | ' for h in heads) +
            f"{format_weights(row['weights'])} | {clips} | "
            f"{_minutes(row['wall_min'])} | {row['seeds']} |")
    return '\n'.join(lines) + '\n'


def markdown_paired(tables: List[dict]) -> str:
    """The paired-difference tables (top-1 points)."""
    lines = []
    for table in tables:
        lines += [
            f"## Paired differences against {table['label']}: "
            f"`{table['reference']}`", '',
            'Per seed: strategy minus reference, top-1 points; mean, 95% '
            't-interval, share of seeds with a positive (won), zero (tied) '
            'and negative (lost) difference.', '',
            '| strategy | seeds | mean diff | 95% interval | won | tied | '
            'lost |', '|---|---|---|---|---|---|---|'
        ]
        for c in table['rows']:
            interval = 'n/a' if c['low'] is None else \
                f"[{_points(c['low'])}, {_points(c['high'])}]"
            lines.append(
                f"| {c['strategy']} | {c['n']} | {_points(c['mean'])} | "
                f"{interval} | {c['won']:.0%} | {c['tied']:.0%} | "
                f"{c['lost']:.0%} |")
        lines.append('')
    return '\n'.join(lines)


def prediction_rule(model: dict) -> str:
    """What a strategy's prediction is, by the base config's model (every
    strategy keeps its ``prediction``)."""
    if model.get('prediction', 'head') == 'mix':
        return ("the trained heads' probabilities mixed by weights fitted "
                "on the val split after training (the base config's "
                "prediction='mix'; a single modality: its head)")
    head = model.get('predict_head') or FUSED
    return f'the {head} head (the modality\'s for a single modality)'


def report(results: Sequence[dict], derivation: Derivation,
           wall: Optional[float] = None) -> str:
    """comparison.md: the setting, the strategies' table, the paired
    differences and the call's wall time."""
    d = derivation
    rows = summarise(results, list(d.strategies), d.modalities)
    epochs = gblend_epochs(d.max_epochs)
    lines = [
        f'# Strategies on `{_shown(d.config)}`', '',
        f"Modalities: {', '.join(d.modalities)}; {epochs_text(d.max_epochs)}"
        f"{' (--epochs)' if d.epochs else ''}; G-Blend: warm-up and "
        f'super-epochs of {epochs_text(epochs)}, held-out fraction '
        f'{d.heldout_fraction} '
        + (f'in whole groups (`{d.heldout_group}`) '
           if d.heldout_group is not None else '') +
        f'(split seed {d.heldout_seed}). `{PART_SUFFIX}`: trained on the '
        'clips G-Blend trains on (the training set minus its held-out '
        f'part). Top-1 on the {d.eval_split} split, %, mean ± std over '
        f'seeds; the prediction: {prediction_rule(d.cfg.model)}.', ''
    ]
    if d.notes:
        lines += [f'Note: {n}.' for n in d.notes] + ['']
    lines += [markdown_table(rows),
              markdown_paired(paired_tables(results, d.strategies))]
    lines.append(run_time_line(results))
    if wall is not None:
        lines.append(f'Total wall time of this call: {wall / 60:.1f} min '
                     '(runs resumed or reused are not timed again).')
    return '\n'.join(lines) + '\n'


def run_time_line(results: Sequence[dict]) -> str:
    """The runs' own train + test time, in all and per seed (as measured
    when each ran, also for runs reused or resumed here)."""
    timed = [r for r in results if r.get('wall_s') is not None]
    per_seed: Dict[int, float] = {}
    for r in timed:
        per_seed[r['seed']] = per_seed.get(r['seed'], 0.0) + r['wall_s']
    seeds = ', '.join(f'seed {s} {t / 60:.1f}'
                      for s, t in sorted(per_seed.items()))
    total = sum(per_seed.values())
    return (f"The runs' own train + test time: {total / 60:.1f} min for "
            f'{len(timed)} runs ({seeds} min).\n')


def _metadata(row: dict, derivation: Derivation, dataset: str) -> dict:
    return dict([
        ('Base Config', _shown(derivation.config)),
        ('Training Data', dataset),
        ('Training Clips', row['train_samples'][0]
         if len(row['train_samples']) == 1 else row['train_samples']),
        ('Epochs', derivation.max_epochs),
        ('Batch Size', derivation.cfg.train_dataloader.get('batch_size')),
        ('Seeds', row['seeds']),
        ('Training Resources', f'{os.cpu_count()} CPU cores'),
        ('Training and Test Time (min, median)',
         None if row['wall_min'] is None else round(row['wall_min'], 1)),
    ])


def metafile(rows: List[dict], derivation: Derivation, work_dir: str
             ) -> dict:
    """The comparison as an mmaction2 model index (``metafile.yml``): one
    model per strategy with its config (the demo's own, where it has one),
    mean and std of the test top-1 over seeds, median training time and
    the command that reproduces it."""
    # mmaction2's config names end in _<dataset>: '..._demo-av' -> demo-av
    dataset = osp.splitext(osp.basename(
        derivation.config))[0].rsplit('_', 1)[-1]
    models = []
    for row in rows:
        name = row['strategy']
        strategy = derivation.strategies[name]
        config = derivation.demo_config(name) or \
            osp.join(work_dir, name, 'seed0.py')
        mean, std = row['prediction']
        seeds = ' '.join(str(s) for s in row['seed_list'])
        models.append(dict([
            ('Name', name),
            ('Config', _shown(config)),
            ('In Collection', 'Balancing strategies'),
            ('Metadata', _metadata(row, derivation, dataset)),
            ('Modality', '+'.join(
                [strategy.modality] if strategy.modality
                else derivation.modalities)),
            ('Results', [dict(
                Dataset=dataset, Task='Action Recognition',
                Metrics={'Top 1 Accuracy': round(100 * mean, 2),
                         'Top 1 Accuracy Std': round(100 * std, 2)})]),
            ('Reproduce',
             f'python tools/compare_strategies.py --config '
             f'{_shown(derivation.config)} --strategies {name} '
             f'--seeds {seeds} --work-dir {_shown(work_dir)}'),
        ]))
    return dict(Collections=[dict(
        Name='Balancing strategies',
        README='README.md',
        Paper=dict(URL='https://arxiv.org/abs/1905.12681',
                   Title='What Makes Training Multi-Modal Classification '
                   'Networks Hard?'))], Models=models)


def write_metafile(index: dict, path: str) -> None:
    """Write a model index as YAML, its keys in their order."""
    import yaml

    class _Ordered(yaml.SafeDumper):
        pass

    _Ordered.add_representer(
        dict, lambda d, v: d.represent_mapping(
            'tag:yaml.org,2002:map', v.items()))
    with open(path, 'w') as f:
        yaml.dump(index, f, Dumper=_Ordered, sort_keys=False,
                  allow_unicode=True, width=100)


def bar_chart(rows: List[dict], derivation: Derivation, path: str) -> None:
    """Top-1 per strategy, mean ± std over seeds: G-Blend in orange, the
    single modalities in grey, the ``@gblend-part`` baselines hatched."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['strategy'] for r in rows]
    kinds = [derivation.strategies[n] for n in names]
    means = [100 * r['prediction'][0] for r in rows]
    stds = [100 * r['prediction'][1] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    colours = ['tab:orange' if s.gblend else
               'tab:grey' if s.modality else 'tab:blue' for s in kinds]
    bars = ax.bar(names, means, yerr=stds, capsize=4, color=colours)
    for bar, s in zip(bars, kinds):
        if s.part and not s.gblend:
            bar.set_hatch('//')
    for i, m in enumerate(means):
        ax.text(i, m + stds[i] + 0.5, f'{m:.1f}', ha='center', fontsize=8)
    ax.set_ylabel('test top-1 (%), mean ± std over seeds')
    ax.set_title('Balancing strategies on '
                 f'{osp.splitext(osp.basename(derivation.config))[0]}')
    ax.set_ylim(0, min(100, max(m + s for m, s in zip(means, stds)) + 8))
    plt.setp(ax.get_xticklabels(), rotation=35, ha='right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
