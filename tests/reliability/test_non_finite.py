"""NaN and inf: the run stops with a clear message when the loss stays
non-finite, and non-finite measurements never become G-Blend weights or
OGM-GE / OPM coefficients (real Runners on the in-memory toy task)."""
import glob
import itertools
import json
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import NonFiniteLossError, NonFiniteLossHook
from helpers import rank_results, run_dist_worker

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
NAN = float('nan')
RUNS = itertools.count()


def toy_runner(tmp_path, max_consecutive=3, **kwargs):
    """64 samples, batch 16: 4 training steps an epoch."""
    kwargs.setdefault('max_epochs', 2)
    cfg = toy.toy_config(str(tmp_path / f'run{next(RUNS)}'), num_samples=64,
                         **kwargs)
    cfg['experiment_name'] = osp.basename(cfg['work_dir'])
    cfg['default_hooks']['non_finite_loss'] = dict(
        type='NonFiniteLossHook', max_consecutive=max_consecutive)
    return Runner.from_cfg(Config(cfg))


def read_log(runner):
    return open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()


def strict_json_lines(path):
    def refuse(constant):
        raise AssertionError(f'{path} holds {constant}')

    with open(path) as f:
        return [json.loads(line, parse_constant=refuse) for line in f]


# the loss ------------------------------------------------------------------


def test_the_default_runtime_stops_after_ten_non_finite_steps():
    name = 'gblend-online_r3d18-rgb_r18-audio_demo-av.py'
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    assert cfg.default_hooks.non_finite_loss == dict(
        type='NonFiniteLossHook', max_consecutive=10)
    assert cfg.default_hooks.config_check == dict(type='ConfigCheckHook')
    # the config's own custom_hooks did not replace them
    assert [h['type'] for h in cfg.custom_hooks] == [
        'GradientBlendingHook', 'PredictionMixHook']


@pytest.mark.parametrize('value', [0, -1, 2.5, True])
def test_max_consecutive_is_checked(value):
    with pytest.raises(ValueError, match='max_consecutive must be a positive'):
        NonFiniteLossHook(max_consecutive=value)


@pytest.mark.slow
def test_a_nan_branch_stops_the_run_naming_iteration_count_and_terms(
        tmp_path):
    runner = toy_runner(tmp_path, max_consecutive=3)
    # NaN features from the audio encoder: its head and the fused one
    runner.model.backbones['audio'].register_forward_hook(
        lambda module, args, output: output * NAN)
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    # by then the first NaN step has made every weight NaN
    assert str(info.value).startswith(
        'the training loss was not finite for 3 consecutive iterations '
        '(1 to 3, epoch 1): NonFiniteLossHook(max_consecutive=3) stops the '
        'run. Non-finite at iteration 3: audio_ce=nan, fused_ce=nan, '
        'loss=nan, loss_audio=nan, loss_fused=nan, loss_rgb=nan, rgb_ce=nan.')
    assert runner.iter == 2  # the third step (0-based) did not complete
    log = read_log(runner)
    # the first warning names the terms that went wrong first
    assert ('Non-finite training loss at iteration 1 (epoch 1), 1 in a row '
            '(the run stops at 3): audio_ce=nan, fused_ce=nan, loss=nan, '
            'loss_audio=nan, loss_fused=nan\n') in log
    for i in (2, 3):
        assert (f'Non-finite training loss at iteration {i} (epoch 1), {i} '
                'in a row (the run stops at 3): audio_ce=nan') in log


class ReportedLoss(Hook):
    """Makes the loss the model reports non-finite at chosen iterations
    (1-based) after the real step, so the weights stay finite and only the
    hook's counting is under test."""
    priority = 'HIGHEST'

    def __init__(self, bad):
        self.bad = set(bad)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 in self.bad:
            outputs['loss'] = outputs['loss'] * float('inf')
            outputs['loss_audio'] = outputs['loss_audio'] * NAN


@pytest.mark.slow
@pytest.mark.parametrize('bad,max_consecutive,stops_at', [
    ((1, 2, 4, 5, 7), 3, None),  # never 3 in a row: a finite step resets
    ((2, 3, 4, 5, 6, 7), None, None),  # None only logs
    ((1, 3, 4, 5), 3, 5),
])
def test_only_consecutive_non_finite_steps_stop_the_run(
        tmp_path, bad, max_consecutive, stops_at):
    runner = toy_runner(tmp_path, max_consecutive=max_consecutive)
    runner.register_hook(ReportedLoss(bad))
    if stops_at is None:
        runner.train()
        assert runner.iter == 8
    else:
        with pytest.raises(NonFiniteLossError, match=re.escape(
                f'for 3 consecutive iterations (3 to {stops_at}, epoch 2)')):
            runner.train()
        assert runner.iter == stops_at - 1
    warnings = re.findall(r'Non-finite training loss at iteration (\d+)',
                          read_log(runner))
    assert [int(w) for w in warnings] == [
        i for i in bad if stops_at is None or i <= stops_at]
    assert 'loss=inf, loss_audio=nan' in read_log(runner)


@pytest.mark.slow
def test_every_process_stops_at_the_same_iteration(tmp_path):
    """Two processes; only rank 1's loss is NaN at first. Both stop after
    the third step, and none is left waiting (torchrun would time out)."""
    ranks = rank_results(run_dist_worker(
        osp.join(HERE, 'non_finite_dist_worker.py'), tmp_path, timeout=300))
    assert [r['iter'] for r in ranks] == [2, 2]
    for r in ranks:
        assert r['error'].startswith(
            'the training loss was not finite for 3 consecutive iterations '
            '(1 to 3, epoch 1)')
    # rank 0's own loss was finite at first: it still counted the step
    log = open(glob.glob(str(tmp_path / 'run' / '*' / '*.log'))[0]).read()
    assert ('Non-finite training loss at iteration 1 (epoch 1) on 1 of 2 '
            'processes') in log
    assert 'loss (on another process)' in log


# G-Blend's estimate and on-the-fly modulation --------------------------------


@pytest.mark.slow
def test_a_nan_heldout_measurement_gets_weight_zero_not_a_crash(tmp_path):
    runner = toy_runner(tmp_path, max_epochs=3, gblend=dict(
        type='GradientBlendingHook', mode='online', estimator='trajectory',
        warmup_epochs=1, super_epochs=1, noise_scale=0.0))

    def nan_in_eval(module, args, output):
        # the held-out and probe measurements run in eval mode, training
        # does not: the audio head is measured NaN and trains normally
        return output if module.training else output * NAN

    runner.model.heads['audio'].register_forward_hook(nan_in_eval)
    runner.train()
    history = strict_json_lines(osp.join(runner.work_dir,
                                         'gblend_history.jsonl'))
    assert [e['epoch'] for e in history] == [1, 2]
    for entry in history:
        weights = entry['weights']
        assert weights['audio'] == 0
        assert sum(weights.values()) == pytest.approx(1)
        assert weights['rgb'] > 0 and weights['fused'] > 0
        audio = entry['heads']['audio']
        assert 'non-finite' in audio['note']
        assert audio['heldout_after'] is None
        assert audio['G_se'] is None and audio['O_se'] is None
    blend = runner.model.blend_weights
    assert torch.isfinite(blend).all() and blend[0] == 0  # audio first


class ModulationRecorder(Hook):
    """Reads each step's records before OnTheFlyModulationHook
    (ABOVE_NORMAL) takes them."""
    priority = 'HIGHEST'

    def __init__(self):
        self.steps = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        records = runner.model.modulation_state.peek_step_records()
        self.steps.append(dict(
            valid=bool(records['scores']['valid']),
            k=records['ogm']['coefficients'].tolist(),
            q=records['opm']['probabilities'].tolist()))


@pytest.mark.slow
def test_nan_scores_through_ogm_ge_and_opm_are_neutral(tmp_path,
                                                       monkeypatch):
    """Every other training batch's modality scores are NaN: those steps
    get k = 1 and q = 0, the others are modulated, and the logs, history
    and weights stay finite."""
    from mmaction_gblend.models.recognizers import multi_head_recognizer
    real = multi_head_recognizer.true_class_probability
    calls = itertools.count()

    def every_other_nan(logits, labels):
        scores = real(logits, labels)
        return scores * NAN if next(calls) % 2 else scores

    monkeypatch.setattr(multi_head_recognizer, 'true_class_probability',
                        every_other_nan)
    runner = toy_runner(
        tmp_path, signal=dict(imgs=2.0, audios=0.0),
        optim_wrapper=dict(type='OGMGEOptimWrapper', alpha=0.8,
                           ge_noise=True),
        model=dict(opm=dict(start_epoch=0, p_exe=1.0)),
        hooks=[dict(type='OnTheFlyModulationHook')])
    recorder = ModulationRecorder()
    runner.register_hook(recorder)
    runner.train()

    steps = recorder.steps
    assert [s['valid'] for s in steps] == [True, False] * 4
    for step in steps:
        assert all(0 <= k <= 1 for k in step['k'])
        assert all(0 <= q <= 1 for q in step['q'])
        if not step['valid']:
            assert step['k'] == [1.0, 1.0] and step['q'] == [0.0, 0.0]
    # the valid steps were modulated: rgb (the informative input) leads
    assert any(s['k'][1] < 1 and s['q'][1] > 0 for s in steps if s['valid'])
    history = strict_json_lines(osp.join(runner.work_dir,
                                         'modulation_history.jsonl'))
    assert [e['invalid_scores'] for e in history] == [2, 2]
    for entry in history:
        assert set(entry['score']) == {'audio', 'rgb'}
        assert set(entry['ogm_k']) == set(entry['opm_q']) == {'audio', 'rgb'}
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert 'Modulation: 2 step(s) of epoch 1 had non-finite or zero scores' \
        in read_log(runner)
