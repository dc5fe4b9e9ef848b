//! Scaling laws: the closed-form optimum against a numerical search and the published
//! figures, the Huber objective's gradient against finite differences, the fitter against
//! known constants, and its bootstrap intervals against the truth over seeded trials.

use mlplay::scaling::contour::contour;
use mlplay::scaling::fit::{
    self, bootstrap, fit, huber, law_of, objective, parse_csv, synthetic, theta_of, FitJob,
    FitOptions, Point,
};
use mlplay::scaling::law::{flops, Law};
use mlplay::scaling::{compute, models, Config, Landscape, ModelPoint, Source, PUBLISHED};
use ndarray::{Array1, Array2};

fn rel(x: f64, y: f64) -> f64 {
    (x / y - 1.0).abs()
}

/// The closed-form N_opt equals a golden-section search for the minimum of L along the
/// iso-FLOP line D = C/(6N), for both constant sets over nine decades of compute.
#[test]
fn closed_form_optimum_equals_numerical_minimisation() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        for k in 0..=36 {
            let c = 10f64.powf(18.0 + 0.25 * k as f64);
            let exact = law.optimum(c);
            let numeric = law.optimum_numeric(c);
            // The search stops at a bracket of 1e-12 in log N; L is flat at its minimum, so
            // the argmin is only determined to about sqrt(eps) ~ 1e-8 relative.
            assert!(
                rel(numeric.n, exact.n) < 1e-6,
                "C={c:e}: {numeric:?} vs {exact:?}"
            );
            assert!(rel(numeric.d, exact.d) < 1e-6);
            assert!(
                numeric.loss >= exact.loss - 1e-13,
                "the closed form is the minimum"
            );
            assert!(rel(numeric.loss, exact.loss) < 1e-12);
            // The optimum spends the budget: 6 N_opt D_opt = C.
            assert!(rel(flops(exact.n, exact.d), c) < 1e-12);
        }
    }
}

/// dL/dN along the iso-FLOP line vanishes at N_opt and has the right signs either side
/// (central differences in log N).
#[test]
fn iso_flop_slope_is_zero_at_the_optimum() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        let c = 5.76e23;
        let x = law.n_opt(c).ln();
        let f = |x: f64| law.loss_at_compute(c, x.exp());
        let h = 1e-4;
        let slope = |x: f64| (f(x + h) - f(x - h)) / (2.0 * h);
        assert!(slope(x).abs() < 1e-9, "{}", slope(x));
        assert!(slope(x - 0.5) < 0.0 && slope(x + 0.5) > 0.0);
    }
}

/// REFERENCE.md: at C = 5.76e23 the Hoffmann constants give about 32B parameters and 3.0T
/// tokens, the replication about 72B and 1.33T. By hand for Hoffmann: alpha A = 138.176,
/// beta B = 114.996, G = 1.20157^(1/0.62) = 1.3447, a = 0.28/0.62 = 0.45161,
/// (C/6)^a = (9.6e22)^0.45161 = e^(52.919 * 0.45161) = e^23.899 = 2.39e10, so N_opt = 3.22e10
/// and D_opt = 9.6e22 / 3.22e10 = 2.98e12. For Epoch: G = (167.64 / 762.85)^(1/0.7136) =
/// 0.1196, a = 0.51261, (C/6)^a = e^27.127 = 6.04e11, N_opt = 7.22e10, D_opt = 1.33e12.
#[test]
fn gopher_budget_matches_the_published_allocations() {
    let c = 5.76e23;
    let h = Law::HOFFMANN.optimum(c);
    let e = Law::EPOCH.optimum(c);
    for (got, want) in [(h.n, 32e9), (h.d, 3.0e12), (e.n, 72e9), (e.d, 1.33e12)] {
        assert!(rel(got, want) < 0.02, "{got:e} vs {want:e}");
    }
    // The hand-derived intermediate values above, to their printed digits.
    assert!((Law::HOFFMANN.g() - 1.3447).abs() < 1e-4);
    assert!((Law::HOFFMANN.n_exponent() - 0.451_612_9).abs() < 1e-7);
    assert!((Law::EPOCH.g() - 0.1196).abs() < 1e-4);
    assert!((Law::EPOCH.n_exponent() - 0.512_612).abs() < 1e-6);
    // Exponents: N_opt grows as C^a, D_opt as C^b, a + b = 1.
    for law in [Law::HOFFMANN, Law::EPOCH] {
        assert!(
            rel(
                law.n_opt(10.0 * c) / law.n_opt(c),
                10f64.powf(law.n_exponent())
            ) < 1e-12
        );
        assert!((law.n_exponent() + law.d_exponent() - 1.0).abs() < 1e-15);
    }
}

/// Huber at hand-computed points: inside |r| <= delta it is r^2/2, outside delta(|r| - delta/2).
#[test]
fn huber_hand_values() {
    assert_eq!(huber(0.5, 1.0), (0.125, 0.5));
    assert_eq!(huber(-0.5, 1.0), (0.125, -0.5));
    assert_eq!(huber(3.0, 1.0), (2.5, 1.0));
    assert_eq!(huber(-3.0, 1.0), (2.5, -1.0));
    // Continuous at the threshold: delta^2 / 2 from both sides.
    let d = 1e-3;
    assert!((huber(d, d).0 - huber(d * (1.0 + 1e-12), d).0).abs() < 1e-15);
}

/// The log-sum-exp parameterisation is the law: with noiseless points the objective at the
/// true constants is zero up to rounding, and its gradient vanishes.
#[test]
fn objective_is_zero_at_the_truth_on_noiseless_points() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        let pts = synthetic(&law, 40, 0.0, 5);
        let (f, g) = objective(&theta_of(&law), &pts, fit::HUBER_DELTA);
        assert!(f < 1e-25, "{f}");
        assert!(g.iter().all(|g| g.abs() < 1e-10), "{g}");
        assert_eq!(law_of(&theta_of(&law)).alpha, law.alpha);
        assert!(rel(law_of(&theta_of(&law)).a, law.a) < 1e-15);
    }
}

/// The hand-written gradient of the Huber objective against central finite differences, at
/// points where residuals sit inside the quadratic zone (delta = 1) and outside it
/// (delta = 1e-3 with 3% noise), avoiding points right at the kinks.
#[test]
fn objective_gradient_matches_finite_differences() {
    let pts = synthetic(&Law::EPOCH, 30, 0.03, 11);
    for (delta, theta) in [
        (1.0, theta_of(&Law::HOFFMANN)),
        (1e-3, theta_of(&Law::HOFFMANN)),
        (1e-3, Array1::from(vec![5.5, 7.0, 0.4, 0.31, 0.37])),
        (0.05, Array1::from(vec![6.5, 8.0, 0.7, 0.4, 0.3])),
    ] {
        let (_, g) = objective(&theta, &pts, delta);
        for k in 0..5 {
            let h = 1e-6;
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[k] += h;
            tm[k] -= h;
            let fd = (objective(&tp, &pts, delta).0 - objective(&tm, &pts, delta).0) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() < 1e-6 * (1.0 + g[k].abs()),
                "delta={delta} k={k}: fd {fd} vs {}",
                g[k]
            );
        }
    }
}

/// From noiseless synthetic points the fit recovers every constant to 1e-3 relative (the
/// issue's bar; it actually lands within about 1e-10).
#[test]
fn fitter_recovers_constants_from_noiseless_points() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        for (count, seed) in [(30, 1), (90, 2)] {
            let pts = synthetic(&law, count, 0.0, seed);
            let f = fit(&pts, &FitOptions::default()).unwrap();
            let l = f.law;
            for (got, want) in [
                (l.e, law.e),
                (l.a, law.a),
                (l.b, law.b),
                (l.alpha, law.alpha),
                (l.beta, law.beta),
            ] {
                assert!(rel(got, want) < 1e-3, "{law:?} n={count}: {got} vs {want}");
            }
            assert!(f.converged);
        }
    }
}

/// The fast fit (L-BFGS from the four best variable-projection starts) reaches the same
/// minimum as the slow twin, L-BFGS from Hoffmann et al.'s grid. The grid here is every 31st
/// of its 4500 starts (146 runs; 31 is prime to the grid's shape, so every value of each of
/// the five coordinates appears), so the test stays quick in a debug build.
#[test]
fn fast_fit_matches_the_paper_grid() {
    let pts = synthetic(&Law::HOFFMANN, 24, 0.01, 3);
    let opts = FitOptions::default();
    let fast = fit(&pts, &opts).unwrap();
    let full = fit::paper_grid();
    assert_eq!(full.len(), 4500);
    let grid: Vec<_> = full.into_iter().step_by(31).collect();
    assert_eq!(grid.len(), 146);
    for k in 0..5 {
        let mut values: Vec<f64> = grid.iter().map(|t| t[k]).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        assert_eq!(values.len(), if k < 2 { 6 } else { 5 }, "coordinate {k}");
    }
    let slow = fit::fit_from(&pts, &grid, &opts).unwrap();
    assert!(
        fast.objective <= slow.objective * (1.0 + 1e-9),
        "fast {} vs grid {}",
        fast.objective,
        slow.objective
    );
    assert!(
        rel(fast.law.alpha, slow.law.alpha) < 1e-5,
        "{fast:?}\n{slow:?}"
    );
    assert!(rel(fast.law.e, slow.law.e) < 1e-5);
    assert!(fast.starts == 4 && slow.starts == 146);
}

/// The 95% bootstrap intervals cover the true constants in most seeded trials, and are
/// narrow enough to tell the two published laws apart: 20 trials of 90 runs drawn from
/// Hoffmann et al.'s law at 1% noise, 60 replicates each. Both bars can fail: in scratch
/// runs, intervals shrunk to half width covered B in only 14 of 20 trials, and intervals
/// doubled (on 60-run trials) excluded the replication's beta = 0.3658 in only 9 of 20.
/// Measured here: coverage 19-20 of 20 for every constant, Epoch's beta excluded in 20.
#[test]
fn bootstrap_intervals_cover_the_truth_in_most_trials() {
    let law = Law::HOFFMANN;
    let truth = [law.e, law.a, law.b, law.alpha, law.beta, law.n_exponent()];
    let mut covered = [0usize; 6];
    let mut excludes_epoch_beta = 0;
    let trials = 20;
    for seed in 0..trials {
        let pts = synthetic(&law, 90, 0.01, 1000 + seed);
        let opts = FitOptions {
            bootstrap: 60,
            seed,
            ..FitOptions::default()
        };
        let f = fit(&pts, &opts).unwrap();
        let iv = bootstrap(&pts, &f, &opts);
        for (k, i) in iv.iter().enumerate() {
            assert!(i.lo <= i.estimate && i.estimate <= i.hi, "{i:?}");
            if i.covers(truth[k]) {
                covered[k] += 1;
            }
        }
        if !iv[4].covers(Law::EPOCH.beta) {
            excludes_epoch_beta += 1;
        }
    }
    for (k, &c) in covered.iter().enumerate() {
        assert!(
            c >= 15,
            "constant {k} covered in {c} of {trials}: {covered:?}"
        );
    }
    assert!(
        excludes_epoch_beta >= 15,
        "{excludes_epoch_beta} of {trials}"
    );
}

/// A fit spread over single L-BFGS iterations gives exactly the numbers of one that runs at
/// once, and the same seed the same intervals.
#[test]
fn fit_job_is_independent_of_how_it_is_sliced() {
    let pts = synthetic(&Law::EPOCH, 40, 0.02, 9);
    let opts = FitOptions {
        bootstrap: 30,
        seed: 4,
        ..FitOptions::default()
    };
    let mut a = FitJob::new(&pts, &opts).unwrap();
    let mut steps = 0;
    while a.step() {
        steps += 1;
        // Partial results only ever count finished runs.
        assert!(a.completed() <= a.total());
    }
    // One step is one L-BFGS iteration: many per run.
    assert!(
        steps > 5 * a.total(),
        "{steps} steps for {} runs",
        a.total()
    );
    assert!(a.done());
    assert_eq!(a.fit(), Some(&fit(&pts, &opts).unwrap()));
    let mut b = FitJob::new(&pts, &opts).unwrap();
    b.finish();
    assert_eq!(a.fit(), b.fit());
    assert_eq!(a.intervals(), b.intervals());
    let direct = bootstrap(&pts, a.fit().unwrap(), &opts);
    assert_eq!(a.intervals().unwrap(), direct);
}

/// Too few or degenerate points are refused with a reason, not fitted.
#[test]
fn refuses_too_few_or_degenerate_points() {
    let pts = synthetic(&Law::HOFFMANN, 5, 0.0, 1);
    assert!(fit(&pts, &FitOptions::default())
        .unwrap_err()
        .contains("at least 6 points"));
    let same = vec![
        Point {
            n: 1e9,
            d: 2e10,
            loss: 2.5
        };
        8
    ];
    assert!(fit(&same, &FitOptions::default())
        .unwrap_err()
        .contains("two different N"));
}

/// The heapsort agrees with the standard library's sort on seeded random data, ties and
/// signed zeros included.
#[test]
fn heapsort_sorts() {
    let mut rng = mlplay::rng::Rng::new(3);
    for n in [0, 1, 2, 3, 10, 257] {
        let mut v: Vec<f64> = (0..n)
            .map(|i| {
                if i % 7 == 0 {
                    -0.0
                } else {
                    (rng.normal() * 4.0).round()
                }
            })
            .collect();
        let mut want = v.clone();
        want.sort_by(f64::total_cmp);
        fit::sort(&mut v);
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}

/// Percentiles interpolate between order statistics (R's type 7).
#[test]
fn percentile_hand_values() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(fit::percentile(&v, 0.0), 1.0);
    assert_eq!(fit::percentile(&v, 0.5), 3.0);
    assert_eq!(fit::percentile(&v, 1.0), 5.0);
    // h = 0.975 * 4 = 3.9: 4 + 0.9 * (5 - 4).
    assert!((fit::percentile(&v, 0.975) - 4.9).abs() < 1e-12);
    assert!(fit::percentile(&[], 0.5).is_nan());
}

/// The editor's CSV: headers in any order, K/M/B/T suffixes, comments, and each bad line
/// reported by number.
#[test]
fn csv_parsing() {
    let p =
        parse_csv("# runs\nloss,tokens,params\n2.5, 20B, 1B\n\n1.9;1.4T;70B\nbad line\n2,-1,3\n");
    assert_eq!(
        p.points,
        vec![
            Point {
                n: 1e9,
                d: 20e9,
                loss: 2.5
            },
            Point {
                n: 70e9,
                d: 1.4e12,
                loss: 1.9
            }
        ]
    );
    assert_eq!(p.skipped.len(), 2);
    assert!(p.skipped[0].starts_with("line 6:"), "{:?}", p.skipped);
    assert!(p.skipped[1].contains("positive"));
    // Without a header the order is N, D, L; tabs and spaces separate too.
    let q = parse_csv("4e8\t8e9\t2.75\n1e9 2e10 2.5\n");
    assert_eq!(q.points[1].d, 2e10);
    assert!(q.skipped.is_empty());
    // What to_csv writes, parse_csv reads back (to the printed four digits).
    let pts = synthetic(&Law::HOFFMANN, 9, 0.0, 1);
    let back = parse_csv(&fit::to_csv(&pts)).points;
    assert_eq!(back.len(), 9);
    for (a, b) in pts.iter().zip(&back) {
        assert!(rel(a.n, b.n) < 1e-3 && rel(a.d, b.d) < 1e-3 && rel(a.loss, b.loss) < 1e-4);
    }
}

/// Runs given as text replace the synthetic ones: 36 runs of the replication's law at 1%
/// noise written as CSV (what the page's text box holds) are read whole, with one bad line
/// skipped, and the fit on them covers the law they came from.
#[test]
fn entered_runs_replace_the_synthetic_ones() {
    let runs = synthetic(&Law::EPOCH, 36, 0.01, 2022);
    let text = format!("{}this line is not a run\n", fit::to_csv(&runs));
    let config = Config {
        points_csv: Some(text),
        ..Config::default()
    };
    assert_eq!(config.source(), Source::Entered);
    assert_eq!(Config::default().source(), Source::Synthetic);
    let data = compute(&config);
    assert_eq!(data.fit.points.len(), 36);
    assert_eq!(data.fit.skipped.len(), 1, "{:?}", data.fit.skipped);
    assert!(
        data.fit.skipped[0].starts_with("line 38:"),
        "{:?}",
        data.fit.skipped
    );
    let iv = data.fit.intervals().unwrap();
    let beta = iv.iter().find(|i| i.name == "beta").unwrap();
    assert!(beta.covers(Law::EPOCH.beta), "{beta:?}");
    assert!(data.to_json().to_string().contains(r#""source":"entered""#));
}

/// Where each published model sits, by hand (N_opt = G (C/6)^a at C = 6 N D):
/// Hoffmann constants: GPT-3 C = 3.15e23, N_opt = 32.2B (3.15/5.76)^0.4516 = 24.4B, ratio 7.2;
/// Gopher 5.04e23: N_opt 30.4B, ratio 9.2; Chinchilla 5.88e23: 32.5B, ratio 2.2;
/// Llama 2 70B 8.4e23: 38.1B, ratio 1.8 (all under-trained); Llama 3 70B 6.3e24: 95.4B,
/// ratio 0.73 (near optimal).
/// Epoch constants: GPT-3 N_opt = 72.2B (0.547)^0.5126 = 52.8B, ratio 3.3; Gopher 67.7B, 4.1
/// (under-trained); Chinchilla 73.0B, 0.96; Llama 2 87.7B, 0.80 (near optimal);
/// Llama 3 70B 246B, 0.28 (over-trained).
#[test]
fn published_models_verdicts() {
    let check = |law: &Law, want: [(&str, f64); 5]| {
        let ms: Vec<ModelPoint> = models(law);
        for (m, (verdict, ratio)) in ms.iter().zip(want) {
            assert_eq!(m.verdict, verdict, "{}: ratio {}", m.model.name, m.ratio);
            assert!(
                rel(m.ratio, ratio) < 0.03,
                "{}: {} vs {ratio}",
                m.model.name,
                m.ratio
            );
        }
    };
    check(
        &Law::HOFFMANN,
        [
            ("under-trained", 7.2),
            ("under-trained", 9.2),
            ("under-trained", 2.15),
            ("under-trained", 1.84),
            ("near-optimal", 0.734),
        ],
    );
    check(
        &Law::EPOCH,
        [
            ("under-trained", 3.31),
            ("under-trained", 4.14),
            ("near-optimal", 0.959),
            ("near-optimal", 0.798),
            ("over-trained", 0.285),
        ],
    );
    assert_eq!(PUBLISHED[2].name, "Chinchilla");
}

/// The verdict threshold's claim: at 1.5x (or 1/1.5x) N_opt the loss is within 0.6% of the
/// optimum's from 1e18 FLOPs up, and within 0.1% at Chinchilla's budget, under both constant
/// sets. By hand: at the optimum alpha X = beta Y for the reducible terms X = A/N^alpha,
/// Y = B/D^beta, so at 1.5 N_opt the excess is X (1.5^-alpha - 1) + Y (1.5^beta - 1), which is
/// 0.017 X for Hoffmann's exponents; at C = 1e18, X = 0.8 and L = 3.5: 0.4% (Epoch: 0.50%).
#[test]
fn a_factor_of_one_and_a_half_costs_little_loss() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        for k in 18..=27 {
            let c = 10f64.powi(k);
            let o = law.optimum(c);
            for f in [1.5, 1.0 / 1.5] {
                let l = law.loss_at_compute(c, o.n * f);
                assert!(
                    l > o.loss && l / o.loss - 1.0 < 6e-3,
                    "{law:?} C=1e{k} f={f}"
                );
                let c = 5.76e23;
                let o = law.optimum(c);
                let l = law.loss_at_compute(c, o.n * f);
                assert!(l / o.loss - 1.0 < 1e-3, "{law:?} at 5.76e23, f={f}");
            }
        }
    }
}

/// Marching squares on z = x^2 + y^2 at level 1: one closed loop whose points lie on the
/// unit circle to within the linear interpolation error of a 0.05 grid (about h^2/4 = 6e-4).
#[test]
fn contour_of_a_paraboloid_is_the_circle() {
    let xs: Vec<f64> = (0..=60).map(|i| -1.5 + 0.05 * i as f64).collect();
    let z = Array2::from_shape_fn((xs.len(), xs.len()), |(j, i)| xs[i].powi(2) + xs[j].powi(2));
    let lines = contour(&xs, &xs, &z, 1.0);
    assert_eq!(lines.len(), 1);
    let pts = &lines[0].points;
    assert_eq!(pts.first(), pts.last(), "closed");
    assert!(pts.len() > 100);
    for &(x, y) in pts {
        let r2: f64 = x * x + y * y;
        assert!((r2 - 1.0).abs() < 2e-3, "({x}, {y})");
    }
}

/// The landscape's iso-loss lines lie on L(N, D) = level, and they are open curves from
/// one edge of the map to another (L is monotone in both N and D).
#[test]
fn landscape_lines_are_iso_loss() {
    for law in [Law::HOFFMANN, Law::EPOCH] {
        let l = Landscape::new(&law);
        assert!(l.levels.len() >= 6, "{:?}", l.levels);
        assert_eq!(l.lines.len(), l.levels.len(), "one line per level");
        for line in &l.lines {
            assert_ne!(line.points.first(), line.points.last());
            for &(x, y) in &line.points {
                let v = law.loss(10f64.powf(x), 10f64.powf(y));
                assert!(
                    rel(v, line.level) < 2e-3,
                    "{} at ({x}, {y}): {v}",
                    line.level
                );
            }
        }
    }
}

/// The widget's data: the budget's readout is the closed form for both constant sets, and
/// the iso-FLOP curve's sampled minimum sits next to the closed-form N_opt.
#[test]
fn widget_data_is_consistent() {
    let config = Config::default();
    let data = compute(&config);
    assert_eq!(config.constants, "hoffmann");
    let c = 10f64.powf(23.76);
    assert!(rel(config.compute, c) < 1e-12);
    assert_eq!(data.iso.optimum, Law::HOFFMANN.optimum(c));
    assert_eq!(data.iso.optimum_other, Law::EPOCH.optimum(c));
    let (imin, _) = data
        .iso
        .loss
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    let step = data.iso.log_n[1] - data.iso.log_n[0];
    assert!((data.iso.log_n[imin] - data.iso.optimum.n.log10()).abs() <= step);
    assert!(data.fit.done());
    assert_eq!(data.fit.points.len(), 90);
    let json = data.to_json().to_string();
    assert!(json.contains("\"tokens_per_param\""));
}

// ---------------------------------------------------------------------- the CLI

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `mlplay scaling --compute C --constants NAME --json` prints exactly the four readout
/// keys, with the published allocations at Gopher's budget.
#[test]
fn cli_scaling_prints_the_optimum() {
    for (name, n, d) in [("hoffmann", 32e9, 3.0e12), ("epoch", 72e9, 1.33e12)] {
        let (code, out, err) = mlplay(&[
            "scaling",
            "--compute",
            "5.76e23",
            "--constants",
            name,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 4);
        // In this order (serde_json's map sorts keys, so read the text).
        let at = |k: &str| out.find(&format!("\"{k}\":")).unwrap();
        assert!(at("n_opt") < at("d_opt") && at("d_opt") < at("loss"));
        assert!(at("loss") < at("tokens_per_param"));
        let (got_n, got_d) = (v["n_opt"].as_f64().unwrap(), v["d_opt"].as_f64().unwrap());
        assert!(rel(got_n, n) < 0.02 && rel(got_d, d) < 0.02, "{out}");
        assert!(rel(v["tokens_per_param"].as_f64().unwrap(), got_d / got_n) < 1e-12);
        let law = Law::named(name).unwrap();
        assert_eq!(v["loss"].as_f64().unwrap(), law.loss(got_n, got_d));
    }
    // --constants defaults to hoffmann; --key=value works too.
    let (_, a, _) = mlplay(&["scaling", "--compute=5.76e23"]);
    let (_, b, _) = mlplay(&["scaling", "--compute", "5.76e23", "--constants", "hoffmann"]);
    assert_eq!(a, b);
}

#[test]
fn cli_scaling_rejects_bad_input_with_exit_2() {
    for (args, needle) in [
        (vec!["scaling"], "--compute C is required"),
        (vec!["scaling", "--compute", "-3"], "positive number"),
        (vec!["scaling", "--compute", "lots"], "positive number"),
        (
            vec!["scaling", "--compute", "1e24", "--constants", "kaplan"],
            "one of hoffmann, epoch",
        ),
        (
            vec!["scaling", "--budget", "1e24"],
            "unknown parameter --budget",
        ),
        (vec!["scaling-fit"], "--csv FILE is required"),
        (
            vec!["scaling-fit", "--csv", "/nonexistent/runs.csv"],
            "cannot read",
        ),
    ] {
        let (code, out, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `mlplay scaling-fit --csv FILE --json` on noiseless runs from the replication's law
/// prints its constants back, with intervals around them, and tells which lines it skipped.
#[test]
fn cli_scaling_fit_recovers_constants_from_a_csv() {
    let dir = std::env::temp_dir().join(format!("mlplay-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("runs.csv");
    let mut text = String::from("params,tokens,loss\n");
    for p in synthetic(&Law::EPOCH, 45, 0.0, 8) {
        text.push_str(&format!("{:e},{:e},{:e}\n", p.n, p.d, p.loss));
    }
    text.push_str("oops,1,2\n");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = mlplay(&[
        "scaling-fit",
        "--csv",
        path.to_str().unwrap(),
        "--boot",
        "20",
        "--json",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["points"], 45);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(v["bootstrap"], 20);
    let law = Law::EPOCH;
    for (key, want) in [
        ("E", law.e),
        ("A", law.a),
        ("B", law.b),
        ("alpha", law.alpha),
        ("beta", law.beta),
    ] {
        let got = v["constants"][key].as_f64().unwrap();
        assert!(rel(got, want) < 1e-3, "{key}: {got} vs {want}");
        let iv = &v["intervals"][key];
        assert!(
            iv["lo"].as_f64().unwrap() <= want * (1.0 + 1e-6)
                && iv["hi"].as_f64().unwrap() >= want * (1.0 - 1e-6),
            "{key}: {iv}"
        );
    }
}

/// The widget's own command and the fit command agree on the same points: the widget's
/// synthetic runs (seed 5) written as CSV with exact digits give bit-identical constants and
/// intervals through `scaling-fit`.
#[test]
fn cli_widget_and_fit_agree() {
    let (code, out, _) = mlplay(&[
        "scaling-laws",
        "--count",
        "30",
        "--boot",
        "20",
        "--seed",
        "5",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fitv = &v["data"]["fit"];
    let pts = synthetic(&Law::HOFFMANN, 30, 0.01, 5);
    let shown = fitv["points"].as_array().unwrap();
    assert_eq!(shown.len(), 30);
    for (p, s) in pts.iter().zip(shown) {
        assert!(
            rel(s[0].as_f64().unwrap(), p.n) < 1e-15 && rel(s[2].as_f64().unwrap(), p.loss) < 1e-15
        );
    }
    let dir = std::env::temp_dir().join(format!("mlplay-scaling-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.csv");
    let text: String = pts
        .iter()
        .map(|p| format!("{},{},{}\n", p.n, p.d, p.loss))
        .collect();
    std::fs::write(&path, text).unwrap();
    let (code, out2, err) = mlplay(&[
        "scaling-fit",
        "--csv",
        path.to_str().unwrap(),
        "--boot",
        "20",
        "--seed",
        "5",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{err}");
    let w: serde_json::Value = serde_json::from_str(&out2).unwrap();
    for key in ["E", "A", "B", "alpha", "beta"] {
        assert_eq!(w["constants"][key], fitv["fitted"][key], "{key}");
        assert_eq!(w["intervals"][key], fitv["intervals"][key], "{key}");
    }
    assert_eq!(v["data"]["budget"]["constants"], "hoffmann");
}
