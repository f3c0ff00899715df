"""The ``distutils.errors`` stand-in for Python >= 3.12 without setuptools."""
import contextlib
import subprocess
import sys
import textwrap

import pytest

from mmaction_gblend.compat import distutils_errors
from mmaction_gblend.compat.distutils_errors import (
    STAND_IN_ATTR, install_distutils_errors_if_missing, make_stand_in)


@contextlib.contextmanager
def no_distutils_modules():
    """``sys.modules`` without distutils inside, as it was afterwards."""
    def ours():
        return [k for k in sys.modules
                if k == 'distutils' or k.startswith('distutils.')]

    saved = {k: sys.modules.pop(k) for k in ours()}
    try:
        yield
    finally:
        for k in ours():
            del sys.modules[k]
        sys.modules.update(saved)


def test_stand_in_has_what_mmengine_collect_env_reads():
    package = make_stand_in()
    errors = package.errors
    assert issubclass(errors.DistutilsPlatformError, errors.DistutilsError)
    assert issubclass(errors.CompileError, errors.CCompilerError)
    assert getattr(package, STAND_IN_ATTR)
    with pytest.raises(errors.DistutilsError):
        raise errors.DistutilsPlatformError('no compiler')


def test_left_alone_before_3_12_and_where_distutils_imports(monkeypatch):
    assert not install_distutils_errors_if_missing((3, 11))
    monkeypatch.setattr(distutils_errors, '_distutils_importable',
                        lambda: True)
    with no_distutils_modules():
        assert not install_distutils_errors_if_missing((3, 12))
        assert 'distutils' not in sys.modules


def test_installed_where_python_has_no_distutils(monkeypatch):
    monkeypatch.setattr(distutils_errors, '_distutils_importable',
                        lambda: False)
    with no_distutils_modules():
        assert install_distutils_errors_if_missing((3, 12))
        from distutils import errors  # what mmengine's collect_env does
        assert getattr(errors, STAND_IN_ATTR)
        assert not install_distutils_errors_if_missing((3, 12))


@pytest.mark.slow
def test_mmengine_collect_env_runs_with_the_stand_in():
    """A fresh interpreter in which ``import distutils`` fails, as on
    Python 3.12 without setuptools: mmengine's environment report, which
    every Runner logs, works once the plugin is imported."""
    code = textwrap.dedent('''
        import importlib.abc, sys
        class NoDistutils(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == 'distutils' or name.startswith('distutils.'):
                    raise ModuleNotFoundError(f"No module named '{name}'")
        sys.meta_path.insert(0, NoDistutils())
        for name in [m for m in sys.modules if m.startswith('distutils')]:
            del sys.modules[name]
        from mmaction_gblend.compat import distutils_errors
        assert distutils_errors.install_distutils_errors_if_missing((3, 12))
        from mmengine.utils.dl_utils import collect_env
        env = collect_env()
        print('GCC' in env)
    ''')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('True')
