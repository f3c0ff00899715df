"""The one check of blend weights, under the names that use it."""
import math

import pytest

from mmaction_gblend.blending import check_blend_weights
from mmaction_gblend.models.recognizers.multi_head_recognizer import \
    check_blend_weights as from_the_recognizer


def test_in_the_heads_order_as_floats():
    weights = dict(fused=0.5, rgb=0.25, audio=0.25)
    assert check_blend_weights(weights, ['audio', 'rgb', 'fused'],
                               'w') == [0.25, 0.25, 0.5]
    assert check_blend_weights(weights, None, 'w') == [0.5, 0.25, 0.25]
    assert from_the_recognizer is check_blend_weights


@pytest.mark.parametrize('weights,match', [
    ([0.5, 0.5], r'w must be a dict \{head: weight\}'),
    (dict(rgb=0.5), r"w must give one weight per head \['rgb', 'fused'\]"),
    (dict(rgb='0.5', fused=0.5), r"w\['rgb'\] must be a number"),
    (dict(rgb=True, fused=0.0), r"w\['rgb'\] must be a number"),
    (dict(rgb=math.nan, fused=1.0), 'w must be finite'),
    (dict(rgb=-0.5, fused=1.5), 'w must be >= 0'),
    (dict(rgb=0.5, fused=0.6), r'w must sum to 1, .* \(sum 1.1\)'),
])
def test_what_is_wrong_is_named(weights, match):
    with pytest.raises(ValueError, match=match):
        check_blend_weights(weights, ['rgb', 'fused'], 'w')


def test_the_sum_tolerance_is_the_callers():
    weights = dict(rgb=0.5 + 5e-5, fused=0.5)
    check_blend_weights(weights, None, 'w')
    with pytest.raises(ValueError, match='sum to 1'):
        check_blend_weights(weights, None, 'w', sum_tolerance=1e-6)
