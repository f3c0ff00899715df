#!/usr/bin/env bash
# Multi-process training: tools/dist_train.sh CONFIG NPROC [train.py options]
# Works on GPUs (one process per GPU) and on CPUs (gloo).
set -euo pipefail
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
PYTHON=${PYTHON:-python}
"$PYTHON" -m torch.distributed.run --nproc_per_node="$NPROC" \
    --master_port="$PORT" "$(dirname "$0")/train.py" "$CONFIG" \
    --launcher pytorch "${@:3}"
