"""tools/train.py and tools/test.py as users run them: real Runners.

One process, two processes (torchrun, gloo on CPU), resume after the
first epoch, and testing a saved checkpoint. The model is mmaction2's stock
audio recognizer on the log-mel of generated clips; what is under test is
the launch path, the data path and the checkpoint round trip.
"""
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

from mmaction_gblend import load_checkpoint_file
from helpers import free_port, load_script, write_test_clip

CONFIG = '''
_base_ = ['{repo}/configs/_base_/default_runtime.py']
data_root = '{root}'
pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecodeAudioTrack', sample_rate=16000),
    dict(type='LogMelSpectrogram', hop_length=160, n_mels=40,
         num_frames=100),
    dict(type='FormatAudioShape', input_format='NCTF'),
    dict(type='PackActionInputs'),
]
dataset = dict(type='AudioVisualDataset', ann_file=data_root + '/list.txt',
               data_prefix=dict(video=data_root), pipeline=pipeline)
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dataset)
val_dataloader = dict(batch_size=2, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(dataset, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
model = dict(
    type='RecognizerAudio',
    backbone=dict(type='ResNet', depth=18, in_channels=1, norm_eval=False),
    cls_head=dict(type='TSNAudioHead', num_classes=2, in_channels=512,
                  dropout_ratio=0.0, average_clips='prob'))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='MultiStepLR', milestones=[1], by_epoch=True)]
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def launch_setup(tmp_path_factory):
    """Eight 2 s clips of two classes (500 / 1000 Hz) and a config."""
    root = tmp_path_factory.mktemp('launch')
    lines = []
    for i in range(8):
        label = i % 2
        write_test_clip(str(root / f'c{label}_{i}.mp4'), size=32,
                        freqs=(500.0 * (label + 1), ), seed=i)
        lines.append(f'c{label}_{i}.mp4 {label}')
    (root / 'list.txt').write_text('\n'.join(lines) + '\n')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    config = root / 'tiny_audio.py'
    config.write_text(CONFIG.format(repo=repo, root=root))
    return repo, str(config), root


def run(args, repo, timeout=400, env=None):
    # PYTHONFAULTHANDLER: an aborting rank prints its Python stack
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
               PYTHONFAULTHANDLER='1', PYTHON=sys.executable, **(env or {}))
    proc = subprocess.run(
        args, cwd=repo, env=env, capture_output=True, text=True,
        timeout=timeout)
    output = proc.stdout + proc.stderr
    # both tails: the log says how far the run got, stderr why it stopped
    assert proc.returncode == 0, (
        f'stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}')
    return output


@pytest.mark.slow
def test_train_then_resume_then_test(launch_setup, tmp_path):
    repo, config, _ = launch_setup
    work = str(tmp_path / 'work')
    out = run([sys.executable, 'tools/train.py', config, '--work-dir', work],
              repo)
    assert 'Epoch(train) [1][4/4]' in out
    assert 'Epoch(val) [1][4/4]' in out
    first = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(first)

    out = run([sys.executable, 'tools/train.py', config, '--work-dir', work,
               '--resume', '--cfg-options', 'train_cfg.max_epochs=2'], repo)
    assert f'Load checkpoint from {first}' in out
    assert 'resumed epoch: 1, iter: 4' in out
    assert 'Epoch(train) [1]' not in out  # the first epoch is not redone
    assert 'Epoch(train) [2][4/4]' in out
    second = osp.join(work, 'epoch_2.pth')
    assert load_checkpoint_file(second)['meta']['epoch'] == 2

    out = run([sys.executable, 'tools/test.py', config, second,
               '--work-dir', str(tmp_path / 'test'), '--dump',
               str(tmp_path / 'preds.pkl')], repo)
    assert 'Epoch(test) [4/4]' in out and 'acc/top1:' in out
    assert osp.isfile(tmp_path / 'preds.pkl')


@pytest.mark.slow
def test_train_with_test_last_tests_the_last_checkpoint(launch_setup,
                                                        tmp_path):
    repo, config, _ = launch_setup
    work, dump = str(tmp_path / 'work'), str(tmp_path / 'preds.pkl')
    out = run([sys.executable, 'tools/train.py', config, '--work-dir', work,
               '--test-last', '--dump', dump, '--cfg-options',
               'train_cfg.max_epochs=2'], repo)
    assert f"Load checkpoint from {osp.join(work, 'epoch_2.pth')}" in out
    assert out.index('Epoch(train) [2][4/4]') < out.index(
        'Epoch(test) [4/4]')
    with open(dump, 'rb') as f:
        assert len(pickle.load(f)) == 8


def test_train_dump_needs_test_last_and_a_pickle(launch_setup):
    repo, config, _ = launch_setup
    train = load_script(osp.join(repo, 'tools', 'train.py'))
    with pytest.raises(SystemExit):
        train.parse_args([config, '--dump', 'out.pkl'])
    with pytest.raises(ValueError, match='--dump must end with .pkl'):
        train.build_config(
            train.parse_args([config, '--test-last', '--dump', 'out.json']))


@pytest.mark.slow
def test_two_processes_on_cpu(launch_setup, tmp_path):
    repo, config, _ = launch_setup
    work = str(tmp_path / 'dist')
    out = run([
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir', work
    ], repo, env=dict(PORT=str(free_port())))
    assert 'Distributed training: True' in out
    if not torch.cuda.is_available():
        assert 'No CUDA device: starting the process group with gloo' in out
    # 8 samples, batch 2, two processes: 2 iterations each
    assert 'Epoch(train) [1][2/2]' in out
    assert 'Epoch(val) [1][2/2]' in out
    assert glob.glob(osp.join(work, 'epoch_1.pth'))


def test_train_options_reach_the_config(launch_setup, tmp_path):
    repo, config, _ = launch_setup
    train = load_script(osp.join(repo, 'tools', 'train.py'))
    cfg = train.build_config(train.parse_args([
        config, '--amp', '--resume', '--seed', '7', '--cfg-options',
        'train_cfg.max_epochs=5'
    ]))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.randomness == dict(seed=7, deterministic=False)
    assert cfg.train_cfg.max_epochs == 5
    assert cfg.work_dir == './work_dirs/tiny_audio'
    cfg = train.build_config(
        train.parse_args([config, '--resume', 'x.pth', '--work-dir', 'w']))
    assert cfg.resume is True and cfg.load_from == 'x.pth'
    assert cfg.work_dir == 'w'
    with pytest.raises(ValueError, match='no mixed-precision form'):
        train.build_config(train.parse_args([
            config, '--amp', '--cfg-options', 'optim_wrapper.type=Custom'
        ]))


def test_test_options_reach_the_config(launch_setup):
    repo, config, _ = launch_setup
    test = load_script(osp.join(repo, 'tools', 'test.py'))
    cfg = test.build_config(
        test.parse_args([config, 'ckpt.pth', '--dump', 'out.pkl']))
    assert cfg.load_from == 'ckpt.pth'
    assert cfg.test_evaluator[-1] == dict(
        type='DumpResults', out_file_path='out.pkl')
    with pytest.raises(ValueError, match='--dump must end with .pkl'):
        test.build_config(
            test.parse_args([config, 'ckpt.pth', '--dump', 'out.json']))


def test_seed_and_lr_scaling_reach_a_config_without_those_keys(
        launch_setup, tmp_path):
    repo, config, _ = launch_setup
    bare = tmp_path / 'bare.py'  # no randomness, no auto_scale_lr
    bare.write_text(open(config).read().replace('randomness = dict(seed=0)',
                                                 ''))
    train = load_script(osp.join(repo, 'tools', 'train.py'))
    cfg = train.build_config(train.parse_args([str(bare), '--seed', '3']))
    assert cfg.randomness == dict(seed=3, deterministic=False)
    with pytest.raises(ValueError, match='auto_scale_lr.base_batch_size'):
        train.build_config(train.parse_args([str(bare), '--auto-scale-lr']))
    scaled = tmp_path / 'scaled.py'
    scaled.write_text(open(bare).read() +
                      '\nauto_scale_lr = dict(base_batch_size=16)\n')
    cfg = train.build_config(
        train.parse_args([str(scaled), '--auto-scale-lr']))
    assert cfg.auto_scale_lr == dict(base_batch_size=16, enable=True)
