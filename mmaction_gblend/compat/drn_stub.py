"""Stand-in for ``mmaction.models.localizers.drn`` where the wheel lacks it.

mmaction2 1.2.0's source tree has ``mmaction/models/localizers/drn/`` without
an ``__init__.py``, so ``find_packages`` left it out of the published wheel,
while ``mmaction/models/localizers/__init__.py`` still imports ``.drn.drn``
(open-mmlab/mmaction2#2714, fix in the unmerged PR #2721). Every model build
imports ``mmaction.models``, so on a wheel install nothing works.

Before ``mmaction.models`` is imported, we put two modules in ``sys.modules``
under the missing names. Their ``DRN``, registered in ``MODELS`` as the real
one would be, raises a clear error if a config builds it. A source install,
whose ``drn`` directory exists, is left alone.
"""
import importlib.util
import os.path as osp
import sys
import types

DRN_MODULE = 'mmaction.models.localizers.drn'


def mmaction_has_drn(mmaction_dir: str) -> bool:
    """Whether an mmaction package directory ships the ``drn`` localizer."""
    return osp.isfile(
        osp.join(mmaction_dir, 'models', 'localizers', 'drn', 'drn.py'))


class DRN:
    """Placeholder for the DRN localizer missing from the mmaction2 wheel."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(
            'DRN is not available: the mmaction2 1.2.0 wheel does not ship '
            'mmaction.models.localizers.drn (open-mmlab/mmaction2#2714); '
            'install mmaction2 from source to use it')


def install_drn_stub_if_missing() -> bool:
    """Register the stand-in modules if the installed mmaction needs them.

    Returns:
        True if the stand-in was installed by this call.
    """
    if DRN_MODULE in sys.modules or 'mmaction.models' in sys.modules:
        return False
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    mmaction_dir = list(spec.submodule_search_locations)[0]
    if mmaction_has_drn(mmaction_dir):
        return False
    package = types.ModuleType(DRN_MODULE)
    package.__path__ = []  # a package, so that ``.drn.drn`` resolves
    package.__doc__ = __doc__
    module = types.ModuleType(f'{DRN_MODULE}.drn')
    module.DRN = DRN
    package.drn = module
    package.DRN = DRN
    from mmaction.registry import MODELS
    MODELS.register_module(name='DRN', module=DRN, force=True)
    sys.modules[DRN_MODULE] = package
    sys.modules[f'{DRN_MODULE}.drn'] = module
    return True
