"""Per-sample measurement of :func:`measure_heads` / :func:`measure_models`:
every head's per-sample losses and correctness, in dataset order, for the
paired standard errors of G and O."""
import copy
import math
import threading

import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import (heldout_evaluation, measure_heads,
                                    measure_models)

NUM_SAMPLES = 24


def toy_model_and_loader_cfg():
    # a module-scoped fixture runs before conftest's per-test scope
    init_default_scope('mmaction')
    cfg = toy.toy_config('unused', num_samples=2 * NUM_SAMPLES)
    model = MODELS.build(cfg['model'])
    model.init_weights()
    loader_cfg = dict(
        cfg['val_dataloader'],
        batch_size=5,
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False))
    return model, loader_cfg


def build(loader_cfg, **changes):
    return Runner.build_dataloader(dict(loader_cfg, **changes), seed=0)


@pytest.fixture(scope='module')
def toy_setup():
    model, loader_cfg = toy_model_and_loader_cfg()
    return model, loader_cfg, measure_heads(model, build(loader_cfg))


def by_hand(model, dataset):
    """Each sample on its own, in dataset order: {head: (losses, hits)}."""
    model.eval()
    out = {h: ([], []) for h in model.head_names}
    with torch.no_grad():
        for i in range(len(dataset)):
            data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
            label = torch.tensor([int(dataset[i]['data_samples'].gt_label)])
            logits = model(**data, mode='tensor')
            for head in model.head_names:
                out[head][0].append(
                    F.cross_entropy(logits[head], label).item())
                out[head][1].append(
                    float(logits[head].argmax(1).item() == label.item()))
    return out


def test_per_sample_values_equal_a_hand_loop_in_dataset_order(toy_setup):
    model, loader_cfg, measures = toy_setup
    dataset = build(loader_cfg).dataset
    hand = by_hand(model, dataset)
    assert set(measures) == set(model.head_names)
    for head, m in measures.items():
        assert isinstance(m.losses, tuple) and isinstance(m.correct, tuple)
        assert len(m.losses) == len(m.correct) == len(dataset) == m.count
        assert m.losses == pytest.approx(hand[head][0], rel=1e-5)
        assert m.correct == tuple(hand[head][1])
        # the summary fields are the per-sample values' mean
        assert math.fsum(m.losses) / m.count == pytest.approx(
            m.loss, rel=1e-12)
        assert sum(m.correct) / m.count == pytest.approx(m.accuracy)
        assert set(m.correct) <= {0.0, 1.0}


def test_a_shuffled_loader_gives_the_same_dataset_order(toy_setup):
    model, loader_cfg, measures = toy_setup
    shuffled = build(
        loader_cfg,
        batch_size=7,
        sampler=dict(
            type='DefaultSampler', shuffle=True, seed=3, round_up=False))
    assert list(iter(shuffled.sampler)) != list(range(NUM_SAMPLES))
    again = measure_heads(model, shuffled)
    for head, m in measures.items():
        assert again[head].losses == pytest.approx(m.losses, rel=1e-5)
        assert again[head].correct == m.correct
        assert again[head].loss == pytest.approx(m.loss, rel=1e-6)


def test_shards_of_two_processes_give_the_whole_dataset_on_each(
        toy_setup, monkeypatch):
    """Two ranks simulated by two threads (a summing all_reduce between
    them): each measures its shard and both end with the single-process
    per-sample values, in dataset order."""
    model, loader_cfg, measures = toy_setup
    barrier = threading.Barrier(2)
    slots = [None, None]
    lock = threading.Lock()
    rank_of = {}

    def fake_all_reduce(tensor, op='sum'):
        rank = rank_of[threading.get_ident()]
        with lock:
            slots[rank] = tensor.clone()
        barrier.wait()
        total = slots[0] + slots[1]
        barrier.wait()
        tensor.copy_(total)

    monkeypatch.setattr(heldout_evaluation, 'all_reduce', fake_all_reduce)
    monkeypatch.setattr(heldout_evaluation, 'get_world_size', lambda: 2)
    results = [None, None]
    errors = []

    def worker(rank):
        rank_of[threading.get_ident()] = rank
        try:
            loader = build(loader_cfg)
            sampler = DefaultSampler(
                loader.dataset, shuffle=False, round_up=False)
            sampler.rank, sampler.world_size = rank, 2
            sampler.num_samples = math.ceil((NUM_SAMPLES - rank) / 2)
            shard = torch.utils.data.DataLoader(
                loader.dataset,
                batch_size=5,
                sampler=sampler,
                collate_fn=loader.collate_fn)
            assert list(iter(shard.sampler))[:2] == [rank, rank + 2]
            results[rank] = measure_heads(copy.deepcopy(model), shard)
        except BaseException as e:  # reported in the main thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(r, )) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert results[0] == results[1]
    for head, m in measures.items():
        assert results[0][head].count == m.count
        assert results[0][head].losses == pytest.approx(m.losses, rel=1e-5)
        assert results[0][head].correct == m.correct


def test_several_models_in_one_pass_keep_their_own_per_sample_values(
        toy_setup):
    model, loader_cfg, measures = toy_setup
    other = copy.deepcopy(model)
    torch.nn.init.normal_(other.heads['audio'].fc_cls.weight)
    together = measure_models({
        'a': (model, None),
        'b': (other, ['audio'])
    }, build(loader_cfg))
    assert together['a'] == measures
    alone = measure_heads(other, build(loader_cfg), heads=['audio'])
    assert together['b'] == alone
    assert together['b']['audio'].losses != measures['audio'].losses


def test_a_plain_iterable_of_batches_is_in_iteration_order(toy_setup):
    model, loader_cfg, measures = toy_setup
    batches = list(build(loader_cfg))
    plain = measure_heads(model, batches)
    for head, m in measures.items():
        assert plain[head].losses == pytest.approx(m.losses, rel=1e-5)


@pytest.mark.parametrize(
    'changes,match',
    [
        # T' or V measured in part: a subset of the indices
        (dict(sampler=list(range(NUM_SAMPLES - 3))), r'3 never'),
        # a sample twice
        (dict(sampler=[0] + list(range(NUM_SAMPLES))), r'1 more than once'),
        # a dropped last batch: the loader gives fewer samples than its sampler
        (dict(drop_last=True), 'different number of samples'),
    ])
def test_a_loader_that_misses_or_repeats_samples_is_refused(
        toy_setup, changes, match):
    model, loader_cfg, _ = toy_setup
    dataset = build(loader_cfg).dataset
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=5,
        collate_fn=build(loader_cfg).collate_fn,
        **changes)
    with pytest.raises(ValueError, match=match):
        measure_heads(model, loader)
