"""mmaction-gblend: multi-modal video classification for mmaction2.

Importing this package (``custom_imports=dict(imports=['mmaction_gblend'])``
in a config) first applies the platform fixes of :mod:`.compat`, then
registers every module of the plugin into mmaction2's registries.
"""
from .compat import apply_platform_fixes

apply_platform_fixes()

# Registration imports: each registers its modules into mmaction's registries.
from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .blending import blend_statistics, estimate_blend_weights  # noqa: E402
from .checkpoint import (  # noqa: E402
    UnsafeCheckpointError, load_checkpoint_file, load_pretrained_state_dict)
from .version import __version__  # noqa: E402

__all__ = [
    '__version__', 'apply_platform_fixes', 'estimate_blend_weights',
    'blend_statistics', 'load_checkpoint_file',
    'load_pretrained_state_dict', 'UnsafeCheckpointError'
]
