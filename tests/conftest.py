"""Shared fixtures, and the rule of the ``slow`` marker."""
import os.path as osp
import subprocess

import pytest

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from helpers import make_small_demo_set, write_test_clip

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def make_clip(tmp_path):
    """``make_clip(name, **kwargs)`` writes a test clip into ``tmp_path``."""

    def _make(name: str = 'clip.mp4', **kwargs) -> str:
        return write_test_clip(str(tmp_path / name), **kwargs)

    return _make


@pytest.fixture
def repo_root() -> str:
    return REPO_ROOT


@pytest.hookimpl(trylast=True)  # after pytest-xdist's worker start-up
def pytest_sessionstart(session):
    """Without the slow tests (``-m 'not slow'``, ``make test-fast``), a test
    or fixture that starts a Runner or a process fails: mark it ``slow``."""
    config = session.config
    if 'not slow' not in (config.getoption('markexpr') or ''):
        return
    if config.getoption('numprocesses', None) and \
            not hasattr(config, 'workerinput'):
        return  # pytest-xdist's controller: it starts the workers, runs no test
    from mmengine.runner import Runner

    def refuse(what):

        def _refuse(*args, **kwargs):
            pytest.fail(f'starts {what}: mark the test @pytest.mark.slow',
                        pytrace=False)

        return _refuse

    Runner.__init__ = refuse('a Runner')
    subprocess.Popen.__init__ = refuse('a process')


@pytest.fixture(autouse=True)
def mmaction_scope():
    """Build modules the way mmaction2's configs do (``default_scope``)."""
    from mmengine.registry import DefaultScope, init_default_scope
    if DefaultScope.get_current_instance() is None or \
            DefaultScope.get_current_instance().scope_name != 'mmaction':
        init_default_scope('mmaction')


# A config of the repository, pointed at the small demo set, 1 epoch.
DEMO_OVERRIDE = '''
_base_ = ['{config}']
data_root = '{root}'
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/train_list.txt',
                 data_prefix=dict(video=data_root)))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/val_list.txt',
                 data_prefix=dict(video=data_root)))
test_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file=data_root + '/test_list.txt',
                 data_prefix=dict(video=data_root)))
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
'''


@pytest.fixture(scope='session')
def small_demo(tmp_path_factory):
    """The demo dataset with one clip per class and split."""
    return make_small_demo_set(tmp_path_factory.mktemp('demo'))


@pytest.fixture
def demo_config(small_demo):
    """``demo_config(name)``: the path of ``configs/demo/<name>.py``
    pointed at the small demo set, for 1 epoch."""

    def _config(name: str) -> str:
        path = small_demo / f'{name}.py'
        path.write_text(DEMO_OVERRIDE.format(
            config=osp.join(REPO_ROOT, 'configs', 'demo', f'{name}.py'),
            root=small_demo / 'data'))
        return str(path)

    return _config
