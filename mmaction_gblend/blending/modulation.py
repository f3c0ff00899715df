"""On-the-fly modulation math: OGM-GE coefficients and OPM drop rates.

Pure functions on tensors (torch only: no mmengine, nothing of ours), so
they run on the device of the scores without a host sync.

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

Undefined cases (the papers are silent): a score that is not finite, or
scores that are all 0, give neutral ratios (1 for every modality: nothing
is modulated or dropped); a score of 0 next to positive ones is floored at
``eps`` so the ratios stay finite.
"""
from typing import Optional, Sequence, Tuple

import torch

__all__ = [
    'OGM_COEFFICIENTS', 'discrepancy_ratios', 'ogm_coefficients',
    'modulate_gradients_', 'opm_drop_probabilities', 'opm_rescale_factor',
    'sample_drop_mask'
]

#: The published forms of the OGM coefficient, by name (see
#: :func:`ogm_coefficients`).
OGM_COEFFICIENTS = ('continuous', 'discontinuous', 'clamped')


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


def ogm_coefficients(ratios: torch.Tensor,
                     alpha: float,
                     form: str = 'continuous') -> torch.Tensor:
    """OGM gradient coefficients ``k_m`` from the discrepancy ratios.

    Only a dominant modality (``rho_m > 1``) gets ``k_m < 1``; the others
    keep ``k_m = 1``. The forms in the literature:

    * ``'continuous'`` (default): ``k = 1 - tanh(alpha * (rho - 1))``, an
      earlier version of the authors' code; ``k -> 1`` as ``rho -> 1``, so
      two nearly balanced modalities are barely touched.
    * ``'discontinuous'``: ``k = 1 - tanh(alpha * rho)``, the authors' final
      CVPR code; it jumps from 1 to ``1 - tanh(alpha)`` at ``rho = 1``.
    * ``'clamped'``: ``k = max(0, 1 - alpha * tanh(rho - 1))``, a reading of
      the TPAMI paper.

    Args:
        ratios: ``[M]`` discrepancy ratios (finite).
        alpha: Modulation strength, ``>= 0`` (CVPR: 0.8 on CREMA-D, 0.1 on
            VGGSound).
        form: One of :data:`OGM_COEFFICIENTS`.

    Returns:
        ``[M]`` coefficients in ``[0, 1]``.
    """
    if form not in OGM_COEFFICIENTS:
        raise ValueError(f'OGM coefficient form must be one of '
                         f'{OGM_COEFFICIENTS}, got {form!r}')
    if not alpha >= 0:
        raise ValueError(f'OGM alpha must be >= 0, got {alpha!r}')
    ratios = ratios.float()
    excess = torch.relu(ratios - 1)
    if form == 'continuous':
        k = 1 - torch.tanh(alpha * excess)
    elif form == 'discontinuous':
        k = 1 - torch.tanh(alpha * ratios)
    else:
        k = (1 - alpha * torch.tanh(excess)).clamp_min(0)
    return torch.where(ratios > 1, k, torch.ones_like(k))


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
