"""A recorded G-Blend weight schedule, read and mapped onto a new run.

``GradientBlendingHook(mode='replay', replay=...)`` trains with the weights
another run estimated, with no held-out split and no measurement: the way
to a final model trained on the whole training set (the estimating run held
V out), or to reuse weights estimated on a short or small run in a long or
many-GPU one.

A schedule is a list of changes ``dict(epoch=p, weights={head: w})``: from
the start of training epoch ``p`` (0-based) on, the run trains with ``w``;
before the first change, with the source run's initial weights. That is
what a G-Blend history says: its entry at epoch ``p`` set the weights that
trained epochs ``p`` and on (the trajectory estimator estimates after ``p``
epochs, the shadow estimator before epoch ``p``).

Pure functions but for reading the source file; :class:`WeightReplay`
holds a run's mapped schedule, and the hook applies it before every
training epoch.
"""
import os
import os.path as osp
from collections.abc import Mapping
from numbers import Integral
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..blending import check_blend_weights
from ..datasets.heldout_split_dataset import HeldOutSplitDataset
from ..utils.choices import check_choice
from .blend_schedule import HOOK_KEY
from .estimate_record import format_weights
from .history_file import read_history

__all__ = [
    'REPLAY_KEY', 'REPLAY_EPOCHS', 'ReplaySource', 'Change',
    'read_replay_source', 'replay_option', 'parse_schedule', 'map_schedule',
    'check_schedule_heads', 'weights_at', 'WeightReplay'
]

#: Where the hook's replay source is in a config, for messages.
REPLAY_KEY = f'{HOOK_KEY}.replay'
#: How source epochs become this run's: ``'scale'`` by the runs' lengths,
#: ``'same'`` as they are.
REPLAY_EPOCHS = ('scale', 'same')
#: Files read as checkpoints; any other as a JSON-lines history.
CHECKPOINT_SUFFIXES = ('.pth', '.pt')

Weights = Dict[str, float]


class ReplaySource(NamedTuple):
    """A schedule as recorded.

    Attributes:
        name: What it was read from, for the log and the history.
        changes: ``(source epoch, weights)``, epochs increasing.
        max_epochs: The source run's ``train_cfg.max_epochs`` (``None``
            when its entries do not say).
        initial_weights: The weights the source run started with (``None``
            when its entries do not say).
    """
    name: str
    changes: List[Tuple[int, Weights]]
    max_epochs: Optional[int]
    initial_weights: Optional[Weights]


class Change(NamedTuple):
    """One change of this run's weights.

    Attributes:
        epoch: The training epoch (0-based) from whose start it applies.
        source_epoch: Its epoch in the source run.
        weights: The weights.
    """
    epoch: int
    source_epoch: int
    weights: Weights


def _load_entries(path: str) -> List[dict]:
    """The history entries of a history file or of a G-Blend checkpoint."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{REPLAY_KEY}: no file {path!r} (give a '
                                'gblend_history.jsonl or a checkpoint of a '
                                'G-Blend run)')
    if path.endswith(CHECKPOINT_SUFFIXES):
        # no code in the file runs (restricted unpickler)
        from ..checkpoint import load_checkpoint_file
        try:
            checkpoint = load_checkpoint_file(path)
        except Exception as err:  # a corrupt or foreign file
            raise ValueError(f'{REPLAY_KEY}: cannot read {path!r} as a '
                             f'checkpoint: {err}') from None
        state = checkpoint.get('gblend') if isinstance(checkpoint,
                                                       dict) else None
        if not isinstance(state, dict) or 'history' not in state:
            raise ValueError(f"{REPLAY_KEY}: {path!r} is not a checkpoint "
                             "of a G-Blend run (no checkpoint['gblend']"
                             "['history'])")
        return list(state['history'])
    try:
        return read_history(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f'{REPLAY_KEY}: {path!r} is not a G-Blend history '
                         f'(JSON lines): {err}') from None


def read_replay_source(
        replay: Union[str, os.PathLike, Sequence[dict]]) -> ReplaySource:
    """Read and check a replay source (:func:`parse_schedule`).

    Args:
        replay: A run's ``gblend_history.jsonl``, a checkpoint (``.pth``)
            of a G-Blend run (its ``checkpoint['gblend']['history']``), or a
            list of ``dict(epoch=..., weights=...)``.

    Raises:
        FileNotFoundError: A path that is not a file.
        ValueError: A file that cannot be read as said, or a schedule that
            :func:`parse_schedule` refuses; naming ``REPLAY_KEY``.
    """
    if isinstance(replay, (str, os.PathLike)):
        path = osp.expanduser(os.fspath(replay))
        return parse_schedule(_load_entries(path), path)
    if isinstance(replay, Sequence):
        return parse_schedule(list(replay), 'the list in the config')
    raise ValueError(
        f'{REPLAY_KEY} must be a path to a gblend_history.jsonl or to a '
        'checkpoint of a G-Blend run, or a list of dict(epoch=..., '
        f'weights=...), got {replay!r}')


def replay_option(mode: str,
                  replay: Union[str, os.PathLike, Sequence[dict], None],
                  replay_epochs: str) -> Optional[ReplaySource]:
    """Check the hook's replay options; read the source in ``'replay'``.

    Raises:
        ValueError: An unknown ``replay_epochs``; ``replay`` missing in
            mode ``'replay'`` or given in another mode; or what
            :func:`read_replay_source` raises.
    """
    check_choice(f'{HOOK_KEY}.replay_epochs', replay_epochs, REPLAY_EPOCHS)
    if mode != 'replay':
        if replay is not None:
            raise ValueError(f"{REPLAY_KEY} is for mode='replay', got "
                             f'mode={mode!r}')
        return None
    if replay is None:
        raise ValueError(
            f"{HOOK_KEY}.mode='replay' needs {REPLAY_KEY}: a run's "
            'gblend_history.jsonl, a checkpoint of a G-Blend run, or a list '
            'of dict(epoch=..., weights=...)')
    return read_replay_source(replay)


def _same_value(values: List, key: str, name: str):
    """The one value the entries agree on (``None`` if none gives it)."""
    given = {repr(v): v for v in values if v is not None}
    if len(given) > 1:
        raise ValueError(f'{REPLAY_KEY}: the entries of {name} disagree on '
                         f'{key}: {sorted(given)}; replay one run')
    return next(iter(given.values()), None)


def parse_schedule(entries: Sequence, name: str) -> ReplaySource:
    """Check a schedule's entries and take the changes from them.

    Entries that record an event (an ``event`` key, e.g. the release of the
    held-out samples) are not changes and are skipped.

    Args:
        entries: History entries or ``dict(epoch=p, weights={...})``,
            optionally with ``max_epochs`` and ``initial_weights``.
        name: Where they come from, for the messages.

    Raises:
        ValueError: No change; an entry that is not a dict with ``epoch``
            and ``weights``; an epoch that is not an integer >= 0 or not
            above the previous one; weights that fail
            :func:`~mmaction_gblend.blending.check_blend_weights` or name
            other heads than the first entry's; entries that disagree on
            ``max_epochs`` or ``initial_weights``.
    """
    changes: List[Tuple[int, Weights]] = []
    heads = None
    max_epochs, initials = [], []
    for i, entry in enumerate(entries):
        where = f'{REPLAY_KEY} ({name}) entry {i}'
        if not isinstance(entry, Mapping) or 'epoch' not in entry or \
                ('weights' not in entry and 'event' not in entry):
            raise ValueError(f'{where} must be a dict(epoch=..., '
                             f'weights=...), got {entry!r}')
        if 'event' in entry:
            continue
        epoch = entry['epoch']
        if isinstance(epoch, bool) or not isinstance(epoch, Integral) or \
                epoch < 0:
            raise ValueError(f'{where}: epoch must be an integer >= 0, got '
                             f'{epoch!r}')
        if changes and epoch <= changes[-1][0]:
            raise ValueError(f'{where}: epochs must increase, got {epoch} '
                             f'after {changes[-1][0]}')
        values = check_blend_weights(entry['weights'], heads,
                                     f'{where} weights')
        heads = heads or list(entry['weights'])
        changes.append((int(epoch), dict(zip(heads, values))))
        max_epochs.append(entry.get('max_epochs'))
        initials.append(entry.get('initial_weights'))
    if not changes:
        raise ValueError(f'{REPLAY_KEY}: {name} has no weights to replay')
    source_epochs = _same_value(max_epochs, 'max_epochs', name)
    if source_epochs is not None and (
            isinstance(source_epochs, bool)
            or not isinstance(source_epochs, Integral) or source_epochs < 1):
        raise ValueError(f'{REPLAY_KEY} ({name}): max_epochs must be a '
                         f'positive integer, got {source_epochs!r}')
    initial = _same_value(initials, 'initial_weights', name)
    if initial is not None:
        initial = dict(zip(heads, check_blend_weights(
            initial, heads, f'{REPLAY_KEY} ({name}) initial_weights')))
    return ReplaySource(name, changes,
                        None if source_epochs is None else int(source_epochs),
                        initial)


def map_schedule(source: ReplaySource, max_epochs: int,
                 replay_epochs: str = 'scale'
                 ) -> Tuple[List[Change], List[int]]:
    """The source's changes as this run's.

    * ``'scale'``: source epoch ``p`` of a run of ``E_src`` epochs becomes
      ``round(p * E / E_src)`` (half up) of this run's ``E``: the weights
      change at the same fraction of the training. Needs the source's
      ``max_epochs``.
    * ``'same'``: ``p`` stays ``p``.

    A change that lands at or after ``E`` never applies, and of changes
    that land on the same epoch the last wins: both are dropped.

    Args:
        source: The schedule (:func:`read_replay_source`).
        max_epochs: This run's ``train_cfg.max_epochs``.
        replay_epochs: ``'scale'`` or ``'same'``.

    Returns:
        The changes, epochs increasing, and the source epochs dropped.

    Raises:
        ValueError: An unknown ``replay_epochs``, or ``'scale'`` with a
            source that does not give its ``max_epochs``.
    """
    check_choice(f'{HOOK_KEY}.replay_epochs', replay_epochs, REPLAY_EPOCHS)
    if replay_epochs == 'scale' and source.max_epochs is None:
        raise ValueError(
            f"{HOOK_KEY}.replay_epochs='scale' maps the source's epochs by "
            "the runs' lengths, but the entries of "
            f'{source.name} do not give the source run\'s max_epochs (runs '
            'of this version record it); add max_epochs=... to the '
            "entries, or set replay_epochs='same' to keep the epoch numbers")
    kept: Dict[int, Change] = {}
    dropped: List[int] = []
    for epoch, weights in source.changes:
        target = epoch
        if replay_epochs == 'scale':
            # round half up, in integers
            target = (2 * epoch * max_epochs + source.max_epochs) // (
                2 * source.max_epochs)
        if target >= max_epochs:
            dropped.append(epoch)
            continue
        if target in kept:
            dropped.append(kept[target].source_epoch)
        kept[target] = Change(target, epoch, dict(weights))
    return [kept[e] for e in sorted(kept)], dropped


def check_schedule_heads(changes: Sequence[Change], initial: Weights,
                         heads: Sequence[str]) -> None:
    """Check the initial weights and every change against the model's heads.

    Raises:
        ValueError: Naming ``REPLAY_KEY``, the epoch and the heads.
    """
    check_blend_weights(initial, heads, f'{REPLAY_KEY}: the initial weights')
    for change in changes:
        check_blend_weights(
            change.weights, heads,
            f'{REPLAY_KEY}: the weights of source epoch {change.source_epoch}')


def weights_at(changes: Sequence[Change], epoch: int,
               initial: Weights) -> Tuple[Weights, Optional[Change]]:
    """The weights that train ``epoch``, and the change they come from
    (``None``: the initial weights)."""
    current = None
    for change in changes:
        if change.epoch <= epoch:
            current = change
    return (dict(initial) if current is None else dict(current.weights),
            current)


class WeightReplay:
    """The replay of a schedule in a run: mapped and checked before
    training, applied before every epoch (so a resumed run needs no state).

    Args:
        source: The schedule read from the hook's ``replay``.
        replay_epochs: ``'scale'`` or ``'same'`` (:func:`map_schedule`).
    """

    def __init__(self, source: ReplaySource, replay_epochs: str) -> None:
        self.source = source
        self.replay_epochs = replay_epochs
        self.changes: List[Change] = []
        self.dropped: List[int] = []

    def start(self, max_epochs: int, initial: Weights,
              heads: Sequence[str]) -> str:
        """Map the schedule onto a run of ``max_epochs``, check it against
        the model's ``heads``; return the log line that describes it."""
        self.changes, self.dropped = map_schedule(self.source, max_epochs,
                                                  self.replay_epochs)
        check_schedule_heads(self.changes, initial, heads)
        return (f'G-Blend: replaying {self.source.name} (replay_epochs='
                f'{self.replay_epochs!r}): from epoch 0 '
                f'{format_weights(initial)}' + ''.join(
                    f'; from epoch {c.epoch} (source epoch '
                    f'{c.source_epoch}) {format_weights(c.weights)}'
                    for c in self.changes)
                + (f'; source epochs {self.dropped} dropped (past the last '
                   "epoch, or on a later change's epoch)"
                   if self.dropped else ''))

    def at_epoch(self, epoch: int, initial: Weights
                 ) -> Tuple[Dict[str, float], Optional[Tuple[dict, str]]]:
        """The weights of ``epoch``, and for a change that starts at it,
        its history entry and log line (``None`` if none does)."""
        weights, change = weights_at(self.changes, epoch, initial)
        if change is None or change.epoch != epoch:
            return weights, None
        return weights, (
            dict(epoch=epoch, mode='replay', estimator='replay',
                 source=self.source.name, source_epoch=change.source_epoch,
                 weights=weights),
            f'G-Blend: replayed weights from epoch {epoch} (source epoch '
            f'{change.source_epoch}): {format_weights(weights)}')

    @staticmethod
    def part_warning(dataset) -> Optional[str]:
        """The warning for a replay that trains on a part of the training
        set (``None``: it trains on all of it)."""
        if not isinstance(dataset, HeldOutSplitDataset) or \
                dataset.part == 'all':
            return None
        return (f'{REPLAY_KEY}: train_dataloader.dataset is a '
                f'HeldOutSplitDataset with part={dataset.part!r}: the replay '
                f'trains on that part only ({len(dataset)} samples); set '
                "part='all' or unwrap the dataset to train on the whole "
                'training set')
