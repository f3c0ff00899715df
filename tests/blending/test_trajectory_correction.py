"""The trajectory estimator's correction, against a first-order model.

To first order, a head trained with loss weight w moves w times as far as
it would alone: its held-out loss falls by ``w * G*`` and its gap grows by
``w * O*``, where ``G*`` and ``O*`` are what the head's shadow copy (weight
1) would show. Measured on the main run, ``G / O**2`` is then
``(G* / O***2) / w``; dividing G and O by w recovers Algorithm 1's score.
"""
import pytest

from mmaction_gblend.blending import blend_statistics

#: Per unit weight: the paper's Kinetics weights as the true scores
#: G*/O*^2 (RGB, audio, fused = 0.630, 0.014, 0.356) with O* = 0.1.
TRUE_WEIGHTS = dict(rgb=0.630, audio=0.014, fused=0.356)
O_STAR = {h: 0.1 for h in TRUE_WEIGHTS}
G_STAR = {h: w * O_STAR[h]**2 for h, w in TRUE_WEIGHTS.items()}
BEFORE = {h: (1.0, 1.3) for h in TRUE_WEIGHTS}


def trajectory_measurement(weights):
    """``after`` of the main run trained one super-epoch with ``weights``
    under the first-order model."""
    after = {}
    for head, (train, heldout) in BEFORE.items():
        g, o = weights[head] * G_STAR[head], weights[head] * O_STAR[head]
        heldout_after = heldout - g
        # gap_after - gap_before = o
        train_after = heldout_after - (heldout - train) - o
        after[head] = (train_after, heldout_after)
    return after


def online(weights, corrected, estimates=6):
    trail = []
    for _ in range(estimates):
        after = trajectory_measurement(weights)
        weights = blend_statistics(
            BEFORE, after,
            response_scale=dict(weights) if corrected else None).weights
        trail.append(weights)
    return trail


def test_the_correction_recovers_the_shadow_weights_at_once():
    uniform = {h: 1 / 3 for h in TRUE_WEIGHTS}
    trail = online(uniform, corrected=True)
    for weights in trail:  # the first estimate, and a fixed point after
        assert weights == pytest.approx(TRUE_WEIGHTS, abs=1e-9)


def test_uncorrected_the_online_weights_oscillate():
    uniform = {h: 1 / 3 for h in TRUE_WEIGHTS}
    trail = online(uniform, corrected=False, estimates=6)
    # w <- score / w: from uniform weights the first estimate is right, the
    # next one divides it out again, and so on, never settling
    for i, weights in enumerate(trail):
        want = TRUE_WEIGHTS if i % 2 == 0 else uniform
        assert weights == pytest.approx(want, abs=1e-9)
    # from any other start it is off at once
    start = dict(rgb=0.5, audio=0.1, fused=0.4)
    first = online(start, corrected=False, estimates=1)[0]
    assert abs(first['audio'] - TRUE_WEIGHTS['audio']) > 0.01
    assert online(start, corrected=True, estimates=1)[0] == pytest.approx(
        TRUE_WEIGHTS, abs=1e-9)


def test_a_head_trained_with_weight_zero_gets_no_estimate():
    weights = dict(rgb=0.5, audio=0.0, fused=0.5)
    after = trajectory_measurement(weights)
    # the audio head did not move; it cannot be scored
    est = blend_statistics(BEFORE, after, response_scale=weights)
    assert est.weights['audio'] == 0
    assert 'weight 0' in est.stats['audio'].note
    assert est.weights['rgb'] == pytest.approx(
        0.630 / (0.630 + 0.356), abs=1e-9)


def test_response_scale_is_validated():
    after = trajectory_measurement({h: 1 / 3 for h in TRUE_WEIGHTS})
    with pytest.raises(ValueError, match='response_scale'):
        blend_statistics(BEFORE, after, response_scale=dict(rgb=1.0))
    with pytest.raises(ValueError, match='response_scale'):
        blend_statistics(BEFORE, after,
                         response_scale=dict(rgb=-1, audio=1, fused=1))
