"""FiLM fusion: one modality modulates the other feature-wise."""
from typing import Dict, List, Mapping, Optional, Union

from mmaction.registry import MODELS
from torch import Tensor, nn

from .base import BaseFusion, check_positive_int, global_avg_pool


@MODELS.register_module()
class FiLMFusion(BaseFusion):
    """Feature-wise linear modulation of one modality by the other.

    FiLM (Perez et al., "FiLM: Visual Reasoning with a General Conditioning
    Layer", AAAI 2018) as OGM-GE's code uses it for two modalities (Peng et
    al., CVPR 2022): the conditioning modality's pooled features give
    ``gamma, beta = split(W_c pool(x_cond) + b_c)`` and
    ``out = gamma * (W_t pool(x_target) + b_t) + beta``. OGM-GE modulates the
    target features directly (both are 512-d there); the projection ``W_t``
    here lets the two modalities have different widths. OGM-GE's final
    ``fc_out`` is the recognizer's fused head.

    Args:
        in_channels: Channels of each modality's feature map; exactly 2.
        condition: The modality that produces ``gamma`` and ``beta``.
        target: The modulated modality; ``None`` means the other one. If
            given it must be the other modality.
        out_channels: Width of ``gamma``, ``beta`` and the output.
        x_film: OGM-GE's switch of roles: ``True`` (default) keeps them as
            named; ``False`` swaps them, so ``target`` conditions
            ``condition`` (``self.condition`` / ``self.target`` hold the
            roles in effect).
        init_cfg: mmengine initialisation config.

    ``out_channels`` is the argument of that name.

    Raises:
        ValueError: For a number of modalities other than 2, a ``condition``
            or ``target`` that is not one of them, or ``target == condition``.
    """

    min_modalities = 2
    max_modalities = 2

    def __init__(self,
                 in_channels: Dict[str, int],
                 condition: str = 'audio',
                 target: Optional[str] = None,
                 out_channels: int = 512,
                 x_film: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, init_cfg=init_cfg)
        name = type(self).__name__
        condition = self._check_modality_arg('condition', condition)
        other = [m for m in self.modalities if m != condition][0]
        if target is None:
            target = other
        elif target != other:
            raise ValueError(
                f'{name}: `target` must be the modality other than '
                f'`condition`={condition!r}, i.e. {other!r}, got {target!r}')
        if not isinstance(x_film, bool):
            raise ValueError(
                f'{name}: `x_film` must be a bool, got {x_film!r}')
        if not x_film:
            condition, target = target, condition
        self.condition, self.target = condition, target
        self.x_film = x_film
        self.out_channels = check_positive_int(name, 'out_channels',
                                               out_channels)
        # One linear layer predicts gamma and beta together, as in FiLM.
        self.film = nn.Linear(self.in_channels[condition],
                              2 * self.out_channels)
        self.proj = nn.Linear(self.in_channels[target], self.out_channels)

    def fuse(self, feats: Mapping[str, Tensor]) -> Tensor:
        """Modulate the projected target features by the condition's.

        Args:
            feats: Feature maps ``[B, C_m, *spatial_m]`` by modality.

        Returns:
            ``[B, out_channels]``.
        """
        gamma, beta = self.film(global_avg_pool(feats[self.condition])).chunk(
            2, dim=1)
        return gamma * self.proj(global_avg_pool(feats[self.target])) + beta

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', condition={self.condition!r}, target={self.target!r}')
