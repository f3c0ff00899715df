from .add_audio_branch import add_audio_branch
from .multi_head_contract import (MultiHeadModel, check_multi_head_model,
                                  missing_contract_members)
from .multi_head_recognizer import FUSED, MultiHeadRecognizer

__all__ = [
    'FUSED', 'MultiHeadRecognizer', 'add_audio_branch', 'MultiHeadModel',
    'check_multi_head_model', 'missing_contract_members'
]
