from .ogm_ge_optim_wrapper import (AmpOGMGEOptimWrapper, GradientModulation,
                                   OGMGEOptimWrapper)

__all__ = ['AmpOGMGEOptimWrapper', 'GradientModulation', 'OGMGEOptimWrapper']
