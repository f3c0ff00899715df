"""Train a model from a config, on one process or many (torchrun).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
    torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch

Multi-process runs work on GPUs (nccl) and on CPUs (gloo): importing
``mmaction_gblend`` makes mmengine's launcher fall back to gloo without CUDA,
and the plugin's runtime config wraps the model in
``AnyDeviceDistributedDataParallel``.
"""
import argparse

from mmaction.registry import OPTIM_WRAPPERS
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from mmaction_gblend.utils.cli import add_runner_arguments, load_runner_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or without a value from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the total batch size')
    parser.add_argument(
        '--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms (slower)')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it."""
    cfg = load_runner_config(args)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if not wrapper.startswith('Amp'):
            # OptimWrapper -> AmpOptimWrapper, OGMGEOptimWrapper ->
            # AmpOGMGEOptimWrapper: every wrapper of ours has an Amp form.
            if OPTIM_WRAPPERS.get('Amp' + wrapper) is None:
                raise ValueError(
                    f'--amp: optim_wrapper.type={wrapper!r} has no mixed-'
                    'precision form; use its Amp variant in the config')
            cfg.optim_wrapper.type = 'Amp' + wrapper
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})['enable'] = True
    if args.seed is not None or args.deterministic:
        randomness = cfg.setdefault('randomness', {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness['deterministic'] = args.deterministic
    return cfg


def main(argv=None) -> None:
    cfg = build_config(parse_args(argv))
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
