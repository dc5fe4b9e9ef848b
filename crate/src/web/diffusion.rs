//! Drawing for `<ml-diffusion>` and `<ml-flow-matching>` (one view, two panel sets).
//!
//! `<ml-diffusion>`: 0 the forward process q(x_t | x_0) at the t slider, 1 alpha_bar_t and the
//! SNR of both schedules, 2 the reverse process (particles at the scrubbed step, a few
//! trajectories, the predicted-noise field as arrows, the sliced Wasserstein distance),
//! 3 the training loss. `<ml-flow-matching>`: 0 the probability path with the learned
//! velocity field, 1 Euler or midpoint samples, 2 DDIM at the same number of network
//! evaluations, 3 the training loss.
//!
//! The default weights (`www/weights/DATASET-METHOD.bin`) arrive through `View::provide`;
//! Train replaces them. Sampling advances in `tick` (a slice of particles of one row per
//! call, about 6 ms), so the reverse process plays as it is computed; every completed step's
//! cloud is kept for the scrubber. The points of the `drawn` data set are drawn on panel 0.

use std::cell::RefCell;

use plotters::prelude::*;

use super::plot::{chart, line, rects, text, Area, Axes, Chart, Pt, Theme};
use super::{now_ms, TextInput, View, WebInfo};
use crate::diffusion::data::{self, Dataset};
use crate::diffusion::mlp::Mlp;
use crate::diffusion::sample::{eval_net, Plan, Run, Sampler};
use crate::diffusion::schedule::{Schedule, ScheduleKind};
use crate::diffusion::train::{Method, Model, TrainConfig, Trainer};
use crate::diffusion::widget::{self, BIG_T};
use crate::diffusion::{swd, weights};
use crate::json::Json;
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The forward process: data x_0 dissolving into noise x_t",
        "alpha_bar_t and the signal-to-noise ratio, linear and cosine schedules",
        "The reverse process: samples condensing out of noise",
        "Training the denoiser: the simple loss",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>x</mi><mi data-key="t">t</mi></msub><mo>=</mo><msqrt><msub><mover><mi>α</mi><mo>‾</mo></mover><mi data-key="t">t</mi></msub></msqrt><msub><mi>x</mi><mn>0</mn></msub><mo>+</mo><msqrt><mrow><mn>1</mn><mo>−</mo><msub><mover><mi>α</mi><mo>‾</mo></mover><mi data-key="t">t</mi></msub></mrow></msqrt><mi>ε</mi><mspace width="1.5em"/><mi>L</mi><mo>=</mo><msup><mrow><mo>‖</mo><mi>ε</mi><mo>−</mo><msub><mi>ε</mi><mi>θ</mi></msub><mo>(</mo><msub><mi>x</mi><mi>t</mi></msub><mo>,</mo><mi>t</mi><mo>)</mo><mo>‖</mo></mrow><mn>2</mn></msup></mrow></math><math display="block"><mrow><msub><mi>x</mi><mrow><mi>t</mi><mo>−</mo><mn>1</mn></mrow></msub><mo>=</mo><mfrac><mn>1</mn><msqrt><msub><mi>α</mi><mi>t</mi></msub></msqrt></mfrac><mrow><mo>(</mo><msub><mi>x</mi><mi>t</mi></msub><mo>−</mo><mfrac><msub><mi>β</mi><mi>t</mi></msub><msqrt><mrow><mn>1</mn><mo>−</mo><msub><mover><mi>α</mi><mo>‾</mo></mover><mi>t</mi></msub></mrow></msqrt></mfrac><msub><mi>ε</mi><mi>θ</mi></msub><mo>)</mo></mrow><mo>+</mo><mi data-key="sigma">σ</mi><mi>z</mi><mspace width="1.5em"/><mtext>DDIM: </mtext><msqrt><msub><mover><mi>α</mi><mo>‾</mo></mover><mrow><mi>t</mi><mo>−</mo><mn>1</mn></mrow></msub></msqrt><msub><mover><mi>x</mi><mo>^</mo></mover><mn>0</mn></msub><mo>+</mo><msqrt><mrow><mn>1</mn><mo>−</mo><msub><mover><mi>α</mi><mo>‾</mo></mover><mrow><mi>t</mi><mo>−</mo><mn>1</mn></mrow></msub><mo>−</mo><msup><mi>σ</mi><mn>2</mn></msup></mrow></msqrt><msub><mi>ε</mi><mi>θ</mi></msub><mo>+</mo><mi>σ</mi><mi>z</mi><mo>,</mo><mi>σ</mi><mo>∝</mo><mi data-key="eta">η</mi></mrow></math>"#,
};

pub(crate) const FLOW_INFO: WebInfo = WebInfo {
    panels: &[
        "The probability path x_t and the learned velocity field",
        "Flow matching samples: Euler or midpoint integration",
        "DDIM at the same number of network evaluations",
        "Training both networks: the flow-matching and the simple loss",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>x</mi><mi data-key="t">t</mi></msub><mo>=</mo><mo>(</mo><mn>1</mn><mo>−</mo><mi data-key="t">t</mi><mo>)</mo><msub><mi>x</mi><mn>0</mn></msub><mo>+</mo><mi data-key="t">t</mi><msub><mi>x</mi><mn>1</mn></msub><mspace width="1.5em"/><mi>L</mi><mo>=</mo><msup><mrow><mo>‖</mo><msub><mi>v</mi><mi>θ</mi></msub><mo>(</mo><msub><mi>x</mi><mi>t</mi></msub><mo>,</mo><mi>t</mi><mo>)</mo><mo>−</mo><mo>(</mo><msub><mi>x</mi><mn>1</mn></msub><mo>−</mo><msub><mi>x</mi><mn>0</mn></msub><mo>)</mo><mo>‖</mo></mrow><mn>2</mn></msup></mrow></math><math display="block"><mrow><mtext>Euler: </mtext><mi>x</mi><mo>←</mo><mi>x</mi><mo>+</mo><mi>h</mi><msub><mi>v</mi><mi>θ</mi></msub><mo>(</mo><mi>x</mi><mo>,</mo><mi>t</mi><mo>)</mo><mspace width="1em"/><mtext>midpoint: </mtext><mi>x</mi><mo>←</mo><mi>x</mi><mo>+</mo><mi>h</mi><msub><mi>v</mi><mi>θ</mi></msub><mo>(</mo><mi>x</mi><mo>+</mo><mfrac><mi>h</mi><mn>2</mn></mfrac><msub><mi>v</mi><mi>θ</mi></msub><mo>,</mo><mi>t</mi><mo>+</mo><mfrac><mi>h</mi><mn>2</mn></mfrac><mo>)</mo><mo>,</mo><mi>h</mi><mo>=</mo><mn>1</mn><mo>/</mo><mi data-key="steps">K</mi></mrow></math>"#,
};

const TEXT: TextInput = TextInput {
    label: "Drawn points (x,y;x,y;...)",
    doc: "The points of the 'drawn' data set, in the plot's coordinates (about -3 to 3). Draw on the first panel with the mouse or a finger, or type them here; an empty text clears them. Train then learns them.",
    accept: ".txt,text/plain",
};

/// Sub-plots sit side by side from this width (CSS px) up.
const WIDE: f64 = 560.0;
/// The plotted square of every point cloud.
const LIM: f64 = 3.0;
/// Particles whose paths are drawn.
const TRAJ: usize = 8;
/// Arrows per side of the field grid.
const GRID: usize = 13;
/// Batch of an in-page training step (fits a frame on a laptop).
const BATCH: usize = 128;
/// Most floats kept for the scrubber per run (clouds of completed steps).
const FRAME_FLOATS: usize = 4_000_000;

/// Arrows of a field: (tail, head) in data coordinates.
type Field = Vec<(Pt, Pt)>;

/// One sampling run in progress or done, with what the scrubber and the panels need.
struct Sampling {
    run: Run,
    /// Next particle of the current row.
    cursor: usize,
    /// K, the steps of the run.
    k: usize,
    sampler: Sampler,
    /// (completed step, positions) for the steps kept (every `stride`-th and the last).
    frames: Vec<(usize, Vec<f32>)>,
    stride: usize,
    /// The first TRAJ particles after every completed step (step 0 = the noise).
    traj: Vec<Vec<Pt>>,
    /// The method's model this run samples.
    method: Method,
    swd: RefCell<Option<(usize, f64)>>,
}

impl Sampling {
    fn new(plan: Plan, sampler: Sampler, method: Method, k: usize, seed: u32, n: usize) -> Self {
        let run = Run::new(plan, seed, n);
        let stride = (k * n * 2).div_ceil(FRAME_FLOATS).max(1);
        let traj = (0..TRAJ.min(n))
            .map(|i| vec![(run.x[2 * i] as f64, run.x[2 * i + 1] as f64)])
            .collect();
        let first = run.x.clone();
        Sampling {
            run,
            cursor: 0,
            k,
            sampler,
            frames: vec![(0, first)],
            stride,
            traj,
            method,
            swd: RefCell::new(None),
        }
    }

    /// Completed steps so far (a midpoint half step completes none).
    fn completed(&self) -> usize {
        match self.run.row {
            0 => 0,
            r => self.run.plan.step_of_row[r - 1],
        }
    }

    /// Advance by one slice of particles; records a frame when a step completes.
    fn advance(&mut self, net: &Mlp, count: usize) {
        let row = self.run.row;
        self.cursor = self.run.step_particles(net, self.cursor, count);
        if self.run.row > row {
            let step = self.run.plan.step_of_row[row];
            let completes =
                row + 1 == self.run.plan.len() || self.run.plan.step_of_row[row + 1] != step;
            if completes {
                for (i, t) in self.traj.iter_mut().enumerate() {
                    t.push((self.run.x[2 * i] as f64, self.run.x[2 * i + 1] as f64));
                }
                if step % self.stride == 0 || step == self.k {
                    self.frames.push((step, self.run.x.clone()));
                }
            }
        }
    }

    /// The kept cloud at or before `step`.
    fn frame(&self, step: usize) -> (usize, &[f32]) {
        let f = self
            .frames
            .iter()
            .rev()
            .find(|f| f.0 <= step)
            .unwrap_or(&self.frames[0]);
        (f.0, &f.1)
    }

    fn nfe(&self) -> usize {
        self.run.plan.len()
    }
}

/// The view of both widgets.
pub(crate) struct DiffusionView {
    flow: bool,
    dataset: Option<Dataset>,
    ds_error: Option<String>,
    drawn: Vec<[f32; 2]>,
    /// The evaluation set of the data set (for the distances).
    eval: Vec<f32>,
    x0: Vec<f32>,
    eps: Vec<f32>,
    cloud: Vec<f32>,
    t: f64,
    schedule: ScheduleKind,
    linear: Schedule,
    cosine: Schedule,
    /// The models in use: DDPM (both widgets) and flow (the flow widget).
    ddpm: Option<Model>,
    flowm: Option<Model>,
    /// Where each model came from ("default weights", "trained in the page").
    source: [String; 2],
    /// Default weights fetched so far: (path, model).
    shipped: Vec<(String, Model)>,
    failed: Vec<String>,
    runs: Vec<Sampling>,
    /// The sampling configuration the runs were made for.
    run_key: String,
    trainers: Vec<Trainer>,
    train_error: Option<String>,
    /// The pixel box of panel 0's plotting area (for drawing points).
    plot_box: RefCell<Option<(f64, f64, f64, f64)>>,
    field: RefCell<Option<(String, Field)>>,
    params_seen: Option<Params>,
    v_forward: u64,
    v_runs: u64,
    v_loss: u64,
}

impl DiffusionView {
    pub(crate) fn new(flow: bool) -> Self {
        DiffusionView {
            flow,
            dataset: None,
            ds_error: None,
            drawn: Vec::new(),
            eval: Vec::new(),
            x0: Vec::new(),
            eps: Vec::new(),
            cloud: Vec::new(),
            t: 0.0,
            schedule: ScheduleKind::Linear,
            linear: Schedule::new(ScheduleKind::Linear, BIG_T),
            cosine: Schedule::new(ScheduleKind::Cosine, BIG_T),
            ddpm: None,
            flowm: None,
            source: [String::new(), String::new()],
            shipped: Vec::new(),
            failed: Vec::new(),
            runs: Vec::new(),
            run_key: String::new(),
            trainers: Vec::new(),
            train_error: None,
            plot_box: RefCell::new(None),
            field: RefCell::new(None),
            params_seen: None,
            v_forward: 0,
            v_runs: 0,
            v_loss: 0,
        }
    }

    fn methods(&self) -> &'static [Method] {
        if self.flow {
            &[Method::Flow, Method::Ddpm]
        } else {
            &[Method::Ddpm]
        }
    }

    fn model(&self, m: Method) -> Option<&Model> {
        match m {
            Method::Ddpm => self.ddpm.as_ref(),
            Method::Flow => self.flowm.as_ref(),
        }
    }

    fn weights_path(&self, m: Method) -> Option<String> {
        match &self.dataset {
            Some(ds) if !matches!(ds, Dataset::Drawn(_)) => {
                Some(format!("weights/{}-{}.bin", ds.name(), m.name()))
            }
            _ => None,
        }
    }

    /// Use the default weights of the current data set where they have arrived.
    fn adopt_shipped(&mut self) {
        for &m in self.methods() {
            if self.model(m).is_some() {
                continue;
            }
            let Some(path) = self.weights_path(m) else {
                continue;
            };
            if let Some((_, model)) = self.shipped.iter().find(|(p, _)| *p == path) {
                let model = model.clone();
                match m {
                    Method::Ddpm => self.ddpm = Some(model),
                    Method::Flow => self.flowm = Some(model),
                }
                self.source[m as usize] = "default weights".into();
                self.run_key.clear();
            }
        }
    }

    /// The sampling runs for these parameters (restarted when anything they depend on changed).
    fn plan_runs(&mut self, params: &Params) {
        let n = params.get("particles") as usize;
        let k = params.get("steps") as usize;
        let seed = params.get("seed") as u32;
        let key = format!(
            "{}|{}|{}|{}|{}|{}|{}|{:?}",
            n,
            k,
            seed,
            params.choice(if self.flow { "integrator" } else { "sampler" }),
            if self.flow { 0.0 } else { params.get("eta") },
            if self.flow {
                ""
            } else {
                params.choice("sigma")
            },
            self.source.join(","),
            self.dataset.as_ref().map(|d| d.id())
        );
        if key == self.run_key {
            return;
        }
        self.run_key = key;
        self.runs.clear();
        self.field.replace(None);
        self.v_runs += 1;
        if self.flow {
            let integ = if params.choice("integrator") == "midpoint" {
                Sampler::Midpoint
            } else {
                Sampler::Euler
            };
            if self.flowm.is_some() {
                let plan = Plan::flow(integ, k).expect("k >= 1");
                self.runs
                    .push(Sampling::new(plan, integ, Method::Flow, k, seed, n));
            }
            if let Some(m) = &self.ddpm {
                // DDIM with as many network evaluations as the flow sampler.
                let kd = (k * integ.evals_per_step()).min(m.big_t);
                let s = Sampler::Ddim { eta: 0.0 };
                let plan = Plan::diffusion(s, &m.schedule(), kd).expect("kd in 1..=T");
                self.runs
                    .push(Sampling::new(plan, s, Method::Ddpm, kd, seed, n));
            }
        } else if let Some(m) = &self.ddpm {
            let s = if params.choice("sampler") == "ddpm" {
                Sampler::Ddpm {
                    tilde: params.choice("sigma") == "beta-tilde",
                }
            } else {
                Sampler::Ddim {
                    eta: params.get("eta"),
                }
            };
            let k = k.min(m.big_t);
            let plan = Plan::diffusion(s, &m.schedule(), k).expect("k in 1..=T");
            self.runs
                .push(Sampling::new(plan, s, Method::Ddpm, k, seed, n));
        }
    }

    fn shown(&self, params: Option<&Params>, r: &Sampling) -> usize {
        let want = params.map_or(usize::MAX, |p| p.get("shown") as usize);
        want.min(r.k).min(r.completed())
    }

    fn run_swd(&self, r: &Sampling, step: usize) -> f64 {
        if let Some((s, d)) = *r.swd.borrow() {
            if s == step {
                return d;
            }
        }
        let (_, x) = r.frame(step);
        let d = if self.eval.is_empty() {
            f64::NAN
        } else {
            swd::sliced_wasserstein(x, &self.eval)
        };
        r.swd.replace(Some((step, d)));
        d
    }

    /// The network's field on a grid: -eps (toward the data) or v, scaled for display.
    fn field_at(&self, method: Method, s: f32) -> Vec<(Pt, Pt)> {
        let key = format!("{method:?}{s}{}", self.v_runs);
        if let Some((k, f)) = &*self.field.borrow() {
            if *k == key {
                return f.clone();
            }
        }
        let Some(m) = self.model(method) else {
            return Vec::new();
        };
        let mut pts = Vec::with_capacity(2 * GRID * GRID);
        for i in 0..GRID {
            for j in 0..GRID {
                let c = |k: usize| (-LIM + 2.0 * LIM * (k as f64 + 0.5) / GRID as f64) as f32;
                pts.push(c(i));
                pts.push(c(j));
            }
        }
        let out = eval_net(&m.net, &pts, s);
        let sign = if method == Method::Ddpm { -1.0 } else { 1.0 };
        let longest = out
            .chunks(2)
            .map(|o| (o[0] as f64).hypot(o[1] as f64))
            .fold(1e-9, f64::max);
        let scale = 0.9 * (2.0 * LIM / GRID as f64) / longest;
        let f: Vec<(Pt, Pt)> = pts
            .chunks(2)
            .zip(out.chunks(2))
            .map(|(p, o)| {
                let (px, py) = (p[0] as f64, p[1] as f64);
                (
                    (px, py),
                    (
                        px + sign * scale * o[0] as f64,
                        py + sign * scale * o[1] as f64,
                    ),
                )
            })
            .collect();
        self.field.replace(Some((key, f.clone())));
        f
    }

    fn train_text(&self) -> String {
        match self.trainers.first() {
            Some(t) => format!("step {} / {}", t.model.steps, t.config.steps),
            None => String::new(),
        }
    }
}

fn cloud_chart<'a>(area: &'a Area, theme: &Theme, title: &str) -> Result<Chart<'a>, String> {
    chart(
        area,
        theme,
        &Axes {
            x_labels: 7,
            y_labels: 7,
            ..Axes::new(title, -LIM..LIM, -LIM..LIM, "x₁", "x₂")
        },
    )
}

/// Particles as small squares (one `rects` call), `half` the half side in data units.
fn particles(c: &mut Chart<'_>, x: &[f32], half: f64, style: ShapeStyle) -> Result<(), String> {
    let cells: Vec<([Pt; 2], ShapeStyle)> = x
        .chunks(2)
        .filter(|p| p[0].abs() < LIM as f32 && p[1].abs() < LIM as f32)
        .map(|p| {
            let (a, b) = (p[0] as f64, p[1] as f64);
            ([(a - half, b - half), (a + half, b + half)], style)
        })
        .collect();
    rects(c, &cells)
}

fn arrows(c: &mut Chart<'_>, field: &[(Pt, Pt)], style: ShapeStyle) -> Result<(), String> {
    for &(a, b) in field {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = dx.hypot(dy);
        if len < 1e-6 {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let h = 0.35 * len.min(0.25);
        let left = (b.0 - h * (ux - 0.5 * uy), b.1 - h * (uy + 0.5 * ux));
        let right = (b.0 - h * (ux + 0.5 * uy), b.1 - h * (uy - 0.5 * ux));
        line(c, &[a, b], style)?;
        line(c, &[left, b, right], style)?;
    }
    Ok(())
}

/// Half a pixel's side in data units, for a chart `w` px wide.
fn half_px(w: f64) -> f64 {
    1.6 * LIM / (w - 60.0).max(100.0)
}

impl View for DiffusionView {
    fn update(&mut self, params: &Params) {
        let seen = self.params_seen.as_ref();
        let ds_changed = seen.is_none_or(|p| p.choice("dataset") != params.choice("dataset"));
        if ds_changed || self.dataset.is_none() && self.ds_error.is_none() {
            self.reload_data(params);
        } else if seen.is_some_and(|p| p.get("seed") != params.get("seed")) {
            // A new seed redraws the forward cloud's noise; trained models stay.
            if let Some(ds) = &self.dataset {
                (self.x0, self.eps) = widget::cloud(ds, params.get("seed") as u32);
            }
        }
        self.t = params.get("t");
        if !self.flow {
            self.schedule =
                ScheduleKind::from_name(params.choice("schedule")).expect("table names");
        }
        if self.dataset.is_some() {
            let sched = if self.schedule == ScheduleKind::Linear {
                &self.linear
            } else {
                &self.cosine
            };
            self.cloud = widget::cloud_at(&self.x0, &self.eps, self.flow, self.t, sched);
        } else {
            self.cloud.clear();
        }
        self.v_forward += 1;
        self.adopt_shipped();
        self.plan_runs(params);
        self.params_seen = Some(params.clone());
    }

    fn data(&self) -> Json {
        let p = self.params_seen.as_ref();
        let runs: Vec<Json> = self
            .runs
            .iter()
            .map(|r| {
                let shown = self.shown(p, r);
                Json::obj([
                    ("sampler", Json::str(r.sampler.name())),
                    ("method", Json::str(r.method.name())),
                    ("steps", Json::Num(r.k as f64)),
                    ("network_evaluations", Json::Num(r.nfe() as f64)),
                    ("completed", Json::Num(r.completed() as f64)),
                    ("done", Json::Bool(r.run.done())),
                    ("shown", Json::Num(shown as f64)),
                    ("swd", Json::Num(self.run_swd(r, shown))),
                    ("particles", Json::Num(r.run.n() as f64)),
                ])
            })
            .collect();
        let ab = self.linear.alpha_bar(self.t as usize);
        let ab_cos = self.cosine.alpha_bar(self.t as usize);
        let mut fields = vec![
            (
                "dataset",
                self.dataset
                    .as_ref()
                    .map_or(Json::Null, |d| Json::str(d.name())),
            ),
            (
                "error",
                self.ds_error.as_ref().map_or(Json::Null, Json::str),
            ),
            ("t", Json::Num(self.t)),
            ("drawn_points", Json::Num(self.drawn.len() as f64)),
            (
                "cloud_mean",
                Json::nums(&[mean(&self.cloud, 0), mean(&self.cloud, 1)]),
            ),
            ("runs", Json::Arr(runs)),
            (
                "models",
                Json::Arr(
                    self.methods()
                        .iter()
                        .map(|&m| {
                            Json::obj([
                                ("method", Json::str(m.name())),
                                ("loaded", Json::Bool(self.model(m).is_some())),
                                ("source", Json::str(&self.source[m as usize])),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "training",
                Json::Arr(
                    self.trainers
                        .iter()
                        .map(|t| {
                            Json::obj([
                                ("method", Json::str(t.config.method.name())),
                                ("step", Json::Num(t.model.steps as f64)),
                                ("steps", Json::Num(t.config.steps as f64)),
                                (
                                    "loss",
                                    Json::Num(t.losses.last().map_or(f64::NAN, |&l| l as f64)),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
        ];
        if !self.flow {
            fields.push(("alpha_bar_linear", Json::Num(ab)));
            fields.push(("alpha_bar_cosine", Json::Num(ab_cos)));
            let cur = if self.schedule == ScheduleKind::Linear {
                ab
            } else {
                ab_cos
            };
            fields.push(("alpha_bar", Json::Num(cur)));
            fields.push(("snr", Json::Num(cur / (1.0 - cur))));
        }
        Json::obj(fields)
    }

    fn panel_json(&self, panel: usize) -> Json {
        let pts = |x: &[f32]| {
            Json::Arr(
                x.chunks(2)
                    .map(|p| Json::nums(&[p[0] as f64, p[1] as f64]))
                    .collect(),
            )
        };
        match (self.flow, panel) {
            (_, 0) => Json::obj([("t", Json::Num(self.t)), ("points", pts(&self.cloud))]),
            (false, 1) => Json::obj([
                (
                    "alphas_cumprod_linear",
                    Json::nums(&self.linear.alphas_cumprod),
                ),
                (
                    "alphas_cumprod_cosine",
                    Json::nums(&self.cosine.alphas_cumprod),
                ),
            ]),
            (true, 1) | (true, 2) | (false, 2) => {
                let i = if self.flow { panel - 1 } else { 0 };
                match self.runs.get(i) {
                    Some(r) => {
                        let shown = self.shown(self.params_seen.as_ref(), r);
                        Json::obj([
                            ("sampler", Json::str(r.sampler.name())),
                            ("shown", Json::Num(shown as f64)),
                            ("points", pts(r.frame(shown).1)),
                        ])
                    }
                    None => Json::Null,
                }
            }
            _ => Json::Arr(
                self.trainers
                    .iter()
                    .map(|t| {
                        Json::obj([
                            ("method", Json::str(t.config.method.name())),
                            (
                                "loss",
                                Json::Arr(t.losses.iter().map(|&l| Json::Num(l as f64)).collect()),
                            ),
                        ])
                    })
                    .collect(),
            ),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        let mut s = String::from("x1,x2\n");
        let x: &[f32] = match (self.flow, panel) {
            (_, 0) => &self.cloud,
            (false, 2) => self.runs.first().map_or(&[][..], |r| {
                r.frame(self.shown(self.params_seen.as_ref(), r)).1
            }),
            (true, 1 | 2) => self.runs.get(panel - 1).map_or(&[][..], |r| {
                r.frame(self.shown(self.params_seen.as_ref(), r)).1
            }),
            (false, 1) => {
                let mut s = String::from("t,alpha_bar_linear,alpha_bar_cosine\n");
                for t in 1..=BIG_T {
                    s += &format!(
                        "{t},{},{}\n",
                        self.linear.alpha_bar(t),
                        self.cosine.alpha_bar(t)
                    );
                }
                return s;
            }
            _ => {
                let mut s = String::from("method,step,loss\n");
                for t in &self.trainers {
                    for (i, l) in t.losses.iter().enumerate() {
                        s += &format!("{},{},{l}\n", t.config.method.name(), i + 1);
                    }
                }
                return s;
            }
        };
        for p in x.chunks(2) {
            s += &format!("{},{}\n", p[0], p[1]);
        }
        s
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        match (self.flow, panel) {
            (false, 1) if width < WIDE => 520.0,
            (_, 3) => 260.0,
            (false, 1) => 300.0,
            _ => width.clamp(300.0, 520.0),
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let (w, h) = area.dim_in_pixel();
        // Point clouds in a centred square, so that a circle looks round.
        let side = w.min(h + 40);
        let sq = area.clone().shrink(((w - side) / 2, 0), (side, h));
        let half = half_px(side as f64);
        match (self.flow, panel) {
            (_, 0) => self.draw_forward(&sq, theme, half),
            (false, 1) => self.draw_schedules(area, theme, w as f64),
            (false, 2) => self.draw_run(&sq, theme, 0, half),
            (true, 1) => self.draw_run(&sq, theme, 0, half),
            (true, 2) => self.draw_run(&sq, theme, 1, half),
            _ => self.draw_loss(area, theme),
        }
    }

    fn describe(&self, panel: usize) -> String {
        match (self.flow, panel) {
            (_, 0) => format!(
                "{} points of the {} data set moved to t = {}; {}",
                self.cloud.len() / 2,
                self.dataset.as_ref().map_or("(no)", |d| d.name()),
                self.t,
                if self.flow { "arrows show the learned velocity." } else { "at t = 1000 they are nearly pure noise." }
            ),
            (false, 1) => "alpha_bar_t falls from 1 to 0 for both schedules, the cosine one more slowly at first; the SNR falls by orders of magnitude.".into(),
            (_, 3) => format!("The training loss per step. {}", self.train_text()),
            _ => {
                let i = if self.flow { panel - 1 } else { 0 };
                match self.runs.get(i) {
                    Some(r) => {
                        let s = self.shown(self.params_seen.as_ref(), r);
                        format!(
                            "{} particles after {s} of {} {} steps; sliced Wasserstein distance to the data {:.3}.",
                            r.run.n(),
                            r.k,
                            r.sampler.name(),
                            self.run_swd(r, s)
                        )
                    }
                    None => "No model yet: the default weights are loading, or press Train.".into(),
                }
            }
        }
    }

    fn step(&mut self, params: &Params, budget_ms: f64) -> Option<Json> {
        let Some(ds) = self.dataset.clone() else {
            return Some(progress(true, 0.0, "", self.ds_error.clone()));
        };
        if self.trainers.is_empty() {
            self.train_error = None;
            let schedule = self.schedule;
            for &method in self.methods() {
                let cfg = TrainConfig {
                    method,
                    schedule,
                    batch: BATCH,
                    steps: params.get("train_steps") as u32,
                    seed: params.get("seed") as u64,
                    ..Default::default()
                };
                self.trainers.push(Trainer::new(cfg, ds.clone()));
            }
        }
        let start = now_ms();
        let mut error = None;
        'outer: while !self.trainers.iter().all(Trainer::done) {
            for t in self.trainers.iter_mut() {
                if t.done() {
                    continue;
                }
                let before = t.model.net.params.clone();
                let adam = t.adam.clone();
                let loss = t.step();
                if !loss.is_finite() {
                    t.model.net.params = before;
                    t.adam = adam;
                    error = Some(format!("training diverged at step {} (loss {loss}); the last good weights are kept", t.model.steps));
                    break 'outer;
                }
            }
            if now_ms() - start >= budget_ms {
                break;
            }
        }
        self.v_loss += 1;
        let done = self.trainers.iter().all(Trainer::done) || error.is_some();
        if done {
            for t in &self.trainers {
                let m = t.model.clone();
                match t.config.method {
                    Method::Ddpm => self.ddpm = Some(m),
                    Method::Flow => self.flowm = Some(m),
                }
                self.source[t.config.method as usize] =
                    format!("trained in the page ({} steps)", t.model.steps);
            }
            self.plan_runs(params);
            self.train_error = error.clone();
        }
        let t = &self.trainers[0];
        let frac = t.model.steps as f64 / t.config.steps.max(1) as f64;
        let loss = t.losses.last().copied().unwrap_or(f32::NAN);
        Some(progress(
            done,
            frac,
            &format!("{} · loss {loss:.3}", self.train_text()),
            error,
        ))
    }

    fn restart(&mut self, params: &Params) {
        self.trainers.clear();
        self.train_error = None;
        self.ddpm = None;
        self.flowm = None;
        self.source = [String::new(), String::new()];
        self.v_loss += 1;
        self.adopt_shipped();
        self.run_key.clear();
        self.plan_runs(params);
    }

    fn version(&self, panel: usize) -> Option<u64> {
        Some(match (self.flow, panel) {
            (_, 0) => self.v_forward + 1000 * self.v_runs,
            (false, 1) => self.v_forward,
            (_, 3) => self.v_loss,
            _ => {
                let i = if self.flow { panel - 1 } else { 0 };
                let c = self.runs.get(i).map_or(0, |r| r.completed() as u64);
                self.v_runs * 100_000 + c + 7 * self.v_forward
            }
        })
    }

    fn animating(&self) -> bool {
        self.runs.iter().any(|r| !r.run.done())
    }

    fn tick(&mut self, _params: &Params, _dt_ms: f64) {
        let start = now_ms();
        while now_ms() - start < 6.0 {
            let Some(i) = self.runs.iter().position(|r| !r.run.done()) else {
                break;
            };
            let method = self.runs[i].method;
            let Some(model) = (match method {
                Method::Ddpm => self.ddpm.as_ref(),
                Method::Flow => self.flowm.as_ref(),
            }) else {
                break;
            };
            self.runs[i].advance(&model.net, 256);
        }
    }

    fn text_input(&self) -> Option<&'static TextInput> {
        Some(&TEXT)
    }

    fn text(&self) -> String {
        self.drawn
            .iter()
            .map(|p| format!("{:.3},{:.3}", p[0], p[1]))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn set_text(&mut self, params: &Params, text: &str) -> Result<String, String> {
        let pts = data::parse_points(text)?;
        self.drawn = pts;
        if params.choice("dataset") == "drawn" {
            self.reload_data(params);
            self.update(params);
        }
        Ok(format!("{} drawn points", self.drawn.len()))
    }

    fn resource(&self) -> Option<String> {
        self.methods()
            .iter()
            .filter(|&&m| self.model(m).is_none())
            .filter_map(|&m| self.weights_path(m))
            .find(|p| !self.failed.contains(p) && !self.shipped.iter().any(|(q, _)| q == p))
    }

    fn provide(
        &mut self,
        params: &Params,
        path: &str,
        bytes: Result<&[u8], &str>,
    ) -> Result<(), String> {
        let fail = |me: &mut Self, why: String| {
            me.failed.push(path.to_string());
            Err(format!("could not load the default weights {path}: {why}; press Train to train in the page"))
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => return fail(self, e.to_string()),
        };
        match weights::from_bytes(bytes) {
            Ok(m) => {
                self.shipped.push((path.to_string(), m));
                self.adopt_shipped();
                self.plan_runs(params);
                Ok(())
            }
            Err(e) => fail(self, e),
        }
    }

    fn pointer_hint(&self, panel: usize) -> Option<&'static str> {
        (panel == 0)
            .then_some("With the 'drawn' data set: draw points here with the mouse or a finger")
    }

    fn pointer(
        &mut self,
        params: &Params,
        panel: usize,
        kind: &str,
        x: f64,
        y: f64,
        _w: f64,
        _h: f64,
    ) -> bool {
        if panel != 0 || params.choice("dataset") != "drawn" {
            return false;
        }
        let Some((x0, x1, y0, y1)) = *self.plot_box.borrow() else {
            return false;
        };
        if kind == "up" {
            self.reload_data(params);
            self.update(params);
            return true;
        }
        let px = -LIM + 2.0 * LIM * (x - x0) / (x1 - x0);
        let py = LIM - 2.0 * LIM * (y - y0) / (y1 - y0);
        if px.abs() > LIM || py.abs() > LIM {
            return false;
        }
        let p = [px as f32, py as f32];
        let far = self
            .drawn
            .last()
            .is_none_or(|q| ((q[0] - p[0]) as f64).hypot((q[1] - p[1]) as f64) > 0.06);
        if far {
            self.drawn.push(p);
            self.cloud.extend_from_slice(&p);
            self.v_forward += 1;
        }
        true
    }

    fn primary_params(&self) -> Option<usize> {
        Some(if self.flow { 5 } else { 6 })
    }

    fn backend(&self) -> Option<String> {
        Some("CPU: WebAssembly".into())
    }
}

fn progress(done: bool, fraction: f64, text: &str, error: Option<String>) -> Json {
    Json::obj([
        ("done", Json::Bool(done)),
        ("fraction", Json::Num(fraction)),
        ("text", Json::str(text)),
        ("error", error.map_or(Json::Null, Json::Str)),
    ])
}

fn mean(x: &[f32], c: usize) -> f64 {
    let n = x.len() / 2;
    if n == 0 {
        return f64::NAN;
    }
    x.iter().skip(c).step_by(2).map(|&v| v as f64).sum::<f64>() / n as f64
}

impl DiffusionView {
    /// A new data set (or new drawn points): the cloud, the evaluation set, and no models
    /// until the default weights (or training) provide them.
    fn reload_data(&mut self, params: &Params) {
        let ds = widget::dataset(params, Some(&self.drawn));
        self.ddpm = None;
        self.flowm = None;
        self.source = [String::new(), String::new()];
        self.trainers.clear();
        self.runs.clear();
        self.run_key.clear();
        self.v_loss += 1;
        match ds {
            Ok(ds) => {
                let (x0, eps) = widget::cloud(&ds, params.get("seed") as u32);
                self.x0 = x0;
                self.eps = eps;
                self.eval = swd::eval_set(&ds);
                self.dataset = Some(ds);
                self.ds_error = None;
            }
            Err(e) => {
                self.x0.clear();
                self.eps.clear();
                self.eval.clear();
                self.dataset = None;
                self.ds_error = Some(e);
            }
        }
    }

    fn draw_forward(&self, area: &Area, theme: &Theme, half: f64) -> Result<(), String> {
        let title = if self.flow {
            format!("x_t = (1 - t) x₀ + t x₁ at t = {:.2}", self.t)
        } else {
            let s = if self.schedule == ScheduleKind::Linear {
                &self.linear
            } else {
                &self.cosine
            };
            let ab = s.alpha_bar(self.t as usize);
            format!(
                "x_t at t = {}: ᾱ = {:.3}, SNR = {:.3}",
                self.t,
                ab,
                ab / (1.0 - ab)
            )
        };
        let mut c = cloud_chart(area, theme, &title)?;
        {
            let (xr, yr) = c.plotting_area().get_pixel_range();
            self.plot_box.replace(Some((
                xr.start as f64,
                xr.end as f64,
                yr.start as f64,
                yr.end as f64,
            )));
        }
        if self.cloud.is_empty() {
            let msg = self.ds_error.as_deref().unwrap_or("no data");
            return text(
                &mut c,
                &format!("{msg}: draw points here"),
                (-2.6, 0.0),
                &theme.muted_text(13.0),
            );
        }
        particles(&mut c, &self.cloud, half, theme.accent.mix(0.55).filled())?;
        if self.flow {
            let f = self.field_at(Method::Flow, self.t as f32);
            arrows(&mut c, &f, theme.palette[1].stroke_width(1))?;
        }
        Ok(())
    }

    fn draw_schedules(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let (a, b) = if width >= WIDE {
            area.split_horizontally(width / 2.0)
        } else {
            area.split_vertically(area.dim_in_pixel().1 as f64 / 2.0)
        };
        let t = self.t;
        let series = |s: &Schedule, f: &dyn Fn(f64) -> f64| -> Vec<Pt> {
            (0..=BIG_T)
                .step_by(5)
                .map(|i| (i as f64, f(s.alpha_bar(i))))
                .collect()
        };
        let styles = |k: ScheduleKind, i: usize| {
            let w = if k == self.schedule { 3 } else { 1 };
            theme.palette[i].stroke_width(w)
        };
        let mut c = chart(
            &a,
            theme,
            &Axes::new(
                "ᾱ_t (blue linear, orange cosine)",
                0.0..BIG_T as f64,
                0.0..1.05,
                "t",
                "ᾱ_t",
            ),
        )?;
        line(
            &mut c,
            &series(&self.linear, &|v| v),
            styles(ScheduleKind::Linear, 0),
        )?;
        line(
            &mut c,
            &series(&self.cosine, &|v| v),
            styles(ScheduleKind::Cosine, 1),
        )?;
        line(&mut c, &[(t, 0.0), (t, 1.05)], theme.muted.stroke_width(1))?;
        let lsnr = |v: f64| (v / (1.0 - v)).max(1e-6).log10();
        let mut c = chart(
            &b,
            theme,
            &Axes::new(
                "log₁₀ SNR = log₁₀ ᾱ/(1 - ᾱ)",
                0.0..BIG_T as f64,
                -6.0..5.0,
                "t",
                "log₁₀ SNR",
            ),
        )?;
        line(
            &mut c,
            &series(&self.linear, &lsnr),
            styles(ScheduleKind::Linear, 0),
        )?;
        line(
            &mut c,
            &series(&self.cosine, &lsnr),
            styles(ScheduleKind::Cosine, 1),
        )?;
        line(&mut c, &[(t, -6.0), (t, 5.0)], theme.muted.stroke_width(1))
    }

    fn draw_run(&self, area: &Area, theme: &Theme, i: usize, half: f64) -> Result<(), String> {
        let Some(r) = self.runs.get(i) else {
            let mut c = cloud_chart(area, theme, "No model yet")?;
            let msg = if self
                .dataset
                .as_ref()
                .is_some_and(|d| matches!(d, Dataset::Drawn(_)))
            {
                "Press Train to learn the drawn points"
            } else {
                "Loading the default weights… (or press Train)"
            };
            return text(&mut c, msg, (-2.7, 0.0), &theme.muted_text(13.0));
        };
        let shown = self.shown(self.params_seen.as_ref(), r);
        let (at, x) = r.frame(shown);
        let d = self.run_swd(r, at);
        let title = format!(
            "{} · step {at} of {} · {} evaluations · SW₂ {d:.3}",
            r.sampler.name().to_ascii_uppercase(),
            r.k,
            r.nfe()
        );
        let mut c = cloud_chart(area, theme, &title)?;
        particles(&mut c, x, half, theme.accent.mix(0.5).filled())?;
        // The field the network gives at the next step's time (at the end, the last one's).
        let row = r
            .run
            .plan
            .step_of_row
            .iter()
            .position(|&s| s > at)
            .unwrap_or(r.run.plan.len() - 1);
        let f = self.field_at(r.method, r.run.plan.s[row]);
        arrows(&mut c, &f, theme.palette[1].stroke_width(1))?;
        for tr in &r.traj {
            let upto = (at + 1).min(tr.len());
            line(&mut c, &tr[..upto], theme.palette[2].stroke_width(2))?;
        }
        Ok(())
    }

    fn draw_loss(&self, area: &Area, theme: &Theme) -> Result<(), String> {
        let n = self
            .trainers
            .iter()
            .map(|t| t.config.steps)
            .max()
            .unwrap_or(1) as f64;
        let mut curves = Vec::new();
        let mut hi: f64 = 0.1;
        for t in &self.trainers {
            // Means over windows of 20 steps.
            let pts: Vec<Pt> = t
                .losses
                .chunks(20)
                .enumerate()
                .map(|(i, c)| {
                    (
                        (i * 20 + c.len()) as f64,
                        c.iter().map(|&v| v as f64).sum::<f64>() / c.len() as f64,
                    )
                })
                .collect();
            hi = pts.iter().map(|p| p.1).fold(hi, f64::max);
            curves.push((t.config.method, pts));
        }
        let title = if self.trainers.is_empty() {
            "Press Train to train from scratch in the page".to_string()
        } else {
            format!(
                "Loss ({}) · {}",
                if self.flow {
                    "blue flow, orange DDPM"
                } else {
                    "mean of 20 steps"
                },
                self.train_text()
            )
        };
        let mut c = chart(
            area,
            theme,
            &Axes::new(&title, 0.0..n, 0.0..hi * 1.05, "Adam step", "loss"),
        )?;
        for (m, pts) in curves {
            let col = if m == Method::Flow || !self.flow {
                0
            } else {
                1
            };
            line(&mut c, &pts, theme.palette[col].stroke_width(2))?;
        }
        if let Some(e) = &self.train_error {
            text(&mut c, e, (0.05 * n, 0.5 * hi), &theme.muted_text(12.0))?;
        }
        Ok(())
    }
}
