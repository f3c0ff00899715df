"""tools/demo.py, the main job of `make demo`, on a small demo dataset."""
import importlib.util
import os.path as osp

from mmaction_gblend.datasets.demo_generator import (DemoDatasetSpec,
                                                     make_demo_dataset)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_demo_module():
    spec = importlib.util.spec_from_file_location(
        'demo_script', osp.join(REPO, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_loads_every_split(tmp_path, capsys):
    spec = DemoDatasetSpec(num_classes=2, train_per_class=2, val_per_class=1,
                           test_per_class=1)
    root = str(tmp_path / 'demo')
    make_demo_dataset(root, spec=spec, seed=1, workers=1, verbose=False)
    demo = load_demo_module()
    demo.main(['--data-root', root, '--num-workers', '0'])
    out = capsys.readouterr().out
    assert 'train: 4 clips' in out and 'per class {0: 2, 1: 2}' in out
    assert '  val: 2 clips' in out and ' test: 2 clips' in out
    assert 'imgs: batch x (1, 3, 8, 56, 56) torch.float32' in out
    assert 'audios: batch x (1, 1, 100, 40) torch.float32' in out


def test_demo_without_data_says_what_to_run(tmp_path):
    demo = load_demo_module()
    try:
        demo.main(['--data-root', str(tmp_path / 'none')])
    except SystemExit as exit_:
        assert 'make_demo_dataset.py' in str(exit_.code)
    else:
        raise AssertionError('expected SystemExit')
