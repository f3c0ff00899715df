"""Helpers for the tests: small real media files with known content, the
repository's scripts as modules, and multi-process runs.

Test files import it as ``helpers`` (pytest puts ``tests/`` on ``sys.path``
for ``tests/conftest.py``); a process a test starts needs ``tests/`` on its
``PYTHONPATH`` to import it.
"""
import importlib.util
import json
import logging
import os
import os.path as osp
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.hooks import Hook

from mmaction_gblend.utils import write_video_with_audio

# The repository: this file is tests/helpers.py.
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

SAMPLE_RATE = 16000


def tone(seconds: float,
         freqs: Sequence[float],
         amplitude: float = 0.3,
         sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A waveform of equal-length segments, one sine frequency each.

    Tests tell which part of a track they got from its frequency.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    segment = np.minimum(np.arange(n) * len(freqs) // n, len(freqs) - 1)
    freq = np.asarray(freqs, dtype=np.float64)[segment]
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(waveform: np.ndarray,
                       sample_rate: int = SAMPLE_RATE) -> float:
    """The frequency, in Hz, of the strongest peak of a waveform."""
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    freqs = np.fft.rfftfreq(len(waveform), 1 / sample_rate)
    return float(freqs[spectrum.argmax()])


def write_test_clip(path: str,
                    seconds: float = 2.0,
                    fps: int = 16,
                    size: int = 32,
                    freqs: Optional[Sequence[float]] = (440.0, ),
                    audio_seconds: Optional[float] = None,
                    seed: int = 0) -> str:
    """Write an MP4 of random frames and, unless ``freqs`` is None, a tone.

    Args:
        path: Output file.
        seconds: Video length.
        fps: Frame rate.
        size: Frame height and width.
        freqs: Sine frequencies of the audio's equal segments; ``None``
            writes no audio stream.
        audio_seconds: Audio length, if not ``seconds``.
        seed: Seed of the random frames.

    Returns:
        ``path``.
    """
    rng = np.random.default_rng(seed)
    frames = rng.integers(
        0, 256, (int(round(seconds * fps)), size, size, 3), dtype=np.uint8)
    waveform = None
    if freqs is not None:
        waveform = tone(seconds if audio_seconds is None else audio_seconds,
                        freqs)
    write_video_with_audio(path, frames, fps, waveform, SAMPLE_RATE)
    return path


def load_script(path: str) -> ModuleType:
    """Import a script of the repository (``tools/...py``) as a module.

    Args:
        path: The script, absolute or relative to the repository root.
    """
    if not osp.isabs(path):
        path = osp.join(REPO, path)
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f'script_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_small_demo_set(root: str,
                        train_per_class: int = 1,
                        seed: int = 3) -> str:
    """A small demo dataset under ``root/data``: ``train_per_class`` training
    clips and one val and one test clip per class; returns ``root``."""
    from mmaction_gblend.demo.demo_generator import (DemoDatasetSpec,
                                                     make_demo_dataset)
    spec = DemoDatasetSpec(train_per_class=train_per_class, val_per_class=1,
                           test_per_class=1)
    make_demo_dataset(osp.join(str(root), 'data'), spec=spec, seed=seed,
                      workers=2, verbose=False)
    return root


def tiny_av_branches(rgb: str = 'rgb',
                     audio: str = 'audio',
                     base_channels: int = 4,
                     feat_dim: int = 32) -> dict:
    """The ``branches`` of a tiny two-branch ``MultiHeadRecognizer``.

    Args:
        rgb: Name of the ResNet3d-18 branch on ``imgs``.
        audio: Name of the AudioResNet-18 branch on ``audios``.
        base_channels: Width of both backbones' first stage.
        feat_dim: Feature size of both branches.

    Returns:
        ``{rgb: ..., audio: ...}``, a new dict on every call.
    """
    return {
        rgb: dict(input_key='imgs', feat_dim=feat_dim, backbone=dict(
            type='ResNet3d', depth=18, base_channels=base_channels,
            pretrained=None, pretrained2d=False, conv1_kernel=(1, 7, 7),
            inflate=(0, 0, 1, 1))),
        audio: dict(input_key='audios', feat_dim=feat_dim, backbone=dict(
            type='AudioResNet', depth=18, base_channels=base_channels)),
    }


def import_file_alone(path: str,
                      forbidden: Sequence[str],
                      then: str = '') -> str:
    """Import one module file, without its package, in a fresh interpreter.

    Fails unless the import leaves every module of ``forbidden`` unloaded
    and ``then`` (Python code run after it, with the module as ``mod``)
    succeeds.

    Args:
        path: The module's file.
        forbidden: Top-level modules the file must not import.
        then: Code to run next, e.g. a ``print`` of a result.

    Returns:
        The interpreter's standard output.
    """
    code = ('import importlib.util, sys\n'
            f'spec = importlib.util.spec_from_file_location("alone", '
            f'{osp.abspath(path)!r})\n'
            'mod = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(mod)\n'
            f'bad = [m for m in {tuple(forbidden)!r} if m in sys.modules]\n'
            'assert not bad, bad\n' + then)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def capture_log(fn: Callable[[], Any],
                level: int = logging.WARNING) -> Tuple[Any, List[str]]:
    """Call ``fn`` and record what mmengine's current logger logs meanwhile.

    Args:
        fn: The call.
        level: The lowest level recorded.

    Returns:
        ``fn()``'s result and the messages, in order.
    """
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=level)
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        result = fn()
    finally:
        logger.removeHandler(handler)
    return result, [r.getMessage() for r in records]


def run_command(args: Sequence[str],
                cwd: Optional[str] = None,
                timeout: int = 600,
                env: Optional[dict] = None,
                returncode: int = 0,
                teardown_abort_ok: bool = False) -> str:
    """Run a command; fail with the end of its output unless it exits with
    ``returncode`` (0; ``-9`` for a process that SIGKILL ended).

    Args:
        teardown_abort_ok: Also accept a torchrun run whose crashed ranks
            all aborted after their Python code had finished
            (:func:`aborted_in_teardown`), with a warning: for scripts that
            are not ours and so cannot leave without the teardown
            (``mmaction_gblend/compat/process_exit.py``). The caller still
            checks what the run wrote.

    Returns:
        Its standard output and error.
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.run(list(args), cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if (proc.returncode != returncode and teardown_abort_ok
            and aborted_in_teardown(proc.stderr)):
        warnings.warn(f'{" ".join(map(str, args[:3]))} ...: a rank aborted '
                      'in the teardown after its work (tolerated)')
        return out
    if proc.returncode != returncode:
        raise AssertionError(f'{" ".join(map(str, args[:3]))} ... exited '
                             f'with {proc.returncode}, not {returncode}:\n'
                             f'{_fatal_stacks(proc.stderr)}{out[-4000:]}')
    return out


def aborted_in_teardown(stderr: str) -> bool:
    """Whether faulthandler (``PYTHONFAULTHANDLER=1``) reported an abort and
    every report shows threads with no Python frame left: the process had
    run all its Python code."""
    reports = [part.split('Extension modules:')[0]
               for part in stderr.split('Fatal Python error: Aborted')[1:]]
    return bool(reports) and all('<no Python frame>' in r
                                 and 'File "' not in r for r in reports)


def _fatal_stacks(stderr: str, limit: int = 3000) -> str:
    """The Python stacks faulthandler printed for a crashed process
    (``PYTHONFAULTHANDLER=1``), without its list of extension modules:
    they come before the tail of the output, which they would not fit."""
    stacks = []
    for part in stderr.split('Fatal Python error')[1:]:
        stacks.append('Fatal Python error' +
                      part.split('Extension modules:')[0][:limit])
    return ''.join(stacks) + ('\n' if stacks else '')


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now: the one the system gives a
    socket bound to port 0, closed again.

    For a process group's master, so that test runs at the same time (two
    checkouts) do not collide on a fixed port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_torchrun(script: str,
                 args: Sequence[str],
                 nproc: int = 2,
                 port: Optional[int] = None,
                 timeout: int = 600) -> str:
    """Run ``script`` on ``nproc`` local processes with torchrun (gloo on a
    CPU-only machine); fail with the end of its output unless it exits 0.

    Args:
        script: The script.
        args: Its arguments.
        nproc: Processes.
        port: The master's port; by default a free one (:func:`free_port`).
        timeout: Seconds before it is killed.

    Returns:
        Its standard output and error.
    """
    if port is None:
        port = free_port()
    return run_command(
        [sys.executable, '-m', 'torch.distributed.run',
         f'--nproc_per_node={nproc}', f'--master_port={port}', script] +
        list(args), timeout=timeout,
        # an aborting rank prints its Python stack
        env=dict(OMP_NUM_THREADS='1', PYTHONFAULTHANDLER='1'))


def run_dist_worker(worker: str,
                    out: Union[str, os.PathLike],
                    nproc: int = 2,
                    timeout: int = 600) -> Path:
    """Run a test's worker script on ``nproc`` processes
    (:func:`run_torchrun`) with ``out``, the directory its ranks write
    their results into, as its argument.

    Returns:
        ``out``.
    """
    run_torchrun(worker, [str(out)], nproc=nproc, timeout=timeout)
    return Path(out)


def rank_results(out: Union[str, os.PathLike],
                 prefix: str = '',
                 nproc: int = 2) -> List[dict]:
    """The ``<out>/<prefix>rank<r>.json`` files of a worker's ranks, by
    rank."""
    results = []
    for rank in range(nproc):
        with open(Path(out) / f'{prefix}rank{rank}.json') as f:
            results.append(json.load(f))
    return results


def train_from_config(cfg: dict, hooks: Sequence[Hook] = ()) -> Any:
    """Build a Runner from ``cfg``, register ``hooks`` (in order, beside
    the config's own) and train; return the Runner."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    runner = Runner.from_cfg(Config(cfg))
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    return runner


class Interrupt(Exception):
    """Raised by :class:`InterruptAfterEpoch`."""


class InterruptAfterEpoch(Hook):
    """Stops a run after an epoch, once its checkpoint is written (a hook
    of the lowest priority, after ``CheckpointHook``).

    Args:
        epoch: The 1-based epoch after which to stop.
    """
    priority = 'LOWEST'

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.epoch:
            raise Interrupt()


def gblend_hook(runner) -> Any:
    """The runner's ``GradientBlendingHook``."""
    return next(h for h in runner.hooks
                if type(h).__name__ == 'GradientBlendingHook')


def read_jsonl(path: Union[str, os.PathLike]) -> List[dict]:
    """The entries of a JSON-lines file, one a line."""
    with open(path) as f:
        return [json.loads(line) for line in f]
