"""What every benchmark shares.

Clocks (synchronised with CUDA when it is used), interleaved repetitions,
ratio statistics, child processes that report one JSON result, peak memory,
the machine's description, the command line and the result files.

Every figure a benchmark reports is the ratio of two configurations
measured side by side: :func:`interleave` runs them round robin (A B, then
B A, ...) so that drift in the machine's load hits both, and
:func:`ratio_figure` takes the median of the per-repetition ratios, with
their minimum and maximum as the spread.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCH_DIR = osp.join(REPO, 'benchmarks')
DEFAULT_WORK_DIR = osp.join(REPO, 'work_dirs', 'benchmarks')
# A child process prints its result as one line that starts with this.
RESULT_MARK = 'BENCHMARK-RESULT '
MIB = 1024.0 * 1024.0

# clocks ---------------------------------------------------------------------


def cuda_in_use() -> bool:
    """Whether the benchmarks run on CUDA (whenever torch can use it)."""
    import torch
    return torch.cuda.is_available()


def device_name() -> str:
    """``'cuda'`` where CUDA is available, else ``'cpu'``."""
    return 'cuda' if cuda_in_use() else 'cpu'


def synchronize() -> None:
    """Wait for queued CUDA work, so a clock read after it sees its end."""
    if cuda_in_use():
        import torch
        torch.cuda.synchronize()


def clock() -> float:
    """Seconds on a monotonic clock, after the device has caught up."""
    synchronize()
    return time.perf_counter()


def time_call(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn``, in seconds."""
    start = clock()
    fn()
    return clock() - start


def median_time(fn: Callable[[], object], calls: int,
                warmup: int = 0) -> float:
    """Median wall time of ``calls`` calls of ``fn`` after ``warmup``
    discarded ones, in seconds."""
    for _ in range(warmup):
        fn()
    return statistics.median(time_call(fn) for _ in range(calls))


# repetitions and statistics --------------------------------------------------


def rotated(names: Sequence[str], shift: int) -> List[str]:
    """``names`` rotated left by ``shift``: A B C, B C A, C A B, ..."""
    shift %= len(names)
    return list(names[shift:]) + list(names[:shift])


def interleave(measures: Dict[str, Callable[[], float]],
               repeats: int,
               warmup_rounds: int = 0,
               log: Optional[Callable[[str], None]] = None
               ) -> Dict[str, List[float]]:
    """Measure several configurations round robin.

    Repetition ``r`` runs every configuration once, starting with the
    ``r``-th (so no configuration always runs first or right after the
    same neighbour). Warm-up rounds run the same way and are discarded.

    Args:
        measures: ``{name: fn}``; ``fn()`` runs the configuration once and
            returns the measured quantity (seconds, say).
        repeats: Repetitions kept.
        warmup_rounds: Rounds run first and discarded.
        log: Called with a line after each measurement.

    Returns:
        ``{name: [value of repetition 0, 1, ...]}``.
    """
    names = list(measures)
    values: Dict[str, List[float]] = {name: [] for name in names}
    for rnd in range(warmup_rounds + repeats):
        kept = rnd >= warmup_rounds
        for name in rotated(names, rnd):
            value = float(measures[name]())
            if kept:
                values[name].append(value)
            if log is not None:
                tag = f'rep {rnd - warmup_rounds}' if kept else 'warm-up'
                log(f'  [{tag}] {name}: {value:.4g}')
    return values


def summary(values: Sequence[float]) -> dict:
    """Median, minimum and maximum of ``values``, and the values."""
    values = [float(v) for v in values]
    return dict(median=statistics.median(values), min=min(values),
                max=max(values), values=values)


def per_rep_ratios(numerator: Sequence[float],
                   denominator: Sequence[float]) -> List[float]:
    """``numerator[r] / denominator[r]`` for every repetition ``r``."""
    if len(numerator) != len(denominator):
        raise ValueError('numerator and denominator need one value per '
                         'repetition each')
    return [n / d for n, d in zip(numerator, denominator)]


def ratio_figure(name: str,
                 numerator: Sequence[float],
                 denominator: Sequence[float],
                 target: Optional[float],
                 num_label: str,
                 den_label: str,
                 unit: str = 's',
                 note: str = '') -> dict:
    """One reported figure: the ratio of two interleaved measurements.

    Args:
        name: What the ratio is.
        numerator: Per-repetition values of the measured configuration.
        denominator: Per-repetition values of its reference (the same
            repetitions: a sum of references is summed per repetition
            before it comes here).
        target: Largest acceptable median ratio; ``None`` for a figure
            that is only reported.
        num_label: What the numerator is.
        den_label: What the denominator is.
        unit: Unit of the absolute values.
        note: One line on how to read it.

    Returns:
        A JSON-able dict (see :func:`render_figures`).
    """
    ratio = summary(per_rep_ratios(numerator, denominator))
    return dict(
        name=name, ratio=ratio, target=target,
        met=None if target is None else bool(ratio['median'] <= target),
        numerator=dict(label=num_label, unit=unit, **summary(numerator)),
        denominator=dict(label=den_label, unit=unit, **summary(denominator)),
        note=note)


# memory ----------------------------------------------------------------------


def current_rss_mib() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf('SC_PAGE_SIZE') / MIB
    except (OSError, ValueError, IndexError):
        return float('nan')


def _own_peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB.

    Linux's ``VmHWM`` where it exists: ``ru_maxrss`` survives ``exec``, so
    a child started by a big parent would report the parent's peak.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    kib = 1024.0 if sys.platform != 'darwin' else 1.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / MIB


def peak_memory(baseline_rss_mib: float = 0.0) -> dict:
    """Peak memory of this process so far.

    Args:
        baseline_rss_mib: Resident memory before the workload was built
            (:func:`current_rss_mib` after the imports), subtracted to give
            the workload's own increment.

    Returns:
        ``peak_rss_mib`` (this process's ``VmHWM``), ``increment_mib``
        (peak minus baseline), ``children_peak_rss_mib`` (``ru_maxrss`` of
        the largest finished child, e.g. a data-loader worker, pages shared
        with this process included) and, on CUDA, ``cuda_peak_mib``
        (``torch.cuda.max_memory_allocated``).
    """
    kib = 1024.0 if sys.platform != 'darwin' else 1.0
    own = _own_peak_rss_mib()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / MIB
    result = dict(peak_rss_mib=own, baseline_rss_mib=baseline_rss_mib,
                  increment_mib=own - baseline_rss_mib,
                  children_peak_rss_mib=kids)
    if cuda_in_use():
        import torch
        result['cuda_peak_mib'] = torch.cuda.max_memory_allocated() / MIB
    return result


# child processes -------------------------------------------------------------


def emit_result(result: dict) -> None:
    """Print a child's result where :func:`run_child` finds it."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def emit_peak_memory(workload: Callable[[], object]) -> None:
    """Run ``workload`` and emit (:func:`emit_result`) the peak memory of
    this process with it, against the resident memory before it.

    The body of a script's ``--probe`` child (see :func:`run_child`).
    """
    baseline = current_rss_mib()
    workload()
    emit_result(peak_memory(baseline))


def child_env(threads: Optional[int] = None) -> Dict[str, str]:
    """The environment of a child: unbuffered, optionally thread-limited."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
        env['MKL_NUM_THREADS'] = str(threads)
    return env


def run_child(args: Sequence[object],
              timeout: float = 3600,
              threads: Optional[int] = None,
              log_file: Optional[str] = None,
              expect_result: bool = True) -> Optional[dict]:
    """Run a command and return the JSON result it printed.

    Args:
        args: The command; ``python`` as its first word means this
            interpreter.
        timeout: Seconds before the child is killed.
        threads: ``OMP_NUM_THREADS`` for the child.
        log_file: Where to keep the child's whole output.
        expect_result: Whether the child prints a result line
            (:func:`emit_result`); if not, ``None`` is returned.

    Raises:
        RuntimeError: The child failed or printed no result it should
            have; the message has the end of its output.
    """
    args = [sys.executable if a == 'python' else str(a) for a in args]
    proc = subprocess.run(args, cwd=REPO, env=child_env(threads),
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if log_file:
        os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
        with open(log_file, 'w') as f:
            f.write(output)
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith(RESULT_MARK)]
    if proc.returncode != 0 or (expect_result and not lines):
        raise RuntimeError(
            f'{" ".join(args[:4])} ... exited with {proc.returncode} '
            f'{"" if lines else "without a result"}:\n{output[-4000:]}')
    return json.loads(lines[-1][len(RESULT_MARK):]) if lines else None


# the machine -----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _memory_gib() -> Optional[float]:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # noqa: BLE001 (any import failure: just say so)
        return 'not installed'


def load_average() -> Optional[List[float]]:
    """The 1, 5 and 15 minute load averages, where the OS has them."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_description() -> dict:
    """CPU, cores, memory, GPU, library versions, date and load."""
    import torch
    usable = len(os.sched_getaffinity(0)) \
        if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    gpu = None
    if torch.cuda.is_available():
        gpu = ', '.join(torch.cuda.get_device_name(i)
                        for i in range(torch.cuda.device_count()))
    return dict(
        date=datetime.datetime.now().astimezone().isoformat(
            timespec='seconds'),
        host_os=f'{platform.system()} {platform.release()}',
        cpu=_cpu_model(), logical_cores=os.cpu_count(),
        usable_cores=usable, memory_gib=_memory_gib(), gpu=gpu,
        python=platform.python_version(), torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        mmengine=_version('mmengine'), mmaction=_version('mmaction'),
        mmcv=_version('mmcv'), decord=_version('decord'),
        librosa=_version('librosa'), numpy=_version('numpy'),
        load_average=load_average())


# command line and results ----------------------------------------------------


def base_parser(description: str, repeats: int,
                quick_repeats: int = 1) -> argparse.ArgumentParser:
    """The options every benchmark takes.

    Args:
        description: The script's one-line summary.
        repeats: Default repetitions of a full run.
        quick_repeats: Default repetitions with ``--quick``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        '--repeats', type=int, default=None,
        help=f'interleaved repetitions kept (default {repeats}, '
        f'{quick_repeats} with --quick)')
    parser.add_argument(
        '--quick', action='store_true',
        help='a smoke run: tiny sizes, few repetitions; the numbers only '
        'show that the script works')
    parser.add_argument('--out', help='JSON file of the results')
    parser.add_argument(
        '--work-dir', default=DEFAULT_WORK_DIR,
        help='generated data and training runs (default: %(default)s)')
    parser.set_defaults(full_repeats=repeats, quick_repeats=quick_repeats)
    return parser


def add_int_options(parser: argparse.ArgumentParser,
                    helps: Dict[str, str]) -> None:
    """Add integer options left unset (``None``) by default, for
    :func:`parse_common` to fill in.

    Args:
        parser: The script's parser.
        helps: Option (``'--steps'``) -> its help.
    """
    for option, text in helps.items():
        parser.add_argument(option, type=int, help=text)


def add_step_options(parser: argparse.ArgumentParser) -> None:
    """Options of the scripts that time single training steps."""
    add_int_options(parser, {
        '--batch-size': 'clips per step (default 16, the demo\'s; 4 with '
        '--quick)',
        '--steps': 'timed steps per configuration and repetition',
        '--warmup': 'discarded steps before each timed block'})


def add_training_run_options(parser: argparse.ArgumentParser) -> None:
    """Options of the scripts that run whole (short) trainings."""
    add_int_options(parser, {
        '--train-per-class': 'training clips per class of the generated '
        'data (default 20: 136 train, 24 held out)',
        '--super-epoch': 'epochs per super-epoch (the demo config: 4)',
        '--super-epochs': 'super-epochs per run (default 2)',
        '--num-workers': "data-loader workers per process (default: the "
        "config's)"})


def parse_common(parser: argparse.ArgumentParser,
                 argv: Optional[Sequence[str]] = None,
                 defaults: Optional[dict] = None,
                 quick_defaults: Optional[dict] = None) -> argparse.Namespace:
    """Parse, then fill in the repetitions and every option left unset
    from ``defaults`` (``quick_defaults`` with ``--quick``)."""
    args = parser.parse_args(argv)
    for key, value in ((quick_defaults if args.quick else defaults)
                       or {}).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.repeats is None:
        args.repeats = args.quick_repeats if args.quick else args.full_repeats
    if args.repeats < 1:
        parser.error('--repeats must be at least 1')
    args.work_dir = osp.abspath(args.work_dir)
    return args


def new_result(script: str,
               title: str,
               args: argparse.Namespace,
               settings: dict,
               notes: Sequence[str] = ()) -> dict:
    """The skeleton of a script's result file.

    Args:
        script: The script's name.
        title: The result's title.
        args: The parsed options (``--quick``, the repetitions).
        settings: What the figures depend on, recorded with them.
        notes: The notes known from the start (how the figures are
            measured); others are appended as they come.
    """
    return dict(script=script, title=title, quick=bool(args.quick),
                repeats=args.repeats, device=device_name(),
                started=datetime.datetime.now().astimezone().isoformat(
                    timespec='seconds'),
                load_average_start=load_average(), settings=settings,
                figures=[], tables=[], notes=list(notes))


def add_table(result: dict, title: str, columns: Sequence[str],
              rows: Sequence[Sequence[object]]) -> None:
    """Append a table of absolute numbers to a result."""
    result['tables'].append(dict(title=title, columns=list(columns),
                                 rows=[list(r) for r in rows]))


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; anything else as is."""
    if isinstance(value, float):
        if value != value:
            return 'n/a'
        return f'{value:.{digits}g}'
    return '–' if value is None else str(value)


def figure_row(fig: dict) -> List[str]:
    """Table cells of a figure: ratio, spread, target, verdict, absolutes."""
    ratio, num, den = fig['ratio'], fig['numerator'], fig['denominator']
    verdict = '–' if fig['met'] is None else (
        'met' if fig['met'] else '**NOT met**')
    target = '–' if fig['target'] is None else f'≤ {fig["target"]:.2f}'
    return [
        fig['name'], f'{ratio["median"]:.3f}',
        f'{ratio["min"]:.3f}–{ratio["max"]:.3f}', target, verdict,
        f'{fmt(num["median"])} {num["unit"]} ({num["label"]})',
        f'{fmt(den["median"])} {den["unit"]} ({den["label"]})'
    ]


FIGURE_COLUMNS = ('figure', 'ratio (median)', 'min–max', 'target',
                  'verdict', 'measured (median)', 'reference (median)')


def markdown_table(columns: Sequence[str],
                   rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ['| ' + ' | '.join(columns) + ' |',
             '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(fmt(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def render_result(result: dict) -> str:
    """A script's result as markdown: figures, tables, notes."""
    parts = []
    if result['figures']:
        parts.append(markdown_table(
            FIGURE_COLUMNS, [figure_row(f) for f in result['figures']]))
    for table in result['tables']:
        parts.append(f'**{table["title"]}**\n\n' +
                     markdown_table(table['columns'], table['rows']))
    if result['notes']:
        parts.append('\n'.join(f'- {n}' for n in result['notes']))
    return '\n\n'.join(parts)


def write_result(result: dict, path: Optional[str]) -> None:
    """Finish a result, print it, and write it to ``path`` if given."""
    result['finished'] = datetime.datetime.now().astimezone().isoformat(
        timespec='seconds')
    result['load_average_end'] = load_average()
    if result['quick']:
        result['notes'].insert(
            0, 'QUICK SMOKE RUN: tiny sizes and one repetition on whatever '
            'else the machine was doing; these numbers are not '
            'measurements.')
    print(render_result(result), flush=True)
    if path:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'results written to {path}', flush=True)


def run_benchmark(args: argparse.Namespace,
                  make_result: Callable[[argparse.Namespace], dict],
                  probe: Callable[[argparse.Namespace], None]) -> None:
    """The ``main`` of a script with a ``--probe`` child (see
    :func:`run_child`).

    Args:
        args: The parsed options.
        make_result: Makes the script's result (:func:`new_result`), which
            :func:`write_result` then prints and writes to ``args.out``.
        probe: With ``--probe``, the only thing run: one measurement in
            this fresh process, emitted for the parent.
    """
    if args.probe:
        probe(args)
    else:
        write_result(make_result(args), args.out)


def say(line: str) -> None:
    """Progress on standard error (standard output carries the results)."""
    print(line, file=sys.stderr, flush=True)
