"""Every shipped config's learning-rate schedule reaches its configured peak.

The schedules are built and stepped the way a training run does it: the
optimizer through mmengine's ``build_optim_wrapper``, the schedulers as
``Runner._build_param_scheduler`` builds them (default ``end``, epoch-based
ones with ``convert_to_iter_based`` turned into iteration-based ones over a
synthetic epoch length) and stepped as ``ParamSchedulerHook`` steps them
(iteration-based ones after every train iteration, epoch-based ones after
every epoch). A schedule that never lifts its warm-up factor, as the demo's
epoch-based one-epoch ``LinearLR`` did, trains below the learning rate the
config states, and fails here.
"""
import copy
import glob
import math
import os.path as osp
import warnings
from typing import List, Sequence

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, DefaultScope

import mmaction_gblend  # noqa: F401  (registers the plugin's wrappers)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_FILES = sorted(
    osp.relpath(path, REPO) for path in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True))
# Iterations per epoch: few, for speed, but more than 1 so that a warm-up
# over the iterations of an epoch has steps to take.
EPOCH_LENGTH = 7
PEAK_REACHED = 0.01  # relative: the lr must come within 1% of the peak
PEAK_EXCEEDED = 1e-9  # relative: float round-off of the chained factors


class _TinyModel(nn.Module):
    """A model with the usual parameter names, so that a ``paramwise_cfg``
    (``custom_keys`` on ``backbone``/``cls_head``, norm and bias decay) finds
    something to apply to."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        self.cls_head = nn.Linear(4, 2)


def has_schedule(cfg: Config) -> bool:
    """Whether a config trains: an optimizer, a scheduler and a loop."""
    return all(
        key in cfg
        for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'))


def schedule_lrs(cfg: Config, epoch_length: int = EPOCH_LENGTH) -> List[float]:
    """The learning rate each training iteration of ``cfg`` runs with.

    Args:
        cfg: A config with ``optim_wrapper``, ``param_scheduler`` and
            ``train_cfg`` (epoch- or iteration-based loop).
        epoch_length: Iterations per epoch (``len(train_dataloader)``).

    Returns:
        One learning rate per iteration, in order, as the optimizer holds it
        when the iteration's step is taken (what mmengine logs as ``lr``).
        With a ``paramwise_cfg`` that scales groups, the schedule factor of
        the groups times the configured lr.
    """
    train_cfg = cfg.train_cfg
    by_epoch = train_cfg.get(
        'by_epoch',
        train_cfg.get('type', 'EpochBasedTrainLoop') != 'IterBasedTrainLoop')
    if by_epoch:
        max_epochs = train_cfg.max_epochs
        max_iters = max_epochs * epoch_length
    else:
        # IterBasedTrainLoop: one "epoch" of max_iters iterations
        # (after_train_epoch only comes at the end).
        max_iters = train_cfg.max_iters
        max_epochs, epoch_length = 1, max_iters

    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmaction')), warnings.catch_warnings():
        # No optimizer step is taken here (there is no loss), which mmengine
        # warns about on the first scheduler step; it changes no value.
        warnings.filterwarnings('ignore', message='Detected call of')
        wrapper = build_optim_wrapper(_TinyModel(),
                                      copy.deepcopy(cfg.optim_wrapper))
        if isinstance(wrapper, OptimWrapperDict):
            raise NotImplementedError('one optimizer per config only')
        groups = wrapper.optimizer.param_groups
        initial = [group['lr'] for group in groups]

        schedulers = []
        configs = cfg.param_scheduler
        if not isinstance(configs, Sequence):
            configs = [configs]
        for scheduler in configs:
            scheduler = copy.deepcopy(scheduler)
            # Runner._build_param_scheduler: default end, epoch_length
            scheduler.setdefault(
                'end',
                max_epochs if scheduler.get('by_epoch', True) else max_iters)
            schedulers.append(
                PARAM_SCHEDULERS.build(
                    scheduler,
                    default_args=dict(
                        optimizer=wrapper, epoch_length=epoch_length)))

        peak = cfg.optim_wrapper.optimizer.lr
        lrs = []
        for _ in range(max_epochs):
            for _ in range(epoch_length):
                lrs.append(peak * max(group['lr'] / lr0
                                      for group, lr0 in zip(groups, initial)))
                # ParamSchedulerHook.after_train_iter
                for scheduler in schedulers:
                    if not scheduler.by_epoch:
                        scheduler.step()
            # ParamSchedulerHook.after_train_epoch
            for scheduler in schedulers:
                if scheduler.by_epoch:
                    scheduler.step()
    return lrs


def check_schedule(cfg: Config, epoch_length: int = EPOCH_LENGTH) -> None:
    """Assert that ``cfg`` trains at its configured peak learning rate.

    Args:
        cfg: A config, as for :func:`schedule_lrs`.
        epoch_length: Iterations per epoch.

    Raises:
        AssertionError: If the learning rate never comes within 1% of
            ``optim_wrapper.optimizer.lr``, or rises above it.
    """
    peak = cfg.optim_wrapper.optimizer.lr
    lrs = schedule_lrs(cfg, epoch_length)
    highest = max(lrs)
    where = lrs.index(highest)
    assert highest >= peak * (1 - PEAK_REACHED), (
        f'the lr peaks at {highest:.4g} (iteration {where}), below the '
        f'configured {peak:.4g}: a warm-up factor is never lifted?')
    assert highest <= peak * (1 + PEAK_EXCEEDED), (
        f'the lr reaches {highest:.4g} (iteration {where}), above the '
        f'configured {peak:.4g}')


# Explicit ids: pytest abbreviates long strings to 'path<N>'.
@pytest.mark.parametrize('path', CONFIG_FILES, ids=CONFIG_FILES)
def test_config_reaches_its_peak_lr(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    if not has_schedule(cfg):
        pytest.skip('no optimizer / scheduler / train loop')
    check_schedule(cfg)


def test_the_trained_configs_are_all_checked():
    # Guards against the test skipping everything (a renamed key, a config
    # that stops loading its schedule).
    checked = set()
    for path in CONFIG_FILES:
        if not path.startswith(osp.join('configs', '_base_')) and \
                has_schedule(Config.fromfile(osp.join(REPO, path))):
            checked.add(osp.basename(osp.dirname(path)))
    assert {
        'demo', 'crema_d', 'kinetics_sounds', 'kinetics400', 'ucf101',
        'stock_with_audio'
    } <= checked


def _demo_schedule(**warmup) -> Config:
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'schedules', 'sgd_demo.py'))
    cfg.param_scheduler[0].update(warmup)
    return cfg


def test_an_epoch_based_one_epoch_warmup_fails_the_check():
    # The demo schedule as it was: LinearLR stepped once at epoch 0, so its
    # start factor stays on for the whole run.
    old = _demo_schedule(by_epoch=True, begin=0, end=1)
    old.param_scheduler[0].pop('convert_to_iter_based', None)
    with pytest.raises(AssertionError, match='below the configured'):
        check_schedule(old)
    peak = old.optim_wrapper.optimizer.lr
    start = old.param_scheduler[0].start_factor
    assert max(schedule_lrs(old)) == pytest.approx(peak * start)


def test_demo_warmup_then_cosine_from_the_peak():
    # Warm-up over the iterations of epoch 0, then the cosine from the peak:
    # epoch e starts at peak * (1 + cos(pi e / T)) / 2.
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'schedules', 'sgd_demo.py'))
    peak = cfg.optim_wrapper.optimizer.lr
    warmup, cosine = cfg.param_scheduler
    lrs = schedule_lrs(cfg, EPOCH_LENGTH)
    first = lrs[:EPOCH_LENGTH]
    assert first[0] == pytest.approx(peak * warmup.start_factor)
    assert first == sorted(first)
    assert first[-1] == pytest.approx(peak)
    for epoch in range(1, cfg.train_cfg.max_epochs):
        expected = peak * (1 + math.cos(math.pi * epoch / cosine.T_max)) / 2
        epoch_lrs = lrs[epoch * EPOCH_LENGTH:(epoch + 1) * EPOCH_LENGTH]
        assert epoch_lrs == pytest.approx([expected] * EPOCH_LENGTH)
