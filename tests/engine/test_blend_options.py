"""Every GradientBlendingHook option that can be invalid fails when the
Runner is built (before any training), naming its config key; an option
the mode ignores is warned about by name in the run's log."""
import copy
import inspect
import math
import re
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine.blend_policy import BlendPolicy
from mmaction_gblend.engine.blend_schedule import HOOK_KEY
from helpers import gblend_hook

HOOK = dict(type='GradientBlendingHook', mode='online',
            estimator='trajectory', warmup_epochs=1, super_epochs=1)


def build(tmp_path, max_epochs=3, base=HOOK, **options):
    cfg = toy.toy_config(str(tmp_path), max_epochs=max_epochs,
                         gblend=dict(base, **options))
    # a logger of its own (mmengine keeps one per experiment name)
    cfg['experiment_name'] = tmp_path.name
    return Runner.from_cfg(Config(cfg))


BAD = [
    # the three that used to fail at an estimate, hours in
    (dict(overfit_floor=0), 'overfit_floor must be > 0, got 0'),
    (dict(min_weight=-0.1), 'min_weight must be in [0, 1), got -0.1'),
    (dict(smoothing=1.5), 'smoothing must be in [0, 1), got 1.5'),
    (dict(smoothing='0.5'), "smoothing must be a number, got '0.5'"),
    # and the rest
    (dict(overfit_floor=math.nan), 'overfit_floor must be'),
    (dict(overfit_floor=-1e-3), 'overfit_floor must be'),
    (dict(min_weight=1.0), 'min_weight must be'),
    (dict(smoothing=-0.1), 'smoothing must be'),
    (dict(prediction_floor=1.0), 'prediction_floor must be'),
    (dict(noise_scale=-1.0), 'noise_scale must be'),
    (dict(noise_scale=math.inf), 'noise_scale must be'),
    (dict(bootstrap=-1), 'bootstrap must be >= 0, got -1'),
    (dict(bootstrap=2.5), 'bootstrap must be an integer'),
    (dict(bootstrap=True), 'bootstrap must be an integer'),
    (dict(use_accuracy='yes'), 'use_accuracy must be True or False'),
    (dict(heldout_fraction=0.0), 'heldout_fraction must be in'),
    (dict(heldout_fraction=1.0), 'heldout_fraction must be in'),
    (dict(heldout_group=r'no group'), 'heldout_group'),
    (dict(shadow_fraction=0.0), 'shadow_fraction must be in'),
    (dict(shadow_fraction=1.5), 'shadow_fraction must be in'),
    (dict(measure_pipeline='test'), 'measure_pipeline must be'),
    (dict(measure_pipeline=3), 'measure_pipeline must be'),
    (dict(recalibrate_bn=-1), 'recalibrate_bn must be >= 0, got -1'),
    (dict(recalibrate_bn=2.5), 'recalibrate_bn must be an integer'),
    (dict(seed=-1), 'seed must be >= 0, got -1'),
    (dict(probe_size=0), 'probe_size must be >= 1, got 0'),
    (dict(measure_batch_size=0), 'measure_batch_size must be >= 1'),
    (dict(probe_size=8.0), 'probe_size must be an integer, got 8.0'),
    (dict(trajectory_correction='no'), 'trajectory_correction must be'),
    (dict(shadow_check=1), 'shadow_check must be True or False'),
    (dict(exclude_heldout='yes'), 'exclude_heldout must be None, True'),
    (dict(history_file='logs/history.jsonl'), 'history_file must be'),
    (dict(history_file=''), 'history_file must be'),
    (dict(history_file='  '), 'history_file must be'),
    (dict(weights='equal'), "weights must be 'uniform'"),
    (dict(weights=dict(rgb=0.5, audio=0.6, fused=0.1)), 'weights'),
    (dict(mode='fixed'), "weights must be a dict for mode='fixed'"),
    (dict(mode='sometimes'), 'mode must be one of'),
    (dict(estimator='oracle'), 'estimator must be one of'),
    (dict(estimator='first_order', use_accuracy=True),
     "use_accuracy: estimator='first_order' differentiates losses"),
    (dict(warmup_epochs=0), 'warmup_epochs must be a positive integer'),
    (dict(super_epochs=1.5), 'super_epochs must be a positive integer'),
    (dict(offline_horizon=2), "offline_horizon is for mode='offline'"),
    (dict(replay_epochs='stretch'), 'replay_epochs must be one of'),
    (dict(replay=[dict(epoch=0, weights=dict(rgb=1.0))]),
     "replay is for mode='replay'"),
    (dict(mode='replay'), "mode='replay' needs"),
    (dict(release_heldout=True, mode='fixed',
          weights=dict(rgb=0.4, audio=0.2, fused=0.4)),
     "release_heldout is for mode='online' or 'offline'"),
    (dict(release_heldout='yes'), 'release_heldout must be True or False'),
]


#: A value of the wrong type (utils.choices' checks): TypeError.
WRONG_TYPE = ('recalibrate_bn must be an integer',
              'probe_size must be an integer, got 8.0',
              'trajectory_correction must be',
              'shadow_check must be True or False',
              'release_heldout must be True or False',
              "smoothing must be a number, got '0.5'",
              'bootstrap must be an integer',
              'use_accuracy must be True or False')


@pytest.mark.parametrize('options,match', BAD,
                         ids=[str(sorted(o.items())) for o, _ in BAD])
def test_an_invalid_option_fails_when_the_runner_is_built(
        tmp_path, options, match):
    error_type = TypeError if match in WRONG_TYPE else ValueError
    with pytest.raises(error_type, match=re.escape(match)) as error:
        build(tmp_path, **options)
    key = match.split()[0].rstrip(':')
    if key.isidentifier() or key.startswith('mode='):
        assert f'{HOOK_KEY}.' in str(error.value), str(error.value)


@pytest.mark.parametrize('options', [
    dict(min_weight=0.4),
    dict(prediction_floor=0.5),
])
def test_floors_are_checked_against_the_heads_before_training(
        tmp_path, options):
    runner = build(tmp_path, **options)
    key = next(iter(options))
    with pytest.raises(ValueError, match=rf'{key}=.* at most 1/3 for the '
                       "model's 3 heads"):
        runner.train()
    assert runner.epoch == 0 and runner.iter == 0


def read_log(runner):
    path = osp.join(runner.log_dir, f'{runner.timestamp}.log')
    if not osp.exists(path):  # nothing logged to the file yet
        return ''
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize('options,ignored', [
    (dict(mode='offline', estimator='shadow', smoothing=0.5),
     ['smoothing']),
    (dict(mode='offline', estimator='shadow', super_epochs=3,
          warmup_epochs=2), ['super_epochs', 'warmup_epochs']),
    (dict(mode='fixed', weights=dict(rgb=0.4, audio=0.2, fused=0.4),
          min_weight=0.05, estimator='shadow'), ['estimator', 'min_weight']),
    (dict(estimator='shadow', trajectory_correction=False),
     ['trajectory_correction']),
    (dict(estimator='first_order', shadow_fraction=0.5),
     ['shadow_fraction']),
    (dict(), []),
])
def test_an_option_the_mode_ignores_is_warned_about_by_name(
        tmp_path, options, ignored):
    # only the options given differ from the defaults
    log = read_log(build(tmp_path, max_epochs=12,
                         base=dict(type='GradientBlendingHook'), **options))
    for key in ignored:
        assert f'{HOOK_KEY}.{key}={options[key]!r} has no effect' in log
    assert log.count('has no effect') == len(ignored)


def test_the_policy_checks_its_own_options():
    from mmaction_gblend.engine.hooks import GradientBlendingHook
    defaults = {k: p.default for k, p in inspect.signature(
        GradientBlendingHook).parameters.items()
        if k in inspect.signature(BlendPolicy).parameters}
    policy = BlendPolicy(**dict(defaults, min_weight=0.1,
                                prediction_floor=0.2))
    policy.check_heads(4)
    with pytest.raises(ValueError, match='min_weight=0.1 must be at most '
                       '1/11'):
        policy.check_heads(11)
    for bad in (dict(overfit_floor=0.0), dict(smoothing=1.0),
                dict(noise_scale=-0.5), dict(min_weight=math.inf)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BlendPolicy(**dict(defaults, **bad))


@pytest.mark.slow
def test_valid_options_still_train(tmp_path):
    runner = build(tmp_path, estimator='first_order', smoothing=0.5,
                   min_weight=0.02, bootstrap=20, recalibrate_bn=0,
                   history_file='weights.jsonl')
    runner.train()
    history = gblend_hook(runner).history
    assert [e['epoch'] for e in history] == [0, 1, 2]
    assert osp.exists(osp.join(runner.work_dir, 'weights.jsonl'))
    # the first estimate is not smoothed, the later ones are
    assert 'smoothed' not in ' '.join(
        h['note'] for h in history[0]['heads'].values())
    assert all(w >= 0.02 - 1e-9 for e in history
               for w in e['weights'].values())
    assert copy.deepcopy(history[-1]['weights']) == pytest.approx(
        runner.model.get_blend_weights(), abs=1e-6)


def test_a_history_file_that_is_not_a_string_is_refused_by_either_hook():
    from mmaction_gblend.engine.hooks import (GradientBlendingHook,
                                              OnTheFlyModulationHook)
    for hook, key in ((GradientBlendingHook, 'GradientBlendingHook'),
                      (OnTheFlyModulationHook, 'OnTheFlyModulationHook')):
        with pytest.raises(TypeError, match=re.escape(
                f'custom_hooks[{key}].history_file must be a file name, '
                'got None')):
            hook(history_file=None)
