"""A stand-in for ``distutils.errors`` on a Python without distutils.

Python 3.12 removed ``distutils`` from the standard library. mmengine
0.10.7's ``collect_env``, which every Runner calls while it starts (it logs
the environment), begins with ``from distutils import errors`` and catches
``errors.DistutilsPlatformError`` around its compiler probe; without a
``distutils`` module every training and test stops there. setuptools
supplies one (its ``_distutils_hack``, loaded by a ``.pth`` file of the
environment it is installed in), so Python 3.11 and any environment with
setuptools are unaffected: this fix leaves them alone. A Python >= 3.12
environment without setuptools gets a module ``distutils.errors`` that holds
the exception classes of the standard one (``DistutilsError`` and its
subclasses, the hierarchy of CPython 3.11), which is all mmengine reads.
"""
import importlib
import sys
import types
import warnings

STAND_IN_ATTR = '_mmaction_gblend_stand_in'
_ERRORS = (
    # name, base
    ('DistutilsError', Exception),
    ('DistutilsModuleError', 'DistutilsError'),
    ('DistutilsClassError', 'DistutilsError'),
    ('DistutilsGetoptError', 'DistutilsError'),
    ('DistutilsArgError', 'DistutilsError'),
    ('DistutilsFileError', 'DistutilsError'),
    ('DistutilsOptionError', 'DistutilsError'),
    ('DistutilsSetupError', 'DistutilsError'),
    ('DistutilsPlatformError', 'DistutilsError'),
    ('DistutilsExecError', 'DistutilsError'),
    ('DistutilsInternalError', 'DistutilsError'),
    ('DistutilsTemplateError', 'DistutilsError'),
    ('DistutilsByteCompileError', 'DistutilsError'),
    ('CCompilerError', Exception),
    ('PreprocessError', 'CCompilerError'),
    ('CompileError', 'CCompilerError'),
    ('LibError', 'CCompilerError'),
    ('LinkError', 'CCompilerError'),
    ('UnknownFileError', 'CCompilerError'),
)


def _distutils_importable() -> bool:
    try:
        with warnings.catch_warnings():  # 3.10/3.11: "deprecated" warning
            warnings.simplefilter('ignore')
            importlib.import_module('distutils.errors')
        return True
    except ImportError:
        return False


def make_stand_in() -> types.ModuleType:
    """The ``distutils`` package module with its ``errors`` submodule."""
    package = types.ModuleType('distutils', __doc__)
    package.__path__ = []  # a package, so 'distutils.errors' resolves
    setattr(package, STAND_IN_ATTR, True)
    errors = types.ModuleType('distutils.errors',
                              'Exception classes of distutils (stand-in).')
    for name, base in _ERRORS:
        base = getattr(errors, base) if isinstance(base, str) else base
        cls = type(name, (base, ), {'__module__': 'distutils.errors'})
        setattr(errors, name, cls)
    setattr(errors, STAND_IN_ATTR, True)
    package.errors = errors
    return package


def install_distutils_errors_if_missing(
        version_info=sys.version_info) -> bool:
    """Register the stand-in where ``distutils`` cannot be imported.

    Args:
        version_info: The Python version (a parameter for the tests).

    Returns:
        True if this call registered it.
    """
    if tuple(version_info[:2]) < (3, 12) or 'distutils' in sys.modules:
        return False
    if _distutils_importable():
        return False
    package = make_stand_in()
    sys.modules['distutils'] = package
    sys.modules['distutils.errors'] = package.errors
    return True
