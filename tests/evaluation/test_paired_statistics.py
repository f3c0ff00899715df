"""Paired statistics: the t distribution against table values (scipy's
path and the pure-Python fallback), an interval computed by hand, the
shares of seeds won, tied and lost, and the pairing by seed."""
import math

import pytest

from mmaction_gblend.evaluation import paired_statistics as ps

# two-sided 95% values of Student's t tables
T975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622,
        19: 2.0930, 29: 2.0452}


@pytest.mark.parametrize('df,value', sorted(T975.items()))
def test_t_quantile_matches_the_tables(df, value):
    assert ps.t_quantile(0.975, df) == pytest.approx(value, abs=5e-5)
    assert ps.t_quantile_bisect(0.975, df) == pytest.approx(value, abs=5e-5)
    assert ps.t_quantile(0.025, df) == pytest.approx(-value, abs=5e-5)
    assert ps.t_quantile_bisect(0.025, df) == pytest.approx(-value,
                                                            abs=5e-5)


def test_t_cdf_and_quantile_invert_each_other():
    assert ps.t_cdf(0.0, 7) == pytest.approx(0.5)
    assert ps.t_cdf(2.7764451051977934, 4) == pytest.approx(0.975)
    for p in (0.6, 0.9, 0.995):
        t = ps.t_quantile_bisect(p, 5)
        assert ps.t_cdf(t, 5) == pytest.approx(p, abs=1e-12)
    with pytest.raises(ValueError, match='0 < p < 1'):
        ps.t_quantile(1.0, 4)
    with pytest.raises(ValueError, match='df > 0'):
        ps.t_quantile(0.5, 0)


def test_interval_by_hand():
    # 5 seeds: differences in top-1 points
    diffs = [0.02, 0.04, -0.01, 0.03, 0.0]
    got = ps.paired_stats(diffs)
    mean = 0.08 / 5  # 0.016
    sd = math.sqrt(sum((d - mean)**2 for d in diffs) / 4)
    assert sd == pytest.approx(0.020736441353327723)
    half = 2.7764451051977934 * sd / math.sqrt(5)  # 0.025748...
    assert got['n'] == 5
    assert got['mean'] == pytest.approx(0.016)
    assert got['sd'] == pytest.approx(sd)
    assert got['low'] == pytest.approx(0.016 - half)
    assert got['high'] == pytest.approx(0.016 + half)
    assert got['low'] == pytest.approx(-0.0097478, abs=1e-6)
    assert got['high'] == pytest.approx(0.0417478, abs=1e-6)
    # a wider coverage, a wider interval
    wide = ps.paired_stats(diffs, level=0.99)
    assert wide['low'] < got['low'] and wide['high'] > got['high']


def test_won_tied_lost_shares():
    got = ps.paired_stats([0.1, -0.05, 0.2, 0.0])
    assert (got['won'], got['tied'], got['lost']) == (0.5, 0.25, 0.25)
    got = ps.paired_stats([-0.1, -0.2, -0.3])
    assert (got['won'], got['tied'], got['lost']) == (0, 0, 1)
    single = ps.paired_stats([0.3])
    assert single['sd'] is None and single['low'] is None
    assert single['high'] is None and single['won'] == 1
    with pytest.raises(ValueError, match='at least one'):
        ps.paired_stats([])


def test_differences_pair_by_seed_with_any_score():
    records = [
        dict(strategy='a', seed=0, top1=0.5, acc=dict(prediction=0.4)),
        dict(strategy='a', seed=1, top1=0.6, acc=dict(prediction=0.5)),
        dict(strategy='a', seed=2, top1=0.7, acc=dict(prediction=None)),
        dict(strategy='b', seed=2, top1=0.4, acc=dict(prediction=0.3)),
        dict(strategy='b', seed=0, top1=0.55, acc=dict(prediction=0.2)),
    ]
    seeds, diffs = ps.paired_differences(records, 'a', 'b')
    assert seeds == [0, 2]
    assert diffs == pytest.approx([-0.05, 0.3])
    # a score read by a function; a run without a score is left out
    seeds, diffs = ps.paired_differences(
        records, 'a', 'b', value=lambda r: r['acc']['prediction'])
    assert seeds == [0] and diffs == pytest.approx([0.2])
    row = ps.paired_comparison(records, 'a', 'b')
    assert row['strategy'] == 'a' and row['reference'] == 'b'
    assert row['seeds'] == [0, 2] and row['n'] == 2
    assert row['mean'] == pytest.approx(0.125)
    assert ps.paired_comparison(records, 'a', 'c') is None


def test_t_quantile_to_full_precision_and_its_own_fallback():
    # two-sided 95% values of Student's t tables
    table = {1: 12.706204736174705, 2: 4.302652729911275,
             3: 3.182446305284263, 19: 2.093024054408263,
             29: 2.045229642132703}
    for df, value in table.items():
        assert ps.t_quantile(0.975, df) == pytest.approx(value, rel=1e-9)
        assert ps.t_quantile_bisect(0.975, df) == pytest.approx(
            value, rel=1e-9)
    assert ps.t_quantile_bisect(0.025, 3) == pytest.approx(-table[3])
    assert ps.t_cdf(0.0, 5) == pytest.approx(0.5)


def test_four_seeds_by_hand():
    diffs = [0.10, -0.05, 0.20, 0.0]
    got = ps.paired_stats(diffs)
    mean = 0.25 / 4
    sd = math.sqrt(sum((d - mean)**2 for d in diffs) / 3)
    half = 3.182446305284263 * sd / 2
    assert got['n'] == 4
    assert got['mean'] == pytest.approx(mean)
    assert got['sd'] == pytest.approx(sd)
    assert got['low'] == pytest.approx(mean - half)
    assert got['high'] == pytest.approx(mean + half)
    assert (got['won'], got['tied'], got['lost']) == (0.5, 0.25, 0.25)
    single = ps.paired_stats([0.3])
    assert single['low'] is None and single['won'] == 1


def test_differences_pair_by_seed():
    records = [
        dict(strategy='a', seed=0, top1=0.5),
        dict(strategy='a', seed=1, top1=0.6),
        dict(strategy='a', seed=2, top1=0.7),
        dict(strategy='b', seed=2, top1=0.4),
        dict(strategy='b', seed=0, top1=0.55),
    ]
    seeds, diffs = ps.paired_differences(records, 'a', 'b')
    assert seeds == [0, 2]
    assert diffs == pytest.approx([-0.05, 0.3])
