"""Optical flow frames as a modality: reading them at the sampled frames,
and transforming them apart from the RGB frames."""
import os

import cv2
import numpy as np
import pytest
from mmaction.registry import DATASETS, TRANSFORMS

from mmaction_gblend.datasets import BadSampleError

TMPL = 'flow_{}_{:05d}.png'  # lossless, so values can be checked exactly


def write_flow(folder, count, size=32, tmpl=TMPL):
    """Flow frame i: x = 4 * i + 10, y = 200 - i (a constant per frame)."""
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        for d, value in (('x', 4 * i + 10), ('y', 200 - i)):
            cv2.imwrite(os.path.join(folder, tmpl.format(d, i + 1)),
                        np.full((size, size), value, np.uint8))


def test_reads_the_pairs_at_the_sampled_frames_and_clamps(tmp_path):
    write_flow(str(tmp_path / 'v'), count=31)  # a 32-frame video
    load = TRANSFORMS.build(
        dict(type='LoadFlowFrames', filename_tmpl=TMPL))
    out = load(dict(flow_dir=str(tmp_path / 'v'),
                    frame_inds=np.array([0, 5, 30, 31])))
    flows = out['flows']
    assert flows.shape == (4, 32, 32, 2) and flows.dtype == np.uint8
    assert flows[:, 0, 0, 0].tolist() == [10, 30, 130, 130]  # 31 -> 30
    assert flows[:, 0, 0, 1].tolist() == [200, 195, 170, 170]
    assert 'LoadFlowFrames' in repr(load)


def test_missing_frames_name_the_file(tmp_path):
    write_flow(str(tmp_path / 'v'), count=3)
    os.remove(tmp_path / 'v' / TMPL.format('y', 2))
    load = TRANSFORMS.build(dict(type='LoadFlowFrames', filename_tmpl=TMPL))
    with pytest.raises(BadSampleError, match='flow_y_00002'):
        load(dict(flow_dir=str(tmp_path / 'v'), frame_inds=np.array([1])))
    with pytest.raises(BadSampleError, match='no optical flow frames'):
        load(dict(flow_dir=str(tmp_path / 'empty'),
                  frame_inds=np.array([0])))


def test_flow_pipeline_flips_x_and_leaves_rgb_alone():
    flows = np.stack([np.dstack([np.full((8, 8), 10 * i, np.uint8),
                                 np.full((8, 8), 100, np.uint8)])
                      for i in range(1, 5)])
    flows[:, :, :4, 1] = 50  # left half of y differs: shows the flip
    imgs = [np.zeros((16, 16, 3), np.uint8) for _ in range(4)]
    results = dict(imgs=imgs, flows=flows, num_clips=1, clip_len=4,
                   img_shape=(16, 16))
    pipe = TRANSFORMS.build(dict(type='FlowPipeline', transforms=[
        dict(type='Resize', scale=(4, 4), keep_ratio=False),
        dict(type='Flip', flip_ratio=1.0),
        dict(type='FormatShape', input_format='NCTHW')
    ]))
    out = pipe(results)
    assert out['flows'].shape == (1, 2, 4, 4, 4)
    assert out['flows'][0, 0, :, 0, 0].tolist() == [245, 235, 225, 215]
    # y kept its values but moved: the left half is now on the right
    assert out['flows'][0, 1, 0, 0].tolist() == [100, 100, 50, 50]
    assert out['imgs'] is imgs and out['img_shape'] == (16, 16)
    assert 'flip' not in out and 'input_shape' not in out


def test_dataset_reads_rgb_and_flow_together(make_clip, tmp_path):
    root = tmp_path / 'videos'
    root.mkdir()
    make_clip('videos/a.mp4', seconds=2.0, fps=16, size=32)
    write_flow(str(tmp_path / 'flow' / 'a'), count=31)
    (tmp_path / 'list.txt').write_text('a.mp4 3\nb.mp4 1\n')
    dataset = DATASETS.build(dict(
        type='AudioVisualDataset', ann_file=str(tmp_path / 'list.txt'),
        data_prefix=dict(video=str(root), flow=str(tmp_path / 'flow')),
        pipeline=[
            dict(type='DecordInit'),
            dict(type='SampleFrames', clip_len=4, frame_interval=2,
                 num_clips=1, test_mode=True),
            dict(type='DecordDecode'),
            dict(type='LoadFlowFrames', filename_tmpl=TMPL),
            dict(type='FlowPipeline', transforms=[
                dict(type='FormatShape', input_format='NCTHW')]),
            dict(type='FormatShape', input_format='NCTHW'),
            dict(type='PackActionInputs', collect_keys=('imgs', 'flows'))
        ]))
    sample = dataset[0]
    assert tuple(sample['inputs']['imgs'].shape) == (1, 3, 4, 32, 32)
    assert tuple(sample['inputs']['flows'].shape) == (1, 2, 4, 32, 32)
    inds = (sample['inputs']['flows'][0, 0, :, 0, 0].numpy() - 10) // 4
    assert (np.diff(inds) == 2).all()  # the RGB sampler's frames
    (root / 'b.mp4').write_bytes((root / 'a.mp4').read_bytes())
    with pytest.raises(BadSampleError, match='flow frame folder not found'):
        dataset[1]
