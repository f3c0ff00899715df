"""On-the-fly modulation math: OGM-GE coefficients and OPM drop rates.

Pure functions (torch only: no mmengine, nothing of ours); those on
tensors run on the device of the scores without a host sync.

Sources: Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via
On-the-fly Gradient Modulation" (OGM-GE, CVPR 2022) and Wei, Hu, Du, Wen,
"On-the-fly Modulation for Balanced Multimodal Learning" (TPAMI 2024: OPM,
and OGM for more than two modalities).

* Score ``s_m``: the sum over a batch of the probability that modality
  ``m``'s logits give the true class (computed by the recognizer).
* Discrepancy ratio ``rho_m = mean_{j != m} s_m / s_j``; for two modalities
  ``rho_a = s_a / s_v`` and ``rho_v = 1 / rho_a``. A modality with
  ``rho_m > 1`` is ahead of the others (dominant).
* OGM: the dominant modality's encoder gradients are multiplied by
  ``k_m < 1`` (:func:`ogm_coefficients`); GE adds Gaussian noise of the
  gradient's own standard deviation.
* OPM: the dominant modality's features are dropped, per sample, with
  probability ``q_m`` (:func:`opm_drop_probabilities`), and every feature is
  rescaled by ``1 / (1 - theta)`` (:func:`opm_rescale_factor`).
* Both modulate the epochs ``start_epoch..end_epoch``, both included, as
  the authors' code does (:func:`in_epoch_window`).

Undefined cases (the papers are silent): a score that is not finite, or
scores that are all 0, give neutral ratios (1 for every modality: nothing
is modulated or dropped); a score of 0 next to positive ones is floored at
``eps`` so the ratios stay finite.
"""
from typing import Optional, Sequence, Tuple

import torch

from ..utils.choices import check_choice

__all__ = [
    'OGM_COEFFICIENTS', 'discrepancy_ratios', 'paper_coefficient',
    'continuous_coefficient', 'clamped_coefficient', 'check_coefficient_form',
    'ogm_coefficients', 'check_epoch_window', 'in_epoch_window',
    'describe_epoch_window', 'modulate_gradients_', 'opm_drop_probabilities',
    'opm_rescale_factor', 'sample_drop_mask'
]

#: The forms of the OGM coefficient, by name (see :func:`ogm_coefficients`);
#: the first is the default.
OGM_COEFFICIENTS = ('paper', 'continuous', 'clamped')


def discrepancy_ratios(scores: torch.Tensor,
                       eps: float = 1e-12) -> Tuple[torch.Tensor,
                                                    torch.Tensor]:
    """Each modality's score against the others', ``rho_m``.

    ``rho_m = mean_{j != m} s_m / s_j`` (TPAMI, and the authors' advice for
    more than two modalities); with two modalities this is ``s_a / s_v``
    and its inverse.

    Args:
        scores: ``[M]`` non-negative scores, ``M >= 2``.
        eps: Floor of a score in a denominator.

    Returns:
        ``(ratios [M], valid)``: ``valid`` is a 0-dim bool tensor, False
        when a score is not finite or negative or all are 0; the ratios are
        then all 1 (neutral), never NaN or inf.
    """
    if scores.dim() != 1 or scores.numel() < 2:
        raise ValueError('discrepancy_ratios needs a 1-D tensor of at least '
                         f'2 scores, got shape {tuple(scores.shape)}')
    scores = scores.float()
    valid = (torch.isfinite(scores).all() & (scores >= 0).all()
             & (scores.sum() > 0))
    safe = torch.where(valid, scores, torch.ones_like(scores))
    floor = safe.clamp_min(eps)
    # pairwise[m, j] = s_m / s_j; the diagonal (1) is left out of the mean.
    pairwise = safe[:, None] / floor[None, :]
    m = scores.numel()
    ratios = (pairwise.sum(dim=1) - pairwise.diagonal()) / (m - 1)
    ratios = torch.where(valid & torch.isfinite(ratios), ratios,
                         torch.ones_like(ratios))
    return ratios, valid


def paper_coefficient(ratios: torch.Tensor, alpha: float) -> torch.Tensor:
    """The OGM-GE paper's coefficient, ``1 - tanh(alpha * rho)``.

    The CVPR paper's Eq. 10, and the authors' final CVPR code and their
    TPAMI code. Applied to a dominant modality only (``rho > 1``), it jumps
    at ``rho = 1`` from 1 to ``1 - tanh(alpha)`` (0.34 at ``alpha`` 0.8).

    Args:
        ratios: Discrepancy ratios ``rho``.
        alpha: Modulation strength, ``>= 0``.

    Returns:
        ``k`` for each ratio, in ``(0, 1]``.
    """
    return 1 - torch.tanh(alpha * ratios)


def continuous_coefficient(ratios: torch.Tensor,
                           alpha: float) -> torch.Tensor:
    """An earlier form of the authors' code, ``1 - tanh(alpha * (rho - 1))``.

    Continuous at ``rho = 1`` (``k -> 1`` as ``rho -> 1``), so two nearly
    balanced modalities are barely touched; for the same ``alpha`` it
    modulates far less than :func:`paper_coefficient` (0.62 against 0.17
    at ``rho`` 1.5, ``alpha`` 0.8).

    Args:
        ratios: Discrepancy ratios ``rho``.
        alpha: Modulation strength, ``>= 0``.

    Returns:
        ``k`` for each ratio, in ``(0, 1]`` (1 where ``rho <= 1``).
    """
    return 1 - torch.tanh(alpha * torch.relu(ratios - 1))


def clamped_coefficient(ratios: torch.Tensor, alpha: float) -> torch.Tensor:
    """A third-party reading of the TPAMI paper,
    ``max(0, 1 - alpha * tanh(rho - 1))``.

    Not what the authors' TPAMI code does (it uses
    :func:`paper_coefficient`); continuous at ``rho = 1`` and 0 for a large
    ratio when ``alpha > 1``.

    Args:
        ratios: Discrepancy ratios ``rho``.
        alpha: Modulation strength, ``>= 0``.

    Returns:
        ``k`` for each ratio, in ``[0, 1]`` (1 where ``rho <= 1``).
    """
    return (1 - alpha * torch.tanh(torch.relu(ratios - 1))).clamp_min(0)


_COEFFICIENT_FORMS = dict(
    paper=paper_coefficient,
    continuous=continuous_coefficient,
    clamped=clamped_coefficient)


def check_coefficient_form(form: str,
                           key: str = 'optim_wrapper.coefficient') -> str:
    """:func:`~mmaction_gblend.utils.check_choice` of an OGM coefficient
    form among :data:`OGM_COEFFICIENTS`: ``form``, or a ValueError naming
    ``key`` (the config key that gave it) and the forms."""
    return check_choice(key, form, OGM_COEFFICIENTS)


def ogm_coefficients(ratios: torch.Tensor,
                     alpha: float,
                     form: str = 'paper') -> torch.Tensor:
    """OGM gradient coefficients ``k_m`` from the discrepancy ratios.

    Only a dominant modality (``rho_m > 1``) gets ``k_m < 1``; the others
    keep ``k_m = 1``. The forms (:data:`OGM_COEFFICIENTS`):

    * ``'paper'`` (default): :func:`paper_coefficient`,
      ``1 - tanh(alpha * rho)``;
    * ``'continuous'``: :func:`continuous_coefficient`,
      ``1 - tanh(alpha * (rho - 1))``;
    * ``'clamped'``: :func:`clamped_coefficient`,
      ``max(0, 1 - alpha * tanh(rho - 1))``.

    Args:
        ratios: ``[M]`` discrepancy ratios (finite).
        alpha: Modulation strength, ``>= 0`` (CVPR: 0.8 on CREMA-D, 0.1 on
            VGGSound).
        form: One of :data:`OGM_COEFFICIENTS`.

    Returns:
        ``[M]`` coefficients in ``[0, 1]``.

    Raises:
        ValueError: For an unknown form (naming
            ``optim_wrapper.coefficient``) or a negative ``alpha``.
    """
    rule = _COEFFICIENT_FORMS[check_coefficient_form(form)]
    if not alpha >= 0:
        raise ValueError(f'OGM alpha must be >= 0, got {alpha!r}')
    ratios = ratios.float()
    return torch.where(ratios > 1, rule(ratios, alpha),
                       torch.ones_like(ratios))


def check_epoch_window(start_epoch: int, end_epoch: Optional[int],
                       key: str) -> Tuple[int, Optional[int]]:
    """A modulation window's epochs, checked.

    Both ends are modulated, as in the authors' code
    (``start <= epoch <= end``); ``end_epoch=None`` runs to the end of
    training. Epochs count from 0, as ``runner.epoch``.

    Args:
        start_epoch: First modulated epoch, ``>= 0``.
        end_epoch: Last modulated epoch, ``>= start_epoch``, or ``None``.
        key: The config key of the settings (``'optim_wrapper'``), for the
            message.

    Returns:
        ``(start_epoch, end_epoch)`` as ints (``end_epoch`` may be None).

    Raises:
        ValueError: Naming ``key.start_epoch`` and ``key.end_epoch``.
    """
    start = int(start_epoch)
    end = None if end_epoch is None else int(end_epoch)
    if start < 0 or (end is not None and end < start):
        raise ValueError(
            f'need 0 <= {key}.start_epoch <= {key}.end_epoch (both '
            f'epochs modulated), got start_epoch={start_epoch!r}, '
            f'end_epoch={end_epoch!r}')
    return start, end


def in_epoch_window(epoch: Optional[int], start_epoch: int,
                    end_epoch: Optional[int]) -> bool:
    """Whether ``epoch`` is in ``start_epoch..end_epoch``, both included.

    Args:
        epoch: The current epoch (0-based), or ``None`` when not known.
        start_epoch: First modulated epoch.
        end_epoch: Last modulated epoch; ``None`` for no end.

    Returns:
        False for an unknown epoch.
    """
    return epoch is not None and start_epoch <= epoch and (
        end_epoch is None or epoch <= end_epoch)


def describe_epoch_window(start_epoch: int,
                          end_epoch: Optional[int]) -> str:
    """The window for the logs: ``'epochs 0-3'`` or ``'epochs 5-last'``."""
    end = 'last' if end_epoch is None else end_epoch
    return f'epochs {start_epoch}-{end}'


def modulate_gradients_(grads: Sequence[torch.Tensor],
                        coefficient: torch.Tensor,
                        noise: bool = False,
                        generator: Optional[torch.Generator] = None) -> None:
    """OGM(-GE) on one modality's gradients, in place.

    ``g <- k * g``, and with ``noise`` (GE) ``g <- k * g + N(0, std(g)^2)``,
    where ``std(g)`` is the standard deviation of the tensor's entries before
    scaling (the authors' code; a one-element tensor has std 0). Scaling by
    ``k`` shrinks the SGD noise covariance by ``k^2``; the added noise gives
    some of it back.

    Everything stays on the gradients' device: ``coefficient`` is a tensor,
    not a Python number, so no value is read back to the host.

    Args:
        grads: The gradients of one modality's encoder.
        coefficient: 0-dim tensor ``k`` (on the gradients' device).
        noise: Add the GE noise.
        generator: Generator of the noise; the same seed on every process
            gives the same noise everywhere, as data parallelism needs.
    """
    grads = list(grads)
    if not grads:
        return
    if len({(g.device, g.dtype) for g in grads}) > 1:  # mixed: one by one
        for g in grads:
            modulate_gradients_([g], coefficient, noise, generator)
        return
    # Batched (foreach) kernels and one draw of the noise for all tensors:
    # a backbone has ~100 gradient tensors, and per-tensor kernels cost more
    # than the arithmetic (benchmarks/strategy_overhead.py).
    stds = [g.std(correction=0) for g in grads] if noise else []
    torch._foreach_mul_(grads, coefficient)
    if not noise:
        return
    sizes = [g.numel() for g in grads]
    draw = torch.randn(sum(sizes), generator=generator,
                       device=grads[0].device, dtype=grads[0].dtype)
    chunks = [c.view_as(g) for c, g in zip(draw.split(sizes), grads)]
    torch._foreach_mul_(chunks, stds)
    torch._foreach_add_(grads, chunks)


def opm_drop_probabilities(ratios: torch.Tensor,
                           base: float = 0.5,
                           lam: float = 0.5) -> torch.Tensor:
    """OPM's per-modality feature-drop probabilities ``q_m``.

    ``r_m = tanh(relu(rho_m - 1))``; ``q_m = base * (1 + lam * r_m)`` when
    ``r_m > 0`` and 0 otherwise, clipped to ``[0, 1]``. Only a dominant
    modality is ever dropped. The weakest modality has ``rho <= 1``, so at
    least one modality always has ``q = 0``.

    Args:
        ratios: ``[M]`` discrepancy ratios (finite).
        base: ``q_base`` (the authors' default 0.5).
        lam: ``lambda`` (the authors' default 0.5).

    Returns:
        ``[M]`` probabilities in ``[0, 1]``.
    """
    if not (base >= 0 and lam >= 0):
        raise ValueError(f'OPM base and lam must be >= 0, got {base!r}, '
                         f'{lam!r}')
    r = torch.tanh(torch.relu(ratios.float() - 1))
    q = (base * (1 + lam * r)).clamp(0, 1)
    return torch.where(r > 0, q, torch.zeros_like(q))


def opm_rescale_factor(probabilities: torch.Tensor,
                       dims: torch.Tensor) -> torch.Tensor:
    """The factor ``1 / (1 - theta)`` applied to every feature under OPM.

    ``theta = sum_m d_m q_m / sum_m d_m`` is the expected fraction of the
    fused feature vector that is dropped (``d_m``: modality ``m``'s feature
    width), so the rescaled features keep their expected magnitude, as
    inverted dropout does.

    Args:
        probabilities: ``[M]`` drop probabilities ``q_m``.
        dims: ``[M]`` feature widths ``d_m``.

    Returns:
        A 0-dim tensor ``>= 1``; ``theta`` is capped just below 1, so the
        factor is always finite.
    """
    dims = dims.to(probabilities)
    theta = (dims * probabilities).sum() / dims.sum()
    return 1 / (1 - theta.clamp(0, 1 - 1e-6))


def sample_drop_mask(probabilities: torch.Tensor,
                     batch_size: int,
                     generator: torch.Generator = None) -> torch.Tensor:
    """Which modality of which sample OPM drops: ``[batch_size, M]`` bools.

    Each entry is an independent Bernoulli draw with its modality's
    probability. A sample whose every modality came up dropped (possible
    only if every ``q_m > 0``, which the published rule never gives) keeps
    all of them instead, so no sample reaches the fused head empty.

    Args:
        probabilities: ``[M]`` drop probabilities.
        batch_size: Number of samples.
        generator: Random generator (on the probabilities' device).

    Returns:
        ``[batch_size, M]`` bool tensor, True where the feature is dropped.
    """
    draws = torch.rand((batch_size, probabilities.numel()),
                       device=probabilities.device,
                       generator=generator)
    mask = draws < probabilities[None, :]
    return mask & ~mask.all(dim=1, keepdim=True)
