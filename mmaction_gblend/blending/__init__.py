"""The math of the balancing strategies (pure functions, no mmengine).

* :mod:`.gblend`: Gradient-Blending weights (Wang, Tran, Feiszli, CVPR
  2020, Sec. 3, Proposition 1, Eq. 7); standard library only.
* :mod:`.paired_noise`: standard errors of G-Blend's G and O from paired
  per-sample values, and bootstrap intervals of the weights; numpy only.
* :mod:`.modulation`: OGM-GE coefficients and OPM drop rates (Peng et al.,
  CVPR 2022; Wei et al., TPAMI 2024); torch only.
"""
from .gblend import (BlendEstimate, HeadBlendStats, blend_statistics,
                     estimate_blend_weights)
from .modulation import (OGM_COEFFICIENTS, discrepancy_ratios,
                         modulate_gradients_, ogm_coefficients,
                         opm_drop_probabilities, opm_rescale_factor,
                         sample_drop_mask)
from .paired_noise import bootstrap_weight_intervals, paired_standard_errors

__all__ = [
    'BlendEstimate', 'HeadBlendStats', 'blend_statistics',
    'estimate_blend_weights', 'bootstrap_weight_intervals',
    'paired_standard_errors', 'OGM_COEFFICIENTS', 'discrepancy_ratios',
    'modulate_gradients_', 'ogm_coefficients', 'opm_drop_probabilities',
    'opm_rescale_factor', 'sample_drop_mask'
]
