"""tools/demo.py, the main job of `make demo`, on a small demo dataset."""
import json
import os.path as osp

import pytest

from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                 make_demo_dataset)
from helpers import load_script

pytestmark = pytest.mark.demo_tools


@pytest.mark.slow
def test_demo_trains_naive_fusion_and_gblend(tmp_path, capsys):
    spec = DemoDatasetSpec(train_per_class=3, val_per_class=1,
                           test_per_class=1)
    root = str(tmp_path / 'demo')
    make_demo_dataset(root, spec=spec, seed=1, workers=2, verbose=False)
    demo = load_script('tools/demo.py')
    work = tmp_path / 'work'
    results = demo.main([
        '--data-root', root, '--work-dir', str(work), '--num-workers', '0',
        '--max-epochs', '2', '--warmup-epochs', '1', '--super-epochs', '1'
    ])
    out = capsys.readouterr().out
    assert 'train: 24 clips; a batch: imgs (16, 1, 3, 8, 56, 56), ' \
        'audios (16, 1, 1, 100, 40)' in out
    assert '| naive fusion |' in out and '| online G-Blend |' in out
    assert set(results) == {'naive fusion', 'online G-Blend'}
    for metrics in results.values():
        assert 0 <= metrics['acc/top1'] <= 1
        assert 0 <= metrics['acc/audio_top1'] <= 1
    naive = results['naive fusion']['weights']
    assert naive == dict(rgb=0.0, audio=0.0, fused=1.0)
    gblend = results['online G-Blend']['weights']
    assert sum(gblend.values()) == pytest.approx(1)
    # the printed weights are the hook's last estimate, each by its name
    history = work / 'gblend-online' / 'gblend_history.jsonl'
    last = json.loads(history.read_text().splitlines()[-1])['weights']
    assert gblend == pytest.approx(last)
    row = next(line for line in out.splitlines()
               if line.startswith('| online G-Blend |'))
    for head in ('rgb', 'audio', 'fused'):
        assert f'{head} {last[head]:.3f}' in row
    png = work / 'gblend-online' / 'blend_weights.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_demo_without_data_says_what_to_run(tmp_path):
    demo = load_script('tools/demo.py')
    with pytest.raises(SystemExit, match='make_demo_dataset.py'):
        demo.main(['--data-root', str(tmp_path / 'none')])
