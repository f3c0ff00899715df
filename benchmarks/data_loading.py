"""Data loading: audio-visual pipelines against mmaction2's video-only one.

Three pipelines over the same MP4 files of a generated demo dataset, each
the demo config's training pipeline (``configs/_base_/datasets/demo_av.py``):

* ``video-only``: mmaction2's own ``VideoDataset`` with the pipeline's
  video transforms alone (``DecordInit``, ``SampleFrames``,
  ``DecordDecode``, crop, resize, flip, ``FormatShape``,
  ``PackActionInputs``): the reference;
* ``video+audio``: our ``AudioVisualDataset`` with the whole pipeline, the
  audio decoded from the file (``DecodeAudioTrack``) and turned into
  log-mel (``LogMelSpectrogram``); target: at most 1.25 x the reference's
  time per clip (audio adds at most 25 %);
* ``video+features``: the same with precomputed log-mel features
  (``tools/data/extract_audio_features.py``, then ``LoadLogMelFeature``).

Each repetition loads every clip once in this process (``dataset[i]``, no
worker processes: the figure is CPU time per clip, which is what the
workers of a data loader share), with the same random seed for every
pipeline, so all three sample the same frames and crops. The pipelines
alternate; the figures are medians of per-repetition ratios. A table
splits the audio-visual pipeline's time by transform. ``--variants``
repeats everything on other generated files: the demo's 2 s clips of
64 x 64 pixels, 10 s clips (``DecodeAudioTrack`` decodes the whole track
for every clip) and 10 s clips of 256 x 256 pixels (closer to Kinetics,
whose frames cost more to decode).

    python benchmarks/data_loading.py --out data_loading.json
"""
import argparse
import copy
import os.path as osp
import random
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

from _common import (REPO, add_table, base_parser, clock, emit_peak_memory,
                     interleave, new_result, parse_common, ratio_figure,
                     run_benchmark, run_child, say, summary)
from _workload import (ensure_demo_data, init_scope, load_config,
                       warm_file_cache)

PIPELINES = ('video-only', 'video+audio', 'video+features')
TARGET = 1.25
AUDIO_TRANSFORMS = ('DecodeAudioTrack', 'LogMelSpectrogram')
FULL = dict(clips_per_class=8, variants=['2x64', '10x64', '10x256'])
QUICK = dict(clips_per_class=1, variants=['2x64'])


def parse_args(argv=None):
    parser = base_parser(__doc__.splitlines()[0], repeats=5)
    parser.add_argument('--clips-per-class', type=int,
                        help='clips per class (8 classes; default 8)')
    parser.add_argument(
        '--variants', nargs='+', type=variant,
        help='datasets as SECONDSxPIXELS (default: 2x64, the demo\'s clips; '
        '10x64, longer clips; 10x256, Kinetics-like length and frames)')
    parser.add_argument('--probe', choices=PIPELINES,
                        help='(internal) peak memory of one pipeline')
    parser.add_argument('--data-root', help='(internal, with --probe)')
    return parse_common(parser, argv, FULL, QUICK)


def variant(text: str) -> str:
    """Check a ``SECONDSxPIXELS`` dataset variant (argparse type)."""
    try:
        seconds, size = text.lower().split('x')
        if float(seconds) <= 0 or int(size) < 32 or int(size) % 32:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r}: expected SECONDSxPIXELS, e.g. 10x256 (pixels a '
            'multiple of 32)') from None
    return text.lower()


def parse_variant(text: str) -> Tuple[float, int]:
    seconds, size = text.split('x')
    return float(seconds), int(size)


# the pipelines ---------------------------------------------------------------


def feature_root(data_root: str) -> str:
    return data_root + '-logmel'


def _log_mel(cfg) -> dict:
    return next(t for t in cfg.train_pipeline
                if t['type'] == 'LogMelSpectrogram')


def extract_features(data_root: str, cfg) -> str:
    """Precompute the log-mel features of every training clip with the
    repository's tool and the demo pipeline's parameters."""
    mel = _log_mel(cfg)
    decode = next(t for t in cfg.train_pipeline
                  if t['type'] == 'DecodeAudioTrack')
    argv = [data_root, feature_root(data_root), '--ann-file',
            osp.join(data_root, 'train_list.txt'), '--num-workers', '1',
            '--sample-rate', str(decode.get('sample_rate', 16000))]
    for key in ('n_fft', 'hop_length', 'n_mels', 'fmin', 'fmax', 'power',
                'scale'):
        if key in mel:
            argv += ['--' + key.replace('_', '-'), str(mel[key])]
    # raises with the end of the tool's output if it fails
    run_child(['python', osp.join(REPO, 'tools', 'data',
                                  'extract_audio_features.py'), *argv],
              threads=1, expect_result=False)
    return feature_root(data_root)


def _video_only(pipeline: Sequence[dict]) -> List[dict]:
    """mmaction2's video pipeline: the audio transforms taken out."""
    out = []
    for t in pipeline:
        if t['type'] in AUDIO_TRANSFORMS + ('FormatAudioShape', ):
            continue
        if t['type'] == 'PackActionInputs':
            t = dict(type='PackActionInputs')
        out.append(t)
    return out


def _with_features(pipeline: Sequence[dict], num_frames: int) -> List[dict]:
    """Decoding and log-mel replaced by ``LoadLogMelFeature``."""
    out = []
    for t in pipeline:
        if t['type'] == 'DecodeAudioTrack':
            out.append(dict(type='LoadLogMelFeature', num_frames=num_frames))
        elif t['type'] != 'LogMelSpectrogram':
            out.append(t)
    return out


def dataset_configs(cfg, data_root: str) -> Dict[str, dict]:
    """The three datasets over ``data_root``'s training list."""
    pipeline = [dict(t) for t in copy.deepcopy(cfg.train_pipeline)]
    common = dict(ann_file=osp.join(data_root, 'train_list.txt'))
    return OrderedDict([
        ('video-only', dict(common, type='VideoDataset',
                            data_prefix=dict(video=data_root),
                            pipeline=_video_only(pipeline))),
        ('video+audio', dict(common, type='AudioVisualDataset',
                             data_prefix=dict(video=data_root),
                             pipeline=pipeline)),
        ('video+features', dict(
            common, type='AudioVisualDataset', audio_suffix='.npy',
            data_prefix=dict(video=data_root,
                             audio=feature_root(data_root)),
            pipeline=_with_features(pipeline,
                                    _log_mel(cfg)['num_frames']))),
    ])


def build_datasets(cfg, data_root: str) -> Dict[str, object]:
    from mmaction.registry import DATASETS
    return OrderedDict((name, DATASETS.build(dataset)) for name, dataset in
                       dataset_configs(cfg, data_root).items())


# measuring -------------------------------------------------------------------


def _seed(seed: int) -> None:
    import numpy as np
    np.random.seed(seed)
    random.seed(seed)


def seconds_per_clip(dataset, seed: int = 0) -> float:
    """Load every clip once; mean seconds per clip."""
    _seed(seed)
    start = clock()
    for i in range(len(dataset)):
        dataset[i]
    return (clock() - start) / len(dataset)


def transform_breakdown(dataset, seed: int = 0) -> Dict[str, float]:
    """Mean seconds per clip of each transform of ``dataset``'s pipeline."""
    _seed(seed)
    totals: Dict[str, float] = OrderedDict()
    for i in range(len(dataset)):
        results = dataset.get_data_info(i)
        for transform in dataset.pipeline.transforms:
            start = clock()
            results = transform(results)
            name = type(transform).__name__
            totals[name] = totals.get(name, 0.0) + clock() - start
    return {k: v / len(dataset) for k, v in totals.items()}


def probe_memory(name: str, data_root: str, args) -> dict:
    return run_child(['python', osp.abspath(__file__), '--probe', name,
                      '--data-root', data_root], timeout=1800)


def run_probe(args) -> None:
    init_scope()
    emit_peak_memory(lambda: seconds_per_clip(build_datasets(
        load_config('naive'), args.data_root)[args.probe]))


def measure_variant(name: str, args, result: dict) -> None:
    """Every figure and table of one dataset variant."""
    cfg = load_config('naive')
    duration, size = parse_variant(name)
    label = f'{duration:g} s {size} px clips'
    data_root = ensure_demo_data(
        osp.join(args.work_dir, 'data',
                 f'loading-{args.clips_per_class}-{name}'),
        args.clips_per_class, duration=duration, size=size)
    extract_features(data_root, cfg)
    warm_file_cache(data_root)
    warm_file_cache(feature_root(data_root))
    datasets = build_datasets(cfg, data_root)
    clips = len(datasets['video-only'])
    say(f'data loading: {clips} {label}')
    seeds = iter(range(10**6))
    times = interleave(
        {n: (lambda d=d: seconds_per_clip(d, next(seeds)))
         for n, d in datasets.items()}, args.repeats, warmup_rounds=1,
        log=say)
    for pipe in PIPELINES[1:]:
        result['figures'].append(ratio_figure(
            f'{pipe} / video-only, {label}', times[pipe],
            times['video-only'], TARGET, pipe, 'mmaction2 video-only',
            unit='s/clip', note=f'{clips} clips, one process'))
    memory = {n: probe_memory(n, data_root, args) for n in PIPELINES}
    add_table(result, f'{label}: throughput and peak memory '
              '(one process; memory in a fresh process each)',
              ['pipeline', 'clips/s', 'ms/clip', 'peak RSS (MiB)',
               'increment (MiB)'],
              [[n, 1 / summary(times[n])['median'],
                1000 * summary(times[n])['median'],
                memory[n]['peak_rss_mib'], memory[n]['increment_mib']]
               for n in PIPELINES])
    breakdown(datasets, label, result)


def breakdown(datasets: Dict[str, object], label: str,
              result: dict) -> None:
    """Per-transform time of the audio-visual and feature pipelines."""
    parts = {n: transform_breakdown(datasets[n])
             for n in ('video+audio', 'video+features')}
    names = list(OrderedDict.fromkeys(
        list(parts['video+audio']) + list(parts['video+features'])))
    add_table(result, f'{label}: ms per clip by transform '
              '(one pass)',
              ['transform', 'video+audio', 'video+features'],
              [[n] + [1000 * parts[p][n] if n in parts[p] else None
                      for p in parts] for n in names])


def make_result(args) -> dict:
    """Every dataset variant's figures and tables."""
    init_scope()
    result = new_result(
        'data_loading', 'Data loading: audio-visual pipelines against '
        "mmaction2's video-only one", args,
        dict(clips_per_class=args.clips_per_class, variants=args.variants),
        notes=['A warm-up pass of every pipeline is discarded; files are '
               'read once before timing, so the figures are decoding and '
               'transform CPU time, not disk.'])
    for name in args.variants:
        measure_variant(name, args, result)
    return result


def main(argv=None) -> None:
    run_benchmark(parse_args(argv), make_result, run_probe)


if __name__ == '__main__':
    main()
