"""Evaluate a checkpoint on the test split of a config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump preds.pkl]
    torchrun --nproc_per_node=N tools/test.py CONFIG CHECKPOINT \
        --launcher pytorch
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.utils.cli import (add_runner_arguments,
                                      config_to_test, load_runner_config)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--dump', help='write the predictions to this .pkl/.pickle file')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and point it at the checkpoint to test."""
    return config_to_test(load_runner_config(args), args.checkpoint, args.dump)


def main(argv=None) -> None:
    cfg = build_config(parse_args(argv))
    runner = Runner.from_cfg(cfg)
    runner.test()
    end_process_group()


if __name__ == '__main__':
    main()
    # a rank can abort in the teardown after a finished run
    # (mmaction_gblend/compat/process_exit.py)
    exit_without_teardown()
