"""What on-the-fly modulation (OGM-GE, OPM) knows during training, in one
place.

Four pieces meet in every training step, and each talks only to the
recognizer's :class:`ModulationState`:

* ``OnTheFlyModulationHook`` starts each epoch (:meth:`begin_epoch`) and,
  after each step, takes what the step did for its logs
  (:meth:`take_step_records`);
* the recognizer scores a training batch per modality
  (:meth:`observe_scores`, which also gives the discrepancy ratios) when
  :attr:`wants_scores` says the optim wrapper needs them or OPM runs;
* its OPM module reads :attr:`epoch` and records the features it dropped
  (:meth:`record_feature_drop`);
* the OGM-GE optim wrapper says in which epochs it reads the scores
  (:meth:`request_scores`), takes their sums before its step
  (:meth:`take_scores`) and records its coefficients
  (:meth:`record_gradient_modulation`).

Records and score sums are taken and cleared by the one piece that reads
them, so a step that did nothing is never counted twice. Deep copies of the
recognizer (G-Blend's shadow training) carry a copy of the state, so they
see the epoch without touching the main model's records.
"""
from typing import Dict, Optional, Tuple

import torch
from mmengine.dist import all_reduce

from ...blending.modulation import (check_epoch_window, discrepancy_ratios,
                                    in_epoch_window)
from ...utils.choices import check_integer

__all__ = [
    'ModulationState', 'SCORES', 'FEATURE_DROP', 'GRADIENT', 'check_window'
]

#: Sources of the step records (:meth:`ModulationState.take_step_records`).
SCORES = 'scores'
FEATURE_DROP = 'opm'
GRADIENT = 'ogm'

Record = Dict[str, torch.Tensor]


def check_window(start_epoch: int, end_epoch: Optional[int],
                 key: str) -> Tuple[int, Optional[int]]:
    """The epochs of a modulation window (OGM-GE's or OPM's), checked when
    its settings are built.

    Args:
        start_epoch: First modulated epoch: an integer ``>= 0``.
        end_epoch: Last modulated epoch: an integer ``>= start_epoch``, or
            ``None`` for no end.
        key: The config key of the settings (``'optim_wrapper'``,
            ``'MultiHeadRecognizer.opm'``), for the messages.

    Returns:
        ``(start_epoch, end_epoch)``.

    Raises:
        TypeError: A float, a bool or a string epoch, naming
            ``key.start_epoch`` or ``key.end_epoch`` (``int()`` would
            truncate ``2.5`` to 2 without a word).
        ValueError: From
            :func:`~mmaction_gblend.blending.modulation.check_epoch_window`:
            a negative start or an end before it.
    """
    return check_epoch_window(
        check_integer(f'{key}.start_epoch', start_epoch),
        check_integer(f'{key}.end_epoch', end_epoch, optional=True), key)


class ModulationState:
    """The epoch, the scores and each step's records of on-the-fly
    modulation; owned by a ``MultiHeadRecognizer``.

    Plain Python, no parameters: nothing of it is saved in checkpoints (the
    hook gives the epoch again on resume).
    """

    def __init__(self) -> None:
        self._epoch: Optional[int] = None
        # epochs (first, last or None) in which the optim wrapper reads
        # the scores; None while nobody reads them
        self._score_window: Optional[Tuple[int, Optional[int]]] = None
        self._score_sums: Optional[torch.Tensor] = None
        self._records: Dict[str, Record] = {}

    # epochs ----------------------------------------------------------------

    @property
    def epoch(self) -> Optional[int]:
        """The current epoch (0-based, as ``runner.epoch``); ``None`` until
        :meth:`begin_epoch`."""
        return self._epoch

    def begin_epoch(self, epoch: int) -> None:
        """Start ``epoch`` (called by ``OnTheFlyModulationHook``).

        Pending score sums and records are kept: with gradient accumulation
        an optimizer step may take scores from the end of the last epoch.
        """
        self._epoch = int(epoch)

    def request_scores(self, start_epoch: int,
                       end_epoch: Optional[int]) -> None:
        """Ask for each training batch's score sums in the epochs
        ``start_epoch..end_epoch`` (both included; ``None``: to the end),
        to be taken with :meth:`take_scores` (the OGM-GE wrapper's window).
        """
        self._score_window = (int(start_epoch),
                              None if end_epoch is None else int(end_epoch))

    @property
    def wants_scores(self) -> bool:
        """Whether the score sums of this epoch's batches are read."""
        return self._score_window is not None and in_epoch_window(
            self._epoch, *self._score_window)

    # scores ----------------------------------------------------------------

    def observe_scores(self, scores: torch.Tensor,
                       count: int) -> torch.Tensor:
        """Take a batch's per-modality scores; return its discrepancy ratios.

        The scores and the batch size are summed over all processes in one
        collective, so every process gets the same ratios (and so the same
        OGM coefficients and OPM drop probabilities). The sums are kept for
        :meth:`take_scores` while :attr:`wants_scores`; the mean scores and
        the ratios are recorded for the step's logs.

        Args:
            scores: ``[M]`` this process's sums of true-class probabilities.
            count: This process's number of scored samples.

        Returns:
            ``[M]`` discrepancy ratios, neutral (all 1) for unusable scores.
        """
        counted = torch.cat([scores, scores.new_tensor([count])])
        all_reduce(counted, op='sum')
        scores, total = counted[:-1], counted[-1]
        if self.wants_scores:
            self._score_sums = scores if self._score_sums is None else \
                self._score_sums + scores
        ratios, valid = discrepancy_ratios(scores)
        self._records[SCORES] = dict(
            scores=scores / total.clamp_min(1), ratios=ratios, valid=valid)
        return ratios

    def take_scores(self) -> Optional[torch.Tensor]:
        """The ``[M]`` score sums (all processes') since the last call, or
        ``None`` if no batch was scored; the sums restart from zero."""
        sums, self._score_sums = self._score_sums, None
        return sums

    # step records ----------------------------------------------------------

    def record_feature_drop(self, probabilities: torch.Tensor,
                            executed: bool, dropped: torch.Tensor,
                            samples: int) -> None:
        """What OPM did to a batch.

        Args:
            probabilities: ``[M]`` drop probabilities ``q``.
            executed: Whether the batch was modulated (``p_exe``).
            dropped: ``[M]`` samples whose features were dropped.
            samples: Samples in the batch.
        """
        self._records[FEATURE_DROP] = dict(
            probabilities=probabilities,
            executed=probabilities.new_tensor(float(executed)),
            dropped=dropped,
            samples=probabilities.new_tensor(float(samples)))

    def record_gradient_modulation(self, coefficients: torch.Tensor,
                                   ratios: torch.Tensor,
                                   valid: torch.Tensor) -> None:
        """What OGM-GE did at an optimizer step: ``[M]`` coefficients ``k``
        from ``[M]`` ratios, and whether the scores were usable."""
        self._records[GRADIENT] = dict(
            coefficients=coefficients, ratios=ratios, valid=valid)

    def peek_step_records(self) -> Dict[str, Record]:
        """The records of the current step, left in place (for tests and
        debugging hooks that run before the modulation hook)."""
        return dict(self._records)

    def take_step_records(self) -> Dict[str, Record]:
        """The records since the last call, by source (:data:`SCORES`,
        :data:`FEATURE_DROP`, :data:`GRADIENT`; a source that did nothing
        is absent), then cleared."""
        records, self._records = self._records, {}
        return records
