#!/usr/bin/env bash
# Regenerates the tables of docs/results.md: every method × metric on the photos of
# ../shared/images with SqueezeNet-1.1 and EfficientNet-Lite0. Resumable: rerun it after an
# interruption and it continues where it stopped (rows already in the CSV are skipped,
# cached maps are reused). On 2 cores a full run takes several hours; split it with
# `--shard K/N` on several machines and join the parts with `pathscope eval merge`.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${OUT:-docs/results}
mkdir -p "$OUT"
METHODS=gradient,ig,ig-idgi,blur-ig,blur-ig-idgi,guided-ig,guided-ig-idgi,ig-uniform,ig-uniform-recal,ig-sg,ig-sg-recal,ig-sq,ig-sq-recal,random
METRICS=insertion,deletion,sic,aic,sic-msssim,aic-msssim,diffid
cargo build --release --locked
for model in squeezenet1_1_imagenet efficientnet_lite0_imagenet; do
  target/release/pathscope eval --model "$SHARED/models/$model.safetensors" --images "$SHARED/images" \
    --methods "$METHODS" --metrics "$METRICS" --pixels-per-step 1792 \
    --out "$OUT/$model.csv" --maps "${MAPS:-$OUT/maps}"
done
target/release/pathscope eval summary --complete-only --markdown \
  --pair ig:ig-idgi --pair blur-ig:blur-ig-idgi --pair guided-ig:guided-ig-idgi \
  --pair ig-uniform:ig-uniform-recal --pair ig-sg:ig-sg-recal --pair ig-sq:ig-sq-recal \
  "$OUT"/squeezenet1_1_imagenet.csv "$OUT"/efficientnet_lite0_imagenet.csv
