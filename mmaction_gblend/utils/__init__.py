"""Utilities that need neither mmaction2 nor torch."""
from .av_writer import write_video_with_audio, write_wav

__all__ = ['write_video_with_audio', 'write_wav']
