"""The classification head of one modality, and of the fused features."""
import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.model import BaseModule

from ..utils import global_avg_pool


@MODELS.register_module()
class ClassifierHead(BaseModule):
    """Global average pooling, dropout and a linear classifier.

    Takes a feature map ``[B, C, *spatial]`` (any number of spatial dims, so
    video ``[B, C, T, H, W]``, audio ``[B, C, T, F]`` or a pooled ``[B, C]``)
    and returns class scores ``[B, num_classes]``.

    Args:
        in_channels: Feature channels C.
        num_classes: Number of classes.
        dropout_ratio: Dropout before the classifier.
        init_std: Std of the normal init of the classifier's weight.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 dropout_ratio: float = 0.5,
                 init_std: float = 0.01,
                 init_cfg=None) -> None:
        if init_cfg is None:
            init_cfg = dict(
                type='Normal', layer='Linear', std=init_std, bias=0)
        super().__init__(init_cfg=init_cfg)
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError('ClassifierHead needs positive in_channels and '
                             f'num_classes, got {in_channels}, {num_classes}')
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.dropout = nn.Dropout(p=dropout_ratio) if dropout_ratio > 0 \
            else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = global_avg_pool(x)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'ClassifierHead expects {self.in_channels} channels, got '
                f'features of shape {tuple(x.shape)}')
        return self.fc_cls(self.dropout(x))
