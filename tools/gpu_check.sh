#!/usr/bin/env bash
# The GPU path in one command (docs/gpu_check.md):
#   tools/gpu_check.sh [--device cuda|cpu] [--wheels .whl] [--out-dir DIR] ...
#   tools/gpu_check.sh --prepare     # here, with network: wheels into .whl/
# PYTHON: the interpreter (default python3, the one that holds torch on the
# GPU machine); everything else is in tools/gpu_check.py (--help).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
exec "$PYTHON" tools/gpu_check.py --python "$PYTHON" "$@"
