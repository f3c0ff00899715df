"""Utilities of no single part of the plugin.

Importing the package gives those that need neither mmaction2 nor torch
(:mod:`.av_writer`, :mod:`.choices`); :mod:`.cli` (the tools' options and
config) and :mod:`.model_wrappers` (:func:`~.model_wrappers.unwrap`) need
mmengine and are imported by name.
"""
from .av_writer import write_video_with_audio, write_wav
from .choices import (check_choice, check_flag, check_integer, check_keys,
                      check_number, check_positive)

__all__ = [
    'write_video_with_audio', 'write_wav', 'check_choice', 'check_positive',
    'check_integer', 'check_number', 'check_flag', 'check_keys'
]
