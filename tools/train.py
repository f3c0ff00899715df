"""Train a model from a config, on one process or many (torchrun).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--test-last [--dump preds.pkl]]
    torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch

Multi-process runs work on GPUs (nccl) and on CPUs (gloo): importing
``mmaction_gblend`` makes mmengine's launcher fall back to gloo without CUDA,
and the plugin's runtime config wraps the model in
``AnyDeviceDistributedDataParallel``.
"""
import argparse
import os.path as osp

from mmaction.registry import OPTIM_WRAPPERS
from mmengine.config import Config
from mmengine.dist import barrier
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.utils.cli import (add_runner_arguments,
                                      check_dump_path, config_to_test,
                                      load_runner_config)


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
    parser.add_argument(
        '--test-last',
        action='store_true',
        help='after training, test the last checkpoint on the test split '
        "in the same process (as mmaction2 0.x's --test-last)")
    parser.add_argument(
        '--dump',
        help='with --test-last: write its predictions to this .pkl file')
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    if args.dump and not args.test_last:
        parser.error('--dump needs --test-last')
    return args


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
    if args.dump:  # before training: a bad name fails now, not after it
        check_dump_path(args.dump)
    # Assign whole dicts: Config.setdefault returns the dict it was given,
    # not the copy it stores, so writing into its result is lost.
    if args.auto_scale_lr:
        scale = dict(cfg.get('auto_scale_lr') or {})
        if 'base_batch_size' not in scale:
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                'config: the batch size its learning rate was set for')
        cfg.auto_scale_lr = dict(scale, enable=True)
    if args.seed is not None or args.deterministic:
        randomness = dict(cfg.get('randomness') or {})
        if args.seed is not None:
            randomness['seed'] = args.seed
        randomness['deterministic'] = args.deterministic
        cfg.randomness = randomness
    return cfg


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint the Runner saved last in ``work_dir``."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'--test-last: no {path}; is a CheckpointHook saving '
            '(default_hooks.checkpoint)?')
    with open(path) as f:
        return f.read().strip()


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    runner.train()
    if args.test_last:
        barrier()  # every rank reads what rank 0 saved last
        checkpoint = last_checkpoint(runner.work_dir)
        Runner.from_cfg(config_to_test(cfg, checkpoint, args.dump)).test()
    end_process_group()


if __name__ == '__main__':
    main()
    # a rank can abort in the teardown after a finished run
    # (mmaction_gblend/compat/process_exit.py)
    exit_without_teardown()
