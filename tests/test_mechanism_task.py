"""The paradox task (``toy_task.paradox_config``) and its runner
(``benchmarks/mechanism_task.py``): the data's mechanism (and the
near-chance variant's), the strategies' configs (G-Blend on its training
part, on the whole set, released, replayed), the statistics against hand
computations, and a few quick runs through the script's functions (resume
and a replay included)."""
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


def test_near_chance_variant_has_b_near_chance_and_nothing_to_memorise():
    # B's weak cue under noise of A's std, redrawn at every load (instead
    # of fixed noise of that std): the same Bayes accuracy, about 0.2
    fresh = toy.paradox_bayes_accuracy(audio_cue=0.5, audio_noise=0.0,
                                       audio_fresh_noise=True)
    fixed = toy.paradox_bayes_accuracy(audio_cue=0.5, audio_noise=1.0)
    assert fresh == fixed
    assert 0.15 < fresh['audio'] < 0.25 < fresh['rgb'] < fresh['fused']
    assert toy.paradox_bayes_accuracy(**mt.VARIANTS['near-chance']) == fresh
    # both noises: their stds add in quadrature
    both = toy.paradox_bayes_accuracy(audio_cue=0.5, audio_noise=1.0,
                                      audio_fresh_noise=True)
    assert both['audio'] < fresh['audio']
    assert mt.VARIANTS['paradox'] == {}
    assert set(mt.VARIANTS['near-chance']) <= set(toy.PARADOX_TASK)


def test_audio_fresh_noise_redraws_b_at_every_load():
    plain = toy.paradox_config('unused')
    cfg = toy.paradox_config('unused', **mt.VARIANTS['near-chance'])
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        noise, = [t for t in cfg[loader]['dataset']['pipeline']
                  if t['type'] == 'ToyFeatureNoise']
        assert noise['keys'] == ('imgs', 'audios'), loader
        noise, = [t for t in plain[loader]['dataset']['pipeline']
                  if t['type'] == 'ToyFeatureNoise']
        assert noise['keys'] == ('imgs', ), loader
    train = DATASETS.build(cfg['train_dataloader']['dataset'])
    val = DATASETS.build(cfg['val_dataloader']['dataset'])
    info = train.get_data_info(3)
    assert info['audios'].shape == (1, 16)  # no fingerprint block
    first, second = features(train[3]), features(train[3])
    assert not np.allclose(first['audios'], second['audios'])
    diff = (first['audios'] - second['audios']).ravel()
    assert diff.std() == pytest.approx(math.sqrt(2), rel=0.5)
    # the fixed part: B's cue alone (no fixed noise, no fingerprint)
    mu = toy.paradox_class_means(10, 64, 16)['audios']
    np.testing.assert_allclose(info['audios'][0], 0.5 * mu[info['label']],
                               rtol=1e-5)
    # val: the same every time (G-Blend's measurements)
    np.testing.assert_array_equal(features(val[3])['audios'],
                                  features(val[3])['audios'])


def test_strategy_kinds():
    part = ('gblend-online-shadow', 'gblend-online-trajectory',
            'gblend-online-trajectory-check', 'gblend-offline-shadow',
            'naive-fusion@gblend-part', 'rgb-only@gblend-part')
    whole = ('gblend-offline-all', 'gblend-online-shadow-release',
             'gblend-online-trajectory-release',
             'gblend-online-shadow-replay', 'gblend-online-trajectory-replay',
             'naive-fusion', 'aux-heads', 'rgb-only')
    for name in part:
        assert mt.on_gblend_part(name), name
    for name in whole:
        assert not mt.on_gblend_part(name), name
    for name in part[:4] + whole[:5]:
        assert mt.is_gblend(name), name
    for name in ('naive-fusion', 'aux-heads', 'rgb-only',
                 'naive-fusion@gblend-part'):
        assert not mt.is_gblend(name), name
    assert set(mt.DEFAULT_STRATEGIES) <= set(mt.STRATEGIES)
    assert {'gblend-offline-all', 'gblend-online-trajectory-replay',
            'gblend-online-shadow-replay'} <= set(mt.DEFAULT_STRATEGIES)
    # every replay's source is a strategy, and comes before it by default
    for name, spec in mt.STRATEGIES.items():
        if 'replay_of' in spec:
            assert mt.STRATEGIES[spec['replay_of']].get('gblend'), name
            order = list(mt.DEFAULT_STRATEGIES)
            assert order.index(spec['replay_of']) < order.index(name)
    # every multi-modal strategy predicts with the 'mix' rule
    for name, spec in mt.STRATEGIES.items():
        cfg = mt.build_config(name, 0, 'val', 'unused')
        multi = len(cfg['model']['branches']) > 1
        hooks = [h['type'] for h in cfg['custom_hooks']]
        assert (cfg['model'].get('prediction') == 'mix') == multi, name
        assert ('PredictionMixHook' in hooks) == multi, name


def test_gblend_on_the_whole_set_holds_out_the_parts_v():
    offline = mt.build_config('gblend-offline-all', 3, 'val', 'unused')
    online = mt.build_config('gblend-online-shadow', 3, 'val', 'unused')
    dataset = offline['train_dataloader']['dataset']
    assert dataset['type'] == 'ToyParadoxDataset'  # not wrapped
    hook, mix = offline['custom_hooks']
    assert (hook['mode'], hook['estimator']) == ('offline', 'shadow')
    assert (hook['heldout_fraction'], hook['seed']) == (0.1, 3)
    assert mix == dict(type='PredictionMixHook', dataloader='val')
    # the hook's split of the whole set is the online runs' split
    from mmaction_gblend.datasets.heldout_split_configs import (
        heldout_split_config, measurement_config)
    split = heldout_split_config(dataset, hook['heldout_fraction'],
                                 hook['seed'], exclude_heldout=False)
    assert split['part'] == 'all'
    for part in ('heldout', 'probe', 'train'):
        ours = DATASETS.build(measurement_config(split, part))
        theirs = DATASETS.build(measurement_config(
            online['train_dataloader']['dataset'], part))
        assert list(ours.indices) == list(theirs.indices), part
    # paradox_config itself: train_on_all without G-Blend changes nothing
    assert toy.paradox_config('unused', train_on_all=True) == \
        toy.paradox_config('unused')
    cfg = toy.paradox_config(
        'unused', seed=5, heldout_fraction=0.2, train_on_all=True,
        gblend=dict(type='GradientBlendingHook', mode='offline'))
    assert cfg['train_dataloader']['dataset']['type'] == 'ToyParadoxDataset'
    assert cfg['custom_hooks'] == [dict(
        type='GradientBlendingHook', mode='offline', heldout_fraction=0.2,
        seed=5)]


def test_release_and_replay_configs():
    release = mt.build_config('gblend-online-trajectory-release', 2, 'val',
                              'unused')
    online = mt.build_config('gblend-online-trajectory', 2, 'val', 'unused')
    hook = release['custom_hooks'][0]
    assert hook == dict(online['custom_hooks'][0], release_heldout=True)
    assert release['train_dataloader'] == online['train_dataloader']
    assert release['train_dataloader']['dataset']['part'] == 'train'
    # a replay: the recorded weights first, then the 'mix' fit, on the
    # whole training set
    cfg = mt.replay_config('gblend-online-trajectory-replay', 2, 'test',
                           'work', 'source/gblend_history.jsonl',
                           dict(max_epochs=12))
    assert [h['type'] for h in cfg['custom_hooks']] == [
        'GradientBlendingHook', 'PredictionMixHook']
    assert cfg['custom_hooks'][0] == dict(
        type='GradientBlendingHook', mode='replay',
        replay='source/gblend_history.jsonl')
    assert cfg['train_dataloader']['dataset']['type'] == 'ToyParadoxDataset'
    assert cfg['train_cfg']['max_epochs'] == 12
    assert cfg['test_dataloader']['dataset']['split'] == 'test'
    assert cfg['model']['prediction'] == 'mix'
    # without the replay hook: the replay's own config has no G-Blend
    plain = mt.build_config('gblend-online-trajectory-replay', 2, 'test',
                            'work', dict(max_epochs=12))
    assert [h['type'] for h in plain['custom_hooks']] == [
        'PredictionMixHook']
    # a replay's key is its own
    assert mt.run_key('gblend-online-trajectory-replay', 0, 'val') != \
        mt.run_key('gblend-online-trajectory', 0, 'val')


def test_main_names_the_results_by_variant(tmp_path, monkeypatch):
    calls = []

    def run_all(strategies, seeds, split, out, work_root, task=None,
                jobs=1, keep=False, log=print):
        calls.append(dict(out=out, task=task, split=split))
        return [], []

    monkeypatch.setattr(mt, 'run_all', run_all)
    work = str(tmp_path)
    assert mt.main(['--split', 'test', '--work-dir', work]) == 0
    assert mt.main(['--split', 'test', '--work-dir', work, '--variant',
                    'near-chance']) == 0
    assert mt.main(['--work-dir', work, '--variant', 'near-chance',
                    '--set', 'audio_cue=0.7']) == 0
    assert calls[0] == dict(out=osp.join(work, 'results_test.jsonl'),
                            task=None, split='test')
    assert calls[1] == dict(
        out=osp.join(work, 'results_near-chance_test.jsonl'),
        task=mt.VARIANTS['near-chance'], split='test')
    assert calls[2]['out'] == osp.join(work,
                                       'results_near-chance_val.jsonl')
    assert calls[2]['task'] == dict(mt.VARIANTS['near-chance'],
                                    audio_cue=0.7)
    text = open(osp.join(work, 'results_near-chance_test.summary.md')).read()
    assert 'Task overrides (not the frozen task)' in text


def test_summary_compares_with_equal_auxiliary_heads():
    top1 = {'rgb-only': (0.70, 0.72), 'naive-fusion': (0.60, 0.62),
            'aux-heads': (0.66, 0.69),
            'naive-fusion@gblend-part': (0.58, 0.61),
            'gblend-online-trajectory-replay': (0.74, 0.70)}
    records = [
        dict(strategy=n, seed=s, top1=v, head_top1={}, train_samples=600,
             seconds=1.0, weights=None)
        for n, values in top1.items() for s, v in enumerate(values)
    ]
    summary = mt.summarize(records)
    label = 'equal auxiliary heads (whole train set)'
    assert summary['references'][label] == 'aux-heads'
    against = {c['strategy']: c for c in summary['comparisons']
               if c['reference_label'] == label}
    # like with like: no baseline on G-Blend's part; G-Blend always
    assert set(against) == {'rgb-only', 'naive-fusion',
                            'gblend-online-trajectory-replay'}
    assert against['gblend-online-trajectory-replay']['diffs'] == \
        pytest.approx([0.08, 0.01])
    assert f'against {label}: `aux-heads`' in mt.render_markdown(summary,
                                                                 'val')


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


@pytest.mark.slow
def test_quick_replay_run_trains_on_the_whole_set(tmp_path):
    """A replay through ``run_one``: the online trajectory run on G-Blend's
    part first (its estimate after the 10-epoch warm-up), then its weights
    replayed on the whole training set; the record has the prediction
    rules."""
    # batches of 8: enough steps in the warm-up for an estimate away from
    # the initial weights (with QUICK's 4 steps an epoch no head's G
    # leaves the noise, and the estimate keeps them)
    task = dict(QUICK, max_epochs=11, batch_size=8)
    name = 'gblend-online-trajectory-replay'
    record = mt.run_one(name, 0, 'val', str(tmp_path), task, keep=True)
    assert record['train_samples'] == 120  # the whole set, V included
    key = mt.run_key(name, 0, 'val', task)
    work = tmp_path / 'runs' / f'{name}-s0-{key}'
    source = [json.loads(line) for line in
              open(work / 'source' / 'gblend_history.jsonl')]
    estimate, = [e for e in source if e.get('estimator') == 'trajectory']
    assert estimate['epoch'] == 10 and estimate['main_trains_on'] == 'part'
    # an estimate away from the start, so the replay has something to show
    assert estimate['weights'] != pytest.approx(estimate['initial_weights'])
    assert record['weights'] == pytest.approx(estimate['weights'])
    assert record['history'] == [dict(epoch=10,
                                      weights=estimate['weights'])]
    assert set(record['rules']) == {
        'head:audio', 'head:rgb', 'head:fused', 'blend', 'uniform',
        'fitted', 'best-val-head'
    }
    assert all(0 <= v <= 1 for v in record['rules'].values())
    assert record['rules']['best-val-head'] in (
        record['rules'][f'head:{h}'] for h in ('audio', 'rgb', 'fused'))
    assert record['head_top1']['fused'] is not None


def test_group_variant_fingerprints_belong_to_groups_unseen_at_test():
    task = mt.VARIANTS['groups']
    cfg = toy.paradox_config('unused', seed=2, **task)
    train = DATASETS.build(cfg['train_dataloader']['dataset'])
    test = DATASETS.build(cfg['test_dataloader']['dataset'])
    infos = [train.get_data_info(i) for i in range(len(train))]
    by_group = {}
    for info in infos:
        by_group.setdefault(info['group'], []).append(info)
    assert len(by_group) == len(infos) // task['group_size']
    fp = slice(16, None)  # after B's cue block
    for members in by_group.values():
        assert len(members) == task['group_size']
        # a group: one fingerprint, its own few classes
        assert len({m['audios'][0, fp].tobytes() for m in members}) == 1
        assert len({m['label'] for m in members}) <= task['group_classes']
    # every class occurs; test samples come from groups of their own
    assert {i['label'] for i in infos} == set(range(10))
    tested = {test.get_data_info(i)['group'] for i in range(len(test))}
    assert not tested & set(by_group)
    # the frozen task is unchanged: a fingerprint per sample, no groups
    frozen = DATASETS.build(toy.paradox_config('unused', seed=2)[
        'train_dataloader']['dataset'])
    assert 'group' not in frozen.get_data_info(0)


def test_group_v_strategies_split_by_group_and_are_summarised():
    cfg = mt.build_config('gblend-online-shadow' + mt.GROUP_SUFFIX, 1, 'val',
                          'unused', mt.VARIANTS['groups'])
    split = cfg['train_dataloader']['dataset']
    assert split['group'] == dict(key='group')
    assert mt.on_gblend_part('gblend-online-shadow' + mt.GROUP_SUFFIX)

    def run(name, seed, audio):
        return dict(strategy=name, seed=seed, top1=0.7, head_top1={},
                    train_samples=540, seconds=1.0,
                    weights=dict(audio=audio[-1], rgb=0.5, fused=0.5 -
                                 audio[-1]),
                    history=[dict(epoch=10 + 5 * i, weights=dict(audio=a))
                             for i, a in enumerate(audio)])

    name = 'gblend-online-shadow'
    records = [run(name, 0, [0.3, 0.5]), run(name + mt.GROUP_SUFFIX, 0,
                                              [0.1, 0.2]),
               run(name, 1, [0.2, 0.2]), run(name + mt.GROUP_SUFFIX, 1,
                                              [0.1, 0.4])]
    rows = mt.summarize(records)['group_v']
    assert len(rows) == 1 and rows[0]['n'] == 2
    assert rows[0]['first'] == dict(random_v=pytest.approx(0.25),
                                    group_v=pytest.approx(0.1), less=2)
    assert rows[0]['mean']['less'] == 1 and rows[0]['final']['less'] == 1
    text = mt.render_markdown(mt.summarize(records), 'test')
    assert '0.250 → 0.100 (less in 2/2)' in text
