from .gradient_blending_hook import GradientBlendingHook

__all__ = ['GradientBlendingHook']
