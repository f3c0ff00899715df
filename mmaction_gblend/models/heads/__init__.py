from .classifier_head import ClassifierHead

__all__ = ['ClassifierHead']
