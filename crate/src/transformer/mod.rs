//! A small decoder-only transformer trained from scratch on tasks with known structure, so
//! that its attention patterns can be watched as they form (the chapter's transformer
//! section; Elhage et al. 2021 and Olsson et al. 2022 for previous-token and induction heads).
//!
//! - [`model`]: the pre-norm block, forward and hand-written backward over one flat parameter
//!   vector; learned, sinusoidal or rotary positions; tied or untied output embedding.
//! - [`tasks`]: copy, reverse, induction, balanced brackets, characters of a passage.
//! - [`train`]: Adam with gradient clipping, step by step; per-head previous-token and
//!   induction scores and attention entropy; sampling with a temperature.
//!
//! CLI: `mlplay transformer --task NAME --layers L --heads H --d-model D --pos P --steps K
//! --seed S --backend cpu|gpu --json` (gpu: `crate::gpu::transformer`, same numbers to f32 rounding).

pub mod model;
pub mod tasks;
pub mod train;
pub mod widget;

use std::time::Instant;

use crate::json::Json;
use model::Pos;
use tasks::Task;
use train::{head_scores, TrainConfig, Trainer};

/// Sequences used to score the heads (previous-token, induction) and their seed.
pub const PROBE_SEQUENCES: usize = 16;
pub const PROBE_SEED: u64 = 0x1d0c;

fn per_head(scores: &[Vec<f64>]) -> Json {
    Json::Arr(scores.iter().map(Json::nums).collect())
}

/// `mlplay transformer ...`: trains on the CPU and prints, one line per logged step,
/// `step, loss, accuracy, wall_ms` (a JSON object per line with `--json`), then a last line
/// with the per-head scores of [`train::head_scores`], `[layer][head]`: `induction` (Olsson et
/// al.'s prefix-matching score: attention from the second copy of a repeated segment to the
/// token after the current token's earlier occurrence) and `previous_token`, on
/// [`PROBE_SEQUENCES`] probes drawn like the induction task (copies of random length at random distances).
/// `--attention` adds `probe` (the first probe's tokens), `probe_offset` (the distance m
/// between its copies: the induction stripe is key = query - m + 1 over the second copy)
/// and `attention` (`[layer][head][query][key]` on that probe). `Err((2, _))` for bad
/// arguments.
pub fn cli(args: &[String]) -> Result<Vec<String>, (u8, String)> {
    let mut c = TrainConfig::default();
    let mut steps: u64 = 300;
    let mut json = false;
    let mut backend = "cpu".to_string();
    let mut log_every: u64 = 0;
    let mut show_attention = false;
    let mut it = args.iter();
    let bad = |m: String| (2u8, m);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        if flag == "--attention" {
            show_attention = true;
            continue;
        }
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| bad(format!("expected --key value, got {flag:?}")))?;
        let value = it
            .next()
            .ok_or_else(|| bad(format!("--{key} needs a value")))?;
        let int = |lo: u64, hi: u64| -> Result<u64, (u8, String)> {
            value
                .parse::<u64>()
                .ok()
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(|| {
                    bad(format!(
                        "--{key} must be a whole number from {lo} to {hi}, got {value:?}"
                    ))
                })
        };
        match key {
            "task" => {
                c.task = Task::from_name(value).ok_or_else(|| {
                    bad(format!(
                        "--task must be one of {}, got {value:?}",
                        Task::NAMES.join(", ")
                    ))
                })?
            }
            "layers" => c.n_layers = int(1, 4)? as usize,
            "heads" => c.n_heads = int(1, 8)? as usize,
            "d-model" => c.d_model = int(4, 128)? as usize,
            "ctx" => c.ctx = int(4, 128)? as usize,
            "batch" => c.batch = int(1, 256)? as usize,
            "pos" => {
                c.pos = Pos::from_name(value).ok_or_else(|| {
                    bad(format!(
                        "--pos must be one of {}, got {value:?}",
                        Pos::NAMES.join(", ")
                    ))
                })?
            }
            "tied" => {
                c.tied = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(format!("--tied must be true or false, got {value:?}"))),
                }
            }
            "lr" => {
                c.lr = crate::math::parse_f64(value)
                    .filter(|v| *v > 0.0 && *v <= 1.0)
                    .ok_or_else(|| bad(format!("--lr must be a number in (0, 1], got {value:?}")))?
            }
            "steps" => steps = int(1, 1_000_000)?,
            "log-every" => log_every = int(1, 1_000_000)?,
            "seed" => c.seed = int(0, u64::MAX)?,
            "backend" => backend = value.clone(),
            _ => return Err(bad(format!("unknown option --{key}"))),
        }
    }
    let gpu = match backend.as_str() {
        "cpu" => false,
        "gpu" if cfg!(all(feature = "gpu", not(target_arch = "wasm32"))) => true,
        "gpu" => return Err((
            1,
            "--backend gpu: this mlplay was built without the gpu feature (cargo build --features gpu); use --backend cpu"
                .into(),
        )),
        _ => {
            return Err(bad(format!(
                "--backend must be cpu or gpu, got {backend:?}"
            )))
        }
    };
    if log_every == 0 {
        log_every = (steps / 20).max(1);
    }
    let mut trainer = Trainer::new(c.clone()).map_err(bad)?;
    let start = Instant::now();
    let mut lines = Vec::new();
    let mut log = |s: train::StepStats| {
        if s.step % log_every == 0 || s.step == steps {
            let wall_ms = start.elapsed().as_secs_f64() * 1e3;
            lines.push(if json {
                Json::obj([
                    ("step", Json::Num(s.step as f64)),
                    ("loss", Json::Num(s.loss)),
                    ("accuracy", Json::Num(s.accuracy)),
                    ("wall_ms", Json::Num(wall_ms)),
                ])
                .to_string()
            } else {
                format!(
                    "{}, {:.4}, {:.4}, {:.1}",
                    s.step, s.loss, s.accuracy, wall_ms
                )
            });
        }
    };
    let backend = if gpu {
        // The same model, batches and Adam on the GPU; the parameters come back at the end for
        // the head scores (computed on the CPU from them).
        let (model, adapter) =
            train_gpu(&c, steps, &mut log).map_err(|m| (1, format!("--backend gpu: {m}")))?;
        trainer.model = model;
        format!("gpu: {adapter}")
    } else {
        for _ in 1..=steps {
            log(trainer.step().map_err(|m| (1, m))?);
        }
        "cpu".to_string()
    };
    let (prev, ind) = head_scores(&trainer.model, PROBE_SEQUENCES, PROBE_SEED);
    let mut fields = vec![
        ("task", Json::str(c.task.name())),
        ("backend", Json::str(backend.as_str())),
        ("n_params", Json::Num(trainer.model.n_params() as f64)),
        ("induction", per_head(&ind)),
        ("previous_token", per_head(&prev)),
    ];
    if show_attention {
        // The attention maps on the first probe (filler, r, r; the copies `probe_offset`
        // apart), [layer][head][query][key].
        let probe = train::probe(&trainer.model, PROBE_SEED);
        let fw = trainer.model.forward(&probe.tokens);
        let maps = fw
            .blocks
            .iter()
            .map(|b| {
                Json::Arr(
                    b.attn
                        .iter()
                        .map(|a| {
                            Json::Arr(a.rows().into_iter().map(|r| Json::nums(r.iter())).collect())
                        })
                        .collect(),
                )
            })
            .collect();
        fields.push((
            "probe",
            Json::Arr(probe.tokens.iter().map(|&t| Json::Num(t as f64)).collect()),
        ));
        fields.push(("probe_offset", Json::Num(probe.offset as f64)));
        fields.push(("attention", Json::Arr(maps)));
    }
    let summary = Json::obj(fields);
    lines.push(if json {
        summary.to_string()
    } else {
        format!(
            "heads (layer x head): induction {} previous-token {}",
            per_head(&ind),
            per_head(&prev)
        )
    });
    Ok(lines)
}

/// `steps` steps of [`crate::gpu::transformer::GpuTransformer`] (each step's statistics read
/// back and passed to `log`); returns the trained model and the adapter's name.
#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
fn train_gpu(
    c: &TrainConfig,
    steps: u64,
    log: &mut dyn FnMut(train::StepStats),
) -> Result<(model::Model, String), String> {
    use crate::gpu::transformer::{GpuTransformer, TransformerKernels};
    use crate::gpu::{block_on, GpuContext};
    let ctx = GpuContext::acquire_blocking()?;
    let kernels = TransformerKernels::new(&ctx)?;
    let mut run = GpuTransformer::new(&ctx, &kernels, c.clone())?;
    for _ in 0..steps {
        log(run.step(&ctx)?);
    }
    Ok((block_on(run.model(&ctx))?, ctx.adapter_name()))
}

#[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
fn train_gpu(
    _c: &TrainConfig,
    _steps: u64,
    _log: &mut dyn FnMut(train::StepStats),
) -> Result<(model::Model, String), String> {
    Err("built without the gpu feature".into())
}
