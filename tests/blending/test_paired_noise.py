"""Standard errors of G and O from paired per-sample values, and bootstrap
intervals of the weights (:mod:`mmaction_gblend.blending.paired_noise`)."""
import math
import time

import numpy as np
import pytest

from mmaction_gblend.blending import (blend_statistics,
                                      bootstrap_weight_intervals,
                                      paired_standard_errors)
from mmaction_gblend.blending import paired_noise
from helpers import import_file_alone


# ---- paired standard errors ----------------------------------------------
def test_paired_standard_errors_by_hand():
    # T': d_T = [0.5, 1.0, 0.5], mean 2/3, squared deviations
    #     1/36 + 4/36 + 1/36 = 1/6, var (ddof=1) 1/12, var of mean 1/36
    # V:  d_V = [0.25, 0.75, 0.0, 0.5], mean 0.375, squared deviations
    #     0.125**2 + 0.375**2 + 0.375**2 + 0.125**2 = 0.3125, var 0.3125/3,
    #     var of mean 0.3125/12 = 5/192
    # se_G = sqrt(5/192); se_O = sqrt(5/192 + 1/36) = sqrt(31/576)
    se_g, se_o = paired_standard_errors(
        train_before=[1.0, 2.0, 3.0],
        heldout_before=[2.0, 2.0, 1.0, 1.0],
        train_after=[0.5, 1.0, 2.5],
        heldout_after=[1.75, 1.25, 1.0, 0.5])
    assert se_g == pytest.approx(math.sqrt(5 / 192), rel=1e-12)
    assert se_o == pytest.approx(math.sqrt(31) / 24, rel=1e-12)


def test_paired_error_is_that_of_the_differences_not_the_levels():
    # hard samples stay hard: the levels spread widely, the changes do not
    levels = np.linspace(0.1, 5.0, 50)
    se_g, se_o = paired_standard_errors(levels, levels, levels - 0.3,
                                        levels - 0.1)
    assert se_g == pytest.approx(0.0, abs=1e-12)
    assert se_o == pytest.approx(0.0, abs=1e-12)
    level_se = np.std(levels, ddof=1) / math.sqrt(levels.size)
    assert level_se > 0.2
    # sign convention and accuracies (0/1 values) alike
    before = np.array([1.0, 0.0, 1.0, 1.0])
    after = np.array([1.0, 1.0, 1.0, 0.0])  # d = [0, -1, 0, 1], var 2/3
    se_g, _ = paired_standard_errors(before, before, after, after)
    assert se_g == pytest.approx(math.sqrt(2 / 3 / 4), rel=1e-12)
    assert paired_standard_errors(after, after, before, before)[0] == se_g


def test_paired_standard_errors_accept_numpy_and_tuples():
    args = ([1.0, 2.0, 3.0], [2.0, 2.0, 1.0,
                              1.0], [0.5, 1.0, 2.5], [1.75, 1.25, 1.0, 0.5])
    as_lists = paired_standard_errors(*args)
    assert paired_standard_errors(*map(np.asarray, args)) == as_lists
    assert paired_standard_errors(*map(tuple, args)) == as_lists
    assert all(isinstance(v, float) for v in as_lists)


@pytest.mark.parametrize('args,match', [
    (([1, 2, 3], [1, 2], [1, 2], [1, 2]),
     'train_before has 3 samples but train_after has 2'),
    (([1, 2], [1, 2], [1, 2], [1, 2, 3]),
     'heldout_before has 2 samples but heldout_after has 3'),
    (([], [1, 2], [], [1, 2]), 'train_before holds no samples'),
    (([[1, 2]], [1, 2], [[1, 2]], [1, 2]), 'train_before must be a 1-D'),
])
def test_paired_standard_errors_refuse_unpaired_input(args, match):
    with pytest.raises(ValueError, match=match):
        paired_standard_errors(*args)


def test_one_sample_contributes_no_spread():
    # one V sample: its variance term is 0, T' still counts
    se_g, se_o = paired_standard_errors([1.0, 2.0], [1.0], [0.5, 0.5], [0.9])
    assert se_g == 0.0
    # d_T = [0.5, 1.5], var 0.5, var of mean 0.25
    assert se_o == pytest.approx(0.5, rel=1e-12)
    assert paired_standard_errors([1.0], [1.0], [0.5], [0.9]) == (0.0, 0.0)


def test_non_finite_samples_give_nan_and_no_nan_weight():
    nan_v = paired_standard_errors([1.0, 2.0], [1.0, math.nan], [0.5, 0.5],
                                   [0.9, 0.8])
    assert all(math.isnan(v) for v in nan_v)
    se_g, se_o = paired_standard_errors([1.0, math.inf], [1.0, 2.0],
                                        [0.5, 0.5], [0.9, 1.8])
    # d_V = [0.1, 0.2]: var 0.005, var of the mean 0.0025
    assert se_g == pytest.approx(0.05)
    assert math.isnan(se_o)
    # what reaches blend_statistics: that head gets weight 0, others finite
    est = blend_statistics({
        'a': (1.0, 1.5),
        'b': (1.0, 1.5)
    }, {
        'a': (0.5, 1.0),
        'b': (0.5, 1.0)
    },
                           noise={
                               'a': nan_v,
                               'b': (0.0, 0.0)
                           })
    assert est.weights == {'a': 0.0, 'b': 1.0}
    assert est.stats['a'].note == 'non-finite'


# ---- bootstrap -------------------------------------------------------------
def clear_case(num_v=400, num_t=400, seed=0):
    """rgb generalises and barely overfits, audio overfits, fused between.
    Per-sample values: ``{head: (train, heldout)}`` before and after."""
    rng = np.random.default_rng(seed)
    level_t = rng.gamma(2.0, 0.7, num_t)
    level_v = rng.gamma(2.0, 0.7, num_v)
    # held-out decrease, train decrease (O = train drop - held-out drop)
    moves = dict(rgb=(0.30, 0.40), audio=(0.03, 0.50), fused=(0.15, 0.30))
    before, after = {}, {}
    for head, (drop_v, drop_t) in moves.items():
        before[head] = (level_t, level_v)
        after[head] = (level_t - drop_t + 0.05 * rng.standard_normal(num_t),
                       level_v - drop_v + 0.05 * rng.standard_normal(num_v))
    return before, after


def means(per_sample):
    return {
        h: (float(np.mean(t)), float(np.mean(v)))
        for h, (t, v) in per_sample.items()
    }


def blend(b, a, ses):
    return blend_statistics(b, a, noise=ses).weights


def point_ses(before, after):
    return {
        h:
        paired_standard_errors(before[h][0], before[h][1], after[h][0],
                               after[h][1])
        for h in after
    }


def test_bootstrap_is_deterministic_with_a_seed():
    before, after = clear_case(num_v=100, num_t=100)
    first = bootstrap_weight_intervals(
        before, after, blend, num_resamples=50, seed=7)
    assert first == bootstrap_weight_intervals(
        before, after, blend, num_resamples=50, seed=7)
    assert first != bootstrap_weight_intervals(
        before, after, blend, num_resamples=50, seed=8)
    assert list(first) == list(after)
    for low, high in first.values():
        assert 0.0 <= low <= high <= 1.0


def test_bootstrap_interval_contains_the_point_estimate():
    before, after = clear_case()
    point = blend(means(before), means(after), point_ses(before, after))
    intervals = bootstrap_weight_intervals(before, after, blend)
    for head, (low, high) in intervals.items():
        assert low <= point[head] <= high, (head, low, point[head], high)
    # clear case: rgb well above audio, with no overlap
    assert intervals['rgb'][0] > intervals['audio'][1]


def test_bootstrap_interval_is_wider_with_fewer_samples():
    before, after = clear_case(num_v=1600, num_t=1600)

    def first(n):
        return ({
            h: (t[:n], v[:n])
            for h, (t, v) in before.items()
        }, {
            h: (t[:n], v[:n])
            for h, (t, v) in after.items()
        })

    def width(n):
        b, a = first(n)
        low, high = bootstrap_weight_intervals(b, a, blend)['rgb']
        return high - low

    wide, narrow = width(100), width(1600)
    assert wide > 2 * narrow > 0


def test_bootstrap_keeps_the_pairing():
    """The same indices for before and after: values that differ only by a
    constant give the same G on every resample (zero width), where
    resampling the two checkpoints independently would not."""
    rng = np.random.default_rng(1)
    level_t, level_v = rng.gamma(2.0, 1.0, 300), rng.gamma(2.0, 1.0, 200)
    before = {'a': (level_t, level_v), 'b': (level_t * 2, level_v * 2)}
    after = {
        'a': (level_t - 0.5, level_v - 0.25),
        'b': (level_t * 2 - 0.1, level_v * 2 - 0.05)
    }

    def generalization_and_overfitting(b, a, ses):
        out = {}
        for head in a:
            out[f'G_{head}'] = b[head][1] - a[head][1]
            out[f'O_{head}'] = ((a[head][1] - a[head][0]) -
                                (b[head][1] - b[head][0]))
            out[f'seG_{head}'], out[f'seO_{head}'] = ses[head]
        return out

    intervals = bootstrap_weight_intervals(before, after,
                                           generalization_and_overfitting)
    expected = {'G_a': 0.25, 'O_a': 0.25, 'G_b': 0.05, 'O_b': 0.05}
    for key, value in expected.items():
        low, high = intervals[key]
        assert low == pytest.approx(value, abs=1e-12)
        assert high == pytest.approx(value, abs=1e-12)
    for key in ('seG_a', 'seO_a', 'seG_b', 'seO_b'):
        assert intervals[key][1] == pytest.approx(0.0, abs=1e-6)


def test_bootstrap_draws_the_same_samples_for_every_head():
    rng = np.random.default_rng(2)
    t, v = rng.normal(size=50), rng.normal(size=40)
    before = {'a': (t, v), 'b': (t, v)}
    after = {'a': (t - 1, v - 0.5), 'b': (t - 1, v - 0.5)}
    calls = []

    def record(b, a, ses):
        calls.append((b, a, ses))
        return {'a': 0.5, 'b': 0.5}

    bootstrap_weight_intervals(before, after, record, num_resamples=20)
    assert len(calls) == 20
    for b, a, ses in calls:
        assert b['a'] == b['b'] and a['a'] == a['b'] and ses['a'] == ses['b']
    assert len({b['a'] for b, _, _ in calls}) == 20  # real resamples


def test_bootstrap_equals_a_plain_resampling_loop():
    """The vectorised means and standard errors are those of gathering the
    resampled indices (V's drawn first, then T')."""
    before, after = clear_case(num_v=30, num_t=20, seed=3)
    calls = []

    def record(b, a, ses):
        calls.append((b, a, ses))
        return {h: 0.0 for h in a}

    bootstrap_weight_intervals(before, after, record, num_resamples=5, seed=11)
    rng = np.random.default_rng(11)
    idx_v = rng.integers(0, 30, size=(5, 30))
    idx_t = rng.integers(0, 20, size=(5, 20))
    for r, (b, a, ses) in enumerate(calls):
        for head in after:
            tb, vb = (x[idx_t[r]] if i == 0 else x[idx_v[r]]
                      for i, x in enumerate(before[head]))
            ta, va = (x[idx_t[r]] if i == 0 else x[idx_v[r]]
                      for i, x in enumerate(after[head]))
            assert b[head] == pytest.approx((tb.mean(), vb.mean()), rel=1e-12)
            assert a[head] == pytest.approx((ta.mean(), va.mean()), rel=1e-12)
            assert ses[head] == pytest.approx(
                paired_standard_errors(tb, vb, ta, va), rel=1e-9)


def test_bootstrap_is_fast():
    before, after = clear_case(num_v=3000, num_t=3000)
    start = time.perf_counter()
    bootstrap_weight_intervals(
        before, after, lambda b, a, s: {h: 0.0
                                        for h in a}, num_resamples=200)
    assert time.perf_counter() - start < 1.0


def test_bootstrap_with_a_non_finite_head_keeps_weights_finite():
    before, after = clear_case(num_v=50, num_t=50)
    bad = after['audio'][1].copy()
    bad[3] = math.nan
    after = dict(after, audio=(after['audio'][0], bad))
    intervals = bootstrap_weight_intervals(
        before, after, blend, num_resamples=30)
    assert intervals['audio'] == (0.0, 0.0)
    assert all(math.isfinite(x) for pair in intervals.values() for x in pair)


@pytest.mark.parametrize('change,match', [
    (dict(after={'rgb': None}), 'same heads'),
    (dict(short_after=True), 'must be measured on the same samples'),
    (dict(short_head=True), 'every head must be measured on the same'),
    (dict(num_resamples=0), 'num_resamples'),
    (dict(num_resamples=2.5), 'num_resamples'),
    (dict(level=1.0), 'level'),
    (dict(estimate_fn=lambda b, a, s: {'rgb': math.nan}), 'finite'),
])
def test_bootstrap_refuses_bad_input(change, match):
    before, after = clear_case(num_v=20, num_t=20)
    kwargs = dict(num_resamples=10)
    estimate_fn = change.pop('estimate_fn', blend)
    if 'after' in change:
        after = {'rgb': after['rgb']}
    if change.pop('short_after', False):
        after = dict(after, rgb=(after['rgb'][0], after['rgb'][1][:-1]))
    if change.pop('short_head', False):
        before = dict(
            before, audio=(before['audio'][0][:-1], before['audio'][1]))
        after = dict(after, audio=(after['audio'][0][:-1], after['audio'][1]))
    change.pop('after', None)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        bootstrap_weight_intervals(before, after, estimate_fn, **kwargs)


@pytest.mark.slow
def test_module_needs_no_torch():
    import_file_alone(paired_noise.__file__,
                      ('torch', 'mmengine', 'mmaction'))
