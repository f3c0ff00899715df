"""What the benchmarks run: the demo configs, models, batches and data.

Everything comes from the repository's demo configs (``configs/demo/``), so
a benchmark measures what a user trains: the demo model (a 3D ResNet-18 on
RGB and an AudioResNet-18 on log-mel, 16 base channels each, concat fusion),
the demo pipeline's tensor shapes and the demo schedule's optimizer.
"""
import copy
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple

from _common import REPO, device_name

CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
CONFIGS = dict(
    naive='naive-fusion_r3d18-rgb_r18-audio_demo-av.py',
    gblend='gblend-online_r3d18-rgb_r18-audio_demo-av.py',
    ogm='ogm-ge_r3d18-rgb_r18-audio_demo-av.py',
    opm='opm_r3d18-rgb_r18-audio_demo-av.py',
    rgb_only='rgb-only_r3d18_demo-av.py',
    audio_only='audio-only_r18_demo-av.py')

# Strategies of the epoch-level benchmarks: (config, what to change).
STRATEGIES = {
    'naive': ('naive', {}),
    'gblend-trajectory': ('gblend', dict(estimator='trajectory')),
    'gblend-first-order': ('gblend', dict(estimator='first_order')),
    'gblend-shadow': ('gblend', dict(estimator='shadow')),
    'gblend-shadow-tenth': ('gblend', dict(estimator='shadow',
                                           shadow_fraction=0.1)),
    'ogm-ge': ('ogm', {}),
    'opm': ('opm', {}),
}


def init_scope() -> None:
    """Import the plugin (registration, platform fixes); mmaction scope;
    a quiet current logger (no weight-initialisation reports)."""
    from mmengine.logging import MMLogger
    if not MMLogger.check_instance_created('benchmarks'):
        MMLogger.get_instance('benchmarks', log_level='WARNING')
    from mmengine.registry import init_default_scope

    import mmaction_gblend  # noqa: F401
    init_default_scope('mmaction')


def load_config(key: str):
    """The demo config ``CONFIGS[key]`` as an mmengine ``Config``."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIG_DIR, CONFIGS[key]))


# demo data -------------------------------------------------------------------


def ensure_demo_data(root: str,
                     train_per_class: int,
                     val_per_class: int = 1,
                     duration: float = 2.0,
                     size: int = 64,
                     seed: int = 0) -> str:
    """A demo dataset at ``root`` (built once, reused when it matches).

    Args:
        root: Its folder.
        train_per_class: Training clips per class (8 classes).
        val_per_class: Validation clips per class (G-Blend's measurement
            pipeline is the val pipeline; the val split itself is unused).
        duration: Clip length in seconds (the demo's is 2).
        size: Frame height and width, a multiple of 32 (the demo's is 64).
        seed: The dataset seed.

    Returns:
        ``root``.
    """
    from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                     make_demo_dataset)
    spec = DemoDatasetSpec(train_per_class=train_per_class,
                           val_per_class=val_per_class, test_per_class=1,
                           duration=duration, size=size)
    make_demo_dataset(root, spec=spec, seed=seed, workers=2,
                      skip_existing=True, verbose=False)
    return root


def warm_file_cache(root: str) -> None:
    """Read every file under ``root`` once, so no configuration pays for
    the first read from disk."""
    for folder, _, names in os.walk(root):
        for name in names:
            with open(osp.join(folder, name), 'rb') as f:
                while f.read(1 << 20):
                    pass


# tensors as the demo pipeline makes them -------------------------------------


def _transform(pipeline: Sequence[dict], kind: str) -> dict:
    found = [t for t in pipeline if t['type'] == kind]
    if not found:
        raise ValueError(f'the demo train pipeline has no {kind}')
    return found[-1]


def sample_shapes(cfg) -> Dict[str, Tuple[int, ...]]:
    """Shapes of one packed training sample, read from the train pipeline.

    Returns:
        ``imgs``: ``(num_clips, 3, clip_len, H, W)`` (uint8),
        ``audios``: ``(num_clips, 1, num_frames, n_mels)`` (float32), as
        ``PackActionInputs(collect_keys=('imgs', 'audios'))`` gives them.
    """
    pipeline = cfg.train_pipeline
    frames = _transform(pipeline, 'SampleFrames')
    height, width = _transform(pipeline, 'Resize')['scale'][::-1]
    mel = _transform(pipeline, 'LogMelSpectrogram')
    clips = frames.get('num_clips', 1)
    return dict(imgs=(clips, 3, frames['clip_len'], height, width),
                audios=(clips, 1, mel['num_frames'], mel.get('n_mels', 80)))


def synthetic_batch(shapes: Dict[str, Tuple[int, ...]],
                    keys: Sequence[str],
                    batch_size: int,
                    num_classes: int,
                    as_dict: bool = True,
                    seed: int = 0) -> dict:
    """A collated batch of random samples, as the data loader gives it.

    Args:
        shapes: :func:`sample_shapes`.
        keys: Input keys to include.
        batch_size: Samples.
        num_classes: Labels are drawn from ``range(num_classes)``.
        as_dict: ``inputs`` as ``{key: [tensor, ...]}`` (the multi-modal
            recognizer's form); otherwise the one key's list (mmaction2's
            stock recognizers).
        seed: Seed of the values.
    """
    import torch
    from mmaction.structures import ActionDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = {}
    for key in keys:
        if key == 'imgs':
            inputs[key] = [
                torch.randint(0, 256, shapes[key], generator=gen,
                              dtype=torch.uint8) for _ in range(batch_size)
            ]
        else:
            inputs[key] = [torch.rand(shapes[key], generator=gen)
                           for _ in range(batch_size)]
    labels = torch.randint(0, num_classes, (batch_size, ), generator=gen)
    samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
    if not as_dict:
        if len(keys) != 1:
            raise ValueError('a list input holds one key')
        inputs = inputs[keys[0]]
    return dict(inputs=inputs, data_samples=samples)


# models ----------------------------------------------------------------------


def stock_model_configs(cfg) -> Dict[str, dict]:
    """mmaction2's own uni-modal recognizers with the demo's backbones.

    ``Recognizer3D`` + ``I3DHead`` on the RGB branch's backbone and
    preprocessor, ``RecognizerAudio`` + ``TSNAudioHead`` on the audio
    branch's; the heads' dropout as the demo's ``ClassifierHead``.
    """
    model = copy.deepcopy(cfg.model)
    pre = model.data_preprocessor.preprocessors
    dropout = model.head.get('dropout_ratio', 0.5)
    classes = model.num_classes

    def head(kind: str, branch: dict) -> dict:
        return dict(type=kind, num_classes=classes,
                    in_channels=branch['feat_dim'], dropout_ratio=dropout,
                    average_clips='prob')

    rgb, audio = model.branches['rgb'], model.branches['audio']
    return {
        'rgb': dict(type='Recognizer3D', backbone=rgb['backbone'],
                    cls_head=head('I3DHead', rgb),
                    data_preprocessor=pre[rgb['input_key']]),
        'audio': dict(type='RecognizerAudio', backbone=audio['backbone'],
                      cls_head=head('TSNAudioHead', audio),
                      data_preprocessor=pre[audio['input_key']]),
    }


def build_trainable(model_cfg: dict, optim_cfg: dict, seed: int = 0):
    """Build a model on the benchmark device, in train mode, and its optim
    wrapper.

    Returns:
        ``(model, optim_wrapper)``.
    """
    import torch
    from mmaction.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.init_weights()
    model.to(device_name())
    model.train()
    wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    return model, wrapper


def train_step_fn(model, wrapper, batch: dict,
                  after: Optional[Callable[[int], None]] = None
                  ) -> Callable[[], None]:
    """A function that runs one ``model.train_step`` on ``batch``.

    Args:
        model: The model.
        wrapper: Its optim wrapper.
        batch: The collated batch (reused every step; the data
            preprocessor copies it to the device each time, as in
            training).
        after: Called with the step number after each step (a hook's
            ``after_train_iter``).
    """
    count = [0]

    def step() -> None:
        data = dict(inputs=batch['inputs'],
                    data_samples=batch['data_samples'])
        model.train_step(data, wrapper)
        if after is not None:
            after(count[0])
        count[0] += 1

    return step


# Runner configs of the epoch-level benchmarks --------------------------------


def _split_fraction(gblend_cfg) -> Tuple[float, int]:
    split = gblend_cfg.train_dataloader.dataset
    return split['fraction'], split.get('seed', 0)


def _point_at_data(cfg, data_root: str, fraction: float, seed: int) -> None:
    """Train on ``data_root``'s train list, less the held-out part; the val
    dataset (whose pipeline G-Blend measures with) on its val list."""
    train = cfg.train_dataloader.dataset
    inner = train['dataset'] if train['type'] == 'HeldOutSplitDataset' \
        else train
    inner = dict(inner, ann_file=osp.join(data_root, 'train_list.txt'),
                 data_prefix=dict(video=data_root))
    # every strategy trains on the same samples: naive fusion, OGM-GE and
    # OPM too leave G-Blend's held-out part out
    cfg.train_dataloader.dataset = dict(
        type='HeldOutSplitDataset', part='train', fraction=fraction,
        seed=seed, dataset=inner)
    cfg.val_dataloader.dataset.update(
        ann_file=osp.join(data_root, 'val_list.txt'),
        data_prefix=dict(video=data_root))


def _set_loaders(cfg, num_workers: Optional[int],
                 batch_size: Optional[int]) -> None:
    for key in ('train_dataloader', 'val_dataloader'):
        loader = cfg[key]
        if num_workers is not None:
            loader['num_workers'] = num_workers
            loader['persistent_workers'] = num_workers > 0
        if batch_size is not None:
            loader['batch_size'] = batch_size


def runner_config(strategy: str,
                  data_root: str,
                  work_dir: str,
                  super_epoch: int,
                  super_epochs: int,
                  num_workers: Optional[int] = None,
                  batch_size: Optional[int] = None,
                  launcher: str = 'none'):
    """The demo config of ``strategy``, shortened for a benchmark.

    * every strategy trains on the same samples (the demo G-Blend config's
      held-out split of the training list), so the ratios measure the
      strategies' own work, not a difference in epoch length;
    * ``super_epochs`` super-epochs of ``super_epoch`` epochs each: G-Blend
      warms up for one and then estimates every one, as the demo config
      does with 4 and 4 (the estimator and ``shadow_fraction`` as the
      strategy says, the other settings at the config's);
    * OGM-GE and OPM modulate from the first epoch to the last;
    * no validation and no checkpoints (the same for every strategy, and
      not what is compared).

    Args:
        strategy: A key of :data:`STRATEGIES`.
        data_root: A demo dataset (:func:`ensure_demo_data`).
        work_dir: The run's work dir.
        super_epoch: Epochs per super-epoch.
        super_epochs: Super-epochs of the run.
        num_workers: Data-loader workers (default: the config's).
        batch_size: Batch size per process (default: the config's).
        launcher: ``'none'`` or ``'pytorch'`` (torchrun).

    Returns:
        An mmengine ``Config``.
    """
    key, hook_changes = STRATEGIES[strategy]
    cfg = load_config(key)
    fraction, seed = _split_fraction(load_config('gblend'))
    _point_at_data(cfg, data_root, fraction, seed)
    _set_loaders(cfg, num_workers, batch_size)
    max_epochs = super_epoch * super_epochs
    cfg.train_cfg.update(max_epochs=max_epochs, val_begin=max_epochs + 1)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 10
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'GradientBlendingHook':
            hook.update(warmup_epochs=super_epoch, super_epochs=super_epoch,
                        **hook_changes)
    if key == 'ogm':
        cfg.optim_wrapper.update(start_epoch=0, end_epoch=None)
    if key == 'opm':
        cfg.model.opm.update(start_epoch=0, end_epoch=None)
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    cfg.experiment_name = f'bench-{strategy}'
    return cfg
