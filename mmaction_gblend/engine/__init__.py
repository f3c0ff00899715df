"""Training-time pieces: hooks, optim wrappers and what they run."""
from .blend_schedule import Estimate, blend_schedule
from .heldout_evaluation import HeadMeasure, measure_heads, measure_models
from .hooks import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
from .shadow_training import shadow_train

__all__ = [
    'Estimate', 'blend_schedule', 'HeadMeasure', 'measure_heads',
    'measure_models', 'shadow_train'
]
