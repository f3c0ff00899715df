"""G-Blend's check, before training, of the heads' held-out losses against
log C (``GradientBlendingHook._check_initial_losses``).

A head whose classifier starts with a large logit spread starts far above
log C and gets an inflated first G; the hook warns, naming the head, and
writes ``initial_check`` into the first history entry. The trajectory
estimator checks at its reference measurement before epoch 0, the shadow
estimator at its estimate before epoch 0. The pure functions are tested in
``tests/models/test_initial_losses.py``.
"""
import math
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.blending import INITIAL_LOSS_TOLERANCE
from helpers import Interrupt, InterruptAfterEpoch, gblend_hook, read_jsonl

#: The trajectory estimator (its check is made before epoch 0, its first
#: entry written after the warm-up), as these tests describe.
HOOK = dict(type='GradientBlendingHook', mode='online', warmup_epochs=1,
            super_epochs=1, bootstrap=0, estimator='trajectory')
#: A classifier init far from chance: logits of spread ~10 on 4 classes.
LARGE = dict(init_cfg=dict(type='Normal', layer='Linear', std=5.0, bias=0))
#: The heads' default: Normal(std=0.01), every head near log 4.
SMALL = dict(init_cfg=dict(type='Normal', layer='Linear', std=0.01, bias=0))
WARNING = 'G-Blend: before training, the held-out loss of '


def head(**kwargs):
    return dict(type='ClassifierHead', dropout_ratio=0.0, **kwargs)


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize('estimator,model,far', [
    ('trajectory', dict(), []),
    ('trajectory', dict(fused_head=LARGE), ['fused']),
    ('shadow', dict(head=head()), []),
    ('shadow', dict(head=head(**LARGE), fused_head=SMALL), ['audio', 'rgb']),
    ('first_order', dict(fused_head=LARGE), ['fused']),
], ids=['trajectory-small', 'trajectory-fused-large', 'shadow-small',
        'shadow-modality-heads-large', 'first-order-fused-large'])
def test_heads_far_from_log_c_are_named_once(tmp_path, estimator, model,
                                             far):
    cfg = toy.toy_config(str(tmp_path), max_epochs=3, num_samples=96,
                         gblend=dict(HOOK, estimator=estimator))
    cfg['model'].update(model)
    cfg['experiment_name'] = f'{estimator}-{far}'
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    history = gblend_hook(runner).history
    assert read_jsonl(tmp_path / 'gblend_history.jsonl') == history
    # trajectory: estimates after epochs 1 and 2; shadow: before 0, 1, 2
    assert [e['epoch'] for e in history] == \
        ([1, 2] if estimator == 'trajectory' else [0, 1, 2])
    check = history[0]['initial_check']
    assert all('initial_check' not in e for e in history[1:])
    assert check['log_classes'] == pytest.approx(math.log(4))
    assert check['far'] == far
    losses = check['heldout_loss']
    assert set(losses) == {'rgb', 'audio', 'fused'}
    for name, loss in losses.items():
        # the untrained model's held-out loss, the first estimate's
        # "before" (the trajectory's reference, the shadow's main model)
        assert loss == pytest.approx(
            history[0]['heads'][name]['heldout_before'], rel=1e-9)
        excess = abs(loss - math.log(4))
        assert (excess > INITIAL_LOSS_TOLERANCE) == (name in far), name
        if name in far:
            # far indeed, not at the edge
            assert excess > 2 * INITIAL_LOSS_TOLERANCE
    warnings = [line for line in log_text(runner).splitlines()
                if WARNING in line]
    if not far:
        assert warnings == []
        return
    assert len(warnings) == 1 and 'WARNING' in warnings[0]
    named = warnings[0].split(WARNING)[1].split(' is more than')[0]
    assert named == ', '.join(f'{h} ({losses[h]:.2f} nats)' for h in far)
    assert f'is more than {INITIAL_LOSS_TOLERANCE} from log 4 = 1.39' in \
        warnings[0]


@pytest.mark.slow
def test_no_check_when_estimating_from_accuracies(tmp_path):
    # the losses are not what is estimated: no check, no entry
    cfg = toy.toy_config(str(tmp_path / 'acc'), max_epochs=2, num_samples=96,
                         gblend=dict(HOOK, use_accuracy=True),
                         model=dict(fused_head=LARGE))
    cfg['experiment_name'] = 'accuracy'
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert 'initial_check' not in gblend_hook(runner).history[0]
    assert WARNING not in log_text(runner)


@pytest.mark.slow
def test_a_run_resumed_before_its_first_estimate_keeps_the_check(tmp_path):
    # trajectory, 2 warm-up epochs: the check is made before epoch 0, the
    # first entry written after epoch 2; the run stops after epoch 1
    def config(name):
        cfg = toy.toy_config(str(tmp_path), max_epochs=3, num_samples=96,
                             gblend=dict(HOOK, warmup_epochs=2))
        cfg['model']['fused_head'] = LARGE
        cfg['experiment_name'] = name
        return cfg

    runner = Runner.from_cfg(Config(config('first')))
    runner.register_hook(InterruptAfterEpoch(1))
    with pytest.raises(Interrupt):
        runner.train()
    assert gblend_hook(runner).history == []
    assert WARNING + 'fused (' in log_text(runner)
    resumed = Runner.from_cfg(Config(dict(config('resumed'), resume=True)))
    resumed.train()
    history = read_jsonl(tmp_path / 'gblend_history.jsonl')
    assert [e['epoch'] for e in history] == [2]
    assert history[0]['initial_check']['far'] == ['fused']
