//! Chinchilla scaling laws, shown and refitted: the widget `<ml-scaling-laws>`.
//!
//! ```text
//! L(N, D) = E + A / N^alpha + B / D^beta,    C = 6 N D
//! N_opt(C) = G (C/6)^(beta/(alpha+beta)),   D_opt(C) = G^-1 (C/6)^(alpha/(alpha+beta))
//! ```
//!
//! Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", fitted the law
//! to about 400 training runs (Approach 3); Besiroglu et al. (2024), "Chinchilla Scaling: A
//! replication attempt", refitted it to the same runs read off the paper's figure and got
//! different constants and much tighter intervals. Both sets are in [`law::Law`].
//!
//! The widget's three panels: the loss landscape over (log N, log D) with iso-FLOP lines,
//! both compute-optimal frontiers and published models ([`Landscape`], [`ModelPoint`]); the
//! loss along one budget's iso-FLOP line ([`IsoFlop`]); and a fit of the five constants to
//! synthetic or entered points ([`fit`]). The CLI's `mlplay scaling` and `mlplay
//! scaling-fit` are in [`cli`].
//!
//! - [`law`]: the loss, the closed-form optimum and its numerical twin;
//! - [`fit`]: the Huber-loss fit, its starting points, the bootstrap, CSV input;
//! - [`lbfgs`]: the optimiser both papers used;
//! - [`contour`]: marching squares for the landscape's iso-loss lines.

pub mod cli;
pub mod contour;
pub mod fit;
pub mod law;
pub mod lbfgs;

use ndarray::Array2;

use self::contour::Line;
use self::fit::{FitJob, FitOptions, Interval, Point};
use self::law::{flops, Law, Optimum};
use crate::json::Json;
use crate::math::{ln, pow};
use crate::params::{ParamSpec, Params, WidgetSpec};

/// 10^x, the same bits on the CLI and in the browser (through [`crate::math`]).
pub fn exp10(x: f64) -> f64 {
    pow(10.0, x)
}

/// log10(x) as ln(x) / ln(10), the same bits on the CLI and in the browser.
pub fn log10(x: f64) -> f64 {
    ln(x) / std::f64::consts::LN_10
}

/// The published constant sets, as the `constants` menu names them.
pub const CONSTANTS: &[&str] = &["hoffmann", "epoch"];

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "scaling-laws",
    title: "Scaling laws you can fit yourself",
    summary: "Chinchilla's L(N, D) = E + A/N^α + B/D^β: how a compute budget splits into parameters and tokens, which famous models got it wrong, and how sure a fit to ~100 runs can be.",
    trainer: false,
    params: &[
        ParamSpec::number(
            "log_c",
            "Compute budget log₁₀ C (FLOPs)",
            "log₁₀C",
            "Training compute C = 6 N D in FLOPs, on a log scale (Gopher and Chinchilla: 5.76e23, log 23.76).",
            23.76,
            18.0,
            27.0,
            0.01,
        ),
        ParamSpec::choice(
            "constants",
            "Constants",
            "law",
            "Which fit of E, A, B, α, β to draw and to draw synthetic points from: Hoffmann et al. 2022 (Approach 3) or Epoch AI's 2024 replication.",
            0,
            CONSTANTS,
        ),
        ParamSpec::number(
            "count",
            "Synthetic runs n",
            "n",
            "How many training runs to draw, spread over Hoffmann et al.'s nine IsoFLOP budgets (6e18 to 3e21 FLOPs).",
            90.0,
            10.0,
            300.0,
            1.0,
        ),
        ParamSpec::number(
            "noise",
            "Noise σ on log L",
            "σ",
            "Standard deviation of the Gaussian noise added to log L of each synthetic run (0.01 is about 1% of the loss).",
            0.01,
            0.0,
            0.05,
            0.001,
        ),
        ParamSpec::number(
            "boot",
            "Bootstrap replicates",
            "R",
            "Refits on resampled points behind the 95% intervals (0 for no intervals). They run a few per frame, so the page never blocks.",
            200.0,
            0.0,
            1000.0,
            10.0,
        ),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed for the synthetic runs and the bootstrap resampling.",
            1.0,
            0.0,
            9999.0,
            1.0,
        ),
    ],
};

/// Which points the fit panel fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Drawn from the chosen law with noise ([`fit::synthetic`]).
    Synthetic,
    /// Runs given as CSV text ([`fit::parse_csv`]): the page's text box, or a file.
    Entered,
}

/// The typed configuration read once from the parameter table.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Compute budget C in FLOPs (the slider moves log10 C).
    pub compute: f64,
    /// Name of the chosen constant set (`hoffmann` or `epoch`).
    pub constants: &'static str,
    /// Synthetic runs to draw.
    pub count: usize,
    /// Standard deviation of the noise on log L of synthetic runs.
    pub noise: f64,
    /// Bootstrap replicates behind the intervals.
    pub bootstrap: usize,
    pub seed: u64,
    /// Runs given as CSV text, fitted instead of synthetic ones (the page's text box).
    pub points_csv: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        Config {
            compute: exp10(p.get("log_c")),
            constants: p.choice("constants"),
            count: p.get("count") as usize,
            noise: p.get("noise"),
            bootstrap: p.get("boot") as usize,
            seed: p.get("seed") as u64,
            points_csv: None,
        }
    }

    /// Entered runs when there are any, else synthetic ones.
    pub fn source(&self) -> Source {
        if self.points_csv.is_some() {
            Source::Entered
        } else {
            Source::Synthetic
        }
    }

    /// The chosen constant set.
    pub fn law(&self) -> Law {
        Law::named(self.constants).expect("a name from CONSTANTS")
    }

    /// The constant set not chosen (drawn for comparison).
    pub fn other_constants(&self) -> &'static str {
        if self.constants == "hoffmann" {
            "epoch"
        } else {
            "hoffmann"
        }
    }

    /// What the fit panel depends on: everything but the budget.
    pub fn fit_setup(&self) -> FitSetup {
        FitSetup {
            law: self.law(),
            source: self.source(),
            count: self.count,
            noise: self.noise,
            bootstrap: self.bootstrap,
            seed: self.seed,
            points_csv: self.points_csv.clone().unwrap_or_default(),
        }
    }
}

/// A published model and where it sits relative to the chosen law's frontier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Published {
    pub name: &'static str,
    /// Parameters N.
    pub n: f64,
    /// Training tokens D.
    pub d: f64,
}

/// Parameter and token counts from each model's own paper.
pub const PUBLISHED: [Published; 5] = [
    // Brown et al. 2020, "Language Models are Few-Shot Learners": Table 2.1 (175.0B
    // parameters); Section 2.2: "all models were trained for a total of 300 billion tokens".
    Published {
        name: "GPT-3",
        n: 175e9,
        d: 300e9,
    },
    // Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from Training
    // Gopher": Table 1, 280B parameters; trained on 300B tokens (Section 3). Hoffmann et al.
    // Table 1 lists it the same way, at 5.76e23 FLOPs by their exact count (6ND = 5.04e23).
    Published {
        name: "Gopher",
        n: 280e9,
        d: 300e9,
    },
    // Hoffmann et al. 2022: Chinchilla, 70B parameters on 1.4T tokens (Table 1, Section 4.1).
    Published {
        name: "Chinchilla",
        n: 70e9,
        d: 1.4e12,
    },
    // Touvron et al. 2023, "Llama 2: Open Foundation and Fine-Tuned Chat Models": Table 1,
    // 70B parameters, 2.0T tokens.
    Published {
        name: "Llama 2 70B",
        n: 70e9,
        d: 2.0e12,
    },
    // Meta 2024, Llama 3 model card (github.com/meta-llama/llama3, MODEL_CARD.md): 70B,
    // "15T+" pretraining tokens; "The Llama 3 Herd of Models" (Dubey et al. 2024, Section
    // 3.1) gives about 15T multilingual tokens. 15T is the stated lower bound.
    Published {
        name: "Llama 3 70B",
        n: 70e9,
        d: 15e12,
    },
];

/// A model N / N_opt above this is called under-trained (too big for its tokens), below its
/// inverse over-trained. At a factor 1.5 the loss is within 0.6% of the optimum's from 1e18
/// FLOPs up, and within 0.1% at Chinchilla's budget, under either constant set.
pub const VERDICT_FACTOR: f64 = 1.5;

/// A published model placed on the chosen law.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPoint {
    pub model: Published,
    /// Its training compute, 6 N D.
    pub compute: f64,
    /// The compute-optimal model for that compute.
    pub optimum: Optimum,
    /// N / N_opt: above 1 too many parameters for the tokens.
    pub ratio: f64,
    /// Predicted loss of the model as trained.
    pub loss: f64,
    /// `under-trained`, `over-trained` or `near-optimal`.
    pub verdict: &'static str,
}

impl ModelPoint {
    pub fn new(model: Published, law: &Law) -> ModelPoint {
        let compute = flops(model.n, model.d);
        let optimum = law.optimum(compute);
        let ratio = model.n / optimum.n;
        ModelPoint {
            model,
            compute,
            optimum,
            ratio,
            loss: law.loss(model.n, model.d),
            verdict: if ratio > VERDICT_FACTOR {
                "under-trained"
            } else if ratio < 1.0 / VERDICT_FACTOR {
                "over-trained"
            } else {
                "near-optimal"
            },
        }
    }

    pub fn to_json(&self) -> Json {
        Json::obj([
            ("name", Json::str(self.model.name)),
            ("n", Json::Num(self.model.n)),
            ("d", Json::Num(self.model.d)),
            ("compute", Json::Num(self.compute)),
            ("n_opt", Json::Num(self.optimum.n)),
            ("d_opt", Json::Num(self.optimum.d)),
            ("ratio", Json::Num(self.ratio)),
            ("loss", Json::Num(self.loss)),
            ("loss_opt", Json::Num(self.optimum.loss)),
            ("verdict", Json::str(self.verdict)),
        ])
    }
}

/// The landscape's axes: log10 N from 10M to 10T parameters, log10 D from 1B to 300T tokens.
pub const LOG_N_RANGE: (f64, f64) = (7.0, 13.0);
pub const LOG_D_RANGE: (f64, f64) = (9.0, 14.5);
/// Grid spacing of the landscape in decades (121 x 111 samples).
pub const GRID_STEP: f64 = 0.05;
/// Candidate iso-loss levels; those more than 0.03 above E and inside the map are drawn.
pub const LEVELS: [f64; 15] = [
    1.8, 1.85, 1.9, 1.95, 2.0, 2.1, 2.2, 2.35, 2.5, 2.75, 3.0, 3.5, 4.0, 4.5, 5.0,
];

/// The loss sampled over (log10 N, log10 D) and its iso-loss lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Landscape {
    pub law: Law,
    /// Sample positions, log10 N (nx,) and log10 D (ny,).
    pub log_n: Vec<f64>,
    pub log_d: Vec<f64>,
    /// `loss[[j, i]] = L(10^log_n[i], 10^log_d[j])`, shape (ny, nx).
    pub loss: Array2<f64>,
    /// The iso-loss levels drawn, increasing.
    pub levels: Vec<f64>,
    pub lines: Vec<Line>,
}

fn steps(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(|i| lo + step * i as f64).collect()
}

impl Landscape {
    pub fn new(law: &Law) -> Landscape {
        let log_n = steps(LOG_N_RANGE.0, LOG_N_RANGE.1, GRID_STEP); // (nx,)
        let log_d = steps(LOG_D_RANGE.0, LOG_D_RANGE.1, GRID_STEP); // (ny,)
        let loss = Array2::from_shape_fn((log_d.len(), log_n.len()), |(j, i)| {
            law.loss(exp10(log_n[i]), exp10(log_d[j]))
        }); // (ny, nx)
        let (lo, hi) = loss
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let levels: Vec<f64> = LEVELS
            .iter()
            .copied()
            .filter(|&l| l > law.e + 0.03 && l > lo && l < hi)
            .collect();
        let lines = levels
            .iter()
            .flat_map(|&l| contour::contour(&log_n, &log_d, &loss, l))
            .collect();
        Landscape {
            law: *law,
            log_n,
            log_d,
            loss,
            levels,
            lines,
        }
    }
}

/// The loss along one budget's iso-FLOP line, for both constant sets.
#[derive(Clone, Debug, PartialEq)]
pub struct IsoFlop {
    pub compute: f64,
    /// log10 N samples (shared by both curves).
    pub log_n: Vec<f64>,
    /// L(N, C/6N) under the chosen and the other constant set.
    pub loss: Vec<f64>,
    pub loss_other: Vec<f64>,
    /// The closed-form optima of both sets.
    pub optimum: Optimum,
    pub optimum_other: Optimum,
}

/// Points on each iso-FLOP curve.
pub const ISO_POINTS: usize = 241;

impl IsoFlop {
    /// Curves over 1.5 decades either side of the two optima.
    pub fn new(law: &Law, other: &Law, compute: f64) -> IsoFlop {
        let (o1, o2) = (law.optimum(compute), other.optimum(compute));
        let lo = log10(o1.n.min(o2.n)) - 1.5;
        let hi = log10(o1.n.max(o2.n)) + 1.5;
        let log_n: Vec<f64> = (0..ISO_POINTS)
            .map(|i| lo + (hi - lo) * i as f64 / (ISO_POINTS - 1) as f64)
            .collect();
        let curve = |l: &Law| -> Vec<f64> {
            log_n
                .iter()
                .map(|&x| l.loss_at_compute(compute, exp10(x)))
                .collect()
        };
        IsoFlop {
            compute,
            loss: curve(law),
            loss_other: curve(other),
            log_n,
            optimum: o1,
            optimum_other: o2,
        }
    }
}

/// What the fit depends on (the budget slider does not refit).
#[derive(Clone, Debug, PartialEq)]
pub struct FitSetup {
    /// The law synthetic points are drawn from (and the reference beside entered ones).
    pub law: Law,
    pub source: Source,
    pub count: usize,
    pub noise: f64,
    pub bootstrap: usize,
    pub seed: u64,
    /// Entered points as CSV (empty for synthetic).
    pub points_csv: String,
}

/// The fit panel: its points, what was skipped, and the fit as far as it has got.
#[derive(Clone, Debug)]
pub struct FitPanel {
    pub setup: FitSetup,
    pub points: Vec<Point>,
    /// Lines of entered CSV that could not be used.
    pub skipped: Vec<String>,
    /// Why there is no fit (too few points), if so.
    pub error: Option<String>,
    pub job: Option<FitJob>,
}

impl FitPanel {
    /// Draw or parse the points and set up the fit (no fitting yet: see [`FitPanel::step`]).
    pub fn new(setup: FitSetup) -> FitPanel {
        let (points, skipped) = match setup.source {
            Source::Synthetic => (
                fit::synthetic(&setup.law, setup.count, setup.noise, setup.seed),
                Vec::new(),
            ),
            Source::Entered => {
                let parsed = fit::parse_csv(&setup.points_csv);
                (parsed.points, parsed.skipped)
            }
        };
        let opts = FitOptions {
            bootstrap: setup.bootstrap,
            seed: setup.seed,
            ..FitOptions::default()
        };
        let (job, error) = match FitJob::new(&points, &opts) {
            Ok(job) => (Some(job), None),
            Err(e) => (None, Some(e)),
        };
        FitPanel {
            setup,
            points,
            skipped,
            error,
            job,
        }
    }

    /// One unit of fitting work (an L-BFGS run); false when everything is done.
    pub fn step(&mut self) -> bool {
        self.job.as_mut().is_some_and(FitJob::step)
    }

    pub fn finish(&mut self) {
        if let Some(job) = &mut self.job {
            job.finish();
        }
    }

    pub fn done(&self) -> bool {
        self.job.as_ref().is_none_or(FitJob::done)
    }

    /// Fraction of the work done (1 with nothing to do).
    pub fn fraction(&self) -> f64 {
        self.job
            .as_ref()
            .map_or(1.0, |j| j.completed() as f64 / j.total().max(1) as f64)
    }

    pub fn fitted(&self) -> Option<&Law> {
        self.job.as_ref()?.fit().map(|f| &f.law)
    }

    pub fn intervals(&self) -> Option<Vec<Interval>> {
        self.job.as_ref()?.intervals()
    }

    /// Bootstrap replicates done so far.
    pub fn replicates(&self) -> usize {
        self.job
            .as_ref()
            .and_then(FitJob::bootstrap)
            .map_or(0, |b| b.replicates.len())
    }

    pub fn to_json(&self) -> Json {
        let law_json = |l: &Law| {
            Json::obj([
                ("E", Json::Num(l.e)),
                ("A", Json::Num(l.a)),
                ("B", Json::Num(l.b)),
                ("alpha", Json::Num(l.alpha)),
                ("beta", Json::Num(l.beta)),
            ])
        };
        let fit = self.job.as_ref().and_then(FitJob::fit);
        Json::obj([
            (
                "source",
                Json::str(match self.setup.source {
                    Source::Synthetic => "synthetic",
                    Source::Entered => "entered",
                }),
            ),
            (
                "points",
                Json::Arr(
                    self.points
                        .iter()
                        .map(|p| Json::nums(&[p.n, p.d, p.loss]))
                        .collect(),
                ),
            ),
            (
                "skipped",
                Json::Arr(self.skipped.iter().map(Json::str).collect()),
            ),
            ("error", self.error.as_ref().map_or(Json::Null, Json::str)),
            // The law the points came from (synthetic) or are compared with (entered).
            ("reference", law_json(&self.setup.law)),
            ("fitted", fit.map_or(Json::Null, |f| law_json(&f.law))),
            (
                "objective",
                fit.map_or(Json::Null, |f| Json::Num(f.objective)),
            ),
            (
                "converged",
                fit.map_or(Json::Null, |f| Json::Bool(f.converged)),
            ),
            (
                "intervals",
                self.intervals()
                    .map_or(Json::Null, |iv| intervals_json(&iv)),
            ),
            ("level", Json::Num(fit::LEVEL)),
            (
                "bootstrap",
                Json::obj([
                    ("replicates", Json::Num(self.replicates() as f64)),
                    ("target", Json::Num(self.setup.bootstrap as f64)),
                ]),
            ),
            ("done", Json::Bool(self.done())),
        ])
    }
}

/// `{"E": {"estimate", "lo", "hi"}, ...}`.
pub fn intervals_json(iv: &[Interval]) -> Json {
    Json::Obj(
        iv.iter()
            .map(|i| {
                (
                    i.name.to_string(),
                    Json::obj([
                        ("estimate", Json::Num(i.estimate)),
                        ("lo", Json::Num(i.lo)),
                        ("hi", Json::Num(i.hi)),
                    ]),
                )
            })
            .collect(),
    )
}

/// The budget readout: N_opt, D_opt, tokens per parameter and the loss.
pub fn optimum_json(o: &Optimum) -> Json {
    Json::obj([
        ("compute", Json::Num(o.compute)),
        ("n_opt", Json::Num(o.n)),
        ("d_opt", Json::Num(o.d)),
        ("loss", Json::Num(o.loss)),
        ("tokens_per_param", Json::Num(o.tokens_per_param())),
    ])
}

/// Everything `<ml-scaling-laws>` plots.
#[derive(Clone, Debug)]
pub struct Data {
    pub config: Config,
    pub landscape: Landscape,
    pub iso: IsoFlop,
    pub models: Vec<ModelPoint>,
    pub fit: FitPanel,
}

/// The compute-optimal frontier of a law across the slider's range, as (log10 N, log10 D).
pub fn frontier(law: &Law) -> Vec<(f64, f64)> {
    (18..=27)
        .map(|k| {
            let o = law.optimum(exp10(f64::from(k)));
            (log10(o.n), log10(o.d))
        })
        .collect()
}

/// The published models placed on a law.
pub fn models(law: &Law) -> Vec<ModelPoint> {
    PUBLISHED.iter().map(|m| ModelPoint::new(*m, law)).collect()
}

/// Everything at once, the fit run to the end (the CLI and tests; the page spreads the fit
/// over frames with [`FitPanel::step`]).
pub fn compute(config: &Config) -> Data {
    let law = config.law();
    let other = Law::named(config.other_constants()).expect("a name from CONSTANTS");
    let mut fit = FitPanel::new(config.fit_setup());
    fit.finish();
    Data {
        landscape: Landscape::new(&law),
        iso: IsoFlop::new(&law, &other, config.compute),
        models: models(&law),
        fit,
        config: config.clone(),
    }
}

/// Panel 0 the landscape, 1 the iso-FLOP curve, 2 the fit.
pub const PANELS: usize = 3;

/// Panel JSON pieces, shared by the core's [`Data`] and the page's view.
pub fn budget_json(config: &Config, iso: &IsoFlop) -> Json {
    Json::obj([
        ("compute", Json::Num(config.compute)),
        ("constants", Json::str(config.constants)),
        (config.constants, optimum_json(&iso.optimum)),
        (config.other_constants(), optimum_json(&iso.optimum_other)),
    ])
}

pub fn landscape_json(l: &Landscape, models: &[ModelPoint]) -> Json {
    let pairs = |v: &[(f64, f64)]| {
        Json::Arr(
            v.iter()
                .map(|&(x, y)| Json::nums(&[x, y]))
                .collect::<Vec<_>>(),
        )
    };
    Json::obj([
        ("levels", Json::nums(&l.levels)),
        ("log_n_range", Json::nums(&[LOG_N_RANGE.0, LOG_N_RANGE.1])),
        ("log_d_range", Json::nums(&[LOG_D_RANGE.0, LOG_D_RANGE.1])),
        (
            "frontier",
            Json::obj(CONSTANTS.iter().map(|&name| {
                let law = Law::named(name).expect("a name from CONSTANTS");
                (name, pairs(&frontier(&law)))
            })),
        ),
        (
            "models",
            Json::Arr(models.iter().map(ModelPoint::to_json).collect()),
        ),
    ])
}

pub fn iso_json(iso: &IsoFlop) -> Json {
    Json::obj([
        ("compute", Json::Num(iso.compute)),
        ("log_n", Json::nums(&iso.log_n)),
        ("loss", Json::nums(&iso.loss)),
        ("loss_other", Json::nums(&iso.loss_other)),
        ("min", optimum_json(&iso.optimum)),
        ("min_other", optimum_json(&iso.optimum_other)),
    ])
}

impl Data {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("budget", budget_json(&self.config, &self.iso)),
            ("landscape", landscape_json(&self.landscape, &self.models)),
            ("iso_flop", iso_json(&self.iso)),
            ("fit", self.fit.to_json()),
        ])
    }

    pub fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 => Json::obj([
                ("budget", budget_json(&self.config, &self.iso)),
                ("landscape", landscape_json(&self.landscape, &self.models)),
            ]),
            1 => iso_json(&self.iso),
            _ => self.fit.to_json(),
        }
    }

    pub fn panel_csv(&self, panel: usize) -> String {
        panel_csv(panel, &self.landscape, &self.iso, &self.models, &self.fit)
    }
}

/// One panel's data as CSV with a header row.
pub fn panel_csv(
    panel: usize,
    landscape: &Landscape,
    iso: &IsoFlop,
    models: &[ModelPoint],
    fit: &FitPanel,
) -> String {
    let mut out = String::new();
    match panel {
        0 => {
            out.push_str("log10_N,log10_D,L\n");
            for (j, &y) in landscape.log_d.iter().enumerate() {
                for (i, &x) in landscape.log_n.iter().enumerate() {
                    out.push_str(&format!("{x},{y},{}\n", landscape.loss[[j, i]]));
                }
            }
            out.push_str("\nmodel,N,D,C,N_opt,N_over_N_opt,verdict\n");
            for m in models {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    m.model.name, m.model.n, m.model.d, m.compute, m.optimum.n, m.ratio, m.verdict
                ));
            }
        }
        1 => {
            out.push_str("log10_N,L_chosen,L_other\n");
            for i in 0..iso.log_n.len() {
                out.push_str(&format!(
                    "{},{},{}\n",
                    iso.log_n[i], iso.loss[i], iso.loss_other[i]
                ));
            }
        }
        _ => {
            out.push_str("N,D,L\n");
            for p in &fit.points {
                out.push_str(&format!("{},{},{}\n", p.n, p.d, p.loss));
            }
            if let Some(iv) = fit.intervals() {
                out.push_str("\nconstant,estimate,lo,hi\n");
                for i in iv {
                    out.push_str(&format!("{},{},{},{}\n", i.name, i.estimate, i.lo, i.hi));
                }
            }
        }
    }
    out
}
