"""The labels of a batch of data samples as one tensor."""
from typing import Sequence

import torch


def stack_labels(data_samples: Sequence) -> torch.Tensor:
    """``[N]`` class indices, or ``[N, C]`` for one-hot / soft targets."""
    labels = torch.stack([s.gt_label for s in data_samples])
    if labels.dim() == 2 and labels.shape[1] == 1:
        return labels.squeeze(1)
    return labels
