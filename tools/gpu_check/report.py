"""The GPU check's markdown summary, a function per section."""
import os.path as osp
from typing import List

from gpu_check.facts import tail


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return '–'
    if isinstance(value, float):
        return f'{value:.{digits}g}'
    return str(value)


def header(results: dict) -> List[str]:
    """Title, verdict and the machine's GPUs and versions."""
    env = results.get('environment') or {}
    cuda = env.get('cuda') or {}
    gpus = ', '.join(d['name'] for d in cuda.get('devices') or []) or 'none'
    versions = env.get('versions') or {}
    steps = results['steps']
    return [
        f'# GPU path check: {results["device"]}, {results["started"]}',
        '',
        f'**{"PASSED" if results["passed"] else "FAILED"}**: '
        f'{sum(r["passed"] for r in steps)} of {len(steps)} steps passed in '
        f'{results["wall_s"]} s (budget {results["budget_s"]} s, '
        f'{results["jobs"]} at a time), world size {results["world_size"]}.',
        '',
        f'Machine: GPUs {gpus}; Python {env.get("python", "?")}, torch '
        f'{versions.get("torch", "?")} (CUDA {cuda.get("torch_cuda", "–")},'
        f' NCCL {cuda.get("nccl", "–")}), mmengine '
        f'{versions.get("mmengine", "?")}, mmcv {versions.get("mmcv", "?")}, '
        f'mmaction2 {versions.get("mmaction", "?")}.']


def steps_table(results: dict) -> List[str]:
    """A row per step: result, seconds, what it checks, what failed."""
    lines = ['', '| step | result | s | what | failed checks |',
             '|---|---|---|---|---|']
    for r in results['steps']:
        if r['status'] == 'skipped':
            note = r['error_tail']
        else:
            note = ', '.join(r.get('failed_checks', [])) or '–'
        lines.append(f'| {r["name"]} | {r["status"]} | {r["seconds"]} | '
                     f'{r["what"]} | {note} |')
    return lines


def ratios(results: dict) -> List[str]:
    """The benchmark ratios with their spread, target and verdict."""
    bench = results.get('benchmarks') or {}
    if not bench.get('figures'):
        return []
    lines = ['', '## Ratios', '',
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
                  'whatever else the machine was doing; the ratios show '
                  'that the measurements run, they are not measurements.']
    s = bench.get('settings') or {}
    lines += ['', 'Steps: batch {batch}, {steps} timed after {warmup}, '
              '{repeats} repetitions; epochs: {super_epochs} super-epochs '
              'of {super_epoch}, batch {epoch_batch}, {epoch_repeats} '
              'repetitions.'.format(**s) if s else '']
    return lines


def memory(results: dict) -> List[str]:
    """Peak CUDA memory: the bench's per strategy, and mmengine's logged
    peak during the check's trainings."""
    lines = []
    peaks = (results.get('benchmarks') or {}).get('cuda_peak_mib') or {}
    if peaks:
        lines += ['', '## Peak CUDA memory (torch.cuda.max_memory_allocated, '
                  'MiB)', '', '| strategy | one training step | whole '
                  'epoch-level run |', '|---|---|---|']
        for name, m in peaks.items():
            lines.append(f'| {name} | {_fmt(m.get("step"))} | '
                         f'{_fmt(m.get("run"))} |')
    trained = [r for r in results['steps'] if (r.get('facts') or {}).get(
        'cuda_memory_logged_mib') is not None]
    if trained:
        lines += ['', 'Peak CUDA memory logged by mmengine during the '
                  'check\'s trainings (MiB): ' + ', '.join(
                      f'{r["name"]} {r["facts"]["cuda_memory_logged_mib"]}'
                      for r in trained) + '.']
    return lines


def not_run(results: dict) -> List[str]:
    """What this device leaves out, and why."""
    if not results.get('not_run'):
        return []
    return ['', '## Not run on this device', ''] + [
        f'- {n["step"]}: {n["reason"]}' for n in results['not_run']]


def errors(results: dict) -> List[str]:
    """The last lines of each failed step's log."""
    lines = []
    failed = [r for r in results['steps'] if not r['passed']]
    if failed:
        lines += ['', '## Errors', '']
        for r in failed:
            lines += [f'### {r["name"]}', '', '```',
                      tail(r['error_tail'] or '', 15), '```', '']
    return lines


def footer(results: dict) -> List[str]:
    """Where the JSON and the logs are."""
    return ['', f'Results: `{osp.basename(results["results_file"])}`; '
            'logs in the work dir '
            f'(`{results["settings"]["work_dir"]}/logs`).', '']


SECTIONS = (header, steps_table, ratios, memory, not_run, errors, footer)


def render_markdown(results: dict) -> str:
    """A short summary: verdict, steps, figures, memory, what was left out,
    errors."""
    return '\n'.join(line for section in SECTIONS
                     for line in section(results))
