"""Fusion by summing per-modality linear projections."""
from typing import Dict, List, Mapping, Optional, Union

from mmaction.registry import MODELS
from torch import Tensor, nn

from .base import BaseFusion, check_positive_int, global_avg_pool


@MODELS.register_module()
class SumFusion(BaseFusion):
    """Pool each modality, project it linearly to ``out_channels``, sum.

    ``out = sum_m (W_m pool(x_m) + b_m)``. Nothing non-linear follows, so
    with the recognizer's linear fused head ``V`` the logits are
    ``sum_m V W_m pool(x_m) + const``: a sum of per-modality linear
    classifiers, which is the sum fusion of OGM-GE (Peng et al., "Balanced
    Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022;
    their code adds one linear output per modality). Each modality's share
    of the fused logits is therefore exactly ``V W_m pool(x_m)`` (see
    :meth:`project`).

    Args:
        in_channels: Channels of each modality's feature map (2 or more).
        out_channels: Width of the projections and of the output.
        init_cfg: mmengine initialisation config.

    ``out_channels`` is the argument of that name.
    """

    def __init__(self,
                 in_channels: Dict[str, int],
                 out_channels: int = 512,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, init_cfg=init_cfg)
        self.out_channels = check_positive_int(
            type(self).__name__, 'out_channels', out_channels)
        self.proj = nn.ModuleDict({
            m: nn.Linear(c, self.out_channels)
            for m, c in self.in_channels.items()
        })

    def project(self, feats: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        """Each modality's projection ``W_m pool(x_m) + b_m``.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, out_channels]`` per modality, in config order.
        """
        self.check_inputs(feats)
        return {
            m: self.proj[m](global_avg_pool(feats[m]))
            for m in self.modalities
        }

    @property
    def has_linear_parts(self) -> bool:
        return True

    def linear_parts(self, feats: Mapping[str, Tensor]
                     ) -> Optional[Dict[str, Tensor]]:
        """Each modality's projection (with its own bias): the fused
        features are exactly their sum."""
        return self.project(feats)

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Sum the per-modality projections.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, out_channels]``.
        """
        # Fixed (config) order of summation keeps results bit-identical
        # whatever the dict's insertion order.
        parts = [
            self.proj[m](global_avg_pool(feats[m])) for m in self.modalities
        ]
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out
