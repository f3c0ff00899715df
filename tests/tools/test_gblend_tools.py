"""tools/estimate_blend_weights.py and tools/analysis/plot_blend_weights.py."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

import mmaction_gblend.demo.toy_task as toy
from helpers import load_script


def toy_config_file(tmp_path, **hook):
    cfg = toy.toy_config(str(tmp_path / 'work'), gblend=dict(
        type='GradientBlendingHook', **hook))
    cfg['custom_imports'] = dict(
        imports=['mmaction_gblend', 'mmaction_gblend.demo.toy_task'])
    path = str(tmp_path / 'toy_config.py')
    Config(cfg).dump(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('estimator', ['shadow', 'first_order', 'trajectory'])
def test_estimate_prints_a_config_snippet(tmp_path, capsys, estimator):
    tool = load_script('tools/estimate_blend_weights.py')
    config = toy_config_file(tmp_path, mode='online', warmup_epochs=9)
    tool.main([config, '--estimator', estimator, '--epochs', '2',
               '--shadow-fraction', '0.5', '--work-dir',
               str(tmp_path / 'estimate')])
    out = capsys.readouterr().out
    snippet = out[out.index('model = dict('):].strip()
    weights = Config.fromstring(snippet, '.py').model.blend_weights
    assert set(weights) == {'rgb', 'audio', 'fused'}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-3)
    assert weights['audio'] < weights['rgb']
    history = [json.loads(line) for line in open(
        tmp_path / 'estimate' / 'gblend_history.jsonl')]
    assert len(history) == 1 and history[0]['estimator'] == estimator
    assert history[0]['mode'] == 'offline' and history[0]['horizon'] == 2
    # shadow estimates before any training, trajectory after 2 epochs
    assert history[0]['epoch'] == (0 if estimator != 'trajectory' else 2)
    assert not osp.exists(tmp_path / 'estimate' / 'epoch_1.pth')


def test_plot_blend_weights(tmp_path):
    tool = load_script('tools/analysis/plot_blend_weights.py')
    history = tmp_path / 'gblend_history.jsonl'
    heads = lambda w, ogr: {  # noqa: E731
        h: dict(weight=w[i], OGR=ogr[i]) for i, h in enumerate(
            ('rgb', 'audio', 'fused'))}
    entries = [
        dict(epoch=2, weights={}, heads=heads((.4, .1, .5), (0.5, 2, 0.3))),
        dict(epoch=4, weights={}, heads=heads((.5, 0, .5), (0.4, None, .2))),
    ]
    history.write_text('\n'.join(json.dumps(e) for e in entries) + '\n')
    tool.main([str(tmp_path)])
    png = tmp_path / 'blend_weights.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert tool.series(entries, 'weight')['audio'] == [(2, .1), (4, 0)]
    # without initial weights and the schedule's end: the entries alone
    assert tool.weights_over_training(entries)['audio'] == [(2, .1), (4, 0)]
    # with them: the warm-up's weights from epoch 0, the last to the end
    for entry in entries:
        entry.update(max_epochs=6, initial_weights=dict(rgb=.2, audio=.3,
                                                        fused=.5))
    over = tool.weights_over_training(entries)
    assert over['audio'] == [(0, .3), (2, .1), (4, 0), (6, 0)]
    assert over['fused'] == [(0, .5), (2, .5), (4, .5), (6, .5)]
    # an offline estimate at epoch 0 is held over the whole schedule
    offline = [dict(entries[0], epoch=0)]
    assert tool.weights_over_training(offline)['rgb'] == [(0, .4), (6, .4)]
    history.write_text(history.read_text() + '{broken\n')
    with pytest.raises(ValueError, match='line 3'):
        tool.read_history(str(history))
    with pytest.raises(FileNotFoundError, match='no G-Blend history'):
        tool.read_history(str(tmp_path / 'nowhere'))


def test_estimate_passes_a_held_out_group_to_the_hook(tmp_path):
    tool = load_script('tools/estimate_blend_weights.py')
    config = toy_config_file(tmp_path, mode='online', warmup_epochs=9)
    args = tool.parse_args([config, '--heldout-group', r'_g(\d+)_c',
                            '--work-dir', str(tmp_path / 'estimate')])
    hook = tool.build_config(args).custom_hooks[-1]
    assert hook['heldout_group'] == r'_g(\d+)_c' and hook['mode'] == 'offline'
    args = tool.parse_args([config, '--work-dir', str(tmp_path / 'e2')])
    assert 'heldout_group' not in tool.build_config(args).custom_hooks[-1]
