"""Plot G-Blend weights and OGR over epochs from gblend_history.jsonl.

    python tools/analysis/plot_blend_weights.py WORK_DIR_OR_JSONL \
        [--out blend_weights.png]

Top: each head's weight over the whole training: the weights it started
with (the warm-up's), then those set at each estimate or replayed change,
each held until the next one and the last until the end of training.
Bottom: each head's overfitting-to-generalization ratio |O/G| (log scale;
lower is better; missing where G was 0 or the inputs were not finite).
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from mmaction_gblend.engine import history_file  # noqa: E402


def read_history(path: str) -> List[dict]:
    """The entries of a run, in order (estimates, replayed changes, the
    release of V); ``path`` is the file or work dir."""
    if osp.isdir(path):
        path = osp.join(path, 'gblend_history.jsonl')
    if not osp.isfile(path):
        raise FileNotFoundError(f'no G-Blend history at {path}')
    entries = history_file.read_history(path)
    if not entries:
        raise ValueError(f'{path} has no estimates')
    return entries


def series(entries: List[dict], key: str) -> Dict[str, List]:
    """``{head: [(epoch, value or None), ...]}`` of one quantity."""
    out: Dict[str, List] = {}
    for entry in entries:
        heads = entry.get('heads')
        if heads is None:  # a replayed change or the release of V
            heads = {h: dict(weight=w)
                     for h, w in entry.get('weights', {}).items()}
        for head, stats in heads.items():
            out.setdefault(head, []).append((entry['epoch'], stats.get(key)))
    return out


def weights_over_training(entries: List[dict]) -> Dict[str, List]:
    """``{head: [(epoch, weight), ...]}`` from epoch 0 to the end of
    training: the run's initial weights first (what the warm-up trained
    with), every entry's weights from its epoch, and the last ones again at
    the end, so that a step plot covers every epoch. Histories written
    before the entries carried ``initial_weights`` and ``max_epochs`` start
    at the first entry and end at the last."""
    out = series(entries, 'weight')
    initial = entries[0].get('initial_weights') or {}
    max_epochs = entries[-1].get('max_epochs')
    for head, points in out.items():
        if head in initial and points[0][0] > 0:
            points.insert(0, (0, initial[head]))
        if max_epochs is not None and points[-1][0] < max_epochs:
            points.append((max_epochs, points[-1][1]))
    return out


def plot(entries: List[dict], out: str) -> str:
    """Draw the weights over the training and the OGR per estimate."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for head, points in weights_over_training(entries).items():
        epochs = [e for e, _ in points]
        top.step(epochs, [w for _, w in points], where='post', label=head)
    for entry in entries:  # where the weights were set
        top.axvline(entry['epoch'], color='0.85', linewidth=0.8, zorder=0)
    top.set_ylabel('blend weight')
    top.set_ylim(0, 1)
    top.legend()
    top.set_title('G-Blend weights over the training; OGR per estimate')
    for head, points in series(entries, 'OGR').items():
        kept = [(e, v) for e, v in points if v is not None and v > 0]
        if kept:
            bottom.plot(*zip(*kept), marker='o', label=head)
    bottom.set_yscale('log')
    bottom.set_ylabel('OGR |O/G| (lower is better)')
    bottom.set_xlabel('epoch')
    bottom.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('history', help='work dir or gblend_history.jsonl')
    parser.add_argument('--out', help='PNG to write (default: next to the '
                        'history, blend_weights.png)')
    args = parser.parse_args(argv)
    entries = read_history(args.history)
    base = args.history if osp.isdir(args.history) else osp.dirname(
        args.history)
    out = args.out or osp.join(base, 'blend_weights.png')
    print(f'{len(entries)} estimates -> {plot(entries, out)}')


if __name__ == '__main__':
    main()
