"""Write the synthetic audio-visual demo dataset: MP4 clips + annotations.

Example::

    python tools/data/make_demo_dataset.py --out data/demo_av --skip-existing
"""
import argparse
import dataclasses
import os
import os.path as osp
import time
from typing import Tuple

from mmaction_gblend.demo.demo_generator import (SPLITS, DemoDatasetSpec,
                                                 make_demo_dataset)

# Spec fields that can be overridden from the command line.
_OVERRIDES = ('num_classes', 'train_per_class', 'val_per_class',
              'test_per_class', 'duration', 'fps', 'size')


def parse_args() -> Tuple[argparse.Namespace, DemoDatasetSpec]:
    defaults = DemoDatasetSpec()
    parser = argparse.ArgumentParser(
        description='Write the synthetic RGB+audio demo dataset: H.264/AAC '
        'MP4 clips and mmaction2 VideoDataset annotation lists.')
    parser.add_argument('--out', default='data/demo_av', help='output folder')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument(
        '--workers',
        type=int,
        default=None,
        help='worker processes (default: min(2, number of CPUs))')
    parser.add_argument(
        '--skip-existing',
        action='store_true',
        help='do nothing if OUT already holds a complete dataset with the '
        'same spec and seed')
    for name in _OVERRIDES:
        default = getattr(defaults, name)
        parser.add_argument(
            '--' + name.replace('_', '-'),
            type=type(default),
            default=default,
            help=f'(default: {default})')
    args = parser.parse_args()
    try:
        spec = dataclasses.replace(
            defaults, **{name: getattr(args, name)
                         for name in _OVERRIDES})
    except ValueError as error:  # a bad override: usage error, no traceback
        parser.error(str(error))
    return args, spec


def folder_size(path: str) -> int:
    """Bytes of all files under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(osp.getsize(osp.join(root, name)) for name in files)
    return total


def main() -> None:
    args, spec = parse_args()
    start = time.time()
    meta = make_demo_dataset(
        args.out,
        spec=spec,
        seed=args.seed,
        workers=args.workers,
        skip_existing=args.skip_existing)
    elapsed = time.time() - start

    counts = ', '.join(f'{split} {meta["counts"][split]}' for split in SPLITS)
    print(f'Dataset in {osp.abspath(args.out)}')
    print(f'  clips: {counts} ({spec.num_classes} classes)')
    print(f'  size on disk: {folder_size(args.out) / 2**20:.1f} MiB')
    print(f'  elapsed: {elapsed:.1f} s')
    print('  Bayes accuracy: ' +
          ', '.join(f'{name} {value:.3f}'
                    for name, value in meta['bayes_accuracy'].items()))


if __name__ == '__main__':
    main()
