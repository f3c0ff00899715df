"""Estimate G-Blend weights for a config once, and print them as a snippet.

    python tools/estimate_blend_weights.py CONFIG [--estimator shadow]
        [--epochs N] [--checkpoint CKPT] [--shadow-fraction 0.25]
        [--heldout-group REGEX]

The answer to "how do I compute the weights for my own dataset?": runs the
offline estimate of the paper (Algorithm 2) with the config's data and model,
then prints ``model = dict(blend_weights=...)`` to paste into a config (the
weights then stay fixed). ``shadow`` (default, the paper's estimator) trains
a copy of the model per head from the initial (or ``--checkpoint``) state
over the config's whole training (Algorithm 2's N), following its schedule,
or over ``--epochs`` (a shorter, cheaper horizon); ``--shadow-fraction``
trains the copies on a stratified part of the training set for as many
epochs. ``first_order`` evaluates Proposition 1 at the initial state from
each head's gradient (no training; a cheap approximation, see
``docs/gblend_estimators.md``). ``trajectory`` trains the model itself for
``--epochs`` (default 10) with uniform weights and reads the change of its
heads' losses, per unit weight.
The train dataset should be wrapped in ``HeldOutSplitDataset(part='train')``
(see the G-Blend configs); ``--allow-overlap`` measures on samples the model
also trains on instead. ``--heldout-group REGEX`` holds out whole groups
(``HeldOutSplitDataset``'s ``group``; the config's own split keeps its own
and refuses another): set it when the test split is by actor, speaker,
scene or source video.
"""
import argparse
import copy
import tempfile

from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from mmaction_gblend.engine.blend_options import ignored_options
from mmaction_gblend.engine.blend_schedule import AT_START
from mmaction_gblend.engine.hooks import GradientBlendingHook
from mmaction_gblend.utils.cli import add_runner_arguments, load_runner_config


class EstimateDone(Exception):
    """Raised to stop training once the estimate is made."""


class _StopAfterEstimateHook(Hook):
    """Stops the run as soon as the G-Blend hook has made its estimate."""
    priority = 'LOW'  # after the G-Blend hook's estimate

    def __init__(self, gblend_hook) -> None:
        self.gblend_hook = gblend_hook

    def _check(self, runner) -> None:
        if self.gblend_hook.history:
            raise EstimateDone()

    before_train_epoch = after_train_epoch = _check


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--estimator', choices=AT_START + ('trajectory', ),
                        default='shadow')
    parser.add_argument('--epochs', type=int, default=None,
                        help='the epochs the estimate spans (shadow: the '
                        "config's max_epochs; trajectory: 10)")
    parser.add_argument('--checkpoint', help='estimate from this state')
    parser.add_argument('--shadow-fraction', type=float, default=1.0,
                        help='fraction of the training set (per class) the '
                        'shadow copies train on, for the whole horizon')
    parser.add_argument('--min-weight', type=float, default=0.0)
    parser.add_argument('--heldout-group', default=None, metavar='REGEX',
                        help='hold out whole groups: the first capture '
                        "group of REGEX in each sample's path names its "
                        'group')
    parser.add_argument('--allow-overlap', action='store_true',
                        help='the train dataset is not a HeldOutSplitDataset')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace):
    """The config's own run, reduced to one offline estimate."""
    cfg = load_runner_config(args)
    if not args.work_dir and cfg.get('work_dir', '').startswith(
            './work_dirs'):
        cfg.work_dir = tempfile.mkdtemp(prefix='gblend_estimate_')
    kept = [h for h in cfg.get('custom_hooks', [])
            if h.get('type') != 'GradientBlendingHook']
    previous = [h for h in cfg.get('custom_hooks', [])
                if h.get('type') == 'GradientBlendingHook']
    hook = copy.deepcopy(previous[0]) if previous else {}
    max_epochs = cfg.train_cfg.max_epochs
    # the options an offline estimate ignores go (the hook would warn of
    # them), and those this tool sets itself or has no use for
    defaults = GradientBlendingHook.default_options()
    options = {**defaults, **hook, 'mode': 'offline',
               'estimator': args.estimator}
    for key in ignored_options(options, defaults) + [
            'warmup_epochs', 'offline_horizon', 'shadow_fraction',
            'shadow_check', 'release_heldout']:
        hook.pop(key, None)
    if args.estimator in AT_START:
        # before epoch 0, over the run's own length and schedule
        epochs = args.epochs or max_epochs
        if epochs > max_epochs:
            raise ValueError(f'--epochs {epochs} is longer than the '
                             f"config's training ({max_epochs} epochs)")
        horizon = dict(offline_horizon=epochs if args.epochs else None)
    else:
        # after `epochs` epochs of training
        epochs = args.epochs or 10
        max_epochs = epochs + 1
        horizon = dict(warmup_epochs=epochs)
    if args.estimator == 'shadow':
        horizon['shadow_fraction'] = args.shadow_fraction
    hook.update(
        type='GradientBlendingHook', mode='offline', estimator=args.estimator,
        weights='uniform', min_weight=args.min_weight,
        exclude_heldout=not args.allow_overlap, **horizon)
    if args.heldout_group is not None:
        hook['heldout_group'] = args.heldout_group
    cfg.custom_hooks = kept + [hook]
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = max_epochs + 1  # no validation
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    # the schedulers stay: the estimate starts from the learning rate the
    # run itself would start from (a warm-up's, say)
    cfg.resume = False
    cfg.load_from = args.checkpoint
    return cfg


def estimate(cfg) -> dict:
    """Run the estimate; return the G-Blend history entry it wrote."""
    runner = Runner.from_cfg(cfg)
    gblend = next(h for h in runner.hooks
                  if type(h).__name__ == 'GradientBlendingHook')
    runner.register_hook(_StopAfterEstimateHook(gblend))
    try:
        runner.train()
    except EstimateDone:
        pass
    if not gblend.history:
        raise RuntimeError('the run ended without a G-Blend estimate')
    return gblend.history[0]


def snippet(entry: dict) -> str:
    weights = ', '.join(f'{head}={w:.4f}'
                        for head, w in entry['weights'].items())
    return (f'# G-Blend weights ({entry["estimator"]} estimate over '
            f'{entry["horizon"]} epochs)\nmodel = dict(blend_weights=dict('
            f'{weights}))')


def main(argv=None) -> None:
    entry = estimate(build_config(parse_args(argv)))
    if entry['fallback']:
        print(f'No head generalised over the estimate: {entry["fallback"]} '
              'weights. Estimate over more epochs or from a checkpoint.')
    print(snippet(entry))


if __name__ == '__main__':
    main()
