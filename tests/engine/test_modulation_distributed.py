"""OGM-GE and OPM on 2 processes (torchrun, gloo on CPU): the scores are
summed over processes, so every rank computes the same ratios, coefficients
and drop probabilities, and the GE noise is the same on every rank, so the
replicas stay identical."""
import os.path as osp

import pytest

from helpers import rank_results, run_dist_worker

pytestmark = pytest.mark.slow  # torchrun

HERE = osp.dirname(osp.abspath(__file__))


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    return rank_results(
        run_dist_worker(osp.join(HERE, 'modulation_dist_worker.py'),
                        tmp_path_factory.mktemp('modulation_dist')))


def test_every_step_has_the_same_coefficients_on_every_rank(ranks):
    assert ranks[0]['world_size'] == 2
    steps = [r['steps'] for r in ranks]
    # 200 training samples over 2 ranks, batch 16: 7 steps an epoch
    assert len(steps[0]) == len(steps[1]) == 14
    assert steps[0] == steps[1]
    assert any(k < 1 for step in steps[0] for k in step['k'])
    assert any(q > 0 for step in steps[0] for q in step['q'])
    assert ranks[0]['history'] == ranks[1]['history']


def test_replicas_stay_identical_with_ge_noise(ranks):
    assert ranks[0]['checksum'] == ranks[1]['checksum']


def test_scores_are_summed_over_processes(ranks):
    local = [r['local'] for r in ranks]
    assert local[0] != pytest.approx(local[1])  # different batches
    total = [a + b for a, b in zip(*local)]
    for r in ranks:
        assert r['reduced'] == pytest.approx(total, rel=1e-5)
