"""The plugin's configs with mmaction2's own scripts (the copies its wheel
ships for mim under ``mmaction/.mim/tools``): ``train.py`` and ``test.py`` on
one process, and ``dist_train.sh`` on two (gloo on a CPU-only machine). The
config's ``custom_imports`` is all it takes."""
import os
import os.path as osp
import sys

import mmaction
import pytest
import torch

from helpers import free_port, run_command

pytestmark = pytest.mark.slow  # mmaction2's own scripts, in processes

TOOLS = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools')


def test_mmaction_train_and_test_scripts(demo_config, tmp_path):
    config = demo_config('ogm-ge_r3d18-rgb_r18-audio_demo-av')
    work = str(tmp_path / 'work')
    out = run_command([sys.executable, osp.join(TOOLS, 'train.py'), config,
                       '--work-dir', work], cwd=str(tmp_path))
    assert 'Epoch(train) [1][2/2]' in out
    assert 'Modulation, epoch 1: score audio' in out and 'ogm_k audio' in out
    out = run_command([sys.executable, osp.join(TOOLS, 'test.py'), config,
                       osp.join(work, 'epoch_1.pth'), '--work-dir', work],
                      cwd=str(tmp_path))
    assert 'Epoch(test) [2/2]' in out and 'acc/rgb_top1:' in out


def test_mmaction_dist_train_script_on_two_processes(demo_config, tmp_path):
    config = demo_config('naive-fusion_r3d18-rgb_r18-audio_demo-av')
    work = str(tmp_path / 'dist')
    # the script calls `python`: ours
    path = osp.dirname(sys.executable) + os.pathsep + os.environ['PATH']
    out = run_command(
        ['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2',
         '--work-dir', work], cwd=str(tmp_path),
        env=dict(PATH=path, PORT=str(free_port()), OMP_NUM_THREADS='1',
                 PYTHONFAULTHANDLER='1'),
        # mmaction2's train.py cannot skip the teardown that a rank
        # sometimes aborts in; what the run wrote is checked below
        teardown_abort_ok=True)
    assert 'Distributed training: True' in out
    if not torch.cuda.is_available():
        assert 'No CUDA device: starting the process group with gloo' in out
    # 8 clips over 2 processes, batch 4: one iteration each
    assert 'Epoch(train) [1][1/1]' in out
    assert osp.exists(osp.join(work, 'epoch_1.pth'))
