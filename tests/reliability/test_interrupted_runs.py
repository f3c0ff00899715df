"""Runs killed with SIGKILL resume with ``--resume`` and end as if never
interrupted.

Real ``tools/train.py`` processes train a tiny audio-visual model on real
MP4 clips with online G-Blend (trajectory estimator, an estimate after every
epoch), OGM-GE and OPM, dropout and random crops and flips. Each run is
killed once by ``fault_injection`` (this folder; a real SIGKILL: nothing
of the process runs after it), at one of four points:

* mid-epoch, between two training iterations;
* during a G-Blend estimate, while its measurement loader reads clips;
* after an estimate was appended to ``gblend_history.jsonl`` (and the
  epoch's line to ``modulation_history.jsonl``) but before the epoch's
  checkpoint, so the files hold lines no checkpoint has;
* the same before the first checkpoint, so ``--resume`` starts afresh.

The same command with ``--resume`` then finishes the run. Its histories must
hold each planned entry once, in order, and with deterministic settings
everything must equal an uninterrupted run's bit for bit: every history
entry, the blend weights, the whole model state.
"""
import copy
import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from mmaction_gblend import load_checkpoint_file
from helpers import run_command

pytestmark = pytest.mark.slow  # tools/train.py processes

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
DEMO = osp.join(REPO, 'configs', 'demo',
                'gblend-online-ogm-ge_r3d18-rgb_r18-audio_demo-av.py')
MAX_EPOCHS = 4
# 16 clips, 2 a class: 1 a class held out (8), the other 8 train (2
# iterations of 4 a batch) and are the probe. A measurement reads the probe
# and the held-out set: 16 clips.
CLIPS_PER_MEASUREMENT = 16


def tiny_run_config(data: str, train_list: str) -> Config:
    """The demo's online G-Blend + OGM-GE config, OPM added, made tiny: 8
    training clips, 4-channel branches, an estimate after each epoch."""
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({
        'train_dataloader.dataset.dataset.ann_file': train_list,
        'train_dataloader.dataset.dataset.data_prefix.video': data,
        'val_dataloader.dataset.ann_file': osp.join(data, 'test_list.txt'),
        'val_dataloader.dataset.data_prefix.video': data,
        'model.branches.rgb.feat_dim': 32,
        'model.branches.rgb.backbone.base_channels': 4,
        'model.branches.audio.feat_dim': 32,
        'model.branches.audio.backbone.base_channels': 4,
        'model.fusion.hidden_channels': 16,
        'model.opm': dict(start_epoch=1, p_exe=1.0),
        'train_cfg.max_epochs': MAX_EPOCHS,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.save_best': None,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        # exact equality needs the same random numbers: no worker processes
        # (persistent workers keep theirs across a resume), fixed seed
        'randomness': dict(seed=0, deterministic=True),
    })
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    # noise_scale 0: no estimate is cut to a fallback, every weight depends
    # on the measured losses (and so on any difference between the runs)
    cfg.custom_hooks[0].update(warmup_epochs=1, super_epochs=1,
                               noise_scale=0.0)
    cfg.custom_imports['imports'].append('fault_injection')
    return cfg


@pytest.fixture(scope='module')
def write_config(small_demo, tmp_path_factory):
    """``write_config(name, faults=[], measure_faults=[])``: the tiny run's
    config with fault hooks, and fault transforms put before G-Blend's
    measurement pipeline; returns its path."""
    root = tmp_path_factory.mktemp('interrupted')
    data = small_demo / 'data'
    # the small demo set's train and val clips: 2 a class
    train_list = root / 'train_list.txt'
    train_list.write_text((data / 'train_list.txt').read_text() +
                          (data / 'val_list.txt').read_text())
    base = tiny_run_config(str(data), str(train_list))

    def _write(name, faults=(), measure_faults=()):
        cfg = copy.deepcopy(base)
        cfg.custom_hooks[0]['measure_pipeline'] = \
            list(measure_faults) + cfg.val_pipeline
        cfg.custom_hooks += list(faults)
        path = str(root / f'{name}.py')
        cfg.dump(path)
        return path

    return _write


def train(config, work_dir, *options, returncode=0):
    # fault_injection.py (beside this file) is a custom import of the run
    path = os.pathsep.join(p for p in (HERE, os.environ.get('PYTHONPATH'))
                           if p)
    return run_command(
        [sys.executable, 'tools/train.py', config, '--work-dir',
         str(work_dir), *options], cwd=REPO, timeout=300,
        env=dict(OMP_NUM_THREADS='1', PYTHONPATH=path), returncode=returncode)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def uninterrupted(write_config, tmp_path_factory):
    """The work dir of the run that was never killed."""
    work = tmp_path_factory.mktemp('uninterrupted')
    train(write_config('uninterrupted'), work)
    return work


# Where each run dies (SigkillHook in custom_hooks, SigkillTransform at the
# start of G-Blend's measurement pipeline), the checkpoint its resume loads
# and the epochs of the G-Blend and modulation history lines written by the
# time it died.
FAULTS = {
    # before the 2nd iteration of the 3rd epoch
    'mid-epoch': dict(
        hooks=[dict(type='SigkillHook', epoch=2, iteration=1)],
        resumed_from=2, gblend=[1, 2], modulation=[1, 2]),
    # reading clips for the estimate after the 2nd epoch (the reference
    # measurement and the 1st estimate read 2 x 16 clips), after
    # OnTheFlyModulationHook (ABOVE_NORMAL) wrote the epoch's line
    'during-estimate': dict(
        measure=[dict(type='SigkillTransform',
                      after=2 * CLIPS_PER_MEASUREMENT + 8)],
        resumed_from=1, gblend=[1], modulation=[1, 2]),
    # after GradientBlendingHook (NORMAL) wrote the 3rd epoch's estimate,
    # before CheckpointHook (VERY_LOW) saved the epoch
    'after-estimate-before-checkpoint': dict(
        hooks=[dict(type='SigkillHook', epoch=2, priority='LOW')],
        resumed_from=2, gblend=[1, 2, 3], modulation=[1, 2, 3]),
    # the same in the 1st epoch: no checkpoint yet, so --resume starts
    # afresh, in a work dir whose history files have a line each
    'before-the-first-checkpoint': dict(
        hooks=[dict(type='SigkillHook', epoch=0, priority='LOW')],
        resumed_from=0, gblend=[1], modulation=[1]),
}


@pytest.mark.parametrize('fault', list(FAULTS))
def test_killed_run_resumes_and_equals_the_uninterrupted_run(
        fault, write_config, uninterrupted, tmp_path):
    spec = FAULTS[fault]
    marker = tmp_path / 'killed'
    config = write_config(
        fault, [dict(f, marker=str(marker)) for f in spec.get('hooks', [])],
        [dict(f, marker=str(marker)) for f in spec.get('measure', [])])
    work = tmp_path / 'work'
    start = spec['resumed_from']

    out = train(config, work, returncode=-9)
    assert marker.exists() and 'Traceback' not in out
    # it died where it was meant to: after this checkpoint and these lines
    assert start == 0 or osp.isfile(work / f'epoch_{start}.pth')
    assert not osp.exists(work / f'epoch_{start + 1}.pth')
    assert [e['epoch'] for e in read_jsonl(
        work / 'gblend_history.jsonl')] == spec['gblend']
    assert [e['epoch'] for e in read_jsonl(
        work / 'modulation_history.jsonl')] == spec['modulation']

    out = train(config, work, '--resume')
    if start:
        assert f'Load checkpoint from {work}/epoch_{start}.pth' in out
        assert f'resumed epoch: {start}, iter: {2 * start}' in out
        assert f'Epoch(train) [{start}]' not in out  # not redone
    else:
        assert 'Auto resumed from the latest checkpoint None' in out

    # every planned estimate and epoch once, in order, and the same values
    gblend = read_jsonl(work / 'gblend_history.jsonl')
    modulation = read_jsonl(work / 'modulation_history.jsonl')
    assert [e['epoch'] for e in gblend] == [1, 2, 3]
    assert [e['epoch'] for e in modulation] == [1, 2, 3, 4]
    assert gblend == read_jsonl(uninterrupted / 'gblend_history.jsonl')
    assert modulation == read_jsonl(
        uninterrupted / 'modulation_history.jsonl')
    # the last checkpoint holds the same histories as the files
    checkpoint = load_checkpoint_file(work / f'epoch_{MAX_EPOCHS}.pth')
    assert checkpoint['gblend']['history'] == gblend
    assert checkpoint['modulation']['history'] == modulation

    # the same model, bit for bit: blend weights, parameters, BN statistics
    state = checkpoint['state_dict']
    expected = load_checkpoint_file(
        uninterrupted / f'epoch_{MAX_EPOCHS}.pth')['state_dict']
    assert torch.equal(state['blend_weights'], expected['blend_weights'])
    assert state.keys() == expected.keys()
    differ = [k for k in state if not torch.equal(state[k], expected[k])]
    assert not differ, f'{len(differ)} of {len(state)} differ: {differ[:5]}'
