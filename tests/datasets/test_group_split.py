"""Held-out splits by group: whole groups to V, the training part and the
probe from the other groups, the same on every process."""
import logging
import os.path as osp
import re

import numpy as np
import pytest
from mmaction.registry import DATASETS
from mmengine.dataset import BaseDataset

from mmaction_gblend.datasets.group_split import (check_group_spec,
                                                  choose_heldout_groups,
                                                  sample_groups)
from mmaction_gblend.datasets.heldout_split_configs import \
    heldout_split_config
from mmaction_gblend.datasets.stratified_split import stratified_heldout_split
from helpers import capture_log, rank_results, run_dist_worker

HERE = osp.dirname(osp.abspath(__file__))

UCF_GROUP = r'_g(\d+)_c'


def ucf_like(num_classes=6, num_groups=20, seed=0):
    """UCF-101-style paths ``v_C<c>_g<NN>_c<MM>.avi``: every group number
    in every class, 3-6 clips each."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for c in range(num_classes):
        for g in range(1, num_groups + 1):
            for k in range(int(rng.integers(3, 7))):
                paths.append(f'videos/v_C{c}_g{g:02d}_c{k + 1:02d}.avi')
                labels.append(c)
    return paths, labels


def groups_of(paths):
    return [re.search(UCF_GROUP, p).group(1) for p in paths]


def shares(labels, heldout):
    labels = np.asarray(labels)
    return {int(c): float(np.isin(np.flatnonzero(labels == c),
                                  heldout).mean())
            for c in np.unique(labels)}


# the pure split --------------------------------------------------------------


def test_whole_groups_go_to_v_and_the_probe_comes_from_training_groups():
    paths, labels = ucf_like()
    groups = np.asarray(groups_of(paths))
    train, heldout, probe = stratified_heldout_split(
        labels, 0.1, seed=3, groups=groups.tolist())
    assert len(heldout) and not set(groups[heldout]) & set(groups[train])
    assert np.array_equal(np.sort(np.concatenate([train, heldout])),
                          np.arange(len(labels)))
    assert set(probe) <= set(train)
    assert set(groups[probe]) <= set(groups[train])
    # every group number spans every class: 2 of 20 groups are the closest
    # to 10% of each class
    assert len(set(groups[heldout])) == 2


def test_class_shares_are_as_close_to_the_fraction_as_whole_groups_allow():
    """The greedy pass ends where no further group brings the classes'
    held-out shares closer to the fraction (adding a group only helps
    less as V grows, so this holds for every group left out)."""
    paths, labels = ucf_like(num_classes=8, num_groups=25, seed=1)
    names, codes = np.unique(groups_of(paths), return_inverse=True)
    keys = np.asarray(labels)
    fraction = 0.15
    chosen = choose_heldout_groups(codes, keys, fraction, seed=7)
    sizes = np.bincount(keys)

    def cost(mask):
        held = np.bincount(keys[mask[codes]], minlength=len(sizes))
        return (((held / sizes) - fraction)**2).sum()

    best = cost(chosen)
    assert best < cost(np.zeros_like(chosen))
    for g in np.flatnonzero(~chosen):
        more = chosen.copy()
        more[g] = True
        assert cost(more) >= best
    for share in shares(labels, np.flatnonzero(chosen[codes])).values():
        assert abs(share - fraction) < 0.1


def test_same_inputs_same_groups_another_seed_other_groups():
    paths, labels = ucf_like()
    groups = groups_of(paths)
    a = stratified_heldout_split(labels, 0.1, seed=0, groups=groups)
    b = stratified_heldout_split(labels, 0.1, seed=0, groups=groups)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    held = {
        tuple(sorted(set(np.asarray(groups)[
            stratified_heldout_split(labels, 0.1, seed=s, groups=groups)[1]])))
        for s in range(6)
    }
    assert len(held) > 1


def test_a_class_in_a_single_group_stays_in_training():
    # class 2 lives in group 'z' only; the others spread over a-e
    labels, groups = [], []
    for c in (0, 1):
        for g in 'abcde':
            labels += [c] * 4
            groups += [g] * 4
    labels += [2] * 6
    groups += ['z'] * 6
    train, heldout, _ = stratified_heldout_split(labels, 0.2, 0,
                                                 groups=groups)
    assert 'z' not in {groups[i] for i in heldout}
    assert {labels[i] for i in train} == {0, 1, 2}


def test_groups_larger_than_twice_the_target_hold_out_the_closest_one():
    labels = [0, 1] * 20
    groups = [f'g{i % 4}' for i in range(40)]  # 4 groups of 25% each
    _, heldout, _ = stratified_heldout_split(labels, 0.05, 0, groups=groups)
    assert len({groups[i] for i in heldout}) == 1


def test_a_class_with_all_its_samples_in_one_group_cannot_be_split():
    with pytest.raises(ValueError, match='no group can be held out'):
        stratified_heldout_split([0, 0, 1, 1], 0.5, 0,
                                 groups=['a', 'a', 'b', 'b'])


# the option -------------------------------------------------------------------


@pytest.mark.parametrize('group, error, match', [
    (r'_g\d+_c', ValueError, 'no capture group'),
    ('(', ValueError, 'invalid regular expression'),
    ('', ValueError, 'non-empty'),
    (dict(column='x'), ValueError, 'takes "key" and/or "regex"'),
    (dict(), ValueError, 'takes "key" and/or "regex"'),
    (dict(key=''), ValueError, 'key must be a non-empty string'),
    (3, TypeError, 'must be None, a regular expression'),
])
def test_bad_group_options_are_errors_naming_the_key(group, error, match):
    with pytest.raises(error, match=match) as info:
        check_group_spec(group, 'GradientBlendingHook.heldout_group')
    assert 'GradientBlendingHook.heldout_group' in str(info.value)


def test_a_pattern_that_matches_no_sample_names_an_example_path():
    spec = check_group_spec(r'actor(\d+)')
    infos = [dict(filename=f'videos/clip{i}.mp4') for i in range(3)]
    with pytest.raises(ValueError, match='matches no sample') as info:
        sample_groups(infos, spec)
    assert 'HeldOutSplitDataset.group' in str(info.value)
    assert 'videos/clip0.mp4' in str(info.value)


def test_a_sample_the_pattern_misses_is_named():
    spec = check_group_spec(UCF_GROUP)
    infos = [dict(filename='v_A_g01_c01.avi'), dict(filename='odd.avi'),
             dict(filename='v_A_g02_c01.avi')]
    with pytest.raises(ValueError, match=r"1 of 3 samples \(e.g. 'odd.avi'"):
        sample_groups(infos, spec)


def test_groups_from_an_annotation_field_with_or_without_a_pattern():
    infos = [dict(filename='a.mp4', speaker='spk-07'),
             dict(filename='b.mp4', speaker='spk-11')]
    assert sample_groups(infos, check_group_spec(dict(key='speaker'))) == \
        ['spk-07', 'spk-11']
    assert sample_groups(
        infos, check_group_spec(dict(key='speaker', regex=r'-(\d+)'))) == \
        ['07', '11']
    with pytest.raises(ValueError, match="no annotation field 'actor'"):
        sample_groups(infos, check_group_spec(dict(key='actor')))


# the dataset wrapper on real annotation files --------------------------------


def write_ucf_ann(root, paths, labels):
    (root / 'videos').mkdir(exist_ok=True)
    for p in paths:
        (root / p).write_bytes(b'not a video')
    (root / 'list.txt').write_text(''.join(
        f'{p} {label}\n' for p, label in zip(paths, labels)))


def group_split(root, part, **kwargs):
    return dict(
        type='HeldOutSplitDataset', part=part, fraction=0.1, seed=2,
        group=UCF_GROUP,
        dataset=dict(type='AudioVisualDataset', ann_file=str(root / 'list.txt'),
                     pipeline=[], data_prefix=dict(video=str(root))),
        **kwargs)


def test_the_wrapper_holds_out_whole_groups_and_logs_them(tmp_path):
    paths, labels = ucf_like()
    write_ucf_ann(tmp_path, paths, labels)
    built, messages = capture_log(
        lambda: {part: DATASETS.build(group_split(tmp_path, part))
                 for part in ('train', 'heldout', 'probe')}, logging.INFO)

    def groups(part):
        return set(groups_of(
            built[part].get_data_info(i)['filename']
            for i in range(len(built[part]))))

    assert groups('heldout') and not groups('heldout') & groups('train')
    assert groups('probe') <= groups('train')
    summary = built['heldout'].split_summary()
    assert summary['groups']['heldout'] == sorted(groups('heldout'))
    lines = [m for m in messages if 'HeldOutSplitDataset' in m]
    assert len(lines) == 3
    assert f'{len(groups("heldout"))} of 20 held out' in lines[0]
    assert "'_g(\\\\d+)_c' over the path" in lines[0]
    for c, counts in summary['per_class'].items():
        assert f'{c}: {counts["heldout"]}/' in lines[0]


class SpeakerDataset(BaseDataset):
    """An annotation with a ``speaker`` column (as a JSON file's)."""

    def load_data_list(self):
        return [dict(label=i % 3, speaker=f's{i % 9}') for i in range(90)]


def test_the_wrapper_reads_a_group_column(tmp_path):
    DATASETS.register_module(module=SpeakerDataset, force=True)
    split = DATASETS.build(dict(
        type='HeldOutSplitDataset', part='heldout', fraction=0.2, seed=0,
        group=dict(key='speaker'), dataset=dict(type='SpeakerDataset')))
    train = DATASETS.build(dict(
        type='HeldOutSplitDataset', part='train', fraction=0.2, seed=0,
        group=dict(key='speaker'), dataset=dict(type='SpeakerDataset')))
    held = {split.get_data_info(i)['speaker'] for i in range(len(split))}
    trained = {train.get_data_info(i)['speaker'] for i in range(len(train))}
    assert held and not held & trained


def test_the_config_builder_passes_the_group_and_refuses_two(tmp_path):
    inner = dict(type='AudioVisualDataset', ann_file='x.txt', pipeline=[])
    built = heldout_split_config(inner, 0.1, 0, exclude_heldout=False,
                                 group=UCF_GROUP)
    assert built['group'] == UCF_GROUP and built['part'] == 'all'
    split = dict(type='HeldOutSplitDataset', part='train', dataset=inner)
    with pytest.raises(ValueError, match='set the group in one place'):
        heldout_split_config(split, 0.1, 0, group=UCF_GROUP)
    kept = dict(split, group=UCF_GROUP)
    assert heldout_split_config(kept, 0.1, 0, group=UCF_GROUP) == kept
    with pytest.raises(ValueError, match=re.escape(f'group={UCF_GROUP!r}')):
        heldout_split_config(inner, 0.1, 0, group=UCF_GROUP)


def test_the_hook_checks_its_group_when_built():
    from mmaction_gblend.engine.hooks import GradientBlendingHook
    with pytest.raises(ValueError, match=re.escape(
            'custom_hooks[GradientBlendingHook].heldout_group')):
        GradientBlendingHook(heldout_group=r'_g\d+')


@pytest.mark.slow  # torchrun
def test_no_group_straddles_v_and_training_on_two_processes(tmp_path):
    paths, labels = ucf_like()
    write_ucf_ann(tmp_path, paths, labels)
    ranks = rank_results(run_dist_worker(
        osp.join(HERE, 'group_split_dist_worker.py'), tmp_path))
    for part in ('train', 'heldout', 'probe'):
        assert ranks[0][part]['indices'] == ranks[1][part]['indices']
        # each rank loads its share of the part, together all of it
        seen = ranks[0][part]['files'] + ranks[1][part]['files']
        assert set(seen) == {paths[i] for i in ranks[0][part]['indices']}
    groups = {part: set(groups_of(ranks[0][part]['files'] +
                                  ranks[1][part]['files']))
              for part in ('train', 'heldout', 'probe')}
    assert groups['heldout'] and not groups['heldout'] & groups['train']
    assert groups['probe'] <= groups['train']


@pytest.mark.slow  # Runners
def test_a_resumed_run_measures_on_the_same_groups(tmp_path):
    import mmaction_gblend.demo.toy_task as toy
    from helpers import (Interrupt, InterruptAfterEpoch, gblend_hook,
                         train_from_config)

    hook = dict(type='GradientBlendingHook', mode='online',
                estimator='trajectory', warmup_epochs=1, super_epochs=1,
                bootstrap=0, recalibrate_bn=0)

    def run(work_dir, resume=False, extra_hooks=()):
        cfg = toy.paradox_config(
            str(work_dir), gblend=dict(hook), heldout_fraction=0.25,
            heldout_group=dict(key='group'), num_train=80, num_eval=40,
            fingerprint_dim=32, group_size=4, max_epochs=3, batch_size=16)
        cfg['default_hooks'].update(
            checkpoint=dict(type='CheckpointHook', interval=1),
            epoch_seed=dict(type='EpochSeedHook'))
        cfg['experiment_name'] = f'{osp.basename(str(work_dir))}-{resume}'
        cfg['resume'] = resume
        return train_from_config(cfg, extra_hooks)

    def parts(runner):
        g = gblend_hook(runner)
        train = runner.train_dataloader.dataset
        groups = {
            name: {loader.dataset.get_data_info(i)['group']
                   for i in range(len(loader.dataset))}
            for name, loader in (('heldout', g.heldout_loader),
                                 ('probe', g.probe_loader),
                                 ('train', runner.train_dataloader))
        }
        return (train.indices.tolist(),
                g.heldout_loader.dataset.indices.tolist(), groups, g.history)

    whole = parts(run(tmp_path / 'whole'))
    with pytest.raises(Interrupt):
        run(tmp_path / 'cut', extra_hooks=[InterruptAfterEpoch(1)])
    resumed = parts(run(tmp_path / 'cut', resume=True))
    assert resumed == whole
    groups = whole[2]
    assert groups['heldout'] and not groups['heldout'] & groups['train']
    assert groups['probe'] <= groups['train']
