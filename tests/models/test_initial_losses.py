"""Every shipped model starts with each head's loss near log C.

G-Blend's first estimate reads how far each head's held-out loss falls; a
head whose classifier starts with a large logit spread falls far just by
shrinking it, and gets an inflated first G (``mmaction_gblend.blending.
initial_loss``). Each model of ``configs/`` is built and initialised as a
Runner would (pretrained weights left out: no download here, and only the
heads' scale matters), and random normalised inputs of its branches'
shapes go through it, BatchNorm on batch statistics and dropout off, as
G-Blend measures after recomputing the BatchNorm statistics."""
import glob
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmaction.registry import MODELS
from mmengine.config import Config

import mmaction_gblend  # noqa: F401
from mmaction_gblend.blending import far_from_chance, initial_loss_excess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The test's bound (nats); the hook warns past INITIAL_LOSS_TOLERANCE.
BOUND = 0.3
CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                       recursive=True))


def without_pretrained(cfg):
    """A copy of a model config with every pretrained weight left out."""
    if isinstance(cfg, dict):
        out = {}
        for key, value in cfg.items():
            if key == 'pretrained' and isinstance(value, str):
                out[key] = None
            elif key == 'init_from':
                continue
            else:
                out[key] = without_pretrained(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretrained(v) for v in cfg)
    return cfg


def model_configs():
    """``{config: model dict}`` of the configs with a model, one per
    distinct model (many configs share theirs)."""
    seen, out = set(), {}
    for name in CONFIGS:
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        model = cfg.get('model')
        if not isinstance(model, dict) or 'type' not in model:
            continue
        model = without_pretrained(model.to_dict()
                                   if hasattr(model, 'to_dict') else model)
        model.pop('blend_weights', None)
        model.pop('opm', None)
        key = repr(sorted(model.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            out[name] = model
    return out


MODEL_CONFIGS = model_configs()


def random_inputs(model, n: int = 8):
    """Normalised random inputs of each branch's layout, small sizes."""
    inputs = {}
    for name, key in model.input_keys.items():
        backbone = model.backbones[name]
        channels = getattr(backbone, 'in_channels', 3)
        fmt = model.input_formats[name]
        if fmt == 'NCTF':
            shape = (n, 1, 1, 100, 40)
        elif fmt == 'NCHW':
            shape = (n, 3, channels, 64, 64)
        else:
            shape = (n, 1, channels, 8, 64, 64)
        inputs[key] = torch.randn(shape)
    return inputs


def test_the_models_are_found():
    # the demo, the 2D OGM-GE model, the Kinetics models, UCF-101's
    # RGB + flow, the stock configs with audio, the uni-modal demo models
    assert len(MODEL_CONFIGS) >= 8


@pytest.mark.slow
@pytest.mark.parametrize('name', list(MODEL_CONFIGS))
def test_every_head_starts_near_log_classes(name):
    torch.manual_seed(0)
    model = MODELS.build(MODEL_CONFIGS[name])
    model.init_weights()
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    with torch.no_grad():
        maps, _ = model.extract_feat(random_inputs(model))
        logits = model.head_logits(maps)
    labels = torch.randint(0, model.num_classes, (8, ))
    losses = {h: float(nn.functional.cross_entropy(v, labels))
              for h, v in logits.items()}
    excess = initial_loss_excess(losses, model.num_classes)
    assert far_from_chance(losses, model.num_classes, BOUND) == {}, (
        f'{name}: loss - log {model.num_classes} per head {excess}')


def test_initial_loss_excess_against_hand_values():
    assert initial_loss_excess({'a': math.log(8) + 0.2}, 8)['a'] == \
        pytest.approx(0.2)
    far = far_from_chance({'a': math.log(8), 'b': math.log(8) + 3.6,
                           'c': float('nan')}, 8)
    assert set(far) == {'b', 'c'} and far['b'] == pytest.approx(3.6)
    with pytest.raises(ValueError, match='num_classes'):
        initial_loss_excess({'a': 1.0}, 1)
