//! The parameter tables of `<ml-diffusion>` and `<ml-flow-matching>` and their headless core
//! (what `mlplay diffusion` / `mlplay flow-matching` print and the page's `state` starts
//! from): the forward process (or probability path) of the chosen data set at the chosen t.
//! Sampling and training live in the web view, which fetches the default weights
//! (`www/weights/DATASET-METHOD.bin`) or trains them in the page.

use super::data::{self, Dataset};
use super::noise;
use super::schedule::{Schedule, ScheduleKind};
use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};

/// Points of the forward-process cloud.
pub const CLOUD: usize = 1500;
/// T of the widgets' DDPM models (the default weights and in-page training).
pub const BIG_T: usize = 1000;

const DATASET: ParamSpec = ParamSpec::choice(
    "dataset",
    "Data set",
    "data",
    "The 2D distribution to learn; 'drawn' uses the points you draw on the data panel (or type as x,y;x,y).",
    0,
    &data::NAMES,
);
const PARTICLES: ParamSpec = ParamSpec::number(
    "particles",
    "Particles",
    "n",
    "How many samples are drawn from noise at once: up to 100,000 on WebGPU, 10,000 on the CPU path.",
    2000.0,
    100.0,
    100000.0,
    1.0,
)
.log_scale();
const TRAIN_STEPS: ParamSpec = ParamSpec::number(
    "train_steps",
    "Training steps",
    "N",
    "Adam steps of a Train run (batch 128, learning rate 1e-2 decayed by a cosine); the default weights took 6000 at batch 256.",
    2000.0,
    100.0,
    20000.0,
    1.0,
)
.log_scale();
const SEED: ParamSpec = ParamSpec::number(
    "seed",
    "Seed",
    "seed",
    "Seed of the sampling noise and of a training run.",
    1.0,
    0.0,
    9999.0,
    1.0,
);

pub const DIFFUSION: WidgetSpec = WidgetSpec {
    name: "diffusion",
    title: "Diffusion: noising data and learning to denoise it (DDPM, DDIM)",
    summary: "Data dissolves into Gaussian noise over T steps; a small network learns the noise eps_theta(x_t, t) and runs the process backwards, DDPM or DDIM, from pure noise to samples.",
    trainer: true,
    params: &[
        DATASET,
        ParamSpec::number(
            "t",
            "Forward step t",
            "t",
            "How far the forward process has gone: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, T = 1000.",
            250.0,
            0.0,
            1000.0,
            1.0,
        ),
        ParamSpec::choice(
            "sampler",
            "Sampler",
            "sampler",
            "DDPM: ancestral sampling with fresh noise each step (Ho et al. 2020); DDIM: the deterministic (eta = 0) or partly random update of Song et al. 2021.",
            1,
            &["ddpm", "ddim"],
        ),
        ParamSpec::number(
            "steps",
            "Sampling steps K",
            "K",
            "Network evaluations from x_T to x_0, on the timesteps floor(kT/K).",
            50.0,
            1.0,
            1000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "shown",
            "Reverse step shown",
            "k",
            "Scrub the reverse process: 0 is pure noise, K the samples (clamped to K).",
            1000.0,
            0.0,
            1000.0,
            1.0,
        ),
        ParamSpec::number(
            "eta",
            "DDIM eta",
            "η",
            "0: deterministic DDIM; 1: as random as DDPM with beta-tilde.",
            0.0,
            0.0,
            1.0,
            0.05,
        ),
        ParamSpec::choice(
            "sigma",
            "DDPM sigma^2",
            "σ²",
            "DDPM's noise variance: beta_t, or the posterior's beta-tilde_t (Ho et al. found both work).",
            0,
            &["beta", "beta-tilde"],
        ),
        PARTICLES,
        ParamSpec::choice(
            "schedule",
            "Schedule",
            "schedule",
            "The noise schedule of the forward panel and of a Train run: linear beta (Ho et al.) or cosine alpha_bar (Nichol & Dhariwal).",
            0,
            &ScheduleKind::NAMES,
        ),
        TRAIN_STEPS,
        SEED,
    ],
};

pub const FLOW: WidgetSpec = WidgetSpec {
    name: "flow-matching",
    title: "Flow matching: straight paths from noise to data",
    summary: "A network learns the velocity x_1 - x_0 along straight lines from noise x_0 to data x_1; integrating it with a few Euler or midpoint steps gives samples, beside DDIM at the same number of network evaluations.",
    trainer: true,
    params: &[
        DATASET,
        ParamSpec::number(
            "t",
            "Path time t",
            "t",
            "Where on the path x_t = (1 - t) x_0 + t x_1 the cloud and the velocity field are shown.",
            0.5,
            0.0,
            1.0,
            0.01,
        ),
        ParamSpec::choice(
            "integrator",
            "Integrator",
            "integrator",
            "Euler: one network evaluation per step; midpoint: two, second order.",
            0,
            &["euler", "midpoint"],
        ),
        ParamSpec::number(
            "steps",
            "Integration steps K",
            "K",
            "Steps from t = 0 to t = 1; DDIM beside it gets the same number of network evaluations.",
            8.0,
            1.0,
            100.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "shown",
            "Step shown",
            "k",
            "Scrub the integration: 0 is the noise, K the samples (clamped to K).",
            100.0,
            0.0,
            100.0,
            1.0,
        ),
        PARTICLES,
        TRAIN_STEPS,
        SEED,
    ],
};

/// The data set of the parameters; `drawn` needs the page's points (None here).
pub fn dataset(params: &Params, drawn: Option<&[[f32; 2]]>) -> Result<Dataset, String> {
    match params.choice("dataset") {
        "drawn" => Dataset::drawn(drawn.map(<[_]>::to_vec).unwrap_or_default()),
        name => Dataset::from_name(name),
    }
}

/// The forward-process cloud: `CLOUD` data points (seed 0) and their noise (the sampler's
/// counter-based noise, stream `seed`), `(n, 2)` each; the widgets move these along t.
pub fn cloud(ds: &Dataset, seed: u32) -> (Vec<f32>, Vec<f32>) {
    let x0 = ds.sample_seeded(CLOUD, 0).into_raw_vec_and_offset().0;
    let eps = noise::normals(seed, noise::INITIAL_STEP, CLOUD);
    (x0, eps)
}

/// x_t for the diffusion widget (closed form at step t of `schedule`) or the flow widget
/// (x_t = (1 - t) eps + t x0, with t in [0, 1]).
pub fn cloud_at(x0: &[f32], eps: &[f32], flow: bool, t: f64, schedule: &Schedule) -> Vec<f32> {
    let (a, b) = if flow {
        (t, 1.0 - t)
    } else {
        let ab = schedule.alpha_bar(t as usize);
        (ab.sqrt(), (1.0 - ab).sqrt())
    };
    x0.iter()
        .zip(eps)
        .map(|(&x, &e)| (a * x as f64 + b * e as f64) as f32)
        .collect()
}

/// The headless data: the forward process at t (alpha_bar and SNR of both schedules for
/// `diffusion`), the cloud's first points and its moments.
pub fn run(params: &Params) -> Json {
    let flow = params.spec.name == FLOW.name;
    let ds = match dataset(params, None) {
        Ok(ds) => ds,
        Err(e) => return Json::obj([("error", Json::str(e))]),
    };
    let t = params.get("t");
    let (x0, eps) = cloud(&ds, params.get("seed") as u32);
    let kind = ScheduleKind::from_name(if flow {
        "linear"
    } else {
        params.choice("schedule")
    })
    .expect("the table's names");
    let sched = Schedule::new(kind, BIG_T);
    let xt = cloud_at(&x0, &eps, flow, t, &sched);
    let n = (xt.len() / 2) as f64;
    let mean = |c: usize| xt.iter().skip(c).step_by(2).map(|&v| v as f64).sum::<f64>() / n;
    let mut fields = vec![
        ("dataset", Json::str(ds.name())),
        ("t", Json::Num(t)),
        ("mean", Json::nums(&[mean(0), mean(1)])),
    ];
    if !flow {
        let lin = Schedule::new(ScheduleKind::Linear, BIG_T);
        let cos = Schedule::new(ScheduleKind::Cosine, BIG_T);
        let ti = t as usize;
        fields.push(("alpha_bar", Json::Num(sched.alpha_bar(ti))));
        fields.push(("snr", Json::Num(sched.snr(ti))));
        fields.push(("alpha_bar_linear", Json::Num(lin.alpha_bar(ti))));
        fields.push(("alpha_bar_cosine", Json::Num(cos.alpha_bar(ti))));
    }
    let head: Vec<Json> = xt
        .chunks(2)
        .take(20)
        .map(|p| Json::nums(&[p[0] as f64, p[1] as f64]))
        .collect();
    fields.push(("cloud_head", Json::Arr(head)));
    Json::obj(fields)
}
