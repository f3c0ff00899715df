"""Initialise a branch of the multi-head recognizer from a checkpoint.

Typical sources are mmaction2's model zoo (a TSN or SlowOnly RGB checkpoint
for the RGB branch, a ResNetAudio one for the audio branch): their backbone
parameters sit under ``backbone.`` and the classifier under
``cls_head.fc_cls.``. The file is read with the safe, state-dict-only path.
"""
from typing import Dict, List, Optional

import torch.nn as nn
from mmengine.logging import print_log

from ...checkpoint import load_pretrained_state_dict


def _preview(keys: List[str], limit: int = 8) -> str:
    more = f' ... ({len(keys)} in all)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more if keys else 'none'


def load_branch_checkpoint(backbone: nn.Module,
                           head: Optional[nn.Module],
                           branch: str,
                           checkpoint: str,
                           backbone_prefix: str = 'backbone.',
                           head_prefix: Optional[str] = None,
                           key: Optional[str] = None) -> Dict[str, list]:
    """Load a branch's backbone (and optionally its head) from a checkpoint.

    Keys under ``backbone_prefix`` are mapped onto the backbone with the
    prefix removed; with ``head_prefix`` (e.g. ``'cls_head.fc_cls.'``) the
    ``weight``/``bias`` under it go to the head's ``fc_cls`` when the shapes
    agree (a checkpoint for another number of classes keeps the head as
    initialised, and says so). Missing and unexpected keys are logged.

    Args:
        backbone: The branch's backbone.
        head: The branch's head (a ``ClassifierHead``) or None.
        branch: The branch's name, for messages.
        checkpoint: Path of the checkpoint.
        backbone_prefix: Prefix of the backbone's keys in the checkpoint.
        head_prefix: Prefix of the classifier's keys, or None to skip it.
        key: Entry of the checkpoint holding the state dict (default:
            ``state_dict``, ``model`` or the file itself).

    Returns:
        ``dict(missing=[...], unexpected=[...], head=[loaded keys])``.

    Raises:
        ValueError: no key has ``backbone_prefix``, or a parameter's shape
            differs from the backbone's (the message names it).
    """
    state = load_pretrained_state_dict(checkpoint, key=key)
    where = f'branch {branch}, checkpoint {checkpoint}'
    sub = {
        k[len(backbone_prefix):]: v
        for k, v in state.items() if k.startswith(backbone_prefix)
    }
    if not sub:
        raise ValueError(
            f'{where}: no key starts with {backbone_prefix!r} '
            f'(init_from.backbone_prefix); its keys: {_preview(list(state))}')
    own = backbone.state_dict()
    mismatched = [
        f'{k} {tuple(v.shape)} vs {tuple(own[k].shape)}'
        for k, v in sub.items() if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f'{where}: shapes differ (checkpoint vs model): '
                         f'{_preview(mismatched)}')
    result = backbone.load_state_dict(sub, strict=False)
    report = dict(
        missing=list(result.missing_keys),
        unexpected=list(result.unexpected_keys),
        head=[])
    if head_prefix is not None and head is not None:
        fc = head.fc_cls
        for name, param in (('weight', fc.weight), ('bias', fc.bias)):
            value = state.get(head_prefix + name)
            if value is None:
                report['missing'].append(f'(head) {head_prefix}{name}')
            elif value.shape != param.shape:
                print_log(
                    f'{where}: head {head_prefix}{name} has shape '
                    f'{tuple(value.shape)}, the head {tuple(param.shape)}; '
                    'keeping the initialised head', logger='current',
                    level=30)
            else:
                param.data.copy_(value)
                report['head'].append(head_prefix + name)
    print_log(
        f'{where}: loaded {len(sub) - len(report["unexpected"])} backbone '
        f'tensors and {len(report["head"])} head tensors; missing: '
        f'{_preview(report["missing"])}; unexpected: '
        f'{_preview(report["unexpected"])}', logger='current')
    return report
