#!/usr/bin/env bash
# Pathscope vs Captum on this machine, in one run: `pathscope bench` on the three shared
# models, then the same IG workloads in PyTorch + Captum, then the side-by-side table.
# PyTorch and Captum go into bench/.venv from PyPI the first time; where that fails the
# Captum side is skipped with a message and only Pathscope's figures are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
MODELS=(squeezenet1_1_imagenet efficientnet_lite0_imagenet resnet18_random_seed0)

cargo build --release --locked
args=()
for m in "${MODELS[@]}"; do args+=(--model "$SHARED/models/$m.safetensors"); done
RAYON_NUM_THREADS=$THREADS target/release/pathscope bench "${args[@]}" --studio-run --json "$OUT/pathscope.json"

# Time to a converged map (issue 22): Pathscope's tolerance mode (--tolerance 0.01: completeness
# within 1 %, its map estimate within 2 %) against Captum's Gauss–Legendre IG at the smallest
# n = 8, 16, 32, … meeting the same two criteria, both checked against one 1024-point
# reference per photo. PHOTOS photos of the shared folder (sorted by name; 0: all 39),
# CONVERGED_MODELS of the three; CONVERGED="" skips it.
CONVERGED=${CONVERGED-1}
PHOTOS=${PHOTOS:-8}
CONVERGED_MODELS=${CONVERGED_MODELS:-squeezenet1_1_imagenet,efficientnet_lite0_imagenet}
if [ -n "$CONVERGED" ]; then
  cargs=()
  IFS=, read -r -a cm <<<"$CONVERGED_MODELS"
  for m in "${cm[@]}"; do cargs+=(--model "$SHARED/models/$m.safetensors"); done
  RAYON_NUM_THREADS=$THREADS target/release/pathscope bench "${cargs[@]}" --converged "$SHARED/images" \
    --photos "$PHOTOS" --tolerance 0.01 --reference-steps 1024 --converged-out "$OUT/converged" \
    --json "$OUT/pathscope_converged.json"
fi

if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv && bench/.venv/bin/pip install --quiet torch torchvision captum safetensors ||
    { echo "SKIPPED Captum side: could not install torch/torchvision/captum from PyPI into bench/.venv" >&2; exit 0; }
fi
(IFS=,; bench/.venv/bin/python bench/captum_ig.py --shared "$SHARED" --models "${MODELS[*]}" --threads "$THREADS" \
  --out "$OUT/captum.json" --pathscope-json "$OUT/pathscope.json")
if [ -n "$CONVERGED" ]; then
  bench/.venv/bin/python bench/captum_converged.py --shared "$SHARED" --dir "$OUT/converged" \
    --threads "$THREADS" --pathscope-json "$OUT/pathscope_converged.json" --out "$OUT/captum_converged.json"
fi

# torchvision's zoo at full size (random weights, bench/zoo_weights.py), state dicts loaded
# by both sides: IG-50 and IG-200 with peak memory. ZOO="" skips it; one repeat each (these
# take minutes), Captum's internal batch 25. Each model runs in its own processes, so that
# the peak memory of one is not what an allocator kept from the one before.
ZOO=${ZOO-resnet50,vit_b_16,convnext_tiny,efficientnet_b0,mobilenet_v3_large}
if [ -n "$ZOO" ]; then
  IFS=, read -r -a zoo <<<"$ZOO"
  bench/.venv/bin/python bench/zoo_weights.py --out "$OUT/zoo" "${zoo[@]}"
  for m in "${zoo[@]}"; do
    RAYON_NUM_THREADS=$THREADS target/release/pathscope bench --model "$OUT/zoo/$m.safetensors" --batch-sizes 16 \
      --repeats 1 --json "$OUT/pathscope_zoo_$m.json"
    bench/.venv/bin/python bench/captum_ig.py --zoo "$OUT/zoo" --models "$m" --threads "$THREADS" \
      --batch-sizes 25 --repeats 1 --out "$OUT/captum_zoo_$m.json" --pathscope-json "$OUT/pathscope_zoo_$m.json"
  done
fi
