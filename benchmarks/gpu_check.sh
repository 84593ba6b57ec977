#!/usr/bin/env bash
# The prepared GPU check (issue 13): every generator trained briefly on CUDA with mixed precision
# and on the CPU; fails (non-zero) when the two disagree on columns, dtypes or quality, and prints
# GPU against CPU throughput. Finishes in well under 4 minutes on a CUDA machine (a hard limit of
# GPU_CHECK_TIMEOUT seconds, default 230, ends it otherwise, with exit 124).
#
#     bash benchmarks/gpu_check.sh              # on a CUDA machine
#     bash benchmarks/gpu_check.sh --cpu-only   # anywhere: the CPU half only (says it skipped CUDA)
#
# Options after the first are passed to benchmarks/gpu_check.py (--rows, --epochs, --tolerance,
# --generators ...). PYTHON picks the interpreter (default python3); it needs torch, numpy, pandas,
# safetensors and scikit-learn, nothing else, so a bare CUDA image with PyTorch runs it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
# import this checkout as `synthpipe` whatever its folder is called
link_root="$(mktemp -d)"
trap 'rm -rf "$link_root"' EXIT
ln -s "$repo" "$link_root/synthpipe"
export PYTHONPATH="$link_root${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"
timeout "${GPU_CHECK_TIMEOUT:-230}" "$python" -m synthpipe.benchmarks.gpu_check "$@"
