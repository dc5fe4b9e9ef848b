"""The PyTorch peer of bench/transformer_bench.rs: the same transformer, batch and optimiser.

The model of crate/src/transformer/model.rs (GPT-2's pre-norm block): token embedding plus
learned positions, per block h = LN_1(x); q, k, v = h W_q, h W_k, h W_v (no biases); causal
softmax(q k^T / sqrt(d_head)) per head; x += concat_h(A_h v_h) W_o; x += GELU_tanh(LN_2(x) W_1 +
b_1) W_2 + b_2; logits = LN_f(x) E^T (tied). Loss: mean cross-entropy over the scored positions
of the induction task (a random segment of random length repeated to fill the context; the
first period unscored). Adam (lr 3e-3, betas 0.9/0.99, eps 1e-8) after clip_grad_norm_(1.0),
as transformer::train::Trainer. Defaults: TrainConfig::default() (26 tokens, d_model 32, 2
layers, 2 heads, ctx 24, batch 16).

Eager PyTorch, float32, TF32 off: attention written out (matmul, mask, softmax, matmul) unless
`--sdpa` (F.scaled_dot_product_attention); `--fused-adam` uses Adam(fused=True) on CUDA. Eight
batches are drawn on the device before the clock starts and cycled; timed from the first step
to a synchronised read of the last loss. Prints one JSON object: tokens per second (B x ctx
positions per step).

    python3 bench/transformer_peer.py --device cpu --steps 50
"""

import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=24)
    ap.add_argument("--vocab", type=int, default=26)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--sdpa", action="store_true")
    ap.add_argument("--fused-adam", action="store_true")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("transformer_peer: no CUDA device", file=sys.stderr)
        sys.exit(1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1)

    V, D, L, H, T, B = args.vocab, args.d_model, args.layers, args.heads, args.ctx, args.batch
    dh = D // H
    F_ = 4 * D

    def normal(*shape, std=0.02):
        return (torch.randn(*shape, device=dev) * std).requires_grad_()

    resid = 0.02 / math.sqrt(2 * L)
    params = {"tok": normal(V, D), "pos": normal(T, D)}
    for l in range(L):
        params.update(
            {
                f"ln1_g{l}": torch.ones(D, device=dev, requires_grad=True),
                f"ln1_b{l}": torch.zeros(D, device=dev, requires_grad=True),
                f"wq{l}": normal(D, D),
                f"wk{l}": normal(D, D),
                f"wv{l}": normal(D, D),
                f"wo{l}": normal(D, D, std=resid),
                f"ln2_g{l}": torch.ones(D, device=dev, requires_grad=True),
                f"ln2_b{l}": torch.zeros(D, device=dev, requires_grad=True),
                f"w1{l}": normal(D, F_),
                f"b1{l}": torch.zeros(F_, device=dev, requires_grad=True),
                f"w2{l}": normal(F_, D, std=resid),
                f"b2{l}": torch.zeros(D, device=dev, requires_grad=True),
            }
        )
    params["lnf_g"] = torch.ones(D, device=dev, requires_grad=True)
    params["lnf_b"] = torch.zeros(D, device=dev, requires_grad=True)
    p = params
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=dev), diagonal=1)

    def forward(tokens):
        x = p["tok"][tokens] + p["pos"][:T]  # (B, T, D)
        for l in range(L):
            h = F.layer_norm(x, (D,), p[f"ln1_g{l}"], p[f"ln1_b{l}"], eps=1e-5)
            q = (h @ p[f"wq{l}"]).view(B, T, H, dh).transpose(1, 2)  # (B, H, T, dh)
            k = (h @ p[f"wk{l}"]).view(B, T, H, dh).transpose(1, 2)
            v = (h @ p[f"wv{l}"]).view(B, T, H, dh).transpose(1, 2)
            if args.sdpa:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
                a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
                o = a @ v
            x = x + o.transpose(1, 2).reshape(B, T, D) @ p[f"wo{l}"]
            h = F.layer_norm(x, (D,), p[f"ln2_g{l}"], p[f"ln2_b{l}"], eps=1e-5)
            x = x + F.gelu(h @ p[f"w1{l}"] + p[f"b1{l}"], approximate="tanh") @ p[f"w2{l}"] + p[f"b2{l}"]
        h = F.layer_norm(x, (D,), p["lnf_g"], p["lnf_b"], eps=1e-5)
        return h @ p["tok"].t()  # (B, T, V)

    def batch(gen):
        # The induction task: r of length n in [2, (T+1)//2] repeated; targets from position n on.
        toks = torch.empty(B, T + 1, dtype=torch.long)
        tgt = torch.full((B, T), -1, dtype=torch.long)
        for b in range(B):
            n = int(torch.randint(2, max((T + 1) // 2, 2) + 1, (1,), generator=gen))
            r = torch.randint(0, V, (n,), generator=gen)
            toks[b] = r.repeat((T + 1) // n + 1)[: T + 1]
            tgt[b, n:] = toks[b, n + 1 :]
        return toks[:, :T].to(dev), tgt.to(dev)

    gen = torch.Generator().manual_seed(2)
    data = [batch(gen) for _ in range(8)]
    kw = {"fused": True} if args.fused_adam and dev.type == "cuda" else {}
    opt = torch.optim.Adam(list(p.values()), lr=3e-3, betas=(0.9, 0.99), eps=1e-8, **kw)

    def step(i):
        tokens, targets = data[i % len(data)]
        logits = forward(tokens)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(5):  # warm-up
        step(i)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step(i)
    last = float(loss.item())
    sync()
    s = time.perf_counter() - t0
    n_params = sum(v.numel() for v in p.values())
    print(
        json.dumps(
            {
                "peer": "pytorch",
                "torch": torch.__version__,
                "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(),
                "threads": torch.get_num_threads(),
                "sdpa": args.sdpa,
                "fused_adam": bool(kw),
                "layers": L,
                "heads": H,
                "d_model": D,
                "ctx": T,
                "vocab": V,
                "batch": B,
                "params": n_params,
                "steps": args.steps,
                "tokens_per_s": args.steps * B * T / s,
                "last_loss": last,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
