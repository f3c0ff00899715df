"""The check that a setting is one of its allowed values."""
from typing import Collection, TypeVar

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
