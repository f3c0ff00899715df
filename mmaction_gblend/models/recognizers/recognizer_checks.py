"""The checks of a ``MultiHeadRecognizer`` config, and of every batch.

Each check names the config keys at fault (``model.fusion.type``,
``model.branches.<m>.input_key``, ...), on both sides where two keys must
agree, so a wrong config fails when the model is built with a message that
says what to change. The batch check runs as a forward pre-hook of the data
preprocessor, where mmaction2's own preprocessor would fail with a bare
``KeyError``.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence

import torch.nn as nn
from mmaction.registry import MODELS

from ...utils.choices import check_choice
from ..fusions import BaseFusion

__all__ = [
    'FUSED', 'INPUT_FORMATS', 'DEFAULT_INPUT_FORMAT', 'BranchConfig',
    'check_modality_names', 'check_branch',
    'check_preprocessor_keys', 'check_fusion', 'check_opm',
    'check_batch_keys'
]

#: The fused head's name (no modality may take it).
FUSED = 'fused'
#: How a branch's input folds into a batch for its backbone (see
#: ``MultiHeadRecognizer``).
INPUT_FORMATS = ('NCTHW', 'NCTF', 'NCHW')
#: The input format of a branch that does not give one, by input key.
DEFAULT_INPUT_FORMAT = dict(imgs='NCTHW', audios='NCTF', flows='NCTHW')


class BranchConfig(NamedTuple):
    """One ``model.branches.<m>`` entry, checked.

    Attributes:
        backbone: The backbone's config.
        input_key: The key of the batch's inputs the branch reads.
        input_format: One of :data:`INPUT_FORMATS`.
        feat_dim: Channels of the backbone's output.
        init_from: ``load_branch_checkpoint`` arguments, or ``None``.
    """
    backbone: dict
    input_key: str
    input_format: str
    feat_dim: int
    init_from: Optional[dict]


def check_modality_names(names: Sequence[str]) -> None:
    """Modality names are identifiers, not :data:`FUSED`, without "loss".

    Raises:
        ValueError: For the first bad name; a name with "loss" would make
            the modality's metrics optimised (mmengine sums every logged
            value whose name contains "loss").
    """
    if not names:
        raise ValueError('MultiHeadRecognizer.branches is empty')
    for name in names:
        if not name.isidentifier() or 'loss' in name or name == FUSED:
            raise ValueError(
                f'MultiHeadRecognizer.branches: bad modality name '
                f'{name!r} (an identifier, not {FUSED!r}, without '
                '"loss", which would make its metrics optimised)')


def check_branch(name: str, cfg: dict) -> BranchConfig:
    """A branch's config, checked, with its defaults filled in.

    Args:
        name: The modality.
        cfg: ``dict(backbone=..., feat_dim=..., input_key=...,
            input_format=..., init_from=...)``; not changed.

    Raises:
        ValueError: A missing ``backbone`` or ``feat_dim``, an unknown
            input format or an unknown key.
    """
    where = f'MultiHeadRecognizer.branches.{name}'
    cfg = dict(cfg)
    if 'backbone' not in cfg or 'feat_dim' not in cfg:
        raise ValueError(f'{where} needs "backbone" and "feat_dim"')
    key = cfg.pop('input_key', name)
    fmt = check_choice(f'{where}.input_format',
                       cfg.pop('input_format', DEFAULT_INPUT_FORMAT.get(key)),
                       INPUT_FORMATS)
    init_from = cfg.pop('init_from', None)
    branch = BranchConfig(
        backbone=cfg.pop('backbone'),
        input_key=key,
        input_format=fmt,
        feat_dim=int(cfg.pop('feat_dim')),
        init_from=None if init_from is None else dict(init_from))
    if cfg:
        raise ValueError(f'{where}: unknown keys {sorted(cfg)}')
    return branch


def check_preprocessor_keys(preprocessor: dict,
                            input_keys: Dict[str, str]) -> None:
    """The preprocessor must handle every branch's input key.

    Args:
        preprocessor: ``model.data_preprocessor``.
        input_keys: ``{modality: input_key}``.

    Raises:
        ValueError: Naming the branches whose key has no preprocessor.
    """
    sub = preprocessor.get('preprocessors') \
        if isinstance(preprocessor, dict) else None
    if sub is None:
        if len(input_keys) > 1:
            raise ValueError(
                'MultiHeadRecognizer.data_preprocessor must be a '
                'MultiModalDataPreprocessor with one preprocessor per '
                f'input key {sorted(set(input_keys.values()))}')
        return
    missing = [f'model.branches.{name}.input_key={key!r}'
               for name, key in sorted(input_keys.items())
               if key not in sub]
    if missing:
        raise ValueError(
            f'model.data_preprocessor.preprocessors (keys {sorted(sub)}) '
            f'has no preprocessor for {", ".join(missing)}: it needs one '
            'per input key, and the pipeline\'s '
            'PackActionInputs.collect_keys must name the key too')


def check_fusion(fusion: Optional[dict], modalities: List[str]) -> None:
    """A fusion for two or more modalities (none for one) that is known
    and fuses this many.

    The fusion's own error would name ``in_channels``, which the
    recognizer fills in, not the user: this one names the key.

    Raises:
        ValueError: A missing or superfluous fusion, an unknown type, or
            one that cannot fuse ``len(modalities)`` modalities (naming
            those that can).
    """
    count = len(modalities)
    if count == 1:
        if fusion is not None:
            raise ValueError('MultiHeadRecognizer.fusion given for a single '
                             'modality; a uni-modal model has no fusion')
        return
    if fusion is None:
        raise ValueError(
            f'MultiHeadRecognizer.fusion is required for {count} modalities')
    kind = fusion.get('type') if isinstance(fusion, dict) else None
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    fusions = {
        name: module
        for name, module in sorted(MODELS.module_dict.items())
        if isinstance(module, type) and issubclass(module, BaseFusion)
    }
    if cls is None:
        raise ValueError(
            f'model.fusion.type={kind!r} is not a registered module; '
            f'the fusions are {list(fusions)}')
    if isinstance(cls, type) and issubclass(cls, BaseFusion) and \
            not cls.accepts(count):
        fitting = [n for n, m in fusions.items() if m.accepts(count)]
        raise ValueError(
            f'model.fusion.type={cls.__name__!r} fuses {cls.arity()} '
            f'modalities, but model.branches has {count}: {modalities}; '
            f'fusions for {count}: {fitting}')


def check_opm(opm: Optional[dict], modalities: List[str]) -> None:
    """OPM drops features before the fused head: it needs one.

    Raises:
        ValueError: ``opm`` for a uni-modal model.
    """
    if opm is not None and len(modalities) < 2:
        raise ValueError('MultiHeadRecognizer.opm needs two or more '
                         'modalities (a fused head)')


def check_batch_keys(preprocessor: nn.Module, args: tuple,
                     kwargs: dict) -> None:
    """Forward pre-hook of the data preprocessor, for every batch.

    Names both sides when the batch's inputs (the pipeline's
    ``PackActionInputs.collect_keys``) do not fit
    ``model.data_preprocessor.preprocessors``; mmaction2's preprocessor
    would fail with a bare ``KeyError`` or ``AttributeError``. It also
    catches configs run without ``ConfigCheckHook``.

    Raises:
        TypeError: Inputs that are not a dict.
        ValueError: Inputs that have no preprocessor.
    """
    data = args[0] if args else kwargs.get('data')
    inputs = data.get('inputs') if isinstance(data, dict) else None
    if inputs is None:
        return
    known = sorted(preprocessor.preprocessors)
    if not isinstance(inputs, dict):
        raise TypeError(
            'MultiHeadRecognizer needs the batch inputs as a dict '
            f'{{input_key: tensors}}, got {type(inputs).__name__}: set the '
            f'pipeline\'s PackActionInputs.collect_keys (to {tuple(known)})')
    unknown = sorted(set(inputs) - set(known))
    if unknown:
        raise ValueError(
            f'the batch has inputs {sorted(inputs)} (the pipeline\'s '
            'PackActionInputs.collect_keys), but '
            f'model.data_preprocessor.preprocessors has none for {unknown} '
            f'(it has {known})')
