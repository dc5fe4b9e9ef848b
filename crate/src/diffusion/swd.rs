//! The sliced Wasserstein distance (Rabin et al. 2011; Bonneel et al. 2015), the one measure of
//! sample quality of `<ml-diffusion>`, `<ml-flow-matching>`, the CLI and the tests:
//!
//! ```text
//! SW_2(P, Q) = ( (1/L) sum_{l < L} W_2^2(theta_l # P, theta_l # Q) )^(1/2),   theta_l = (cos(pi l / L), sin(pi l / L))
//! W_2^2 in 1D = (1/K) sum_{j < K} (F_P^-1(q_j) - F_Q^-1(q_j))^2,   q_j = (j + 1/2) / K,  K = max(n, m)
//! ```
//!
//! The L = 64 directions are evenly spaced over the half circle (no randomness, so the same
//! two point sets always give the same number); the empirical quantile F^-1(q) of n sorted
//! projections is the entry floor(q n). With n = m this is the mean squared difference of the
//! sorted projections.

/// Number of projection directions.
pub const DIRECTIONS: usize = 64;

/// SW_2 between two point sets, each `(n, 2)` row-major (f32 points, f64 arithmetic).
pub fn sliced_wasserstein(a: &[f32], b: &[f32]) -> f64 {
    assert!(
        a.len() % 2 == 0 && b.len() % 2 == 0,
        "points are (n, 2) row-major"
    );
    let (n, m) = (a.len() / 2, b.len() / 2);
    if n == 0 || m == 0 {
        return f64::NAN;
    }
    let k = n.max(m);
    let mut pa = vec![0f64; n];
    let mut pb = vec![0f64; m];
    let mut total = 0.0;
    for l in 0..DIRECTIONS {
        let (s, c) = crate::math::sin_cos(std::f64::consts::PI * l as f64 / DIRECTIONS as f64);
        let project = |pts: &[f32], out: &mut [f64]| {
            for (o, p) in out.iter_mut().zip(pts.chunks_exact(2)) {
                *o = c * p[0] as f64 + s * p[1] as f64;
            }
            out.sort_unstable_by(f64::total_cmp);
        };
        project(a, &mut pa);
        project(b, &mut pb);
        let mut w2 = 0.0;
        for j in 0..k {
            let q = (j as f64 + 0.5) / k as f64;
            let d = pa[(q * n as f64) as usize] - pb[(q * m as f64) as usize];
            w2 += d * d;
        }
        total += w2 / k as f64;
    }
    (total / DIRECTIONS as f64).sqrt()
}

/// Size of the evaluation set every reported distance is measured against.
pub const EVAL_N: usize = 4000;
/// Seed of the evaluation set (distinct from any training seed's stream: the data set is
/// drawn from `Rng::new(EVAL_SEED)` alone).
pub const EVAL_SEED: u64 = 0xE7A1;

/// The evaluation set of a data set: `EVAL_N` points from `Rng::new(EVAL_SEED)`, `(n, 2)`.
pub fn eval_set(dataset: &super::data::Dataset) -> Vec<f32> {
    dataset
        .sample_seeded(EVAL_N, EVAL_SEED)
        .into_raw_vec_and_offset()
        .0
}

/// SW_2 between samples `(n, 2)` and the data set's evaluation set: the number the CLI,
/// the widgets and the learning tests report.
pub fn to_dataset(samples: &[f32], dataset: &super::data::Dataset) -> f64 {
    sliced_wasserstein(samples, &eval_set(dataset))
}
