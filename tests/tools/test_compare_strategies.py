"""tools/compare_strategies.py: the strategies derived from a base config
(the demo's: the same configs as configs/demo; a user's own, with other
modalities, classes and clips), the fairness of the ``@gblend-part``
baselines and of G-Blend's whole-set variants (offline, release, replay:
the same held-out part V), real runs (the demo, the user's config through
G-Blend, an online run and its replay), resumption, and the statistics of
the report on given results."""
import inspect
import json
import math
import os
import os.path as osp
import re
import statistics
import sys

import pytest
import yaml
from mmaction.registry import MODELS
from mmengine.config import Config

from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                 make_demo_dataset)
from mmaction_gblend.engine import blend_schedule
from mmaction_gblend.engine.hooks import GradientBlendingHook
from helpers import REPO, load_script, tiny_av_branches

if osp.join(REPO, 'tools') not in sys.path:
    # as tools/compare_strategies.py puts it: the package of its jobs
    sys.path.append(osp.join(REPO, 'tools'))
from comparison import reports, runs  # noqa: E402
from comparison import statistics as stats  # noqa: E402
from comparison import strategies  # noqa: E402
from comparison.derivation import Derivation  # noqa: E402

pytestmark = pytest.mark.demo_tools

DEMO = osp.join(REPO, 'configs', 'demo')

# A user's own fusion config, not the demo's: 3 classes, 4-frame 32x32
# clips, a 50-frame log-mel, modalities named video and sound, 6 epochs.
MY_FUSION = '''
_base_ = [{runtime!r}, {preprocessor!r}]
data_root = {root!r}
model = dict(
    type='MultiHeadRecognizer',
    num_classes=3,
    branches={branches!r},
    fusion=dict(type='ConcatFusion', hidden_channels=32, num_layers=2),
    blend_weights=dict(video=0.0, sound=0.0, fused=1.0))
pack = [
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='FormatAudioShape', input_format='NCTF'),
    dict(type='PackActionInputs', collect_keys=('imgs', 'audios')),
]
audio = [
    dict(type='DecodeAudioTrack', sample_rate=16000),
    dict(type='LogMelSpectrogram', n_fft=512, hop_length=160, n_mels=40,
         num_frames=50),
]
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'), *audio,
    dict(type='Resize', scale=(32, 32), keep_ratio=False), *pack]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1,
         test_mode=True),
    dict(type='DecordDecode'), *audio,
    dict(type='Resize', scale=(32, 32), keep_ratio=False), *pack]
loader = dict(batch_size=3, num_workers=0, persistent_workers=False)
train_dataloader = dict(
    loader, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='AudioVisualDataset',
                 ann_file=data_root + '/train_list.txt',
                 data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    loader, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='AudioVisualDataset',
                 ann_file=data_root + '/val_list.txt',
                 data_prefix=dict(video=data_root),
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(
    val_dataloader, dataset=dict(val_dataloader['dataset'],
                                 ann_file=data_root + '/test_list.txt'))
val_evaluator = dict(type='MultiHeadAccMetric')
test_evaluator = val_evaluator
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=6, by_epoch=True)]
default_hooks = dict(logger=dict(interval=1))
'''


@pytest.fixture(scope='module')
def compare():
    return load_script(osp.join(REPO, 'tools', 'compare_strategies.py'))


@pytest.fixture(scope='module')
def my_fusion(tmp_path_factory):
    """``(config, data root)``: a tiny 3-class data set (3 training clips
    per class: G-Blend holds one out) and a fusion config of its own."""
    root = tmp_path_factory.mktemp('my_fusion')
    spec = DemoDatasetSpec(num_classes=3, train_per_class=3,
                           val_per_class=1, test_per_class=1, duration=1.0,
                           fps=8, size=32)
    make_demo_dataset(str(root / 'data'), spec=spec, seed=5, workers=0,
                      verbose=False)
    config = root / 'my_fusion.py'
    config.write_text(MY_FUSION.format(
        runtime=osp.join(REPO, 'configs', '_base_', 'default_runtime.py'),
        preprocessor=osp.join(REPO, 'configs', '_base_', 'models',
                              'av_data_preprocessor.py'),
        root=str(root / 'data'),
        branches=tiny_av_branches('video', 'sound', base_channels=8,
                                  feat_dim=64)))
    return str(config), str(root / 'data')


@pytest.fixture(scope='module')
def my_mix_fusion(my_fusion, tmp_path_factory):
    """``my_fusion`` predicting as the demo's base config does: the heads'
    probabilities mixed by weights fitted on val (``prediction='mix'``,
    ``PredictionMixHook``)."""
    config, _ = my_fusion
    path = tmp_path_factory.mktemp('my_mix_fusion') / 'my_mix_fusion.py'
    path.write_text(f'_base_ = [{config!r}]\n'
                    "model = dict(prediction='mix')\n"
                    "custom_hooks = [dict(type='PredictionMixHook')]\n")
    return str(path)


#: The demo's own config of each strategy derived from its naive fusion.
DEMO_CONFIGS = {
    'rgb-only': 'rgb-only_r3d18_demo-av',
    'audio-only': 'audio-only_r18_demo-av',
    'naive-fusion': 'naive-fusion_r3d18-rgb_r18-audio_demo-av',
    'aux-heads': 'aux-heads_r3d18-rgb_r18-audio_demo-av',
    'paper-weights': 'paper-weights_r3d18-rgb_r18-audio_demo-av',
    'ogm-ge': 'ogm-ge_r3d18-rgb_r18-audio_demo-av',
    'opm': 'opm_r3d18-rgb_r18-audio_demo-av',
    'opm-ogm-ge': 'opm-ogm-ge_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory': 'gblend-online_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-shadow': 'gblend-online-shadow_r3d18-rgb_r18-audio_demo-av',
    'gblend-offline': 'gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory-release':
    'gblend-online-release_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory-replay':
    'gblend-replay_r3d18-rgb_r18-audio_demo-av',
}


def derived(derivation, name, tmp_path, seed=None):
    return Config.fromfile(
        derivation.write(name, str(tmp_path / f'{name}.py'), seed))


def hooks_by_type(cfg):
    """``{type: hook}`` of a config's custom hooks. The derived configs list
    the base's hooks (PredictionMixHook) first, the demo's configs their
    own hook first: both have priority NORMAL, and their order changes
    nothing (PredictionMixHook fits after the last epoch, when G-Blend
    plans no estimate; OnTheFlyModulationHook has a priority of its
    own)."""
    hooks = {h['type']: h for h in cfg.get('custom_hooks', [])}
    assert len(hooks) == len(cfg.get('custom_hooks', []))
    return hooks


def without_variables(cfg):
    """A config as a dict without its helper variables, its custom hooks by
    type (:func:`hooks_by_type`)."""
    hooks = hooks_by_type(cfg)
    cfg = cfg.to_dict()
    for key in ('rgb_branch', 'audio_branch', 'gblend_hook',
                'train_dataset', 'ogm_ge_optim_wrapper',
                'prediction_mix_hook'):
        cfg.pop(key, None)
    cfg['custom_hooks'] = hooks
    return cfg


def split_part(split, part):
    """The ``part`` (``'heldout'``: V, ``'probe'``, ``'train'``) of a
    ``HeldOutSplitDataset`` config, built."""
    from mmaction.registry import DATASETS

    from mmaction_gblend.datasets.heldout_split_configs import \
        measurement_config
    return DATASETS.build(measurement_config(split, part))


def hook_split(cfg):
    """The split a GradientBlendingHook makes of ``cfg``'s unwrapped
    training dataset, from its ``heldout_fraction`` and ``seed`` (as the
    hook does before training)."""
    from mmaction_gblend.datasets.heldout_split_configs import \
        heldout_split_config
    hook = hooks_by_type(cfg)['GradientBlendingHook']
    return heldout_split_config(
        cfg.train_dataloader.dataset.to_dict(), hook['heldout_fraction'],
        hook['seed'], exclude_heldout=False)


# derivation -----------------------------------------------------------------


def test_by_default_a_strategy_validates_once_at_the_end(tmp_path):
    epochs = Derivation().cfg.train_cfg.max_epochs
    for name in ('naive-fusion', 'gblend-online-shadow'):
        cfg = derived(Derivation(), name, tmp_path)
        assert cfg['train_cfg']['val_interval'] == epochs
        assert cfg['train_cfg']['max_epochs'] == epochs
        cfg = derived(Derivation(val_every_epoch=True), name, tmp_path)
        assert cfg['train_cfg']['val_interval'] == 1


def test_eval_split_val_tests_on_the_val_split(tmp_path):
    base = Derivation().cfg
    for name in ('rgb-only', 'gblend-online-trajectory'):
        cfg = derived(Derivation(eval_split='val'), name, tmp_path)
        assert cfg.test_dataloader == base.val_dataloader
        assert cfg.test_evaluator == base.val_evaluator
        cfg = derived(Derivation(), name, tmp_path)
        assert cfg.test_dataloader == base.test_dataloader
    with pytest.raises(ValueError, match='--eval-split'):
        Derivation(eval_split='train')


@pytest.mark.slow
def test_the_demo_strategies_are_the_demo_configs(tmp_path):
    d = Derivation(val_every_epoch=True, work_dir=str(tmp_path / 'work'))
    assert d.modalities == ['rgb', 'audio'] and d.notes == []
    assert d.select(['core']) == [
        'rgb-only', 'audio-only', 'naive-fusion', 'aux-heads',
        'paper-weights', 'rgb-only@gblend-part', 'audio-only@gblend-part',
        'naive-fusion@gblend-part', 'gblend-online-trajectory',
        'gblend-online-trajectory-release', 'gblend-online-trajectory-replay'
    ]
    assert d.select(['extra']) == [
        'ogm-ge', 'opm', 'opm-ogm-ge', 'aux-heads@gblend-part',
        'paper-weights@gblend-part', 'ogm-ge@gblend-part',
        'opm@gblend-part', 'opm-ogm-ge@gblend-part', 'gblend-online-shadow',
        'gblend-online-shadow-release', 'gblend-online-shadow-replay',
        'gblend-online-first_order', 'gblend-offline'
    ]
    # each strategy's entry names the demo's config of it
    demo = {n: d.demo_config(n) for n in d.strategies if d.demo_config(n)}
    assert {n: osp.basename(c) for n, c in demo.items()} == {
        n: c + '.py' for n, c in DEMO_CONFIGS.items()}
    for name, config in demo.items():
        got = without_variables(derived(d, name, tmp_path, seed=0))
        want = without_variables(Config.fromfile(config))
        if name == 'gblend-online-trajectory-replay':
            # the demo's replays `make demo`'s online run; the derived one
            # the online run of the same seed in its work dir
            hook = got['custom_hooks']['GradientBlendingHook']
            assert hook['replay'] == osp.join(
                str(tmp_path / 'work'), 'gblend-online-trajectory',
                'seed0', 'gblend_history.jsonl')
            hook['replay'] = want['custom_hooks']['GradientBlendingHook'][
                'replay']
        assert got == want, name
        # the base's prediction, and its hook, in every strategy
        assert got['model']['prediction'] == 'mix', name
        assert 'PredictionMixHook' in got['custom_hooks'], name
    # a derived config lists the base's hooks first
    hooks = derived(d, 'gblend-offline', tmp_path).custom_hooks
    assert [h['type'] for h in hooks] == ['PredictionMixHook',
                                          'GradientBlendingHook']
    # a baseline on G-Blend's part: the baseline, on G-Blend's dataset
    part = without_variables(derived(d, 'aux-heads@gblend-part', tmp_path))
    gblend = Config.fromfile(
        osp.join(DEMO, 'gblend-online_r3d18-rgb_r18-audio_demo-av.py'))
    aux = without_variables(Config.fromfile(
        osp.join(DEMO, 'aux-heads_r3d18-rgb_r18-audio_demo-av.py')))
    assert part['train_dataloader'] == gblend.train_dataloader.to_dict()
    assert {k: v for k, v in part.items() if k != 'train_dataloader'} == \
        {k: v for k, v in aux.items() if k != 'train_dataloader'}
    assert gblend.train_dataloader.dataset.fraction == \
        strategies.heldout_split()['fraction']


def test_strategies_of_another_config(my_fusion, tmp_path):
    config, _ = my_fusion
    d = Derivation(config, heldout_fraction=0.2)
    assert d.modalities == ['video', 'sound'] and d.max_epochs == 6
    assert list(d.strategies) == [
        'video-only', 'sound-only', 'naive-fusion', 'aux-heads', 'ogm-ge',
        'opm', 'opm-ogm-ge', 'video-only@gblend-part',
        'sound-only@gblend-part', 'naive-fusion@gblend-part',
        'aux-heads@gblend-part', 'ogm-ge@gblend-part', 'opm@gblend-part',
        'opm-ogm-ge@gblend-part', 'gblend-online-shadow',
        'gblend-online-shadow-release', 'gblend-online-shadow-replay',
        'gblend-online-trajectory', 'gblend-online-trajectory-release',
        'gblend-online-trajectory-replay', 'gblend-online-first_order',
        'gblend-offline'
    ]
    assert 'paper-weights left out' in d.notes[0]
    base = Config.fromfile(config)
    only = derived(d, 'sound-only', tmp_path)
    assert list(only.model.branches) == ['sound']
    assert only.model.branches.sound == base.model.branches.sound
    assert only.model.fusion is None and only.model.blend_weights is None
    assert MODELS.build(only.model).head_names == ['sound']
    assert only.train_dataloader == base.train_dataloader
    naive = derived(d, 'naive-fusion', tmp_path)
    assert naive.model.blend_weights == dict(video=0, sound=0, fused=1)
    aux = derived(d, 'aux-heads', tmp_path)
    assert dict(aux.model.blend_weights) == pytest.approx(
        dict(video=1 / 3, sound=1 / 3, fused=1 / 3))
    assert MODELS.build(aux.model).get_blend_weights() == pytest.approx(
        dict(sound=1 / 3, video=1 / 3, fused=1 / 3))
    # G-Blend's schedule: a third of the 6 epochs
    for name, estimator in (('gblend-online-shadow', 'shadow'),
                            ('gblend-online-trajectory', 'trajectory'),
                            ('gblend-online-first_order', 'first_order')):
        cfg = derived(d, name, tmp_path)
        hook, = cfg.custom_hooks
        assert hook == dict(type='GradientBlendingHook', mode='online',
                            estimator=estimator, warmup_epochs=2,
                            super_epochs=2, weights='uniform',
                            smoothing=0.5, min_weight=0.02)
        dataset = cfg.train_dataloader.dataset
        assert dataset.type == 'HeldOutSplitDataset'
        assert (dataset.part, dataset.fraction, dataset.seed) == \
            ('train', 0.2, 0)
        assert dataset.dataset == base.train_dataloader.dataset
        assert cfg.model == base.model
    # offline: the main run on the whole training set; the hook holds out
    # the online runs' fraction with the split's seed
    offline = derived(d, 'gblend-offline', tmp_path)
    assert offline.custom_hooks == [dict(
        type='GradientBlendingHook', mode='offline', estimator='shadow',
        shadow_fraction=1.0, min_weight=0.05, heldout_fraction=0.2, seed=0)]
    assert offline.train_dataloader == base.train_dataloader
    assert offline.model == base.model
    ogm = derived(d, 'ogm-ge', tmp_path)
    assert ogm.optim_wrapper.type == 'OGMGEOptimWrapper'
    # the first half of the 6 epochs, both ends included: epochs 0-2
    assert ogm.optim_wrapper.start_epoch == 0
    assert ogm.optim_wrapper.end_epoch == 2
    assert (ogm.optim_wrapper.coefficient, ogm.optim_wrapper.params) == \
        ('paper', 'conv')
    assert ogm.optim_wrapper.optimizer == base.optim_wrapper.optimizer
    assert ogm.custom_hooks == [dict(type='OnTheFlyModulationHook')]
    # after a warm-up of a sixth of the 6 epochs
    assert derived(d, 'opm', tmp_path).model.opm.start_epoch == 1
    # a short schedule: no scheduler, G-Blend scaled (the trajectory
    # estimator needs a warm-up shorter than the training: left out)
    short = Derivation(config, epochs=1)
    assert [n for n in short.strategies if n.startswith('gblend')] == [
        'gblend-online-shadow', 'gblend-online-shadow-release',
        'gblend-online-shadow-replay', 'gblend-online-first_order',
        'gblend-offline'
    ]
    assert any('gblend-online-trajectory left out' in n for n in short.notes)
    cfg = derived(short, 'gblend-offline', tmp_path)
    assert cfg.train_cfg.max_epochs == 1 and cfg.param_scheduler == []
    # offline shadow: one estimate over the whole schedule, whatever the
    # hook's default warm-up (which it does not use)
    hook, = cfg.custom_hooks
    assert 'warmup_epochs' not in hook and 'super_epochs' not in hook
    defaults = inspect.signature(GradientBlendingHook.__init__).parameters
    assert defaults['warmup_epochs'].default > 1
    assert blend_schedule('offline', hook.estimator, 1,
                          defaults['warmup_epochs'].default,
                          defaults['super_epochs'].default) == [(0, 1)]
    # epoch 0 is modulated by OGM-GE and (no warm-up left) OPM
    assert derived(short, 'ogm-ge', tmp_path).optim_wrapper.end_epoch == 0
    assert derived(short, 'opm', tmp_path).model.opm.start_epoch == 0


@pytest.mark.parametrize('max_epochs,ogm_end,opm_start', [
    (1, 0, 0), (2, 0, 0), (3, 0, 0), (6, 2, 1), (8, 3, 1), (12, 5, 2),
    (100, 49, 16)
])
def test_modulation_windows_of_a_schedule(max_epochs, ogm_end, opm_start):
    """OGM-GE: the first half, both ends included (epochs 0 to
    max_epochs // 2 - 1, at least epoch 0); OPM after a sixth."""
    assert strategies.ogm_end_epoch(max_epochs) == ogm_end
    assert strategies.opm_start_epoch(max_epochs) == opm_start


def test_three_modalities_and_configs_it_refuses(my_fusion, tmp_path):
    config, _ = my_fusion
    three = tmp_path / 'three.py'
    three.write_text(f'_base_ = [{config!r}]\n'
                     "model = dict(branches=dict(echo=dict(input_key="
                     "'audios', feat_dim=64, backbone=dict(type="
                     "'AudioResNet', depth=18, base_channels=8))))\n")
    d = Derivation(str(three))
    assert d.modalities == ['video', 'sound', 'echo']
    assert {'ogm-ge', 'opm', 'paper-weights'}.isdisjoint(d.strategies)
    assert any('exactly two modalities' in n for n in d.notes)
    cfg = derived(d, 'aux-heads', tmp_path)
    assert dict(cfg.model.blend_weights) == pytest.approx(
        dict(video=0.25, sound=0.25, echo=0.25, fused=0.25))
    assert list(derived(d, 'echo-only', tmp_path).model.branches) == \
        ['echo']
    with pytest.raises(ValueError, match='two or more model.branches'):
        Derivation(osp.join(DEMO, 'rgb-only_r3d18_demo-av.py'))
    with pytest.raises(ValueError, match='balances the modalities itself'):
        Derivation(
            osp.join(DEMO, 'gblend-online_r3d18-rgb_r18-audio_demo-av.py'))
    with pytest.raises(ValueError, match='heldout-fraction'):
        Derivation(config, heldout_fraction=1.5)


def test_gblend_part_baselines_train_on_the_clips_gblend_trains_on(
        my_fusion, tmp_path):
    config, _ = my_fusion
    d = Derivation(config, work_dir=str(tmp_path / 'work'))

    def clips(name):
        dataset = runs.build_train_dataset(
            d.write(name, str(tmp_path / f'{name}.py'), seed=0))
        return [dataset.get_data_info(i)['filename']
                for i in range(len(dataset))]

    whole = clips('naive-fusion')
    part = clips('gblend-online-shadow')
    assert len(whole) == 9 and len(part) == 6  # one of 3 held out a class
    assert set(part) < set(whole)
    # online G-Blend and the same-clips baselines; a release run starts on
    # the part too (its hook returns V after the last estimate)
    for name in ('gblend-online-trajectory', 'gblend-online-shadow-release',
                 'gblend-online-trajectory-release',
                 'video-only@gblend-part', 'sound-only@gblend-part',
                 'naive-fusion@gblend-part', 'aux-heads@gblend-part',
                 'ogm-ge@gblend-part', 'opm@gblend-part'):
        assert clips(name) == part, name
    # the whole training set: the baselines, offline G-Blend's main run and
    # the replays
    for name in ('video-only', 'aux-heads', 'gblend-offline',
                 'gblend-online-shadow-replay',
                 'gblend-online-trajectory-replay'):
        assert clips(name) == whole, name
    # the table tells them apart by name
    assert [n for n, s in d.strategies.items() if s.part] == [
        n + '@gblend-part' for n in ('video-only', 'sound-only',
                                     'naive-fusion', 'aux-heads', 'ogm-ge',
                                     'opm', 'opm-ogm-ge')
    ] + ['gblend-online-shadow', 'gblend-online-trajectory',
         'gblend-online-first_order']


def test_offline_gblend_holds_out_the_online_runs_part(my_fusion, tmp_path):
    """Offline G-Blend's main run trains on the whole training set; its
    hook splits it with the fraction and seed of the online runs'
    ``HeldOutSplitDataset``: the same V, T' and training part."""
    config, _ = my_fusion
    d = Derivation(config, heldout_fraction=0.4)
    online = derived(d, 'gblend-online-trajectory', tmp_path)
    offline = derived(d, 'gblend-offline', tmp_path)
    assert offline.train_dataloader.dataset.type != 'HeldOutSplitDataset'
    hook = hooks_by_type(offline)['GradientBlendingHook']
    assert (hook['heldout_fraction'], hook['seed']) == \
        (0.4, strategies.heldout_split()['seed'])
    online_split = online.train_dataloader.dataset.to_dict()
    offline_split = hook_split(offline)
    assert offline_split['part'] == 'all'  # V trained on by the main run
    for part in ('heldout', 'probe', 'train'):
        ours = split_part(offline_split, part)
        theirs = split_part(online_split, part)
        assert list(ours.indices) == list(theirs.indices), part
    heldout = split_part(offline_split, 'heldout')
    assert len(heldout) == 3  # one clip of each of the 3 classes
    assert len(split_part(offline_split, 'all')) == 9


def test_release_strategy_trains_on_the_part_then_on_everything(
        my_fusion, tmp_path):
    config, _ = my_fusion
    d = Derivation(config, heldout_fraction=0.2)
    base = Config.fromfile(config)
    for estimator in ('shadow', 'trajectory'):
        name = f'gblend-online-{estimator}-release'
        strategy = d.strategies[name]
        assert strategy.release and not strategy.part
        assert strategy.source == f'gblend-online-{estimator}'
        assert strategy.group == ('core' if estimator == 'trajectory'
                                  else 'extra')
        cfg = derived(d, name, tmp_path)
        online = derived(d, f'gblend-online-{estimator}', tmp_path)
        hook, = cfg.custom_hooks
        assert hook == dict(online.custom_hooks[0], release_heldout=True)
        # the dataset as the online run's: V out until the last estimate
        assert cfg.train_dataloader == online.train_dataloader
        dataset = cfg.train_dataloader.dataset
        assert (dataset.type, dataset.part, dataset.fraction,
                dataset.seed) == ('HeldOutSplitDataset', 'train', 0.2, 0)
        assert dataset.dataset == base.train_dataloader.dataset
        assert cfg.model == base.model


def test_replay_strategy_replays_the_same_seeds_online_run(
        my_fusion, tmp_path):
    config, _ = my_fusion
    work = tmp_path / 'work'
    d = Derivation(config, work_dir=str(work))
    base = Config.fromfile(config)
    for estimator in ('shadow', 'trajectory'):
        name = f'gblend-online-{estimator}-replay'
        source = f'gblend-online-{estimator}'
        strategy = d.strategies[name]
        assert strategy.replay_of == source and strategy.gblend
        assert not strategy.part and not strategy.release
        texts = set()
        for seed in (0, 3):
            history = str(work / source / f'seed{seed}' /
                          'gblend_history.jsonl')
            assert d.replay_source(name, seed) == history
            cfg = derived(d, name, tmp_path, seed=seed)
            # no estimate of its own: the recorded weights on the whole set
            assert cfg.custom_hooks == [dict(
                type='GradientBlendingHook', mode='replay', replay=history)]
            assert cfg.train_dataloader == base.train_dataloader
            assert cfg.model == base.model
            texts.add(d.config_text(name, seed))
        assert len(texts) == 2  # the seed's run in the config
    with pytest.raises(ValueError, match='needs the seed'):
        d.config_text('gblend-online-shadow-replay')
    # a relative work dir is the caller's
    assert Derivation(config, work_dir='rel').work_dir == \
        osp.abspath('rel')


def test_a_replay_without_its_source_run_stops(compare, my_fusion,
                                               tmp_path):
    config, _ = my_fusion
    work = tmp_path / 'work'
    d = Derivation(config, epochs=2, work_dir=str(work))
    history = d.replay_source('gblend-online-trajectory-replay', 1)
    with pytest.raises(SystemExit) as stop:
        runs.run_one(d, 'gblend-online-trajectory-replay', 1, str(work), {})
    message = str(stop.value)
    assert history in message and 'seed 1' in message
    assert 'run gblend-online-trajectory with this seed' in message
    assert not osp.exists(work)  # nothing trained, nothing written
    # the same seed's history is what it needs: another seed's is not it
    os.makedirs(osp.dirname(d.replay_source(
        'gblend-online-trajectory-replay', 0)))
    open(d.replay_source('gblend-online-trajectory-replay', 0), 'w').close()
    with pytest.raises(SystemExit, match='seed 1'):
        runs.run_one(d, 'gblend-online-trajectory-replay', 1, str(work), {})
    with pytest.raises(SystemExit, match='no history'):
        compare.main(['--config', config, '--epochs', '2', '--seeds', '1',
                      '--strategies', 'gblend-online-trajectory-replay',
                      '--work-dir', str(work)])


def test_a_replay_run_reused_from_another_work_dir(my_fusion, tmp_path):
    """``make compare-extra`` reuses the core comparison's runs in a work
    dir of its own: a replay's config names its source's history by path,
    which is not what makes it another run."""
    config, _ = my_fusion
    name = 'gblend-online-trajectory-replay'
    core = Derivation(config, epochs=2, work_dir=str(tmp_path / 'core'))
    extra = Derivation(config, epochs=2, work_dir=str(tmp_path / 'extra'))
    assert core.config_text(name, 1) != extra.config_text(name, 1)
    identity = core.config_text(name, 1).replace(core.work_dir,
                                                 '<work-dir>')
    earlier = dict(strategy=name, seed=1, accuracy=dict(prediction=0.5),
                   config_sha1=runs._sha1(identity))
    # no history in the extra dir: the run is reused, not retrained
    assert runs.run_one(extra, name, 1, extra.work_dir,
                        {(name, 1): earlier}) is earlier
    # a run of another config is not reused (and here cannot be retrained)
    other = dict(earlier, config_sha1='0' * 16)
    with pytest.raises(SystemExit, match='no history'):
        runs.run_one(extra, name, 1, extra.work_dir, {(name, 1): other})


# runs -------------------------------------------------------------------


def run_compare(compare, work, *argv):
    """Run the tool with ``argv`` into ``work``; its runs by strategy."""
    compare.main(list(argv) + ['--work-dir', work])
    with open(osp.join(work, 'comparison.json')) as f:
        return {r['strategy']: r for r in json.load(f)}


@pytest.mark.slow
def test_two_strategies_on_the_demo(compare, small_demo, tmp_path, capsys):
    work = str(tmp_path / 'compare')
    argv = ['--data-root', str(small_demo / 'data'), '--seeds', '3',
            '--strategies', 'rgb-only', 'naive-fusion', '--epochs', '1',
            '--work-dir', work]
    compare.main(argv)
    text = open(osp.join(work, 'comparison.md')).read()
    lines = text.splitlines()
    first = lines.index(next(s for s in lines if s.startswith('| ')))
    table = lines[first:lines.index('', first)]  # the strategies' table
    assert table[0].startswith('| strategy | prediction top-1 | rgb head '
                               '| audio head | final weights')
    rows = {line.split('|')[1].strip(): line.split('|') for line in table}
    assert rows['naive-fusion'][5].strip() == 'rgb 0.00, audio 0.00, ' \
        'fused 1.00'
    assert rows['rgb-only'][4].strip() == '–'  # no audio head
    assert rows['rgb-only'][6].strip() == '8'  # training clips
    assert 'Paired differences against best single modality (whole ' \
        'training set): `rgb-only`' in text
    assert 'Total wall time of this call:' in text
    assert "The runs' own train + test time: " in text and \
        'for 2 runs (seed 3 ' in text
    results = json.load(open(osp.join(work, 'comparison.json')))
    assert len(results) == 2 and results[0]['seed'] == 3
    assert 'seed: 3' in open(osp.join(work, 'rgb-only', 'seed3',
                                      'train.log')).read()
    for r in results:
        assert 0 <= r['accuracy']['prediction'] <= 1 and r['wall_s'] > 0
        assert r['train_samples'] == 8
    naive = [r for r in results if r['strategy'] == 'naive-fusion']
    # every head's own top-1 beside the prediction's, the fused head's too
    assert set(naive[0]['accuracy']) == {'prediction', 'rgb', 'audio',
                                         'fused'}
    assert naive[0]['weights'] == dict(audio=0, rgb=0, fused=1)
    assert osp.getsize(osp.join(work, 'comparison.png')) > 10_000
    assert 'total wall time:' in capsys.readouterr().out
    # the model index, mmaction2's metafile format, from the same runs
    index = yaml.safe_load(open(osp.join(work, 'metafile.yml')))
    models = {m['Name']: m for m in index['Models']}
    assert set(models) == {'rgb-only', 'naive-fusion'}
    naive_acc = 100 * naive[0]['accuracy']['prediction']
    metrics = models['naive-fusion']['Results'][0]['Metrics']
    assert metrics['Top 1 Accuracy'] == pytest.approx(naive_acc, abs=0.01)
    assert metrics['Top 1 Accuracy Std'] == 0
    assert models['naive-fusion']['Config'] == \
        'configs/demo/naive-fusion_r3d18-rgb_r18-audio_demo-av.py'
    assert models['rgb-only']['Metadata']['Training Clips'] == 8
    assert models['rgb-only']['Modality'] == 'rgb'
    assert models['naive-fusion']['Modality'] == 'rgb+audio'
    assert models['rgb-only']['Results'][0]['Dataset'] == 'demo-av'
    assert '--strategies rgb-only --seeds 3' in models['rgb-only'][
        'Reproduce']
    assert index['Collections'][0]['Name'] == \
        models['rgb-only']['In Collection']
    # a second call reuses every finished run
    compare.main(argv)
    assert json.load(open(osp.join(work, 'comparison.json'))) == results
    # so does a new work dir given the first one's results
    other = str(tmp_path / 'other')
    saved = str(tmp_path / 'saved.json')
    json.dump(results, open(saved, 'w'))
    compare.main(argv[:-1] + [other, '--reuse', saved])
    assert json.load(open(osp.join(other, 'comparison.json'))) == results
    assert not osp.exists(osp.join(other, 'rgb-only'))
    # but not a run of another config: that one is trained again
    stale = [dict(r, config_sha1='0' * 16) if r['strategy'] ==
             'naive-fusion' else r for r in results]
    json.dump(stale, open(saved, 'w'))
    third = str(tmp_path / 'third')
    compare.main(argv[:-1] + [third, '--reuse', saved])
    assert 'the reused naive-fusion, seed 3 is of another config' in \
        capsys.readouterr().out
    assert osp.exists(osp.join(third, 'naive-fusion', 'seed3', 'result.json'))
    assert not osp.exists(osp.join(third, 'rgb-only'))


@pytest.mark.slow
def test_gblend_on_another_config_end_to_end(compare, my_fusion, tmp_path):
    config, _ = my_fusion
    work = str(tmp_path / 'compare')
    results = run_compare(compare, work, '--config', config, '--seeds', '0',
                          '--epochs', '1', '--strategies',
                          'naive-fusion@gblend-part', 'gblend-online-shadow')
    assert set(results) == {'naive-fusion@gblend-part',
                            'gblend-online-shadow'}
    for r in results.values():
        assert r['train_samples'] == 6  # the same clips
        assert set(r['accuracy']) == {'prediction', 'video', 'sound',
                                      'fused'}
    weights = results['gblend-online-shadow']['weights']
    assert list(weights) == ['sound', 'video', 'fused']
    assert sum(weights.values()) == pytest.approx(1)
    # the shadow estimate at epoch 0 (its weights: the estimate's, or the
    # previous ones where no head generalised in the tiny epoch)
    history = [json.loads(line) for line in open(osp.join(
        work, 'gblend-online-shadow', 'seed0', 'gblend_history.jsonl'))]
    assert [(e['epoch'], e['estimator']) for e in history] == [(0, 'shadow')]
    assert weights == pytest.approx(history[-1]['weights'])
    text = open(osp.join(work, 'comparison.md')).read()
    assert text.startswith('# Strategies on `')
    assert 'Modalities: video, sound; 1 epoch (--epochs)' in text
    assert 'the prediction: the fused head' in text
    assert 'gblend-online-trajectory left out' in text
    assert '| strategy | prediction top-1 | video head | sound head |' in text
    line = next(s for s in text.splitlines()
                if s.startswith('| gblend-online-shadow | ') and
                'video ' in s)
    w = {h: f'{weights[h]:.2f}' for h in weights}
    assert f"video {w['video']}, sound {w['sound']}, fused {w['fused']}" \
        in line
    assert "Paired differences against naive fusion (G-Blend's training " \
        "part): `naive-fusion@gblend-part`" in text
    diff = results['gblend-online-shadow']['accuracy']['prediction'] - \
        results['naive-fusion@gblend-part']['accuracy']['prediction']
    assert f'| gblend-online-shadow | 1 | {100 * diff:+.1f} | n/a |' in text
    assert osp.exists(osp.join(work, 'comparison.png'))


@pytest.mark.slow
def test_online_gblend_then_its_replay_end_to_end(compare, my_mix_fusion,
                                                  tmp_path):
    """An online run on G-Blend's part, then its replay on the whole
    training set: the replay's final weights are the online run's last
    estimate, both predict with the base config's 'mix' rule."""
    work = str(tmp_path / 'compare')
    results = run_compare(compare, work, '--config', my_mix_fusion, '--seeds',
                          '0', '--epochs', '2', '--strategies',
                          'gblend-online-trajectory',
                          'gblend-online-trajectory-replay')
    online = results['gblend-online-trajectory']
    replay = results['gblend-online-trajectory-replay']
    assert online['train_samples'] == 6  # the part
    assert replay['train_samples'] == 9  # the whole training set
    # the trajectory estimate after the 1-epoch warm-up, replayed from the
    # same epoch
    source = [json.loads(line) for line in open(osp.join(
        work, 'gblend-online-trajectory', 'seed0', 'gblend_history.jsonl'))]
    estimates = [e for e in source if e.get('estimator') == 'trajectory']
    assert [e['epoch'] for e in estimates] == [1]
    last = estimates[-1]['weights']
    # an estimate away from the start, so the replay has something to show
    assert last != pytest.approx(estimates[-1]['initial_weights'])
    assert online['weights'] == pytest.approx(last)
    assert replay['weights'] == pytest.approx(last)
    history = [json.loads(line) for line in open(osp.join(
        work, 'gblend-online-trajectory-replay', 'seed0',
        'gblend_history.jsonl'))]
    assert [(e['epoch'], e['source_epoch'], e['source']) for e in history
            if e.get('mode') == 'replay'] == [(1, 1, osp.join(
                work, 'gblend-online-trajectory', 'seed0',
                'gblend_history.jsonl'))]
    assert history[0]['initial_weights'] == \
        estimates[-1]['initial_weights']
    log = open(osp.join(work, 'gblend-online-trajectory-replay', 'seed0',
                        'train.log')).read()
    assert 'PredictionMixHook: prediction weights' in log
    text = open(osp.join(work, 'comparison.md')).read()
    clips = {line.split('|')[1].strip(): line.split('|')[-4].strip()
             for line in text.splitlines()
             if line.startswith('| gblend-online-trajectory')
             and 'video ' in line}
    assert clips == {'gblend-online-trajectory': '6',
                     'gblend-online-trajectory-replay': '9'}
    assert "the prediction: the trained heads' probabilities mixed" in text


# statistics -------------------------------------------------------------


def test_summary_statistics():
    results = [
        dict(strategy='gblend-online-shadow', seed=s, wall_s=60.0 * (s + 1),
             accuracy=dict(prediction=p, rgb=0.5, audio=0.25),
             weights=dict(audio=0.1 * s, rgb=0.6, fused=0.4 - 0.1 * s),
             train_samples=435)
        for s, p in enumerate((0.8, 0.9, 0.7))
    ]
    row, = stats.summarise(results, heads=['rgb', 'audio'])
    assert row['prediction'][0] == pytest.approx(0.8)
    assert row['prediction'][1] == pytest.approx(0.1)  # sample std
    assert row['wall_min'] == pytest.approx(2.0)  # median of 1, 2, 3
    assert list(row['weights']) == ['rgb', 'audio', 'fused']
    assert row['weights']['audio'] == pytest.approx(
        dict(mean=0.1, min=0.0, max=0.2))
    line = reports.markdown_table([row]).splitlines()[2]
    assert '| 80.0 ± 10.0 | 50.0 ± 0.0 | 25.0 ± 0.0 | rgb 0.60, audio ' \
        '0.10 [0.00–0.20], fused 0.30 [0.20–0.40] | 435 | 2.0 | 3 |' in line


def test_wall_time_is_a_median_of_the_measured_runs():
    # a run that shared the cores (here 30 min) does not move the median;
    # a run without a clean measurement (None) is left out
    results = [
        dict(strategy='naive-fusion', seed=s, wall_s=w,
             accuracy=dict(prediction=0.7), weights={})
        for s, w in enumerate((240.0, 1800.0, 180.0, None))
    ]
    row, = stats.summarise(results)
    assert row['wall_min'] == pytest.approx(4.0)
    assert row['seeds'] == 4
    row, = stats.summarise([dict(results[3])])
    assert row['wall_min'] is None
    assert '| – | – | 1 |' in reports.markdown_table([row])


def test_paired_tables_like_for_like():
    top1 = {
        'rgb-only': (0.70, 0.72, 0.71), 'audio-only': (0.40, 0.45, 0.42),
        'naive-fusion': (0.65, 0.70, 0.66),
        'rgb-only@gblend-part': (0.68, 0.70, 0.69),
        'audio-only@gblend-part': (0.40, 0.41, 0.43),
        'naive-fusion@gblend-part': (0.64, 0.69, 0.62),
        'gblend-online-shadow': (0.74, 0.70, 0.73),
    }
    results = [dict(strategy=n, seed=s, wall_s=1.0,
                    accuracy=dict(prediction=v), weights={})
               for n, values in top1.items() for s, v in enumerate(values)]
    tables = {t['label']: t
              for t in stats.paired_tables(results, Derivation().strategies)}
    whole = tables['best single modality (whole training set)']
    part = tables["best single modality (G-Blend's training part)"]
    assert whole['reference'] == 'rgb-only'
    assert part['reference'] == 'rgb-only@gblend-part'
    assert tables["naive fusion (G-Blend's training part)"]['reference'] \
        == 'naive-fusion@gblend-part'
    # baselines against references on their own clips; G-Blend against all
    assert [r['strategy'] for r in whole['rows']] == [
        'audio-only', 'naive-fusion', 'gblend-online-shadow']
    assert [r['strategy'] for r in part['rows']] == [
        'audio-only@gblend-part', 'naive-fusion@gblend-part',
        'gblend-online-shadow']
    row = whole['rows'][-1]
    diffs = [g - r for g, r in zip(top1['gblend-online-shadow'],
                                   top1['rgb-only'])]
    assert row['diffs'] == pytest.approx(diffs)
    half = 4.302652729911275 * statistics.stdev(diffs) / math.sqrt(3)
    assert row['high'] - row['mean'] == pytest.approx(half)
    assert (row['won'], row['tied'], row['lost']) == pytest.approx(
        (2 / 3, 0, 1 / 3))
    text = reports.markdown_paired(list(tables.values()))
    mean = statistics.fmean(diffs)
    assert f'| gblend-online-shadow | 3 | {100 * mean:+.1f} | ' \
        f'[{100 * (mean - half):+.1f}, {100 * (mean + half):+.1f}] | ' \
        '67% | 0% | 33% |' in text


def doc_example():
    """The code blocks of docs/comparison_tool.md's "Adding a strategy":
    ``(python, bash)``."""
    text = open(osp.join(REPO, 'docs', 'comparison_tool.md')).read()
    section = text.split('## Adding a strategy', 1)[1].split('\n## ', 1)[0]
    python, = re.findall(r'```python\n(.*?)```', section, re.S)
    bash, = re.findall(r'```bash\n(.*?)```', section, re.S)
    return python, bash.replace('\\\n', ' ').split()


@pytest.fixture
def doc_strategy():
    """The documentation's new strategy, registered for one test."""
    python, argv = doc_example()
    saved = list(strategies.STRATEGIES)
    # as if added at the end of strategies.py
    exec(python, dict(vars(strategies)))
    yield argv[argv.index('--strategies'):]
    strategies.STRATEGIES[:] = saved


def test_adding_a_strategy_as_documented(compare, doc_strategy, tmp_path,
                                         monkeypatch):
    """The documented entry is derived with its override, in its set, with
    its ``@gblend-part`` run, and paired with the references on the same
    clips; the documented command runs it (the runs stood in for)."""
    d = Derivation(work_dir=str(tmp_path / 'work'))
    names = list(d.strategies)
    assert names.index('fused-half') == names.index('opm-ogm-ge') + 1
    assert names.index('fused-half@gblend-part') == \
        names.index('opm-ogm-ge@gblend-part') + 1
    assert {'fused-half', 'fused-half@gblend-part'} <= set(
        d.select(['extra'])) - set(d.select(['core']))
    cfg = derived(d, 'fused-half', tmp_path)
    assert cfg.model.blend_weights == dict(rgb=0.25, audio=0.25, fused=0.5)
    assert cfg.train_dataloader == d.cfg.train_dataloader
    part = derived(d, 'fused-half@gblend-part', tmp_path)
    assert part.model.blend_weights == cfg.model.blend_weights
    assert part.train_dataloader.dataset.type == 'HeldOutSplitDataset'

    means = {'rgb-only': 0.7, 'audio-only': 0.4, 'naive-fusion': 0.6,
             'fused-half': 0.65}

    def run_one(derivation, strategy, seed, work_dir, reused):
        top1 = means[strategy.split('@')[0]] + 0.01 * seed
        return dict(strategy=strategy, seed=seed, wall_s=1.0,
                    accuracy=dict(prediction=top1), weights={},
                    train_samples=6 if strategy.endswith('part') else 9)

    monkeypatch.setattr(compare, 'run_one', run_one)
    work = str(tmp_path / 'compare')
    compare.main(doc_strategy + ['--seeds', '0', '1', '--work-dir', work])
    results = json.load(open(osp.join(work, 'comparison.json')))
    tables = {t['reference']: [r['strategy'] for r in t['rows']]
              for t in stats.paired_tables(results, d.strategies)}
    for suffix in ('', '@gblend-part'):  # the same clips as the reference
        for ref in ('rgb-only', 'naive-fusion'):
            assert tables.pop(ref + suffix) == [
                n + suffix for n in means if n != ref]
    assert tables == {}
    text = open(osp.join(work, 'comparison.md')).read()
    assert '| fused-half | 2 | ' in text
    assert '| fused-half@gblend-part | 2 | ' in text


def test_reuse_reads_the_old_strategy_names(tmp_path):
    path = tmp_path / 'old.json'
    path.write_text(json.dumps([
        dict(strategy='gblend-online', seed=0, wall_s=1.0,
             accuracy=dict(prediction=0.5), weights={}),
        dict(strategy='rgb-only', seed=1, wall_s=1.0,
             accuracy=dict(prediction=0.6), weights={})]))
    reused = runs.read_reused(str(path))
    assert set(reused) == {('gblend-online-trajectory', 0), ('rgb-only', 1)}
    assert reused[('gblend-online-trajectory', 0)]['strategy'] == \
        'gblend-online-trajectory'


def test_the_held_out_group_reaches_every_split(my_fusion, tmp_path):
    config, _ = my_fusion
    group = r'_(\d{4})\.mp4'
    d = Derivation(config, heldout_group=group)
    part = derived(d, 'naive-fusion@gblend-part', tmp_path)
    assert part.train_dataloader.dataset.group == group
    online = derived(d, 'gblend-online-shadow', tmp_path)
    assert online.train_dataloader.dataset.group == group
    offline = derived(d, 'gblend-offline', tmp_path)
    hook = next(h for h in offline.custom_hooks
                if h.type == 'GradientBlendingHook')
    assert hook.heldout_group == group
    assert 'group' not in derived(Derivation(config),
                                  'gblend-online-shadow',
                                  tmp_path).train_dataloader.dataset
    with pytest.raises(ValueError, match='--heldout-group'):
        Derivation(config, heldout_group=r'_\d{4}')


@pytest.mark.slow
def test_a_comparison_with_a_held_out_group_end_to_end(compare, my_fusion,
                                                       tmp_path):
    config, _ = my_fusion
    work = str(tmp_path / 'compare')
    group = r'_(\d{4})\.mp4'  # a group per clip: 3 of 9 held out
    results = run_compare(compare, work, '--config', config, '--seeds', '0',
                          '--epochs', '1', '--heldout-group', group,
                          '--strategies', 'naive-fusion@gblend-part',
                          'gblend-online-shadow')
    assert [r['train_samples'] for r in results.values()] == [6, 6]
    text = open(osp.join(work, 'comparison.md')).read()
    assert f'in whole groups (`{group}`)' in text
    log = open(osp.join(work, 'gblend-online-shadow', 'seed0',
                        'train.log')).read()
    assert f"groups by {group!r} over the path: 3 of 9 held out" in log
