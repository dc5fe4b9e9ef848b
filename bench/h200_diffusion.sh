#!/usr/bin/env bash
# The diffusion kernels beside PyTorch on an NVIDIA H200, in one run (docs/BENCHMARKS.md,
# "Diffusion kernels"). Prepared for a session that is lent a device machine; not run yet.
#
# Here, once (x86-64, in the repository root; the device README's recipe for the loaders):
#   echo /.gl/ >>.git/info/exclude; echo /.devbin/ >>.git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial; o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
#   cargo build --release --features gpu --example diffusion_bench
#   mkdir -p .devbin && cp target/release/examples/diffusion_bench bench/diffusion_peer.py bench/h200_diffusion.sh .devbin/
#   strip .devbin/diffusion_bench
# Then one device call: carry [".gl", ".devbin"], timeout_s 420, command:
#   bash .devbin/h200_diffusion.sh
# What comes back under $OUT: wgpu.log, torch.log, diffusion-gpu.json, diffusion-torch-cuda*.json.
#
# The wgpu side times GpuTrainer::step (9 dispatches in one submit per step, the batch
# uploaded each step) and GpuSampler::run (one dispatch per step), host clock to a readback;
# the PyTorch side eager fp32 (TF32 off), Adam plain and fused, CUDA-synchronised. Same MLP
# (18 -> H -> H -> H -> 2, SiLU), batch, learning rate and DDPM-shaped sampler on both.
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
# Training at B = 256 and 1024, H = 64 (the widgets' width) and 128 (the spec's maximum);
# sampling 10k and 100k particles x 100 steps. The CPU twin runs a few steps for the record.
for b in 256 1024; do
  timeout 150 ./diffusion_bench --hidden 64,128 --batch $b --train-steps 1000 --cpu-train-steps 10 \
    --particles 10000,100000 --sample-steps 100 --cpu-particles 500 --out "$OUT/b$b" 2>&1 |
    tee -a "$OUT/wgpu.log"
done
for b in 256 1024; do
  timeout 60 python3 diffusion_peer.py --device cuda --hidden 64,128 --batch $b --train-steps 1000 \
    --particles 10000,100000 --sample-steps 100 --out "$OUT/b$b" 2>&1 | tee -a "$OUT/torch.log"
  timeout 60 python3 diffusion_peer.py --device cuda --fused-adam --hidden 64,128 --batch $b \
    --train-steps 1000 --particles 10000 --sample-steps 100 --out "$OUT/b$b-fused" 2>&1 |
    tee -a "$OUT/torch.log"
done
