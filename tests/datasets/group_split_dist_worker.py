"""Run by torchrun from test_group_split.py (one process per rank).

Builds the training, held-out and probe loaders of a group split of the
annotation file ``<out>/list.txt`` the way a Runner does (distributed
samplers), iterates them, and writes to ``<out>/rank<r>.json`` the split's
indices and the files this rank's loaders gave it.
"""
import json
import os.path as osp
import sys

import torch.distributed as torch_dist
from mmaction.utils import register_all_modules
from mmengine.dist import get_rank, init_dist
from mmengine.runner import Runner

import mmaction_gblend  # noqa: F401  (registers the plugin)
from mmaction_gblend.compat import end_process_group, exit_without_teardown


def main(out: str) -> None:
    register_all_modules(init_default_scope=True)
    init_dist('pytorch', backend='gloo')
    result = {}
    for part in ('train', 'heldout', 'probe'):
        loader = Runner.build_dataloader(
            dict(batch_size=7, num_workers=1,
                 sampler=dict(type='DefaultSampler', shuffle=True),
                 collate_fn=dict(type='pseudo_collate'),
                 dataset=dict(
                     type='HeldOutSplitDataset', part=part, fraction=0.1,
                     seed=2, group=r'_g(\d+)_c',
                     dataset=dict(type='AudioVisualDataset',
                                  ann_file=osp.join(out, 'list.txt'),
                                  pipeline=[],
                                  data_prefix=dict(video=out)))),
            seed=0)
        # pseudo_collate: a dict of lists
        files = [osp.relpath(name, out)
                 for batch in loader for name in batch['filename']]
        result[part] = dict(indices=loader.dataset.indices.tolist(),
                            files=files)
    torch_dist.barrier()
    with open(osp.join(out, f'rank{get_rank()}.json'), 'w') as f:
        json.dump(result, f)
    end_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
    exit_without_teardown()  # see mmaction_gblend/compat/process_exit.py
