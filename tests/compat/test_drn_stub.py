"""The stand-in for mmaction2 1.2.0's missing ``drn`` localizer."""
import shutil
import subprocess
import sys
import textwrap

import mmaction
import pytest

from mmaction_gblend.compat.drn_stub import mmaction_has_drn

pytestmark = pytest.mark.slow  # each test starts a Python process


def run_python(code: str, env_path: str = None) -> subprocess.CompletedProcess:
    env = None
    if env_path is not None:
        import os
        env = dict(os.environ, PYTHONPATH=env_path)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_wheel_lacks_drn_and_fails_without_the_plugin():
    mmaction_dir = mmaction.__path__[0]
    assert not mmaction_has_drn(mmaction_dir)
    proc = run_python('import mmaction.models')
    assert proc.returncode != 0
    assert "No module named 'mmaction.models.localizers.drn'" in proc.stderr


def test_plugin_makes_mmaction_models_importable():
    proc = run_python("""
        import mmaction_gblend
        import mmaction.models
        from mmaction.registry import MODELS
        assert MODELS.get('Recognizer3D') is not None
        try:
            MODELS.build(dict(type='DRN'))
        except ImportError as err:
            print('DRN:', err)
    """)
    assert proc.returncode == 0, proc.stderr
    assert 'DRN: DRN is not available' in proc.stdout


def test_a_source_install_with_drn_is_left_alone(tmp_path):
    # a copy of the installed mmaction with the drn localizer put back, as a
    # source checkout has it (a directory without __init__.py)
    source = tmp_path / 'src'
    shutil.copytree(mmaction.__path__[0], source / 'mmaction',
                    ignore=shutil.ignore_patterns('.mim', '__pycache__'))
    drn = source / 'mmaction' / 'models' / 'localizers' / 'drn'
    drn.mkdir()
    (drn / 'drn.py').write_text(textwrap.dedent("""
        from mmaction.registry import MODELS

        @MODELS.register_module()
        class DRN:
            source_install = True
    """))
    assert mmaction_has_drn(str(source / 'mmaction'))
    proc = run_python("""
        import sys
        import mmaction_gblend
        import mmaction.models
        from mmaction.registry import MODELS
        module = sys.modules['mmaction.models.localizers.drn.drn']
        print(module.__file__)
        print(MODELS.get('DRN').source_install)
    """, env_path=str(source))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(drn / 'drn.py'), 'True']
