"""The strategy comparison of ``tools/compare_strategies.py``, by job.

* :mod:`.strategies`: the strategies, one entry each (name, set, config
  override, pairing, demo config), and the demo settings they take;
* :mod:`.derivation`: a base config's strategies and their override
  configs;
* :mod:`.runs`: one training and test per strategy and seed, in a process
  of its own, and the reuse of earlier runs;
* :mod:`.statistics`: the runs summed up per strategy and paired per seed;
* :mod:`.reports`: ``comparison.md``, ``metafile.yml`` and the chart.

``tools/compare_strategies.py`` (the command line) has ``tools/`` on
``sys.path`` (appended where it is loaded as a module), so the package
imports as ``comparison``.
"""
import os.path as osp

#: The repository (this package is tools/comparison/).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
