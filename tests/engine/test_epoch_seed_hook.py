"""EpochSeedHook: the generators at an epoch's start depend on the seed and
the epoch only (end to end with killed processes in
tests/reliability/test_interrupted_runs.py)."""
import random

import numpy as np
import pytest
import torch
from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine.hooks.epoch_seed_hook import epoch_seed


@HOOKS.register_module()
class RecordDraws(Hook):
    """Records one draw of each generator as each training epoch starts."""
    priority = 'LOWEST'  # after EpochSeedHook (HIGHEST)
    draws = []

    def before_train_epoch(self, runner):
        self.draws.append((runner.epoch, random.random(), np.random.rand(),
                           torch.rand(1).item()))


def train(work_dir, max_epochs, name, resume=False, **loader):
    cfg = toy.toy_config(str(work_dir), max_epochs=max_epochs, num_samples=32,
                         hooks=[dict(type='EpochSeedHook'),
                                dict(type='RecordDraws')])
    cfg['train_dataloader'].update(loader)
    cfg.update(resume=resume, experiment_name=name)
    Runner.from_cfg(Config(cfg)).train()


def test_epoch_seeds_differ_by_seed_and_by_epoch():
    seeds = {epoch_seed(s, e) for s in (0, 1, 2**40, -1) for e in range(3)}
    assert len(seeds) == 12 and all(0 <= s < 2**32 for s in seeds)
    assert epoch_seed(0, 1) == epoch_seed(0, 1)


@pytest.mark.slow
def test_a_resumed_epoch_draws_what_the_uninterrupted_one_drew(tmp_path):
    RecordDraws.draws.clear()
    train(tmp_path / 'whole', 3, 'seed-whole')
    whole = list(RecordDraws.draws)
    RecordDraws.draws.clear()
    train(tmp_path / 'cut', 1, 'seed-cut1')
    # another process state than at the end of the first run's epoch 1
    random.random(), np.random.rand(), torch.rand(5)
    train(tmp_path / 'cut', 3, 'seed-cut2', resume=True)
    assert [d[0] for d in whole] == [0, 1, 2]
    assert RecordDraws.draws == whole
    assert len({d[1:] for d in whole}) == 3


@pytest.mark.slow
def test_resuming_with_persistent_workers_is_warned(tmp_path, capsys):
    loader = dict(num_workers=1, persistent_workers=True)
    warning = 'persistent workers keep their random state'
    train(tmp_path, 1, 'workers1', **loader)
    assert warning not in capsys.readouterr().out
    train(tmp_path, 2, 'workers2', resume=True, **loader)
    assert warning in capsys.readouterr().out
