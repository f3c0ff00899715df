"""Stock mmaction2 RGB configs made audio-visual by a few lines
(``configs/stock_with_audio/``): TSN (2D) and SlowOnly (3D) build, their
datasets read the demo videos with sound through the stock pipelines, and a
training step runs."""
import os.path as osp

import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmaction_gblend.datasets import add_audio_to_pipeline
from mmaction_gblend.datasets.with_audio_track import DEFAULT_AUDIO_PIPELINE
from helpers import make_small_demo_set

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STOCK = {
    'gblend-online_tsn-r50-rgb_r18-audio_8xb32-1x1x3-100e_kinetics400-av':
    ('ResNet', 'NCHW', (3, 3, 224, 224), (3, 1, 100, 40)),
    'gblend-online_slowonly-r50-rgb_r18-audio_8xb16-8x8x1-steplr-150e_'
    'kinetics400-av': ('ResNet3dSlowOnly', 'NCTHW', (1, 3, 8, 224, 224),
                       (1, 1, 100, 40)),
}


def on_demo_data(dataset, root, ann_file='val_list.txt'):
    """The stock dataset config, pointed at a split of a demo set."""
    dataset = dict(dataset)
    dataset.update(ann_file=str(root / 'data' / ann_file),
                   data_prefix=dict(video=str(root / 'data')))
    return dataset


@pytest.mark.slow
@pytest.mark.parametrize('name', list(STOCK))
def test_stock_config_with_audio_builds_and_trains_a_step(name, small_demo):
    backbone, fmt, img_shape, audio_shape = STOCK[name]
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'stock_with_audio',
                                   f'{name}.py'))
    model = MODELS.build(cfg.model)
    assert type(model.backbones['rgb']).__name__ == backbone
    assert model.input_formats == dict(rgb=fmt, audio='NCTF')
    assert model.num_classes == 400 and model.head_names == [
        'audio', 'rgb', 'fused']
    split = cfg.train_dataloader.dataset
    assert split.type == 'HeldOutSplitDataset' and split.fraction == 0.08
    assert cfg.custom_hooks[0].type == 'GradientBlendingHook'

    train = split.dataset
    train.dataset = on_demo_data(train.dataset, small_demo)
    dataset = DATASETS.build(train)
    assert type(dataset).__name__ == 'AudioVisualDataset'
    sample = dataset[0]
    assert tuple(sample['inputs']['imgs'].shape) == img_shape
    assert tuple(sample['inputs']['audios'].shape) == audio_shape

    model.train()
    batch = model.data_preprocessor(pseudo_collate([sample, dataset[1]]),
                                    True)
    losses = model(**batch, mode='loss')
    assert torch.isfinite(losses['loss_fused'])

    test = cfg.test_dataloader.dataset
    test.dataset = on_demo_data(test.dataset, small_demo)
    sample = DATASETS.build(test)[0]
    assert set(sample['inputs']) == {'imgs', 'audios'}
    # one second of audio per sampled clip, also at the ends of the video
    clips = cfg.test_dataloader.dataset.dataset.pipeline[1]['num_clips']
    assert sample['inputs']['audios'].shape[0] == clips


def test_recipe_audio_steps_are_the_library_default():
    # A config cannot import the library's constant, so the 8x8x1 recipes
    # restate it; this keeps the two one definition in effect.
    steps = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'steps_8x8x1.py'))
    assert steps.audio_steps == DEFAULT_AUDIO_PIPELINE


def test_audio_steps_go_before_the_pack_step():
    video = [dict(type='DecordInit'), dict(type='SampleFrames', clip_len=8),
             dict(type='DecordDecode'),
             dict(type='FormatShape', input_format='NCTHW'),
             dict(type='PackActionInputs', meta_keys=('img_shape', ))]
    out = add_audio_to_pipeline(video)
    assert [s['type'] for s in out] == [
        'DecordInit', 'SampleFrames', 'DecordDecode', 'FormatShape',
        'DecodeAudioTrack', 'LogMelSpectrogram', 'FormatAudioShape',
        'PackActionInputs'
    ]
    assert out[-1] == dict(type='PackActionInputs', meta_keys=('img_shape', ),
                           collect_keys=('imgs', 'audios'))
    assert 'collect_keys' not in video[-1]  # the input is left alone
    with pytest.raises(ValueError, match='no PackActionInputs'):
        add_audio_to_pipeline(video[:-1], where='x.pipeline')
    with pytest.raises(ValueError, match='already reads audio'):
        add_audio_to_pipeline(out)


def test_builders_name_what_is_wrong():
    with pytest.raises(ValueError, match='WithAudioTrack.dataset must be a '
                       'VideoDataset'):
        DATASETS.build(dict(type='WithAudioTrack', dataset=dict(
            type='RawframeDataset', ann_file='x', pipeline=[])))
    with pytest.raises(ValueError, match='AddAudioBranch.recognizer.type'):
        MODELS.build(dict(type='AddAudioBranch', recognizer=dict(
            type='RecognizerGCN', backbone={}, cls_head={})))
    with pytest.raises(ValueError, match="no 'cls_head'"):
        MODELS.build(dict(type='AddAudioBranch', recognizer=dict(
            type='Recognizer3D', backbone={})))


@pytest.fixture(scope='module')
def three_per_class(tmp_path_factory):
    """A demo set with 3 training clips per class (some can be held out)."""
    return make_small_demo_set(tmp_path_factory.mktemp('demo3'),
                               train_per_class=3, seed=5)


def test_gblend_measures_with_the_stock_val_pipeline_plus_audio(
        three_per_class):
    """G-Blend's held-out loader takes the val pipeline from inside the
    WithAudioTrack wrapper, and the audio steps are added to it."""
    from types import SimpleNamespace

    from mmaction_gblend.engine import GradientBlendingHook
    from mmaction_gblend.engine.measurement_loaders import LoaderFactory
    name = 'gblend-online_tsn-r50-rgb_r18-audio_8xb32-1x1x3-100e_' \
        'kinetics400-av'
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'stock_with_audio',
                                   f'{name}.py'))
    split = cfg.train_dataloader.dataset
    split.fraction = 0.4
    split.dataset.dataset = on_demo_data(split.dataset.dataset,
                                         three_per_class, 'train_list.txt')
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    hook = GradientBlendingHook()
    runner = SimpleNamespace(cfg=cfg, seed=0)
    loader = LoaderFactory(runner, 'val', None, None).measurement(
        hook._split_config(runner), 'heldout')
    assert 0 < len(loader.dataset) < 24
    steps = [type(t).__name__
             for t in loader.dataset.dataset.pipeline.transforms]
    assert 'CenterCrop' in steps and 'MultiScaleCrop' not in steps
    assert steps[-2:] == ['FormatAudioShape', 'PackActionInputs']
