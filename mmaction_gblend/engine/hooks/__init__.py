from .config_check_hook import ConfigCheckHook
from .epoch_seed_hook import EpochSeedHook
from .gradient_blending_hook import GradientBlendingHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .on_the_fly_modulation_hook import OnTheFlyModulationHook
from .prediction_mix_hook import PredictionMixHook

__all__ = [
    'ConfigCheckHook', 'EpochSeedHook', 'GradientBlendingHook',
    'NonFiniteLossError', 'NonFiniteLossHook', 'OnTheFlyModulationHook',
    'PredictionMixHook'
]
