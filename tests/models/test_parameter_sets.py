"""Which encoder parameters each ``optim_wrapper.params`` option modulates,
on the demo's encoders (a 3D-conv ResNet-18 on RGB, a 2D ResNet-18 on
audio), an encoder without convolutions and one with attention."""
import os.path as osp

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.models.modulation import (PARAMETER_SETS,
                                               check_parameter_set,
                                               encoder_parameters)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL = osp.join(REPO, 'configs', '_base_', 'models', 'r3d18-rgb_r18-audio.py')

# The convolution kernels of the two ResNet-18s, by name: the stem, two
# convolutions in each of the 8 basic blocks, and the projection shortcut
# of the first block of stages 2-4. ResNet3d's are mmcv ConvModules
# (``.conv``, with ``.bn`` beside it).
RGB_CONV = [
    'conv1.conv.weight',
    'layer1.0.conv1.conv.weight',
    'layer1.0.conv2.conv.weight',
    'layer1.1.conv1.conv.weight',
    'layer1.1.conv2.conv.weight',
    'layer2.0.conv1.conv.weight',
    'layer2.0.conv2.conv.weight',
    'layer2.0.downsample.conv.weight',
    'layer2.1.conv1.conv.weight',
    'layer2.1.conv2.conv.weight',
    'layer3.0.conv1.conv.weight',
    'layer3.0.conv2.conv.weight',
    'layer3.0.downsample.conv.weight',
    'layer3.1.conv1.conv.weight',
    'layer3.1.conv2.conv.weight',
    'layer4.0.conv1.conv.weight',
    'layer4.0.conv2.conv.weight',
    'layer4.0.downsample.conv.weight',
    'layer4.1.conv1.conv.weight',
    'layer4.1.conv2.conv.weight',
]
AUDIO_CONV = [
    'conv1.weight',
    'layer1.0.conv1.weight',
    'layer1.0.conv2.weight',
    'layer1.1.conv1.weight',
    'layer1.1.conv2.weight',
    'layer2.0.conv1.weight',
    'layer2.0.conv2.weight',
    'layer2.0.downsample.0.weight',
    'layer2.1.conv1.weight',
    'layer2.1.conv2.weight',
    'layer3.0.conv1.weight',
    'layer3.0.conv2.weight',
    'layer3.0.downsample.0.weight',
    'layer3.1.conv1.weight',
    'layer3.1.conv2.weight',
    'layer4.0.conv1.weight',
    'layer4.0.conv2.weight',
    'layer4.0.downsample.0.weight',
    'layer4.1.conv1.weight',
    'layer4.1.conv2.weight',
]


def rgb_norm(conv):
    """The BatchNorm beside a ResNet3d convolution: ``x.conv`` -> ``x.bn``."""
    stem = conv[:-len('.conv.weight')]
    return [f'{stem}.bn.weight', f'{stem}.bn.bias']


def audio_norm(conv):
    """The BatchNorm after an AudioResNet convolution: ``convN`` -> ``bnN``,
    ``downsample.0`` -> ``downsample.1``."""
    stem = conv[:-len('.weight')]
    stem = stem[:-1] + '1' if stem.endswith('downsample.0') else \
        stem[:-len('convN')] + 'bn' + stem[-1]
    return [f'{stem}.weight', f'{stem}.bias']


def with_norms(convs, norm):
    """Every parameter of the ResNet: each kernel, then its BatchNorm's
    weight and bias (the order of ``named_parameters``)."""
    return [name for conv in convs for name in [conv] + norm(conv)]


@pytest.fixture
def demo_model():
    return MODELS.build(Config.fromfile(MODEL).model)


def names(encoder, params):
    return [name for name, _ in encoder_parameters(encoder, params)]


def test_conv_is_the_convolution_kernels_of_both_encoders(demo_model):
    rgb, audio = demo_model.backbones['rgb'], demo_model.backbones['audio']
    assert type(rgb).__name__ == 'ResNet3d'
    assert type(audio).__name__ == 'AudioResNet'
    assert names(rgb, 'conv') == RGB_CONV
    assert names(audio, 'conv') == AUDIO_CONV
    # 3D kernels (5-D, which the authors' 4-D test would skip) and 2D ones
    assert {p.dim() for _, p in encoder_parameters(rgb, 'conv')} == {5}
    assert {p.dim() for _, p in encoder_parameters(audio, 'conv')} == {4}


def test_all_adds_every_batchnorm_parameter(demo_model):
    rgb, audio = demo_model.backbones['rgb'], demo_model.backbones['audio']
    assert names(rgb, 'all') == with_norms(RGB_CONV, rgb_norm)
    assert names(audio, 'all') == with_norms(AUDIO_CONV, audio_norm)
    for encoder in (rgb, audio):
        assert names(encoder,
                     'all') == [n for n, _ in encoder.named_parameters()]
        norms = {
            id(p)
            for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)
            or isinstance(m, torch.nn.BatchNorm3d) for p in m.parameters()
        }
        selected = {id(p) for _, p in encoder_parameters(encoder, 'all')}
        assert norms and norms <= selected
        assert not norms & {
            id(p)
            for _, p in encoder_parameters(encoder, 'conv')
        }


@pytest.mark.parametrize('params', PARAMETER_SETS)
def test_heads_and_fusion_are_in_no_set(demo_model, params):
    groups = demo_model.modality_parameters(params)
    assert list(groups) == ['audio', 'rgb']
    expected = dict(rgb=RGB_CONV, audio=AUDIO_CONV) if params == 'conv' \
        else dict(rgb=with_norms(RGB_CONV, rgb_norm),
                  audio=with_norms(AUDIO_CONV, audio_norm))
    by_id = {id(p): n for n, p in demo_model.named_parameters()}
    for m, group in groups.items():
        assert [by_id[id(p)] for p in group] == \
            [f'backbones.{m}.{n}' for n in expected[m]]
    modulated = {by_id[id(p)] for group in groups.values() for p in group}
    others = [n for n in by_id.values() if not n.startswith('backbones.')]
    assert any(n.startswith('heads.fused.') for n in others)
    assert any(n.startswith('fusion.') for n in others)
    assert not modulated & set(others)


def test_an_encoder_without_convolutions_gets_its_linear_weights():
    encoder = MODELS.build(dict(type='ToyEncoder', in_channels=16))
    assert names(encoder, 'conv') == ['net.0.weight', 'net.2.weight']
    assert names(encoder, 'all') == [
        'net.0.weight', 'net.0.bias', 'net.2.weight', 'net.2.bias'
    ]


class _Transformer(torch.nn.Module):
    """A convolutional patch embedding, attention, a norm, an MLP."""

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv1d(1, 8, 4, stride=4)
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 8))
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = torch.nn.LayerNorm(8)
        self.mlp = torch.nn.Linear(8, 8)


def test_attention_weights_are_kernels_and_norms_and_tokens_are_not():
    encoder = _Transformer()
    assert names(encoder, 'conv') == [
        'patch.weight', 'attn.in_proj_weight', 'attn.out_proj.weight',
        'mlp.weight'
    ]
    assert names(encoder, 'all') == [n for n, _ in encoder.named_parameters()]
    # separate q, k, v projections (attention of another width)
    separate = torch.nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    assert names(separate, 'conv') == [
        'q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'out_proj.weight'
    ]


def test_frozen_parameters_are_never_selected():
    encoder = MODELS.build(dict(type='ToyEncoder', in_channels=16))
    encoder.net[0].weight.requires_grad_(False)
    assert names(encoder, 'conv') == ['net.2.weight']
    assert 'net.0.weight' not in names(encoder, 'all')


def test_an_unknown_set_names_the_config_key():
    encoder = MODELS.build(dict(type='ToyEncoder', in_channels=16))
    for bad in ('weights', 'CONV', None):
        with pytest.raises(
                ValueError,
                match='optim_wrapper.params must be '
                r"one of \('conv', 'all'\)"):
            encoder_parameters(encoder, bad)
    with pytest.raises(ValueError, match='optim_wrapper.params'):
        toy_model().modality_parameters('norms')
    assert check_parameter_set('all') == 'all'


def toy_model():
    return MODELS.build(toy.toy_config('unused')['model'])
