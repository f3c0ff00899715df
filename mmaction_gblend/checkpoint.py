"""Checkpoint loading that never executes code from the file.

Two paths, both refusing pickled code:

* :func:`load_checkpoint_file` reads a whole mmengine checkpoint (state dict,
  optimizer, ``message_hub``, ``meta``) with a restricted unpickler. It is
  what the Runner uses for ``--resume``, ``load_from`` and ``tools/test.py``
  once :mod:`mmaction_gblend.compat` has registered it. torch >= 2.6's
  ``weights_only=True`` refuses mmengine's own checkpoints (they hold
  ``HistoryBuffer`` objects and numpy arrays); ``weights_only=False``, the
  fix mmengine merged after 0.10.7, would run any code a file carries. The
  restricted unpickler sits between the two: torch's own allow-list, plus the
  few plain types mmengine writes, and nothing else.
* :func:`load_pretrained_state_dict` is the state-dict-only path for
  third-party weights (model zoo, other projects): the same unpickler, then
  only the tensors of the state dict are kept, whatever else the file holds.
"""
import io
import os
import os.path as osp
import pickle
from typing import Any, Callable, Dict, Optional, Union

import numpy as np
import torch

PathOrBuffer = Union[str, os.PathLike, io.IOBase]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked to build an object outside the allow-list."""


def _numpy_globals() -> Dict[str, Any]:
    """Numpy callables needed to rebuild arrays, dtypes and scalars."""
    allowed: Dict[str, Any] = {'numpy.ndarray': np.ndarray,
                               'numpy.dtype': np.dtype}
    # numpy 1.x pickles under ``numpy.core``, numpy 2.x under ``numpy._core``.
    multiarray = np.array([0]).__reduce__()[0].__module__
    for module in {'numpy.core.multiarray', 'numpy._core.multiarray',
                   multiarray}:
        allowed[f'{module}._reconstruct'] = np.array([0]).__reduce__()[0]
        allowed[f'{module}.scalar'] = np.float64(0).__reduce__()[0]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                allowed[f'numpy.dtypes.{name}'] = obj
    return allowed


def _mmengine_globals() -> Dict[str, Any]:
    from mmengine.logging.history_buffer import HistoryBuffer
    return {'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer}


def _torch_globals() -> Dict[str, Any]:
    """torch's own ``weights_only`` allow-list (tensors, storages, dtypes)."""
    from torch import _weights_only_unpickler
    return dict(_weights_only_unpickler._get_allowed_globals())


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to the one use mmengine checkpoints make of it.

    ``HistoryBuffer`` keeps its statistics methods (``HistoryBuffer.min``,
    ...) in a dict, and pickle writes those functions as
    ``getattr(HistoryBuffer, 'min')``. A free ``getattr`` would let a file
    walk from any allowed object to ``os.system``, so only that use passes.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    statistics = set(HistoryBuffer._statistics_methods) | {
        'min', 'max', 'mean', 'current'
    }
    if obj is HistoryBuffer and name in statistics:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'refusing getattr({obj!r}, {name!r}) while unpickling a checkpoint')


_ALLOWED: Optional[Dict[str, Any]] = None


def _allowed_globals() -> Dict[str, Any]:
    global _ALLOWED
    if _ALLOWED is None:
        allowed = _torch_globals()
        allowed.update(_numpy_globals())
        allowed.update(_mmengine_globals())
        allowed.update({
            'builtins.getattr': _restricted_getattr,
            '__builtin__.getattr': _restricted_getattr,
            'builtins.frozenset': frozenset,
            'builtins.slice': slice,
            'builtins.range': range,
            'collections.defaultdict': __import__('collections').defaultdict,
        })
        _ALLOWED = allowed
    return _ALLOWED


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals."""

    def find_class(self, module: str, name: str) -> Any:
        key = f'{module}.{name}'
        allowed = _allowed_globals()
        if key in allowed:
            return allowed[key]
        raise UnsafeCheckpointError(
            f'the checkpoint wants to build {key!r}, which is not a tensor, '
            'a plain container or one of the types mmengine writes; '
            'refusing to unpickle it because unpickling can run code')


class _RestrictedPickleModule:
    """The ``pickle_module`` torch.load uses: our unpickler, pickle's rest."""
    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):  # used by torch for legacy (non-zip) files
        return _RestrictedUnpickler(file, **kwargs).load()


def _describe(source: PathOrBuffer) -> str:
    return repr(source) if not isinstance(source, io.IOBase) else 'buffer'


def load_checkpoint_file(source: PathOrBuffer,
                         map_location: Union[str, Callable, None] = 'cpu'
                         ) -> Any:
    """Load a checkpoint file written by mmengine without running its code.

    Args:
        source: Path of the file, or an open binary file object.
        map_location: As for :func:`torch.load`.

    Returns:
        The unpickled checkpoint, usually a dict with ``state_dict``,
        ``meta``, ``message_hub``, ``optimizer`` and ``param_schedulers``.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        UnsafeCheckpointError: the file asks to build an object outside the
            allow-list (for example a crafted file that would call
            ``os.system``); the message names the file and the object.
    """
    if not isinstance(source, io.IOBase):
        source = osp.expanduser(os.fspath(source))
        if not osp.isfile(source):
            raise FileNotFoundError(f'checkpoint {source} can not be found')
    try:
        return torch.load(
            source,
            map_location=map_location,
            weights_only=False,
            pickle_module=_RestrictedPickleModule)
    except UnsafeCheckpointError as err:
        raise UnsafeCheckpointError(f'{_describe(source)}: {err}') from None


def load_pretrained_state_dict(source: PathOrBuffer,
                               map_location: Union[str, Callable,
                                                   None] = 'cpu',
                               key: Optional[str] = None
                               ) -> Dict[str, torch.Tensor]:
    """Load only the tensors of a third-party checkpoint's state dict.

    The file is read by the restricted unpickler of
    :func:`load_checkpoint_file`, so no code in it runs, and only the tensors
    of its state dict are returned. The state dict is taken from
    ``key`` if given, else from the first of ``state_dict``, ``model`` and
    ``module`` that exists, else the file is taken to be a state dict itself.

    Args:
        source: Path of the file, or an open binary file object.
        map_location: As for :func:`torch.load`.
        key: The entry of the checkpoint that holds the state dict.

    Returns:
        An ordered mapping from parameter name to tensor.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        UnsafeCheckpointError: the file asks to build an object outside the
            allow-list.
        KeyError: ``key`` is not in the checkpoint.
        TypeError: the state dict has non-tensor values.
    """
    checkpoint = load_checkpoint_file(source, map_location=map_location)
    if key is not None:
        if not isinstance(checkpoint, dict) or key not in checkpoint:
            raise KeyError(f'{_describe(source)} has no entry {key!r}')
        state_dict = checkpoint[key]
    else:
        state_dict = checkpoint
        for candidate in ('state_dict', 'model', 'module'):
            if isinstance(checkpoint, dict) and candidate in checkpoint:
                state_dict = checkpoint[candidate]
                break
    if not isinstance(state_dict, dict):
        raise TypeError(f'{_describe(source)}: expected a state dict, got '
                        f'{type(state_dict).__name__}')
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f'{_describe(source)}: state dict entries are not '
                        f'tensors: {bad[:5]}')
    return state_dict
