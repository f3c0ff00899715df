"""A dataset of video files whose audio is a second modality."""
import logging
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Union

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS
from mmengine.logging import print_log

from ..utils.choices import check_choice
from .errors import (BadSampleError, TooManyBadSamplesError,
                     check_sample_file)

MISSING_AUDIO_POLICIES = ('error', 'silence')
BAD_SAMPLE_POLICIES = ('error', 'skip')
# bad files listed in full in the error that ends a 'skip' policy
_LISTED_BAD_FILES = 20


def has_audio_stream(path: str) -> bool:
    """Whether a media file has an audio stream (reads the header only)."""
    import av
    try:
        with av.open(path) as container:
            return len(container.streams.audio) > 0
    except (av.error.FFmpegError, OSError):
        return False


@DATASETS.register_module()
class AudioVisualDataset(VideoDataset):
    """Video files with labels, whose sound is read as a second modality.

    The annotation file has one ``relative/path.mp4 label`` line per sample
    (mmaction2's ``VideoDataset`` format; several labels with
    ``multi_class=True``). Where the audio comes from:

    * ``audio_suffix=None`` (default): the audio track of the video file,
      decoded by :class:`DecodeAudioTrack`;
    * ``audio_suffix='.wav'`` (or another audio extension): a separate file,
      ``data_prefix['audio']/relative/path.wav``, decoded the same way;
    * ``audio_suffix='.npy'``: precomputed log-mel features at that path,
      read by :class:`LoadLogMelFeature` (see
      ``tools/data/extract_audio_features.py``).

    Optical flow, as a third modality, comes from frames extracted beside
    the videos (mmaction2's ``tools/data/build_rawframes.py``):
    ``data_prefix['flow']/relative/path/flow_{x,y}_00001.jpg``, read by
    :class:`LoadFlowFrames`.

    Each sample gets ``filename``, ``label``, ``audio_path`` and
    ``audio_missing`` (and ``flow_dir`` with a ``flow`` prefix). Loading a
    sample checks that its files exist and are not empty, and any failure
    in the pipeline is raised as a :class:`BadSampleError` whose message
    starts with the file's path (``bad_sample='error'``, the default), or,
    with ``bad_sample='skip'``, is logged and counted and the sample is
    replaced by another.

    Args:
        ann_file: Path of the annotation file.
        pipeline: The transforms.
        data_prefix: ``video`` (prefix of the annotation paths); for
            separate audio files, ``audio`` (defaults to the video prefix);
            for optical flow frames, ``flow``.
        audio_suffix: See above.
        missing_audio: What to do with a video that has no audio track.
            ``'error'`` (default): the sample raises when loaded.
            ``'silence'``: the dataset probes every file's header once when
            it is built, logs how many have no audio track (and which), and
            those samples get silence; :attr:`num_missing_audio` holds the
            count. Only for decoded audio (not ``.npy`` features).
        bad_sample: What to do with a sample that fails to load (missing,
            empty, truncated or undecodable file, no audio stream unless
            ``missing_audio='silence'``, audio or video too short for the
            clip, non-finite or malformed features).
            ``'error'`` (default): raise its :class:`BadSampleError`, which
            names the file, also from a data-loader worker.
            ``'skip'``: log a WARNING with the file and the reason, count
            it, and load a random other sample instead (mmengine's refetch,
            up to ``max_refetch`` tries); :attr:`bad_samples` maps each bad
            file to its reason. Training only: with ``test_mode=True`` a
            bad sample is always an error, so that evaluation never drops
            samples silently.
        max_bad_samples: With ``bad_sample='skip'``, the number of distinct
            bad files tolerated; one more raises a
            :class:`TooManyBadSamplesError` listing them (a wrong
            ``data_prefix`` or a lost disk fails fast instead of training
            on what is left). Counted per process, in the dataset copy that
            loads the samples: with ``num_workers=0`` over the whole run;
            otherwise each data-loader worker (of each rank) counts the
            files it met since it started, which is every epoch unless
            ``persistent_workers=True``. So with ``W`` workers up to
            ``W * max_bad_samples`` distinct files may be skipped, and the
            warnings' counts are per worker (they carry its pid).
        **kwargs: Passed to ``VideoDataset``.
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 data_prefix: Optional[dict] = None,
                 audio_suffix: Optional[str] = None,
                 missing_audio: str = 'error',
                 bad_sample: str = 'error',
                 max_bad_samples: int = 100,
                 **kwargs) -> None:
        check_choice('AudioVisualDataset.missing_audio', missing_audio,
                     MISSING_AUDIO_POLICIES)
        if audio_suffix is not None and not audio_suffix.startswith('.'):
            raise ValueError('AudioVisualDataset.audio_suffix must start with '
                             f"'.', got {audio_suffix!r}")
        if missing_audio == 'silence' and audio_suffix == '.npy':
            raise ValueError(
                "AudioVisualDataset.missing_audio='silence' needs decoded "
                "audio; with audio_suffix='.npy' a missing feature file is "
                'an error (re-extract it)')
        check_choice('AudioVisualDataset.bad_sample', bad_sample,
                     BAD_SAMPLE_POLICIES)
        if isinstance(max_bad_samples, bool) or \
                not isinstance(max_bad_samples, int) or max_bad_samples < 0:
            raise ValueError('AudioVisualDataset.max_bad_samples must be an '
                             f'integer >= 0, got {max_bad_samples!r}')
        data_prefix = dict(data_prefix or {})
        data_prefix.setdefault('video', '')
        data_prefix.setdefault('audio', data_prefix['video'])
        self.audio_suffix = audio_suffix
        self.missing_audio = missing_audio
        self.num_missing_audio = 0
        self.bad_sample = bad_sample
        self.max_bad_samples = max_bad_samples
        self.bad_samples: Dict[str, str] = {}
        self.num_skipped = 0
        super().__init__(ann_file, pipeline, data_prefix=data_prefix, **kwargs)
        if bad_sample == 'skip' and self.test_mode:
            # configs often share dataset options between train and val
            print_log(
                f"{self.ann_file}: bad_sample='skip' does not apply with "
                'test_mode=True; a bad sample stops evaluation with an '
                'error naming its file rather than drop out of the metric',
                logger='current', level=logging.WARNING)

    @property
    def skips_bad_samples(self) -> bool:
        """Whether a bad sample is skipped (``bad_sample='skip'``, training)
        rather than raised; :meth:`prepare_data` then returns ``None``."""
        return self.bad_sample == 'skip' and not self.test_mode

    def _parse_line(self, line: str, lineno: int) -> dict:
        fields = line.split(self.delimiter) if self.delimiter != ' ' \
            else line.split()
        where = f'{self.ann_file}, line {lineno}'
        if len(fields) < 2 and not self.test_mode:
            raise ValueError(f'{where}: expected "path label", got {line!r}')
        try:
            labels = [int(x) for x in fields[1:]]
        except ValueError:
            raise ValueError(
                f'{where}: labels must be integers, got {line!r}') from None
        if self.multi_class:
            label: Union[int, List[int]] = labels
        elif len(labels) > 1:
            raise ValueError(f'{where}: several labels but multi_class=False')
        else:
            label = labels[0] if labels else -1
        return dict(relpath=fields[0], label=label)

    def load_data_list(self) -> List[dict]:
        """Read the annotation file; probe audio tracks if asked to."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file {self.ann_file} not found')
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, start=1):
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                parsed = self._parse_line(line, lineno)
                relpath = parsed['relpath']
                filename = osp.join(self.data_prefix['video'], relpath)
                audio_path = filename
                if self.audio_suffix is not None:
                    audio_path = osp.join(
                        self.data_prefix['audio'],
                        osp.splitext(relpath)[0] + self.audio_suffix)
                info = dict(filename=filename, label=parsed['label'],
                            audio_path=audio_path, audio_missing=False)
                if self.data_prefix.get('flow'):
                    info['flow_dir'] = osp.join(self.data_prefix['flow'],
                                                osp.splitext(relpath)[0])
                data_list.append(info)
        if not data_list:
            raise ValueError(f'annotation file {self.ann_file} has no samples')
        if self.missing_audio == 'silence':
            self._mark_missing_audio(data_list)
        return data_list

    def _mark_missing_audio(self, data_list: List[dict]) -> None:
        missing = []
        for info in data_list:
            path = info['audio_path']
            if osp.isfile(path) and not has_audio_stream(path):
                info['audio_missing'] = True
                missing.append(path)
        self.num_missing_audio = len(missing)
        if missing:
            shown = ', '.join(missing[:10])
            more = f' and {len(missing) - 10} more' \
                if len(missing) > 10 else ''
            print_log(
                f'{self.ann_file}: {len(missing)} of {len(data_list)} samples '
                f'have no audio track and get silence '
                f"(missing_audio='silence'): {shown}{more}",
                logger='current', level=30)

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Run the pipeline on sample ``idx``, naming its file on failure.

        Returns:
            The sample, or ``None`` for a bad sample skipped by the
            ``bad_sample='skip'`` policy (``BaseDataset.__getitem__`` then
            loads a random other one).

        Raises:
            BadSampleError: The sample is bad (``bad_sample='error'``, or
                ``test_mode=True``); the message starts with its file.
            TooManyBadSamplesError: More than ``max_bad_samples`` distinct
                files were skipped in this process.
        """
        try:
            return self._load_sample(idx)
        except BadSampleError as err:
            if not self.skips_bad_samples:
                raise
            self._skip(err)
            return None

    def _skip(self, err: BadSampleError) -> None:
        path = err.path or str(err)
        self.bad_samples.setdefault(path, err.reason or str(err))
        self.num_skipped += 1
        count = len(self.bad_samples)
        if count > self.max_bad_samples:
            listed = '\n'.join(
                f'  {p}: {r}' for p, r in
                list(self.bad_samples.items())[:_LISTED_BAD_FILES])
            more = f'\n  and {count - _LISTED_BAD_FILES} more (see the ' \
                'warnings in the log)' if count > _LISTED_BAD_FILES else ''
            raise TooManyBadSamplesError(
                f'{self.ann_file}: {count} files failed to load in this '
                f'process (pid {os.getpid()}), more than '
                f"max_bad_samples={self.max_bad_samples} (bad_sample='skip')"
                f'; fix or remove them from the annotation file, or raise '
                f'max_bad_samples:\n{listed}{more}') from None
        print_log(
            f"{err}; skipped (bad_sample='skip'): {count} bad file(s), "
            f'{self.num_skipped} sample(s) skipped so far in this process '
            f'(pid {os.getpid()}, max_bad_samples={self.max_bad_samples})',
            logger='current', level=logging.WARNING)

    def _load_sample(self, idx: int) -> dict:
        info = self.get_data_info(idx)
        filename = info['filename']
        check_sample_file(filename, 'video file')
        if info['audio_path'] != filename and not info['audio_missing']:
            check_sample_file(info['audio_path'], 'audio file')
        if 'flow_dir' in info and not osp.isdir(info['flow_dir']):
            raise BadSampleError(info['flow_dir'],
                                 'optical flow frame folder not found')
        try:
            return self.pipeline(info)
        except (BadSampleError, MemoryError):
            raise  # named already, or not the sample's fault
        except Exception as err:
            raise BadSampleError(filename,
                                 f'{type(err).__name__}: {err}') from err
