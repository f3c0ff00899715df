"""Load precomputed log-mel features (``.npy``) over each clip's window."""
from typing import Dict, Optional

import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from ...utils.choices import check_positive
from ..errors import BadSampleError, check_sample_file


def load_feature_file(path: str) -> np.ndarray:
    """Load a ``(num_frames, num_bins)`` feature array and check it.

    Raises:
        BadSampleError: the file is missing, empty, unreadable, not 2-D, has
            no frames, is not real numbers, or holds NaN/inf (also after
            the cast to float32).
    """
    check_sample_file(path, 'feature file')
    try:
        feats = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise BadSampleError(path, f'cannot read features ({err})') from None
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise BadSampleError(
            path, f'expected features of shape (num_frames, num_bins), got '
            f'{feats.shape}')
    if not (np.issubdtype(feats.dtype, np.integer)
            or np.issubdtype(feats.dtype, np.floating)):
        raise BadSampleError(
            path, f'expected real-valued features, got dtype {feats.dtype}')
    # checked after the cast: float64 beyond float32's range becomes inf
    with np.errstate(over='ignore'):
        feats = feats.astype(np.float32, copy=False)
    if not np.isfinite(feats).all():
        raise BadSampleError(path, 'features contain NaN or inf')
    return feats


@TRANSFORMS.register_module()
class LoadLogMelFeature(BaseTransform):
    """Load precomputed features and cut the rows of each video clip.

    The features are taken to cover the whole video, so the video frame
    ``i`` of ``total_frames`` maps to feature row
    ``floor(i / total_frames * num_rows)`` (mmaction2's
    ``AudioFeatureSelector`` maps frames the same way). Each clip takes
    ``num_frames`` rows from the row of its first sampled frame, moved back
    if they would run past the end. A file shorter than ``num_frames`` rows
    is an error naming it: rows are never padded with zeros (mmaction2's
    ``LoadAudioFeature`` silently returns zeros for a missing file).

    Required keys: ``audio_path``, ``frame_inds``, ``num_clips``,
    ``total_frames``. Added keys: ``audios`` (float32,
    ``(num_clips, num_frames, num_bins)``).

    Args:
        num_frames: Feature rows per clip.
        num_bins: If given, the number of bins (columns) every file must
            have; a file with another number is an error naming it. Without
            it such a file fails only when batched, in torch's collate,
            whose error does not name the file.
    """

    def __init__(self,
                 num_frames: int = 128,
                 num_bins: Optional[int] = None) -> None:
        check_positive('LoadLogMelFeature.num_frames', num_frames)
        check_positive('LoadLogMelFeature.num_bins', num_bins, optional=True)
        self.num_frames = num_frames
        self.num_bins = num_bins

    def transform(self, results: Dict) -> Dict:
        path = results['audio_path']
        feats = load_feature_file(path)
        rows = feats.shape[0]
        if self.num_bins is not None and feats.shape[1] != self.num_bins:
            raise BadSampleError(
                path, f'{feats.shape[1]} feature bins, but '
                f'num_bins={self.num_bins}')
        if rows < self.num_frames:
            raise BadSampleError(
                path, f'{rows} feature rows, fewer than the '
                f'num_frames={self.num_frames} a clip needs')
        clips = np.asarray(results['frame_inds']).reshape(
            results['num_clips'], -1)
        total = max(int(results['total_frames']), 1)
        starts = np.floor(clips.min(axis=1) / total * rows).astype(int)
        starts = np.clip(starts, 0, rows - self.num_frames)
        results['audios'] = np.stack(
            [feats[s:s + self.num_frames] for s in starts])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'num_bins={self.num_bins})')
