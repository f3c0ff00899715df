"""The GPU check's command line: the plugin's GPU path in one command.

    tools/gpu_check/run.sh                 # on a machine with CUDA GPUs
    tools/gpu_check/run.sh --device cpu    # the same flow on CPU, tiny
    tools/gpu_check/run.sh --prepare       # here: fetch the wheels (.whl/)

What each step runs and checks: ``tools/gpu_check/README.md`` and
``steps.py``; how they are run: ``schedule.py``. Only the standard library
is imported here: on the GPU machine nothing else is installed before the
``install`` step.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

# run as a script: tools/ on the path makes this folder the package
# gpu_check (appended, so that tools/test.py never shadows the stdlib's test)
sys.path.append(osp.dirname(osp.dirname(osp.abspath(__file__))))

from gpu_check.common import DEFAULT_SITE, DEFAULT_WHEELS, REPO  # noqa: E402
from gpu_check.steps import PROFILES  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The options; ``--budget`` and ``--jobs`` default per device."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda',
                        help='cuda (default): every GPU, NCCL, --amp; '
                        'cpu: gloo, tiny sizes, the installed environment')
    parser.add_argument('--prepare', action='store_true',
                        help='here, with network: download the wheels for '
                        'the GPU machine into --wheels and report the sizes')
    parser.add_argument('--wheels', default=DEFAULT_WHEELS,
                        help='the wheel folder (default: .whl/ in the '
                        'repository root)')
    parser.add_argument('--site', default=DEFAULT_SITE,
                        help='where the wheels are installed (default: '
                        'gpu_check_site in the temporary folder, '
                        '%(default)s here)')
    parser.add_argument('--no-install', action='store_true',
                        help='use what is installed; no wheels')
    parser.add_argument('--out-dir',
                        default=osp.join(REPO, 'benchmarks', 'results'),
                        help='where the JSON and markdown go (default: '
                        'benchmarks/results)')
    parser.add_argument('--work-dir',
                        default=osp.join(REPO, 'work_dirs', 'gpu_check'),
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
                        help='the interpreter of the steps, and whose pip '
                        '--prepare uses (default: this one)')
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


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check (or ``--prepare``); 0 when everything passed."""
    args = parse_args(argv)
    if args.prepare:
        from gpu_check.travel import prepare
        return prepare(args.wheels, args.python)
    from gpu_check.schedule import Check
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
