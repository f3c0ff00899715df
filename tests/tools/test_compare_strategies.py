"""tools/compare_strategies.py: real runs of two strategies on the small
demo set (1 epoch), then the table, chart and resumption; the statistics
over seeds on given results."""
import json
import os.path as osp

import pytest

from mmaction_gblend.testing import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def compare():
    return load_script(osp.join(REPO, 'tools', 'compare_strategies.py'))


def test_two_strategies(compare, small_demo, tmp_path, capsys):
    work = str(tmp_path / 'compare')
    argv = ['--data-root', str(small_demo / 'data'), '--seeds', '3',
            '--strategies', 'rgb-only', 'naive-fusion', '--epochs', '1',
            '--work-dir', work]
    compare.main(argv)
    table = open(osp.join(work, 'comparison.md')).read().splitlines()
    assert table[0].startswith('| strategy | prediction top-1 |')
    assert [line.split('|')[1].strip() for line in table[2:]] == [
        'rgb-only', 'naive-fusion']
    assert table[3].split('|')[5].strip() == '0.00, 0.00, 1.00'
    assert table[2].split('|')[4].strip() == '–'  # no audio head
    results = json.load(open(osp.join(work, 'comparison.json')))
    assert len(results) == 2 and results[0]['seed'] == 3
    assert 'seed: 3' in open(osp.join(work, 'rgb-only', 'seed3',
                                      'train.log')).read()
    for r in results:
        assert 0 <= r['accuracy']['prediction'] <= 1 and r['wall_s'] > 0
    naive = [r for r in results if r['strategy'] == 'naive-fusion']
    assert set(naive[0]['accuracy']) == {'prediction', 'rgb', 'audio'}
    assert osp.getsize(osp.join(work, 'comparison.png')) > 10_000
    # a second call reuses every finished run
    capsys.readouterr()
    compare.main(argv)
    assert json.load(open(osp.join(work, 'comparison.json'))) == results
    # so does a new work dir given the first one's results
    other = str(tmp_path / 'other')
    saved = str(tmp_path / 'saved.json')
    json.dump(results, open(saved, 'w'))
    compare.main(argv[:-1] + [other, '--reuse', saved])
    assert json.load(open(osp.join(other, 'comparison.json'))) == results
    assert not osp.exists(osp.join(other, 'rgb-only'))


def test_summary_statistics(compare):
    results = [
        dict(strategy='gblend-online', seed=s, wall_s=60.0 * (s + 1),
             accuracy=dict(prediction=p, rgb=0.5, audio=0.25),
             weights=dict(rgb=0.6, audio=0.1 * s, fused=0.4 - 0.1 * s))
        for s, p in enumerate((0.8, 0.9, 0.7))
    ]
    row, = compare.summarise(results)
    assert row['prediction'][0] == pytest.approx(0.8)
    assert row['prediction'][1] == pytest.approx(0.1)  # sample std
    assert row['wall_min'] == pytest.approx(2.0)  # median of 1, 2, 3
    assert row['weights'] == pytest.approx(dict(rgb=0.6, audio=0.1,
                                                fused=0.3))
    line = compare.markdown_table([row]).splitlines()[2]
    assert '| 80.0 ± 10.0 | 50.0 ± 0.0 | 25.0 ± 0.0 | 0.60, 0.10, 0.30 | ' \
        '2.0 | 3 |' in line


def test_wall_time_is_a_median_of_the_measured_runs(compare):
    # a run that shared the cores (here 30 min) does not move the median;
    # a run without a clean measurement (None) is left out
    results = [
        dict(strategy='naive-fusion', seed=s, wall_s=w,
             accuracy=dict(prediction=0.7), weights={})
        for s, w in enumerate((240.0, 1800.0, 180.0, None))
    ]
    row, = compare.summarise(results)
    assert row['wall_min'] == pytest.approx(4.0)
    assert row['seeds'] == 4
    row, = compare.summarise([dict(results[3])])
    assert row['wall_min'] is None
    assert '| – | 1 |' in compare.markdown_table([row])
