"""Runner configs of the paradox task, one per training strategy.

:func:`paradox_config` builds them from the frozen task
(:data:`~.paradox_data.PARADOX_TASK`); the task is described in
:mod:`mmaction_gblend.demo.toy_task`, which registers the modules the
configs name (import it, e.g. in ``custom_imports``).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .paradox_data import PARADOX_INPUT_KEYS, paradox_task


def _pipelines(keys: Tuple[str, ...], noisy: Tuple[str, ...],
               rgb_noise: float) -> Tuple[List[dict], List[dict]]:
    """The training pipeline (noise redrawn at every load) and the val/test
    pipeline (each sample's fixed noise)."""
    pack = dict(type='PackActionInputs', collect_keys=keys,
                meta_keys=('sample_idx', ))
    train_pipeline = [
        dict(type='ToyFeatureNoise', keys=noisy, std=rgb_noise,
             resample=True), pack
    ]
    eval_pipeline = [
        dict(type='ToyFeatureNoise', keys=noisy, std=rgb_noise,
             resample=False), pack
    ]
    return train_pipeline, eval_pipeline


def _train_set(task: Dict[str, Any], pipeline: List[dict], num_train: int,
               seed: int, gblend: Optional[dict], heldout_split: bool,
               train_on_all: bool, heldout_fraction: float,
               heldout_group: Optional[dict]) -> Tuple[dict, Optional[dict]]:
    """The training dataset config, wrapped in the held-out split unless
    the hook splits it itself (``train_on_all``: the split's options then
    go to the ``gblend`` config, returned too)."""
    train = dict(type='ToyParadoxDataset', split='train',
                 num_samples=num_train, sample_seed=seed,
                 pipeline=pipeline, **task)
    group = dict(group=heldout_group) if heldout_group is not None else {}
    if gblend is not None and train_on_all:
        gblend = dict(gblend, heldout_fraction=heldout_fraction, seed=seed,
                      **{'heldout_' + k: v for k, v in group.items()})
    elif gblend is not None or heldout_split:
        train = dict(type='HeldOutSplitDataset', part='train',
                     fraction=heldout_fraction, seed=seed, dataset=train,
                     **group)
    return train, gblend


def _eval_loader(split: str, num_eval: int, pipeline: List[dict],
                 task: Dict[str, Any]) -> dict:
    """The data loader config of the val or the test split."""
    return dict(
        batch_size=500, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=dict(type='ToyParadoxDataset', split=split,
                     num_samples=num_eval, sample_seed=0,
                     pipeline=pipeline, test_mode=True, **task))


def _model(task: Dict[str, Any], modalities: List[str],
           keys: Tuple[str, ...], feat_dim: int, hidden_channels: int,
           fusion_channels: int,
           blend_weights: Optional[Dict[str, float]]) -> dict:
    """The ``MultiHeadRecognizer`` config: a ``ToyEncoder`` per branch, and
    ``ConcatFusion`` with a fused head when there are two."""
    branches = {
        m: dict(input_key=PARADOX_INPUT_KEYS[m], feat_dim=feat_dim,
                backbone=dict(type='ToyEncoder',
                              in_channels=task['rgb_dim'] if m == 'rgb'
                              else task['audio_dim'] +
                              task['fingerprint_dim'],
                              out_channels=feat_dim,
                              hidden_channels=hidden_channels))
        for m in modalities
    }
    model = dict(
        type='MultiHeadRecognizer',
        num_classes=task['num_classes'],
        branches=branches,
        head=dict(type='ClassifierHead', dropout_ratio=0.0),
        data_preprocessor=dict(
            type='MultiModalDataPreprocessor',
            preprocessors={k: dict(type='ActionDataPreprocessor')
                           for k in keys}))
    if len(modalities) > 1:
        model['fusion'] = dict(type='ConcatFusion',
                               hidden_channels=fusion_channels)
    if blend_weights is not None:
        model['blend_weights'] = dict(blend_weights)
    return model


def paradox_config(work_dir: str,
                   seed: int = 0,
                   modalities: Sequence[str] = ('audio', 'rgb'),
                   blend_weights: Optional[Dict[str, float]] = None,
                   gblend: Optional[dict] = None,
                   heldout_split: bool = False,
                   train_on_all: bool = False,
                   heldout_fraction: float = 0.1,
                   heldout_group: Optional[dict] = None,
                   prediction: str = 'head',
                   eval_split: str = 'val',
                   num_train: int = 600,
                   num_eval: int = 2000,
                   hidden_channels: int = 64,
                   feat_dim: int = 32,
                   fusion_channels: int = 64,
                   max_epochs: int = 30,
                   batch_size: int = 32,
                   lr: float = 0.05,
                   momentum: float = 0.9,
                   weight_decay: float = 0.0,
                   **task: Any) -> dict:
    """A Runner config of the paradox task (see :mod:`.toy_task`).

    The defaults are the frozen, calibrated task; change them only to
    explore. One config trains one strategy: a uni-modal model
    (``modalities=('rgb',)``), a multi-modal one with fixed
    ``blend_weights`` (default: naive late fusion, the fused head alone),
    or one whose weights a ``GradientBlendingHook`` config ``gblend`` sets.
    There is no validation during training and no checkpoint; evaluate the
    trained model with ``runner.test()`` (``eval_split``'s samples).

    Args:
        work_dir: The Runner's work dir.
        seed: The run's seed: the model's initialisation, the sample order,
            the training noise, the training samples (``sample_seed``) and
            the held-out split.
        modalities: Branches, of ``'rgb'`` (input ``imgs``) and ``'audio'``
            (input ``audios``); two get ``ConcatFusion`` and a fused head.
        blend_weights: The model's fixed blend weights.
        gblend: A ``GradientBlendingHook`` config; the train set is then
            wrapped in ``HeldOutSplitDataset(part='train')``.
        heldout_split: Wrap the train set in ``HeldOutSplitDataset(
            part='train')`` even without ``gblend``: a baseline trained on
            exactly the samples G-Blend trains on.
        train_on_all: With ``gblend``, train on the whole training set
            (no ``HeldOutSplitDataset`` around it): the hook then splits it
            itself, with the same fraction and seed (offline G-Blend on all
            the data, a replay).
        heldout_fraction: The held-out fraction of that split (per class).
        heldout_group: The split's ``group`` option (``HeldOutSplitDataset``):
            ``dict(key='group')`` holds out whole groups of the group
            variant (``group_size`` > 0).
        prediction: The multi-modal model's prediction: ``'head'`` (the
            fused head) or ``'mix'`` (the heads' probabilities mixed by
            weights that ``PredictionMixHook`` fits on the val split after
            training). A uni-modal model predicts with its head.
        eval_split: ``'val'`` (calibration) or ``'test'`` (reporting): the
            split of ``test_dataloader``. ``val_dataloader`` is always the
            val split (G-Blend's measurement pipeline is its pipeline).
        num_train: Training samples.
        num_eval: Samples of the val and of the test split.
        hidden_channels: Hidden width of each branch's ``ToyEncoder``.
        feat_dim: Output width of each branch's ``ToyEncoder``.
        fusion_channels: Width of the two FC layers of ``ConcatFusion``.
        max_epochs: Training epochs.
        batch_size: Training batch size.
        lr: SGD learning rate (constant).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        **task: Task keywords, :data:`PARADOX_TASK` (the defaults):

            - ``task_seed``: Seed of the task (the class means; the val
              and test samples).
            - ``num_classes``: Number of classes.
            - ``rgb_dim``: Size of A's (``imgs``) vectors.
            - ``rgb_cue``: Length of A's class mean where present.
            - ``rgb_presence``: Share of samples with A's cue.
            - ``rgb_noise``: Std of A's noise (redrawn at every training
              load).
            - ``audio_dim``: Size of B's (``audios``) cue block.
            - ``audio_cue``: Length of B's class mean.
            - ``audio_noise``: Scale of B's fixed noise in the cue block.
            - ``fingerprint_dim``: Size of B's fingerprint block
              (``audios`` has ``audio_dim + fingerprint_dim`` values).
            - ``fingerprint``: Scale of B's fixed per-sample fingerprint.
            - ``audio_fresh_noise``: Add noise of A's std to B as well,
              redrawn at every training load (B then has nothing to
              memorise beyond its fixed part).
            - ``group_size``, ``group_classes``: the group variant
              (:class:`ToyParadoxDataset`); 0: no groups.

    Raises:
        TypeError: If a keyword is not one of the task's.
        ValueError: If ``modalities`` or ``eval_split`` is not one of the
            task's.
    """
    task = paradox_task(**task)
    rgb_noise = task.pop('rgb_noise')
    noisy = ('imgs', 'audios') if task.pop('audio_fresh_noise') else \
        ('imgs', )
    modalities = sorted(modalities)
    if not modalities or set(modalities) - set(PARADOX_INPUT_KEYS):
        raise ValueError(f'paradox_config: modalities must be some of '
                         f'{sorted(PARADOX_INPUT_KEYS)}, got {modalities}')
    if eval_split not in ('val', 'test'):
        raise ValueError("paradox_config: eval_split must be 'val' or "
                         f"'test', got {eval_split!r}")
    keys = tuple(PARADOX_INPUT_KEYS[m] for m in modalities)
    train_pipeline, eval_pipeline = _pipelines(keys, noisy, rgb_noise)
    train, gblend = _train_set(task, train_pipeline, num_train, seed, gblend,
                               heldout_split, train_on_all, heldout_fraction,
                               heldout_group)
    model = _model(task, modalities, keys, feat_dim, hidden_channels,
                   fusion_channels, blend_weights)
    hooks = [gblend] if gblend is not None else []
    if len(modalities) > 1 and prediction != 'head':
        model['prediction'] = prediction
        hooks.append(dict(type='PredictionMixHook', dataloader='val'))
    cfg = dict(
        default_scope='mmaction',
        work_dir=work_dir,
        model=model,
        train_dataloader=dict(
            batch_size=batch_size, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='pseudo_collate'), dataset=train),
        # never run during training (val_begin after the last epoch): it is
        # here for G-Blend's measurement pipeline
        val_dataloader=_eval_loader('val', num_eval, eval_pipeline, task),
        val_evaluator=dict(type='MultiHeadAccMetric'),
        val_cfg=dict(),
        test_dataloader=_eval_loader(eval_split, num_eval, eval_pipeline,
                                     task),
        test_evaluator=dict(type='MultiHeadAccMetric'),
        test_cfg=dict(),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs,
                       val_begin=max_epochs + 1, val_interval=1),
        optim_wrapper=dict(optimizer=dict(
            type='SGD', lr=lr, momentum=momentum,
            weight_decay=weight_decay)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1000),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=None,
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=hooks,
        randomness=dict(seed=seed, deterministic=False),
        env_cfg=dict(cudnn_benchmark=False),
        log_level='WARNING')
    return cfg
