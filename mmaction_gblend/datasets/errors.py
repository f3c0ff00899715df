"""The error raised for a sample whose files cannot give what was asked."""
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
