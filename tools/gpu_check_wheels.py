"""Wheels for the GPU machine: what to carry, fetched here (``--prepare``).

The GPU machine (see ``docs/gpu_check.md``) runs its own Python 3.12 with a
CUDA build of torch and has no network. What the plugin needs beyond what
that image already holds travels as wheels in a git-ignored folder
(default ``.whl/``), installed there with
``pip install --no-index --no-deps --target DIR .whl/*.whl``.

:func:`resolve` starts from ``requirements/runtime.txt``, takes every version
from ``requirements/constraints.txt`` (the tested set), downloads each
package's wheel for CPython 3.12 on manylinux x86-64 with ``--no-deps``, reads
its ``Requires-Dist`` (markers evaluated for that machine) and walks on.
It leaves out torch (the machine's own CUDA build is used, never replaced),
every package the machine's image already has
(``tools/gpu_machine_packages.txt``, from the workplace's description of the
machine) and the OpenCV distributions whose ``cv2`` the image's
``opencv-python-headless`` provides. A package with no wheel for that
platform is built into one here with ``pip wheel --no-deps`` if it is pure
Python (mmcv-lite 2.1.0 was sdist-only on some indexes; PyPI has a
``py2.py3-none-any`` wheel of it now).

Only the standard library and pip are used (``packaging`` from pip's own
copy where it is not installed), so this runs with any Python that has pip.
"""
import email.parser
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUNTIME = osp.join(REPO, 'requirements', 'runtime.txt')
CONSTRAINTS = osp.join(REPO, 'requirements', 'constraints.txt')
MACHINE_PACKAGES = osp.join(REPO, 'tools', 'gpu_machine_packages.txt')
DEFAULT_WHEELS = osp.join(REPO, '.whl')
MANIFEST = 'MANIFEST.json'
#: The limit on what travels to the device machine (tree + carried paths).
TRAVEL_LIMIT = 64 * 1024 * 1024

#: The GPU machine's interpreter, for the wheel tags and the markers.
TARGET_PYTHON = '3.12'
TARGET_ENV = dict(
    python_version='3.12', python_full_version='3.12.3', os_name='posix',
    sys_platform='linux', platform_system='Linux', platform_machine='x86_64',
    platform_release='', platform_version='', implementation_name='cpython',
    implementation_version='3.12.3', platform_python_implementation='CPython',
    extra='')
#: pip matches each manylinux tag exactly: every glibc from 2.5 to 2.39
#: (the machine's image is Ubuntu 24.04, glibc 2.39) and the old aliases.
PLATFORMS = ['manylinux1_x86_64', 'manylinux2010_x86_64',
             'manylinux2014_x86_64'] + [
                 f'manylinux_2_{n}_x86_64' for n in range(5, 40)]

#: Left out whatever the closure says, with the reason.
ALWAYS_SKIP = {
    'torch': 'the machine\'s own CUDA build of torch is used, never '
             'replaced',
    'opencv-python': "cv2 comes from the machine's opencv-python-headless "
                     '(mmengine and mmcv import cv2 only)',
    'opencv-contrib-python': "cv2 comes from the machine's "
                             'opencv-python-headless (mmaction2 declares '
                             'the contrib build; the plugin uses no '
                             'contrib module)',
}


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Jinja2`` -> ``jinja2``,
    ``importlib_metadata`` -> ``importlib-metadata``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def _packaging():
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip's vendored copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def requirement_lines(path: str) -> List[str]:
    """A requirements file's requirements, comments and blanks left out."""
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_pins(path: str = CONSTRAINTS) -> Dict[str, str]:
    """``{canonical name: version}`` of a constraints file's ``==`` pins."""
    pins = {}
    for line in requirement_lines(path):
        match = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)',
                         line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def read_machine_packages(path: str = MACHINE_PACKAGES) -> List[str]:
    """The canonical names the GPU machine's image already has."""
    return sorted({canonical(n) for n in requirement_lines(path)})


def wanted_requirements(requires: Iterable[str],
                        env: Optional[dict] = None) -> List[str]:
    """Canonical names of the ``Requires-Dist`` entries that apply on the
    target machine (markers evaluated there, extras left out)."""
    Requirement = _packaging()
    env = dict(TARGET_ENV, **(env or {}))
    names = []
    for text in requires:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        names.append(canonical(req.name))
    return names


def wheel_metadata(path: str) -> Tuple[str, str, List[str]]:
    """``(name, version, Requires-Dist entries)`` of a wheel file."""
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist()
                    if n.endswith('.dist-info/METADATA')
                    and n.count('/') == 1)
        msg = email.parser.Parser().parsestr(
            zf.read(meta).decode('utf-8'), headersonly=True)
    return (msg['Name'], msg['Version'],
            list(msg.get_all('Requires-Dist') or []))


def wheel_is_pure(path: str) -> bool:
    """Whether a wheel is pure Python (``Root-Is-Purelib: true``, any
    platform)."""
    with zipfile.ZipFile(path) as zf:
        info = next(n for n in zf.namelist()
                    if n.endswith('.dist-info/WHEEL') and n.count('/') == 1)
        text = zf.read(info).decode('utf-8')
    return 'Root-Is-Purelib: true' in text and \
        osp.basename(path).endswith('-any.whl')


def _pip(python: str, args: List[str], timeout: int = 600
         ) -> subprocess.CompletedProcess:
    return subprocess.run([python, '-m', 'pip'] + args, capture_output=True,
                          text=True, timeout=timeout)


def download_args(name: str, version: str, dest: str) -> List[str]:
    """The ``pip download`` arguments for one binary wheel for the GPU
    machine (the device README's command, every manylinux tag)."""
    args = ['download', '--no-deps', '--only-binary=:all:',
            '--python-version', TARGET_PYTHON, '--implementation', 'cp']
    for platform in PLATFORMS:
        args += ['--platform', platform]
    return args + ['-d', dest, f'{name}=={version}']


def fetch_wheel(name: str, version: str, dest: str, python: str
                ) -> Tuple[str, str]:
    """Download (or build) the wheel of ``name==version`` into ``dest``.

    Returns:
        ``(path of the wheel, how: 'downloaded' | 'built')``.

    Raises:
        RuntimeError: no wheel for the target and no pure-Python build;
            the message has pip's own words.
    """
    with tempfile.TemporaryDirectory() as tmp:
        proc = _pip(python, download_args(name, version, tmp))
        how = 'downloaded'
        if proc.returncode != 0:
            # no binary for CPython 3.12 manylinux: build one here, which
            # works for pure-Python projects only
            first = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            proc = _pip(python, ['wheel', '--no-deps', '-w', tmp,
                                 f'{name}=={version}'])
            how = 'built'
            if proc.returncode != 0:
                raise RuntimeError(
                    f'{name}=={version}: no wheel for CPython '
                    f'{TARGET_PYTHON} manylinux x86-64 '
                    f'({" / ".join(first)}) and building one failed: '
                    f'{(proc.stdout + proc.stderr).strip()[-1500:]}')
        wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
        if len(wheels) != 1:
            raise RuntimeError(f'{name}=={version}: expected one wheel, '
                               f'got {wheels}')
        src = osp.join(tmp, wheels[0])
        if how == 'built' and not wheel_is_pure(src):
            raise RuntimeError(
                f'{name}=={version}: the wheel built here ({wheels[0]}) is '
                'not pure Python, so it would not run on the GPU machine; '
                'find a manylinux wheel for CPython 3.12')
        os.makedirs(dest, exist_ok=True)
        target = osp.join(dest, wheels[0])
        shutil.copyfile(src, target)
        return target, how


def resolve(dest: str = DEFAULT_WHEELS,
            python: str = sys.executable,
            runtime: str = RUNTIME,
            constraints: str = CONSTRAINTS,
            machine_packages: str = MACHINE_PACKAGES,
            fetch=fetch_wheel,
            log=print) -> dict:
    """Fetch every wheel the GPU machine lacks into ``dest``.

    Args:
        dest: The wheel folder; wheels of other packages or versions in it
            are removed at the end (two versions of one package stop the
            install there).
        python: The interpreter whose pip downloads.
        runtime: The plugin's runtime requirements (the roots).
        constraints: The pinned versions.
        machine_packages: Names the GPU machine already has.
        fetch: ``fetch(name, version, dest, python) -> (path, how)``.
        log: Called with a line per package.

    Returns:
        The manifest (also written to ``dest/MANIFEST.json``): ``wheels``
        (name, version, file, bytes, how, needed_by), ``skipped`` (name ->
        reason and who needs it), ``errors`` and ``total_bytes``.
    """
    pins = read_pins(constraints)
    on_machine = set(read_machine_packages(machine_packages))
    roots = wanted_requirements(requirement_lines(runtime))
    queue = [(name, 'requirements/runtime.txt') for name in roots]
    wheels: Dict[str, dict] = {}
    skipped: Dict[str, dict] = {}
    errors: List[str] = []
    seen = set()
    while queue:
        name, parent = queue.pop(0)
        if name in seen:
            entry = wheels.get(name) or skipped.get(name)
            if entry is not None and parent not in entry['needed_by']:
                entry['needed_by'].append(parent)
            continue
        seen.add(name)
        if name in ALWAYS_SKIP or name in on_machine:
            reason = ALWAYS_SKIP.get(
                name, "the GPU machine's image has it "
                '(tools/gpu_machine_packages.txt)')
            skipped[name] = dict(reason=reason, needed_by=[parent],
                                 pinned_here=pins.get(name))
            continue
        version = pins.get(name)
        if version is None:
            errors.append(f'{name} (needed by {parent}) has no == pin in '
                          f'{osp.relpath(constraints, REPO)}')
            continue
        try:
            path, how = fetch(name, version, dest, python)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            errors.append(str(err))
            log(f'  FAILED {name}=={version}: {err}')
            continue
        _, _, requires = wheel_metadata(path)
        wheels[name] = dict(name=name, version=version,
                            file=osp.basename(path),
                            bytes=osp.getsize(path), how=how,
                            needed_by=[parent])
        log(f'  {how} {osp.basename(path)} '
            f'({osp.getsize(path) / 2**20:.1f} MiB)')
        for dep in wanted_requirements(requires):
            queue.append((dep, f'{name}=={version}'))
    keep = {w['file'] for w in wheels.values()}
    removed = []
    if osp.isdir(dest):
        for f in sorted(os.listdir(dest)):
            if f.endswith('.whl') and f not in keep:
                os.remove(osp.join(dest, f))
                removed.append(f)
    manifest = dict(
        target=f'CPython {TARGET_PYTHON}, manylinux x86-64',
        python_used=python,
        wheels=sorted(wheels.values(), key=lambda w: w['name']),
        skipped=dict(sorted(skipped.items())), errors=errors,
        removed_stale=removed,
        total_bytes=sum(w['bytes'] for w in wheels.values()),
        install_line=install_line(osp.relpath(dest, REPO)
                                  if dest.startswith(REPO) else dest))
    os.makedirs(dest, exist_ok=True)
    with open(osp.join(dest, MANIFEST), 'w') as f:
        json.dump(manifest, f, indent=1)
    return manifest


def install_line(wheels: str = '.whl', site: str = '/tmp/gpu_check_site'
                 ) -> str:
    """How the GPU machine installs the folder (the device README's line)."""
    return (f'python3 -m pip install -q --no-index --no-deps --no-compile '
            f'--no-cache-dir --upgrade --target {site} {wheels}/*.whl')


# what travels ----------------------------------------------------------------


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


def prepare(dest: str = DEFAULT_WHEELS, python: str = sys.executable) -> int:
    """``tools/gpu_check.sh --prepare``: fetch, then report the sizes.

    Returns:
        The exit status: 0 when every wheel came and the whole fits.
    """
    dest = osp.abspath(dest)
    print(f'Wheels for CPython {TARGET_PYTHON} manylinux x86-64 into {dest} '
          f'(pip of {python})')
    if dest.startswith(REPO + os.sep) and not is_ignored(dest):
        print(f'  WARNING: git does not ignore {osp.relpath(dest, REPO)}: '
              'it would travel uncarried and count twice; add '
              f'/{osp.relpath(dest, REPO)}/ to .gitignore or '
              '.git/info/exclude')
    manifest = resolve(dest, python)
    tree, files = tree_bytes()
    wheels = folder_bytes(dest)
    total = tree + wheels
    print(f'\n{len(manifest["wheels"])} wheels, {mib(wheels)} '
          f'(folder {dest}):')
    for w in manifest['wheels']:
        print(f'  {w["file"]:70s} {mib(w["bytes"]):>9s}  {w["how"]}')
    print(f'left out ({len(manifest["skipped"])}): ' + ', '.join(
        f'{n}' for n in manifest['skipped']))
    print(f'working tree that travels: {mib(tree)} in {files} files '
          '(git ls-files + untracked not ignored)')
    verdict = 'under' if total <= TRAVEL_LIMIT else 'OVER'
    print(f'tree + wheels: {mib(total)}, {verdict} the 64 MiB limit')
    for err in manifest['errors']:
        print(f'ERROR: {err}')
    print('on the GPU machine: ' + manifest['install_line'])
    return 0 if not manifest['errors'] and total <= TRAVEL_LIMIT else 1


if __name__ == '__main__':
    sys.exit(prepare(*(sys.argv[1:2] or [DEFAULT_WHEELS])))
