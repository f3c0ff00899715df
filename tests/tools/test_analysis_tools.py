"""tools/analysis/readme_results.py and tools/analysis/modulation_summary.py."""
import json
import os.path as osp

import pytest
import yaml

from helpers import load_script


@pytest.fixture(scope='module')
def results_tool():
    return load_script('tools/analysis/readme_results.py')


def test_the_readme_matches_the_committed_comparisons(results_tool):
    # every number of the README's results and model table comes from the
    # committed comparison.json / metafile.yml files
    assert results_tool.main(['--check']) == 0


def _run(strategy, seed, top1, samples, weights=None):
    return dict(strategy=strategy, seed=seed, wall_s=60.0,
                accuracy=dict(prediction=top1), weights=weights or {},
                train_samples=samples)


def test_results_block_pairs_by_seed_and_takes_each_strategy_once(
        results_tool, tmp_path):
    core = [_run('rgb-only', s, 0.80 + 0.01 * s, 800) for s in range(3)]
    core += [_run('audio-only', s, 0.40, 800) for s in range(3)]
    core += [_run('naive-fusion', s, 0.78, 800) for s in range(3)]
    core += [_run('rgb-only@gblend-part', s, 0.79, 480) for s in range(3)]
    core += [_run('naive-fusion@gblend-part', s, v, 480)
             for s, v in enumerate((0.60, 0.62, 0.70))]
    core += [_run('gblend-online-trajectory', s, 0.75, 480,
                  dict(rgb=0.5 + 0.1 * s, audio=0.1, fused=0.4 - 0.1 * s))
             for s in range(3)]
    # the extra comparison repeats naive fusion (ignored: taken from the
    # core file) and adds OGM-GE over two seeds
    extra = [_run('naive-fusion', s, 0.10, 800) for s in range(2)]
    extra += [_run('ogm-ge', s, 0.80, 800) for s in range(2)]
    extra += [_run('ogm-ge@gblend-part', s, 0.70, 480) for s in range(1)]
    paths = []
    for name, runs in (('core', core), ('extra', extra)):
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(runs))
        paths.append(str(path))
    runs = results_tool.merged_runs(paths)
    assert len([r for r in runs if r['strategy'] == 'naive-fusion']) == 3
    text = results_tool.results_block(runs, paths)
    rows = {line.split('|')[1].strip(): [c.strip() for c in
                                         line.split('|')[2:-1]]
            for line in text.splitlines() if line.startswith('| ')}
    assert rows['naive fusion'] == ['0–2', '78.0 ± 0.0', '64.0 ± 5.3']
    assert rows['RGB only'] == ['0–2', '81.0 ± 1.0', '79.0 ± 0.0']
    assert rows['online G-Blend, trajectory estimator'] == [
        '0–2', '', '75.0 ± 0.0 (rgb 0.60, audio 0.10, fused 0.30)']
    # a cell over other seeds than its row's names them
    assert rows['OGM-GE'] == ['0, 1', '80.0 ± 0.0', '70.0 ± 0.0 (seeds 0)']
    # paired per seed: on the part, G-Blend minus naive fusion is
    # +15, +13, +5 (mean +11.0); it wins every seed
    cell = rows['online G-Blend, trajectory estimator − naive fusion']
    assert cell[0].startswith('+11.0 [') and cell[0].endswith('won 3/3')
    # against the whole-set RGB (80, 81, 82): -5, -6, -7
    cell = rows['online G-Blend, trajectory estimator − RGB only']
    assert cell[1].startswith('−6.0 [−8.5, −3.5]')
    assert cell[1].endswith('won 0/3')
    # OGM-GE has seeds 0 and 1 only (its part run seed 0): paired on those;
    # one seed has no interval
    assert rows['OGM-GE − naive fusion'] == [
        '+10.0, won 1/1', '+2.0 [+2.0, +2.0], won 2/2']


def test_blocks_are_replaced_between_their_markers(results_tool):
    text = ('a\n<!-- BEGIN generated: results -->\nold\n'
            '<!-- END generated: results -->\nb\n')
    out = results_tool.replace_block(text, 'results', 'new\n')
    assert out == ('a\n<!-- BEGIN generated: results -->\nnew\n'
                   '<!-- END generated: results -->\nb\n')
    with pytest.raises(SystemExit, match="no generated block 'models'"):
        results_tool.replace_block(text, 'models', 'x')


def test_merged_model_index_keeps_the_first_of_each_model(results_tool,
                                                          tmp_path):
    def index(names, acc):
        return dict(Collections=[dict(Name='c')], Models=[
            dict(Name=n, Results=[dict(Metrics={'Top 1 Accuracy': acc})])
            for n in names])

    paths = []
    for i, (names, acc) in enumerate(((['a', 'b'], 1), (['b', 'c'], 2))):
        path = tmp_path / f'{i}.yml'
        path.write_text(yaml.safe_dump(index(names, acc)))
        paths.append(str(path))
    merged = results_tool.merged_index(paths)
    assert [(m['Name'], m['Results'][0]['Metrics']['Top 1 Accuracy'])
            for m in merged['Models']] == [('a', 1), ('b', 1), ('c', 2)]


def test_modulation_summary_averages_epochs_over_seeds(tmp_path):
    tool = load_script('tools/analysis/modulation_summary.py')
    work = tmp_path / 'compare'
    for seed, k in ((0, 0.2), (1, 0.4)):
        folder = work / 'ogm-ge' / f'seed{seed}'
        folder.mkdir(parents=True)
        entries = [
            dict(epoch=1, steps=0),  # outside the window
            dict(epoch=2, steps=5, score=dict(rgb=0.6, audio=0.3),
                 ratio=dict(rgb=2.0, audio=0.5),
                 ogm_k=dict(rgb=k, audio=1.0)),
        ]
        (folder / 'modulation_history.jsonl').write_text(
            ''.join(json.dumps(e) + '\n' for e in entries))
    (work / 'naive-fusion' / 'seed0').mkdir(parents=True)  # no history
    text = tool.summary(str(work))
    assert '### ogm-ge (seeds 0, 1)' in text and 'naive-fusion' not in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith('| epoch'))
    assert header == '| epoch | ρ rgb | ρ audio | k rgb | k audio |'
    assert '| 1 | – | – | – | – |' in lines
    assert '| 2 | 2.000 | 0.500 | 0.300 | 1.000 |' in lines
    # the copies can be summarised again
    copies = tmp_path / 'copies'
    tool.copy_histories(str(work), str(copies))
    assert osp.isfile(copies / 'ogm-ge' / 'seed1' /
                      'modulation_history.jsonl')
    assert tool.summary(str(copies)) == text
    with pytest.raises(SystemExit, match='no modulation_history.jsonl'):
        tool.summary(str(tmp_path / 'copies' / 'ogm-ge'))
