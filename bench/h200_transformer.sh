#!/usr/bin/env bash
# The transformer's WGSL training beside PyTorch on an NVIDIA H200, in one run
# (docs/BENCHMARKS.md, "Transformer training"). Prepared for a session that is lent a device
# machine; not run yet (this task had none).
#
# Here, once (x86-64, in the repository root; the device README's recipe for the loaders):
#   echo /.gl/ >>.git/info/exclude; echo /.devbin/ >>.git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial; o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
#   cargo build --release --features gpu --example transformer_bench
#   mkdir -p .devbin && cp target/release/examples/transformer_bench bench/transformer_peer.py bench/h200_transformer.sh .devbin/
#   strip .devbin/transformer_bench
# Then one device call: carry [".gl", ".devbin"], timeout_s 300, command:
#   bash .devbin/h200_transformer.sh
# What comes back under $OUT: wgpu.log, torch.log, */transformer-gpu.json.
#
# The wgpu side times GpuTransformer::submit_step back to back (one submit per step: about
# 14 dispatches per layer forward, 26 backward, the loss, the norm and Adam; the batch's token
# ids uploaded each step) to a readback of the last step's loss; the PyTorch side eager fp32
# (TF32 off), attention written out and with SDPA, Adam plain and fused, CUDA-synchronised.
# Same model, batch, Adam and clip on both. The target (issue 9): at the default size the wgpu
# path at least matches eager PyTorch on the same GPU.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp/xdg PYTHONUNBUFFERED=1
mkdir -p -m 700 /tmp/xdg
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv
} | tee "$OUT/wgpu.log"
# The default model (L 2, H 2, D 32, ctx 24, B 16), then the issue's largest (L 4, H 8, D 128,
# ctx 128) at B 16 and 64. The CPU Trainer runs a few steps for the record.
shapes=("--layers 2 --heads 2 --d-model 32 --ctx 24 --batch 16"
  "--layers 4 --heads 8 --d-model 128 --ctx 128 --batch 16"
  "--layers 4 --heads 8 --d-model 128 --ctx 128 --batch 64")
i=0
for s in "${shapes[@]}"; do
  # shellcheck disable=SC2086
  timeout 80 ./transformer_bench $s --gpu-steps 500 --cpu-steps 3 --out "$OUT/shape$i" 2>&1 |
    tee -a "$OUT/wgpu.log"
  i=$((i + 1))
done
for s in "${shapes[@]}"; do
  for extra in "" "--sdpa" "--sdpa --fused-adam"; do
    # shellcheck disable=SC2086
    timeout 40 python3 transformer_peer.py --device cuda $s --steps 500 $extra 2>&1 |
      tee -a "$OUT/torch.log"
  done
done
