"""Non-local (attention) gating across modalities (the paper's NL-gate)."""
from typing import Dict, List, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from torch import Tensor, nn

from .base import BaseFusion, check_positive_int, global_avg_pool, to_tokens


@MODELS.register_module()
class NLGateFusion(BaseFusion):
    """The query modality attends to the other modalities' tokens.

    The "NL-gate" fusion baseline of Wang, Tran, Feiszli (CVPR 2020), built
    on the non-local block (Wang, Girshick, Gupta, He, "Non-local Neural
    Networks", CVPR 2018): the ``query`` modality's map is flattened to
    tokens and projected to ``embed_channels`` (queries); every other
    modality's tokens are projected to keys and values (one projection per
    modality, since widths differ) and concatenated along the token axis.
    Scaled dot-product attention gives one vector per query token, which is
    projected back to ``C_query`` and added to the query map (residual). As
    in non-local blocks, that last projection starts at zero, so at
    initialisation the block is the identity and the output is the plain
    concatenation of the pooled maps. Finally all maps (the query's updated)
    are pooled and concatenated in config order; that vector is the output.
    A ``[B, C]`` input is a single token. The paper reports this gate does
    not fix naive fusion's overfitting (71.7 top-1 on Kinetics audio+RGB vs
    72.6 for RGB alone); it is a baseline.

    Args:
        in_channels: Channels of each modality's feature map (2 or more).
        query: The modality whose map is updated by attention.
        embed_channels: Width of queries, keys and values.
        num_heads: Attention heads; must divide ``embed_channels``.
        init_cfg: mmengine initialisation config. The output projection is
            zeroed again after any ``init_cfg`` initialisation.

    ``out_channels`` is ``sum(in_channels.values())``.

    Raises:
        ValueError: If ``query`` is not one of the modalities or
            ``num_heads`` does not divide ``embed_channels``.
    """

    def __init__(self,
                 in_channels: Dict[str, int],
                 query: str = 'rgb',
                 embed_channels: int = 256,
                 num_heads: int = 1,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, init_cfg=init_cfg)
        name = type(self).__name__
        self.query = self._check_modality_arg('query', query)
        self.context = [m for m in self.modalities if m != query]
        self.embed_channels = check_positive_int(name, 'embed_channels',
                                                 embed_channels)
        self.num_heads = check_positive_int(name, 'num_heads', num_heads)
        if self.embed_channels % self.num_heads:
            raise ValueError(f'{name}: `num_heads`={num_heads} must divide '
                             f'`embed_channels`={embed_channels}')
        c_query = self.in_channels[query]
        self.q_proj = nn.Linear(c_query, self.embed_channels)
        self.k_proj = nn.ModuleDict({
            m:
            nn.Linear(self.in_channels[m], self.embed_channels)
            for m in self.context
        })
        self.v_proj = nn.ModuleDict({
            m:
            nn.Linear(self.in_channels[m], self.embed_channels)
            for m in self.context
        })
        self.out_proj = nn.Linear(self.embed_channels, c_query)
        self._zero_out_proj()
        self.out_channels = sum(self.in_channels.values())

    def _zero_out_proj(self) -> None:
        # Zero residual branch: the block starts as the identity, as
        # non-local blocks do (Wang et al. 2018 zero-init their last BN).
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then zero the residual projection again."""
        super().init_weights()
        self._zero_out_proj()

    def _heads(self, x: Tensor) -> Tensor:
        # [B, L, E] -> [B, heads, L, E / heads], the layout SDPA expects.
        b, length, _ = x.shape
        return x.view(b, length, self.num_heads, -1).transpose(1, 2)

    def attend(self, feats: Mapping[str, Tensor]) -> Tensor:
        """The query map after the residual attention update.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            Updated query map, same shape as ``feats[query]``.
        """
        x = feats[self.query]
        q = self._heads(self.q_proj(to_tokens(x)))
        ctx = [to_tokens(feats[m]) for m in self.context]
        k = self._heads(
            torch.cat([self.k_proj[m](t) for m, t in zip(self.context, ctx)],
                      dim=1))
        v = self._heads(
            torch.cat([self.v_proj[m](t) for m, t in zip(self.context, ctx)],
                      dim=1))
        att = F.scaled_dot_product_attention(q, k, v)  # [B, H, Lq, E/H]
        b, _, length, _ = att.shape
        z = self.out_proj(att.transpose(1, 2).reshape(b, length, -1))
        if x.dim() == 2:
            return x + z[:, 0]
        # [B, Lq, C] back to the map's layout [B, C, *spatial].
        return x + z.transpose(1, 2).reshape(x.shape)

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Update the query map by attention, pool all maps, concatenate.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, sum of C_m]``.
        """
        updated = self.attend(feats)
        return torch.cat([
            global_avg_pool(updated if m == self.query else feats[m])
            for m in self.modalities
        ],
                         dim=1)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f', query={self.query!r}, '
                f'embed_channels={self.embed_channels}, '
                f'num_heads={self.num_heads}')
