"""The real-dataset recipes (configs/kinetics400, kinetics_sounds, crema_d,
ucf101): every config builds its model and pipelines, and its training and
validation pipelines turn a real clip (with sound, separate WAV or flow
frames where the recipe reads them) into inputs the model trains on."""
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate

from mmaction_gblend.utils import write_wav
from helpers import tone, write_test_clip

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPES = sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for folder in ('kinetics400', 'kinetics_sounds', 'crema_d', 'ucf101')
    for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    """A 6 s clip with sound, the same as WAV at 22.05 kHz, flow frames."""
    root = tmp_path_factory.mktemp('recipe_media')
    write_test_clip(str(root / 'clip.mp4'), seconds=6.0, fps=16, size=64)
    write_wav(str(root / 'clip.wav'), tone(6.0, (440.0, ), sample_rate=22050),
              sample_rate=22050)
    os.makedirs(root / 'clip')
    for i in range(1, 96):
        for d in 'xy':
            cv2.imwrite(str(root / 'clip' / f'flow_{d}_{i:05d}.jpg'),
                        np.full((64, 64), 128, np.uint8))
    (root / 'list.txt').write_text('clip.mp4 3\n')
    return root


def inner(dataset):
    """The dataset config inside a HeldOutSplitDataset."""
    return inner(dataset['dataset']) \
        if dataset['type'] == 'HeldOutSplitDataset' else dataset


def on_media(dataset, root):
    dataset = dict(inner(dataset), ann_file=str(root / 'list.txt'))
    prefix = dict(dataset['data_prefix'], video=str(root))
    for key in ('audio', 'flow'):
        if key in prefix:
            prefix[key] = str(root)
    dataset['data_prefix'] = prefix
    return dataset


def test_every_recipe_is_tested():
    assert len(RECIPES) == 12


@pytest.mark.slow
@pytest.mark.parametrize('name', RECIPES)
def test_recipe_builds_and_trains_on_a_real_clip(name, media):
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    model = MODELS.build(cfg.model)
    keys = set(model.input_keys.values())
    if cfg.get('custom_hooks'):
        assert {h['type'] for h in cfg.custom_hooks} <= {
            'GradientBlendingHook', 'OnTheFlyModulationHook'}
    if any(h['type'] == 'GradientBlendingHook'
           for h in cfg.get('custom_hooks', [])):
        split = cfg.train_dataloader.dataset
        assert split.type == 'HeldOutSplitDataset' and split.fraction == 0.08
    Compose(inner(cfg.test_dataloader.dataset)['pipeline'])

    samples = []
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        dataset = DATASETS.build(on_media(loader.dataset, media))
        sample = dataset[0]
        assert set(sample['inputs']) == keys
        samples.append(sample)
    model.train()
    if model.opm is not None:  # what OnTheFlyModulationHook would say
        model.modulation_state.begin_epoch(model.opm.start_epoch)
    batch = model.data_preprocessor(pseudo_collate(samples), True)
    losses = model(**batch, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_the_readme_own_data_config(small_demo, tmp_path):
    """The README's "training on your own data" lines, as written there."""
    readme = open(osp.join(REPO, 'README.md')).read()
    start = readme.index('### Training on your own data')
    block = readme[readme.index('```python', start) + 9:]
    block = block[:block.index('```')]
    folder = osp.join(REPO, 'configs', 'kinetics400')
    block = block.replace("'../kinetics400/", repr(folder + '/')[:-1])
    block = block.replace('data/mine/videos', str(small_demo / 'data'))
    block = block.replace('data/mine', str(small_demo / 'data'))
    path = tmp_path / 'mine.py'
    path.write_text(block)
    cfg = Config.fromfile(str(path))
    assert MODELS.build(cfg.model).num_classes == 25
    split = cfg.train_dataloader.dataset
    assert split.type == 'HeldOutSplitDataset'
    # (one clip per class in this small set: nothing to hold out, so the
    # dataset inside the split is built directly)
    for dataset in (split.dataset, cfg.val_dataloader.dataset,
                    cfg.test_dataloader.dataset):
        assert len(DATASETS.build(dataset)) == 8
        assert dataset.data_prefix['video'] == str(small_demo / 'data')


GROUPED_RECIPES = {
    # the test splits are by group: V holds out whole groups
    'ucf101/gblend-online_r3d50-rgb_r3d50-flow_8xb16-8x8x1-100e_'
    'ucf101-split1-rgb-flow.py': (
        lambda c, g, k: f'v_Class{c}_g{g + 8:02d}_c{k + 1:02d}.avi',
        lambda name: name.split('_g')[1][:2]),
    'crema_d/gblend-online_r18-rgb_r18-audio_1xb64-1x1x3-100e_'
    'crema-d-av.py': (
        lambda c, g, k: f'{1001 + g}_{["IEO", "DFA", "ITS"][k % 3]}_'
                        f'{["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"][c]}_XX'
                        f'{k}.flv',
        lambda name: name[:4]),
}


@pytest.mark.parametrize('name', sorted(GROUPED_RECIPES))
def test_grouped_recipes_hold_out_whole_groups(name, tmp_path):
    """On a list of the dataset's own file names (UCF-101's training groups
    8-25, CREMA-D's actors), V and the training part share no group."""
    path_of, group_of = GROUPED_RECIPES[name]
    lines = [f'{path_of(c, g, k)} {c}\n' for c in range(6)
             for g in range(18) for k in range(3)]
    (tmp_path / 'list.txt').write_text(''.join(lines))
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    split = cfg.train_dataloader.dataset
    assert split.type == 'HeldOutSplitDataset' and split.get('group')
    dataset = dict(on_media(split, tmp_path), pipeline=[])
    groups = {}
    for part in ('train', 'heldout', 'probe'):
        built = DATASETS.build(dict(split.to_dict(), part=part,
                                    dataset=dataset))
        groups[part] = {group_of(osp.basename(
            built.get_data_info(i)['filename'])) for i in range(len(built))}
    assert groups['heldout'] and not groups['heldout'] & groups['train']
    assert groups['probe'] <= groups['train']
    assert len(groups['heldout']) + len(groups['train']) == 18
