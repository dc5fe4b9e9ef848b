//! PPO's clipped surrogate objective (Schulman et al. 2017, eq. 7), and what it does to an update.
//!
//! ```text
//! L_clip(r) = min( r A, clip(r, 1 - eps, 1 + eps) A ),   r = pi_theta(a|s) / pi_old(a|s)
//! ```
//!
//! Panel 1 of `<ml-ppo-clip>` plots `L_clip` and the unclipped `r A` against `r`; the
//! gradient `dL/dr` is zero exactly where the clipped branch is the smaller one (A > 0 and
//! r > 1 + eps, or A < 0 and r < 1 - eps): there the sample stops pushing the policy.
//!
//! Panel 2 runs the update itself on a categorical policy over a few actions in one state,
//! `pi_theta = softmax(theta)`, with the expectation over actions taken exactly under
//! `pi_old` (no sampling noise):
//!
//! ```text
//! J(theta) = sum_a pi_old(a) L(r_a(theta), A_a)
//! dJ/dtheta_j = sum_a pi_old(a) L'(r_a) r_a (1[a = j] - pi_theta(j))
//! ```
//!
//! K epochs of gradient ascent on the clipped and on the unclipped `J` from the same start
//! show the clipped ratios stalling near `1 +- eps` while the unclipped ones run away.

use ndarray::Array1;

use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::rng::Rng;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "ppo-clip",
    title: "PPO's clipped objective",
    summary: "How min(r A, clip(r, 1-ε, 1+ε) A) stops an update once the policy ratio leaves the trust region.",
    trainer: false,
    params: &[
        ParamSpec {
            key: "eps",
            label: "Clip range ε",
            symbol: "ε",
            doc: "Half-width of the trust region [1-ε, 1+ε] for the ratio r (PPO paper: 0.2).",
            default: 0.2,
            min: 0.01,
            max: 0.5,
            step: 0.01,
            choices: &[],
            log: false,
        },
        ParamSpec {
            key: "adv",
            label: "Advantage A",
            symbol: "A",
            doc: "Advantage of the action in panel 1; the second plot shows -A.",
            default: 1.0,
            min: -2.0,
            max: 2.0,
            step: 0.1,
            choices: &[],
            log: false,
        },
        ParamSpec {
            key: "lr",
            label: "Learning rate η",
            symbol: "η",
            doc: "Step size of the gradient ascent on the policy logits in panel 2.",
            default: 0.5,
            min: 0.05,
            max: 5.0,
            step: 0.05,
            choices: &[],
            log: false,
        },
        ParamSpec {
            key: "epochs",
            label: "Epochs K",
            symbol: "K",
            doc: "Gradient steps taken on the same batch (PPO reuses each rollout for K epochs).",
            default: 20.0,
            min: 1.0,
            max: 100.0,
            step: 1.0,
            choices: &[],
            log: false,
        },
        ParamSpec {
            key: "actions",
            label: "Actions",
            symbol: "n",
            doc: "Number of actions of the categorical policy in panel 2.",
            default: 4.0,
            min: 2.0,
            max: 8.0,
            step: 1.0,
            choices: &[],
            log: false,
        },
        ParamSpec {
            key: "seed",
            label: "Seed",
            symbol: "seed",
            doc: "Seed for the starting policy and the advantages in panel 2.",
            default: 3.0,
            min: 0.0,
            max: 9999.0,
            step: 1.0,
            choices: &[],
            log: false,
        },
    ],
};

/// The typed configuration read once from the parameter table.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Clip range epsilon.
    pub clip_coef: f64,
    /// Advantage for panel 1.
    pub advantage: f64,
    /// Learning rate of panel 2's gradient ascent.
    pub learning_rate: f64,
    /// Number of epochs (gradient steps) in panel 2.
    pub update_epochs: usize,
    /// Actions of panel 2's categorical policy.
    pub n_actions: usize,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        Config {
            clip_coef: p.get("eps"),
            advantage: p.get("adv"),
            learning_rate: p.get("lr"),
            update_epochs: p.get("epochs") as usize,
            n_actions: p.get("actions") as usize,
            seed: p.get("seed") as u64,
        }
    }
}

/// `L_clip(r) = min(r A, clip(r, 1-eps, 1+eps) A)`.
pub fn l_clip(r: f64, adv: f64, eps: f64) -> f64 {
    (r * adv).min(r.clamp(1.0 - eps, 1.0 + eps) * adv)
}

/// `dL_clip/dr`: `A` where the unclipped branch is in force, 0 where the clipped branch is
/// strictly smaller (the flat parts). At the kinks r = 1 +- eps both branches are equal and
/// the unclipped derivative is returned.
pub fn l_clip_grad(r: f64, adv: f64, eps: f64) -> f64 {
    let clip_active = (adv > 0.0 && r > 1.0 + eps) || (adv < 0.0 && r < 1.0 - eps);
    if clip_active {
        0.0
    } else {
        adv
    }
}

/// Panel 1's plotted data for one advantage.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub advantage: f64,
    pub r: Vec<f64>,
    pub clipped: Vec<f64>,
    pub unclipped: Vec<f64>,
    pub grad: Vec<f64>,
}

/// `L_clip`, `r A` and `dL_clip/dr` on `n` evenly spaced ratios in [0, r_max].
pub fn curve(adv: f64, eps: f64, r_max: f64, n: usize) -> Curve {
    let r: Vec<f64> = (0..n).map(|i| r_max * i as f64 / (n - 1) as f64).collect();
    Curve {
        advantage: adv,
        clipped: r.iter().map(|&r| l_clip(r, adv, eps)).collect(),
        unclipped: r.iter().map(|&r| r * adv).collect(),
        grad: r.iter().map(|&r| l_clip_grad(r, adv, eps)).collect(),
        r,
    }
}

fn softmax(logits: &Array1<f64>) -> Array1<f64> {
    let m = logits.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let e = logits.mapv(|z| crate::math::exp(z - m)); // (n,), same bits on the CLI and in wasm
    let s = e.sum();
    e / s
}

/// The toy problem of panel 2: a starting policy and per-action advantages.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Starting logits theta_0 (pi_old = softmax(theta_0)).
    pub logits: Array1<f64>,
    /// Advantage of each action, centred so that E_{pi_old}[A] = 0 as true advantages are.
    pub advantages: Array1<f64>,
}

impl Problem {
    /// Logits ~ N(0, 0.5^2), action values Q ~ N(0, 1), A = Q - sum_a pi_old(a) Q(a).
    pub fn sample(n_actions: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let logits = Array1::from_shape_fn(n_actions, |_| 0.5 * rng.normal());
        let q = Array1::from_shape_fn(n_actions, |_| rng.normal());
        let pi_old = softmax(&logits);
        let v = pi_old.dot(&q);
        Problem {
            logits,
            advantages: q - v,
        }
    }

    pub fn pi_old(&self) -> Array1<f64> {
        softmax(&self.logits)
    }
}

/// The surrogate J(theta) = sum_a pi_old(a) L(r_a, A_a); unclipped when `eps` is None.
pub fn surrogate(problem: &Problem, logits: &Array1<f64>, eps: Option<f64>) -> f64 {
    let pi_old = problem.pi_old();
    let r = softmax(logits) / &pi_old; // (n,)
    r.iter()
        .zip(&problem.advantages)
        .zip(&pi_old)
        .map(|((&r, &a), &p)| p * eps.map_or(r * a, |e| l_clip(r, a, e)))
        .sum()
}

/// dJ/dtheta by the chain rule through the softmax (see the module docs).
pub fn surrogate_grad(problem: &Problem, logits: &Array1<f64>, eps: Option<f64>) -> Array1<f64> {
    let pi_old = problem.pi_old();
    let pi = softmax(logits); // (n,)
    let r = &pi / &pi_old; // (n,)
                           // w_a = pi_old(a) L'(r_a) r_a, then dJ/dtheta_j = w_j - pi_j sum_a w_a.
    let w = Array1::from_shape_fn(pi.len(), |a| {
        let adv = problem.advantages[a];
        let dl_dr = eps.map_or(adv, |e| l_clip_grad(r[a], adv, e));
        pi_old[a] * dl_dr * r[a]
    });
    let total = w.sum();
    &w - &(&pi * total)
}

/// Ratios per epoch (`ratios[k][a]`, k = 0 is the start, all ones) and the surrogate value.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub ratios: Vec<Vec<f64>>,
    pub objective: Vec<f64>,
}

/// K epochs of gradient ascent from theta_0 on the clipped (`Some(eps)`) or unclipped objective.
pub fn run_update(problem: &Problem, eps: Option<f64>, lr: f64, epochs: usize) -> Trajectory {
    let pi_old = problem.pi_old();
    let mut logits = problem.logits.clone();
    let mut ratios = Vec::with_capacity(epochs + 1);
    let mut objective = Vec::with_capacity(epochs + 1);
    for k in 0..=epochs {
        if k > 0 {
            logits = &logits + &(surrogate_grad(problem, &logits, eps) * lr);
        }
        ratios.push((softmax(&logits) / &pi_old).to_vec());
        objective.push(surrogate(problem, &logits, eps));
    }
    Trajectory { ratios, objective }
}

/// Everything `<ml-ppo-clip>` plots, computed from its configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub config: Config,
    pub curve: Curve,
    pub curve_flipped: Curve,
    pub problem: Problem,
    pub clipped: Trajectory,
    pub unclipped: Trajectory,
}

/// Points on panel 1's curves.
pub const CURVE_POINTS: usize = 201;
/// Panel 1's ratio axis runs from 0 to this.
pub const R_MAX: f64 = 2.0;

pub fn compute(config: &Config) -> Data {
    let eps = config.clip_coef;
    let problem = Problem::sample(config.n_actions, config.seed);
    Data {
        curve: curve(config.advantage, eps, R_MAX, CURVE_POINTS),
        curve_flipped: curve(-config.advantage, eps, R_MAX, CURVE_POINTS),
        clipped: run_update(
            &problem,
            Some(eps),
            config.learning_rate,
            config.update_epochs,
        ),
        unclipped: run_update(&problem, None, config.learning_rate, config.update_epochs),
        problem,
        config: config.clone(),
    }
}

impl Curve {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("advantage", Json::Num(self.advantage)),
            ("r", Json::nums(&self.r)),
            ("clipped", Json::nums(&self.clipped)),
            ("unclipped", Json::nums(&self.unclipped)),
            ("grad", Json::nums(&self.grad)),
        ])
    }
}

impl Trajectory {
    pub fn to_json(&self) -> Json {
        Json::obj([
            (
                "ratios",
                Json::Arr(self.ratios.iter().map(Json::nums).collect()),
            ),
            ("objective", Json::nums(&self.objective)),
        ])
    }

    /// Largest |r - 1| over actions at the last epoch.
    pub fn final_max_deviation(&self) -> f64 {
        self.ratios.last().map_or(0.0, |rs| {
            rs.iter().fold(0.0, |m, r| f64::max(m, (r - 1.0).abs()))
        })
    }
}

/// Panel 0 is the objective against r, panel 1 the update over epochs.
pub const PANELS: usize = 2;

impl Data {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("curve", self.curve.to_json()),
            ("curve_flipped", self.curve_flipped.to_json()),
            ("update", self.update_json()),
        ])
    }

    fn update_json(&self) -> Json {
        Json::obj([
            ("pi_old", Json::nums(&self.problem.pi_old().to_vec())),
            ("advantages", Json::nums(&self.problem.advantages.to_vec())),
            ("clipped", self.clipped.to_json()),
            ("unclipped", self.unclipped.to_json()),
        ])
    }

    /// The data plotted in one panel, for the JSON export.
    pub fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 => Json::obj([
                ("curve", self.curve.to_json()),
                ("curve_flipped", self.curve_flipped.to_json()),
            ]),
            _ => self.update_json(),
        }
    }

    /// The data plotted in one panel as CSV with a header row, for the CSV export.
    pub fn panel_csv(&self, panel: usize) -> String {
        let mut out = String::new();
        if panel == 0 {
            let (a, b) = (&self.curve, &self.curve_flipped);
            out.push_str(&format!(
                "r,L_clip(A={0}),rA(A={0}),dL_dr(A={0}),L_clip(A={1}),rA(A={1}),dL_dr(A={1})\n",
                a.advantage, b.advantage
            ));
            for i in 0..a.r.len() {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    a.r[i],
                    a.clipped[i],
                    a.unclipped[i],
                    a.grad[i],
                    b.clipped[i],
                    b.unclipped[i],
                    b.grad[i]
                ));
            }
        } else {
            let n = self.problem.advantages.len();
            let mut header = vec!["epoch".to_string()];
            for kind in ["clipped", "unclipped"] {
                header.extend((0..n).map(|a| format!("{kind}_r{a}")));
            }
            out.push_str(&header.join(","));
            out.push('\n');
            for k in 0..self.clipped.ratios.len() {
                let mut row = vec![k.to_string()];
                row.extend(self.clipped.ratios[k].iter().map(f64::to_string));
                row.extend(self.unclipped.ratios[k].iter().map(f64::to_string));
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
        out
    }
}
