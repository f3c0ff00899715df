#!/usr/bin/env bash
# The GPU check in one command (tools/gpu_check/README.md):
#   tools/gpu_check/run.sh [--device cuda|cpu] [--wheels .whl] [--out-dir DIR] ...
#   tools/gpu_check/run.sh --prepare     # here, with network: wheels into .whl/
# PYTHON: the interpreter (default python3, the one that holds torch on the
# GPU machine); every option is in check.py (--help). It runs from the
# repository root, wherever it is called from.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
exec "$PYTHON" tools/gpu_check/check.py --python "$PYTHON" "$@"
