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
# Method names as the catalog writes them (the CSV files of earlier runs used ig-idgi,
# blur-ig, ig-uniform(-recal), ...; eval reads and resumes those).
METHODS=gradient,ig:straight,ig:straight:idgi,ig:blur,ig:blur:idgi,ig:guided,ig:guided:idgi,ig-uniform:vanilla,ig-uniform:valid-ip,ig-sg:vanilla,ig-sg:valid-ip,ig-sq:vanilla,ig-sq:valid-ip,random
METRICS=insertion,deletion,sic,aic,sic-msssim,aic-msssim,diffid
cargo build --release --locked
for model in squeezenet1_1_imagenet efficientnet_lite0_imagenet; do
  target/release/pathscope eval --model "$SHARED/models/$model.safetensors" --images "$SHARED/images" \
    --methods "$METHODS" --metrics "$METRICS" --pixels-per-step 1792 \
    --out "$OUT/$model.csv" --maps "${MAPS:-$OUT/maps}"
done
target/release/pathscope eval summary --complete-only --markdown \
  --pair ig:straight:ig:straight:idgi --pair ig:blur:ig:blur:idgi --pair ig:guided:ig:guided:idgi \
  --pair ig-uniform:vanilla:ig-uniform:valid-ip --pair ig-sg:vanilla:ig-sg:valid-ip \
  --pair ig-sq:vanilla:ig-sq:valid-ip \
  "$OUT"/squeezenet1_1_imagenet.csv "$OUT"/efficientnet_lite0_imagenet.csv
