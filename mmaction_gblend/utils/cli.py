"""What ``tools/train.py`` and ``tools/test.py`` share: options and config."""
import argparse
import copy
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every Runner script takes: work dir, overrides, launcher."""
    parser.add_argument(
        '--work-dir',
        help='where logs and checkpoints go; defaults to '
        './work_dirs/<config name>')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_epochs=3')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local_rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_runner_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the options of
    :func:`add_runner_arguments`."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def check_dump_path(dump: str) -> None:
    """``--dump`` names a pickle file (what ``DumpResults`` writes)."""
    if not dump.endswith(('.pkl', '.pickle')):
        raise ValueError(
            f'--dump must end with .pkl or .pickle, got {dump!r}')


def config_to_test(cfg: Config, checkpoint: str,
                   dump: Optional[str] = None) -> Config:
    """``cfg`` set to test ``checkpoint``, its predictions written to
    ``dump`` (a ``.pkl``) when given: what ``tools/test.py`` runs, and
    ``tools/train.py --test-last`` after training."""
    cfg = copy.deepcopy(cfg)
    cfg.load_from, cfg.resume = checkpoint, False
    if dump:
        check_dump_path(dump)
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict):
            evaluator = [evaluator]
        cfg.test_evaluator = list(evaluator) + [
            dict(type='DumpResults', out_file_path=dump)
        ]
    return cfg
