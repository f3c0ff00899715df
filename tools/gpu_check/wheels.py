"""Wheels for the GPU machine: pip resolves what to carry, fetched here
(``tools/gpu_check/run.sh --prepare``).

The GPU machine (``tools/gpu_check/README.md``) runs CPython 3.12 on
manylinux x86-64 (Ubuntu 24.04, glibc 2.39) with a CUDA build of torch,
and has no network. What the plugin needs beyond what that image already
holds travels as wheels in a git-ignored folder (default ``.whl/``),
installed there with ``pip install --no-index --no-deps --target DIR``.

:func:`resolve` runs one ``pip download --only-binary=:all:
--python-version 3.12 --implementation cp --platform <every manylinux tag>
-r requirements/runtime.txt -c requirements/constraints.txt``: pip's own
resolver picks the closure at the pinned (tested) versions. What the
machine already has is left out by *stand-ins*: for every package of
``machine_packages.txt`` and of :data:`ALWAYS_SKIP` that the constraints pin,
an empty wheel ``NAME-PIN+gpumachine-py3-none-any.whl`` without
requirements sits in a temporary ``--find-links`` folder, with a constraint
``NAME==PIN+gpumachine`` that only it meets. pip takes the package as met by
it, so it neither downloads the package (torch with its CUDA libraries is
gigabytes) nor walks the package's own requirements; the stand-ins pip
saved say which of the machine's packages the closure needs.

Where pip gets it wrong: ``--python-version`` sets only the wheel tags and
the ``Requires-Python`` check; environment markers (``python_version``,
``sys_platform``...) are evaluated for the interpreter that runs pip. Run
with Python 3.11, ``X; python_version >= "3.12"`` is left out though the
machine needs it. :func:`missing_for_target` reads the saved wheels'
``Requires-Dist`` with the markers evaluated for the machine
(:data:`TARGET_ENV`) and reports what applies there but was neither saved
nor left out, as an error; run ``--prepare`` with a Python 3.12 to avoid it.

A package with no wheel (``No matching distribution``) is built here with
``pip wheel --no-deps`` if it is pure Python, and pip runs again with it in
the ``--find-links`` folder (mmcv-lite 2.1.0 was sdist-only on some
indexes; PyPI has a ``py2.py3-none-any`` wheel of it now).

Only the standard library and pip are used (``packaging`` from pip's own
copy where it is not installed), so this runs with any Python that has pip.
"""
import email.parser
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from gpu_check.common import (DEFAULT_SITE, DEFAULT_WHEELS, HERE, REPO,
                              write_json)

RUNTIME = osp.join(REPO, 'requirements', 'runtime.txt')
CONSTRAINTS = osp.join(REPO, 'requirements', 'constraints.txt')
MACHINE_PACKAGES = osp.join(HERE, 'machine_packages.txt')
MANIFEST = 'MANIFEST.json'
#: The local version label of the stand-ins (no index serves one).
STAND_IN = 'gpumachine'

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
ON_MACHINE = ("the GPU machine's image has it "
              '(tools/gpu_check/machine_packages.txt)')

#: ``pip(command) -> CompletedProcess`` (stdout and stderr as text).
Pip = Callable[[List[str]], subprocess.CompletedProcess]


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Jinja2`` -> ``jinja2``,
    ``importlib_metadata`` -> ``importlib-metadata``."""
    return re.sub(r'[-_.]+', '-', name).lower()


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


def left_out(machine_packages: str = MACHINE_PACKAGES) -> Dict[str, str]:
    """``{canonical name: reason}`` of every package never carried."""
    reasons = {name: ON_MACHINE
               for name in read_machine_packages(machine_packages)}
    reasons.update(ALWAYS_SKIP)
    return reasons


# wheel files -----------------------------------------------------------------


def _dist_info_file(zf: zipfile.ZipFile, name: str) -> str:
    path = next(n for n in zf.namelist()
                if n.endswith(f'.dist-info/{name}') and n.count('/') == 1)
    return zf.read(path).decode('utf-8')


def wheel_metadata(path: str) -> Tuple[str, str, List[str]]:
    """``(name, version, Requires-Dist entries)`` of a wheel file."""
    with zipfile.ZipFile(path) as zf:
        msg = email.parser.Parser().parsestr(
            _dist_info_file(zf, 'METADATA'), headersonly=True)
    return (msg['Name'], msg['Version'],
            list(msg.get_all('Requires-Dist') or []))


def wheel_is_pure(path: str) -> bool:
    """Whether a wheel is pure Python (``Root-Is-Purelib: true``, any
    platform)."""
    with zipfile.ZipFile(path) as zf:
        text = _dist_info_file(zf, 'WHEEL')
    return 'Root-Is-Purelib: true' in text and \
        osp.basename(path).endswith('-any.whl')


def write_wheel(folder: str, name: str, version: str,
                requires: Sequence[str] = (), pure: bool = True,
                files: Optional[Dict[str, str]] = None) -> str:
    """A wheel with metadata and, unless ``files`` (``{path: text}``) says
    otherwise, no code: a stand-in, or a test's fake.

    Returns:
        Its path: ``folder/<name>-<version>-<tag>.whl``.
    """
    dist = f'{re.sub(r"[-_.]+", "_", name)}-{version}'
    tag = 'py3-none-any' if pure else 'cp312-cp312-manylinux_2_28_x86_64'
    path = osp.join(folder, f'{dist}-{tag}.whl')
    meta = ['Metadata-Version: 2.1', f'Name: {name}',
            f'Version: {version}'] + [f'Requires-Dist: {r}' for r in requires]
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr(f'{dist}.dist-info/METADATA', '\n'.join(meta) + '\n')
        zf.writestr(f'{dist}.dist-info/WHEEL',
                    f'Wheel-Version: 1.0\nRoot-Is-Purelib: '
                    f'{str(pure).lower()}\nTag: {tag}\n')
        zf.writestr(f'{dist}.dist-info/RECORD', '')
        for member, text in (files or {}).items():
            zf.writestr(member, text)
    return path


def write_stand_ins(folder: str, names: Iterable[str],
                    pins: Dict[str, str]) -> Dict[str, str]:
    """A stand-in wheel, and its constraint in ``folder/stand-ins.txt``,
    for each of ``names`` that has a pin.

    Returns:
        ``{wheel file name: canonical name}``.
    """
    made, lines = {}, []
    for name in sorted(set(names) & set(pins)):
        version = f'{pins[name]}+{STAND_IN}'
        made[osp.basename(write_wheel(folder, name, version))] = name
        lines.append(f'{name}=={version}\n')
    with open(osp.join(folder, 'stand-ins.txt'), 'w') as f:
        f.writelines(lines)
    return made


# pip -------------------------------------------------------------------------


def download_command(python: str, runtime: str, constraints: str,
                     find_links: str, dest: str,
                     extra: Sequence[str] = ()) -> List[str]:
    """The ``pip download`` of the closure for the GPU machine: binary
    wheels for CPython 3.12 on every manylinux tag (the device README's
    command), the pinned versions, the stand-ins in ``find_links``."""
    cmd = [python, '-m', 'pip', 'download', '--only-binary=:all:',
           '--python-version', TARGET_PYTHON, '--implementation', 'cp']
    for platform in PLATFORMS:
        cmd += ['--platform', platform]
    return cmd + ['-r', runtime, '-c', constraints, '-c',
                  osp.join(find_links, 'stand-ins.txt'), '--find-links',
                  find_links, '-d', dest] + list(extra)


def run_pip(cmd: List[str]) -> subprocess.CompletedProcess:
    """Run pip, its output captured as text."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def no_wheel_for(output: str) -> Optional[str]:
    """The canonical name in pip's ``No matching distribution found for
    NAME...``, or None."""
    found = re.findall(r'No matching distribution found for '
                       r'([A-Za-z0-9][A-Za-z0-9._-]*)', output)
    return canonical(found[-1]) if found else None


def build_pure_wheel(name: str, version: str, folder: str, python: str,
                     pip: Pip = run_pip) -> str:
    """Build ``name==version`` from its sdist into ``folder``; only a pure
    Python wheel runs on the GPU machine.

    Raises:
        RuntimeError: the build failed or is not pure Python.
    """
    with tempfile.TemporaryDirectory() as tmp:
        proc = pip([python, '-m', 'pip', 'wheel', '--no-deps', '-w', tmp,
                    f'{name}=={version}'])
        built = [f for f in os.listdir(tmp) if f.endswith('.whl')]
        if proc.returncode != 0 or len(built) != 1:
            raise RuntimeError(
                f'{name}=={version}: no wheel for CPython {TARGET_PYTHON} '
                'manylinux x86-64 and building one failed: '
                f'{(proc.stdout + proc.stderr).strip()[-1500:]}')
        if not wheel_is_pure(osp.join(tmp, built[0])):
            raise RuntimeError(
                f'{name}=={version}: the wheel built here ({built[0]}) is '
                'not pure Python, so it would not run on the GPU machine; '
                'find a manylinux wheel for CPython 3.12')
        shutil.copy(osp.join(tmp, built[0]), folder)
        return built[0]


def download(cmd: List[str], find_links: str, pins: Dict[str, str],
             python: str, pip: Pip = run_pip,
             log: Callable[[str], None] = print) -> List[str]:
    """Run the download; where pip finds no wheel of a pinned package,
    build a pure one into ``find_links`` and run it again.

    Returns:
        The errors (empty when pip succeeded).
    """
    built = set()
    while True:
        proc = pip(cmd)
        if proc.returncode == 0:
            return []
        output = proc.stdout + proc.stderr
        name = no_wheel_for(output)
        if name is None or name not in pins or name in built:
            return [f'pip download failed: {output.strip()[-2000:]}']
        built.add(name)
        try:
            wheel = build_pure_wheel(name, pins[name], find_links, python,
                                     pip)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            return [str(err)]
        log(f'  built {wheel} (no wheel on the index)')


# what pip saved --------------------------------------------------------------


def _wanted(requires: Iterable[str]) -> List[str]:
    """Canonical names of the ``Requires-Dist`` entries that apply on the
    GPU machine (markers evaluated there, extras left out)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip's vendored copy
        from pip._vendor.packaging.requirements import Requirement
    names = []
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(TARGET_ENV):
            names.append(canonical(req.name))
    return names


def missing_for_target(wheels: Dict[str, str], skipped: Iterable[str]
                       ) -> List[str]:
    """What the saved wheels require on the GPU machine that is neither
    saved nor left out: pip evaluated the markers for the Python that ran
    it, not for the machine's (see the module's docstring).

    Args:
        wheels: ``{canonical name: path}`` of the saved wheels.
        skipped: Canonical names left out (the machine has them).
    """
    have = set(wheels) | set(skipped)
    missing = []
    for name, path in sorted(wheels.items()):
        for dep in _wanted(wheel_metadata(path)[2]):
            if dep not in have:
                missing.append(
                    f'{dep} (required by {name} on Python {TARGET_PYTHON}) '
                    'was not fetched: pip evaluates markers for the Python '
                    'that runs it; run --prepare with a Python '
                    f'{TARGET_PYTHON}')
    return missing


def sort_saved(folder: str, stand_ins: Dict[str, str],
               reasons: Dict[str, str], pins: Dict[str, str]
               ) -> Tuple[Dict[str, str], Dict[str, dict], Dict[str, str]]:
    """Split what pip saved into wheels to carry and packages left out.

    Returns:
        ``{name: path}`` to carry, ``{name: {reason, pinned_here}}`` left
        out, and ``{name: version}`` of the wheels without a pin (not
        carried: the tested set is the pinned one).
    """
    wheels, skipped, unpinned = {}, {}, {}
    for file in sorted(os.listdir(folder)):
        path = osp.join(folder, file)
        if file in stand_ins:
            name = stand_ins[file]
            skipped[name] = dict(reason=reasons[name],
                                 pinned_here=pins.get(name))
            continue
        name, version, _ = wheel_metadata(path)
        name = canonical(name)
        if name in reasons:  # on the machine but unpinned: pip fetched it
            skipped[name] = dict(reason=reasons[name], pinned_here=None)
        elif name in pins:
            wheels[name] = path
        else:
            unpinned[name] = version
    return wheels, skipped, unpinned


def replace_folder(dest: str, wheels: Dict[str, str]) -> List[str]:
    """Copy ``wheels`` into ``dest`` and remove every other wheel there
    (two versions of one package stop the install on the machine).

    Returns:
        The removed file names.
    """
    os.makedirs(dest, exist_ok=True)
    keep = {osp.basename(p) for p in wheels.values()}
    removed = [f for f in sorted(os.listdir(dest))
               if f.endswith('.whl') and f not in keep]
    for f in removed:
        os.remove(osp.join(dest, f))
    for path in wheels.values():
        shutil.copyfile(path, osp.join(dest, osp.basename(path)))
    return removed


#: How the GPU machine's pip installs the folder: only these wheels, none
#: of their requirements, over what ``--target`` already holds.
INSTALL_FLAGS = ('-q', '--no-index', '--no-deps', '--no-compile',
                 '--no-cache-dir', '--upgrade')


def install_line(wheels: str = '.whl', site: str = DEFAULT_SITE) -> str:
    """How the GPU machine installs the folder (the device README's line)."""
    return (f"python3 -m pip install {' '.join(INSTALL_FLAGS)} "
            f'--target {site} {wheels}/*.whl')


def resolve(dest: str = DEFAULT_WHEELS, python: str = sys.executable,
            runtime: str = RUNTIME, constraints: str = CONSTRAINTS,
            machine_packages: str = MACHINE_PACKAGES, pip: Pip = run_pip,
            extra: Sequence[str] = (),
            log: Callable[[str], None] = print) -> dict:
    """Fetch every wheel the GPU machine lacks into ``dest``.

    Args:
        dest: The wheel folder; other wheels in it are removed.
        python: The interpreter whose pip downloads.
        runtime: The plugin's runtime requirements (the roots).
        constraints: The pinned versions.
        machine_packages: Names the GPU machine already has.
        pip: Runs a pip command (tests pass a fake).
        extra: More ``pip download`` arguments (an index, ``--no-index``).
        log: Called with a line per event.

    Returns:
        The manifest (also written to ``dest/MANIFEST.json``): ``wheels``
        (name, version, file, bytes), ``skipped`` (name -> reason),
        ``errors``, ``removed_stale``, ``total_bytes``, ``command``.
    """
    pins, reasons = read_pins(constraints), left_out(machine_packages)
    with tempfile.TemporaryDirectory() as tmp:
        links, saved = osp.join(tmp, 'links'), osp.join(tmp, 'saved')
        os.makedirs(links)
        os.makedirs(saved)
        stand_ins = write_stand_ins(links, reasons, pins)
        cmd = download_command(python, runtime, constraints, links, saved,
                               extra)
        log('$ ' + ' '.join(cmd))
        errors = download(cmd, links, pins, python, pip, log)
        if errors:  # a failed pip leaves the folder as it was
            wheels, skipped, unpinned, removed = {}, {}, {}, []
        else:
            wheels, skipped, unpinned = sort_saved(saved, stand_ins,
                                                   reasons, pins)
            removed = replace_folder(dest, wheels)
            wheels = {n: osp.join(dest, osp.basename(p))
                      for n, p in wheels.items()}
    errors += [f'{n} (pip chose {v}) has no == pin in '
               f'{osp.relpath(constraints, REPO)}'
               for n, v in unpinned.items()]
    errors += missing_for_target(wheels, skipped)
    files = [dict(name=n, version=pins[n], file=osp.basename(p),
                  bytes=osp.getsize(p)) for n, p in sorted(wheels.items())]
    manifest = dict(
        target=f'CPython {TARGET_PYTHON}, manylinux x86-64',
        python_used=python, command=cmd, wheels=files,
        skipped=dict(sorted(skipped.items())), errors=errors,
        removed_stale=removed, total_bytes=sum(w['bytes'] for w in files),
        install_line=install_line(osp.relpath(dest, REPO)
                                  if dest.startswith(REPO) else dest))
    write_json(osp.join(dest, MANIFEST), manifest)
    return manifest
