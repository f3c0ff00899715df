"""G-Blend on 2 processes (torchrun, gloo on CPU): identical on every rank,
and the measurements equal a single process's on the same model and data."""
import json
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.runner import Runner, load_checkpoint

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import measure_heads
from helpers import rank_results, run_dist_worker

pytestmark = pytest.mark.slow  # torchrun

HERE = osp.dirname(osp.abspath(__file__))


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    return run_dist_worker(osp.join(HERE, 'gblend_dist_worker.py'),
                           tmp_path_factory.mktemp('dist'))


@pytest.mark.parametrize('estimator', ['trajectory', 'shadow'])
def test_every_rank_ends_with_the_same_weights(two_ranks, estimator):
    ranks = rank_results(two_ranks, f'{estimator}_')
    assert ranks[0]['world_size'] == 2
    assert len(ranks[0]['history']) == (2 if estimator == 'trajectory'
                                        else 3)
    assert ranks[0]['history'] == ranks[1]['history']
    assert ranks[0]['weights'] == ranks[1]['weights']
    assert ranks[0]['checksum'] == ranks[1]['checksum']
    assert ranks[0]['measures'] == ranks[1]['measures']
    # only rank 0 writes the history file, once per estimate
    lines = open(two_ranks / estimator / 'gblend_history.jsonl').readlines()
    assert [json.loads(line) for line in lines] == ranks[0]['history']


def test_measurements_equal_a_single_process(two_ranks):
    """The sums and counts are all-reduced: 2 ranks = 1 process."""
    rank0 = rank_results(two_ranks, 'trajectory_')[0]
    cfg = toy.toy_config('unused', gblend=dict(type='GradientBlendingHook'))
    model = MODELS.build(cfg['model'])
    load_checkpoint(model, str(two_ranks / 'trajectory' / 'epoch_3.pth'),
                    map_location='cpu')
    heldout = dict(cfg['train_dataloader']['dataset'], part='heldout')
    loader = Runner.build_dataloader(
        dict(cfg['val_dataloader'], dataset=heldout,
             sampler=dict(type='DefaultSampler', shuffle=False,
                          round_up=False)), seed=0)
    single = measure_heads(model, loader)
    for head, (loss, accuracy, count, loss_se, *_) in \
            rank0['measures'].items():
        assert single[head].count == count
        assert single[head].loss == pytest.approx(loss, rel=1e-6)
        assert single[head].loss_se == pytest.approx(loss_se, rel=1e-5)
        assert single[head].accuracy == pytest.approx(accuracy)
    assert model.get_blend_weights() == pytest.approx(rank0['weights'])
    assert torch.isfinite(model.blend_weights).all()
