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
    let mut evaluations = 0usize;
    let mut eval = |x: &Array1<f64>| {
        evaluations += 1;
        let (v, g) = f(x);
        if v.is_finite() && g.iter().all(|g| g.is_finite()) {
            (v, g)
        } else {
            (f64::INFINITY, Array1::zeros(x.len()))
        }
    };
    let mut x = x0;
    let (mut fx, mut g) = eval(&x);
    let mut s_hist: Vec<Array1<f64>> = Vec::new(); // each (n,)
    let mut y_hist: Vec<Array1<f64>> = Vec::new(); // each (n,)
    let mut iterations = 0;
    let mut stop = if max_abs(&g) <= opts.grad_tol {
        Some(Stop::Gradient)
    } else {
        None
    };
    while stop.is_none() {
        if iterations == opts.max_iter || !fx.is_finite() {
            stop = Some(Stop::MaxIter);
            break;
        }
        iterations += 1;
        // Two-loop recursion: p = -H g with H_0 = gamma I, gamma = s.y / y.y (eq. 7.20).
        let mut q = g.clone();
        let k = s_hist.len();
        let mut alphas = vec![0.0; k];
        for i in (0..k).rev() {
            let rho = 1.0 / y_hist[i].dot(&s_hist[i]);
            alphas[i] = rho * s_hist[i].dot(&q);
            q.scaled_add(-alphas[i], &y_hist[i]);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => s.dot(y) / y.dot(y),
            // First step: at most unit length in the largest coordinate.
            _ => 1.0 / max_abs(&g).max(1.0),
        };
        q *= gamma;
        for i in 0..k {
            let rho = 1.0 / y_hist[i].dot(&s_hist[i]);
            let beta = rho * y_hist[i].dot(&q);
            q.scaled_add(alphas[i] - beta, &s_hist[i]);
        }
        let mut p = -q; // (n,)
        if g.dot(&p) >= 0.0 {
            // Not a descent direction (stale curvature pairs): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            p = -&g / max_abs(&g).max(1.0);
        }
        let Some((t, f_new, g_new)) = wolfe_search(&mut eval, &x, fx, &g, &p) else {
            stop = Some(Stop::LineSearch);
            break;
        };
        let s = &p * t; // (n,)
        let y = &g_new - &g; // (n,)
        let decrease = fx - f_new;
        x = &x + &s;
        let f_old = fx;
        fx = f_new;
        g = g_new;
        if s.dot(&y) > 1e-300 {
            if s_hist.len() == opts.memory {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        if max_abs(&g) <= opts.grad_tol {
            stop = Some(Stop::Gradient);
        } else if decrease <= opts.f_tol * f_old.abs().max(fx.abs()).max(f64::MIN_POSITIVE) {
            stop = Some(Stop::NoProgress);
        }
    }
    let stop = stop.expect("the loop ends with a reason");
    Minimum {
        grad_max: max_abs(&g),
        x,
        f: fx,
        iterations,
        evaluations,
        stop,
        converged: stop != Stop::MaxIter,
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
