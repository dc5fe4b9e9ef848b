//! RoPE against hand-derived values, independent reference formulas (Meta's complex form,
//! Hugging Face's `rotate_half`, RoFormer's bound, Vaswani's sinusoids) and properties:
//! norms kept, scores that depend on m - n only, pairings that agree after the permutation.

use std::f64::consts::TAU;
use std::process::Command;

use mlplay::params::Params;
use mlplay::rng::Rng;
use mlplay::rope::*;
use ndarray::{array, Array1};
use serde_json::Value;

const EPS: f64 = f64::EPSILON;

fn randn(d: usize, rng: &mut Rng) -> Array1<f64> {
    Array1::from_shape_fn(d, |_| rng.normal())
}

fn norm(x: &Array1<f64>) -> f64 {
    x.dot(x).sqrt()
}

fn max_abs_diff(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    (a - b).fold(0.0f64, |m, v| m.max(v.abs()))
}

/// A random even dimension from 2 to 256.
fn random_dim(rng: &mut Rng) -> usize {
    2 * (1 + (rng.uniform() * 128.0) as usize)
}

#[test]
fn golden_d2_is_one_rotation_by_m_radians() {
    // d = 2: one pair, theta_0 = base^0 = 1 whatever the base, so R_m is the plain 2x2
    // rotation by m radians. q = (1, 2), k = (3, -1), m = 3, n = 1:
    //   R_3 q = (cos 3 - 2 sin 3, sin 3 + 2 cos 3) = (-1.27223251272018, -1.8388649851410237)
    //   R_1 k = (3 cos 1 + sin 1, 3 sin 1 - cos 1) = (2.4623779024123156, 1.9841106485555495)
    // and as complex numbers q~ = 1 + 2i, k~ = 3 - i: q~ conj(k~) = (1 + 2i)(3 + i) = 1 + 7i,
    //   score = Re[(1 + 7i) e^{2i}] = cos 2 - 7 sin 2 = -6.781228824326914.
    let (q, k) = (array![1.0, 2.0], array![3.0, -1.0]);
    for base in [10.0, 10_000.0, 500_000.0] {
        let th = thetas(2, base);
        assert_eq!(th[0], 1.0);
        let q_rot = rotate(q.view(), 3.0, &th, Pairing::Interleaved);
        let k_rot = rotate(k.view(), 1.0, &th, Pairing::Interleaved);
        assert!(max_abs_diff(&q_rot, &array![-1.27223251272018, -1.8388649851410237]) < 1e-15);
        assert!(max_abs_diff(&k_rot, &array![2.4623779024123156, 1.9841106485555495]) < 1e-15);
        let s = score(q.view(), k.view(), 3.0, 1.0, &th, Pairing::Interleaved);
        assert!((s - -6.781228824326914).abs() < 1e-14, "{s}");
        // For d = 2 both pairings are the same pair (x0, x1).
        assert_eq!(Pairing::Halves.pair(2, 0), (0, 1));
    }
}

#[test]
fn golden_d4_second_pair_turns_at_one_hundredth() {
    // d = 4, base 10,000: theta = (10000^0, 10000^(-2/4)) = (1, 0.01). At m = 100 pair 1
    // turns by exactly 1 radian; pair 0 by 100 radians.
    let th = thetas(4, 10_000.0);
    assert_eq!(th[0], 1.0);
    assert!((th[1] - 0.01).abs() < 1e-17);
    // Interleaved: pair 1 is (x2, x3). e_2 -> (0, 0, cos 1, sin 1).
    let e2 = array![0.0, 0.0, 1.0, 0.0];
    let r = rotate(e2.view(), 100.0, &th, Pairing::Interleaved);
    let want = array![0.0, 0.0, 1f64.cos(), 1f64.sin()];
    assert!(max_abs_diff(&r, &want) < 1e-14, "{r}");
    // Halves: pair 1 is (x1, x3). e_1 -> (0, cos 1, 0, sin 1); e_0 turns by 100 rad in (x0, x2).
    let e1 = array![0.0, 1.0, 0.0, 0.0];
    let r = rotate(e1.view(), 100.0, &th, Pairing::Halves);
    assert!(
        max_abs_diff(&r, &array![0.0, 1f64.cos(), 0.0, 1f64.sin()]) < 1e-14,
        "{r}"
    );
    let e0 = array![1.0, 0.0, 0.0, 0.0];
    let r = rotate(e0.view(), 100.0, &th, Pairing::Halves);
    assert!(
        max_abs_diff(&r, &array![100f64.cos(), 0.0, 100f64.sin(), 0.0]) < 1e-14,
        "{r}"
    );
}

#[test]
fn thetas_follow_the_formula() {
    // theta_i = base^(-2i/d): for d = 128, base 10,000, theta_32 = 10000^(-1/2) = 0.01 and
    // theta_63 = 10000^(-126/128); checked against exp(-(2i/d) ln base).
    let th = thetas(128, 10_000.0);
    assert_eq!(th.len(), 64);
    assert_eq!(th[0], 1.0);
    assert!((th[32] - 0.01).abs() < 1e-16);
    // theta_40 = 10000^(-80/128) = 10^(-2.5) = 0.00316227766016837933..., to the last digit.
    assert_eq!(th[40], 0.0031622776601683794);
    for (i, &t) in th.iter().enumerate() {
        // The reference rounds too: y = -(2i/d) ln base is off by about |y| eps (ln and the
        // product), which exp turns into a relative error |y| eps, plus an ulp of its own;
        // |y| <= ln 10000 ~ 9.2.
        let y = -(2.0 * i as f64 / 128.0) * 10_000f64.ln();
        let want = y.exp();
        assert!(
            (t - want).abs() <= (2.0 + y.abs()) * EPS * want,
            "theta_{i}: {t} vs {want}"
        );
    }
    // Wavelength of the slowest pair: 2 pi 10000^(126/128) ~ 54,410 tokens.
    let lambda = wavelengths(&th);
    assert!((lambda[0] - TAU).abs() < 1e-15);
    assert!((lambda[63] - TAU * 10_000f64.powf(126.0 / 128.0)).abs() < 1e-9);
    assert!(
        lambda[63] > 54_000.0 && lambda[63] < 54_500.0,
        "{}",
        lambda[63]
    );
}

#[test]
fn rotations_preserve_norms() {
    // |R_m x| = |x|: an orthogonal map. Rounding only: cos^2 + sin^2 = 1 to about 2 eps and
    // each rotated component to about 2 eps of its pair's length, so the norm (itself a sum
    // of d squares, d eps) is within (8 + d) eps |x|. Angle errors do not change the norm.
    let mut rng = Rng::new(11);
    for _ in 0..300 {
        let d = random_dim(&mut rng);
        let base = 10f64.powf(rng.uniform_range(1.0, 7.0));
        let th = thetas(d, base);
        let x = randn(d, &mut rng);
        let pos = (rng.uniform() * 100_000.0).floor();
        for pairing in [Pairing::Interleaved, Pairing::Halves] {
            let r = rotate(x.view(), pos, &th, pairing);
            let tol = (8.0 + d as f64) * EPS * norm(&x);
            assert!(
                (norm(&r) - norm(&x)).abs() <= tol,
                "d {d} pos {pos}: {} vs {}",
                norm(&r),
                norm(&x)
            );
        }
    }
}

/// Random (q, k, m, n, shift, d, base) draws for the shift property.
struct Draw {
    d: usize,
    base: f64,
    q: Array1<f64>,
    k: Array1<f64>,
    m: f64,
    n: f64,
    shift: f64,
}

fn draws(seed: u64, count: usize) -> Vec<Draw> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let d = random_dim(&mut rng);
            Draw {
                d,
                base: 10f64.powf(rng.uniform_range(2.0, 7.0)),
                q: randn(d, &mut rng),
                k: randn(d, &mut rng),
                m: (rng.uniform() * 2048.0).floor(),
                n: (rng.uniform() * 2048.0).floor(),
                shift: 1.0 + (rng.uniform() * 4096.0).floor(),
            }
        })
        .collect()
}

#[test]
fn rope_scores_depend_on_m_minus_n_only() {
    // score(m, n) = score(m + s, n + s) up to f64 rounding of the angles, bounded by
    // shift_tolerance (derivation in its docs: (4(m + n + s) + 16 + 2d) eps |q||k|).
    let mut worst = 0.0f64;
    for t in draws(5, 400) {
        let th = thetas(t.d, t.base);
        for pairing in [Pairing::Interleaved, Pairing::Halves] {
            let a = score(t.q.view(), t.k.view(), t.m, t.n, &th, pairing);
            let b = score(
                t.q.view(),
                t.k.view(),
                t.m + t.shift,
                t.n + t.shift,
                &th,
                pairing,
            );
            let tol = shift_tolerance(t.m, t.n, t.shift, t.d, norm(&t.q), norm(&t.k));
            assert!(
                (a - b).abs() <= tol,
                "d {} m {} n {} s {}: {a} vs {b}, tol {tol}",
                t.d,
                t.m,
                t.n,
                t.shift
            );
            worst = worst.max((a - b).abs() / tol);
            // And the identity itself: q . R_{n-m} k.
            let rel = score_relative(t.q.view(), t.k.view(), t.m - t.n, &th, pairing);
            assert!((a - rel).abs() <= tol, "relative form: {a} vs {rel}");
        }
    }
    // The bound is a worst case; rounding errors partly cancel, so the measured ones sit
    // well inside it (a tolerance that could never be approached would be suspect too:
    // the errors are real, just small).
    eprintln!("shift property: largest |error| / tolerance = {worst:.3e}");
    assert!(
        worst > 1e-4 && worst < 1.0,
        "largest error / tolerance {worst}"
    );
}

#[test]
fn sinusoidal_absolute_scores_fail_the_shift_property() {
    // (q + p_m) . (k + p_n) - (q + p_{m+s}) . (k + p_{n+s}) = q . (p_n - p_{n+s}) + (p_m - p_{m+s}) . k:
    // the cross terms see absolute positions, so shifting both changes the score by O(1),
    // millions of times the rounding tolerance that RoPE meets.
    let mut failures = 0;
    let all = draws(5, 400);
    for t in &all {
        let (pm, pn) = (sinusoidal(t.m, t.d, t.base), sinusoidal(t.n, t.d, t.base));
        let (pms, pns) = (
            sinusoidal(t.m + t.shift, t.d, t.base),
            sinusoidal(t.n + t.shift, t.d, t.base),
        );
        let a = (&t.q + &pm).dot(&(&t.k + &pn));
        let b = (&t.q + &pms).dot(&(&t.k + &pns));
        let tol = shift_tolerance(t.m, t.n, t.shift, t.d, norm(&t.q), norm(&t.k));
        if (a - b).abs() > 1e3 * tol {
            failures += 1;
        }
    }
    // Rarely the cross terms nearly cancel by chance; nearly every draw must break it.
    assert!(
        failures >= all.len() * 95 / 100,
        "{failures} of {} broke the shift property",
        all.len()
    );
}

#[test]
fn fast_rotation_equals_the_explicit_matrix_reference() {
    // rotate (one cos/sin per pair, in place) against R_m x with R_m built from explicit
    // 2x2 blocks (d^2 multiply-adds, most with zeros, which add nothing). Each component is
    // a cos + b sin either way: they agree to a few ulps of |x|.
    let mut rng = Rng::new(3);
    for _ in 0..100 {
        let d = random_dim(&mut rng);
        let th = thetas(d, 10f64.powf(rng.uniform_range(1.0, 7.0)));
        let x = randn(d, &mut rng);
        let pos = (rng.uniform() * 10_000.0).floor() - 5_000.0;
        for pairing in [Pairing::Interleaved, Pairing::Halves] {
            let fast = rotate(x.view(), pos, &th, pairing);
            let slow = rotate_slow(x.view(), pos, &th, pairing);
            assert!(
                max_abs_diff(&fast, &slow) <= 4.0 * EPS * norm(&x),
                "d {d} pos {pos}"
            );
        }
    }
    // The matrix is orthogonal and R_m^T R_n = R_{n-m} (here m = 5, n = 12, d = 6).
    let th = thetas(6, 100.0);
    let (r5, r12, r7) = (
        rotation_matrix(6, 5.0, &th, Pairing::Halves),
        rotation_matrix(6, 12.0, &th, Pairing::Halves),
        rotation_matrix(6, 7.0, &th, Pairing::Halves),
    );
    let prod = r5.t().dot(&r12);
    assert!((&prod - &r7).fold(0.0f64, |m, v| m.max(v.abs())) < 1e-14);
}

#[test]
fn interleaved_matches_metas_complex_form_and_halves_matches_rotate_half() {
    // Meta's Llama: view x as complex numbers x_{2i} + i x_{2i+1} and multiply by
    // e^{i m theta_i} (torch.polar). Hugging Face: x cos + rotate_half(x) sin with
    // cos = cat(cos(m theta), cos(m theta)), rotate_half(x) = cat(-x[d/2:], x[:d/2]).
    let mut rng = Rng::new(8);
    for _ in 0..50 {
        let d = random_dim(&mut rng);
        let th = thetas(d, 10_000.0);
        let x = randn(d, &mut rng);
        let m = (rng.uniform() * 4096.0).floor();
        let h = d / 2;
        let mut meta = Array1::zeros(d);
        for i in 0..h {
            let (re, im) = (x[2 * i], x[2 * i + 1]);
            let (c, s) = ((m * th[i]).cos(), (m * th[i]).sin());
            meta[2 * i] = re * c - im * s;
            meta[2 * i + 1] = re * s + im * c;
        }
        let cos = Array1::from_shape_fn(d, |j| (m * th[j % h]).cos());
        let sin = Array1::from_shape_fn(d, |j| (m * th[j % h]).sin());
        let rot_half = Array1::from_shape_fn(d, |j| if j < h { -x[j + h] } else { x[j - h] });
        let hf = &x * &cos + &rot_half * &sin;
        let tol = 4.0 * EPS * norm(&x);
        assert!(max_abs_diff(&rotate(x.view(), m, &th, Pairing::Interleaved), &meta) <= tol);
        assert!(max_abs_diff(&rotate(x.view(), m, &th, Pairing::Halves), &hf) <= tol);
    }
}

#[test]
fn the_permutation_moves_pair_i_to_rows_i_and_i_plus_half() {
    // d = 8: interleaved pairs (0,1),(2,3),(4,5),(6,7) become (0,4),(1,5),(2,6),(3,7):
    // halves[j] = interleaved[perm[j]] with perm = [0, 2, 4, 6, 1, 3, 5, 7].
    assert_eq!(permutation(8), vec![0, 2, 4, 6, 1, 3, 5, 7]);
    assert_eq!(permutation(2), vec![0, 1]);
    for d in [4, 6, 64, 128] {
        let perm = permutation(d);
        for i in 0..d / 2 {
            let (a, b) = Pairing::Interleaved.pair(d, i);
            let (ha, hb) = Pairing::Halves.pair(d, i);
            assert_eq!((perm[ha], perm[hb]), (a, b), "d {d} pair {i}");
        }
    }
}

#[test]
fn interleaved_and_halves_agree_after_the_permutation() {
    // Rotating the permuted vector with halves pairs does the same arithmetic on the same
    // numbers as rotating the original with interleaved pairs, so the rotated vectors are
    // equal exactly; the scores differ only by the order of the dot product's sum.
    let mut rng = Rng::new(21);
    for _ in 0..200 {
        let d = random_dim(&mut rng);
        let th = thetas(d, 10f64.powf(rng.uniform_range(2.0, 7.0)));
        let perm = permutation(d);
        let (q, k) = (randn(d, &mut rng), randn(d, &mut rng));
        let (qh, kh) = (permute(q.view(), &perm), permute(k.view(), &perm));
        let (m, n) = (
            (rng.uniform() * 2048.0).floor(),
            (rng.uniform() * 2048.0).floor(),
        );
        let inter = rotate(q.view(), m, &th, Pairing::Interleaved);
        let halves = rotate(qh.view(), m, &th, Pairing::Halves);
        assert_eq!(permute(inter.view(), &perm), halves);
        let a = score(q.view(), k.view(), m, n, &th, Pairing::Interleaved);
        let b = score(qh.view(), kh.view(), m, n, &th, Pairing::Halves);
        assert!(
            (a - b).abs() <= d as f64 * EPS * norm(&q) * norm(&k),
            "{a} vs {b}"
        );
        // Without the permutation the two pairings disagree (d >= 4: different pairs).
        if d >= 4 && m != n {
            let c = score(q.view(), k.view(), m, n, &th, Pairing::Halves);
            assert!(
                (a - c).abs() > 1e-6,
                "d {d}: pairings should differ on unpermuted vectors"
            );
        }
    }
}

#[test]
fn score_matrix_is_toeplitz_and_sinusoidal_is_not() {
    let mut rng = Rng::new(4);
    for &(d, base) in &[
        (2usize, 10_000.0),
        (16, 100.0),
        (64, 10_000.0),
        (128, 500_000.0),
    ] {
        let (q, k) = (randn(d, &mut rng), randn(d, &mut rng));
        let th = thetas(d, base);
        let p = 64;
        let s = score_matrix(q.view(), k.view(), p, &th, Pairing::Interleaved);
        // Entries are the scores themselves.
        for (m, n) in [(0, 0), (5, 40), (63, 1)] {
            let want = score(
                q.view(),
                k.view(),
                m as f64,
                n as f64,
                &th,
                Pairing::Interleaved,
            );
            assert!((s[[m, n]] - want).abs() < 1e-12 * norm(&q) * norm(&k));
        }
        // Constant diagonals up to the shift tolerance at positions below 64, relative to
        // the largest entry.
        let largest = s.fold(0.0f64, |a, v| a.max(v.abs()));
        let tol = shift_tolerance(63.0, 63.0, 63.0, d, norm(&q), norm(&k)) / largest;
        assert!(
            diagonal_spread(&s) <= tol,
            "d {d}: spread {}",
            diagonal_spread(&s)
        );
        let abs = sinusoidal_score_matrix(q.view(), k.view(), p, base);
        assert!(
            diagonal_spread(&abs) > 0.05,
            "d {d}: sinusoidal spread {}",
            diagonal_spread(&abs)
        );
    }
}

#[test]
fn diagonal_spread_golden() {
    // [[1, 2], [3, 4]]: the main diagonal holds 1 and 4 (range 3), the others one entry
    // each (range 0); the largest |entry| is 4, so the spread is 3/4.
    assert_eq!(diagonal_spread(&array![[1.0, 2.0], [3.0, 4.0]]), 0.75);
    // A Toeplitz matrix: zero.
    let t = array![[1.0, 2.0, 3.0], [-1.0, 1.0, 2.0], [5.0, -1.0, 1.0]];
    assert_eq!(diagonal_spread(&t), 0.0);
}

#[test]
fn sinusoidal_encoding_golden_and_its_own_products_are_relative() {
    // PE(pos, 2i) = sin(pos w_i), PE(pos, 2i+1) = cos(pos w_i), w_i = base^(-2i/d): for
    // d = 4, base 10,000, w = (1, 0.01), so PE(3) = (sin 3, cos 3, sin 0.03, cos 0.03).
    let p = sinusoidal(3.0, 4, 10_000.0);
    let want = array![3f64.sin(), 3f64.cos(), 0.03f64.sin(), 0.03f64.cos()];
    assert!(max_abs_diff(&p, &want) < 1e-15);
    // p_m . p_n = sum_i cos((m - n) w_i) (cos a cos b + sin a sin b = cos(a - b)): the
    // position-position term is relative, only the content cross terms are absolute.
    let w = thetas(32, 10_000.0);
    for (m, n) in [(0.0, 0.0), (7.0, 3.0), (100.0, 250.0)] {
        let dot = sinusoidal(m, 32, 10_000.0).dot(&sinusoidal(n, 32, 10_000.0));
        let want: f64 = w.iter().map(|wi| ((m - n) * wi).cos()).sum();
        assert!((dot - want).abs() < 1e-12, "{m},{n}: {dot} vs {want}");
    }
}

#[test]
fn roformer_bound_golden_and_it_bounds_the_score() {
    // At r = 0 every e^{i 0} = 1, so S_j = j and (2/d) sum_{j=1}^{d/2} j = (d/2 + 1) / 2.
    for d in [2usize, 8, 128] {
        let b = relative_bound(&[0.0], &thetas(d, 10_000.0));
        assert!((b[0] - (d as f64 / 2.0 + 1.0) / 2.0).abs() < 1e-12);
    }
    // d = 2: S_1 = e^{i r}, |S_1| = 1 at every offset: one pair cannot decay.
    let b = relative_bound(&[0.0, 3.0, 1000.0], &thetas(2, 10_000.0));
    assert!(b.iter().all(|v| (v - 1.0).abs() < 1e-15));
    // The inequality itself, |sum_i h_i e^{i r theta_i}| <= max_i |h_{i+1} - h_i| sum_j |S_j|
    // with h_{d/2} = 0, for random complex h and offsets.
    let mut rng = Rng::new(2);
    for _ in 0..200 {
        let d = random_dim(&mut rng);
        let half = d / 2;
        let th = thetas(d, 10_000.0);
        let h: Vec<(f64, f64)> = (0..half).map(|_| (rng.normal(), rng.normal())).collect();
        let r = (rng.uniform() * 5000.0).floor();
        let (mut re, mut im) = (0.0, 0.0);
        for i in 0..half {
            let (c, s) = ((r * th[i]).cos(), (r * th[i]).sin());
            re += h[i].0 * c - h[i].1 * s;
            im += h[i].0 * s + h[i].1 * c;
        }
        let lhs = re.hypot(im);
        let mut max_step = 0.0f64;
        for i in 0..half {
            let next = if i + 1 < half { h[i + 1] } else { (0.0, 0.0) };
            max_step = max_step.max((next.0 - h[i].0).hypot(next.1 - h[i].1));
        }
        let sum_s = relative_bound(&[r], &th)[0] * half as f64;
        assert!(
            lhs <= max_step * sum_s * (1.0 + 1e-12),
            "{lhs} > {}",
            max_step * sum_s
        );
    }
}

#[test]
fn the_bound_and_mean_score_decay_and_unrelated_content_does_not() {
    let offsets = [0.0, 10.0, 100.0, 1000.0];
    let b = relative_bound(&offsets, &thetas(128, 10_000.0));
    // RoFormer's Figure 2 shape: falls by more than half within 100 tokens.
    assert!(b[2] < 0.5 * b[0] && b[3] < b[1], "{b:?}");
    // Mean |score| over seeded random pairs, from the complex form, equals the mean of
    // |(R_r q) . (R_0 k)| from the rotations.
    let mut rng = Rng::new(9);
    let th = thetas(64, 10_000.0);
    let pairs: Vec<_> = (0..64)
        .map(|_| content_vectors(64, 1.0, &mut rng))
        .collect();
    let fast = mean_abs_score(&offsets, &th, &pairs);
    for (j, &r) in offsets.iter().enumerate() {
        let slow: f64 = pairs
            .iter()
            .map(|(q, k)| score(q.view(), k.view(), r, 0.0, &th, Pairing::Interleaved).abs())
            .sum::<f64>()
            / pairs.len() as f64;
        assert!(
            (fast[j] - slow).abs() < 1e-9 * slow,
            "r {r}: {} vs {slow}",
            fast[j]
        );
    }
    // k = q (rho = 1): score(r) = sum_i |q~_i|^2 cos(r theta_i) with E|q~_i|^2 = 2, so about
    // 64 at r = 0. At r = 1000 the pairs with 1000 theta_i << 1 (theta_i = 10000^(-i/32) <
    // 1e-3, i > 24: 8 of 32) still add about 2 each, 16 in all, and the others average out
    // to a smaller noise term: about a quarter of the r = 0 value. It falls all the way.
    assert!(
        fast[0] > fast[1] && fast[1] > fast[2] && fast[2] > fast[3],
        "{fast:?}"
    );
    assert!(fast[3] < 0.4 * fast[0], "{fast:?}");
    // rho = 0: q and k independent, each h_i has a uniformly random phase, so rotating it
    // changes nothing in distribution: the mean |score| stays near its r = 0 value. With
    // 2048 pairs the standard error of the mean is about 0.75/sqrt(2048) ~ 1.7%.
    let mut rng = Rng::new(10);
    let indep: Vec<_> = (0..2048)
        .map(|_| content_vectors(64, 0.0, &mut rng))
        .collect();
    let flat = mean_abs_score(&offsets, &th, &indep);
    for v in &flat {
        assert!((v / flat[0] - 1.0).abs() < 0.08, "{flat:?}");
    }
}

#[test]
fn linear_and_ntk_scaling_follow_their_formulas() {
    let (d, base, s) = (128, 10_000.0, 8.0);
    let th = thetas(d, base);
    // Linear interpolation: every theta divided by s, every wavelength times s.
    let lin = scaled_thetas(d, base, Scaling::Linear(s));
    assert!(max_abs_diff(&lin, &(&th / s)) < 1e-18);
    // NTK-aware: base' = base s^(d/(d-2)) = 10000 * 8^(128/126).
    let b2 = ntk_base(base, d, s);
    assert!((b2 - 10_000.0 * 8f64.powf(128.0 / 126.0)).abs() < 1e-6);
    let ntk = scaled_thetas(d, base, Scaling::Ntk(s));
    // Pair 0 untouched, the last pair slowed by exactly s, pair i by s^(2i/(d-2)).
    assert_eq!(ntk[0], 1.0);
    assert!((ntk[63] - th[63] / s).abs() < 1e-12 * th[63]);
    for i in 0..64 {
        let want = th[i] * s.powf(-2.0 * i as f64 / (d as f64 - 2.0));
        assert!((ntk[i] - want).abs() < 1e-12 * want, "pair {i}");
    }
    // Wavelength stretch lambda'/lambda grows from 1 (pair 0) to s (last pair).
    let ratio = wavelengths(&ntk) / wavelengths(&th);
    assert!(ratio.windows(2).into_iter().all(|w| w[1] >= w[0]));
    assert!((ratio[0] - 1.0).abs() < 1e-15 && (ratio[63] - s).abs() < 1e-9);
    // d = 2: the single pair has theta_0 = 1 at any base.
    assert_eq!(scaled_thetas(2, base, Scaling::Ntk(s))[0], 1.0);
    assert_eq!(scaled_thetas(d, base, Scaling::None), th);
}

fn config_with(pairs: &[(&str, &str)]) -> Config {
    let mut p = Params::defaults(&SPEC);
    for (k, v) in pairs {
        p.set_strict(k, v).unwrap();
    }
    Config::from_params(&p)
}

#[test]
fn the_widget_data_keeps_its_promises() {
    let base = compute(&config_with(&[]));
    assert_eq!(base.config.base, 10_000.0);
    // Shifting both positions: the rotated pairs move, the displayed score is the same string,
    // and the computed score moves by less than the rounding tolerance.
    // (Only the dial moves with the shift, so only the dial is recomputed here.)
    for shift in ["1", "37", "500", "1024"] {
        let config = config_with(&[("shift", shift)]);
        let (q, k) = seeded_content(&config);
        let moved = Dial::compute(&config, &q, &k, &config.thetas());
        assert_eq!(moved.score_text, base.dial.score_text);
        assert_eq!(moved.angle_between, base.dial.angle_between);
        assert_ne!(moved.q_rot_pair, base.dial.q_rot_pair);
        assert!((moved.score - base.dial.score).abs() <= moved.tolerance);
    }
    // Per-pair terms sum to the score.
    let total: f64 = base.dial.contributions.sum();
    assert!(
        (total - base.dial.score_relative).abs() < 1e-12 * base.dial.score_relative.abs().max(1.0)
    );
    // The matrix: Toeplitz for RoPE, not for sinusoids; the two pairings agree.
    assert!(
        base.matrices.spread_rope < 1e-12,
        "{}",
        base.matrices.spread_rope
    );
    assert!(base.matrices.spread_sinusoidal > 0.05);
    assert!(base.matrices.pairing_max_diff < 1e-12);
    let halves = config_with(&[("pairing", "halves")]);
    let mut rng = Rng::new(halves.seed);
    let (q0, k0) = content_vectors(halves.head_dim, halves.similarity, &mut rng);
    let matrices = Matrices::compute(&halves, &q0, &k0, &halves.thetas());
    let diff = (&matrices.rope - &base.matrices.rope).fold(0.0f64, |a, v| a.max(v.abs()));
    assert!(diff < 1e-12, "pairing toggle changed the scores by {diff}");
    let (q, k) = seeded_content(&halves);
    let dial = Dial::compute(&halves, &q, &k, &halves.thetas());
    assert_eq!(dial.score_text, base.dial.score_text);
    // The pair index is clamped to d/2 - 1.
    let c = config_with(&[("dim", "8"), ("pair", "40")]);
    assert_eq!(c.pair(), 3);
    // The decay panel: the configured base first, then 10,000 and 500,000 unless the
    // configured one is one of them; each normalised to 1 at offset 0.
    let bases: Vec<f64> = base.decay.curves.iter().map(|c| c.base).collect();
    assert_eq!(bases, vec![10_000.0, 500_000.0]);
    assert!(base.decay.curves[0].label.contains("RoFormer"));
    let other = Decay::compute(&config_with(&[("base", "123457"), ("dim", "8")]));
    let bases: Vec<f64> = other.curves.iter().map(|c| c.base).collect();
    assert_eq!(bases, vec![123_457.0, 10_000.0, 500_000.0]);
    let scaled = Decay::compute(&config_with(&[("scaling", "ntk"), ("dim", "8")]));
    assert_eq!(
        scaled.curves.len(),
        3,
        "a scaled 10,000 is not the reference"
    );
    for c in &base.decay.curves {
        assert_eq!(c.mean_abs[0], 1.0);
        assert_eq!(c.bound[0], 1.0);
    }
    // Frequencies: with base 10,000 and d = 64, lambda_i = 2 pi 10000^(i/32) > 4096 from
    // i = 32 log(4096 / 2 pi) / log(10000) = 22.5, so pairs 23..31 are slow: 9 of them.
    assert_eq!(base.frequencies.slow_pairs, 9);
}

#[test]
fn the_parameter_table_uses_log_sliders_and_even_dimensions() {
    let base = SPEC.param("base").unwrap();
    assert!(base.log && SPEC.param("ctx").unwrap().log && !SPEC.param("m").unwrap().log);
    let mut p = Params::defaults(&SPEC);
    // An odd dimension is between the steps: the attribute path snaps with a notice...
    let n = p.set("dim", "7").expect("a notice");
    assert_eq!(p.get("dim"), 8.0);
    assert!(n.message.contains("steps of 2"), "{}", n.message);
    assert_eq!(p.set("dim", "6"), None);
    // ...the CLI path refuses.
    let e = p.set_strict("dim", "9").unwrap_err();
    assert!(
        e.contains("--dim") && e.contains("2 to 256 in steps of 2"),
        "{e}"
    );
    // The base is exact however it is set (the slider's rounding is the page's).
    assert_eq!(p.set("base", "123457"), None);
    assert_eq!(p.get("base"), 123_457.0);
    assert!(p.to_query().contains("base=123457"));
}

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn cli_rotates_given_vectors() {
    // The d = 2 golden value above, through the CLI.
    let (code, out, err) = mlplay(&[
        "rope",
        "--dim",
        "2",
        "--base",
        "10000",
        "--m",
        "3",
        "--n",
        "1",
        "--q",
        "1,2",
        "--k",
        "3,-1",
        "--pairing",
        "interleaved",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(out.starts_with(r#"{"q_rot":["#), "{out}");
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, vec!["k_rot", "q_rot", "score"]);
    assert!((v["score"].as_f64().unwrap() - -6.781228824326914).abs() < 1e-14);
    let q_rot = nums(&v["q_rot"]);
    assert!((q_rot[0] - -1.27223251272018).abs() < 1e-15);
    // The score is q_rot . k_rot, not scaled by 1/sqrt(d).
    let k_rot = nums(&v["k_rot"]);
    let dot: f64 = q_rot.iter().zip(&k_rot).map(|(a, b)| a * b).sum();
    assert_eq!(dot, v["score"].as_f64().unwrap());
    // Halves pairing on d = 4: pair 1 is (x1, x3); e_1 at m = 100, base 10,000 turns by 1 rad.
    let (code, out, _) = mlplay(&[
        "rope",
        "--dim",
        "4",
        "--base",
        "10000",
        "--m",
        "100",
        "--n",
        "0",
        "--q",
        "0,1,0,0",
        "--k",
        "0,1,0,0",
        "--pairing",
        "halves",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let q_rot = nums(&v["q_rot"]);
    assert!((q_rot[1] - 1f64.cos()).abs() < 1e-14 && (q_rot[3] - 1f64.sin()).abs() < 1e-14);
    assert!((v["score"].as_f64().unwrap() - 1f64.cos()).abs() < 1e-14);
}

#[test]
fn cli_matrix_matches_the_widget_data() {
    let (code, out, err) = mlplay(&[
        "rope",
        "--dim",
        "16",
        "--base",
        "500000",
        "--max-pos",
        "12",
        "--seed",
        "7",
        "--matrix",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows = v["matrix"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 12));
    assert!(v["diagonal_spread"].as_f64().unwrap() < 1e-12);
    // The generic path prints the widget's data: the same matrix, number for number.
    let (code, out, _) = mlplay(&[
        "rope",
        "--dim",
        "16",
        "--base",
        "500000",
        "--max_pos",
        "12",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0);
    let w: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(w["data"]["matrix"]["rope"], v["matrix"]);
    assert_eq!(w["data"]["q"], v["q"]);
}

#[test]
fn cli_rejects_bad_vectors_and_values_with_exit_2() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["rope", "--dim", "4", "--q", "1,2,3", "--k", "1,2,3,4"],
            &["--q", "has 3 numbers", "4 comma-separated"],
        ),
        (
            &["rope", "--dim", "4", "--q", "1,2,3,4", "--k", "1,x,3,4"],
            &["\"x\"", "--k", "4 comma-separated"],
        ),
        (
            &["rope", "--dim", "2", "--q", "1,nan", "--k", "1,0"],
            &["\"nan\"", "--q"],
        ),
        (
            &["rope", "--dim", "2", "--q", "1,0"],
            &["--q and --k go together"],
        ),
        (
            &["rope", "--dim", "3", "--matrix"],
            &["--dim", "2 to 256 in steps of 2"],
        ),
        (
            &["rope", "--base", "1", "--matrix"],
            &["--base", "10 to 10000000"],
        ),
        (
            &["rope", "--max-pos", "1000", "--matrix"],
            &["--max_pos", "4 to 128"],
        ),
        (
            &["rope", "--pairing", "diagonal", "--matrix"],
            &["--pairing", "interleaved, halves"],
        ),
        (&["rope", "--colour", "red", "--matrix"], &["--colour"]),
        (&["rope", "--matrix=yes"], &["--matrix takes no value"]),
        (&["rope", "--q"], &["--q needs a value"]),
    ];
    for (args, wants) in cases {
        let (code, out, err) = mlplay(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        for want in *wants {
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
}
