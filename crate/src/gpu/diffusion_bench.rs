//! Throughput of the diffusion kernels against their CPU twins in one run, for the native
//! benchmark (`bench/diffusion_bench.rs`) and the browser's (`benchDiffusion` in
//! `web/gpu.rs`): training steps per second of [`GpuTrainer`] and of
//! `Mlp::loss_and_grad` + `Adam::step`, and sampling throughput (particles x steps per
//! second) of [`GpuSampler`] and of `sample::Run` (DDPM with the linear schedule, T = 1000,
//! respaced to K steps). Every GPU figure is checked against its
//! twin in the same run (the sampler's positions and the parameters after the timed steps
//! are compared, the worst difference reported).
//!
//! Timing is by the host clock around work submitted back to back and one readback at the
//! end (what a widget sees: submission costs included), after a warm-up that compiles and
//! first-touches everything. Batches are drawn before the clock starts, on both sides.

use ndarray::Array2;

use super::mlp::{GpuTrainer, MlpKernels};
use super::sampler::{stages_from_plan, GpuSampler, SamplerKernels, Stage, INIT_NOISE_STEP};
use super::{now_ms, GpuContext};
use crate::diffusion::mlp::{input_rows, Adam, Mlp};
use crate::diffusion::sample::{Plan, Run, Sampler};
use crate::diffusion::schedule::{Schedule, ScheduleKind};
use crate::json::Json;
use crate::rng::Rng;

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    pub hidden: usize,
    pub batch: usize,
    /// Timed GPU training steps (the CPU twin runs `cpu_train_steps`).
    pub train_steps: usize,
    pub cpu_train_steps: usize,
    pub particles: usize,
    /// Sampler steps K (DDPM, one network evaluation and one noise draw per step).
    pub sample_steps: usize,
    /// Particles the CPU twin samples (its time is scaled to particles x steps per second).
    pub cpu_particles: usize,
}

/// `count` batches of (B x 18 inputs, B x 2 targets): points in [-2, 2]^2, times in [0, 1],
/// N(0, 1) targets (the kernels' cost does not depend on the values).
pub fn batches(batch: usize, count: usize, seed: u64) -> Vec<(Array2<f32>, Array2<f32>)> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let p = Array2::from_shape_fn((batch, 2), |_| rng.uniform_range(-2.0, 2.0) as f32);
            let s: Vec<f32> = (0..batch).map(|_| rng.uniform() as f32).collect();
            let y = Array2::from_shape_fn((batch, 2), |_| rng.normal() as f32);
            (input_rows(p.view(), &s), y)
        })
        .collect()
}

/// DDPM (sigma^2 = beta) on the linear schedule with T = 1000, respaced to `k` steps.
pub fn ddpm_plan(k: usize) -> Result<Plan, String> {
    let schedule = Schedule::new(ScheduleKind::Linear, 1000);
    Plan::diffusion(Sampler::Ddpm { tilde: false }, &schedule, k.clamp(1, 1000))
}

/// One measurement: JSON with the adapter, the configuration, the four rates and the checks.
/// `trainer(params, lr)` and `sampler(params, seed, stages)` build the GPU objects (the page
/// through its shared context, natively [`measure_with_kernels`]).
pub async fn measure(
    ctx: &GpuContext,
    cfg: BenchConfig,
    trainer: impl FnOnce(&[f32], f32) -> Result<GpuTrainer, String>,
    sampler: impl FnOnce(&[f32], u32, &[Stage]) -> Result<GpuSampler, String>,
) -> Result<Json, String> {
    let lr = 1e-3;
    let net = Mlp::init(cfg.hidden, 1);
    let data = batches(cfg.batch, 8, 2);

    // ---- training, GPU
    let mut trainer = trainer(&net.params, lr)?;
    trainer.step(ctx, data[0].0.view(), data[0].1.view())?;
    trainer.loss(ctx).await?;
    trainer.set_params(ctx, &net.params)?;
    trainer.params(ctx).await?;
    let t0 = now_ms();
    for i in 0..cfg.train_steps {
        let (x, y) = &data[i % data.len()];
        trainer.step(ctx, x.view(), y.view())?;
    }
    let gpu_loss = trainer.loss(ctx).await?;
    let gpu_train_ms = now_ms() - t0;
    let gpu_params = trainer.params(ctx).await?;

    // ---- training, CPU twin (the same batches in the same order)
    let cpu_steps = cfg.cpu_train_steps.max(1);
    let mut p = net.clone();
    let mut adam = Adam::new(p.params.len(), lr);
    let t0 = now_ms();
    for i in 0..cpu_steps {
        let (x, y) = &data[i % data.len()];
        let (_, g) = p.loss_and_grad(x.view(), y.view());
        adam.step(&mut p.params, &g);
    }
    let cpu_train_ms = now_ms() - t0;
    // The same number of steps on both sides: compare the parameters.
    let train_diff = if cpu_steps == cfg.train_steps {
        let d = gpu_params
            .iter()
            .zip(&p.params)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        Json::Num(f64::from(d))
    } else {
        Json::Null
    };

    // ---- sampling, GPU
    let plan = ddpm_plan(cfg.sample_steps)?;
    let stages = stages_from_plan(&plan);
    let seed = 3;
    let s = sampler(&net.params, seed, &stages)?;
    s.run(ctx)?;
    s.positions(ctx).await?;
    let t0 = now_ms();
    s.run(ctx)?;
    let gpu_x = s.positions(ctx).await?;
    let gpu_sample_ms = now_ms() - t0;

    // ---- sampling, CPU twin on the first cpu_particles particles
    let m = cfg.cpu_particles.clamp(1, cfg.particles);
    let t0 = now_ms();
    let mut run = Run::new(plan, seed, m);
    let cpu_x = run.finish(&net).to_vec();
    let cpu_sample_ms = now_ms() - t0;
    let sample_diff = cpu_x
        .iter()
        .zip(&gpu_x)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));

    let per_s = |count: f64, ms: f64| count / (ms.max(1e-6) * 1e-3);
    let k = cfg.sample_steps as f64;
    Ok(Json::obj([
        ("adapter", Json::str(ctx.adapter_name())),
        ("hidden", Json::Num(cfg.hidden as f64)),
        ("batch", Json::Num(cfg.batch as f64)),
        ("params", Json::Num(net.params.len() as f64)),
        ("particles", Json::Num(cfg.particles as f64)),
        ("sample_steps", Json::Num(k)),
        (
            "gpu_train_steps_per_s",
            Json::Num(per_s(cfg.train_steps as f64, gpu_train_ms)),
        ),
        (
            "cpu_train_steps_per_s",
            Json::Num(per_s(cpu_steps as f64, cpu_train_ms)),
        ),
        (
            "gpu_particle_steps_per_s",
            Json::Num(per_s(cfg.particles as f64 * k, gpu_sample_ms)),
        ),
        (
            "cpu_particle_steps_per_s",
            Json::Num(per_s(m as f64 * k, cpu_sample_ms)),
        ),
        ("gpu_last_loss", Json::Num(f64::from(gpu_loss))),
        ("train_max_abs_diff", train_diff),
        ("sample_max_abs_diff", Json::Num(f64::from(sample_diff))),
        ("cpu_particles", Json::Num(m as f64)),
    ]))
}

/// [`measure`] with kernels built here (native callers).
pub async fn measure_with_kernels(
    ctx: &GpuContext,
    mlp: &MlpKernels,
    sampler: &SamplerKernels,
    cfg: BenchConfig,
) -> Result<Json, String> {
    measure(
        ctx,
        cfg,
        |p, lr| GpuTrainer::new(ctx, mlp, cfg.hidden, cfg.batch, p, lr),
        |p, seed, stages| {
            GpuSampler::new(
                ctx,
                sampler,
                p,
                cfg.hidden,
                cfg.particles,
                seed,
                INIT_NOISE_STEP,
                stages,
                0,
            )
        },
    )
    .await
}
