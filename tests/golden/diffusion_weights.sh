#!/usr/bin/env bash
# Regenerate the default weights of <ml-diffusion> and <ml-flow-matching> (www/weights/),
# one file per data set and method, with the release CLI. Deterministic: the same command
# gives the same bytes on any machine (f32 loops in a fixed order, libm's functions), which
# tests/diffusion_weights.rs checks. Run from anywhere: ./build.sh weights
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
cargo build --release --bin mlplay
OUT=www/weights
mkdir -p "$OUT"
# The defaults of TrainConfig (T = 1000 linear, H = 64, batch 256, lr 1e-2 cosine-decayed),
# STEPS steps, seed 0. Two trainings at a time.
STEPS=6000
for method in ddpm flow; do
  for dataset in moons swiss-roll 8-gaussians checkerboard ring; do
    target/release/mlplay diffusion-train --dataset "$dataset" --method "$method" --steps "$STEPS" \
      --seed 0 --backend cpu --out "$OUT/$dataset-$method.bin" --json >/dev/null &
    while (($(jobs -r | wc -l) >= 2)); do wait -n; done
  done
done
wait
ls -l "$OUT"/*.bin
