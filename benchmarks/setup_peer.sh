#!/usr/bin/env bash
# Create the peer's own virtual environment, benchmarks/.venv-peer, for the `mostly-tabularargn`
# system (MOSTLY AI's TabularARGN from mostlyai-engine), so that synthpipe's environment stays
# clean: mostlyai-engine pulls in transformers and other large dependencies.
#
#     bash benchmarks/setup_peer.sh [PYTHON]      # PYTHON defaults to python3
#
# The harness finds the venv by path (benchmarks/.venv-peer/bin/python) and skips the system with
# a message when it is absent. The venv needs synthpipe's benchmark worker dependencies too
# (pandas, numpy, torch), which mostlyai-engine brings.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${PEER_VENV:-$here/.venv-peer}"
python="${1:-python3}"

"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip
# torch first, pinned to the CPU wheel synthpipe uses: a bare torch requirement pulls a CUDA build
"${pip[@]}" install -q torch==2.13.0
"${pip[@]}" install -q "mostlyai-engine>=2.7,<3"
# mostlyai-engine brings a torchvision built against another torch; importing it then fails with
# "operator torchvision::nms does not exist". TabularARGN does not use torchvision.
"${pip[@]}" uninstall -q -y torchvision || true
"$venv/bin/python" - <<'PY'
import torch
from mostlyai import engine
from mostlyai.engine import TabularARGN  # noqa: F401  (the import that torchvision used to break)

print(f"peer venv ready: mostlyai-engine {engine.__version__ if hasattr(engine, '__version__') else '?'}, torch {torch.__version__}")
PY
