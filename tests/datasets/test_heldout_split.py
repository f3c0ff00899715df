"""The held-out split of the training set (V, T') and its dataset wrapper."""
import copy
import json
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmaction.registry import DATASETS
from mmengine.runner import Runner

from mmaction_gblend.datasets.errors import BadSampleError
from mmaction_gblend.datasets.heldout_split_configs import \
    heldout_split_config
from mmaction_gblend.datasets.heldout_split_dataset import HeldOutSplitDataset
from mmaction_gblend.datasets.stratified_split import (
    label_from_data_info, stratified_heldout_split)
from helpers import capture_log, write_test_clip


def labels_of_sizes(sizes, seed=0):
    """Labels with ``sizes[c]`` samples of class ``c``, in a shuffled order."""
    labels = np.concatenate(
        [np.full(n, c, dtype=np.int64) for c, n in sizes.items()])
    return np.random.default_rng(seed).permutation(labels).tolist()


def per_class(labels, indices):
    labels = np.asarray(labels)
    return {int(c): int(np.sum(labels[indices] == c)) for c in set(labels)}


# --------------------------------------------------------------------------
# stratified_heldout_split
# --------------------------------------------------------------------------


def test_same_inputs_same_split_other_seed_other_split():
    labels = labels_of_sizes({c: 30 + 7 * c for c in range(8)})
    first = stratified_heldout_split(labels, 0.08, seed=3)
    second = stratified_heldout_split(list(labels), 0.08, seed=3)
    for a, b in zip(first, second):
        assert a.dtype == np.int64 and np.array_equal(a, b)
        assert np.all(np.diff(a) > 0)  # sorted, no repeats
    other = stratified_heldout_split(labels, 0.08, seed=4)
    assert len(other[1]) == len(first[1])  # same per-class counts ...
    assert not np.array_equal(other[1], first[1])  # ... other samples
    assert not np.array_equal(other[2], first[2])


def test_heldout_count_per_class_is_the_rounded_fraction():
    sizes = {0: 100, 1: 50, 2: 13, 3: 2, 4: 1, 5: 25, 6: 200}
    labels = labels_of_sizes(sizes)
    _, heldout, _ = stratified_heldout_split(labels, fraction=0.08)
    # round(0.08 n), at least 1 for a class of >= 2, none for a singleton
    expected = {0: 8, 1: 4, 2: 1, 3: 1, 4: 0, 5: 2, 6: 16}
    assert per_class(labels, heldout) == expected
    # the paper's 13% (mini-AudioSet); halves round up: 0.1 * 25 = 2.5 -> 3
    _, heldout, _ = stratified_heldout_split(labels, fraction=0.13)
    expected = {0: 13, 1: 7, 2: 2, 3: 1, 4: 0, 5: 3, 6: 26}
    assert per_class(labels, heldout) == expected
    _, heldout, _ = stratified_heldout_split(labels, fraction=0.1)
    assert per_class(labels, heldout)[5] == 3
    # every class keeps a training sample, even with a large fraction
    train, heldout, _ = stratified_heldout_split(labels, fraction=0.9)
    assert per_class(labels, heldout)[3] == 1
    assert all(n >= 1 for n in per_class(labels, train).values())


def test_heldout_proportions_follow_the_classes():
    sizes = {0: 1000, 1: 400, 2: 150, 3: 60}
    labels = labels_of_sizes(sizes, seed=1)
    _, heldout, _ = stratified_heldout_split(labels, fraction=0.08)
    counts = per_class(labels, heldout)
    for c, n in sizes.items():
        assert abs(counts[c] / n - 0.08) <= 0.5 / n


def test_parts_are_disjoint_and_cover_everything():
    labels = labels_of_sizes({c: 10 + 3 * c for c in range(12)}, seed=2)
    train, heldout, probe = stratified_heldout_split(labels, 0.2, seed=5)
    everything = np.arange(len(labels))
    assert np.intersect1d(train, heldout).size == 0
    assert np.array_equal(np.union1d(train, heldout), everything)
    assert np.all(np.isin(probe, train))
    assert np.intersect1d(probe, heldout).size == 0
    assert len(probe) == len(heldout)  # the default probe size
    # the probe is stratified in proportion to each class's training count
    train_counts = per_class(labels, train)
    probe_counts = per_class(labels, probe)
    for c, n in train_counts.items():
        assert abs(probe_counts[c] - len(probe) * n / len(train)) < 1


def test_probe_size_and_its_bounds():
    labels = labels_of_sizes({0: 40, 1: 60, 2: 20})
    train, heldout, probe = stratified_heldout_split(
        labels, 0.1, probe_size=30)
    assert len(probe) == 30 and np.all(np.isin(probe, train))
    assert per_class(labels, probe) == {0: 10, 1: 15, 2: 5}
    _, _, everything = stratified_heldout_split(
        labels, 0.1, probe_size=len(train))
    assert np.array_equal(everything, train)
    for bad in (0, -3, len(train) + 1):
        with pytest.raises(ValueError, match='probe_size'):
            stratified_heldout_split(labels, 0.1, probe_size=bad)
    with pytest.raises(ValueError, match='probe_size'):
        stratified_heldout_split(labels, 0.1, probe_size=2.5)


def test_seeding_contract_per_class_streams_with_tags():
    """V and T' of a class come from generators of their own, seeded from
    ``(seed, tag, class)`` with fixed tags ("HELD" and "PROB" in ASCII):
    the same split in every process and every version of this code."""
    labels = labels_of_sizes({0: 120, 1: 80}, seed=5)
    train, heldout, probe = stratified_heldout_split(labels, 0.1, seed=7)
    for c, n_held in ((0, 12), (1, 8)):
        members = np.flatnonzero(np.asarray(labels) == c)
        order = np.random.default_rng([7, 0x48454C44,
                                       c]).permutation(len(members))
        assert np.array_equal(
            np.sort(members[order[:n_held]]), np.intersect1d(heldout, members))
        rest = np.intersect1d(train, members)
        order = np.random.default_rng([7, 0x50524F42,
                                       c]).permutation(len(rest))
        assert np.array_equal(
            np.sort(rest[order[:n_held]]), np.intersect1d(probe, members))


def chosen_ids(ids, labels, cls, **kwargs):
    """The identities of class ``cls``'s held-out and probe samples."""
    _, heldout, probe = stratified_heldout_split(labels, **kwargs)
    ids, labels = np.asarray(ids), np.asarray(labels)
    return ({ids[i]
             for i in heldout
             if labels[i] == cls}, {ids[i]
                                    for i in probe if labels[i] == cls})


def test_choice_in_a_class_ignores_the_other_classes():
    rng = np.random.default_rng(7)
    labels = labels_of_sizes({0: 50, 1: 80, 2: 33, 3: 120}, seed=3)
    ids = [f'sample{i}' for i in range(len(labels))]
    base = chosen_ids(ids, labels, 0, fraction=0.1, seed=11)
    assert len(base[0]) == 5 and len(base[1]) == 5

    # move every other sample around: class 0's samples keep their order
    # among themselves but end up at other positions of the data list
    others = [i for i in range(len(labels)) if labels[i] != 0]
    zeros = [i for i in range(len(labels)) if labels[i] == 0]
    slots = np.sort(rng.choice(len(labels), len(zeros), replace=False))
    order = np.empty(len(labels), dtype=np.int64)
    order[slots] = zeros
    rest = np.setdiff1d(np.arange(len(labels)), slots)
    order[rest] = rng.permutation(others)
    assert not np.array_equal(
        np.flatnonzero(np.asarray(labels) == 0),
        np.flatnonzero(np.asarray(labels)[order] == 0))
    moved = chosen_ids([ids[i] for i in order], [labels[i] for i in order],
                       0,
                       fraction=0.1,
                       seed=11)
    assert moved == base

    # other classes growing or shrinking does not change class 0's V
    grown_labels = labels + [1] * 40 + [5] * 17
    grown_ids = ids + [f'new{i}' for i in range(57)]
    assert chosen_ids(
        grown_ids, grown_labels, 0, fraction=0.1, seed=11)[0] == base[0]
    kept = [i for i in range(len(labels)) if labels[i] != 3]
    assert chosen_ids([ids[i] for i in kept], [labels[i] for i in kept],
                      0,
                      fraction=0.1,
                      seed=11)[0] == base[0]


def test_larger_fraction_holds_out_a_superset():
    labels = labels_of_sizes({c: 50 for c in range(5)})
    small = stratified_heldout_split(labels, 0.08, seed=2)[1]
    large = stratified_heldout_split(labels, 0.2, seed=2)[1]
    assert len(small) < len(large) and np.all(np.isin(small, large))


def test_multi_label_samples_are_stratified_by_their_first_label():
    # stratified by any other label than the first, class 1 would get 10
    # held-out samples and class 0 none
    labels = [[0, 1]] * 50 + [[1]] * 50 + [[2, 0, 1]] * 20
    split = stratified_heldout_split(labels, 0.1, seed=1)
    firsts = [label[0] for label in labels]
    assert per_class(firsts, split[1]) == {0: 5, 1: 5, 2: 2}
    for a, b in zip(split, stratified_heldout_split(firsts, 0.1, seed=1)):
        assert np.array_equal(a, b)
    # numpy integers and arrays are labels too
    as_numpy = [np.asarray(label, dtype=np.int32) for label in labels]
    assert np.array_equal(
        stratified_heldout_split(as_numpy, 0.1, seed=1)[1], split[1])


@pytest.mark.parametrize('labels, where', [
    ([0, 1, -1, 0, 1], 'sample 2'),
    ([[0], [1, 2], [], [0]], 'sample 2'),
    ([[0], [1, -1], [1]], 'sample 1'),
    ([0, 1, 0, 1, -5], 'sample 4'),
])
def test_unlabelled_samples_are_an_error(labels, where):
    with pytest.raises(ValueError, match=where):
        stratified_heldout_split(labels, 0.5)


@pytest.mark.parametrize('label', [1.5, '3', None, True])
def test_non_integer_labels_are_an_error(label):
    with pytest.raises(TypeError, match='sample 1'):
        stratified_heldout_split([0, label, 0, 1], 0.5)


@pytest.mark.parametrize(
    'fraction',
    [0, 0.0, 1, 1.0, -0.1, 1.5, float('nan'), True])
def test_fraction_must_be_inside_zero_one(fraction):
    with pytest.raises(ValueError, match='heldout_fraction'):
        stratified_heldout_split([0, 1] * 20, fraction)


def test_empty_labels_empty_heldout_and_bad_seed_are_errors():
    with pytest.raises(ValueError, match='non-empty'):
        stratified_heldout_split([], 0.1)
    with pytest.raises(ValueError, match='held-out split is empty'):
        stratified_heldout_split([0, 1, 2, 3], 0.1)  # one sample a class
    with pytest.raises(ValueError, match='seed'):
        stratified_heldout_split([0, 1] * 10, 0.1, seed=-1)


@pytest.mark.slow
def test_split_is_the_same_in_another_process():
    """Nothing depends on Python's per-process hash seed or on state."""
    labels = labels_of_sizes({c: 20 + c for c in range(10)}, seed=9)
    here = [a.tolist() for a in stratified_heldout_split(labels, 0.08, 3)]
    code = ('import json, sys\n'
            'from mmaction_gblend.datasets.stratified_split import '
            'stratified_heldout_split\n'
            'labels = json.loads(sys.stdin.read())\n'
            'print(json.dumps([a.tolist() for a in '
            'stratified_heldout_split(labels, 0.08, 3)]))\n')
    env = dict(os.environ, PYTHONHASHSEED='12345')
    out = subprocess.run([sys.executable, '-c', code],
                         input=json.dumps(labels),
                         capture_output=True,
                         text=True,
                         env=env,
                         check=True,
                         timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_label_from_data_info_forms():
    assert label_from_data_info(3) == 3
    assert label_from_data_info(np.int64(3)) == 3
    assert label_from_data_info(torch.tensor(3)) == 3
    assert label_from_data_info([2, 0]) == [2, 0]
    assert label_from_data_info(np.array([2, 0])) == [2, 0]
    assert label_from_data_info(torch.tensor([0., 0., 1., 1.])) == 2
    assert label_from_data_info(np.zeros(4, dtype=np.float32)) == -1


# --------------------------------------------------------------------------
# HeldOutSplitDataset
# --------------------------------------------------------------------------


def write_ann(root, labels, touch=False, name='list.txt'):
    """An annotation file of ``videos/sNNN.mp4 label`` lines.

    ``touch`` writes a small non-empty file at each path, enough for
    ``AudioVisualDataset``'s checks when the pipeline opens nothing.
    """
    lines = []
    for i, label in enumerate(labels):
        rel = f'videos/s{i:03d}.mp4'
        if touch:
            os.makedirs(root / 'videos', exist_ok=True)
            (root / rel).write_bytes(b'not a video')
        label = ' '.join(map(str, label)) if isinstance(label, list) \
            else str(label)
        lines.append(f'{rel} {label}'.strip())
    (root / name).write_text('\n'.join(lines) + '\n')
    return str(root / name)


def av_cfg(root, pipeline=(), name='list.txt', **kwargs):
    return dict(
        type='AudioVisualDataset',
        ann_file=str(root / name),
        pipeline=list(pipeline),
        data_prefix=dict(video=str(root)),
        **kwargs)


def split_cfg(root, part, pipeline=(), inner=None, **kwargs):
    return dict(
        type='HeldOutSplitDataset',
        dataset=av_cfg(root, pipeline, **(inner or {})),
        part=part,
        **kwargs)


def filenames(dataset):
    return [dataset.get_data_info(i)['filename'] for i in range(len(dataset))]


LABELS = labels_of_sizes({0: 30, 1: 22, 2: 15, 3: 9}, seed=4)


def test_parts_of_a_real_dataset_are_disjoint_and_cover_it(tmp_path):
    write_ann(tmp_path, LABELS)
    parts = {
        part: DATASETS.build(split_cfg(tmp_path, part, fraction=0.2, seed=1))
        for part in ('train', 'heldout', 'probe', 'all')
    }
    assert all(isinstance(d, HeldOutSplitDataset) for d in parts.values())
    names = {part: filenames(d) for part, d in parts.items()}
    listed = [f'{tmp_path}/videos/s{i:03d}.mp4' for i in range(len(LABELS))]
    assert names['all'] == listed
    assert not set(names['train']) & set(names['heldout'])
    assert sorted(names['train'] + names['heldout']) == listed
    assert set(names['probe']) <= set(names['train'])
    # the same split as the function over the annotation file's labels
    expected = dict(
        zip(('train', 'heldout', 'probe'),
            stratified_heldout_split(LABELS, 0.2, seed=1)))
    for part, indices in expected.items():
        assert np.array_equal(parts[part].indices, indices)
        assert len(parts[part]) == len(indices)
        labels = [
            parts[part].get_data_info(i)['label'] for i in range(len(indices))
        ]
        assert labels == [LABELS[i] for i in indices]
    assert parts['heldout'].metainfo == parts['heldout'].dataset.metainfo
    summary = parts['train'].split_summary()
    assert summary['part'] == 'train' and summary['seed'] == 1
    assert summary['num_samples'] == dict(
        train=len(expected['train']),
        heldout=len(expected['heldout']),
        probe=len(expected['probe']),
        all=len(LABELS))
    assert summary['per_class'][0] == dict(
        train=24,
        heldout=6,
        probe=per_class(LABELS, expected['probe'])[0],
        all=30)
    assert summary['per_class'][3]['heldout'] == 2


def test_two_separately_built_wrappers_agree(tmp_path):
    write_ann(tmp_path, LABELS)
    cfg = split_cfg(tmp_path, 'heldout', seed=8)
    one = DATASETS.build(copy.deepcopy(cfg))
    two = DATASETS.build(copy.deepcopy(cfg))
    assert one.dataset is not two.dataset
    assert np.array_equal(one.indices, two.indices)
    assert filenames(one) == filenames(two)
    other_seed = DATASETS.build(split_cfg(tmp_path, 'heldout', seed=9))
    assert filenames(other_seed) != filenames(one)


def test_config_building_keeps_the_users_dataset(tmp_path):
    write_ann(tmp_path, [[c, (c + 1) % 4] for c in LABELS])
    cfg = split_cfg(
        tmp_path,
        'probe',
        inner=dict(
            multi_class=True, num_classes=4, test_mode=True, start_index=0),
        fraction=0.15,
        seed=2,
        probe_size=7)
    before = copy.deepcopy(cfg)
    dataset = DATASETS.build(cfg)
    assert cfg == before
    inner = dataset.dataset
    assert type(inner).__name__ == 'AudioVisualDataset'
    assert inner.multi_class and inner.num_classes == 4 and inner.test_mode
    assert inner.data_prefix['video'] == str(tmp_path)
    assert len(dataset) == 7 and dataset.probe_size == 7
    # multi_class labels come as one-hot vectors: stratified by their
    # first positive entry (the smallest label)
    label = dataset.get_data_info(0)['label']
    assert isinstance(label, torch.Tensor) and label.shape == (4, )
    keys = [min(c, (c + 1) % 4) for c in LABELS]
    expected = stratified_heldout_split(keys, 0.15, seed=2, probe_size=7)[2]
    assert np.array_equal(dataset.indices, expected)
    # an already built dataset is used as it is
    again = HeldOutSplitDataset(
        inner, part='probe', fraction=0.15, seed=2, probe_size=7)
    assert again.dataset is inner
    assert np.array_equal(again.indices, expected)


def test_bad_arguments_are_errors(tmp_path):
    write_ann(tmp_path, LABELS)
    with pytest.raises(ValueError, match='part'):
        DATASETS.build(split_cfg(tmp_path, 'val'))
    with pytest.raises(ValueError, match='heldout_fraction'):
        DATASETS.build(split_cfg(tmp_path, 'train', fraction=1.0))
    with pytest.raises(ValueError, match='probe_size'):
        DATASETS.build(split_cfg(tmp_path, 'train', probe_size=0))
    with pytest.raises(ValueError, match='probe_size'):
        DATASETS.build(split_cfg(tmp_path, 'train', probe_size=1000))
    with pytest.raises(TypeError, match='BaseDataset'):
        HeldOutSplitDataset([1, 2, 3])


def test_an_unlabelled_sample_is_an_error_naming_it(tmp_path):
    write_ann(tmp_path, LABELS[:5] + [''] + LABELS[5:])  # line 6: no label
    with pytest.raises(ValueError, match='sample 5'):
        DATASETS.build(
            split_cfg(tmp_path, 'train', inner=dict(test_mode=True)))


class Record:
    """A pipeline step that records the files it sees; ``None`` for some."""

    def __init__(self, none_for=()):
        self.seen = []
        self.none_for = set(none_for)

    def __call__(self, results):
        self.seen.append(results['filename'])
        if results['filename'] in self.none_for:
            return None
        return dict(results, loaded=True)


def test_getitem_runs_the_pipeline_on_its_own_sample(tmp_path):
    write_ann(tmp_path, LABELS, touch=True)
    record = Record()
    dataset = DATASETS.build(
        split_cfg(tmp_path, 'heldout', [record], fraction=0.1))
    inner_names = filenames(dataset.dataset)
    for i, inner_index in enumerate(dataset.indices):
        sample = dataset[i]
        assert sample['loaded'] and \
            sample['filename'] == inner_names[inner_index]
    assert record.seen == [inner_names[j] for j in dataset.indices]
    assert dataset[-1]['filename'] == inner_names[dataset.indices[-1]]
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_no_sample_is_refetched_from_another_part(tmp_path):
    write_ann(tmp_path, LABELS, touch=True)
    train = DATASETS.build(split_cfg(tmp_path, 'train', [Record()]))
    names = filenames(train.dataset)
    heldout = set(DATASETS.build(split_cfg(tmp_path, 'heldout')).indices)
    bad_i = 3
    bad = names[train.indices[bad_i]]

    # what the inner dataset alone does: another random sample instead
    record = Record(none_for=[bad])
    inner = DATASETS.build(av_cfg(tmp_path, [record]))
    np.random.seed(0)
    replaced = [inner[train.indices[bad_i]]['filename'] for _ in range(30)]
    assert bad not in replaced
    assert any(names.index(n) in heldout for n in replaced)  # the leak

    record = Record(none_for=[bad])
    train = DATASETS.build(split_cfg(tmp_path, 'train', [record]))
    with pytest.raises(BadSampleError, match='returned None') as info:
        train[bad_i]
    assert str(info.value).startswith(bad)
    assert record.seen == [bad]  # nothing else was loaded in its place
    assert train[bad_i + 1]['filename'] == names[train.indices[bad_i + 1]]


def test_skipped_bad_samples_are_replaced_from_the_same_part(tmp_path):
    """With the inner dataset's bad_sample='skip', a bad sample is replaced
    by another of its own part, never by one of another part."""
    write_ann(tmp_path, LABELS, touch=True)
    train = DATASETS.build(split_cfg(tmp_path, 'train', [Record()],
                                     inner=dict(bad_sample='skip')))
    names = filenames(train.dataset)
    bad = names[train.indices[3]]
    os.remove(bad)
    np.random.seed(0)
    replaced = [train[3]['filename'] for _ in range(30)]
    assert bad not in replaced
    assert set(replaced) <= {names[j] for j in train.indices}
    assert train.dataset.bad_samples == {bad: 'video file not found'}
    assert train.dataset.num_skipped == 30


def test_lazy_init_reads_labels_only_when_asked(tmp_path):
    cfg = split_cfg(
        tmp_path,
        'heldout',
        inner=dict(lazy_init=True),
        lazy_init=True,
        fraction=0.1,
        seed=3)
    dataset = DATASETS.build(cfg)  # the annotation file does not exist yet
    assert not dataset._fully_initialized
    assert not dataset.dataset._fully_initialized
    write_ann(tmp_path, LABELS)
    assert len(dataset) == len(stratified_heldout_split(LABELS, 0.1, 3)[1])
    assert dataset._fully_initialized and dataset.dataset._fully_initialized
    indices = dataset.indices
    dataset.full_init()  # idempotent
    assert np.array_equal(dataset.indices, indices)
    eager = DATASETS.build(
        split_cfg(tmp_path, 'heldout', fraction=0.1, seed=3))
    assert np.array_equal(eager.indices, indices)


def test_build_logs_one_line_with_the_split(tmp_path):
    write_ann(tmp_path, LABELS)
    _, messages = capture_log(
        lambda: DATASETS.build(
            split_cfg(tmp_path, 'probe', fraction=0.2, seed=6)), logging.INFO)
    lines = [m for m in messages if 'HeldOutSplitDataset' in m]
    assert len(lines) == 1
    n_held = len(stratified_heldout_split(LABELS, 0.2, 6)[1])
    for part in ("'probe'", f'heldout {n_held}', f'of {len(LABELS)}',
                 'heldout_fraction=0.2', 'seed=6'):
        assert part in lines[0]


def test_pickles_with_its_split(tmp_path):
    write_ann(tmp_path, LABELS, touch=True)
    dataset = DATASETS.build(
        split_cfg(tmp_path, 'probe', [Record()], fraction=0.2))
    copied = pickle.loads(pickle.dumps(dataset))
    assert np.array_equal(copied.indices, dataset.indices)
    assert copied[2]['filename'] == dataset[2]['filename']


def test_runner_dataloader_with_real_clips_and_a_worker(tmp_path):
    labels = [0, 1] * 5
    lines = []
    for i, label in enumerate(labels):
        rel = f'clips/v{i}.mp4'
        write_test_clip(
            str(tmp_path / rel), seconds=1.0, fps=8, size=32, seed=100 + i)
        lines.append(f'{rel} {label}')
    (tmp_path / 'list.txt').write_text('\n'.join(lines) + '\n')
    pipeline = [
        dict(type='DecordInit'),
        dict(
            type='SampleFrames',
            clip_len=4,
            frame_interval=1,
            num_clips=1,
            test_mode=True),
        dict(type='DecordDecode'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs', collect_keys=('imgs', )),
    ]
    loader = Runner.build_dataloader(
        dict(
            batch_size=8,
            num_workers=1,
            persistent_workers=False,
            sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
            dataset=split_cfg(
                tmp_path,
                'heldout',
                pipeline,
                inner=dict(test_mode=True),
                fraction=0.4,
                seed=0)),
        seed=0)
    dataset = loader.dataset
    assert isinstance(dataset, HeldOutSplitDataset)
    expected = stratified_heldout_split(labels, 0.4, seed=0)[1]
    assert np.array_equal(dataset.indices, expected) and len(expected) == 4
    batches = list(loader)
    assert len(batches) == 1
    imgs = batches[0]['inputs']['imgs']
    gt = [int(s.gt_label) for s in batches[0]['data_samples']]
    assert gt == [labels[i] for i in expected]
    inner = dataset.dataset
    for k, inner_index in enumerate(expected):
        own = inner[int(inner_index)]['inputs']['imgs']
        assert own.shape == (1, 3, 4, 32, 32)
        assert torch.equal(imgs[k], own)
        other = inner[int((inner_index + 2) % len(labels))]['inputs']['imgs']
        assert not torch.equal(imgs[k], other)  # clips tell apart


def test_a_training_subset_for_the_shadow_estimator():
    import mmaction_gblend.demo.toy_task as toy  # noqa: F401 (registers)
    inner = dict(type='ToyMultiModalDataset', num_samples=120, num_classes=4)

    def part(name, **kwargs):
        return HeldOutSplitDataset(dict(inner), part=name, fraction=0.2,
                                   seed=3, **kwargs)

    train, heldout = part('train'), part('heldout')
    subset = part('train', subset=0.5)
    labels = [train.dataset.get_data_info(i)['label'] for i in range(120)]
    # half of each class's training samples (24 a class), never held out
    assert set(subset.indices) < set(train.indices)
    assert per_class(labels, subset.indices) == {c: 12 for c in range(4)}
    assert not set(subset.indices) & set(heldout.indices)
    # V is the same with and without the subset; the probe is inside it
    assert np.array_equal(part('heldout', subset=0.5).indices,
                          heldout.indices)
    probe = part('probe', subset=0.5)
    assert set(probe.indices) <= set(subset.indices)
    assert len(probe) == len(heldout)
    # a probe larger than the subset is the whole subset
    assert set(part('probe', subset=0.1, probe_size=100).indices) == \
        set(part('train', subset=0.1).indices)
    # seeded and nested: the same draw again, a larger one a superset
    assert np.array_equal(part('train', subset=0.5).indices, subset.indices)
    assert set(subset.indices) < set(part('train', subset=0.75).indices)
    assert np.array_equal(part('train', subset=1.0).indices, train.indices)
    with pytest.raises(ValueError, match='subset must be None or'):
        part('train', subset=0.0)
    with pytest.raises(ValueError, match="part='all'"):
        part('all', subset=0.5)


def test_a_split_of_part_all_trains_only_without_exclude_heldout():
    inner = dict(type='ToyMultiModalDataset', num_samples=40)
    split = dict(type='HeldOutSplitDataset', part='all', fraction=0.2,
                 seed=3, dataset=inner)
    # the main run trains on V too: allowed, kept as it is (its own
    # fraction and seed, not the hook's)
    assert heldout_split_config(split, 0.5, 9, False) == split
    assert heldout_split_config(dict(split, type=HeldOutSplitDataset), 0.5,
                                9, False)['part'] == 'all'
    # V must stay out of training: refused, naming the part
    with pytest.raises(ValueError, match="part='all'; training needs "
                       r"part='train'$"):
        heldout_split_config(split, 0.5, 9, exclude_heldout=True)
    with pytest.raises(ValueError, match="part='all'"):
        heldout_split_config(split, 0.5, 9)  # True is the default
    # V or T' is never trained on
    for part in ('heldout', 'probe'):
        with pytest.raises(ValueError, match=f"part='{part}'; training needs "
                           "part='train' or part='all'"):
            heldout_split_config(dict(split, part=part), 0.5, 9,
                                 exclude_heldout=False)
    # part='train' in both cases; an unwrapped dataset becomes part='all'
    strict = dict(split, part='train')
    assert heldout_split_config(strict, 0.5, 9, True) == strict
    assert heldout_split_config(strict, 0.5, 9, False) == strict
    assert heldout_split_config(inner, 0.5, 9, False) == dict(
        type='HeldOutSplitDataset', dataset=inner, part='all', fraction=0.5,
        seed=9)
    assert split['part'] == 'all'  # the config is not changed
