"""The on-the-fly modulation math: ratios, OGM coefficients, epoch windows,
GE noise, OPM."""
import math

import pytest
import torch

from mmaction_gblend.blending.modulation import (
    OGM_COEFFICIENTS, check_coefficient_form, check_epoch_window,
    clamped_coefficient, continuous_coefficient, describe_epoch_window,
    discrepancy_ratios, in_epoch_window, modulate_gradients_, ogm_coefficients,
    opm_drop_probabilities, opm_rescale_factor, paper_coefficient,
    sample_drop_mask)

# ---- discrepancy ratios ----------------------------------------------------


def test_two_modalities_ratio_and_its_inverse():
    ratios, valid = discrepancy_ratios(torch.tensor([30.0, 12.0]))
    assert bool(valid)
    assert ratios.tolist() == pytest.approx([2.5, 0.4])


def test_three_modalities_pairwise_mean():
    s = [6.0, 3.0, 2.0]
    ratios, _ = discrepancy_ratios(torch.tensor(s))
    expected = [
        sum(s[m] / s[j] for j in range(3) if j != m) / 2 for m in range(3)
    ]
    assert ratios.tolist() == pytest.approx(expected)
    # the weakest modality is never ahead
    assert ratios[2] < 1


def test_equal_scores_are_balanced():
    ratios, _ = discrepancy_ratios(torch.tensor([5.0, 5.0, 5.0]))
    assert ratios.tolist() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize('scores', [
    [float('nan'), 1.0], [float('inf'), 1.0], [0.0, 0.0], [-1.0, 2.0]
])
def test_unusable_scores_give_neutral_ratios(scores):
    ratios, valid = discrepancy_ratios(torch.tensor(scores))
    assert not bool(valid)
    assert ratios.tolist() == [1.0, 1.0]


def test_a_zero_score_beside_a_positive_one_stays_finite():
    ratios, valid = discrepancy_ratios(torch.tensor([0.0, 3.0]))
    assert bool(valid)
    assert torch.isfinite(ratios).all()
    assert ratios[0] == 0 and ratios[1] > 1e6


def test_ratios_need_two_scores():
    with pytest.raises(ValueError, match='at least 2'):
        discrepancy_ratios(torch.tensor([1.0]))


# ---- OGM coefficients ------------------------------------------------------


@pytest.mark.parametrize('form,by_hand', [
    # 1 - tanh(0.8 * 1.5) and 1 - tanh(0.8 * 2): the paper's Eq. 10
    ('paper', {1.5: 0.1663, 2.0: 0.0783}),
    # 1 - tanh(0.8 * 0.5) and 1 - tanh(0.8 * 1)
    ('continuous', {1.5: 0.6201, 2.0: 0.3360}),
])
def test_coefficients_against_hand_values(form, by_hand):
    ratios = torch.tensor(list(by_hand) + [1.0, 0.999, 0.5, 1 / 1.5])
    k = ogm_coefficients(ratios, 0.8, form).tolist()
    assert k[:2] == pytest.approx(list(by_hand.values()), abs=1e-4)
    assert k[2:] == [1.0, 1.0, 1.0, 1.0]  # rho <= 1: untouched


def test_the_paper_form_is_the_default_and_its_functions_are_exact():
    ratios = torch.tensor([2.0, 0.5])
    assert torch.equal(ogm_coefficients(ratios, 0.8),
                       ogm_coefficients(ratios, 0.8, 'paper'))
    assert OGM_COEFFICIENTS[0] == 'paper'
    rho = torch.tensor([1.5, 3.0])
    assert paper_coefficient(rho, 0.8).tolist() == pytest.approx(
        [1 - math.tanh(0.8 * r) for r in (1.5, 3.0)], abs=1e-6)
    assert continuous_coefficient(rho, 0.8).tolist() == pytest.approx(
        [1 - math.tanh(0.8 * (r - 1)) for r in (1.5, 3.0)], abs=1e-6)
    assert clamped_coefficient(rho, 0.8).tolist() == pytest.approx(
        [1 - 0.8 * math.tanh(r - 1) for r in (1.5, 3.0)], abs=1e-6)


def test_clamped_coefficient_is_the_third_party_tpami_reading():
    k = ogm_coefficients(torch.tensor([2.0, 0.5]), 0.8, 'clamped')
    assert k.tolist() == pytest.approx([1 - 0.8 * math.tanh(1.0), 1.0])
    # strong alpha and a large ratio clamp at 0, never negative
    k = ogm_coefficients(torch.tensor([50.0, 0.02]), 3.0, 'clamped')
    assert k.tolist() == [0.0, 1.0]


def test_only_dominant_modalities_are_scaled():
    ratios, _ = discrepancy_ratios(torch.tensor([4.0, 4.0, 1.0]))
    for form in OGM_COEFFICIENTS:
        k = ogm_coefficients(ratios, 0.5, form)
        assert (k[:2] < 1).all() and k[2] == 1
        assert ((k >= 0) & (k <= 1)).all()


def test_the_paper_form_jumps_at_balance_and_the_continuous_does_not():
    just_above = torch.tensor([1.0 + 1e-6])
    jump = ogm_coefficients(just_above, 0.8)
    assert jump.item() == pytest.approx(1 - math.tanh(0.8), abs=1e-5)
    assert jump.item() == pytest.approx(0.336, abs=1e-3)
    for form in ('continuous', 'clamped'):
        k = ogm_coefficients(just_above, 0.8, form)
        assert k.item() == pytest.approx(1.0, abs=1e-5)


def test_coefficient_decreases_with_the_ratio():
    ratios = torch.linspace(1.01, 10, 50)
    for form in OGM_COEFFICIENTS:
        k = ogm_coefficients(ratios, 0.3, form)
        assert (k[1:] <= k[:-1]).all()


def test_coefficient_arguments_are_checked():
    with pytest.raises(ValueError, match='optim_wrapper.coefficient must be '
                       'one of'):
        ogm_coefficients(torch.tensor([2.0, 0.5]), 0.8, 'tanh')
    with pytest.raises(ValueError, match='optim_wrapper.coefficient'):
        check_coefficient_form('discontinuous')
    with pytest.raises(ValueError, match='alpha'):
        ogm_coefficients(torch.tensor([2.0, 0.5]), -0.1)


# ---- epoch windows ---------------------------------------------------------


@pytest.mark.parametrize('epoch,active', [(None, False), (1, False),
                                          (2, True), (3, True), (5, True),
                                          (6, False)])
def test_windows_include_both_ends(epoch, active):
    assert in_epoch_window(epoch, 2, 5) == active


def test_a_window_without_end_runs_to_the_last_epoch():
    assert not in_epoch_window(4, 5, None)
    assert all(in_epoch_window(e, 5, None) for e in (5, 99, 10_000))
    assert describe_epoch_window(5, None) == 'epochs 5-last'
    assert describe_epoch_window(0, 3) == 'epochs 0-3'


def test_window_settings_are_checked():
    assert check_epoch_window(3, 3, 'optim_wrapper') == (3, 3)  # one epoch
    assert check_epoch_window(0, None, 'optim_wrapper') == (0, None)
    for start, end in ((4, 3), (-1, None)):
        with pytest.raises(ValueError,
                           match='optim_wrapper.start_epoch <= '
                           'optim_wrapper.end_epoch'):
            check_epoch_window(start, end, 'optim_wrapper')


# ---- gradient modulation and GE noise --------------------------------------


def test_scaling_without_noise_is_exact():
    grads = [torch.randn(4, 3), torch.randn(5)]
    before = [g.clone() for g in grads]
    modulate_gradients_(grads, torch.tensor(0.25))
    for g, b in zip(grads, before):
        assert torch.equal(g, b * 0.25)


def test_ge_noise_has_the_gradient_std_and_zero_mean():
    torch.manual_seed(0)
    grad = torch.randn(200_000) * 3.0 + 1.0
    original = grad.clone()
    generator = torch.Generator().manual_seed(1)
    modulate_gradients_([grad], torch.tensor(0.5), noise=True,
                        generator=generator)
    noise = grad - 0.5 * original
    assert noise.mean().item() == pytest.approx(0.0, abs=0.03)
    # the std of the gradient before scaling, not after
    assert noise.std().item() == pytest.approx(
        original.std(correction=0).item(), rel=0.01)
    # independent of the gradient
    corr = torch.corrcoef(torch.stack([noise, original]))[0, 1]
    assert abs(corr.item()) < 0.01


def test_ge_noise_is_the_same_for_the_same_seed():
    grads = [torch.randn(10, 10) for _ in range(2)]
    outs = []
    for _ in range(2):
        copies = [g.clone() for g in grads]
        modulate_gradients_(copies, torch.tensor(0.7), noise=True,
                            generator=torch.Generator().manual_seed(42))
        outs.append(copies)
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    other = [g.clone() for g in grads]
    modulate_gradients_(other, torch.tensor(0.7), noise=True,
                        generator=torch.Generator().manual_seed(43))
    assert not torch.equal(other[0], outs[0][0])


def test_a_one_element_gradient_gets_no_noise_and_no_nan():
    grad = [torch.tensor([2.0])]
    modulate_gradients_(grad, torch.tensor(0.5), noise=True,
                        generator=torch.Generator().manual_seed(0))
    assert grad[0].tolist() == [1.0]


# ---- OPM -------------------------------------------------------------------


def test_opm_drop_probability_rule():
    ratios = torch.tensor([2.0, 0.5])
    q = opm_drop_probabilities(ratios, base=0.5, lam=0.5)
    assert q.tolist() == pytest.approx([0.5 * (1 + 0.5 * math.tanh(1.0)), 0])
    # balanced: nothing dropped; clipped at 1
    assert opm_drop_probabilities(torch.tensor([1.0, 1.0])).tolist() == \
        [0.0, 0.0]
    assert opm_drop_probabilities(torch.tensor([9.0, 0.1]), 0.9,
                                  5.0)[0].item() == 1.0


def test_opm_rescale_factor_is_dimension_weighted():
    q = torch.tensor([0.6, 0.0])
    dims = torch.tensor([300.0, 100.0])
    theta = 0.6 * 300 / 400
    expected = 1 / (1 - theta)
    assert opm_rescale_factor(q, dims).item() == pytest.approx(expected)
    assert opm_rescale_factor(torch.zeros(2), dims).item() == 1.0
    assert torch.isfinite(opm_rescale_factor(torch.ones(2), dims))


def test_drop_mask_rates_follow_the_probabilities():
    generator = torch.Generator().manual_seed(0)
    q = torch.tensor([0.7, 0.2, 0.0])
    mask = sample_drop_mask(q, 100_000, generator)
    assert mask.shape == (100_000, 3) and mask.dtype == torch.bool
    rates = mask.float().mean(dim=0)
    assert rates.tolist() == pytest.approx([0.7, 0.2, 0.0], abs=0.01)


def test_no_sample_loses_every_modality():
    mask = sample_drop_mask(torch.tensor([0.9, 0.9]), 10_000,
                            torch.Generator().manual_seed(0))
    assert not mask.all(dim=1).any()
    # the other draws are kept: one of the two dropped with 2 * 0.9 * 0.1
    one_dropped = (mask.sum(dim=1) == 1).float().mean().item()
    assert one_dropped == pytest.approx(0.18, abs=0.015)
