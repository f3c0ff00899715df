"""The main job of `make demo` on the demo data.

For now: load every split of the demo data through the configured
audio-visual pipeline and the multi-modal data preprocessor, and print what
reaches a model (one tensor per modality). Multi-modal training with
Gradient Blending takes its place once the recognizer (issue 3) and G-Blend
(issue 4) exist.

    python tools/demo.py [--data-root data/demo_av] [--config CONFIG]
"""
import argparse
import collections
import logging
import os.path as osp
import time
import warnings

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

warnings.filterwarnings('ignore', 'Fail to import ``MultiScaleDeformable')
import mmaction_gblend  # noqa: F401,E402  (platform fixes, registration)
from mmaction.registry import MODELS  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(REPO, 'configs/demo/av-pipeline_demo-av.py')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-root', default='data/demo_av')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--num-workers', type=int, default=2)
    return parser.parse_args(argv)


def load_split(cfg: Config, split: str, data_root: str,
               num_workers: int) -> None:
    """Run one split through pipeline and preprocessor; print a summary."""
    loader_cfg = cfg[f'{split}_dataloader'].copy()
    loader_cfg.update(num_workers=num_workers,
                      persistent_workers=num_workers > 0)
    loader_cfg.dataset.update(
        ann_file=osp.join(data_root, f'{split}_list.txt'),
        data_prefix=dict(video=data_root))
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    labels: collections.Counter = collections.Counter()
    shapes = {}
    start = time.perf_counter()
    for batch in loader:
        data = preprocessor(batch, training=split == 'train')
        for key, tensor in data['inputs'].items():
            shapes[key] = (tuple(tensor.shape[1:]), tensor.dtype)
            if not torch.isfinite(tensor).all():
                raise ValueError(f'{split}: non-finite values in {key}')
        labels.update(int(s.gt_label) for s in data['data_samples'])
    seconds = time.perf_counter() - start
    total = sum(labels.values())
    print(f'{split:>5}: {total} clips in {seconds:.1f} s '
          f'({total / seconds:.0f} clips/s), per class '
          f'{dict(sorted(labels.items()))}')
    for key, (shape, dtype) in shapes.items():
        print(f'       {key}: batch x {shape} {dtype}')


class _QuietDeprecations(logging.Filter):
    """Drop mmengine's FileClient deprecation notes (from mmaction2's
    DecordInit, once per worker); they say nothing about the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return 'FileClient' not in message and \
            'HardDiskBackend' not in message


def main(argv=None) -> None:
    args = parse_args(argv)
    MMLogger.get_current_instance().addFilter(_QuietDeprecations())
    if not osp.isfile(osp.join(args.data_root, 'train_list.txt')):
        raise SystemExit(
            f'No demo data in {args.data_root}: run '
            f'`python tools/data/make_demo_dataset.py --out {args.data_root}` '
            '(or `make demo`) first')
    init_default_scope('mmaction')
    cfg = Config.fromfile(args.config)
    print(f'Demo data {args.data_root} through {osp.relpath(args.config)}:')
    for split in ('train', 'val', 'test'):
        load_split(cfg, split, args.data_root, args.num_workers)
    print('\nThe audio-visual data path works: every clip decoded (video and '
          'its audio track), one tensor per modality per batch.\n'
          'This demo stops here for now: multi-modal training with Gradient '
          'Blending arrives with the multi-head recognizer (issue 3) and '
          'G-Blend (issue 4).')


if __name__ == '__main__':
    main()
