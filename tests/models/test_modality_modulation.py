"""Per-modality scores (the three sources) and OPM inside the recognizer."""
import re

import pytest
import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

import mmaction_gblend.demo.toy_task  # noqa: F401  (ToyEncoder)
from mmaction_gblend.blending import discrepancy_ratios
from mmaction_gblend.models.modulation import (encoder_parameters, eval_mode,
                                               modality_logits,
                                               true_class_probability)
from helpers import capture_log

KEYS = ('imgs', 'audios', 'flows')


def build(fusion, modalities=('rgb', 'audio'), **kwargs):
    branches = {
        m: dict(input_key=KEYS[i], feat_dim=8,
                backbone=dict(type='ToyEncoder', in_channels=6,
                              out_channels=8, hidden_channels=8))
        for i, m in enumerate(modalities)
    }
    model = MODELS.build(dict(
        type='MultiHeadRecognizer', num_classes=5, branches=branches,
        fusion=fusion, head=dict(type='ClassifierHead', dropout_ratio=0.5),
        data_preprocessor=dict(
            type='MultiModalDataPreprocessor',
            preprocessors={KEYS[i]: dict(type='ActionDataPreprocessor')
                           for i in range(len(modalities))}),
        **kwargs))
    model.init_weights()
    for p in model.heads.parameters():  # visible, non-zero biases
        nn.init.normal_(p, std=0.5)
    return model


def batch(model, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = {model.input_keys[m]: torch.randn(n, 1, 6, generator=g)
              for m in model.modalities}
    labels = torch.arange(n) % 5
    samples = [ActionDataSample().set_gt_label(int(y)) for y in labels]
    return inputs, samples, labels


def maps_of(model, inputs):
    maps, _ = model.extract_feat(inputs)
    return maps


def collect_scores(model, epoch=0):
    """Have the model's state keep score sums, as a bound OGM-GE wrapper
    and the hook's epoch would."""
    model.modulation_state.request_scores(0, None)
    model.modulation_state.begin_epoch(epoch)


def record(model, source):
    """The step's record of ``source``, or ``None``."""
    return model.modulation_state.peek_step_records().get(source)


# ---- score sources ---------------------------------------------------------


@pytest.mark.parametrize('fusion', [
    dict(type='ConcatFusion', num_layers=0),
    dict(type='SumFusion', out_channels=7)
])
def test_linear_split_adds_up_to_the_fused_logits(fusion):
    model = build(fusion)
    assert model.score_source == 'linear_split'  # 'auto' resolves to it
    inputs, _, _ = batch(model)
    model.eval()
    maps = maps_of(model, inputs)
    parts = modality_logits('linear_split', model.modalities, maps,
                            model.fusion, model.heads, model.heads['fused'])
    fused = model.head_logits(maps)['fused']
    assert parts.shape == (2, 6, 5)
    assert torch.allclose(parts.sum(dim=0), fused, atol=1e-5)
    # each part depends on its own modality only
    other = dict(maps, audio=torch.randn_like(maps['audio']))
    again = modality_logits('linear_split', model.modalities, other,
                            model.fusion, model.heads, model.heads['fused'])
    rgb, audio = model.modalities.index('rgb'), model.modalities.index(
        'audio')
    assert torch.equal(again[rgb], parts[rgb])
    assert not torch.allclose(again[audio], parts[audio])


def test_linear_split_shares_the_bias_equally():
    model = build(dict(type='ConcatFusion', num_layers=0))
    maps = {m: torch.zeros(3, 8) for m in model.modalities}
    parts = modality_logits('linear_split', model.modalities, maps,
                            model.fusion, model.heads, model.heads['fused'])
    bias = model.heads['fused'].fc_cls.bias
    assert torch.allclose(parts, (bias / 2).expand(2, 3, 5))


def test_linear_split_is_refused_for_a_nonlinear_fusion():
    with pytest.raises(ValueError, match="score_source='linear_split'.*"
                       "ConcatFusion"):
        build(dict(type='ConcatFusion', num_layers=2),
              score_source='linear_split')
    model = build(dict(type='ConcatFusion', num_layers=2))
    assert model.score_source == 'zero_out'
    with pytest.raises(ValueError, match='score_source must be one of'):
        build(dict(type='ConcatFusion'), score_source='loss')


@pytest.mark.parametrize('fusion', [
    dict(type='ConcatFusion', num_layers=2, hidden_channels=16),
    dict(type='FiLMFusion'), dict(type='GatedFusion')
])
def test_zero_out_equals_one_pass_per_modality(fusion):
    model = build(fusion, score_source='zero_out')
    inputs, _, _ = batch(model)
    model.train()
    maps = maps_of(model, inputs)
    batched = modality_logits('zero_out', model.modalities, maps,
                              model.fusion, model.heads, model.heads['fused'])
    with torch.no_grad(), eval_mode(model):
        for i, m in enumerate(model.modalities):
            zeroed = {j: maps[j] if j == m else torch.zeros_like(maps[j])
                      for j in model.modalities}
            one = model.heads['fused'](model.fusion(zeroed))
            assert torch.allclose(batched[i], one, atol=1e-5)
    assert model.training and model.heads['fused'].dropout.training


def test_heads_source_reads_the_modality_heads_without_dropout():
    model = build(dict(type='ConcatFusion'), score_source='heads')
    inputs, _, _ = batch(model)
    model.train()
    maps = maps_of(model, inputs)
    got = modality_logits('heads', model.modalities, maps, model.fusion,
                          model.heads, model.heads['fused'])
    model.eval()
    for i, m in enumerate(model.modalities):
        assert torch.allclose(got[i], model.heads[m](maps[m]))


def test_scores_do_not_touch_batch_norm_statistics():
    model = build(dict(type='ConcatFusion'))
    model.fusion.mlp.insert(0, nn.BatchNorm1d(16))
    model.train()
    maps = {m: torch.randn(4, 8) for m in model.modalities}
    before = model.fusion.mlp[0].running_mean.clone()
    modality_logits('zero_out', model.modalities, maps, model.fusion,
                    model.heads, model.heads['fused'])
    assert torch.equal(model.fusion.mlp[0].running_mean, before)
    assert model.fusion.mlp[0].training


def test_true_class_probability_matches_a_loop():
    logits = torch.randn(3, 7, 5)
    labels = torch.randint(0, 5, (7, ))
    got = true_class_probability(logits, labels)
    expected = [sum(logits[m, b].softmax(0)[labels[b]].item()
                    for b in range(7)) for m in range(3)]
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    soft = torch.nn.functional.one_hot(labels, 5).float()
    assert torch.allclose(true_class_probability(logits, soft), got)


def test_training_loss_scores_every_process_batch_once():
    model = build(dict(type='ConcatFusion'))
    inputs, samples, labels = batch(model)
    model.train()
    # no scoring while nobody asks (no epoch in a window)
    model.loss(inputs, samples)
    assert record(model, 'scores') is None
    collect_scores(model)
    model.loss(inputs, samples)
    model.loss(inputs, samples)
    sums = model.modulation_state.take_scores()
    maps = maps_of(model, inputs)
    one = true_class_probability(
        modality_logits('zero_out', model.modalities, maps, model.fusion,
                        model.heads, model.heads['fused']), labels)
    assert torch.allclose(sums, 2 * one, atol=1e-5)
    assert model.modulation_state.take_scores() is None
    last = model.modulation_state.take_step_records()['scores']
    assert torch.allclose(last['scores'], one / 6, atol=1e-6)
    assert torch.allclose(last['ratios'], discrepancy_ratios(one)[0])
    # nor in eval mode
    model.eval()
    with torch.no_grad():
        model.loss(inputs, samples)
    assert model.modulation_state.take_step_records() == {}
    assert model.modulation_state.take_scores() is None


def test_modality_parameters_are_the_encoders_only():
    model = build(dict(type='SumFusion'))
    head_ids = {id(p) for p in model.heads.parameters()} | {
        id(p) for p in model.fusion.parameters()}
    for params in ('conv', 'all'):
        groups = model.modality_parameters(params)
        assert list(groups) == ['audio', 'rgb']
        for m, group in groups.items():
            assert [id(p) for p in group] == [
                id(p) for _, p in encoder_parameters(model.backbones[m],
                                                     params)]
        assert not head_ids & {id(p) for ps in groups.values() for p in ps}
    # the default is the authors' set; 'all' is every encoder parameter
    assert [id(p) for p in model.modality_parameters()['rgb']] == \
        [id(p) for p in model.modality_parameters('conv')['rgb']]
    assert {id(p) for p in model.modality_parameters('all')['rgb']} == {
        id(p) for p in model.backbones['rgb'].parameters()}
    uni = MODELS.build(dict(
        type='MultiHeadRecognizer', num_classes=5,
        branches=dict(rgb=dict(input_key='imgs', feat_dim=32, backbone=dict(
            type='ToyEncoder', in_channels=6)))))
    with pytest.raises(ValueError, match='multi-modal'):
        uni.modality_parameters()
    with pytest.raises(ValueError, match='opm needs two or more'):
        MODELS.build(dict(
            type='MultiHeadRecognizer', num_classes=5, opm=dict(),
            branches=dict(rgb=dict(input_key='imgs', feat_dim=32,
                                   backbone=dict(type='ToyEncoder',
                                                 in_channels=6)))))


# ---- OPM -------------------------------------------------------------------


def by_name(model, **values):
    """A per-modality tensor in the model's order, from values by name."""
    return torch.tensor([values[m] for m in model.modalities])


def opm_model(**opm):
    model = build(dict(type='ConcatFusion', num_layers=0),
                  opm=dict(dict(start_epoch=0), **opm))
    model.modulation_state.begin_epoch(0)  # as the hook would
    return model


def test_opm_drops_the_leading_modality_at_its_rate():
    model = opm_model(p_exe=1.0)
    model.train()
    maps = {m: torch.randn(20_000, 8) + 3 for m in model.modalities}
    out = model.opm(maps, by_name(model, rgb=2.0, audio=0.5))
    q = dict(zip(model.modalities,
                 record(model, 'opm')['probabilities'].tolist()))
    assert q['audio'] == 0 and q['rgb'] > 0.5
    dropped = (out['rgb'] == 0).all(dim=1).float().mean().item()
    assert dropped == pytest.approx(q['rgb'], abs=0.015)
    assert not (out['audio'] == 0).all(dim=1).any()
    assert record(model, 'opm')['dropped'].tolist() == pytest.approx(
        by_name(model, rgb=dropped * 20_000, audio=0).tolist())


def test_opm_rescales_kept_features_by_one_over_one_minus_theta():
    model = opm_model(p_exe=1.0)
    maps = {m: torch.randn(50, 8) for m in model.modalities}
    ratios = by_name(model, rgb=3.0, audio=1 / 3)
    out = model.opm(maps, ratios)
    q_rgb = record(model, 'opm')['probabilities'].max().item()
    theta = q_rgb * 8 / 16  # both modalities have 8 channels
    kept = ~(out['rgb'] == 0).all(dim=1)
    assert torch.allclose(out['rgb'][kept], maps['rgb'][kept] / (1 - theta))
    assert torch.allclose(out['audio'], maps['audio'] / (1 - theta))
    # the gradient carries the same factor
    x = {m: v.clone().requires_grad_() for m, v in maps.items()}
    model.opm(x, ratios)['audio'].sum().backward()
    factor = 1 / (1 - record(model, 'opm')['probabilities'].max().item() / 2)
    assert torch.allclose(x['audio'].grad, torch.full((50, 8), factor))


def test_opm_execution_probability_per_batch():
    model = opm_model(p_exe=0.3)
    maps = {m: torch.ones(4, 8) for m in model.modalities}
    executed = [model.opm(maps, torch.tensor([2.0, 0.5])) is not maps
                for _ in range(2000)]
    assert sum(executed) / 2000 == pytest.approx(0.3, abs=0.04)


def test_opm_in_training_drops_only_before_the_fused_head():
    model = opm_model(p_exe=1.0, q_base=1.0, lam=0.0)
    inputs, samples, _ = batch(model, n=8)
    model.train()
    model.heads['fused'].dropout.p = 0.0
    for m in model.modalities:
        model.heads[m].dropout.p = 0.0
    seen = {}
    for name in ('fused', 'rgb', 'audio'):
        model.heads[name].register_forward_pre_hook(
            lambda mod, args, name=name: seen.__setitem__(name, args[0]))
    model.loss(inputs, samples)
    ratios = record(model, 'scores')['ratios']
    lead = int(ratios.argmax())
    x = seen['fused']
    width = 8
    lead_slice = x[:, lead * width:(lead + 1) * width]
    assert (lead_slice == 0).all()  # q = 1 for the leading modality
    maps = maps_of(model, inputs)
    for m in model.modalities:  # the modality heads see everything
        assert torch.allclose(seen[m], maps[m])


def test_opm_does_nothing_in_eval_or_outside_its_window():
    model = opm_model(p_exe=1.0, q_base=1.0, lam=0.0)
    model.opm.start_epoch, model.opm.end_epoch = 2, 4
    inputs, samples, _ = batch(model, n=8)
    model.train()
    # both ends included, as in the authors' code
    state = model.modulation_state
    for epoch, active in ((1, False), (2, True), (3, True), (4, True),
                          (5, False)):
        state.begin_epoch(epoch)
        state.take_step_records()
        model.loss(inputs, samples)
        assert (record(model, 'opm') is not None) == active, epoch
    model.eval()
    state.begin_epoch(2)
    state.take_step_records()
    with torch.no_grad():
        model(inputs, samples, mode='predict')
        model(inputs, samples, mode='loss')
    assert record(model, 'opm') is None


def test_opm_needs_its_hook_and_valid_settings():
    # no epoch given, as without OnTheFlyModulationHook
    model = build(dict(type='ConcatFusion', num_layers=0),
                  opm=dict(start_epoch=0))
    inputs, samples, _ = batch(model)
    model.train()
    with pytest.raises(RuntimeError, match='OnTheFlyModulationHook'):
        model.loss(inputs, samples)


OPM = 'MultiHeadRecognizer.opm'


@pytest.mark.parametrize('bad,error,message', [
    (dict(p_exe=1.5), ValueError, f'{OPM}.p_exe must be in [0, 1]'),
    (dict(p_exe=-0.1), ValueError, f'{OPM}.p_exe must be in [0, 1]'),
    (dict(p_exe=float('nan')), ValueError, f'{OPM}.p_exe must be finite'),
    (dict(p_exe='0.7'), TypeError, f'{OPM}.p_exe must be a number'),
    (dict(q_base=-0.1), ValueError, f'{OPM}.q_base must be in [0, 1]'),
    (dict(q_base=True), TypeError, f'{OPM}.q_base must be a number'),
    (dict(lam=-1), ValueError, f'{OPM}.lam must be >= 0'),
    (dict(lam=float('inf')), ValueError, f'{OPM}.lam must be finite'),
    (dict(lam=None), TypeError, f'{OPM}.lam must be a number'),
    (dict(start_epoch=-1), ValueError, f'{OPM}.start_epoch <= {OPM}.end'),
    (dict(start_epoch=3, end_epoch=2), ValueError,
     f'{OPM}.start_epoch <= {OPM}.end_epoch'),
    (dict(start_epoch=2.5), TypeError, f'{OPM}.start_epoch must be an int'),
    (dict(start_epoch=True), TypeError, f'{OPM}.start_epoch must be an int'),
    (dict(end_epoch=9.0), TypeError, f'{OPM}.end_epoch must be an integer'),
    (dict(rescale='no'), TypeError, f'{OPM}.rescale must be True or False'),
    (dict(drop=0.5), ValueError, f"{OPM}: unknown keys ['drop']"),
], ids=lambda v: None if isinstance(v, (dict, type)) else v)
def test_bad_opm_settings_name_the_key_when_built(bad, error, message):
    with pytest.raises(error, match=re.escape(message)):
        build(dict(type='ConcatFusion'), opm=bad)


@pytest.mark.parametrize('key', ['p_exe', 'q_base'])
def test_opm_that_never_drops_is_warned_about(key):
    model, logged = capture_log(
        lambda: build(dict(type='ConcatFusion'), opm={key: 0}))
    assert getattr(model.opm, key) == 0.0
    assert any(f'{OPM}.{key}=0: OPM never drops a feature' in line
               for line in logged), logged
    _, logged = capture_log(lambda: build(dict(type='ConcatFusion'),
                                          opm=dict(q_base=0.5, p_exe=0.7)))
    assert not any('OPM never drops' in line for line in logged)


def test_three_modalities_score_and_drop():
    model = build(dict(type='ConcatFusion', num_layers=0),
                  modalities=('rgb', 'audio', 'flow'),
                  opm=dict(start_epoch=0, p_exe=1.0))
    collect_scores(model, epoch=0)
    inputs, samples, _ = batch(model, n=10)
    model.train()
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses['loss_fused'])
    scores = model.modulation_state.take_scores()
    assert scores.shape == (3, )
    ratios = record(model, 'scores')['ratios']
    assert torch.allclose(ratios, discrepancy_ratios(scores)[0])
    q = record(model, 'opm')['probabilities']
    assert q[ratios.argmin()] == 0
