"""The demo configs train, test and infer on (a small copy of) the demo data.

The configs are the real ones under configs/demo; an override config points
them at a small demo dataset and shortens the schedule.
"""
import json
import os
import os.path as osp
import pickle
import sys

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import run_command

pytestmark = pytest.mark.demo_tools

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    'rgb-only_r3d18_demo-av': ['rgb'],
    'audio-only_r18_demo-av': ['audio'],
    'naive-fusion_r3d18-rgb_r18-audio_demo-av': ['audio', 'rgb', 'fused'],
    'aux-heads_r3d18-rgb_r18-audio_demo-av': ['audio', 'rgb', 'fused'],
    'ogm-ge_r3d18-rgb_r18-audio_demo-av': ['audio', 'rgb', 'fused'],
    'paper-weights_r3d18-rgb_r18-audio_demo-av': ['audio', 'rgb', 'fused'],
}
# On-the-fly modulation configs: what their epoch summary must show.
MODULATION = {
    'ogm-ge_r3d18-rgb_r18-audio_demo-av': ('ogm_k audio', []),
    # the demo's 1-epoch warm-up moved to 0 so the 1-epoch run drops
    'opm_r3d18-rgb_r18-audio_demo-av':
    ('opm_q audio', ['--cfg-options', 'model.opm.start_epoch=0']),
}


@pytest.mark.parametrize('name,heads', list(CONFIGS.items()))
def test_config_builds_and_runs_a_real_batch(demo_config, name, heads):
    cfg = Config.fromfile(demo_config(name))
    model = MODELS.build(cfg.model)
    assert model.head_names == heads
    assert abs(sum(model.get_blend_weights().values()) - 1) < 1e-6
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    data = model.data_preprocessor(next(iter(loader)), True)
    losses = model(**data, mode='loss')
    assert [k for k in losses if k.startswith('loss_')] == \
        [f'loss_{h}' for h in heads]
    assert all(torch.isfinite(v) for v in losses.values())


def test_paper_weights_config_has_the_papers_kinetics_weights(demo_config):
    cfg = Config.fromfile(
        demo_config('paper-weights_r3d18-rgb_r18-audio_demo-av'))
    weights = MODELS.build(cfg.model).get_blend_weights()
    assert weights == pytest.approx(dict(rgb=0.63, audio=0.014,
                                         fused=0.356))


def run(args):
    return run_command([sys.executable] + args, cwd=REPO)


@pytest.mark.slow
def test_naive_fusion_trains_tests_and_infers(small_demo, demo_config):
    config = demo_config('naive-fusion_r3d18-rgb_r18-audio_demo-av')
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
    # the copy of the config the Runner wrote (keys sorted) gives the same
    # model: the same scores on the test split
    dumped = osp.join(work, osp.basename(config))
    scores = []
    for cfg in (config, dumped):
        dump = osp.join(work, f'scores{len(scores)}.pkl')
        run(['tools/test.py', cfg, checkpoint, '--work-dir', work, '--dump',
             dump])
        with open(dump, 'rb') as f:
            scores.append(torch.stack([s['pred_score']
                                       for s in pickle.load(f)]))
    torch.testing.assert_close(scores[0], scores[1])

    clip = osp.join(small_demo, 'data', 'test', sorted(
        os.listdir(small_demo / 'data' / 'test'))[0])
    out = run(['tools/infer.py', config, checkpoint, clip, '--topk', '3',
               '--label-map', str(small_demo / 'data' / 'classes.txt')])
    lines = out.splitlines()
    for head in ('prediction:', 'rgb:', 'audio:'):
        start = lines.index(head)
        assert lines[start + 1].strip().startswith('1. class_0')
        assert lines[start + 3].strip().startswith('3. ')


@pytest.mark.slow
@pytest.mark.parametrize('name', list(MODULATION))
def test_modulation_configs_train_and_test(small_demo, demo_config, name):
    logged, options = MODULATION[name]
    config = demo_config(name)
    work = str(small_demo / f'work-{name}')
    out = run(['tools/train.py', config, '--work-dir', work] + options)
    assert 'On-the-fly modulation:' in out
    summary = [line for line in out.splitlines()
               if 'Modulation, epoch 1:' in line]
    assert summary and logged in summary[0] and 'score audio' in summary[0]
    assert osp.exists(osp.join(work, 'modulation_history.jsonl'))
    out = run(['tools/test.py', config, osp.join(work, 'epoch_1.pth'),
               '--work-dir', work])
    assert 'Epoch(test) [2/2]' in out and 'acc/top1:' in out


@pytest.mark.slow
def test_opm_with_ogm_ge_trains_both_and_logs_both(small_demo, demo_config):
    """OPM + OGM-GE in one training, as the TPAMI paper evaluates it: two
    epochs of the demo config, OGM-GE in both, OPM after its warm-up."""
    name = 'opm-ogm-ge_r3d18-rgb_r18-audio_demo-av'
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name + '.py'))
    opm = Config.fromfile(osp.join(
        REPO, 'configs', 'demo', 'opm_r3d18-rgb_r18-audio_demo-av.py'))
    ogm = Config.fromfile(osp.join(
        REPO, 'configs', 'demo', 'ogm-ge_r3d18-rgb_r18-audio_demo-av.py'))
    # each with its own demo config's settings
    assert cfg.model.opm == opm.model.opm
    assert cfg.optim_wrapper == ogm.optim_wrapper
    assert cfg.optim_wrapper.start_epoch == 0 and \
        cfg.optim_wrapper.end_epoch >= 1
    work = str(small_demo / f'work-{name}')
    # two epochs: OPM's warm-up shortened to the first
    out = run(['tools/train.py', demo_config(name), '--work-dir', work,
               '--cfg-options', 'train_cfg.max_epochs=2',
               'model.opm.start_epoch=1'])
    assert 'On-the-fly modulation: OGM-GE (alpha 0.8, paper k, conv ' \
        'parameters, epochs 0-' in out
    assert '+ OPM (q_base=0.5, lam=0.5, p_exe=0.7, epochs 1-last)' in out
    with open(osp.join(work, 'modulation_history.jsonl')) as f:
        history = [json.loads(line) for line in f]
    assert [e['epoch'] for e in history] == [1, 2]
    # epoch 0: OGM-GE alone (OPM warms up); epoch 1: both, both logged
    assert 'ogm_k' in history[0] and 'opm_q' not in history[0]
    both = history[1]
    assert {'score', 'ratio', 'ogm_k', 'opm_q', 'opm_executed',
            'opm_dropped'} <= set(both)
    for key in ('ogm_k', 'opm_q', 'opm_dropped'):
        assert set(both[key]) == {'rgb', 'audio'}
        assert all(0 <= v <= 1 for v in both[key].values()), key
    assert 0 <= both['opm_executed'] <= 1
    assert both['steps'] == 2  # 8 training clips, batch 4
    summary = [line for line in out.splitlines()
               if 'Modulation, epoch 2:' in line]
    assert summary and 'ogm_k audio' in summary[0] and \
        'opm_q audio' in summary[0]


def test_gblend_with_ogm_ge_config_builds():
    cfg = Config.fromfile(osp.join(
        REPO, 'configs', 'demo',
        'gblend-online-ogm-ge_r3d18-rgb_r18-audio_demo-av.py'))
    model = MODELS.build(cfg.model)
    assert model.score_source == 'heads'
    assert cfg.optim_wrapper.type == 'OGMGEOptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # merged with the base
    assert [h['type'] for h in cfg.custom_hooks] == [
        'GradientBlendingHook', 'OnTheFlyModulationHook', 'PredictionMixHook']
    assert cfg.train_dataloader.dataset.type == 'HeldOutSplitDataset'


def test_mmaction_inference_api(small_demo, demo_config):
    """init_recognizer / inference_recognizer work with our configs."""
    from mmaction.apis import inference_recognizer, init_recognizer
    config = demo_config('aux-heads_r3d18-rgb_r18-audio_demo-av')
    model = init_recognizer(config, device='cpu')
    clip = str(small_demo / 'data' / 'val' / sorted(
        os.listdir(small_demo / 'data' / 'val'))[0])
    result = inference_recognizer(model, clip)
    assert result.pred_score.shape == (8, )
    assert result.pred_score.sum().item() == pytest.approx(1, abs=1e-5)
    assert set(result.head_scores) == {'rgb', 'audio', 'fused'}
