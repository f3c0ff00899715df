"""OnTheFlyModulationHook with real Runners on the toy task: wiring, logs,
history, resume, and use together with G-Blend."""
import glob
import itertools
import json
import os.path as osp
import re

import pytest
import torch
from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy

pytestmark = pytest.mark.slow  # each test trains with a Runner

HOOK = dict(type='OnTheFlyModulationHook')
# epochs 0 and 1 (both ends included)
OGM = dict(type='OGMGEOptimWrapper', alpha=0.8, ge_noise=True,
           start_epoch=0, end_epoch=1)
OPM = dict(opm=dict(start_epoch=1, p_exe=1.0))


RUNS = itertools.count()


def train(work_dir, max_epochs=3, resume=False, log_level='INFO', **kwargs):
    cfg = toy.toy_config(str(work_dir), max_epochs=max_epochs, **kwargs)
    # A name of its own: two Runners started in the same second would
    # otherwise share one logger (and its level).
    cfg.update(log_level=log_level, resume=resume,
               experiment_name=f'modulation-run-{next(RUNS)}')
    cfg['default_hooks']['logger']['interval'] = 5
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return runner


def read_log(work_dir):
    return ''.join(open(p).read()
                   for p in glob.glob(osp.join(str(work_dir), '*', '*.log')))


def history(work_dir):
    with open(osp.join(str(work_dir), 'modulation_history.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_ogm_ge_and_opm_train_and_log_every_epoch(tmp_path):
    train(tmp_path, optim_wrapper=OGM, model=OPM, hooks=[HOOK])
    entries = history(tmp_path)
    assert [e['epoch'] for e in entries] == [1, 2, 3]
    # OGM in epochs 0-1 (0-based), OPM from epoch 1 on
    assert [('ogm_k' in e, 'opm_q' in e) for e in entries] == \
        [(True, False), (True, True), (False, True)]
    for e in entries:
        assert set(e['score']) == {'rgb', 'audio'}
        assert all(0 < v < 1 for v in e['score'].values())
        if 'ogm_k' in e:
            assert all(0 <= v <= 1 for v in e['ogm_k'].values())
        if 'opm_q' in e:
            assert e['opm_executed'] == 1.0
            assert all(0 <= v <= 1 for v in e['opm_dropped'].values())
    log = read_log(tmp_path)
    assert ('On-the-fly modulation: OGM-GE (alpha 0.8, paper k, conv '
            'parameters, epochs 0-1) + OPM (q_base=0.5, lam=0.5, p_exe=1.0, '
            'epochs 1-last)') in log
    assert 'Modulation, epoch 1: score audio' in log and 'ogm_k audio' in log
    assert 'Modulation, epoch 3: score' in log and 'opm_q audio' in log
    # per-step values sit beside the losses in the training log lines
    train_lines = [line for line in log.splitlines()
                   if 'Epoch(train)' in line]
    assert any('ogm_k_rgb:' in line and 'ratio_audio:' in line
               for line in train_lines)
    scalars = glob.glob(osp.join(str(tmp_path), '*', 'vis_data',
                                 'scalars.json'))
    text = open(scalars[0]).read()
    assert 'modulation/ogm_k/rgb' in text and 'modulation/opm_q/audio' in text


def test_debug_level_logs_every_step(tmp_path):
    train(tmp_path, max_epochs=1, optim_wrapper=OGM, hooks=[HOOK],
          log_level='DEBUG')
    steps = [line for line in read_log(tmp_path).splitlines()
             if 'modulation step' in line]
    assert len(steps) == 13  # 200 training samples, batch 16 (round up)
    assert 'ogm_k_rgb' in steps[0] and 'score_audio' in steps[0]


def test_the_dominant_encoder_learns_slower(tmp_path):
    """Same data and seed, with and without OGM (no noise, strong alpha):
    the leading modality's encoder moves less, the other's not less."""
    moved = {}
    for name, wrapper in (('plain', {}),
                          ('ogm', dict(OGM, ge_noise=False, alpha=3.0,
                                       end_epoch=None))):
        torch.manual_seed(0)
        # RGB carries a strong class signal: it leads from the start
        runner = train(tmp_path / name, max_epochs=3, optim_wrapper=wrapper,
                       hooks=[HOOK] if wrapper else [],
                       signal=dict(imgs=2.0, audios=0.2))
        start = torch.load(glob.glob(str(tmp_path / name / 'epoch_1.pth'))[0],
                           weights_only=False)['state_dict']
        model = runner.model
        moved[name] = {
            m: sum((p.detach() - start[f'backbones.{m}.{n}']).norm().item()
                   for n, p in model.backbones[m].named_parameters())
            for m in model.modalities
        }
    assert history(tmp_path / 'ogm')[-1]['ratio']['rgb'] > 1.2
    assert moved['ogm']['rgb'] < 0.8 * moved['plain']['rgb']
    assert moved['ogm']['audio'] > 0.8 * moved['plain']['audio']


def test_resume_keeps_history_and_the_ge_noise_sequence(tmp_path):
    full = train(tmp_path / 'full', max_epochs=3, optim_wrapper=OGM,
                 hooks=[HOOK])
    train(tmp_path / 'cut', max_epochs=2, optim_wrapper=OGM, hooks=[HOOK])
    resumed = train(tmp_path / 'cut', max_epochs=3, optim_wrapper=OGM,
                    hooks=[HOOK], resume=True)
    assert history(tmp_path / 'cut') == history(tmp_path / 'full')
    assert len(history(tmp_path / 'cut')) == 3
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_together_with_gradient_blending(tmp_path):
    gblend = dict(type='GradientBlendingHook', mode='online',
                  estimator='trajectory', warmup_epochs=1, super_epochs=1)
    runner = train(tmp_path, max_epochs=3, gblend=gblend,
                   optim_wrapper=dict(OGM, end_epoch=None),
                   model=dict(score_source='heads'), hooks=[HOOK])
    assert runner.model.score_source == 'heads'
    weights = runner.model.get_blend_weights()
    assert weights != pytest.approx({h: 1 / 3 for h in weights})
    assert len(history(tmp_path)) == 3
    assert all('ogm_k' in e for e in history(tmp_path))
    assert osp.exists(osp.join(str(tmp_path), 'gblend_history.jsonl'))


def test_the_hook_refuses_to_run_with_nothing_to_modulate(tmp_path):
    with pytest.raises(ValueError, match='nothing to modulate'):
        train(tmp_path, max_epochs=1, hooks=[HOOK])


@pytest.mark.parametrize('history_file,error,match', [
    (None, TypeError, 'history_file must be a file name, got None'),
    (7, TypeError, 'history_file must be a file name, got 7'),
    ('', ValueError, "history_file must be a file name in the work dir, "
     "got ''"),
    ('logs/', ValueError, "history_file must be a file name in the work "
     "dir, got 'logs/'"),
    # the hooks write into the work dir only (the G-Blend hook's rule too)
    ('logs/modulation.jsonl', ValueError, 'history_file must be a file '
     "name in the work dir, got 'logs/modulation.jsonl'"),
])
def test_a_bad_history_file_names_the_key_when_built(history_file, error,
                                                     match):
    with pytest.raises(error, match=re.escape(
            f'custom_hooks[OnTheFlyModulationHook].{match}')):
        HOOKS.build(dict(HOOK, history_file=history_file))


def test_the_wrapper_refuses_to_run_without_the_hook(tmp_path):
    with pytest.raises(RuntimeError, match='OnTheFlyModulationHook'):
        train(tmp_path, max_epochs=1, optim_wrapper=OGM)


def test_opm_during_gblend_shadow_training(tmp_path):
    """G-Blend's shadow copies train (with OPM) at the start of an epoch:
    the modulation hook has told OPM the epoch before that."""
    gblend = dict(type='GradientBlendingHook', mode='online',
                  estimator='shadow', warmup_epochs=1, super_epochs=1,
                  shadow_fraction=0.5)
    runner = train(tmp_path, max_epochs=2, gblend=gblend,
                   model=dict(opm=dict(start_epoch=0, p_exe=1.0)),
                   hooks=[HOOK])
    assert runner.model.modulation_state.epoch == 1
    assert all('opm_q' in e for e in history(tmp_path))
