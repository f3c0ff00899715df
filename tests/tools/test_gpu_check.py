"""tools/gpu_check/: the GPU path's check, run here on CPU end to end, and
its parts (the steps, scheduling, the report, the wheels from pip's
resolver, the install step) on their own.

The end-to-end test is the flow the GPU machine runs
(tools/gpu_check/README.md), with a few iterations, gloo instead of NCCL and
no --amp; it takes about 40 s on 2 free cores (most of it seven Python
processes starting)."""
import glob
import importlib
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOLDER = osp.join(REPO, 'tools', 'gpu_check')
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


@pytest.fixture(scope='module')
def gc():
    """The check's modules, imported as the package ``gpu_check`` (as its
    scripts import them)."""
    tools = osp.join(REPO, 'tools')
    sys.path.append(tools)
    try:
        return SimpleNamespace(**{
            name: importlib.import_module(f'gpu_check.{name}') for name in (
                'check', 'schedule', 'steps', 'facts', 'report', 'wheels',
                'travel')})
    finally:
        sys.path.remove(tools)


@pytest.mark.slow
def test_cpu_check_end_to_end(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    proc = subprocess.run(
        ['bash', osp.join(FOLDER, 'run.sh'), '--device', 'cpu',
         '--out-dir', str(out), '--work-dir', str(work)],
        cwd=str(tmp_path), env=child_env(), capture_output=True, text=True,
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


def test_no_path_of_the_machine_it_was_written_on():
    """Paths come from the repository, the temporary folder or options."""
    machine = re.compile(r'/work/|/opt/|/root\b|/tmp/bash_jobs|/home/')
    for path in sorted(glob.glob(osp.join(FOLDER, '*'))):
        if not osp.isfile(path):
            continue
        with open(path, encoding='utf-8') as f:
            found = machine.findall(f.read())
        assert not found, (path, found)


# the steps -------------------------------------------------------------------


def plan(gc, tmp_path, device='cuda', *options, nproc=2):
    args = gc.check.parse_args(['--device', device, '--work-dir',
                                str(tmp_path), *options])
    not_run = []
    return gc.steps.Plan(args, str(tmp_path), lambda: nproc, not_run), \
        not_run


def test_the_cuda_plan(gc, tmp_path):
    p, not_run = plan(gc, tmp_path, 'cuda')
    early = {s.name: s for s in p.early_steps()}
    assert list(early) == ['install', 'environment', 'data']
    assert '--site' in early['install'].command
    main = {s.name: s for s in p.main_steps()}
    assert set(main) == {'train-ogm-ge-amp', 'train-naive', 'train-gblend',
                         'train-opm', 'bench', 'test', 'resume'}
    assert main['test'].after == ['train-naive']
    assert main['resume'].after == ['train-ogm-ge-amp']
    assert main['bench'].exclusive
    naive = main['train-naive']
    assert naive.command[:2] == ['bash', osp.join(REPO, 'tools',
                                                  'dist_train.sh')]
    assert naive.command[3] == '2'  # every GPU
    checks = dict(naive.expect)
    assert checks['NCCL, not gloo'] and checks['world size 2']
    assert '--amp' in main['resume'].command
    assert 'finished an epoch' not in dict(main['resume'].expect)
    assert main['resume'].fresh_dirs == []  # it resumes that folder
    assert not_run == []


def test_the_cpu_plan_records_what_it_leaves_out(gc, tmp_path):
    p, not_run = plan(gc, tmp_path, 'cpu', nproc=1)
    assert [s.name for s in p.early_steps()] == ['environment', 'data']
    main = {s.name: s for s in p.main_steps()}
    assert 'train-ogm-ge' in main and not main['bench'].exclusive
    assert 'gloo on CPU' in dict(main['train-naive'].expect)
    # OGM-GE, OPM and the resume in one process, for time
    assert main['train-opm'].command[1].endswith(osp.join('tools',
                                                          'train.py'))
    assert '--amp' not in main['train-ogm-ge'].command
    assert [n['step'] for n in not_run] == ['install', 'OGM-GE with --amp']


# scheduling ------------------------------------------------------------------


def fake_step(gc, name, code, after=(), **kwargs):
    return gc.steps.Step(name, f'fake {name}', [sys.executable, '-c', code],
                         after=after, timeout=kwargs.pop('timeout', 30),
                         **kwargs)


@pytest.mark.slow
def test_a_failing_step_stops_only_what_needs_it(gc, tmp_path, monkeypatch):
    args = gc.check.parse_args(['--device', 'cpu', '--out-dir',
                                str(tmp_path / 'out'), '--work-dir',
                                str(tmp_path / 'work'), '--jobs', '2'])
    check = gc.schedule.Check(args)
    steps = [
        fake_step(gc, 'a', "print('fine')", expect=[('said fine', 'fine')]),
        fake_step(gc, 'b', "import sys; print('boom'); sys.exit(3)"),
        fake_step(gc, 'c', "print('x')", after=['b']),
        fake_step(gc, 'd', "print('y')", after=['a'],
                  expect=[('said z', 'z')]),
        fake_step(gc, 'e', 'import time; time.sleep(30)', timeout=1),
        fake_step(gc, 'f', "print('alone')", exclusive=True),
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
def test_the_budget_skips_what_would_start_late(gc, tmp_path, monkeypatch):
    args = gc.check.parse_args(['--device', 'cpu', '--out-dir',
                                str(tmp_path), '--work-dir',
                                str(tmp_path / 'w'), '--budget', '2',
                                '--jobs', '1'])
    check = gc.schedule.Check(args)
    check.min_start_s = 0.5
    steps = [fake_step(gc, 'slow', 'import time; time.sleep(10)'),
             fake_step(gc, 'late', "print('never')")]
    monkeypatch.setattr(check, 'early_steps', lambda: [])
    monkeypatch.setattr(check, 'main_steps', lambda: steps)
    results = check.run()
    status = {r['name']: r['status'] for r in results['steps']}
    assert status == dict(slow='timeout', late='skipped')


def test_the_results_are_named_after_the_gpus(gc):
    env = dict(cuda=dict(devices=[dict(name='NVIDIA H200')] * 2))
    assert gc.schedule.device_slug(env, 'cuda') == 'cuda-2xNVIDIA-H200'
    assert gc.schedule.device_slug(env, 'cpu') == 'cpu'
    assert gc.schedule.device_slug(None, 'cuda') == 'cuda'


# the logs and the report -----------------------------------------------------


def test_training_facts(gc):
    log = ('No CUDA device: starting the process group with gloo instead '
           "of nccl.\n    dist_cfg: {'backend': 'nccl'}\n"
           '    Distributed training: True\n    GPU number: 2\n'
           'Epoch(train) [1][1/2]  lr: 1e-3  loss: 2.5  memory: 812\n'
           'Epoch(train) [1][2/2]  lr: 1e-3  loss: 2.25  memory: 900\n'
           'Epoch(val) [1][1/1]    acc/top1: 0.5000  acc/top5: 1.0\n')
    facts = gc.facts.training_facts(log)
    assert facts == dict(world_size=2, backend='gloo', cuda_available=False,
                         iterations=2, last_loss=2.25, val_top1=0.5,
                         cuda_memory_logged_mib=900)
    one = gc.facts.training_facts("dist_cfg: {'backend': 'nccl'}\n")
    assert one['backend'] is None  # one process: no process group
    nccl = gc.facts.training_facts("Distributed training: True\n"
                                   "dist_cfg: {'backend': 'nccl'}\n")
    assert nccl['backend'] == 'nccl'


def results(**changes) -> dict:
    """A small results dict as ``Check.results`` writes it."""
    steps = [dict(name='train-naive', status='passed', passed=True,
                  seconds=3.0, what='naive', error_tail=None,
                  facts=dict(cuda_memory_logged_mib=812)),
             dict(name='test', status='failed', passed=False, seconds=1.0,
                  what='test', failed_checks=['tested'],
                  error_tail='line\n' * 20 + 'Traceback: boom')]
    out = dict(device='cuda', started='2026-12-07T10:00:00+00:00',
               passed=False, steps=steps, wall_s=9.5, budget_s=300, jobs=3,
               world_size=1, not_run=[], results_file='/x/gpu_check_a.json',
               settings=dict(work_dir='work'),
               environment=dict(python='3.12.3', versions=dict(
                   torch='2.11.0'), cuda=dict(devices=[dict(name='H200')])),
               benchmarks=dict(
                   figures=[dict(name='ogm-ge step / naive step',
                                 ratio=dict(median=1.01, min=1.0, max=1.2),
                                 target=1.03, met=True)],
                   cuda_peak_mib=dict(naive=dict(step=100.0, run=None))))
    out.update(changes)
    return out


def test_the_report_has_a_section_per_finding(gc):
    text = gc.report.render_markdown(results())
    assert '**FAILED**: 1 of 2 steps passed' in text
    assert 'GPUs H200; Python 3.12.3, torch 2.11.0' in text
    assert '| test | failed | 1.0 | test | tested |' in text
    assert '| ogm-ge step / naive step | 1.010 | 1.000–1.200 | ≤ 1.03 | met' \
        in text
    assert '| naive | 100 | – |' in text
    assert 'during the check\'s trainings (MiB): train-naive 812.' in text
    errors = text.split('## Errors')[1]
    assert 'Traceback: boom' in errors and errors.count('line') == 14
    assert 'CPU smoke run' not in text and '## Not run' not in text
    assert text.rstrip().endswith('(`work/logs`).')


def test_the_report_leaves_out_what_it_does_not_have(gc):
    passed = [dict(name='data', status='passed', passed=True, seconds=1.0,
                   what='data', error_tail=None)]
    text = gc.report.render_markdown(results(
        device='cpu', passed=True, steps=passed, environment=None,
        benchmarks=None, not_run=[dict(step='install', reason='cpu')]))
    assert '**PASSED**: 1 of 1 steps' in text and 'GPUs none' in text
    assert '## Ratios' not in text and '## Errors' not in text
    assert '## Peak CUDA memory' not in text
    assert '## Not run on this device\n\n- install: cpu' in text


# the wheels ------------------------------------------------------------------


def requirement_files(folder, runtime, constraints, machine=''):
    for name, text in (('runtime.txt', runtime),
                       ('constraints.txt', constraints),
                       ('machine.txt', machine)):
        (folder / name).write_text(text)
    return dict(runtime=str(folder / 'runtime.txt'),
                constraints=str(folder / 'constraints.txt'),
                machine_packages=str(folder / 'machine.txt'))


def test_the_download_command(gc, tmp_path):
    cmd = gc.wheels.download_command('py', 'rt.txt', 'c.txt', 'links',
                                     'dest', ['--no-index'])
    assert cmd[:5] == ['py', '-m', 'pip', 'download', '--only-binary=:all:']
    assert cmd[cmd.index('--python-version') + 1] == '3.12'
    assert cmd[cmd.index('--implementation') + 1] == 'cp'
    platforms = {cmd[i + 1] for i, a in enumerate(cmd) if a == '--platform'}
    assert {'manylinux2014_x86_64', 'manylinux_2_28_x86_64',
            'manylinux_2_39_x86_64', 'manylinux1_x86_64'} <= platforms
    constraints = [cmd[i + 1] for i, a in enumerate(cmd) if a == '-c']
    assert constraints == ['c.txt', osp.join('links', 'stand-ins.txt')]
    assert cmd[cmd.index('-r') + 1] == 'rt.txt'
    assert cmd[cmd.index('--find-links') + 1] == 'links'
    assert cmd[cmd.index('-d') + 1] == 'dest' and cmd[-1] == '--no-index'


def test_stand_ins_only_for_pinned_packages(gc, tmp_path):
    made = gc.wheels.write_stand_ins(str(tmp_path), ['torch', 'numpy'],
                                     dict(torch='2.13.0', addict='2.4'))
    assert made == {'torch-2.13.0+gpumachine-py3-none-any.whl': 'torch'}
    name, version, requires = gc.wheels.wheel_metadata(
        str(tmp_path / 'torch-2.13.0+gpumachine-py3-none-any.whl'))
    assert (name, version, requires) == ('torch', '2.13.0+gpumachine', [])
    assert (tmp_path / 'stand-ins.txt').read_text() == \
        'torch==2.13.0+gpumachine\n'


def fake_pip(index, calls):
    """A pip that 'resolves' by copying the index's wheels (and the
    stand-ins pip would choose) into ``-d``."""

    def pip(cmd):
        calls.append(cmd)
        dest, links = cmd[cmd.index('-d') + 1], cmd[cmd.index(
            '--find-links') + 1]
        for folder in (index, links):
            for f in os.listdir(folder):
                if f.endswith('.whl'):
                    with open(osp.join(folder, f), 'rb') as src, open(
                            osp.join(dest, f), 'wb') as dst:
                        dst.write(src.read())
        return subprocess.CompletedProcess(cmd, 0, 'Saved', '')

    return pip


def test_resolve_sorts_what_pip_saved(gc, tmp_path):
    files = requirement_files(
        tmp_path, 'torch>=1.13\nmmfoo\n',
        'torch==2.13.0\nmmfoo==1.0\naddict==2.4\nnumpy==2.4.6\n',
        '# present\nnumpy\nrequests\n')
    index = tmp_path / 'index'
    index.mkdir()
    write = gc.wheels.write_wheel
    write(str(index), 'mmfoo', '1.0', ['addict', 'numpy', 'torch',
                                       'extra-x; extra == "tests"'])
    write(str(index), 'addict', '2.4')
    write(str(index), 'requests', '2.0')  # on the machine, not pinned
    write(str(index), 'loose', '0.3')  # pulled in, not pinned
    dest = tmp_path / 'whl'
    dest.mkdir()
    write(str(dest), 'stale', '0.1')
    calls = []
    manifest = gc.wheels.resolve(str(dest), 'py', pip=fake_pip(index, calls),
                                 log=lambda line: None, **files)
    assert len(calls) == 1 and calls[0][3] == 'download'
    assert {w['name']: w['version'] for w in manifest['wheels']} == dict(
        addict='2.4', mmfoo='1.0')
    assert set(manifest['skipped']) == {'torch', 'numpy', 'requests'}
    assert 'never' in manifest['skipped']['torch']['reason']
    assert manifest['skipped']['requests']['pinned_here'] is None
    assert manifest['errors'] == [
        'loose (pip chose 0.3) has no == pin in '
        f'{osp.relpath(files["constraints"], REPO)}']
    assert manifest['removed_stale'] == ['stale-0.1-py3-none-any.whl']
    assert sorted(os.listdir(dest)) == sorted(
        [w['file'] for w in manifest['wheels']] + ['MANIFEST.json'])
    assert manifest['total_bytes'] == sum(
        osp.getsize(dest / w['file']) for w in manifest['wheels'])


def test_a_marker_pip_evaluated_for_another_python_is_an_error(gc, tmp_path):
    index = tmp_path / 'index'
    index.mkdir()
    gc.wheels.write_wheel(str(index), 'mmfoo', '1.0', [
        'newdep; python_version >= "3.12"', 'winonly; sys_platform == '
        '"win32"'])
    files = requirement_files(tmp_path, 'mmfoo\n', 'mmfoo==1.0\n')
    manifest = gc.wheels.resolve(str(tmp_path / 'whl'), 'py',
                                 pip=fake_pip(index, []),
                                 log=lambda line: None, **files)
    assert len(manifest['errors']) == 1
    assert manifest['errors'][0].startswith(
        'newdep (required by mmfoo on Python 3.12) was not fetched')


def test_a_package_without_a_wheel_is_built_if_pure(gc, tmp_path):
    files = requirement_files(tmp_path, 'mmfoo\n', 'mmfoo==1.0\n')
    calls = []

    def pip(cmd):
        calls.append(cmd[3])
        if cmd[3] == 'wheel':
            gc.wheels.write_wheel(cmd[cmd.index('-w') + 1], 'mmfoo', '1.0')
            return subprocess.CompletedProcess(cmd, 0, '', '')
        links = cmd[cmd.index('--find-links') + 1]
        built = osp.join(links, 'mmfoo-1.0-py3-none-any.whl')
        if not osp.exists(built):
            return subprocess.CompletedProcess(
                cmd, 1, '', 'ERROR: No matching distribution found for '
                'mmfoo==1.0')
        os.link(built, osp.join(cmd[cmd.index('-d') + 1],
                                osp.basename(built)))
        return subprocess.CompletedProcess(cmd, 0, '', '')

    manifest = gc.wheels.resolve(str(tmp_path / 'whl'), 'py', pip=pip,
                                 log=lambda line: None, **files)
    assert calls == ['download', 'wheel', 'download']
    assert manifest['errors'] == []
    assert [w['file'] for w in manifest['wheels']] == [
        'mmfoo-1.0-py3-none-any.whl']


def test_a_failed_download_leaves_the_folder_alone(gc, tmp_path):
    files = requirement_files(tmp_path, 'mmfoo\n', '')
    dest = tmp_path / 'whl'
    dest.mkdir()
    gc.wheels.write_wheel(str(dest), 'kept', '1.0')

    def pip(cmd):
        return subprocess.CompletedProcess(
            cmd, 1, '', 'ERROR: No matching distribution found for mmfoo')

    manifest = gc.wheels.resolve(str(dest), 'py', pip=pip,
                                 log=lambda line: None, **files)
    assert manifest['errors'][0].startswith('pip download failed')
    assert manifest['wheels'] == [] and manifest['removed_stale'] == []
    assert (dest / 'kept-1.0-py3-none-any.whl').is_file()


@pytest.mark.slow
def test_pip_resolves_offline_around_the_stand_ins(gc, tmp_path,
                                                   monkeypatch):
    """Real pip over a local index: the stand-ins keep torch (whose fake
    here needs a package no index has) and numpy out, and the marker case
    is reported for the Python running pip."""
    for key in [k for k in os.environ if k.startswith('PIP_')]:
        monkeypatch.delenv(key)
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    index = tmp_path / 'index'
    index.mkdir()
    write = gc.wheels.write_wheel
    write(str(index), 'mmfoo', '1.0', [
        'torch>=1.3', 'numpy', 'addict',
        'newdep; python_version >= "3.12"'])
    for name, version in (('addict', '2.4'), ('newdep', '1.0'),
                          ('numpy', '2.4.6')):
        write(str(index), name, version)
    write(str(index), 'torch', '2.13.0', ['not-on-any-index'])
    files = requirement_files(
        tmp_path, 'torch>=1.13\nmmfoo\n', 'torch==2.13.0\nmmfoo==1.0\n'
        'addict==2.4\nnumpy==2.4.6\nnewdep==1.0\n', 'numpy\n')
    manifest = gc.wheels.resolve(
        str(tmp_path / 'whl'), sys.executable,
        extra=['--no-index', '--find-links', str(index)],
        log=lambda line: None, **files)
    assert set(manifest['skipped']) == {'torch', 'numpy'}
    fetched = {w['name'] for w in manifest['wheels']}
    if sys.version_info >= (3, 12):
        assert fetched == {'mmfoo', 'addict', 'newdep'}
        assert manifest['errors'] == []
    else:  # pip evaluated the marker for this Python, not the machine's
        assert fetched == {'mmfoo', 'addict'}
        assert len(manifest['errors']) == 1
        assert 'newdep (required by mmfoo' in manifest['errors'][0]


def test_the_pinned_runtime_closure_is_complete(gc):
    """Every runtime requirement has a pin, torch is never fetched, and
    what the machine has is never carried."""
    w = gc.wheels
    pins = w.read_pins()
    roots = [w.canonical(re.split(r'[<>=!~;\s\[]', line)[0])
             for line in w.requirement_lines(w.RUNTIME)]
    assert 'torch' in roots
    assert all(name in pins for name in roots)
    reasons = w.left_out()
    assert 'never' in reasons['torch'] and 'numpy' in reasons
    assert 'mmengine' not in reasons


@pytest.mark.slow
def test_the_wheel_folder_is_ignored_and_the_tree_is_measured(gc):
    assert gc.travel.is_ignored(osp.join(REPO, '.whl', 'x.whl'))
    size, count = gc.travel.tree_bytes()
    assert count > 100 and 0 < size < gc.travel.TRAVEL_LIMIT


# the install step ------------------------------------------------------------


@pytest.mark.slow
def test_install_refuses_torch_and_installs_the_rest(gc, tmp_path):
    folder = tmp_path / 'whl'
    folder.mkdir()
    gc.wheels.write_wheel(str(folder), 'torch', '2.11.0', pure=False)
    gc.wheels.write_wheel(str(folder), 'tinydep', '1.0',
                          files={'tinydep/__init__.py': ''})
    site = tmp_path / 'site'
    proc = subprocess.run(
        [sys.executable, osp.join(FOLDER, 'worker.py'), 'install',
         '--wheels', str(folder), '--site', str(site)],
        capture_output=True, text=True, timeout=300, env=child_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'refusing torch-2.11.0' in proc.stdout
    assert 'installed 1 wheels' in proc.stdout
    assert (site / 'tinydep' / '__init__.py').is_file()
    assert not (site / 'torch').exists()


@pytest.mark.slow
def test_install_without_wheels_says_how_to_get_them(tmp_path):
    proc = subprocess.run(
        [sys.executable, osp.join(FOLDER, 'worker.py'), 'install',
         '--wheels', str(tmp_path), '--site', str(tmp_path / 'site')],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert 'tools/gpu_check/run.sh --prepare' in proc.stdout
