"""Make mmengine's Runner load checkpoints on torch >= 2.6, without running
code from them.

mmengine 0.10.7's ``load_from_local`` calls ``torch.load`` without
``weights_only``; torch 2.6 made ``True`` the default, which refuses the
``HistoryBuffer`` objects and numpy arrays of mmengine's own checkpoints, so
``--resume`` and ``load_from`` fail (open-mmlab/mmengine#1655). mmengine's
fix after 0.10.7 passes ``weights_only=False``, which runs any code a file
carries. Its ``load_from_http`` (model-zoo URLs, also behind the
``open-mmlab://``, ``mmcls://`` and ``torchvision://`` schemes) already
unpickles with ``weights_only=False``. We register loaders under the same
names that use the restricted unpickler of :mod:`mmaction_gblend.checkpoint`
instead: mmengine's checkpoints and plain state dicts load, crafted files
are refused, from disk and from URLs alike.
"""
import os
import os.path as osp
from typing import Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from ..checkpoint import load_checkpoint_file


def load_from_local(filename, map_location):
    """Load a local checkpoint with the restricted unpickler.

    The name matches mmengine's, whose log prints it.
    """
    return load_checkpoint_file(filename, map_location=map_location)


def download_checkpoint(url: str, model_dir: Optional[str] = None,
                        progress: bool = False) -> str:
    """Download ``url`` into torch's hub cache (once); return the path."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.isfile(path):
        torch.hub.download_url_to_file(url, path, progress=progress)
    return path


def load_from_http(filename, map_location=None, model_dir=None,
                   progress=False):
    """Download a checkpoint (rank 0 first), then load it restricted."""
    rank, world_size = get_dist_info()
    if rank == 0:
        path = download_checkpoint(filename, model_dir, progress)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir, progress)
    return load_checkpoint_file(path, map_location=map_location)


def register_restricted_checkpoint_loader() -> None:
    """Register the restricted loaders (idempotent)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    # the open-mmlab://, mmcls:// and torchvision:// loaders call the
    # module's load_from_http directly, not through the registry
    mmengine_checkpoint.load_from_http = load_from_http
