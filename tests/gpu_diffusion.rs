//! GPU == CPU for the diffusion kernels (crate/src/gpu/{mlp,sampler}.wgsl) against their
//! twins in `mlplay::diffusion` on a real wgpu device (lavapipe in CI), over hidden widths,
//! batch sizes and particle counts that are and are not multiples of the workgroup (64) and
//! of the gradient chunk (32). Runs with `cargo test --features gpu` (as `./build.sh test`).
//!
//! Tolerances. Both sides compute in f32; the trainer's forward pass even adds in the twin's
//! order (four running sums, see mlp.wgsl `dot4`), the sampler in plain order (16 particles
//! per workgroup). What may differ, with u = 2^-24 the unit roundoff:
//! - the summation order (sampler): a dot product of k terms errs by at most (k - 1) u
//!   sum_i |w_i a_i| on either side, whatever the order;
//! - exp: WGSL allows 3 + 2|x| ulp, the twin rounds an f64 exp; a GPU may also contract a*b + c
//!   into one fused multiply-add. Each activation then carries a relative error of a few u,
//!   and a dot product of k terms passes on at most k u sum_i |w_i a_i| of it.
//! - the batch reduction: the GPU sums the gradient in chunks of 32 samples, then the chunks;
//!   the twin sums the B samples in order. Recursive summation of n terms errs by at most
//!   (n - 1) u sum |terms| (Higham, Accuracy and Stability, (4.4)), on either side.
//!
//! So every comparison is scaled by the absolute size of what was summed: a `magnitude`
//! computed here in f64 (the network with |W|, |b| and |inputs|, and the per-sample gradient
//! terms in absolute value), times (terms + a margin for exp and the activations) u.

#![cfg(feature = "gpu")]

mod common;

use common::ctx;
use std::sync::OnceLock;

use mlplay::diffusion::mlp::{self, input_rows, Adam, Mlp};
use mlplay::diffusion::noise::{normals, INITIAL_STEP};
use mlplay::diffusion::sample::{eval_net, Plan, Run, Sampler};
use mlplay::diffusion::schedule::{Schedule, ScheduleKind};
use mlplay::gpu::mlp::{param_count, GpuTrainer, MlpKernels};
use mlplay::gpu::sampler::{stages_from_plan, GpuSampler, SamplerKernels};
use mlplay::gpu::{block_on, read_f32};
use mlplay::rng::Rng;
use ndarray::{Array2, ArrayView2};

/// Unit roundoff of f32.
const U: f64 = 1.0 / 16_777_216.0;

fn mlp_kernels() -> &'static MlpKernels {
    static K: OnceLock<MlpKernels> = OnceLock::new();
    K.get_or_init(|| MlpKernels::new(ctx()).unwrap())
}

fn sampler_kernels() -> &'static SamplerKernels {
    static K: OnceLock<SamplerKernels> = OnceLock::new();
    K.get_or_init(|| SamplerKernels::new(ctx()).unwrap())
}

/// A batch of `b` rows: points in [-3, 3]^2, times in [0, 1], targets N(0, 1).
fn batch(b: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = Rng::new(seed);
    let points = Array2::from_shape_fn((b, 2), |_| rng.uniform_range(-3.0, 3.0) as f32);
    let s: Vec<f32> = (0..b).map(|_| rng.uniform() as f32).collect();
    let y = Array2::from_shape_fn((b, 2), |_| rng.normal() as f32);
    (input_rows(points.view(), &s), y)
}

/// The network in f64 with |W|, |b|, |inputs| and |SiLU| <= |z|: for every output, an upper
/// bound on sum |w a| at the last layer (and on every hidden activation's scale).
fn magnitude(net: &Mlp, x: ArrayView2<'_, f32>) -> Array2<f64> {
    let s = mlp::sizes(net.hidden);
    let mut h = x.mapv(|v| f64::from(v).abs());
    for l in 0..4 {
        let (ni, no) = (s[l], s[l + 1]);
        let (wo, bo) = net.offsets(l);
        let w = Array2::from_shape_fn((no, ni), |(o, i)| {
            f64::from(net.params[wo + o * ni + i].abs())
        });
        let b = ndarray::Array1::from_shape_fn(no, |o| f64::from(net.params[bo + o].abs()));
        h = h.dot(&w.t()) + &b;
    }
    h
}

fn grid() -> Vec<(usize, usize)> {
    // (H, B): widths below, at and between multiples of 4 and 64; batches 1, below and above
    // a chunk (32) and a workgroup (64).
    vec![
        (8, 1),
        (8, 37),
        (13, 64),
        (32, 65),
        (64, 100),
        (100, 33),
        (128, 130),
    ]
}

#[test]
fn forward_equals_the_cpu_twin() {
    let ctx = ctx();
    let mut worst = 0.0f64;
    let mut max_diff = 0.0f64;
    for (case, (h, b)) in grid().into_iter().enumerate() {
        let net = Mlp::init(h, 10 + case as u64);
        let (x, _) = batch(b, 100 + case as u64);
        let trainer = GpuTrainer::new(ctx, mlp_kernels(), h, b, &net.params, 1e-3).unwrap();
        let gpu = block_on(trainer.forward(ctx, x.view())).unwrap();
        let cpu = net.forward(x.view());
        let m = magnitude(&net, x.view());
        for ((g, c), m) in gpu.iter().zip(&cpu).zip(&m) {
            // 4 layers of at most max(18, H) + 1 terms, plus 16 u per layer for exp and SiLU.
            let tol = 4.0 * ((18.max(h) + 1) as f64 + 16.0) * U * m;
            let e = f64::from((g - c).abs());
            worst = worst.max(e / tol);
            max_diff = max_diff.max(e);
            assert!(
                e <= tol,
                "H={h} B={b}: gpu {g} cpu {c}, |diff| {e:.2e} > {tol:.2e}"
            );
        }
    }
    println!("forward: worst |diff| / tolerance = {worst:.3}, max |diff| {max_diff:.2e}");
}

/// Sum over the batch of |per-sample gradient term| / B: the scale of the batch sum.
fn gradient_magnitude(net: &Mlp, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Vec<f64> {
    let b = x.nrows();
    let mut acc = vec![0.0f64; net.params.len()];
    for r in 0..b {
        let (_, g) = net.loss_and_grad(
            x.slice(ndarray::s![r..r + 1, ..]),
            y.slice(ndarray::s![r..r + 1, ..]),
        );
        for (a, g) in acc.iter_mut().zip(&g) {
            *a += f64::from(g.abs()) / b as f64;
        }
    }
    acc
}

/// Per-parameter bound on |g_gpu - g_cpu|: both sides sum B terms (<= (B - 1) u sum|terms|
/// each); each term is a product of a delta that went back through <= 3 layers of H-term sums
/// and an activation that came forward through <= 3 (<= 6 (H + 16) u relative); doubled for
/// the two sides.
fn gradient_tolerance(h: usize, b: usize, scale: &[f64]) -> Vec<f64> {
    let terms = (b as f64 - 1.0).max(1.0) + 6.0 * (h as f64 + 16.0);
    scale.iter().map(|s| 2.0 * terms * U * s + 1e-12).collect()
}

#[test]
fn gradient_and_loss_equal_the_cpu_twin() {
    let ctx = ctx();
    let mut worst = 0.0f64;
    for (case, (h, b)) in grid().into_iter().enumerate() {
        let net = Mlp::init(h, 20 + case as u64);
        let (x, y) = batch(b, 200 + case as u64);
        let trainer = GpuTrainer::new(ctx, mlp_kernels(), h, b, &net.params, 1e-3).unwrap();
        let gpu = block_on(trainer.gradient(ctx, x.view(), y.view())).unwrap();
        let gpu_loss = block_on(trainer.loss(ctx)).unwrap();
        let (cpu_loss, cpu) = net.loss_and_grad(x.view(), y.view());
        assert_eq!(gpu.len(), param_count(h));
        let tol = gradient_tolerance(h, b, &gradient_magnitude(&net, x.view(), y.view()));
        let gmax = cpu.iter().fold(0f32, |m, g| m.max(g.abs()));
        assert!(
            gmax > 1e-3,
            "a trivially zero gradient tests nothing ({gmax})"
        );
        for (p, ((g, c), t)) in gpu.iter().zip(&cpu).zip(&tol).enumerate() {
            let e = f64::from((g - c).abs());
            worst = worst.max(e / t);
            assert!(
                e <= *t,
                "H={h} B={b} parameter {p}: gpu {g} cpu {c}, |diff| {e:.2e} > {t:.2e}"
            );
        }
        // The loss: 2B nonnegative squares summed (relative (2B + outputs' error) u each side).
        let tol_loss = 2.0 * (2.0 * b as f64 + 64.0 * (h as f64 + 16.0)) * U * f64::from(cpu_loss);
        let e = f64::from((gpu_loss - cpu_loss).abs());
        assert!(
            e <= tol_loss,
            "H={h} B={b}: loss gpu {gpu_loss} cpu {cpu_loss}"
        );
    }
    println!("gradient: worst |diff| / tolerance = {worst:.3}");
}

#[test]
fn one_adam_step_equals_the_cpu_twin_and_training_lowers_the_loss() {
    let ctx = ctx();
    let lr = 1e-2f32;
    for (case, (h, b)) in [(8, 37), (64, 100), (128, 65)].into_iter().enumerate() {
        let net = Mlp::init(h, 30 + case as u64);
        let (x, y) = batch(b, 300 + case as u64);
        let mut trainer = GpuTrainer::new(ctx, mlp_kernels(), h, b, &net.params, lr).unwrap();
        trainer.step(ctx, x.view(), y.view()).unwrap();
        let gpu = block_on(trainer.params(ctx)).unwrap();
        let (_, g) = net.loss_and_grad(x.view(), y.view());
        let mut cpu = net.params.clone();
        let mut adam = Adam::new(cpu.len(), lr);
        adam.step(&mut cpu, &g);
        // Step 1 moves theta by lr g / (|g| + eps) (m / (1 - b1) = g, v / (1 - b2) = g^2):
        // a gradient error dg moves it by at most lr dg eps / (|g| - dg + eps)^2 (the slope of
        // g / (|g| + eps) is eps / (|g| + eps)^2), never by more than 2 lr; plus the rounding
        // of m, v, the quotient and the subtraction (8 u (|theta| + lr)).
        let tol_g = gradient_tolerance(h, b, &gradient_magnitude(&net, x.view(), y.view()));
        let eps = 1e-8f64;
        for (p, ((a, c), dg)) in gpu.iter().zip(&cpu).zip(&tol_g).enumerate() {
            let gp = f64::from(g[p].abs());
            let slope = eps / ((gp - dg).max(0.0) + eps).powi(2);
            let tol = (f64::from(lr) * dg * slope).min(2.0 * f64::from(lr))
                + 8.0 * U * (f64::from(net.params[p].abs()) + f64::from(lr));
            let e = f64::from((a - c).abs());
            assert!(
                e <= tol,
                "H={h} B={b} parameter {p}: gpu {a} cpu {c} (g {}), |diff| {e:.2e} > {tol:.2e}",
                g[p]
            );
        }
        assert!(
            gpu.iter().zip(&net.params).any(|(a, b)| a != b),
            "the step moved nothing"
        );
        // Twenty more steps on the same batch must lower its loss (Adam on a fixed batch).
        let first = block_on(trainer.loss(ctx)).unwrap();
        for _ in 0..20 {
            trainer.step(ctx, x.view(), y.view()).unwrap();
        }
        let last = block_on(trainer.loss(ctx)).unwrap();
        assert!(
            last < 0.9 * first,
            "H={h}: loss {first} -> {last} after 20 steps"
        );
        // Reading the parameters back and restarting from them is the same network.
        let now = block_on(trainer.params(ctx)).unwrap();
        trainer.set_params(ctx, &net.params).unwrap();
        assert_eq!(block_on(trainer.params(ctx)).unwrap(), net.params);
        assert_eq!(trainer.steps, 0);
        assert_ne!(now, net.params);
    }
}

#[test]
fn a_wrong_batch_or_width_is_an_error_not_a_panic() {
    let ctx = ctx();
    let net = Mlp::init(8, 1);
    assert!(GpuTrainer::new(ctx, mlp_kernels(), 8, 4, &net.params[1..], 1e-3).is_err());
    assert!(GpuTrainer::new(
        ctx,
        mlp_kernels(),
        129,
        4,
        &vec![0.0; param_count(129)],
        1e-3
    )
    .is_err());
    let mut t = GpuTrainer::new(ctx, mlp_kernels(), 8, 4, &net.params, 1e-3).unwrap();
    let (x, y) = batch(5, 1);
    assert!(t.step(ctx, x.view(), y.view()).is_err());
    assert!(GpuSampler::new(
        ctx,
        sampler_kernels(),
        &net.params,
        9,
        10,
        1,
        INITIAL_STEP,
        &[],
        0
    )
    .is_err());
}

/// |z_gpu - z_cpu| <= 2e-6 max(r, 1), r = |z|: the CPU rounds an f64 Box-Muller to f32; the
/// GPU's 2 pi u2 carries <= 2 u relative (the f32 product and the f32 constant), so its angle
/// is off by <= 4 pi u = 7.5e-7 rad, the reduction and series add <= 2 u, ln and sqrt <= 4 u
/// relative to r: r (7.5e-7 + 6 u) + u |z| <= 1.2e-6 max(r, 1).
#[test]
fn gpu_noise_equals_the_cpu_noise() {
    let ctx = ctx();
    let net = Mlp::init(8, 1);
    let mut worst = 0.0f64;
    for (n, seed, step) in [
        (1, 0, INITIAL_STEP),
        (63, 7, 0),
        (4097, 12345, 3),
        (1000, 0xFFFF_FFFF, 999),
    ] {
        let s = GpuSampler::new(
            ctx,
            sampler_kernels(),
            &net.params,
            8,
            n,
            seed,
            step,
            &[],
            0,
        )
        .unwrap();
        s.run(ctx).unwrap();
        let gpu = block_on(s.positions(ctx)).unwrap();
        let cpu = normals(seed, step, n);
        for i in 0..n {
            let r = f64::from(cpu[2 * i].hypot(cpu[2 * i + 1]));
            for c in 0..2 {
                let e = f64::from((gpu[2 * i + c] - cpu[2 * i + c]).abs());
                let tol = 1.2e-6 * r.max(1.0);
                worst = worst.max(e / tol);
                assert!(
                    e <= tol,
                    "seed {seed} step {step} particle {i}.{c}: gpu {} cpu {}",
                    gpu[2 * i + c],
                    cpu[2 * i + c]
                );
            }
        }
    }
    println!("noise: worst |diff| / tolerance = {worst:.3}");
}

/// The forward pass's error bound at the points `x` ((n, 2) row-major) and time s: 4 layers of
/// at most max(18, H) + 1 terms plus 16 u per layer for exp and SiLU, times `magnitude`.
fn forward_bounds(net: &Mlp, x: &[f32], s: f32) -> Vec<f64> {
    let n = x.len() / 2;
    let points = Array2::from_shape_vec((n, 2), x.to_vec()).unwrap();
    let rows = input_rows(points.view(), &vec![s; n]);
    let k = (18.max(net.hidden) + 1) as f64 + 16.0;
    magnitude(net, rows.view())
        .iter()
        .map(|m| 4.0 * k * U * m)
        .collect()
}

/// A Lipschitz bound of the network in its point input x (the embedding held fixed):
/// ||W_0[:, 0..2]||_F ||W_1||_F ||W_2||_F ||W_3||_F 1.1^3 (||W||_2 <= ||W||_F, |SiLU'| <= 1.1).
fn lipschitz(net: &Mlp) -> f64 {
    let s = mlp::sizes(net.hidden);
    let mut l = 1.1f64.powi(3);
    for layer in 0..4 {
        let (wo, _) = net.offsets(layer);
        let cols = if layer == 0 { 2 } else { s[layer] };
        let mut f = 0.0;
        for o in 0..s[layer + 1] {
            for i in 0..cols {
                f += f64::from(net.params[wo + o * s[layer] + i]).powi(2);
            }
        }
        l *= f.sqrt();
    }
    l
}

/// Every sampler of the widgets, a few steps each.
fn plans() -> Vec<(&'static str, Plan)> {
    let linear = Schedule::new(ScheduleKind::Linear, 1000);
    let cosine = Schedule::new(ScheduleKind::Cosine, 100);
    vec![
        (
            "ddpm beta",
            Plan::diffusion(Sampler::Ddpm { tilde: false }, &linear, 4).unwrap(),
        ),
        (
            "ddpm beta-tilde",
            Plan::diffusion(Sampler::Ddpm { tilde: true }, &cosine, 3).unwrap(),
        ),
        (
            "ddim eta 0",
            Plan::diffusion(Sampler::Ddim { eta: 0.0 }, &linear, 5).unwrap(),
        ),
        (
            "ddim eta 0.7",
            Plan::diffusion(Sampler::Ddim { eta: 0.7 }, &cosine, 4).unwrap(),
        ),
        ("euler", Plan::flow(Sampler::Euler, 4).unwrap()),
        ("midpoint", Plan::flow(Sampler::Midpoint, 3).unwrap()),
    ]
}

#[test]
fn gpu_sampler_equals_the_cpu_sampler_for_the_same_noise() {
    let ctx = ctx();
    let (mut worst_row, mut worst_end) = (0.0f64, 0.0f64);
    let sizes = [(8, 1), (16, 4097), (30, 65), (64, 130), (128, 63), (64, 64)];
    for (case, ((name, plan), (h, n))) in plans().into_iter().zip(sizes).enumerate() {
        let net = Mlp::init(h, 40 + case as u64);
        let seed = 77 + case as u32;
        let stages = stages_from_plan(&plan);
        // Record every particle after the draw and after every row.
        let s = GpuSampler::new(
            ctx,
            sampler_kernels(),
            &net.params,
            h,
            n,
            seed,
            INITIAL_STEP,
            &stages,
            n,
        )
        .unwrap();
        s.run(ctx).unwrap();
        let gpu = block_on(s.positions(ctx)).unwrap();
        let traj = block_on(s.trajectories(ctx)).unwrap();
        assert_eq!(s.traj_rows, 1 + plan.len(), "the draw and every row");
        let at = |r: usize| &traj[2 * n * r..2 * n * (r + 1)];
        let draw = normals(seed, INITIAL_STEP, n);
        for (j, (g, c)) in at(0).iter().zip(&draw).enumerate() {
            let tol = 1.2e-6 * f64::from(draw[j & !1].hypot(draw[j | 1]).max(1.0));
            assert!(
                f64::from((g - c).abs()) <= tol,
                "{name}: the draw, coordinate {j}: gpu {g} cpu {c}"
            );
        }
        assert!(
            at(plan.len()) == &gpu[..],
            "{name}: the last row recorded is the result"
        );

        // 1. Row by row: the CPU's update applied to the GPU's own positions before the row
        // must give the GPU's positions after it. Each row adds |b| and |d| times the forward
        // error at the points evaluated, |c| times the noise error (1.2e-6 max(|z|, 1)), and
        // the rounding of the four-term update (4 u times the sum of its terms' sizes).
        let mut row_bound = vec![0f64; plan.len()];
        for r in 0..plan.len() {
            let [a, b, c, d] = plan.rows[r];
            let (x, next) = (at(r), at(r + 1));
            let out = eval_net(&net, x, plan.s[r]);
            let out_err = forward_bounds(&net, x, plan.s[r]);
            let (prev, prev_err) = if r == 0 {
                (vec![0f32; 2 * n], vec![0f64; 2 * n])
            } else {
                (
                    eval_net(&net, at(r - 1), plan.s[r - 1]),
                    forward_bounds(&net, at(r - 1), plan.s[r - 1]),
                )
            };
            let z = stages[r].noise_step.map(|k| normals(seed, k, n));
            for j in 0..2 * n {
                let zj = z.as_ref().map_or(0.0, |z| z[j]);
                let want = a * x[j] + b * out[j] + c * zj + d * prev[j];
                let terms =
                    (a * x[j]).abs() + (b * out[j]).abs() + (c * zj).abs() + (d * prev[j]).abs();
                let zi = z
                    .as_ref()
                    .map_or(1.0f32, |z| z[j & !1].hypot(z[j | 1]).max(1.0));
                let tol = f64::from(b.abs()) * out_err[2 * (j / 2)].max(out_err[2 * (j / 2) + 1])
                    + f64::from(d.abs()) * prev_err[2 * (j / 2)].max(prev_err[2 * (j / 2) + 1])
                    + f64::from(c.abs()) * 1.2e-6 * f64::from(zi)
                    + 4.0 * U * f64::from(terms);
                let e = f64::from((next[j] - want).abs());
                row_bound[r] = row_bound[r].max(tol);
                worst_row = worst_row.max(e / tol);
                assert!(e <= tol, "{name} H={h} n={n} row {r} coordinate {j}: gpu {} cpu {want}, |diff| {e:.2e} > {tol:.2e}", next[j]);
            }
        }

        // 2. End to end against sample::Run: the row errors carried through the rows, an error
        // e in x moving a x + b net(x) + d prev by at most (|a| + |b| L) e + |d| L e_prev
        // (L: `lipschitz`).
        let mut run = Run::new(plan.clone(), seed, n);
        let cpu = run.finish(&net).to_vec();
        let l = lipschitz(&net);
        let (mut e_prev, mut e) = (0.0f64, 0.0f64);
        for (r, row) in plan.rows.iter().enumerate() {
            let [a, b, _, d] = row.map(f64::from);
            let next = (a.abs() + b.abs() * l) * e + d.abs() * l * e_prev + row_bound[r];
            e_prev = e;
            e = next;
        }
        let diff = gpu
            .iter()
            .zip(&cpu)
            .fold(0f64, |m, (g, c)| m.max(f64::from((g - c).abs())));
        worst_end = worst_end.max(diff / e);
        println!("{name} H={h} n={n}: end to end max |diff| {diff:.2e}, bound {e:.2e}; row bound up to {:.2e}", row_bound.iter().fold(0f64, |m, &b| m.max(b)));
        assert!(
            diff <= e,
            "{name} H={h} n={n}: GPU and CPU samplers differ by {diff:.2e} > {e:.2e}"
        );

        // Running row by row (an animation) gives the same bits as all at once.
        s.run_stages(ctx, true, 0..1).unwrap();
        s.run_stages(ctx, false, 1..stages.len()).unwrap();
        assert_eq!(block_on(s.positions(ctx)).unwrap(), gpu);

        // Snapshots (what the widgets read back once): the particles after the draw and after
        // every other row, then the paths, in one buffer; the same kernels on the same inputs,
        // so the same bits as the rows recorded above.
        let rows: Vec<usize> = (0..plan.len()).step_by(2).collect();
        let snaps = s.run_snapshots(ctx, &rows).unwrap();
        let floats = s.snapshot_floats(rows.len());
        assert_eq!(floats, 2 * n * (1 + rows.len()) + traj.len());
        let got = block_on(read_f32(ctx, &snaps, floats)).unwrap();
        assert!(&got[..2 * n] == at(0), "{name}: the draw");
        for (j, &r) in rows.iter().enumerate() {
            assert!(
                &got[2 * n * (1 + j)..2 * n * (2 + j)] == at(r + 1),
                "{name}: the snapshot after row {r}"
            );
        }
        assert!(
            got[2 * n * (1 + rows.len())..] == traj[..],
            "{name}: the paths"
        );
    }
    println!("sampler: worst |diff| / bound row by row {worst_row:.3}, end to end {worst_end:.3}");
}

/// `GpuRun` is `Trainer`'s run with the steps on the GPU: the same batches and learning rates
/// as `GpuTrainer` driven by hand from a twin `Trainer` (bit for bit: the same kernels on the
/// same inputs), the bookkeeping carried over, Adam's state resumable both ways, and it learns
/// (the loss on two moons falls).
#[test]
fn a_gpu_run_takes_the_trainers_steps_and_learns() {
    use mlplay::diffusion::data::Dataset;
    use mlplay::diffusion::train::{TrainConfig, Trainer};
    use mlplay::gpu::mlp::GpuRun;
    let ctx = ctx();
    let config = TrainConfig {
        hidden: 32,
        batch: 100,
        steps: 60,
        seed: 3,
        ..TrainConfig::default()
    };
    let moons = Dataset::from_name("moons").unwrap();
    let mut run = GpuRun::new(
        ctx,
        mlp_kernels(),
        Trainer::new(config.clone(), moons.clone()),
    )
    .unwrap();
    // The same by hand.
    let mut twin = Trainer::new(config.clone(), moons.clone());
    let mut by_hand =
        GpuTrainer::new(ctx, mlp_kernels(), 32, 100, &twin.model.net.params, 0.0).unwrap();
    let mut losses = Vec::new();
    for _ in 0..config.steps {
        run.step(ctx).unwrap();
        losses.push(block_on(run.loss(ctx)).unwrap());
        by_hand.lr = twin.lr_now();
        let (x, y) = twin.draw_batch();
        by_hand.step(ctx, x.view(), y.view()).unwrap();
        twin.model.steps += 1;
    }
    block_on(run.sync(ctx)).unwrap();
    assert_eq!(
        run.cpu.model.net.params,
        block_on(by_hand.params(ctx)).unwrap()
    );
    assert_eq!((run.cpu.model.steps, run.cpu.adam.n), (60, 60));
    assert!(run.cpu.done());
    // Resuming on the CPU from the synced state (with a longer schedule: at its end the
    // cosine decay has brought the learning rate to 0) is one more Adam step of the twin's kind.
    let before = run.cpu.model.net.params.clone();
    run.cpu.config.steps = 120;
    run.cpu.step();
    assert_eq!(run.cpu.adam.n, 61);
    assert!(
        run.cpu.model.net.params != before,
        "the resumed CPU step moved nothing"
    );
    // Every step's loss logged on the device (what the widgets read back once per chunk of
    // steps) is the loss `loss()` reads after each step; the moment buffer holds m then v.
    let mut logged = GpuRun::new(ctx, mlp_kernels(), Trainer::new(config.clone(), moons)).unwrap();
    let log = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * 60,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    for j in 0..60 {
        logged.step(ctx).unwrap();
        logged.gpu.log_loss(ctx, &log, j).unwrap();
    }
    assert_eq!(block_on(read_f32(ctx, &log, 60)).unwrap(), losses);
    let p = logged.gpu.n_params;
    let mv = block_on(read_f32(ctx, logged.gpu.moments_buffer(), 2 * p)).unwrap();
    let (m, v) = block_on(logged.gpu.moments(ctx)).unwrap();
    assert!(mv[..p] == m[..] && mv[p..] == v[..]);
    // Learning: the mean loss of the last ten steps well below the first ten's.
    let first: f32 = losses[..10].iter().sum::<f32>() / 10.0;
    let last: f32 = losses[50..].iter().sum::<f32>() / 10.0;
    assert!(
        last < 0.8 * first,
        "loss {first} -> {last} over 60 GPU steps"
    );
}
