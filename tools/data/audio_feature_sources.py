"""Which files a log-mel extraction reads, and where their features go.

The source side of ``tools/data/extract_audio_features.py``: the files of
annotation lists or of a folder walk, relative to ``SRC_ROOT``, and the
``.npy`` path of each under ``DST_ROOT``. Standard library only.
"""
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence

DEFAULT_EXTS = ('mp4', 'avi', 'mkv', 'mov', 'webm', 'm4a', 'wav', 'flac',
                'mp3')


def _normalize_ext(ext: str) -> str:
    return '.' + ext.lower().lstrip('.')


def _check_relpath(relpath: str, where: str) -> str:
    """Normalise a path relative to SRC_ROOT; refuse one that leaves it."""
    norm = osp.normpath(relpath)
    if osp.isabs(norm) or norm == '..' or norm.startswith('..' + os.sep):
        raise ValueError(
            f'{where}: path {relpath!r} is not inside SRC_ROOT; annotation '
            'paths must be relative to SRC_ROOT')
    return norm.replace(os.sep, '/')


def read_annotation_paths(ann_file: str) -> List[str]:
    """The relative paths listed in an annotation file.

    Lines are ``relative/path.mp4 label ...``; blank lines and lines starting
    with ``#`` are ignored (as in :class:`AudioVisualDataset`).

    Args:
        ann_file: The annotation list.

    Returns:
        The paths in file order, normalised.

    Raises:
        FileNotFoundError: ``ann_file`` does not exist.
        ValueError: A path is absolute or leaves ``SRC_ROOT``.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file {ann_file} not found')
    paths = []
    with open(ann_file, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            paths.append(
                _check_relpath(line.split()[0], f'{ann_file}, line {lineno}'))
    return paths


def collect_files(src_root: str,
                  ann_files: Optional[Sequence[str]] = None,
                  exts: Sequence[str] = DEFAULT_EXTS,
                  exclude: Optional[str] = None) -> List[str]:
    """The files to process, as paths relative to ``src_root``.

    Args:
        src_root: Root folder of the source files.
        ann_files: Annotation lists; their paths are taken in order, each
            once, whether or not the file exists (a missing one is reported
            as a failure later). Without them, every file under ``src_root``
            whose extension is in ``exts`` is taken, sorted.
        exts: Extensions for the folder walk, with or without the dot, in
            any case.
        exclude: A folder not to walk into (the output folder, when it lies
            inside ``src_root``).

    Returns:
        Relative paths with ``/`` separators.

    Raises:
        FileNotFoundError: ``src_root`` or an annotation file is missing.
        ValueError: An annotation path is absolute or leaves ``src_root``.
    """
    if not osp.isdir(src_root):
        raise FileNotFoundError(f'SRC_ROOT {src_root} is not a folder')
    if ann_files:
        seen = set()
        relpaths = []
        for ann_file in ann_files:
            for relpath in read_annotation_paths(ann_file):
                if relpath not in seen:
                    seen.add(relpath)
                    relpaths.append(relpath)
        return relpaths

    suffixes = {_normalize_ext(ext) for ext in exts}
    excluded = osp.realpath(exclude) if exclude else None
    relpaths = []
    for dirpath, dirnames, filenames in os.walk(src_root, followlinks=True):
        dirnames[:] = [
            d for d in dirnames
            if osp.realpath(osp.join(dirpath, d)) != excluded
        ]
        for name in filenames:
            if osp.splitext(name)[1].lower() in suffixes:
                relpath = osp.relpath(osp.join(dirpath, name), src_root)
                relpaths.append(relpath.replace(os.sep, '/'))
    return sorted(relpaths)


def output_path(dst_root: str, relpath: str) -> str:
    """Where the features of ``SRC_ROOT/relpath`` go (as the dataset reads)."""
    return osp.join(dst_root, osp.splitext(relpath)[0] + '.npy')


def find_collisions(relpaths: Iterable[str]) -> Dict[str, List[str]]:
    """Source files that would write the same ``.npy`` (``a.mp4``, ``a.wav``).

    Returns:
        Output stem to the two or more sources that share it.
    """
    by_stem: Dict[str, List[str]] = {}
    for relpath in relpaths:
        by_stem.setdefault(osp.splitext(relpath)[0], []).append(relpath)
    return {stem: srcs for stem, srcs in by_stem.items() if len(srcs) > 1}
