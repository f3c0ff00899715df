"""Leaving a finished script without the interpreter's teardown.

At the end of a 2-process CPU run (torchrun, gloo) a rank sometimes aborts
after its Python code has finished: SIGABRT with "terminate called without
an active exception", and faulthandler shows the main thread with no Python
frame left. Some native library's threads meet the interpreter's and C++'s
teardown; which one, we have not found. The run's work is done by then,
but torchrun reports the whole run as failed. In our test suite it happened
in about one full run of three (a different 2-process test each time), on
this platform's torch 2.13 CPU build, with or without the process group
destroyed first.

:func:`exit_without_teardown` flushes what Python would flush at exit and
ends the process with ``os._exit``, which skips that teardown.
"""
import logging
import os
import sys
from typing import NoReturn


def exit_without_teardown(code: int = 0) -> NoReturn:
    """Flush the logging handlers and the standard streams, then exit.

    Call it only from a script's ``__main__`` block, after its work ended
    normally: it ends the process at once, without ``atexit`` handlers (it
    runs logging's own, :func:`logging.shutdown`, first) or the interpreter's
    and native libraries' teardown. A script that raised should exit the
    usual way, with its traceback.

    Args:
        code: The process's exit status.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(code)
