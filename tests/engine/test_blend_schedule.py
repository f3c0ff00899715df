"""When estimates happen (pure)."""
import pytest

from mmaction_gblend.engine import Estimate, blend_schedule


def test_paper_schedule_online():
    # the paper: a 10-epoch warm-up, then every 5 epochs
    assert blend_schedule('online', 'shadow', 22, 10, 5) == [
        Estimate(0, 10), Estimate(10, 5), Estimate(15, 5), Estimate(20, 2)]
    assert blend_schedule('online', 'trajectory', 22, 10, 5) == [
        Estimate(10, 10), Estimate(15, 5), Estimate(20, 5)]


def test_offline_trajectory_is_the_first_online_estimate():
    online = blend_schedule('online', 'trajectory', 22, 10, 5)
    assert blend_schedule('offline', 'trajectory', 22, 10, 5) == online[:1]
    # online with one super-epoch spanning the run is offline
    assert blend_schedule('online', 'trajectory', 12, 4, 20) == \
        blend_schedule('offline', 'trajectory', 12, 4, 5)


def test_offline_shadow_is_algorithm_2():
    # w = GB_Estimate(phi_0, N): from the start over the whole training,
    # whatever the warm-up
    assert blend_schedule('offline', 'shadow', 22, 10, 5) == [
        Estimate(0, 22)]
    assert blend_schedule('offline', 'shadow', 22, 3, 5) == [Estimate(0, 22)]
    # a shorter horizon on request
    assert blend_schedule('offline', 'shadow', 22, 10, 5,
                          offline_horizon=6) == [Estimate(0, 6)]


def test_fixed_plans_nothing():
    assert blend_schedule('fixed', 'shadow', 10, 3, 2) == []


@pytest.mark.parametrize('args,match', [
    (('sometimes', 'shadow', 10, 3, 2), 'mode must be one of'),
    (('online', 'oracle', 10, 3, 2), 'estimator must be one of'),
    (('online', 'shadow', 10, 0, 2), 'warmup_epochs must be a positive'),
    (('online', 'shadow', 10, 3, 1.5), 'super_epochs must be a positive'),
    (('online', 'trajectory', 10, 10, 2), 'must be shorter than the train'),
    (('online', 'shadow', 10, 11, 2), 'longer than the training'),
    (('offline', 'shadow', 10, 3, 2, 11), 'offline_horizon must be an int'),
    (('offline', 'shadow', 10, 3, 2, 0), 'offline_horizon must be an int'),
    (('online', 'shadow', 10, 3, 2, 5), "offline_horizon is for mode='off"),
    (('offline', 'trajectory', 10, 3, 2, 5), 'offline_horizon is for'),
])
def test_bad_schedules_name_the_key(args, match):
    with pytest.raises(ValueError, match=match):
        blend_schedule(*args)


@pytest.mark.parametrize('estimator', ['shadow', 'first_order'])
def test_offline_from_the_start_ignores_the_warmup(estimator):
    # its horizon is offline_horizon (or the whole training): a warm-up
    # longer than the training is not an error, as it is never used
    assert blend_schedule('offline', estimator, 10, 11, 2) == [
        Estimate(0, 10)]
    assert blend_schedule('online', estimator, 10, 4, 3) == [
        Estimate(0, 4), Estimate(4, 3), Estimate(7, 3)]
