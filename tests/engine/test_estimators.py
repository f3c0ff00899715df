"""G-Blend's estimators as objects: the shadow copies' optimizer state and
the first-order estimator's maths, checked against autograd by hand."""
import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.runner import Runner

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import shadow_train
from mmaction_gblend.engine.estimators import (EstimatorData,
                                               FirstOrderEstimator,
                                               HeadMeasurer)
from mmaction_gblend.engine.estimators.first_order import (probe_gradient,
                                                           summed_step)
from mmaction_gblend.engine.heldout_evaluation import head_scores
from mmaction_gblend.models.utils import stack_labels


def model_and_loader(num_samples=24, batch_size=8):
    cfg = toy.toy_config('unused', num_samples=num_samples)
    model = MODELS.build(cfg['model'])
    model.init_weights()
    loader = Runner.build_dataloader(dict(
        cfg['val_dataloader'], batch_size=batch_size,
        sampler=dict(type='DefaultSampler', shuffle=False, round_up=False)),
        seed=0)
    return model, loader


def train_steps(model, optimizer, loader, steps):
    batches = itertools.cycle(loader)
    for _ in range(steps):
        losses = model(**model.data_preprocessor(next(batches), True),
                       mode='loss')
        optimizer.zero_grad()
        sum(v for k, v in losses.items() if k.startswith('loss')).backward()
        optimizer.step()


def test_shadow_copies_start_from_a_fresh_adam_state():
    """The main Adam state holds moments of the *blended* gradient (here the
    rgb head trains at weight 0.05): a copy that inherited them would take
    steps about 1/0.05 times too large on the rgb head's loss alone. Each
    copy gets an Adam of the main one's settings and a fresh state."""
    model, loader = model_and_loader()
    model.set_blend_weights(dict(rgb=0.05, audio=0.05, fused=0.9))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2,
                                 betas=(0.8, 0.99), weight_decay=1e-4)
    train_steps(model, optimizer, loader, 5)
    main_state = copy.deepcopy(optimizer.state_dict())

    (shadow, ) = shadow_train(model, optimizer, loader, ['rgb'],
                              num_epochs=1).values()

    fresh_model = copy.deepcopy(model)
    fresh_model.set_blend_weights(dict(rgb=1.0, audio=0.0, fused=0.0))
    fresh = torch.optim.Adam(
        [p for p in fresh_model.parameters() if p.requires_grad],
        lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-4)
    inherited_model, inherited = copy.deepcopy((model, optimizer))
    inherited_model.set_blend_weights(dict(rgb=1.0, audio=0.0, fused=0.0))
    train_steps(fresh_model, fresh, loader, len(loader))
    train_steps(inherited_model, inherited, loader, len(loader))
    name = 'heads.rgb.fc_cls.weight'
    trained = dict(shadow.named_parameters())[name]
    torch.testing.assert_close(trained,
                               dict(fresh_model.named_parameters())[name])
    assert not torch.allclose(
        trained, dict(inherited_model.named_parameters())[name], atol=1e-4)
    # the main optimizer is untouched
    after = optimizer.state_dict()
    for i, state in main_state['state'].items():
        for key, value in state.items():
            assert torch.equal(after['state'][i][key], value), (i, key)


def per_sample_gradients(model, head, loader):
    """Each sample's gradient of ``head``'s cross-entropy, one at a time."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    model.eval()
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        labels = stack_labels(data['data_samples'])
        for i in range(labels.shape[0]):
            inputs = {k: v[i:i + 1] for k, v in data['inputs'].items()}
            scores = head_scores(model, inputs, 1, [head])[head]
            loss = F.cross_entropy(scores, labels[i:i + 1])
            grads.append(torch.autograd.grad(loss, params,
                                             allow_unused=True))
    return grads


def flat(grads):
    return torch.cat([g.reshape(-1) for g in grads if g is not None])


@pytest.mark.parametrize('head', ['rgb', 'audio', 'fused'])
def test_the_probe_gradient_is_the_mean_of_the_samples_gradients(head):
    model, loader = model_and_loader()
    twin = copy.deepcopy(model)
    mean = probe_gradient(twin, head, loader)
    samples = per_sample_gradients(model, head, loader)
    expected = torch.stack([flat(g) for g in samples]).mean(0)
    torch.testing.assert_close(flat(mean), expected, rtol=1e-5, atol=1e-7)
    # the parameters a head does not read have no gradient
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    unread = [n for n, g in zip(names, mean) if g is None]
    if head == 'rgb':
        assert unread and all(not n.startswith('backbones.rgb')
                              for n in unread)
    assert all(p.grad is None for p in twin.parameters())


@pytest.mark.slow
def test_first_order_predictions_are_the_directional_derivatives(tmp_path):
    """after_i = before_i - S <g_i, u>, u the mean probe gradient: the
    central difference of the estimator against autograd, sample by
    sample, on V and T'."""
    cfg = toy.toy_config(str(tmp_path), max_epochs=2, num_samples=48)
    cfg['experiment_name'] = tmp_path.name
    runner = Runner.from_cfg(Config(cfg))
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    _, heldout = model_and_loader(num_samples=16)
    _, probe = model_and_loader(num_samples=24)
    measurer = HeadMeasurer(heldout, probe, recalibrate_bn=0,
                            use_accuracy=False)
    estimator = FirstOrderEstimator()
    assert estimator.prepare(runner, EstimatorData(measurer, {}, None)) \
        is None
    from mmaction_gblend.engine.blend_schedule import Estimate
    measurement = estimator.measure(runner, Estimate(0, 2))
    scale = summed_step(runner, 2)
    # SGD at lr 0.05, momentum 0.9: 2 epochs of the loader's steps
    assert scale == pytest.approx(0.05 * len(runner.train_dataloader) * 2 /
                                  0.1)
    model = runner.model
    for head in model.head_names:
        u = flat(probe_gradient(copy.deepcopy(model), head, probe))
        for part, loader in (('heldout', heldout), ('train', probe)):
            exact = torch.stack([
                flat(g) @ u for g in per_sample_gradients(model, head,
                                                          loader)
            ])
            before = torch.tensor(measurement.before[head][part])
            after = torch.tensor(measurement.after[head][part])
            derivative = (before - after) / scale
            exact = exact.to(derivative)
            # float32 differences of losses: a few per cent per sample (a
            # sample whose ReLUs switch within the step is further off);
            # the mean, which G and O are, agrees closely
            close = (derivative - exact).abs() <= 5e-2 * exact.abs() + \
                1e-5 * float(exact.abs().max())
            assert close.float().mean() >= 0.85, (head, part, derivative,
                                                  exact)
            assert float(derivative.mean()) == pytest.approx(
                float(exact.mean()), rel=2e-2, abs=1e-4 * float(
                    exact.abs().max()))
    # a sample of T' is in the direction it is moved along: on average its
    # loss falls further than a held-out one's (the memorisation term)
    gaps = [
        sum(measurement.before[h]['train']) / 24 -
        sum(measurement.after[h]['train']) / 24 -
        (sum(measurement.before[h]['heldout']) / 16 -
         sum(measurement.after[h]['heldout']) / 16)
        for h in model.head_names
    ]
    assert max(gaps) > 0
