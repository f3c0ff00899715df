"""OPM: on-the-fly prediction modulation by modality-level feature drop.

Wei, Hu, Du, Wen, "On-the-fly Modulation for Balanced Multimodal Learning"
(TPAMI 2024). From the batch's discrepancy ratios, the dominant modality
gets a drop probability ``q_m``; with probability ``p_exe`` per batch, each
sample's feature map of that modality is zeroed with probability ``q_m``
before the fused head, and every modality's features are rescaled by
``1 / (1 - theta)`` (the backward pass carries the same factor). Nothing is
dropped in eval mode or outside the epoch window (``start_epoch`` to
``end_epoch``, both included, as OGM-GE's). The modality heads always
see the full features.

The epoch comes from the recognizer's
:class:`~mmaction_gblend.models.modulation.ModulationState`, and what each
batch's drop did goes there, for ``OnTheFlyModulationHook``'s logs.
"""
import logging
import random
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ...blending.modulation import (describe_epoch_window, in_epoch_window,
                                    opm_drop_probabilities,
                                    opm_rescale_factor, sample_drop_mask)
from ...utils.choices import check_flag, check_number
from .modulation_state import ModulationState, check_window

__all__ = ['PredictionModulation', 'OPM_KEY']

#: The config key of OPM's settings, in the messages.
OPM_KEY = 'MultiHeadRecognizer.opm'


class PredictionModulation(nn.Module):
    """OPM's feature drop for one recognizer (no parameters).

    Args:
        modalities: Modality names, in the recognizer's order.
        feat_dims: Feature width ``d_m`` of each modality (for ``theta``).
        q_base: Base drop probability, in ``[0, 1]`` (authors' default
            0.5).
        lam: Gain ``lambda`` of the ratio term, finite and ``>= 0``
            (authors' default 0.5).
        p_exe: Probability that a batch is modulated at all, in ``[0, 1]``
            (authors' default 0.7).
        start_epoch: First epoch (0-based, as ``runner.epoch``) with
            dropping, after a warm-up of that many epochs: an integer
            ``>= 0`` (authors' default 5).
        end_epoch: Last epoch with dropping (included): an integer
            ``>= start_epoch``, or ``None`` for no end.
        rescale: Rescale by ``1 / (1 - theta)`` (True or False).
        state: The recognizer's modulation state, which gives the epoch and
            takes the records; ``None`` for one of its own.

    Every setting is checked here, when the recognizer is built; a
    ``q_base`` or ``p_exe`` of 0 (OPM that never drops) is warned about.

    Raises:
        TypeError: A setting of the wrong type (a string or bool number, a
            float epoch, a non-bool ``rescale``), naming
            ``MultiHeadRecognizer.opm.<key>``.
        ValueError: A value out of range or not finite, naming the key.
    """

    def __init__(self,
                 modalities: Sequence[str],
                 feat_dims: Dict[str, int],
                 q_base: float = 0.5,
                 lam: float = 0.5,
                 p_exe: float = 0.7,
                 start_epoch: int = 5,
                 end_epoch: Optional[int] = None,
                 rescale: bool = True,
                 state: Optional[ModulationState] = None) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.q_base = check_number(f'{OPM_KEY}.q_base', q_base, 0, 1)
        self.lam = check_number(f'{OPM_KEY}.lam', lam, 0)
        self.p_exe = check_number(f'{OPM_KEY}.p_exe', p_exe, 0, 1)
        self.start_epoch, self.end_epoch = check_window(
            start_epoch, end_epoch, OPM_KEY)
        self.rescale = check_flag(f'{OPM_KEY}.rescale', rescale)
        for key in ('q_base', 'p_exe'):
            if getattr(self, key) == 0:
                print_log(
                    f'{OPM_KEY}.{key}=0: OPM never drops a feature, so its '
                    'other settings (lam, rescale) have no effect',
                    logger='current', level=logging.WARNING)
        self.register_buffer(
            'dims',
            torch.tensor([float(feat_dims[m]) for m in self.modalities]),
            persistent=False)
        self._state = ModulationState() if state is None else state

    def extra_repr(self) -> str:
        return (f'q_base={self.q_base}, lam={self.lam}, p_exe={self.p_exe}, '
                f'{describe_epoch_window(self.start_epoch, self.end_epoch)}')

    def in_window(self) -> bool:
        """Whether the current epoch is in ``start_epoch..end_epoch``, both
        included.

        Raises:
            RuntimeError: If no epoch was set: OPM is driven by the hook.
        """
        epoch = self._state.epoch
        if epoch is None:
            raise RuntimeError(
                'MultiHeadRecognizer.opm is set but no epoch was given to '
                "it: add dict(type='OnTheFlyModulationHook') to "
                'custom_hooks')
        return in_epoch_window(epoch, self.start_epoch, self.end_epoch)

    def forward(self, maps: Dict[str, torch.Tensor], ratios: torch.Tensor,
                views: int = 1) -> Dict[str, torch.Tensor]:
        """Drop and rescale the maps that go to the fusion (training only).

        Args:
            maps: Feature map ``[N*views, C_m, ...]`` by modality.
            ratios: ``[M]`` discrepancy ratios of this batch (the same on
                every process).
            views: Views per sample; a sample's views are dropped together.

        Returns:
            The maps for the fusion: the input maps outside training, the
            window, or a batch that is not executed.
        """
        q = opm_drop_probabilities(ratios, self.q_base, self.lam)
        rows = maps[self.modalities[0]].shape[0]
        batch = rows // views
        executed = random.random() < self.p_exe
        dropped = torch.zeros(len(self.modalities), device=q.device)
        out = maps
        if executed:
            mask = sample_drop_mask(q, batch)
            if views > 1:
                mask = mask.repeat_interleave(views, dim=0)
            dropped = mask.float().sum(dim=0) / views
            factor = opm_rescale_factor(q, self.dims) if self.rescale \
                else q.new_ones(())
            out = {}
            for i, m in enumerate(self.modalities):
                keep = (~mask[:, i]).to(maps[m].dtype) * factor.to(
                    maps[m].dtype)
                out[m] = maps[m] * keep.reshape((-1, ) + (1, ) *
                                                (maps[m].dim() - 1))
        self._state.record_feature_drop(q, executed, dropped, batch)
        return out
