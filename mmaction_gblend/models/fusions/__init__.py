"""Fusion modules: a dict of per-modality feature maps -> one fused vector.

Every fusion is registered in mmaction2's ``MODELS`` registry and takes
``in_channels`` (channels per modality, config order); its ``out_channels``
is the ``in_channels`` of the recognizer's fused head.
"""
from .base import BaseFusion, global_avg_pool, to_tokens
from .concat import ConcatFusion
from .film import FiLMFusion
from .gated import GatedFusion
from .nl_gate import NLGateFusion
from .se_gate import SEGateFusion
from .sum import SumFusion

__all__ = [
    'BaseFusion', 'ConcatFusion', 'FiLMFusion', 'GatedFusion', 'NLGateFusion',
    'SEGateFusion', 'SumFusion', 'global_avg_pool', 'to_tokens'
]
