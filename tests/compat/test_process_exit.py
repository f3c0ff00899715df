"""exit_without_teardown: what a finished script flushed, and its status."""
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_exit_flushes_logs_and_streams_and_skips_the_teardown(tmp_path):
    log = tmp_path / 'run.log'
    code = textwrap.dedent(f"""
        import atexit, logging, sys
        from mmaction_gblend.compat import exit_without_teardown
        logger = logging.getLogger('run')
        handler = logging.FileHandler({str(log)!r}, delay=True)
        logger.addHandler(handler)
        logger.warning('the last line of the log')
        atexit.register(print, 'teardown ran')
        sys.stdout.write('no newline yet')
        exit_without_teardown(3)
        print('after the exit')
    """)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == 'no newline yet'  # no atexit, nothing after
    assert log.read_text() == 'the last line of the log\n'


TEARDOWN_REPORT = '''terminate called without an active exception
Fatal Python error: Aborted

Thread 0x00007f829efc6b80 (most recent call first):
  <no Python frame>

Extension modules: numpy.core._multiarray_umath, torch._C (total: 2)
'''


@pytest.mark.slow
def test_only_an_abort_after_the_python_code_counts_as_a_teardown_abort():
    from helpers import aborted_in_teardown
    assert aborted_in_teardown('log line\n' + TEARDOWN_REPORT)
    assert not aborted_in_teardown('Traceback (most recent call last):\n')
    # an abort while Python code runs names its frames
    proc = subprocess.run(
        [sys.executable, '-X', 'faulthandler', '-c',
         'import os\ndef work():\n    os.abort()\nwork()'],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == -6 and 'Fatal Python error: Aborted' in \
        proc.stderr
    assert not aborted_in_teardown(proc.stderr)
