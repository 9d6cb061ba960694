#!/usr/bin/env bash
# One script for a machine with an NVIDIA GPU (issue 24): builds Pathscope with CUDA, runs
# the parity tests on the GPU (golden parity and path methods, the `cuda::` tests of the
# same test bodies the CPU runs), then times IG-50 and IG-200 at the best batch size on
# ResNet-50, ViT-B/16 and the three shared models, and prints a table. Target: under
# 8 minutes including the build.
#
#   bash bench/gpu.sh            # everything
#   SKIP_TESTS=1 bash bench/gpu.sh
#   bash bench/gpu.sh --cpu-rehearsal   # the same steps on the CPU's device-generic path
#                                       # (no CUDA, small step counts): checks the script
#
# The CUDA toolkit: the system's (nvcc on PATH, or /usr/local/cuda) when there is one;
# otherwise NVIDIA's PyPI wheels (compiler, headers, cuBLAS, cuRAND, NVRTC), which needs
# PyPI. libcuda comes with the driver. Weights of ResNet-50 and ViT-B/16: bench/out/zoo
# (bench/zoo_weights.py, torchvision's initialisation) when present, else random ones
# written by examples/zoo_random_weights.rs (timings do not depend on the values).
# Writes bench/out/gpu/{bench.json,table.md,log.txt}.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
rehearsal=0
[ "${1:-}" = --cpu-rehearsal ] && rehearsal=1
out=bench/out/gpu
mkdir -p "$out"
log="$out/log.txt"
: >"$log"
say() { echo "[$(( $(date +%s) - started )) s] $*" | tee -a "$log"; }

if [ $rehearsal = 1 ]; then
  # Every step below on the CPU's device-generic path, with small workloads.
  gpu="none (CPU rehearsal, device-generic path)"
  device=cpu:generic features=() tests=cpu_generic:: batches=4 steps=8,16 repeats=1
  say "rehearsal on the CPU: $device"
else
  command -v nvidia-smi >/dev/null || { echo "bench/gpu.sh: no nvidia-smi: this machine has no NVIDIA driver" >&2; exit 1; }
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"
  device=cuda features=(--features cuda) tests=cuda:: batches=8,16,32,64 steps=50,200 repeats=3
  say "GPU: $gpu, compute capability $CUDA_COMPUTE_CAP"
fi

# --- the toolkit -------------------------------------------------------------------
if [ $rehearsal = 1 ]; then
  :
elif ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH" CUDA_ROOT=/usr/local/cuda
  export LIBRARY_PATH="/usr/local/cuda/lib64:${LIBRARY_PATH:-}" LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
fi
if [ $rehearsal = 0 ] && ! command -v nvcc >/dev/null; then
  say "no system nvcc: installing CUDA 13.4 from PyPI wheels"
  venv="${CUDA_VENV:-target/cuda-venv}"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  # .ci/cuda-check.sh's compiler set plus the libraries candle links at build time.
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "nvidia-cuda-nvcc==13.4.92" "nvidia-cuda-runtime==13.4.92" "nvidia-cuda-crt==13.4.92" \
    "nvidia-nvvm==13.4.92" "nvidia-cuda-cccl==13.3.5.0.6" \
    "nvidia-cublas==13.*" "nvidia-curand==10.*" "nvidia-cuda-nvrtc==13.4.92"
  root="$(cd "$venv" && pwd)/lib/$(ls "$venv/lib")/site-packages/nvidia/cu13"
  export CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root" PATH="$root/bin:$PATH"
  # The wheels ship versioned sonames only; the linker wants the plain names.
  links="$out/lib"
  mkdir -p "$links"
  for lib in cudart cublas cublasLt curand nvrtc; do
    so=$(ls "$root"/lib/lib$lib.so.* 2>/dev/null | head -1 || true)
    [ -n "$so" ] && ln -sf "$so" "$links/lib$lib.so"
  done
  export LIBRARY_PATH="$links:$root/lib:${LIBRARY_PATH:-}" LD_LIBRARY_PATH="$root/lib:${LD_LIBRARY_PATH:-}"
fi
# libcuda.so (unversioned) for the linker, from the driver.
if [ $rehearsal = 0 ] && ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so '; then
  driver=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
  if [ -n "$driver" ]; then
    mkdir -p "$out/lib"
    ln -sf "$driver" "$out/lib/libcuda.so"
    export LIBRARY_PATH="$(pwd)/$out/lib:${LIBRARY_PATH:-}"
  fi
fi
[ $rehearsal = 1 ] || say "toolkit: $(nvcc --version | tail -1)"

# --- build -------------------------------------------------------------------------
say "building (${features[*]:-no CUDA})"
cargo build --release --locked "${features[@]}" --bin pathscope --example zoo_random_weights \
  --test golden_parity --test path_methods 2>&1 | tail -3 | tee -a "$log"
say "build done"

# --- parity on the GPU -------------------------------------------------------------
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  say "parity tests on $device ($tests modules)"
  cargo test --release --locked "${features[@]}" --test golden_parity --test path_methods "$tests" \
    -- --nocapture 2>&1 | grep -E '^test |test result|rel L2|Σ A|gradients \+|panicked' | tee -a "$log"
  say "parity tests done"
fi

# --- weights -----------------------------------------------------------------------
zoo=bench/out/zoo
models=()
for name in resnet50 vit_b_16; do
  if [ -f "$zoo/$name.safetensors" ]; then
    models+=("$zoo/$name.safetensors")
  else
    cargo run -q --release --locked "${features[@]}" --example zoo_random_weights -- "$out/zoo" "$name" | tee -a "$log"
    models+=("$out/zoo/$name.safetensors")
  fi
done
shared=../shared/models
for name in squeezenet1_1_imagenet efficientnet_lite0_imagenet resnet18_random_seed0; do
  [ -f "$shared/$name.safetensors" ] && models+=("$shared/$name.safetensors")
done

# --- timings -----------------------------------------------------------------------
args=()
for m in "${models[@]}"; do args+=(--model "$m"); done
say "timing IG ($steps steps) on ${#models[@]} models"
target/release/pathscope bench --device "$device" "${args[@]}" --batch-sizes "$batches" \
  --steps "$steps" --repeats "$repeats" --json "$out/bench.json" 2>&1 | tee -a "$log"

# --- table -------------------------------------------------------------------------
python3 - "$out/bench.json" "$gpu" >"$out/table.md" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"GPU: {sys.argv[2]}; device {report['device']}; f32 matmul {report['matmul_gflops']:.0f} GFLOP/s\n")
steps = sorted({r["steps"] for m in report["models"] for r in m["ig"]})
print("| model | best batch | fwd+grad ms/point | " + " | ".join(f"IG-{n} s" for n in steps) + " | peak host RSS MiB |")
print("|---|---:|---:|" + "---:|" * len(steps) + "---:|")
for m in report["models"]:
    ig = {r["steps"]: r for r in m["ig"]}
    per = min(r["forward_gradient_ms_per_point"] for r in m["oracle"])
    peak = max((r["peak_rss_mb"] or 0) for r in m["ig"])
    cells = " | ".join(f"{ig[n]['seconds']:.3f}" for n in steps)
    print(f"| {m['architecture']} | {m['best_batch_size']} | {per:.2f} | {cells} | {round(peak)} |")
EOF
cat "$out/table.md" | tee -a "$log"
say "bench/gpu.sh finished in $(( $(date +%s) - started )) s (target on a GPU: under 480 s)"
