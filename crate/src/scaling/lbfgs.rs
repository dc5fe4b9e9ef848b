//! Limited-memory BFGS (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Algorithms 7.4
//! and 7.5) with a strong-Wolfe line search (Algorithms 3.5 and 3.6).
//!
//! Hoffmann et al. (2022) and Besiroglu et al. (2024) both minimise their Huber objective with
//! L-BFGS (SciPy's), so the fitter does the same. The objective has five parameters, so the
//! inverse-Hessian estimate from the last `memory` steps is cheap; every cost is in evaluating
//! the objective over the data points, which the caller's closure does.

use ndarray::Array1;

/// When to stop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Number of (s, y) pairs kept (SciPy's default is 10).
    pub memory: usize,
    /// Largest number of iterations (line searches).
    pub max_iter: usize,
    /// Stop when the largest gradient component is at most this.
    pub grad_tol: f64,
    /// Stop when an iteration lowers f by at most `f_tol * max(|f|, tiny)`: no more progress
    /// to be had at this floating-point precision.
    pub f_tol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            memory: 10,
            max_iter: 500,
            grad_tol: 1e-10,
            f_tol: 1e-15,
        }
    }
}

/// Where the minimiser stopped and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    pub x: Array1<f64>,
    pub f: f64,
    /// Largest absolute gradient component at `x`.
    pub grad_max: f64,
    pub iterations: usize,
    /// Objective evaluations (each with its gradient).
    pub evaluations: usize,
    pub stop: Stop,
    /// Any stop but [`Stop::MaxIter`]: the point cannot be improved at this precision.
    pub converged: bool,
}

/// Why the minimiser stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The largest gradient component fell to `grad_tol`.
    Gradient,
    /// An iteration lowered f by at most `f_tol` relative.
    NoProgress,
    /// The line search found no lower point along a descent direction: f is at its
    /// minimum to rounding (common on the nearly piecewise-linear Huber objective).
    LineSearch,
    /// `max_iter` iterations ran out first.
    MaxIter,
}

fn max_abs(v: &Array1<f64>) -> f64 {
    v.fold(0.0, |m, &x| f64::max(m, x.abs()))
}

/// Minimise `f` from `x0`; `f` returns the value and the gradient. Non-finite values are
/// treated as +infinity, so the line search backs away from them.
pub fn minimize<F>(mut f: F, x0: Array1<f64>, opts: &Options) -> Minimum
where
    F: FnMut(&Array1<f64>) -> (f64, Array1<f64>),
{
    let mut run = Lbfgs::new(&mut f, x0, opts);
    while run.iterate(&mut f) {}
    run.result()
}

/// An objective: the value and gradient at a point. A trait object, so the wasm carries one
/// compiled copy of the algorithm for every objective.
pub type Objective<'a> = &'a mut dyn FnMut(&Array1<f64>) -> (f64, Array1<f64>);

/// One evaluation, counted, with non-finite results turned into +infinity.
fn evaluate(f: Objective<'_>, x: &Array1<f64>, count: &mut usize) -> (f64, Array1<f64>) {
    *count += 1;
    let (v, g) = f(x);
    if v.is_finite() && g.iter().all(|g| g.is_finite()) {
        (v, g)
    } else {
        (f64::INFINITY, Array1::zeros(x.len()))
    }
}

/// An L-BFGS run that advances one iteration at a time ([`Lbfgs::iterate`]), so a caller
/// with a time budget (a page between animation frames) can stop and resume it. The
/// objective is passed to each call rather than kept, so it may borrow the caller's data.
#[derive(Clone, Debug)]
pub struct Lbfgs {
    x: Array1<f64>,
    f: f64,
    g: Array1<f64>,
    /// The last `memory` steps s = x_{k+1} - x_k and gradient changes y, each (n,).
    s_hist: Vec<Array1<f64>>,
    y_hist: Vec<Array1<f64>>,
    iterations: usize,
    evaluations: usize,
    stop: Option<Stop>,
    opts: Options,
}

impl Lbfgs {
    /// Start at `x0` (one evaluation).
    pub fn new(f: Objective<'_>, x0: Array1<f64>, opts: &Options) -> Lbfgs {
        let mut evaluations = 0;
        let (fx, g) = evaluate(f, &x0, &mut evaluations);
        let stop = (max_abs(&g) <= opts.grad_tol).then_some(Stop::Gradient);
        Lbfgs {
            x: x0,
            f: fx,
            g,
            s_hist: Vec::new(),
            y_hist: Vec::new(),
            iterations: 0,
            evaluations,
            stop,
            opts: *opts,
        }
    }

    /// Whether the run has stopped.
    pub fn done(&self) -> bool {
        self.stop.is_some()
    }

    /// One iteration: a direction from the two-loop recursion, a line search, a curvature
    /// pair. Returns false once the run has stopped (then it does nothing).
    pub fn iterate(&mut self, f: Objective<'_>) -> bool {
        if self.stop.is_some() {
            return false;
        }
        if self.iterations == self.opts.max_iter || !self.f.is_finite() {
            self.stop = Some(Stop::MaxIter);
            return false;
        }
        self.iterations += 1;
        let g = &self.g;
        // Two-loop recursion: p = -H g with H_0 = gamma I, gamma = s.y / y.y (eq. 7.20).
        let mut q = g.clone();
        let k = self.s_hist.len();
        let mut alphas = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / self.y_hist[i].dot(&self.s_hist[i]);
            alphas[i] = rho * self.s_hist[i].dot(&q);
            q.scaled_add(-alphas[i], &self.y_hist[i]);
        }
        let gamma = match (self.s_hist.last(), self.y_hist.last()) {
            (Some(s), Some(y)) => s.dot(y) / y.dot(y),
            // First step: at most unit length in the largest coordinate.
            _ => 1.0 / max_abs(g).max(1.0),
        };
        q *= gamma;
        for ((s, y), alpha) in self.s_hist.iter().zip(&self.y_hist).zip(&alphas) {
            let rho = 1.0 / y.dot(s);
            let beta = rho * y.dot(&q);
            q.scaled_add(alpha - beta, s);
        }
        let mut p = -q; // (n,)
        if g.dot(&p) >= 0.0 {
            // Not a descent direction (stale curvature pairs): restart from steepest descent.
            self.s_hist.clear();
            self.y_hist.clear();
            p = -g / max_abs(g).max(1.0);
        }
        let evaluations = &mut self.evaluations;
        let mut eval = |x: &Array1<f64>| evaluate(f, x, evaluations);
        let Some((t, f_new, g_new)) = wolfe_search(&mut eval, &self.x, self.f, &self.g, &p) else {
            self.stop = Some(Stop::LineSearch);
            return false;
        };
        let s = &p * t; // (n,)
        let y = &g_new - &self.g; // (n,)
        let decrease = self.f - f_new;
        self.x = &self.x + &s;
        let f_old = self.f;
        self.f = f_new;
        self.g = g_new;
        if s.dot(&y) > 1e-300 {
            if self.s_hist.len() == self.opts.memory {
                self.s_hist.remove(0);
                self.y_hist.remove(0);
            }
            self.s_hist.push(s);
            self.y_hist.push(y);
        }
        let scale = f_old.abs().max(self.f.abs()).max(f64::MIN_POSITIVE);
        if max_abs(&self.g) <= self.opts.grad_tol {
            self.stop = Some(Stop::Gradient);
        } else if decrease <= self.opts.f_tol * scale {
            self.stop = Some(Stop::NoProgress);
        }
        self.stop.is_none()
    }

    /// Where the run is (or stopped).
    pub fn result(&self) -> Minimum {
        Minimum {
            grad_max: max_abs(&self.g),
            x: self.x.clone(),
            f: self.f,
            iterations: self.iterations,
            evaluations: self.evaluations,
            stop: self.stop.unwrap_or(Stop::MaxIter),
            converged: self.stop.is_some_and(|s| s != Stop::MaxIter),
        }
    }
}

/// A step length t satisfying the strong Wolfe conditions with c1 = 1e-4, c2 = 0.9
/// (N&W Algorithm 3.5), or the best sufficient-decrease step found; None when no step
/// lowers f at all.
fn wolfe_search<E>(
    eval: &mut E,
    x: &Array1<f64>,
    f0: f64,
    g0: &Array1<f64>,
    p: &Array1<f64>,
) -> Option<(f64, f64, Array1<f64>)>
where
    E: FnMut(&Array1<f64>) -> (f64, Array1<f64>),
{
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let d0 = g0.dot(p);
    let mut phi = |t: f64| {
        let (v, g) = eval(&(x + &(p * t)));
        let d = g.dot(p);
        (v, g, d)
    };
    // (t, f, g, dphi) of the last accepted trial, starting at t = 0.
    let mut lo = (0.0, f0, g0.clone(), d0);
    let mut t = 1.0;
    for i in 0..40 {
        let (ft, gt, dt) = phi(t);
        if ft > f0 + C1 * t * d0 || (i > 0 && ft >= lo.1) {
            return zoom(&mut phi, lo, (t, ft, dt), f0, d0);
        }
        if dt.abs() <= -C2 * d0 {
            return Some((t, ft, gt));
        }
        if dt >= 0.0 {
            let hi = (lo.0, lo.1, lo.3);
            return zoom(&mut phi, (t, ft, gt, dt), hi, f0, d0);
        }
        lo = (t, ft, gt, dt);
        t *= 2.0;
    }
    (lo.0 > 0.0).then_some((lo.0, lo.1, lo.2))
}

/// N&W Algorithm 3.6: shrink [lo, hi] (lo satisfies sufficient decrease and has the lower f)
/// until a point meets the strong Wolfe conditions. Trial points are cubic-interpolation
/// minimisers kept inside the middle 80% of the interval, falling back to bisection.
fn zoom<P>(
    phi: &mut P,
    mut lo: (f64, f64, Array1<f64>, f64),
    mut hi: (f64, f64, f64),
    f0: f64,
    d0: f64,
) -> Option<(f64, f64, Array1<f64>)>
where
    P: FnMut(f64) -> (f64, Array1<f64>, f64),
{
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    for _ in 0..40 {
        let (a, b) = (lo.0.min(hi.0), lo.0.max(hi.0));
        if b - a <= 1e-16 * b.max(1e-300) {
            break;
        }
        let t = cubic_min(lo.0, lo.1, lo.3, hi.0, hi.1, hi.2)
            .filter(|t| *t > a + 0.1 * (b - a) && *t < b - 0.1 * (b - a))
            .unwrap_or(0.5 * (a + b));
        let (ft, gt, dt) = phi(t);
        if ft > f0 + C1 * t * d0 || ft >= lo.1 {
            hi = (t, ft, dt);
        } else {
            if dt.abs() <= -C2 * d0 {
                return Some((t, ft, gt));
            }
            if dt * (hi.0 - lo.0) >= 0.0 {
                hi = (lo.0, lo.1, lo.3);
            }
            lo = (t, ft, gt, dt);
        }
    }
    (lo.0 > 0.0 && lo.1 < f0).then_some((lo.0, lo.1, lo.2))
}

/// Minimiser of the cubic through (t0, f0, d0) and (t1, f1, d1) (N&W eq. 3.59).
fn cubic_min(t0: f64, f0: f64, d0: f64, t1: f64, f1: f64, d1: f64) -> Option<f64> {
    let d1_ = d0 + d1 - 3.0 * (f0 - f1) / (t0 - t1);
    let disc = d1_ * d1_ - d0 * d1;
    if disc.is_nan() || disc < 0.0 || !f1.is_finite() {
        return None;
    }
    let d2 = (t1 - t0).signum() * disc.sqrt();
    let t = t1 - (t1 - t0) * (d1 + d2 - d1_) / (d1 - d0 + 2.0 * d2);
    t.is_finite().then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana: minimum 0 at (1, 1), a curved narrow valley.
    fn rosenbrock(x: &Array1<f64>) -> (f64, Array1<f64>) {
        let (a, b) = (x[0], x[1]);
        let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let g = Array1::from(vec![
            -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
            200.0 * (b - a * a),
        ]);
        (f, g)
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let m = minimize(
            rosenbrock,
            Array1::from(vec![-1.2, 1.0]),
            &Options::default(),
        );
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{m:?}"
        );
        // Nocedal & Wright report BFGS needing a few dozen iterations from (-1.2, 1).
        assert!(m.iterations < 100, "{m:?}");
    }

    #[test]
    fn solves_an_ill_conditioned_quadratic() {
        // f = 1/2 sum_i k_i (x_i - i)^2 with curvatures 1 .. 1e6: exact minimiser x_i = i.
        let k = [1.0, 10.0, 1e3, 1e5, 1e6];
        let f = |x: &Array1<f64>| {
            let g = Array1::from_shape_fn(5, |i| k[i] * (x[i] - i as f64));
            let v = (0..5).map(|i| 0.5 * k[i] * (x[i] - i as f64).powi(2)).sum();
            (v, g)
        };
        let m = minimize(f, Array1::zeros(5), &Options::default());
        for i in 0..5 {
            assert!((m.x[i] - i as f64).abs() < 1e-9, "{m:?}");
        }
    }
}
