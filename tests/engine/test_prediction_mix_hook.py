"""``PredictionMixHook`` with real Runners: the ``'mix'`` prediction's
weights fitted on the val split at the end of training.

The small paradox task (80 training samples in 10 classes, 60 val and 60
test samples) is trained for 6 epochs with fixed blend weights; the test
computes every head's val probabilities itself and finds the best grid
point independently of :mod:`mmaction_gblend.blending.prediction_mix`.
"""
import copy
import itertools
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import HOOKS, MODELS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner, load_checkpoint

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine.hooks.prediction_mix_hook import (
    KEY, PredictionMixHook)
from mmaction_gblend.utils.model_wrappers import unwrap
from helpers import load_script, rank_results, run_dist_worker

HERE = osp.dirname(osp.abspath(__file__))

EPOCHS = 6
NUM_EVAL = 60
TRAINED = dict(audio=0.2, rgb=0.4, fused=0.4)
NO_AUDIO = dict(audio=0.0, rgb=0.5, fused=0.5)


def mix_cfg(work_dir, blend_weights=TRAINED, hook=None, name=None):
    """The small paradox task with ``prediction='mix'`` and a checkpoint
    after every epoch; ``hook`` replaces the config's PredictionMixHook."""
    cfg = toy.paradox_config(
        str(work_dir), blend_weights=blend_weights, prediction='mix',
        eval_split='test', num_train=80, num_eval=NUM_EVAL,
        fingerprint_dim=32, max_epochs=EPOCHS, batch_size=16)
    assert cfg['custom_hooks'] == [dict(type='PredictionMixHook',
                                        dataloader='val')]
    if hook is not None:
        cfg['custom_hooks'] = [hook]
    cfg['default_hooks']['checkpoint'] = dict(type='CheckpointHook',
                                              interval=1)
    cfg['log_level'] = 'INFO'  # the fit's log line
    cfg['experiment_name'] = name or osp.basename(str(work_dir))
    return cfg


def val_probabilities(model, cfg):
    """``({head: [N, C] float64 probabilities}, [N] labels)`` of the val
    split, computed from the model's logits."""
    loader = Runner.build_dataloader(copy.deepcopy(cfg['val_dataloader']),
                                     seed=0)
    probs = {h: [] for h in model.head_names}
    labels = []
    model.eval()
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            logits = model(**data, mode='tensor')
            for head in model.head_names:
                probs[head].append(F.softmax(logits[head].double(), dim=1))
            labels += [int(s.gt_label) for s in data['data_samples']]
    return {h: torch.cat(p) for h, p in probs.items()}, torch.tensor(labels)


def grid_points(heads, parts=10):
    """Every weighting of ``heads`` in steps of ``1 / parts``."""
    return [dict(zip(heads, (c / parts for c in counts)))
            for counts in itertools.product(range(parts + 1),
                                            repeat=len(heads))
            if sum(counts) == parts]


def score(weights, probs, labels):
    """``(correct, log loss)`` of a mixture."""
    mixed = sum(w * probs[h] for h, w in weights.items())
    correct = int((mixed.argmax(1) == labels).sum())
    true = mixed[torch.arange(len(labels)), labels]
    return correct, -float(torch.log(true.clamp_min(1e-12)).sum())


def best_by_hand(heads, probs, labels):
    """The grid point with the most correct predictions, then the lowest
    log loss, and its number correct."""
    scored = [(score(w, probs, labels), w) for w in grid_points(heads)]
    (correct, _), weights = min(scored, key=lambda s: (-s[0][0], s[0][1]))
    return weights, correct


def assert_weights(got, want, heads):
    """``got`` (every head) is ``want`` on ``heads`` and 0 elsewhere."""
    assert set(got) == {'audio', 'rgb', 'fused'}
    for head in got:
        assert got[head] == pytest.approx(want.get(head, 0.0), abs=1e-6), \
            head


class Predictions(Hook):
    """The data samples ``runner.test()`` predicts."""

    def __init__(self):
        self.samples = []

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        self.samples.extend(outputs)


def log_text(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


@pytest.mark.slow
def test_the_fitted_weights_are_the_best_val_mixture(tmp_path):
    runner = Runner.from_cfg(Config(mix_cfg(tmp_path)))
    runner.train()
    model = unwrap(runner.model)
    assert model.get_blend_weights() == pytest.approx(TRAINED)
    fitted = model.get_prediction_weights()
    probs, labels = val_probabilities(model, runner.cfg)
    heads = ['audio', 'rgb', 'fused']  # every head trained
    expected, correct = best_by_hand(heads, probs, labels)
    assert_weights(fitted, expected, heads)
    # not one-hot here: a real mixture is tested
    assert sum(w > 0 for w in fitted.values()) >= 2
    # at least as good as each head alone on the val split
    for head in heads:
        alone, _ = score({head: 1.0}, probs, labels)
        assert correct >= alone, head
    assert f'fitted on {NUM_EVAL} held-out samples: top-1 ' \
        f'{correct / NUM_EVAL:.4f}' in log_text(runner)

    # the last checkpoint carries the fit (the hook runs before
    # CheckpointHook); the one before still predicts with the fused head
    def saved(epoch):
        state = torch.load(tmp_path / f'epoch_{epoch}.pth',
                           map_location='cpu', weights_only=False)
        return state['state_dict']['prediction_weights'].tolist()

    assert saved(EPOCHS) == pytest.approx([fitted[h] for h in heads])
    assert saved(EPOCHS - 1) == [0.0, 0.0, 1.0]

    # runner.test() after training predicts with the mixture
    predictions = Predictions()
    runner.register_hook(predictions)
    metrics = runner.test()
    assert len(predictions.samples) == NUM_EVAL
    differs = 0
    for sample in predictions.samples:
        mixture = sum(fitted[h] * sample.head_scores[h] for h in heads)
        torch.testing.assert_close(sample.pred_score, mixture.float(),
                                   rtol=0, atol=1e-6)
        differs += not torch.allclose(sample.pred_score,
                                      sample.head_scores['fused'])
    assert differs > 0
    top1 = sum(int(s.pred_score.argmax()) == int(s.gt_label)
               for s in predictions.samples) / NUM_EVAL
    assert metrics['acc/top1'] == pytest.approx(top1, abs=1e-4)


@pytest.mark.slow
def test_heads_trained_with_weight_0_are_left_out(tmp_path):
    runner = Runner.from_cfg(Config(mix_cfg(tmp_path, NO_AUDIO)))
    runner.train()
    model = unwrap(runner.model)
    fitted = model.get_prediction_weights()
    probs, labels = val_probabilities(model, runner.cfg)
    # heads='trained': audio, at chance, gets mixing weight 0
    expected, correct = best_by_hand(['rgb', 'fused'], probs, labels)
    assert fitted['audio'] == 0
    assert_weights(fitted, expected, ['rgb', 'fused'])
    for head in ('rgb', 'fused'):
        assert correct >= score({head: 1.0}, probs, labels)[0]
    # the fit over other heads, on the same trained model: 'all' and a list
    # (the model's weights are set by the last fit)
    for heads, chosen in (('all', ['audio', 'rgb', 'fused']),
                          (['rgb', 'audio'], ['rgb', 'audio'])):
        fit = PredictionMixHook(heads=heads, step=0.25).fit(runner)
        grid = grid_points(chosen, parts=4)
        scored = [(score(w, probs, labels), w) for w in grid]
        (best, _), want = min(scored, key=lambda s: (-s[0][0], s[0][1]))
        assert_weights(fit['weights'], want, chosen)
        assert model.get_prediction_weights() == fit['weights']
        assert fit['samples'] == NUM_EVAL
        assert fit['top1'] == pytest.approx(best / NUM_EVAL)
        assert fit['head_top1'] == pytest.approx({
            h: score({h: 1.0}, probs, labels)[0] / NUM_EVAL
            for h in chosen})
        assert fit['top1'] >= max(fit['head_top1'].values())


K = re.escape(KEY)


@pytest.mark.slow
@pytest.mark.parametrize('change,match', [
    (dict(prediction='head'), rf"{K} fits the weights of "
     r"model\.prediction='mix'; the model predicts with 'head'"),
    (dict(heads=['rgb', 'flow']),
     rf"{K}\.heads: no heads \['flow'\] in \['audio', 'rgb', 'fused'\]"),
    (dict(heads='best'), rf"{K}\.heads must be 'trained', 'all' or a list"),
    # before training, not when the fit fails after it
    (dict(heads=[]), rf"{K}\.heads must be 'trained', 'all' or a list"),
    (dict(heads=['rgb', 'rgb']), rf"{K}\.heads names 'rgb' twice"),
    (dict(step=0.3), rf'{K}\.step: step must be 1/n for a whole n'),
    (dict(dataloader='test'),
     rf"{K}\.dataloader must be 'val' or a dataloader config"),
    (dict(val=None), rf"{K}\.dataloader='val' needs a val_dataloader"),
], ids=['no-mix', 'unknown-head', 'bad-heads', 'no-heads', 'head-twice',
        'bad-step', 'bad-dataloader', 'no-val-dataloader'])
def test_config_errors_name_the_key(tmp_path, change, match):
    hook = dict(type='PredictionMixHook')
    hook.update({k: v for k, v in change.items()
                 if k in ('heads', 'step', 'dataloader')})
    cfg = mix_cfg(tmp_path, hook=hook)
    if 'prediction' in change:
        cfg['model']['prediction'] = change['prediction']
    if 'val' in change:
        for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
            cfg[key] = None
    with pytest.raises(ValueError, match=match):
        Runner.from_cfg(Config(cfg)).train()


@pytest.mark.parametrize('change,error,match', [
    (dict(dataloader='test'), ValueError,
     ".dataloader must be 'val' or a dataloader config, got 'test'"),
    (dict(dataloader=None), ValueError,
     ".dataloader must be 'val' or a dataloader config, got None"),
    # read only after the last epoch
    (dict(dataloader=dict(batch_size=4)), ValueError,
     ".dataloader must be 'val' or a dataloader config with a dataset"),
    (dict(heads='best'), ValueError, ".heads must be 'trained', 'all' or a"),
    (dict(heads=3), ValueError, ".heads must be 'trained', 'all' or a"),
    (dict(heads=[]), ValueError, ".heads must be 'trained', 'all' or a"),
    (dict(heads=['rgb', 0]), ValueError,
     ".heads must be 'trained', 'all' or a"),
    (dict(heads=('rgb', 'rgb')), ValueError, ".heads names 'rgb' twice"),
    (dict(step=0.3), ValueError, '.step: step must be 1/n for a whole n'),
    (dict(step=0), ValueError, '.step: step must be 1/n for a whole n'),
    (dict(step=2), ValueError, '.step: step must be 1/n for a whole n'),
    (dict(step='0.1'), TypeError, '.step must be a number'),
    (dict(step=True), TypeError, '.step must be a number'),
    (dict(step=float('nan')), ValueError, '.step must be finite'),
], ids=lambda v: None if isinstance(v, (dict, type)) else v)
def test_bad_settings_name_the_key_when_built(change, error, match):
    with pytest.raises(error, match=K + re.escape(match)):
        HOOKS.build(dict(type='PredictionMixHook', **change))


def test_good_settings_are_kept():
    loader = dict(batch_size=4, dataset=dict(type='ToyDataset'))
    hook = HOOKS.build(dict(type='PredictionMixHook', dataloader=loader,
                            heads=('rgb', 'fused'), step=1))
    assert (hook.dataloader, hook.heads, hook.step) == \
        (loader, ['rgb', 'fused'], 1.0)


@pytest.mark.slow  # torchrun
def test_every_process_fits_the_same_weights(tmp_path):
    worker = osp.join(HERE, 'prediction_mix_dist_worker.py')
    ranks = rank_results(run_dist_worker(worker, tmp_path))
    assert ranks[0]['world_size'] == 2
    # the trained models are the same; each rank saw its half of the 61
    # val samples, and the counts were summed
    assert ranks[0]['checksum'] == ranks[1]['checksum']
    assert [r['val_shard'] for r in ranks] == [31, 30]
    assert ranks[0]['weights'] == ranks[1]['weights']
    assert ranks[0]['fit'] == ranks[1]['fit']
    assert ranks[0]['fit']['samples'] == 61
    assert ranks[0]['fit']['weights'] == pytest.approx(ranks[0]['weights'])
    # what one process fits on the whole val split with the trained model
    run = load_script(worker).RUN
    cfg = toy.paradox_config(str(tmp_path), **run)
    model = MODELS.build(cfg['model'])
    load_checkpoint(model, str(tmp_path / f'epoch_{run["max_epochs"]}.pth'),
                    map_location='cpu')
    probs, labels = val_probabilities(model, cfg)
    heads = ['audio', 'rgb', 'fused']
    expected, correct = best_by_hand(heads, probs, labels)
    assert_weights(ranks[0]['weights'], expected, heads)
    assert ranks[0]['fit']['top1'] == pytest.approx(correct / 61)


@pytest.mark.slow
def test_a_head_weighted_down_late_is_still_a_candidate(tmp_path):
    """'trained' means trained in some epoch: a head G-Blend (here a
    replayed schedule) weights to 0 late still knows what it learnt, and
    a resumed run remembers it."""
    schedule = [dict(epoch=2, weights=NO_AUDIO)]
    replay = dict(type='GradientBlendingHook', mode='replay',
                  replay=schedule, replay_epochs='same', weights=TRAINED)
    cfg = mix_cfg(tmp_path / 'run', blend_weights=TRAINED)
    cfg['custom_hooks'] = [replay, dict(type='PredictionMixHook')]
    runner = Runner.from_cfg(Config(copy.deepcopy(cfg)))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, PredictionMixHook))
    model = unwrap(runner.model)
    assert model.get_blend_weights() == pytest.approx(NO_AUDIO)
    assert sorted(hook.trained) == ['audio', 'fused', 'rgb']
    # resumed after the schedule set audio to 0: the checkpoint remembers
    resumed_cfg = dict(copy.deepcopy(cfg), resume=True,
                       load_from=str(tmp_path / 'run' / 'epoch_4.pth'),
                       experiment_name='resumed')
    resumed = Runner.from_cfg(Config(resumed_cfg))
    resumed.train()
    hook = next(h for h in resumed.hooks
                if isinstance(h, PredictionMixHook))
    assert sorted(hook.trained) == ['audio', 'fused', 'rgb']
    # a head never trained stays out
    cfg = mix_cfg(tmp_path / 'never', blend_weights=NO_AUDIO)
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, PredictionMixHook))
    assert 'audio' not in hook.trained
    assert unwrap(runner.model).get_prediction_weights()['audio'] == 0
