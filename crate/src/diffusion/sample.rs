//! The samplers, each written as a per-step coefficient table that one generic update runs
//! (the CPU loop here and the WGSL sampling kernel of `gpu/diffusion.rs` alike).
//!
//! ## The table (the interface with the GPU kernel)
//! A [`Plan`] has rows r = 0..R-1, each `[a, b, c, d]` with a time `s_r` (the network's input
//! time, embedded by [`super::mlp::time_embedding`]). Every particle i carries its position x
//! and the network output of the previous row, `prev` (zero before row 0). Row r does
//!
//! ```text
//! out  = net(x, e(s_r))
//! x   <- a x + b out + c z_r(i) + d prev          z_r(i) = noise::normal2(seed, r, i)
//! prev <- out
//! ```
//!
//! and x starts as `noise::normal2(seed, INITIAL_STEP, i)`. The noise of row r uses step r.
//!
//! ## The rows of each sampler
//! DDPM and DDIM run on K timesteps tau_k = floor(k T / K), k = 1..K (the respacing of
//! Nichol & Dhariwal 2021; tau_k = k when K = T), from tau_K = T down to tau_1, one row each,
//! with abar = alpha_bar_{tau_k}, abar' = alpha_bar_{tau_{k-1}} (alpha_bar_0 = 1), the step's
//! beta = 1 - abar / abar' and alpha = 1 - beta, and s = tau_k / T:
//!
//! ```text
//! DDPM (Ho et al. 2020, Algorithm 2):  x' = (x - beta / sqrt(1 - abar) eps) / sqrt(alpha) + sigma z
//!     a = 1 / sqrt(alpha),  b = -beta / (sqrt(1 - abar) sqrt(alpha)),  c = sigma,  d = 0
//!     sigma^2 = beta ("beta") or beta_tilde = (1 - abar') / (1 - abar) beta ("beta-tilde"); z = 0 at the last row
//! DDIM (Song et al. 2021, eq. 12):  x' = sqrt(abar') x0_hat + sqrt(1 - abar' - sigma^2) eps + sigma z,
//!     x0_hat = (x - sqrt(1 - abar) eps) / sqrt(abar),  sigma = eta sqrt((1 - abar') / (1 - abar)) sqrt(1 - abar / abar')
//!     a = sqrt(abar' / abar),  b = sqrt(1 - abar' - sigma^2) - sqrt(abar') sqrt(1 - abar) / sqrt(abar),  c = sigma,  d = 0
//! ```
//!
//! Flow matching integrates dx/dt = v(x, t) from t = 0 (noise) to 1 (data) in K steps of
//! h = 1/K, t_k = k h:
//!
//! ```text
//! Euler:     one row per step:  s = t_k,         a = 1, b = h,     c = 0, d = 0
//! midpoint:  two rows per step: s = t_k,         a = 1, b = h/2,   c = 0, d = 0     (x becomes x + h/2 v(x, t_k))
//!                               s = t_k + h/2,   a = 1, b = h,     c = 0, d = -h/2  (x + h v(x_mid, t_k + h/2))
//! ```
//!
//! The coefficients are computed in f64 from the schedule and rounded to f32. The number of
//! network evaluations is the number of rows (midpoint: 2K).

use super::mlp::{self, Mlp};
use super::noise;
use super::schedule::Schedule;

/// A sampler and its options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// DDPM ancestral sampling with sigma^2 = beta (`tilde = false`) or beta_tilde.
    Ddpm { tilde: bool },
    /// DDIM with its eta (0: deterministic; 1: DDPM with beta_tilde).
    Ddim { eta: f64 },
    /// Euler integration of the flow ODE.
    Euler,
    /// The explicit midpoint rule for the flow ODE.
    Midpoint,
}

/// The sampler names of the CLI and the widgets.
pub const NAMES: [&str; 4] = ["ddpm", "ddim", "euler", "midpoint"];

impl Sampler {
    /// Whether this sampler runs a flow-matching model (else a DDPM eps-model).
    pub fn is_flow(&self) -> bool {
        matches!(self, Self::Euler | Self::Midpoint)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Ddpm { .. } => "ddpm",
            Self::Ddim { .. } => "ddim",
            Self::Euler => "euler",
            Self::Midpoint => "midpoint",
        }
    }

    /// Network evaluations per step.
    pub fn evals_per_step(&self) -> usize {
        if matches!(self, Self::Midpoint) {
            2
        } else {
            1
        }
    }
}

/// The per-row coefficients and times of one sampling run.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `[a, b, c, d]` per row.
    pub rows: Vec<[f32; 4]>,
    /// The network's time input s per row.
    pub s: Vec<f32>,
    /// For each row, the step index it completes (1..=K); the widget's step slider shows the
    /// state after each completed step.
    pub step_of_row: Vec<usize>,
}

/// The K timesteps tau_1 < ... < tau_K = T of a respaced DDPM/DDIM run.
pub fn timesteps(big_t: usize, k: usize) -> Vec<usize> {
    assert!(k >= 1 && k <= big_t, "steps must be in 1..=T");
    (1..=k).map(|i| i * big_t / k).collect()
}

impl Plan {
    /// The table of a DDPM or DDIM run with `k` steps on `schedule`.
    pub fn diffusion(sampler: Sampler, schedule: &Schedule, k: usize) -> Result<Self, String> {
        let big_t = schedule.steps();
        if k == 0 || k > big_t {
            return Err(format!("steps must be in 1..={big_t}"));
        }
        let taus = timesteps(big_t, k);
        let mut plan = Plan {
            rows: Vec::with_capacity(k),
            s: Vec::with_capacity(k),
            step_of_row: Vec::with_capacity(k),
        };
        for j in (0..k).rev() {
            let t = taus[j];
            let t_prev = if j == 0 { 0 } else { taus[j - 1] };
            let (ab, abp) = (schedule.alpha_bar(t), schedule.alpha_bar(t_prev));
            let beta = 1.0 - ab / abp;
            let alpha = 1.0 - beta;
            let row = match sampler {
                Sampler::Ddpm { tilde } => {
                    let var = if j == 0 {
                        0.0
                    } else if tilde {
                        (1.0 - abp) / (1.0 - ab) * beta
                    } else {
                        beta
                    };
                    [
                        1.0 / alpha.sqrt(),
                        -beta / ((1.0 - ab).sqrt() * alpha.sqrt()),
                        var.sqrt(),
                        0.0,
                    ]
                }
                Sampler::Ddim { eta } => {
                    let sigma = eta * ((1.0 - abp) / (1.0 - ab)).sqrt() * (1.0 - ab / abp).sqrt();
                    [
                        (abp / ab).sqrt(),
                        (1.0 - abp - sigma * sigma).max(0.0).sqrt()
                            - abp.sqrt() * (1.0 - ab).sqrt() / ab.sqrt(),
                        sigma,
                        0.0,
                    ]
                }
                _ => return Err(format!("{} samples flow-matching models", sampler.name())),
            };
            plan.rows.push(row.map(|v| v as f32));
            plan.s.push((t as f64 / big_t as f64) as f32);
            plan.step_of_row.push(k - j);
        }
        Ok(plan)
    }

    /// The table of a flow-matching run with `k` steps.
    pub fn flow(sampler: Sampler, k: usize) -> Result<Self, String> {
        if k == 0 {
            return Err("steps must be at least 1".into());
        }
        let h = 1.0 / k as f64;
        let mut plan = Plan {
            rows: Vec::new(),
            s: Vec::new(),
            step_of_row: Vec::new(),
        };
        for step in 0..k {
            let t = step as f64 * h;
            match sampler {
                Sampler::Euler => {
                    plan.rows.push([1.0, h as f32, 0.0, 0.0]);
                    plan.s.push(t as f32);
                    plan.step_of_row.push(step + 1);
                }
                Sampler::Midpoint => {
                    plan.rows.push([1.0, (h / 2.0) as f32, 0.0, 0.0]);
                    plan.s.push(t as f32);
                    plan.step_of_row.push(step); // half-way: not a completed step
                    plan.rows.push([1.0, h as f32, 0.0, (-h / 2.0) as f32]);
                    plan.s.push((t + h / 2.0) as f32);
                    plan.step_of_row.push(step + 1);
                }
                _ => return Err(format!("{} samples DDPM models", sampler.name())),
            }
        }
        Ok(plan)
    }

    /// Number of rows (network evaluations).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The time embedding of every row, `(R, 16)` row-major (what the GPU uploads once).
    pub fn embeddings(&self) -> Vec<f32> {
        self.s
            .iter()
            .flat_map(|&s| mlp::time_embedding(s))
            .collect()
    }
}

/// The network at points `(n, 2)` row-major, all at time s: outputs `(n, 2)` row-major.
pub fn eval_net(net: &Mlp, x: &[f32], s: f32) -> Vec<f32> {
    let n = x.len() / 2;
    let e = mlp::time_embedding(s);
    let mut input = ndarray::Array2::<f32>::zeros((n, mlp::INPUT)); // (n, 18)
    for (k, mut row) in input.rows_mut().into_iter().enumerate() {
        row[0] = x[2 * k];
        row[1] = x[2 * k + 1];
        for (j, &v) in e.iter().enumerate() {
            row[2 + j] = v;
        }
    }
    net.forward(input.view()).into_raw_vec_and_offset().0
}

/// The initial noise of particles 0..n, `(n, 2)` row-major.
pub fn initial_noise(seed: u32, n: usize) -> Vec<f32> {
    noise::normals(seed, noise::INITIAL_STEP, n)
}

/// A CPU sampling run that advances row by row (so the page can slice it into frames).
#[derive(Clone, Debug)]
pub struct Run {
    pub plan: Plan,
    pub seed: u32,
    /// Positions, `(n, 2)` row-major.
    pub x: Vec<f32>,
    /// The previous row's network output, `(n, 2)`.
    pub prev: Vec<f32>,
    /// Rows done.
    pub row: usize,
}

impl Run {
    /// n particles at their initial noise.
    pub fn new(plan: Plan, seed: u32, n: usize) -> Self {
        Run {
            plan,
            seed,
            x: initial_noise(seed, n),
            prev: vec![0.0; 2 * n],
            row: 0,
        }
    }

    pub fn n(&self) -> usize {
        self.x.len() / 2
    }

    pub fn done(&self) -> bool {
        self.row >= self.plan.len()
    }

    /// Apply the next row to every particle, with `eval(positions (n, 2), s)` the network's
    /// outputs `(n, 2)` (the MLP in [`Run::step`]; an exact oracle in the tests).
    pub fn step_with(&mut self, eval: &mut dyn FnMut(&[f32], f32) -> Vec<f32>) {
        if self.done() {
            return;
        }
        let r = self.row;
        let [a, b, c, d] = self.plan.rows[r];
        let out = eval(&self.x, self.plan.s[r]); // (n, 2)
        for i in 0..self.n() {
            let z = if c != 0.0 {
                noise::normal2(self.seed, r as u32, i as u32)
            } else {
                [0.0, 0.0]
            };
            for (ch, zc) in z.into_iter().enumerate() {
                let k = 2 * i + ch;
                self.x[k] = a * self.x[k] + b * out[k] + c * zc + d * self.prev[k];
                self.prev[k] = out[k];
            }
        }
        self.row += 1;
    }

    /// Apply the current row to particles `cursor..cursor + count` only (the page slices a
    /// row into pieces that fit a frame); returns the new cursor, and moves to the next row
    /// when the cursor reaches n. Particles are independent, so the result does not depend
    /// on how rows are sliced.
    pub fn step_particles(&mut self, net: &Mlp, cursor: usize, count: usize) -> usize {
        if self.done() {
            return 0;
        }
        let n = self.n();
        let (lo, hi) = (cursor.min(n), (cursor + count).min(n));
        let r = self.row;
        let [a, b, c, d] = self.plan.rows[r];
        let out = eval_net(net, &self.x[2 * lo..2 * hi], self.plan.s[r]); // (hi - lo, 2)
        for i in lo..hi {
            let z = if c != 0.0 {
                noise::normal2(self.seed, r as u32, i as u32)
            } else {
                [0.0, 0.0]
            };
            for (ch, zc) in z.into_iter().enumerate() {
                let k = 2 * i + ch;
                let o = out[k - 2 * lo];
                self.x[k] = a * self.x[k] + b * o + c * zc + d * self.prev[k];
                self.prev[k] = o;
            }
        }
        if hi >= n {
            self.row += 1;
            0
        } else {
            hi
        }
    }

    /// Apply the next row to every particle with the network `net`.
    pub fn step(&mut self, net: &Mlp) {
        self.step_with(&mut |x, s| eval_net(net, x, s));
    }

    /// Run every remaining row.
    pub fn finish(&mut self, net: &Mlp) -> &[f32] {
        while !self.done() {
            self.step(net);
        }
        &self.x
    }
}
