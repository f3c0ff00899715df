"""A toy multi-modal task in memory: one modality generalises, one memorises.

For tests and for trying G-Blend in seconds, without media files. Import it
to register its modules (``custom_imports=dict(imports=['mmaction_gblend',
'mmaction_gblend.toy_task'])``); the plugin itself does not.

Each sample has a label y and one feature vector per modality, fixed per
sample. A modality with ``signal`` > 0 carries the class mean ``mu_m[y]``
scaled by it, plus per-sample noise, so what a model learns from it carries
over to unseen samples. A modality with ``signal`` = 0 carries only the
per-sample noise: a model can memorise the training samples from it (their
codes are unique) but learns nothing that generalises, the situation in
which G-Blend should give that modality's head a low weight.
"""
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import DATASETS, MODELS
from mmaction.structures import ActionDataSample
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModule


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
