"""The value checks of mmaction_gblend.utils.choices."""
import re

import numpy as np
import pytest

from mmaction_gblend.utils import (check_flag, check_integer, check_keys,
                                   check_number)


def test_good_values_pass():
    assert check_integer('k', 3, 1) == 3
    assert check_integer('k', np.int64(2)) == 2
    assert check_integer('k', None, optional=True) is None
    assert check_number('k', 1) == 1.0 and check_number('k', 0.5, 0, 1) == 0.5
    assert check_number('k', 1e-9, 0, open_minimum=True) == 1e-9
    assert check_number('k', 0, 0, 1, open_maximum=True) == 0.0
    assert check_number('k', np.float32(0.25), maximum=1) == 0.25
    assert check_flag('k', False) is False
    assert check_keys('k', dict(a=1), ['a', 'b'], ['a']) == dict(a=1)


@pytest.mark.parametrize('call,error,message', [
    (lambda: check_integer('k', 2.0), TypeError,
     'k must be an integer, got 2.0'),
    (lambda: check_integer('k', True), TypeError,
     'k must be an integer, got True'),
    (lambda: check_integer('k', None), TypeError,
     'k must be an integer, got None'),
    (lambda: check_integer('k', 0, 1), ValueError, 'k must be >= 1, got 0'),
    (lambda: check_number('k', '1'), TypeError, "k must be a number, got '1'"),
    (lambda: check_number('k', False), TypeError,
     'k must be a number, got False'),
    (lambda: check_number('k', float('nan')), ValueError,
     'k must be finite, got nan'),
    (lambda: check_number('k', -1, 0), ValueError, 'k must be >= 0, got -1'),
    (lambda: check_number('k', 2, maximum=1), ValueError,
     'k must be <= 1, got 2'),
    (lambda: check_number('k', 1.5, 0, 1), ValueError,
     'k must be in [0, 1], got 1.5'),
    # open bounds: the bound itself is refused
    (lambda: check_number('k', 1, 0, 1, open_maximum=True), ValueError,
     'k must be in [0, 1), got 1'),
    (lambda: check_number('k', 0, 0, open_minimum=True), ValueError,
     'k must be > 0, got 0'),
    (lambda: check_number('k', 1.0, maximum=1, open_maximum=True),
     ValueError, 'k must be < 1, got 1.0'),
    (lambda: check_flag('k', 'yes'), TypeError,
     "k must be True or False, got 'yes'"),
    (lambda: check_flag('k', 1), TypeError, 'k must be True or False, got 1'),
    (lambda: check_keys('k', [('a', 1)], ['a']), TypeError,
     "k must be a dict, got [('a', 1)]"),
    (lambda: check_keys('k', dict(c=1), ['a', 'b']), ValueError,
     "k: unknown keys ['c'] (known: ['a', 'b'])"),
    (lambda: check_keys('k', dict(b=1), ['a', 'b'], ['a']), ValueError,
     "k needs ['a']"),
])
def test_bad_values_name_the_key(call, error, message):
    with pytest.raises(error, match='^' + re.escape(message) + '$'):
        call()
