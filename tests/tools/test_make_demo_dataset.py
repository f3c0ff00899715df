"""``tools/data/make_demo_dataset.py`` (``make demo-data``) from its command
line: a tiny dataset, its lists and metadata, and a rerun that keeps it."""
import json
import os.path as osp
import sys

import pytest

from helpers import REPO, run_command

# runs the tool in a new interpreter
pytestmark = [pytest.mark.slow, pytest.mark.demo_tools]

TINY = ['--num-classes', '2', '--train-per-class', '2', '--val-per-class',
        '1', '--test-per-class', '1', '--duration', '1.0', '--fps', '8',
        '--size', '32', '--workers', '1']


def make(out, *options):
    return run_command([
        sys.executable, 'tools/data/make_demo_dataset.py', '--out',
        str(out), *TINY, *options
    ], cwd=REPO, timeout=300)


def test_writes_the_clips_and_lists_and_keeps_them_on_a_rerun(tmp_path):
    out = tmp_path / 'demo'
    printed = make(out, '--seed', '4')
    assert 'clips: train 4, val 2, test 2 (2 classes)' in printed
    assert 'Bayes accuracy: ' in printed
    for split, count in (('train', 4), ('val', 2), ('test', 2)):
        lines = (out / f'{split}_list.txt').read_text().splitlines()
        assert len(lines) == count
        assert all(osp.isfile(out / line.split()[0]) for line in lines)
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['seed'] == 4 and meta['counts']['train'] == 4

    before = {p: p.stat().st_mtime_ns for p in out.rglob('*.mp4')}
    make(out, '--seed', '4', '--skip-existing')
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*.mp4')} == before


def test_a_bad_override_is_a_usage_error(tmp_path):
    out = run_command([
        sys.executable, 'tools/data/make_demo_dataset.py', '--out',
        str(tmp_path / 'demo'), '--size', '48'
    ], cwd=REPO, returncode=2)
    assert 'multiple of 32' in out and 'Traceback' not in out
