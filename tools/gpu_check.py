"""The GPU path in one command, in minutes: install, train, test, resume,
measure; one results JSON and a markdown summary.

    tools/gpu_check.sh                    # on a machine with CUDA GPUs
    tools/gpu_check.sh --device cpu       # the same flow on CPU, tiny
    tools/gpu_check.sh --prepare          # here: fetch the wheels into .whl/

Steps (``docs/gpu_check.md``), each a child process whose pass/fail, time,
CPU time, checks and error tail are recorded; a failing step stops only the
steps that need its output:

1. ``install``: the plugin's dependencies from the wheel folder (``--wheels``,
   default ``.whl/``) into ``--site`` with ``pip --no-index --no-deps
   --target``, on top of the machine's own torch (a torch wheel in the
   folder is refused, never installed). Not on ``--device cpu``.
2. ``environment``: versions and origins of every module, the GPUs, NCCL,
   the torch APIs the plugin relies on, a CUDA matmul, and a checkpoint
   round trip through the plugin's restricted loader; beside it ``data``, a
   small demo dataset (``tools/data/make_demo_dataset.py``).
3. ``train-naive``, ``train-gblend``, ``train-ogm-ge-amp``, ``train-opm``:
   the demo configs through ``tools/dist_train.sh`` on every GPU (NCCL),
   one short epoch each (G-Blend: two, its trajectory estimator needs a
   warm-up shorter than the run), OGM-GE with ``--amp``.
4. ``test``: ``tools/test.py`` on the naive-fusion checkpoint.
5. ``resume``: the OGM-GE run resumed from its first checkpoint for a
   second epoch.
6. ``bench``: the benchmarks' step ratios (``benchmarks/train_step.py``,
   ``benchmarks/strategy_overhead.py``), their epoch ratios, and each
   strategy's peak CUDA memory (``torch.cuda.max_memory_allocated``), alone
   on the machine (``tools/gpu_check_worker.py bench``).

``--device cpu`` runs the same steps with a few iterations in the installed
environment: no install, gloo instead of NCCL for the two ``dist_train.sh``
trainings, OGM-GE, OPM and the resume in one process each, and no ``--amp``
(mmengine's AmpOptimWrapper refuses the CPU); the bench runs beside the
trainings, its numbers are a smoke test.

The JSON (``gpu_check_<device>_<date>.json`` in ``--out-dir``, default
``benchmarks/results``) is rewritten after every step, so a run stopped
early still leaves what it did. Only the standard library is imported
here: on the GPU machine nothing else is installed before step 1.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
from typing import Callable, Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
CONFIGS = dict(
    naive='configs/demo/naive-fusion_r3d18-rgb_r18-audio_demo-av.py',
    gblend='configs/demo/gblend-online_r3d18-rgb_r18-audio_demo-av.py',
    ogm='configs/demo/ogm-ge_r3d18-rgb_r18-audio_demo-av.py',
    opm='configs/demo/opm_r3d18-rgb_r18-audio_demo-av.py')
AMP_ON_CPU = ("mmengine 0.10.7's AmpOptimWrapper asserts a CUDA, "
              'NPU, MLU or MUSA device, so OGM-GE trains in full precision '
              '(its AMP wrapper is unit-tested on CPU with a CPU '
              'GradScaler: tests/engine/test_ogm_ge_optim_wrapper.py)')

#: Sizes per device. CUDA: expected (not yet measured) to take about 3 of
#: its 5 budgeted minutes on one H200; CPU: a few iterations, for the test.
PROFILES = {
    'cuda': dict(
        budget=300, jobs=3,
        data=dict(num_classes=8, train_per_class=8, val_per_class=2,
                  test_per_class=2),
        batch=8, workers=2, save_best=True, one_process_extras=False,
        bench_alone=True,
        timeouts=dict(install=90, environment=90, data=60, train=150,
                      test=90, resume=120, bench=150),
        bench=dict(repeats=3, steps=10, warmup=3, batch=16,
                   epoch_repeats=2, epoch_batch=8, epoch_workers=2,
                   epoch_warmup=1,
                   strategies='naive gblend-trajectory gblend-shadow '
                   'ogm-ge opm')),
    'cpu': dict(
        budget=240, jobs=2,
        data=dict(num_classes=2, train_per_class=4, val_per_class=1,
                  test_per_class=1),
        batch=4, workers=0, save_best=False, one_process_extras=True,
        bench_alone=False,
        timeouts=dict(install=60, environment=60, data=60, train=120,
                      test=60, resume=120, bench=120),
        bench=dict(repeats=1, steps=1, warmup=1, batch=2, epoch_repeats=1,
                   epoch_batch=4, epoch_workers=0, epoch_warmup=0,
                   strategies='naive gblend-trajectory gblend-shadow')),
}


class Step:
    """One child process of the check.

    Args:
        name: Its key in the results.
        what: One line on what it verifies.
        command: The command (a list).
        after: Steps whose output it needs; it is skipped if one failed.
        timeout: Seconds before it is killed (the budget can cut it).
        expect: ``(description, regex)`` pairs its output must match.
        files: Paths that must exist afterwards.
        facts: ``facts(output) -> dict`` of what to record from its output.
        exclusive: Run alone (timings).
        env: Extra environment variables.
    """

    def __init__(self, name: str, what: str, command: List[str],
                 after=(), timeout: float = 120, expect=(), files=(),
                 facts: Optional[Callable[[str], dict]] = None,
                 exclusive: bool = False, env: Optional[dict] = None,
                 fresh_dirs=()) -> None:
        self.name, self.what, self.command = name, what, command
        self.after, self.timeout = list(after), timeout
        self.expect, self.files = list(expect), list(files)
        self.facts, self.exclusive = facts, exclusive
        self.env = dict(env or {})
        self.fresh_dirs = list(fresh_dirs)


# output parsing --------------------------------------------------------------


def tail(text: str, lines: int = 40) -> str:
    return '\n'.join(text.rstrip().splitlines()[-lines:])


def _last_float(pattern: str, text: str) -> Optional[float]:
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


def training_facts(output: str) -> dict:
    """What a Runner's log says about a training run."""
    memory = [int(m) for m in re.findall(r'\bmemory: (\d+)', output)]
    gpus = re.findall(r'GPU number: (\d+)', output)
    return dict(
        world_size=int(gpus[-1]) if gpus else None,
        backend=None if 'Distributed training: True' not in output else (
            'gloo' if 'starting the process group with gloo' in output
            else re.findall(r"dist_cfg: \{'backend': '(\w+)'", output
                            + "dist_cfg: {'backend': '?'")[0]),
        cuda_available='CUDA available: True' in output,
        iterations=len(re.findall(r'Epoch\(train\)\s+\[\d+\]\[\d+/\d+\]',
                                  output)),
        last_loss=_last_float(r'Epoch\(train\).*?\sloss: ([-\d.e+naif]+)',
                              output),
        val_top1=_last_float(r'Epoch\(val\).*?acc/top1: ([\d.]+)', output),
        # mmengine's LoggerHook: max_memory_allocated in MiB since the last
        # log line (reset after each), here every iteration
        cuda_memory_logged_mib=max(memory) if memory else None)


def test_facts(output: str) -> dict:
    return dict(
        test_top1=_last_float(r'Epoch\(test\).*?acc/top1: ([\d.]+)', output),
        test_fused_mean1=_last_float(r'Epoch\(test\).*?acc/mean1: ([\d.]+)',
                                     output))


# the check -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def device_slug(env: Optional[dict], device: str) -> str:
    """``cuda-1xNVIDIA-H200`` or ``cpu``, for file names."""
    if device != 'cuda' or not env or not env.get('cuda', {}).get('devices'):
        return device
    names = [d['name'] for d in env['cuda']['devices']]
    slug = re.sub(r'[^A-Za-z0-9]+', '-', names[0]).strip('-')
    return f'cuda-{len(names)}x{slug}'


class Check:
    """Runs the steps, writes the results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile = PROFILES[args.device]
        self.work = osp.abspath(args.work_dir)
        self.logs = osp.join(self.work, 'logs')
        os.makedirs(self.logs, exist_ok=True)
        self.started = datetime.datetime.now().astimezone()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget
        self.records: List[dict] = []
        self.not_run: List[dict] = []
        self.environment: Optional[dict] = None
        self.benchmarks: Optional[dict] = None
        self.stem = None
        self.env = self._child_env()
        #: a step is not started with less of the budget left
        self.min_start_s = 5.0

    # environment of the children

    def _child_env(self) -> Dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHON=self.args.python)
        paths = [REPO]
        if self.args.device == 'cuda' and not self.args.no_install:
            paths.insert(0, osp.abspath(self.args.site))
        if env.get('PYTHONPATH'):
            paths.append(env['PYTHONPATH'])
        env['PYTHONPATH'] = os.pathsep.join(paths)
        env.setdefault('OMP_NUM_THREADS', '1')
        env.setdefault('MKL_NUM_THREADS', env['OMP_NUM_THREADS'])
        if self.args.device == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''  # gloo, CPU tensors
        return env

    def nproc(self) -> int:
        if self.args.device == 'cpu':
            return 1
        if self.args.gpus:
            return self.args.gpus
        gpus = (self.environment or {}).get('cuda', {}).get('devices')
        return max(1, len(gpus or []))

    # the steps

    def data_root(self) -> str:
        return osp.join(self.work, 'data')

    def loader_options(self, dataset_key: str) -> List[str]:
        """``--cfg-options`` that point a demo config at the check's data,
        with small batches, few workers, one epoch and a log line per
        iteration."""
        root, p = self.data_root(), self.profile
        opts = []
        for split, key in (('train', dataset_key), ('val', 'dataset'),
                           ('test', 'dataset')):
            loader = f'{split}_dataloader'
            opts += [f'{loader}.{key}.ann_file={root}/{split}_list.txt',
                     f'{loader}.{key}.data_prefix.video={root}',
                     f'{loader}.batch_size={p["batch"]}',
                     f'{loader}.num_workers={p["workers"]}',
                     f'{loader}.persistent_workers={p["workers"] > 0}']
        return opts + ['train_cfg.max_epochs=1',
                       'default_hooks.logger.interval=1']

    def train_step(self, name: str, config: str, what: str,
                   extra_opts=(), flags=(), after=(), expect=(),
                   files=(), work=None, fresh=True,
                   distributed: bool = True) -> Step:
        """A training through ``tools/dist_train.sh`` on every GPU (gloo on
        CPU), or through ``tools/train.py`` in one process where the profile
        keeps only the first trainings distributed (CPU, for time)."""
        key = 'dataset.dataset' if config == 'gblend' else 'dataset'
        work = work or osp.join(self.work, 'runs', name)
        distributed = distributed or not self.profile['one_process_extras']
        config_path = osp.join(REPO, CONFIGS[config])
        if distributed:
            cmd = ['bash', osp.join(TOOLS, 'dist_train.sh'), config_path,
                   str(self.nproc())]
        else:
            cmd = [self.args.python, osp.join(TOOLS, 'train.py'),
                   config_path]
        opts = self.loader_options(key) + list(extra_opts)
        if not self.profile['save_best']:
            opts.append('default_hooks.checkpoint.save_best=None')
        cmd += ['--work-dir', work] + list(flags) + ['--cfg-options'] + opts
        expect = [('finished an epoch', r'Epoch\(train\)\s+\[1\]'),
                  ('validated', r'Epoch\(val\).*acc/top1')] + list(expect)
        if distributed:
            expect += [('distributed launch', r'Distributed training: True'),
                       (f'world size {self.nproc()}',
                        rf'GPU number: {self.nproc()}\b')]
            if self.args.device == 'cuda':
                expect.append(('NCCL, not gloo',
                               r"dist_cfg: \{'backend': 'nccl'\}"))
                expect.append(('no gloo fallback', r'^(?![\s\S]*starting '
                               r'the process group with gloo)'))
            else:
                expect.append(('gloo on CPU', 'starting the process group '
                               'with gloo'))
        if self.args.device == 'cuda':
            expect.append(('on CUDA', r'CUDA available: True'))
        return Step(name, what + ('' if distributed else ' (one process)'),
                    cmd, after=after,
                    timeout=self.profile['timeouts']['train'],
                    expect=expect,
                    files=[osp.join(work, 'epoch_1.pth')] + list(files),
                    facts=training_facts, env=dict(PORT=str(free_port())),
                    fresh_dirs=[work] if fresh else [])

    def early_steps(self) -> List[Step]:
        """``install``, then ``environment`` (which tells the GPU count) and
        ``data``."""
        py, a, p = self.args.python, self.args, self.profile
        t = p['timeouts']
        steps = []
        env_json = osp.join(self.work, 'environment.json')
        if a.device == 'cuda' and not a.no_install:
            steps.append(Step(
                'install', f'wheels from {a.wheels} into {a.site} (pip '
                '--no-index --no-deps --target), the machine\'s torch kept',
                [py, osp.join(TOOLS, 'gpu_check_worker.py'), 'install',
                 '--wheels', osp.abspath(a.wheels), '--site',
                 osp.abspath(a.site)], timeout=t['install'],
                expect=[('installed', r'installed \d+ wheels')]))
        else:
            self.not_run.append(dict(
                step='install', reason='--device cpu uses the installed '
                'environment' if a.device == 'cpu' else '--no-install'))
        steps.append(Step(
            'environment', 'imports, versions, GPUs, NCCL, the torch APIs '
            'the plugin uses, a CUDA matmul, a checkpoint round trip',
            [py, osp.join(TOOLS, 'gpu_check_worker.py'), 'environment',
             '--device', a.device, '--out', env_json, '--site',
             osp.abspath(a.site)],
            timeout=t['environment'], files=[env_json]))
        steps.append(Step(
            'data', 'a small demo dataset (H.264/AAC clips, PyAV)',
            [py, osp.join(TOOLS, 'data', 'make_demo_dataset.py'), '--out',
             self.data_root(), '--seed', '0', '--workers',
             str(min(8, max(1, (os.cpu_count() or 2) // 2)))] + [
                 f'--{k.replace("_", "-")}={v}'
                 for k, v in p['data'].items()],
            timeout=t['data'],
            files=[osp.join(self.data_root(), 'train_list.txt')],
            fresh_dirs=[self.data_root()]))
        return steps

    def main_steps(self) -> List[Step]:
        """Trainings, test, resume and the benchmarks; those the others
        wait for first."""
        py, a, p = self.args.python, self.args, self.profile
        t = p['timeouts']
        steps = []
        data = ['data']
        runs = osp.join(self.work, 'runs')
        amp = a.device == 'cuda'
        ogm = 'train-ogm-ge-amp' if amp else 'train-ogm-ge'
        ogm_expect = [('OGM-GE modulated', r'Modulation, epoch 1: .*ogm_k')]
        if amp:
            ogm_expect.append(('the AMP OGM-GE wrapper',
                               r"type='AmpOGMGEOptimWrapper'"))
        else:
            self.not_run.append(dict(step='OGM-GE with --amp',
                                     reason=AMP_ON_CPU))
        steps.append(self.train_step(
            ogm, 'ogm', 'OGM-GE' + (' with --amp (fp16 autocast, dynamic '
                                    'loss scale)' if amp else ''),
            flags=['--amp'] if amp else [], after=data, expect=ogm_expect,
            distributed=False))
        steps.append(self.train_step(
            'train-naive', 'naive', 'naive fusion, one epoch, DDP',
            after=data))
        steps.append(self.train_step(
            'train-gblend', 'gblend', 'online G-Blend (trajectory), two '
            'epochs: warm-up 1, then one estimate, DDP',
            extra_opts=['train_cfg.max_epochs=2',
                        'custom_hooks.0.warmup_epochs=1',
                        'custom_hooks.0.super_epochs=1'],
            after=data, expect=[('estimated blend weights',
                                 r'G-Blend estimate at epoch 1 ')],
            files=[osp.join(runs, 'train-gblend', 'gblend_history.jsonl')]))
        steps.append(self.train_step(
            'train-opm', 'opm', 'OPM from the first epoch',
            extra_opts=['model.opm.start_epoch=0'], after=data,
            expect=[('OPM modulated', r'Modulation, epoch 1: .*opm_q')],
            distributed=False))
        b = p['bench']
        bench_json = osp.join(self.work, 'bench.json')
        steps.append(Step(
            'bench', "the benchmarks' step and strategy-overhead ratios, "
            'peak CUDA memory per strategy',
            [py, osp.join(TOOLS, 'gpu_check_worker.py'), 'bench', '--out',
             bench_json, '--data-root', self.data_root(), '--work-dir',
             osp.join(self.work, 'bench')] + [
                 f'--{k.replace("_", "-")}={v}' for k, v in b.items()
                 if k != 'strategies'] + [
                     '--strategies'] + b['strategies'].split(),
            after=data, timeout=t['bench'], exclusive=p['bench_alone'],
            files=[bench_json], fresh_dirs=[osp.join(self.work, 'bench')]))
        checkpoint = osp.join(runs, 'train-naive', 'epoch_1.pth')
        steps.append(Step(
            'test', 'tools/test.py on the naive-fusion checkpoint',
            [py, osp.join(TOOLS, 'test.py'),
             osp.join(REPO, CONFIGS['naive']), checkpoint, '--work-dir',
             osp.join(runs, 'test')] + ['--cfg-options'] +
            self.loader_options('dataset'),
            after=['train-naive'], timeout=t['test'],
            expect=[('tested', r'Epoch\(test\).*acc/top1'),
                    ('loaded the checkpoint',
                     'Load checkpoint from ' + re.escape(checkpoint))],
            facts=test_facts, fresh_dirs=[osp.join(runs, 'test')]))
        resume = self.train_step(
            'resume', 'ogm', f'the {ogm} run resumed from epoch_1.pth for '
            'a second epoch', flags=(['--amp'] if amp else []) + [
                '--resume', osp.join(runs, ogm, 'epoch_1.pth')],
            extra_opts=['train_cfg.max_epochs=2'], after=[ogm],
            work=osp.join(runs, ogm), fresh=False, distributed=False,
            expect=[('resumed at epoch 1', r'resumed epoch: 1, iter'),
                    ('trained epoch 2', r'Epoch\(train\)\s+\[2\]'),
                    ('OGM-GE modulated epoch 2',
                     r'Modulation, epoch 2: .*ogm_k'),
                    ('did not retrain epoch 1',
                     r'^(?![\s\S]*Epoch\(train\)\s+\[1\])')],
            files=[osp.join(runs, ogm, 'epoch_2.pth')])
        resume.timeout = t['resume']
        # the first epoch is not trained again
        resume.expect = [e for e in resume.expect
                         if e[0] != 'finished an epoch']
        steps.append(resume)
        return steps

    # running

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def start(self, step: Step):
        import shutil
        for folder in step.fresh_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        log = osp.join(self.logs, f'{step.name}.log')
        handle = open(log, 'w')
        handle.write('$ ' + shlex.join(step.command) + '\n')
        handle.flush()
        proc = subprocess.Popen(
            step.command, cwd=REPO, env=dict(self.env, **step.env),
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        timeout = max(1.0, min(step.timeout, self.remaining()))
        print(f'[{self.elapsed():6.1f}s] start {step.name} '
              f'(timeout {timeout:.0f}s)', flush=True)
        return dict(proc=proc, handle=handle, log=log,
                    start=time.monotonic(), timeout=timeout)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    @staticmethod
    def reap(run: dict, block: bool = False) -> bool:
        """Collect a finished child with its resource use (CPU seconds of
        it and the descendants it waited for); whether it has finished."""
        if 'rc' in run:
            return True
        pid, status, usage = os.wait4(run['proc'].pid,
                                      0 if block else os.WNOHANG)
        if pid == 0:
            return False
        run['rc'] = os.waitstatus_to_exitcode(status)
        run['proc'].returncode = run['rc']
        run['cpu_s'] = round(usage.ru_utime + usage.ru_stime, 1)
        return True

    def finish(self, step: Step, run: dict, timed_out: bool) -> dict:
        proc = run['proc']
        if timed_out and 'rc' not in run:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.reap(run, block=True)
        rc = run['rc']
        if timed_out:  # what the group left behind
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run['handle'].close()
        with open(run['log'], errors='replace') as f:
            output = f.read()
        checks = [dict(check='exit status 0', ok=rc == 0 and not timed_out)]
        for desc, pattern in step.expect:
            checks.append(dict(check=desc,
                               ok=re.search(pattern, output) is not None))
        for path in step.files:
            checks.append(dict(check=f'wrote {osp.relpath(path, self.work)}',
                               ok=osp.exists(path)))
        passed = all(c['ok'] for c in checks)
        record = dict(
            name=step.name, what=step.what,
            status='passed' if passed else
            ('timeout' if timed_out else 'failed'), passed=passed, rc=rc,
            seconds=round(time.monotonic() - run['start'], 1),
            cpu_s=run.get('cpu_s'), command=shlex.join(step.command),
            log=osp.relpath(run['log'], self.work), checks=checks,
            error_tail=None if passed else tail(output))
        if timed_out:
            record['error_tail'] = (f'killed after {run["timeout"]:.0f} s\n'
                                    + (record['error_tail'] or ''))
        if not passed:
            failed = [c['check'] for c in checks if not c['ok']]
            record['failed_checks'] = failed
        if step.facts is not None:
            try:
                record['facts'] = step.facts(output)
            except Exception as err:  # noqa: BLE001 (a record, not a crash)
                record['facts'] = dict(error=repr(err))
        if step.name == 'environment':
            self.environment = self._read_json(step.files[0])
        if step.name == 'bench':
            self.benchmarks = self._read_json(step.files[0])
        print(f'[{self.elapsed():6.1f}s] {record["status"]:7s} {step.name} '
              f'({record["seconds"]} s, CPU {record["cpu_s"]} s)' + (
                  '' if passed else ': ' + ', '.join(
                      record['failed_checks'])), flush=True)
        return record

    @staticmethod
    def _read_json(path: str) -> Optional[dict]:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def skip(self, step: Step, reason: str) -> dict:
        print(f'[{self.elapsed():6.1f}s] skipped {step.name}: {reason}',
              flush=True)
        return dict(name=step.name, what=step.what, status='skipped',
                    passed=False, rc=None, seconds=0.0,
                    command=shlex.join(step.command), log=None, checks=[],
                    error_tail=f'skipped: {reason}')

    def run(self) -> dict:
        """Run every step (``--jobs`` at a time), writing the results after
        each."""
        early = self.early_steps()
        # the install first and alone (the others import what it installs),
        # but a failed install stops nothing: 'environment' says what is
        # missing, and every step records its own error
        self._schedule([s for s in early if s.name == 'install'])
        self._schedule([s for s in early if s.name != 'install'])
        # built now: the world size is the GPU count 'environment' found
        self._schedule(self.main_steps())
        return self.write()

    def _schedule(self, pending: List[Step]) -> None:
        done = {r['name']: r for r in self.records}
        running: Dict[str, tuple] = {}
        jobs = max(1, self.args.jobs)
        while pending or running:
            for step in list(pending):
                if len(running) >= jobs or any(
                        s.exclusive for s, _ in running.values()):
                    break
                names = {s.name for s in pending} | set(running)
                if any(d not in done and d in names for d in step.after):
                    continue  # a step it needs has not finished
                if step.exclusive and (running or any(
                        not s.exclusive for s in pending)):
                    continue  # alone, after every other step
                failed = [d for d in step.after
                          if d in done and not done[d]['passed']]
                pending.remove(step)
                if failed:
                    record = self.skip(step, f'needs {", ".join(failed)}, '
                                       'which did not pass')
                elif self.remaining() < self.min_start_s:
                    record = self.skip(step, 'the time budget '
                                       f'({self.args.budget:.0f} s) is '
                                       'spent')
                else:
                    running[step.name] = (step, self.start(step))
                    continue
                done[step.name] = record
                self.records.append(record)
                self.write()
            time.sleep(0.2)
            for name, (step, run) in list(running.items()):
                timed_out = time.monotonic() - run['start'] > run['timeout']
                if self.reap(run) or timed_out:
                    timed_out = timed_out and 'rc' not in run
                    del running[name]
                    record = self.finish(step, run, timed_out)
                    done[name] = record
                    self.records.append(record)
                    self.write()

    # results

    def results(self) -> dict:
        device = self.args.device
        return dict(
            schema=1, title='GPU path check (tools/gpu_check.sh)',
            device=device, world_size=self.nproc(),
            started=self.started.isoformat(timespec='seconds'),
            wall_s=round(self.elapsed(), 1), budget_s=self.args.budget,
            cpu_s=round(sum(r.get('cpu_s') or 0 for r in self.records), 1),
            jobs=self.args.jobs,
            passed=bool(self.records) and all(
                r['passed'] for r in self.records),
            steps=self.records, not_run=self.not_run,
            environment=self.environment, benchmarks=self.benchmarks,
            settings=dict(profile=self.profile, wheels=self.args.wheels,
                          site=self.args.site, work_dir=self.work,
                          python=self.args.python))

    def write(self) -> dict:
        results = self.results()
        date = self.started.strftime('%Y-%m-%d_%H%M')
        if self.stem is None and (self.environment or len(self.records) > 2
                                  or self.remaining() < 0):
            # named once the GPUs are known (or it is too late to know)
            slug = device_slug(self.environment, self.args.device)
            self.stem = f'gpu_check_{slug}_{date}'
        stem = self.stem or f'gpu_check_{self.args.device}_{date}'
        out = osp.abspath(self.args.out_dir)
        os.makedirs(out, exist_ok=True)
        path = osp.join(out, f'{stem}.json')
        results['results_file'] = path
        results['summary_file'] = osp.join(out, f'{stem}.md')
        with open(path + '.tmp', 'w') as f:
            json.dump(results, f, indent=1)
        os.replace(path + '.tmp', path)
        with open(results['summary_file'], 'w') as f:
            f.write(render_markdown(results))
        # a name chosen before the GPUs were known is replaced
        for old in getattr(self, '_written', set()) - {path}:
            for p in (old, old[:-5] + '.md'):
                if osp.exists(p):
                    os.remove(p)
        self._written = {path}
        return results

    def pack_logs(self, results: dict) -> Optional[str]:
        path = results['results_file'][:-5] + '.logs.tar.gz'
        with tarfile.open(path, 'w:gz') as tar:
            tar.add(self.logs, arcname='logs')
            env = osp.join(self.work, 'environment.json')
            if osp.exists(env):
                tar.add(env, arcname='environment.json')
        return path


# markdown --------------------------------------------------------------------


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return '–'
    if isinstance(value, float):
        return f'{value:.{digits}g}'
    return str(value)


def render_markdown(results: dict) -> str:
    """A short summary: verdict, steps, figures, memory, what was left out."""
    env = results.get('environment') or {}
    cuda = env.get('cuda') or {}
    gpus = ', '.join(d['name'] for d in cuda.get('devices') or []) or 'none'
    versions = env.get('versions') or {}
    lines = [
        f'# GPU path check: {results["device"]}, {results["started"]}',
        '',
        f'**{"PASSED" if results["passed"] else "FAILED"}**: '
        f'{sum(r["passed"] for r in results["steps"])} of '
        f'{len(results["steps"])} steps passed in {results["wall_s"]} s '
        f'(budget {results["budget_s"]} s, {results["jobs"]} at a time), '
        f'world size {results["world_size"]}.',
        '',
        f'Machine: GPUs {gpus}; Python {env.get("python", "?")}, torch '
        f'{versions.get("torch", "?")} (CUDA {cuda.get("torch_cuda", "–")},'
        f' NCCL {cuda.get("nccl", "–")}), mmengine '
        f'{versions.get("mmengine", "?")}, mmcv {versions.get("mmcv", "?")}, '
        f'mmaction2 {versions.get("mmaction", "?")}.',
        '',
        '| step | result | s | what | failed checks |',
        '|---|---|---|---|---|',
    ]
    for r in results['steps']:
        if r['status'] == 'skipped':
            note = r['error_tail']
        else:
            note = ', '.join(r.get('failed_checks', [])) or '–'
        lines.append(f'| {r["name"]} | {r["status"]} | {r["seconds"]} | '
                     f'{r["what"]} | {note} |')
    bench = results.get('benchmarks') or {}
    if bench.get('figures'):
        lines += ['', '## Ratios', '',
                  '| figure | median | min–max | target | verdict |',
                  '|---|---|---|---|---|']
        for fig in bench['figures']:
            r = fig['ratio']
            verdict = '–' if fig['met'] is None else (
                'met' if fig['met'] else '**not met**')
            target = '–' if fig['target'] is None else f'≤ {fig["target"]}'
            lines.append(f'| {fig["name"]} | {r["median"]:.3f} | '
                         f'{r["min"]:.3f}–{r["max"]:.3f} | {target} | '
                         f'{verdict} |')
        if results['device'] == 'cpu':
            lines += ['', 'CPU smoke run: tiny sizes and one repetition on '
                      'whatever else the machine was doing; the ratios '
                      'show that the measurements run, they are not '
                      'measurements.']
        s = bench.get('settings') or {}
        lines += ['', 'Steps: batch {batch}, {steps} timed after {warmup}, '
                  '{repeats} repetitions; epochs: {super_epochs} super-epochs '
                  'of {super_epoch}, batch {epoch_batch}, {epoch_repeats} '
                  'repetitions.'.format(**s) if s else '']
    memory = bench.get('cuda_peak_mib') or {}
    if memory:
        lines += ['', '## Peak CUDA memory (torch.cuda.max_memory_allocated, '
                  'MiB)', '', '| strategy | one training step | whole '
                  'epoch-level run |', '|---|---|---|']
        for name, m in memory.items():
            lines.append(f'| {name} | {_fmt(m.get("step"))} | '
                         f'{_fmt(m.get("run"))} |')
    trained = [r for r in results['steps'] if (r.get('facts') or {}).get(
        'cuda_memory_logged_mib') is not None]
    if trained:
        lines += ['', 'Peak CUDA memory logged by mmengine during the '
                  'check\'s trainings (MiB): ' + ', '.join(
                      f'{r["name"]} {r["facts"]["cuda_memory_logged_mib"]}'
                      for r in trained) + '.']
    if results.get('not_run'):
        lines += ['', '## Not run on this device', '']
        lines += [f'- {n["step"]}: {n["reason"]}' for n in results['not_run']]
    failed = [r for r in results['steps'] if not r['passed']]
    if failed:
        lines += ['', '## Errors', '']
        for r in failed:
            lines += [f'### {r["name"]}', '', '```',
                      tail(r['error_tail'] or '', 15), '```', '']
    lines += ['', f'Results: `{osp.basename(results["results_file"])}`; '
              'logs in the work dir '
              f'(`{results["settings"]["work_dir"]}/logs`).', '']
    return '\n'.join(lines)


# command line ----------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda',
                        help='cuda (default): every GPU, NCCL, --amp; '
                        'cpu: gloo, tiny sizes, the installed environment')
    parser.add_argument('--prepare', action='store_true',
                        help='here, with network: download the wheels for '
                        'the GPU machine into --wheels and report the sizes')
    parser.add_argument('--wheels', default=osp.join(REPO, '.whl'),
                        help='the wheel folder (default: .whl/)')
    parser.add_argument('--site', default='/tmp/gpu_check_site',
                        help='where the wheels are installed '
                        '(default: %(default)s)')
    parser.add_argument('--no-install', action='store_true',
                        help='use what is installed; no wheels')
    parser.add_argument('--out-dir', default=osp.join(REPO, 'benchmarks',
                                                      'results'),
                        help='where the JSON and markdown go (default: '
                        'benchmarks/results)')
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs',
                                                       'gpu_check'),
                        help='data, runs and logs (default: '
                        'work_dirs/gpu_check)')
    parser.add_argument('--budget', type=float,
                        help='seconds for the whole check; steps that '
                        'would start later are skipped (default: 300 on '
                        'cuda, 240 on cpu)')
    parser.add_argument('--jobs', type=int,
                        help='steps run at the same time (default: 3 on '
                        'cuda, 2 on cpu); the bench step always runs alone')
    parser.add_argument('--gpus', type=int,
                        help='processes per training (default: every GPU)')
    parser.add_argument('--python', default=sys.executable,
                        help='the interpreter of the steps (default: this '
                        'one)')
    parser.add_argument('--logs-tar', action='store_true',
                        help='also write <results>.logs.tar.gz beside the '
                        'JSON (for $OUT on the device machine)')
    args = parser.parse_args(argv)
    profile = PROFILES[args.device]
    if args.budget is None:
        args.budget = profile['budget']
    if args.jobs is None:
        args.jobs = profile['jobs']
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.prepare:
        sys.path.insert(0, TOOLS)
        from gpu_check_wheels import prepare
        return prepare(args.wheels, args.python)
    check = Check(args)
    print(f'GPU path check on {args.device}: budget {args.budget:.0f} s, '
          f'{args.jobs} steps at a time, work dir {check.work}', flush=True)
    results = check.run()
    if args.logs_tar:
        print(f'logs: {check.pack_logs(results)}')
    print(f'\n{"PASSED" if results["passed"] else "FAILED"} in '
          f'{results["wall_s"]} s: {results["results_file"]}\n'
          f'summary: {results["summary_file"]}', flush=True)
    return 0 if results['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
