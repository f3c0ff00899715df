"""The demo configs train, test and infer on (a small copy of) the demo data.

The configs are the real ones under configs/demo; an override config points
them at a small demo dataset and shortens the schedule.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from mmaction_gblend.datasets.demo_generator import (DemoDatasetSpec,
                                                     make_demo_dataset)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    'rgb-only_r3d18_demo-av': ['rgb'],
    'audio-only_r18_demo-av': ['audio'],
    'naive-fusion_r3d18-rgb_r18-audio_demo-av': ['rgb', 'audio', 'fused'],
    'aux-heads_r3d18-rgb_r18-audio_demo-av': ['rgb', 'audio', 'fused'],
    'ogm-ge_r3d18-rgb_r18-audio_demo-av': ['rgb', 'audio', 'fused'],
}
# On-the-fly modulation configs: what their epoch summary must show.
MODULATION = {
    'ogm-ge_r3d18-rgb_r18-audio_demo-av': ('ogm_k rgb', []),
    # the demo's 2-epoch warm-up moved to 0 so the 1-epoch run drops
    'opm_r3d18-rgb_r18-audio_demo-av':
    ('opm_q rgb', ['--cfg-options', 'model.opm.start_epoch=0']),
}
OVERRIDE = '''
_base_ = ['{config}']
data_root = '{root}'
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/train_list.txt',
                 data_prefix=dict(video=data_root)))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/val_list.txt',
                 data_prefix=dict(video=data_root)))
test_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/test_list.txt',
                 data_prefix=dict(video=data_root)))
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
'''


@pytest.fixture(scope='module')
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    spec = DemoDatasetSpec(train_per_class=1, val_per_class=1,
                           test_per_class=1)
    make_demo_dataset(str(root / 'data'), spec=spec, seed=3, workers=2,
                      verbose=False)
    return root


def override_config(root, name):
    path = root / f'{name}.py'
    path.write_text(OVERRIDE.format(
        config=osp.join(REPO, 'configs', 'demo', f'{name}.py'),
        root=root / 'data'))
    return str(path)


@pytest.mark.parametrize('name,heads', list(CONFIGS.items()))
def test_config_builds_and_runs_a_real_batch(small_demo, name, heads):
    cfg = Config.fromfile(override_config(small_demo, name))
    model = MODELS.build(cfg.model)
    assert model.head_names == heads
    assert abs(sum(model.get_blend_weights().values()) - 1) < 1e-6
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    data = model.data_preprocessor(next(iter(loader)), True)
    losses = model(**data, mode='loss')
    assert [k for k in losses if k.startswith('loss_')] == \
        [f'loss_{h}' for h in heads]
    assert all(torch.isfinite(v) for v in losses.values())


def run(args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_naive_fusion_trains_tests_and_infers(small_demo):
    config = override_config(small_demo,
                             'naive-fusion_r3d18-rgb_r18-audio_demo-av')
    work = str(small_demo / 'work')
    out = run(['tools/train.py', config, '--work-dir', work])
    assert 'Epoch(train) [1][2/2]' in out
    assert 'acc/top1:' in out and 'acc/rgb_top1:' in out
    assert 'acc/audio_top1:' in out
    assert 'best checkpoint with' in out and 'acc/top1 at 1 epoch' in out
    checkpoint = osp.join(work, 'epoch_1.pth')

    out = run(['tools/test.py', config, checkpoint, '--work-dir', work])
    assert 'Epoch(test) [2/2]' in out
    for key in ('acc/top1', 'acc/rgb_top1', 'acc/audio_top1'):
        assert f'{key}:' in out

    clip = osp.join(small_demo, 'data', 'test', sorted(
        os.listdir(small_demo / 'data' / 'test'))[0])
    out = run(['tools/infer.py', config, checkpoint, clip, '--topk', '3',
               '--label-map', str(small_demo / 'data' / 'classes.txt')])
    lines = out.splitlines()
    for head in ('prediction:', 'rgb:', 'audio:'):
        start = lines.index(head)
        assert lines[start + 1].strip().startswith('1. class_0')
        assert lines[start + 3].strip().startswith('3. ')


@pytest.mark.parametrize('name', list(MODULATION))
def test_modulation_configs_train_and_test(small_demo, name):
    logged, options = MODULATION[name]
    config = override_config(small_demo, name)
    work = str(small_demo / f'work-{name}')
    out = run(['tools/train.py', config, '--work-dir', work] + options)
    assert 'On-the-fly modulation:' in out
    summary = [line for line in out.splitlines()
               if 'Modulation, epoch 1:' in line]
    assert summary and logged in summary[0] and 'score rgb' in summary[0]
    assert osp.exists(osp.join(work, 'modulation_history.jsonl'))
    out = run(['tools/test.py', config, osp.join(work, 'epoch_1.pth'),
               '--work-dir', work])
    assert 'Epoch(test) [2/2]' in out and 'acc/top1:' in out


def test_gblend_with_ogm_ge_config_builds():
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'demo',
        'gblend-online-ogm-ge_r3d18-rgb_r18-audio_demo-av.py'))
    model = MODELS.build(cfg.model)
    assert model.score_source == 'heads'
    assert cfg.optim_wrapper.type == 'OGMGEOptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # merged with the base
    assert [h['type'] for h in cfg.custom_hooks] == [
        'GradientBlendingHook', 'OnTheFlyModulationHook']
    assert cfg.train_dataloader.dataset.type == 'HeldOutSplitDataset'


def test_mmaction_inference_api(small_demo):
    """init_recognizer / inference_recognizer work with our configs."""
    from mmaction.apis import inference_recognizer, init_recognizer
    config = override_config(small_demo, 'aux-heads_r3d18-rgb_r18-audio_'
                             'demo-av')
    model = init_recognizer(config, device='cpu')
    clip = str(small_demo / 'data' / 'val' / sorted(
        os.listdir(small_demo / 'data' / 'val'))[0])
    result = inference_recognizer(model, clip)
    assert result.pred_score.shape == (8, )
    assert result.pred_score.sum().item() == pytest.approx(1, abs=1e-5)
    assert set(result.head_scores) == {'rgb', 'audio'}
