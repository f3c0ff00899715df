"""The checks of a ``MultiHeadRecognizer`` config, and of every batch.

Each check names the config keys at fault (``model.fusion.type``,
``model.branches.<m>.input_key``, ...), on both sides where two keys must
agree, so a wrong config fails when the model is built with a message that
says what to change. The batch check runs as a forward pre-hook of the data
preprocessor, where mmaction2's own preprocessor would fail with a bare
``KeyError``.
"""
import inspect
import logging
from typing import (Callable, Dict, List, Mapping, NamedTuple, Optional,
                    Sequence)

import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.logging import print_log

from ...utils.choices import check_choice, check_integer, check_keys
from ..fusions import BaseFusion
from ..modulation import PredictionModulation
from ..utils import load_branch_checkpoint

__all__ = [
    'FUSED', 'INPUT_FORMATS', 'DEFAULT_INPUT_FORMAT', 'BRANCH_KEYS',
    'INIT_FROM_KEYS', 'OPM_KEYS', 'BranchConfig', 'check_modality_names',
    'check_branch', 'check_preprocessor_keys', 'check_fusion',
    'check_filled_in', 'check_fused_settings', 'check_opm',
    'check_batch_keys'
]

#: The fused head's name (no modality may take it).
FUSED = 'fused'
#: How a branch's input folds into a batch for its backbone (see
#: ``MultiHeadRecognizer``).
INPUT_FORMATS = ('NCTHW', 'NCTF', 'NCHW')
#: The input format of a branch that does not give one, by input key.
DEFAULT_INPUT_FORMAT = dict(imgs='NCTHW', audios='NCTF', flows='NCTHW')


def _config_keys(func: Callable, filled: Sequence[str]) -> List[str]:
    """The arguments of ``func`` that a config gives: all but ``filled``
    (those the recognizer passes itself)."""
    return [
        name for name in inspect.signature(func).parameters
        if name not in filled
    ]


#: The keys of a ``model.branches.<m>`` entry.
BRANCH_KEYS = ('backbone', 'feat_dim', 'input_key', 'input_format',
               'init_from')
#: The keys of a branch's ``init_from`` (``load_branch_checkpoint``'s).
INIT_FROM_KEYS = _config_keys(load_branch_checkpoint,
                              ('backbone', 'head', 'branch'))
#: The keys of ``model.opm`` (``PredictionModulation``'s settings).
OPM_KEYS = _config_keys(PredictionModulation,
                        ('modalities', 'feat_dims', 'state'))


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


def check_modality_names(branches: Mapping[str, dict]) -> List[str]:
    """The modalities of ``model.branches``, by name: identifiers, not
    :data:`FUSED`, without "loss".

    Args:
        branches: ``model.branches``, ``{modality: branch config}``.

    Returns:
        The modality names, sorted.

    Raises:
        TypeError: ``branches`` that is not a dict.
        ValueError: No branch, or the first bad name; a name with "loss"
            would make the modality's metrics optimised (mmengine sums
            every logged value whose name contains "loss").
    """
    if not isinstance(branches, Mapping):
        raise TypeError('MultiHeadRecognizer.branches must be a dict '
                        f'{{modality: branch config}}, got {branches!r}')
    names = sorted(branches)
    if not names:
        raise ValueError('MultiHeadRecognizer.branches is empty')
    for name in names:
        if not name.isidentifier() or 'loss' in name or name == FUSED:
            raise ValueError(
                f'MultiHeadRecognizer.branches: bad modality name '
                f'{name!r} (an identifier, not {FUSED!r}, without '
                '"loss", which would make its metrics optimised)')
    return names


def check_branch(name: str, cfg: dict) -> BranchConfig:
    """A branch's config, checked, with its defaults filled in.

    Args:
        name: The modality.
        cfg: ``dict(backbone=..., feat_dim=..., input_key=...,
            input_format=..., init_from=...)``; not changed.

    Raises:
        TypeError: A config or ``init_from`` that is not a dict, an
            ``input_key`` that is not a string, or a ``feat_dim`` that is
            not an integer.
        ValueError: A missing ``backbone`` or ``feat_dim``, an unknown
            key, an unknown input format, a ``feat_dim`` below 1, or an
            ``init_from`` without ``checkpoint`` or with an unknown key
            (it is read only when the weights are initialised).
    """
    where = f'MultiHeadRecognizer.branches.{name}'
    cfg = check_keys(where, cfg, BRANCH_KEYS,
                     required=('backbone', 'feat_dim'))
    key = cfg.get('input_key', name)
    if not isinstance(key, str) or not key:
        raise TypeError(f'{where}.input_key must be a key of the batch\'s '
                        f'inputs (a string), got {key!r}')
    init_from = cfg.get('init_from')
    return BranchConfig(
        backbone=cfg['backbone'],
        input_key=key,
        input_format=check_choice(
            f'{where}.input_format',
            cfg.get('input_format', DEFAULT_INPUT_FORMAT.get(key)),
            INPUT_FORMATS),
        feat_dim=check_integer(f'{where}.feat_dim', cfg['feat_dim'], 1),
        init_from=None if init_from is None else check_keys(
            f'{where}.init_from', init_from, INIT_FROM_KEYS,
            required=('checkpoint', )))


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


def check_filled_in(key: str, cfg: Optional[dict],
                    filled: Sequence[str]) -> None:
    """A config of a part the recognizer completes (a head, the fusion)
    must be a dict and leave the keys it fills in to it.

    Args:
        key: The config key, e.g. ``'MultiHeadRecognizer.head'``.
        cfg: The config, or ``None`` (not given).
        filled: The keys the recognizer sets (``in_channels`` from the
            branches' ``feat_dim``, ``num_classes``).

    Raises:
        TypeError: A config that is not a dict.
        ValueError: A config that sets a key of ``filled``: it would be
            overwritten without a word.
    """
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise TypeError(f'{key} must be a dict, got {cfg!r}')
    given = [k for k in filled if k in cfg]
    if given:
        raise ValueError(
            f'{key} sets {given}, which the recognizer fills in (in_channels '
            'from model.branches.<m>.feat_dim and the fusion, num_classes '
            'from model.num_classes): remove them')


def check_fused_settings(modalities: Sequence[str], **settings) -> None:
    """Settings of the fused head, which a uni-modal model does not have:
    ``opm`` (a training behaviour) is refused; ``fused_head`` and
    ``score_source`` (which a uni-modal config may inherit from a
    multi-modal base) are ignored, with a warning naming them.

    Args:
        modalities: The model's modalities.
        **settings: ``{key: value}`` of ``MultiHeadRecognizer``'s settings
            that act on the fused head (``fused_head``, ``opm``,
            ``score_source``); ``None`` where not set.

    Raises:
        ValueError: ``opm`` given to a uni-modal model.
    """
    given = [key for key, value in settings.items() if value is not None]
    if not given or len(modalities) >= 2:
        return
    if 'opm' in given:
        raise ValueError(
            'MultiHeadRecognizer.opm needs two or more modalities (a fused '
            'head); a uni-modal model has none: remove it (a config that '
            'inherits it sets opm=None)')
    for key in given:
        print_log(f'MultiHeadRecognizer.{key}={settings[key]!r} has no effect '
                  f'on a uni-modal model (modalities {list(modalities)}, no '
                  'fused head): ignored', logger='current',
                  level=logging.WARNING)


def check_opm(opm: Optional[dict]) -> Optional[dict]:
    """OPM's settings: ``None``, or a dict of :data:`OPM_KEYS` (their
    values are checked by ``PredictionModulation``).

    Raises:
        TypeError: ``opm`` that is not a dict.
        ValueError: An unknown key, naming ``MultiHeadRecognizer.opm``.
    """
    return None if opm is None else check_keys('MultiHeadRecognizer.opm',
                                               opm, OPM_KEYS)


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
