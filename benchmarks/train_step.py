"""Training-step cost of the multi-head recognizer against mmaction2's own.

The demo model (``MultiHeadRecognizer``: ResNet3d-18 on RGB, AudioResNet-18
on log-mel, 16 base channels each, concat fusion, three heads) against
mmaction2's stock uni-modal recognizers built from the *same backbone
configs*: ``Recognizer3D`` + ``I3DHead`` and ``RecognizerAudio`` +
``TSNAudioHead``. Each runs ``model.train_step(data, optim_wrapper)`` with
the demo schedule's optim wrapper (SGD, gradient clipping) on the same
synthetic batch of the demo pipeline's shapes (``imgs`` uint8
``[N, 1, 3, 8, 56, 56]``, ``audios`` ``[N, 1, 1, 100, 40]``), so data
loading is left out.

Target: multi-head step <= 1.05 x (stock RGB step + stock audio step),
the two networks trained separately. Also reported: our recognizer with one
branch against the stock one (the framework's own overhead).

    python benchmarks/train_step.py --out train_step.json
"""
import os.path as osp
from typing import Callable, Dict

from _common import (add_step_options, add_table, base_parser,
                     emit_peak_memory, interleave, median_time, new_result,
                     parse_common, ratio_figure, run_benchmark, run_child,
                     say, summary)
from _workload import (build_trainable, init_scope, load_config, sample_shapes,
                       stock_model_configs, synthetic_batch, train_step_fn)

TARGET = 1.05
# name: (what, which model, input keys, inputs as a dict)
CONFIGS = {
    'multi-head': ('MultiHeadRecognizer, RGB + audio (naive fusion)',
                   'naive', ('imgs', 'audios'), True),
    'stock-rgb': ('Recognizer3D + I3DHead', 'stock:rgb', ('imgs', ), False),
    'stock-audio': ('RecognizerAudio + TSNAudioHead', 'stock:audio',
                    ('audios', ), False),
    # a batch of the inputs the model reads, as for the stock recognizers
    'ours-rgb': ('MultiHeadRecognizer, RGB only', 'rgb_only', ('imgs', ),
                 True),
    'ours-audio': ('MultiHeadRecognizer, audio only', 'audio_only',
                   ('audios', ), True),
}
FULL = dict(batch_size=16, warmup=3, steps=10)
QUICK = dict(batch_size=2, warmup=1, steps=2)


def parse_args(argv=None):
    parser = base_parser(__doc__.splitlines()[0], repeats=7)
    add_step_options(parser)
    parser.add_argument('--probe', choices=sorted(CONFIGS),
                        help='(internal) peak memory of one configuration')
    return parse_common(parser, argv, FULL, QUICK)


def model_config(source: str, demo) -> dict:
    """The model config of a configuration (see :data:`CONFIGS`)."""
    if source.startswith('stock:'):
        return stock_model_configs(demo)[source.split(':')[1]]
    return load_config(source).model


def build_step(name: str, batch_size: int) -> Callable[[], None]:
    """One training step of configuration ``name``."""
    _, source, keys, as_dict = CONFIGS[name]
    demo = load_config('naive')
    model, wrapper = build_trainable(model_config(source, demo),
                                     demo.optim_wrapper)
    batch = synthetic_batch(sample_shapes(demo), keys, batch_size,
                            demo.model.num_classes, as_dict=as_dict)
    return train_step_fn(model, wrapper, batch)


def probe_memory(name: str, args) -> dict:
    """Peak memory of one configuration in a fresh process."""
    return run_child(['python', osp.abspath(__file__), '--probe', name,
                      '--batch-size', args.batch_size, '--warmup',
                      args.warmup, '--steps', args.steps], timeout=1800)


def run_probe(args) -> None:
    init_scope()
    emit_peak_memory(lambda: median_time(
        build_step(args.probe, args.batch_size), args.steps, args.warmup))


def figures(times: Dict[str, list], result: dict) -> None:
    stock_sum = [r + a for r, a in zip(times['stock-rgb'],
                                       times['stock-audio'])]
    result['figures'].append(ratio_figure(
        'multi-head step / (stock RGB step + stock audio step)',
        times['multi-head'], stock_sum, TARGET, 'multi-head',
        'Recognizer3D + RecognizerAudio',
        note='same backbones, batch and optimizer'))
    for mod in ('rgb', 'audio'):
        result['figures'].append(ratio_figure(
            f'our {mod}-only recognizer / stock {mod} recognizer',
            times[f'ours-{mod}'], times[f'stock-{mod}'], None,
            f'ours-{mod}', f'stock-{mod}',
            note='framework overhead with one branch'))


def make_result(args) -> dict:
    """The step figures and the per-configuration table."""
    init_scope()
    result = new_result(
        'train_step', 'Training step: multi-head against stock uni-modal '
        'recognizers', args, {k: getattr(args, k) for k in FULL},
        notes=['Memory increment: peak resident memory minus the resident '
               'memory after the imports; the sum of the two stock '
               'increments is what training them separately needs beyond '
               'one interpreter each.'])
    steps = {name: build_step(name, args.batch_size) for name in CONFIGS}
    say(f'train step: {", ".join(CONFIGS)}, batch {args.batch_size}')
    times = interleave(
        {n: (lambda s=s: median_time(s, args.steps, args.warmup))
         for n, s in steps.items()}, args.repeats, log=say)
    figures(times, result)
    memory = {name: probe_memory(name, args) for name in CONFIGS}
    add_table(result, f'Per configuration (batch {args.batch_size}): median '
              'step and peak memory (fresh process each)',
              ['configuration', 'model', 'step (s)', 'clips/s',
               'peak RSS (MiB)', 'increment (MiB)', 'CUDA peak (MiB)'],
              [[name, CONFIGS[name][0], summary(times[name])['median'],
                args.batch_size / summary(times[name])['median'],
                memory[name]['peak_rss_mib'], memory[name]['increment_mib'],
                memory[name].get('cuda_peak_mib')] for name in CONFIGS])
    return result


def main(argv=None) -> None:
    run_benchmark(parse_args(argv), make_result, run_probe)


if __name__ == '__main__':
    main()
