"""The paradox task's data: samples, augmentation and Bayes accuracy.

:class:`ToyParadoxDataset` and :class:`ToyFeatureNoise` (registered when
this module is imported, as :mod:`mmaction_gblend.demo.toy_task` does),
the frozen task :data:`PARADOX_TASK` and :func:`paradox_bayes_accuracy`.
The task, its mechanism and its calibration are described in
:mod:`mmaction_gblend.demo.toy_task`; :mod:`.paradox_configs` builds its
Runner configs.
"""
import math
from types import SimpleNamespace
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from mmaction.registry import DATASETS, TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset

from ..utils.choices import check_choice

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
