"""The GPU check's steps: what each one runs and what its output must show.

:class:`Plan` builds one :class:`Step` per check step (a function each);
``schedule.Check`` runs them. Sizes per device are in :data:`PROFILES`.
"""
import os
import os.path as osp
import re
import socket
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from gpu_check.common import HERE, REPO, TOOLS
from gpu_check.facts import test_facts, training_facts

CONFIGS = dict(
    naive='configs/demo/naive-fusion_r3d18-rgb_r18-audio_demo-av.py',
    gblend='configs/demo/gblend-online_r3d18-rgb_r18-audio_demo-av.py',
    ogm='configs/demo/ogm-ge_r3d18-rgb_r18-audio_demo-av.py',
    opm='configs/demo/opm_r3d18-rgb_r18-audio_demo-av.py')
WORKER = osp.join(HERE, 'worker.py')
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

Expect = Sequence[Tuple[str, str]]


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
        fresh_dirs: Folders removed before it starts.
    """

    def __init__(self, name: str, what: str, command: List[str],
                 after: Sequence[str] = (), timeout: float = 120,
                 expect: Expect = (), files: Sequence[str] = (),
                 facts: Optional[Callable[[str], dict]] = None,
                 exclusive: bool = False, env: Optional[dict] = None,
                 fresh_dirs: Sequence[str] = ()) -> None:
        self.name, self.what, self.command = name, what, command
        self.after, self.timeout = list(after), timeout
        self.expect, self.files = list(expect), list(files)
        self.facts, self.exclusive = facts, exclusive
        self.env = dict(env or {})
        self.fresh_dirs = list(fresh_dirs)


def free_port() -> int:
    """A TCP port nobody listens on now (each training's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def as_options(values: Dict[str, object]) -> List[str]:
    """``{'epoch_batch': 8}`` -> ``['--epoch-batch=8']``."""
    return [f'--{k.replace("_", "-")}={v}' for k, v in values.items()]


def distributed_expect(device: str, nproc: int) -> List[Tuple[str, str]]:
    """What a ``dist_train.sh`` log must show: NCCL on CUDA (and no silent
    gloo fallback), the plugin's gloo fallback on CPU."""
    expect = [('distributed launch', r'Distributed training: True'),
              (f'world size {nproc}', rf'GPU number: {nproc}\b')]
    if device == 'cuda':
        return expect + [
            ('NCCL, not gloo', r"dist_cfg: \{'backend': 'nccl'\}"),
            ('no gloo fallback',
             r'^(?![\s\S]*starting the process group with gloo)')]
    return expect + [('gloo on CPU',
                      'starting the process group with gloo')]


class Plan:
    """Builds the check's steps for one device and profile.

    Args:
        args: The check's command line (``check.parse_args``).
        work: The work folder (data, runs, logs).
        nproc: Returns the processes per training; called when the main
            steps are built, after ``environment`` counted the GPUs.
        not_run: Collects ``{step, reason}`` of what this device leaves out.
    """

    def __init__(self, args, work: str, nproc: Callable[[], int],
                 not_run: List[dict]) -> None:
        self.args, self.work, self.nproc = args, work, nproc
        self.profile = PROFILES[args.device]
        self.timeouts = self.profile['timeouts']
        self.not_run = not_run
        self.runs = osp.join(work, 'runs')
        self.amp = args.device == 'cuda'
        self.ogm = 'train-ogm-ge-amp' if self.amp else 'train-ogm-ge'

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

    # trainings ---------------------------------------------------------------

    def _train_command(self, config: str, work: str, distributed: bool,
                       options: List[str], flags: Sequence[str]
                       ) -> List[str]:
        config_path = osp.join(REPO, CONFIGS[config])
        if distributed:
            cmd = ['bash', osp.join(TOOLS, 'dist_train.sh'), config_path,
                   str(self.nproc())]
        else:
            cmd = [self.args.python, osp.join(TOOLS, 'train.py'),
                   config_path]
        if not self.profile['save_best']:
            options = options + ['default_hooks.checkpoint.save_best=None']
        return cmd + ['--work-dir', work] + list(flags) + [
            '--cfg-options'] + options

    def train_step(self, name: str, config: str, what: str,
                   extra_opts: Sequence[str] = (),
                   flags: Sequence[str] = (), after: Sequence[str] = (),
                   expect: Expect = (), files: Sequence[str] = (),
                   work: Optional[str] = None, fresh: bool = True,
                   distributed: bool = True) -> Step:
        """A training through ``tools/dist_train.sh`` on every GPU (gloo on
        CPU), or through ``tools/train.py`` in one process where the profile
        keeps only the first trainings distributed (CPU, for time)."""
        key = 'dataset.dataset' if config == 'gblend' else 'dataset'
        work = work or osp.join(self.runs, name)
        distributed = distributed or not self.profile['one_process_extras']
        cmd = self._train_command(
            config, work, distributed,
            self.loader_options(key) + list(extra_opts), flags)
        expect = [('finished an epoch', r'Epoch\(train\)\s+\[1\]'),
                  ('validated', r'Epoch\(val\).*acc/top1')] + list(expect)
        if distributed:
            expect += distributed_expect(self.args.device, self.nproc())
        if self.args.device == 'cuda':
            expect.append(('on CUDA', r'CUDA available: True'))
        return Step(name, what + ('' if distributed else ' (one process)'),
                    cmd, after=after, timeout=self.timeouts['train'],
                    expect=expect,
                    files=[osp.join(work, 'epoch_1.pth')] + list(files),
                    facts=training_facts, env=dict(PORT=str(free_port())),
                    fresh_dirs=[work] if fresh else [])

    # the steps, in the order docs/gpu_check.md lists them --------------------

    def install(self) -> Optional[Step]:
        """The wheel folder into ``--site``; None where nothing is
        installed (CPU, ``--no-install``), which ``not_run`` records."""
        a = self.args
        if a.device != 'cuda' or a.no_install:
            self.not_run.append(dict(
                step='install', reason='--device cpu uses the installed '
                'environment' if a.device == 'cpu' else '--no-install'))
            return None
        return Step(
            'install', f'wheels from {a.wheels} into {a.site} (pip '
            '--no-index --no-deps --target), the machine\'s torch kept',
            [a.python, WORKER, 'install', '--wheels', osp.abspath(a.wheels),
             '--site', osp.abspath(a.site)], timeout=self.timeouts['install'],
            expect=[('installed', r'installed \d+ wheels')])

    def environment(self) -> Step:
        env_json = osp.join(self.work, 'environment.json')
        return Step(
            'environment', 'imports, versions, GPUs, NCCL, the torch APIs '
            'the plugin uses, a CUDA matmul, a checkpoint round trip',
            [self.args.python, WORKER, 'environment', '--device',
             self.args.device, '--out', env_json, '--site',
             osp.abspath(self.args.site)],
            timeout=self.timeouts['environment'], files=[env_json])

    def data(self) -> Step:
        workers = min(8, max(1, (os.cpu_count() or 2) // 2))
        return Step(
            'data', 'a small demo dataset (H.264/AAC clips, PyAV)',
            [self.args.python, osp.join(TOOLS, 'data', 'make_demo_dataset.py'),
             '--out', self.data_root(), '--seed', '0', '--workers',
             str(workers)] + as_options(self.profile['data']),
            timeout=self.timeouts['data'],
            files=[osp.join(self.data_root(), 'train_list.txt')],
            fresh_dirs=[self.data_root()])

    def train_ogm(self) -> Step:
        expect = [('OGM-GE modulated', r'Modulation, epoch 1: .*ogm_k')]
        if self.amp:
            expect.append(('the AMP OGM-GE wrapper',
                           r"type='AmpOGMGEOptimWrapper'"))
        else:
            self.not_run.append(dict(step='OGM-GE with --amp',
                                     reason=AMP_ON_CPU))
        return self.train_step(
            self.ogm, 'ogm', 'OGM-GE' + (' with --amp (fp16 autocast, '
                                         'dynamic loss scale)'
                                         if self.amp else ''),
            flags=['--amp'] if self.amp else [], after=['data'],
            expect=expect, distributed=False)

    def train_naive(self) -> Step:
        return self.train_step('train-naive', 'naive',
                               'naive fusion, one epoch, DDP', after=['data'])

    def train_gblend(self) -> Step:
        # the trajectory estimator refuses a warm-up as long as the run
        return self.train_step(
            'train-gblend', 'gblend', 'online G-Blend (trajectory), two '
            'epochs: warm-up 1, then one estimate, DDP',
            extra_opts=['train_cfg.max_epochs=2',
                        'custom_hooks.0.warmup_epochs=1',
                        'custom_hooks.0.super_epochs=1'],
            after=['data'], expect=[('estimated blend weights',
                                     r'G-Blend estimate at epoch 1 ')],
            files=[osp.join(self.runs, 'train-gblend',
                            'gblend_history.jsonl')])

    def train_opm(self) -> Step:
        # the demo config starts OPM at epoch 2; the check trains one
        return self.train_step(
            'train-opm', 'opm', 'OPM from the first epoch',
            extra_opts=['model.opm.start_epoch=0'], after=['data'],
            expect=[('OPM modulated', r'Modulation, epoch 1: .*opm_q')],
            distributed=False)

    def bench(self) -> Step:
        b = dict(self.profile['bench'])
        strategies = b.pop('strategies').split()
        bench_json = osp.join(self.work, 'bench.json')
        bench_work = osp.join(self.work, 'bench')
        return Step(
            'bench', "the benchmarks' step and strategy-overhead ratios, "
            'peak CUDA memory per strategy',
            [self.args.python, WORKER, 'bench', '--out', bench_json,
             '--data-root', self.data_root(), '--work-dir', bench_work] +
            as_options(b) + ['--strategies'] + strategies,
            after=['data'], timeout=self.timeouts['bench'],
            exclusive=self.profile['bench_alone'], files=[bench_json],
            fresh_dirs=[bench_work])

    def test(self) -> Step:
        checkpoint = osp.join(self.runs, 'train-naive', 'epoch_1.pth')
        return Step(
            'test', 'tools/test.py on the naive-fusion checkpoint',
            [self.args.python, osp.join(TOOLS, 'test.py'),
             osp.join(REPO, CONFIGS['naive']), checkpoint, '--work-dir',
             osp.join(self.runs, 'test'), '--cfg-options'] +
            self.loader_options('dataset'),
            after=['train-naive'], timeout=self.timeouts['test'],
            expect=[('tested', r'Epoch\(test\).*acc/top1'),
                    ('loaded the checkpoint',
                     'Load checkpoint from ' + re.escape(checkpoint))],
            facts=test_facts, fresh_dirs=[osp.join(self.runs, 'test')])

    def resume(self) -> Step:
        run = osp.join(self.runs, self.ogm)
        step = self.train_step(
            'resume', 'ogm', f'the {self.ogm} run resumed from epoch_1.pth '
            'for a second epoch', flags=(['--amp'] if self.amp else []) + [
                '--resume', osp.join(run, 'epoch_1.pth')],
            extra_opts=['train_cfg.max_epochs=2'], after=[self.ogm],
            work=run, fresh=False, distributed=False,
            expect=[('resumed at epoch 1', r'resumed epoch: 1, iter'),
                    ('trained epoch 2', r'Epoch\(train\)\s+\[2\]'),
                    ('OGM-GE modulated epoch 2',
                     r'Modulation, epoch 2: .*ogm_k'),
                    ('did not retrain epoch 1',
                     r'^(?![\s\S]*Epoch\(train\)\s+\[1\])')],
            files=[osp.join(run, 'epoch_2.pth')])
        step.timeout = self.timeouts['resume']
        # the first epoch is not trained again
        step.expect = [e for e in step.expect if e[0] != 'finished an epoch']
        return step

    # the two groups ----------------------------------------------------------

    def early_steps(self) -> List[Step]:
        """``install``, then ``environment`` (which tells the GPU count) and
        ``data``."""
        install = self.install()
        return ([install] if install else []) + [self.environment(),
                                                 self.data()]

    def main_steps(self) -> List[Step]:
        """Trainings, test, resume and the benchmarks; those the others
        wait for first."""
        return [self.train_ogm(), self.train_naive(), self.train_gblend(),
                self.train_opm(), self.bench(), self.test(), self.resume()]
