"""Drives on-the-fly modulation (OGM-GE, OPM) through training, and logs it.

The modulation itself happens elsewhere: OGM-GE in the optim wrapper
(:class:`~mmaction_gblend.engine.OGMGEOptimWrapper`) between backward and
step, OPM in the recognizer's forward; both meet in the recognizer's
:class:`~mmaction_gblend.models.modulation.ModulationState`. This hook
binds the wrapper to the model's per-modality parameters, starts each epoch
on the state, and logs what the step did (the state's records, taken after
each step): per step as ``train/`` scalars beside the losses (and a line at
DEBUG level), per epoch as a summary line, visualizer scalars and a
JSON-lines history.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...models.modulation.modulation_state import (FEATURE_DROP, GRADIENT,
                                                   SCORES, ModulationState)
from ...models.recognizers.multi_head_contract import check_multi_head_model
from ...utils.model_wrappers import unwrap
from ..history_file import (append_history, check_history_file,
                            rewrite_history)
from ..optim_wrappers import GradientModulation

#: The hook's config key, in the messages.
KEY = 'custom_hooks[OnTheFlyModulationHook]'

# (source, key in its record, name in the logs); one value a modality.
_PER_MODALITY = ((SCORES, 'scores', 'score'), (SCORES, 'ratios', 'ratio'),
                 (GRADIENT, 'coefficients', 'ogm_k'),
                 (FEATURE_DROP, 'probabilities', 'opm_q'))


@HOOKS.register_module()
class OnTheFlyModulationHook(Hook):
    """Runs OGM-GE and/or OPM and logs scores, ratios, ``k`` and ``q``.

    Add it once to ``custom_hooks`` whenever ``optim_wrapper.type`` is an
    OGM-GE wrapper or ``model.opm`` is set; it refuses to run with neither.

    Per epoch it logs, for each modality, the mean true-class probability
    (score), discrepancy ratio, OGM coefficient ``k`` and OPM drop
    probability ``q`` over the epoch's steps, with the fraction of batches
    OPM executed and of samples whose features it dropped.

    Args:
        history_file: JSON-lines file in the work dir, one entry per epoch:
            a non-empty file name (checked when the hook is built).

    Raises:
        TypeError: A ``history_file`` that is not a string.
        ValueError: A blank ``history_file`` or one with a directory part
            (:func:`~mmaction_gblend.engine.history_file.check_history_file`,
            the G-Blend hook's check too).
    """

    # Before GradientBlendingHook (NORMAL), whose shadow training in
    # before_train_epoch runs training forwards that OPM must see the
    # epoch of.
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 history_file: str = 'modulation_history.jsonl') -> None:
        self.history_file = check_history_file(history_file,
                                               f'{KEY}.history_file')
        self.history: List[dict] = []
        self._sums: Dict[str, torch.Tensor] = {}
        self._counts: Dict[str, int] = {}
        # the model's, from before_train on
        self._state: Optional[ModulationState] = None

    # set-up ----------------------------------------------------------------

    @staticmethod
    def _ogm_wrapper(runner: Runner) -> Optional[GradientModulation]:
        wrapper = runner.optim_wrapper
        return wrapper if isinstance(wrapper, GradientModulation) else None

    def before_train(self, runner: Runner) -> None:
        model = check_multi_head_model(
            unwrap(runner.model), 'OnTheFlyModulationHook needs a '
            'MultiHeadRecognizer with per-modality branches')
        model.modality_parameters()  # raises for a uni-modal model
        self.modalities = list(model.modalities)
        self._state = model.modulation_state
        self.opm = model.opm
        self.ogm = self._ogm_wrapper(runner)
        if self.opm is None and self.ogm is None:
            raise ValueError(
                'OnTheFlyModulationHook: nothing to modulate: set '
                "optim_wrapper.type='OGMGEOptimWrapper' (OGM-GE) and/or "
                'model.opm (OPM), or remove the hook')
        parts = []
        if self.ogm is not None:
            self.ogm.bind(model, seed=runner.seed)
            parts.append(self.ogm.describe())
        if self.opm is not None:
            parts.append(f'OPM ({self.opm.extra_repr()})')
        runner.logger.info(
            f'On-the-fly modulation: {" + ".join(parts)}; scores from '
            f'{model.score_source} logits of {self.modalities}')
        # The checkpoint's history, none when starting afresh: a run killed
        # before its first checkpoint, or an earlier run in this work dir,
        # may have left lines in the file.
        rewrite_history(self._history_path(runner), self.history)
        self._state.begin_epoch(runner.epoch)

    def _history_path(self, runner: Runner) -> str:
        return osp.join(runner.work_dir, self.history_file)

    def before_train_epoch(self, runner: Runner) -> None:
        self._state.begin_epoch(runner.epoch)
        self._sums, self._counts = {}, {}

    # per step --------------------------------------------------------------

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        # taken, so a step that did nothing is not counted twice
        records = self._state.take_step_records()
        if not records:
            return
        names, values = [], []
        for source, key, label in _PER_MODALITY:
            if source in records:
                names += [f'{label}_{m}' for m in self.modalities]
                values.append(records[source][key].detach().float())
        if FEATURE_DROP in records:
            opm = records[FEATURE_DROP]
            names += ['opm_executed'] + [
                f'opm_dropped_{m}' for m in self.modalities
            ] + ['opm_samples']
            values += [opm['executed'].reshape(1), opm['dropped'].float(),
                       opm['samples'].reshape(1)]
        if SCORES in records:
            names.append('invalid_scores')
            values.append((~records[SCORES]['valid']).float().reshape(1))
        step = torch.cat([v.reshape(-1).cpu() for v in values])
        for name, value in zip(names, step):
            if not torch.isfinite(value):
                # unusable scores (counted as invalid_scores): kept out of
                # the epoch's means, which go to strict-JSON history
                continue
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1
        # One transfer for the whole step: scalars beside the losses.
        numbers = dict(zip(names, step.tolist()))
        if 'opm_samples' in numbers:
            samples = max(numbers.pop('opm_samples'), 1.0)
            for m in self.modalities:
                numbers[f'opm_dropped_{m}'] /= samples
        invalid = numbers.pop('invalid_scores', 0)
        for name, value in numbers.items():
            runner.message_hub.update_scalar(f'train/{name}', value)
        numbers['invalid_scores'] = invalid
        if runner.logger.isEnabledFor(logging.DEBUG):
            runner.logger.debug(
                f'modulation step {runner.iter + 1}: ' +
                ', '.join(f'{k} {v:.4g}' for k, v in numbers.items()))

    # per epoch -------------------------------------------------------------

    def _epoch_summary(self) -> dict:
        means = {
            name: float(total) / self._counts[name]
            for name, total in self._sums.items()
        }
        entry = {}
        for _, _, label in _PER_MODALITY:
            if all(f'{label}_{m}' in means for m in self.modalities):
                entry[label] = {
                    m: means[f'{label}_{m}']
                    for m in self.modalities
                }
        if 'opm_executed' in means:
            # Drop counts differ per process: sum them over all processes.
            names = [f'opm_dropped_{m}' for m in self.modalities]
            counts = torch.tensor(
                [float(self._sums[n]) for n in names + ['opm_samples']],
                dtype=torch.float64)
            all_reduce(counts, op='sum')
            samples = max(counts[-1].item(), 1.0)
            entry['opm_executed'] = means['opm_executed']
            entry['opm_dropped'] = {
                m: counts[i].item() / samples
                for i, m in enumerate(self.modalities)
            }
        if 'invalid_scores' in self._sums:
            entry['invalid_scores'] = int(self._sums['invalid_scores'])
        entry['steps'] = max(self._counts.values()) if self._counts else 0
        return entry

    def after_train_epoch(self, runner: Runner) -> None:
        entry = dict(epoch=runner.epoch + 1, **self._epoch_summary())
        self.history.append(entry)
        scalars, parts = {}, []
        for key, value in entry.items():
            if isinstance(value, dict):
                parts.append(f'{key} ' + ' '.join(
                    f'{m} {v:.4f}' for m, v in value.items()))
                scalars.update(
                    {f'modulation/{key}/{m}': v
                     for m, v in value.items()})
            elif key not in ('epoch', 'steps', 'invalid_scores'):
                parts.append(f'{key} {value:.4g}')
                scalars[f'modulation/{key}'] = value
        runner.visualizer.add_scalars(scalars, step=entry['epoch'])
        if entry['steps'] == 0:
            parts = ['off (outside the windows)']
        runner.logger.info(f'Modulation, epoch {entry["epoch"]}: ' +
                           '; '.join(parts))
        if entry.get('invalid_scores'):
            runner.logger.warning(
                f'Modulation: {entry["invalid_scores"]} step(s) of epoch '
                f'{entry["epoch"]} had non-finite or zero scores; they were '
                'not modulated (k = 1, q = 0)')
        append_history(self._history_path(runner), entry)

    # checkpoints -----------------------------------------------------------

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint['modulation'] = dict(history=list(self.history))

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('modulation')
        if state is not None and runner._resume:
            self.history = list(state.get('history', []))
