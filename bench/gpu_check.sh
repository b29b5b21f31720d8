#!/usr/bin/env bash
# One shot on a GPU machine (issue 14 item 6 and the loader on CUDA): writes both results under
# bench/results/ with the device in the header. About 5-10 minutes on a recent GPU.
#   bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p bench/results
"$PY" bench/gpu_check.py --device cuda | tee bench/results/gpu_check-cuda.txt
"$PY" bench/data_loading.py --device cuda --shapes-only | tee bench/results/data_loading-shapes-cuda.txt
