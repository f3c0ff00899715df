"""Whether a model's heads start where an untrained classifier should.

A head whose classifier is initialised at a small scale predicts about
uniformly at first, and its cross-entropy starts near ``log C`` for C
classes. Far above it, the logits start with a large spread (e.g. a
fan-out Kaiming init of a 128 -> 8 classifier), and the first super-epoch's
fall in loss is mostly the logits shrinking, on the held-out set and the
training probe alike: it inflates G and leaves O alone, so G-Blend's first
estimate rewards the worst-initialised head. Standard library only.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

#: How far (nats) a head's first held-out loss may lie from ``log C``
#: before G-Blend warns. An untrained head with logits of spread s starts
#: about s**2 / 2 above ``log C``: 0.5 nats is a spread of 1.
INITIAL_LOSS_TOLERANCE = 0.5


def initial_loss_excess(losses: Dict[str, float],
                        num_classes: int) -> Dict[str, float]:
    """Each head's mean loss minus ``log(num_classes)``, in nats.

    Args:
        losses: ``{head: mean cross-entropy}`` of the untrained model.
        num_classes: Number of classes, >= 2.

    Returns:
        ``{head: loss - log(num_classes)}``; a non-finite loss stays
        non-finite.

    Raises:
        ValueError: ``num_classes`` below 2.
    """
    if isinstance(num_classes, bool) or int(num_classes) != num_classes \
            or num_classes < 2:
        raise ValueError(f'num_classes must be an integer >= 2, got '
                         f'{num_classes!r}')
    chance = math.log(num_classes)
    return {head: loss - chance for head, loss in losses.items()}


def far_from_chance(losses: Dict[str, float], num_classes: int,
                    tolerance: float = INITIAL_LOSS_TOLERANCE
                    ) -> Dict[str, float]:
    """The heads whose loss lies more than ``tolerance`` nats from
    ``log(num_classes)`` (or is not finite), with their excess."""
    return {
        head: excess
        for head, excess in initial_loss_excess(losses, num_classes).items()
        if not math.isfinite(excess) or abs(excess) > tolerance
    }


def initial_loss_check(losses: Dict[str, Sequence[float]], num_classes: int
                       ) -> Tuple[dict, Optional[str]]:
    """G-Blend's record of the untrained heads' held-out losses, and the
    warning to log when some are far from ``log C`` (``None``: none is).

    Args:
        losses: ``{head: per-sample held-out losses}`` before training.
        num_classes: Number of classes.
    """
    means = {h: math.fsum(v) / len(v) for h, v in losses.items()}
    far = far_from_chance(means, num_classes)
    record = dict(
        log_classes=math.log(num_classes),
        heldout_loss={h: v if math.isfinite(v) else None
                      for h, v in means.items()},
        far=sorted(far))
    if not far:
        return record, None
    return record, (
        'G-Blend: before training, the held-out loss of '
        + ', '.join(f'{h} ({means[h]:.2f} nats)' for h in far)
        + f' is more than {INITIAL_LOSS_TOLERANCE} from log {num_classes} = '
        f'{math.log(num_classes):.2f}: its logits start with a large spread, '
        'and the first estimate will credit that head with the fall of its '
        'loss as the spread shrinks (G inflated). Initialise its classifier '
        "at a smaller scale (e.g. head=dict(init_cfg=dict(type='Normal', "
        "layer='Linear', std=0.01)))")
