"""ModulationState as a unit: epochs, score sums, take-and-clear records."""
import copy

import pytest
import torch

from mmaction_gblend.blending import discrepancy_ratios
from mmaction_gblend.models.modulation import ModulationState
from mmaction_gblend.models.modulation.modulation_state import (FEATURE_DROP,
                                                                GRADIENT,
                                                                SCORES)


def test_no_epoch_and_no_scores_until_asked():
    state = ModulationState()
    assert state.epoch is None
    assert not state.wants_scores
    state.begin_epoch(3)
    assert state.epoch == 3
    assert not state.wants_scores  # nobody requested scores
    assert state.take_scores() is None
    assert state.take_step_records() == {}


@pytest.mark.parametrize('end_epoch', [4, None])
def test_scores_are_wanted_in_the_window_both_ends_included(end_epoch):
    state = ModulationState()
    state.request_scores(2, end_epoch)
    assert not state.wants_scores  # no epoch yet
    for epoch in range(8):
        state.begin_epoch(epoch)
        inside = epoch >= 2 and (end_epoch is None or epoch <= end_epoch)
        assert state.wants_scores == inside, epoch


def test_observed_scores_add_up_until_taken():
    state = ModulationState()
    state.request_scores(0, None)
    state.begin_epoch(0)
    ratios = state.observe_scores(torch.tensor([3.0, 1.0]), 4)
    assert ratios.tolist() == pytest.approx([3.0, 1 / 3])
    state.observe_scores(torch.tensor([1.0, 1.0]), 4)
    assert state.take_scores().tolist() == [4.0, 2.0]
    assert state.take_scores() is None  # taken, and cleared


def test_scores_outside_the_window_give_ratios_but_no_sums():
    state = ModulationState()
    state.request_scores(0, 0)
    state.begin_epoch(1)
    ratios = state.observe_scores(torch.tensor([1.0, 2.0]), 2)
    assert ratios.tolist() == pytest.approx([0.5, 2.0])
    assert state.take_scores() is None
    assert SCORES in state.take_step_records()


def test_pending_sums_survive_the_start_of_an_epoch():
    """With gradient accumulation, a step may take the scores of batches of
    the epoch before."""
    state = ModulationState()
    state.request_scores(0, None)
    state.begin_epoch(0)
    state.observe_scores(torch.tensor([1.0, 2.0]), 1)
    state.begin_epoch(1)
    assert state.take_scores().tolist() == [1.0, 2.0]


def test_the_step_records_are_taken_and_cleared():
    state = ModulationState()
    scores = torch.tensor([6.0, 2.0])
    state.observe_scores(scores, 8)
    q = torch.tensor([0.4, 0.0])
    state.record_feature_drop(q, True, torch.tensor([3.0, 0.0]), 8)
    k = torch.tensor([0.5, 1.0])
    ratios, valid = discrepancy_ratios(scores)
    state.record_gradient_modulation(k, ratios, valid)

    peeked = state.peek_step_records()
    assert set(peeked) == {SCORES, FEATURE_DROP, GRADIENT}
    assert state.peek_step_records().keys() == peeked.keys()  # left there
    records = state.take_step_records()
    assert state.take_step_records() == {}  # a quiet step logs nothing
    assert records[SCORES]['scores'].tolist() == [0.75, 0.25]  # means
    assert records[SCORES]['ratios'].tolist() == pytest.approx([3, 1 / 3])
    assert bool(records[SCORES]['valid'])
    drop = records[FEATURE_DROP]
    assert drop['probabilities'] is q
    assert (float(drop['executed']), float(drop['samples'])) == (1.0, 8.0)
    assert drop['dropped'].tolist() == [3.0, 0.0]
    assert records[GRADIENT]['coefficients'] is k


def test_unusable_scores_are_recorded_as_invalid():
    state = ModulationState()
    ratios = state.observe_scores(torch.tensor([float('nan'), 1.0]), 2)
    assert ratios.tolist() == [1.0, 1.0]
    assert not bool(state.take_step_records()[SCORES]['valid'])


def test_a_copy_has_its_own_records_and_the_epoch():
    """What G-Blend's shadow copies of the recognizer get."""
    state = ModulationState()
    state.request_scores(0, None)
    state.begin_epoch(2)
    twin = copy.deepcopy(state)
    twin.observe_scores(torch.tensor([1.0, 1.0]), 1)
    assert twin.epoch == 2 and twin.wants_scores
    assert state.take_scores() is None
    assert state.take_step_records() == {}
