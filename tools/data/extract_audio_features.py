#!/usr/bin/env python
"""Extract log-mel features of a whole dataset's audio, one ``.npy`` a file.

For every source file (the paths of annotation lists, or every file under
``SRC_ROOT`` with one of the given extensions) the whole audio track is
decoded with :func:`read_audio_track`, turned into log-mel features with
:func:`log_mel_spectrogram` and saved as a float32 ``(num_frames, n_mels)``
array at ``DST_ROOT/<relative path without extension>.npy``, the path
``AudioVisualDataset(audio_suffix='.npy', data_prefix=dict(audio=DST_ROOT))``
reads with ``LoadLogMelFeature``.

Unlike mmaction2's ``tools/data/build_audio_features.py`` this tool

* never swallows an error: every file that fails is listed with its reason at
  the end, and the exit status is 1;
* writes each ``.npy`` atomically (a temporary file in the same folder, then
  ``os.replace``), so an interrupted run leaves no half-written feature file,
  and a re-run skips the files already done;
* records its parameters in ``DST_ROOT/extract_audio_features.json`` and
  refuses to mix features of other parameters into the same ``DST_ROOT``.

Example::

    python tools/data/extract_audio_features.py \\
        data/kinetics400/videos_train data/kinetics400/audio_feature_train \\
        --ann-file data/kinetics400/kinetics400_train_list_videos.txt \\
        --num-workers 8
"""
import argparse
import json
import multiprocessing
import os
import os.path as osp
import sys
import time
import traceback
import uuid
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mmaction_gblend.datasets.errors import BadSampleError
from mmaction_gblend.datasets.transforms.audio_decoding import read_audio_track
from mmaction_gblend.datasets.transforms.log_mel import (SCALES,
                                                         log_mel_spectrogram)

# the modules beside this script, also when it is loaded by its path (tests)
if osp.dirname(osp.abspath(__file__)) not in sys.path:
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from audio_feature_sources import (DEFAULT_EXTS, collect_files,  # noqa: E402
                                   find_collisions, output_path)

METADATA_FILE = 'extract_audio_features.json'
# Marks the temporary files of the atomic writes: ``.<name>.npy<TMP_TAG>...``.
TMP_TAG = '.extract-tmp-'


def feature_params(args: argparse.Namespace) -> Dict:
    """The parameters that decide the features (stored in the metadata).

    Args:
        args: Parsed command line.

    Returns:
        Keyword arguments of :func:`log_mel_spectrogram` (``sample_rate``
        also goes to :func:`read_audio_track`).
    """
    return dict(
        sample_rate=args.sample_rate,
        n_fft=args.n_fft,
        hop_length=args.hop_length,
        n_mels=args.n_mels,
        fmin=args.fmin,
        fmax=args.fmax,
        power=args.power,
        scale=args.scale)


def save_atomic(path: str, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` so that ``path`` is never half-written.

    The array goes to a temporary file in the same folder, which then
    replaces ``path`` in one step (``os.replace``). On any error the
    temporary file is removed and an existing ``path`` stays as it was.

    Args:
        path: The destination ``.npy`` file; its folder is created.
        array: The array to save (without pickling).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(
        folder, f'.{osp.basename(path)}{TMP_TAG}{os.getpid()}-'
        f'{uuid.uuid4().hex[:8]}')
    # os.open with 0o666 respects the umask, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def remove_stale_temp_files(folders: Iterable[str]) -> int:
    """Remove temporary files that a killed run left in ``folders``.

    Returns:
        How many were removed.
    """
    removed = 0
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith('.') and TMP_TAG in name:
                try:
                    os.remove(osp.join(folder, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed


def existing_feature_problem(path: str, n_mels: int) -> Optional[str]:
    """Check an existing ``.npy`` from its header, without loading it.

    Args:
        path: An existing feature file.
        n_mels: The expected number of columns.

    Returns:
        ``None`` if it holds a complete float32 ``(num_frames, n_mels)``
        array with ``num_frames > 0``, else what is wrong with it.
    """
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        with open(path, 'rb') as f:
            version = np.lib.format.read_magic(f)
            if version not in readers:
                return f'unsupported .npy format version {version}'
            shape, _, dtype = readers[version](f)
            data_start = f.tell()
    except (OSError, ValueError) as err:
        return f'not a readable .npy file ({err})'
    expected_size = data_start + int(np.prod(shape)) * dtype.itemsize
    actual_size = osp.getsize(path)
    if actual_size != expected_size:
        return (f'file is {actual_size} bytes, its header implies '
                f'{expected_size} (truncated?)')
    if dtype != np.float32 or len(shape) != 2 or shape[0] == 0 \
            or shape[1] != n_mels:
        return (f'holds a {dtype} array of shape {shape}, not float32 '
                f'(num_frames, {n_mels})')
    return None


def extract_one(src_path: str, dst_path: str, params: Dict) -> Tuple[int, int]:
    """Decode one file's audio, compute its log-mel features and save them.

    Args:
        src_path: The video or audio file.
        dst_path: The ``.npy`` file to write (atomically).
        params: :func:`feature_params`.

    Returns:
        The shape of the saved features, ``(num_frames, n_mels)``.

    Raises:
        BadSampleError: The file is missing, empty, undecodable, has no audio
            stream or no samples, or gives non-finite samples or features.
        Exception: Whatever else decoding or saving raises.
    """
    track = read_audio_track(src_path, params['sample_rate'])
    if track.size == 0:
        raise BadSampleError(src_path, 'audio track has no samples')
    if not np.isfinite(track).all():
        raise BadSampleError(src_path, 'audio samples are not finite')
    feats = log_mel_spectrogram(track, **params)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise BadSampleError(
            src_path, f'log-mel features have shape {feats.shape}, expected '
            '(num_frames, n_mels) with num_frames > 0')
    if not np.isfinite(feats).all():
        raise BadSampleError(src_path, 'log-mel features are not finite')
    save_atomic(dst_path, np.ascontiguousarray(feats, dtype=np.float32))
    return feats.shape


def process_task(task: Tuple[str, str, str, Dict, bool]) -> Dict:
    """Skip, extract or fail one file; never raises an ``Exception``.

    Args:
        task: ``(relpath, src_path, dst_path, params, overwrite)``.

    Returns:
        ``dict(path, status, reason, shape)`` with ``status`` one of
        ``'done'``, ``'skipped'``, ``'failed'``; failures of unexpected
        kinds also carry ``traceback``.
    """
    relpath, src_path, dst_path, params, overwrite = task
    result = dict(path=relpath, status='done', reason=None, shape=None)
    try:
        if not overwrite and osp.lexists(dst_path):
            problem = existing_feature_problem(dst_path, params['n_mels'])
            if problem is None:
                result['status'] = 'skipped'
                return result
            raise BadSampleError(
                dst_path, f'existing feature file is invalid: {problem}; '
                'delete it or pass --overwrite')
        result['shape'] = list(extract_one(src_path, dst_path, params))
    except BadSampleError as err:
        result.update(status='failed', reason=str(err))
    except Exception as err:  # reported, never swallowed
        result.update(
            status='failed',
            reason=f'{src_path}: {type(err).__name__}: {err}',
            traceback=traceback.format_exc())
    return result


class _Progress:
    """mmengine's progress bar on a terminal, a line per 10 % otherwise."""

    def __init__(self, total: int, stream=None) -> None:
        self.total = total
        self.stream = stream = stream or sys.stderr
        self.count = 0
        self.tty = hasattr(stream, 'isatty') and stream.isatty()
        self.bar = None
        self.next_report = 0.1
        if self.tty and total > 0:
            from mmengine.utils import ProgressBar
            self.bar = ProgressBar(total, file=stream)

    def update(self) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update()
        elif self.total and self.count / self.total >= self.next_report:
            print(f'  {self.count}/{self.total} files', file=self.stream,
                  flush=True)
            while self.next_report <= self.count / self.total:
                self.next_report += 0.1

    def close(self) -> None:
        if self.bar is not None:
            self.stream.write('\n')
            self.stream.flush()


def run_tasks(tasks: List[Tuple], num_workers: int) -> List[Dict]:
    """Run :func:`process_task` on every task, in ``num_workers`` processes.

    Args:
        tasks: See :func:`process_task`.
        num_workers: Processes; 1 runs them in this process.

    Returns:
        One result per task, in order of completion.
    """
    progress = _Progress(len(tasks))
    results = []
    try:
        if num_workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                results.append(process_task(task))
                progress.update()
        else:
            with multiprocessing.Pool(min(num_workers, len(tasks))) as pool:
                for result in pool.imap_unordered(
                        process_task, tasks, chunksize=1):
                    results.append(result)
                    progress.update()
    finally:
        progress.close()
    return results


def _read_metadata(path: str) -> Dict:
    with open(path, encoding='utf-8') as f:
        meta = json.load(f)
    if not isinstance(meta, dict) or not isinstance(meta.get('params'), dict):
        raise ValueError('no "params" object in it')
    return meta


def _write_json_atomic(path: str, obj: Dict) -> None:
    tmp = f'{path}{TMP_TAG}{os.getpid()}'
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=2)
            f.write('\n')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def params_conflict(meta_path: str, params: Dict) -> Optional[str]:
    """Compare the parameters recorded in ``DST_ROOT`` with ``params``.

    Args:
        meta_path: ``DST_ROOT/extract_audio_features.json``.
        params: :func:`feature_params` of this run.

    Returns:
        ``None`` if there is no record or it matches, else a message naming
        the differing keys.
    """
    if not osp.exists(meta_path):
        return None
    try:
        old = _read_metadata(meta_path)['params']
    except (OSError, ValueError) as err:
        return (f'cannot read {meta_path} ({err}), so the parameters of the '
                'features already there are unknown')
    differing = sorted(
        key for key in set(old) | set(params)
        if old.get(key) != params.get(key))
    if not differing:
        return None
    changes = ', '.join(f'{key}: {old.get(key)!r} -> {params.get(key)!r}'
                        for key in differing)
    return (f'{meta_path} records features made with other parameters '
            f'({changes}); differing keys: {", ".join(differing)}')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='Extract log-mel features of the audio of every file of '
        'a dataset into DST_ROOT/<relative path>.npy (float32, '
        '(num_frames, n_mels)). Files whose .npy exists are skipped, so a '
        're-run finishes an interrupted job. Every failure is listed at the '
        'end; the exit status is 1 if any file failed.')
    parser.add_argument('src_root', metavar='SRC_ROOT',
                        help='root of the videos / audio files')
    parser.add_argument('dst_root', metavar='DST_ROOT',
                        help='root of the .npy features (created)')
    parser.add_argument(
        '--ann-file', nargs='+', action='extend', default=None,
        metavar='LIST',
        help='annotation lists ("relative/path.mp4 label" lines, relative to '
        'SRC_ROOT); may be given several times. Without it, every file under '
        'SRC_ROOT with one of --ext is processed')
    parser.add_argument(
        '--ext', nargs='+', default=list(DEFAULT_EXTS), metavar='EXT',
        help='extensions to look for without --ann-file (default: '
        f'{" ".join(DEFAULT_EXTS)})')
    parser.add_argument(
        '--num-workers', type=int, default=min(4, os.cpu_count() or 1),
        help='worker processes; 1 runs in this process (default: '
        'min(4, cpu count))')
    parser.add_argument('--sample-rate', type=int, default=16000,
                        help='rate to resample the audio to, in Hz')
    parser.add_argument('--n-fft', type=int, default=512, help='FFT size')
    parser.add_argument('--hop-length', type=int, default=256,
                        help='samples between frames')
    parser.add_argument('--n-mels', type=int, default=80,
                        help='number of mel bins')
    parser.add_argument('--fmin', type=float, default=125.0,
                        help='lowest mel frequency in Hz')
    parser.add_argument('--fmax', type=float, default=7600.0,
                        help='highest mel frequency in Hz')
    parser.add_argument('--power', type=float, default=1.0,
                        help='1: magnitude spectrum (mmaction2), 2: power')
    parser.add_argument(
        '--scale', choices=SCALES, default='normalized_db',
        help="'normalized_db': mmaction2's [0, 1] dB scale; 'log': log(x)")
    parser.add_argument(
        '--overwrite', action='store_true',
        help='recompute existing .npy files, and allow other parameters '
        'than those recorded in DST_ROOT')
    args = parser.parse_args(argv)

    for name in ('num_workers', 'sample_rate', 'n_fft', 'hop_length',
                 'n_mels'):
        if getattr(args, name) <= 0:
            parser.error(f'--{name.replace("_", "-")} must be positive, got '
                         f'{getattr(args, name)}')
    if args.power <= 0:
        parser.error(f'--power must be positive, got {args.power}')
    if not 0 <= args.fmin < args.fmax <= args.sample_rate / 2:
        parser.error('need 0 <= --fmin < --fmax <= sample rate / 2, got '
                     f'fmin={args.fmin}, fmax={args.fmax}, '
                     f'sample rate={args.sample_rate}')
    return args


def _sources(args: argparse.Namespace) -> Optional[List[str]]:
    """The files to process, relative to SRC_ROOT; ``None`` (exit status 2)
    after printing why there are none or why they cannot be processed."""
    try:
        relpaths = collect_files(
            args.src_root, args.ann_file, args.ext, exclude=args.dst_root)
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return None
    if not relpaths:
        where = ('the annotation files' if args.ann_file else
                 f'{args.src_root} with extensions {" ".join(args.ext)}')
        print(f'error: no files to process in {where}', file=sys.stderr)
        return None
    collisions = find_collisions(relpaths)
    if collisions:
        lines = '\n'.join(f'  {stem}.npy <- {", ".join(srcs)}'
                          for stem, srcs in sorted(collisions.items()))
        print('error: several source files would write the same feature '
              f'file (narrow --ext or the annotation list):\n{lines}',
              file=sys.stderr)
        return None
    return relpaths


def _parameters_allowed(args: argparse.Namespace, params: Dict,
                        relpaths: List[str], meta_path: str) -> bool:
    """Whether DST_ROOT may take features of ``params``; prints the error
    (exit status 2) or the warning."""
    dst_root = args.dst_root
    conflict = params_conflict(meta_path, params)
    if conflict is not None:
        if not args.overwrite:
            print(f'error: {conflict}. Refusing to mix features of different '
                  'parameters in one DST_ROOT: use the same parameters, '
                  'another DST_ROOT, or --overwrite to recompute every file.',
                  file=sys.stderr)
            return False
        print(f'warning: {conflict}; --overwrite recomputes the listed '
              'files (other .npy files in DST_ROOT keep the old '
              'parameters)', file=sys.stderr)
    elif not osp.exists(meta_path) and osp.isdir(dst_root) \
            and not args.overwrite and any(
                osp.exists(output_path(dst_root, p)) for p in relpaths):
        print(f'warning: {dst_root} has feature files but no '
              f'{METADATA_FILE}; they are taken to match the parameters of '
              'this run', file=sys.stderr)
    return True


def _report(results: List[Dict], meta: Dict, meta_path: str) -> int:
    """Record the results in the metadata and print them; the exit status
    (1 if some file failed)."""
    counts = {status: 0 for status in ('done', 'skipped', 'failed')}
    for result in results:
        counts[result['status']] += 1
    failures = sorted((r for r in results if r['status'] == 'failed'),
                      key=lambda r: r['path'])
    meta.update(
        finished=time.strftime('%Y-%m-%d %H:%M:%S'),
        counts=dict(total=len(results), **counts),
        failures=[{k: v for k, v in r.items() if k not in ('status', 'shape')}
                  for r in failures])
    _write_json_atomic(meta_path, meta)

    print(f'{len(results)} files: {counts["done"]} done, '
          f'{counts["skipped"]} skipped (features already exist), '
          f'{counts["failed"]} failed')
    if failures:
        print(f'{len(failures)} failed files:')
        for result in failures:
            print(f'  {result["reason"]}')
        print(f'(also listed in {meta_path})')
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the extraction.

    Args:
        argv: Command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        0 if every file has its features, 1 if some failed, 2 if nothing was
        done (bad input or parameters that differ from those in DST_ROOT).
    """
    args = parse_args(argv)
    params = feature_params(args)
    src_root, dst_root = args.src_root, args.dst_root

    relpaths = _sources(args)
    if relpaths is None:
        return 2
    meta_path = osp.join(dst_root, METADATA_FILE)
    if not _parameters_allowed(args, params, relpaths, meta_path):
        return 2

    os.makedirs(dst_root, exist_ok=True)
    meta = dict(
        params=params,
        src_root=osp.abspath(src_root),
        ann_files=[osp.abspath(f) for f in args.ann_file or []],
        ext=None if args.ann_file else list(args.ext),
        layout='float32 (num_frames, n_mels), '
        'num_frames = 1 + num_samples // hop_length',
        started=time.strftime('%Y-%m-%d %H:%M:%S'),
        finished=None,
        counts=None,
        failures=None)
    # Recorded before the work starts, so that a run that dies half-way
    # still marks DST_ROOT with its parameters.
    _write_json_atomic(meta_path, meta)

    dst_dirs = sorted(
        {osp.dirname(output_path(dst_root, p)) for p in relpaths})
    stale = remove_stale_temp_files(dst_dirs)
    if stale:
        print(f'removed {stale} temporary files of an interrupted run',
              file=sys.stderr)

    tasks = [(p, osp.join(src_root, p), output_path(dst_root, p), params,
              args.overwrite) for p in relpaths]
    print(f'extracting log-mel features of {len(tasks)} files from '
          f'{src_root} into {dst_root} with {args.num_workers} worker(s)',
          file=sys.stderr)
    try:
        results = run_tasks(tasks, args.num_workers)
    except BaseException:
        # Workers killed by Pool.terminate() may leave temporary files.
        remove_stale_temp_files(dst_dirs)
        raise

    return _report(results, meta, meta_path)


if __name__ == '__main__':
    sys.exit(main())
