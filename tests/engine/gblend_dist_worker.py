"""Run by torchrun from test_gblend_distributed.py (one process per rank).

Trains the toy task with G-Blend (trajectory, then shadow), then writes what
each rank ended with to ``<out>/<estimator>_rank<r>.json``: its blend
weights, the estimate history, a checksum of its parameters and its own
measurement of the final model on the held-out set.
"""
import json
import os
import sys

from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.engine import measure_heads


def main(out: str) -> None:
    for estimator in ('trajectory', 'shadow'):
        hook = dict(type='GradientBlendingHook', mode='online',
                    estimator=estimator, warmup_epochs=1, super_epochs=1,
                    shadow_fraction=0.5)
        cfg = toy.toy_config(os.path.join(out, estimator), max_epochs=3,
                             gblend=hook)
        cfg.update(launcher='pytorch', experiment_name=estimator)
        runner = Runner.from_cfg(Config(cfg))
        runner.train()
        gblend = next(h for h in runner.hooks
                      if type(h).__name__ == 'GradientBlendingHook')
        model = runner.model.module
        checksum = sum(p.double().sum().item() * (i + 1)
                       for i, p in enumerate(model.parameters()))
        measures = measure_heads(runner.model, gblend.heldout_loader)
        with open(os.path.join(out, f'{estimator}_rank{runner.rank}.json'),
                  'w') as f:
            json.dump(dict(
                world_size=runner.world_size,
                weights=model.get_blend_weights(),
                history=gblend.history,
                checksum=checksum,
                measures={h: list(m) for h, m in measures.items()}), f)
    end_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    exit_without_teardown()  # see mmaction_gblend/compat/process_exit.py
