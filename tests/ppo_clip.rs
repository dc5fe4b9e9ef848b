//! PPO's clipped objective against hand-derived values and finite differences.

use mlplay::ppo_clip::{
    compute, curve, l_clip, l_clip_grad, run_update, surrogate, surrogate_grad, Config, Problem,
};
use ndarray::Array1;

/// L_clip and dL/dr at r in {0.7, 1.0, 1.3}, A = +-1, eps = 0.2, derived by hand:
/// - A = +1: clip(r) = (0.8, 1.0, 1.2). min(rA, clip A) = min(0.7, 0.8) = 0.7 (unclipped
///   branch: gradient A = 1); min(1, 1) = 1 (inside: gradient 1); min(1.3, 1.2) = 1.2
///   (clipped branch smaller: gradient 0).
/// - A = -1: min(-0.7, -0.8) = -0.8 (clipped: gradient 0); min(-1, -1) = -1 (gradient -1);
///   min(-1.3, -1.2) = -1.3 (unclipped: gradient -1).
#[test]
fn l_clip_hand_derived_points() {
    let eps = 0.2;
    let cases = [
        (0.7, 1.0, 0.7, 1.0),
        (1.0, 1.0, 1.0, 1.0),
        (1.3, 1.0, 1.2, 0.0),
        (0.7, -1.0, -0.8, 0.0),
        (1.0, -1.0, -1.0, -1.0),
        (1.3, -1.0, -1.3, -1.0),
    ];
    for (r, a, want_l, want_g) in cases {
        assert!((l_clip(r, a, eps) - want_l).abs() < 1e-12, "L({r}, {a})");
        assert_eq!(l_clip_grad(r, a, eps), want_g, "dL/dr({r}, {a})");
    }
}

/// Away from the kinks, dL/dr agrees with a central finite difference of L_clip.
#[test]
fn l_clip_grad_matches_finite_differences() {
    let h = 1e-6;
    for &eps in &[0.1, 0.2, 0.35] {
        for &a in &[-1.7, -0.3, 0.4, 2.0] {
            for i in 1..200 {
                let r = i as f64 * 0.01;
                if (r - (1.0 - eps)).abs() < 1e-3 || (r - (1.0 + eps)).abs() < 1e-3 {
                    continue; // the kinks: L is not differentiable there
                }
                let fd = (l_clip(r + h, a, eps) - l_clip(r - h, a, eps)) / (2.0 * h);
                assert!(
                    (fd - l_clip_grad(r, a, eps)).abs() < 1e-6,
                    "r={r} A={a} eps={eps}"
                );
            }
        }
    }
}

/// The clipped objective never exceeds the unclipped one (it is a pessimistic bound), and
/// equals it inside the trust region.
#[test]
fn clipped_is_a_lower_bound_equal_inside_the_trust_region() {
    for &a in &[-2.0, -0.5, 0.0, 0.7, 2.0] {
        let c = curve(a, 0.2, 2.0, 201);
        for i in 0..c.r.len() {
            assert!(c.clipped[i] <= c.unclipped[i] + 1e-12);
            if (0.8..=1.2).contains(&c.r[i]) {
                assert!((c.clipped[i] - c.unclipped[i]).abs() < 1e-12);
            }
        }
    }
}

fn finite_difference_grad(p: &Problem, logits: &Array1<f64>, eps: Option<f64>) -> Array1<f64> {
    let h = 1e-6;
    Array1::from_shape_fn(logits.len(), |j| {
        let mut up = logits.clone();
        let mut down = logits.clone();
        up[j] += h;
        down[j] -= h;
        (surrogate(p, &up, eps) - surrogate(p, &down, eps)) / (2.0 * h)
    })
}

/// The update panel's analytic gradient through the softmax equals finite differences, for
/// the clipped and the unclipped surrogate, at points inside and outside the trust region.
#[test]
fn update_gradient_matches_finite_differences() {
    for seed in 0..20 {
        let p = Problem::sample(2 + (seed as usize % 7), seed);
        let mut rng = mlplay::rng::Rng::new(1000 + seed);
        let logits = &p.logits + &Array1::from_shape_fn(p.logits.len(), |_| 0.4 * rng.normal());
        for eps in [None, Some(0.2)] {
            let r = mlplay::ppo_clip::Problem::pi_old(&p);
            let pi = {
                let e = logits.mapv(f64::exp);
                let s = e.sum();
                e / s
            };
            let ratios = &pi / &r;
            // Skip points within 1e-4 of a kink, where L is not differentiable.
            if eps.is_some_and(|e| ratios.iter().any(|x| ((x - 1.0).abs() - e).abs() < 1e-4)) {
                continue;
            }
            let g = surrogate_grad(&p, &logits, eps);
            let fd = finite_difference_grad(&p, &logits, eps);
            for j in 0..g.len() {
                assert!(
                    (g[j] - fd[j]).abs() < 1e-7,
                    "seed {seed} eps {eps:?} j {j}: {} vs {}",
                    g[j],
                    fd[j]
                );
            }
        }
    }
}

/// Advantages are centred under pi_old (E_{pi_old}[A] = 0), so at theta_0 the softmax
/// gradient sums to zero and the surrogate starts at 0.
#[test]
fn problem_advantages_are_centred() {
    for seed in 0..10 {
        let p = Problem::sample(5, seed);
        let mean: f64 = p.pi_old().dot(&p.advantages);
        assert!(mean.abs() < 1e-12);
        assert!(surrogate(&p, &p.logits, Some(0.2)).abs() < 1e-12);
    }
}

/// The point of panel 2: with the default settings the clipped update stalls within a small
/// overshoot of [1 - eps, 1 + eps], while the unclipped one leaves it far behind. Once every
/// ratio is outside the trust region in its advantage's direction the gradient is exactly
/// zero and the clipped ratios stop moving.
#[test]
fn clipped_update_stalls_unclipped_runs_away() {
    let cfg = Config::default();
    let d = compute(&cfg);
    let eps = cfg.clip_coef;
    let clipped = d.clipped.final_max_deviation();
    let unclipped = d.unclipped.final_max_deviation();
    assert!(clipped < eps + 0.1, "clipped ended {clipped}");
    assert!(unclipped > 3.0 * eps, "unclipped ended {unclipped}");
    // Epoch 0 is the starting policy: every ratio is exactly 1.
    assert!(d.clipped.ratios[0].iter().all(|&r| (r - 1.0).abs() < 1e-12));
    // The clipped surrogate never decreases under small enough steps.
    let small = run_update(&d.problem, Some(eps), 0.05, 50);
    for w in small.objective.windows(2) {
        assert!(w[1] >= w[0] - 1e-12);
    }
}

/// Same seed, same numbers; a different seed, a different problem.
#[test]
fn update_panel_is_seeded() {
    let a = compute(&Config::default());
    let b = compute(&Config::default());
    assert_eq!(a, b);
    let c = compute(&Config {
        seed: 4,
        ..Config::default()
    });
    assert_ne!(a.problem, c.problem);
}
