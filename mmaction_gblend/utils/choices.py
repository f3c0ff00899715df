"""The checks of a setting's value: one of its allowed values, positive, an
integer, a finite number in a range, a flag, or a dict of known keys.

Each raises with a message that starts with the setting's config key.
"""
import math
import numbers
from typing import Any, Collection, Mapping, Optional, TypeVar

T = TypeVar('T')


def check_choice(key: str, value: T, choices: Collection) -> T:
    """Return ``value`` if it is one of ``choices``.

    Args:
        key: The setting's name in the message, e.g.
            ``'DecodeAudioTrack.backend'``.
        value: The value given.
        choices: The allowed values, shown in the message as given (pass
            a sorted list for a set).

    Returns:
        ``value``.

    Raises:
        ValueError: ``'<key> must be one of <choices>, got <value>'``.
    """
    if value not in choices:
        raise ValueError(f'{key} must be one of {choices}, got {value!r}')
    return value


def check_positive(key: str,
                   value: Optional[T],
                   optional: bool = False) -> Optional[T]:
    """Return ``value`` if it is positive (or ``None`` where ``optional``).

    Args:
        key: The setting's name in the message, e.g.
            ``'DecodeAudioTrack.sample_rate'``.
        value: The value given.
        optional: Whether ``None`` (the setting unused) is allowed.

    Returns:
        ``value``.

    Raises:
        ValueError: ``'<key> must be positive, got <value>'``.
    """
    if not (optional and value is None) and value <= 0:
        raise ValueError(f'{key} must be positive, got {value}')
    return value


def check_integer(key: str,
                  value: Any,
                  minimum: Optional[int] = None,
                  optional: bool = False) -> Optional[int]:
    """Return ``value`` if it is an integer (not a bool) ``>= minimum``.

    A float such as ``2.5`` (or ``2.0``) is refused rather than truncated.

    Args:
        key: The setting's name in the message, e.g.
            ``'optim_wrapper.start_epoch'``.
        value: The value given.
        minimum: The smallest allowed value; ``None`` for no bound.
        optional: Whether ``None`` (the setting unused) is allowed.

    Returns:
        ``value`` as an ``int`` (or ``None`` where ``optional``).

    Raises:
        TypeError: ``'<key> must be an integer, got <value>'``.
        ValueError: ``'<key> must be >= <minimum>, got <value>'``.
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f'{key} must be an integer, got {value!r}')
    if minimum is not None and value < minimum:
        raise ValueError(f'{key} must be >= {minimum}, got {value!r}')
    return int(value)


def _interval(minimum: Optional[float], maximum: Optional[float],
              open_minimum: bool, open_maximum: bool) -> str:
    """``'in [0, 1)'``, ``'> 0'``, ``'<= 1'``: the allowed values, in
    words."""
    if minimum is not None and maximum is not None:
        return (f"in {'(' if open_minimum else '['}{minimum}, {maximum}"
                f"{')' if open_maximum else ']'}")
    if maximum is None:
        return f"{'>' if open_minimum else '>='} {minimum}"
    return f"{'<' if open_maximum else '<='} {maximum}"


def check_number(key: str,
                 value: Any,
                 minimum: Optional[float] = None,
                 maximum: Optional[float] = None,
                 *,
                 open_minimum: bool = False,
                 open_maximum: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number (not a
    bool) between ``minimum`` and ``maximum``.

    Args:
        key: The setting's name in the message, e.g.
            ``'optim_wrapper.alpha'``.
        value: The value given.
        minimum: The smallest allowed value; ``None`` for no bound.
        maximum: The largest allowed value; ``None`` for no bound.
        open_minimum: ``minimum`` itself is refused (``value > minimum``).
        open_maximum: ``maximum`` itself is refused (``value < maximum``).

    Returns:
        ``float(value)``.

    Raises:
        TypeError: ``'<key> must be a number, got <value>'``.
        ValueError: ``'<key> must be finite'``, ``'... >= <minimum>'``,
            ``'... <= <maximum>'`` or ``'... in [<minimum>, <maximum>]'``
            (``>``, ``<``, ``(`` and ``)`` for open bounds), with the
            value given.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{key} must be a number, got {value!r}')
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f'{key} must be finite, got {value!r}')
    low = minimum is None or (number > minimum if open_minimum else
                              number >= minimum)
    high = maximum is None or (number < maximum if open_maximum else
                               number <= maximum)
    if not (low and high):
        bound = _interval(minimum, maximum, open_minimum, open_maximum)
        raise ValueError(f'{key} must be {bound}, got {value!r}')
    return number


def check_flag(key: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False``.

    Any other value is refused, not read by truth value: ``'no'`` or
    ``'False'`` (a string) would be true.

    Args:
        key: The setting's name in the message, e.g.
            ``'optim_wrapper.ge_noise'``.
        value: The value given.

    Returns:
        ``value``.

    Raises:
        TypeError: ``'<key> must be True or False, got <value>'``.
    """
    if not isinstance(value, bool):
        raise TypeError(f'{key} must be True or False, got {value!r}')
    return value


def check_keys(key: str,
               cfg: Any,
               known: Collection[str],
               required: Collection[str] = ()) -> dict:
    """Return a copy of the dict ``cfg`` if it has every ``required`` key
    and no key outside ``known``.

    Args:
        key: The setting's name in the messages, e.g.
            ``'MultiHeadRecognizer.opm'``.
        cfg: The value given.
        known: The keys allowed.
        required: The keys that must be given.

    Returns:
        ``dict(cfg)``.

    Raises:
        TypeError: ``'<key> must be a dict, got <cfg>'``.
        ValueError: ``'<key>: unknown keys [...] (known: [...])'`` or
            ``'<key> needs [...]'``.
    """
    if not isinstance(cfg, Mapping):
        raise TypeError(f'{key} must be a dict, got {cfg!r}')
    unknown = sorted(set(cfg) - set(known), key=str)
    if unknown:
        raise ValueError(
            f'{key}: unknown keys {unknown} (known: {sorted(known)})')
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f'{key} needs {missing}')
    return dict(cfg)
