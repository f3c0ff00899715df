from .gradient_blending_hook import GradientBlendingHook
from .on_the_fly_modulation_hook import OnTheFlyModulationHook

__all__ = ['GradientBlendingHook', 'OnTheFlyModulationHook']
