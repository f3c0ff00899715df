"""Run by torchrun from test_modulation_distributed.py (one process a rank).

Trains the toy task with OGM-GE and OPM on every rank, recording each
step's scores and coefficients, then scores one batch that differs per rank.
Writes ``<out>/rank<r>.json``.
"""
import json
import os
import sys

import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.compat import end_process_group, exit_without_teardown
from mmaction_gblend.models.modulation import (modality_logits,
                                               true_class_probability)


class StepRecorder(Hook):
    """Reads what the modulation did, before OnTheFlyModulationHook
    (priority ABOVE_NORMAL) takes the records."""
    priority = 'HIGH'

    def __init__(self):
        self.steps = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        records = runner.model.module.modulation_state.peek_step_records()
        self.steps.append(dict(
            scores=records['scores']['scores'].tolist(),
            k=records['ogm']['coefficients'].tolist(),
            q=records['opm']['probabilities'].tolist()))


def main(out: str) -> None:
    cfg = toy.toy_config(
        os.path.join(out, 'run'), max_epochs=2,
        signal=dict(imgs=2.0, audios=0.2),
        optim_wrapper=dict(type='OGMGEOptimWrapper', alpha=0.8,
                           ge_noise=True),
        model=dict(opm=dict(start_epoch=0, p_exe=0.5)),
        hooks=[dict(type='OnTheFlyModulationHook')])
    cfg.update(launcher='pytorch')
    runner = Runner.from_cfg(Config(cfg))
    recorder = StepRecorder()
    runner.register_hook(recorder)
    runner.train()
    model = runner.model.module
    checksum = sum(p.double().sum().item() * (i + 1)
                   for i, p in enumerate(model.parameters()))

    # one batch that differs per rank: its local and all-reduced scores
    g = torch.Generator().manual_seed(100 + runner.rank)
    inputs = {k: torch.randn(6, 1, 16, generator=g)
              for k in ('imgs', 'audios')}
    labels = torch.arange(6) % 4
    samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
    model.train()
    state = model.modulation_state
    assert state.wants_scores  # the wrapper's window has no end
    state.take_scores()
    model.loss(inputs, samples)
    reduced = state.take_scores()
    maps, _ = model.extract_feat(inputs)
    local = true_class_probability(
        modality_logits(model.score_source, model.modalities, maps,
                        model.fusion, model.heads, model.heads['fused']),
        labels)
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'OnTheFlyModulationHook')
    with open(os.path.join(out, f'rank{runner.rank}.json'), 'w') as f:
        json.dump(dict(world_size=runner.world_size, steps=recorder.steps,
                       history=hook.history, checksum=checksum,
                       local=local.tolist(), reduced=reduced.tolist()), f)
    end_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    exit_without_teardown()  # see mmaction_gblend/compat/process_exit.py
