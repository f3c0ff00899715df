"""Run by torchrun from test_prediction_mix_hook.py (one process a rank).

Trains the small paradox task with ``prediction='mix'`` for a few epochs;
``PredictionMixHook`` fits the weights at the end, each rank on its shard
of the val split. Then fits again (a collective call on every rank, for its
counts) and writes ``<out>/rank<r>.json``: the model's prediction weights
after training, the second fit, the size of the rank's val shard and a
checksum of the parameters.
"""
import json
import os
import sys

from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.engine.hooks.prediction_mix_hook import PredictionMixHook

#: Shared with the test: the run whose checkpoint it fits alone.
RUN = dict(blend_weights=dict(audio=0.2, rgb=0.4, fused=0.4),
           prediction='mix', num_train=80, num_eval=61, fingerprint_dim=32,
           max_epochs=4, batch_size=8)


def main(out: str) -> None:
    cfg = toy.paradox_config(out, **RUN)
    cfg.update(launcher='pytorch', experiment_name='mix',
               model_wrapper_cfg=dict(
                   type='AnyDeviceDistributedDataParallel'))
    cfg['default_hooks']['checkpoint'] = dict(
        type='CheckpointHook', interval=RUN['max_epochs'])
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    model = runner.model.module
    weights = model.get_prediction_weights()
    hook = PredictionMixHook()
    fit = hook.fit(runner)
    shard = len(hook._build_loader(runner).sampler)
    checksum = sum(p.double().sum().item() * (i + 1)
                   for i, p in enumerate(model.parameters()))
    with open(os.path.join(out, f'rank{runner.rank}.json'), 'w') as f:
        json.dump(dict(world_size=runner.world_size, weights=weights,
                       fit=fit, checksum=checksum, val_shard=shard), f)
    end_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    exit_without_teardown()  # see mmaction_gblend/compat/process_exit.py
