#!/usr/bin/env bash
# Compiles Pathscope with candle's CUDA backend on a machine without a GPU or driver:
# the CUDA compiler, headers and runtime come from NVIDIA's PyPI wheels (CUDA 13.4, the
# newest release cudarc 0.19 knows), candle's kernels are compiled by nvcc for the compute
# capability named below, and every crate is type-checked with the feature; no GPU is
# needed. `build` also links, which needs libcuda, cuBLAS, cuRAND and NVRTC installed (a
# GPU machine's toolkit), since candle's `cuda` feature links them at build time.
# Usage: bash .ci/cuda-check.sh [check|build] (default: check).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
venv="${CUDA_VENV:-target/cuda-venv}"
started=$(date +%s)
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv"
fi
# One CUDA release for every part: a newer nvvm or crt than nvcc breaks ptxas.
"$venv/bin/pip" install -q --disable-pip-version-check \
  "nvidia-cuda-nvcc==13.4.92" "nvidia-cuda-runtime==13.4.92" \
  "nvidia-cuda-crt==13.4.92" "nvidia-nvvm==13.4.92" "nvidia-cuda-cccl==13.3.5.0.6"
root="$(cd "$venv" && pwd)/lib/$(ls "$venv/lib")/site-packages/nvidia/cu13"
export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root" PATH="$root/bin:$PATH"
# sm_80 (A100; runs on H100/H200 too); set CUDA_COMPUTE_CAP=90 for Hopper-only kernels.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
echo "CUDA toolkit from wheels: $(nvcc --version | tail -1), compute capability $CUDA_COMPUTE_CAP"
# Library and binary only: --all-targets also checked the tests' cuda:: modules but
# compiled every dev-dependency again (650 s cold instead of 409 s); bench/gpu.sh builds
# those tests where a GPU runs them (checked with --all-targets on 2026-12-07).
cargo "$mode" --release --locked --features cuda
echo "CUDA $mode succeeded in $(( $(date +%s) - started )) s"
