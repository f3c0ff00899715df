"""Optical flow as a modality: flow frames on disk, and their transforms.

mmaction2 extracts TV-L1 flow as 8-bit JPEG pairs per frame,
``flow_x_00001.jpg`` and ``flow_y_00001.jpg`` (``tools/data/
build_rawframes.py``), 128 meaning no motion. :class:`LoadFlowFrames` reads
the pairs at the frames the RGB sampler chose into ``flows``
(``[T, H, W, 2]``, x then y); :class:`FlowPipeline` runs mmaction2's
spatial transforms on them as if they were the images, without touching
the RGB frames.
"""
import copy
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np
from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform, Compose

from ..errors import BadSampleError

__all__ = ['LoadFlowFrames', 'FlowPipeline']


@TRANSFORMS.register_module()
class LoadFlowFrames(BaseTransform):
    """Read the flow frames at the sampled frame indices.

    Flow ``i`` is the motion from frame ``i`` to ``i + 1``, so a video of
    ``n`` frames has ``n - 1`` flow frames; an index past the last flow
    frame reads the last one. A missing or unreadable file is an error that
    names it.

    Required keys: ``flow_dir`` (from ``AudioVisualDataset`` with
    ``data_prefix['flow']``), ``frame_inds`` (from ``SampleFrames``).
    Added keys: ``flows`` (uint8 ``[T, H, W, 2]``).

    Args:
        filename_tmpl: Name of a flow frame, from the direction (``x`` or
            ``y``) and the 1-based index.
        start_index: Index of the first flow frame file.
    """

    def __init__(self,
                 filename_tmpl: str = 'flow_{}_{:05d}.jpg',
                 start_index: int = 1) -> None:
        self.filename_tmpl = filename_tmpl
        self.start_index = start_index
        self._counts: Dict[str, int] = {}

    def _count(self, folder: str) -> int:
        """Number of x-flow frames in a folder (cached)."""
        if folder not in self._counts:
            count = 0
            while osp.isfile(osp.join(folder, self.filename_tmpl.format(
                    'x', self.start_index + count))):
                count += 1
            if count == 0:
                raise BadSampleError(
                    osp.join(folder, self.filename_tmpl.format(
                        'x', self.start_index)), 'no optical flow frames')
            self._counts[folder] = count
        return self._counts[folder]

    def _read(self, path: str) -> np.ndarray:
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise BadSampleError(path, 'cannot read optical flow frame')
        return image

    def transform(self, results: Dict) -> Dict:
        folder = results['flow_dir']
        count = self._count(folder)
        frames = []
        for index in np.asarray(results['frame_inds']).reshape(-1):
            index = min(int(index), count - 1) + self.start_index
            pair = [
                self._read(osp.join(folder,
                                    self.filename_tmpl.format(d, index)))
                for d in ('x', 'y')
            ]
            if pair[0].shape != pair[1].shape:
                raise BadSampleError(
                    osp.join(folder, self.filename_tmpl.format('y', index)),
                    'x and y flow frames differ in size')
            frames.append(np.stack(pair, axis=-1))
        results['flows'] = np.stack(frames)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(filename_tmpl='
                f'{self.filename_tmpl!r}, start_index={self.start_index})')


@TRANSFORMS.register_module()
class FlowPipeline(BaseTransform):
    """Run image transforms on ``flows`` instead of ``imgs``.

    The transforms (``Resize``, crops, ``Flip``, ``FormatShape``, ...) see a
    copy of the sample whose ``imgs`` are the flow frames, so their random
    choices and the geometry keys they write stay apart from the RGB
    frames'. A horizontal flip also negates the x motion (``255 - x``), as
    flipping a flow field must.

    Args:
        transforms: The transform configs.
    """

    def __init__(self, transforms: List[dict]) -> None:
        self.transforms = Compose(copy.deepcopy(transforms))

    def transform(self, results: Dict) -> Dict:
        view = dict(results)
        for key in ('flip', 'flip_direction'):
            view.pop(key, None)
        view['imgs'] = [frame.copy() for frame in results['flows']]
        # Our frames hold x and y as two channels: to mmaction2's transforms
        # they are images ('Flow' there means interleaved one-channel x, y
        # frames); the flip's negation of x is done here.
        view['modality'] = 'RGB'
        negated = False
        for transform in self.transforms.transforms:
            view = transform(view)
            if view is None:
                return None
            # right after the flip, while frames are still [H, W, 2]
            if view.get('flip') and not negated and view.get(
                    'flip_direction', 'horizontal') == 'horizontal':
                view['imgs'] = [self._negate_x(f) for f in view['imgs']]
                negated = True
        results['flows'] = view['imgs']
        return results

    @staticmethod
    def _negate_x(frame: np.ndarray) -> np.ndarray:
        """255 - x on one channels-last flow frame."""
        frame = frame.copy()
        frame[..., 0] = 255 - frame[..., 0]
        return frame

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.transforms})'
