"""Dataset configs through wrappers, and the configs G-Blend measures on."""
import pytest

from mmaction_gblend.datasets import (HeldOutSplitDataset, dataset_pipeline,
                                      dataset_pipelines, heldout_split_config,
                                      inner_dataset_configs,
                                      measurement_config,
                                      training_subset_config)

VIDEO = [dict(type='DecordInit'), dict(type='PackActionInputs')]
VAL = [dict(type='DecordInit'), dict(type='CenterCrop', crop_size=8),
       dict(type='PackActionInputs')]


def video(pipeline=VIDEO, **kwargs):
    return dict(type='VideoDataset', ann_file='a.txt', pipeline=pipeline,
                **kwargs)


def kinds(pipeline):
    return [step['type'] for step in pipeline]


def test_inner_configs_of_both_kinds_of_wrapper():
    one = dict(type='RepeatDataset', times=2, dataset=video())
    assert inner_dataset_configs(one, 'd') == [('d.dataset', video())]
    many = dict(type='ConcatDataset', datasets=[video(), video(VAL)])
    assert [p for p, _ in inner_dataset_configs(many, 'd')] == \
        ['d.datasets[0]', 'd.datasets[1]']
    assert inner_dataset_configs(video(), 'd') == []


def test_the_pipeline_a_config_gives_through_wrappers():
    assert dataset_pipeline(video(VAL)) == VAL
    audio = dict(type='WithAudioTrack', dataset=video(VAL))
    # the video pipeline: WithAudioTrack adds the audio when it is built
    assert dataset_pipeline(audio) == VAL
    assert dataset_pipeline(dict(audio, pipeline=VIDEO)) == VIDEO
    split = dict(type='HeldOutSplitDataset', dataset=audio)
    assert dataset_pipeline(split) == VAL
    assert dataset_pipeline(dict(type='RepeatDataset')) is None


def test_every_pipeline_as_built_with_its_key_path():
    audio = dict(type='WithAudioTrack', dataset=video())
    split = dict(type='HeldOutSplitDataset', dataset=audio)
    (path, pipeline), = dataset_pipelines(split, 'train_dataloader.dataset')
    assert path == 'train_dataloader.dataset.dataset.dataset.pipeline'
    assert kinds(pipeline) == ['DecordInit', 'DecodeAudioTrack',
                               'LogMelSpectrogram', 'FormatAudioShape',
                               'PackActionInputs']
    assert pipeline[-1]['collect_keys'] == ('imgs', 'audios')
    concat = dict(type='ConcatDataset', datasets=[video(), video(VAL)])
    assert [p for p, _ in dataset_pipelines(concat, 'd')] == \
        ['d.datasets[0].pipeline', 'd.datasets[1].pipeline']
    # a WithAudioTrack that cannot be built gives nothing (it says why)
    broken = dict(type='WithAudioTrack', dataset=video([]))
    assert list(dataset_pipelines(broken, 'd')) == []


def test_the_split_config_of_a_training_dataset():
    split = dict(type='HeldOutSplitDataset', part='train', fraction=0.2,
                 dataset=video())
    assert heldout_split_config(split, 0.5, 3) == split
    assert heldout_split_config(dict(split, type=HeldOutSplitDataset), 0.5,
                                3)['fraction'] == 0.2
    with pytest.raises(ValueError, match="part='heldout'; training needs"):
        heldout_split_config(dict(split, part='heldout'), 0.5, 3)
    with pytest.raises(ValueError,
                       match='GradientBlendingHook: wrap train_dataloader'):
        heldout_split_config(video(), 0.5, 3)
    assert heldout_split_config(video(), 0.5, 3, exclude_heldout=False) == \
        dict(type='HeldOutSplitDataset', dataset=video(), part='all',
             fraction=0.5, seed=3)


def test_measurement_and_subset_configs_leave_the_split_alone():
    split = dict(type='HeldOutSplitDataset', part='train', fraction=0.2,
                 dataset=video(test_mode=True))
    heldout = measurement_config(split, 'heldout', VAL)
    assert heldout['part'] == 'heldout' and 'probe_size' not in heldout
    assert heldout['dataset']['pipeline'] == VAL
    assert heldout['dataset']['test_mode'] is False
    probe = measurement_config(split, 'probe', probe_size=7)
    assert probe['probe_size'] == 7
    assert probe['dataset']['pipeline'] == VIDEO  # the training pipeline
    subset = training_subset_config(split, 0.5)
    assert (subset['part'], subset['subset']) == ('train', 0.5)
    assert split == dict(type='HeldOutSplitDataset', part='train',
                         fraction=0.2, dataset=video(test_mode=True))
