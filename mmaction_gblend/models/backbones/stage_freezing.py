"""``frozen_stages`` and ``norm_eval`` with mmaction2's meaning, shared."""
from typing import Sequence

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class StageFreezingMixin:
    """Freeze the first stages and optionally keep every norm in eval mode.

    The host defines ``frozen_stages`` (-1: none; 0: the stem; k: the stem
    and stages 1..k), ``norm_eval`` and ``_stage_modules(index)``.
    """
    frozen_stages: int
    norm_eval: bool

    def _init_stage_freezing(self, frozen_stages: int, num_stages: int,
                             norm_eval: bool) -> None:
        """Check and store ``frozen_stages`` and ``norm_eval``.

        Args:
            frozen_stages: -1 (nothing), 0 (the stem) or up to
                ``num_stages``.
            num_stages: How many stages the host has after its stem.
            norm_eval: Whether to keep all norm layers in eval mode during
                training.

        Raises:
            ValueError: If ``frozen_stages`` is outside -1..num_stages.
        """
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(
                f'{type(self).__name__}.frozen_stages must be in '
                f'-1..{num_stages}, got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def _stage_modules(self, index: int) -> Sequence[nn.Module]:
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        """Fix the parameters and norm statistics of the frozen stages."""
        for index in range(self.frozen_stages + 1):
            for module in self._stage_modules(index):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True):
        """Set train/eval mode, keeping frozen stages and norms in eval."""
        super().train(mode)
        # nn.Module.train flips every child back to training mode.
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
