"""Two ways to a G-Blend model trained on all the training data: replaying
a recorded weight schedule (``mode='replay'``) and returning the held-out
samples to training after the last estimate (``release_heldout``).

The Runner tests use a small paradox task (80 training samples in 10
classes, a quarter held out) whose samples carry their ``sample_idx``, so
what each epoch trained on can be counted.
"""
import copy
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmaction.registry import HOOKS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine.blend_schedule import HOOK_KEY
from mmaction_gblend.engine.heldout_release import (
    check_release_option, check_schedulers_for_release, shutdown_workers)
from mmaction_gblend.engine.weight_replay import (REPLAY_KEY, Change,
                                                  check_schedule_heads,
                                                  map_schedule,
                                                  read_replay_source,
                                                  weights_at)
from mmaction_gblend.utils.model_wrappers import unwrap
from helpers import (Interrupt, InterruptAfterEpoch, gblend_hook,
                     load_script, read_jsonl, train_from_config)

NUM_TRAIN = 80
ALL = list(range(NUM_TRAIN))
UNIFORM = dict(rgb=1 / 3, audio=1 / 3, fused=1 / 3)
A = dict(rgb=0.6, audio=0.1, fused=0.3)
B = dict(rgb=0.2, audio=0.2, fused=0.6)
C = dict(rgb=0.5, audio=0.25, fused=0.25)
ONLINE = dict(type='GradientBlendingHook', mode='online',
              estimator='trajectory', warmup_epochs=1, super_epochs=1,
              bootstrap=0, recalibrate_bn=0)
# the demo schedule's shape (configs/_base_/schedules/sgd_demo.py): a
# warm-up by iterations over epoch 0, an epoch-based cosine
DEMO_SCHEDULE = [
    dict(type='LinearLR', start_factor=0.2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=4, eta_min=0, by_epoch=True,
         begin=0, end=4)
]

# pure: reading, mapping and checking a schedule ---------------------------


def write_jsonl(path, entries):
    path.write_text(''.join(json.dumps(e) + '\n' for e in entries))
    return str(path)


def test_a_history_is_read_as_its_changes(tmp_path):
    entries = [
        dict(epoch=2, weights=A, heads={}, max_epochs=8,
             initial_weights=UNIFORM),
        dict(epoch=4, weights=B, max_epochs=8, initial_weights=UNIFORM),
        # the release of V is an event, not a change
        dict(epoch=4, event='release_heldout', weights=B, max_epochs=8),
    ]
    source = read_replay_source(write_jsonl(tmp_path / 'h.jsonl', entries))
    assert source.changes == [(2, A), (4, B)]
    assert source.max_epochs == 8
    assert source.initial_weights == UNIFORM
    # a list: no length or initial weights unless the entries say
    listed = read_replay_source([dict(epoch=0, weights=A)])
    assert listed.changes == [(0, A)]
    assert listed.max_epochs is None and listed.initial_weights is None
    assert listed.name == 'the list in the config'


def test_a_checkpoint_is_read_as_its_history(tmp_path):
    history = [dict(epoch=1, weights=A, max_epochs=3)]
    torch.save(dict(meta={}, gblend=dict(history=history, reference=None)),
               tmp_path / 'epoch_3.pth')
    source = read_replay_source(str(tmp_path / 'epoch_3.pth'))
    assert source.changes == [(1, A)] and source.max_epochs == 3
    torch.save(dict(meta={}), tmp_path / 'plain.pth')
    with pytest.raises(ValueError, match='not a checkpoint of a G-Blend'):
        read_replay_source(str(tmp_path / 'plain.pth'))
    (tmp_path / 'broken.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='cannot read .* as a checkpoint'):
        read_replay_source(str(tmp_path / 'broken.pth'))


@pytest.mark.parametrize('entries,match', [
    ([], 'has no weights to replay'),
    ([dict(weights=A)], r'entry 0 must be a dict\(epoch=\.\.\., weights'),
    (['epoch 1'], 'entry 0 must be a dict'),
    ([dict(epoch=-1, weights=A)], 'epoch must be an integer >= 0'),
    ([dict(epoch=1.5, weights=A)], 'epoch must be an integer >= 0'),
    ([dict(epoch=True, weights=A)], 'epoch must be an integer >= 0'),
    ([dict(epoch=2, weights=A), dict(epoch=2, weights=B)],
     'epochs must increase, got 2 after 2'),
    ([dict(epoch=3, weights=A), dict(epoch=1, weights=B)],
     'epochs must increase'),
    ([dict(epoch=1, weights=dict(rgb=0.5, audio=0.6, fused=0.1))],
     'entry 0 weights must sum to 1'),
    ([dict(epoch=1, weights=dict(rgb=-0.5, audio=1.0, fused=0.5))],
     'must be >= 0'),
    ([dict(epoch=1, weights=A), dict(epoch=2, weights=dict(rgb=1.0))],
     r'entry 1 weights must give one weight per head'),
    ([dict(epoch=1, weights=A, max_epochs=4),
      dict(epoch=2, weights=B, max_epochs=6)], 'disagree on max_epochs'),
    ([dict(epoch=1, weights=A, max_epochs=0)],
     'max_epochs must be a positive integer'),
    ([dict(epoch=1, weights=A, initial_weights=dict(rgb=1.0))],
     'initial_weights must give one weight per head'),
])
def test_bad_schedules_name_the_key(entries, match):
    with pytest.raises(ValueError, match=match) as err:
        read_replay_source(entries)
    assert REPLAY_KEY in str(err.value)


def test_bad_files_name_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match='no file'):
        read_replay_source(str(tmp_path / 'missing.jsonl'))
    bad = tmp_path / 'bad.jsonl'
    bad.write_text(json.dumps(dict(epoch=1, weights=A)) + '\n{oops\n')
    with pytest.raises(ValueError, match='not a G-Blend history .*line 2'):
        read_replay_source(str(bad))
    binary = tmp_path / 'binary.jsonl'
    binary.write_bytes(b'\xff\xfe\x00')
    with pytest.raises(ValueError, match=r'custom_hooks\[Gradient'):
        read_replay_source(str(binary))
    with pytest.raises(ValueError, match='must be a path'):
        read_replay_source(42)


def test_the_schedule_maps_onto_a_run_of_another_length():
    source = read_replay_source([
        dict(epoch=e, weights=w, max_epochs=8)
        for e, w in ((2, A), (3, B), (5, C), (7, A))])
    # 2, 3, 5, 7 of 8 -> of 4: 1, 1.5 -> 2 (half up), 2.5 -> 3, 3.5 -> 4
    changes, dropped = map_schedule(source, 4)
    assert changes == [Change(1, 2, A), Change(2, 3, B), Change(3, 5, C)]
    assert dropped == [7]  # at the end of the run: never applies
    # of 16: twice the epochs
    assert [c.epoch for c in map_schedule(source, 16)[0]] == [4, 6, 10, 14]
    # of 2: 0.5 -> 1, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2: the last on an
    # epoch wins
    changes, dropped = map_schedule(source, 2)
    assert changes == [Change(1, 5, C)] and dropped == [2, 3, 7]
    # 'same' keeps the numbers, drops what lies past the end
    changes, dropped = map_schedule(source, 6, 'same')
    assert [c.epoch for c in changes] == [2, 3, 5] and dropped == [7]


def test_scaling_needs_the_source_length():
    source = read_replay_source([dict(epoch=1, weights=A)])
    with pytest.raises(ValueError, match="replay_epochs='scale' .*max_epochs"
                       ".*replay_epochs='same'"):
        map_schedule(source, 4)
    assert map_schedule(source, 4, 'same')[0] == [Change(1, 1, A)]
    with pytest.raises(ValueError, match='replay_epochs must be one of'):
        map_schedule(source, 4, 'stretch')


def test_weights_at_each_epoch():
    changes = [Change(1, 2, A), Change(3, 5, B)]
    assert weights_at(changes, 0, C) == (C, None)
    assert weights_at(changes, 1, C) == (A, changes[0])
    assert weights_at(changes, 2, C) == (A, changes[0])
    assert weights_at(changes, 7, C) == (B, changes[1])


def test_the_schedule_is_checked_against_the_model_heads():
    heads = ['rgb', 'audio', 'fused']
    check_schedule_heads([Change(1, 1, A)], C, heads)
    flow = dict(rgb=0.5, flow=0.2, fused=0.3)
    with pytest.raises(ValueError, match='source epoch 4 must give one '
                       r"weight per head \['rgb', 'audio', 'fused'\]"):
        check_schedule_heads([Change(1, 1, A), Change(2, 4, flow)], C,
                             heads)
    with pytest.raises(ValueError, match='the initial weights must give'):
        check_schedule_heads([Change(1, 1, A)], flow, heads)


@pytest.mark.parametrize('kwargs,match', [
    (dict(mode='replay'), "mode='replay' needs .*replay"),
    (dict(mode='online', replay=[dict(epoch=1, weights=A)]),
     "replay is for mode='replay'"),
    (dict(mode='replay', replay=[dict(epoch=1, weights=A)],
          replay_epochs='stretch'), 'replay_epochs must be one of'),
    (dict(mode='replay', replay=[dict(epoch=1, weights=dict(rgb=2.0))]),
     'weights must sum to 1'),
    (dict(mode='fixed', weights=A, release_heldout=True),
     "release_heldout is for mode='online' or 'offline'"),
    (dict(mode='replay', replay=[dict(epoch=1, weights=A)],
          release_heldout=True), 'release_heldout is for'),
    (dict(mode='online', exclude_heldout=False, release_heldout=True),
     'needs exclude_heldout=True'),
])
def test_bad_hook_options(kwargs, match):
    toy.MODELS  # the toy task's modules are registered
    with pytest.raises(ValueError, match=match) as err:
        HOOKS.build(dict(type='GradientBlendingHook', **kwargs))
    assert HOOK_KEY in str(err.value)


def test_release_option_alone():
    check_release_option(False, 'fixed', False)  # off: anything goes
    check_release_option(True, 'offline', None)  # the hook's default


def test_iteration_schedulers_running_past_the_release_are_refused():

    def scheduler(by_epoch, end):
        return SimpleNamespace(by_epoch=by_epoch, end=end)

    # a warm-up over epoch 0 (4 iterations an epoch) and any epoch-based
    schedulers = [scheduler(False, 4), scheduler(True, 100)]
    check_schedulers_for_release(schedulers, 1, 4)
    late = schedulers + [scheduler(False, 9)]
    with pytest.raises(ValueError, match=r'param_scheduler .* epoch 2 '
                       r'\(iteration 8\): SimpleNamespace\(end=iteration 9'):
        check_schedulers_for_release(late, 2, 4)
    with pytest.raises(ValueError, match='no end'):
        check_schedulers_for_release([scheduler(False, int(1e9))], 5, 4)
    # at epoch 0 the schedulers are rebuilt: anything goes
    check_schedulers_for_release(late, 0, 4)
    check_schedulers_for_release(None, 2, 4)


def test_the_plot_tool_draws_replayed_and_released_entries():
    tool = load_script('tools/analysis/plot_blend_weights.py')
    entries = [
        dict(epoch=1, weights=A, heads={h: dict(weight=w, OGR=0.5)
                                        for h, w in A.items()}),
        dict(epoch=1, event='release_heldout', weights=A),
        dict(epoch=3, mode='replay', weights=B),
    ]
    assert tool.series(entries, 'weight')['audio'] == [(1, .1), (1, .1),
                                                        (3, .2)]
    assert tool.series(entries, 'OGR')['rgb'] == [(1, .5), (1, None),
                                                  (3, None)]


# with Runners ---------------------------------------------------------------


class Recorder(Hook):
    """Per epoch: the model's blend weights and the samples trained on."""
    priority = 'LOWEST'  # after every hook's before_train_epoch

    def __init__(self):
        self.weights = {}
        self.samples = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx == 0:
            self.weights[runner.epoch] = unwrap(
                runner.model).get_blend_weights()
        self.samples.setdefault(runner.epoch, []).extend(
            int(s.metainfo['sample_idx']) for s in data_batch['data_samples'])


def paradox_run(work_dir, hook, max_epochs=4, split=True, resume=False,
                load_from=None, extra_hooks=(), param_scheduler=None):
    """Train the small paradox task; the runner and its recorder."""
    cfg = toy.paradox_config(
        str(work_dir), gblend=copy.deepcopy(hook) if split else None,
        heldout_fraction=0.25, num_train=NUM_TRAIN, num_eval=40,
        fingerprint_dim=32, max_epochs=max_epochs, batch_size=16)
    if not split:
        cfg['custom_hooks'] = [copy.deepcopy(hook)]
    cfg['default_hooks'].update(
        checkpoint=dict(type='CheckpointHook', interval=1),
        # a resumed run draws the training noise an uninterrupted one does
        epoch_seed=dict(type='EpochSeedHook'))
    if param_scheduler is not None:
        cfg['param_scheduler'] = param_scheduler
    cfg['log_level'] = 'INFO'  # G-Blend's log lines
    cfg['experiment_name'] = f'{osp.basename(str(work_dir))}-{resume}-' \
        f'{osp.basename(str(load_from))}'
    cfg['resume'] = resume
    cfg['load_from'] = load_from
    recorder = Recorder()
    return train_from_config(cfg, [recorder, *extra_hooks]), recorder


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def scheduled(history, epoch, initial):
    """The weights a history says trained ``epoch``."""
    return weights_at([Change(e['epoch'], e['epoch'], e['weights'])
                       for e in history if 'event' not in e], epoch,
                      initial)[0]


def assert_weights(got, want):
    assert set(got) == set(want)
    for head in want:
        assert got[head] == pytest.approx(want[head], abs=1e-6), head


@pytest.mark.slow
def test_replay_of_an_online_run_from_its_history_and_checkpoint(tmp_path):
    source, _ = paradox_run(tmp_path / 'online', ONLINE)
    history = gblend_hook(source).history
    assert [e['epoch'] for e in history] == [1, 2, 3]
    for entry in history:  # what a replay needs, in every entry
        assert entry['max_epochs'] == 4
        assert entry['initial_weights'] == pytest.approx(UNIFORM)
    replay = dict(type='GradientBlendingHook', mode='replay',
                  replay=str(tmp_path / 'online' / 'gblend_history.jsonl'),
                  # ignored in mode 'replay'
                  estimator='shadow', warmup_epochs=2)
    runner, recorder = paradox_run(tmp_path / 'replay', replay, split=False)
    for epoch in range(4):
        assert_weights(recorder.weights[epoch],
                       scheduled(history, epoch, UNIFORM))
        # the whole training set, each sample once an epoch
        assert sorted(recorder.samples[epoch]) == ALL
    replayed = read_jsonl(tmp_path / 'replay' / 'gblend_history.jsonl')
    assert replayed == gblend_hook(runner).history
    assert [(e['epoch'], e['source_epoch'], e['mode']) for e in replayed] == \
        [(1, 1, 'replay'), (2, 2, 'replay'), (3, 3, 'replay')]
    for got, want in zip(replayed, history):
        assert got['weights'] == want['weights']
        assert got['source'] == replay['replay']
    assert 'G-Blend: replayed weights from epoch 1 (source epoch 1)' in \
        log_text(runner)

    # from the checkpoint, in a run of half the length: source epochs
    # 1, 2, 3 of 4 -> 1 (0.5 half up), 1, 2 (the end): the last on
    # epoch 1 wins
    checkpoint = dict(replay, replay=str(tmp_path / 'online' / 'epoch_4.pth'))
    runner, recorder = paradox_run(tmp_path / 'from_pth', checkpoint,
                                   max_epochs=2, split=False)
    assert_weights(recorder.weights[0], UNIFORM)
    assert_weights(recorder.weights[1], history[1]['weights'])
    assert [(e['epoch'], e['source_epoch'])
            for e in gblend_hook(runner).history] == [(1, 2)]
    assert 'source epochs [1, 3] dropped' in log_text(runner)


@pytest.mark.slow
def test_a_resumed_replay_sets_the_same_weights(tmp_path):
    hook = dict(type='GradientBlendingHook', mode='replay', weights=C,
                replay=[dict(epoch=1, weights=A), dict(epoch=3, weights=B)],
                replay_epochs='same')
    # on the training part of a split: trains, with a warning
    whole, recorder = paradox_run(tmp_path / 'whole', hook)
    assert "HeldOutSplitDataset with part='train': the replay trains on " \
        'that part only (60 samples)' in log_text(whole)
    expected = {0: C, 1: A, 2: A, 3: B}
    for epoch, weights in expected.items():
        assert_weights(recorder.weights[epoch], weights)
        assert len(recorder.samples[epoch]) == 60
    work = tmp_path / 'cut'
    with pytest.raises(Interrupt):
        paradox_run(work, hook, extra_hooks=[InterruptAfterEpoch(2)])
    resumed, recorder = paradox_run(work, hook, resume=True)
    assert sorted(recorder.weights) == [2, 3]
    for epoch in (2, 3):
        assert_weights(recorder.weights[epoch], expected[epoch])
    history = read_jsonl(work / 'gblend_history.jsonl')
    assert history == gblend_hook(resumed).history == \
        gblend_hook(whole).history
    assert [(e['epoch'], e['weights']) for e in history] == [(1, A), (3, B)]
    assert all(e['initial_weights'] == C and e['max_epochs'] == 4
               for e in history)


@pytest.mark.slow
def test_a_bad_replay_source_fails_when_the_config_is_built(tmp_path):
    cfg = toy.paradox_config(str(tmp_path), num_train=NUM_TRAIN,
                             num_eval=40, fingerprint_dim=32, max_epochs=1)
    cfg['custom_hooks'] = [dict(type='GradientBlendingHook', mode='replay',
                                replay=str(tmp_path / 'nowhere.jsonl'))]
    with pytest.raises(FileNotFoundError, match=r'custom_hooks\['
                       r'GradientBlendingHook\]\.replay: no file'):
        Runner.from_cfg(Config(cfg))
    cfg['custom_hooks'][0]['replay'] = [dict(epoch=1, weights=A),
                                        dict(epoch=1, weights=B)]
    with pytest.raises(ValueError, match='epochs must increase'):
        Runner.from_cfg(Config(cfg))
    # heads the model does not have: before training
    cfg['custom_hooks'][0]['replay'] = [
        dict(epoch=0, weights=dict(rgb=0.5, flow=0.2, fused=0.3))]
    cfg['custom_hooks'][0]['replay_epochs'] = 'same'
    cfg['experiment_name'] = 'flow'
    with pytest.raises(ValueError, match='one weight per head'):
        Runner.from_cfg(Config(cfg)).train()


@pytest.mark.slow
def test_release_trains_on_the_heldout_samples_after_the_last_estimate(
        tmp_path):
    # offline trajectory: one estimate, after 2 epochs; the demo schedule's
    # warm-up ends at epoch 1, before the release
    hook = dict(ONLINE, mode='offline', warmup_epochs=2, release_heldout=True)
    runner, recorder = paradox_run(tmp_path / 'release', hook,
                                   param_scheduler=DEMO_SCHEDULE)
    gblend = gblend_hook(runner)
    heldout = set(gblend.heldout_loader.dataset.indices.tolist())
    part = sorted(set(ALL) - heldout)
    assert len(heldout) == 20
    for epoch in range(4):
        assert sorted(recorder.samples[epoch]) == (part if epoch < 2 else ALL)
    history = read_jsonl(tmp_path / 'release' / 'gblend_history.jsonl')
    assert history == gblend.history
    assert [(e['epoch'], e.get('event')) for e in history] == \
        [(2, None), (2, 'release_heldout')]
    release = history[1]
    assert (release['samples_before'], release['samples_after']) == (60, 80)
    assert release['weights'] == pytest.approx(history[0]['weights'])
    assert 'G-Blend: the 20 held-out samples join training from epoch 2: ' \
        '60 -> 80 samples' in log_text(runner)
    # 2 epochs of 4 batches, 2 of 5
    assert runner.iter == runner.train_loop.max_iters == 18
    # a replay of this run skips the release
    assert read_replay_source(
        str(tmp_path / 'release' / 'gblend_history.jsonl')).changes == \
        [(2, history[0]['weights'])]

    # resumed before the release and after it: the same samples, in the
    # same order, and one release in the history
    for checkpoint, first in (('epoch_1.pth', 1), ('epoch_3.pth', 3)):
        resumed, again = paradox_run(
            tmp_path / f'from_{first}', hook, resume=True,
            load_from=str(tmp_path / 'release' / checkpoint),
            param_scheduler=DEMO_SCHEDULE)
        assert sorted(again.samples) == list(range(first, 4))
        for epoch in range(first, 4):
            assert again.samples[epoch] == recorder.samples[epoch]
        again_history = gblend_hook(resumed).history
        assert [(e['epoch'], e.get('event')) for e in again_history] == \
            [(2, None), (2, 'release_heldout')]
        for got, want in zip(again_history, history):
            assert_weights(got['weights'], want['weights'])
        assert resumed.iter == resumed.train_loop.max_iters == 18
        if first == 3:
            assert 'resumed after the release of the held-out samples: ' \
                'training on all 80 samples' in log_text(resumed)


@pytest.mark.slow
def test_release_at_epoch_0_rebuilds_iteration_schedulers(tmp_path):
    # offline shadow estimate before epoch 0: V joins right after it, and
    # the warm-up by iterations is counted in the whole set's epochs
    hook = dict(ONLINE, mode='offline', estimator='shadow',
                release_heldout=True)
    lrs = []
    runner, recorder = paradox_run(
        tmp_path / 'shadow', hook, max_epochs=2,
        param_scheduler=DEMO_SCHEDULE, extra_hooks=[LearningRates(lrs)])
    assert [sorted(recorder.samples[e]) for e in (0, 1)] == [ALL, ALL]
    history = gblend_hook(runner).history
    assert [(e['epoch'], e.get('event')) for e in history] == \
        [(0, None), (0, 'release_heldout')]
    warmup = runner.param_schedulers[0]
    assert (warmup.by_epoch, warmup.end) == (False, 5)  # 80 / 16
    # from 0.2 of the peak to the peak over epoch 0's 5 iterations
    assert lrs[:5] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])


class LearningRates(Hook):
    priority = 'LOWEST'

    def __init__(self, lrs):
        self.lrs = lrs

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


@pytest.mark.slow
def test_release_refuses_iteration_schedulers_it_would_cut_short(tmp_path):
    # online: the last estimate at epoch 3, but the warm-up runs to epoch 4
    hook = dict(ONLINE, release_heldout=True)
    schedule = [dict(DEMO_SCHEDULE[0], end=4)]
    with pytest.raises(ValueError, match=r'release_heldout: param_scheduler'
                       r' .* epoch 3 \(iteration 12\): LinearLR\(end='
                       r'iteration 16\)'):
        paradox_run(tmp_path / 'refused', hook, param_scheduler=schedule)


@pytest.mark.slow
def test_shutdown_workers_stops_persistent_workers():
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=4,
                                         num_workers=1,
                                         persistent_workers=True)
    assert [len(b) for b in loader] == [4, 4]
    workers = loader._iterator._workers
    assert all(w.is_alive() for w in workers)
    shutdown_workers(loader)
    assert loader._iterator is None
    assert not any(w.is_alive() for w in workers)
    assert [len(b) for b in loader] == [4, 4]  # new workers if used again
    shutdown_workers(loader)
    shutdown_workers(torch.utils.data.DataLoader([1]))  # none: a no-op
