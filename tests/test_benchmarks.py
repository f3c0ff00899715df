"""The benchmark scripts run (``--quick``: tiny sizes, one repetition) and
write what ``run_all.py`` renders. Their numbers are not checked here: speed
targets are measured by ``benchmarks/run_all.py`` on a quiet machine."""
import json
import math
import os.path as osp
import sys

import pytest

from helpers import run_command

pytestmark = pytest.mark.slow  # the benchmarks, in their own processes

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH = osp.join(REPO, 'benchmarks')


def run_script(name, tmp_path, *extra):
    out = tmp_path / 'results' / f'{name}.json'
    out.parent.mkdir(exist_ok=True)
    run_command([sys.executable, osp.join(BENCH, f'{name}.py'), '--quick',
                 '--work-dir', str(tmp_path / 'work'), '--out', str(out),
                 *extra], cwd=REPO)
    return json.load(open(out))


def check_figures(result, names):
    figures = {f['name']: f for f in result['figures']}
    assert set(names) <= set(figures)
    for name in names:
        fig = figures[name]
        ratio = fig['numerator']['median'] / fig['denominator']['median']
        assert math.isfinite(ratio) and ratio > 0
        assert fig['ratio']['median'] == fig['ratio']['values'][0]
        assert fig['met'] == (fig['ratio']['median'] <= fig['target']) \
            or fig['target'] is None


def test_step_benchmarks_run_and_render(tmp_path):
    train_step = run_script('train_step', tmp_path)
    check_figures(train_step,
                  ['multi-head step / (stock RGB step + stock audio step)'])
    overhead = run_script('strategy_overhead', tmp_path, '--parts', 'steps')
    check_figures(overhead,
                  ['ogm-ge step / naive step', 'opm step / naive step'])
    results = tmp_path / 'RESULTS.md'
    sys.path.insert(0, BENCH)
    try:
        from _common import machine_description
    finally:
        sys.path.remove(BENCH)
    json.dump(machine_description(),
              open(tmp_path / 'results' / 'machine.json', 'w'))
    run_command([sys.executable, osp.join(BENCH, 'run_all.py'),
                 '--render-only', '--quick', '--scripts', 'train_step',
                 'strategy_overhead', '--json-dir',
                 str(tmp_path / 'results'), '--results', str(results)],
                cwd=REPO)
    text = results.read_text()
    assert 'QUICK SMOKE RUN' in text
    for name in ('multi-head step / (stock RGB step + stock audio step)',
                 'ogm-ge step / naive step', 'opm step / naive step'):
        assert name in text
