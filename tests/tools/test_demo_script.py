"""tools/demo.py, the main job of `make demo`, on a small demo dataset."""
import json
import os.path as osp
import re

import pytest

from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                 make_demo_dataset)
from helpers import load_script

pytestmark = pytest.mark.demo_tools


@pytest.mark.slow
def test_demo_trains_naive_fusion_and_gblend_on_every_clip(tmp_path, capsys):
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
    name = 'offline G-Blend, main run on all clips'
    assert '| naive fusion | 24 |' in out and f'| {name} | 24 |' in out
    assert set(results) == {'naive fusion', name}
    for metrics in results.values():
        for head in ('top1', 'audio_top1', 'rgb_top1', 'fused_top1'):
            assert 0 <= metrics[f'acc/{head}'] <= 1
        # both final models trained on every training clip
        assert metrics['clips'] == 24
    naive = results['naive fusion']['weights']
    assert naive == dict(rgb=0.0, audio=0.0, fused=1.0)
    assert results['naive fusion']['mix'] == naive
    gblend = results[name]['weights']
    assert sum(gblend.values()) == pytest.approx(1)
    assert sum(results[name]['mix'].values()) == pytest.approx(1)
    # the printed weights are the hook's one estimate, each by its name;
    # its main run trained on the whole training set
    history = work / 'gblend-offline' / 'gblend_history.jsonl'
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(entries) == 1 and entries[0]['main_trains_on'] == 'all'
    last = entries[0]['weights']
    assert gblend == pytest.approx(last)
    row = next(line for line in out.splitlines()
               if line.startswith(f'| {name} |'))
    for head in ('rgb', 'audio', 'fused'):
        assert f'{head} {last[head]:.3f}' in row
    # the terminal shows progress and the table; the full logs (the config
    # dump, mmengine's log lines) are in each run's console.log
    assert 'Config:' not in out and 'Epoch(train)' not in out
    for run in ('naive-fusion', 'gblend-offline'):
        for epoch in (1, 2):
            assert re.search(rf'\[{run}\] epoch  {epoch}/2  loss \d+\.\d{{3}}'
                             r'  val top-1 \d+\.\d  \d+:\d\d so far, about '
                             r'\d+:\d\d left', out)
        log = work / run / 'console.log'
        assert f'full log in {log}' in out
        text = log.read_text()
        assert 'Config:' in text and 'Epoch(train)' in text
    assert '[gblend-offline] weights rgb ' in out
    png = work / 'gblend-offline' / 'blend_weights.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_demo_without_data_says_what_to_run(tmp_path):
    demo = load_script('tools/demo.py')
    with pytest.raises(SystemExit, match='make_demo_dataset.py'):
        demo.main(['--data-root', str(tmp_path / 'none')])
