"""Demo material that configs, tools and benchmarks import by name.

* :mod:`.toy_task`: in-memory toy tasks; importing it registers their
  datasets, transform and encoder (``custom_imports=dict(imports=[
  'mmaction_gblend', 'mmaction_gblend.demo.toy_task'])``) and gives every
  name of the paradox task, which lives in :mod:`.paradox_data` (its
  samples, augmentation and Bayes accuracy) and :mod:`.paradox_configs`
  (its Runner configs).
* :mod:`.demo_generator`: the synthetic audio-visual demo dataset, written
  as real MP4 files (``tools/data/make_demo_dataset.py``).

``import mmaction_gblend`` does not import this subpackage, so the
library's registries hold only the library's own modules.
"""
