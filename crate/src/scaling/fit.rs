//! Fitting the loss law to (N, D, L) points the way Hoffmann et al. (2022, Approach 3,
//! Appendix D.2) and Besiroglu et al. (2024) did, with bootstrap confidence intervals.
//!
//! ```text
//! theta = (a, b, e, alpha, beta),  A = exp(a), B = exp(b), E = exp(e)
//! log L_hat_i = LSE(a - alpha log N_i, b - beta log D_i, e)        (= log(E + A/N^alpha + B/D^beta))
//! minimise  sum_i Huber_delta(log L_hat_i - log L_i),   delta = 1e-3
//! ```
//!
//! Optimiser: L-BFGS ([`super::lbfgs`]), as in both papers. Starting points: Hoffmann et al.
//! run L-BFGS from every point of a 4500-point grid ([`paper_grid`]); [`fit_reference`] does
//! exactly that, and is the slow twin. [`fit`] gets its starts more cheaply, by *variable
//! projection*: for fixed (alpha, beta) the law is linear in (E, A, B), so a weighted linear
//! least-squares solve on a 12 x 12 grid of exponents gives 144 candidate starts; L-BFGS
//! runs from the [`STARTS`] best of them (by the Huber objective). The tests check that both
//! reach the same minimum.
//!
//! Intervals: the nonparametric bootstrap (Besiroglu et al. 2024, Section 3): resample the
//! points with replacement, refit, take the 2.5% and 97.5% percentiles of each constant.
//! Each refit starts from the full-data fit (a resample's optimum is a small perturbation of
//! it), so a replicate costs one L-BFGS run instead of a multi-start search.

use ndarray::Array1;

use super::law::{flops, Law};
use super::lbfgs::{self, Lbfgs, Minimum};
use crate::math::{exp, ln, pow};
use crate::rng::Rng;

/// One training run: N parameters, D tokens, final loss L (nats per token).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub n: f64,
    pub d: f64,
    pub loss: f64,
}

/// Hoffmann et al.'s Huber threshold on the log-loss residuals.
pub const HUBER_DELTA: f64 = 1e-3;
/// L-BFGS runs per fit in [`fit`] (from the best variable-projection starts).
pub const STARTS: usize = 4;
/// The 95% intervals: the 2.5% and 97.5% percentiles of the bootstrap replicates.
pub const LEVEL: f64 = 0.95;
/// The nine IsoFLOP budgets of Hoffmann et al.'s Approach 2 (Figure 3), 6e18 to 3e21 FLOPs.
pub const ISO_FLOP_BUDGETS: [f64; 9] = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21];
/// Fewest points the fitter accepts: five constants need at least six points to leave a
/// residual, and the tests and the page both ask for this many.
pub const MIN_POINTS: usize = 6;

/// Fitter settings. `Default` is the papers' objective with 200 bootstrap replicates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions {
    /// Huber threshold delta on residuals of log L.
    pub huber_delta: f64,
    /// Bootstrap replicates (0 for none).
    pub bootstrap: usize,
    /// Seed for the resampling.
    pub seed: u64,
    /// L-BFGS settings of the main fit.
    pub lbfgs: lbfgs::Options,
    /// L-BFGS settings of each bootstrap refit (a warm start needs fewer iterations).
    pub lbfgs_bootstrap: lbfgs::Options,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            huber_delta: HUBER_DELTA,
            bootstrap: 200,
            seed: 0,
            lbfgs: lbfgs::Options::default(),
            lbfgs_bootstrap: lbfgs::Options {
                max_iter: 200,
                ..lbfgs::Options::default()
            },
        }
    }
}

// Indices into theta.
const IA: usize = 0;
const IB: usize = 1;
const IE: usize = 2;
const IALPHA: usize = 3;
const IBETA: usize = 4;

/// theta = (log A, log B, log E, alpha, beta) for a law.
pub fn theta_of(law: &Law) -> Array1<f64> {
    Array1::from(vec![ln(law.a), ln(law.b), ln(law.e), law.alpha, law.beta])
}

/// The law a theta stands for.
pub fn law_of(theta: &Array1<f64>) -> Law {
    Law {
        a: exp(theta[IA]),
        b: exp(theta[IB]),
        e: exp(theta[IE]),
        alpha: theta[IALPHA],
        beta: theta[IBETA],
    }
}

/// A point in logs, computed once per fit.
#[derive(Clone, Copy, Debug)]
struct Obs {
    ln_n: f64,
    ln_d: f64,
    ln_l: f64,
}

fn observations(points: &[Point]) -> Vec<Obs> {
    points
        .iter()
        .map(|p| Obs {
            ln_n: ln(p.n),
            ln_d: ln(p.d),
            ln_l: ln(p.loss),
        })
        .collect()
}

/// Huber's loss and its derivative: r^2/2 inside |r| <= delta, delta (|r| - delta/2) outside.
pub fn huber(r: f64, delta: f64) -> (f64, f64) {
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta * r.signum())
    }
}

/// Sum over points (each counted `weights[i]` times) of Huber(LSE(...) - log L), and its
/// gradient in theta. Hand-derived: with the softmax weights w of the three LSE terms,
/// d LSE/da = w_A, d/dalpha = -w_A log N, d/db = w_B, d/dbeta = -w_B log D, d/de = w_E.
fn objective_grad(
    theta: &Array1<f64>,
    obs: &[Obs],
    weights: Option<&[f64]>,
    delta: f64,
) -> (f64, Array1<f64>) {
    let (a, b, e, alpha, beta) = (theta[IA], theta[IB], theta[IE], theta[IALPHA], theta[IBETA]);
    let mut f = 0.0;
    let mut g = [0.0; 5];
    for (i, o) in obs.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        if w == 0.0 {
            continue;
        }
        let u = [a - alpha * o.ln_n, b - beta * o.ln_d, e];
        let m = u[0].max(u[1]).max(u[2]);
        let ex = [exp(u[0] - m), exp(u[1] - m), exp(u[2] - m)];
        let s = ex[0] + ex[1] + ex[2];
        let lse = m + ln(s);
        let (h, dh) = huber(lse - o.ln_l, delta);
        f += w * h;
        let k = w * dh / s;
        g[IA] += k * ex[0];
        g[IALPHA] -= k * ex[0] * o.ln_n;
        g[IB] += k * ex[1];
        g[IBETA] -= k * ex[1] * o.ln_d;
        g[IE] += k * ex[2];
    }
    (f, Array1::from(g.to_vec()))
}

/// The papers' objective at theta: sum_i Huber_delta(log L_hat_i - log L_i), with its gradient.
pub fn objective(theta: &Array1<f64>, points: &[Point], delta: f64) -> (f64, Array1<f64>) {
    objective_grad(theta, &observations(points), None, delta)
}

/// The result of one fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub law: Law,
    /// The Huber objective at the fitted constants.
    pub objective: f64,
    /// L-BFGS runs made (one per starting point).
    pub starts: usize,
    /// Total L-BFGS iterations over all runs.
    pub iterations: usize,
    /// Total objective evaluations over all runs.
    pub evaluations: usize,
    /// Whether the winning run met its tolerance.
    pub converged: bool,
}

/// Why points cannot be fitted.
pub fn check_points(points: &[Point]) -> Result<(), String> {
    if points.len() < MIN_POINTS {
        return Err(format!(
            "a fit of five constants needs at least {MIN_POINTS} points; there are {}",
            points.len()
        ));
    }
    let distinct = |f: fn(&Point) -> f64| {
        let first = f(&points[0]);
        points.iter().any(|p| (f(p) / first - 1.0).abs() > 1e-9)
    };
    if !distinct(|p| p.n) || !distinct(|p| p.d) {
        return Err("the points need at least two different N and two different D".into());
    }
    Ok(())
}

fn run_from(
    starts: &[Array1<f64>],
    obs: &[Obs],
    weights: Option<&[f64]>,
    delta: f64,
    opts: &lbfgs::Options,
) -> Fit {
    let mut best: Option<Minimum> = None;
    let (mut iterations, mut evaluations) = (0, 0);
    for x0 in starts {
        let m = lbfgs::minimize(
            |th| objective_grad(th, obs, weights, delta),
            x0.clone(),
            opts,
        );
        iterations += m.iterations;
        evaluations += m.evaluations;
        if best.as_ref().is_none_or(|b| m.f < b.f) {
            best = Some(m);
        }
    }
    let best = best.expect("at least one start");
    Fit {
        law: law_of(&best.x),
        objective: best.f,
        starts: starts.len(),
        iterations,
        evaluations,
        converged: best.converged,
    }
}

/// Hoffmann et al.'s grid of initialisations (Appendix D.2): alpha, beta in {0, 0.5, ..., 2},
/// e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 5 x 5 x 5 x 6 x 6 = 4500 starts.
pub fn paper_grid() -> Vec<Array1<f64>> {
    let mut grid = Vec::with_capacity(4500);
    for ia in 0..6 {
        for ib in 0..6 {
            for ie in 0..5 {
                for ial in 0..5 {
                    for ibe in 0..5 {
                        grid.push(Array1::from(vec![
                            5.0 * ia as f64,
                            5.0 * ib as f64,
                            -1.0 + 0.5 * ie as f64,
                            0.5 * ial as f64,
                            0.5 * ibe as f64,
                        ]));
                    }
                }
            }
        }
    }
    grid
}

/// Solve the 3x3 system m x = r by Gaussian elimination with partial pivoting.
fn solve3(mut m: [[f64; 3]; 3], mut r: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let piv = (col..3).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[piv][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, piv);
        r.swap(col, piv);
        for row in col + 1..3 {
            let k = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (dst, src) in m[row].iter_mut().zip(pivot_row).skip(col) {
                *dst -= k * src;
            }
            r[row] -= k * r[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|c| m[row][c] * x[c]).sum();
        x[row] = (r[row] - s) / m[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Variable-projection starts: for alpha, beta in {0.1, 0.2, ..., 1.2}, the (E, A, B) that
/// minimise sum_i ((E + A x_i + B y_i - L_i) / L_i)^2 with x = N^-alpha, y = D^-beta (a
/// linear least-squares problem; relative residuals approximate the log residuals). Those
/// with E, A, B > 0, best `k` by the Huber objective first.
fn projection_starts(obs: &[Obs], delta: f64, k: usize) -> Vec<Array1<f64>> {
    let grid: Vec<f64> = (1..=12).map(|i| 0.1 * i as f64).collect();
    let mut scored: Vec<(f64, Array1<f64>)> = Vec::new();
    for &alpha in &grid {
        for &beta in &grid {
            // Columns scaled to a largest entry of 1 so the normal equations stay conditioned.
            let xs: Vec<f64> = obs.iter().map(|o| exp(-alpha * o.ln_n)).collect();
            let ys: Vec<f64> = obs.iter().map(|o| exp(-beta * o.ln_d)).collect();
            let xmax = xs.iter().fold(0.0_f64, |m, &v| m.max(v));
            let ymax = ys.iter().fold(0.0_f64, |m, &v| m.max(v));
            let mut m = [[0.0; 3]; 3];
            let mut r = [0.0; 3];
            for (i, o) in obs.iter().enumerate() {
                let inv_l = exp(-o.ln_l);
                let row = [inv_l, xs[i] / xmax * inv_l, ys[i] / ymax * inv_l];
                for p in 0..3 {
                    for q in 0..3 {
                        m[p][q] += row[p] * row[q];
                    }
                    r[p] += row[p]; // target (L_i / L_i) = 1
                }
            }
            let Some([e, a, b]) = solve3(m, r) else {
                continue;
            };
            let (a, b) = (a / xmax, b / ymax);
            if e > 0.0 && a > 0.0 && b > 0.0 {
                let theta = Array1::from(vec![ln(a), ln(b), ln(e), alpha, beta]);
                let (f, _) = objective_grad(&theta, obs, None, delta);
                if f.is_finite() {
                    scored.push((f, theta));
                }
            }
        }
    }
    // The k lowest, by k passes (k is small; a full sort would cost more code than time).
    let mut starts: Vec<Array1<f64>> = Vec::with_capacity(k);
    while starts.len() < k && !scored.is_empty() {
        let best = (0..scored.len())
            .reduce(|a, b| if scored[b].0 < scored[a].0 { b } else { a })
            .expect("not empty");
        starts.push(scored.swap_remove(best).1);
    }
    if starts.is_empty() {
        // Nothing positive (odd data): fall back on the published fit as the one start.
        starts.push(theta_of(&Law::HOFFMANN));
    }
    starts
}

/// Fit the five constants: L-BFGS on the Huber objective from the best variable-projection
/// starts (the fast path; see the module docs).
pub fn fit(points: &[Point], opts: &FitOptions) -> Result<Fit, String> {
    let mut job = FitJob::new(
        points,
        &FitOptions {
            bootstrap: 0,
            ..*opts
        },
    )?;
    job.finish();
    Ok(job.fit().expect("a finished job has a fit").clone())
}

/// A fit and its bootstrap as a sequence of L-BFGS iterations (the starts' runs, then one
/// run per replicate), so a page can do a few per animation frame and never block: even a
/// slow run is paused between iterations. The result does not depend on how the
/// iterations are spread over calls.
#[derive(Clone, Debug)]
pub struct FitJob {
    obs: Vec<Obs>,
    points: Vec<Point>,
    opts: FitOptions,
    starts: Vec<Array1<f64>>,
    /// Finished runs, one per start so far.
    runs: Vec<Minimum>,
    /// The start's run in progress.
    current: Option<Lbfgs>,
    fit: Option<Fit>,
    boot: Option<Bootstrap>,
}

impl FitJob {
    /// Check the points and find the starting points (cheap: no L-BFGS yet).
    pub fn new(points: &[Point], opts: &FitOptions) -> Result<FitJob, String> {
        check_points(points)?;
        let obs = observations(points);
        let starts = projection_starts(&obs, opts.huber_delta, STARTS);
        Ok(FitJob {
            obs,
            points: points.to_vec(),
            opts: *opts,
            starts,
            runs: Vec::new(),
            current: None,
            fit: None,
            boot: None,
        })
    }

    /// L-BFGS runs in all: the starts and the replicates.
    pub fn total(&self) -> usize {
        self.starts.len() + self.opts.bootstrap
    }

    /// L-BFGS runs finished so far.
    pub fn completed(&self) -> usize {
        self.runs.len() + self.boot.as_ref().map_or(0, |b| b.replicates.len())
    }

    pub fn done(&self) -> bool {
        self.completed() == self.total()
    }

    /// One L-BFGS iteration (starting the next run if none is in progress); false when
    /// there was no work left.
    pub fn step(&mut self) -> bool {
        if self.runs.len() < self.starts.len() {
            let (obs, delta) = (&self.obs, self.opts.huber_delta);
            let mut f = |th: &Array1<f64>| objective_grad(th, obs, None, delta);
            let run = match &mut self.current {
                Some(run) => run,
                None => {
                    let x0 = self.starts[self.runs.len()].clone();
                    self.current
                        .insert(Lbfgs::new(&mut f, x0, &self.opts.lbfgs))
                }
            };
            if !run.iterate(&mut f) {
                self.runs.push(run.result());
                self.current = None;
                if self.runs.len() == self.starts.len() {
                    self.finish_starts();
                }
            }
            return true;
        }
        match &mut self.boot {
            Some(b) if !b.done() => {
                b.iterate();
                true
            }
            _ => false,
        }
    }

    /// The best run is the fit; the bootstrap starts from it.
    fn finish_starts(&mut self) {
        let best = self
            .runs
            .iter()
            .min_by(|a, b| a.f.total_cmp(&b.f))
            .expect("at least one start");
        let fit = Fit {
            law: law_of(&best.x),
            objective: best.f,
            starts: self.runs.len(),
            iterations: self.runs.iter().map(|m| m.iterations).sum(),
            evaluations: self.runs.iter().map(|m| m.evaluations).sum(),
            converged: best.converged,
        };
        self.boot = Some(Bootstrap::new(&self.points, &fit, &self.opts));
        self.fit = Some(fit);
    }

    /// Do all remaining work.
    pub fn finish(&mut self) {
        while self.step() {}
    }

    /// The fit, once every start has run.
    pub fn fit(&self) -> Option<&Fit> {
        self.fit.as_ref()
    }

    /// The bootstrap so far (present once the fit is).
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.boot.as_ref()
    }

    /// Intervals from the replicates so far (bounds NaN before the first).
    pub fn intervals(&self) -> Option<Vec<Interval>> {
        Some(self.boot.as_ref()?.intervals(self.fit.as_ref()?))
    }

    pub fn points(&self) -> &[Point] {
        &self.points
    }
}

/// The slow twin of [`fit`]: L-BFGS from every point of Hoffmann et al.'s grid, best kept.
pub fn fit_reference(points: &[Point], opts: &FitOptions) -> Result<Fit, String> {
    fit_from(points, &paper_grid(), opts)
}

/// L-BFGS from each of the given starting points (theta vectors), best kept.
pub fn fit_from(
    points: &[Point],
    starts: &[Array1<f64>],
    opts: &FitOptions,
) -> Result<Fit, String> {
    check_points(points)?;
    if starts.is_empty() {
        return Err("no starting points".into());
    }
    let obs = observations(points);
    Ok(run_from(starts, &obs, None, opts.huber_delta, &opts.lbfgs))
}

/// A fitted quantity and its bootstrap interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// `E`, `A`, `B`, `alpha`, `beta`, or `a` (the exponent of N_opt ∝ C^a).
    pub name: &'static str,
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn covers(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// Reads one quantity off a law.
pub type Getter = fn(&Law) -> f64;

/// The quantities an interval is reported for, as (name, value of a law).
pub const QUANTITIES: [(&str, Getter); 6] = [
    ("E", |l| l.e),
    ("A", |l| l.a),
    ("B", |l| l.b),
    ("alpha", |l| l.alpha),
    ("beta", |l| l.beta),
    ("a", |l| l.n_exponent()),
];

/// Bootstrap replicates of a fit, computed an L-BFGS iteration at a time so a page can
/// spread them over animation frames ([`Bootstrap::iterate`]); [`bootstrap`] runs them all.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    obs: Vec<Obs>,
    center: Array1<f64>,
    rng: Rng,
    opts: FitOptions,
    /// Fitted laws of the replicates so far.
    pub replicates: Vec<Law>,
    /// Replicates whose refit ran out of iterations (kept: their values are still the best
    /// found).
    pub unconverged: usize,
    /// Each point's count in the resample in progress.
    counts: Vec<f64>,
    current: Option<Lbfgs>,
}

impl Bootstrap {
    pub fn new(points: &[Point], fit: &Fit, opts: &FitOptions) -> Bootstrap {
        Bootstrap {
            obs: observations(points),
            center: theta_of(&fit.law),
            rng: Rng::new(opts.seed),
            opts: *opts,
            replicates: Vec::with_capacity(opts.bootstrap),
            unconverged: 0,
            counts: vec![0.0; points.len()],
            current: None,
        }
    }

    pub fn done(&self) -> bool {
        self.replicates.len() >= self.opts.bootstrap
    }

    /// One L-BFGS iteration of the replicate in progress, drawing its resample first if it
    /// is new; false when all replicates are done.
    pub fn iterate(&mut self) -> bool {
        if self.done() {
            return false;
        }
        let n = self.obs.len();
        if self.current.is_none() {
            // A resample with replacement, as counts per point (the same objective as the
            // resampled list, without copying it).
            self.counts.iter_mut().for_each(|c| *c = 0.0);
            for _ in 0..n {
                let i = ((self.rng.uniform() * n as f64) as usize).min(n - 1);
                self.counts[i] += 1.0;
            }
        }
        let (obs, counts, delta) = (&self.obs, &self.counts, self.opts.huber_delta);
        let mut f = |th: &Array1<f64>| objective_grad(th, obs, Some(counts), delta);
        let run = match &mut self.current {
            Some(run) => run,
            None => self.current.insert(Lbfgs::new(
                &mut f,
                self.center.clone(),
                &self.opts.lbfgs_bootstrap,
            )),
        };
        if !run.iterate(&mut f) {
            let m = run.result();
            if !m.converged {
                self.unconverged += 1;
            }
            self.replicates.push(law_of(&m.x));
            self.current = None;
        }
        true
    }

    /// Run up to `count` more whole replicates; returns how many finished.
    pub fn run(&mut self, count: usize) -> usize {
        let target = (self.replicates.len() + count).min(self.opts.bootstrap);
        let before = self.replicates.len();
        while self.replicates.len() < target && self.iterate() {}
        self.replicates.len() - before
    }

    /// Percentile intervals at [`LEVEL`] from the replicates so far (NaN bounds with none).
    pub fn intervals(&self, fit: &Fit) -> Vec<Interval> {
        QUANTITIES
            .iter()
            .map(|(name, get)| {
                let mut v: Vec<f64> = self.replicates.iter().map(get).collect();
                sort(&mut v);
                let tail = (1.0 - LEVEL) / 2.0;
                Interval {
                    name,
                    estimate: get(&fit.law),
                    lo: percentile(&v, tail),
                    hi: percentile(&v, 1.0 - tail),
                }
            })
            .collect()
    }
}

/// Heapsort by `total_cmp` (a few lines instead of the standard library's sort, which the
/// wasm would carry for one call site).
pub fn sort(v: &mut [f64]) {
    fn sift(v: &mut [f64], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child].total_cmp(&v[child + 1]).is_lt() {
                child += 1;
            }
            if v[root].total_cmp(&v[child]).is_ge() {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// The q-quantile of sorted values, interpolating linearly between order statistics.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = q * (n - 1) as f64;
            let i = (h.floor() as usize).min(n - 2);
            sorted[i] + (h - i as f64) * (sorted[i + 1] - sorted[i])
        }
    }
}

/// All bootstrap replicates at once: the intervals for a fit.
pub fn bootstrap(points: &[Point], fit: &Fit, opts: &FitOptions) -> Vec<Interval> {
    let mut b = Bootstrap::new(points, fit, opts);
    b.run(opts.bootstrap);
    b.intervals(fit)
}

/// `count` noisy points drawn from a law the way Hoffmann et al.'s IsoFLOP sweeps were laid
/// out: point i uses budget [`ISO_FLOP_BUDGETS`]`[i % 9]`, a model size log-uniform within
/// 0.8 decades of that budget's N_opt, D = C / (6N), and L = L(N, D) exp(noise z), z ~ N(0, 1).
pub fn synthetic(law: &Law, count: usize, noise: f64, seed: u64) -> Vec<Point> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let c = ISO_FLOP_BUDGETS[i % ISO_FLOP_BUDGETS.len()];
            let n = law.n_opt(c) * pow(10.0, rng.uniform_range(-0.8, 0.8));
            let d = c / (6.0 * n);
            let z = rng.normal();
            Point {
                n,
                d,
                loss: law.loss(n, d) * exp(noise * z),
            }
        })
        .collect()
}

/// A number as people write model and data sizes: `70e9`, `70B`, `1.4T`, `400M`, `5k`.
fn parse_size(s: &str) -> Option<f64> {
    let s = s.trim().trim_matches('"').replace('_', "");
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1e3),
        'm' | 'M' => (&s[..s.len() - 1], 1e6),
        'b' | 'B' | 'g' | 'G' => (&s[..s.len() - 1], 1e9),
        't' | 'T' => (&s[..s.len() - 1], 1e12),
        _ => (s.as_str(), 1.0),
    };
    let v = crate::math::parse_f64(num.trim())?;
    let v = v * mult;
    v.is_finite().then_some(v)
}

/// Points read from CSV text, and what was skipped and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub points: Vec<Point>,
    /// One message per line that could not be used.
    pub skipped: Vec<String>,
}

/// Read `N, D, L` rows (commas, semicolons, tabs or spaces between values). Blank lines and
/// lines starting with `#` are ignored; a first row of names (`N,D,L`, `params,tokens,loss`,
/// in any order) sets the column order. Sizes may carry K/M/B/T suffixes (`70B`, `1.4T`).
pub fn parse_csv(text: &str) -> Parsed {
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    let mut order = [0usize, 1, 2]; // column of N, D, L
    let mut seen_row = false;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line
            .split([',', ';', '\t', ' '])
            .filter(|c| !c.is_empty())
            .collect();
        let first = !seen_row;
        seen_row = true;
        if first && cells.iter().any(|c| parse_size(c).is_none()) {
            let col = |names: &[&str]| {
                cells.iter().position(|c| {
                    let c = c.trim().trim_matches('"').to_ascii_lowercase();
                    names.contains(&c.as_str())
                })
            };
            match (
                col(&["n", "params", "parameters", "model_size"]),
                col(&["d", "tokens", "data", "data_size"]),
                col(&["l", "loss"]),
            ) {
                (Some(n), Some(d), Some(l)) => {
                    order = [n, d, l];
                    continue;
                }
                _ => {
                    skipped.push(format!(
                        "line {}: header \"{line}\" does not name the columns N, D and L",
                        lineno + 1
                    ));
                    continue;
                }
            }
        }
        let get = |k: usize| cells.get(order[k]).and_then(|c| parse_size(c));
        match (get(0), get(1), get(2)) {
            (Some(n), Some(d), Some(l)) if n > 0.0 && d > 0.0 && l > 0.0 => {
                points.push(Point { n, d, loss: l })
            }
            (Some(_), Some(_), Some(_)) => skipped.push(format!(
                "line {}: N, D and L must all be positive",
                lineno + 1
            )),
            _ => skipped.push(format!(
                "line {}: \"{line}\" is not three numbers N, D, L",
                lineno + 1
            )),
        }
    }
    Parsed { points, skipped }
}

/// Points as CSV with a header, 4 significant digits (what the page's editor shows).
pub fn to_csv(points: &[Point]) -> String {
    let mut out = String::from("N,D,L\n");
    for p in points {
        out.push_str(&format!("{:.3e},{:.3e},{:.4}\n", p.n, p.d, p.loss));
    }
    out
}

/// The compute of each point, C = 6 N D.
pub fn compute_of(p: &Point) -> f64 {
    flops(p.n, p.d)
}
