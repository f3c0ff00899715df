"""Gradient-Blending weight math (pure: standard library only).

See :mod:`mmaction_gblend.blending.gblend` and Wang, Tran, Feiszli, CVPR 2020,
Sec. 3, Proposition 1, Eq. 7.
"""
from .gblend import (BlendEstimate, HeadBlendStats, blend_statistics,
                     estimate_blend_weights)

__all__ = [
    'BlendEstimate', 'HeadBlendStats', 'blend_statistics',
    'estimate_blend_weights'
]
