//! GFLOP/s of the naive and flash attention kernels on a native wgpu adapter (lavapipe in CI,
//! an NVIDIA H200 through Vulkan in docs/BENCHMARKS.md), counting 4 N^2 d FLOPs per head.
//!
//! ```text
//! cargo run --release --features gpu --example attention_bench -- \
//!     [--sizes 256,512,...] [--heads 8] [--head-dim 64] [--reps 5] [--budget-s 20] \
//!     [--sweep] [--unchecked] [--out DIR]
//! ```
//! Every size is checked before it is timed: flash against the naive kernel on the GPU, and
//! both against the CPU reference where N <= `--cpu-check-max` (default 512). Times are the
//! best of `--reps` runs after one warm-up, by timestamp queries where the adapter has them.
//! A kernel stops growing N once one run takes longer than `--budget-s`. `--sweep` times
//! every tile configuration the device allows (the default: the one the library picks);
//! `--unchecked` adds each flash configuration without wgpu's runtime bounds checks.
//! Prints a table; `--out DIR` also writes `attention-gpu.json` and `attention-gpu.csv`.

use std::fmt::Write as _;

use mlplay::attention::{attention, max_abs_diff, Dims, Options, Qkv};
use mlplay::gpu::attention::NaiveAttention;
use mlplay::gpu::flash::{FlashAttention, TileConfig};
use mlplay::gpu::{block_on, padded_dim, run, AttnBuffers, Dispatch, GpuContext, GpuTiming};
use mlplay::json::Json;

struct Args {
    sizes: Vec<usize>,
    heads: usize,
    head_dim: usize,
    reps: usize,
    budget_s: f64,
    sweep: bool,
    unchecked: bool,
    causal: bool,
    cpu_check_max: usize,
    out: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        sizes: vec![256, 512, 1024, 2048, 4096, 8192],
        heads: 8,
        head_dim: 64,
        reps: 5,
        budget_s: 20.0,
        sweep: false,
        unchecked: false,
        causal: false,
        cpu_check_max: 512,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--sizes" => {
                a.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("{s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--heads" => a.heads = num(value()?)?,
            "--head-dim" => a.head_dim = num(value()?)?,
            "--reps" => a.reps = num(value()?)?.max(1),
            "--budget-s" => a.budget_s = value()?.parse().map_err(|e| format!("{e}"))?,
            "--cpu-check-max" => a.cpu_check_max = num(value()?)?,
            "--sweep" => a.sweep = true,
            "--unchecked" => a.unchecked = true,
            "--causal" => a.causal = true,
            "--out" => a.out = Some(value()?),
            "--bench" => {} // cargo bench passes this
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// One timed variant: a label and how to build its dispatch for a problem.
struct Variant {
    label: String,
    kernel: &'static str,
    config: Option<TileConfig>,
    checked: bool,
    flash: Option<FlashAttention>,
    stopped: bool,
}

fn time(ctx: &GpuContext, work: &dyn Dispatch, reps: usize) -> Result<(GpuTiming, f64), String> {
    block_on(run(ctx, work))?; // warm-up (first-use costs, clocks)
    let mut best: Option<GpuTiming> = None;
    let mut all = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = block_on(run(ctx, work))?;
        all.push(t.ms);
        if best.is_none_or(|b| t.ms < b.ms) {
            best = Some(t);
        }
    }
    all.sort_by(f64::total_cmp);
    Ok((best.unwrap(), all[all.len() / 2]))
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("attention_bench: {e}");
            std::process::exit(2);
        }
    };
    let ctx = match GpuContext::acquire_blocking() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("attention_bench: {e}");
            std::process::exit(1);
        }
    };
    let limits = ctx.limits();
    let dp = padded_dim(args.head_dim);
    let chosen = TileConfig::choose(&limits, dp).expect("a tile configuration fits");
    println!(
        "adapter: {} ({:?}, driver {} {}), timestamps {}, workgroup memory {} B, chosen tiles {:?}",
        ctx.adapter_name(),
        ctx.info.device_type,
        ctx.info.driver,
        ctx.info.driver_info,
        ctx.timestamps,
        limits.max_compute_workgroup_storage_size,
        chosen
    );

    let configs: Vec<TileConfig> = if args.sweep {
        TileConfig::candidates(dp)
            .into_iter()
            .filter(|c| c.fits(&limits))
            .collect()
    } else {
        vec![chosen]
    };
    let mut variants = vec![Variant {
        label: "naive".into(),
        kernel: "naive",
        config: None,
        checked: true,
        flash: None,
        stopped: false,
    }];
    for &c in &configs {
        for checked in [true, false] {
            if !checked && !args.unchecked {
                continue;
            }
            variants.push(Variant {
                label: format!(
                    "flash {}x{} (B_r {}, B_c {}){}",
                    c.tx,
                    c.ty,
                    c.block_rows(),
                    c.block_cols(),
                    if checked { "" } else { " unchecked" }
                ),
                kernel: "flash",
                config: Some(c),
                checked,
                flash: Some(if checked {
                    FlashAttention::with_config(&ctx, c)
                } else {
                    FlashAttention::with_config_unchecked(&ctx, c)
                }),
                stopped: false,
            });
        }
    }
    let naive = NaiveAttention::new(&ctx);
    let opts = Options {
        causal: args.causal,
        temperature: 1.0,
    };

    let mut rows = Vec::new();
    let mut csv = String::from(
        "kernel,variant,tx,ty,checked,n,heads,head_dim,causal,best_ms,median_ms,gflops,method,max_abs_diff_vs_naive_gpu,max_abs_diff_vs_cpu\n",
    );
    println!(
        "{:<44} {:>6} {:>10} {:>10} {:>10}  {:<16} {:>10}",
        "variant", "N", "best ms", "median ms", "GFLOP/s", "timing", "max|diff|"
    );
    for &n in &args.sizes {
        let dims = Dims {
            n_heads: args.heads,
            n_kv_heads: args.heads,
            seq_len: n,
            head_dim: args.head_dim,
        };
        let qkv = Qkv::random(dims, n as u64);
        let bufs = match AttnBuffers::upload(&ctx, &qkv) {
            Ok(b) => b,
            Err(e) => {
                println!("N = {n}: {e}");
                continue;
            }
        };
        // The references for this size: naive on the GPU always, the CPU when small.
        let naive_plan = naive.plan(&ctx, &bufs, opts, 0);
        let reference =
            block_on(run(&ctx, &naive_plan)).and_then(|_| block_on(bufs.read_output(&ctx)));
        let reference = match reference {
            Ok(r) => r,
            Err(e) => {
                println!("N = {n}: naive reference failed: {e}");
                continue;
            }
        };
        let cpu = (n <= args.cpu_check_max).then(|| attention(&qkv, opts));
        for v in variants.iter_mut() {
            if v.stopped {
                continue;
            }
            let flash_plan;
            let work: &dyn Dispatch = match &v.flash {
                None => &naive_plan,
                Some(f) => match f.plan(&ctx, &bufs, opts) {
                    Ok(p) => {
                        flash_plan = p;
                        &flash_plan
                    }
                    Err(e) => {
                        println!("{}: {e}", v.label);
                        continue;
                    }
                },
            };
            let timed = time(&ctx, work, args.reps);
            let out = block_on(bufs.read_output(&ctx));
            let (Ok((best, median)), Ok(out)) = (timed, out) else {
                println!("{} at N = {n}: the GPU run failed", v.label);
                v.stopped = true;
                continue;
            };
            let diff_gpu = max_abs_diff(&out, &reference);
            let diff_cpu = cpu.as_ref().map(|c| max_abs_diff(&out, c));
            let gflops = dims.flops() / (best.ms * 1e-3) / 1e9;
            println!(
                "{:<44} {:>6} {:>10.3} {:>10.3} {:>10.1}  {:<16} {:>10}",
                v.label,
                n,
                best.ms,
                median,
                gflops,
                best.method,
                format!(
                    "{diff_gpu:.1e}{}",
                    diff_cpu.map_or(String::new(), |d| format!(" / cpu {d:.1e}"))
                )
            );
            let (tx, ty) = v.config.map_or((0, 0), |c| (c.tx, c.ty));
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                v.kernel,
                v.label.replace(',', ";"),
                tx,
                ty,
                v.checked,
                n,
                args.heads,
                args.head_dim,
                args.causal,
                best.ms,
                median,
                gflops,
                best.method,
                diff_gpu,
                diff_cpu.map_or(String::new(), |d| d.to_string())
            );
            rows.push(Json::obj([
                ("kernel", Json::str(v.kernel)),
                ("variant", Json::str(&v.label)),
                ("tx", Json::Num(f64::from(tx))),
                ("ty", Json::Num(f64::from(ty))),
                ("checked", Json::Bool(v.checked)),
                ("n", Json::Num(n as f64)),
                ("best_ms", Json::Num(best.ms)),
                ("median_ms", Json::Num(median)),
                ("gflops", Json::Num(gflops)),
                ("method", Json::str(best.method)),
                ("max_abs_diff_vs_naive_gpu", Json::Num(f64::from(diff_gpu))),
                (
                    "max_abs_diff_vs_cpu",
                    diff_cpu.map_or(Json::Null, |d| Json::Num(f64::from(d))),
                ),
            ]));
            if diff_gpu > 1e-4 || diff_cpu.is_some_and(|d| d > 1e-4) {
                println!(
                    "  ^ {} DISAGREES with the reference (tolerance 1e-4)",
                    v.label
                );
            }
            if best.ms > args.budget_s * 1e3 {
                v.stopped = true;
                println!(
                    "  ({} stops here: one run took over {} s)",
                    v.label, args.budget_s
                );
            }
        }
    }
    let report = Json::obj([
        ("adapter", Json::str(ctx.adapter_name())),
        (
            "device_type",
            Json::str(format!("{:?}", ctx.info.device_type)),
        ),
        (
            "driver",
            Json::str(format!("{} {}", ctx.info.driver, ctx.info.driver_info)),
        ),
        ("timestamps", Json::Bool(ctx.timestamps)),
        (
            "workgroup_storage_bytes",
            Json::Num(f64::from(limits.max_compute_workgroup_storage_size)),
        ),
        ("heads", Json::Num(args.heads as f64)),
        ("head_dim", Json::Num(args.head_dim as f64)),
        ("causal", Json::Bool(args.causal)),
        ("flops_per_run", Json::str("4 N^2 d heads")),
        ("results", Json::Arr(rows)),
    ]);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).expect("create --out");
        std::fs::write(format!("{dir}/attention-gpu.json"), format!("{report}\n")).unwrap();
        std::fs::write(format!("{dir}/attention-gpu.csv"), csv).unwrap();
        println!("wrote {dir}/attention-gpu.json and .csv");
    }
}
