"""A crafted checkpoint never runs its code, wherever a config names it.

The file's unpickling would create a marker file (``Path.touch``). Given as
``load_from``, as ``--resume``, as a backbone's ``init_cfg`` Pretrained
checkpoint, as an mmaction2 backbone's ``pretrained`` or as a branch's
``init_from``, it is refused by a real Runner with an error naming the file,
and the marker never appears. The unit tests of the loaders themselves are
in ``tests/compat/test_checkpoint_loading.py``.
"""
import itertools
import os.path as osp
import pathlib
import subprocess
import sys

import mmaction
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend import UnsafeCheckpointError

RUNS = itertools.count()


class TouchOnLoad:
    """Unpickling this calls ``Path(marker).touch()``."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker), )


@pytest.fixture
def crafted(tmp_path):
    """``(checkpoint path, marker path)``: a file that looks like a model
    checkpoint and creates the marker when unpickled."""
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'zoo' / 'crafted.pth'
    path.parent.mkdir()
    torch.save({'state_dict': {'backbone.w': torch.ones(1)},
                'meta': TouchOnLoad(marker)}, path)
    return str(path), marker


def test_the_crafted_file_does_run_code_when_unpickled_freely(crafted,
                                                              tmp_path):
    """So the tests below would see it if a loader unpickled it."""
    path, marker = crafted
    torch.load(path, weights_only=False)
    assert marker.exists()


def toy_cfg(tmp_path, **changes):
    cfg = toy.toy_config(str(tmp_path / f'run{next(RUNS)}'), max_epochs=1,
                         num_samples=32)
    cfg['experiment_name'] = osp.basename(cfg['work_dir'])
    cfg.update(changes)
    return cfg


def branch(cfg, name='rgb', **values):
    cfg['model']['branches'][name].update(values)
    return cfg


CASES = {
    'load_from': lambda cfg, ckpt: cfg.update(load_from=ckpt),
    'resume': lambda cfg, ckpt: cfg.update(load_from=ckpt, resume=True),
    'init_cfg Pretrained': lambda cfg, ckpt: branch(cfg, backbone=dict(
        type='AudioResNet', depth=18,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))),
    'mmaction2 pretrained=': lambda cfg, ckpt: branch(cfg, backbone=dict(
        type='ResNet', depth=18, pretrained=ckpt)),
    'branch init_from': lambda cfg, ckpt: branch(
        cfg, 'audio', init_from=dict(checkpoint=ckpt)),
}


@pytest.mark.slow
@pytest.mark.parametrize('case', list(CASES))
def test_a_runner_refuses_the_crafted_checkpoint(tmp_path, crafted, case):
    path, marker = crafted
    cfg = toy_cfg(tmp_path)
    CASES[case](cfg, path)
    runner = Runner.from_cfg(Config(cfg))
    with pytest.raises(UnsafeCheckpointError) as info:
        runner.train()
    assert str(info.value).startswith(
        f"'{path}': the checkpoint wants to build 'pathlib.Path', which is "
        'not a tensor')
    assert not marker.exists()
    assert runner._train_loop.iter == 0


def test_safe_checkpoints_given_the_same_ways_are_loaded(tmp_path):
    """The branches' ``init_cfg`` and ``pretrained`` do load (behind a
    torch ``ModuleDict`` they were silently skipped), and so do the heads'
    own initialisations."""
    from mmaction.registry import MODELS
    resnet = dict(type='ResNet', depth=18, torchvision_pretrain=False)
    sources = dict(rgb=MODELS.build(dict(type='AudioResNet', depth=18)),
                   audio=MODELS.build(resnet))
    paths = {}
    for name, module in sources.items():
        for param in module.parameters():
            torch.nn.init.uniform_(param, 1.0, 2.0)  # recognisable values
        paths[name] = str(tmp_path / f'{name}.pth')
        torch.save({'state_dict': module.state_dict()}, paths[name])
    cfg = toy.toy_config('unused')['model']
    branch(dict(model=cfg), backbone=dict(
        type='AudioResNet', depth=18,
        init_cfg=dict(type='Pretrained', checkpoint=paths['rgb'])))
    branch(dict(model=cfg), 'audio',
           backbone=dict(resnet, pretrained=paths['audio']))
    model = MODELS.build(cfg)
    model.init_weights()
    for name, source in sources.items():
        loaded = model.backbones[name].state_dict()
        for key, value in source.state_dict().items():
            assert torch.equal(loaded[key], value), (name, key)
    # ClassifierHead's Normal(std=0.01) init with zero bias, not torch's
    assert all(head.fc_cls.bias.abs().sum() == 0
               for head in model.heads.values())


@pytest.mark.slow
def test_mmaction_train_script_with_resume_refuses_it(tmp_path, crafted):
    """A fresh process, mmaction2's own tools/train.py: the restricted
    loader comes with the config's ``custom_imports``."""
    path, marker = crafted
    cfg = toy_cfg(tmp_path, custom_imports=dict(
        imports=['mmaction_gblend', 'mmaction_gblend.demo.toy_task']))
    config = str(tmp_path / 'toy.py')
    Config(cfg).dump(config)
    script = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools',
                      'train.py')
    proc = subprocess.run(
        [sys.executable, script, config, '--resume', path],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert (f"UnsafeCheckpointError: '{path}': the checkpoint wants to "
            "build 'pathlib.Path'") in proc.stderr
    assert not marker.exists()
