//! The diffusion core beyond the MLP: schedules against hand-derived values, the forward
//! marginal's moments, closed form against iterated steps, the data sets, the sliced
//! Wasserstein distance, and each sampler's coefficient table against exact oracles.

use mlplay::diffusion::data::{self, Dataset};
use mlplay::diffusion::noise;
use mlplay::diffusion::sample::{self, Plan, Run, Sampler};
use mlplay::diffusion::schedule::{cosine_alpha_bar, Schedule, ScheduleKind};
use mlplay::diffusion::swd::sliced_wasserstein;
use mlplay::rng::Rng;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn linear_schedule_by_hand() {
    let s = Schedule::new(ScheduleKind::Linear, 1000);
    assert_eq!(s.steps(), 1000);
    // beta_1 = 1e-4, beta_T = 0.02, alpha_bar_1 = 1 - beta_1 = 0.9999.
    assert!(close(s.betas[0], 1e-4, 1e-12));
    assert!(close(s.betas[999], 0.02, 1e-12));
    assert!(close(s.alpha_bar(1), 0.9999, 1e-12));
    // beta_2 = 1e-4 + 0.0199 / 999.
    assert!(close(s.betas[1], 1e-4 + 0.0199 / 999.0, 1e-12));
    // ln alpha_bar_T = sum ln(1 - beta) = -(S1 + S2/2 + S3/3 + S4/4 + ...), S_k = sum beta^k:
    // S1 = T (beta_1 + beta_T)/2 = 10.05;
    // S2 = T a^2 + a (b - a) T + (b - a)^2 T (2T - 1) / (6 (T - 1)) = 0.134069 (a = 1e-4, b = 0.02),
    // S3/3 = 6.707e-4, S4/4 = 8.05e-6 (the rest < 1e-7): alpha_bar_T = exp(-10.117713) = 4.03583e-5.
    let (a, b, t) = (1e-4f64, 0.02f64, 1000f64);
    let s2 =
        t * a * a + a * (b - a) * t + (b - a) * (b - a) * t * (2.0 * t - 1.0) / (6.0 * (t - 1.0));
    assert!(close(s2 / 2.0, 0.067_034_7, 1e-6));
    let ln_ab = -(10.05 + s2 / 2.0 + 6.706_807e-4 + 8.052e-6);
    assert!(
        close(s.alpha_bar(1000), ln_ab.exp(), 1e-6),
        "{}",
        s.alpha_bar(1000)
    );
    assert!(close(s.alpha_bar(1000), 4.035_83e-5, 1e-5));
    // T = 1: one step of beta = 1e-4.
    assert_eq!(Schedule::new(ScheduleKind::Linear, 1).betas, vec![1e-4]);
}

#[test]
fn cosine_schedule_by_hand() {
    let s = Schedule::new(ScheduleKind::Cosine, 1000);
    // alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + 0.008)/1.008) pi/2).
    // t = T/2: cos^2(0.503968 pi/2) / cos^2(0.0079365 pi/2) = 0.493610 / 0.999845 = 0.4938436.
    assert!(
        close(s.alpha_bar(500), 0.493_843_6, 1e-6),
        "{}",
        s.alpha_bar(500)
    );
    // t = T/4: cos^2(0.255952 pi/2) / 0.999845 = 0.8470122.
    assert!(close(s.alpha_bar(250), 0.847_012_2, 1e-6));
    // beta_1 = 1 - f(1)/f(0) = 4.1284e-5 (much smaller than the linear 1e-4).
    assert!(close(s.betas[0], 4.128_42e-5, 1e-5));
    // f(T) = cos^2(pi/2) = 0, so beta_T is clipped at 0.999 and alpha_bar_T = 0.001 alpha_bar_{T-1}.
    assert!(close(s.betas[999], 0.999, 1e-12));
    assert!(close(s.alpha_bar(1000), 0.001 * s.alpha_bar(999), 1e-9));
    // Away from the clip, the product of alphas is the closed form at every t.
    for t in [1, 10, 100, 700, 990] {
        assert!(
            close(s.alpha_bar(t), cosine_alpha_bar(t as f64, 1000), 1e-9),
            "t {t}"
        );
    }
    // Any T: the same curve at the same fraction t/T.
    let s50 = Schedule::new(ScheduleKind::Cosine, 50);
    assert!(close(s50.alpha_bar(25), 0.493_843_6, 1e-6));
}

#[test]
fn posterior_coefficients_satisfy_the_gaussian_identities() {
    // With x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, the posterior mean averages to
    // sqrt(abar_{t-1}) x_0:  coef1 + coef2 sqrt(abar_t) = sqrt(abar_{t-1}); and by the law of
    // total variance  beta_tilde + coef2^2 (1 - abar_t) = 1 - abar_{t-1}.
    for kind in [ScheduleKind::Linear, ScheduleKind::Cosine] {
        let s = Schedule::new(kind, 200);
        for i in 0..200 {
            let (ab, abp) = (s.alphas_cumprod[i], s.alphas_cumprod_prev[i]);
            let (c1, c2, v) = (
                s.posterior_mean_coef1[i],
                s.posterior_mean_coef2[i],
                s.posterior_variance[i],
            );
            assert!(
                (c1 + c2 * ab.sqrt() - abp.sqrt()).abs() < 1e-12,
                "{kind:?} t {}",
                i + 1
            );
            assert!((v + c2 * c2 * (1.0 - ab) - (1.0 - abp)).abs() < 1e-12);
        }
        // At t = 1 the posterior is the data itself: beta_tilde_1 = 0, coef1 = 1, coef2 = 0.
        assert_eq!(s.posterior_variance[0], 0.0);
        assert!((s.posterior_mean_coef1[0] - 1.0).abs() < 1e-12);
        assert!(s.snr(1) > s.snr(100) && s.snr(100) > s.snr(200));
    }
}

/// Mean and variance of each coordinate of (n, 2) points.
fn moments(x: &[f32]) -> [(f64, f64); 2] {
    let n = (x.len() / 2) as f64;
    let mut out = [(0.0, 0.0); 2];
    for (c, o) in out.iter_mut().enumerate() {
        let m = x.iter().skip(c).step_by(2).map(|&v| v as f64).sum::<f64>() / n;
        let v = x
            .iter()
            .skip(c)
            .step_by(2)
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / n;
        *o = (m, v);
    }
    out
}

#[test]
fn forward_marginal_moments_within_sampling_error() {
    // x_0 fixed at (1, -0.5); x_t ~ N(sqrt(abar) x_0, (1 - abar) I). With n = 100k draws the
    // mean's standard error is sqrt((1 - abar)/n) and the variance's (1 - abar) sqrt(2/n);
    // the tolerances are 5 standard errors.
    let n = 100_000;
    let x0: Vec<f32> = (0..n).flat_map(|_| [1.0f32, -0.5]).collect();
    for kind in [ScheduleKind::Linear, ScheduleKind::Cosine] {
        let s = Schedule::new(kind, 1000);
        for t in [1, 100, 500, 1000] {
            let ab = s.alpha_bar(t);
            let xt = s.q_sample(&x0, t, &mut Rng::new(t as u64));
            let m = moments(&xt);
            let se_mean = ((1.0 - ab) / n as f64).sqrt();
            let se_var = (1.0 - ab) * (2.0 / n as f64).sqrt();
            for (c, &x) in [1.0f64, -0.5].iter().enumerate() {
                assert!(
                    (m[c].0 - ab.sqrt() * x).abs() < 5.0 * se_mean + 1e-6,
                    "{kind:?} t {t} mean {:?}",
                    m[c]
                );
                assert!(
                    (m[c].1 - (1.0 - ab)).abs() < 5.0 * se_var + 1e-6,
                    "{kind:?} t {t} var {:?}",
                    m[c]
                );
            }
        }
    }
}

#[test]
fn closed_form_equals_iterated_steps_in_distribution() {
    // x_0 from two moons (n = 20k), t = 50 (linear, T = 1000) and t = 20 (cosine, T = 50).
    // Means and variances agree within 5 standard errors of a difference of two independent
    // estimates; and the sliced Wasserstein distance between the two clouds is no larger than
    // 1.5x that between two independent closed-form clouds (the same distribution's own
    // sampling distance; a wrong step, e.g. sqrt(beta) missing, shifts the variance by far more).
    let n = 20_000;
    let x0 = Dataset::Moons
        .sample_seeded(n, 5)
        .into_raw_vec_and_offset()
        .0;
    for (kind, big_t, t) in [
        (ScheduleKind::Linear, 1000, 50),
        (ScheduleKind::Cosine, 50, 20),
    ] {
        let s = Schedule::new(kind, big_t);
        let closed = s.q_sample(&x0, t, &mut Rng::new(1));
        let closed2 = s.q_sample(&x0, t, &mut Rng::new(2));
        let iter = s.q_sample_iterated(&x0, t, &mut Rng::new(3));
        let (mc, mi) = (moments(&closed), moments(&iter));
        for c in 0..2 {
            let v = mc[c].1;
            let se_mean = (2.0 * v / n as f64).sqrt();
            let se_var = v * (2.0 * 3.0 / n as f64).sqrt(); // moons are not Gaussian: 3x the Gaussian kurtosis term, generous
            assert!(
                (mc[c].0 - mi[c].0).abs() < 5.0 * se_mean,
                "{kind:?} mean {mc:?} {mi:?}"
            );
            assert!(
                (mc[c].1 - mi[c].1).abs() < 5.0 * se_var,
                "{kind:?} var {mc:?} {mi:?}"
            );
        }
        let own = sliced_wasserstein(&closed, &closed2);
        let cross = sliced_wasserstein(&closed, &iter);
        assert!(
            cross < 1.5 * own,
            "{kind:?}: closed vs iterated {cross}, closed vs closed {own}"
        );
    }
}

#[test]
fn data_sets_have_their_shapes() {
    let n = 20_000;
    let mut rng = Rng::new(1);
    // Checkerboard: x1 in [-2, 2), and floor(x1) + floor(x2) is even (the dark squares).
    let cb = Dataset::Checkerboard.sample(n, &mut rng);
    for p in cb.rows() {
        assert!(
            (-2.0..2.0).contains(&p[0]) && (-2.0..2.0).contains(&p[1]),
            "{p}"
        );
        assert_eq!((p[0].floor() + p[1].floor()).rem_euclid(2.0), 0.0, "{p}");
    }
    // Ring: radius 1.5 with std 0.05 (mean's standard error 0.05/sqrt(n) = 3.5e-4).
    let ring = Dataset::Ring.sample(n, &mut rng);
    let r: Vec<f64> = ring
        .rows()
        .into_iter()
        .map(|p| (p[0] as f64).hypot(p[1] as f64))
        .collect();
    let rm = r.iter().sum::<f64>() / n as f64;
    let rs = (r.iter().map(|v| (v - rm).powi(2)).sum::<f64>() / n as f64).sqrt();
    assert!((rm - 1.5).abs() < 5.0 * 3.5e-4 + 1e-3, "ring radius {rm}"); // + the curvature bias ~ sd^2/(2r)
    assert!((rs - 0.05).abs() < 0.005, "ring width {rs}");
    // 8 Gaussians: each point within 6 std of one centre on radius 1.6; each centre holds
    // 1/8 of the points within 5 binomial standard errors (sqrt(n p (1-p)) = 46.8).
    let g = Dataset::Gaussians8.sample(n, &mut rng);
    let mut counts = [0usize; 8];
    for p in g.rows() {
        let k = ((p[1] as f64).atan2(p[0] as f64) / (std::f64::consts::PI / 4.0))
            .round()
            .rem_euclid(8.0) as usize;
        let (s, c) = (k as f64 * std::f64::consts::PI / 4.0).sin_cos();
        let d = (p[0] as f64 - 1.6 * c).hypot(p[1] as f64 - 1.6 * s);
        assert!(d < 0.6, "{p} is {d} from centre {k}");
        counts[k] += 1;
    }
    for c in counts {
        assert!((c as f64 - n as f64 / 8.0).abs() < 5.0 * 46.8, "{counts:?}");
    }
    // Moons: before noise every point lies on one of two unit half circles, so the distance
    // to the nearer circle (in the unscaled frame) is within 6 noise std (0.05) of it.
    let m = Dataset::Moons.sample(n, &mut rng);
    for p in m.rows() {
        let (x, y) = (p[0] as f64 / 1.3 + 0.5, p[1] as f64 / 1.3 + 0.25);
        let d_up = (x.hypot(y) - 1.0).abs();
        let d_lo = ((x - 1.0).hypot(y - 0.5) - 1.0).abs();
        assert!(d_up.min(d_lo) < 0.3, "({x}, {y})");
    }
    // Swiss roll: radius tau/7 with tau in [1.5 pi, 4.5 pi].
    for p in Dataset::SwissRoll.sample(2000, &mut rng).rows() {
        let r = (p[0] as f64).hypot(p[1] as f64);
        assert!(
            r > 1.5 * std::f64::consts::PI / 7.0 - 0.15
                && r < 4.5 * std::f64::consts::PI / 7.0 + 0.15
        );
    }
    // Drawn: every sample near one of the points; both points used; bad input refused.
    let d = Dataset::drawn(vec![[1.0, 1.0], [-1.0, 0.0]]).unwrap();
    let s = d.sample(1000, &mut rng);
    let near0 = s
        .rows()
        .into_iter()
        .filter(|p| (p[0] - 1.0).hypot(p[1] - 1.0) < 0.3)
        .count();
    let near1 = s
        .rows()
        .into_iter()
        .filter(|p| (p[0] + 1.0).hypot(p[1]) < 0.3)
        .count();
    assert_eq!(near0 + near1, 1000);
    assert!(near0 > 400 && near1 > 400);
    assert!(Dataset::drawn(vec![]).is_err());
    assert!(Dataset::drawn(vec![[f32::NAN, 0.0]]).is_err());
    assert_eq!(
        data::parse_points("1,2; -0.5,3").unwrap(),
        vec![[1.0, 2.0], [-0.5, 3.0]]
    );
    assert!(data::parse_points("1,2,3").is_err());
    assert!(data::parse_points("1;2").is_err());
    // Seeded: the same seed, the same points; names round-trip.
    assert_eq!(
        Dataset::Moons.sample_seeded(10, 3),
        Dataset::Moons.sample_seeded(10, 3)
    );
    assert_ne!(
        Dataset::Moons.sample_seeded(10, 3),
        Dataset::Moons.sample_seeded(10, 4)
    );
    for name in &data::NAMES[..5] {
        assert_eq!(Dataset::from_name(name).unwrap().name(), *name);
    }
    assert!(Dataset::from_name("drawn").is_err() && Dataset::from_name("dino").is_err());
}

#[test]
fn sliced_wasserstein_golden_values() {
    let pts = Dataset::Moons
        .sample_seeded(500, 1)
        .into_raw_vec_and_offset()
        .0;
    assert_eq!(sliced_wasserstein(&pts, &pts), 0.0);
    // A translation by v shifts each projection by <theta, v>; over directions evenly spaced
    // on the half circle the mean of cos^2 is exactly 1/2, so SW_2 = |v| / sqrt(2).
    let v = [0.3f32, -0.4]; // |v| = 0.5
    let shifted: Vec<f32> = pts
        .chunks(2)
        .flat_map(|p| [p[0] + v[0], p[1] + v[1]])
        .collect();
    let sw = sliced_wasserstein(&pts, &shifted);
    assert!((sw - 0.5 / 2f64.sqrt()).abs() < 1e-6, "{sw}");
    // Every point twice has the same quantile function: distance 0 at unequal sizes.
    let doubled: Vec<f32> = pts
        .chunks(2)
        .flat_map(|p| [p[0], p[1], p[0], p[1]])
        .collect();
    assert!(sliced_wasserstein(&pts, &doubled) < 1e-12);
    // Symmetric.
    let other = Dataset::Ring
        .sample_seeded(300, 2)
        .into_raw_vec_and_offset()
        .0;
    assert!((sliced_wasserstein(&pts, &other) - sliced_wasserstein(&other, &pts)).abs() < 1e-12);
    // A scaled copy of a centred point set: W_2 of the projections is |s - 1| times their
    // RMS, so SW_2 = |s - 1| sqrt(mean |x|^2 / 2) for a cloud with isotropic second moments.
    let noise = sample::initial_noise(3, 20_000);
    let scaled: Vec<f32> = noise.iter().map(|v| 2.0 * v).collect();
    let rms: f64 = (noise.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 20_000.0 / 2.0).sqrt();
    let sw = sliced_wasserstein(&noise, &scaled);
    assert!((sw - rms).abs() < 0.02 * rms, "{sw} vs {rms}");
}

#[test]
fn ddpm_and_ddim_tables_by_hand() {
    let s = Schedule::new(ScheduleKind::Linear, 1000);
    let p = Plan::diffusion(Sampler::Ddpm { tilde: false }, &s, 1000).unwrap();
    assert_eq!(p.len(), 1000);
    // First row t = T: a = 1/sqrt(alpha_T) = 1/sqrt(0.98), b = -0.02/(sqrt(1 - abar_T) sqrt(0.98)),
    // c = sqrt(beta_T) = sqrt(0.02); s = 1.
    let abt = s.alpha_bar(1000);
    let want = [
        1.0 / 0.98f64.sqrt(),
        -0.02 / ((1.0 - abt).sqrt() * 0.98f64.sqrt()),
        0.02f64.sqrt(),
        0.0,
    ];
    for (got, w) in p.rows[0].iter().zip(want) {
        assert!((*got as f64 - w).abs() < 1e-6, "row 0 {:?}", p.rows[0]);
    }
    assert_eq!(p.s[0], 1.0);
    // Last row t = 1: 1 - abar_1 = beta_1, so b = -sqrt(beta_1)/sqrt(alpha_1) = -0.01/sqrt(0.9999);
    // no noise at the last step (Ho et al. Algorithm 2).
    let last = p.rows[999];
    assert!((last[0] as f64 - 1.0 / 0.9999f64.sqrt()).abs() < 1e-6);
    assert!((last[1] as f64 + 0.01 / 0.9999f64.sqrt()).abs() < 1e-6);
    assert_eq!(last[2], 0.0);
    assert_eq!(p.s[999], 0.001);
    // beta-tilde at t = T: sqrt((1 - abar_{T-1})/(1 - abar_T) beta_T).
    let pt = Plan::diffusion(Sampler::Ddpm { tilde: true }, &s, 1000).unwrap();
    let bt = ((1.0 - s.alpha_bar(999)) / (1.0 - abt) * 0.02).sqrt();
    assert!((pt.rows[0][2] as f64 - bt).abs() < 1e-6);
    // DDIM with eta = 1 is DDPM with beta-tilde (Song et al. 2021, Sec. 4.1), at any K.
    for k in [1000, 37, 10] {
        let a = Plan::diffusion(Sampler::Ddim { eta: 1.0 }, &s, k).unwrap();
        let b = Plan::diffusion(Sampler::Ddpm { tilde: true }, &s, k).unwrap();
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            for j in 0..4 {
                assert!(
                    (ra[j] - rb[j]).abs() <= 2e-6 * rb[j].abs().max(1.0),
                    "K {k}: {ra:?} vs {rb:?}"
                );
            }
        }
    }
    // Respacing: K = 10 of T = 1000 visits 1000, 900, ..., 100.
    let d = Plan::diffusion(Sampler::Ddim { eta: 0.0 }, &s, 10).unwrap();
    assert_eq!(
        sample::timesteps(1000, 10),
        (1..=10).map(|i| 100 * i).collect::<Vec<_>>()
    );
    assert_eq!(
        d.s,
        (1..=10).rev().map(|i| i as f32 / 10.0).collect::<Vec<_>>()
    );
    assert!(
        d.rows.iter().all(|r| r[2] == 0.0 && r[3] == 0.0),
        "eta = 0 is deterministic"
    );
    assert!(Plan::diffusion(Sampler::Ddim { eta: 0.0 }, &s, 1001).is_err());
    assert!(Plan::diffusion(Sampler::Euler, &s, 10).is_err());
    assert!(Plan::flow(Sampler::Ddpm { tilde: false }, 10).is_err());
}

/// The exact noise predictor for data concentrated at one point x0 (the posterior of x0 is
/// certain): eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t).
fn oracle_eps(s: &Schedule, x0: [f32; 2]) -> impl FnMut(&[f32], f32) -> Vec<f32> + '_ {
    move |x: &[f32], time: f32| {
        let t = (time as f64 * s.steps() as f64).round() as usize;
        let ab = s.alpha_bar(t);
        x.chunks(2)
            .flat_map(|p| {
                [0, 1]
                    .map(|c| ((p[c] as f64 - ab.sqrt() * x0[c] as f64) / (1.0 - ab).sqrt()) as f32)
            })
            .collect()
    }
}

#[test]
fn samplers_with_the_exact_denoiser_land_on_the_data_point() {
    // With one data point, DDIM (eta = 0) maps any x_T to exactly x0 at every K, and DDPM's
    // last step returns exactly x0 too (1 - abar_1 = beta_1 cancels its noise term).
    let x0 = [0.7f32, -1.2];
    for kind in [ScheduleKind::Linear, ScheduleKind::Cosine] {
        let s = Schedule::new(kind, 1000);
        for (sampler, k) in [
            (Sampler::Ddim { eta: 0.0 }, 10),
            (Sampler::Ddim { eta: 0.0 }, 1000),
            (Sampler::Ddim { eta: 0.5 }, 50),
            (Sampler::Ddpm { tilde: false }, 1000),
            (Sampler::Ddpm { tilde: true }, 100),
        ] {
            let mut run = Run::new(Plan::diffusion(sampler, &s, k).unwrap(), 9, 64);
            let mut f = oracle_eps(&s, x0);
            while !run.done() {
                run.step_with(&mut f);
            }
            for p in run.x.chunks(2) {
                // f32 rounding through up to 1000 steps of |a| ~ 1: 1e-3 absolute.
                assert!(
                    (p[0] - x0[0]).abs() < 1e-3 && (p[1] - x0[1]).abs() < 1e-3,
                    "{kind:?} {sampler:?} K {k}: {p:?}"
                );
            }
        }
    }
}

#[test]
fn flow_samplers_on_exact_fields() {
    // Straight conditional paths to one data point x1: v(x, t) = (x1 - x)/(1 - t). Euler and
    // midpoint follow straight lines exactly, so any K lands on x1.
    let x1 = [0.5f32, 1.5];
    let mut straight = |x: &[f32], t: f32| -> Vec<f32> {
        x.chunks(2)
            .flat_map(|p| [0, 1].map(|c| (x1[c] - p[c]) / (1.0 - t)))
            .collect()
    };
    for (sampler, k) in [
        (Sampler::Euler, 1),
        (Sampler::Euler, 7),
        (Sampler::Midpoint, 1),
        (Sampler::Midpoint, 5),
    ] {
        let mut run = Run::new(Plan::flow(sampler, k).unwrap(), 4, 32);
        assert_eq!(run.plan.len(), k * sampler.evals_per_step());
        while !run.done() {
            run.step_with(&mut straight);
        }
        for p in run.x.chunks(2) {
            assert!(
                (p[0] - x1[0]).abs() < 1e-5 && (p[1] - x1[1]).abs() < 1e-5,
                "{sampler:?} {k}: {p:?}"
            );
        }
    }
    // A curved field, dx/dt = t x (solution x(1) = x(0) e^{1/2}): Euler's error halves with h,
    // midpoint's quarters (its order is 2), which checks the d coefficient of the second row.
    let mut curved = |x: &[f32], t: f32| -> Vec<f32> { x.iter().map(|v| t * v).collect() };
    let err = |sampler: Sampler, k: usize, f: &mut dyn FnMut(&[f32], f32) -> Vec<f32>| {
        let mut run = Run::new(Plan::flow(sampler, k).unwrap(), 4, 1);
        let start = run.x.clone();
        while !run.done() {
            run.step_with(f);
        }
        (run.x[0] as f64 - start[0] as f64 * 0.5f64.exp()).abs() / (start[0] as f64).abs()
    };
    let (e1, e2) = (
        err(Sampler::Euler, 8, &mut curved),
        err(Sampler::Euler, 16, &mut curved),
    );
    let (m1, m2) = (
        err(Sampler::Midpoint, 8, &mut curved),
        err(Sampler::Midpoint, 16, &mut curved),
    );
    assert!((e1 / e2 - 2.0).abs() < 0.2, "Euler ratio {}", e1 / e2);
    assert!((m1 / m2 - 4.0).abs() < 0.4, "midpoint ratio {}", m1 / m2);
    assert!(m1 < e1 / 10.0);
}

#[test]
fn sampling_noise_is_the_counter_based_stream() {
    // The initial particles and a DDPM step's noise are the noise module's draws (the GPU
    // kernel draws the same): x after row 0 with a zero network is a x_T + c z_0.
    let s = Schedule::new(ScheduleKind::Linear, 100);
    let mut run = Run::new(
        Plan::diffusion(Sampler::Ddpm { tilde: false }, &s, 100).unwrap(),
        21,
        5,
    );
    let x_t = run.x.clone();
    assert_eq!(x_t, noise::normals(21, noise::INITIAL_STEP, 5));
    let [a, _, c, _] = run.plan.rows[0];
    run.step_with(&mut |x, _| vec![0.0; x.len()]);
    let z = noise::normals(21, 0, 5);
    for k in 0..10 {
        assert_eq!(run.x[k], a * x_t[k] + 0.0 * 0.0 + c * z[k]);
    }
}

#[test]
fn sliced_rows_equal_whole_rows() {
    // The page advances a row a slice of particles at a time; particles are independent, so
    // any slicing gives the same bits as whole rows.
    let net = mlplay::diffusion::mlp::Mlp::init(16, 3);
    let s = Schedule::new(ScheduleKind::Linear, 100);
    for sampler in [Sampler::Ddpm { tilde: false }, Sampler::Ddim { eta: 0.3 }] {
        let plan = Plan::diffusion(sampler, &s, 20).unwrap();
        let mut whole = Run::new(plan.clone(), 5, 37);
        whole.finish(&net);
        let mut sliced = Run::new(plan, 5, 37);
        let mut cursor = 0;
        while !sliced.done() {
            cursor = sliced.step_particles(&net, cursor, 10);
        }
        assert_eq!(whole.x, sliced.x, "{sampler:?}");
    }
    let mut whole = Run::new(Plan::flow(Sampler::Midpoint, 4).unwrap(), 2, 9);
    whole.finish(&net);
    let mut sliced = Run::new(Plan::flow(Sampler::Midpoint, 4).unwrap(), 2, 9);
    let mut cursor = 0;
    while !sliced.done() {
        cursor = sliced.step_particles(&net, cursor, 4);
    }
    assert_eq!(whole.x, sliced.x);
}
