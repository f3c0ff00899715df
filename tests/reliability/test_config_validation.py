"""Inconsistent configs fail when the Runner is built or starts, before any
training step, with a message that names the config keys and what was
expected.

Real Runners on the in-memory toy task; the pipelines given to its dataset
are only read by the checks (the toy dataset packs its own inputs).
"""
import copy
import itertools
import os.path as osp
import re
import subprocess
import sys

import mmaction
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine.hooks.config_check_hook import check_pipelines

GBLEND = dict(type='GradientBlendingHook', mode='online',
              estimator='trajectory', warmup_epochs=1, super_epochs=1)
MODULATION_HOOK = dict(type='OnTheFlyModulationHook')
OGM = dict(type='OGMGEOptimWrapper', alpha=0.8)
RUNS = itertools.count()


def pack(*keys):
    return [dict(type='PackActionInputs', collect_keys=keys)]


def toy_cfg(tmp_path, **kwargs):
    cfg = toy.toy_config(str(tmp_path / f'run{next(RUNS)}'), max_epochs=2,
                         num_samples=64, **kwargs)
    cfg['experiment_name'] = osp.basename(cfg['work_dir'])
    cfg['default_hooks']['config_check'] = dict(type='ConfigCheckHook')
    return cfg


def dataset(cfg, loader='train_dataloader'):
    """The innermost dataset config of a loader (through the split)."""
    data = cfg[loader]['dataset']
    return data.get('dataset', data)


def fails_before_training(cfg, match):
    """Build the Runner and train: the error must come before any forward
    pass of the model (so before any training step)."""
    runner = Runner.from_cfg(Config(cfg))
    calls = []
    runner.model.register_forward_pre_hook(lambda *args: calls.append(1))
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert calls == []
    loop = runner._train_loop  # a dict when it failed while being built
    assert isinstance(loop, dict) or loop.iter == 0


def fails_at_build(cfg, match):
    with pytest.raises(ValueError, match=match):
        Runner.from_cfg(Config(cfg))


# pipelines against the model ------------------------------------------------


@pytest.mark.slow
def test_a_consistent_config_passes_the_checks(tmp_path):
    cfg = toy_cfg(tmp_path)
    for loader in ('train_dataloader', 'val_dataloader'):
        dataset(cfg, loader)['pipeline'] = pack('imgs', 'audios')
    cfg['train_cfg']['max_epochs'] = 1
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    assert runner.iter > 0
    assert any(type(h).__name__ == 'ConfigCheckHook' for h in runner.hooks)


@pytest.mark.slow
def test_pipeline_without_a_branch_key_names_both_sides(tmp_path):
    cfg = toy_cfg(tmp_path)
    dataset(cfg)['pipeline'] = pack('imgs')
    fails_before_training(cfg, re.escape(
        "train_dataloader.dataset.pipeline[PackActionInputs].collect_keys="
        "('imgs',) does not collect 'audios', which "
        "model.branches.audio.input_key reads; expected every branch's "
        "input key ('audios', 'imgs')"))


@pytest.mark.slow
def test_pipeline_key_without_a_preprocessor_names_both_sides(tmp_path):
    cfg = toy_cfg(tmp_path)
    val = dataset(cfg, 'val_dataloader')
    val['pipeline'] = pack('imgs', 'audios', 'flows')
    fails_before_training(cfg, re.escape(
        "val_dataloader.dataset.pipeline[PackActionInputs].collect_keys="
        "('imgs', 'audios', 'flows') collects ['flows'], but "
        "model.data_preprocessor.preprocessors has no preprocessor for it "
        "(it has ['audios', 'imgs'])"))


@pytest.mark.slow
def test_pipeline_behind_the_heldout_split_and_unset_collect_keys(tmp_path):
    cfg = toy_cfg(tmp_path, gblend=dict(GBLEND))
    dataset(cfg)['pipeline'] = [dict(type='PackActionInputs')]
    fails_before_training(cfg, re.escape(
        'train_dataloader.dataset.dataset.pipeline[PackActionInputs]'
        '.collect_keys is not set, but MultiHeadRecognizer reads its inputs '
        "by key: set it to ('audios', 'imgs')"))


def test_stock_dataset_with_audio_track_collects_imgs_and_audios():
    """``WithAudioTrack`` packs what it adds: a model reading other keys
    is refused, one reading ``imgs`` and ``audios`` passes."""
    from mmaction.registry import MODELS
    video = dict(type='VideoDataset', ann_file='x', pipeline=[
        dict(type='DecordInit'), dict(type='PackActionInputs')])
    cfg = dict(test_dataloader=dict(dataset=dict(
        type='HeldOutSplitDataset',
        dataset=dict(type='WithAudioTrack', dataset=video))))
    model = MODELS.build(toy.toy_config('unused')['model'])
    check_pipelines(cfg, model)
    model.input_keys['audio'] = 'spectrograms'
    with pytest.raises(ValueError, match=re.escape(
            'test_dataloader.dataset.dataset.dataset.pipeline'
            "[PackActionInputs].collect_keys=('imgs', 'audios') does not "
            "collect 'spectrograms', which model.branches.audio.input_key")):
        check_pipelines(cfg, model)


@pytest.mark.slow
def test_without_the_check_hook_the_first_batch_names_both_sides(tmp_path):
    # the toy dataset packs `flows`, which the preprocessor does not know
    cfg = toy_cfg(tmp_path)
    del cfg['default_hooks']['config_check']
    dataset(cfg)['dims'] = dict(imgs=16, flows=16)
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(ValueError, match=re.escape(
            "the batch has inputs ['flows', 'imgs'] (the pipeline's "
            'PackActionInputs.collect_keys), but '
            "model.data_preprocessor.preprocessors has none for ['flows'] "
            "(it has ['audios', 'imgs'])")):
        runner.train()
    assert runner.iter == 0


@pytest.mark.slow
def test_mmaction_train_script_fails_in_seconds(tmp_path):
    """mmaction2's own tools/train.py with only ``custom_imports``."""
    cfg = toy_cfg(tmp_path)
    dataset(cfg)['pipeline'] = pack('imgs')
    cfg['custom_imports'] = dict(
        imports=['mmaction_gblend', 'mmaction_gblend.demo.toy_task'])
    path = str(tmp_path / 'broken.py')
    Config(cfg).dump(path)
    script = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools',
                      'train.py')
    proc = subprocess.run([sys.executable, script, path], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "model.branches.audio.input_key reads" in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr


# the model's own keys --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize('change,match', [
    (dict(blend_weights=dict(rgb=-0.5, audio=0.5, fused=1.0)),
     'model.blend_weights must be >= 0'),
    (dict(blend_weights=dict(rgb=0.5, audio=0.5, fused=0.5)),
     r'model.blend_weights must sum to 1, .* \(sum 1.5\)'),
    (dict(blend_weights=dict(rgb=0.5, audio=0.5)),
     re.escape("model.blend_weights must give one weight per head ['audio', "
               "'rgb', 'fused'], got ['audio', 'rgb']")),
    (dict(fusion=dict(type='ConcatFusoin')),
     re.escape("model.fusion.type='ConcatFusoin' is not a registered "
               "module; the fusions are ['ConcatFusion', 'FiLMFusion'")),
    (dict(branches=dict(flow=dict(input_key='audios', feat_dim=32,
                                  backbone=dict(type='ToyEncoder',
                                                in_channels=16))),
          fusion=dict(type='FiLMFusion', condition='audio')),
     re.escape("model.fusion.type='FiLMFusion' fuses exactly 2 modalities, "
               "but model.branches has 3: ['audio', 'flow', 'rgb']; fusions "
               "for 3: ['ConcatFusion', 'NLGateFusion', 'SEGateFusion', "
               "'SumFusion']")),
    (dict(branches=dict(flow=dict(input_key='flows', feat_dim=32,
                                  backbone=dict(type='ToyEncoder',
                                                in_channels=16)))),
     re.escape("model.data_preprocessor.preprocessors (keys ['audios', "
               "'imgs']) has no preprocessor for "
               "model.branches.flow.input_key='flows'")),
])
def test_model_keys_are_checked_when_the_runner_is_built(
        tmp_path, change, match):
    cfg = toy_cfg(tmp_path)
    change = copy.deepcopy(change)
    cfg['model']['branches'].update(change.pop('branches', {}))
    cfg['model'].update(change)
    fails_at_build(cfg, match)


# the hooks' keys -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize('change,match', [
    (dict(mode='fixed', weights=dict(rgb=0.7, audio=-0.2, fused=0.5)),
     r'custom_hooks\[GradientBlendingHook\].weights must be >= 0'),
    (dict(weights=dict(rgb=0.5, audio=0.2, fused=0.2)),
     r'custom_hooks\[GradientBlendingHook\].weights must sum to 1'),
    (dict(heldout_fraction=1.5),
     re.escape('custom_hooks[GradientBlendingHook].heldout_fraction must be '
               'in (0, 1), got 1.5')),
    (dict(heldout_fraction=0.0),
     r'custom_hooks\[GradientBlendingHook\].heldout_fraction must be'),
    (dict(warmup_epochs=0),
     r'custom_hooks\[GradientBlendingHook\].warmup_epochs must be a '
     'positive integer'),
])
def test_hook_arguments_are_checked_when_the_runner_is_built(
        tmp_path, change, match):
    fails_at_build(toy_cfg(tmp_path, gblend=dict(GBLEND, **change)), match)


@pytest.mark.slow
def test_weights_for_other_heads_fail_before_training(tmp_path):
    cfg = toy_cfg(tmp_path, gblend=dict(
        GBLEND, mode='fixed', weights=dict(rgb=0.5, sound=0.5)))
    fails_before_training(cfg, re.escape(
        'custom_hooks[GradientBlendingHook].weights must give one weight '
        "per head ['audio', 'rgb', 'fused'], got ['rgb', 'sound']"))


@pytest.mark.slow
def test_super_epoch_longer_than_the_training_fails_before_training(
        tmp_path):
    cfg = toy_cfg(tmp_path, gblend=dict(GBLEND, warmup_epochs=4))
    fails_before_training(cfg, re.escape(
        'custom_hooks[GradientBlendingHook].warmup_epochs=4 must be shorter '
        'than the training (train_cfg.max_epochs=2)'))


@pytest.mark.slow
def test_heldout_split_fraction_is_checked_when_the_data_is_built(tmp_path):
    cfg = toy_cfg(tmp_path, gblend=dict(GBLEND))
    cfg['train_dataloader']['dataset']['fraction'] = 1.0
    fails_before_training(cfg, re.escape(
        'HeldOutSplitDataset.fraction: heldout_fraction must be a number with '
        '0 < heldout_fraction < 1, got 1.0'))


# on-the-fly modulation -------------------------------------------------------

PLAIN_MODEL = dict(
    type='Recognizer2D',
    backbone=dict(type='ResNet', depth=18, pretrained=None),
    cls_head=dict(type='TSNHead', num_classes=4, in_channels=512),
    data_preprocessor=dict(type='ActionDataPreprocessor'))


@pytest.mark.slow
@pytest.mark.parametrize('case,match', [
    ('ogm_without_hook',
     re.escape("optim_wrapper.type='OGMGEOptimWrapper': add "
               "dict(type='OnTheFlyModulationHook') to custom_hooks")),
    ('opm_without_hook',
     re.escape("model.opm: add dict(type='OnTheFlyModulationHook') to "
               'custom_hooks')),
    ('ogm_on_a_plain_recognizer',
     re.escape("optim_wrapper.type='OGMGEOptimWrapper' and "
               'custom_hooks[OnTheFlyModulationHook]: on-the-fly modulation '
               'needs a model with per-modality parameter groups '
               '(model.branches of a MultiHeadRecognizer); the model is a '
               'Recognizer2D')),
    ('ogm_on_one_modality',
     re.escape("optim_wrapper.type='OGMGEOptimWrapper' and "
               'custom_hooks[OnTheFlyModulationHook]: on-the-fly modulation '
               "needs two or more modalities; model.branches has one: "
               "['rgb']")),
])
def test_modulation_needs_its_hook_and_per_modality_groups(tmp_path, case,
                                                           match):
    hooks = [] if case.endswith('without_hook') else [MODULATION_HOOK]
    model = dict(opm=dict(start_epoch=0)) if case.startswith('opm') else {}
    optim = None if case.startswith('opm') else OGM
    cfg = toy_cfg(tmp_path, model=model, optim_wrapper=optim, hooks=hooks)
    if case == 'ogm_on_a_plain_recognizer':
        cfg['model'] = copy.deepcopy(PLAIN_MODEL)
    elif case == 'ogm_on_one_modality':
        del cfg['model']['branches']['audio']
        cfg['model']['fusion'] = None
    fails_before_training(cfg, match)
