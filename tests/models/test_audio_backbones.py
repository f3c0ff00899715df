"""Audio backbones: AudioResNet (from scratch) and PANNs CNN14 (pretrained)."""
import logging
import subprocess
import sys
import textwrap

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.logging import MMLogger
from torch.nn.modules.batchnorm import _BatchNorm

import mmaction_gblend.models.backbones  # noqa: F401  (registration)
from mmaction_gblend.models.backbones import LOG_TO_DB, AudioResNet, Cnn14

# ---------------------------------------------------------------- AudioResNet

# (input shape, expected output t x f): stem conv and max pooling halve both
# axes (rounding up), stages 2-4 halve them again.
RESNET_SHAPES = [((2, 1, 100, 40), (4, 2)), ((2, 1, 128, 80), (4, 3)),
                 ((3, 1, 64, 64), (2, 2)), ((1, 1, 1024, 128), (32, 4))]

# torchvision's ImageNet resnet18/34 parameter counts (11,689,512 and
# 21,797,672) minus the 2 input channels of conv1 we do not have
# (2*64*7*7 = 6,272) and minus the classifier (512*1000 + 1000 = 513,000).
RESNET_PARAMS = {18: 11_689_512 - 6_272 - 513_000,
                 34: 21_797_672 - 6_272 - 513_000}


def build_resnet(**kwargs) -> AudioResNet:
    model = MODELS.build(dict(type='AudioResNet', **kwargs))
    model.init_weights()
    return model


@pytest.mark.parametrize('depth', [18, 34])
@pytest.mark.parametrize('shape,out_tf', RESNET_SHAPES)
def test_audio_resnet_output_shape(depth, shape, out_tf):
    model = build_resnet(depth=depth)
    assert isinstance(model, AudioResNet)
    assert model.feat_dim == 512
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 512) + out_tf


@pytest.mark.parametrize('depth', [18, 34])
def test_audio_resnet_is_resnet_18_34(depth):
    model = build_resnet(depth=depth)
    assert sum(p.numel() for p in model.parameters()) == RESNET_PARAMS[depth]
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[depth]
    assert [len(getattr(model, f'layer{i}')) for i in range(1, 5)] == blocks


def test_audio_resnet_width_and_stages():
    model = build_resnet(base_channels=16, num_stages=3, strides=(1, 2, 2))
    assert model.feat_dim == 64
    assert not hasattr(model, 'layer4')
    with torch.no_grad():
        out = model(torch.randn(2, 1, 100, 40))
    assert out.shape == (2, 64, 7, 3)


def test_audio_resnet_without_stem_pool_keeps_more_resolution():
    model = build_resnet(base_channels=8, stem_pool=False, stem_stride=1)
    with torch.no_grad():
        out = model(torch.randn(2, 1, 100, 40))
    assert out.shape == (2, 64, 13, 5)


def test_audio_resnet_rejects_bad_configs_and_inputs():
    with pytest.raises(KeyError, match='depth'):
        AudioResNet(depth=50)
    with pytest.raises(ValueError, match='strides'):
        AudioResNet(num_stages=3)
    with pytest.raises(ValueError, match='frozen_stages'):
        AudioResNet(frozen_stages=5)
    model = AudioResNet(base_channels=8)
    # [N, views, 1, T, F] must be folded by the recognizer first
    with pytest.raises(ValueError, match=r'\[N, 1, T, F\]'):
        model(torch.randn(2, 3, 1, 100, 40))


@pytest.mark.slow
def test_builds_without_default_scope():
    """mmaction's ResNetAudio fails here; ours must not (fresh process)."""
    code = textwrap.dedent("""
        import torch
        from mmengine.registry import DefaultScope
        import mmaction_gblend.models.backbones
        from mmaction.registry import MODELS
        assert DefaultScope.get_current_instance() is None
        net = MODELS.build(dict(type='AudioResNet', depth=18,
                                base_channels=8))
        net.init_weights()
        out = net(torch.randn(2, 1, 100, 40))
        cnn = MODELS.build(dict(type='Cnn14'))
        assert DefaultScope.get_current_instance() is None
        print('OK', type(net).__name__, tuple(out.shape),
              type(cnn).__name__, cnn.feat_dim)
    """)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'OK AudioResNet (2, 64, 4, 2) Cnn14 2048' in proc.stdout


def test_gradients_reach_the_first_conv():
    model = build_resnet(base_channels=16)
    model.train()
    model(torch.randn(4, 1, 100, 40)).pow(2).mean().backward()
    grad = model.conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0


def _bn_layers(module):
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


def test_frozen_stages_freeze_exactly_those_stages():
    model = build_resnet(base_channels=8, frozen_stages=2)
    model.train()
    frozen_prefixes = ('conv1.', 'bn1.', 'layer1.', 'layer2.')
    for name, param in model.named_parameters():
        assert param.requires_grad != name.startswith(frozen_prefixes), name
    for prefix in ('bn1', 'layer1', 'layer2'):
        for bn in _bn_layers(model.get_submodule(prefix)):
            assert not bn.training, prefix
    for prefix in ('layer3', 'layer4'):
        for bn in _bn_layers(model.get_submodule(prefix)):
            assert bn.training, prefix

    frozen_stats = model.layer2[0].bn1.running_mean.clone()
    free_stats = model.layer3[0].bn1.running_mean.clone()
    model(torch.randn(4, 1, 64, 40)).sum().backward()
    assert torch.equal(model.layer2[0].bn1.running_mean, frozen_stats)
    assert not torch.equal(model.layer3[0].bn1.running_mean, free_stats)
    assert model.conv1.weight.grad is None
    assert model.layer3[0].conv1.weight.grad is not None

    # eval() then train() again must not unfreeze anything
    model.eval()
    model.train()
    assert not model.bn1.training and not model.conv1.weight.requires_grad


def test_frozen_stage_zero_is_the_stem_only():
    model = build_resnet(base_channels=8, frozen_stages=0)
    model.train()
    assert not model.conv1.weight.requires_grad
    assert not model.bn1.weight.requires_grad and not model.bn1.training
    assert all(p.requires_grad for p in model.layer1.parameters())
    assert all(bn.training for bn in _bn_layers(model.layer1))


@pytest.mark.parametrize('norm_eval', [True, False])
def test_norm_eval(norm_eval):
    model = build_resnet(base_channels=8, norm_eval=norm_eval)
    model.train()
    bns = _bn_layers(model)
    assert len(bns) == 1 + 2 * 8 + 3  # stem, two per block, 3 shortcuts
    assert all(bn.training != norm_eval for bn in bns)
    before = [bn.running_var.clone() for bn in bns]
    model(torch.randn(4, 1, 64, 40)).sum().backward()
    unchanged = [torch.equal(b, bn.running_var) for b, bn in zip(before, bns)]
    assert all(unchanged) == norm_eval and any(unchanged) == norm_eval
    # norm_eval fixes the statistics, not the affine parameters
    assert all(bn.weight.grad is not None for bn in bns)


@pytest.mark.parametrize('zero_init', [True, False])
def test_zero_init_residual(zero_init):
    model = build_resnet(base_channels=8, zero_init_residual=zero_init)
    last = [model.get_submodule(f'layer{i}')[j].bn2
            for i in range(1, 5) for j in range(2)]
    expected = 0.0 if zero_init else 1.0
    assert all(torch.all(bn.weight == expected) for bn in last)
    assert torch.all(model.layer1[0].bn1.weight == 1.0)


# ---------------------------------------------------------------------- CNN14

CNN14_CHANNELS = (64, 128, 256, 512, 1024, 2048)
FRONT_END_AND_CLASSIFIER = {
    # published front end (STFT as convolutions, mel filter bank) ...
    'spectrogram_extractor.stft.conv_real.weight': (513, 1, 1024),
    'spectrogram_extractor.stft.conv_imag.weight': (513, 1, 1024),
    'logmel_extractor.melW': (513, 64),
    # ... and classifier (527 AudioSet classes)
    'fc1.weight': (2048, 2048),
    'fc1.bias': (2048, ),
    'fc_audioset.weight': (527, 2048),
    'fc_audioset.bias': (527, ),
}


def published_cnn14_shapes(mel_bins: int = 64) -> dict:
    """Key -> shape of the published CNN14 state dict, from its description.

    bn0 over the mel bins; six blocks of two bias-free 3x3 convolutions, each
    followed by a BatchNorm; then the front end and classifier keys.
    """
    shapes = {}

    def batch_norm(prefix, n):
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            shapes[f'{prefix}.{name}'] = (n, )
        shapes[f'{prefix}.num_batches_tracked'] = ()

    batch_norm('bn0', mel_bins)
    in_channels = 1
    for i, channels in enumerate(CNN14_CHANNELS, start=1):
        shapes[f'conv_block{i}.conv1.weight'] = (channels, in_channels, 3, 3)
        shapes[f'conv_block{i}.conv2.weight'] = (channels, channels, 3, 3)
        batch_norm(f'conv_block{i}.bn1', channels)
        batch_norm(f'conv_block{i}.bn2', channels)
        in_channels = channels
    shapes.update(FRONT_END_AND_CLASSIFIER)
    return shapes


@pytest.fixture(scope='module')
def published_state_dict():
    gen = torch.Generator().manual_seed(0)
    state_dict = {}
    for key, shape in published_cnn14_shapes().items():
        if key.endswith('num_batches_tracked'):
            state_dict[key] = torch.tensor(123456)
        elif key.endswith('running_var'):
            state_dict[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state_dict[key] = torch.randn(shape, generator=gen)
    return state_dict


@pytest.fixture(scope='module')
def published_file(published_state_dict, tmp_path_factory):
    path = tmp_path_factory.mktemp('panns') / 'Cnn14_mAP=0.431.pth'
    # the published files hold the state dict under 'model', next to
    # training bookkeeping
    torch.save({'iteration': 600000, 'model': published_state_dict}, path)
    return str(path)


class RecordingHandler(logging.Handler):
    """Keeps the records; MMLogger does not propagate to pytest's caplog."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return '\n'.join(r.getMessage() for r in self.records)


@pytest.fixture
def mmengine_log():
    """Records of the current mmengine logger (where print_log writes)."""
    logger = MMLogger.get_current_instance()
    handler = RecordingHandler()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_cnn14_output_shape_and_feat_dim():
    model = MODELS.build(dict(type='Cnn14'))
    assert model.feat_dim == 2048
    model.eval()
    with torch.no_grad():
        # five 2x2 average poolings, each rounding down
        assert model(torch.randn(2, 1, 100, 64)).shape == (2, 2048, 3, 2)
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2048, 2, 2)


def test_cnn14_other_mel_bins():
    model = MODELS.build(dict(type='Cnn14', mel_bins=128)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 40, 128)).shape == (1, 2048, 1, 4)


def test_cnn14_rejects_wrong_mel_bins_and_short_inputs():
    model = Cnn14(mel_bins=64).eval()
    with pytest.raises(ValueError, match=r'40 mel bins.*Cnn14\.mel_bins=64.*'
                       r'LogMelSpectrogram\.n_mels'):
        model(torch.randn(2, 1, 100, 40))
    with pytest.raises(ValueError, match='at least 32 time frames'):
        model(torch.randn(2, 1, 16, 64))
    with pytest.raises(ValueError, match='mel_bins must be at least 32'):
        Cnn14(mel_bins=16)


def test_cnn14_bn0_normalises_each_mel_bin_and_input_scale():
    model = Cnn14(mel_bins=64).eval()
    x = torch.randn(1, 1, 96, 64)

    def assert_same(out, reference):
        assert out.shape == reference.shape
        scale = reference.abs().max()
        assert scale > 0 and (out - reference).abs().max() <= 1e-4 * scale

    with torch.no_grad():
        reference = model(x)
        # a per-mel-bin offset is removed by bn0's per-bin running mean
        offset = torch.linspace(-3.0, 5.0, 64)
        model.bn0.running_mean.copy_(offset)
        assert_same(model(x + offset), reference)
        # input_scale multiplies the input before bn0
        model.input_scale = LOG_TO_DB
        assert_same(model((x + offset) / LOG_TO_DB), reference)
    value = torch.tensor(0.37)
    assert torch.isclose(LOG_TO_DB * value.log(), 10 * value.log10())


def test_cnn14_has_the_published_names_and_shapes():
    own = {k: tuple(v.shape) for k, v in Cnn14().state_dict().items()}
    expected = {k: v for k, v in published_cnn14_shapes().items()
                if k not in FRONT_END_AND_CLASSIFIER}
    assert own == expected


def test_cnn14_loads_the_published_checkpoint(published_file,
                                              published_state_dict,
                                              mmengine_log):
    model = MODELS.build(dict(type='Cnn14', pretrained=published_file))
    model.init_weights()
    own = model.state_dict()
    assert len(own) == len(published_state_dict) - len(
        FRONT_END_AND_CLASSIFIER)
    for key, value in own.items():
        assert torch.equal(value, published_state_dict[key]), key

    text = mmengine_log.text
    assert f'loaded {len(own)} tensors' in text
    dropped = [r.getMessage() for r in mmengine_log.records
               if 'dropped' in r.getMessage()]
    assert len(dropped) == 1
    for key in FRONT_END_AND_CLASSIFIER:
        assert key in dropped[0]
    assert 'unexpected' not in text and 'missing' not in text

    # loaded weights are used: eval output is deterministic and finite
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 64, 64))
    assert torch.isfinite(out).all()


def test_cnn14_wrong_shape_is_a_clear_error(published_file):
    # a user who sets 128 mel bins and loads the 64-bin published weights
    model = Cnn14(mel_bins=128)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        model.load_pretrained(published_file)
    message = str(err.value)
    assert 'bn0.weight: checkpoint (64,), model (128,)' in message
    assert 'bn0.running_var' in message
    assert 'Cnn14.mel_bins' in message
    assert 'conv_block' not in message  # only the mismatched keys
    # nothing was loaded
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_cnn14_wrong_input_channels_name_the_key(published_state_dict):
    model = Cnn14(in_channels=2)
    with pytest.raises(ValueError,
                       match=r'conv_block1\.conv1\.weight: checkpoint '
                       r'\(64, 1, 3, 3\), model \(64, 2, 3, 3\).*'
                       r'Cnn14\.in_channels'):
        model.load_pretrained(published_state_dict)


def test_cnn14_reports_missing_and_unexpected_keys(published_state_dict,
                                                   mmengine_log):
    state_dict = dict(published_state_dict)
    del state_dict['conv_block4.bn1.running_mean']
    state_dict['fc_extra.weight'] = torch.zeros(3)
    model = Cnn14()
    report = model.load_pretrained(state_dict)
    assert report.missing == ['conv_block4.bn1.running_mean']
    assert report.unexpected == ['fc_extra.weight']
    assert sorted(report.dropped) == sorted(FRONT_END_AND_CLASSIFIER)
    assert len(report.loaded) == len(model.state_dict()) - 1
    warnings = [r.getMessage() for r in mmengine_log.records
                if r.levelno == logging.WARNING]
    assert any('missing' in w and 'conv_block4.bn1.running_mean' in w
               for w in warnings)
    assert any('unexpected' in w and 'fc_extra.weight' in w for w in warnings)
    # the rest is loaded, the missing buffer keeps its initial value
    assert torch.equal(model.conv_block4.bn1.weight,
                       published_state_dict['conv_block4.bn1.weight'])
    assert torch.all(model.conv_block4.bn1.running_mean == 0)


def test_cnn14_frozen_stages_and_norm_eval():
    model = Cnn14(frozen_stages=2, norm_eval=False)
    model.train()
    frozen = ('bn0.', 'conv_block1.', 'conv_block2.')
    for name, param in model.named_parameters():
        assert param.requires_grad != name.startswith(frozen), name
    assert not model.bn0.training and not model.conv_block2.bn2.training
    assert model.conv_block3.bn1.training

    model = Cnn14(norm_eval=True)
    model.train()
    assert not any(bn.training for bn in _bn_layers(model))
    assert all(p.requires_grad for p in model.parameters())
