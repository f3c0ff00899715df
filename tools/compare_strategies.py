"""Train balancing strategies derived from one multi-modal config over several
seeds, and compare them with paired statistics.

    python tools/compare_strategies.py [--config MY_FUSION_CONFIG.py]
        [--set core|extra ...] [--strategies NAME ...] [--seeds 0 1 2]
        [--heldout-fraction 0.4] [--heldout-group REGEX] [--data-root DIR]
        [--epochs N] [--eval-split test|val] [--val-every-epoch]
        [--work-dir work_dirs/compare] [--reuse comparison.json]

Every strategy is derived from ONE base config, a multi-modal late-fusion
``MultiHeadRecognizer`` config (default: the demo's naive fusion), by a
small override config (``_base_ = [base]``) written beside its run's work
dir; each strategy is one entry of ``STRATEGIES`` in
tools/comparison/strategies.py (its name, set, override and pairing).
Each run is a fresh ``tools/train.py --test-last --dump`` process; runs
finished earlier (in ``--work-dir``, or in ``--reuse``'s comparison.json)
for the same derived config are not run again. Written to ``--work-dir``:
comparison.json (every run), comparison.md (mean ± std top-1 per strategy,
paired per-seed differences against the best single modality and naive
fusion, on the whole training set and on G-Blend's part), metafile.yml and
comparison.png. See docs/comparison_tool.md.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(TOOLS))  # this checkout's mmaction_gblend
if TOOLS not in sys.path:  # the package of the jobs, tools/comparison/
    sys.path.append(TOOLS)

from comparison.derivation import (DEFAULT_CONFIG, EVAL_SPLITS,  # noqa: E402
                                   Derivation)
from comparison.reports import (bar_chart, metafile, report,  # noqa: E402
                                write_metafile)
from comparison.runs import read_reused, run_one  # noqa: E402
from comparison.statistics import summarise  # noqa: E402
from comparison.strategies import SETS  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the base multi-modal fusion config (default: '
                        'the demo\'s naive fusion)')
    parser.add_argument('--set', dest='sets', nargs='+', choices=SETS,
                        default=['core'],
                        help='target sets of strategies (default: core)')
    parser.add_argument('--strategies', nargs='+', default=None,
                        help='the strategies to run instead of --set')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--heldout-fraction', type=float, default=None,
                        help="G-Blend's held-out fraction (default: the "
                        "demo G-Blend configs')")
    parser.add_argument('--heldout-group', default=None, metavar='REGEX',
                        help='hold out whole groups: a regular expression '
                        'whose first capture group, searched in each '
                        "clip's path, names its group (UCF-101: "
                        "'_g(\\d+)_c'); set it when the test split is by "
                        'actor, speaker, scene or source video')
    parser.add_argument('--data-root', default=None,
                        help='data laid out as the demo data (default: the '
                        "config's own)")
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--epochs', type=int, default=None,
                        help='shorter schedule (for trying the tool)')
    parser.add_argument('--eval-split', choices=EVAL_SPLITS,
                        default='test',
                        help="the split the table measures ('val': to choose "
                        "a dataset's or schedule's parameters without the "
                        'test split)')
    parser.add_argument('--val-every-epoch', action='store_true',
                        help="keep the config's validation interval "
                        '(default: validate once, after the last epoch)')
    parser.add_argument('--reuse', default=None,
                        help="an earlier run's comparison.json: its runs "
                        'are taken as they are, the missing ones trained')
    return parser.parse_args(argv)


def chosen(derivation: Derivation, args: argparse.Namespace) -> list:
    """The strategies ``--strategies`` names, else those of ``--set``."""
    if not args.strategies:
        return derivation.select(args.sets)
    unknown = [s for s in args.strategies if s not in derivation.strategies]
    if unknown:
        raise SystemExit(
            f'unknown strategies for {args.config}: {unknown}; known: '
            f'{", ".join(derivation.strategies)}')
    return list(args.strategies)


def main(argv=None) -> None:
    start = time.time()
    args = parse_args(argv)
    try:
        derivation = Derivation(
            args.config, args.heldout_fraction, args.heldout_group,
            args.epochs, args.data_root, args.val_every_epoch,
            args.eval_split, args.work_dir)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    for note in derivation.notes:
        print(f'note: {note}', flush=True)
    strategies = chosen(derivation, args)
    reused = read_reused(args.reuse) if args.reuse else {}
    results = []
    # seed by seed, so an interrupted comparison has every strategy once
    for seed in args.seeds:
        for strategy in strategies:
            print(f'{strategy}, seed {seed} ...', flush=True)
            results.append(run_one(derivation, strategy, seed,
                                   args.work_dir, reused))
            acc = results[-1]['accuracy']['prediction']
            wall = results[-1].get('wall_s')
            print(f'  top-1 {100 * acc:.1f}' +
                  (f' in {wall / 60:.1f} min' if wall is not None else ''),
                  flush=True)
            # after every run: an interrupted comparison's finished runs
            # can be committed and passed to --reuse
            os.makedirs(args.work_dir, exist_ok=True)
            with open(osp.join(args.work_dir, 'comparison.json'), 'w') as f:
                json.dump(results, f, indent=1)
    rows = summarise(results, list(derivation.strategies),
                     derivation.modalities)
    bar_chart(rows, derivation, osp.join(args.work_dir, 'comparison.png'))
    write_metafile(metafile(rows, derivation, args.work_dir),
                   osp.join(args.work_dir, 'metafile.yml'))
    wall = time.time() - start
    text = report(results, derivation, wall)
    with open(osp.join(args.work_dir, 'comparison.md'), 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {args.work_dir}/comparison.md, metafile.yml, '
          'comparison.png, comparison.json')
    print(f'total wall time: {wall / 60:.1f} min ({wall:.0f} s)')


if __name__ == '__main__':
    main()
