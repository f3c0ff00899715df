"""The error raised for a sample whose files cannot give what was asked,
and the check of a sample's file that raises it first."""
import os
import os.path as osp
from typing import Optional


class BadSampleError(RuntimeError):
    """A sample's file is missing, empty, truncated, silent or malformed.

    The message always starts with the file's path, so the cause can be
    found from a log line, also when the error comes out of a data-loader
    worker process.

    Args:
        path: The file at fault.
        reason: What is wrong with it. Without it, ``path`` is taken as the
            whole message: torch's data loader re-raises a worker's error
            as ``type(err)(message)`` in the main process.
    """

    def __init__(self, path: str, reason: Optional[str] = None) -> None:
        super().__init__(path if reason is None else f'{path}: {reason}')
        self.path = path if reason is not None else None
        self.reason = reason

    def __reduce__(self):  # keep (path, reason) across worker processes
        return (self.__class__, (self.path, self.reason))


def check_sample_file(path: str, what: str = 'file') -> None:
    """Fail with the file's path unless ``path`` is a non-empty file.

    Args:
        path: The sample's file.
        what: What the file is, for the message (``'video file'``).

    Raises:
        BadSampleError: ``'<path>: <what> not found'`` or
            ``'<path>: <what> is empty'``.
    """
    if not osp.isfile(path):
        raise BadSampleError(path, f'{what} not found')
    if os.path.getsize(path) == 0:
        raise BadSampleError(path, f'{what} is empty')


class TooManyBadSamplesError(RuntimeError):
    """More distinct files failed to load than a dataset's skip policy allows.

    Raised by ``AudioVisualDataset(bad_sample='skip')`` once more than
    ``max_bad_samples`` distinct files were bad; the message lists them with
    their reasons. It takes a single message, so torch's data loader can
    re-raise it in the main process when a worker raises it.
    """
