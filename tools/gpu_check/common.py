"""Paths and small helpers that the GPU check's modules share.

Standard library only: the check imports this before anything is installed
on the GPU machine. Every path is found from this file's place in the
repository (``tools/gpu_check/``) or from the temporary folder of the
machine it runs on, so nothing here names the machine it was written on.
"""
import json
import os
import os.path as osp
import tempfile

#: This folder, ``tools/gpu_check``.
HERE = osp.dirname(osp.abspath(__file__))
#: The repository root.
REPO = osp.dirname(osp.dirname(HERE))
#: The repository's ``tools`` folder (train.py, test.py, dist_train.sh).
TOOLS = osp.join(REPO, 'tools')
#: Where ``install`` puts the wheels unless ``--site`` says otherwise:
#: ``$TMPDIR/gpu_check_site`` (``/tmp/gpu_check_site`` on Linux).
DEFAULT_SITE = osp.join(tempfile.gettempdir(), 'gpu_check_site')
#: The wheel folder unless ``--wheels`` says otherwise: ``.whl/`` in the
#: repository root, which git ignores (it travels only when carried).
DEFAULT_WHEELS = osp.join(REPO, '.whl')
MIB = 1024.0 * 1024.0


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(path + '.tmp', path)


def read_json(path: str):
    """The JSON in ``path``, or None where it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
