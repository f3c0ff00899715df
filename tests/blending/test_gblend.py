"""Tests of the pure G-Blend weight math (:mod:`mmaction_gblend.blending`).

Hand-computed cases use dyadic numbers (sums of powers of two), so G and O
are exact in floating point; the weights go through log/exp and are compared
to 1e-12 relative.
"""
import copy
import doctest
import math
import sys
from types import MappingProxyType

import numpy as np
import pytest

from mmaction_gblend.blending import (BlendEstimate, HeadBlendStats,
                                      blend_statistics, estimate_blend_weights)
from mmaction_gblend.blending import gblend as gblend_module
from helpers import import_file_alone

REL = 1e-12

# rgb:   gap 1.25-1.00=0.25 -> 1.00-0.50=0.50; G=1.25-1.00=0.25, O=0.25
#        score = 0.25/0.25**2 = 4, OGR = 1
# audio: gap 1.50-1.00=0.50 -> 1.25-0.25=1.00; G=1.50-1.25=0.25, O=0.50
#        score = 0.25/0.50**2 = 1, OGR = 2
# fused: gap 1.50-1.00=0.50 -> 1.3125-0.5625=0.75; G=1.5-1.3125=0.1875,
#        O=0.25, score = 0.1875/0.0625 = 3, OGR = 0.25/0.1875 = 4/3
BEFORE3 = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5), 'fused': (1.0, 1.5)}
AFTER3 = {'rgb': (0.5, 1.0), 'audio': (0.25, 1.25), 'fused': (0.5625, 1.3125)}


def check_valid(weights, keys):
    assert list(weights) == list(keys)
    values = list(weights.values())
    assert all(isinstance(w, float) for w in values)
    assert all(math.isfinite(w) and w >= 0 for w in values), weights
    assert math.fsum(values) == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------
def test_two_heads_by_hand():
    before = {'rgb': BEFORE3['rgb'], 'audio': BEFORE3['audio']}
    after = {'rgb': AFTER3['rgb'], 'audio': AFTER3['audio']}
    est = blend_statistics(before, after)
    assert isinstance(est, BlendEstimate)
    # Z = 4 + 1 = 5 -> rgb 4/5, audio 1/5
    assert est.weights == pytest.approx({'rgb': 0.8, 'audio': 0.2}, rel=REL)
    assert est.fallback is None
    rgb, audio = est.stats['rgb'], est.stats['audio']
    assert isinstance(rgb, HeadBlendStats)
    assert (rgb.train_before, rgb.heldout_before, rgb.train_after,
            rgb.heldout_after) == (1.0, 1.25, 0.5, 1.0)
    assert (rgb.generalization, rgb.overfitting, rgb.ogr) == (0.25, 0.25, 1.)
    assert (audio.generalization, audio.overfitting, audio.ogr) == \
        (0.25, 0.5, 2.0)
    assert rgb.score == pytest.approx(4.0, rel=REL)
    assert audio.score == pytest.approx(1.0, rel=REL)
    assert rgb.weight == est.weights['rgb']
    assert audio.weight == est.weights['audio']
    assert rgb.note == audio.note == ''


def test_three_heads_by_hand():
    est = blend_statistics(BEFORE3, AFTER3)
    # Z = 4 + 1 + 3 = 8 (no factor 2: the paper's erratum)
    expected = {'rgb': 4 / 8, 'audio': 1 / 8, 'fused': 3 / 8}
    assert est.weights == pytest.approx(expected, rel=REL)
    assert sum(est.weights.values()) == pytest.approx(1.0, abs=1e-12)
    fused = est.stats['fused']
    assert fused.generalization == 0.1875
    assert fused.overfitting == 0.25
    assert fused.ogr == pytest.approx(4 / 3, rel=REL)
    assert fused.score == pytest.approx(3.0, rel=REL)
    assert estimate_blend_weights(BEFORE3, AFTER3) == est.weights


def test_floats_not_dyadic():
    # rgb:   gap 0.2 -> 0.4: O = 0.2; G = 1.2 - 1.0 = 0.2; score 0.2/0.04 = 5
    # audio: gap 0.3 -> 0.7: O = 0.4; G = 1.1 - 1.0 = 0.1; score 0.1/0.16
    #        = 0.625;  Z = 5.625 -> rgb 8/9, audio 1/9
    before = {'rgb': (1.0, 1.2), 'audio': (0.8, 1.1)}
    after = {'rgb': (0.6, 1.0), 'audio': (0.3, 1.0)}
    w = estimate_blend_weights(before, after)
    assert w == pytest.approx({'rgb': 8 / 9, 'audio': 1 / 9}, rel=1e-9)


def test_negative_overfitting_enters_squared():
    # gap shrinks 0.5 -> 0.25: O = -0.25, same score as O = +0.25
    before = {'a': (1.0, 1.5), 'b': (1.0, 1.25)}
    after = {'a': (1.0, 1.25), 'b': (0.5, 1.0)}
    est = blend_statistics(before, after)
    assert est.stats['a'].overfitting == -0.25
    assert est.stats['b'].overfitting == 0.25
    assert est.stats['a'].ogr == 1.0
    assert est.weights == pytest.approx({'a': 0.5, 'b': 0.5}, rel=REL)


def test_single_head_gets_everything():
    est = blend_statistics({'fused': (1.0, 1.25)}, {'fused': (0.5, 1.0)})
    assert est.weights == {'fused': 1.0}
    assert est.fallback is None


# --------------------------------------------------------------------------
# the paper's qualitative claim
# --------------------------------------------------------------------------
def test_overfitting_audio_gets_low_weight():
    before = {'rgb': (2.0, 2.1), 'audio': (2.0, 2.1), 'fused': (2.0, 2.1)}
    after = {
        # little held-out gain, train loss collapses: G=0.05, O=1.45
        'audio': (0.5, 2.05),
        # held-out improves, gap grows slowly: G=0.45, O=0.05
        'rgb': (1.5, 1.65),
        # in between: G=0.3, gap 0.1 -> 0.3: O=0.2
        'fused': (1.5, 1.8),
    }
    est = blend_statistics(before, after)
    w = est.weights
    assert w['audio'] < 0.01
    assert w['rgb'] > 0.9
    assert w['rgb'] > w['fused'] > w['audio']
    assert est.stats['audio'].ogr > est.stats['fused'].ogr > \
        est.stats['rgb'].ogr
    # rgb: 0.45/0.05**2 = 180, fused: 0.3/0.2**2 = 7.5, audio: 0.05/1.45**2
    z = 180 + 7.5 + 0.05 / 1.45**2
    assert w['rgb'] == pytest.approx(180 / z, rel=1e-9)


# --------------------------------------------------------------------------
# accuracy mode
# --------------------------------------------------------------------------
def test_accuracy_mode_equals_loss_mode_on_mirrored_numbers():
    acc_before = {k: (1 - t, 1 - v) for k, (t, v) in BEFORE3.items()}
    acc_after = {k: (1 - t, 1 - v) for k, (t, v) in AFTER3.items()}
    loss = blend_statistics(BEFORE3, AFTER3)
    acc = blend_statistics(acc_before, acc_after, use_accuracy=True)
    assert acc.weights == pytest.approx(loss.weights, rel=REL)
    for head in BEFORE3:
        assert acc.stats[head].generalization == \
            loss.stats[head].generalization
        assert acc.stats[head].overfitting == loss.stats[head].overfitting
    # the same numbers read as losses are a different (wrong) answer
    wrong = blend_statistics(acc_before, acc_after)
    assert wrong.weights != pytest.approx(loss.weights, rel=1e-3)


def test_accuracy_mode_by_hand():
    # acc rgb:   held-out 0.25 -> 0.5 : G = 0.25; gap (T - V) 0.25 -> 0.5:
    #            O = 0.25; score 4
    # acc audio: held-out 0.25 -> 0.375: G = 0.125; gap 0.25 -> 0.5:
    #            O = 0.25; score 2      -> weights 2/3, 1/3
    before = {'rgb': (0.5, 0.25), 'audio': (0.5, 0.25)}
    after = {'rgb': (1.0, 0.5), 'audio': (0.875, 0.375)}
    est = blend_statistics(before, after, use_accuracy=True)
    assert est.stats['rgb'].generalization == 0.25
    assert est.stats['audio'].generalization == 0.125
    assert est.stats['audio'].overfitting == 0.25
    assert est.weights == pytest.approx({
        'rgb': 2 / 3,
        'audio': 1 / 3
    },
                                        rel=REL)


# --------------------------------------------------------------------------
# policy: G <= 0, fallbacks
# --------------------------------------------------------------------------
@pytest.mark.parametrize('v_after', [1.5, 1.75])  # G == 0, G < 0
def test_no_generalization_gets_zero(v_after):
    before = dict(BEFORE3)
    after = dict(AFTER3, audio=(0.25, v_after))
    est = blend_statistics(before, after)
    assert est.weights['audio'] == 0.0
    assert est.stats['audio'].score == 0.0
    assert est.stats['audio'].note == 'no generalization (G <= 0)'
    assert est.stats['audio'].generalization == 1.5 - v_after
    if v_after == 1.5:
        assert est.stats['audio'].ogr == math.inf
    # the others share the weight as before: 4/7 and 3/7
    assert est.weights['rgb'] == pytest.approx(4 / 7, rel=REL)
    assert est.weights['fused'] == pytest.approx(3 / 7, rel=REL)
    assert est.fallback is None


def _no_head_generalizes():
    before = {'rgb': (1.0, 1.0), 'audio': (1.0, 1.0), 'fused': (1.0, 1.0)}
    after = {'rgb': (0.5, 1.0), 'audio': (0.5, 1.25), 'fused': (0.9, 1.1)}
    return before, after


def test_all_no_generalization_falls_back_to_uniform():
    before, after = _no_head_generalizes()
    est = blend_statistics(before, after)
    assert est.fallback == 'uniform'
    assert est.weights == pytest.approx({k: 1 / 3 for k in after}, rel=REL)
    assert all(s.score == 0.0 for s in est.stats.values())
    assert all(s.note == 'no generalization (G <= 0)'
               for s in est.stats.values())


def test_all_no_generalization_falls_back_to_previous():
    before, after = _no_head_generalizes()
    previous = {'fused': 0.25, 'rgb': 0.5, 'audio': 0.25}
    est = blend_statistics(before, after, previous=previous)
    assert est.fallback == 'previous'
    assert est.weights == previous
    assert list(est.weights) == list(after)  # order of `after`
    # smoothing towards the previous weights changes nothing
    smoothed = blend_statistics(
        before, after, previous=previous, smoothing=0.7)
    assert smoothed.fallback == 'previous'
    assert smoothed.weights == pytest.approx(previous, rel=REL)


def test_previous_unused_when_a_head_is_usable():
    est = blend_statistics(
        BEFORE3, AFTER3, previous={
            'rgb': 0,
            'audio': 1,
            'fused': 0
        })
    assert est.fallback is None
    assert est.weights == pytest.approx(
        {
            'rgb': .5,
            'audio': .125,
            'fused': .375
        }, rel=REL)


# --------------------------------------------------------------------------
# policy: O ~ 0
# --------------------------------------------------------------------------
def test_zero_overfitting_is_floored_finite_and_dominant():
    before = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)}
    # rgb: gap 0.25 -> 0.25, O = 0 -> floored to 1e-4; G = 0.25
    after = {'rgb': (0.75, 1.0), 'audio': (0.25, 1.25)}
    est = blend_statistics(before, after)
    rgb = est.stats['rgb']
    assert rgb.overfitting == 0.0
    assert rgb.note == 'overfitting floored'
    assert rgb.score == pytest.approx(0.25 / 1e-8, rel=REL)
    assert math.isfinite(rgb.score)
    # audio score 1 (see BEFORE3): rgb weight = 2.5e7 / (2.5e7 + 1)
    assert est.weights['rgb'] == pytest.approx(2.5e7 / (2.5e7 + 1), rel=REL)
    assert est.weights['audio'] == pytest.approx(1 / (2.5e7 + 1), rel=1e-9)
    assert est.weights['rgb'] > 0.9999
    # the floor is a parameter
    est2 = blend_statistics(before, after, overfit_floor=0.25)
    assert est2.weights == pytest.approx({'rgb': 0.8, 'audio': 0.2}, rel=REL)


def test_small_nonzero_overfitting_is_floored():
    tiny = 2.0**-20  # below the default floor 1e-4, but not zero
    before = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)}
    # rgb: gap 0.25 -> 0.25 + tiny: O = tiny, floored to 1e-4; G = 0.25
    after = {'rgb': (0.75 - tiny, 1.0), 'audio': (0.25, 1.25)}
    est = blend_statistics(before, after)
    assert est.stats['rgb'].overfitting == tiny
    assert est.stats['rgb'].note == 'overfitting floored'
    assert est.stats['rgb'].score == pytest.approx(0.25 / 1e-8, rel=REL)
    assert est.weights['rgb'] == pytest.approx(2.5e7 / (2.5e7 + 1), rel=REL)
    # exactly at the floor: not floored, same score
    est = blend_statistics(before, after, overfit_floor=tiny)
    assert est.stats['rgb'].note == ''
    assert est.stats['rgb'].score == pytest.approx(0.25 / tiny**2, rel=REL)


def test_tiny_floor_huge_score_still_finite_weights():
    before = {'a': (0.0, 1e300), 'b': (1.0, 1.25), 'c': (0.0, 1e300)}
    after = {'a': (-1e300, 0.0), 'b': (0.5, 1.0), 'c': (-1e300, 1.0)}
    # a: G = 1e300, gap 1e300 -> 1e300, O = 0, floored to 1e-300:
    #    score 1e900, far beyond float range
    # c: G = 1e300 - 1 (== 1e300 in floats), O = 0 as well -> equal to a
    est = blend_statistics(before, after, overfit_floor=1e-300)
    check_valid(est.weights, after)
    assert est.weights['a'] == pytest.approx(0.5, rel=REL)
    assert est.weights['c'] == pytest.approx(0.5, rel=REL)
    assert est.weights['b'] == 0.0
    assert est.stats['a'].score == sys.float_info.max
    assert 'clipped' in est.stats['a'].note
    assert 'overfitting floored' in est.stats['a'].note


def test_tiny_score_only_usable_head_gets_everything():
    # a: G = 1e-300, O = 1e300 -> score 1e-900 (underflows), still the only
    # head with G > 0, so it takes all the weight (no fallback)
    before = {'a': (0.0, 1e-300), 'b': (1.0, 1.0)}
    after = {'a': (-1e300, 0.0), 'b': (1.0, 2.0)}
    est = blend_statistics(before, after)
    assert est.fallback is None
    assert est.weights == {'a': 1.0, 'b': 0.0}
    assert est.stats['a'].score == 0.0
    assert 'score below float range' in est.stats['a'].note


# --------------------------------------------------------------------------
# policy: non-finite inputs
# --------------------------------------------------------------------------
@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    'where',
    ['before_train', 'before_heldout', 'after_train', 'after_heldout'])
def test_non_finite_head_gets_zero_others_weighted(bad, where):
    before, after = dict(BEFORE3), dict(AFTER3)
    side = before if where.startswith('before') else after
    t, v = side['audio']
    side['audio'] = (bad, v) if where.endswith('train') else (t, bad)
    est = blend_statistics(before, after)
    assert est.weights['audio'] == 0.0
    assert est.stats['audio'].score == 0.0
    assert est.stats['audio'].note == 'non-finite'
    assert math.isnan(est.stats['audio'].ogr)
    assert est.weights['rgb'] == pytest.approx(4 / 7, rel=REL)
    assert est.weights['fused'] == pytest.approx(3 / 7, rel=REL)
    check_valid(est.weights, after)


def test_overflowing_difference_is_non_finite():
    # finite inputs whose G overflows: 1e308 - (-1e308) = inf
    before = {'a': (0.0, 1e308), 'b': (1.0, 1.25)}
    after = {'a': (0.0, -1e308), 'b': (0.5, 1.0)}
    est = blend_statistics(before, after)
    assert est.stats['a'].note == 'non-finite'
    assert est.weights == {'a': 0.0, 'b': 1.0}


def test_all_non_finite_falls_back():
    before = {'rgb': (math.nan, 1.0), 'audio': (1.0, math.inf)}
    after = {'rgb': (1.0, 0.5), 'audio': (math.nan, math.nan)}
    est = blend_statistics(before, after)
    assert est.fallback == 'uniform'
    assert est.weights == {'rgb': 0.5, 'audio': 0.5}
    prev = {'rgb': 0.75, 'audio': 0.25}
    est = blend_statistics(before, after, previous=prev)
    assert est.fallback == 'previous'
    assert est.weights == prev
    assert all(s.note == 'non-finite' for s in est.stats.values())


def test_huge_python_int_is_treated_as_infinite():
    before = {'a': (1.0, 10**400), 'b': (1.0, 1.25)}
    after = {'a': (0.5, 1.0), 'b': (0.5, 1.0)}
    est = blend_statistics(before, after)
    assert est.stats['a'].note == 'non-finite'
    assert est.weights == {'a': 0.0, 'b': 1.0}


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------
def test_mismatched_heads_named_in_error():
    before = {'rgb': (1, 2), 'audio': (1, 2)}
    after = {'rgb': (1, 2), 'flow': (1, 2)}
    with pytest.raises(ValueError, match=r"audio.*flow"):
        blend_statistics(before, after)
    with pytest.raises(ValueError, match='fused'):
        blend_statistics(before, dict(before, fused=(1, 2)))


def test_no_heads():
    with pytest.raises(ValueError, match='at least one head'):
        blend_statistics({}, {})


@pytest.mark.parametrize('value', [('1.0', 2.0), (1.0, None), 'ab', (1.0, ),
                                   (1.0, 2.0, 3.0), 1.0, (True, 1.0),
                                   (1.0, 1j), ([1.0], 2.0)])
def test_non_numeric_values(value):
    ok = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)}
    with pytest.raises(TypeError, match='audio'):
        blend_statistics(ok, dict(ok, audio=value))
    with pytest.raises(TypeError, match='audio'):
        blend_statistics(dict(ok, audio=value), ok)


def test_numpy_and_list_values_accepted():
    before = {k: np.array(v, dtype=np.float32) for k, v in BEFORE3.items()}
    after = {k: [np.float64(v[0]), v[1]] for k, v in AFTER3.items()}
    est = blend_statistics(before, after)
    assert est.weights == pytest.approx(
        {
            'rgb': .5,
            'audio': .125,
            'fused': .375
        }, rel=REL)
    assert all(type(w) is float for w in est.weights.values())


def test_non_mapping_inputs():
    with pytest.raises(TypeError, match='before'):
        blend_statistics([('a', (1, 2))], {'a': (1, 2)})


@pytest.mark.parametrize('floor', [0.0, -1e-4, math.nan, math.inf])
def test_bad_overfit_floor(floor):
    with pytest.raises(ValueError, match='overfit_floor'):
        blend_statistics(BEFORE3, AFTER3, overfit_floor=floor)


@pytest.mark.parametrize('min_weight', [-0.01, 0.34, 1.0, math.nan])
def test_bad_min_weight(min_weight):
    with pytest.raises(ValueError, match='min_weight'):
        blend_statistics(BEFORE3, AFTER3, min_weight=min_weight)


@pytest.mark.parametrize('smoothing', [-0.1, 1.0, 1.5, math.nan])
def test_bad_smoothing(smoothing):
    prev = {'rgb': 0.2, 'audio': 0.3, 'fused': 0.5}
    with pytest.raises(ValueError, match='smoothing'):
        blend_statistics(BEFORE3, AFTER3, smoothing=smoothing, previous=prev)


def test_smoothing_requires_previous():
    with pytest.raises(ValueError, match='previous'):
        blend_statistics(BEFORE3, AFTER3, smoothing=0.5)


@pytest.mark.parametrize('previous, match', [
    ({
        'rgb': 0.5,
        'audio': 0.5
    }, 'fused'),
    ({
        'rgb': 0.5,
        'audio': 0.5,
        'fused': 0.5
    }, 'sum to 1'),
    ({
        'rgb': 1.5,
        'audio': -0.5,
        'fused': 0.0
    }, 'audio'),
    ({
        'rgb': math.nan,
        'audio': 0.5,
        'fused': 0.5
    }, 'rgb'),
    ({
        'rgb': math.inf,
        'audio': 0.5,
        'fused': 0.5
    }, 'rgb'),
])
def test_bad_previous(previous, match):
    with pytest.raises(ValueError, match=match):
        blend_statistics(BEFORE3, AFTER3, previous=previous)


def test_previous_sum_tolerance():
    prev = {'rgb': 0.2 + 5e-7, 'audio': 0.3, 'fused': 0.5}
    est = blend_statistics(*_no_head_generalizes(), previous=prev)
    assert math.fsum(est.weights.values()) == pytest.approx(1, abs=1e-12)
    with pytest.raises(ValueError, match='sum to 1'):
        blend_statistics(BEFORE3, AFTER3, previous=dict(prev, rgb=0.2 + 2e-6))


# --------------------------------------------------------------------------
# min_weight and smoothing
# --------------------------------------------------------------------------
def test_min_weight_math():
    # raw 0.5 / 0.125 / 0.375, K = 3, m = 0.2: w = 0.2 + 0.4 * raw
    est = blend_statistics(BEFORE3, AFTER3, min_weight=0.2)
    assert est.weights == pytest.approx(
        {
            'rgb': 0.4,
            'audio': 0.25,
            'fused': 0.35
        }, rel=REL)
    assert est.stats['audio'].note == 'min_weight'
    assert est.stats['rgb'].note == ''


def test_min_weight_keeps_zero_heads_alive():
    after = dict(AFTER3, audio=(0.25, 1.75))  # audio G < 0 -> raw 0
    est = blend_statistics(BEFORE3, after, min_weight=0.05)
    assert est.weights['audio'] == pytest.approx(0.05, rel=REL)
    assert all(w >= 0.05 - 1e-15 for w in est.weights.values())
    assert sum(est.weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert 'min_weight' in est.stats['audio'].note
    assert 'no generalization' in est.stats['audio'].note


def test_min_weight_at_upper_bound_is_uniform():
    est = blend_statistics(BEFORE3, AFTER3, min_weight=1 / 3)
    assert est.weights == pytest.approx({k: 1 / 3 for k in AFTER3}, rel=REL)


def test_min_weight_applied_to_previous_below_it():
    before, after = _no_head_generalizes()
    prev = {'rgb': 1.0, 'audio': 0.0, 'fused': 0.0}
    est = blend_statistics(before, after, previous=prev, min_weight=0.1)
    # previous raised: 0.1 + 0.7 * prev
    assert est.fallback == 'previous'
    assert est.weights == pytest.approx(
        {
            'rgb': 0.8,
            'audio': 0.1,
            'fused': 0.1
        }, rel=REL)
    assert 'previous raised to min_weight' in est.stats['audio'].note


def test_smoothing_math():
    prev = {'rgb': 0.25, 'audio': 0.5, 'fused': 0.25}
    est = blend_statistics(BEFORE3, AFTER3, previous=prev, smoothing=0.25)
    # 0.75 * new + 0.25 * prev, new = 0.5 / 0.125 / 0.375
    expected = {
        'rgb': 0.75 * 0.5 + 0.25 * 0.25,
        'audio': 0.75 * 0.125 + 0.25 * 0.5,
        'fused': 0.75 * 0.375 + 0.25 * 0.25,
    }
    assert est.weights == pytest.approx(expected, rel=REL)
    assert all('smoothed' in s.note for s in est.stats.values())
    # smoothing = 0 with previous given: the new weights, untouched
    est0 = blend_statistics(BEFORE3, AFTER3, previous=prev, smoothing=0.0)
    assert est0.weights == pytest.approx(
        {
            'rgb': 0.5,
            'audio': 0.125,
            'fused': 0.375
        }, rel=REL)
    assert all(s.note == '' for s in est0.stats.values())


def test_smoothing_after_min_weight():
    prev = {'rgb': 0.25, 'audio': 0.5, 'fused': 0.25}
    est = blend_statistics(
        BEFORE3, AFTER3, previous=prev, smoothing=0.5, min_weight=0.2)
    # min_weight first: 0.4 / 0.25 / 0.35, then halfway to prev
    expected = {'rgb': 0.325, 'audio': 0.375, 'fused': 0.3}
    assert est.weights == pytest.approx(expected, rel=REL)


# --------------------------------------------------------------------------
# invariants
# --------------------------------------------------------------------------
def test_key_order_follows_after():
    before = dict(reversed(list(BEFORE3.items())))
    after = {
        'audio': AFTER3['audio'],
        'fused': AFTER3['fused'],
        'rgb': AFTER3['rgb']
    }
    est = blend_statistics(before, after)
    assert list(est.weights) == ['audio', 'fused', 'rgb']
    assert list(est.stats) == ['audio', 'fused', 'rgb']
    assert list(estimate_blend_weights(before, after)) == list(after)
    # also on the fallback paths
    b, a = _no_head_generalizes()
    a = dict(reversed(list(a.items())))
    assert list(blend_statistics(b, a).weights) == list(a)


def test_inputs_not_mutated_and_read_only_mappings_work():
    before = {k: list(v) for k, v in BEFORE3.items()}
    after = {k: list(v) for k, v in AFTER3.items()}
    prev = {'rgb': 0.2, 'audio': 0.3, 'fused': 0.5}
    copies = copy.deepcopy((before, after, prev))
    blend_statistics(
        before, after, previous=prev, smoothing=0.5, min_weight=0.25)
    blend_statistics(*_no_head_generalizes(), previous=prev, min_weight=0.3)
    assert (before, after, prev) == copies
    est = blend_statistics(
        MappingProxyType(before),
        MappingProxyType(after),
        previous=MappingProxyType(prev),
        smoothing=0.5)
    check_valid(est.weights, after)


def test_results_are_frozen():
    est = blend_statistics(BEFORE3, AFTER3)
    with pytest.raises(AttributeError):
        est.fallback = 'uniform'
    with pytest.raises(AttributeError):
        est.stats['rgb'].weight = 1.0


def _random_value(rng):
    kind = rng.integers(0, 10)
    if kind == 0:
        return 0.0
    if kind == 1:
        return float(rng.choice([math.nan, math.inf, -math.inf]))
    if kind == 2:
        return float(rng.choice([-1, 1]) * 10.0**rng.uniform(250, 308))
    if kind == 3:
        return float(rng.choice([-1, 1]) * 10.0**rng.uniform(-320, -250))
    if kind == 4:
        return float(rng.integers(-3, 4))
    return float(rng.normal(1.0, 1.0))


def test_randomized_sweep_always_valid():
    rng = np.random.default_rng(20200614)
    fallbacks = set()
    for _ in range(500):
        k = int(rng.integers(1, 6))
        heads = [f'h{i}' for i in rng.permutation(k)]
        before = {h: (_random_value(rng), _random_value(rng)) for h in heads}
        after = {
            h: (_random_value(rng), _random_value(rng))
            for h in rng.permutation(heads)
        }
        policy = {
            'use_accuracy': bool(rng.integers(0, 2)),
            'overfit_floor': float(10.0**rng.uniform(-300, 2)),
        }
        if rng.random() < 0.5:
            prev = rng.dirichlet(np.ones(k) * 0.5)
            policy['previous'] = {h: float(p) for h, p in zip(heads, prev)}
            policy['smoothing'] = float(rng.choice([0.0, rng.random()]))
        if rng.random() < 0.5:
            policy['min_weight'] = float(rng.uniform(0, 1 / k))
        est = blend_statistics(before, after, **policy)
        check_valid(est.weights, after)
        fallbacks.add(est.fallback)
        for head, s in est.stats.items():
            assert s.weight == est.weights[head]
            assert math.isfinite(s.score) and s.score >= 0
            if s.score > 0:
                assert s.generalization > 0
            if 'min_weight' in policy:
                assert s.weight >= policy['min_weight'] * (1 - 1e-9)
    # the sweep reached the three outcomes
    assert fallbacks == {None, 'uniform', 'previous'}


# --------------------------------------------------------------------------
# documentation and purity
# --------------------------------------------------------------------------
def test_docstring_examples():
    result = doctest.testmod(gblend_module, raise_on_error=False)
    assert result.attempted >= 5
    assert result.failed == 0


def test_docstring_states_formula_policy_and_erratum():
    doc = blend_statistics.__doc__
    for needed in ('Proposition 1', 'Eq. 7', 'Sec. 3', 'factor 2', 'Policy',
                   'G_i / O_i**2', 'Example'):
        assert needed in doc


@pytest.mark.slow
def test_module_is_pure():
    """gblend.py loads without torch, mmengine or the package's __init__."""
    out = import_file_alone(
        gblend_module.__file__, ('torch', 'mmengine', 'mmaction', 'mmcv'),
        'print(mod.estimate_blend_weights({"a": (1, 2)}, {"a": (0, 1)}))\n')
    assert out.strip() == "{'a': 1.0}"


# ---- measurement noise ----------------------------------------------------
# noise = {head: (se_G, se_O)}: score (G - se_G) / max(O**2 + se_O**2,
# floor**2), 0 when G - se_G <= 0


def test_noise_stops_a_chance_change_from_taking_all_the_weight():
    # audio's held-out loss moved by chance: G and O both near 0; without a
    # noise model G / O**2 = 0.0074 / 0.0002**2 takes almost every weight
    before = {'rgb': (1.223, 1.180), 'audio': (0.6685, 0.9201),
              'fused': (0.4616, 0.5314)}
    after = {'rgb': (1.024, 1.087), 'audio': (0.6613, 0.9127),
             'fused': (0.3936, 0.4987)}
    blind = blend_statistics(before, after)
    assert blind.weights['audio'] > 0.99
    se = (0.02, 0.02)
    est = blend_statistics(before, after,
                           noise={'rgb': se, 'audio': se, 'fused': se})
    # audio: G = 0.0074 < se_G
    assert est.weights['audio'] == 0.0
    assert est.stats['audio'].note == 'G within noise'
    assert est.stats['audio'].score == 0.0
    # rgb: G = 0.093, O = 0.106 -> (0.093 - 0.02) / (0.106**2 + 0.02**2);
    # fused: G = 0.0327, O = 0.0352 -> 0.0127 / (0.0352**2 + 0.02**2)
    rgb = ((1.180 - 1.087) - 0.02) / (
        ((1.087 - 1.024) - (1.180 - 1.223))**2 + 0.02**2)
    fused = ((0.5314 - 0.4987) - 0.02) / (
        ((0.4987 - 0.3936) - (0.5314 - 0.4616))**2 + 0.02**2)
    assert est.stats['rgb'].score == pytest.approx(rgb)
    assert est.weights['rgb'] == pytest.approx(rgb / (rgb + fused))
    assert est.weights['fused'] == pytest.approx(fused / (rgb + fused))
    # the raw G and O are reported, not the corrected ones
    assert est.stats['rgb'].generalization == pytest.approx(0.093)
    assert est.stats['rgb'].overfitting == pytest.approx(0.106)


def test_noise_adds_to_overfitting_in_quadrature():
    before = {'a': (1.0, 1.5), 'b': (1.0, 1.5)}
    after = {'a': (0.8, 1.3), 'b': (0.5, 1.2)}  # O_a = 0, O_b = 0.2
    est = blend_statistics(before, after, noise={'a': (0.0, 0.1)})
    # a: G 0.2, O_eff**2 = 0 + 0.1**2 -> 20 (not a floored 0.2 / 1e-8);
    # b (no noise): G 0.3, O 0.2 -> 7.5
    assert est.stats['a'].note == ''
    assert est.stats['a'].score == pytest.approx(20)
    assert est.weights['a'] == pytest.approx(20 / 27.5)
    assert est.weights['b'] == pytest.approx(7.5 / 27.5)
    # O and se_O combine: 0.2**2 + 0.15**2 = 0.0625
    est = blend_statistics(before, after, noise={'b': (0.0, 0.15)})
    assert est.stats['b'].score == pytest.approx(0.3 / 0.0625)
    # the floor still applies to the combination
    est = blend_statistics(before, after, noise={'a': (0.0, 1e-6)},
                           overfit_floor=1e-3)
    assert est.stats['a'].note == 'overfitting floored'
    assert est.stats['a'].score == pytest.approx(0.2 / 1e-6)


def test_zero_noise_is_the_paper_exact_rule():
    zero = {h: (0.0, 0.0) for h in BEFORE3}
    for noise in (None, {}, zero, {'rgb': (0.0, 0.0)}):
        est = blend_statistics(BEFORE3, AFTER3, noise=noise)
        assert est == blend_statistics(BEFORE3, AFTER3)
    # also where the floor acts: O = 0 floored, G / floor**2
    before = {'a': (1.0, 1.5), 'b': (1.0, 1.5)}
    after = {'a': (0.8, 1.3), 'b': (0.5, 1.2)}
    est = blend_statistics(before, after, noise={'a': (0.0, 0.0)})
    assert est == blend_statistics(before, after)
    assert est.stats['a'].note == 'overfitting floored'


def test_noise_rule_is_continuous_in_g():
    """A hard threshold jumped from 0 to the full score at G = se_G; the
    lower bound G - se_G grows from 0 as G clears the noise."""
    def audio_weight(g):
        before = {'rgb': (1.0, 1.25), 'audio': (1.0, 1.5)}
        after = {'rgb': (0.5, 1.0), 'audio': (1.0 - g, 1.5 - g)}  # O = 0
        return blend_statistics(
            before, after,
            noise={'rgb': (0.01, 0.01), 'audio': (0.05, 0.05)}).weights[
                'audio']

    below, above = audio_weight(0.05 - 1e-9), audio_weight(0.05 + 1e-9)
    assert below == 0.0
    assert 0.0 < above < 1e-6
    # and it keeps growing smoothly past the noise
    grid = [audio_weight(0.05 + k * 0.01) for k in range(1, 6)]
    assert grid == sorted(grid)
    steps = [b - a for a, b in zip(grid, grid[1:])]
    assert max(steps) < 0.2


def test_near_zero_noisy_overfitting_gives_a_bounded_score():
    before = {'a': (1.0, 1.5), 'b': (1.0, 1.5)}
    for o in (0.0, 1e-12, -1e-9, 1e-5):
        after = {'a': (0.8 - o, 1.3), 'b': (0.5, 1.2)}
        est = blend_statistics(before, after,
                               noise={'a': (0.01, 0.05), 'b': (0.01, 0.05)})
        # at most (G - se_G) / se_O**2 = 0.19 / 0.0025 = 76
        assert est.stats['a'].score <= 76 * (1 + 1e-9)
        assert est.stats['a'].score == pytest.approx(0.19 / (o**2 + 0.0025))
        # b: 0.29 / (0.04 + 0.0025); a keeps a large but not total weight
        assert est.weights['a'] == pytest.approx(
            76 / (76 + 0.29 / 0.0425), rel=1e-6)
        check_valid(est.weights, after)


def test_noise_with_accuracy():
    loss = blend_statistics(BEFORE3, AFTER3, noise={'rgb': (0.05, 0.1)})
    mirror = {k: (1 - t, 1 - v) for k, (t, v) in BEFORE3.items()}
    mirror_after = {k: (1 - t, 1 - v) for k, (t, v) in AFTER3.items()}
    acc = blend_statistics(mirror, mirror_after, use_accuracy=True,
                           noise={'rgb': (0.05, 0.1)})
    assert acc.weights == pytest.approx(loss.weights, rel=1e-12)


def test_non_finite_noise_makes_the_head_unusable():
    est = blend_statistics(BEFORE3, AFTER3,
                           noise={'audio': (math.nan, math.nan),
                                  'rgb': (0.0, math.inf)})
    assert est.weights['audio'] == est.weights['rgb'] == 0.0
    assert est.stats['audio'].note == 'non-finite'
    assert est.weights['fused'] == 1.0
    check_valid(est.weights, AFTER3)


@pytest.mark.parametrize('noise,error,match', [
    ({'a': (0.0, -0.1)}, ValueError, 'se_O must be >= 0'),
    ({'a': (-0.1, 0.0)}, ValueError, 'se_G must be >= 0'),
    ({'c': (0.1, 0.1)}, ValueError, 'not measured'),
    ({'a': 0.1}, TypeError, r'\(se_G, se_O\) pair'),
    ({'a': (0.1, )}, TypeError, r'\(se_G, se_O\) pair'),
    ({'a': ('0.1', 0.1)}, TypeError, 'se_G'),
    ([('a', (0.1, 0.1))], TypeError, 'mapping'),
])
def test_bad_noise(noise, error, match):
    with pytest.raises(error, match=match):
        blend_statistics({'a': (1, 2), 'b': (1, 2)},
                         {'a': (0, 1), 'b': (0, 1)}, noise=noise)


def test_randomized_sweep_with_noise_and_floors_always_valid():
    rng = np.random.default_rng(14)
    for _ in range(300):
        k = int(rng.integers(1, 5))
        heads = [f'h{i}' for i in range(k)]
        before = {h: (_random_value(rng), _random_value(rng)) for h in heads}
        after = {h: (_random_value(rng), _random_value(rng)) for h in heads}
        noise = {
            h: tuple(float(rng.choice([0.0, math.nan, 10.0**rng.uniform(
                -6, 1)])) for _ in range(2))
            for h in heads if rng.random() < 0.7
        }
        policy = dict(noise=noise)
        if rng.random() < 0.5:
            policy['min_weight'] = float(rng.uniform(0, 0.5 / k))
        if rng.random() < 0.7:
            policy['floors'] = {heads[0]: float(rng.uniform(0, 0.5))}
        est = blend_statistics(before, after, **policy)
        check_valid(est.weights, after)
        for head, s in est.stats.items():
            assert math.isfinite(s.score) and s.score >= 0
            if s.score > 0:
                assert s.generalization > noise.get(head, (0, 0))[0]
            if 'min_weight' in policy:
                assert s.weight >= policy['min_weight'] * (1 - 1e-9)
        if 'floors' in policy:
            assert est.weights[heads[0]] >= \
                policy['floors'][heads[0]] * (1 - 1e-9)


# ---- floors ---------------------------------------------------------------


def test_floor_raises_the_prediction_head_and_scales_the_others():
    before = dict(BEFORE3, fused=(1.0, 1.5))
    after = dict(AFTER3, fused=(1.0, 1.5))  # fused: G = 0 -> weight 0
    plain = blend_statistics(before, after)
    assert plain.weights == pytest.approx(
        {'rgb': 0.8, 'audio': 0.2, 'fused': 0.0}, rel=REL)
    est = blend_statistics(before, after, floors={'fused': 0.1})
    # fused raised to 0.1, rgb and audio keep their 4:1 ratio in 0.9
    assert est.weights == pytest.approx(
        {'rgb': 0.72, 'audio': 0.18, 'fused': 0.1}, rel=REL)
    assert est.stats['fused'].note == 'no generalization (G <= 0); floor'
    assert est.stats['rgb'].note == ''
    check_valid(est.weights, after)
    # a head already above its floor is left alone
    assert blend_statistics(BEFORE3, AFTER3, floors={'fused': 0.1}) == \
        blend_statistics(BEFORE3, AFTER3)
    # a zero floor is no floor
    assert blend_statistics(before, after, floors={'fused': 0.0}) == plain


def test_floor_applies_to_fallback_weights():
    est = blend_statistics(*_no_head_generalizes(), floors={'fused': 0.5})
    assert est.fallback == 'uniform'
    assert est.weights == pytest.approx(
        {'rgb': 0.25, 'audio': 0.25, 'fused': 0.5}, rel=REL)
    prev = {'rgb': 0.6, 'audio': 0.4, 'fused': 0.0}
    est = blend_statistics(*_no_head_generalizes(), previous=prev,
                           floors={'fused': 0.2})
    assert est.fallback == 'previous'
    assert est.weights == pytest.approx(
        {'rgb': 0.48, 'audio': 0.32, 'fused': 0.2}, rel=REL)
    assert est.stats['fused'].note.split('; ')[-1] == 'floor'
    assert 'floor' not in est.stats['rgb'].note


def test_floor_after_min_weight_and_smoothing():
    before = dict(BEFORE3, fused=(1.0, 1.5))
    after = dict(AFTER3, fused=(1.0, 1.5))
    prev = {'rgb': 0.4, 'audio': 0.4, 'fused': 0.2}
    est = blend_statistics(before, after, min_weight=0.05, smoothing=0.5,
                           previous=prev, floors={'fused': 0.3})
    # raw 0.8/0.2/0 -> min_weight 0.05 + 0.85 * raw = 0.73/0.22/0.05
    # -> smoothed with prev 0.565/0.31/0.125 -> fused raised to 0.3, the
    # others share 0.7 as 0.565:0.31
    rgb, audio = 0.7 * 0.565 / 0.875, 0.7 * 0.31 / 0.875
    assert est.weights == pytest.approx(
        {'rgb': rgb, 'audio': audio, 'fused': 0.3}, rel=1e-12)
    assert 'floor' in est.stats['fused'].note.split('; ')


def test_floor_keeps_min_weight_for_the_others():
    before = dict(BEFORE3, fused=(1.0, 1.5))
    after = dict(AFTER3, fused=(1.0, 1.5))
    # rgb 0.8 -> 0.05 + 0.85 * 0.8 = 0.73, audio 0.22, fused 0.05; a floor
    # of 0.7 would scale audio to 0.22 * 0.3 / 0.95 < 0.1: it stays at 0.1
    est = blend_statistics(before, after, min_weight=0.1,
                           floors={'fused': 0.7})
    assert est.weights['fused'] == pytest.approx(0.7, rel=1e-12)
    assert est.weights['audio'] == pytest.approx(0.1, rel=1e-12)
    assert est.weights['rgb'] == pytest.approx(0.2, rel=1e-12)
    check_valid(est.weights, after)


def test_several_floors():
    before = dict(BEFORE3, fused=(1.0, 1.5), audio=(1.0, 1.5))
    after = dict(AFTER3, fused=(1.0, 1.5), audio=(1.0, 1.5))
    est = blend_statistics(before, after,
                           floors={'fused': 0.25, 'audio': 0.25})
    assert est.weights == pytest.approx(
        {'rgb': 0.5, 'audio': 0.25, 'fused': 0.25}, rel=REL)
    # floors summing to 1 leave nothing else: rgb (weight 1) is scaled
    # down to its own floor
    est = blend_statistics(before, after, floors={
        'fused': 0.5, 'audio': 0.25, 'rgb': 0.25})
    assert est.weights == pytest.approx(
        {'rgb': 0.25, 'audio': 0.25, 'fused': 0.5}, rel=1e-12)
    assert 'floor' not in est.stats['rgb'].note
    est = blend_statistics(BEFORE3, AFTER3, floors={
        'fused': 0.5, 'audio': 0.4, 'rgb': 0.1})
    assert est.weights == pytest.approx(
        {'rgb': 0.1, 'audio': 0.4, 'fused': 0.5}, rel=1e-12)


@pytest.mark.parametrize('floors,policy,error,match', [
    ({'flow': 0.1}, {}, ValueError, 'not measured'),
    ({'fused': 1.0}, {}, ValueError, r'in \[0, 1\)'),
    ({'fused': -0.1}, {}, ValueError, r'in \[0, 1\)'),
    ({'fused': math.nan}, {}, ValueError, 'finite'),
    ({'fused': 0.6, 'rgb': 0.5}, {}, ValueError, '> 1'),
    ({'fused': 0.7}, dict(min_weight=0.2), ValueError, 'min_weight'),
    ({'fused': '0.1'}, {}, TypeError, 'real number'),
    ([('fused', 0.1)], {}, TypeError, 'mapping'),
])
def test_bad_floors(floors, policy, error, match):
    with pytest.raises(error, match=match):
        blend_statistics(BEFORE3, AFTER3, floors=floors, **policy)
