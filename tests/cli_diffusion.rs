//! `mlplay diffusion-schedule`, `diffusion-train` and `diffusion-sample`: the JSON they print
//! against the core and hand-derived values, the weights file round trip, and exit code 2 on
//! bad flags.

use std::process::Command;

use mlplay::diffusion::{data::Dataset, sample, swd, train, weights};
use serde_json::Value;

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = mlplay(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn schedule_json_by_hand() {
    let v = json(&[
        "diffusion-schedule",
        "--schedule",
        "linear",
        "--steps",
        "1000",
        "--json",
    ]);
    let (b, ab) = (nums(&v["betas"]), nums(&v["alphas_cumprod"]));
    assert_eq!((b.len(), ab.len()), (1000, 1000));
    assert_eq!(b[0], 1e-4);
    assert!((b[999] - 0.02).abs() < 1e-15);
    assert!((ab[0] - 0.9999).abs() < 1e-15);
    assert!((ab[999] - 4.035_83e-5).abs() < 1e-5 * 4.035_83e-5); // tests/diffusion_core.rs derives it
                                                                 // Cosine, T = 4: alpha_bar_t = cos^2(((t/4 + 0.008)/1.008) pi/2) / cos^2((0.008/1.008) pi/2).
    let v = json(&[
        "diffusion-schedule",
        "--schedule",
        "cosine",
        "--steps",
        "4",
        "--json",
    ]);
    let ab = nums(&v["alphas_cumprod"]);
    let f = |t: f64| {
        (((t / 4.0 + 0.008) / 1.008) * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    for t in 1..=3 {
        assert!((ab[t - 1] - f(t as f64) / f(0.0)).abs() < 1e-12, "t {t}");
    }
    // beta_4 = min(1 - 0/..., 0.999) = 0.999.
    assert_eq!(nums(&v["betas"])[3], 0.999);
    for bad in [
        &["diffusion-schedule", "--schedule", "quadratic"][..],
        &["diffusion-schedule", "--steps", "0"],
        &["diffusion-schedule", "--nope", "1"],
    ] {
        let (code, _, err) = mlplay(bad);
        assert_eq!(code, 2, "{bad:?}");
        assert!(err.contains("mlplay:"), "{err}");
    }
}

#[test]
fn train_writes_the_weights_the_core_computes_and_sample_reads_them() {
    let dir = std::env::temp_dir().join(format!("mlplay-diffusion-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ring-flow.bin");
    let f = file.to_str().unwrap();
    let v = json(&[
        "diffusion-train",
        "--dataset",
        "ring",
        "--method",
        "flow",
        "--steps",
        "30",
        "--seed",
        "5",
        "--backend",
        "cpu",
        "--hidden",
        "16",
        "--batch",
        "64",
        "--out",
        f,
        "--json",
    ]);
    assert_eq!(v["steps"], 30.0);
    assert_eq!(nums(&v["loss"]).len(), 30);
    // The same run in the library gives the same bytes.
    let cfg = train::TrainConfig {
        method: train::Method::Flow,
        hidden: 16,
        batch: 64,
        steps: 30,
        seed: 5,
        ..Default::default()
    };
    let mut t = train::Trainer::new(cfg, Dataset::Ring);
    while !t.done() {
        t.step();
    }
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes, weights::to_bytes(&t.model));
    assert_eq!(
        bytes.len(),
        weights::HEADER + 4 * mlplay::diffusion::mlp::n_params(16)
    );
    assert_eq!(weights::from_bytes(&bytes).unwrap(), t.model);
    assert_eq!(nums(&v["loss"])[29], t.losses[29] as f64);

    // Sampling: the CLI's samples are the core's Run with the same seed, and its swd is the
    // distance to the evaluation set.
    let s = json(&[
        "diffusion-sample",
        "--weights",
        f,
        "--sampler",
        "midpoint",
        "--steps",
        "4",
        "--n",
        "50",
        "--seed",
        "9",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(s["network_evaluations"], 8.0);
    let pts: Vec<f32> = s["samples"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| nums(p).into_iter().map(|v| v as f32))
        .collect();
    let mut run = sample::Run::new(
        sample::Plan::flow(sample::Sampler::Midpoint, 4).unwrap(),
        9,
        50,
    );
    assert_eq!(pts, run.finish(&t.model.net));
    assert_eq!(
        s["swd"].as_f64().unwrap(),
        swd::to_dataset(&pts, &Dataset::Ring)
    );

    // Mismatched sampler, bad flags, a broken file, the GPU without kernels.
    for (args, code) in [
        (
            vec!["diffusion-sample", "--weights", f, "--sampler", "ddim"],
            2,
        ),
        (vec!["diffusion-sample", "--weights", f, "--steps", "0"], 2),
        (vec!["diffusion-sample", "--weights", "/nonexistent.bin"], 1),
        (vec!["diffusion-train", "--dataset", "dino", "--out", f], 2),
        (vec!["diffusion-train", "--dataset", "drawn", "--out", f], 2),
        (vec!["diffusion-train", "--method", "score", "--out", f], 2),
        (vec!["diffusion-train", "--backend", "tpu", "--out", f], 2),
    ] {
        assert_eq!(mlplay(&args).0, code, "{args:?}");
    }
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"MLPD\x01\0\0\0").unwrap();
    assert_eq!(
        mlplay(&["diffusion-sample", "--weights", junk.to_str().unwrap()]).0,
        1
    );
    let mut cut = bytes.clone();
    cut.pop();
    assert!(weights::from_bytes(&cut).is_err());

    // Drawn points: trained and sampled with the same --points.
    let drawn = dir.join("drawn.bin");
    let d = drawn.to_str().unwrap();
    json(&[
        "diffusion-train",
        "--dataset",
        "drawn",
        "--points",
        "0,0;1,1",
        "--method",
        "ddpm",
        "--steps",
        "3",
        "--T",
        "20",
        "--hidden",
        "8",
        "--out",
        d,
    ]);
    let s = json(&[
        "diffusion-sample",
        "--weights",
        d,
        "--sampler",
        "ddpm",
        "--steps",
        "20",
        "--n",
        "10",
        "--points",
        "0,0;1,1",
    ]);
    assert_eq!(s["dataset"], "drawn");
    assert_eq!(
        mlplay(&["diffusion-sample", "--weights", d]).0,
        2,
        "drawn weights need --points"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `--backend gpu` (builds with the gpu feature, on lavapipe in CI): the WGSL sampler's
/// samples equal the CPU's to f32 rounding, and the GPU training steps' losses the CPU's.
#[cfg(feature = "gpu")]
#[test]
fn gpu_backend_matches_the_cpu() {
    let w = concat!(env!("CARGO_MANIFEST_DIR"), "/www/weights/moons-ddpm.bin");
    let args = |b: &'static str| {
        vec![
            "diffusion-sample",
            "--weights",
            w,
            "--sampler",
            "ddim",
            "--steps",
            "20",
            "--n",
            "300",
            "--seed",
            "3",
            "--backend",
            b,
        ]
    };
    let (code, out, err) = mlplay(&args("gpu"));
    if code != 0 && (err.contains("adapter") || err.contains("GPU")) {
        eprintln!("no GPU adapter here, skipped: {err}");
        return;
    }
    assert_eq!(code, 0, "{err}");
    let g: Value = serde_json::from_str(&out).unwrap();
    let c = json(&args("cpu"));
    assert!(g["backend"].as_str().unwrap().starts_with("gpu: "));
    // Same network, noise and coefficients; the kernel's sums run in another order and its
    // ln/cos/sin are WGSL's, so each of the 20 steps adds rounding of a few 1e-7 relative to
    // |x| ~ 2 (seen: 5e-6 at most on lavapipe); 1e-4 leaves 20x room and is 1000x below the
    // distance between two different samples' points.
    for (p, q) in g["samples"]
        .as_array()
        .unwrap()
        .iter()
        .zip(c["samples"].as_array().unwrap())
    {
        for (a, b) in nums(p).iter().zip(nums(q)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
    let dir = std::env::temp_dir().join(format!("mlplay-diffusion-gpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train = |b: &str, f: &str| {
        let out = dir.join(f);
        json(&[
            "diffusion-train",
            "--dataset",
            "ring",
            "--method",
            "flow",
            "--steps",
            "5",
            "--hidden",
            "16",
            "--batch",
            "64",
            "--seed",
            "5",
            "--backend",
            b,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let (lg, lc) = (
        nums(&train("gpu", "g.bin")["loss"]),
        nums(&train("cpu", "c.bin")["loss"]),
    );
    // The same batches from the same start: the losses agree to f32 rounding of the sums
    // (relative 1e-5 over 64 rows x 2 outputs), drifting only through Adam's tiny updates.
    for (a, b) in lg.iter().zip(&lc) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "loss {a} (gpu) vs {b} (cpu)"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
