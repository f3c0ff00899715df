"""Cross-checks of a run's config that no single constructor can make.

Every component validates its own arguments when it is built: the
recognizer its branches, data preprocessor, fusion and blend weights; the
hooks and optim wrappers theirs; ``HeldOutSplitDataset`` its fraction. What
needs two of them at once is checked here, by :class:`ConfigCheckHook` in
``before_run``: after the Runner has built the model, the data loaders and
the optim wrapper, before weights are loaded or anything trains, so a typo
fails in seconds. Every message names the config keys on both sides.

* The pipelines' ``PackActionInputs.collect_keys`` (train, val and test
  loaders, through dataset wrappers) against the branches' ``input_key``
  and ``model.data_preprocessor.preprocessors``.
* On-the-fly modulation: an OGM-GE optim wrapper or ``model.opm`` without
  ``OnTheFlyModulationHook``, or either on a model without per-modality
  parameter groups.
"""
from typing import Iterator, List, Optional, Tuple

from mmaction.registry import HOOKS, OPTIM_WRAPPERS
from mmengine.hooks import Hook
from mmengine.runner import Runner

from ...datasets.dataset_wrappers import dataset_pipelines
from ...models.recognizers.multi_head_contract import (MultiHeadModel,
                                                      check_multi_head_model)
from ...utils.model_wrappers import unwrap
from ..optim_wrappers import GradientModulation
from .on_the_fly_modulation_hook import OnTheFlyModulationHook

__all__ = ['ConfigCheckHook', 'check_pipelines', 'check_modulation']

PACK = 'PackActionInputs'
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
MODULATION_HOOK = "dict(type='OnTheFlyModulationHook')"


def _kind(step) -> Optional[str]:
    """The ``type`` of a config dict as a name (it may be a class)."""
    kind = step.get('type') if isinstance(step, dict) else None
    return getattr(kind, '__name__', kind)


def pack_steps(dataset, path: str) -> Iterator[Tuple[str, dict]]:
    """Each ``PackActionInputs`` of a dataset config, with its key path.

    Follows dataset wrappers, and takes the pipelines they build
    (:func:`~mmaction_gblend.datasets.dataset_pipelines`: ``WithAudioTrack``
    collects ``imgs`` and ``audios``).
    """
    for where, pipeline in dataset_pipelines(dataset, path):
        for step in pipeline or []:
            if _kind(step) == PACK:
                yield f'{where}[{PACK}].collect_keys', step


def check_pipelines(cfg, model) -> None:
    """The pipelines pack what the model reads and can preprocess.

    Args:
        cfg: The run's config (``runner.cfg``).
        model: The model, wrapped or not; one that is no
            :class:`~mmaction_gblend.models.recognizers.MultiHeadModel`
            (a stock mmaction2 recognizer) is not checked.

    Raises:
        ValueError: A pipeline whose ``collect_keys`` is unset, misses a
            branch's ``input_key`` or has a key without a preprocessor.
    """
    model = unwrap(model)
    if not isinstance(model, MultiHeadModel):
        return
    input_keys = model.input_keys
    preprocessors = getattr(model.data_preprocessor, 'preprocessors', None)
    wanted = tuple(sorted(set(input_keys.values())))
    for loader in DATALOADERS:
        loader_cfg = cfg.get(loader)
        if not isinstance(loader_cfg, dict):
            continue
        for path, step in pack_steps(loader_cfg.get('dataset'),
                                     f'{loader}.dataset'):
            collect = step.get('collect_keys')
            if collect is None:
                raise ValueError(
                    f'{path} is not set, but MultiHeadRecognizer reads its '
                    f'inputs by key: set it to {wanted}')
            collect = (collect, ) if isinstance(collect, str) else \
                tuple(collect)
            for name, key in sorted(input_keys.items()):
                if key not in collect:
                    raise ValueError(
                        f'{path}={collect} does not collect {key!r}, which '
                        f'model.branches.{name}.input_key reads; expected '
                        f'every branch\'s input key {wanted}')
            if preprocessors is None:
                continue
            unknown = [k for k in collect if k not in preprocessors]
            if unknown:
                raise ValueError(
                    f'{path}={collect} collects {unknown}, but '
                    'model.data_preprocessor.preprocessors has no '
                    f'preprocessor for it (it has {sorted(preprocessors)})')


def _modulating_wrapper(runner: Runner) -> Optional[str]:
    """The OGM-GE optim wrapper's type name, or ``None``."""
    wrapper = runner.optim_wrapper
    if isinstance(wrapper, GradientModulation):
        return type(wrapper).__name__
    cfg = runner.cfg.get('optim_wrapper')  # not built in val/test runs
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    cls = OPTIM_WRAPPERS.get(kind) if isinstance(kind, str) else kind
    if isinstance(cls, type) and issubclass(cls, GradientModulation):
        return cls.__name__
    return None


def check_modulation(runner: Runner) -> None:
    """OGM-GE and OPM have their hook and a model they can modulate.

    Raises:
        ValueError: The OGM-GE optim wrapper, ``model.opm`` or the hook
            with a model that has no per-modality parameter groups (not a
            multi-modal ``MultiHeadRecognizer``); the wrapper or ``opm``
            without ``OnTheFlyModulationHook``.
    """
    model = unwrap(runner.model)
    wrapper = _modulating_wrapper(runner)
    hooked = any(isinstance(h, OnTheFlyModulationHook) for h in runner.hooks)
    users: List[str] = []  # what asks for modulation, as config keys
    if wrapper is not None:
        users.append(f'optim_wrapper.type={wrapper!r}')
    # a model outside the contract has no OPM to ask for modulation
    if isinstance(model, MultiHeadModel) and model.opm is not None:
        users.append('model.opm')
    if hooked:
        users.append('custom_hooks[OnTheFlyModulationHook]')
    if not users:
        return
    what = ' and '.join(users)
    model = check_multi_head_model(
        model, f'{what}: on-the-fly modulation needs a model with '
        'per-modality parameter groups (model.branches of a '
        'MultiHeadRecognizer)')
    if model.fusion is None:
        raise ValueError(
            f'{what}: on-the-fly modulation needs two or more modalities; '
            f'model.branches has one: {list(model.modalities)}')
    if not hooked:
        raise ValueError(
            f'{what}: add {MODULATION_HOOK} to custom_hooks; it drives the '
            'modulation (without it the first step fails)')


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """Checks that the parts of a run fit together, before it starts.

    Runs :func:`check_pipelines` and :func:`check_modulation` in
    ``before_run`` (training, validation and testing alike). The plugin's
    ``configs/_base_/default_runtime.py`` has it in ``default_hooks``, which
    a config's own ``custom_hooks`` do not replace. Without it, a mismatch
    between a batch and the data preprocessor still fails at the first
    batch, naming both sides (``MultiHeadRecognizer``).
    """

    priority = 'HIGHEST'

    def before_run(self, runner: Runner) -> None:
        check_pipelines(runner.cfg, runner.model)
        check_modulation(runner)
