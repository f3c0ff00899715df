"""``import mmaction_gblend`` registers the library and nothing else: not the
toy tasks of :mod:`mmaction_gblend.demo`, not the tests' fault injection."""
import json
import os.path as osp
import subprocess
import sys

import pytest

# a fresh interpreter
pytestmark = [pytest.mark.slow, pytest.mark.demo_tools]

HERE = osp.dirname(osp.abspath(__file__))

# Run in a fresh interpreter: this process has imported test helpers and
# toy tasks already. Prints the registries' names before and after
# importing the demo and test modules, and what the plugin alone imported.
CODE = '''
import json, sys
import mmaction_gblend
import mmaction.registry
from mmengine.registry import Registry

def registered():
    return {{name: sorted(reg.module_dict)
             for name, reg in vars(mmaction.registry).items()
             if isinstance(reg, Registry)}}

before = registered()
imported = sorted(
    m for m in sys.modules
    if m.startswith('mmaction_gblend.demo') or m in {test_modules!r})
sys.path.insert(0, {reliability!r})
import mmaction_gblend.demo.toy_task, fault_injection
print(json.dumps(dict(before=before, after=registered(), imported=imported)))
'''
# Test code that must never be importable from, or imported by, the plugin.
TEST_MODULES = ('helpers', 'fault_injection', 'mmaction_gblend.testing',
                'mmaction_gblend.toy_task', 'mmaction_gblend.fault_injection')


def test_importing_the_plugin_registers_no_toy_or_fault_module(tmp_path):
    code = CODE.format(test_modules=set(TEST_MODULES),
                       reliability=osp.join(HERE, 'reliability'))
    # a neutral cwd: nothing of the repository on sys.path but the plugin
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out['imported'] == []
    added = {
        name: sorted(set(names) - set(out['before'][name]))
        for name, names in out['after'].items()
        if set(names) - set(out['before'][name])
    }
    # what the demo and test modules register: absent after the plugin alone
    assert added == {
        'DATASETS': ['ToyMultiModalDataset', 'ToyParadoxDataset'],
        'MODELS': ['ToyEncoder'],
        'TRANSFORMS': ['SigkillTransform', 'ToyFeatureNoise'],
        'HOOKS': ['SigkillHook'],
    }
    # and the plugin's own modules are there
    assert 'MultiHeadRecognizer' in out['before']['MODELS']
    assert 'GradientBlendingHook' in out['before']['HOOKS']
