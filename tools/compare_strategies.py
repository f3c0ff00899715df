"""Train balancing strategies derived from one multi-modal config over several
seeds, and compare them with paired statistics.

    python tools/compare_strategies.py [--config MY_FUSION_CONFIG.py]
        [--set core|extra ...] [--strategies NAME ...] [--seeds 0 1 2]
        [--heldout-fraction 0.4] [--heldout-group REGEX] [--data-root DIR]
        [--epochs N]
        [--work-dir work_dirs/compare] [--reuse comparison.json]

Every strategy is derived from ONE base config, a multi-modal late-fusion
``MultiHeadRecognizer`` config (default: the demo's naive fusion,
``configs/demo/naive-fusion_r3d18-rgb_r18-audio_demo-av.py``), by a small
override config (``_base_ = [base]``) written beside the run's work dir.
The base needs two or more ``model.branches``, a ``model.fusion`` and an
epoch-based ``train_cfg``, and no balancing of its own (no G-Blend or
on-the-fly modulation hook, no ``model.opm``, no OGM-GE optimizer wrapper).
The strategies:

* ``<modality>-only``, for each of ``model.branches``: that branch alone
  (``fusion=None``, ``blend_weights=None``);
* ``naive-fusion`` (blend weights: the fused head alone), ``aux-heads``
  (every head the same weight);
* ``gblend-online-E`` for each online estimator ``E`` (``shadow``,
  ``first_order`` (no -release, -replay variants), ``trajectory``): online Gradient Blending (``GradientBlendingHook``)
  with the demo's options (``weights='uniform'``, ``smoothing=0.5``,
  ``min_weight=0.02``) on G-Blend's training part (below); warm-up and
  super-epochs of a third of the schedule, at least 1 epoch each
  (``max_epochs // 3``: the demo's 4 and 4 of 12 epochs; with ``--epochs``
  a third of that). The trajectory estimator needs a warm-up shorter than
  the training, so its three strategies are left out of a 1-epoch
  schedule;
* ``gblend-online-E-release``: the same online run, whose held-out part V
  joins training after the last estimate (the hook's
  ``release_heldout=True``; the training set is still wrapped as G-Blend's
  part): its final model trains on the whole training set;
* ``gblend-online-E-replay``: a run on the whole training set (no
  held-out part, no estimate) that replays the weights recorded by the
  ``gblend-online-E`` run of the same seed
  (``GradientBlendingHook(mode='replay',
  replay=<work-dir>/gblend-online-E/seed<N>/gblend_history.jsonl)``): that
  run must have run in the same ``--work-dir`` first (it comes before in
  the order; a replay without it stops with a message);
* ``gblend-offline``: offline G-Blend, shadow estimator over the whole
  training (the demo's ``shadow_fraction=1.0``, ``min_weight=0.05``); the
  shadow copies train without V, the main run on the whole training set
  (the hook holds out V itself, with ``heldout_fraction=F`` and the split's
  seed: the same V as the online runs');
* ``ogm-ge``, ``opm``: the demo's OGM-GE and OPM settings (OGM-GE with
  the paper's ``k`` on the convolution kernels, modulating the first half
  of the schedule, ``ogm_end_epoch``; OPM after a warm-up of a sixth of it,
  ``opm_start_epoch``); ``opm-ogm-ge``: both in one training, as the TPAMI
  paper evaluates them; only for a config with exactly two modalities;
* ``paper-weights``: the paper's Kinetics weights, fixed; only for
  modalities ``rgb`` and ``audio``.

Every strategy keeps the base config's prediction rule and custom hooks
(listed before a strategy's own hook): on the demo, ``model.prediction=
'mix'`` with a ``PredictionMixHook``, the trained heads' probabilities
mixed by weights fitted on the val split after training, for every
multi-head strategy alike.

Online G-Blend trains on the training set wrapped in
``HeldOutSplitDataset(part='train', fraction=F, seed=0)`` (``F`` from
``--heldout-fraction``, the demo's 0.4 by default): the training set minus
a held-out part V. For a like-for-like comparison, every baseline also
runs as ``<name>@gblend-part``, trained on exactly those clips (the same
wrapper, fraction and seed). The ``-release`` and ``-replay`` variants and
``gblend-offline`` train their final model on the whole training set (V
included), as the baselines without the suffix do.

``--set core`` (default): the single modalities, ``naive-fusion``,
``aux-heads``, ``paper-weights``, the ``@gblend-part`` runs of the single
modalities and naive fusion, and ``gblend-online-trajectory`` with its
``-release`` and ``-replay`` variants. ``--set extra``: ``ogm-ge``,
``opm``, ``opm-ogm-ge``, the ``@gblend-part`` runs of these, of
``aux-heads`` and of ``paper-weights``, ``gblend-online-shadow`` with its
``-release`` and ``-replay`` variants, and ``gblend-offline`` (with its
shadow copies over the whole schedule, about two runs' time).
``--strategies`` names the strategies instead.

Each run is a fresh process of ``tools/train.py`` with ``--seed`` and
``--test-last --dump`` (its last checkpoint tested in the same process);
the accuracies are computed from the dumped scores. A run whose
``result.json`` exists (for the same derived config) is not run again, so
an interrupted comparison continues where it stopped; ``--reuse
comparison.json`` takes the runs of an earlier comparison (say, the one
committed under docs/comparison/core/; runs named ``gblend-online`` are
taken as ``gblend-online-trajectory``) and trains only the missing ones.

Written to ``--work-dir``: ``comparison.json`` (every run: strategy, seed,
wall time, top-1 of the prediction and of each head, final blend weights by
head, training clips), ``comparison.md`` (mean ± std top-1 per strategy
with the final weights and their spread over seeds; paired per-seed
differences, with 95% t-intervals and the shares of seeds won, tied and
lost, against the best single modality and naive fusion, both trained on
the whole training set and on G-Blend's part; the call's wall time) and
``comparison.png`` (a bar chart). ``--data-root`` points the config at a
directory laid out as the demo data (``{train,val,test}_list.txt`` and the
clips); ``--epochs`` shortens the schedule (to try the tool).
"""
import argparse
import ast
import copy
import hashlib
import json
import math
import os
import os.path as osp
import pprint
import statistics
import subprocess
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmaction_gblend.datasets.group_split import \
    check_group_spec  # noqa: E402
from mmaction_gblend.evaluation.paired_statistics import (  # noqa: E402
    paired_comparison)

DEFAULT_CONFIG = osp.join(REPO, 'configs', 'demo',
                          'naive-fusion_r3d18-rgb_r18-audio_demo-av.py')
#: The held-out fraction of the demo's G-Blend configs.
DEFAULT_HELDOUT_FRACTION = 0.4
#: The seed of the held-out split (the same for every training seed).
HELDOUT_SEED = 0
#: The suffix of a baseline trained on G-Blend's training part.
PART_SUFFIX = '@gblend-part'
FUSED = 'fused'
SPLIT_DATASET = 'HeldOutSplitDataset'
#: The splits a comparison can be measured on (``--eval-split``).
EVAL_SPLITS = ('test', 'val')
GBLEND_HOOK = 'GradientBlendingHook'
MODULATION_HOOK = 'OnTheFlyModulationHook'
OGM_GE_WRAPPER = 'OGMGEOptimWrapper'
#: The on-the-fly modulation strategies (two modalities only).
MODULATIONS = ('ogm-ge', 'opm', 'opm-ogm-ge')

#: The online hook of configs/demo/gblend-online*_demo-av.py, without its
#: estimator and schedule (see :func:`gblend_epochs`).
ONLINE_HOOK = dict(type=GBLEND_HOOK, mode='online', weights='uniform',
                   smoothing=0.5, min_weight=0.02)
#: configs/demo/gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av.py's hook.
OFFLINE_HOOK = dict(type=GBLEND_HOOK, mode='offline', estimator='shadow',
                    shadow_fraction=1.0, min_weight=0.05)
#: GradientBlendingHook's default warmup_epochs.
HOOK_DEFAULT_WARMUP = 10
#: configs/demo/ogm-ge_r3d18-rgb_r18-audio_demo-av.py (its end_epoch: see
#: :func:`ogm_end_epoch`).
OGM_GE = dict(type=OGM_GE_WRAPPER, alpha=0.8, coefficient='paper',
              params='conv', ge_noise=True, start_epoch=0)
#: configs/demo/opm_r3d18-rgb_r18-audio_demo-av.py (its start_epoch: see
#: :func:`opm_start_epoch`).
OPM = dict(q_base=0.5, lam=0.5, p_exe=0.7, end_epoch=None)
#: Offline G-Blend's weights on Kinetics-400, RGB + audio (Wang et al.
#: 2020): a fixed yardstick, not an estimate.
PAPER_WEIGHTS = dict(rgb=0.63, audio=0.014, fused=0.356)
#: Names of earlier versions of this tool, for ``--reuse``.
RENAMED = {'gblend-online': 'gblend-online-trajectory'}
SETS = ('core', 'extra')


@dataclass(frozen=True)
class Strategy:
    """One strategy derived from the base config.

    Attributes:
        name: Its name (``<modality>-only``, ``naive-fusion``, ...).
        method: What it changes: ``'only'``, ``'naive-fusion'``,
            ``'aux-heads'``, ``'paper-weights'``, ``'ogm-ge'``, ``'opm'``,
            ``'opm-ogm-ge'`` (both in one training),
            ``'gblend-online-shadow'``, ``'gblend-online-trajectory'``
            (their ``-release`` variants too), ``'gblend-replay'`` or
            ``'gblend-offline'``.
        group: The target set it belongs to (``'core'`` or ``'extra'``).
        modality: The modality of an ``'only'`` strategy.
        part: Whether its final model trains on G-Blend's training part
            only (the training set minus the held-out clips).
        release: An online G-Blend run whose held-out clips join training
            after the last estimate (``release_heldout``).
        replay_of: The G-Blend strategy whose recorded weights a replay
            applies, on the whole training set (the same seed's run).
    """
    name: str
    method: str
    group: str
    modality: Optional[str] = None
    part: bool = False
    release: bool = False
    replay_of: Optional[str] = None

    @property
    def gblend(self) -> bool:
        """Whether a GradientBlendingHook sets its weights."""
        return self.method.startswith('gblend')


def _epochs(n: int) -> str:
    return f'{n} epoch' + ('' if n == 1 else 's')


def gblend_epochs(max_epochs: int) -> int:
    """The G-Blend warm-up and super-epoch length for a schedule: a third of
    it, at least 1 (the demo's 4 of 12 epochs)."""
    return max(1, max_epochs // 3)


def ogm_end_epoch(max_epochs: int) -> int:
    """OGM-GE's last modulated epoch (included) for a schedule: the first
    half is modulated, epochs 0 to ``max_epochs // 2 - 1``, at least epoch
    0 (the demo's 0-3 of 8 epochs; the CVPR setting, 0-50 of 100, is
    about the first half)."""
    return max(0, max_epochs // 2 - 1)


def opm_start_epoch(max_epochs: int) -> int:
    """OPM's first epoch for a schedule: after a warm-up of a sixth of it,
    rounded down (the demo's 1 of 8 epochs; the authors': 5 of 100)."""
    return max_epochs // 6


def _plain(value):
    """A config value as plain dicts and lists."""
    if hasattr(value, 'to_dict'):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _replacing(value: dict, present: bool) -> dict:
    """``value`` replacing the base's dict (``_delete_``) where the base has
    the key (mmengine keeps a ``_delete_`` under a new key)."""
    return dict(_delete_=True, **value) if present else dict(value)


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


class Derivation:
    """The strategies derived from one base multi-modal config.

    Args:
        config: The base config: a ``MultiHeadRecognizer`` with two or more
            ``model.branches`` and a ``fusion``, without balancing of its
            own (no G-Blend or on-the-fly modulation hook, no ``opm``, no
            OGM-GE optimizer wrapper) and with an epoch-based
            ``train_cfg``.
        heldout_fraction: G-Blend's held-out fraction (of each class).
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

    Raises:
        ValueError: A config of another kind, naming what is missing.
    """

    def __init__(self, config: str = DEFAULT_CONFIG,
                 heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
                 heldout_group: Union[None, str, dict] = None,
                 epochs: Optional[int] = None,
                 data_root: Optional[str] = None,
                 val_every_epoch: bool = False,
                 eval_split: str = 'test',
                 work_dir: str = 'work_dirs/compare') -> None:
        from mmengine.config import Config
        #: Where the runs go (a replay reads its source run's history).
        self.work_dir = osp.abspath(work_dir)
        self.config = osp.abspath(config)
        self.cfg = Config.fromfile(self.config)
        if not 0 < heldout_fraction < 1:
            raise ValueError('--heldout-fraction must be in (0, 1), got '
                             f'{heldout_fraction}')
        self.heldout_fraction = float(heldout_fraction)
        base_split = _plain(self.cfg.train_dataloader['dataset'])
        if heldout_group is None and base_split.get('type') == SPLIT_DATASET:
            heldout_group = base_split.get('group')
        check_group_spec(heldout_group, '--heldout-group')
        #: ``HeldOutSplitDataset.group`` of every split (None: by sample).
        self.heldout_group = heldout_group
        self.epochs = epochs
        self.val_every_epoch = val_every_epoch
        if eval_split not in EVAL_SPLITS:
            raise ValueError(f'--eval-split must be one of {EVAL_SPLITS}, '
                             f'got {eval_split!r}')
        self.eval_split = eval_split
        self.data_root = None if data_root is None else osp.abspath(
            data_root)
        self._check()
        model = self.cfg.model
        #: The modalities in the config's order.
        self.modalities: List[str] = list(model.branches)
        self.max_epochs = int(self.cfg.train_cfg['max_epochs']
                              if epochs is None else epochs)
        if self.max_epochs < 1:
            raise ValueError(f'--epochs must be >= 1, got {epochs}')
        self.notes: List[str] = []
        self.strategies: 'OrderedDict[str, Strategy]' = self._derive()

    def _check(self) -> None:
        model = self.cfg.get('model', {})
        where = f'compare_strategies: {self.config}:'
        if model.get('type') != 'MultiHeadRecognizer' or \
                len(model.get('branches') or {}) < 2 or \
                model.get('fusion') is None:
            raise ValueError(
                f"{where} needs model.type='MultiHeadRecognizer' with two "
                'or more model.branches and a model.fusion (a multi-modal '
                'late-fusion config, as configs/demo/naive-fusion_*.py)')
        hooks = {h.get('type') for h in self.cfg.get('custom_hooks') or []}
        own = hooks & {GBLEND_HOOK, MODULATION_HOOK}
        if own or model.get('opm') is not None or \
                self.cfg.get('optim_wrapper', {}).get('type') == \
                OGM_GE_WRAPPER:
            raise ValueError(
                f'{where} the base config balances the modalities itself '
                f'({", ".join(sorted(own)) or "opm / OGM-GE"}); give the '
                'plain fusion config it is derived from')
        if self.cfg.get('train_cfg', {}).get('max_epochs') is None:
            raise ValueError(f'{where} needs an epoch-based train_cfg '
                             '(train_cfg.max_epochs)')

    # strategies -----------------------------------------------------------

    def _derive(self) -> 'OrderedDict[str, Strategy]':
        mods = self.modalities
        baselines = [Strategy(f'{m}-only', 'only', 'core', m) for m in mods]
        baselines += [Strategy('naive-fusion', 'naive-fusion', 'core'),
                      Strategy('aux-heads', 'aux-heads', 'core')]
        if sorted(mods) == ['audio', 'rgb']:
            baselines.append(Strategy('paper-weights', 'paper-weights',
                                      'core'))
        else:
            self.notes.append(
                'paper-weights left out: the paper\'s weights are for '
                f'rgb + audio, the config has {", ".join(mods)}')
        if len(mods) == 2:
            baselines += [Strategy(m, m, 'extra') for m in MODULATIONS]
        else:
            self.notes.append(
                'ogm-ge, opm and opm-ogm-ge left out: they need exactly two '
                'modalities, '
                f'the config has {len(mods)}')
        parts = [
            Strategy(s.name + PART_SUFFIX, s.method,
                     'core' if s.method in ('only', 'naive-fusion')
                     else 'extra', s.modality, part=True)
            for s in baselines
        ]
        estimators = ['shadow']
        if gblend_epochs(self.max_epochs) < self.max_epochs:
            estimators.append('trajectory')
        else:
            self.notes.append(
                'gblend-online-trajectory left out: its warm-up '
                f'({_epochs(gblend_epochs(self.max_epochs))}) must be '
                f'shorter than the training ({_epochs(self.max_epochs)})')
        gblend = []
        for estimator in estimators:
            # the cheap estimator's variants are the core set's
            group = 'core' if estimator == 'trajectory' else 'extra'
            online = f'gblend-online-{estimator}'
            gblend += [
                Strategy(online, online, group, part=True),
                Strategy(online + '-release', online, group, release=True),
                Strategy(online + '-replay', 'gblend-replay', group,
                         replay_of=online)]
        # the first-order estimator (cheap, from epoch 0), its online run
        gblend.append(Strategy('gblend-online-first_order',
                               'gblend-online-first_order', 'extra',
                               part=True))
        # offline (shadow copies over the whole schedule) costs two runs'
        # time: extra
        gblend.append(Strategy('gblend-offline', 'gblend-offline', 'extra'))
        return OrderedDict((s.name, s) for s in baselines + parts + gblend)

    def select(self, sets: Sequence[str] = ('core', )) -> List[str]:
        """The strategies of the target sets, in their order."""
        return [n for n, s in self.strategies.items() if s.group in sets]

    # configs --------------------------------------------------------------

    def train_dataset(self, part: bool) -> dict:
        """The training dataset config of a strategy: the base's (unwrapped
        if it is a ``HeldOutSplitDataset``; pointed at ``data_root``), or
        G-Blend's training part of it."""
        dataset = _plain(self.cfg.train_dataloader['dataset'])
        if dataset.get('type') == SPLIT_DATASET:
            dataset = dataset['dataset']
        if self.data_root is not None:
            dataset['ann_file'] = osp.join(self.data_root, 'train_list.txt')
            dataset['data_prefix'] = dict(dataset.get('data_prefix') or {},
                                          video=self.data_root)
        if part:
            dataset = dict(type=SPLIT_DATASET, part='train',
                           fraction=self.heldout_fraction, seed=HELDOUT_SEED,
                           dataset=dataset, **self._group())
        return dataset

    def _group(self) -> dict:
        return {} if self.heldout_group is None else dict(
            group=self.heldout_group)

    def _root_args(self, split: str) -> dict:
        return dict(ann_file=osp.join(self.data_root, f'{split}_list.txt'),
                    data_prefix=dict(video=self.data_root))

    def _hooks(self, hook: dict) -> List[dict]:
        return _plain(list(self.cfg.get('custom_hooks') or [])) + [hook]

    def gblend_hook(self, method: str) -> dict:
        """The GradientBlendingHook of a G-Blend strategy."""
        epochs = gblend_epochs(self.max_epochs)
        if method == 'gblend-offline':
            # the main run on the whole training set, the shadows on it
            # minus V: the same V as the online runs'
            hook = dict(OFFLINE_HOOK, heldout_fraction=self.heldout_fraction,
                        seed=HELDOUT_SEED,
                        **{'heldout_' + k: v
                           for k, v in self._group().items()})
            # An offline shadow estimate (one, over the whole training)
            # does not use warmup/super_epochs; they are given on a
            # schedule shorter than the hook's default warm-up, which its
            # check would refuse.
            if self.max_epochs >= HOOK_DEFAULT_WARMUP:
                return hook
            return dict(hook, warmup_epochs=epochs, super_epochs=epochs)
        return dict(ONLINE_HOOK, estimator=method.rsplit('-', 1)[1],
                    warmup_epochs=epochs, super_epochs=epochs)

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
        model_cfg = self.cfg.model
        heads = list(self.modalities) + [FUSED]
        out: 'OrderedDict[str, object]' = OrderedDict()
        model: dict = {}
        if s.method == 'only':
            model['branches'] = _replacing(
                {s.modality: _plain(model_cfg.branches[s.modality])}, True)
            model['fusion'] = None
            model['blend_weights'] = None
            if 'predict_head' in model_cfg:
                model['predict_head'] = None
        elif s.method in ('naive-fusion', 'aux-heads', 'paper-weights'):
            weights = dict(
                naive={h: float(h == FUSED) for h in heads},
                aux={h: 1 / len(heads) for h in heads},
                paper=dict(PAPER_WEIGHTS))[s.method.split('-')[0]]
            model['blend_weights'] = _replacing(
                weights, 'blend_weights' in model_cfg)
        if s.method in ('opm', 'opm-ogm-ge'):
            model['opm'] = _replacing(
                dict(OPM, start_epoch=opm_start_epoch(self.max_epochs)),
                'opm' in model_cfg)
        if model:
            out['model'] = model
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
        if s.replay_of is not None:
            if seed is None:
                raise ValueError(f'{name}: a replay\'s config needs the '
                                 'seed of the run it replays')
            out['custom_hooks'] = self._hooks(dict(
                type=GBLEND_HOOK, mode='replay',
                replay=self.replay_source(name, seed)))
        elif s.gblend:
            hook = self.gblend_hook(s.method)
            if s.release:
                hook['release_heldout'] = True
            out['custom_hooks'] = self._hooks(hook)
        elif s.method in MODULATIONS:
            out['custom_hooks'] = self._hooks(dict(type=MODULATION_HOOK))
        if s.method in ('ogm-ge', 'opm-ogm-ge'):
            out['optim_wrapper'] = dict(
                OGM_GE, end_epoch=ogm_end_epoch(self.max_epochs))
        if self.eval_split == 'val':
            # tools/test.py measures the val split: the config's val loader
            # and evaluator stand in for the test ones
            val = _plain(self.cfg.val_dataloader)
            if self.data_root is not None:
                val['dataset'].update(self._root_args('val'))
            out['test_dataloader'] = dict(_delete_=True, **val)
            out['test_evaluator'] = _replacing(
                _plain(self.cfg.val_evaluator), 'test_evaluator' in self.cfg)
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


# runs -----------------------------------------------------------------------


def build_train_dataset(config: str):
    """The training dataset a config trains on (built, not loaded)."""
    from mmaction.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmaction_gblend  # noqa: F401  (registers the plugin)
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    return DATASETS.build(cfg.train_dataloader['dataset'])


def top1(scores, labels) -> float:
    import torch
    return float((torch.stack(scores).argmax(dim=1) ==
                  torch.stack(labels)).float().mean())


def accuracies(dump: str) -> Dict[str, float]:
    """Top-1 of the prediction and of each head (the fused head's too,
    where the model has one), from a ``tools/test.py --dump`` file."""
    import pickle
    with open(dump, 'rb') as f:
        samples = pickle.load(f)
    labels = [s['gt_label'].reshape(-1)[0] for s in samples]
    result = dict(prediction=top1([s['pred_score'] for s in samples],
                                  labels))
    for head in samples[0].get('head_scores', {}):
        result[head] = top1([s['head_scores'][head] for s in samples],
                            labels)
    return result


def final_weights(checkpoint: str, config: str) -> Dict[str, float]:
    """The recognizer's blend weights in a checkpoint, by head name."""
    from mmengine.config import Config

    from mmaction_gblend.checkpoint import load_checkpoint_file
    weights = load_checkpoint_file(checkpoint)['state_dict'][
        'blend_weights'].tolist()
    if len(weights) == 1:  # a uni-modal model
        return {}
    # MultiHeadRecognizer's order: the modalities by name, then fused
    heads = sorted(Config.fromfile(config).model.branches) + [FUSED]
    return dict(zip(heads, weights))


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _of_config(result: dict, text: str) -> bool:
    """Whether a stored run is of the derived config ``text`` (a run
    stored without its config's hash is taken as it is)."""
    return result.get('config_sha1', _sha1(text)) == _sha1(text)


def run_one(derivation: Derivation, strategy: str, seed: int,
            work_dir: str, reused: Dict[tuple, dict]) -> dict:
    """Train and test one strategy with one seed (or read its result)."""
    text = derivation.config_text(strategy, seed)
    # a replay's config names its source's history by its path: the same
    # config in another work dir (--reuse) is the same run
    identity = text.replace(derivation.work_dir, '<work-dir>')
    if (strategy, seed) in reused:
        earlier = reused[(strategy, seed)]
        if _of_config(earlier, identity):
            return earlier
        print(f'  the reused {strategy}, seed {seed} is of another config: '
              'run again', flush=True)
    work = osp.join(work_dir, strategy, f'seed{seed}')
    result_file = osp.join(work, 'result.json')
    if osp.exists(result_file):
        with open(result_file) as f:
            result = json.load(f)
        if _of_config(result, identity):
            return result
        print(f'  {result_file} is of another config: run again',
              flush=True)
    source = derivation.strategies[strategy].replay_of
    if source is not None and \
            not osp.exists(derivation.replay_source(strategy, seed)):
        raise SystemExit(
            f'{strategy}, seed {seed}: the run it replays has no history '
            f'({derivation.replay_source(strategy, seed)}); run {source} '
            'with this seed in this work dir first (it comes before it in '
            'the strategy order)')
    os.makedirs(work, exist_ok=True)
    # beside the work dir: the Runner writes its own copy of the config
    # into it
    config = work + '.py'
    with open(config, 'w') as f:
        f.write(text)
    dataset = build_train_dataset(config)
    if derivation.strategies[strategy].release:
        # the clips its final epochs train on: the whole training set
        dataset = dataset.dataset
    train_samples = len(dataset)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    # one intra-op thread unless the caller chose: beside the data loader's
    # workers, more threads oversubscribe the cores (3x slower on 2 cores)
    env.setdefault('OMP_NUM_THREADS', '1')
    dump = osp.join(work, 'test_scores.pkl')
    start = time.time()
    # training, then the last checkpoint on the test split, in one process
    with open(osp.join(work, 'train.log'), 'w') as log:
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'),
                        config, '--work-dir', work, '--seed', str(seed),
                        '--test-last', '--dump', dump],
                       stdout=log, stderr=subprocess.STDOUT, env=env,
                       check=True)
    wall = time.time() - start
    with open(osp.join(work, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    result = dict(strategy=strategy, seed=seed, wall_s=wall,
                  accuracy=accuracies(dump),
                  weights=final_weights(checkpoint, config),
                  train_samples=train_samples,
                  config_sha1=_sha1(identity))
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def read_reused(path: str) -> Dict[tuple, dict]:
    """An earlier comparison's runs by ``(strategy, seed)`` (the strategies
    an earlier version named otherwise, renamed)."""
    with open(path) as f:
        runs = json.load(f)
    out = {}
    for r in runs:
        if r['strategy'] in RENAMED:
            r = dict(r, strategy=RENAMED[r['strategy']])
        out[(r['strategy'], r['seed'])] = r
    return out


# summary --------------------------------------------------------------------


def mean_std(values: Sequence[Optional[float]]) -> Optional[tuple]:
    """Mean and sample standard deviation (0 for a single value) of the
    values that are not ``None`` (``None`` if none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _median_minutes(runs: List[dict]) -> Optional[float]:
    """Median wall time in minutes of the runs that have one (``None`` if
    none): robust to a run that shared the cores with another job."""
    walls = [r['wall_s'] / 60 for r in runs if r.get('wall_s') is not None]
    return statistics.median(walls) if walls else None


def _modality_heads(results: Sequence[dict]) -> List[str]:
    heads = {h for r in results for h in r['accuracy'] if h != 'prediction'}
    return sorted(heads)


def summarise(results: Sequence[dict],
              order: Optional[Sequence[str]] = None,
              heads: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per strategy: top-1 (mean, std) of the prediction and each
    modality head, final weights by head (mean, min, max over seeds),
    median wall time, training clips, the number of seeds and the seeds
    themselves (``seed_list``).

    Args:
        results: The runs.
        order: The strategies' order (default: as they first appear).
        heads: The modality heads, in the table's order (default: those of
            the runs, sorted).
    """
    names = list(order or [])
    for r in results:
        if r['strategy'] not in names:
            names.append(r['strategy'])
    heads = list(heads) if heads is not None else _modality_heads(results)
    rows = []
    for strategy in names:
        runs = [r for r in results if r['strategy'] == strategy]
        if not runs:
            continue
        samples = {r.get('train_samples') for r in runs} - {None}
        row = dict(strategy=strategy, seeds=len(runs),
                   seed_list=[r['seed'] for r in runs],
                   prediction=mean_std([r['accuracy']['prediction']
                                        for r in runs]),
                   heads={h: mean_std([r['accuracy'].get(h) for r in runs])
                          for h in heads},
                   wall_min=_median_minutes(runs),
                   train_samples=sorted(samples))
        weights = [r['weights'] for r in runs if r.get('weights')]
        row['weights'] = None
        if weights:
            # the modality heads in the table's order, then fused
            first = weights[0]
            names_w = [h for h in heads if h in first] + sorted(
                h for h in first if h not in heads and h != FUSED)
            names_w += [FUSED] if FUSED in first else []
            row['weights'] = OrderedDict(
                (h, dict(mean=statistics.fmean(w[h] for w in weights),
                         min=min(w[h] for w in weights),
                         max=max(w[h] for w in weights)))
                for h in names_w)
        rows.append(row)
    return rows


#: The G-Blend strategies whose final model trains on the whole training
#: set (by their name's ending, so tables of stored runs can tell).
WHOLE_SET_GBLEND = ('-release', '-replay', 'gblend-offline')


def _is_part(name: str) -> bool:
    """Whether a strategy's final model trained on G-Blend's part only."""
    if name.startswith('gblend'):
        return not name.endswith(WHOLE_SET_GBLEND)
    return name.endswith(PART_SUFFIX)


def _is_gblend(name: str) -> bool:
    return name.startswith('gblend')


def paired_tables(results: Sequence[dict],
                  order: Sequence[str]) -> List[dict]:
    """The paired comparisons of the report, by reference.

    References: the best single modality (the ``-only`` strategy with the
    highest mean top-1) and naive fusion, each trained on the whole
    training set and on G-Blend's part. A baseline is compared with the
    references trained on the same clips as itself; G-Blend with all.

    Returns:
        ``dict(label, reference, rows)`` per reference that ran; ``rows``:
        :func:`paired_comparison` per strategy.
    """
    means = {r['strategy']: r['prediction'][0]
             for r in summarise(results, order)}

    def best(suffix: str) -> Optional[str]:
        names = [n for n in means if n.endswith('-only' + suffix)]
        return max(names, key=lambda n: means[n]) if names else None

    references = [
        ('best single modality (whole training set)', best('')),
        ('naive fusion (whole training set)', 'naive-fusion'),
        ('best single modality (G-Blend\'s training part)',
         best(PART_SUFFIX)),
        ('naive fusion (G-Blend\'s training part)',
         'naive-fusion' + PART_SUFFIX),
    ]
    tables = []
    score = lambda r: r['accuracy']['prediction']  # noqa: E731
    for label, ref in references:
        if ref is None or ref not in means:
            continue
        rows = []
        for name in means:
            if name == ref or (not _is_gblend(name) and
                               _is_part(name) != _is_part(ref)):
                continue
            row = paired_comparison(results, name, ref, score)
            if row is not None:
                rows.append(row)
        if rows:
            tables.append(dict(label=label, reference=ref, rows=rows))
    return tables


def _pct(value: Optional[tuple]) -> str:
    if value is None:
        return '–'
    return f'{100 * value[0]:.1f} ± {100 * value[1]:.1f}'


def _points(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{100 * value:+.1f}'


def _minutes(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def format_weights(weights: Optional[dict]) -> str:
    """``rgb 0.49 [0.40–0.55], audio 0.03, fused 0.48 [...]``: the mean
    final weight of each head, and its range over seeds where it varies."""
    if not weights:
        return '–'
    cells = []
    for head, w in weights.items():
        cell = f"{head} {w['mean']:.2f}"
        if f"{w['min']:.2f}" != f"{w['max']:.2f}":
            cell += f" [{w['min']:.2f}–{w['max']:.2f}]"
        cells.append(cell)
    return ', '.join(cells)


def markdown_table(rows: List[dict]) -> str:
    """The strategies' table (top-1 in %, mean ± std over seeds)."""
    heads = list(rows[0]['heads']) if rows else []
    lines = [
        '| strategy | prediction top-1 | ' +
        ''.join(f'{h} head | ' for h in heads) +
        'final weights (mean [min–max] over seeds) | train clips | '
        'train + test time (min, median) | seeds |',
        '|---|---|' + '---|' * len(heads) + '---|---|---|---|'
    ]
    for row in rows:
        clips = '/'.join(str(n) for n in row['train_samples']) or '–'
        lines.append(
            f"| {row['strategy']} | {_pct(row['prediction'])} | " +
            ''.join(f'{_pct(row["heads"][h])} | ' for h in heads) +
            f"{format_weights(row['weights'])} | {clips} | "
            f"{_minutes(row['wall_min'])} | {row['seeds']} |")
    return '\n'.join(lines) + '\n'


def markdown_paired(tables: List[dict]) -> str:
    """The paired-difference tables (top-1 points)."""
    lines = []
    for table in tables:
        lines += [
            f"## Paired differences against {table['label']}: "
            f"`{table['reference']}`", '',
            'Per seed: strategy minus reference, top-1 points; mean, 95% '
            't-interval, share of seeds with a positive (won), zero (tied) '
            'and negative (lost) difference.', '',
            '| strategy | seeds | mean diff | 95% interval | won | tied | '
            'lost |', '|---|---|---|---|---|---|---|'
        ]
        for c in table['rows']:
            interval = 'n/a' if c['low'] is None else \
                f"[{_points(c['low'])}, {_points(c['high'])}]"
            lines.append(
                f"| {c['strategy']} | {c['n']} | {_points(c['mean'])} | "
                f"{interval} | {c['won']:.0%} | {c['tied']:.0%} | "
                f"{c['lost']:.0%} |")
        lines.append('')
    return '\n'.join(lines)


def _shown(path: str) -> str:
    """A path relative to the repository where it is inside it."""
    rel = osp.relpath(path, REPO)
    return path if rel.startswith('..') else rel


def prediction_rule(model: dict) -> str:
    """What a strategy's prediction is, by the base config's model (every
    strategy keeps its ``prediction``)."""
    if model.get('prediction', 'head') == 'mix':
        return ("the trained heads' probabilities mixed by weights fitted "
                "on the val split after training (the base config's "
                "prediction='mix'; a single modality: its head)")
    head = model.get('predict_head') or FUSED
    return f'the {head} head (the modality\'s for a single modality)'


def report(results: Sequence[dict], derivation: Derivation,
           wall: Optional[float] = None) -> str:
    """comparison.md: the setting, the strategies' table, the paired
    differences and the call's wall time."""
    order = list(derivation.strategies)
    rows = summarise(results, order, derivation.modalities)
    d = derivation
    epochs = gblend_epochs(d.max_epochs)
    lines = [
        f'# Strategies on `{_shown(d.config)}`', '',
        f"Modalities: {', '.join(d.modalities)}; {_epochs(d.max_epochs)}"
        f"{' (--epochs)' if d.epochs else ''}; G-Blend: warm-up and "
        f'super-epochs of {_epochs(epochs)}, held-out fraction '
        f'{d.heldout_fraction} '
        + (f'in whole groups (`{d.heldout_group}`) '
           if d.heldout_group is not None else '') +
        f'(split seed {HELDOUT_SEED}). `{PART_SUFFIX}`: trained on the '
        'clips G-Blend trains on (the training set minus its held-out '
        f'part). Top-1 on the {d.eval_split} split, %, mean ± std over '
        f'seeds; the prediction: {prediction_rule(d.cfg.model)}.', ''
    ]
    if d.notes:
        lines += [f'Note: {n}.' for n in d.notes] + ['']
    lines += [markdown_table(rows),
              markdown_paired(paired_tables(results, order))]
    lines.append(run_time_line(results))
    if wall is not None:
        lines.append(f'Total wall time of this call: {wall / 60:.1f} min '
                     '(runs resumed or reused are not timed again).')
    return '\n'.join(lines) + '\n'


def run_time_line(results: Sequence[dict]) -> str:
    """The runs' own train + test time, in all and per seed (as measured
    when each ran, also for runs reused or resumed here)."""
    timed = [r for r in results if r.get('wall_s') is not None]
    per_seed: Dict[int, float] = {}
    for r in timed:
        per_seed[r['seed']] = per_seed.get(r['seed'], 0.0) + r['wall_s']
    seeds = ', '.join(f'seed {s} {t / 60:.1f}'
                      for s, t in sorted(per_seed.items()))
    total = sum(per_seed.values())
    return (f"The runs' own train + test time: {total / 60:.1f} min for "
            f'{len(timed)} runs ({seeds} min).\n')


#: The demo's own config of each strategy derived from its naive fusion
#: (the derived configs load the same; tested).
DEMO_CONFIGS = {
    'rgb-only': 'rgb-only_r3d18_demo-av',
    'audio-only': 'audio-only_r18_demo-av',
    'naive-fusion': 'naive-fusion_r3d18-rgb_r18-audio_demo-av',
    'aux-heads': 'aux-heads_r3d18-rgb_r18-audio_demo-av',
    'paper-weights': 'paper-weights_r3d18-rgb_r18-audio_demo-av',
    'ogm-ge': 'ogm-ge_r3d18-rgb_r18-audio_demo-av',
    'opm': 'opm_r3d18-rgb_r18-audio_demo-av',
    'opm-ogm-ge': 'opm-ogm-ge_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory': 'gblend-online_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-shadow': 'gblend-online-shadow_r3d18-rgb_r18-audio_demo-av',
    'gblend-offline': 'gblend-offline-shadow_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory-release':
    'gblend-online-release_r3d18-rgb_r18-audio_demo-av',
    'gblend-online-trajectory-replay':
    'gblend-replay_r3d18-rgb_r18-audio_demo-av',
}


def metafile(rows: List[dict], derivation: 'Derivation', work_dir: str
             ) -> dict:
    """The comparison as an mmaction2 model index (``metafile.yml``): one
    model per strategy with its config, mean and std of the test top-1 over
    seeds, median training time and the command that reproduces it."""
    cfg = derivation.cfg
    # mmaction2's config names end in _<dataset>: '..._demo-av' -> demo-av
    dataset = osp.splitext(osp.basename(
        derivation.config))[0].rsplit('_', 1)[-1]
    batch = cfg.train_dataloader.get('batch_size')
    models = []
    for row in rows:
        name = row['strategy']
        config = osp.join(work_dir, name, 'seed0.py')
        if derivation.config == osp.abspath(DEFAULT_CONFIG) and \
                name in DEMO_CONFIGS:
            config = osp.join(REPO, 'configs', 'demo',
                              DEMO_CONFIGS[name] + '.py')
        mean, std = row['prediction']
        seeds = ' '.join(str(s) for s in row['seed_list'])
        models.append(dict([
            ('Name', name),
            ('Config', _shown(config)),
            ('In Collection', 'Balancing strategies'),
            ('Metadata', dict([
                ('Base Config', _shown(derivation.config)),
                ('Training Data', dataset),
                ('Training Clips', row['train_samples'][0]
                 if len(row['train_samples']) == 1 else row['train_samples']),
                ('Epochs', derivation.max_epochs),
                ('Batch Size', batch),
                ('Seeds', row['seeds']),
                ('Training Resources', f'{os.cpu_count()} CPU cores'),
                ('Training and Test Time (min, median)',
                 None if row['wall_min'] is None else
                 round(row['wall_min'], 1)),
            ])),
            ('Modality', '+'.join(
                [derivation.strategies[name].modality]
                if name in derivation.strategies
                and derivation.strategies[name].method == 'only'
                else derivation.modalities)),
            ('Results', [dict(
                Dataset=dataset, Task='Action Recognition',
                Metrics={'Top 1 Accuracy': round(100 * mean, 2),
                         'Top 1 Accuracy Std': round(100 * std, 2)})]),
            ('Reproduce',
             f'python tools/compare_strategies.py --config '
             f'{_shown(derivation.config)} --strategies {name} '
             f'--seeds {seeds} --work-dir {_shown(work_dir)}'),
        ]))
    return dict(Collections=[dict(
        Name='Balancing strategies',
        README='README.md',
        Paper=dict(URL='https://arxiv.org/abs/1905.12681',
                   Title='What Makes Training Multi-Modal Classification '
                   'Networks Hard?'))], Models=models)


def write_metafile(index: dict, path: str) -> None:
    import yaml

    class _Ordered(yaml.SafeDumper):
        pass

    _Ordered.add_representer(
        dict, lambda d, v: d.represent_mapping(
            'tag:yaml.org,2002:map', v.items()))
    with open(path, 'w') as f:
        yaml.dump(index, f, Dumper=_Ordered, sort_keys=False,
                  allow_unicode=True, width=100)


def bar_chart(rows: List[dict], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['strategy'] for r in rows]
    means = [100 * r['prediction'][0] for r in rows]
    stds = [100 * r['prediction'][1] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    colours = [
        'tab:orange' if _is_gblend(n) else
        'tab:grey' if n.split('@')[0].endswith('-only') else 'tab:blue'
        for n in names
    ]
    bars = ax.bar(names, means, yerr=stds, capsize=4, color=colours)
    for bar, name in zip(bars, names):
        if name.endswith(PART_SUFFIX):
            bar.set_hatch('//')
    for i, m in enumerate(means):
        ax.text(i, m + stds[i] + 0.5, f'{m:.1f}', ha='center', fontsize=8)
    ax.set_ylabel('test top-1 (%), mean ± std over seeds')
    ax.set_title(title)
    ax.set_ylim(0, min(100, max(m + s for m, s in zip(means, stds)) + 8))
    plt.setp(ax.get_xticklabels(), rotation=35, ha='right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the base multi-modal fusion config (default: '
                        'the demo\'s naive fusion)')
    parser.add_argument('--set', dest='sets', nargs='+', choices=SETS,
                        default=['core'],
                        help='target sets of strategies (default: core)')
    parser.add_argument('--strategies', nargs='+', default=None,
                        help='the strategies to run instead of --set')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--heldout-fraction', type=float,
                        default=DEFAULT_HELDOUT_FRACTION,
                        help="G-Blend's held-out fraction (default: the "
                        "demo's %(default)s)")
    parser.add_argument('--heldout-group', default=None, metavar='REGEX',
                        help='hold out whole groups: a regular expression '
                        'whose first capture group, searched in each '
                        "clip's path, names its group (UCF-101: "
                        "'_g(\\d+)_c'); set it when the test split is by "
                        'actor, speaker, scene or source video')
    parser.add_argument('--data-root', default=None,
                        help='data laid out as the demo data (default: the '
                        "config's own)")
    parser.add_argument('--work-dir', default='work_dirs/compare')
    parser.add_argument('--epochs', type=int, default=None,
                        help='shorter schedule (for trying the tool)')
    parser.add_argument('--eval-split', choices=EVAL_SPLITS,
                        default='test',
                        help="the split the table measures ('val': to choose "
                        "a dataset's or schedule's parameters without the "
                        'test split)')
    parser.add_argument('--val-every-epoch', action='store_true',
                        help="keep the config's validation interval "
                        '(default: validate once, after the last epoch)')
    parser.add_argument('--reuse', default=None,
                        help="an earlier run's comparison.json: its runs "
                        'are taken as they are, the missing ones trained')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    start = time.time()
    args = parse_args(argv)
    try:
        derivation = Derivation(args.config, args.heldout_fraction,
                                args.heldout_group, args.epochs, args.data_root,
                                args.val_every_epoch, args.eval_split,
                                args.work_dir)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    for note in derivation.notes:
        print(f'note: {note}', flush=True)
    if args.strategies:
        unknown = [s for s in args.strategies
                   if s not in derivation.strategies]
        if unknown:
            raise SystemExit(
                f'unknown strategies for {args.config}: {unknown}; known: '
                f'{", ".join(derivation.strategies)}')
        strategies = list(args.strategies)
    else:
        strategies = derivation.select(args.sets)
    reused = read_reused(args.reuse) if args.reuse else {}
    results = []
    # seed by seed, so an interrupted comparison has every strategy once
    for seed in args.seeds:
        for strategy in strategies:
            print(f'{strategy}, seed {seed} ...', flush=True)
            results.append(run_one(derivation, strategy, seed,
                                   args.work_dir, reused))
            acc = results[-1]['accuracy']['prediction']
            wall = results[-1].get('wall_s')
            print(f'  top-1 {100 * acc:.1f}' +
                  (f' in {wall / 60:.1f} min' if wall is not None else ''),
                  flush=True)
            # after every run: an interrupted comparison's finished runs
            # can be committed and passed to --reuse
            os.makedirs(args.work_dir, exist_ok=True)
            with open(osp.join(args.work_dir, 'comparison.json'), 'w') as f:
                json.dump(results, f, indent=1)
    rows = summarise(results, list(derivation.strategies),
                     derivation.modalities)
    bar_chart(rows, osp.join(args.work_dir, 'comparison.png'),
              'Balancing strategies on '
              f'{osp.splitext(osp.basename(derivation.config))[0]}')
    write_metafile(metafile(rows, derivation, args.work_dir),
                   osp.join(args.work_dir, 'metafile.yml'))
    wall = time.time() - start
    text = report(results, derivation, wall)
    with open(osp.join(args.work_dir, 'comparison.md'), 'w') as f:
        f.write(text)
    print(text)
    print(f'written: {args.work_dir}/comparison.md, metafile.yml, '
          'comparison.png, '
          'comparison.json')
    print(f'total wall time: {wall / 60:.1f} min ({wall:.0f} s)')


if __name__ == '__main__':
    main()
