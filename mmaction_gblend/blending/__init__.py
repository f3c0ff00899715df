"""The math of the balancing strategies (pure functions, no mmengine).

* :mod:`.gblend`: Gradient-Blending weights (Wang, Tran, Feiszli, CVPR
  2020, Sec. 3, Proposition 1, Eq. 7) and the check of a set of blend
  weights; standard library only.
* :mod:`.paired_noise`: standard errors of G-Blend's G and O from paired
  per-sample values, and bootstrap intervals of the weights; numpy only.
* :mod:`.initial_loss`: whether an untrained model's heads start near
  ``log C``, as G-Blend's first estimate needs; standard library only.
* :mod:`.modulation`: OGM-GE coefficients, OPM drop rates and their epoch
  windows (Peng et al., CVPR 2022; Wei et al., TPAMI 2024); torch only.
"""
from .gblend import (BlendEstimate, HeadBlendStats, blend_statistics,
                     check_blend_weights, estimate_blend_weights)
from .initial_loss import (INITIAL_LOSS_TOLERANCE, far_from_chance,
                           initial_loss_check, initial_loss_excess)
from .modulation import (OGM_COEFFICIENTS, check_coefficient_form,
                         check_epoch_window, clamped_coefficient,
                         continuous_coefficient, describe_epoch_window,
                         discrepancy_ratios, in_epoch_window,
                         modulate_gradients_, ogm_coefficients,
                         opm_drop_probabilities, opm_rescale_factor,
                         paper_coefficient, sample_drop_mask)
from .paired_noise import bootstrap_weight_intervals, paired_standard_errors

__all__ = [
    'BlendEstimate', 'HeadBlendStats', 'blend_statistics',
    'estimate_blend_weights', 'check_blend_weights',
    'bootstrap_weight_intervals', 'INITIAL_LOSS_TOLERANCE',
    'far_from_chance', 'initial_loss_check', 'initial_loss_excess',
    'paired_standard_errors', 'OGM_COEFFICIENTS', 'check_coefficient_form',
    'check_epoch_window', 'clamped_coefficient', 'continuous_coefficient',
    'describe_epoch_window', 'discrepancy_ratios', 'in_epoch_window',
    'modulate_gradients_', 'ogm_coefficients', 'opm_drop_probabilities',
    'opm_rescale_factor', 'paper_coefficient', 'sample_drop_mask'
]
