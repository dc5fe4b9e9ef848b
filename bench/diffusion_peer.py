"""The PyTorch peer of bench/diffusion_bench.rs: the same denoiser MLP, batch, Adam and sampler.

Network 18 -> H -> H -> H -> 2 with SiLU after each hidden layer (crate::diffusion::mlp), the
loss L = 1/(2B) sum (out - y)^2, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8). Training: `--train-steps`
steps on 8 pre-drawn batches of B rows cycled (drawn on the device before the clock starts,
as the wgpu benchmark does), timed from the first step to a synchronised read of the last
loss. Sampling: `--particles` particles through DDPM ancestral sampling (sigma^2 = beta) on
the linear schedule with T = 1000 respaced to `--sample-steps` steps, the table of
crate::diffusion::sample::Plan::diffusion: x <- a x + b eps(x, e(s)) + c z per step (one
network evaluation and fresh Gaussian noise per step, every row's embedding uploaded once),
timed to a synchronised read of the final positions. Eager PyTorch (each layer its own kernel launches), float32, TF32 off;
`--fused-adam` uses Adam(fused=True) on CUDA. Prints one JSON object per (H, particles).

    python3 bench/diffusion_peer.py --device cpu --hidden 64 --batch 256 --particles 10000
"""

import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hidden", default="64")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--particles", default="10000")
    ap.add_argument("--sample-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--fused-adam", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("diffusion_peer: no CUDA device", file=sys.stderr)
        sys.exit(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def embedding(s):
        # crate::diffusion::mlp::time_embedding (F0 = 1/4): sin, cos of 2 pi fract(s 2^k / 4).
        e = []
        for k in range(8):
            u = (s * 2.0**k * 0.25) % 1.0
            e.append(math.sin(2 * math.pi * u))
        for k in range(8):
            u = (s * 2.0**k * 0.25) % 1.0
            e.append(math.cos(2 * math.pi * u))
        return e

    def ddpm_table(k):
        # Plan::diffusion(Ddpm { tilde: false }, linear T = 1000, k): rows from tau_k down to tau_1.
        big_t = 1000
        betas = [1e-4 + (0.02 - 1e-4) * i / (big_t - 1) for i in range(big_t)]
        abar, acc = [1.0], 1.0
        for b in betas:
            acc *= 1.0 - b
            abar.append(acc)
        taus = [i * big_t // k for i in range(1, k + 1)]
        rows = []
        for j in reversed(range(k)):
            t, tp = taus[j], (taus[j - 1] if j > 0 else 0)
            beta = 1.0 - abar[t] / abar[tp]
            alpha = 1.0 - beta
            var = 0.0 if j == 0 else beta
            rows.append((1 / math.sqrt(alpha), -beta / (math.sqrt(1 - abar[t]) * math.sqrt(alpha)), math.sqrt(var), t / big_t))
        return rows

    def net(h):
        return torch.nn.Sequential(
            torch.nn.Linear(18, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, h),
            torch.nn.SiLU(),
            torch.nn.Linear(h, 2),
        ).to(dev)

    results = []
    g = torch.Generator(device=dev).manual_seed(2)
    for h in [int(v) for v in args.hidden.split(",")]:
        torch.manual_seed(1)
        model = net(h)
        n_params = sum(p.numel() for p in model.parameters())
        opt_kw = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}
        if args.fused_adam and dev.type == "cuda":
            opt_kw["fused"] = True
        opt = torch.optim.Adam(model.parameters(), **opt_kw)
        batches = []
        for _ in range(8):
            pts = torch.rand(args.batch, 2, device=dev, generator=g) * 4 - 2
            emb = torch.rand(args.batch, 16, device=dev, generator=g) * 2 - 1
            y = torch.randn(args.batch, 2, device=dev, generator=g)
            batches.append((torch.cat([pts, emb], 1), y))

        def train_step(i):
            x, y = batches[i % len(batches)]
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * ((model(x) - y) ** 2).sum(1).mean()
            loss.backward()
            opt.step()
            return loss

        for i in range(3):  # warm-up
            train_step(i)
        sync()
        t0 = time.perf_counter()
        for i in range(args.train_steps):
            loss = train_step(i)
        last = float(loss.item())
        train_s = time.perf_counter() - t0

        k_steps = args.sample_steps
        table = ddpm_table(k_steps)
        emb_rows = torch.tensor([embedding(s) for (_, _, _, s) in table], device=dev)
        for n in [int(v) for v in args.particles.split(",")]:

            @torch.no_grad()
            def sample():
                x = torch.randn(n, 2, device=dev, generator=g)
                for j, (a, b, c, _) in enumerate(table):
                    inp = torch.cat([x, emb_rows[j].expand(n, 16)], 1)
                    eps = model(inp)
                    x = a * x + b * eps
                    if c != 0.0:
                        x = x + c * torch.randn(n, 2, device=dev, generator=g)
                return x

            sample()  # warm-up
            sync()
            t0 = time.perf_counter()
            x = sample()
            x.cpu()
            sample_s = time.perf_counter() - t0
            r = {
                "framework": f"torch {torch.__version__}",
                "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                "threads": torch.get_num_threads(),
                "hidden": h,
                "batch": args.batch,
                "params": n_params,
                "particles": n,
                "sample_steps": k_steps,
                "train_steps_per_s": args.train_steps / train_s,
                "particle_steps_per_s": n * k_steps / sample_s,
                "last_loss": last,
                "fused_adam": bool(opt_kw.get("fused", False)),
            }
            print(json.dumps(r), flush=True)
            results.append(r)
    if args.out:
        import os

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, f"diffusion-torch-{dev.type}.json"), "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
