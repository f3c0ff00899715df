"""The strategies of one base config and their override configs.

Every strategy is a small override config (``_base_ = [base]``) of ONE
base config, a multi-modal late-fusion ``MultiHeadRecognizer`` config: the
keys its :class:`~comparison.strategies.Strategy` entry sets, and those
every strategy sets alike (the training dataset: the whole training set
or G-Blend's part; ``--data-root``; ``--eval-split``; ``--epochs``;
validation once, after the last epoch).
"""
import ast
import glob
import os
import os.path as osp
import pprint
from collections import OrderedDict
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Union

from mmaction_gblend.datasets import HeldOutSplitDataset
from mmaction_gblend.datasets.group_split import check_group_spec
from mmaction_gblend.engine.hooks import (GradientBlendingHook,
                                          OnTheFlyModulationHook)
from mmaction_gblend.engine.optim_wrappers import OGMGEOptimWrapper
from mmaction_gblend.models.recognizers import FUSED, MultiHeadRecognizer
from mmaction_gblend.utils.choices import check_choice, check_number
from . import REPO, strategies
from .strategies import PART_SUFFIX, Strategy, heldout_split, plain

#: The base config by default: the demo's naive fusion.
DEFAULT_CONFIG = osp.join(REPO, 'configs', 'demo',
                          'naive-fusion_r3d18-rgb_r18-audio_demo-av.py')
#: The splits a comparison can be measured on (``--eval-split``).
EVAL_SPLITS = ('test', 'val')
SPLIT_DATASET = HeldOutSplitDataset.__name__


def _literal(key: str, value) -> str:
    text = pprint.pformat(value, width=76, sort_dicts=False)
    try:
        ok = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        ok = False
    if not ok:
        raise ValueError(
            f'compare_strategies: {key} of the base config is not written '
            f'as Python literals (got {text[:200]}); the derived configs '
            'need plain dicts, lists, strings and numbers')
    return text


def _names(names: List[str]) -> str:
    """``'a'``, ``'a and b'``, ``'a, b and c'``."""
    return ' and '.join(filter(None, [', '.join(names[:-1]), names[-1]]))


class Derivation:
    """The strategies derived from one base multi-modal config.

    Args:
        config: The base config: a ``MultiHeadRecognizer`` with two or more
            ``model.branches`` and a ``fusion``, without balancing of its
            own (no G-Blend or on-the-fly modulation hook, no ``opm``, no
            OGM-GE optimizer wrapper) and with an epoch-based
            ``train_cfg``.
        heldout_fraction: G-Blend's held-out fraction (of each class);
            default: the demo's.
        heldout_group: Hold out whole groups (``HeldOutSplitDataset``'s
            ``group``: a regular expression over the paths, or a dict);
            default: the base config's own split's, if it has one, else
            samples one by one. Every split of the comparison (G-Blend's
            and the same-clips baselines') is then by group.
        epochs: A shorter schedule (``train_cfg.max_epochs``, no
            ``param_scheduler``); the G-Blend, OGM-GE and OPM schedules are
            scaled to it.
        data_root: A directory laid out as the demo data, for every split.
        val_every_epoch: Keep the base config's validation interval. By
            default a strategy validates once, after its last epoch: the
            comparison measures the last checkpoint on the test split, and
            validation changes nothing in training (on the demo it took a
            fifth of each run's time).
        eval_split: The split the table is measured on: ``'test'``, or
            ``'val'`` (the last checkpoint tested on the val split, for
            choosing a dataset's or schedule's parameters without looking
            at the test split).
        work_dir: Where the runs go (a replay reads its source's history).

    Raises:
        ValueError: A config of another kind, naming what is missing.
    """

    def __init__(self, config: str = DEFAULT_CONFIG,
                 heldout_fraction: Optional[float] = None,
                 heldout_group: Union[None, str, dict] = None,
                 epochs: Optional[int] = None,
                 data_root: Optional[str] = None,
                 val_every_epoch: bool = False,
                 eval_split: str = 'test',
                 work_dir: str = 'work_dirs/compare') -> None:
        from mmengine.config import Config
        self.work_dir = osp.abspath(work_dir)
        self.config = osp.abspath(config)
        self.cfg = Config.fromfile(self.config)
        split = heldout_split()
        if heldout_fraction is None:
            heldout_fraction = split['fraction']
        self.heldout_fraction = check_number(
            '--heldout-fraction', heldout_fraction, 0, 1, open_minimum=True,
            open_maximum=True)
        #: The seed of the held-out split (the same for every training
        #: seed).
        self.heldout_seed = split['seed']
        base_split = plain(self.cfg.train_dataloader['dataset'])
        if heldout_group is None and base_split.get('type') == SPLIT_DATASET:
            heldout_group = base_split.get('group')
        check_group_spec(heldout_group, '--heldout-group')
        #: ``HeldOutSplitDataset.group`` of every split (None: by sample).
        self.heldout_group = heldout_group
        self.epochs = epochs
        self.val_every_epoch = val_every_epoch
        self.eval_split = check_choice('--eval-split', eval_split,
                                       EVAL_SPLITS)
        self.data_root = None if data_root is None else osp.abspath(
            data_root)
        self._check()
        #: The modalities in the config's order.
        self.modalities: List[str] = list(self.cfg.model.branches)
        self.max_epochs = int(self.cfg.train_cfg['max_epochs']
                              if epochs is None else epochs)
        if self.max_epochs < 1:
            raise ValueError(f'--epochs must be >= 1, got {epochs}')
        self.notes: List[str] = []
        self.strategies: 'OrderedDict[str, Strategy]' = self._derive()

    @property
    def heads(self) -> List[str]:
        """The heads: the modalities in the config's order, then fused."""
        return self.modalities + [FUSED]

    def _check(self) -> None:
        model = self.cfg.get('model', {})
        where = f'compare_strategies: {self.config}:'
        recognizer = MultiHeadRecognizer.__name__
        if model.get('type') != recognizer or \
                len(model.get('branches') or {}) < 2 or \
                model.get('fusion') is None:
            raise ValueError(
                f"{where} needs model.type='{recognizer}' with two "
                'or more model.branches and a model.fusion (a multi-modal '
                'late-fusion config, as configs/demo/naive-fusion_*.py)')
        hooks = {h.get('type') for h in self.cfg.get('custom_hooks') or []}
        own = hooks & {GradientBlendingHook.__name__,
                       OnTheFlyModulationHook.__name__}
        if own or model.get('opm') is not None or \
                self.cfg.get('optim_wrapper', {}).get('type') == \
                OGMGEOptimWrapper.__name__:
            raise ValueError(
                f'{where} the base config balances the modalities itself '
                f'({", ".join(sorted(own)) or "opm / OGM-GE"}); give the '
                'plain fusion config it is derived from')
        if self.cfg.get('train_cfg', {}).get('max_epochs') is None:
            raise ValueError(f'{where} needs an epoch-based train_cfg '
                             '(train_cfg.max_epochs)')

    # strategies -----------------------------------------------------------

    def _derive(self) -> 'OrderedDict[str, Strategy]':
        """The entries of :data:`~comparison.strategies.STRATEGIES` this
        config has (one per modality where the name says so), the
        baselines' ``@gblend-part`` runs after the baselines; the others
        with a note of why (a variant without one: left out with its
        source)."""
        kept: Dict[str, Strategy] = OrderedDict()
        left_out: Dict[str, List[str]] = OrderedDict()
        for entry in strategies.STRATEGIES:
            for m in (self.modalities if '{modality}' in entry.name
                      else [entry.modality]):
                s = replace(entry, name=entry.name.format(modality=m),
                            modality=m, demo=entry.demo and
                            entry.demo.format(modality=m))
                if s.source is not None and s.source not in kept:
                    continue
                reason = s.needs(self) if s.needs else None
                if reason is None:
                    kept[s.name] = s
                else:
                    left_out.setdefault(reason, []).append(s.name)
        self.notes += [f'{_names(names)} left out: {reason}'
                       for reason, names in left_out.items()]
        baselines = [s for s in kept.values() if s.part_group]
        parts = [replace(s, name=s.name + PART_SUFFIX, group=s.part_group,
                         part_group=None, part=True, demo=None)
                 for s in baselines]
        others = [s for s in kept.values() if not s.part_group]
        return OrderedDict((s.name, s) for s in baselines + parts + others)

    def select(self, sets: Sequence[str] = ('core', )) -> List[str]:
        """The strategies of the target sets, in their order."""
        return [n for n, s in self.strategies.items() if s.group in sets]

    def demo_config(self, name: str) -> Optional[str]:
        """The demo's own config of a strategy, on the demo's base config
        (the derived one loads the same; tested); else ``None``."""
        pattern = self.strategies[name].demo
        if pattern is None or self.config != osp.abspath(DEFAULT_CONFIG):
            return None
        found = glob.glob(osp.join(REPO, 'configs', 'demo', pattern + '.py'))
        return found[0] if len(found) == 1 else None

    # configs --------------------------------------------------------------

    def train_dataset(self, part: bool) -> dict:
        """The training dataset config of a strategy: the base's (unwrapped
        if it is a ``HeldOutSplitDataset``; pointed at ``data_root``), or
        G-Blend's training part of it."""
        dataset = plain(self.cfg.train_dataloader['dataset'])
        if dataset.get('type') == SPLIT_DATASET:
            dataset = dataset['dataset']
        if self.data_root is not None:
            dataset['ann_file'] = osp.join(self.data_root, 'train_list.txt')
            dataset['data_prefix'] = dict(dataset.get('data_prefix') or {},
                                          video=self.data_root)
        if part:
            dataset = dict(type=SPLIT_DATASET, part='train',
                           fraction=self.heldout_fraction,
                           seed=self.heldout_seed, dataset=dataset,
                           **self.group())
        return dataset

    def group(self) -> dict:
        """``dict(group=...)`` of a split by group, else ``{}``."""
        return {} if self.heldout_group is None else dict(
            group=self.heldout_group)

    def _root_args(self, split: str) -> dict:
        return dict(ann_file=osp.join(self.data_root, f'{split}_list.txt'),
                    data_prefix=dict(video=self.data_root))

    def replay_source(self, name: str, seed: int) -> str:
        """The history a replay strategy replays: its source strategy's
        run of the same seed in ``work_dir``."""
        source = self.strategies[name].replay_of
        return osp.join(self.work_dir, source, f'seed{seed}',
                        'gblend_history.jsonl')

    def overrides(self, name: str,
                  seed: Optional[int] = None) -> 'OrderedDict[str, object]':
        """The top-level keys a strategy's config sets over the base (a
        replay's depend on the seed: the run it replays)."""
        s = self.strategies[name]
        own = dict(s.override(self, s, seed))
        out: 'OrderedDict[str, object]' = OrderedDict()
        if own.get('model'):
            out['model'] = own['model']
        out.update(self._data(s))
        if 'custom_hooks' in own:
            out['custom_hooks'] = plain(
                list(self.cfg.get('custom_hooks') or [])) + own['custom_hooks']
        out.update((k, v) for k, v in own.items()
                   if k not in ('model', 'custom_hooks'))
        out.update(self._eval_split())
        if 'randomness' not in self.cfg:
            # a key for tools/train.py's --seed to set (on a config without
            # one, the seed it sets is lost)
            out['randomness'] = dict(seed=None)
        train_cfg = {}
        if self.epochs is not None:
            train_cfg['max_epochs'] = self.epochs
            out['param_scheduler'] = []
        if not self.val_every_epoch:
            train_cfg['val_interval'] = self.max_epochs
        if train_cfg:
            out['train_cfg'] = train_cfg
        return out

    def _data(self, s: Strategy) -> dict:
        """The data keys of a strategy: its training set (the whole or
        G-Blend's part), those of ``data_root``."""
        out = {}
        if s.part or s.release:
            out['train_dataloader'] = dict(dataset=dict(
                _delete_=True, **self.train_dataset(part=True)))
        elif self.data_root is not None or self.cfg.train_dataloader[
                'dataset'].get('type') == SPLIT_DATASET:
            out['train_dataloader'] = dict(dataset=dict(
                _delete_=True, **self.train_dataset(part=False)))
        if self.data_root is not None:
            out['val_dataloader'] = dict(dataset=self._root_args('val'))
            out['test_dataloader'] = dict(dataset=self._root_args('test'))
        return out

    def _eval_split(self) -> dict:
        """``--eval-split val``: tools/test.py measures the val split, the
        config's val loader and evaluator stand in for the test ones."""
        if self.eval_split != 'val':
            return {}
        val = plain(self.cfg.val_dataloader)
        if self.data_root is not None:
            val['dataset'].update(self._root_args('val'))
        return dict(test_dataloader=dict(_delete_=True, **val),
                    test_evaluator=strategies.replacing(
                        plain(self.cfg.val_evaluator),
                        'test_evaluator' in self.cfg))

    def config_text(self, name: str, seed: Optional[int] = None) -> str:
        """The override config of a strategy (Python source)."""
        lines = [
            f'# {name}: derived by tools/compare_strategies.py from the '
            'config below.', f'_base_ = [{self.config!r}]'
        ]
        for key, value in self.overrides(name, seed).items():
            lines.append(f'{key} = {_literal(key, value)}')
        return '\n'.join(lines) + '\n'

    def write(self, name: str, path: str, seed: Optional[int] = None) -> str:
        """Write a strategy's override config to ``path``; return it."""
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            f.write(self.config_text(name, seed))
        return path
