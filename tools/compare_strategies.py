"""Train every balancing strategy on the demo data over several seeds, and
compare them: a markdown table (mean ± std of the fused and per-head top-1
on the test split, final blend weights, wall time) and a bar chart.

    python tools/compare_strategies.py [--data-root data/demo_av]
        [--seeds 0 1 2] [--strategies naive-fusion gblend-online ...]
        [--work-dir work_dirs/compare] [--epochs N]

Each run is a fresh process of ``tools/train.py`` with ``--seed``, then
``tools/test.py`` on its last checkpoint with ``--dump``; the accuracies
are computed from the dumped scores. A run whose ``result.json`` exists is
not run again, so an interrupted comparison continues where it stopped;
``--reuse comparison.json`` takes the runs of an earlier comparison (say,
the one committed under docs/comparison/) and trains only the missing ones.
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

#: Strategy name -> demo config (configs/demo/<config>.py).
STRATEGIES = OrderedDict([
    ('rgb-only', 'rgb-only_r3d18_demo-av'),
    ('audio-only', 'audio-only_r18_demo-av'),
    ('naive-fusion', 'naive-fusion_r3d18-rgb_r18-audio_demo-av'),
    ('aux-heads', 'aux-heads_r3d18-rgb_r18-audio_demo-av'),
    ('gblend-offline', 'gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av'),
    ('gblend-online', 'gblend-online_r3d18-rgb_r18-audio_demo-av'),
    ('ogm-ge', 'ogm-ge_r3d18-rgb_r18-audio_demo-av'),
    ('opm', 'opm_r3d18-rgb_r18-audio_demo-av'),
    # not an estimator: the paper's Kinetics weights, fixed (a yardstick)
    ('paper-weights', 'paper-weights_r3d18-rgb_r18-audio_demo-av'),
])
HEADS = ('rgb', 'audio')

OVERRIDE = '''_base_ = [{config!r}]
{train}
val_dataloader = dict(dataset=dict({split_val}))
test_dataloader = dict(dataset=dict({split_test}))
'''


def split_args(root: str, split: str) -> str:
    return (f'ann_file={osp.join(root, split + "_list.txt")!r}, '
            f'data_prefix=dict(video={root!r})')


def override_config(config: str, data_root: Optional[str],
                    epochs: Optional[int], path: str) -> str:
    """Write a config that points ``config`` at ``data_root`` (and, with
    ``epochs``, shortens its schedule); return its path."""
    from mmengine.config import Config
    lines = []
    if data_root is not None:
        root = osp.abspath(data_root)
        base = Config.fromfile(config)
        train = split_args(root, 'train')
        if base.train_dataloader.dataset.get('type') == 'HeldOutSplitDataset':
            train = f'dataset=dict({train})'
        lines.append(OVERRIDE.format(
            config=osp.abspath(config),
            train=f'train_dataloader = dict(dataset=dict({train}))',
            split_val=split_args(root, 'val'),
            split_test=split_args(root, 'test')))
    else:
        lines.append(f'_base_ = [{osp.abspath(config)!r}]\n')
    if epochs is not None:
        lines.append(f'train_cfg = dict(max_epochs={epochs})\n'
                     'param_scheduler = []\n')
    with open(path, 'w') as f:
        f.write(''.join(lines))
    return path


def top1(scores, labels) -> float:
    import torch
    return float((torch.stack(scores).argmax(dim=1) ==
                  torch.stack(labels)).float().mean())


def accuracies(dump: str) -> Dict[str, float]:
    """Top-1 of the prediction and of each modality head, from a
    ``tools/test.py --dump`` file."""
    import pickle
    with open(dump, 'rb') as f:
        samples = pickle.load(f)
    labels = [s['gt_label'].reshape(-1)[0] for s in samples]
    result = dict(prediction=top1([s['pred_score'] for s in samples],
                                  labels))
    for head in samples[0].get('head_scores', {}):
        result[head] = top1([s['head_scores'][head] for s in samples],
                            labels)
    return result


def final_weights(checkpoint: str, config: str) -> Dict[str, float]:
    """The recognizer's blend weights in a checkpoint, by head."""
    from mmengine.config import Config

    from mmaction_gblend.checkpoint import load_checkpoint_file
    weights = load_checkpoint_file(checkpoint)['state_dict'][
        'blend_weights'].tolist()
    if len(weights) == 1:  # a uni-modal model
        return {}
    # MultiHeadRecognizer's order: the modalities by name, then fused
    heads = sorted(Config.fromfile(config).model.branches) + ['fused']
    return dict(zip(heads, weights))


def run_one(strategy: str, seed: int, args, reused: Dict[tuple, dict]
            ) -> dict:
    """Train and test one strategy with one seed (or read its result)."""
    if (strategy, seed) in reused:
        return reused[(strategy, seed)]
    work = osp.join(args.work_dir, strategy, f'seed{seed}')
    result_file = osp.join(work, 'result.json')
    if osp.exists(result_file):
        with open(result_file) as f:
            return json.load(f)
    os.makedirs(work, exist_ok=True)
    config = override_config(
        osp.join(REPO, 'configs', 'demo', STRATEGIES[strategy] + '.py'),
        # beside the work dir: the Runner writes its own copy of the
        # config into it
        args.data_root, args.epochs, work + '.py')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    start = time.time()
    with open(osp.join(work, 'train.log'), 'w') as log:
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'),
                        config, '--work-dir', work, '--seed', str(seed)],
                       stdout=log, stderr=subprocess.STDOUT, env=env,
                       check=True)
    wall = time.time() - start
    with open(osp.join(work, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    dump = osp.join(work, 'test_scores.pkl')
    with open(osp.join(work, 'test.log'), 'w') as log:
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'),
                        config, checkpoint, '--work-dir', work, '--dump',
                        dump], stdout=log, stderr=subprocess.STDOUT,
                       env=env, check=True)
    result = dict(strategy=strategy, seed=seed, wall_s=wall,
                  accuracy=accuracies(dump),
                  weights=final_weights(checkpoint, config))
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def mean_std(values: Sequence[float]) -> Optional[tuple]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _median_minutes(runs: List[dict]) -> Optional[float]:
    """Median wall time in minutes of the runs that have one (``None`` if
    none): robust to a run that shared the cores with another job."""
    walls = [r['wall_s'] / 60 for r in runs if r['wall_s'] is not None]
    return statistics.median(walls) if walls else None


def summarise(results: List[dict]) -> List[dict]:
    """One row per strategy, in the order of :data:`STRATEGIES`."""
    rows = []
    for strategy in STRATEGIES:
        runs = [r for r in results if r['strategy'] == strategy]
        if not runs:
            continue
        row = dict(strategy=strategy, seeds=len(runs),
                   prediction=mean_std([r['accuracy']['prediction']
                                        for r in runs]),
                   wall_min=_median_minutes(runs))
        for head in HEADS:
            row[head] = mean_std([r['accuracy'].get(head) for r in runs])
        weights = [r['weights'] for r in runs if r['weights']]
        row['weights'] = {
            h: mean_std([w[h] for w in weights])[0]
            for h in weights[0]
        } if weights else None
        rows.append(row)
    return rows


def _pct(value: Optional[tuple]) -> str:
    if value is None:
        return '–'
    return f'{100 * value[0]:.1f} ± {100 * value[1]:.1f}'


def _minutes(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def markdown_table(rows: List[dict]) -> str:
    lines = [
        '| strategy | prediction top-1 | RGB head | audio head | final '
        'weights (rgb, audio, fused) | wall time (min, median) | seeds |',
        '|---|---|---|---|---|---|---|'
    ]
    for row in rows:
        weights = ', '.join(f"{row['weights'][h]:.2f}"
                            for h in HEADS + ('fused', )) \
            if row['weights'] else '–'
        lines.append(
            f"| {row['strategy']} | {_pct(row['prediction'])} | "
            f"{_pct(row['rgb'])} | {_pct(row['audio'])} | {weights} | "
            f"{_minutes(row['wall_min'])} | {row['seeds']} |")
    return '\n'.join(lines) + '\n'


def bar_chart(rows: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['strategy'] for r in rows]
    means = [100 * r['prediction'][0] for r in rows]
    stds = [100 * r['prediction'][1] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    colours = ['tab:grey' if n.endswith('-only') else 'tab:blue'
               for n in names]
    ax.bar(names, means, yerr=stds, capsize=4, color=colours)
    for i, m in enumerate(means):
        ax.text(i, m + stds[i] + 0.5, f'{m:.1f}', ha='center', fontsize=8)
    ax.set_ylabel('test top-1 (%), mean ± std over seeds')
    ax.set_title('Balancing strategies on the demo data')
    ax.set_ylim(0, min(100, max(m + s for m, s in zip(means, stds)) + 8))
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default=None,
                        help="demo data (default: the configs' own, "
                        'data/demo_av)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--strategies', nargs='+',
                        choices=list(STRATEGIES), default=list(STRATEGIES))
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--epochs', type=int, default=None,
                        help='shorter schedule (for trying the tool)')
    parser.add_argument('--reuse', default=None,
                        help="an earlier run's comparison.json: its runs "
                        'are taken as they are, the missing ones trained')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    reused = {}
    if args.reuse:
        with open(args.reuse) as f:
            reused = {(r['strategy'], r['seed']): r for r in json.load(f)}
    results = []
    # seed by seed, so an interrupted comparison has every strategy once
    for seed in args.seeds:
        for strategy in args.strategies:
            print(f'{strategy}, seed {seed} ...', flush=True)
            results.append(run_one(strategy, seed, args, reused))
            acc = results[-1]['accuracy']['prediction']
            wall = results[-1]['wall_s']
            print(f'  top-1 {100 * acc:.1f}' +
                  (f' in {wall / 60:.1f} min' if wall is not None else ''),
                  flush=True)
    rows = summarise(results)
    table = markdown_table(rows)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'comparison.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.work_dir, 'comparison.json'), 'w') as f:
        json.dump(results, f, indent=1)
    bar_chart(rows, osp.join(args.work_dir, 'comparison.png'))
    print(table)
    print(f'written: {args.work_dir}/comparison.md, comparison.png, '
          'comparison.json')


if __name__ == '__main__':
    main()
