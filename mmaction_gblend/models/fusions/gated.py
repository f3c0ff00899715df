"""Gated fusion: one modality gates the other's projected features."""
from typing import Dict, List, Mapping, Optional, Union

import torch
from mmaction.registry import MODELS
from torch import Tensor, nn

from .base import BaseFusion, check_positive_int, global_avg_pool


@MODELS.register_module()
class GatedFusion(BaseFusion):
    """Sigmoid gate from one modality on the other's projection.

    As in OGM-GE's code (Peng et al., "Balanced Multimodal Learning via
    On-the-fly Gradient Modulation", CVPR 2022):
    ``out = sigmoid(W_g pool(x_gate) + b_g) * (W_o pool(x_other) + b_o)``,
    both projections to ``out_channels``. OGM-GE's final ``fc_out`` is the
    recognizer's fused head.

    Args:
        in_channels: Channels of each modality's feature map; exactly 2.
        gate: The modality that produces the gate; the other one is gated.
        out_channels: Width of the projections and the output.
        init_cfg: mmengine initialisation config.

    ``out_channels`` is the argument of that name.

    Raises:
        ValueError: For a number of modalities other than 2 or a ``gate``
            that is not one of them.
    """

    min_modalities = 2
    max_modalities = 2

    def __init__(self,
                 in_channels: Dict[str, int],
                 gate: str = 'audio',
                 out_channels: int = 512,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, init_cfg=init_cfg)
        self.gate = self._check_modality_arg('gate', gate)
        self.other = [m for m in self.modalities if m != gate][0]
        self.out_channels = check_positive_int(
            type(self).__name__, 'out_channels', out_channels)
        self.gate_proj = nn.Linear(self.in_channels[self.gate],
                                   self.out_channels)
        self.proj = nn.Linear(self.in_channels[self.other], self.out_channels)

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Gate the other modality's projection.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, out_channels]``.
        """
        g = torch.sigmoid(self.gate_proj(global_avg_pool(feats[self.gate])))
        return g * self.proj(global_avg_pool(feats[self.other]))

    def extra_repr(self) -> str:
        return super().extra_repr() + f', gate={self.gate!r}'
