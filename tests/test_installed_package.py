"""The plugin works installed from its wheel, not only from the repository
(the editable install of ``make setup``): no module of it finds files next
to its source, and the wheel holds every module.

The package is installed with ``pip install --target`` into a folder, and
the tests marked ``demo_tools`` run in a copy of the repository without
``mmaction_gblend/``, so that only the installed copy can be imported, in
this process's children as in theirs. ``make test-installed`` checks the
same in a fresh virtual environment with ``pip install .``.
"""
import os
import os.path as osp
import re
import shutil
import sys

import pytest

from helpers import REPO, run_command

pytestmark = pytest.mark.slow  # builds a wheel, runs pytest in a new process

# What pip needs to build the wheel, and what the demo tools' tests need
# beside the installed package (docs/: the comparison's documented example).
BUILD_FILES = ('setup.py', 'setup.cfg', 'README.md', 'requirements',
               'mmaction_gblend')
CHECKOUT_FILES = ('setup.cfg', 'tests', 'tools', 'configs', 'benchmarks',
                  'docs')
NO_CACHE = shutil.ignore_patterns('__pycache__', '*.pyc', '.pytest_cache')


def copy_files(names, dest: str) -> str:
    """Copy files and folders of the repository into ``dest``."""
    for name in names:
        src = osp.join(REPO, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dest, name), ignore=NO_CACHE)
        else:
            shutil.copy(src, dest)
    return dest


def modules(root: str) -> set:
    """The ``.py`` files under ``root``, relative to it."""
    return {
        osp.relpath(osp.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        if '__pycache__' not in folder
        for name in files if name.endswith('.py')
    }


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> str:
    """A folder with the plugin installed from its wheel (no dependencies:
    they are this environment's)."""
    src = copy_files(BUILD_FILES, str(tmp_path_factory.mktemp('src')))
    site = str(tmp_path_factory.mktemp('site'))
    run_command([
        sys.executable, '-m', 'pip', 'install', '-q',
        '--disable-pip-version-check', '--no-deps', '--no-build-isolation',
        '--no-compile', '--target', site, src
    ], timeout=300)
    return site


def test_the_wheel_holds_every_module(site):
    package = osp.join(REPO, 'mmaction_gblend')
    assert modules(osp.join(site, 'mmaction_gblend')) == modules(package)


def test_demo_tools_pass_on_the_installed_package(site, tmp_path):
    checkout = copy_files(CHECKOUT_FILES, str(tmp_path))
    env = dict(PYTHONPATH=site, OMP_NUM_THREADS='1')
    where = run_command([
        sys.executable, '-c',
        'import mmaction_gblend; print(mmaction_gblend.__file__)'
    ], cwd=checkout, env=env)
    assert where.strip().splitlines()[-1] == osp.join(
        site, 'mmaction_gblend', '__init__.py')

    out = run_command([
        sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-p',
        'no:xdist', '-m', 'demo_tools', 'tests'
    ], cwd=checkout, env=env, timeout=900)
    # every marked test ran and passed: none failed, errored or was skipped
    selected = re.search(r'collected \d+ items / \d+ deselected / (\d+) '
                         r'selected', out)
    summary = out.strip().splitlines()[-1]
    passed = re.search(r'(\d+) passed', summary)
    assert selected and passed, out[-4000:]
    assert not re.search(r'failed|error|skipped', summary), out[-4000:]
    assert int(passed.group(1)) == int(selected.group(1))
