"""MultiHeadRecognizer: steps, loss keys, weights, gradients, views, errors."""
import copy
import re
from unittest.mock import MagicMock

import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

from helpers import tiny_av_branches

NUM_CLASSES = 4
PREPROCESSOR = dict(
    type='MultiModalDataPreprocessor',
    preprocessors=dict(
        imgs=dict(type='ActionDataPreprocessor', format_shape='NCTHW'),
        audios=dict(type='ActionDataPreprocessor')))
_BRANCHES = tiny_av_branches()
RGB = _BRANCHES['rgb']
AUDIO = _BRANCHES['audio']


def model_cfg(**kwargs):
    cfg = dict(type='MultiHeadRecognizer', num_classes=NUM_CLASSES,
               branches=dict(rgb=copy.deepcopy(RGB),
                             audio=copy.deepcopy(AUDIO)),
               fusion=dict(type='ConcatFusion', hidden_channels=16),
               head=dict(type='ClassifierHead', dropout_ratio=0.0),
               data_preprocessor=PREPROCESSOR)
    cfg.update(kwargs)
    return cfg


def batch(n=2, rgb_views=1, audio_views=1, labels=None):
    labels = labels if labels is not None else list(range(n))
    return dict(
        inputs=dict(
            imgs=[torch.randint(0, 255, (rgb_views, 3, 4, 32, 32)).float()
                  for _ in range(n)],
            audios=[torch.rand(audio_views, 1, 32, 16) for _ in range(n)]),
        data_samples=[ActionDataSample().set_gt_label(labels[i] % NUM_CLASSES)
                      for i in range(n)])


def test_train_step_returns_one_weighted_loss_per_head():
    model = MODELS.build(model_cfg(
        blend_weights=dict(rgb=0.2, audio=0.3, fused=0.5)))
    optim = MagicMock()
    log_vars = model.train_step(batch(), optim)
    optim.update_params.assert_called_once()
    assert {'loss', 'loss_rgb', 'loss_audio', 'loss_fused', 'rgb_ce',
            'audio_ce', 'fused_ce', 'rgb_top1', 'audio_top1',
            'fused_top1'} <= set(log_vars)
    for head, w in dict(rgb=0.2, audio=0.3, fused=0.5).items():
        assert log_vars[f'loss_{head}'].item() == pytest.approx(
            w * log_vars[f'{head}_ce'].item(), rel=1e-5)
    total = sum(log_vars[f'loss_{h}'] for h in ('rgb', 'audio', 'fused'))
    assert log_vars['loss'].item() == pytest.approx(total.item(), rel=1e-5)


def test_monitor_keys_are_not_optimised():
    model = MODELS.build(model_cfg())
    losses = model(**model.data_preprocessor(batch(), True), mode='loss')
    _, log_vars = model.parse_losses(losses)
    optimised = [k for k in losses if 'loss' in k]
    assert optimised == ['loss_audio', 'loss_rgb', 'loss_fused']
    assert log_vars['loss'].item() == pytest.approx(
        sum(losses[k].item() for k in optimised), rel=1e-5)


def test_fused_head_is_weighted_and_every_branch_gets_gradients():
    model = MODELS.build(model_cfg(
        blend_weights=dict(rgb=0.0, audio=0.0, fused=1.0)))
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, param in model.named_parameters():
        # every parameter is in the graph (DDP needs no unused ones) ...
        assert param.grad is not None, name
    # ... the weight-0 heads get exactly zero, the branches something
    assert not model.heads['rgb'].fc_cls.weight.grad.any()
    assert model.backbones['rgb'].conv1.conv.weight.grad.abs().sum() > 0
    assert model.backbones['audio'].parameters().__next__().grad.abs(
    ).sum() > 0

    model.zero_grad()
    model.set_blend_weights(dict(rgb=1.0, audio=0.0, fused=0.0))
    losses = model(**data, mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.heads['rgb'].fc_cls.weight.grad.abs().sum() > 0
    assert not model.heads['fused'].fc_cls.weight.grad.any()
    assert not any(p.grad.any() for p in model.backbones['audio'].parameters()
                   if p.grad is not None)


def test_predict_gives_fused_pred_score_and_head_scores():
    model = MODELS.build(model_cfg()).eval()
    with torch.no_grad():
        out = model.test_step(batch(n=3, rgb_views=3, audio_views=3))
    assert len(out) == 3
    for sample in out:
        assert sample.pred_score.shape == (NUM_CLASSES, )
        assert sample.pred_score.sum().item() == pytest.approx(1, abs=1e-5)
        assert set(sample.head_scores) == {'rgb', 'audio', 'fused'}
    # pred_score is the fused head: the same as the 'tensor' mode's fused
    data = model.data_preprocessor(batch(n=1), False)
    with torch.no_grad():
        logits = model(**data, mode='tensor')
        pred = model(**data, mode='predict')[0]
    assert list(logits) == ['audio', 'rgb', 'fused']  # by name, fused last
    torch.testing.assert_close(pred.pred_score,
                               logits['fused'].softmax(1)[0])
    torch.testing.assert_close(pred.head_scores['rgb'],
                               logits['rgb'].softmax(1)[0])
    torch.testing.assert_close(pred.head_scores['fused'], pred.pred_score)


def test_mix_prediction_mixes_head_probabilities_by_prediction_weights():
    model = MODELS.build(model_cfg(prediction='mix')).eval()
    # before a fit: one-hot on the prediction head, the paper's prediction
    assert model.get_prediction_weights() == dict(rgb=0, audio=0, fused=1)
    data = model.data_preprocessor(batch(n=2, rgb_views=3, audio_views=3),
                                   False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    torch.testing.assert_close(out[0].pred_score, out[0].head_scores['fused'])
    weights = dict(rgb=0.5, audio=0.2, fused=0.3)
    model.set_prediction_weights(weights)
    with torch.no_grad():
        out = model(**data, mode='predict')
    for sample in out:
        expected = sum(w * sample.head_scores[h] for h, w in weights.items())
        torch.testing.assert_close(sample.pred_score, expected)
        assert sample.pred_score.sum().item() == pytest.approx(1, abs=1e-5)
    # the weights are a buffer: a checkpoint carries them
    state = model.state_dict()
    fresh = MODELS.build(model_cfg(prediction='mix'))
    fresh.load_state_dict(state)
    assert fresh.get_prediction_weights() == pytest.approx(weights)
    with pytest.raises(ValueError, match='prediction_weights'):
        model.set_prediction_weights(dict(rgb=0.5, audio=0.6, fused=0.0))


def test_an_unknown_prediction_names_the_key():
    with pytest.raises(ValueError, match='MultiHeadRecognizer.prediction'):
        MODELS.build(model_cfg(prediction='vote'))


def test_the_order_of_branches_in_the_config_does_not_matter():
    """mmengine writes a run's config back with its keys sorted; a model
    built from that copy must be the one that was trained."""
    ordered = MODELS.build(model_cfg(
        blend_weights=dict(rgb=0.2, audio=0.3, fused=0.5))).eval()
    swapped = MODELS.build(model_cfg(
        branches=dict(audio=copy.deepcopy(AUDIO), rgb=copy.deepcopy(RGB)),
        blend_weights=dict(fused=0.5, audio=0.3, rgb=0.2))).eval()
    swapped.load_state_dict(ordered.state_dict())
    assert ordered.modalities == swapped.modalities == ['audio', 'rgb']
    assert ordered.get_blend_weights() == swapped.get_blend_weights()
    data = ordered.data_preprocessor(batch(n=2), False)
    with torch.no_grad():
        a = ordered(**data, mode='tensor')
        b = swapped(**data, mode='tensor')
    for head in a:
        torch.testing.assert_close(a[head], b[head])


def test_unequal_view_counts_average_features():
    model = MODELS.build(model_cfg()).eval()
    with torch.no_grad():
        out = model.test_step(batch(n=2, rgb_views=3, audio_views=1))
    assert out[0].pred_score.shape == (NUM_CLASSES, )


def test_predict_head_and_score_averaging():
    model = MODELS.build(model_cfg(predict_head='audio',
                                   average_clips='score')).eval()
    data = model.data_preprocessor(batch(n=1), False)
    with torch.no_grad():
        logits = model(**data, mode='tensor')
        pred = model(**data, mode='predict')[0]
    torch.testing.assert_close(pred.pred_score, logits['audio'][0])


def test_uni_modal_model_has_no_fused_head():
    model = MODELS.build(model_cfg(
        branches=dict(audio=copy.deepcopy(AUDIO)), fusion=None))
    assert model.head_names == ['audio']
    assert model.get_blend_weights() == {'audio': 1.0}
    log_vars = model.train_step(batch(), MagicMock())
    assert 'loss_audio' in log_vars and 'loss_fused' not in log_vars
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch())
    assert out[0].pred_score.shape == (NUM_CLASSES, )


def test_blend_weights_are_a_buffer_saved_in_the_state_dict():
    model = MODELS.build(model_cfg())
    assert model.get_blend_weights() == dict(rgb=0.0, audio=0.0, fused=1.0)
    model.set_blend_weights(dict(rgb=0.25, audio=0.25, fused=0.5))
    state = model.state_dict()
    assert torch.equal(state['blend_weights'], torch.tensor([.25, .25, .5]))
    other = MODELS.build(model_cfg())
    other.load_state_dict(state)
    assert other.get_blend_weights() == dict(rgb=0.25, audio=0.25, fused=0.5)


@pytest.mark.parametrize('weights,match', [
    (dict(rgb=0.5, audio=0.5), 'one weight per head'),
    (dict(rgb=-0.5, audio=0.5, fused=1.0), 'must be >= 0'),
    (dict(rgb=0.5, audio=0.5, fused=0.5), 'must sum to 1'),
    (dict(rgb=float('nan'), audio=0.5, fused=0.5), 'must be finite'),
])
def test_bad_blend_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(blend_weights=weights))
    model = MODELS.build(model_cfg())
    with pytest.raises(ValueError, match=match):
        model.set_blend_weights(weights)
    assert model.get_blend_weights()['fused'] == 1.0  # unchanged


@pytest.mark.parametrize('change,match', [
    (dict(fusion=None), 'fusion is required for 2 modalities'),
    (dict(branches=dict(audio=AUDIO), fusion=dict(type='ConcatFusion')),
     'fusion given for a single modality'),
    (dict(branches=dict(rgb=dict(RGB, input_key='frames'), audio=AUDIO)),
     "model.branches.rgb.input_key='frames'"),
    (dict(branches=dict(fused=RGB, audio=AUDIO)), "bad modality name 'fused'"),
    (dict(branches=dict(rgb_loss=RGB, audio=AUDIO)), 'without "loss"'),
    (dict(branches=dict(rgb=dict(RGB, input_format='NTCHW'), audio=AUDIO)),
     'branches.rgb.input_format'),
    (dict(branches=dict(rgb=dict(RGB, extra=1), audio=AUDIO)),
     r"branches.rgb: unknown keys \['extra'\]"),
    (dict(predict_head='flow'), 'predict_head must be one of'),
    (dict(data_preprocessor=dict(type='ActionDataPreprocessor')),
     'must be a MultiModalDataPreprocessor'),
])
def test_inconsistent_configs_are_rejected(change, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(**copy.deepcopy(change)))


def branch(**change):
    """The rgb branch with ``change``, next to the audio branch."""
    return dict(rgb=dict(copy.deepcopy(RGB), **change),
                audio=copy.deepcopy(AUDIO))


UNI_MODAL = dict(branches=dict(audio=AUDIO), fusion=None)


@pytest.mark.parametrize('change,error,key', [
    (dict(num_classes=0), ValueError, 'num_classes must be >= 1'),
    (dict(num_classes=4.0), TypeError, 'num_classes must be an integer'),
    (dict(num_classes=True), TypeError, 'num_classes must be an integer'),
    (dict(branches=[RGB, AUDIO]), TypeError, 'branches must be a dict'),
    (dict(branches=dict(rgb='r3d', audio=AUDIO)), TypeError,
     'branches.rgb must be a dict'),
    (dict(branches=dict(rgb=dict(backbone=RGB['backbone'], input_key='imgs'),
                         audio=AUDIO)),
     ValueError, "branches.rgb needs ['feat_dim']"),
    (dict(branches=branch(feat_dim=32.0)), TypeError,
     'branches.rgb.feat_dim must be an integer'),
    (dict(branches=branch(feat_dim=0)), ValueError,
     'branches.rgb.feat_dim must be >= 1'),
    (dict(branches=branch(input_key=None)), ValueError,
     'model.branches.rgb.input_key=None'),
    (dict(UNI_MODAL, branches=dict(audio=dict(AUDIO, input_key=3)),
          data_preprocessor=dict(type='ActionDataPreprocessor')), TypeError,
     'branches.audio.input_key must be a key'),
    # read only when the weights are initialised, at the start of training
    (dict(branches=branch(init_from='rgb.pth')), TypeError,
     'branches.rgb.init_from must be a dict'),
    (dict(branches=branch(init_from=dict(path='rgb.pth'))), ValueError,
     "branches.rgb.init_from: unknown keys ['path']"),
    (dict(branches=branch(init_from=dict(head_prefix='cls_head.'))),
     ValueError, "branches.rgb.init_from needs ['checkpoint']"),
    # filled in by the recognizer: a value here would be overwritten
    (dict(head=dict(type='ClassifierHead', num_classes=3)), ValueError,
     "MultiHeadRecognizer.head sets ['num_classes']"),
    (dict(head='ClassifierHead'), TypeError, 'head must be a dict'),
    (dict(fused_head=dict(in_channels=8)), ValueError,
     "MultiHeadRecognizer.fused_head sets ['in_channels']"),
    (dict(fusion=dict(type='ConcatFusion', in_channels=dict(rgb=32))),
     ValueError, "MultiHeadRecognizer.fusion sets ['in_channels']"),
    (dict(score_source='logits'), ValueError, 'score_source must be one of'),
    (dict(predict_head=''), ValueError, 'predict_head must be one of'),
    (dict(average_clips='mean'), ValueError, 'average_clips must be one of'),
    (dict(opm='on'), TypeError, 'MultiHeadRecognizer.opm must be a dict'),
    (dict(opm=dict(qbase=0.5)), ValueError,
     "MultiHeadRecognizer.opm: unknown keys ['qbase']"),
    # settings of the fused head, which a uni-modal model does not have
    (dict(UNI_MODAL, score_source='logits'), ValueError,
     'score_source must be one of'),
    (dict(UNI_MODAL, opm=dict()), ValueError,
     'MultiHeadRecognizer.opm needs two or more modalities'),
], ids=lambda v: None if isinstance(v, (dict, type)) else v)
def test_bad_settings_name_the_key_when_built(change, error, key):
    with pytest.raises(error, match=re.escape(key)):
        MODELS.build(model_cfg(**copy.deepcopy(change)))


@pytest.mark.parametrize('change', [
    dict(fused_head=dict(dropout_ratio=0.1)),
    dict(score_source='heads'),
])
def test_fused_head_settings_of_a_uni_modal_model_are_warned_about(
        change, tmp_path):
    # a uni-modal config may inherit them from a multi-modal base: they
    # have no effect, and the log says so by name
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance(f'uni-{tmp_path.name}',
                                   log_file=str(tmp_path / 'log.txt'))
    MODELS.build(model_cfg(**UNI_MODAL, **copy.deepcopy(change)))
    for handler in logger.handlers:
        handler.flush()
    key = next(iter(change))
    assert f'MultiHeadRecognizer.{key}=' in (tmp_path / 'log.txt').read_text()


def test_uni_modal_settings_that_are_the_defaults_are_accepted():
    model = MODELS.build(model_cfg(**UNI_MODAL, score_source='auto',
                                   fused_head=None, opm=None))
    assert model.head_names == ['audio'] and model.score_source is None


def test_wrong_feat_dim_and_missing_input_are_clear():
    model = MODELS.build(model_cfg(branches=dict(
        rgb=dict(RGB, feat_dim=64), audio=AUDIO)))
    with pytest.raises(ValueError, match='branch rgb: the backbone gives 32'):
        model(**model.data_preprocessor(batch(), True), mode='loss')
    model = MODELS.build(model_cfg())
    with pytest.raises(KeyError, match="branch audio reads input 'audios'"):
        model(inputs=dict(imgs=torch.zeros(1, 1, 3, 4, 32, 32)),
              data_samples=[], mode='tensor')


def test_2d_branch_averages_frames():
    rgb2d = dict(input_key='imgs', input_format='NCHW', feat_dim=512,
                 backbone=dict(type='ResNet', depth=18, pretrained=None))
    preprocessor = copy.deepcopy(PREPROCESSOR)
    preprocessor['preprocessors']['imgs']['format_shape'] = 'NCHW'
    model = MODELS.build(model_cfg(branches=dict(rgb=rgb2d, audio=AUDIO),
                                   data_preprocessor=preprocessor)).eval()
    data = dict(
        inputs=dict(imgs=[torch.rand(3, 3, 32, 32) for _ in range(2)],
                    audios=[torch.rand(1, 1, 32, 16) for _ in range(2)]),
        data_samples=[ActionDataSample().set_gt_label(0) for _ in range(2)])
    with torch.no_grad():
        logits = model(**model.data_preprocessor(data, False), mode='tensor')
    assert logits['rgb'].shape == (2, NUM_CLASSES)


def test_checkpoint_round_trip(tmp_path):
    from mmengine.runner import load_checkpoint, save_checkpoint
    model = MODELS.build(model_cfg()).eval()
    model.set_blend_weights(dict(rgb=0.6, audio=0.1, fused=0.3))
    path = str(tmp_path / 'model.pth')
    save_checkpoint(model.state_dict(), path)
    other = MODELS.build(model_cfg()).eval()
    load_checkpoint(other, path, map_location='cpu', strict=True)
    data = model.data_preprocessor(batch(), False)
    with torch.no_grad():
        a, b = model(**data, mode='tensor'), other(**data, mode='tensor')
    for head in a:
        torch.testing.assert_close(a[head], b[head])
    assert other.get_blend_weights() == model.get_blend_weights()


def test_init_from_mmaction_style_checkpoint(tmp_path):
    """Keys under backbone./cls_head.fc_cls. map onto a branch and head."""
    source = MODELS.build(model_cfg(branches=dict(audio=AUDIO), fusion=None))
    state = {f'backbone.{k}': v
             for k, v in source.backbones['audio'].state_dict().items()}
    state['backbone.extra.weight'] = torch.ones(1)
    state['cls_head.fc_cls.weight'] = torch.randn(NUM_CLASSES, 32)
    state['cls_head.fc_cls.bias'] = torch.randn(NUM_CLASSES)
    path = str(tmp_path / 'audio_zoo.pth')
    torch.save(dict(state_dict=state, meta=dict(epoch=3)), path)

    audio = dict(AUDIO, init_from=dict(checkpoint=path,
                                       head_prefix='cls_head.fc_cls.'))
    model = MODELS.build(model_cfg(branches=dict(rgb=RGB, audio=audio)))
    model.init_weights()
    for k, v in source.backbones['audio'].state_dict().items():
        torch.testing.assert_close(model.backbones['audio'].state_dict()[k],
                                   v)
    torch.testing.assert_close(model.heads['audio'].fc_cls.weight,
                               state['cls_head.fc_cls.weight'])

    from mmaction_gblend.models.utils import load_branch_checkpoint
    report = load_branch_checkpoint(model.backbones['audio'],
                                    model.heads['audio'], 'audio', path,
                                    head_prefix='cls_head.fc_cls.')
    assert report['unexpected'] == ['extra.weight']
    assert report['head'] == ['cls_head.fc_cls.weight', 'cls_head.fc_cls.bias']
    with pytest.raises(ValueError, match="no key starts with 'visual.'"):
        load_branch_checkpoint(model.backbones['audio'], None, 'audio', path,
                               backbone_prefix='visual.')
    wider = MODELS.build(dict(type='AudioResNet', depth=18, base_channels=8))
    with pytest.raises(ValueError, match=r'shapes differ.*conv1.weight'):
        load_branch_checkpoint(wider, None, 'audio', path)


@pytest.mark.parametrize('stock,branch_key', [
    (dict(type='Recognizer3D',
          backbone=dict(type='ResNet3dSlowOnly', depth=18, base_channels=8,
                        pretrained=None, lateral=False,
                        conv1_kernel=(1, 7, 7), inflate=(0, 0, 1, 1)),
          cls_head=dict(type='I3DHead', num_classes=NUM_CLASSES,
                        in_channels=64)), 'rgb'),
    (dict(type='RecognizerAudio',
          backbone=dict(type='ResNetAudio', depth=50, base_channels=4,
                        pretrained=None),
          cls_head=dict(type='TSNAudioHead', num_classes=NUM_CLASSES,
                        in_channels=128)), 'audio'),
])
def test_init_from_a_stock_mmaction_recognizer(tmp_path, stock, branch_key):
    """A model-zoo-style checkpoint of a stock mmaction2 recognizer (its
    ``backbone.`` and ``cls_head.fc_cls.`` keys) initialises a branch."""
    from mmengine.runner import save_checkpoint
    source = MODELS.build(stock)
    path = str(tmp_path / 'zoo.pth')
    save_checkpoint(source.state_dict(), path)
    branch = dict(
        input_key='imgs' if branch_key == 'rgb' else 'audios',
        feat_dim=stock['cls_head']['in_channels'],
        backbone=copy.deepcopy(stock['backbone']),
        init_from=dict(checkpoint=path, head_prefix='cls_head.fc_cls.'))
    branches = dict(rgb=RGB, audio=AUDIO)
    branches[branch_key] = branch
    model = MODELS.build(model_cfg(branches=branches))
    model.init_weights()
    for k, v in source.backbone.state_dict().items():
        torch.testing.assert_close(
            model.backbones[branch_key].state_dict()[k], v)
    torch.testing.assert_close(model.heads[branch_key].fc_cls.weight,
                               source.cls_head.fc_cls.weight)
