"""Late fusion by concatenation, the G-Blend paper's fusion."""
from typing import Dict, List, Mapping, Optional, Union

import torch
from mmaction.registry import MODELS
from torch import Tensor, nn

from .base import BaseFusion, check_positive_int


@MODELS.register_module()
class ConcatFusion(BaseFusion):
    """Pool each modality, concatenate, then FC layers with ReLU.

    The late-fusion network of Wang, Tran, Feiszli, "What Makes Training
    Multi-Modal Classification Networks Hard?" (CVPR 2020): the modalities'
    pooled features are concatenated and passed through two FC layers, then
    the prediction layer. The prediction layer is the recognizer's fused
    head, not part of this module. Modalities are concatenated in config
    order (the order of ``in_channels``).

    Args:
        in_channels: Channels of each modality's feature map (2 or more).
        hidden_channels: Width of each FC layer.
        num_layers: Number of FC+ReLU layers (the paper: 2); 0 gives the
            plain concatenation of the pooled features.
        dropout: Dropout probability on the concatenated features, before
            the FC layers (0 disables it). Where the paper's own dropout
            baseline placed it is not stated in the main text; this is our
            choice.
        init_cfg: mmengine initialisation config.

    ``out_channels`` is ``hidden_channels``, or ``sum(in_channels.values())``
    when ``num_layers`` is 0.
    """

    def __init__(self,
                 in_channels: Dict[str, int],
                 hidden_channels: int = 512,
                 num_layers: int = 2,
                 dropout: float = 0.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, init_cfg=init_cfg)
        name = type(self).__name__
        self.hidden_channels = check_positive_int(name, 'hidden_channels',
                                                  hidden_channels)
        self.num_layers = check_positive_int(
            name, 'num_layers', num_layers, allow_zero=True)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(
                f'{name}: `dropout` must be in [0, 1), got {dropout!r}')
        self.dropout = nn.Dropout(float(dropout)) if dropout > 0 else \
            nn.Identity()
        width = sum(self.in_channels.values())
        layers = []
        for _ in range(self.num_layers):
            layers += [nn.Linear(width, self.hidden_channels), nn.ReLU()]
            width = self.hidden_channels
        self.mlp = nn.Sequential(*layers)
        self.out_channels = width

    @property
    def has_linear_parts(self) -> bool:
        return self.num_layers == 0

    def linear_parts(self, feats: Mapping[str, Tensor]
                     ) -> Optional[Dict[str, Tensor]]:
        """With ``num_layers=0`` the concatenation is linear: modality
        ``m``'s part is its pooled features in its own slot, zeros in the
        others'. With FC layers there is no such split (``None``)."""
        if not self.has_linear_parts:
            return None
        self.check_inputs(feats)
        pooled = self.pooled(feats)
        parts = {}
        for i, m in enumerate(self.modalities):
            parts[m] = torch.cat([
                x if j == i else torch.zeros_like(x)
                for j, x in enumerate(pooled)
            ], dim=1)
        return parts

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Concatenate the pooled features and apply the FC layers.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, out_channels]``.
        """
        x = torch.cat(self.pooled(feats), dim=1)
        return self.mlp(self.dropout(x))
