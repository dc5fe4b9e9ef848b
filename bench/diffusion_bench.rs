//! Training steps per second and sampling throughput (particles x steps per second) of the
//! diffusion kernels (crate/src/gpu/{mlp,sampler}.wgsl) on a native wgpu adapter (lavapipe
//! in CI, an NVIDIA H200 through Vulkan by bench/h200_diffusion.sh), beside their CPU twins in
//! the same run (`mlplay::gpu::diffusion_bench::measure`).
//!
//! ```text
//! cargo run --release --features gpu --example diffusion_bench -- \
//!     [--hidden 64,128] [--batch 256] [--train-steps 200] [--cpu-train-steps 20] \
//!     [--particles 10000,100000] [--sample-steps 100] [--cpu-particles 1000] [--out DIR]
//! ```
//! Prints a table; `--out DIR` also writes `diffusion-gpu.json`.

use mlplay::gpu::diffusion_bench::{measure_with_kernels, BenchConfig};
use mlplay::gpu::mlp::MlpKernels;
use mlplay::gpu::sampler::SamplerKernels;
use mlplay::gpu::{block_on, GpuContext};
use mlplay::json::Json;

struct Args {
    hidden: Vec<usize>,
    batch: usize,
    train_steps: usize,
    cpu_train_steps: usize,
    particles: Vec<usize>,
    sample_steps: usize,
    cpu_particles: usize,
    out: Option<String>,
}

fn list(v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("{s}: {e}")))
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        hidden: vec![64, 128],
        batch: 256,
        train_steps: 200,
        cpu_train_steps: 20,
        particles: vec![10_000, 100_000],
        sample_steps: 100,
        cpu_particles: 1000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--hidden" => a.hidden = list(&value()?)?,
            "--batch" => a.batch = num(value()?)?,
            "--train-steps" => a.train_steps = num(value()?)?.max(1),
            "--cpu-train-steps" => a.cpu_train_steps = num(value()?)?.max(1),
            "--particles" => a.particles = list(&value()?)?,
            "--sample-steps" => a.sample_steps = num(value()?)?.max(1),
            "--cpu-particles" => a.cpu_particles = num(value()?)?.max(1),
            "--out" => a.out = Some(value()?),
            "--bench" => {} // cargo bench passes this
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("diffusion_bench: {e}");
        std::process::exit(2);
    });
    let ctx = GpuContext::acquire_blocking().unwrap_or_else(|e| {
        eprintln!("diffusion_bench: {e}");
        std::process::exit(1);
    });
    let mlp = MlpKernels::new(&ctx).unwrap_or_else(|e| {
        eprintln!("diffusion_bench: {e}");
        std::process::exit(1);
    });
    let sampler = SamplerKernels::new(&ctx).unwrap_or_else(|e| {
        eprintln!("diffusion_bench: {e}");
        std::process::exit(1);
    });
    println!(
        "adapter: {} ({:?}, driver {} {})",
        ctx.adapter_name(),
        ctx.info.device_type,
        ctx.info.driver,
        ctx.info.driver_info
    );
    println!(
        "{:>6} {:>6} {:>9} {:>5} | {:>12} {:>12} {:>7} | {:>14} {:>14} {:>7} | {:>9} {:>9}",
        "H",
        "B",
        "particles",
        "K",
        "gpu steps/s",
        "cpu steps/s",
        "ratio",
        "gpu pt-steps/s",
        "cpu pt-steps/s",
        "ratio",
        "train dif",
        "sample dif"
    );
    let mut rows = Vec::new();
    for &hidden in &args.hidden {
        for &particles in &args.particles {
            let cfg = BenchConfig {
                hidden,
                batch: args.batch,
                train_steps: args.train_steps,
                cpu_train_steps: args.cpu_train_steps,
                particles,
                sample_steps: args.sample_steps,
                cpu_particles: args.cpu_particles,
            };
            let r = match block_on(measure_with_kernels(&ctx, &mlp, &sampler, cfg)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("diffusion_bench: H={hidden} particles={particles}: {e}");
                    std::process::exit(1);
                }
            };
            let f = |k: &str| r.get(k).and_then(Json::as_f64).unwrap_or(f64::NAN);
            println!(
                "{:>6} {:>6} {:>9} {:>5} | {:>12.1} {:>12.1} {:>7.2} | {:>14.3e} {:>14.3e} {:>7.1} | {:>9.2e} {:>9.2e}",
                hidden,
                args.batch,
                particles,
                args.sample_steps,
                f("gpu_train_steps_per_s"),
                f("cpu_train_steps_per_s"),
                f("gpu_train_steps_per_s") / f("cpu_train_steps_per_s"),
                f("gpu_particle_steps_per_s"),
                f("cpu_particle_steps_per_s"),
                f("gpu_particle_steps_per_s") / f("cpu_particle_steps_per_s"),
                f("train_max_abs_diff"),
                f("sample_max_abs_diff"),
            );
            rows.push(r);
        }
    }
    if let Some(dir) = args.out {
        std::fs::create_dir_all(&dir).expect("create --out");
        let path = std::path::Path::new(&dir).join("diffusion-gpu.json");
        std::fs::write(&path, Json::Arr(rows).to_string()).expect("write the results");
        println!("wrote {}", path.display());
    }
}
