"""The checks that a setting is one of its allowed values, or positive."""
from typing import Collection, Optional, TypeVar

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
