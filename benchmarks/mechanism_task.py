"""Strategies x seeds on the paradox task, with paired statistics.

The paradox task (:func:`mmaction_gblend.demo.toy_task.paradox_config`) is a
feature-level toy in which naive late fusion generalises worse than its
best single modality, as in Wang, Tran, Feiszli (CVPR 2020): modality A
("rgb") generalises, modality B ("audio") is memorised through a fixed
per-sample fingerprint. A training takes seconds, so every strategy runs
over many seeds and is compared with the baselines seed by seed.

Each finished run is appended to ``--out`` (JSON lines) at once; a later
call with the same arguments skips the runs already there (a run is keyed
by its strategy's definition, seed, split and task overrides, so editing a
strategy reruns it). The summary (``<out>.summary.md`` and
``<out>.summary.json``) gives per strategy the mean top-1 of the
prediction (multi-modal models: the ``'mix'`` rule, the heads'
probabilities mixed by weights fitted on the val split; uni-modal ones:
the modality's head) and its paired per-seed differences against naive
fusion, equal auxiliary heads and the best single modality (the uni-modal
strategy with the higher mean): mean, 95% t-interval and share of seeds
won. Strategies trained on G-Blend's training part (the training set
minus its held-out samples) are compared with baselines trained on that
same part (``<name>@gblend-part``) as well as with those trained on the
whole training set. For G-Blend the summary gives the final blend
weights per head and whether the memorising modality (audio) got the
lowest weight in every seed.

Examples::

    # calibration (validation split), every strategy, 20 seeds
    python benchmarks/mechanism_task.py --split val
    # final report on the test split, in 2 processes
    python benchmarks/mechanism_task.py --split test --jobs 2
    # the near-chance variant: B close to chance, nothing to memorise
    python benchmarks/mechanism_task.py --split val --variant near-chance
    # the group variant: G-Blend with V in whole groups or sample by sample
    python benchmarks/mechanism_task.py --split test --variant groups \\
        --strategies rgb-only audio-only naive-fusion aux-heads \\
        gblend-online-shadow gblend-online-shadow-group-v \\
        gblend-online-trajectory gblend-online-trajectory-group-v
    # a few strategies and seeds; a task knob changed (exploration only)
    python benchmarks/mechanism_task.py --strategies rgb-only naive-fusion \\
        --seeds 0 1 2 --set rgb_cue=2.5
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import shutil
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Dict, List, Optional, Sequence, Tuple

# the paired statistics, shared with tools/compare_strategies.py
from mmaction_gblend.evaluation.paired_statistics import paired_comparison

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_WORK_DIR = osp.join(REPO, 'work_dirs', 'mechanism_task')
#: The suffix of a baseline trained on G-Blend's training part.
PART_SUFFIX = '@gblend-part'
#: The suffix of a G-Blend strategy that holds out whole groups.
GROUP_SUFFIX = '-group-v'
#: The modality that can be memorised (it should get the lowest weight).
MEMORISING = 'audio'
UNIFORM = dict(audio=1 / 3, rgb=1 / 3, fused=1 / 3)
#: What a record keeps of each head at each G-Blend estimate.
HEAD_FIELDS = ('G', 'G_se', 'O', 'O_se', 'train_before', 'train_after')
PAPER_WEIGHTS = dict(rgb=0.63, audio=0.014, fused=0.356)  # Kinetics, offline


def _gblend(**kwargs) -> dict:
    return dict(type='GradientBlendingHook', **kwargs)


#: name -> keyword arguments of ``paradox_config`` (the strategy's changes
#: to the task's config). Edit the G-Blend hooks' options here.
BASE_STRATEGIES: Dict[str, dict] = {
    'rgb-only': dict(modalities=('rgb', )),
    'audio-only': dict(modalities=('audio', )),
    'naive-fusion': dict(blend_weights=dict(audio=0.0, rgb=0.0, fused=1.0)),
    'aux-heads': dict(blend_weights=UNIFORM),
    'paper-weights': dict(blend_weights=PAPER_WEIGHTS),
    'gblend-online-shadow': dict(gblend=_gblend(
        mode='online', estimator='shadow', warmup_epochs=10,
        super_epochs=5)),
    'gblend-online-trajectory': dict(gblend=_gblend(
        mode='online', estimator='trajectory', warmup_epochs=10,
        super_epochs=5)),
    # the same, with the shadow estimator run beside it from the same
    # checkpoints (its weights recorded, not used): how close they are
    'gblend-online-trajectory-check': dict(gblend=_gblend(
        mode='online', estimator='trajectory', warmup_epochs=10,
        super_epochs=5, shadow_check=True)),
    # the online estimators with smoothing towards the previous estimate
    # (late in a run every head's G and O are small and the raw weights
    # swing from estimate to estimate)
    'gblend-online-shadow-smoothed': dict(gblend=_gblend(
        mode='online', estimator='shadow', warmup_epochs=10,
        super_epochs=5, smoothing=0.5)),
    'gblend-online-trajectory-smoothed': dict(gblend=_gblend(
        mode='online', estimator='trajectory', warmup_epochs=10,
        super_epochs=5, smoothing=0.5, min_weight=0.02)),
    # Algorithm 2: one estimate from the initial model over the whole run
    'gblend-offline-shadow': dict(gblend=_gblend(
        mode='offline', estimator='shadow', warmup_epochs=10,
        super_epochs=5, exclude_heldout=True)),
    # final models on the whole training set: offline (the shadows train
    # without V, the main run on everything), online with V returned after
    # the last estimate, and a replay of an online run's weights
    'gblend-offline-all': dict(gblend=_gblend(
        mode='offline', estimator='shadow', warmup_epochs=10,
        super_epochs=5), train_on_all=True),
    'gblend-online-shadow-release': dict(gblend=_gblend(
        mode='online', estimator='shadow', warmup_epochs=10,
        super_epochs=5, release_heldout=True)),
    'gblend-online-trajectory-release': dict(gblend=_gblend(
        mode='online', estimator='trajectory', warmup_epochs=10,
        super_epochs=5, release_heldout=True)),
    'gblend-online-shadow-replay': dict(replay_of='gblend-online-shadow'),
    'gblend-online-trajectory-replay': dict(
        replay_of='gblend-online-trajectory'),
}
# The estimators of issue 30, each with Algorithm 1 run beside it from the
# same checkpoints (``shadow_check``: its weights recorded, not used):
# Proposition 1 at the checkpoint (first order), the shadow estimator on a
# quarter and a tenth of the training set, and the shadow estimator itself
# (the check on other sample orders: its repeatability).
for _name, _options in {
        'first-order': dict(estimator='first_order'),
        'shadow-quarter': dict(estimator='shadow', shadow_fraction=0.25),
        'shadow-tenth': dict(estimator='shadow', shadow_fraction=0.1),
        'shadow': dict(estimator='shadow')}.items():
    BASE_STRATEGIES[f'gblend-online-{_name}-check'] = dict(gblend=_gblend(
        mode='online', warmup_epochs=10, super_epochs=5, shadow_check=True,
        **_options))
BASE_STRATEGIES['gblend-online-first-order'] = dict(gblend=_gblend(
    mode='online', estimator='first_order', warmup_epochs=10,
    super_epochs=5))
# V made of whole groups (the group variant's "speakers"), against the
# default V drawn sample by sample from the same groups as training
for _name in ('gblend-online-shadow', 'gblend-online-trajectory'):
    BASE_STRATEGIES[_name + GROUP_SUFFIX] = dict(
        BASE_STRATEGIES[_name], heldout_group=dict(key='group'))
# Every multi-modal strategy predicts alike: the heads' probabilities mixed
# by weights fitted on the val split after training (PredictionMixHook).
for _spec in BASE_STRATEGIES.values():
    if _spec.get('modalities', ('rgb', 'audio')) != ('rgb', ) and \
            _spec.get('modalities') != ('audio', ):
        _spec.setdefault('prediction', 'mix')
#: Task variants (``--variant``): the frozen paradox task; one in which
#: B is close to chance and has nothing to memorise (its weak cue under
#: noise redrawn at every load): a head that barely learns also barely
#: overfits, and G / O^2 may then give it the largest weight; and one with
#: groups ("speakers" of 5 samples and 2 classes each): B's fingerprint is
#: the group's, the val and test samples come from unseen groups, and a V
#: drawn sample by sample shares its groups with training (compare the
#: ``-group-v`` G-Blend strategies, whose V is whole groups).
VARIANTS: Dict[str, dict] = {
    'paradox': {},
    'near-chance': dict(audio_cue=0.5, audio_noise=0.0, fingerprint=0.0,
                        fingerprint_dim=0, audio_fresh_noise=True),
    'groups': dict(group_size=5, group_classes=2),
}
#: Baselines that also run on exactly the samples G-Blend trains on.
PART_BASELINES = ('rgb-only', 'audio-only', 'naive-fusion', 'aux-heads',
                  'paper-weights')
STRATEGIES: Dict[str, dict] = dict(BASE_STRATEGIES)
STRATEGIES.update({
    name + PART_SUFFIX: dict(BASE_STRATEGIES[name], heldout_split=True)
    for name in PART_BASELINES
})
DEFAULT_STRATEGIES = (
    'rgb-only', 'audio-only', 'naive-fusion', 'aux-heads', 'paper-weights',
    *(name + PART_SUFFIX for name in PART_BASELINES),
    'gblend-online-shadow', 'gblend-online-trajectory',
    'gblend-online-trajectory-check', 'gblend-offline-shadow',
    'gblend-offline-all', 'gblend-online-shadow-release',
    'gblend-online-trajectory-release', 'gblend-online-shadow-replay',
    'gblend-online-trajectory-replay')
UNIMODAL = ('rgb-only', 'audio-only')


def is_gblend(name: str) -> bool:
    """Whether the strategy's weights are set by a GradientBlendingHook."""
    return 'gblend' in STRATEGIES[name] or 'replay_of' in STRATEGIES[name]


def on_gblend_part(name: str) -> bool:
    """Whether the strategy's final model trains on G-Blend's training
    part only (V never trained on)."""
    spec = STRATEGIES[name]
    if 'replay_of' in spec or spec.get('train_on_all') or \
            spec.get('gblend', {}).get('release_heldout'):
        return False
    return 'gblend' in spec or bool(spec.get('heldout_split'))


# runs -----------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=list)


def run_key(strategy: str, seed: int, split: str,
            task: Optional[dict] = None) -> str:
    """What identifies a run in the results file: the strategy's
    definition (not only its name), the seed, the split and the task's
    overrides."""
    spec = _canonical(dict(name=strategy, spec=STRATEGIES[strategy],
                           seed=seed, split=split, task=task or {}))
    return hashlib.sha1(spec.encode()).hexdigest()[:16]


def build_config(strategy: str, seed: int, split: str, work_dir: str,
                 task: Optional[dict] = None) -> dict:
    """The Runner config of one run."""
    from mmaction_gblend.demo.toy_task import paradox_config
    kwargs = copy.deepcopy(STRATEGIES[strategy])
    kwargs.pop('replay_of', None)
    kwargs.update(copy.deepcopy(task or {}))
    return paradox_config(work_dir, seed=seed, eval_split=split, **kwargs)


def replay_config(strategy: str, seed: int, split: str, work_dir: str,
                  history: str, task: Optional[dict] = None) -> dict:
    """The config of a replay: the whole training set, the weights of
    ``history`` (the source run's ``gblend_history.jsonl``) at each epoch."""
    cfg = build_config(strategy, seed, split, work_dir, task)
    cfg['custom_hooks'].insert(0, _gblend(mode='replay', replay=history))
    return cfg


def _release_runner(runner) -> None:
    """Close what mmengine keeps per run (the log file handles and the
    named logger and visualizer instances), so hundreds of runs in one
    process do not pile up open files."""
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer
    for handler in list(runner.logger.handlers):
        if hasattr(handler, 'baseFilename'):
            handler.close()
            runner.logger.removeHandler(handler)
    MMLogger._instance_dict.pop(runner.logger.instance_name, None)
    Visualizer._instance_dict.pop(runner.visualizer.instance_name, None)


def head_probabilities(model, loader) -> Tuple[Dict[str, Any], Any]:
    """Every head's class probabilities ``{head: [N, C]}`` on ``loader``
    (eval mode) and the labels ``[N]``."""
    import torch
    from mmaction_gblend.models.utils import stack_labels
    model.eval()
    probs: Dict[str, list] = {}
    labels = []
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            maps, _ = model.extract_feat(data['inputs'])
            for head, logits in model.head_logits(maps).items():
                probs.setdefault(head, []).append(logits.softmax(1))
            labels.append(stack_labels(data['data_samples']))
    return {h: torch.cat(p) for h, p in probs.items()}, torch.cat(labels)


def prediction_rules(model, val_loader, test_loader) -> Dict[str, float]:
    """Test top-1 of the candidate prediction rules of a multi-head model.

    ``head:<h>``: head h alone; ``blend``: the heads' probabilities mixed
    by the final blend weights; ``uniform``: their mean; ``fitted``: mixed
    by the weights (a 0.1 grid on the simplex) with the best val top-1;
    ``best-val-head``: the head with the best val top-1.
    """
    val, val_labels = head_probabilities(model, val_loader)
    test, test_labels = head_probabilities(model, test_loader)

    def top1(probs, labels, weights):
        mixed = sum(w * probs[h] for h, w in weights.items())
        return float((mixed.argmax(1) == labels).float().mean())

    heads = list(test)
    rules = {f'head:{h}': top1(test, test_labels, {h: 1.0}) for h in heads}
    blend = model.get_blend_weights()
    rules['blend'] = top1(test, test_labels, blend)
    rules['uniform'] = top1(test, test_labels,
                            {h: 1 / len(heads) for h in heads})
    from mmaction_gblend.blending.prediction_mix import simplex_grid
    fitted = max((dict(zip(heads, row))
                  for row in simplex_grid(len(heads), 0.1).tolist()),
                 key=lambda w: top1(val, val_labels, w))
    rules['fitted'] = top1(test, test_labels, fitted)
    best = max(heads, key=lambda h: top1(val, val_labels, {h: 1.0}))
    rules['best-val-head'] = rules[f'head:{best}']
    return rules


def run_one(strategy: str, seed: int, split: str, work_root: str,
            task: Optional[dict] = None, keep: bool = False) -> dict:
    """Train and evaluate one strategy with one seed; return its record.

    The record has the top-1 of the prediction (``top1``), of every head
    (``head_top1``), the final blend weights (``weights``, multi-modal
    models), the G-Blend estimates' weights (``history``; a replay: the
    replayed changes), the top-1 of several prediction rules (``rules``,
    multi-modal models: :func:`prediction_rules`), the number of training
    samples and the wall time in seconds. A replay (``replay_of``) trains
    its source strategy first, in ``<work dir>/source``; its record is the
    replay's, its time both runs'.
    """
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    import mmaction_gblend  # noqa: F401  (registers the plugin)
    import mmaction_gblend.demo.toy_task  # noqa: F401  (registers the task)
    torch.set_num_threads(1)
    start = time.perf_counter()
    key = run_key(strategy, seed, split, task)
    work_dir = osp.join(work_root, 'runs', f'{strategy}-s{seed}-{key}')
    source = STRATEGIES[strategy].get('replay_of')
    if source is None:
        cfg = build_config(strategy, seed, split, work_dir, task)
    else:
        # the online run whose weights are replayed, trained first
        source_dir = osp.join(work_dir, 'source')
        source_cfg = build_config(source, seed, split, source_dir, task)
        source_cfg['experiment_name'] = f'{strategy}-s{seed}-{key}-source'
        source_runner = Runner.from_cfg(Config(source_cfg))
        try:
            source_runner.train()
        finally:
            _release_runner(source_runner)
        cfg = replay_config(strategy, seed, split, work_dir,
                            osp.join(source_dir, 'gblend_history.jsonl'),
                            task)
    cfg['experiment_name'] = f'{strategy}-s{seed}-{split}-{key}'
    runner = Runner.from_cfg(Config(cfg))
    try:
        runner.train()
        metrics = runner.test()
        model = runner.model.module if hasattr(runner.model, 'module') \
            else runner.model
        hook = next((h for h in runner.hooks
                     if type(h).__name__ == 'GradientBlendingHook'), None)
        # per estimate: the weights, each head's G, O, their errors and the
        # probe's fall (what alternative rules can be recomputed from), and
        # the shadow estimator's weights from the same checkpoint
        history = [] if hook is None else [
            dict(epoch=e['epoch'], weights=e['weights'],
                 **({'heads': {h: {k: v[k] for k in HEAD_FIELDS}
                               for h, v in e['heads'].items()}}
                    if 'heads' in e else {}),
                 **({'shadow_check': e['shadow_check']}
                    if 'shadow_check' in e else {}))
            for e in hook.history
        ]
        record = dict(
            key=key, strategy=strategy, seed=seed, split=split,
            task=task or {}, predict_head=model.predict_head,
            top1=float(metrics['acc/top1']),
            head_top1={
                h: float(metrics[f'acc/{h}_top1'])
                for h in model.modalities
            },
            weights=dict(model.get_blend_weights())
            if len(model.head_names) > 1 else None,
            history=history,
            train_samples=len(runner.train_dataloader.dataset),
            seconds=time.perf_counter() - start)
        if model.fusion is not None:
            record['head_top1']['fused'] = float(metrics['acc/fused_top1'])
            record['rules'] = prediction_rules(
                model, Runner.build_dataloader(cfg['val_dataloader']),
                runner.test_dataloader)
    finally:
        _release_runner(runner)
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    return record


def _run_in_worker(args: tuple) -> dict:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MKL_NUM_THREADS', '1')
    return run_one(*args)


def read_records(path: str) -> List[dict]:
    """The records of a results file (none if it does not exist); a torn
    last line (an interrupted write) is ignored."""
    if not osp.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def run_all(strategies: Sequence[str], seeds: Sequence[int], split: str,
            out: str, work_root: str, task: Optional[dict] = None,
            jobs: int = 1, keep: bool = False,
            log=print) -> Tuple[List[dict], List[str]]:
    """Run what ``out`` lacks, appending each record as it finishes.

    Returns:
        ``(records, failures)``: the records of the requested runs (old and
        new) and a line per failed run.
    """
    for name in strategies:
        if name not in STRATEGIES:
            raise KeyError(f'unknown strategy {name!r}; known: '
                           f'{sorted(STRATEGIES)}')
    done = {r['key']: r for r in read_records(out)}
    wanted = [(s, seed) for seed in seeds for s in strategies]
    todo = [(s, seed) for s, seed in wanted
            if run_key(s, seed, split, task) not in done]
    log(f'{len(wanted) - len(todo)} of {len(wanted)} runs already in {out}; '
        f'running {len(todo)}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    failures: List[str] = []

    def finished(record: dict) -> None:
        done[record['key']] = record
        with open(out, 'a') as f:
            f.write(json.dumps(record) + '\n')
        log(f"{record['strategy']:>32} seed {record['seed']:>3}: top-1 "
            f"{record['top1']:.4f} ({record['seconds']:.1f} s)")

    args = [(s, seed, split, work_root, task, keep) for s, seed in todo]
    if jobs <= 1:
        for a in args:
            try:
                finished(run_one(*a))
            except Exception:  # noqa: BLE001  (report, go on)
                failures.append(f'{a[0]} seed {a[1]}:\n'
                                f'{traceback.format_exc()}')
                log(failures[-1])
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(
                jobs, mp_context=mp.get_context('spawn')) as pool:
            futures = {pool.submit(_run_in_worker, a): a for a in args}
            for future in as_completed(futures):
                a = futures[future]
                try:
                    finished(future.result())
                except Exception:  # noqa: BLE001
                    failures.append(f'{a[0]} seed {a[1]}:\n'
                                    f'{traceback.format_exc()}')
                    log(failures[-1])
    records = [
        done[run_key(s, seed, split, task)] for s, seed in wanted
        if run_key(s, seed, split, task) in done
    ]
    return records, failures


# statistics ---------------------------------------------------------------


def _weights_summary(runs: List[dict]) -> Optional[dict]:
    runs = [r for r in runs if r.get('weights')]
    if not runs:
        return None
    heads = list(runs[0]['weights'])
    out = dict(heads={
        h: dict(mean=statistics.fmean(r['weights'][h] for r in runs),
                min=min(r['weights'][h] for r in runs),
                max=max(r['weights'][h] for r in runs))
        for h in heads
    })
    lowest = [
        r['weights'][MEMORISING] <= min(r['weights'].values()) and
        sum(v == r['weights'][MEMORISING]
            for v in r['weights'].values()) == 1
        for r in runs
    ]
    out['memorising_lowest'] = dict(seeds=sum(lowest), of=len(runs),
                                    every_seed=all(lowest))
    # shadow_check: the trajectory estimate against the shadow estimate
    # from the same checkpoints, largest absolute weight difference
    checks = [e['shadow_check']['max_abs_difference'] for r in runs
              for e in r.get('history', []) if 'shadow_check' in e]
    if checks:
        out['shadow_check'] = dict(
            estimates=len(checks), max=max(checks),
            mean=statistics.fmean(checks),
            median=statistics.median(checks))
    return out


def _memorising_weights(record: dict) -> Dict[str, float]:
    """B's weight in one G-Blend run: at its first estimate, averaged over
    its estimates (each holds for a super-epoch), and at the end."""
    estimates = [e['weights'][MEMORISING] for e in record['history']
                 if MEMORISING in e.get('weights', {})]
    return dict(first=estimates[0], mean=statistics.fmean(estimates),
                final=record['weights'][MEMORISING]) if estimates else {}


def group_v_summary(records: Sequence[dict]) -> List[dict]:
    """Each G-Blend strategy with V in whole groups against the same
    strategy with V drawn sample by sample, seed by seed: the weight each
    gives the memorising modality (:func:`_memorising_weights`) and the
    share of seeds in which the group V gives it less."""
    by = {(r['strategy'], r['seed']): r for r in records}
    rows = []
    for name in sorted({r['strategy'] for r in records}):
        if not name.endswith(GROUP_SUFFIX):
            continue
        base = name[:-len(GROUP_SUFFIX)]
        pairs = [(_memorising_weights(by[(base, seed)]),
                  _memorising_weights(r))
                 for (n, seed), r in sorted(by.items())
                 if n == name and (base, seed) in by]
        pairs = [(a, b) for a, b in pairs if a and b]
        if not pairs:
            continue
        row = dict(strategy=name, reference=base, n=len(pairs))
        for key in ('first', 'mean', 'final'):
            row[key] = dict(
                random_v=statistics.fmean(a[key] for a, _ in pairs),
                group_v=statistics.fmean(b[key] for _, b in pairs),
                less=sum(b[key] < a[key] for a, b in pairs))
        rows.append(row)
    return rows


def summarize(records: Sequence[dict]) -> dict:
    """Per-strategy means and the paired comparisons (see the module
    docstring)."""
    by: Dict[str, List[dict]] = {}
    for r in records:
        by.setdefault(r['strategy'], []).append(r)
    strategies = [s for s in STRATEGIES if s in by] + \
        sorted(s for s in by if s not in STRATEGIES)
    per = {}
    for name in strategies:
        runs = sorted(by[name], key=lambda r: r['seed'])
        top1 = [r['top1'] for r in runs]
        heads = sorted({h for r in runs for h, v in r['head_top1'].items()
                        if v is not None})
        per[name] = dict(
            n=len(runs), seeds=[r['seed'] for r in runs],
            mean=statistics.fmean(top1),
            sd=statistics.stdev(top1) if len(top1) > 1 else None,
            min=min(top1), max=max(top1),
            head_top1={
                h: statistics.fmean(r['head_top1'][h] for r in runs
                                    if r['head_top1'].get(h) is not None)
                for h in heads
            },
            train_samples=runs[0]['train_samples'],
            seconds=statistics.fmean(r['seconds'] for r in runs),
            weights=_weights_summary(runs) if name in STRATEGIES and
            is_gblend(name) else None)

    def best_single(suffix: str) -> Optional[str]:
        names = [u + suffix for u in UNIMODAL if u + suffix in per]
        return max(names, key=lambda n: per[n]['mean']) if names else None

    references = {
        'naive fusion (whole train set)': 'naive-fusion',
        'equal auxiliary heads (whole train set)': 'aux-heads',
        'best single modality (whole train set)': best_single(''),
        'naive fusion (G-Blend training part)': 'naive-fusion' +
        PART_SUFFIX,
        'best single modality (G-Blend training part)':
        best_single(PART_SUFFIX),
    }
    comparisons = []
    for label, ref in references.items():
        if ref is None or ref not in per:
            continue
        for name in strategies:
            # like with like: baselines against the reference trained on
            # the same samples; G-Blend against both
            known = name in STRATEGIES
            if name == ref or (known and not is_gblend(name) and
                               on_gblend_part(name) != on_gblend_part(ref)):
                continue
            row = paired_comparison(records, name, ref)
            if row is not None:
                comparisons.append(dict(reference_label=label, **row))
    return dict(strategies=per, references=references,
                comparisons=comparisons, group_v=group_v_summary(records))


# reports ------------------------------------------------------------------


def _pct(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return 'n/a'
    return f'{100 * value:+.2f}' if signed else f'{100 * value:.2f}'


def render_markdown(summary: dict, split: str, wall: Optional[float] = None,
                    task: Optional[dict] = None) -> str:
    """The summary as markdown tables (accuracies in %)."""
    lines = [f'# Paradox task: strategies x seeds ({split} split)', '']
    if task:
        lines += [f'Task overrides (not the frozen task): `{task}`', '']
    lines += [
        'Top-1 of the prediction (multi-modal models: their '
        '`prediction` rule, by default \'mix\', the heads mixed by weights '
        'fitted on val; uni-modal: the head), %. '
        '`@gblend-part`: trained on the training set minus G-Blend\'s '
        'held-out part, the samples G-Blend trains on.', '',
        '| strategy | seeds | train samples | mean top-1 | sd | min | max '
        '| rgb head | audio head | fused head | prediction − best head '
        '| s/run |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for name, s in summary['strategies'].items():
        heads = s['head_top1']
        # the prediction against the head with the best mean, alone
        margin = s['mean'] - max(heads.values()) \
            if len(heads) > 1 else None
        lines.append(
            f"| {name} | {s['n']} | {s['train_samples']} | "
            f"{_pct(s['mean'])} | {_pct(s['sd'])} | {_pct(s['min'])} | "
            f"{_pct(s['max'])} | {_pct(heads.get('rgb'))} | "
            f"{_pct(heads.get('audio'))} | {_pct(heads.get('fused'))} | "
            f"{_pct(margin, True)} | {s['seconds']:.1f} |")
    by_label: Dict[str, List[dict]] = {}
    for c in summary['comparisons']:
        by_label.setdefault(c['reference_label'], []).append(c)
    for label, rows in by_label.items():
        lines += [
            '', f'## Paired differences against {label}: '
            f'`{rows[0]["reference"]}`', '',
            'Per seed: strategy minus reference, top-1 points; 95% '
            't-interval; share of seeds with a positive (won), zero and '
            'negative difference.', '',
            '| strategy | seeds | mean diff | 95% interval | won | tied '
            '| lost |', '|---|---|---|---|---|---|---|'
        ]
        for c in rows:
            interval = 'n/a' if c['low'] is None else \
                f"[{_pct(c['low'], True)}, {_pct(c['high'], True)}]"
            lines.append(
                f"| {c['strategy']} | {c['n']} | {_pct(c['mean'], True)} | "
                f"{interval} | {c['won']:.0%} | {c['tied']:.0%} | "
                f"{c['lost']:.0%} |")
    gblend = {n: s['weights'] for n, s in summary['strategies'].items()
              if s.get('weights')}
    if gblend:
        lines += [
            '', '## G-Blend: final blend weights', '',
            'Mean [min, max] over seeds; last column: seeds in which the '
            f'memorising modality ({MEMORISING}) got the lowest weight.', '',
            '| strategy | audio | rgb | fused | audio lowest |',
            '|---|---|---|---|---|'
        ]
        for name, w in gblend.items():
            cells = []
            for h in ('audio', 'rgb', 'fused'):
                s = w['heads'].get(h)
                cells.append('n/a' if s is None else
                             f"{s['mean']:.3f} [{s['min']:.3f}, "
                             f"{s['max']:.3f}]")
            low = w['memorising_lowest']
            lines.append(f"| {name} | {' | '.join(cells)} | "
                         f"{low['seeds']}/{low['of']}"
                         f"{' (every seed)' if low['every_seed'] else ''} |")
        checks = {n: w['shadow_check'] for n, w in gblend.items()
                  if w.get('shadow_check')}
        if checks:
            lines += [
                '', '## Each estimator against the shadow estimator', '',
                'At every estimate of a `shadow_check` run, the shadow '
                'estimator ran from the same checkpoint over the same '
                'epochs: the largest absolute difference between the two '
                "estimates' weights (over heads), over all estimates of "
                'all seeds (the shadow estimator against itself: its '
                'copies trained on other sample orders).', '',
                '| strategy | estimates | largest | mean | median |',
                '|---|---|---|---|---|']
            for name, c in checks.items():
                lines.append(f"| {name} | {c['estimates']} | {c['max']:.3f}"
                             f" | {c['mean']:.3f} | {c['median']:.3f} |")
    if summary.get('group_v'):
        lines += [
            '', '## V in whole groups against V drawn sample by sample', '',
            f'The weight G-Blend gives the memorising modality '
            f'({MEMORISING}), mean over seeds with a random V → with a '
            'group V, and the seeds in which the group V gives it less: at '
            "the first estimate, averaged over the run's estimates, at "
            'the end.', '',
            '| strategy | seeds | first estimate | mean over estimates '
            '| final |', '|---|---|---|---|---|']
        for row in summary['group_v']:
            cells = [f"{row[k]['random_v']:.3f} → {row[k]['group_v']:.3f}"
                     f" (less in {row[k]['less']}/{row['n']})"
                     for k in ('first', 'mean', 'final')]
            lines.append(f"| {row['strategy']} | {row['n']} | "
                         + ' | '.join(cells) + ' |')
    if wall is not None:
        lines += ['', f'Wall time of this call: {wall:.0f} s.']
    return '\n'.join(lines) + '\n'


def summary_paths(out: str) -> Tuple[str, str]:
    """``(<out stem>.summary.md, <out stem>.summary.json)``."""
    stem = out[:-len('.jsonl')] if out.endswith('.jsonl') else out
    return stem + '.summary.md', stem + '.summary.json'


def _parse_overrides(items: Sequence[str]) -> dict:
    import ast
    task = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f'--set takes KEY=VALUE, got {item!r}')
        try:
            task[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            task[key] = value
    return task


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--split', choices=('val', 'test'), default='val',
                        help='evaluate on the val split (calibration) or '
                        'the test split (reporting)')
    parser.add_argument('--strategies', nargs='+',
                        default=list(DEFAULT_STRATEGIES),
                        help=f'of {", ".join(STRATEGIES)}')
    parser.add_argument('--seeds', nargs='+', type=int,
                        default=list(range(20)))
    parser.add_argument('--jobs', type=int, default=1,
                        help='parallel processes (one thread each)')
    parser.add_argument('--out', default=None,
                        help='results file (JSON lines); default '
                        'work_dirs/mechanism_task/results_<split>.jsonl')
    parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR,
                        help='where the runs\' work dirs go (removed after '
                        'each run unless --keep)')
    parser.add_argument('--keep', action='store_true',
                        help='keep every run\'s work dir')
    parser.add_argument('--variant', choices=list(VARIANTS),
                        default='paradox',
                        help='the task: the frozen paradox task, '
                        'near-chance (B close to chance, nothing to '
                        'memorise) or groups (B memorises groups; test on '
                        'unseen groups)')
    parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                        help='override paradox_config arguments (task '
                        'exploration; the frozen task has none)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    task = dict(VARIANTS[args.variant], **_parse_overrides(args.set))
    stem = 'results' if args.variant == 'paradox' else \
        f'results_{args.variant}'
    out = args.out or osp.join(args.work_dir, f'{stem}_{args.split}.jsonl')
    records, failures = run_all(args.strategies, args.seeds, args.split,
                                out, args.work_dir, task or None,
                                args.jobs, args.keep)
    wall = time.perf_counter() - start
    summary = summarize(records)
    md_path, json_path = summary_paths(out)
    with open(md_path, 'w') as f:
        f.write(render_markdown(summary, args.split, wall, task))
    with open(json_path, 'w') as f:
        json.dump(dict(split=args.split, task=task, wall_seconds=wall,
                       failures=len(failures), **summary), f, indent=1)
    print(render_markdown(summary, args.split, wall, task))
    print(f'results: {out}\nsummary: {md_path}, {json_path}')
    print(f'total wall time: {wall:.1f} s')
    if failures:
        print(f'{len(failures)} runs failed', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
