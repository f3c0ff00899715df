from .add_audio_branch import add_audio_branch
from .multi_head_recognizer import FUSED, MultiHeadRecognizer

__all__ = ['FUSED', 'MultiHeadRecognizer', 'add_audio_branch']
