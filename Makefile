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
# Test processes (pytest-xdist): one a core. Each torch process runs one
# thread (OMP_NUM_THREADS below), so one process left a core idle: the
# suite took 905 s in one process and 425 s in two on 2 idle cores (before
# tests/test_installed_package.py, 510 s with it). TEST_JOBS=0: one
# process, in order (for a debugger or -x).
TEST_JOBS ?= 2
XDIST := $(if $(filter 0,$(TEST_JOBS)),-p no:xdist,-n $(TEST_JOBS) --dist worksteal)

# One intra-op thread per training process on CPU: the data loader's worker
# processes share the cores, and two torch threads beside them made the demo
# 3x slower on 2 cores (0.50 against 0.16 s per iteration, measured with
# tools/train.py on the demo config). Override: make OMP_NUM_THREADS=2 ...
export OMP_NUM_THREADS ?= 1

COMPARE_DIR ?= work_dirs/compare
SEEDS ?= 0 1 2 3 4
EXTRA_SEEDS ?= 0 1 2

.PHONY: setup demo demo-data test test-fast test-installed compare compare-extra bench clean

setup: $(STAMP)

# A virtual environment $(1) with the pinned set.
define make_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/build.txt
	# torch first and alone, so the pinned CPU build is taken before anything can pull a CUDA one.
	$(1)/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt torch
	$(1)/bin/python -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/runtime.txt -r requirements/tests.txt
endef

# The plugin into the virtual environment $(1), as $(2): `-e .` editable,
# `.` built into a wheel and copied, as a user's `pip install .`.
define install_plugin
	$(1)/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps $(2)
	$(1)/bin/python -m pip check
endef

# Reinstall whenever a requirements file or setup.py changes.
$(STAMP): requirements/runtime.txt requirements/tests.txt requirements/build.txt requirements/constraints.txt setup.py
	$(call make_venv,$(VENV))
	$(call install_plugin,$(VENV),-e .)
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
	$(VPY) -m pytest tests $(XDIST) $(PYTEST_ARGS)

# Everything but the tests marked `slow` (setup.cfg): those that train
# (Runners, full-size models) or start processes (the tools, torchrun);
# `make test` runs them too. Here a test that starts a Runner or a process
# without the mark fails (tests/conftest.py), so the target stays fast.
test-fast: setup
	$(VPY) -m pytest tests -m 'not slow' $(XDIST) $(PYTEST_ARGS)

# The tests marked `demo_tools` (setup.cfg) against a non-editable install
# (`pip install .`, again at every call) in a virtual environment of its own,
# run in a copy of the repository without mmaction_gblend/, so that only
# the installed package can be imported (checked first). `make test` checks
# the same with the wheel installed into a folder
# (tests/test_installed_package.py).
INSTALLED_VENV ?= .venv-installed
INSTALLED_STAMP := $(INSTALLED_VENV)/.installed
CHECKOUT_FILES := setup.cfg tests tools configs benchmarks

$(INSTALLED_STAMP): requirements/runtime.txt requirements/tests.txt requirements/build.txt requirements/constraints.txt setup.py
	rm -rf $(INSTALLED_VENV)
	$(call make_venv,$(INSTALLED_VENV))
	touch $(INSTALLED_STAMP)

test-installed: $(INSTALLED_STAMP)
	rm -rf build
	$(call install_plugin,$(INSTALLED_VENV),--force-reinstall .)
	d="$$(mktemp -d)" && trap 'rm -rf "$$d"' EXIT && cp -r $(CHECKOUT_FILES) "$$d" && cd "$$d" \
	  && $(CURDIR)/$(INSTALLED_VENV)/bin/python -c "import mmaction_gblend as m, sysconfig; assert m.__file__.startswith(sysconfig.get_path('purelib')), m.__file__; print('installed:', m.__file__)" \
	  && $(CURDIR)/$(INSTALLED_VENV)/bin/python -m pytest -p no:cacheprovider -m demo_tools tests $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(INSTALLED_VENV) build work_dirs
