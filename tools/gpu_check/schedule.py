"""Runs the GPU check's steps as child processes and writes the results.

:class:`Check` starts each step (``--jobs`` at a time), kills it at its
timeout or at the end of the budget, records pass/fail, wall and CPU time,
the checks on its output and its error tail, and rewrites the results JSON
and markdown after every step, so a run stopped early still leaves what it
did.
"""
import datetime
import os
import os.path as osp
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import time
from typing import Dict, List, Optional, Tuple

from gpu_check.common import REPO, read_json, write_json
from gpu_check.facts import tail
from gpu_check.report import render_markdown
from gpu_check.steps import PROFILES, Plan, Step


def device_slug(env: Optional[dict], device: str) -> str:
    """``cuda-1xNVIDIA-H200`` or ``cpu``, for file names."""
    if device != 'cuda' or not env or not env.get('cuda', {}).get('devices'):
        return device
    names = [d['name'] for d in env['cuda']['devices']]
    slug = re.sub(r'[^A-Za-z0-9]+', '-', names[0]).strip('-')
    return f'cuda-{len(names)}x{slug}'


def output_checks(step: Step, output: str, rc: Optional[int],
                  timed_out: bool, work: str) -> List[dict]:
    """The exit status, each expected pattern and each expected file."""
    checks = [dict(check='exit status 0', ok=rc == 0 and not timed_out)]
    for desc, pattern in step.expect:
        checks.append(dict(check=desc,
                           ok=re.search(pattern, output) is not None))
    for path in step.files:
        checks.append(dict(check=f'wrote {osp.relpath(path, work)}',
                           ok=osp.exists(path)))
    return checks


def kill_group(pid: int) -> None:
    """Kill a step's process group (torchrun's workers with it)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Check:
    """Runs the steps, writes the results.

    Args:
        args: The command line (``check.parse_args``).
    """

    def __init__(self, args) -> None:
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
        self.stem: Optional[str] = None
        self._written: set = set()
        self.env = self._child_env()
        self.plan = Plan(args, self.work, self.nproc, self.not_run)
        #: a step is not started with less of the budget left
        self.min_start_s = 5.0

    def _child_env(self) -> Dict[str, str]:
        """The steps' environment: the wheel folder's install (CUDA), then
        the repository, on ``PYTHONPATH``; one thread per process."""
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
        """Processes per training: 1 on CPU, else ``--gpus`` or the GPUs
        that ``environment`` found."""
        if self.args.device == 'cpu':
            return 1
        if self.args.gpus:
            return self.args.gpus
        gpus = (self.environment or {}).get('cuda', {}).get('devices')
        return max(1, len(gpus or []))

    def early_steps(self) -> List[Step]:
        return self.plan.early_steps()

    def main_steps(self) -> List[Step]:
        return self.plan.main_steps()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f'[{self.elapsed():6.1f}s] {text}', flush=True)

    # one step ----------------------------------------------------------------

    def start(self, step: Step) -> dict:
        """Start a step in a session of its own, its output to its log."""
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
        self.say(f'start {step.name} (timeout {timeout:.0f}s)')
        return dict(proc=proc, handle=handle, log=log,
                    start=time.monotonic(), timeout=timeout)

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

    def _stop(self, run: dict, timed_out: bool) -> str:
        """End a step (killed at its timeout) and return its output."""
        if timed_out:  # the caller's: past the timeout and still running
            kill_group(run['proc'].pid)
        self.reap(run, block=True)
        if timed_out:  # what the group left behind
            kill_group(run['proc'].pid)
        run['handle'].close()
        with open(run['log'], errors='replace') as f:
            return f.read()

    def finish(self, step: Step, run: dict, timed_out: bool) -> dict:
        """Stop a step, check its output and return its record."""
        output = self._stop(run, timed_out)
        checks = output_checks(step, output, run['rc'], timed_out, self.work)
        passed = all(c['ok'] for c in checks)
        record = dict(
            name=step.name, what=step.what,
            status='passed' if passed else
            ('timeout' if timed_out else 'failed'), passed=passed,
            rc=run['rc'], seconds=round(time.monotonic() - run['start'], 1),
            cpu_s=run.get('cpu_s'), command=shlex.join(step.command),
            log=osp.relpath(run['log'], self.work), checks=checks,
            error_tail=None if passed else tail(output))
        if timed_out:
            record['error_tail'] = (f'killed after {run["timeout"]:.0f} s\n'
                                    + (record['error_tail'] or ''))
        if not passed:
            record['failed_checks'] = [c['check'] for c in checks
                                       if not c['ok']]
        if step.facts is not None:
            try:
                record['facts'] = step.facts(output)
            except Exception as err:  # noqa: BLE001 (a record, not a crash)
                record['facts'] = dict(error=repr(err))
        # what the later steps and the results need from these two
        if step.name == 'environment':
            self.environment = read_json(step.files[0])
        if step.name == 'bench':
            self.benchmarks = read_json(step.files[0])
        self.say(f'{record["status"]:7s} {step.name} ({record["seconds"]} s, '
                 f'CPU {record["cpu_s"]} s)' + (
                     '' if passed else ': ' + ', '.join(
                         record['failed_checks'])))
        return record

    def skip(self, step: Step, reason: str) -> dict:
        """The record of a step that was not started."""
        self.say(f'skipped {step.name}: {reason}')
        return dict(name=step.name, what=step.what, status='skipped',
                    passed=False, rc=None, seconds=0.0,
                    command=shlex.join(step.command), log=None, checks=[],
                    error_tail=f'skipped: {reason}')

    # the schedule ------------------------------------------------------------

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

    def _record(self, done: Dict[str, dict], record: dict) -> None:
        done[record['name']] = record
        self.records.append(record)
        self.write()

    def _blocked(self, step: Step, pending: List[Step],
                 running: Dict[str, Tuple[Step, dict]],
                 done: Dict[str, dict]) -> bool:
        """Whether ``step`` must wait: a step it needs is still to run, or
        it runs alone and others are pending or running."""
        names = {s.name for s in pending} | set(running)
        if any(d not in done and d in names for d in step.after):
            return True
        return step.exclusive and bool(running or any(
            not s.exclusive for s in pending))

    def _start_ready(self, pending: List[Step],
                     running: Dict[str, Tuple[Step, dict]],
                     done: Dict[str, dict]) -> None:
        """Start (or skip) the pending steps that may go now."""
        for step in list(pending):
            if len(running) >= max(1, self.args.jobs) or any(
                    s.exclusive for s, _ in running.values()):
                return
            if self._blocked(step, pending, running, done):
                continue
            pending.remove(step)
            failed = [d for d in step.after
                      if d in done and not done[d]['passed']]
            if failed:
                self._record(done, self.skip(
                    step, f'needs {", ".join(failed)}, which did not pass'))
            elif self.remaining() < self.min_start_s:
                self._record(done, self.skip(
                    step, f'the time budget ({self.args.budget:.0f} s) is '
                    'spent'))
            else:
                running[step.name] = (step, self.start(step))

    def _collect_finished(self, running: Dict[str, Tuple[Step, dict]],
                          done: Dict[str, dict]) -> None:
        """Record the steps that ended or ran past their timeout."""
        for name, (step, run) in list(running.items()):
            timed_out = time.monotonic() - run['start'] > run['timeout']
            if self.reap(run) or timed_out:
                timed_out = timed_out and 'rc' not in run
                del running[name]
                self._record(done, self.finish(step, run, timed_out))

    def _schedule(self, pending: List[Step]) -> None:
        done = {r['name']: r for r in self.records}
        running: Dict[str, Tuple[Step, dict]] = {}
        while pending or running:
            self._start_ready(pending, running, done)
            time.sleep(0.2)
            self._collect_finished(running, done)

    # results -----------------------------------------------------------------

    def results(self) -> dict:
        """Everything the run found, as the JSON holds it."""
        return dict(
            schema=1, title='GPU path check (tools/gpu_check/run.sh)',
            device=self.args.device, world_size=self.nproc(),
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

    def _stem(self) -> str:
        """``gpu_check_<device>_<date>``; named once the GPUs are known (or
        it is too late to know), a name chosen before that is replaced."""
        date = self.started.strftime('%Y-%m-%d_%H%M')
        if self.stem is None and (self.environment or len(self.records) > 2
                                  or self.remaining() < 0):
            slug = device_slug(self.environment, self.args.device)
            self.stem = f'gpu_check_{slug}_{date}'
        return self.stem or f'gpu_check_{self.args.device}_{date}'

    def write(self) -> dict:
        """Write the JSON and the markdown into ``--out-dir``."""
        results = self.results()
        out = osp.abspath(self.args.out_dir)
        os.makedirs(out, exist_ok=True)
        stem = osp.join(out, self._stem())
        path = results['results_file'] = f'{stem}.json'
        results['summary_file'] = f'{stem}.md'
        write_json(path, results)
        with open(results['summary_file'], 'w') as f:
            f.write(render_markdown(results))
        for old in self._written - {path}:
            for p in (old, old[:-5] + '.md'):
                if osp.exists(p):
                    os.remove(p)
        self._written = {path}
        return results

    def pack_logs(self, results: dict) -> str:
        """``<results>.logs.tar.gz``: every step's log and environment.json
        (what ``$OUT`` on the device machine takes back)."""
        path = results['results_file'][:-5] + '.logs.tar.gz'
        with tarfile.open(path, 'w:gz') as tar:
            tar.add(self.logs, arcname='logs')
            env = osp.join(self.work, 'environment.json')
            if osp.exists(env):
                tar.add(env, arcname='environment.json')
        return path
