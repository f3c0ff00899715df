from .checkpoint_mapping import load_branch_checkpoint
from .labels import stack_labels
from .pooling import global_avg_pool, to_tokens

__all__ = [
    'load_branch_checkpoint', 'global_avg_pool', 'stack_labels', 'to_tokens'
]
