"""On-the-fly modulation inside the model: per-modality scores, OPM."""
from .modality_scores import (SCORE_SOURCES, eval_mode, modality_logits,
                              resolve_score_source, true_class_probability)
from .prediction_modulation import PredictionModulation

__all__ = [
    'SCORE_SOURCES', 'eval_mode', 'modality_logits', 'resolve_score_source',
    'true_class_probability', 'PredictionModulation'
]
