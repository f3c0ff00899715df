"""Shared fixtures."""
import os.path as osp

import pytest

import mmaction_gblend  # noqa: F401  (platform fixes, registration)
from mmaction_gblend.testing import write_test_clip

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


@pytest.fixture(autouse=True)
def mmaction_scope():
    """Build modules the way mmaction2's configs do (``default_scope``)."""
    from mmengine.registry import DefaultScope, init_default_scope
    if DefaultScope.get_current_instance() is None or \
            DefaultScope.get_current_instance().scope_name != 'mmaction':
        init_default_scope('mmaction')
