"""A hook's history as a JSON-lines file in the work dir, one entry a line.

Only the main process writes. When training starts, the checkpoint's
history (none when starting afresh) is the truth: an interrupted run may have
written entries the checkpoint lacks, even before its first checkpoint, so
hooks rewrite the whole file from it.
"""
import json
import os.path as osp
from typing import Iterable, List

from mmengine.dist import is_main_process

__all__ = ['append_history', 'check_history_file', 'read_history',
           'rewrite_history']


def check_history_file(name: object, key: str) -> str:
    """A hook's ``history_file`` option: a file name in the work dir (the
    hooks write there and nowhere else, so no directory part).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: it is blank or has a directory part; both name ``key``.
    """
    if not isinstance(name, str):
        raise TypeError(f'{key} must be a file name, got {name!r}')
    if not name.strip() or osp.dirname(name):  # 'logs/', '/': 'logs', '/'
        raise ValueError(f'{key} must be a file name in the work dir, got '
                         f'{name!r}')
    return name


def append_history(path: str, entry: dict) -> None:
    """Append one entry (strict JSON: no NaN or inf)."""
    if is_main_process():
        with open(path, 'a') as f:
            f.write(json.dumps(entry, allow_nan=False) + '\n')


def rewrite_history(path: str, entries: Iterable[dict]) -> None:
    """Replace the file by ``entries``."""
    if is_main_process():
        with open(path, 'w') as f:
            for entry in entries:
                f.write(json.dumps(entry, allow_nan=False) + '\n')


def read_history(path: str) -> List[dict]:
    """The entries of a history file, in order (blank lines skipped).

    Raises:
        ValueError: naming the file and line of an entry that is not JSON.
    """
    entries = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f'{path}, line {lineno}: {err}') from None
    return entries
