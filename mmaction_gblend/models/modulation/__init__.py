"""On-the-fly modulation inside the model: per-modality scores, OPM, the
encoder parameters OGM-GE modulates, and the state they share."""
from .modality_scores import (SCORE_SOURCES, eval_mode, modality_logits,
                              resolve_score_source, true_class_probability)
from .modulation_state import ModulationState, check_window
from .parameter_sets import (PARAMETER_SETS, check_parameter_set,
                             encoder_parameters)
from .prediction_modulation import PredictionModulation

__all__ = [
    'SCORE_SOURCES', 'eval_mode', 'modality_logits', 'resolve_score_source',
    'true_class_probability', 'ModulationState', 'check_window',
    'PARAMETER_SETS', 'check_parameter_set', 'encoder_parameters',
    'PredictionModulation'
]
