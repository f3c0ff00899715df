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
import math
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmaction.registry import DATASETS, MODELS, TRANSFORMS
from mmaction.structures import ActionDataSample
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModule

from ..utils.choices import check_choice


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


# ---------------------------------------------------------------------------
# The paradox task: naive fusion below the best single modality
# ---------------------------------------------------------------------------

#: Streams of the paradox task's generators, one per use (ASCII tags).
_MEANS_TAG = 0x4D45414E  # "MEAN": the class means of both modalities
_SPLIT_TAGS = dict(train=0x5452, val=0x5641, test=0x5445)  # "TR" "VA" "TE"
_FIXED_NOISE_TAG = 0x4E4F4953  # "NOIS": the val/test pipeline's noise
PARADOX_SPLITS = tuple(_SPLIT_TAGS)
#: Branch name -> input key of the paradox task's model.
PARADOX_INPUT_KEYS = dict(rgb='imgs', audio='audios')
#: The frozen paradox task: the task keywords of :func:`paradox_config` and
#: :func:`paradox_bayes_accuracy` with their defaults, which are also
#: :class:`ToyParadoxDataset`'s (``rgb_noise`` is the pipeline's, the std of
#: :class:`ToyFeatureNoise`).
PARADOX_TASK: Dict[str, Any] = dict(
    num_classes=10, task_seed=0,
    rgb_dim=64, rgb_cue=3.0, rgb_presence=0.8, rgb_noise=1.0,
    audio_dim=16, audio_cue=2.0, audio_noise=1.0,
    fingerprint_dim=2048, fingerprint=0.1, audio_fresh_noise=False,
    group_size=0, group_classes=2)


def paradox_task(**overrides: Any) -> Dict[str, Any]:
    """The paradox task's keywords: :data:`PARADOX_TASK` with ``overrides``.

    Args:
        **overrides: Task keywords (those of :data:`PARADOX_TASK`) to
            change.

    Returns:
        A new dict with every task keyword.

    Raises:
        TypeError: If a keyword is not one of the task's.
    """
    unknown = sorted(set(overrides) - set(PARADOX_TASK))
    if unknown:
        raise TypeError(f'not keywords of the paradox task: {unknown}; '
                        f'those are {list(PARADOX_TASK)}')
    return dict(PARADOX_TASK, **overrides)


def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """``rows`` random directions of unit length in ``dim`` dimensions."""
    vectors = rng.standard_normal((rows, dim))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def paradox_class_means(num_classes: int, rgb_dim: int, audio_dim: int,
                        task_seed: int = 0) -> Dict[str, np.ndarray]:
    """The class means ``{input key: [num_classes, dim]}`` (unit rows) of
    the paradox task; the same for every split of a ``task_seed``."""
    rng = np.random.default_rng([task_seed, _MEANS_TAG])
    return dict(imgs=_unit_rows(rng, num_classes, rgb_dim),
                audios=_unit_rows(rng, num_classes, audio_dim))


@TRANSFORMS.register_module()
class ToyFeatureNoise(BaseTransform):
    """Add Gaussian noise to feature vectors (the toy task's augmentation).

    With ``resample=True`` (the training pipeline) every call draws new
    noise from numpy's global generator, which mmengine seeds from the
    run's seed (and per data-loader worker): a sample loaded twice gets two
    different noise draws, so the noise cannot be memorised. With
    ``resample=False`` (the val/test pipeline, and so G-Blend's measurement
    pipeline) the noise is drawn from a generator seeded by the sample's
    ``noise_seed``: the same every time that sample is loaded, and of the
    same distribution as in training.

    Required keys: ``keys``, and ``noise_seed`` when ``resample`` is False.
    Modified keys: ``keys``.

    Args:
        keys: The feature keys to add noise to.
        std: Standard deviation of the noise (per coordinate).
        resample: Draw new noise at every call (True) or the sample's
            fixed noise (False).
    """

    def __init__(self,
                 keys: Sequence[str] = ('imgs', ),
                 std: float = 1.0,
                 resample: bool = True) -> None:
        if isinstance(keys, str):
            keys = (keys, )
        if not std >= 0:
            raise ValueError(f'ToyFeatureNoise.std must be >= 0, got {std}')
        self.keys = tuple(keys)
        self.std = float(std)
        self.resample = bool(resample)

    def transform(self, results: dict) -> dict:
        if self.resample:
            draw = np.random.standard_normal
        else:
            draw = np.random.default_rng(
                [_FIXED_NOISE_TAG, int(results['noise_seed'])]
            ).standard_normal
        for key in self.keys:
            x = results[key]
            results[key] = (x + self.std * draw(x.shape)).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(keys={self.keys}, std={self.std}, '
                f'resample={self.resample})')


@DATASETS.register_module()
class ToyParadoxDataset(BaseDataset):
    """The paradox task's samples: ``imgs`` generalise, ``audios`` memorise.

    Sample ``i`` of class ``y`` (classes balanced) has

    * ``imgs`` (modality A, "rgb", ``rgb_dim`` values): ``rgb_cue *
      mu_A[y]`` if its A cue is present (probability ``rgb_presence``,
      fixed per sample), else zeros. There is no per-sample component: the
      pipeline's :class:`ToyFeatureNoise` adds the noise, new at every load
      in training. So A carries nothing a model could memorise, only the
      class.
    * ``audios`` (modality B, "audio"): two blocks, both fixed per sample.
      The cue block (``audio_dim`` values) is ``audio_cue * mu_B[y] +
      audio_noise * g_i``: a weaker real class cue. The fingerprint block
      (``fingerprint_dim`` values, many more than there are training
      samples) is ``fingerprint * f_i``: a sample identity that tells
      nothing of the class, which a model memorises the training samples
      by (and which is noise on unseen samples). ``g_i`` and ``f_i`` are
      standard normal vectors drawn once per sample.

    ``mu_A`` and ``mu_B`` are unit-length class means
    (:func:`paradox_class_means`), fixed by ``task_seed``; the samples of a
    split come from a stream of their own, seeded from ``(task_seed,
    split, sample_seed)``: the train, val and test splits are distinct
    samples of one task. Each sample also has a ``noise_seed``, the seed of
    its fixed noise in a deterministic pipeline, and ``rgb_present``.

    **Groups** (``group_size`` > 0, the group variant): the samples come
    in groups of ``group_size`` (a "speaker"), sample ``i`` in group ``i //
    group_size``. Each group draws ``group_classes`` classes, and its
    samples take them in turn; the fingerprint block is the group's
    (``fingerprint * f_g``, one per group) instead of the sample's. A model
    memorises which classes a group's fingerprint goes with: that holds for
    unseen samples of a seen group (a held-out part drawn sample by
    sample) and fails on unseen groups, which every val and test sample
    comes from (each split draws its own groups). A's cue does not depend
    on the group. Each sample's ``group`` (``'<split>-<g>'``) is in its
    annotation.

    Features are ``[1, dim]`` float32 arrays (one view). Unlike
    :class:`ToyMultiModalDataset` this dataset runs its ``pipeline``, which
    must end with ``PackActionInputs(collect_keys=...)``.

    Args:
        num_samples: Number of samples.
        num_classes: Number of classes.
        split: ``'train'``, ``'val'`` or ``'test'``.
        task_seed: Seed of the class means (the task).
        sample_seed: Seed of the split's samples (with ``split``).
        rgb_dim: Size of the ``imgs`` vectors.
        rgb_cue: Length of A's class mean in a sample with the cue.
        rgb_presence: Probability that a sample has A's cue.
        audio_dim: Size of B's cue block.
        audio_cue: Length of B's class mean.
        audio_noise: Scale of B's fixed noise in the cue block.
        fingerprint_dim: Size of B's fingerprint block.
        fingerprint: Scale of B's fingerprint (per value).
        group_size: Samples per group (0: no groups, a fingerprint per
            sample).
        group_classes: Classes per group (with ``group_size``).
        **kwargs: Passed to ``BaseDataset`` (e.g. ``pipeline``).
    """
    METAINFO: dict = dict()

    def __init__(self,
                 num_samples: int = 600,
                 num_classes: int = 10,
                 split: str = 'train',
                 task_seed: int = 0,
                 sample_seed: int = 0,
                 rgb_dim: int = 64,
                 rgb_cue: float = 3.0,
                 rgb_presence: float = 0.8,
                 audio_dim: int = 16,
                 audio_cue: float = 2.0,
                 audio_noise: float = 1.0,
                 fingerprint_dim: int = 2048,
                 fingerprint: float = 0.1,
                 group_size: int = 0,
                 group_classes: int = 2,
                 **kwargs) -> None:
        check_choice('ToyParadoxDataset.split', split, PARADOX_SPLITS)
        if group_size < 0 or (group_size and
                              not 1 <= group_classes <= num_classes):
            raise ValueError(
                'ToyParadoxDataset: group_size must be >= 0 and '
                f'group_classes in [1, num_classes], got {group_size} and '
                f'{group_classes}')
        self.group_size = group_size
        self.group_classes = group_classes
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.split = split
        self.task_seed = task_seed
        self.sample_seed = sample_seed
        self.rgb_dim = rgb_dim
        self.rgb_cue = rgb_cue
        self.rgb_presence = rgb_presence
        self.audio_dim = audio_dim
        self.audio_cue = audio_cue
        self.audio_noise = audio_noise
        self.fingerprint_dim = fingerprint_dim
        self.fingerprint = fingerprint
        kwargs.setdefault('serialize_data', False)
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        mu = paradox_class_means(self.num_classes, self.rgb_dim,
                                 self.audio_dim, self.task_seed)
        rng = np.random.default_rng(
            [self.task_seed, _SPLIT_TAGS[self.split], self.sample_seed])
        n = self.num_samples
        labels = np.arange(n) % self.num_classes
        present = rng.random(n) < self.rgb_presence
        if self.group_size:
            groups, labels = self._group_labels(rng, n)
        imgs = (self.rgb_cue * present[:, None]) * mu['imgs'][labels]
        cue = self.audio_cue * mu['audios'][labels] + \
            self.audio_noise * rng.standard_normal((n, self.audio_dim))
        if self.group_size:
            fingerprints = self.fingerprint * rng.standard_normal(
                (int(groups.max()) + 1, self.fingerprint_dim))[groups]
        else:
            fingerprints = self.fingerprint * rng.standard_normal(
                (n, self.fingerprint_dim))
        audios = np.concatenate([cue, fingerprints], axis=1)
        noise_seeds = rng.integers(0, 2**63 - 1, size=n)
        infos = [
            dict(label=int(labels[i]), sample_idx=i,
                 rgb_present=bool(present[i]),
                 noise_seed=int(noise_seeds[i]),
                 imgs=imgs[i][None].astype(np.float32),
                 audios=audios[i][None].astype(np.float32))
            for i in range(n)
        ]
        if self.group_size:
            for info, g in zip(infos, groups):
                info['group'] = f'{self.split}-{int(g)}'
        return infos

    def _group_labels(self, rng: np.random.Generator,
                      n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Each sample's group and label: a group's samples take its
        ``group_classes`` classes in turn."""
        groups = np.arange(n) // self.group_size
        num_groups = int(groups[-1]) + 1
        classes = np.stack([
            rng.choice(self.num_classes, self.group_classes, replace=False)
            for _ in range(num_groups)
        ])
        turn = (np.arange(n) % self.group_size) % self.group_classes
        return groups, classes[groups, turn]


def _log_gauss(x: np.ndarray, means: np.ndarray, std: float) -> np.ndarray:
    """``[n, classes]`` log densities (up to a shared constant) of ``x``
    ``[n, dim]`` under ``N(means[c], std^2 I)``."""
    dist = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return -dist / (2 * std ** 2)


def paradox_bayes_accuracy(num_samples: int = 20000,
                           seed: int = 12345,
                           **task: Any) -> Dict[str, float]:
    """Monte-Carlo Bayes accuracy of the paradox task, per modality.

    The Bayes classifier knows the class means, the presence rate and the
    noise. A's likelihood is the mixture ``rgb_presence * N(rgb_cue *
    mu_A[y], rgb_noise^2) + (1 - rgb_presence) * N(0, rgb_noise^2)``, B's
    is that of its cue block, ``N(audio_cue * mu_B[y], audio_noise^2)``
    (the fingerprint is independent of the class), and the fused one their
    product (A and B are independent given y). Keyword arguments that do
    not change it (e.g. ``fingerprint``) are accepted and ignored, so
    ``paradox_config``'s task keywords can be passed as they are.

    Args:
        num_samples: Monte-Carlo samples.
        seed: Seed of those samples.
        **task: Task keywords (:data:`PARADOX_TASK`, the defaults); other
            keywords are ignored.

    Returns:
        ``dict(rgb=..., audio=..., fused=...)``: accuracies on
        ``num_samples`` fresh samples.
    """
    t = SimpleNamespace(**paradox_task(
        **{k: v for k, v in task.items() if k in PARADOX_TASK}))
    mu = paradox_class_means(t.num_classes, t.rgb_dim, t.audio_dim,
                             t.task_seed)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, t.num_classes, num_samples)
    present = rng.random(num_samples) < t.rgb_presence
    a = (t.rgb_cue * present[:, None]) * mu['imgs'][labels] + \
        t.rgb_noise * rng.standard_normal((num_samples, t.rgb_dim))
    # B's noise: its fixed part, and A's redrawn noise with audio_fresh_noise
    b_noise = math.hypot(t.audio_noise,
                         t.rgb_noise if t.audio_fresh_noise else 0.0)
    b = t.audio_cue * mu['audios'][labels] + \
        b_noise * rng.standard_normal((num_samples, t.audio_dim))
    with_cue = _log_gauss(a, t.rgb_cue * mu['imgs'], t.rgb_noise)
    without = _log_gauss(a, np.zeros((1, t.rgb_dim)), t.rgb_noise)
    log_a = np.logaddexp(with_cue + math.log(t.rgb_presence),
                         without + math.log1p(-t.rgb_presence)) \
        if t.rgb_presence < 1 else with_cue
    log_b = _log_gauss(b, t.audio_cue * mu['audios'], b_noise)
    return dict(
        rgb=float((log_a.argmax(1) == labels).mean()),
        audio=float((log_b.argmax(1) == labels).mean()),
        fused=float(((log_a + log_b).argmax(1) == labels).mean()))


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
    """A Runner config of the paradox task (see the module docstring).

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
    train = dict(type='ToyParadoxDataset', split='train',
                 num_samples=num_train, sample_seed=seed,
                 pipeline=train_pipeline, **task)
    group = dict(group=heldout_group) if heldout_group is not None else {}
    if gblend is not None and train_on_all:
        gblend = dict(gblend, heldout_fraction=heldout_fraction, seed=seed,
                      **{'heldout_' + k: v for k, v in group.items()})
    elif gblend is not None or heldout_split:
        train = dict(type='HeldOutSplitDataset', part='train',
                     fraction=heldout_fraction, seed=seed, dataset=train,
                     **group)

    def eval_loader(split: str) -> dict:
        return dict(
            batch_size=500, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='ToyParadoxDataset', split=split,
                         num_samples=num_eval, sample_seed=0,
                         pipeline=eval_pipeline, test_mode=True, **task))

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
        val_dataloader=eval_loader('val'),
        val_evaluator=dict(type='MultiHeadAccMetric'),
        val_cfg=dict(),
        test_dataloader=eval_loader(eval_split),
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
