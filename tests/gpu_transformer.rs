//! GPU == CPU for the transformer's training kernels (crate/src/gpu/transformer.wgsl) against
//! their f64 twin `mlplay::transformer::model::Model` on a real wgpu device (lavapipe in CI):
//! learned, sinusoidal and rotary positions, tied and untied output, one to three layers, one
//! to four heads, d_model and ctx that are not multiples of the 16-wide GEMM tile, and
//! sequences shorter than ctx (the padding path). Runs with `cargo test --features gpu`.
//!
//! Tolerances. The CPU runs in f64 on the GPU's own parameters (rounded to f32 first), so
//! what differs is f32 rounding on the GPU (the f64 side is exact by comparison: 2^-53 vs
//! 2^-24). With u = 2^-24 the unit roundoff of f32 (Higham, Accuracy and Stability, ch. 3):
//! - a dot product or a sum of k terms computed in f32 in any order errs by at most
//!   gamma_k sum_i |a_i b_i| ~ k u sum_i |a_i b_i|, componentwise; in a GEMM
//!   |C_hat - C| <= k u |A||B| (Higham (3.13));
//! - every other kernel (layer norm's mean and variance, softmax, GELU's exp and tanh,
//!   RoPE's rotation, Adam's update) is a short sum or a few operations per element, and
//!   WGSL allows exp a few ulp: each is bounded by the same k u relative for k >= 16.
//!
//! An error made at one stage reaches the result through every later stage; to first order
//! the relative errors add. With S the number of sequential rounding stages between the
//! parameters and a compared quantity and K the longest sum any stage takes, the GPU's error
//! is at most S K u relative to the magnitude of that quantity computed with absolute values
//! (|A||B| for its last product). Forward, per block: layer norm, the q/k/v GEMM, RoPE, the
//! scores, the softmax, A v, W_o, layer norm, W_1, GELU, W_2: 11 stages; plus the embedding,
//! the final layer norm and the output GEMM: S_f = 11 L + 3. Backward adds, per block, the
//! b_2 and W_2 sums, du, GELU', b_1/W_1, dh2, the layer norm backward, W_o, d_o, dA, dV,
//! softmax backward, dq/dk, RoPE backward, the q/k/v gradient, dh1, the layer norm backward:
//! at most 17 stages; plus the loss, the output products and the final layer norm: S = S_f +
//! 17 L + 4. K = max(d_ff, V, B ctx) (the weight gradients sum over all B ctx rows).
//!
//! The gradient comparison is normwise per parameter tensor (a GEMM's componentwise bound
//! summed in squares is at most the normwise one): ||g_gpu - g_cpu|| <= S K u ||G||, with G =
//! sum over the sequences of |per-sequence gradient| (the batch sum's absolute-value
//! magnitude, as tests/gpu_diffusion.rs), times 4 for the cancellations inside one sequence
//! (the softmax rows of dlogits sum to zero: |p - onehot| sums to 2 (1 - p_y) <= 2 per row,
//! counted twice, in dlogits and in the layer norm backward's mean subtraction).

#![cfg(feature = "gpu")]

mod common;

use common::ctx;
use std::sync::OnceLock;

use mlplay::gpu::block_on;
use mlplay::gpu::transformer::{GpuTransformer, TransformerKernels, DATA_SEED_XOR};
use mlplay::rng::Rng;
use mlplay::transformer::model::{Config, Layout, Model, Pos};
use mlplay::transformer::tasks::{Example, Task};
use mlplay::transformer::train::{TrainConfig, Trainer};

/// Unit roundoff of f32.
const U: f64 = 1.0 / 16_777_216.0;

fn kernels() -> &'static TransformerKernels {
    static K: OnceLock<TransformerKernels> = OnceLock::new();
    K.get_or_init(|| TransformerKernels::new(ctx()).unwrap())
}

/// The configurations: every position scheme, tied and untied, widths and contexts that are
/// not multiples of 16 (d_head 5, 9, 18, 12), sequences shorter than ctx (copy with an odd
/// ctx reads ctx - 1 tokens; brackets reads ctx - 1 or fewer).
fn cases() -> Vec<TrainConfig> {
    let base = TrainConfig::default();
    vec![
        // The widget's default: induction, rotary positions, tied, 2 layers x 2 heads.
        base.clone(),
        TrainConfig {
            task: Task::Copy,
            n_layers: 1,
            n_heads: 4,
            d_model: 20,
            ctx: 13,
            pos: Pos::Sinusoidal,
            tied: false,
            batch: 5,
            seed: 7,
            ..base.clone()
        },
        TrainConfig {
            task: Task::Text,
            n_layers: 3,
            n_heads: 2,
            d_model: 36,
            ctx: 19,
            pos: Pos::Rope,
            tied: true,
            batch: 3,
            seed: 11,
            ..base.clone()
        },
        TrainConfig {
            task: Task::Brackets,
            n_layers: 2,
            n_heads: 1,
            d_model: 12,
            ctx: 33,
            pos: Pos::Rope,
            tied: false,
            batch: 4,
            seed: 12,
            ..base.clone()
        },
        TrainConfig {
            task: Task::Reverse,
            n_layers: 1,
            n_heads: 2,
            d_model: 18,
            ctx: 17,
            pos: Pos::Learned,
            tied: false,
            batch: 2,
            seed: 13,
            ..base
        },
    ]
}

fn stages(c: &Config) -> (f64, f64) {
    let l = c.n_layers as f64;
    let sf = 11.0 * l + 3.0;
    (sf, sf + 17.0 * l + 4.0)
}

fn longest_sum(c: &Config, batch: usize) -> f64 {
    c.d_ff().max(c.vocab).max(batch * c.ctx).max(16) as f64
}

/// A GPU run and the CPU model on the same (f32-rounded) parameters.
fn pair(tc: &TrainConfig) -> (GpuTransformer, Model) {
    let ctx = ctx();
    let mut gpu = GpuTransformer::new(ctx, kernels(), tc.clone()).unwrap();
    let init = Model::init(tc.model_config(), tc.seed);
    let rounded: Vec<f64> = init.params.iter().map(|&x| f64::from(x as f32)).collect();
    // Nudge the layer-norm gains and biases off their initial 1 and 0, and W_q, W_k up to
    // std 0.2 (sharp attention, scores of a few units, instead of the near-uniform attention of
    // the initialisation that hides errors in the attention's backward pass), so that every
    // path is exercised with generic values.
    let mut p = rounded;
    let mut rng = Rng::new(tc.seed ^ 99);
    let lo = Layout::new(&tc.model_config());
    let d = tc.d_model;
    let mut nudge = |at: usize, n: usize, s: f64, p: &mut Vec<f64>| {
        for x in &mut p[at..at + n] {
            *x = f64::from((*x + s * rng.normal()) as f32);
        }
    };
    for l in &lo.layers {
        for at in [l.ln1_g, l.ln1_b, l.ln2_g, l.ln2_b, l.b_2] {
            nudge(at, d, 0.1, &mut p);
        }
        nudge(l.b_1, 4 * d, 0.1, &mut p);
        nudge(l.w_q, d * d, 0.2, &mut p);
        nudge(l.w_k, d * d, 0.2, &mut p);
    }
    nudge(lo.lnf_g, d, 0.1, &mut p);
    nudge(lo.lnf_b, d, 0.1, &mut p);
    gpu.set_params(ctx, &p).unwrap();
    let cpu = Model::from_params(tc.model_config(), p);
    (gpu, cpu)
}

fn batch(tc: &TrainConfig, seed: u64) -> Vec<Example> {
    let mut rng = Rng::new(seed);
    (0..tc.batch)
        .map(|_| tc.task.example(tc.ctx, &mut rng))
        .collect()
}

#[test]
fn forward_logits_equal_the_cpu_twin() {
    let ctx = ctx();
    for (case, tc) in cases().into_iter().enumerate() {
        let (gpu, cpu) = pair(&tc);
        let mc = tc.model_config();
        let data = batch(&tc, 100 + case as u64);
        let logits = block_on(gpu.forward(ctx, &data)).unwrap();
        let (sf, _) = stages(&mc);
        let k = longest_sum(&mc, tc.batch);
        let lo = Layout::new(&mc);
        let (d, v) = (mc.d_model, mc.vocab);
        // |W_out| as (D, V): E^T when tied.
        let w = |j: usize, o: usize| -> f64 {
            if mc.tied {
                cpu.params[lo.tok_emb + o * d + j].abs()
            } else {
                cpu.params[lo.w_out + j * v + o].abs()
            }
        };
        let mut worst = 0.0f64;
        for (s, e) in data.iter().enumerate() {
            let fw = cpu.forward(&e.tokens);
            for t in 0..e.tokens.len() {
                for o in 0..v {
                    let g = f64::from(logits[(s * mc.ctx + t) * v + o]);
                    let c = fw.logits[[t, o]];
                    // |hf||W_out| for this entry: the magnitude of its last product.
                    let mag: f64 = (0..d).map(|j| fw.hf[[t, j]].abs() * w(j, o)).sum();
                    let tol = sf * k * U * mag;
                    let err = (g - c).abs();
                    worst = worst.max(err / tol);
                    assert!(
                        err <= tol,
                        "case {case} ({:?} tied={}) seq {s} t {t} logit {o}: gpu {g} cpu {c}, |diff| {err:.2e} > {tol:.2e}",
                        tc.pos,
                        tc.tied
                    );
                }
            }
        }
        println!("case {case}: logits worst |diff| / tolerance = {worst:.4}");
    }
}

/// Named parameter tensors of a layout: (name, offset, length).
fn tensors(c: &Config) -> Vec<(String, usize, usize)> {
    let lo = Layout::new(c);
    let (v, d, f) = (c.vocab, c.d_model, c.d_ff());
    let mut out = vec![("tok_emb".to_string(), lo.tok_emb, v * d)];
    if c.pos == Pos::Learned {
        out.push(("pos_emb".into(), lo.pos_emb, c.ctx * d));
    }
    for (i, l) in lo.layers.iter().enumerate() {
        for (name, at, n) in [
            ("ln1_g", l.ln1_g, d),
            ("ln1_b", l.ln1_b, d),
            ("w_q", l.w_q, d * d),
            ("w_k", l.w_k, d * d),
            ("w_v", l.w_v, d * d),
            ("w_o", l.w_o, d * d),
            ("ln2_g", l.ln2_g, d),
            ("ln2_b", l.ln2_b, d),
            ("w_1", l.w_1, d * f),
            ("b_1", l.b_1, f),
            ("w_2", l.w_2, f * d),
            ("b_2", l.b_2, d),
        ] {
            out.push((format!("layer {i} {name}"), at, n));
        }
    }
    out.push(("lnf_g".into(), lo.lnf_g, d));
    out.push(("lnf_b".into(), lo.lnf_b, d));
    if !c.tied {
        out.push(("w_out".into(), lo.w_out, d * v));
    }
    assert_eq!(out.iter().map(|t| t.2).sum::<usize>(), lo.len);
    out
}

/// The CPU gradient of the batch's mean loss, the loss and accuracy, and G = sum over the
/// sequences of |that sequence's gradient|.
fn cpu_gradient(model: &Model, data: &[Example]) -> (Vec<f64>, f64, f64, Vec<f64>) {
    let mut grad = vec![0.0; model.n_params()];
    let (loss, acc) = Trainer::batch_gradient(model, data, &mut grad);
    let n = data
        .iter()
        .map(|e| e.targets.iter().flatten().count())
        .sum::<usize>()
        .max(1);
    let mut mag = vec![0.0; model.n_params()];
    for e in data {
        let mut g = vec![0.0; model.n_params()];
        let fw = model.forward(&e.tokens);
        model.backward(&fw, &e.targets, 1.0 / n as f64, &mut g);
        for (m, g) in mag.iter_mut().zip(&g) {
            *m += g.abs();
        }
    }
    (grad, loss, acc, mag)
}

fn norm(x: impl Iterator<Item = f64>) -> f64 {
    x.map(|v| v * v).sum::<f64>().sqrt()
}

/// Per tensor, the normwise bound of the header on ||g_gpu - g_cpu||.
fn gradient_bounds(tc: &TrainConfig, mag: &[f64]) -> Vec<(String, usize, usize, f64)> {
    let mc = tc.model_config();
    let (_, s) = stages(&mc);
    let k = longest_sum(&mc, tc.batch);
    tensors(&mc)
        .into_iter()
        .map(|(name, at, n)| {
            let tol = 4.0 * s * k * U * norm(mag[at..at + n].iter().copied());
            (name, at, n, tol)
        })
        .collect()
}

#[test]
fn the_full_gradient_loss_and_accuracy_equal_the_cpu_twin() {
    let ctx = ctx();
    for (case, tc) in cases().into_iter().enumerate() {
        let (gpu, cpu) = pair(&tc);
        let data = batch(&tc, 200 + case as u64);
        let (g, stats) = block_on(gpu.gradient(ctx, &data)).unwrap();
        let (cg, loss, acc, mag) = cpu_gradient(&cpu, &data);
        let mut worst = 0.0f64;
        for (name, at, n, tol) in gradient_bounds(&tc, &mag) {
            let err = norm((at..at + n).map(|p| f64::from(g[p]) - cg[p]));
            let size = norm(cg[at..at + n].iter().copied());
            worst = worst.max(err / tol);
            assert!(
                err <= tol,
                "case {case} ({:?} tied={}) {name}: ||gpu - cpu|| {err:.3e} > {tol:.3e} (||cpu|| {size:.3e})",
                tc.pos,
                tc.tied
            );
        }
        let gmax = cg.iter().fold(0f64, |m, g| m.max(g.abs()));
        assert!(
            gmax > 1e-4,
            "a trivially zero gradient tests nothing ({gmax})"
        );
        let (tol_loss, ties, n) = loss_bounds(&tc, &cpu, &data);
        check_loss_and_accuracy(
            &format!("case {case}"),
            (f64::from(stats[0]), f64::from(stats[1])),
            (loss, acc),
            (tol_loss, ties, n),
        );
        let k = longest_sum(&tc.model_config(), tc.batch);
        // The norm: ||g_gpu|| - ||g_cpu|| <= ||g_gpu - g_cpu|| <= the tensors' bounds combined.
        let tol_norm = norm(gradient_bounds(&tc, &mag).iter().map(|b| b.3)) + 2.0 * k * U;
        let cnorm = norm(cg.iter().copied());
        assert!(
            (f64::from(stats[2]) - cnorm).abs() <= tol_norm,
            "case {case}: gradient norm gpu {} cpu {cnorm}",
            stats[2]
        );
        println!("case {case}: gradient worst ||diff|| / tolerance = {worst:.4}");
    }
}

/// Bounds for the loss and the accuracy of `model` on `data`: each scored row's logits err
/// by at most S_f K u |hf||W_out| (the forward bound, its largest entry in the row), so its
/// loss term lse - z_y by twice that; the mean adds its own K u relative. The accuracy counts
/// argmax hits, which agree unless a row's two largest logits are within twice the logits'
/// error of each other (`ties` counts those rows). Returns (loss bound, ties, n scored).
fn loss_bounds(tc: &TrainConfig, model: &Model, data: &[Example]) -> (f64, usize, usize) {
    let mc = tc.model_config();
    let (sf, _) = stages(&mc);
    let k = longest_sum(&mc, tc.batch);
    let lo = Layout::new(&mc);
    let (d, v) = (mc.d_model, mc.vocab);
    let w = |j: usize, o: usize| -> f64 {
        if mc.tied {
            model.params[lo.tok_emb + o * d + j].abs()
        } else {
            model.params[lo.w_out + j * v + o].abs()
        }
    };
    let (mut sum, mut ties, mut n, mut loss) = (0.0, 0, 0, 0.0);
    for e in data {
        let fw = model.forward(&e.tokens);
        let (l, _, _) = Model::loss_sum(&fw, &e.targets);
        loss += l;
        for (t, y) in e.targets.iter().enumerate() {
            if y.is_none() {
                continue;
            }
            n += 1;
            let mag = (0..v)
                .map(|o| (0..d).map(|j| fw.hf[[t, j]].abs() * w(j, o)).sum::<f64>())
                .fold(0.0, f64::max);
            let tol = sf * k * U * mag;
            sum += 2.0 * tol;
            let mut row: Vec<f64> = fw.logits.row(t).to_vec();
            row.sort_by(|a, b| b.total_cmp(a));
            ties += usize::from(row[0] - row[1] <= 2.0 * tol);
        }
    }
    let n1 = n.max(1) as f64;
    (sum / n1 + k * U * loss / n1, ties, n)
}

fn check_loss_and_accuracy(
    what: &str,
    gpu: (f64, f64),
    cpu: (f64, f64),
    bounds: (f64, usize, usize),
) {
    let (tol_loss, ties, n) = bounds;
    assert!(
        (gpu.0 - cpu.0).abs() <= tol_loss,
        "{what}: loss gpu {} cpu {} (bound {tol_loss:.2e})",
        gpu.0,
        cpu.0
    );
    // Counts: the GPU's correct / n is one f32 division (u relative) away from the count.
    let dc = ((gpu.1 - cpu.1).abs() * n as f64 - 2.0 * U * n as f64).max(0.0);
    assert!(
        dc < ties as f64 + 0.5,
        "{what}: accuracy gpu {} cpu {} ({ties} near-ties in {n} rows)",
        gpu.1,
        cpu.1
    );
}

/// Adam's first step from zero moments is theta -= lr g_c / (|g_c| + eps) per coordinate
/// (m / (1 - b1) = g_c, sqrt(v / (1 - b2)) = |g_c|), g_c = coef g the clipped gradient,
/// coef = clip / (||g|| + 1e-6) when below 1. A gradient error dg_c moves it by at most
/// lr dg_c eps / ((|g_c| - dg_c)+ + eps)^2 (the slope of x / (|x| + eps) is
/// eps / (|x| + eps)^2), never by more than 2 lr; plus the rounding of m, v, the quotient and
/// the subtraction (8 u (|theta| + lr)). dg_c <= dg + |g| |dcoef| / coef, with dg each
/// tensor's normwise gradient bound (a bound on every one of its coordinates too) and the
/// coefficient's relative error that of the norm.
#[test]
fn one_adam_step_with_the_clip_equals_the_cpu_twin() {
    let ctx = ctx();
    for (case, mut tc) in cases().into_iter().enumerate() {
        // Case 1 with a small clip, so that both branches of the clip are exercised.
        if case == 1 {
            tc.clip = 1e-3;
        }
        let (mut gpu, cpu) = pair(&tc);
        let data = batch(&tc, 300 + case as u64);
        let pending = gpu.submit_step_on(ctx, &data).unwrap();
        let stats = block_on(pending.read(ctx)).unwrap();
        let after = block_on(gpu.params(ctx)).unwrap();
        let (mut g, _, _, mag) = cpu_gradient(&cpu, &data);
        let bounds = gradient_bounds(&tc, &mag);
        let gnorm = mlplay::nn::clip_grad_norm(&mut [&mut g[..]], tc.clip);
        let coef = (tc.clip / (gnorm + 1e-6)).min(1.0);
        let k = longest_sum(&tc.model_config(), tc.batch);
        let tol_norm = norm(bounds.iter().map(|b| b.3)) + 2.0 * k * U;
        assert!((stats.grad_norm - gnorm).abs() <= tol_norm);
        let rel_coef = if coef < 1.0 { tol_norm / gnorm } else { 0.0 };
        let mut theta = cpu.params.clone();
        let mut adam = mlplay::nn::Adam::new(theta.len());
        adam.beta2 = 0.99;
        adam.eps = 1e-8;
        adam.step(&mut [&mut theta[..]], &[&g[..]], tc.lr);
        let (eps, lr) = (1e-8, tc.lr);
        let mut moved = 0;
        for (name, at, n, dg) in bounds {
            for p in at..at + n {
                let gc = g[p].abs();
                let dgc = coef * dg + gc * rel_coef / coef.max(1e-30) * coef;
                let slope = eps / ((gc - dgc).max(0.0) + eps).powi(2);
                let tol = (lr * dgc * slope).min(2.0 * lr) + 8.0 * U * (cpu.params[p].abs() + lr);
                let err = (after[p] - theta[p]).abs();
                assert!(
                    err <= tol,
                    "case {case} {name} [{}]: gpu {} cpu {} (g {}), |diff| {err:.2e} > {tol:.2e}",
                    p - at,
                    after[p],
                    theta[p],
                    g[p]
                );
                moved += usize::from(after[p] != cpu.params[p]);
            }
        }
        assert!(
            moved > cpu.params.len() / 2,
            "the step moved {moved} parameters"
        );
    }
}

/// Ten GPU steps track ten CPU Trainer steps from the same seed (same initialisation, same
/// batches): the per-step loss, accuracy and gradient norm. The test draws the Trainer's
/// stream beside it (`Rng::new(seed ^ DATA_SEED_XOR)`, checked against the Trainer's own
/// loss) to compute each step's bounds on the CPU model before the step.
///
/// The runs part only through rounding. Adam moves a coordinate by about lr sign(g) whatever
/// |g|, so a coordinate whose gradient is within f32 noise of zero may move differently, by
/// at most 2 lr per step; such a coordinate has |g| <= its bound dg, so to first order it
/// changes the loss by at most dg 2 lr per step. To first order, then, each step adds at most
/// one step's bounds: after k steps the loss and the norm are within the sum of the k
/// one-step bounds (the loss bound of `loss_bounds`, the norm bound of the gradient test).
#[test]
fn ten_gpu_steps_track_ten_cpu_steps() {
    let ctx = ctx();
    for tc in [cases()[0].clone(), cases()[2].clone()] {
        let mut cpu = Trainer::new(tc.clone()).unwrap();
        let mut gpu = GpuTransformer::new(ctx, kernels(), tc.clone()).unwrap();
        let mut stream = Rng::new(tc.seed ^ DATA_SEED_XOR);
        let k = longest_sum(&tc.model_config(), tc.batch);
        let (mut tol_loss, mut tol_norm) = (0.0, 0.0);
        for step in 1..=10 {
            let data: Vec<Example> = (0..tc.batch)
                .map(|_| tc.task.example(tc.ctx, &mut stream))
                .collect();
            let (_, loss, _, mag) = cpu_gradient(&cpu.model, &data);
            let (tl, ties, n) = loss_bounds(&tc, &cpu.model, &data);
            tol_loss += tl;
            tol_norm += norm(gradient_bounds(&tc, &mag).iter().map(|b| b.3)) + 2.0 * k * U;
            let c = cpu.step().unwrap();
            assert_eq!(c.loss, loss, "the test's stream is the Trainer's");
            let g = gpu.step(ctx).unwrap();
            assert_eq!(g.step, step);
            println!(
                "{:?} step {step}: loss gpu {:.7} cpu {:.7} (|diff| {:.1e}, bound {tol_loss:.1e}); norm gpu {:.6} cpu {:.6} (bound {tol_norm:.1e})",
                tc.pos,
                g.loss,
                c.loss,
                (g.loss - c.loss).abs(),
                g.grad_norm,
                c.grad_norm
            );
            check_loss_and_accuracy(
                &format!("{:?} step {step}", tc.pos),
                (g.loss, g.accuracy),
                (c.loss, c.accuracy),
                (tol_loss, ties, n),
            );
            assert!(
                (g.grad_norm - c.grad_norm).abs() <= tol_norm,
                "{:?} step {step}: gradient norm gpu {} cpu {}",
                tc.pos,
                g.grad_norm,
                c.grad_norm
            );
        }
        // The GPU's parameters read back into a CPU model: within a few lr of the CPU run's.
        let m = block_on(gpu.model(ctx)).unwrap();
        let far = m
            .params
            .iter()
            .zip(&cpu.model.params)
            .filter(|(a, b)| (*a - *b).abs() > 2.0 * 10.0 * tc.lr)
            .count();
        assert_eq!(far, 0, "parameters more than 20 lr apart after 10 steps");
    }
}

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let dir = common::xdg_dir("mlplay-xdg-cli");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .expect("run mlplay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mlplay transformer --backend gpu` prints the CPU's JSON lines with the GPU's numbers: the
/// same steps, losses and accuracies to f32 rounding (the bounds are derived in the tests
/// above; a different batch or a missed update moves the loss by 1e-2 or more, 100 times the
/// 1e-4 allowed here), the adapter named in `backend`, and head scores from the parameters
/// read back.
#[test]
fn cli_backend_gpu_prints_the_cpu_lines() {
    let args = |b: &'static str| {
        vec![
            "transformer",
            "--task",
            "copy",
            "--layers",
            "1",
            "--heads",
            "2",
            "--d-model",
            "16",
            "--ctx",
            "12",
            "--batch",
            "4",
            "--pos",
            "rope",
            "--steps",
            "6",
            "--log-every",
            "2",
            "--seed",
            "5",
            "--backend",
            b,
            "--json",
        ]
    };
    let (code, gpu, err) = mlplay(&args("gpu"));
    if code != 0 && (err.contains("adapter") || err.contains("GPU")) {
        eprintln!("no GPU adapter here, skipped: {err}");
        return;
    }
    assert_eq!(code, 0, "{err}");
    let (code, cpu, err) = mlplay(&args("cpu"));
    assert_eq!(code, 0, "{err}");
    let parse = |s: &str| -> Vec<serde_json::Value> {
        s.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (g, c) = (parse(&gpu), parse(&cpu));
    assert_eq!(g.len(), 4, "{gpu}");
    assert_eq!(c.len(), 4);
    for (a, b) in g[..3].iter().zip(&c[..3]) {
        assert_eq!(a["step"], b["step"]);
        let (la, lb) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
        assert!((la - lb).abs() <= 1e-4 * lb, "loss gpu {la} cpu {lb}");
        let (aa, ab) = (
            a["accuracy"].as_f64().unwrap(),
            b["accuracy"].as_f64().unwrap(),
        );
        assert!((aa - ab).abs() <= 1e-6, "accuracy gpu {aa} cpu {ab}");
    }
    let (sg, sc) = (&g[3], &c[3]);
    assert!(sg["backend"].as_str().unwrap().starts_with("gpu: "), "{sg}");
    assert_eq!(sc["backend"], "cpu");
    assert_eq!(sg["n_params"], sc["n_params"]);
    for key in ["induction", "previous_token"] {
        let flat = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect()
        };
        for (a, b) in flat(&sg[key]).iter().zip(flat(&sc[key])) {
            assert!((a - b).abs() <= 1e-4, "{key}: gpu {a} cpu {b}");
        }
    }
}

/// Bad input to the GPU trainer is an `Err`, not a panic: a batch of the wrong size, a token
/// outside the vocabulary, a sequence longer than ctx, parameters of the wrong length.
#[test]
fn bad_input_is_an_error_not_a_panic() {
    let ctx = ctx();
    let tc = TrainConfig {
        batch: 2,
        ..TrainConfig::default()
    };
    let mut gpu = GpuTransformer::new(ctx, kernels(), tc.clone()).unwrap();
    let good = batch(&tc, 1);
    assert!(gpu.submit_step_on(ctx, &good[..1]).is_err());
    let mut bad = good.clone();
    bad[0].tokens[0] = tc.task.vocab();
    assert!(gpu.submit_step_on(ctx, &bad).is_err());
    let mut long = good.clone();
    long[1].tokens.push(0);
    long[1].targets.push(None);
    assert!(gpu.submit_step_on(ctx, &long).is_err());
    assert!(gpu.set_params(ctx, &[0.0; 3]).is_err());
    assert!(GpuTransformer::new(ctx, kernels(), TrainConfig { n_heads: 3, ..tc }).is_err());
    // And a good step still works after the refusals.
    let pending = gpu.submit_step_on(ctx, &good).unwrap();
    assert_eq!(pending.step, 1);
    assert!(block_on(pending.read(ctx)).unwrap().loss.is_finite());
}
