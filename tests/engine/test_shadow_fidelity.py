"""The shadow estimator as Algorithm 1 describes it, and its measurement.

A shadow copy follows the main run's learning-rate schedule and sample
order over the super-epoch, trains for whole passes over its data (all of
the training set, or a stratified subset of it), and is measured with
BatchNorm statistics that describe its weights, without touching the main
model's.
"""
import copy

import pytest
import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.model import BaseModule
from mmengine.optim.scheduler import CosineAnnealingLR, LinearLR
from mmengine.runner import Runner
from torch.optim.optimizer import register_optimizer_step_pre_hook

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import measure_heads, shadow_train
from mmaction_gblend.engine.batchnorm_recalibration import (
    batchnorm_layers, recalibrate_batchnorm)
from mmaction_gblend.engine.estimators import MAIN, HeadMeasurer


@MODELS.register_module(force=True)
class ToyBNEncoder(BaseModule):
    """The toy encoder with a BatchNorm layer (the demo's backbones have
    them; the toy MLP does not). A small ``momentum`` makes its running
    statistics lag the weights, as they do early in a real training."""

    def __init__(self, in_channels: int, out_channels: int = 32,
                 hidden_channels: int = 64, momentum: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden_channels),
            nn.BatchNorm1d(hidden_channels, momentum=momentum),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_channels, out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def bn_model_cfg(work_dir='unused', momentum=0.1, **kwargs):
    cfg = toy.toy_config(work_dir, num_samples=96, **kwargs)
    for branch in cfg['model']['branches'].values():
        branch['backbone'].update(type='ToyBNEncoder', momentum=momentum)
    return cfg


def loader_of(cfg, key='train_dataloader', shuffle=True, batch_size=16):
    return Runner.build_dataloader(dict(
        cfg[key], batch_size=batch_size,
        sampler=dict(type='DefaultSampler', shuffle=shuffle, seed=0)),
        seed=0)


def toy_parts(num_samples=64, bn=False):
    cfg = bn_model_cfg() if bn else toy.toy_config('unused',
                                                   num_samples=num_samples)
    model = MODELS.build(cfg['model'])
    model.init_weights()
    return cfg, model


# ---- learning-rate schedule ---------------------------------------------

def schedulers_for(optimizer, epoch_length, max_epochs):
    """A warm-up per iteration and a cosine per epoch, as mmengine builds
    them from a config (one iteration-based, one epoch-based)."""
    return [
        LinearLR.build_iter_from_epoch(
            optimizer, epoch_length=epoch_length, start_factor=0.1,
            by_epoch=True, begin=0, end=1),
        CosineAnnealingLR(optimizer, T_max=max_epochs, by_epoch=True,
                          begin=0, end=max_epochs),
    ]


def main_run_lrs(optimizer, schedulers, epoch_length, epochs):
    """The lr of every iteration of the main run, stepping as mmengine's
    ParamSchedulerHook does (on copies)."""
    optimizer, schedulers = copy.deepcopy((optimizer, schedulers))
    lrs = []
    for _ in range(epochs):
        for _ in range(epoch_length):
            lrs.append(optimizer.param_groups[0]['lr'])
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return lrs


@pytest.fixture
def seen_lrs():
    """``(optimizer id, lr)`` of every optimizer step taken meanwhile (the
    copies' optimizers are made inside shadow_train)."""
    seen = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(
            (id(opt), opt.param_groups[0]['lr'])))
    yield seen
    handle.remove()


@pytest.mark.parametrize('subset', [False, True])
def test_shadow_copies_follow_the_main_schedule(subset, seen_lrs):
    cfg, model = toy_parts()
    loader = loader_of(cfg, batch_size=8)  # 8 steps per epoch
    epoch_length = len(loader)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedulers = schedulers_for(optimizer, epoch_length, max_epochs=6)
    # the main run has trained one epoch (its schedulers stepped with it)
    for _ in range(epoch_length):
        optimizer.step()
        schedulers[0].step()
    schedulers[1].step()
    state = [s.state_dict() for s in schedulers]
    main_lr = optimizer.param_groups[0]['lr']
    expected = main_run_lrs(optimizer, schedulers, epoch_length, 3)
    # the shadows' data: the whole loader, or one with 3 steps an epoch
    data = loader_of(cfg, batch_size=24) if subset else loader
    seen = seen_lrs
    del seen[:]
    shadow_train(model, optimizer, data, ['rgb', 'fused'], num_epochs=3,
                 schedulers=schedulers, epoch_length=epoch_length,
                 start_epoch=1)
    steps = len(data)
    per_copy = {}
    for key, lr in seen:
        per_copy.setdefault(key, []).append(lr)
    assert len(per_copy) == 2
    want = [expected[e * epoch_length + j * epoch_length // steps]
            for e in range(3) for j in range(steps)]
    for lrs in per_copy.values():
        assert lrs == pytest.approx(want, rel=1e-12)
    # the warm-up ended during the main run's first epoch: the copies'
    # schedule is the cosine's, which falls over the super-epoch
    assert want[0] > want[-1]
    # the main optimizer and schedulers are where they were
    assert optimizer.param_groups[0]['lr'] == main_lr
    assert [s.state_dict() for s in schedulers] == state


def test_without_schedulers_the_rate_is_constant(seen_lrs):
    cfg, model = toy_parts()
    loader = loader_of(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.07)
    shadow_train(model, optimizer, loader, ['audio'], num_epochs=2)
    assert [lr for _, lr in seen_lrs] == [0.07] * (2 * len(loader))


# ---- sample order ---------------------------------------------------------

class IndexLog(torch.utils.data.Dataset):

    def __init__(self, dataset):
        self.dataset, self.seen = dataset, []

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        self.seen.append(int(idx))
        return self.dataset[idx]


def test_each_pass_has_the_main_runs_order_of_that_epoch():
    cfg, model = toy_parts()
    loader = loader_of(cfg)
    logged = IndexLog(loader.dataset)
    sampler = loader.sampler
    loader = torch.utils.data.DataLoader(
        logged, batch_size=16, sampler=sampler,
        collate_fn=loader.collate_fn)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    shadow_train(model, optimizer, loader, ['rgb'], num_epochs=3,
                 start_epoch=4)
    assert sampler.epoch == 4  # set back for the main run's epoch
    orders = []
    for epoch in (4, 5, 6):
        sampler.set_epoch(epoch)
        orders.extend(list(sampler))
    assert logged.seen == orders
    assert orders[:len(sampler)] != orders[len(sampler):2 * len(sampler)]


# ---- data subset ----------------------------------------------------------

@pytest.mark.slow
def test_a_shadow_subset_trains_the_whole_super_epoch_on_fewer_samples(
        tmp_path):
    hook = dict(type='GradientBlendingHook', mode='offline',
                estimator='shadow', warmup_epochs=1, shadow_fraction=0.5,
                bootstrap=0)
    cfg = toy.toy_config(str(tmp_path), max_epochs=2, gblend=hook,
                         num_samples=96)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    gb = next(h for h in runner.hooks
              if type(h).__name__ == 'GradientBlendingHook')
    train = runner.train_dataloader.dataset
    subset = gb.estimator.loader.dataset
    probe = gb.estimator.probe_loader.dataset
    # a stratified half of the training part, probed inside it
    assert set(subset.indices) < set(train.indices)
    assert len(subset) == pytest.approx(len(train) / 2, abs=4)
    assert set(probe.indices) <= set(subset.indices)
    assert not set(subset.indices) & set(gb.heldout_loader.dataset.indices)
    # the estimate spans the whole training (Algorithm 2), in passes over
    # the subset
    assert [(e['epoch'], e['horizon']) for e in gb.history] == [(0, 2)]
    assert len(gb.estimator.loader) < len(runner.train_dataloader)


# ---- BatchNorm ------------------------------------------------------------

def test_recalibration_computes_plain_batch_averages_on_a_copy():
    cfg, model = toy_parts(bn=True)
    loader = loader_of(cfg, shuffle=False)
    copy_ = copy.deepcopy(model)
    main_state = copy.deepcopy(model.state_dict())
    used = recalibrate_batchnorm({'copy': (copy_, ['rgb'])}, loader, 3)
    assert used == 3
    # the main model is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, main_state[k]), k
    # rgb's layer holds the mean of the three batches' statistics
    layer = copy_.backbones['rgb'].net[1]
    means, variances = [], []
    captured = []
    handle = model.backbones['rgb'].net[1].register_forward_pre_hook(
        lambda m, args: captured.append(args[0].detach()))
    model.train()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            if i == 3:
                break
            data = model.data_preprocessor(batch, True)
            model.extract_feat(data['inputs'], ['rgb'])
    handle.remove()
    for x in captured:
        means.append(x.mean(0))
        variances.append(x.var(0, unbiased=True))
    torch.testing.assert_close(layer.running_mean,
                               torch.stack(means).mean(0))
    torch.testing.assert_close(layer.running_var,
                               torch.stack(variances).mean(0))
    assert layer.momentum == model.backbones['rgb'].net[1].momentum
    # the audio branch was not run: its statistics are as they were
    audio = copy_.backbones['audio'].net[1]
    assert torch.equal(audio.running_mean,
                       main_state['backbones.audio.net.1.running_mean'])
    assert recalibrate_batchnorm(
        {'toy': (MODELS.build(toy.toy_config('x')['model']), None)},
        loader, 3) == 0  # no BatchNorm: nothing to do
    assert batchnorm_layers(model)


@pytest.mark.slow
def test_every_shadow_copy_is_better_on_its_own_training_data(tmp_path):
    """A head cannot be worse on the data it trained on: with statistics
    that describe the trained weights, every copy's T' loss falls."""
    hook = dict(type='GradientBlendingHook', mode='offline',
                estimator='shadow', warmup_epochs=1, bootstrap=0)
    cfg = bn_model_cfg(str(tmp_path), max_epochs=3, gblend=hook)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    gb = next(h for h in runner.hooks
              if type(h).__name__ == 'GradientBlendingHook')
    (entry, ) = gb.history
    for head, stats in entry['heads'].items():
        assert stats['train_after'] < stats['train_before'], head


def test_the_main_model_is_measured_on_a_recalibrated_copy():
    cfg, model = toy_parts(bn=True)
    loader = loader_of(cfg)
    measure_loader = loader_of(cfg, 'val_dataloader', shuffle=False)
    state = copy.deepcopy(model.state_dict())
    measurer = HeadMeasurer(measure_loader, measure_loader, 4, False)
    samples = measurer.measure({MAIN: (model, None)}, loader)[MAIN]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    plain = measure_heads(model, measure_loader)
    recalibrated = copy.deepcopy(model)
    recalibrate_batchnorm({'m': (recalibrated, None)}, loader, 4)
    fresh = measure_heads(recalibrated, measure_loader)
    for head in model.head_names:
        mean = sum(samples[head]['heldout']) / len(samples[head]['heldout'])
        assert mean == pytest.approx(fresh[head].loss, rel=1e-6)
        assert mean != pytest.approx(plain[head].loss, rel=1e-6)
