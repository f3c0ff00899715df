"""The GPU check (``tools/gpu_check/README.md``): the plugin's GPU path,
install to benchmarks, in one command on the device machine.

Its scripts (``check.py``, ``worker.py``) import the other modules as
``gpu_check.<module>``, with ``tools/`` on ``sys.path``.
"""
