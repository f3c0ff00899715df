"""tools/gpu_check.sh: the GPU path's check, run here on CPU end to end, and
its parts (scheduling, the wheel closure, the install step) on their own.

The end-to-end test is the flow the GPU machine runs (docs/gpu_check.md),
with a few iterations, gloo instead of NCCL and no --amp; it takes about
40 s on 2 free cores (most of it seven Python processes starting)."""
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

from helpers import load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STEPS = {'environment', 'data', 'train-naive', 'train-gblend',
         'train-ogm-ge', 'train-opm', 'test', 'resume', 'bench'}
FIGURES = {
    'multi-head step / (stock RGB step + stock audio step)',
    'our rgb-only recognizer / stock rgb recognizer',
    'our audio-only recognizer / stock audio recognizer',
    'ogm-ge step / naive step', 'ogm step / naive step',
    'opm step / naive step', 'gblend-trajectory epoch / naive epoch',
    'gblend-shadow epoch / naive epoch'}


def child_env() -> dict:
    env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1')
    env.setdefault('OMP_NUM_THREADS', '1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    return env


@pytest.mark.slow
def test_cpu_check_end_to_end(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'gpu_check.sh'), '--device', 'cpu',
         '--out-dir', str(out), '--work-dir', str(work)],
        cwd=REPO, env=child_env(), capture_output=True, text=True,
        timeout=600)
    files = glob.glob(str(out / 'gpu_check_cpu_*.json'))
    assert len(files) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(files[0]) as f:
        results = json.load(f)
    failed = {r['name']: r['error_tail'] for r in results['steps']
              if not r['passed']}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results['passed'] and results['device'] == 'cpu'
    assert {r['name'] for r in results['steps']} == STEPS
    assert results['world_size'] == 1
    by_name = {r['name']: r for r in results['steps']}
    for name in ('train-naive', 'train-gblend'):
        assert by_name[name]['facts']['backend'] == 'gloo'
        assert 'dist_train.sh' in by_name[name]['command']
    assert by_name['resume']['facts']['iterations'] > 0
    assert results['environment']['passed']
    # what CPU leaves out, and why
    not_run = {n['step']: n['reason'] for n in results['not_run']}
    assert 'install' in not_run and 'AmpOptimWrapper' in not_run[
        'OGM-GE with --amp']
    bench = results['benchmarks']
    assert not bench['errors']
    figures = {f['name']: f for f in bench['figures']}
    assert set(figures) == FIGURES
    for fig in figures.values():
        for key in ('median', 'min', 'max'):
            value = fig['ratio'][key]
            assert math.isfinite(value) and value > 0, (fig['name'], value)
    summary = files[0][:-len('.json')] + '.md'
    assert osp.isfile(summary)
    with open(summary) as f:
        text = f.read()
    assert '**PASSED**' in text and 'gblend-shadow epoch' in text


# the parts -------------------------------------------------------------------


@pytest.fixture(scope='module')
def gpu_check():
    return load_script(osp.join(REPO, 'tools', 'gpu_check.py'))


def fake_step(module, name, code, after=(), **kwargs):
    return module.Step(name, f'fake {name}', [sys.executable, '-c', code],
                       after=after, timeout=kwargs.pop('timeout', 30),
                       **kwargs)


@pytest.mark.slow
def test_a_failing_step_stops_only_what_needs_it(gpu_check, tmp_path,
                                                 monkeypatch):
    args = gpu_check.parse_args(['--device', 'cpu', '--out-dir',
                                 str(tmp_path / 'out'), '--work-dir',
                                 str(tmp_path / 'work'), '--jobs', '2'])
    check = gpu_check.Check(args)
    steps = [
        fake_step(gpu_check, 'a', "print('fine')",
                  expect=[('said fine', 'fine')]),
        fake_step(gpu_check, 'b', "import sys; print('boom'); sys.exit(3)"),
        fake_step(gpu_check, 'c', "print('x')", after=['b']),
        fake_step(gpu_check, 'd', "print('y')", after=['a'],
                  expect=[('said z', 'z')]),
        fake_step(gpu_check, 'e', 'import time; time.sleep(30)',
                  timeout=1),
        fake_step(gpu_check, 'f', "print('alone')", exclusive=True),
    ]
    monkeypatch.setattr(check, 'early_steps', lambda: [])
    monkeypatch.setattr(check, 'main_steps', lambda: steps)
    results = check.run()
    status = {r['name']: r['status'] for r in results['steps']}
    assert status == dict(a='passed', b='failed', c='skipped', d='failed',
                          e='timeout', f='passed')
    by_name = {r['name']: r for r in results['steps']}
    assert 'boom' in by_name['b']['error_tail']
    assert by_name['d']['failed_checks'] == ['said z']
    assert 'needs b' in by_name['c']['error_tail']
    assert list(status)[-1] == 'f'  # the exclusive step ran last, alone
    assert not results['passed']
    with open(results['results_file']) as f:
        assert json.load(f)['steps'] == results['steps']
    assert osp.isfile(results['summary_file'])


@pytest.mark.slow
def test_the_budget_skips_what_would_start_late(gpu_check, tmp_path,
                                                monkeypatch):
    args = gpu_check.parse_args(['--device', 'cpu', '--out-dir',
                                 str(tmp_path), '--work-dir',
                                 str(tmp_path / 'w'), '--budget', '2',
                                 '--jobs', '1'])
    check = gpu_check.Check(args)
    check.min_start_s = 0.5
    steps = [fake_step(gpu_check, 'slow', 'import time; time.sleep(10)'),
             fake_step(gpu_check, 'late', "print('never')")]
    monkeypatch.setattr(check, 'early_steps', lambda: [])
    monkeypatch.setattr(check, 'main_steps', lambda: steps)
    results = check.run()
    status = {r['name']: r['status'] for r in results['steps']}
    assert status == dict(slow='timeout', late='skipped')


def test_training_facts(gpu_check):
    log = ('No CUDA device: starting the process group with gloo instead '
           "of nccl.\n    dist_cfg: {'backend': 'nccl'}\n"
           '    Distributed training: True\n    GPU number: 2\n'
           'Epoch(train) [1][1/2]  lr: 1e-3  loss: 2.5  memory: 812\n'
           'Epoch(train) [1][2/2]  lr: 1e-3  loss: 2.25  memory: 900\n'
           'Epoch(val) [1][1/1]    acc/top1: 0.5000  acc/top5: 1.0\n')
    facts = gpu_check.training_facts(log)
    assert facts == dict(world_size=2, backend='gloo', cuda_available=False,
                         iterations=2, last_loss=2.25, val_top1=0.5,
                         cuda_memory_logged_mib=900)
    one = gpu_check.training_facts("dist_cfg: {'backend': 'nccl'}\n")
    assert one['backend'] is None  # one process: no process group


# the wheels ------------------------------------------------------------------


@pytest.fixture(scope='module')
def wheels():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import gpu_check_wheels
    finally:
        sys.path.pop(0)
    return gpu_check_wheels


def make_wheel(folder, name, version, requires=(), pure=True):
    """A minimal wheel with the given Requires-Dist."""
    dist = f'{name.replace("-", "_")}-{version}'
    tag = 'py3-none-any' if pure else 'cp312-cp312-manylinux_2_28_x86_64'
    path = osp.join(folder, f'{dist}-{tag}.whl')
    meta = [f'Metadata-Version: 2.1', f'Name: {name}',
            f'Version: {version}'] + [f'Requires-Dist: {r}'
                                      for r in requires]
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr(f'{dist}.dist-info/METADATA', '\n'.join(meta) + '\n')
        zf.writestr(f'{dist}.dist-info/WHEEL',
                    f'Wheel-Version: 1.0\nRoot-Is-Purelib: '
                    f'{str(pure).lower()}\nTag: {tag}\n')
        zf.writestr(f'{dist}.dist-info/RECORD', '')
        zf.writestr(f'{name.replace("-", "_")}/__init__.py', '')
    return path


def test_the_closure_leaves_out_torch_and_what_the_machine_has(
        wheels, tmp_path):
    (tmp_path / 'runtime.txt').write_text(
        '# roots\ntorch>=1.13\nmmfoo>=1\nlibbar\n')
    (tmp_path / 'constraints.txt').write_text(
        'torch==2.13.0\nmmfoo==1.0\nlibbar==0.5\naddict==2.4\n'
        'numpy==2.4.6\nstd-aifc==1.0\nTyping_Ext==4.0\n')
    (tmp_path / 'machine.txt').write_text('# present\nnumpy\ntyping-ext\n')
    index = {
        'mmfoo': ['addict', 'numpy>=1', 'opencv-python>=3',
                  'std_aifc; python_version >= "3.13"',
                  'pytest; extra == "tests"'],
        'libbar': ['addict', 'Typing_Ext>=4'],
        'addict': [],
    }
    fetched = []

    def fetch(name, version, dest, python):
        fetched.append(name)
        os.makedirs(dest, exist_ok=True)
        return make_wheel(dest, name, version, index[name]), 'downloaded'

    dest = tmp_path / 'whl'
    dest.mkdir()
    make_wheel(str(dest), 'stale', '0.1')  # an old wheel is removed
    manifest = wheels.resolve(
        str(dest), runtime=str(tmp_path / 'runtime.txt'),
        constraints=str(tmp_path / 'constraints.txt'),
        machine_packages=str(tmp_path / 'machine.txt'), fetch=fetch,
        log=lambda line: None)
    assert sorted(fetched) == ['addict', 'libbar', 'mmfoo']
    assert {w['name']: w['version'] for w in manifest['wheels']} == dict(
        addict='2.4', libbar='0.5', mmfoo='1.0')
    assert set(manifest['skipped']) == {'torch', 'numpy', 'opencv-python',
                                        'typing-ext'}
    assert 'never' in manifest['skipped']['torch']['reason']
    assert manifest['skipped']['typing-ext']['needed_by'] == ['libbar==0.5']
    assert sorted(manifest['wheels'][0]['needed_by']) == [
        'libbar==0.5', 'mmfoo==1.0']
    assert manifest['removed_stale'] == ['stale-0.1-py3-none-any.whl']
    assert manifest['errors'] == []
    assert sorted(os.listdir(dest)) == sorted(
        [w['file'] for w in manifest['wheels']] + ['MANIFEST.json'])
    assert manifest['total_bytes'] == sum(
        osp.getsize(dest / w['file']) for w in manifest['wheels'])


def test_an_unpinned_dependency_is_an_error(wheels, tmp_path):
    (tmp_path / 'runtime.txt').write_text('mmfoo\n')
    (tmp_path / 'constraints.txt').write_text('mmfoo==1.0\n')
    (tmp_path / 'machine.txt').write_text('')

    def fetch(name, version, dest, python):
        os.makedirs(dest, exist_ok=True)
        return make_wheel(dest, name, version, ['loose']), 'downloaded'

    manifest = wheels.resolve(
        str(tmp_path / 'whl'), runtime=str(tmp_path / 'runtime.txt'),
        constraints=str(tmp_path / 'constraints.txt'),
        machine_packages=str(tmp_path / 'machine.txt'), fetch=fetch,
        log=lambda line: None)
    assert manifest['errors'] == [
        'loose (needed by mmfoo==1.0) has no == pin in '
        f'{osp.relpath(str(tmp_path / "constraints.txt"), REPO)}']


def test_the_pinned_runtime_closure_is_complete(wheels):
    """Every runtime requirement has a pin, and torch is never fetched."""
    pins = wheels.read_pins()
    roots = wheels.wanted_requirements(
        wheels.requirement_lines(wheels.RUNTIME))
    assert 'torch' in roots
    assert all(name in pins for name in roots)
    assert 'torch' in wheels.ALWAYS_SKIP
    assert 'numpy' in wheels.read_machine_packages()
    args = wheels.download_args('decord', '0.6.0', '/tmp/x')
    assert args[args.index('--python-version') + 1] == '3.12'
    assert 'manylinux2010_x86_64' in args and 'manylinux_2_28_x86_64' in args


@pytest.mark.slow
def test_the_wheel_folder_is_ignored_and_the_tree_is_measured(wheels):
    assert wheels.is_ignored(osp.join(REPO, '.whl', 'x.whl'))
    size, count = wheels.tree_bytes()
    assert count > 100 and 0 < size < wheels.TRAVEL_LIMIT


@pytest.mark.slow
def test_install_refuses_torch_and_installs_the_rest(tmp_path):
    folder = tmp_path / 'whl'
    folder.mkdir()
    make_wheel(str(folder), 'torch', '2.11.0', pure=False)
    make_wheel(str(folder), 'tinydep', '1.0')
    site = tmp_path / 'site'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'gpu_check_worker.py'),
         'install', '--wheels', str(folder), '--site', str(site)],
        capture_output=True, text=True, timeout=300, env=child_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'refusing torch-2.11.0' in proc.stdout
    assert 'installed 1 wheels' in proc.stdout
    assert (site / 'tinydep' / '__init__.py').is_file()
    assert not (site / 'torch').exists()


@pytest.mark.slow
def test_install_without_wheels_says_how_to_get_them(tmp_path):
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'gpu_check_worker.py'),
         'install', '--wheels', str(tmp_path), '--site',
         str(tmp_path / 'site')], capture_output=True, text=True,
        timeout=60)
    assert proc.returncode == 1
    assert 'tools/gpu_check.sh --prepare' in proc.stdout
