"""One training and test per strategy and seed, and the reuse of earlier
runs.

Each run is a fresh process of ``tools/train.py`` with ``--seed`` and
``--test-last --dump`` (its last checkpoint tested in the same process);
the accuracies are computed from the dumped scores. A run whose
``result.json`` exists for the same derived config (by the hash of its
text) is not run again; ``--reuse`` takes an earlier comparison's runs.
"""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Optional

from . import REPO
from .derivation import Derivation

#: Names of earlier versions of this tool, for ``--reuse``.
RENAMED = {'gblend-online': 'gblend-online-trajectory'}


def _built(config: str, what: str):
    """The training dataset (``'dataset'``) or the model (``'model'``) of a
    config, built (nothing loaded)."""
    from mmaction.registry import DATASETS, MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmaction_gblend  # noqa: F401  (registers the plugin)
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    if what == 'model':
        return MODELS.build(cfg.model)
    return DATASETS.build(cfg.train_dataloader['dataset'])


def build_train_dataset(config: str):
    """The training dataset a config trains on (built, not loaded)."""
    return _built(config, 'dataset')


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
    """The recognizer's blend weights in a checkpoint, by head name (the
    model's ``head_names``)."""
    from mmaction_gblend.checkpoint import load_checkpoint_file
    weights = load_checkpoint_file(checkpoint)['state_dict'][
        'blend_weights'].tolist()
    if len(weights) == 1:  # a uni-modal model
        return {}
    return dict(zip(_built(config, 'model').head_names, weights))


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _of_config(result: dict, text: str) -> bool:
    """Whether a stored run is of the derived config ``text`` (a run
    stored without its config's hash is taken as it is)."""
    return result.get('config_sha1', _sha1(text)) == _sha1(text)


def _stored(strategy: str, seed: int, work: str, identity: str,
            reused: Dict[tuple, dict]) -> Optional[dict]:
    """The run reused or left in ``work`` by an earlier call, if it is of
    the same config (else ``None``)."""
    if (strategy, seed) in reused:
        earlier = reused[(strategy, seed)]
        if _of_config(earlier, identity):
            return earlier
        print(f'  the reused {strategy}, seed {seed} is of another config: '
              'run again', flush=True)
    result_file = osp.join(work, 'result.json')
    if osp.exists(result_file):
        with open(result_file) as f:
            result = json.load(f)
        if _of_config(result, identity):
            return result
        print(f'  {result_file} is of another config: run again',
              flush=True)
    return None


def run_one(derivation: Derivation, strategy: str, seed: int,
            work_dir: str, reused: Dict[tuple, dict]) -> dict:
    """Train and test one strategy with one seed (or read its result)."""
    text = derivation.config_text(strategy, seed)
    # a replay's config names its source's history by its path: the same
    # config in another work dir (--reuse) is the same run
    identity = text.replace(derivation.work_dir, '<work-dir>')
    work = osp.join(work_dir, strategy, f'seed{seed}')
    stored = _stored(strategy, seed, work, identity, reused)
    if stored is not None:
        return stored
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
    with open(osp.join(work, 'result.json'), 'w') as f:
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
