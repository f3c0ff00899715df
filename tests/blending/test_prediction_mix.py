"""The pure math of the ``'mix'`` prediction
(:mod:`mmaction_gblend.blending.prediction_mix`): the grid of mixing
weights, each mixture's score on a batch, and the choice among them."""
import math
import os.path as osp

import pytest
import torch

from mmaction_gblend.blending.prediction_mix import (best_mixture,
                                                     mixture_scores,
                                                     simplex_grid)
from helpers import REPO, import_file_alone


def test_the_grid_of_three_heads_at_a_tenth():
    grid = simplex_grid(3, 0.1)
    # compositions of 10 tenths into 3 parts: C(12, 2)
    assert grid.shape == (66, 3) and grid.dtype == torch.float64
    assert torch.all(grid >= 0)
    torch.testing.assert_close(
        grid.sum(1), torch.ones(66, dtype=torch.float64), rtol=0, atol=1e-12)
    rows = {tuple(round(v, 9) for v in row) for row in grid.tolist()}
    assert len(rows) == 66  # no row twice
    for one_hot in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        assert one_hot in rows
    assert (0.3, 0.2, 0.5) in rows
    # every value is a multiple of the step
    assert torch.allclose(grid * 10, (grid * 10).round(), atol=1e-9)


@pytest.mark.parametrize('heads,step,rows', [
    (1, 0.1, 1),      # one head: weight 1
    (2, 0.1, 11),
    (2, 0.25, 5),
    (3, 1 / 3, 10),   # C(5, 2)
    (4, 0.5, 10),     # C(5, 3)
    (3, 1.0, 3),      # the one-hot rows alone
])
def test_the_grid_size_is_the_number_of_compositions(heads, step, rows):
    parts = round(1 / step)
    assert math.comb(parts + heads - 1, heads - 1) == rows
    grid = simplex_grid(heads, step)
    assert grid.shape == (rows, heads)
    torch.testing.assert_close(grid.sum(1), torch.ones(rows,
                                                       dtype=torch.float64))
    for head in range(heads):  # the one-hot rows are on every grid
        assert any(row[head] == 1.0 for row in grid.tolist())


@pytest.mark.parametrize('step', [0.3, 0.15, 0.0, -0.1, 1.5, 2.0])
def test_a_step_that_does_not_divide_1_is_an_error(step):
    with pytest.raises(ValueError, match='step must be 1/n for a whole n'):
        simplex_grid(3, step)


def test_no_heads_is_an_error():
    with pytest.raises(ValueError, match='at least one head'):
        simplex_grid(0, 0.1)


# two heads, three samples, three classes; labels 0, 1, 2
PROBS = torch.tensor([
    [[0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.2, 0.6]],    # head a
    [[0.1, 0.7, 0.2], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]],    # head b
], dtype=torch.float64)
LABELS = torch.tensor([0, 1, 2])
GRID = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],
                    dtype=torch.float64)


def test_mixture_scores_by_hand():
    correct, nll = mixture_scores(PROBS, LABELS, GRID)
    # a alone: predicts 0, 0, 2 -> samples 0 and 2 right; true-class
    # probabilities 0.6, 0.2, 0.6
    # the half mixture: [0.35 0.5 0.15], [0.3 0.5 0.2], [0.35 0.15 0.5]
    # -> 1, 1, 2: samples 1 and 2 right; 0.35, 0.5, 0.5
    # b alone: 1, 1, 0 -> sample 1 right; 0.1, 0.8, 0.4
    assert correct.tolist() == [2.0, 2.0, 1.0]
    assert correct.dtype == nll.dtype == torch.float64
    expected = [-math.log(0.6 * 0.2 * 0.6), -math.log(0.35 * 0.5 * 0.5),
                -math.log(0.1 * 0.8 * 0.4)]
    assert nll.tolist() == pytest.approx(expected, rel=1e-12)


def test_mixture_scores_take_float32_probabilities_and_zeros():
    probs = PROBS.float()
    probs[1, 0] = torch.tensor([0.0, 1.0, 0.0])  # b: true class prob. 0
    correct, nll = mixture_scores(probs, LABELS, GRID)
    assert correct.dtype == nll.dtype == torch.float64
    assert correct.tolist() == [2.0, 2.0, 1.0]
    # log(0) is clamped: large and finite
    assert math.isfinite(nll[2]) and nll[2] > 20


def test_the_best_mixture_is_the_most_correct_then_the_lowest_log_loss():
    # the mixture ties a on top-1 and wins on log loss
    correct, nll = mixture_scores(PROBS, LABELS, GRID)
    assert best_mixture(correct, nll) == 1
    f64 = dict(dtype=torch.float64)
    # more correct wins whatever its log loss
    assert best_mixture(torch.tensor([3., 5., 4.], **f64),
                        torch.tensor([0.1, 9.0, 0.2], **f64)) == 1
    # among the most correct, the lowest log loss
    assert best_mixture(torch.tensor([5., 5., 2., 5.], **f64),
                        torch.tensor([2.0, 1.5, 0.1, 1.7], **f64)) == 1
    # and among exact equals, the first
    assert best_mixture(torch.tensor([4., 5., 5.], **f64),
                        torch.tensor([0.0, 1.0, 1.0], **f64)) == 1


@pytest.mark.slow  # a new interpreter
def test_the_module_needs_torch_only():
    out = import_file_alone(
        osp.join(REPO, 'mmaction_gblend', 'blending', 'prediction_mix.py'),
        forbidden=('mmengine', 'mmaction', 'mmcv', 'mmaction_gblend'),
        then='print(len(mod.simplex_grid(3, 0.1)))')
    assert out.strip() == '66'
