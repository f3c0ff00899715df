"""Toy multi-modal tasks in memory: one modality generalises, one memorises.

For tests and for trying G-Blend in seconds, without media files. Import it
to register its modules (``custom_imports=dict(imports=['mmaction_gblend',
'mmaction_gblend.demo.toy_task'])``); the plugin itself does not.

**The toy task** (:class:`ToyMultiModalDataset`, :func:`toy_config`). Each
sample has a label y and one feature vector per modality, fixed per
sample. A modality with ``signal`` > 0 carries the class mean ``mu_m[y]``
scaled by it, plus per-sample noise, so what a model learns from it carries
over to unseen samples. A modality with ``signal`` = 0 carries only the
per-sample noise: a model can memorise the training samples from it (their
codes are unique) but learns nothing that generalises, the situation in
which G-Blend should give that modality's head a low weight.

**The paradox task** (:class:`ToyParadoxDataset`, :class:`ToyFeatureNoise`,
:func:`paradox_config`): a mechanism task in which naive late fusion is
worse than its best single modality, the setting of Wang, Tran, Feiszli
(CVPR 2020). Modality A (branch ``rgb``, input ``imgs``) generalises: its
class cue is in most samples, and its noise is redrawn at every training
load (an augmentation of the training pipeline only). Modality B (branch
``audio``, input ``audios``) can be memorised: a fixed high-dimensional
fingerprint per sample, plus a weaker real class cue. Bayes accuracy
(:func:`paradox_bayes_accuracy`, 20000 samples): fused 87.9, A 73.1,
B 65.5 (%). The mechanism: with naive fusion the fused head memorises the
training set through B's fingerprint (training loss near 0 by the end),
little gradient is left for A's encoder, which learns less than alone
(a linear probe on it: 68% against 72% after A-only, seed 0), and the
fused head relies on memorised fingerprints (the modality heads, weight
0, stay at chance); a fixed weighting that trains A through its own head
keeps A's encoder learning, and the fused head then adds B's cue to it.

Frozen task (the defaults of :func:`paradox_config`): 10 classes; 600
training samples (``sample_seed`` = the run's seed), 2000 val and 2000
test samples (``task_seed`` 0, fixed); A: 64 values, class-mean length 3.0
in 80% of the samples (zeros in the others), noise std 1.0 (new at every
training load; fixed per sample in the val/test pipeline); B: a cue block
of 16 values (class-mean length 2.0, fixed noise std 1.0) and a
fingerprint block of 2048 values (std 0.1 each, so about 4.5 long); each
branch a ``ToyEncoder`` (64 hidden, 32 out), ``ConcatFusion`` with two
FC layers of 64, ``ClassifierHead`` without dropout; SGD, lr 0.05
(constant), momentum 0.9, no weight decay, batch 32, 30 epochs; G-Blend's
held-out fraction 10% per class (540 training samples left). No
validation during training, no checkpoints.

Calibration on the val split (``benchmarks/mechanism_task.py --split
val``, seeds 0-19, no G-Blend run looked at; ``docs/mechanism_task.md``
has the record): mean top-1 (%) rgb-only 71.7, audio-only 55.4, naive
fusion 64.8, auxiliary heads (1/3 each) 68.5, the paper's Kinetics
weights [rgb 0.63, audio 0.014, fused 0.356] 78.0. Naive fusion is below
rgb-only in 20 of 20 seeds (paired difference -6.9, 95% t-interval
[-7.9, -5.9]); the paper's weights beat rgb-only in 20 of 20 (+6.3,
[+5.5, +7.0]); uniform auxiliary heads do not (-3.2, [-4.4, -2.1]; won
3 of 20), like the paper's equal-weight auxiliary losses on Kinetics (70.8
against RGB's 72.6). Trained on G-Blend's 540 samples, the same picture
(rgb-only 71.3, naive 62.9, paper weights 77.2). A training takes 2-4 s
on one CPU thread.
"""
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import DATASETS, MODELS
from mmaction.structures import ActionDataSample
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModule

# the paradox task lives beside this module; importing it here registers its
# modules with the toy task's and keeps ``toy_task.<name>`` working
from .paradox_configs import paradox_config
from .paradox_data import (PARADOX_INPUT_KEYS, PARADOX_SPLITS, PARADOX_TASK,
                           ToyFeatureNoise, ToyParadoxDataset,
                           paradox_bayes_accuracy, paradox_class_means,
                           paradox_task)

__all__ = [
    'ToyMultiModalDataset', 'ToyEncoder', 'toy_config', 'PARADOX_INPUT_KEYS',
    'PARADOX_SPLITS', 'PARADOX_TASK', 'ToyFeatureNoise', 'ToyParadoxDataset',
    'paradox_bayes_accuracy', 'paradox_class_means', 'paradox_config',
    'paradox_task'
]


@DATASETS.register_module()
class ToyMultiModalDataset(BaseDataset):
    """In-memory samples ``inputs={key: [1, dim] tensor}`` with labels.

    Args:
        num_samples: Number of samples (labels are balanced).
        num_classes: Number of classes.
        dims: Feature size per input key, e.g. ``dict(imgs=16, audios=16)``.
        signal: Class-mean scale per key (0: no class information).
        noise: Scale of the per-sample noise, per key.
        seed: Seed of the class means and of the samples.
        split_seed: Seed of the per-sample noise only; datasets with the same
            ``seed`` and another ``split_seed`` share the class means (a
            train and a test set of one task).
        **kwargs: Passed to ``BaseDataset`` (``pipeline`` is ignored).
    """
    METAINFO: dict = dict()

    def __init__(self,
                 num_samples: int = 64,
                 num_classes: int = 4,
                 dims: Optional[Dict[str, int]] = None,
                 signal: Optional[Dict[str, float]] = None,
                 noise: Optional[Dict[str, float]] = None,
                 seed: int = 0,
                 split_seed: int = 0,
                 **kwargs) -> None:
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.dims = dict(dims or dict(imgs=16, audios=16))
        self.signal = dict(signal or dict(imgs=1.0, audios=0.0))
        self.noise = dict(noise or {k: 1.0 for k in self.dims})
        self.seed = seed
        self.split_seed = split_seed
        kwargs['pipeline'] = []
        kwargs.setdefault('serialize_data', False)
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        means = np.random.default_rng([self.seed, 0])
        mu = {
            key: means.standard_normal((self.num_classes, dim))
            for key, dim in self.dims.items()
        }
        rng = np.random.default_rng([self.seed, 1, self.split_seed])
        labels = np.arange(self.num_samples) % self.num_classes
        data_list = []
        for i, label in enumerate(labels):
            info = dict(label=int(label), sample_idx=i)
            for key, dim in self.dims.items():
                info[key] = (self.signal.get(key, 0.0) * mu[key][label] +
                             self.noise.get(key, 1.0) *
                             rng.standard_normal(dim)).astype(np.float32)
            data_list.append(info)
        return data_list

    def prepare_data(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        return dict(
            inputs={
                key: torch.from_numpy(info[key])[None]
                for key in self.dims
            },
            data_samples=ActionDataSample().set_gt_label(info['label']))


@MODELS.register_module()
class ToyEncoder(BaseModule):
    """A two-layer MLP: ``[B, in_channels]`` -> ``[B, out_channels]``."""

    def __init__(self, in_channels: int, out_channels: int = 32,
                 hidden_channels: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.ReLU(inplace=True),
            nn.Linear(hidden_channels, out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def toy_config(work_dir: str,
               max_epochs: int = 6,
               gblend: Optional[dict] = None,
               num_samples: int = 200,
               seed: int = 0,
               batch_size: int = 16,
               lr: float = 0.05,
               signal: Optional[Dict[str, float]] = None,
               model: Optional[dict] = None,
               optim_wrapper: Optional[dict] = None,
               hooks: Optional[List[dict]] = None) -> dict:
    """A complete Runner config of the toy task: RGB-like ``imgs`` that
    generalise, audio-like ``audios`` that only memorise, concat fusion,
    and optionally a ``GradientBlendingHook`` config ``gblend``.

    ``signal`` sets the class-mean scale per input key (default: imgs
    0.6, audios 0). ``model`` and ``optim_wrapper`` update those configs'
    keys (e.g. ``model=dict(opm=...)``,
    ``optim_wrapper=dict(type='OGMGEOptimWrapper')``);
    ``hooks`` are added to ``custom_hooks``."""
    preprocessor = dict(
        type='MultiModalDataPreprocessor',
        preprocessors=dict(
            imgs=dict(type='ActionDataPreprocessor'),
            audios=dict(type='ActionDataPreprocessor')))
    dataset = dict(type='ToyMultiModalDataset', num_samples=num_samples,
                   seed=seed, signal=signal or dict(imgs=0.6, audios=0.0))
    train = dataset
    if gblend is not None:
        train = dict(type='HeldOutSplitDataset', part='train', fraction=0.25,
                     seed=seed, dataset=dataset)
    loader = dict(batch_size=batch_size, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='pseudo_collate'))
    val = dict(dataset, split_seed=1, num_samples=num_samples // 2)
    cfg = dict(
        default_scope='mmaction',
        work_dir=work_dir,
        model=dict(
            type='MultiHeadRecognizer',
            num_classes=4,
            branches=dict(
                rgb=dict(input_key='imgs', feat_dim=32,
                         backbone=dict(type='ToyEncoder', in_channels=16)),
                audio=dict(input_key='audios', feat_dim=32,
                           backbone=dict(type='ToyEncoder', in_channels=16))),
            fusion=dict(type='ConcatFusion', hidden_channels=32),
            head=dict(type='ClassifierHead', dropout_ratio=0.0),
            data_preprocessor=preprocessor,
            **(model or {})),
        train_dataloader=dict(loader, dataset=train),
        val_dataloader=dict(loader, dataset=val,
                            sampler=dict(type='DefaultSampler',
                                         shuffle=False)),
        val_evaluator=dict(type='MultiHeadAccMetric'),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(
            dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
            **(optim_wrapper or {})),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=50),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        model_wrapper_cfg=dict(type='AnyDeviceDistributedDataParallel'),
        custom_hooks=([gblend] if gblend is not None else []) +
        list(hooks or []),
        randomness=dict(seed=seed, deterministic=False),
        log_level='WARNING')
    return cfg
