# Two commands on a fresh machine:
#   make demo   virtual environment + pinned packages, demo data, the main job
#   make test   virtual environment + pinned packages, the whole test suite
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DATA ?= data/demo_av
PYTEST_ARGS ?=

COMPARE_DIR ?= work_dirs/compare
SEEDS ?= 0 1 2

.PHONY: setup demo demo-data test compare bench clean

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

# Every balancing strategy on the demo data over 3 seeds: a markdown table
# and a bar chart in $(COMPARE_DIR) (about 2 hours on 2 CPU cores; finished
# runs are kept, so an interrupted call continues).
compare: demo-data
	$(VPY) tools/compare_strategies.py --data-root $(DEMO_DATA) --seeds $(SEEDS) --work-dir $(COMPARE_DIR)

# Speed and memory of each strategy, as ratios measured side by side:
# benchmarks/RESULTS.md (run it on a quiet machine; see benchmarks/README.md).
bench: setup
	$(VPY) benchmarks/run_all.py

test: setup
	$(VPY) -m pytest tests $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) work_dirs
