//! The default weights shipped under `www/weights/` (fetched by `<ml-diffusion>` and
//! `<ml-flow-matching>`): one file per data set and method, with the header the
//! regeneration script (`./build.sh weights`) writes, and samples close to their data.

use mlplay::diffusion::data::{Dataset, NAMES};
use mlplay::diffusion::sample::{Plan, Run, Sampler};
use mlplay::diffusion::train::{Method, TrainConfig, Trainer};
use mlplay::diffusion::{mlp, swd, weights};

/// What tests/golden/diffusion_weights.sh trains: the default configuration, 6000 steps, seed 0.
const STEPS: u32 = 6000;

fn path(dataset: &str, method: Method) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("www/weights")
        .join(format!("{dataset}-{}.bin", method.name()))
}

#[test]
fn every_default_weights_file_loads_with_its_header() {
    for (id, name) in NAMES[..5].iter().enumerate() {
        for method in [Method::Ddpm, Method::Flow] {
            let bytes = std::fs::read(path(name, method))
                .unwrap_or_else(|e| panic!("{name} {method:?}: {e}"));
            let m = weights::from_bytes(&bytes).unwrap();
            let d = TrainConfig::default();
            assert_eq!(
                (m.method, m.dataset, m.steps, m.seed),
                (method, id, STEPS, 0),
                "{name}"
            );
            assert_eq!(
                (m.schedule, m.big_t, m.net.hidden),
                (d.schedule, d.big_t, d.hidden),
                "{name}"
            );
            assert_eq!(bytes.len(), weights::HEADER + 4 * mlp::n_params(d.hidden));
        }
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "10 s in release: cargo test --release --test diffusion_weights"
)]
fn default_weights_sample_close_to_their_data() {
    // n = 2000 samples (DDIM 50 steps, Euler 50 steps) against each data set's evaluation
    // set, below 3x the data's own sampling distance at n = 2000 (tests/diffusion_learn.rs).
    for name in &NAMES[..5] {
        let ds = Dataset::from_name(name).unwrap();
        let fl = (1..=3)
            .map(|s| {
                swd::to_dataset(
                    &ds.sample_seeded(2000, 100 + s).into_raw_vec_and_offset().0,
                    &ds,
                )
            })
            .sum::<f64>()
            / 3.0;
        for method in [Method::Ddpm, Method::Flow] {
            let m = weights::from_bytes(&std::fs::read(path(name, method)).unwrap()).unwrap();
            let plan = match method {
                Method::Ddpm => Plan::diffusion(Sampler::Ddim { eta: 0.0 }, &m.schedule(), 50),
                Method::Flow => Plan::flow(Sampler::Euler, 50),
            }
            .unwrap();
            let x = Run::new(plan, 1, 2000).finish(&m.net).to_vec();
            let d = swd::to_dataset(&x, &ds);
            eprintln!("{name} {method:?}: SW {d:.4}, floor {fl:.4}");
            assert!(d < 3.0 * fl, "{name} {method:?}: SW {d} >= 3 x {fl}");
        }
    }
}

#[test]
#[ignore = "minutes in release: cargo test --release --test diffusion_weights -- --ignored"]
fn default_weights_are_what_the_cli_trains() {
    // The script runs `mlplay diffusion-train --dataset NAME --method M --steps 6000 --seed 0`,
    // which is this loop (tests/cli_diffusion.rs checks CLI == library byte for byte).
    for name in &NAMES[..5] {
        for method in [Method::Ddpm, Method::Flow] {
            let cfg = TrainConfig {
                method,
                steps: STEPS,
                ..Default::default()
            };
            let mut t = Trainer::new(cfg, Dataset::from_name(name).unwrap());
            while !t.done() {
                t.step();
            }
            let shipped = std::fs::read(path(name, method)).unwrap();
            assert!(
                shipped == weights::to_bytes(&t.model),
                "{name} {method:?} differs from a fresh run"
            );
        }
    }
}
