#!/usr/bin/env bash
# Pathscope's IG on ONNX exports of twelve torchvision families (random weights), against
# Captum on the PyTorch model, in one run: relative L2 of the attributions and IG wall time
# side by side. See bench/onnx_zoo.py for the workload; its flags pass through:
#
#   bash bench/onnx_zoo.sh                                   # all twelve, both exporters
#   bash bench/onnx_zoo.sh --models mobilenet_v2,shufflenet_v2_x1_0 --exporters legacy,dynamo
#   THREADS=4 bash bench/onnx_zoo.sh --steps 50 --out bench/out/onnx_zoo
#
# Exports, attributions (.npy), onnx_zoo.md and onnx_zoo.json land in --out
# (bench/out/onnx_zoo by default; ignored by git). PyTorch, torchvision, Captum, onnx,
# onnxscript and onnxruntime go into bench/.venv from PyPI the first time.
# SKIP_BUILD=1 uses target/release/pathscope as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
PY=bench/.venv/bin/python
PACKAGES=(torch torchvision captum onnx onnxscript onnxruntime safetensors)

if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x target/release/pathscope ]; then
  cargo build --release --locked
fi

if [ ! -x "$PY" ]; then
  python3 -m venv bench/.venv
fi
if ! "$PY" -c 'import torch, torchvision, captum, onnx, onnxscript, onnxruntime, PIL' 2>/dev/null; then
  "$PY" -m pip install --quiet "${PACKAGES[@]}" ||
    { echo "onnx_zoo: could not install ${PACKAGES[*]} from PyPI into bench/.venv" >&2; exit 1; }
fi

exec "$PY" bench/onnx_zoo.py --threads "$THREADS" "$@"
