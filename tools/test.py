"""Evaluate a checkpoint on the test split of a config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump preds.pkl]
    torchrun --nproc_per_node=N tools/test.py CONFIG CHECKPOINT --launcher pytorch
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (platform fixes, registration)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where the test log goes; defaults to '
        './work_dirs/<config name>')
    parser.add_argument(
        '--dump', help='write the predictions to this .pkl/.pickle file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and point it at the checkpoint to test."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.dump:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--dump must end with .pkl or .pickle, got '
                             f'{args.dump!r}')
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict):
            evaluator = [evaluator]
        cfg.test_evaluator = list(evaluator) + [
            dict(type='DumpResults', out_file_path=args.dump)
        ]
    return cfg


def main(argv=None) -> None:
    cfg = build_config(parse_args(argv))
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
