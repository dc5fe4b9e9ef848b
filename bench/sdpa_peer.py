"""PyTorch's fp32 scaled_dot_product_attention on the same GPU, same sizes, same FLOP count.

The peer of bench/attention_bench.rs in docs/BENCHMARKS.md: q, k, v of shape
(1, heads, N, d) in float32 on CUDA, non-causal, 4 N^2 d FLOPs per head, best of `--reps`
runs after a warm-up, timed with CUDA events. Reports PyTorch's default choice of SDPA
backend and, separately, each backend that accepts fp32 (efficient attention, math), so
the comparison says what it compares against. TF32 is left at PyTorch's defaults (off for
matmul); the script records those flags.

    python3 bench/sdpa_peer.py --sizes 256,512,1024,2048,4096,8192 --out DIR
"""

import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024,2048,4096,8192")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print("sdpa_peer: no CUDA device", file=sys.stderr)
        sys.exit(1)
    dev = torch.device("cuda")
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # older PyTorch
        SDPBackend = None

    def run(n, backend):
        torch.manual_seed(n)
        q = torch.randn(1, args.heads, n, args.head_dim, device=dev, dtype=torch.float32)
        k = torch.randn_like(q)
        v = torch.randn_like(q)

        def call():
            if backend is None or SDPBackend is None:
                return F.scaled_dot_product_attention(q, k, v)
            with sdpa_kernel([getattr(SDPBackend, backend)]):
                return F.scaled_dot_product_attention(q, k, v)

        try:
            out = call()  # warm-up
            torch.cuda.synchronize()
        except RuntimeError as e:
            return {"error": str(e).splitlines()[0]}
        times = []
        for _ in range(args.reps):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            call()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        times.sort()
        # Agreement with the math definition in float64 on a few rows, as a sanity check.
        rows = slice(0, min(n, 64))
        s = (q[0, :, rows].double() @ k[0].double().transpose(-1, -2)) / args.head_dim**0.5
        ref = torch.softmax(s, dim=-1) @ v[0].double()
        err = (out[0, :, rows].double() - ref).abs().max().item()
        flops = 4.0 * n * n * args.head_dim * args.heads
        best = times[0]
        return {
            "best_ms": best,
            "median_ms": times[len(times) // 2],
            "gflops": flops / (best * 1e-3) / 1e9,
            "max_abs_diff_vs_fp64": err,
        }

    results = []
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [None, "EFFICIENT_ATTENTION", "MATH"]
    print(f"{'backend':<22} {'N':>6} {'best ms':>10} {'median ms':>10} {'GFLOP/s':>10} {'max|diff|':>10}")
    for n in sizes:
        for backend in backends:
            r = run(n, backend)
            r.update({"n": n, "backend": backend or "default", "heads": args.heads, "head_dim": args.head_dim})
            results.append(r)
            if "error" in r:
                print(f"{r['backend']:<22} {n:>6} error: {r['error']}")
            else:
                print(
                    f"{r['backend']:<22} {n:>6} {r['best_ms']:>10.3f} {r['median_ms']:>10.3f} "
                    f"{r['gflops']:>10.1f} {r['max_abs_diff_vs_fp64']:>10.1e}"
                )
            torch.cuda.empty_cache()

    report = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "dtype": "float32",
        "causal": False,
        "flops_per_run": "4 N^2 d heads",
        "results": results,
    }
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "sdpa-peer.json"), "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.out}/sdpa-peer.json")


if __name__ == "__main__":
    main()
