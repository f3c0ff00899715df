"""OGM-GE optim wrappers: which gradients change, by how much, and when."""
import copy
import math
import os.path as osp
import re

import pytest
import torch
from mmaction.registry import MODELS, OPTIM_WRAPPERS
from mmaction.structures import ActionDataSample

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import AmpOGMGEOptimWrapper, OGMGEOptimWrapper
from mmaction_gblend.models.modulation import encoder_parameters
from helpers import capture_log, load_script

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALPHA = 0.8


def toy_model(seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(toy.toy_config('unused')['model'])
    model.init_weights()
    return model


def toy_batch(n=8):
    g = torch.Generator().manual_seed(1)
    inputs = {k: torch.randn(n, 1, 16, generator=g)
              for k in ('imgs', 'audios')}
    samples = [ActionDataSample().set_gt_label(i % 4) for i in range(n)]
    return inputs, samples


def make_wrapper(model, cls=OGMGEOptimWrapper, lr=0.1, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    options = dict(alpha=ALPHA, ge_noise=False, start_epoch=0)
    options.update(kwargs)
    wrapper = cls(optimizer=optimizer, **options)
    wrapper.bind(model, seed=5)
    # as OnTheFlyModulationHook would: an epoch in the wrapper's window
    model.modulation_state.begin_epoch(options['start_epoch'])
    return wrapper


def give_scores(model, scores):
    """Make the score sums the wrapper takes ``scores`` (by modality), as
    the forward pass of a training step would."""
    state = model.modulation_state
    state.take_scores()  # those of the real forward pass
    state.observe_scores(
        torch.tensor([scores[m] for m in model.modalities]), 1)


def ogm_record(model):
    """What the wrapper recorded for this step, if anything."""
    return model.modulation_state.peek_step_records().get('ogm')


def grads_after_backward(model, wrapper, scores=dict(rgb=30.0, audio=10.0)):
    """Backward a real loss, then give the model known scores (rgb ahead:
    ratio 3), as the forward pass of a training step would."""
    model.zero_grad()
    inputs, samples = toy_batch()
    losses = model.loss(inputs, samples)
    wrapper.backward(sum(v for k, v in losses.items() if 'loss' in k))
    give_scores(model, scores)
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


def parts(model, params='conv'):
    """Parameter names by part: each encoder's modulated set (the toy
    encoder has no convolution: its linear weights for ``'conv'``), and
    everything else (the rest of the encoders, heads, fusion)."""
    names = dict(rgb=set(), audio=set(), rest=set())
    for m in model.modalities:
        names[m] = {f'backbones.{m}.{n}'
                    for n, _ in encoder_parameters(model.backbones[m],
                                                   params)}
    names['rest'] = {n for n, _ in model.named_parameters()} - \
        names['rgb'] - names['audio']
    return names


# rgb leads with ratio 3 (grads_after_backward): k = 1 - tanh(0.8 * 3)
K_PAPER = 1 - math.tanh(ALPHA * 3)


@pytest.mark.parametrize('params', ['conv', 'all'])
def test_only_the_leading_encoders_set_is_scaled(params):
    model = toy_model()
    wrapper = make_wrapper(model, params=params)
    before = grads_after_backward(model, wrapper)
    wrapper.modulate()
    after = {n: p.grad for n, p in model.named_parameters()
             if p.grad is not None}
    groups = parts(model, params)
    assert groups['rgb'] and groups['audio'] and groups['rest']
    biases = {n for n in before if n.startswith('backbones.rgb.')
              and n.endswith('.bias')}
    assert biases and (biases <= groups['rgb']) == (params == 'all')
    for name in groups['rgb']:
        assert torch.allclose(after[name], before[name] * K_PAPER), name
    for name in groups['audio'] | groups['rest']:
        assert torch.equal(after[name], before[name]), name
    record = ogm_record(model)
    named = dict(zip(model.modalities, record['coefficients'].tolist()))
    assert named == pytest.approx(dict(rgb=K_PAPER, audio=1.0), abs=1e-6)
    ratios = dict(zip(model.modalities, record['ratios'].tolist()))
    assert ratios == pytest.approx(dict(rgb=3.0, audio=1 / 3))


@pytest.mark.parametrize('coefficient,k', [
    ('paper', 1 - math.tanh(ALPHA * 3)),
    ('continuous', 1 - math.tanh(ALPHA * 2)),
    ('clamped', 1 - ALPHA * math.tanh(2)),
])
def test_each_coefficient_form_scales_by_its_k(coefficient, k):
    model = toy_model()
    wrapper = make_wrapper(model, coefficient=coefficient)
    before = grads_after_backward(model, wrapper)
    wrapper.modulate()
    name = sorted(parts(model)['rgb'])[0]
    grad = dict(model.named_parameters())[name].grad
    assert torch.allclose(grad, before[name] * k)


@pytest.mark.parametrize('params', ['conv', 'all'])
def test_ge_noise_reaches_both_encoders_sets_and_nothing_else(params):
    model = toy_model()
    wrapper = make_wrapper(model, ge_noise=True, params=params)
    before = grads_after_backward(model, wrapper)
    wrapper.modulate()
    groups = parts(model, params)
    for name, p in model.named_parameters():
        if name in groups['rest']:
            assert torch.equal(p.grad, before[name]), name
        elif p.grad.numel() > 1:
            scale = K_PAPER if name in groups['rgb'] else 1.0
            noise = p.grad - scale * before[name]
            assert noise.abs().max() > 0, name
            assert noise.std() < 5 * before[name].std(correction=0) + 1e-12


def test_ge_noise_depends_only_on_seed_and_step():
    results = []
    for _ in range(2):
        model = toy_model()
        wrapper = make_wrapper(model, ge_noise=True)
        grads_after_backward(model, wrapper)
        wrapper.modulate()
        results.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))
    model = toy_model()
    wrapper = make_wrapper(model, ge_noise=True)
    grads_after_backward(model, wrapper)
    wrapper._inner_count += 1  # another step: other noise
    wrapper.modulate()
    changed = [not torch.equal(a, p.grad)
               for a, p in zip(results[0], model.parameters())]
    assert any(changed)


# start_epoch 2, end_epoch 5, both included as in the authors' code
@pytest.mark.parametrize('epoch,modulated', [(1, False), (2, True),
                                             (4, True), (5, True),
                                             (6, False), (9, False)])
def test_window_boundaries(epoch, modulated):
    model = toy_model()
    wrapper = make_wrapper(model, start_epoch=2, end_epoch=5)
    before = grads_after_backward(model, wrapper)  # scored in epoch 2
    model.modulation_state.begin_epoch(epoch)
    assert wrapper.in_window() == modulated
    assert model.modulation_state.wants_scores == modulated
    wrapper.modulate()
    name = sorted(parts(model)['rgb'])[0]
    grad = dict(model.named_parameters())[name].grad
    assert torch.equal(grad, before[name]) != modulated
    assert (ogm_record(model) is not None) == modulated
    # the scores were consumed either way: they never pile up
    assert model.modulation_state.take_scores() is None


def test_no_epoch_no_window():
    model = toy_model()
    wrapper = OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert not wrapper.in_window()  # not bound
    wrapper.bind(model)
    assert not wrapper.in_window()  # no epoch begun
    assert not model.modulation_state.wants_scores


def test_no_scores_no_modulation_and_unusable_scores_are_neutral():
    model = toy_model()
    wrapper = make_wrapper(model)
    before = grads_after_backward(model, wrapper)
    model.modulation_state.take_scores()
    wrapper.modulate()
    assert ogm_record(model) is None
    give_scores(model, dict(audio=float('nan'), rgb=1.0))
    wrapper.modulate()
    assert ogm_record(model)['coefficients'].tolist() == [1.0, 1.0]
    assert not bool(ogm_record(model)['valid'])
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, before[name])


def test_step_applies_the_modulated_update():
    model = toy_model()
    reference = copy.deepcopy(model)
    wrapper = make_wrapper(model, lr=0.1)
    before = grads_after_backward(model, wrapper)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    wrapper.step()
    groups = parts(model)
    for name, p in model.named_parameters():
        scale = K_PAPER if name in groups['rgb'] else 1.0
        assert torch.allclose(p, start[name] - 0.1 * scale * before[name],
                              atol=1e-7), name
    assert reference is not None


def test_binding_is_required_and_checked():
    model = toy_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = OGMGEOptimWrapper(optimizer=optimizer)
    with pytest.raises(RuntimeError, match='OnTheFlyModulationHook'):
        wrapper.modulate()
    with pytest.raises(ValueError, match='per-modality parameter groups'):
        wrapper.bind(torch.nn.Linear(2, 2))
    heads_only = OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(model.heads.parameters(), lr=0.1))
    with pytest.raises(ValueError, match='not in the optimizer'):
        heads_only.bind(model)


def test_the_defaults_are_the_authors():
    model = toy_model()
    wrapper = OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert (wrapper.coefficient, wrapper.params, wrapper.ge_noise) == \
        ('paper', 'conv', True)
    assert (wrapper.start_epoch, wrapper.end_epoch) == (0, None)
    assert wrapper.describe() == \
        'OGM-GE (alpha 0.8, paper k, conv parameters, epochs 0-last)'


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(alpha=-1), ValueError, 'alpha must be >= 0'),
    (dict(alpha=float('nan')), ValueError, 'alpha must be finite'),
    (dict(alpha=float('inf')), ValueError, 'alpha must be finite'),
    (dict(alpha='0.8'), TypeError, 'alpha must be a number'),
    (dict(alpha=True), TypeError, 'alpha must be a number'),
    (dict(coefficient='sigmoid'), ValueError, 'coefficient must be one of'),
    (dict(coefficient='discontinuous'), ValueError,
     'coefficient must be one of'),
    (dict(params='kernels'), ValueError, 'params must be one of'),
    (dict(ge_noise='no'), TypeError, 'ge_noise must be True or False'),
    (dict(ge_noise=1), TypeError, 'ge_noise must be True or False'),
    (dict(start_epoch=4, end_epoch=3), ValueError, 'start_epoch <= '),
    (dict(start_epoch=-1), ValueError, 'start_epoch <= '),
    (dict(start_epoch=0.5), TypeError, 'start_epoch must be an integer'),
    (dict(start_epoch=False), TypeError, 'start_epoch must be an integer'),
    (dict(end_epoch=50.0), TypeError, 'end_epoch must be an integer'),
    (dict(end_epoch='50'), TypeError, 'end_epoch must be an integer'),
], ids=lambda v: None if isinstance(v, (dict, type)) else v)
@pytest.mark.parametrize('wrapper', ['OGMGEOptimWrapper',
                                     'AmpOGMGEOptimWrapper'])
def test_bad_settings_name_the_key(kwargs, error, match, wrapper,
                                  monkeypatch):
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)  # AmpOptimWrapper builds on a CPU
    model = toy_model()
    with pytest.raises(error, match=f'^{wrapper}: .*' +
                       re.escape(f'optim_wrapper.{match}')):
        OPTIM_WRAPPERS.build(dict(
            type=wrapper,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs))


@pytest.mark.parametrize('ge_noise,nothing', [(True, False), (False, True)])
def test_alpha_0_is_warned_about(ge_noise, nothing):
    model = toy_model()
    wrapper, logged = capture_log(lambda: OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), alpha=0,
        ge_noise=ge_noise))
    assert wrapper.alpha == 0.0
    warning = [line for line in logged if 'optim_wrapper.alpha=0' in line]
    assert len(warning) == 1 and 'coefficient has no effect' in warning[0]
    assert ('changes nothing' in warning[0]) == nothing
    _, logged = capture_log(lambda: OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), alpha=1))
    assert not any('alpha' in line for line in logged)


def test_mixed_precision_unscales_before_modulating(monkeypatch):
    """With a real (CPU) gradient scaler at 2**10, the AMP wrapper's update
    equals the full-precision wrapper's, GE noise and gradient clipping
    included: everything after backward saw unscaled gradients."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    results = {}
    for cls in (OGMGEOptimWrapper, AmpOGMGEOptimWrapper):
        model = toy_model()
        wrapper = make_wrapper(model, cls=cls, ge_noise=True,
                               clip_grad=dict(max_norm=0.02))
        if cls is AmpOGMGEOptimWrapper:
            wrapper.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=2.0**10)
        grads = grads_after_backward(model, wrapper)
        wrapper.step()
        results[cls] = [p.detach().clone() for p in model.parameters()]
        if cls is OGMGEOptimWrapper:  # the clipping is active
            assert torch.cat([g.flatten() for g in grads.values()]).norm() \
                > 0.02
    for full, amp in zip(results[OGMGEOptimWrapper],
                         results[AmpOGMGEOptimWrapper]):
        assert torch.allclose(full, amp, atol=1e-6)


def test_train_amp_flag_picks_the_mixed_precision_form():
    train = load_script(osp.join(REPO, 'tools', 'train.py'))
    config = osp.join(REPO, 'configs', 'demo',
                      'ogm-ge_r3d18-rgb_r18-audio_demo-av.py')
    cfg = train.build_config(train.parse_args([config, '--amp']))
    assert cfg.optim_wrapper.type == 'AmpOGMGEOptimWrapper'
    assert cfg.optim_wrapper.alpha == 0.8
    assert (cfg.optim_wrapper.coefficient, cfg.optim_wrapper.params) == \
        ('paper', 'conv')
    assert OPTIM_WRAPPERS.get(cfg.optim_wrapper.type) is AmpOGMGEOptimWrapper


@MODELS.register_module(force=True)
class _AttentionEncoder(torch.nn.Module):
    """A test encoder with a conv, an attention block and a norm."""

    def __init__(self, in_channels=16, out_channels=32):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 3, padding=1)
        self.proj = torch.nn.Linear(4, out_channels)
        self.attn = torch.nn.MultiheadAttention(out_channels, 4,
                                                batch_first=True)
        self.norm = torch.nn.LayerNorm(out_channels)

    def forward(self, x):
        tokens = self.proj(self.conv(x.flatten(1)[:, None]).transpose(1, 2))
        out, _ = self.attn(tokens, tokens, tokens)
        return self.norm(out).mean(dim=1)


@pytest.mark.parametrize('params,modulated', [
    ('conv', ('conv.weight', 'proj.weight', 'attn.in_proj_weight',
              'attn.out_proj.weight')),
    ('all', ('conv.weight', 'conv.bias', 'proj.weight', 'proj.bias',
             'attn.in_proj_weight', 'attn.in_proj_bias',
             'attn.out_proj.weight', 'attn.out_proj.bias', 'norm.weight',
             'norm.bias')),
])
def test_conv_attention_and_norm_weights(params, modulated):
    cfg = toy.toy_config('unused')['model']
    cfg['branches']['rgb']['backbone'] = dict(type='_AttentionEncoder')
    model = MODELS.build(cfg)
    wrapper = make_wrapper(model, params=params)
    before = grads_after_backward(model, wrapper)
    wrapper.modulate()
    names = [n for n in before if n.startswith('backbones.rgb.')]
    assert sorted(names) == sorted(f'backbones.rgb.{n}' for n in (
        'conv.weight', 'conv.bias', 'proj.weight', 'proj.bias',
        'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight',
        'attn.out_proj.bias', 'norm.weight', 'norm.bias'))
    for name in names:
        grad = dict(model.named_parameters())[name].grad
        scale = K_PAPER if name[len('backbones.rgb.'):] in modulated else 1
        assert torch.allclose(grad, before[name] * scale), name
