"""Fusion modules: shapes, validation, gradients, and each fusion's maths."""
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

# Registers the fusions (the package root does not import models yet).
import mmaction_gblend.models.fusions  # noqa: F401
from mmaction_gblend.models.fusions import global_avg_pool

CH = dict(rgb=32, audio=16)
CH3 = dict(rgb=32, flow=24, audio=16)
# (type, extra kwargs, expected out_channels for CH, for CH3 or None)
SPECS = [
    ('ConcatFusion', {}, 512, 512),
    ('ConcatFusion', dict(num_layers=0), 48, 72),
    ('SumFusion', {}, 512, 512),
    ('FiLMFusion', {}, 512, None),
    ('GatedFusion', {}, 512, None),
    ('SEGateFusion', {}, 512, 512),
    ('NLGateFusion', {}, 48, 72),
]
TYPES = sorted({s[0] for s in SPECS})
SPEC_IDS = [t + ('-0' if kw else '') for t, kw, _, _ in SPECS]
# (spec, three modalities?) for every fusion that takes that many.
CASES = [(s, False) for s in SPECS] + [(s, True) for s in SPECS if s[3]]
CASE_IDS = [
    i + ('-3mod' if three else '-2mod')
    for (s, three
         ), i in zip(CASES, SPEC_IDS +
                     [i for s, i in zip(SPECS, SPEC_IDS) if s[3]])
]
SHAPES = dict(rgb=(32, 2, 3, 3), flow=(24, 2, 3, 3), audio=(16, 4, 5))


def build(type_, in_channels=CH, seed=0, **kwargs):
    torch.manual_seed(seed)
    return MODELS.build(
        dict(type=type_, in_channels=dict(in_channels), **kwargs))


def make_feats(channels=CH, batch=2, pooled=(), seed=1, grad=False):
    """Maps of different spatial ranks; names in ``pooled`` are [B, C]."""
    gen = torch.Generator().manual_seed(seed)
    feats = {}
    for name in channels:
        shape = SHAPES[name][:1] if name in pooled else SHAPES[name]
        feats[name] = torch.randn(
            (batch, ) + shape, generator=gen, requires_grad=grad)
    return feats


def randomise(module, seed=5):
    """Give every parameter (also zero-initialised ones) random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.mark.parametrize(
    'pooled', [(), ('rgb', 'audio'), ('audio', )],
    ids=['maps', 'pooled', 'mixed'])
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('spec', SPECS, ids=SPEC_IDS)
def test_output_shape_two_modalities(spec, batch, pooled):
    type_, kwargs, out_channels, _ = spec
    fusion = build(type_, **kwargs)
    assert fusion.out_channels == out_channels
    assert isinstance(fusion.out_channels, int)
    assert fusion.modalities == ['rgb', 'audio']
    out = fusion(make_feats(batch=batch, pooled=pooled))
    assert out.shape == (batch, out_channels)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    'spec', [s for s in SPECS if s[3]],
    ids=[i for s, i in zip(SPECS, SPEC_IDS) if s[3]])
def test_output_shape_three_modalities(spec):
    type_, kwargs, _, out_channels = spec
    fusion = build(type_, in_channels=CH3, **kwargs)
    assert fusion.out_channels == out_channels
    out = fusion(make_feats(CH3, batch=2, pooled=('flow', )))
    assert out.shape == (2, out_channels)


@pytest.mark.parametrize('type_', ['FiLMFusion', 'GatedFusion'])
def test_two_modality_fusions_reject_three(type_):
    with pytest.raises(
            ValueError, match=rf'{type_}: `in_channels` must name exactly 2'):
        build(type_, in_channels=CH3)


@pytest.mark.parametrize('type_, key', [('FiLMFusion', 'condition'),
                                        ('GatedFusion', 'gate'),
                                        ('NLGateFusion', 'query')])
def test_bad_modality_name_is_rejected(type_, key):
    with pytest.raises(
            ValueError,
            match=rf'{type_}: `{key}` must be one of '
            r"the modalities .* got 'depth'"):
        build(type_, **{key: 'depth'})
    # The defaults ('audio', 'rgb') are not names of these modalities either.
    with pytest.raises(ValueError, match=rf'`{key}`'):
        build(type_, in_channels=dict(depth=8, flow=4))


def test_film_target_must_be_the_other_modality():
    with pytest.raises(
            ValueError, match=r"`target` must be .* 'rgb', got "
            r"'audio'"):
        build('FiLMFusion', condition='audio', target='audio')
    fusion = build('FiLMFusion', condition='audio', target='rgb')
    assert (fusion.condition, fusion.target) == ('audio', 'rgb')


@pytest.mark.parametrize('type_', TYPES)
def test_in_channels_validation(type_):
    with pytest.raises(
            ValueError,
            match=rf'{type_}: `in_channels` must name '
            r".*got 1: \['rgb'\]"):
        build(type_, in_channels=dict(rgb=32))
    with pytest.raises(
            ValueError,
            match=rf'{type_}: `in_channels` must be a '
            'non-empty dict'):
        build(type_, in_channels={})
    for bad in (0, -3, 2.0, True, '16'):
        with pytest.raises(
                ValueError,
                match=rf"{type_}: `in_channels\['audio'"
                rf"\]` must be a positive int, got {bad!r}"):
            build(type_, in_channels=dict(rgb=32, audio=bad))
    with pytest.raises(ValueError, match='without dots'):
        build(type_, in_channels={'rgb': 32, 'a.b': 16})


@pytest.mark.parametrize('type_', TYPES)
def test_forward_rejects_wrong_inputs(type_):
    fusion = build(type_)
    feats = make_feats()
    with pytest.raises(
            ValueError,
            match=rf"{type_}: got modalities \['rgb'\]"
            r", expected exactly \['rgb', 'audio'\]; missing "
            r"\['audio'\]"):
        fusion(dict(rgb=feats['rgb']))
    with pytest.raises(ValueError, match=r"unexpected \['flow'\]"):
        fusion(dict(feats, flow=torch.zeros(2, 24)))
    with pytest.raises(
            ValueError,
            match=rf"{type_}: modality 'audio': "
            r'expected a map \[B, 16, \*spatial\].*got '
            r'channels=8, shape \(2, 8, 4, 5\)'):
        fusion(dict(rgb=feats['rgb'], audio=torch.zeros(2, 8, 4, 5)))
    with pytest.raises(ValueError, match="modality 'audio'.*no channel dim"):
        fusion(dict(rgb=feats['rgb'], audio=torch.zeros(2)))
    with pytest.raises(
            ValueError, match="'audio' has batch size 3, but "
            "'rgb' has 2"):
        fusion(dict(rgb=feats['rgb'], audio=torch.zeros(3, 16)))
    with pytest.raises(TypeError, match='expected a dict'):
        fusion([feats['rgb'], feats['audio']])


@pytest.mark.parametrize('spec, three', CASES, ids=CASE_IDS)
def test_gradients_reach_every_input_and_parameter(spec, three):
    type_, kwargs, _, _ = spec
    channels = CH3 if three else CH
    fusion = build(type_, in_channels=channels, **kwargs)
    feats = make_feats(channels, grad=True, pooled=('audio', ))
    fusion(feats).sum().backward()
    for name, x in feats.items():
        assert x.grad is not None and x.grad.abs().sum() > 0, name
    # DDP needs every parameter in the graph; only NL-gate's projections
    # behind its zero-initialised output projection get a zero gradient.
    zero_ok = ('q_proj', 'k_proj', 'v_proj') if type_ == 'NLGateFusion' \
        else ()
    for name, p in fusion.named_parameters():
        assert p.grad is not None, name
        if not name.startswith(zero_ok):
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('pooled', [(), ('audio', )], ids=['maps', 'mixed'])
def test_nl_gate_all_parameters_learn_once_residual_is_nonzero(pooled):
    fusion = build('NLGateFusion', in_channels=CH3, num_heads=2)
    randomise(fusion)
    feats = make_feats(CH3, grad=True, pooled=pooled)
    fusion(feats).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_nl_gate_starts_as_identity():
    fusion = build(
        'NLGateFusion',
        in_channels=CH3,
        init_cfg=dict(type='Normal', layer='Linear', std=1.0))
    before = fusion.q_proj.weight.clone()
    fusion.init_weights()  # what the Runner does; must keep the zero init
    assert not torch.equal(before, fusion.q_proj.weight)  # init_cfg applied
    assert not fusion.out_proj.weight.any() and not fusion.out_proj.bias.any()
    feats = make_feats(CH3)
    expected = torch.cat([global_avg_pool(feats[m]) for m in CH3], dim=1)
    assert torch.equal(fusion(feats), expected)
    randomise(fusion)
    assert not torch.allclose(fusion(feats), expected)


def test_nl_gate_matches_manual_attention():
    fusion = build(
        'NLGateFusion',
        query='audio',
        embed_channels=8,
        num_heads=2,
        in_channels=CH3)
    randomise(fusion)
    feats = make_feats(CH3, batch=2)
    q = fusion.q_proj(feats['audio'].flatten(2).transpose(1, 2))  # [B,20,8]
    ctx = [feats[m].flatten(2).transpose(1, 2) for m in ('rgb', 'flow')]
    k = torch.cat([fusion.k_proj[m](t) for m, t in zip(('rgb', 'flow'), ctx)],
                  1)
    v = torch.cat([fusion.v_proj[m](t) for m, t in zip(('rgb', 'flow'), ctx)],
                  1)
    heads = []
    for h in range(2):  # per head, channels [4h, 4h+4)
        sl = slice(4 * h, 4 * h + 4)
        w = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / 2.0, -1)
        heads.append(w @ v[..., sl])
    z = fusion.out_proj(torch.cat(heads, -1))  # [B, 20, 16]
    audio = feats['audio'].mean((2, 3)) + z.mean(1)
    expected = torch.cat(
        [feats['rgb'].mean((2, 3, 4)), feats['flow'].mean(
            (2, 3, 4)), audio], 1)
    torch.testing.assert_close(fusion(feats), expected)


def test_nl_gate_single_token_inputs():
    """With one key token, attention returns that token's value exactly."""
    fusion = build('NLGateFusion')
    randomise(fusion)
    feats = make_feats(pooled=('rgb', 'audio'))
    z = fusion.out_proj(fusion.v_proj['audio'](feats['audio']))
    expected = torch.cat([feats['rgb'] + z, feats['audio']], 1)
    torch.testing.assert_close(fusion(feats), expected)


def test_se_gates_are_cross_modal_and_in_unit_interval():
    fusion = build('SEGateFusion', in_channels=CH3)
    randomise(fusion)
    feats = make_feats(CH3, batch=3)
    gates = fusion.gates(feats)
    for name, g in gates.items():
        assert g.shape == (3, CH3[name])
        assert ((g > 0) & (g < 1)).all()
    # A modality's gate depends on the others only.
    changed = dict(feats, audio=feats['audio'] + 1.0)
    new = fusion.gates(changed)
    assert not torch.allclose(new['rgb'], gates['rgb'])
    assert not torch.allclose(new['flow'], gates['flow'])
    assert torch.equal(new['audio'], gates['audio'])


def test_se_gate_changes_output_through_the_other_modality():
    fusion = build('SEGateFusion', in_channels=CH)
    randomise(fusion)
    with torch.no_grad():  # audio's own features no longer reach the output
        fusion.fc[0].weight[:, 32:] = 0
    feats = make_feats(pooled=('audio', ))
    out = fusion(feats)
    assert not torch.allclose(
        fusion(dict(feats, audio=feats['audio'] * -2.0)), out)
    # ... and it is the gated map, pooled: same as gating the full map.
    g = fusion.gates(feats)
    rgb = (feats['rgb'] * g['rgb'][:, :, None, None, None]).mean((2, 3, 4))
    expected = fusion.fc(torch.cat([rgb, g['audio'] * feats['audio']], 1))
    torch.testing.assert_close(out, expected)


def test_sum_fusion_is_sum_of_projections():
    fusion = build('SumFusion', in_channels=CH3, out_channels=7)
    feats = make_feats(CH3)
    parts = fusion.project(feats)
    assert list(parts) == ['rgb', 'flow', 'audio']
    manual = sum(fusion.proj[m](global_avg_pool(feats[m])) for m in CH3)
    out = fusion(feats)
    torch.testing.assert_close(out, manual)
    torch.testing.assert_close(out, sum(parts.values()))
    # With a linear head the fused logits split into per-modality logits.
    head = torch.nn.Linear(7, 5)
    per_mod = sum(F.linear(p, head.weight) for p in parts.values())
    torch.testing.assert_close(head(out), per_mod + head.bias)


def test_concat_without_layers_is_plain_concatenation():
    fusion = build('ConcatFusion', num_layers=0, in_channels=CH3)
    assert list(fusion.parameters()) == []
    feats = make_feats(CH3, pooled=('flow', ))
    expected = torch.cat([
        feats['rgb'].mean((2, 3, 4)), feats['flow'], feats['audio'].mean(
            (2, 3))
    ], 1)
    assert torch.equal(fusion(feats), expected)


def test_concat_layers_and_dropout():
    fusion = build(
        'ConcatFusion', hidden_channels=20, num_layers=2, dropout=0.5)
    linears = [m for m in fusion.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(48, 20),
                                                                  (20, 20)]
    feats = make_feats()
    fusion.eval()
    out = fusion(feats)
    assert (out >= 0).all()  # ReLU after the last FC layer
    fusion.train()
    torch.manual_seed(3)
    a = fusion(feats)
    torch.manual_seed(3)
    assert torch.equal(a, fusion(feats))  # deterministic given the seed
    assert not torch.equal(a, out)  # dropout is active in training
    with pytest.raises(ValueError, match='`dropout` must be in'):
        build('ConcatFusion', dropout=1.0)
    with pytest.raises(
            ValueError, match='`num_layers` must be a '
            'non-negative int'):
        build('ConcatFusion', num_layers=-1)


def test_film_and_gated_formulas():
    film = build('FiLMFusion', out_channels=6)
    feats = make_feats(pooled=('audio', ))
    gamma, beta = film.film(feats['audio']).chunk(2, 1)
    target = film.proj(feats['rgb'].mean((2, 3, 4)))
    torch.testing.assert_close(film(feats), gamma * target + beta)
    assert film.film.in_features == 16 and film.proj.in_features == 32
    # OGM-GE's x_film=False swaps the roles.
    swapped = build('FiLMFusion', x_film=False)
    assert (swapped.condition, swapped.target) == ('rgb', 'audio')
    assert swapped.film.in_features == 32

    gated = build('GatedFusion', gate='rgb', out_channels=6)
    gate = torch.sigmoid(gated.gate_proj(feats['rgb'].mean((2, 3, 4))))
    torch.testing.assert_close(gated(feats), gate * gated.proj(feats['audio']))


@pytest.mark.parametrize('spec, three', CASES, ids=CASE_IDS)
def test_dict_order_does_not_matter_and_seed_determines(spec, three):
    type_, kwargs, _, _ = spec
    channels = CH3 if three else CH
    fusion = build(type_, in_channels=channels, **kwargs)
    randomise(fusion)  # also NL-gate's residual, so order could matter
    feats = make_feats(channels)
    reordered = {m: feats[m] for m in reversed(list(feats))}
    assert list(reordered) != list(feats)
    assert torch.equal(fusion(feats), fusion(reordered))
    # Same seed, same module; a different seed gives different weights.
    a, b = build(
        type_, in_channels=channels, **kwargs), build(
            type_, in_channels=channels, **kwargs)
    assert torch.equal(a(feats), b(feats))
    if list(a.parameters()):
        c = build(type_, in_channels=channels, seed=1, **kwargs)
        assert not all(
            torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_out_channels_match_a_fused_head():
    """The recognizer builds Linear(fusion.out_channels, num_classes)."""
    for type_, kwargs, _, _ in SPECS:
        fusion = build(type_, **kwargs)
        head = torch.nn.Linear(fusion.out_channels, 5)
        assert head(fusion(make_feats(batch=1))).shape == (1, 5)
