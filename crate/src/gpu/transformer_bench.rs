//! Training throughput of the transformer, GPU kernels (`gpu::transformer`) against the CPU
//! Trainer in the same run, for the native benchmark (`bench/transformer_bench.rs`) and the
//! browser's (`benchTransformer` in `web/gpu.rs`): training tokens per second (B x ctx
//! positions per step, forward, backward, clip and Adam), the default model unless told.
//!
//! Timing is by the host clock: the GPU's steps are submitted back to back and the last one's
//! statistics read at the end (what a widget stepping as fast as it can sees, submission
//! included), after a warm-up run that compiles and first-touches everything; the CPU Trainer
//! steps on its own. Both draw their batches inside the timed loop (the same seeded stream),
//! so that cost is on both sides. The check: both runs start from the same model and batches,
//! so after the same number of steps their losses agree to f32 rounding.

use super::transformer::GpuTransformer;
use super::{now_ms, GpuContext};
use crate::json::Json;
use crate::transformer::train::{TrainConfig, Trainer};

/// One measurement: JSON with the adapter, the model, tokens per second on both paths and the
/// last losses. `trainer(config)` builds the GPU run (the page through its shared kernels).
pub async fn measure(
    ctx: &GpuContext,
    config: TrainConfig,
    gpu_steps: usize,
    cpu_steps: usize,
    trainer: impl Fn(TrainConfig) -> Result<GpuTransformer, String>,
) -> Result<Json, String> {
    let (gpu_steps, cpu_steps) = (gpu_steps.max(1), cpu_steps.max(1));
    let tokens = (config.batch * config.ctx) as f64;

    // ---- GPU: a warm-up run, then the timed one from the start.
    let mut warm = trainer(config.clone())?;
    for _ in 0..2 {
        warm.submit_step(ctx)?.read(ctx).await?;
    }
    drop(warm);
    let mut gpu = trainer(config.clone())?;
    let mut last = None;
    let t0 = now_ms();
    for _ in 0..gpu_steps {
        last = Some(gpu.submit_step(ctx)?);
    }
    let gpu_last = last.expect("at least one step").read(ctx).await?;
    let gpu_ms = now_ms() - t0;

    // ---- CPU Trainer
    let mut cpu = Trainer::new(config.clone())?;
    let t0 = now_ms();
    let mut cpu_last = None;
    for _ in 0..cpu_steps {
        cpu_last = Some(cpu.step()?);
    }
    let cpu_ms = now_ms() - t0;
    let cpu_last = cpu_last.expect("at least one step");

    let per_s = |steps: usize, ms: f64| steps as f64 * tokens / (ms.max(1e-6) * 1e-3);
    let (g, c) = (per_s(gpu_steps, gpu_ms), per_s(cpu_steps, cpu_ms));
    let diff = if gpu_steps == cpu_steps {
        Json::Num((gpu_last.loss - cpu_last.loss).abs())
    } else {
        Json::Null
    };
    let mc = config.model_config();
    Ok(Json::obj([
        ("adapter", Json::str(ctx.adapter_name())),
        ("task", Json::str(config.task.name())),
        ("layers", Json::Num(mc.n_layers as f64)),
        ("heads", Json::Num(mc.n_heads as f64)),
        ("d_model", Json::Num(mc.d_model as f64)),
        ("ctx", Json::Num(mc.ctx as f64)),
        ("vocab", Json::Num(mc.vocab as f64)),
        ("batch", Json::Num(config.batch as f64)),
        ("params", Json::Num(gpu.n_params() as f64)),
        ("gpu_steps", Json::Num(gpu_steps as f64)),
        ("cpu_steps", Json::Num(cpu_steps as f64)),
        ("gpu_tokens_per_s", Json::Num(g)),
        ("cpu_tokens_per_s", Json::Num(c)),
        ("gpu_over_cpu", Json::Num(g / c)),
        ("gpu_last_loss", Json::Num(gpu_last.loss)),
        ("cpu_last_loss", Json::Num(cpu_last.loss)),
        ("last_loss_abs_diff", diff),
    ]))
}
