"""What travels to the device machine: the working tree and the wheel
folder, their sizes against the device tool's limit, and ``--prepare``."""
import os
import os.path as osp
import subprocess
import sys
from typing import List, Tuple

from gpu_check.common import DEFAULT_WHEELS, REPO
from gpu_check.wheels import TARGET_PYTHON, resolve

#: The limit on what travels to the device machine (tree + carried paths).
TRAVEL_LIMIT = 64 * 1024 * 1024


def _git_files(args: List[str], repo: str) -> List[str]:
    out = subprocess.run(['git', '-C', repo] + args + ['-z'],
                         capture_output=True, check=True).stdout
    return [p.decode() for p in out.split(b'\0') if p]


def tree_bytes(repo: str = REPO) -> Tuple[int, int]:
    """Bytes and files of what the device tool sends: tracked files plus
    untracked files git does not ignore (links count as links)."""
    paths = set(_git_files(['ls-files'], repo)) | set(
        _git_files(['ls-files', '--others', '--exclude-standard'], repo))
    total = count = 0
    for rel in paths:
        path = osp.join(repo, rel)
        if osp.islink(path):
            total += len(os.readlink(path))
            count += 1
        elif osp.isfile(path):
            total += osp.getsize(path)
            count += 1
    return total, count


def folder_bytes(path: str) -> int:
    """Bytes of the regular files under ``path``."""
    total = 0
    for folder, _, names in os.walk(path):
        total += sum(osp.getsize(osp.join(folder, n)) for n in names
                     if osp.isfile(osp.join(folder, n)))
    return total


def is_ignored(path: str, repo: str = REPO) -> bool:
    """Whether git ignores ``path`` (so it travels only when carried)."""
    return subprocess.run(['git', '-C', repo, 'check-ignore', '-q', path],
                          capture_output=True).returncode == 0


def mib(n: int) -> str:
    return f'{n / 2**20:.1f} MiB'


def _warn_if_not_ignored(dest: str) -> None:
    # an untracked folder git does not ignore travels uncarried, and then
    # counts twice when the call carries it too
    if dest.startswith(REPO + os.sep) and not is_ignored(dest):
        rel = osp.relpath(dest, REPO)
        print(f'  WARNING: git does not ignore {rel}: it would travel '
              f'uncarried and count twice; add /{rel}/ to .gitignore or '
              '.git/info/exclude')


def print_manifest(manifest: dict, dest: str) -> None:
    """The wheels with their sizes, and what was left out."""
    print(f'\n{len(manifest["wheels"])} wheels, '
          f'{mib(manifest["total_bytes"])} (folder {dest}):')
    for w in manifest['wheels']:
        print(f'  {w["file"]:70s} {mib(w["bytes"]):>9s}')
    print(f'left out ({len(manifest["skipped"])}): '
          + ', '.join(manifest['skipped']))


def prepare(dest: str = DEFAULT_WHEELS, python: str = sys.executable) -> int:
    """``tools/gpu_check/run.sh --prepare``: fetch, then report the sizes.

    Returns:
        The exit status: 0 when every wheel came and the whole fits.
    """
    dest = osp.abspath(dest)
    print(f'Wheels for CPython {TARGET_PYTHON} manylinux x86-64 into {dest} '
          f'(pip of {python})')
    _warn_if_not_ignored(dest)
    manifest = resolve(dest, python)
    print_manifest(manifest, dest)
    tree, files = tree_bytes()
    total = tree + folder_bytes(dest)
    print(f'working tree that travels: {mib(tree)} in {files} files '
          '(git ls-files + untracked not ignored)')
    verdict = 'under' if total <= TRAVEL_LIMIT else 'OVER'
    print(f'tree + wheels: {mib(total)}, {verdict} the 64 MiB limit')
    for err in manifest['errors']:
        print(f'ERROR: {err}')
    print('on the GPU machine: ' + manifest['install_line'])
    return 0 if not manifest['errors'] and total <= TRAVEL_LIMIT else 1
