//! Noise schedules of DDPM and the forward process q(x_t | x_0).
//!
//! ```text
//! linear (Ho et al. 2020):       beta_t = linspace(1e-4, 0.02, T)[t - 1]
//! cosine (Nichol & Dhariwal 2021): alpha_bar(t) = f(t) / f(0),  f(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
//!                                beta_t = min(1 - alpha_bar(t) / alpha_bar(t - 1), 0.999),  s = 0.008
//! alpha_t = 1 - beta_t,  alpha_bar_t = prod_{s <= t} alpha_s          (alpha_bar_0 = 1)
//! q(x_t | x_0)     = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
//! q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)
//! q(x_{t-1} | x_t, x_0) = N(coef1_t x_0 + coef2_t x_t, beta_tilde_t I)   (Ho et al. eq. 6-7):
//!   beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
//!   coef1_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),  coef2_t = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
//! SNR(t) = alpha_bar_t / (1 - alpha_bar_t)
//! ```
//!
//! Arrays are indexed like the papers' code: entry `t - 1` holds step t = 1..T. Everything is
//! f64 here; the samplers round their per-step coefficients to f32. Used by `<ml-diffusion>`
//! (the forward-process panel plots alpha_bar and the SNR of both schedules).

use crate::rng::Rng;

/// The two schedules of the papers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleKind {
    /// beta linear from 1e-4 to 0.02 (Ho et al. 2020).
    Linear,
    /// alpha_bar a squared cosine (Nichol & Dhariwal 2021).
    Cosine,
}

impl ScheduleKind {
    pub const NAMES: [&'static str; 2] = ["linear", "cosine"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "linear" => Ok(Self::Linear),
            "cosine" => Ok(Self::Cosine),
            _ => Err(format!("unknown schedule {name:?} (linear or cosine)")),
        }
    }
}

/// Linear schedule endpoints.
pub const BETA_START: f64 = 1e-4;
pub const BETA_END: f64 = 0.02;
/// The cosine schedule's offset s.
pub const COSINE_S: f64 = 0.008;
/// The cosine schedule's clip on beta.
pub const MAX_BETA: f64 = 0.999;

/// A schedule over T steps with the derived quantities named as in the papers.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// beta_t, t = 1..T.
    pub betas: Vec<f64>,
    /// alpha_t = 1 - beta_t.
    pub alphas: Vec<f64>,
    /// alpha_bar_t = prod_{s <= t} alpha_s.
    pub alphas_cumprod: Vec<f64>,
    /// alpha_bar_{t-1} (1 at t = 1).
    pub alphas_cumprod_prev: Vec<f64>,
    /// beta_tilde_t, the variance of q(x_{t-1} | x_t, x_0).
    pub posterior_variance: Vec<f64>,
    /// coef1_t, the weight of x_0 in the posterior mean.
    pub posterior_mean_coef1: Vec<f64>,
    /// coef2_t, the weight of x_t in the posterior mean.
    pub posterior_mean_coef2: Vec<f64>,
}

/// The cosine schedule's f(t) / f(0) at a real t in [0, T].
pub fn cosine_alpha_bar(t: f64, big_t: usize) -> f64 {
    let f = |t: f64| {
        let c = crate::math::cos(
            (t / big_t as f64 + COSINE_S) / (1.0 + COSINE_S) * std::f64::consts::FRAC_PI_2,
        );
        c * c
    };
    f(t) / f(0.0)
}

impl Schedule {
    /// The schedule of `kind` over `t` steps (t >= 1).
    pub fn new(kind: ScheduleKind, t: usize) -> Self {
        assert!(t >= 1, "a schedule needs at least one step");
        let betas: Vec<f64> = match kind {
            ScheduleKind::Linear if t == 1 => vec![BETA_START],
            ScheduleKind::Linear => (0..t)
                .map(|i| BETA_START + (BETA_END - BETA_START) * i as f64 / (t - 1) as f64)
                .collect(),
            ScheduleKind::Cosine => (1..=t)
                .map(|i| {
                    let r = cosine_alpha_bar(i as f64, t) / cosine_alpha_bar(i as f64 - 1.0, t);
                    (1.0 - r).min(MAX_BETA)
                })
                .collect(),
        };
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let mut alphas_cumprod = Vec::with_capacity(t);
        let mut acc = 1.0;
        for a in &alphas {
            acc *= a;
            alphas_cumprod.push(acc);
        }
        let alphas_cumprod_prev: Vec<f64> = std::iter::once(1.0)
            .chain(alphas_cumprod[..t - 1].iter().copied())
            .collect();
        let mut posterior_variance = Vec::with_capacity(t);
        let mut posterior_mean_coef1 = Vec::with_capacity(t);
        let mut posterior_mean_coef2 = Vec::with_capacity(t);
        for i in 0..t {
            let (ab, abp, b, a) = (
                alphas_cumprod[i],
                alphas_cumprod_prev[i],
                betas[i],
                alphas[i],
            );
            posterior_variance.push((1.0 - abp) / (1.0 - ab) * b);
            posterior_mean_coef1.push(abp.sqrt() * b / (1.0 - ab));
            posterior_mean_coef2.push(a.sqrt() * (1.0 - abp) / (1.0 - ab));
        }
        Schedule {
            kind,
            betas,
            alphas,
            alphas_cumprod,
            alphas_cumprod_prev,
            posterior_variance,
            posterior_mean_coef1,
            posterior_mean_coef2,
        }
    }

    /// T, the number of steps.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// alpha_bar_t for t = 0..=T (alpha_bar_0 = 1).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        if t == 0 {
            1.0
        } else {
            self.alphas_cumprod[t - 1]
        }
    }

    /// The signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t).
    pub fn snr(&self, t: usize) -> f64 {
        let ab = self.alpha_bar(t);
        ab / (1.0 - ab)
    }

    /// x_t ~ q(x_t | x_0) in closed form: sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
    /// for points `(n, 2)` row-major, with eps from `rng`.
    pub fn q_sample(&self, x0: &[f32], t: usize, rng: &mut Rng) -> Vec<f32> {
        let ab = self.alpha_bar(t);
        let (a, s) = (ab.sqrt(), (1.0 - ab).sqrt());
        x0.iter()
            .map(|&x| (a * x as f64 + s * rng.normal()) as f32)
            .collect()
    }

    /// x_t by iterating q(x_s | x_{s-1}) = N(sqrt(alpha_s) x_{s-1}, beta_s I) for s = 1..t.
    pub fn q_sample_iterated(&self, x0: &[f32], t: usize, rng: &mut Rng) -> Vec<f32> {
        let mut x: Vec<f64> = x0.iter().map(|&v| v as f64).collect();
        for s in 0..t {
            let (a, b) = (self.alphas[s].sqrt(), self.betas[s].sqrt());
            for v in x.iter_mut() {
                *v = a * *v + b * rng.normal();
            }
        }
        x.into_iter().map(|v| v as f32).collect()
    }
}
