# Two commands on a fresh machine:
#   make demo   virtual environment + pinned packages, demo data, the main job
#   make test   virtual environment + pinned packages, the whole test suite
# and, while working on the code:
#   make test-fast  the pure and unit tests only (under a minute on 2 cores)
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA ?= data/demo_av
PYTEST_ARGS ?=

# One intra-op thread per training process on CPU: the data loader's worker
# processes share the cores, and two torch threads beside them made the demo
# 3x slower on 2 cores (0.50 against 0.16 s per iteration, measured with
# tools/train.py on the demo config). Override: make OMP_NUM_THREADS=2 ...
export OMP_NUM_THREADS ?= 1

COMPARE_DIR ?= work_dirs/compare
SEEDS ?= 0 1 2 3 4
EXTRA_SEEDS ?= 0 1 2

.PHONY: setup demo demo-data test test-fast compare compare-extra bench clean

setup: $(STAMP)

# Reinstall whenever a requirements file or setup.py changes.
$(STAMP): requirements/runtime.txt requirements/tests.txt requirements/build.txt requirements/constraints.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/build.txt
	# torch first and alone, so the pinned CPU build is taken before anything can pull a CUDA one.
	$(VPY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt torch
	$(VPY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/runtime.txt -r requirements/tests.txt
	$(VPY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	$(VPY) -m pip check
	touch $(STAMP)

demo-data: setup
	$(VPY) tools/data/make_demo_dataset.py --out $(DEMO_DATA) --skip-existing

demo: demo-data
	$(VPY) tools/demo.py --data-root $(DEMO_DATA)

# The strategy comparison on the demo data (tools/compare_strategies.py):
# comparison.md (mean, paired differences against the best single modality
# and naive fusion, on the whole training set and on G-Blend's part), a bar
# chart and the JSON of every run in $(COMPARE_DIR); the wall time is
# printed at the end. Finished runs are kept: an interrupted call continues.
# `make compare`: the core strategies; `make compare-extra`: the others.
compare: demo-data
	$(VPY) tools/compare_strategies.py --set core --seeds $(SEEDS) --work-dir $(COMPARE_DIR)

# The extra set is compared with the core set's references (naive fusion, the
# single modalities): `--set core extra` with the runs of `make compare`
# reused where it has them (trained here where it has not).
compare-extra: demo-data
	$(VPY) tools/compare_strategies.py --set core extra --seeds $(EXTRA_SEEDS) --work-dir $(COMPARE_DIR)-extra \
	  $(if $(wildcard $(COMPARE_DIR)/comparison.json),--reuse $(COMPARE_DIR)/comparison.json)

# Speed and memory of each strategy, as ratios measured side by side:
# benchmarks/RESULTS.md (run it on a quiet machine; see benchmarks/README.md).
bench: setup
	$(VPY) benchmarks/run_all.py

test: setup
	$(VPY) -m pytest tests $(PYTEST_ARGS)

# Everything but the tests marked `slow` (setup.cfg): those that train
# (Runners, full-size models) or start processes (the tools, torchrun);
# `make test` runs them too. Here a test that starts a Runner or a process
# without the mark fails (tests/conftest.py), so the target stays fast.
test-fast: setup
	$(VPY) -m pytest tests -m 'not slow' $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) work_dirs
