//! Training tokens per second of the transformer's WGSL kernels (crate/src/gpu/transformer.wgsl)
//! on a native wgpu adapter (lavapipe in CI, an NVIDIA H200 through Vulkan by
//! bench/h200_transformer.sh), beside the CPU Trainer in the same run
//! (`mlplay::gpu::transformer_bench::measure`). The default model is the widget's
//! (`TrainConfig::default()`); the flags change it.
//!
//! ```text
//! cargo run --release --features gpu --example transformer_bench -- \
//!     [--gpu-steps 50] [--cpu-steps 50] [--layers L] [--heads H] [--d-model D] [--ctx N]
//!     [--batch B] [--out DIR]
//! ```
//! Prints a table; `--out DIR` also writes `transformer-gpu.json`.

use mlplay::gpu::transformer::{GpuTransformer, TransformerKernels};
use mlplay::gpu::transformer_bench::measure;
use mlplay::gpu::{block_on, GpuContext};
use mlplay::json::Json;
use mlplay::transformer::train::TrainConfig;

fn fail(e: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("transformer_bench: {e}");
    std::process::exit(code);
}

fn main() {
    let mut config = TrainConfig::default();
    let (mut gpu_steps, mut cpu_steps, mut out) = (50usize, 50usize, None::<String>);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // cargo bench passes this
        }
        let value = it
            .next()
            .unwrap_or_else(|| fail(format!("{flag} needs a value"), 2));
        let num = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|e| fail(format!("{flag} {value}: {e}"), 2))
        };
        match flag.as_str() {
            "--gpu-steps" => gpu_steps = num().max(1),
            "--cpu-steps" => cpu_steps = num().max(1),
            "--layers" => config.n_layers = num(),
            "--heads" => config.n_heads = num(),
            "--d-model" => config.d_model = num(),
            "--ctx" => config.ctx = num(),
            "--batch" => config.batch = num(),
            "--out" => out = Some(value.clone()),
            other => fail(format!("unknown flag {other}"), 2),
        }
    }
    let ctx = GpuContext::acquire_blocking().unwrap_or_else(|e| fail(e, 1));
    let kernels = TransformerKernels::new(&ctx).unwrap_or_else(|e| fail(e, 1));
    println!(
        "adapter: {} ({:?}, driver {} {})",
        ctx.adapter_name(),
        ctx.info.device_type,
        ctx.info.driver,
        ctx.info.driver_info
    );
    let r = block_on(measure(&ctx, config, gpu_steps, cpu_steps, |c| {
        GpuTransformer::new(&ctx, &kernels, c)
    }))
    .unwrap_or_else(|e| fail(e, 1));
    let f = |k: &str| r.get(k).and_then(Json::as_f64).unwrap_or(f64::NAN);
    println!(
        "{:>3} {:>3} {:>4} {:>4} {:>4} {:>8} | {:>14} {:>14} {:>7} | {:>10}",
        "L", "H", "D", "ctx", "B", "params", "gpu tokens/s", "cpu tokens/s", "ratio", "loss diff"
    );
    println!(
        "{:>3} {:>3} {:>4} {:>4} {:>4} {:>8} | {:>14.0} {:>14.0} {:>7.2} | {:>10.2e}",
        f("layers"),
        f("heads"),
        f("d_model"),
        f("ctx"),
        f("batch"),
        f("params"),
        f("gpu_tokens_per_s"),
        f("cpu_tokens_per_s"),
        f("gpu_over_cpu"),
        f("last_loss_abs_diff"),
    );
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e, 1));
        let path = std::path::Path::new(&dir).join("transformer-gpu.json");
        std::fs::write(&path, r.to_string() + "\n").unwrap_or_else(|e| fail(e, 1));
        println!("wrote {}", path.display());
    }
}
