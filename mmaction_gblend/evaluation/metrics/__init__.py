from .multi_head_acc_metric import MultiHeadAccMetric

__all__ = ['MultiHeadAccMetric']
