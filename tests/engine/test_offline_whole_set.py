"""Offline shadow G-Blend with the main run on the whole training set.

With ``mode='offline', estimator='shadow'`` and ``exclude_heldout`` left at
``None``, the shadow copies train on the split's training part (V left
out) and are measured on V and T', while the main run trains on what
``train_dataloader`` gives: an unwrapped dataset (the whole training set,
V included; the hook splits it with its own ``heldout_fraction`` and
``seed``), a ``HeldOutSplitDataset(part='all')``, or, the strict variant,
a ``HeldOutSplitDataset(part='train')``.

The Runner tests use a small paradox task (80 training samples in 10
classes, a quarter held out) whose samples carry their ``sample_idx``, so
what the main run and the shadows train on can be counted.
"""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
import mmaction_gblend.engine.estimators.shadow as gblend_module
from helpers import gblend_hook, read_jsonl

NUM_TRAIN = 80
ALL = list(range(NUM_TRAIN))
FRACTION = 0.25
EPOCHS = 2
SHADOW = dict(type='GradientBlendingHook', mode='offline', estimator='shadow',
              warmup_epochs=1, super_epochs=1, heldout_fraction=FRACTION,
              seed=0, bootstrap=0, recalibrate_bn=0)


class SampleRecorder(Hook):
    """The ``sample_idx`` of every sample the main run trains on, per
    epoch."""
    priority = 'LOWEST'

    def __init__(self):
        self.samples = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.samples.setdefault(runner.epoch, []).extend(
            int(s.metainfo['sample_idx']) for s in data_batch['data_samples'])


class RecordingLoader:
    """A dataloader that records the ``sample_idx`` of what it yields."""

    def __init__(self, loader, seen):
        self.loader = loader
        self.seen = seen

    def __iter__(self):
        for batch in self.loader:
            self.seen.extend(int(s.metainfo['sample_idx'])
                             for s in batch['data_samples'])
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # the sampler, for its epoch
        return getattr(self.loader, name)


@pytest.fixture
def shadow_samples(monkeypatch):
    """The ``sample_idx`` of every batch the shadow copies train on."""
    seen = []
    train = gblend_module.shadow_train

    def recording(model, optimizer, dataloader, *args, **kwargs):
        return train(model, optimizer, RecordingLoader(dataloader, seen),
                     *args, **kwargs)

    monkeypatch.setattr(gblend_module, 'shadow_train', recording)
    return seen


def paradox_cfg(work_dir, hook, train='unwrapped'):
    """The small paradox task with ``hook``; ``train``: ``'unwrapped'``,
    ``'all'`` or ``'train'`` (a ``HeldOutSplitDataset`` of that part, the
    hook's fraction and seed)."""
    cfg = toy.paradox_config(
        str(work_dir), num_train=NUM_TRAIN, num_eval=40, fingerprint_dim=32,
        max_epochs=EPOCHS, batch_size=16)
    if train != 'unwrapped':
        cfg['train_dataloader']['dataset'] = dict(
            type='HeldOutSplitDataset', part=train, fraction=FRACTION,
            seed=0, dataset=cfg['train_dataloader']['dataset'])
    cfg['custom_hooks'] = [dict(hook)]
    cfg['log_level'] = 'INFO'  # G-Blend's log lines
    cfg['experiment_name'] = f'{osp.basename(str(work_dir))}-{train}'
    return cfg


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize('train', ['unwrapped', 'all', 'train'])
def test_the_shadows_leave_v_out_whatever_the_main_run_trains_on(
        tmp_path, shadow_samples, train):
    runner = Runner.from_cfg(Config(paradox_cfg(tmp_path, SHADOW, train)))
    recorder = SampleRecorder()
    runner.register_hook(recorder)
    runner.train()
    hook = gblend_hook(runner)
    heldout = set(hook.heldout_loader.dataset.indices.tolist())
    part = sorted(set(ALL) - heldout)
    assert len(heldout) == 20  # a quarter of each class of 8, half up
    whole = train != 'train'

    # the main run: every training sample, V's too, or the part
    for epoch in range(EPOCHS):
        assert sorted(recorder.samples[epoch]) == (ALL if whole else part)
    # the shadows: the training part, once per epoch of the horizon
    assert sorted(hook.estimator.loader.dataset.indices.tolist()) == part
    assert sorted(shadow_samples) == sorted(part * EPOCHS)
    # they are probed on T', inside the part, and measured on V
    probe = set(hook.estimator.probe_loader.dataset.indices.tolist())
    assert probe and probe <= set(part)
    if whole:
        # a loader of its own; the main run's is the whole set
        assert hook.estimator.loader is not runner.train_dataloader
        assert len(runner.train_dataloader.dataset) == NUM_TRAIN
    else:
        assert hook.estimator.loader is runner.train_dataloader

    # what the history and the log say
    history = read_jsonl(tmp_path / 'gblend_history.jsonl')
    assert history == hook.history
    assert [(e['epoch'], e['horizon']) for e in history] == [(0, EPOCHS)]
    assert history[0]['main_trains_on'] == ('all' if whole else 'part')
    log = log_text(runner)
    if whole:
        assert 'the main run trains on 80 samples, the whole training ' \
            'set, V included' in log
    else:
        assert 'the main run trains on 60 samples, the training part, ' \
            'V left out' in log
    assert 'shadows train on 60 samples' in log


@pytest.mark.slow
def test_the_split_is_the_same_with_and_without_the_wrapper(tmp_path):
    # an unwrapped dataset is split with the hook's fraction and seed: the
    # V of a part='train' split with those, so the strict variant and the
    # default hold out the same samples
    parts = {}
    for train in ('unwrapped', 'train'):
        cfg = paradox_cfg(tmp_path / train, dict(SHADOW, offline_horizon=1),
                          train)
        cfg['train_cfg']['max_epochs'] = 1
        runner = Runner.from_cfg(Config(cfg))
        runner.train()
        hook = gblend_hook(runner)
        parts[train] = [sorted(loader.dataset.indices.tolist()) for loader in
                        (hook.heldout_loader, hook.probe_loader,
                         hook.estimator.loader)]
    assert parts['unwrapped'] == parts['train']


@pytest.mark.slow
@pytest.mark.parametrize('mode,estimator,train,exclude_heldout,match', [
    # exclude_heldout=None means True for every other mode and estimator
    ('online', 'trajectory', 'unwrapped', None,
     'wrap train_dataloader.dataset in'),
    ('online', 'shadow', 'unwrapped', None,
     'wrap train_dataloader.dataset in'),
    ('offline', 'trajectory', 'unwrapped', None,
     'wrap train_dataloader.dataset in'),
    ('online', 'trajectory', 'all', None,
     "part='all'; training needs part='train'$"),
    # and offline shadow when told so
    ('offline', 'shadow', 'unwrapped', True,
     'wrap train_dataloader.dataset in'),
    ('offline', 'shadow', 'all', True,
     "part='all'; training needs part='train'$"),
], ids=['online-trajectory', 'online-shadow', 'offline-trajectory',
        'online-trajectory-all', 'offline-shadow-strict',
        'offline-shadow-strict-all'])
def test_other_estimates_still_need_v_out_of_training(
        tmp_path, mode, estimator, train, exclude_heldout, match):
    hook = dict(SHADOW, mode=mode, estimator=estimator)
    if exclude_heldout is not None:
        hook['exclude_heldout'] = exclude_heldout
    runner = Runner.from_cfg(Config(paradox_cfg(tmp_path, hook, train)))
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert runner.iter == 0  # refused before any training


@pytest.mark.slow
def test_on_the_whole_set_there_is_nothing_to_release(tmp_path):
    cfg = paradox_cfg(tmp_path, dict(SHADOW, release_heldout=True))
    runner = Runner.from_cfg(Config(cfg))
    recorder = SampleRecorder()
    runner.register_hook(recorder)
    runner.train()
    assert 'the main run trains on the whole training set already; there ' \
        'is nothing to release' in log_text(runner)
    assert all(sorted(recorder.samples[e]) == ALL for e in range(EPOCHS))
    history = gblend_hook(runner).history
    assert [e.get('event') for e in history] == [None]
    assert history[0]['main_trains_on'] == 'all'
