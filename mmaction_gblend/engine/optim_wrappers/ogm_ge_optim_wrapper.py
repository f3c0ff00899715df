"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly
Gradient Modulation" (CVPR 2022). Between backward and the optimizer step,
the encoder gradients of the modality that is ahead on the current batch
(discrepancy ratio ``rho_m > 1``) are multiplied by ``k_m < 1``, and with GE
every encoder's gradients get Gaussian noise of their own standard
deviation. Both act on one set of each encoder's parameters
(``params``: the kernels, as the authors, or all of them); the heads and
the fusion are never modulated.

Under data parallelism the gradients are already averaged over processes
when :meth:`step` runs, the scores behind ``k`` were summed over processes
in the forward pass, and the noise is drawn from a generator seeded by the
run's seed and the step number, so every process applies the same update.
Under mixed precision the gradients are unscaled once, first, so that the
modulation, the GE noise and the clipping all see true gradients (a
``GradScaler`` may unscale only once per step); then the scaler steps.

The math is in :mod:`mmaction_gblend.blending.modulation`; the groups come
from ``MultiHeadRecognizer.modality_parameters``
(:mod:`mmaction_gblend.models.modulation.parameter_sets`), bound by
``OnTheFlyModulationHook``. The epoch, the scores and the record of each
step go through the model's
:class:`~mmaction_gblend.models.modulation.ModulationState`.
"""
import logging
from typing import Dict, List, Optional

import torch
from mmaction.registry import OPTIM_WRAPPERS
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ...blending.modulation import (check_coefficient_form,
                                    describe_epoch_window, discrepancy_ratios,
                                    in_epoch_window, modulate_gradients_,
                                    ogm_coefficients)
from ...models.modulation import (ModulationState, check_parameter_set,
                                  check_window)
from ...models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ...utils.choices import check_flag, check_number

__all__ = ['OGMGEOptimWrapper', 'AmpOGMGEOptimWrapper']

# Large odd multiplier so (seed, step) pairs map to distinct generator seeds.
_SEED_STRIDE = 1_000_003


class GradientModulation:
    """What both OGM-GE wrappers add to mmengine's: the modulation itself.

    Every setting is checked when the wrapper is built (the Runner builds
    it from ``optim_wrapper``); ``alpha=0``, which leaves every gradient's
    scale alone, is warned about.

    Args:
        alpha: Modulation strength, finite and ``>= 0`` (CVPR: 0.8 on
            CREMA-D, 0.1 on VGGSound).
        coefficient: Form of ``k`` for the dominant modality: ``'paper'``
            (default: ``1 - tanh(alpha * rho)``, the paper's Eq. 10 and the
            authors' final code), ``'continuous'``
            (``1 - tanh(alpha * (rho - 1))``, an earlier form of their
            code) or ``'clamped'`` (``max(0, 1 - alpha * tanh(rho - 1))``,
            a third-party reading of the TPAMI paper); see
            :func:`~mmaction_gblend.blending.ogm_coefficients`.
        params: The encoder parameters scaled and noised: ``'conv'``
            (default: the kernels of the convolution, linear and attention
            layers, the authors' set) or ``'all'`` (every encoder
            parameter, norms included); see
            :func:`~mmaction_gblend.models.modulation.encoder_parameters`.
        ge_noise: Add the GE noise (OGM-GE); False for plain OGM (True or
            False).
        start_epoch: First modulated epoch (0-based, as ``runner.epoch``):
            an integer ``>= 0``.
        end_epoch: Last modulated epoch (included, as in the authors'
            code): an integer ``>= start_epoch``, or ``None`` for no end.
            The CVPR setting ``(0, 50)`` of 100 epochs modulates epochs 0
            to 50.
        **kwargs: mmengine's optim wrapper arguments (``optimizer``,
            ``clip_grad``, ``accumulative_counts``, ...).

    Raises:
        TypeError: A setting of the wrong type (a string or bool ``alpha``,
            a float epoch, a non-bool ``ge_noise``), naming
            ``optim_wrapper.<key>``.
        ValueError: A value out of range, not finite or not a choice,
            naming ``optim_wrapper.<key>``.
    """

    def __init__(self,
                 *,
                 alpha: float = 0.8,
                 coefficient: str = 'paper',
                 params: str = 'conv',
                 ge_noise: bool = True,
                 start_epoch: int = 0,
                 end_epoch: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        try:
            self.alpha = check_number('optim_wrapper.alpha', alpha, 0)
            self.coefficient = check_coefficient_form(coefficient)
            self.params = check_parameter_set(params)
            self.ge_noise = check_flag('optim_wrapper.ge_noise', ge_noise)
            self.start_epoch, self.end_epoch = check_window(
                start_epoch, end_epoch, 'optim_wrapper')
        except (TypeError, ValueError) as err:
            raise type(err)(f'{name}: {err}') from None
        if self.alpha == 0:
            print_log(
                f'{name}: optim_wrapper.alpha=0 makes every k 1: no gradient '
                'is scaled and optim_wrapper.coefficient has no effect' +
                ('' if self.ge_noise else
                 '; with ge_noise=False the wrapper changes nothing'),
                logger='current', level=logging.WARNING)
        self._state: Optional[ModulationState] = None
        self._groups: Optional[Dict[str, List[torch.nn.Parameter]]] = None
        self._seed = 0

    def bind(self, model: MultiHeadModel, seed: int = 0) -> None:
        """Take the model's per-modality encoder parameters and ask its
        modulation state for the scores in the window (called by
        OnTheFlyModulationHook before training).

        Args:
            model: The unwrapped ``MultiHeadRecognizer``.
            seed: The run's seed (the same on every process) for GE noise.

        Raises:
            ValueError: If the model is no
                :class:`~mmaction_gblend.models.recognizers.MultiHeadModel`
                (naming what it lacks) or has one modality, or a group has
                parameters the optimizer does not update.
        """
        name = type(self).__name__
        check_multi_head_model(
            model, f'optim_wrapper.type={name} needs a model with '
            'per-modality parameter groups (MultiHeadRecognizer)')
        groups = model.modality_parameters(self.params)
        optimized = {
            id(p)
            for group in self.optimizer.param_groups for p in group['params']
        }
        for modality, params in groups.items():
            if not params:
                raise ValueError(
                    f'{name}: the {modality!r} encoder has no trainable '
                    f'parameters in optim_wrapper.params={self.params!r}')
            if any(id(p) not in optimized for p in params):
                raise ValueError(
                    f'{name}: some {modality!r} encoder parameters are not '
                    'in the optimizer, so modulating them would do nothing')
        self._state, self._groups, self._seed = (model.modulation_state,
                                                 groups, int(seed))
        self._state.request_scores(self.start_epoch, self.end_epoch)

    def in_window(self) -> bool:
        """Whether the current epoch (the bound model's) is in
        ``start_epoch..end_epoch``, both included; False before binding."""
        epoch = None if self._state is None else self._state.epoch
        return in_epoch_window(epoch, self.start_epoch, self.end_epoch)

    def describe(self) -> str:
        """The settings, for the log (``OnTheFlyModulationHook``)."""
        return (f'OGM{"-GE" if self.ge_noise else ""} (alpha {self.alpha}, '
                f'{self.coefficient} k, {self.params} parameters, '
                f'{describe_epoch_window(self.start_epoch, self.end_epoch)})')

    def _noise_generator(self, device: torch.device) -> torch.Generator:
        # The step number survives resume (the train loop restores it), so
        # an interrupted run draws the same noise as an uninterrupted one.
        generator = torch.Generator(device=device)
        generator.manual_seed((self._seed * _SEED_STRIDE + self._inner_count)
                              % (2**63 - 1))
        return generator

    def modulate(self) -> None:
        """Scale (and perturb) the encoder gradients of this step.

        Raises:
            RuntimeError: If no hook bound the model.
        """
        if self._groups is None:
            raise RuntimeError(
                f'{type(self).__name__} is not bound to a model: add '
                "dict(type='OnTheFlyModulationHook') to custom_hooks")
        scores = self._state.take_scores()
        if scores is None or not self.in_window():
            return
        ratios, valid = discrepancy_ratios(scores)
        k = ogm_coefficients(ratios, self.alpha, self.coefficient)
        generator = None
        for i, params in enumerate(self._groups.values()):
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                continue
            if self.ge_noise and generator is None:
                generator = self._noise_generator(grads[0].device)
            modulate_gradients_(grads, k[i].to(grads[0].device),
                                noise=self.ge_noise, generator=generator)
        self._state.record_gradient_modulation(k, ratios, valid)


@OPTIM_WRAPPERS.register_module()
class OGMGEOptimWrapper(GradientModulation, OptimWrapper):
    """mmengine's ``OptimWrapper`` with OGM(-GE) before clipping and the
    step. Arguments: :class:`GradientModulation`."""

    def step(self, **kwargs) -> None:
        self.modulate()
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class AmpOGMGEOptimWrapper(GradientModulation, AmpOptimWrapper):
    """The mixed-precision form (``tools/train.py --amp`` switches to it).

    The gradients are unscaled once, before modulation; clipping and the
    scaler's step follow as in ``AmpOptimWrapper`` (the scaler still skips
    the step when a gradient is not finite).
    """

    def step(self, **kwargs) -> None:
        self.loss_scaler.unscale_(self.optimizer)
        self.modulate()
        if self.clip_grad_kwargs:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)
