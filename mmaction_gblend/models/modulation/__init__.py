"""On-the-fly modulation inside the model: per-modality scores, OPM, and
the encoder parameters OGM-GE modulates."""
from .modality_scores import (SCORE_SOURCES, eval_mode, modality_logits,
                              resolve_score_source, true_class_probability)
from .parameter_sets import (PARAMETER_SETS, check_parameter_set,
                             encoder_parameters)
from .prediction_modulation import PredictionModulation

__all__ = [
    'SCORE_SOURCES', 'eval_mode', 'modality_logits', 'resolve_score_source',
    'true_class_probability', 'PARAMETER_SETS', 'check_parameter_set',
    'encoder_parameters', 'PredictionModulation'
]
