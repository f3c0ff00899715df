"""Run by torchrun from test_non_finite.py (one process a rank).

Trains the toy task on every rank with ``NonFiniteLossHook(max_consecutive=
3)``; only rank 1's audio branch gives NaN features, so at first only its
loss is NaN. Writes ``<out>/rank<r>.json``: the iteration each rank stopped
at and its error message. A rank that stopped alone would leave the other
waiting in the next all-reduce, and torchrun would time out.
"""
import json
import os
import sys

from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.engine import NonFiniteLossError


def main(out: str) -> None:
    cfg = toy.toy_config(os.path.join(out, 'run'), max_epochs=2,
                         num_samples=96)
    cfg['default_hooks']['non_finite_loss'] = dict(
        type='NonFiniteLossHook', max_consecutive=3)
    cfg.update(launcher='pytorch', log_level='WARNING')
    runner = Runner.from_cfg(Config(cfg))
    if runner.rank == 1:
        runner.model.module.backbones['audio'].register_forward_hook(
            lambda module, args, output: output * float('nan'))
    try:
        runner.train()
        error = None
    except NonFiniteLossError as err:
        error = str(err)
    with open(os.path.join(out, f'rank{runner.rank}.json'), 'w') as f:
        json.dump(dict(iter=runner.iter, error=error), f)
    end_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    exit_without_teardown()  # see mmaction_gblend/compat/process_exit.py
