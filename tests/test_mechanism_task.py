"""The paradox task (``toy_task.paradox_config``) and its runner
(``benchmarks/mechanism_task.py``): the data's mechanism, the statistics
against hand computations, and a few quick runs through the script's
functions (resume included)."""
import inspect
import json
import math
import os
import os.path as osp
import statistics
import sys

import numpy as np
import pytest
from mmaction.registry import DATASETS

import mmaction_gblend.demo.toy_task as toy

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'benchmarks'))
import mechanism_task as mt  # noqa: E402

sys.path.remove(osp.join(REPO, 'benchmarks'))

pytestmark = pytest.mark.demo_tools

# A small, quick version of the task for the runs here (not the frozen one)
QUICK = dict(num_train=120, num_eval=200, max_epochs=2)


def datasets(seed=0):
    cfg = toy.paradox_config('unused', seed=seed)
    return (DATASETS.build(cfg['train_dataloader']['dataset']),
            DATASETS.build(cfg['val_dataloader']['dataset']),
            DATASETS.build(cfg['test_dataloader']['dataset']))


def features(sample):
    return {k: v.numpy().copy() for k, v in sample['inputs'].items()}


def test_train_pipeline_redraws_rgb_noise_and_val_is_deterministic():
    train, val, _ = datasets()
    first, second = features(train[3]), features(train[3])
    # A ("rgb"): new noise at every training load, of the configured scale
    assert not np.allclose(first['imgs'], second['imgs'])
    diff = (first['imgs'] - second['imgs']).ravel()
    assert diff.std() == pytest.approx(math.sqrt(2), rel=0.3)
    # B ("audio"): the fingerprint is not augmented
    np.testing.assert_array_equal(first['audios'], second['audios'])
    # val (and so G-Blend's measurement pipeline): the same every time
    a, b = features(val[3]), features(val[3])
    np.testing.assert_array_equal(a['imgs'], b['imgs'])
    np.testing.assert_array_equal(a['audios'], b['audios'])
    # ... with noise of the training distribution, different per sample
    info = val.get_data_info(3)
    assert (a['imgs'] - info['imgs']).std() == pytest.approx(1.0, rel=0.3)
    assert not np.allclose(features(val[4])['imgs'] - val.get_data_info(
        4)['imgs'], a['imgs'] - info['imgs'])
    packed = train[3]
    assert packed['data_samples'].gt_label.item() == \
        train.get_data_info(3)['label']


def test_audio_fingerprint_is_fixed_per_sample():
    train, val, test = datasets()
    again, _, _ = datasets()
    fingerprints = np.stack(
        [train.get_data_info(i)['audios'][0] for i in range(len(train))])
    rebuilt = np.stack(
        [again.get_data_info(i)['audios'][0] for i in range(len(again))])
    np.testing.assert_array_equal(fingerprints, rebuilt)
    # every sample has its own; other splits and another seed's training
    # set are other samples
    assert len({row.tobytes() for row in fingerprints}) == len(train)
    for other in (val, test, datasets(seed=1)[0]):
        assert not np.allclose(other.get_data_info(0)['audios'],
                               train.get_data_info(0)['audios'])
    # the class means are those of the task, shared by the splits
    mu = toy.paradox_class_means(10, 64, 256)['imgs']
    info = train.get_data_info(0)
    expected = 3.0 * mu[info['label']] if info['rgb_present'] else 0 * mu[0]
    np.testing.assert_allclose(info['imgs'][0], expected, rtol=1e-6)


def test_bayes_order_fusion_above_rgb_above_audio():
    bayes = toy.paradox_bayes_accuracy(num_samples=4000)
    assert bayes['fused'] > bayes['rgb'] > bayes['audio'] > 0.1


def test_the_frozen_task_is_one_set_of_defaults():
    params = inspect.signature(toy.ToyParadoxDataset).parameters
    for key, value in toy.PARADOX_TASK.items():
        if key not in ('rgb_noise', 'audio_fresh_noise'):  # the pipeline's
            assert params[key].default == value, key
    cfg = toy.paradox_config('unused', rgb_cue=2.5)
    assert cfg['train_dataloader']['dataset']['rgb_cue'] == 2.5
    assert cfg['train_dataloader']['dataset']['audio_cue'] == 2.0
    with pytest.raises(TypeError, match="'rgb_cu'"):
        toy.paradox_config('unused', rgb_cu=2.5)


def test_weights_summary_flags_the_memorising_modality():
    runs = [dict(weights=dict(audio=0.05, rgb=0.6, fused=0.35)),
            dict(weights=dict(audio=0.2, rgb=0.1, fused=0.7))]
    got = mt._weights_summary(runs)
    assert got['heads']['audio'] == pytest.approx(
        dict(mean=0.125, min=0.05, max=0.2))
    assert got['memorising_lowest'] == dict(seeds=1, of=2, every_seed=False)


def test_strategies_build_and_train_on_the_same_part():
    full = mt.build_config('naive-fusion', 3, 'val', 'unused')
    part = mt.build_config('naive-fusion@gblend-part', 3, 'val', 'unused')
    gblend = mt.build_config('gblend-online-trajectory', 3, 'val', 'unused')
    assert full['train_dataloader']['dataset']['type'] == 'ToyParadoxDataset'
    for cfg in (part, gblend):
        wrapped = cfg['train_dataloader']['dataset']
        assert wrapped['type'] == 'HeldOutSplitDataset'
        assert wrapped['part'] == 'train'
    assert {k: v for k, v in part['train_dataloader']['dataset'].items()} \
        == gblend['train_dataloader']['dataset']
    assert gblend['custom_hooks'][0]['type'] == 'GradientBlendingHook'
    assert mt.build_config('rgb-only', 0, 'test', 'unused')[
        'test_dataloader']['dataset']['split'] == 'test'
    assert mt.run_key('rgb-only', 0, 'val') != mt.run_key('rgb-only', 0,
                                                          'test')


@pytest.mark.slow
def test_quick_runs_resume_and_summary(tmp_path):
    out = str(tmp_path / 'results.jsonl')
    strategies = ['rgb-only', 'naive-fusion', 'naive-fusion@gblend-part']
    logs = []
    records, failures = mt.run_all(strategies, [0, 1], 'val', out,
                                   str(tmp_path / 'work'), QUICK,
                                   log=logs.append)
    assert not failures
    assert len(records) == 6 and len(mt.read_records(out)) == 6
    assert os.listdir(tmp_path / 'work' / 'runs') == []  # cleaned up
    assert all(0 <= r['top1'] <= 1 for r in records)
    by = {(r['strategy'], r['seed']): r for r in records}
    assert by[('rgb-only', 0)]['predict_head'] == 'rgb'
    assert by[('rgb-only', 0)]['weights'] is None
    assert by[('naive-fusion', 0)]['weights'] == pytest.approx(
        dict(audio=0, rgb=0, fused=1))
    # 10% of each class of 12 held out (1 sample each)
    assert by[('naive-fusion', 0)]['train_samples'] == 120
    assert by[('naive-fusion@gblend-part', 0)]['train_samples'] == 110
    # a second call runs nothing and gives the same records
    again, _ = mt.run_all(strategies, [0, 1], 'val', out,
                          str(tmp_path / 'work'), QUICK, log=logs.append)
    assert again == records
    assert logs[-1].startswith('6 of 6 runs already')

    summary = mt.summarize(records)
    rgb = [by[('rgb-only', s)]['top1'] for s in (0, 1)]
    naive = [by[('naive-fusion', s)]['top1'] for s in (0, 1)]
    assert summary['strategies']['rgb-only']['mean'] == pytest.approx(
        statistics.fmean(rgb))
    assert summary['references']['best single modality (whole train '
                                 'set)'] == 'rgb-only'
    row = next(c for c in summary['comparisons']
               if c['strategy'] == 'naive-fusion'
               and c['reference'] == 'rgb-only')
    diffs = [n - r for n, r in zip(naive, rgb)]
    assert row['diffs'] == pytest.approx(diffs)
    assert row['mean'] == pytest.approx(statistics.fmean(diffs))
    if diffs[0] != diffs[1]:
        half = 12.706204736174705 * statistics.stdev(diffs) / math.sqrt(2)
        assert row['high'] - row['mean'] == pytest.approx(half)
    assert row['won'] == sum(d > 0 for d in diffs) / 2
    # like with like: a baseline on G-Blend's part is compared with the
    # references trained on that part only
    pairs = {(c['strategy'], c['reference']) for c in summary['comparisons']}
    assert ('naive-fusion@gblend-part', 'rgb-only') not in pairs
    assert ('naive-fusion', 'naive-fusion@gblend-part') not in pairs
    assert ('rgb-only', 'naive-fusion') in pairs
    text = mt.render_markdown(summary, 'val', 1.0, QUICK)
    assert '| naive-fusion@gblend-part | 2 |' in text
    json.dumps(summary)  # serialisable as written by main()
