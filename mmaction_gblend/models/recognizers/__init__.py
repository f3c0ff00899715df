from .multi_head_recognizer import FUSED, MultiHeadRecognizer

__all__ = ['FUSED', 'MultiHeadRecognizer']
