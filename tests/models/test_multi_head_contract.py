"""The engine's contract with the recognizer, and its one check."""
import re
from types import SimpleNamespace

import pytest
import torch
from mmaction.registry import MODELS

import mmaction_gblend.demo.toy_task as toy
from mmaction_gblend.engine import (GradientBlendingHook, OGMGEOptimWrapper,
                                    OnTheFlyModulationHook, measure_heads,
                                    shadow_train)
from mmaction_gblend.models.recognizers import (MultiHeadModel,
                                                check_multi_head_model,
                                                missing_contract_members)
from mmaction_gblend.models.recognizers.multi_head_contract import \
    CONTRACT_MEMBERS


@pytest.fixture
def recognizer():
    return MODELS.build(toy.toy_config('unused')['model'])


def test_the_recognizer_keeps_the_contract(recognizer):
    assert isinstance(recognizer, MultiHeadModel)
    assert missing_contract_members(recognizer) == []
    assert check_multi_head_model(recognizer, 'unused') is recognizer
    # what the engine reads: weights, heads, features, modulation
    assert {'head_names', 'blend_weights', 'set_blend_weights', 'loss',
            'extract_feat', 'head_logits', 'needed_modalities',
            'modality_parameters', 'modulation_state',
            'opm'} <= set(CONTRACT_MEMBERS)


def test_the_check_names_what_a_model_lacks():
    stub = SimpleNamespace(**{
        name: None
        for name in CONTRACT_MEMBERS
        if name not in ('modulation_state', 'modality_parameters')
    })
    assert not isinstance(stub, MultiHeadModel)
    with pytest.raises(ValueError, match=re.escape(
            'X needs a multi-head model; the model is a SimpleNamespace, '
            'which lacks modulation_state, modality_parameters (the '
            'members of MultiHeadModel')):
        check_multi_head_model(stub, 'X needs a multi-head model')


def test_a_plain_module_lacks_every_member_of_its_own():
    missing = missing_contract_members(torch.nn.Linear(2, 2))
    # nn.Module's own members (train, eval, training) are there
    assert missing == [n for n in CONTRACT_MEMBERS
                       if n not in ('train', 'eval', 'training')]


def test_the_engine_checks_the_model_once_and_says_what_is_missing():
    plain = torch.nn.Linear(2, 2)
    lacks = 'which lacks modalities, head_names, predict_head'
    wrapper = OGMGEOptimWrapper(
        optimizer=torch.optim.SGD(plain.parameters(), lr=0.1))
    with pytest.raises(ValueError, match='per-modality parameter groups.*'
                       + lacks):
        wrapper.bind(plain)
    runner = SimpleNamespace(model=plain)
    with pytest.raises(ValueError, match='OnTheFlyModulationHook needs a '
                       'MultiHeadRecognizer.*' + lacks):
        OnTheFlyModulationHook().before_train(runner)
    with pytest.raises(ValueError, match='GradientBlendingHook needs.*'
                       + lacks):
        GradientBlendingHook().before_train(runner)
    with pytest.raises(ValueError, match='measure_models.*' + lacks):
        measure_heads(plain, [])
    with pytest.raises(ValueError, match='shadow_train.*' + lacks):
        shadow_train(plain, torch.optim.SGD(plain.parameters(), lr=0.1), [],
                     [], 1)
