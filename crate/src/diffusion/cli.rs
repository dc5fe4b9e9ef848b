//! The diffusion commands of the `mlplay` CLI (JSON on stdout):
//!
//! ```text
//! mlplay diffusion-schedule --schedule linear|cosine --steps T --json
//! mlplay diffusion-train --dataset NAME [--points x,y;...] --method ddpm|flow --steps N --seed S
//!                        --backend cpu|gpu --out FILE [--schedule linear|cosine] [--T 1000]
//!                        [--hidden 64] [--batch 256] [--lr 0.002] --json
//! mlplay diffusion-sample --weights FILE --sampler ddpm|ddim|euler|midpoint --steps K --n COUNT
//!                         --seed S --backend cpu|gpu [--eta 0] [--sigma beta|beta-tilde]
//!                         [--points x,y;...] --json
//! ```

use super::data::{self, Dataset};
use super::sample::{Plan, Run, Sampler};
use super::schedule::{Schedule, ScheduleKind};
use super::swd;
use super::train::{Method, TrainConfig, Trainer};
use super::weights;
use crate::json::Json;

/// A command: its arguments to JSON, or a message (exit code 2: a usage error; 1: it failed).
pub type Command = fn(&[String]) -> Result<Json, (u8, String)>;

/// The command of this name, if it is one of the diffusion commands.
pub fn command(name: &str) -> Option<Command> {
    match name {
        "diffusion-schedule" => Some(schedule),
        "diffusion-train" => Some(train),
        "diffusion-sample" => Some(sample),
        _ => None,
    }
}

fn usage(msg: String) -> (u8, String) {
    (2, msg)
}

/// `--key value` / `--key=value` pairs (`--json` accepted and ignored), keys checked.
fn flags(
    cmd: &str,
    args: &[String],
    allowed: &[&str],
) -> Result<Vec<(String, String)>, (u8, String)> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        let Some(key) = flag.strip_prefix("--") else {
            return Err(usage(format!("expected --key value, got {flag:?}")));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match rest.next() {
                Some(v) => (key.to_string(), v.clone()),
                None => return Err(usage(format!("--{key} needs a value"))),
            },
        };
        if !allowed.contains(&key.as_str()) {
            let list: Vec<String> = allowed.iter().map(|k| format!("--{k}")).collect();
            return Err(usage(format!(
                "unknown flag --{key} for {cmd} (allowed: {})",
                list.join(", ")
            )));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    pairs: &[(String, String)],
    key: &str,
    default: Option<T>,
    lo: T,
    hi: T,
) -> Result<T, (u8, String)> {
    let Some(v) = get(pairs, key) else {
        return default.ok_or_else(|| usage(format!("--{key} is required")));
    };
    match v.parse::<T>() {
        Ok(x) if x >= lo && x <= hi => Ok(x),
        _ => Err(usage(format!(
            "invalid value {v:?} for --{key}: a number in {lo}..={hi}"
        ))),
    }
}

/// `--backend`: false for cpu, true for gpu (the WGSL kernels of `gpu::mlp` and
/// `gpu::sampler`, in builds with the `gpu` feature).
fn gpu_backend(pairs: &[(String, String)]) -> Result<bool, (u8, String)> {
    match get(pairs, "backend").unwrap_or("cpu") {
        "cpu" => Ok(false),
        "gpu" if cfg!(all(feature = "gpu", not(target_arch = "wasm32"))) => Ok(true),
        "gpu" => Err((
            1,
            "--backend gpu: this mlplay was built without the gpu feature (cargo build --features gpu); use --backend cpu".into(),
        )),
        v => Err(usage(format!("invalid value {v:?} for --backend: cpu or gpu"))),
    }
}

/// Train to the end on the GPU: the trainer draws the batches and schedules the learning
/// rate as on the CPU, the kernels run forward, backward and Adam; every step's loss is read
/// back for the curve. Returns the trainer with the GPU's weights and Adam state.
#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
fn train_gpu(t: Trainer) -> Result<(Trainer, String), String> {
    use crate::gpu::{block_on, mlp::GpuRun, mlp::MlpKernels, GpuContext};
    let ctx = GpuContext::acquire_blocking()?;
    let kernels = MlpKernels::new(&ctx)?;
    let mut run = GpuRun::new(&ctx, &kernels, t)?;
    let mut losses = Vec::new();
    while !run.cpu.done() {
        run.step(&ctx)?;
        losses.push(block_on(run.loss(&ctx))?);
    }
    block_on(run.sync(&ctx))?;
    run.cpu.losses = losses;
    Ok((run.cpu, ctx.adapter_name()))
}

#[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
fn train_gpu(_t: Trainer) -> Result<(Trainer, String), String> {
    Err("built without the gpu feature".into())
}

/// Sample on the GPU: every row's coefficients and embedding uploaded once, one dispatch per
/// row, one readback at the end.
#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
fn sample_gpu(
    net: &super::mlp::Mlp,
    plan: &Plan,
    seed: u32,
    n: usize,
) -> Result<(Vec<f32>, String), String> {
    use crate::gpu::sampler::{stages_from_plan, GpuSampler, SamplerKernels, INIT_NOISE_STEP};
    use crate::gpu::{block_on, GpuContext};
    let ctx = GpuContext::acquire_blocking()?;
    let kernels = SamplerKernels::new(&ctx)?;
    let stages = stages_from_plan(plan);
    let s = GpuSampler::new(
        &ctx,
        &kernels,
        &net.params,
        net.hidden,
        n,
        seed,
        INIT_NOISE_STEP,
        &stages,
        0,
    )?;
    s.run(&ctx)?;
    Ok((block_on(s.positions(&ctx))?, ctx.adapter_name()))
}

#[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
fn sample_gpu(
    _net: &super::mlp::Mlp,
    _plan: &Plan,
    _seed: u32,
    _n: usize,
) -> Result<(Vec<f32>, String), String> {
    Err("built without the gpu feature".into())
}

fn dataset(pairs: &[(String, String)], name: &str) -> Result<Dataset, (u8, String)> {
    if name == "drawn" {
        let pts = get(pairs, "points")
            .ok_or_else(|| usage("--dataset drawn needs --points x,y;x,y;...".into()))?;
        Dataset::drawn(data::parse_points(pts).map_err(usage)?).map_err(usage)
    } else {
        Dataset::from_name(name).map_err(usage)
    }
}

fn schedule(args: &[String]) -> Result<Json, (u8, String)> {
    let pairs = flags("diffusion-schedule", args, &["schedule", "steps"])?;
    let kind =
        ScheduleKind::from_name(get(&pairs, "schedule").unwrap_or("linear")).map_err(usage)?;
    let t = number(&pairs, "steps", Some(1000usize), 1, 100_000)?;
    let s = Schedule::new(kind, t);
    Ok(Json::obj([
        ("schedule", Json::str(kind.name())),
        ("steps", Json::Num(t as f64)),
        ("betas", Json::nums(&s.betas)),
        ("alphas_cumprod", Json::nums(&s.alphas_cumprod)),
    ]))
}

fn train(args: &[String]) -> Result<Json, (u8, String)> {
    let pairs = flags(
        "diffusion-train",
        args,
        &[
            "dataset", "points", "method", "steps", "seed", "backend", "out", "schedule", "T",
            "hidden", "batch", "lr",
        ],
    )?;
    let d = TrainConfig::default();
    let ds = dataset(&pairs, get(&pairs, "dataset").unwrap_or("moons"))?;
    let config = TrainConfig {
        method: Method::from_name(get(&pairs, "method").unwrap_or("ddpm")).map_err(usage)?,
        schedule: ScheduleKind::from_name(get(&pairs, "schedule").unwrap_or("linear"))
            .map_err(usage)?,
        big_t: number(&pairs, "T", Some(d.big_t), 1, 100_000)?,
        hidden: number(&pairs, "hidden", Some(d.hidden), 1, 128)?,
        batch: number(&pairs, "batch", Some(d.batch), 1, 65_536)?,
        lr: number(&pairs, "lr", Some(d.lr), 0.0, 1.0)?,
        steps: number(&pairs, "steps", Some(d.steps), 1, 10_000_000)?,
        seed: number(&pairs, "seed", Some(0u64), 0, u32::MAX as u64)?,
    };
    let gpu = gpu_backend(&pairs)?;
    let out = get(&pairs, "out").ok_or_else(|| usage("--out FILE is required".into()))?;
    let start = std::time::Instant::now();
    let mut t = Trainer::new(config, ds);
    let mut backend = "cpu".to_string();
    if gpu {
        let (trained, adapter) = train_gpu(t).map_err(|e| (1, format!("--backend gpu: {e}")))?;
        t = trained;
        backend = format!("gpu: {adapter}");
    } else {
        while !t.done() {
            t.step();
        }
    }
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    std::fs::write(out, weights::to_bytes(&t.model))
        .map_err(|e| (1, format!("cannot write {out}: {e}")))?;
    // The loss curve as means over 100 equal windows (or every step for short runs).
    let w = t.losses.len().div_ceil(100).max(1);
    let curve: Vec<f64> = t
        .losses
        .chunks(w)
        .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / c.len() as f64)
        .collect();
    Ok(Json::obj([
        ("dataset", Json::str(t.dataset.name())),
        ("method", Json::str(t.config.method.name())),
        ("schedule", Json::str(t.config.schedule.name())),
        ("T", Json::Num(t.config.big_t as f64)),
        ("hidden", Json::Num(t.config.hidden as f64)),
        ("steps", Json::Num(t.model.steps as f64)),
        ("seed", Json::Num(t.config.seed as f64)),
        ("backend", Json::str(backend)),
        ("loss_window", Json::Num(w as f64)),
        ("loss", Json::nums(&curve)),
        ("final_loss", Json::Num(*curve.last().unwrap_or(&f64::NAN))),
        ("wall_ms", Json::Num(wall_ms)),
        ("out", Json::str(out)),
    ]))
}

fn sample(args: &[String]) -> Result<Json, (u8, String)> {
    let pairs = flags(
        "diffusion-sample",
        args,
        &[
            "weights", "sampler", "steps", "n", "seed", "backend", "eta", "sigma", "points",
        ],
    )?;
    let path = get(&pairs, "weights").ok_or_else(|| usage("--weights FILE is required".into()))?;
    let bytes = std::fs::read(path).map_err(|e| (1, format!("cannot read {path}: {e}")))?;
    let model = weights::from_bytes(&bytes).map_err(|e| (1, format!("{path}: {e}")))?;
    let sampler = match get(&pairs, "sampler").unwrap_or(if model.method == Method::Flow {
        "euler"
    } else {
        "ddim"
    }) {
        "ddpm" => Sampler::Ddpm {
            tilde: match get(&pairs, "sigma").unwrap_or("beta") {
                "beta" => false,
                "beta-tilde" => true,
                v => {
                    return Err(usage(format!(
                        "invalid value {v:?} for --sigma: beta or beta-tilde"
                    )))
                }
            },
        },
        "ddim" => Sampler::Ddim {
            eta: number(&pairs, "eta", Some(0.0), 0.0, 1.0)?,
        },
        "euler" => Sampler::Euler,
        "midpoint" => Sampler::Midpoint,
        v => {
            return Err(usage(format!(
                "invalid value {v:?} for --sampler: {}",
                super::sample::NAMES.join(", ")
            )))
        }
    };
    if sampler.is_flow() != (model.method == Method::Flow) {
        return Err(usage(format!(
            "--sampler {} does not fit a {} model (ddpm/ddim sample DDPM models, euler/midpoint flow models)",
            sampler.name(),
            model.method.name()
        )));
    }
    let max_steps = if sampler.is_flow() { 1000 } else { model.big_t };
    let k = number(&pairs, "steps", Some(max_steps.min(50)), 1, max_steps)?;
    let n = number(&pairs, "n", Some(1000usize), 1, 100_000)?;
    let seed = number(&pairs, "seed", Some(0u32), 0, u32::MAX)?;
    let gpu = gpu_backend(&pairs)?;
    let plan = if sampler.is_flow() {
        Plan::flow(sampler, k)
    } else {
        Plan::diffusion(sampler, &model.schedule(), k)
    }
    .map_err(usage)?;
    let ds = if model.dataset == data::NAMES.len() - 1 {
        dataset(&pairs, "drawn")?
    } else {
        Dataset::from_name(data::NAMES[model.dataset]).map_err(usage)?
    };
    let start = std::time::Instant::now();
    let evals = plan.len();
    let (x, backend) = if gpu {
        let (x, adapter) = sample_gpu(&model.net, &plan, seed, n)
            .map_err(|e| (1, format!("--backend gpu: {e}")))?;
        (x, format!("gpu: {adapter}"))
    } else {
        (
            Run::new(plan, seed, n).finish(&model.net).to_vec(),
            "cpu".to_string(),
        )
    };
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let swd = swd::to_dataset(&x, &ds);
    Ok(Json::obj([
        ("dataset", Json::str(ds.name())),
        ("method", Json::str(model.method.name())),
        ("sampler", Json::str(sampler.name())),
        ("steps", Json::Num(k as f64)),
        ("network_evaluations", Json::Num(evals as f64)),
        ("n", Json::Num(n as f64)),
        ("seed", Json::Num(seed as f64)),
        ("backend", Json::str(backend)),
        ("swd", Json::Num(swd)),
        ("wall_ms", Json::Num(wall_ms)),
        (
            "samples",
            Json::Arr(
                x.chunks(2)
                    .map(|p| Json::nums(&[p[0] as f64, p[1] as f64]))
                    .collect(),
            ),
        ),
    ]))
}
