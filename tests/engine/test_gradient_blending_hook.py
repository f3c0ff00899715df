"""GradientBlendingHook with real Runners on the in-memory toy task.

In the toy task the ``imgs`` modality (branch ``rgb``) carries class
information and the ``audios`` modality (branch ``audio``) only per-sample
codes a model can memorise: G-Blend must give the audio head a low weight.
"""
import copy
import itertools
import json
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import measure_heads, measure_models, shadow_train
from helpers import (Interrupt, InterruptAfterEpoch, gblend_hook, read_jsonl,
                     train_from_config)

HOOK = dict(type='GradientBlendingHook', mode='online',
            estimator='trajectory', warmup_epochs=1, super_epochs=1)


def run(work_dir, max_epochs=3, hook=HOOK, name=None, resume=False,
        extra_hooks=(), **kwargs):
    cfg = toy.toy_config(str(work_dir), max_epochs=max_epochs,
                         gblend=copy.deepcopy(hook), **kwargs)
    cfg['experiment_name'] = name or osp.basename(str(work_dir))
    cfg['resume'] = resume
    return train_from_config(cfg, extra_hooks)


@pytest.mark.slow
def test_online_trajectory_estimates_logs_and_sets_weights(tmp_path):
    runner = run(tmp_path / 'online', max_epochs=4)
    history = gblend_hook(runner).history
    assert [e['epoch'] for e in history] == [1, 2, 3]
    assert read_jsonl(tmp_path / 'online' / 'gblend_history.jsonl') == \
        history
    for entry in history:
        weights = entry['weights']
        assert set(weights) == {'rgb', 'audio', 'fused'}  # fused weighted
        assert sum(weights.values()) == pytest.approx(1, abs=1e-9)
        for head, stats in entry['heads'].items():
            assert {'train_before', 'heldout_before', 'train_after',
                    'heldout_after', 'G', 'G_se', 'O', 'O_se', 'OGR',
                    'weight', 'weight_low', 'weight_high',
                    'trained_with'} <= set(stats)
            assert stats['weight_low'] <= stats['weight'] + 1e-9
            assert stats['weight'] <= stats['weight_high'] + 1e-9
            assert stats['weight'] == weights[head]
    # once the warm-up is over, the memorising modality gets the low weight
    # (after one epoch nothing has been memorised yet)
    for entry in history[1:]:
        assert entry['weights']['audio'] < entry['weights']['rgb']
        assert entry['weights']['audio'] < 0.1
    model = runner.model
    assert model.get_blend_weights() == pytest.approx(history[-1]['weights'])
    # G and O follow the definitions from the measured losses
    stats = history[0]['heads']['rgb']
    assert stats['G'] == pytest.approx(stats['heldout_before'] -
                                       stats['heldout_after'])
    assert stats['O'] == pytest.approx(
        (stats['heldout_after'] - stats['train_after']) -
        (stats['heldout_before'] - stats['train_before']))
    # visualizer scalars (what TensorBoard would show)
    scalars = [json.loads(line) for line in open(osp.join(
        runner.log_dir, 'vis_data', 'scalars.json'))]
    weight_rows = [s for s in scalars if 'gblend/weight/audio' in s]
    assert [s['step'] for s in weight_rows] == [1, 2, 3]


@pytest.mark.slow
def test_the_heldout_split_stays_out_of_training(tmp_path):
    runner = run(tmp_path / 'split', max_epochs=2)
    hook = gblend_hook(runner)
    train = runner.train_dataloader.dataset
    heldout = hook.heldout_loader.dataset
    probe = hook.probe_loader.dataset
    assert train.part == 'train' and heldout.part == 'heldout'
    assert not set(train.indices) & set(heldout.indices)
    assert set(probe.indices) <= set(train.indices)
    # 25% of each class of 50, rounded half up: 13 per class
    assert len(heldout) == len(probe) == 4 * 13


@pytest.mark.slow
def test_requires_the_split_unless_told_otherwise(tmp_path):
    cfg = toy.toy_config(str(tmp_path), max_epochs=2, gblend=dict(HOOK))
    cfg['train_dataloader']['dataset'] = cfg['train_dataloader'][
        'dataset']['dataset']
    with pytest.raises(ValueError, match='wrap train_dataloader.dataset in'):
        Runner.from_cfg(Config(cfg)).train()
    cfg['custom_hooks'][0]['exclude_heldout'] = False
    cfg['experiment_name'] = 'overlap'
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert gblend_hook(runner).heldout_loader.dataset.part == 'heldout'


@pytest.mark.slow
def test_offline_equals_online_with_one_super_epoch(tmp_path):
    offline = run(tmp_path / 'off', max_epochs=3,
                  hook=dict(HOOK, mode='offline', warmup_epochs=2))
    online = run(tmp_path / 'on', max_epochs=3,
                 hook=dict(HOOK, warmup_epochs=2, super_epochs=5))
    a, b = gblend_hook(offline).history, gblend_hook(online).history
    assert len(a) == len(b) == 1 and a[0]['epoch'] == 2
    assert a[0]['weights'] == b[0]['weights']
    assert offline.model.get_blend_weights() == \
        online.model.get_blend_weights()


@pytest.mark.slow
def test_offline_shadow_estimates_once_before_training(tmp_path):
    runner = run(tmp_path / 'shadow', max_epochs=2,
                 hook=dict(HOOK, mode='offline', estimator='shadow',
                           warmup_epochs=2, shadow_fraction=0.5))
    history = gblend_hook(runner).history
    assert [(e['epoch'], e['horizon']) for e in history] == [(0, 2)]
    assert history[0]['weights']['audio'] < history[0]['weights']['rgb']
    assert runner.model.get_blend_weights() == pytest.approx(
        history[0]['weights'])


@pytest.mark.slow
def test_fixed_weights(tmp_path):
    weights = dict(rgb=0.5, audio=0.1, fused=0.4)
    runner = run(tmp_path / 'fixed', max_epochs=1,
                 hook=dict(type='GradientBlendingHook', mode='fixed',
                           weights=weights))
    assert runner.model.get_blend_weights() == pytest.approx(weights)
    assert gblend_hook(runner).history == []
    assert not osp.exists(tmp_path / 'fixed' / 'gblend_history.jsonl')


@pytest.mark.slow
def test_resume_continues_the_same_weight_schedule(tmp_path):
    whole = gblend_hook(run(tmp_path / 'whole', max_epochs=4,
                            name='whole')).history
    work = tmp_path / 'cut'
    with pytest.raises(Interrupt):
        run(work, max_epochs=4, name='cut1',
            extra_hooks=[InterruptAfterEpoch(2)])
    # an estimate made after the checkpoint (here: forged) must not survive
    with open(work / 'gblend_history.jsonl', 'a') as f:
        f.write(json.dumps(dict(whole[-1], epoch=99)) + '\n')
    resumed = run(work, max_epochs=4, name='cut2', resume=True)
    history = read_jsonl(work / 'gblend_history.jsonl')
    assert [e['epoch'] for e in history] == [1, 2, 3]
    assert history == gblend_hook(resumed).history
    for got, want in zip(history, whole):
        for head in want['weights']:
            assert got['weights'][head] == pytest.approx(
                want['weights'][head], abs=1e-5)


def toy_model_and_loader(num_samples=48):
    cfg = toy.toy_config('unused', num_samples=num_samples)
    model = MODELS.build(cfg['model'])
    model.init_weights()
    loader = Runner.build_dataloader(dict(
        cfg['val_dataloader'],
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False)),
        seed=0)
    return model, loader


def test_measure_heads_runs_in_eval_mode_and_matches_by_hand():
    model, loader = toy_model_and_loader()
    model.heads['rgb'].dropout = torch.nn.Dropout(0.9)
    seen = []
    model.heads['rgb'].register_forward_pre_hook(
        lambda m, args: seen.append(m.training))
    model.train()
    measures = measure_heads(model, loader)
    assert seen and not any(seen)  # eval mode throughout ...
    assert model.training  # ... and back to train mode after
    assert measures == measure_heads(model, loader)  # no dropout noise
    model.eval()
    total, squares, correct, count = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            logits = model(**data, mode='tensor')['audio']
            labels = torch.tensor([int(s.gt_label)
                                   for s in data['data_samples']])
            losses = torch.nn.functional.cross_entropy(
                logits, labels, reduction='none').double()
            total += losses.sum().item()
            squares += (losses**2).sum().item()
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
    assert measures['audio'].count == count == 24
    assert measures['audio'].loss == pytest.approx(total / count, rel=1e-6)
    assert measures['audio'].accuracy == pytest.approx(correct / count)
    std = (squares / count - (total / count)**2)**0.5
    assert measures['audio'].loss_se == pytest.approx(std / count**0.5,
                                                      rel=1e-5)


def test_shadow_training_leaves_the_main_model_and_optimizer_untouched():
    model, loader = toy_model_and_loader()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    # one real step, so the optimizer has momentum state to inherit
    batch = next(iter(loader))
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    optimizer.step()
    optimizer.zero_grad()
    state = copy.deepcopy(model.state_dict())
    opt_state = copy.deepcopy(optimizer.state_dict())

    shadows = shadow_train(model, optimizer, loader, ['rgb', 'fused'],
                           num_epochs=2)
    shadow = shadows['rgb']

    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    after = optimizer.state_dict()
    assert after['param_groups'] == opt_state['param_groups']
    for i, s in opt_state['state'].items():
        assert torch.equal(after['state'][i]['momentum_buffer'],
                           s['momentum_buffer'])
    assert all(p.grad is None or not p.grad.any()
               for p in model.parameters())
    # the copy trained on the rgb head alone
    assert shadow.get_blend_weights() == dict(rgb=1.0, audio=0.0, fused=0.0)
    assert not torch.equal(shadow.heads['rgb'].fc_cls.weight,
                           model.heads['rgb'].fc_cls.weight)
    assert shadow.heads['rgb'].fc_cls.weight.data_ptr() != \
        model.heads['rgb'].fc_cls.weight.data_ptr()
    # ... running only the rgb branch: the audio branch never moved
    for name, p in shadow.named_parameters():
        if name.startswith(('backbones.audio', 'heads.audio', 'fusion',
                            'heads.fused')):
            assert torch.equal(p, dict(model.named_parameters())[name]), name
    # the fused head's copy trained every branch
    fused = shadows['fused']
    assert fused.get_blend_weights() == dict(rgb=0.0, audio=0.0, fused=1.0)
    assert not torch.equal(fused.heads['fused'].fc_cls.weight,
                           model.heads['fused'].fc_cls.weight)
    with pytest.raises(KeyError, match="no head 'flow'"):
        shadow_train(model, optimizer, loader, ['flow'], num_epochs=1)


def test_shadow_copies_equal_a_copy_trained_alone_on_its_head():
    """Training the copies side by side, each on its head's loss through
    its own branch, is the paper's one copy per head on the whole model
    with one-hot weights: the same steps on the same batches."""
    model, loader = toy_model_and_loader()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                weight_decay=1e-3)
    assert len(loader) == 2  # two epochs of two steps
    shadows = shadow_train(model, optimizer, loader, model.head_names,
                           num_epochs=2)
    for head in model.head_names:
        alone, alone_optimizer = copy.deepcopy((model, optimizer))
        alone.set_blend_weights(
            {h: float(h == head) for h in alone.head_names})
        batches = itertools.chain(loader, loader, loader, loader)
        for _ in range(4):
            losses = alone(**alone.data_preprocessor(next(batches), True),
                           mode='loss')
            alone_optimizer.zero_grad()
            sum(v for k, v in losses.items() if k.startswith('loss')
                ).backward()
            alone_optimizer.step()
        # what the head reads (the rest moves by weight decay alone)
        own = [n for n, _ in alone.named_parameters()
               if n.startswith((f'backbones.{head}.', f'heads.{head}.'))
               or head == 'fused' and not n.startswith(('heads.audio',
                                                        'heads.rgb'))]
        trained = dict(shadows[head].named_parameters())
        for name, p in alone.named_parameters():
            if name in own:
                torch.testing.assert_close(trained[name], p, msg=name)


def test_measuring_several_models_in_one_pass_equals_measuring_each():
    model, loader = toy_model_and_loader()
    other = copy.deepcopy(model)
    torch.nn.init.normal_(other.heads['audio'].fc_cls.weight)
    together = measure_models(
        {'a': (model, None), 'b': (other, ['audio']), 'c': (model, ['rgb'])},
        loader)
    assert together['a'] == measure_heads(model, loader)
    assert together['b'] == dict(audio=measure_heads(other, loader)['audio'])
    assert together['c'] == dict(rgb=measure_heads(model, loader)['rgb'])
    assert together['b']['audio'] != together['a']['audio']


@pytest.mark.parametrize('kwargs,match', [
    (dict(mode='fixed'), "weights must be a dict for mode='fixed'"),
    (dict(weights='equal'), "weights must be 'uniform'"),
    (dict(shadow_fraction=0.0), 'shadow_fraction must be in'),
    (dict(measure_pipeline='test'), 'measure_pipeline must be'),
    (dict(estimator='oracle'), 'estimator must be one of'),
])
def test_bad_hook_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy.MODELS  # the toy registry is loaded
        from mmaction.registry import HOOKS
        HOOKS.build(dict(type='GradientBlendingHook', **kwargs))


@pytest.mark.slow
def test_super_epoch_longer_than_training_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='warmup_epochs=5 must be shorter'):
        run(tmp_path / 'long', max_epochs=3, hook=dict(HOOK, warmup_epochs=5))


@pytest.mark.slow
def test_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    cfg = toy.toy_config(str(tmp_path / 'tb'), max_epochs=3,
                         gblend=dict(HOOK))
    cfg['visualizer'] = dict(
        type='Visualizer', name='tb_test',
        vis_backends=[dict(type='TensorboardVisBackend')])
    cfg['experiment_name'] = 'tb'
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    runner.visualizer.close()
    events = EventAccumulator(osp.join(runner.log_dir, 'vis_data'))
    events.Reload()
    tags = events.Tags()['scalars']
    for head in ('rgb', 'audio', 'fused'):
        assert f'gblend/weight/{head}' in tags
        assert f'gblend/OGR/{head}' in tags or f'gblend/G/{head}' in tags
    weights = events.Scalars('gblend/weight/audio')
    assert [w.step for w in weights] == [1, 2]
    history = gblend_hook(runner).history
    assert weights[-1].value == pytest.approx(
        history[-1]['weights']['audio'], abs=1e-6)


def samples(train, heldout, n=4):
    """Per-sample values whose means are ``train`` and ``heldout`` (and
    whose paired differences have no spread)."""
    return dict(train=[train] * n, heldout=[heldout] * n)


@pytest.mark.slow
@pytest.mark.parametrize('min_weight,prediction_floor,fused', [
    (0.0, None, 0.1),   # the default floor keeps the prediction training
    (0.0, 0.0, 0.0),    # the paper, no floor: the prediction is left out
    (0.05, 0.0, 0.05),
])
def test_the_prediction_head_keeps_a_floor(tmp_path, min_weight,
                                           prediction_floor, fused):
    # the fused head's held-out loss rose (G < 0): with no floor it gets 0
    # and would never be trained; the log says so, naming it
    from mmaction_gblend.engine.blend_schedule import Estimate
    from mmaction_gblend.engine.estimators import Measurement
    hook = dict(HOOK, min_weight=min_weight)
    if prediction_floor is not None:
        hook['prediction_floor'] = prediction_floor
    cfg = toy.toy_config(str(tmp_path), max_epochs=1, gblend=hook)
    cfg['experiment_name'] = f'zero_weight_{min_weight}_{prediction_floor}'
    runner = Runner.from_cfg(Config(cfg))
    hook = gblend_hook(runner)
    before = dict(rgb=samples(2.0, 2.0), audio=samples(2.0, 2.0),
                  fused=samples(2.0, 2.0))
    after = dict(rgb=samples(1.0, 1.5), audio=samples(1.2, 1.6),
                 fused=samples(2.2, 2.6))
    hook.record.open(runner.work_dir)  # as before_train does
    hook._apply(runner, Estimate(0, 1), Measurement(before, after))
    weights = runner.model.get_blend_weights()
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert weights['fused'] == pytest.approx(fused)
    assert sum(weights.values()) == pytest.approx(1)
    if fused == 0:
        assert "G-Blend gave weight 0 to ['fused']" in log
        assert 'the fused head is the prediction' in log
    else:
        assert 'gave weight 0' not in log
    # rgb and audio keep their ratio (G / O**2: 0.5 / 0.25**2 and
    # 0.4 / 0.2**2) when only the floor intervenes
    if min_weight == 0:
            assert weights['rgb'] / weights['audio'] == pytest.approx(
            0.8, rel=1e-5)


@pytest.mark.slow
def test_trajectory_estimates_are_per_unit_weight(tmp_path):
    hook = dict(HOOK, min_weight=0.05)
    corrected = gblend_hook(run(tmp_path / 'on', max_epochs=4,
                                hook=hook)).history
    plain = gblend_hook(run(tmp_path / 'off', max_epochs=4, hook=dict(
        hook, trajectory_correction=False))).history
    # the warm-up trains with uniform weights: dividing by 1/3 everywhere
    # changes no weight
    assert corrected[0]['weights'] == pytest.approx(plain[0]['weights'])
    for entry in corrected:
        trained = {h: s['trained_with'] for h, s in entry['heads'].items()}
        assert sum(trained.values()) == pytest.approx(1)
    assert {h: s['trained_with'] for h, s in corrected[1]['heads'].items()
            } == pytest.approx(corrected[0]['weights'], abs=1e-6)
    assert 'trained_with' not in plain[1]['heads']['rgb']
    # later, the heads trained with unequal weights: the estimates differ
    assert corrected[2]['weights'] != pytest.approx(plain[2]['weights'],
                                                    abs=1e-2)


@pytest.mark.slow
def test_shadow_check_records_both_estimators(tmp_path):
    runner = run(tmp_path / 'check', max_epochs=3,
                 hook=dict(HOOK, shadow_check=True))
    history = gblend_hook(runner).history
    assert [e['epoch'] for e in history] == [1, 2]
    for entry in history:
        check = entry['shadow_check']
        assert set(check['weights']) == set(entry['weights'])
        assert sum(check['weights'].values()) == pytest.approx(1)
        assert check['max_abs_difference'] == pytest.approx(max(
            abs(entry['weights'][h] - check['weights'][h])
            for h in entry['weights']))
