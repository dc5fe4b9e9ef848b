//! DPO against hand-derived values, finite differences, and its closed-form optimum.

use std::process::Command;

use mlplay::dpo::{
    accuracy, accuracy_counted, aggregate, aggregate_counts, calibration, calibration_counted,
    closed_form_policy, implicit_reward, kl, loss, loss_grad, loss_grad_weighted, loss_weighted,
    margins, pairs_csv, parse_pairs_csv, softmax, train_to_end, Adam, Config, Pair, Problem,
    Trainer,
};
use mlplay::rng::Rng;
use ndarray::{array, Array2};
use serde_json::Value;

const LN_2: f64 = std::f64::consts::LN_2;

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// Each row minus its mean: rewards are identified only up to a constant per prompt.
fn centred(a: &Array2<f64>) -> Array2<f64> {
    let mut out = a.clone();
    for mut row in out.rows_mut() {
        let m = row.mean().unwrap();
        row.mapv_inplace(|v| v - m);
    }
    out
}

fn random_pairs(p: usize, m: usize, n: usize, rng: &mut Rng) -> Vec<Pair> {
    (0..n)
        .map(|_| {
            let prompt = (rng.uniform() * p as f64) as usize;
            let chosen = (rng.uniform() * m as f64) as usize;
            let mut rejected = (rng.uniform() * (m - 1) as f64) as usize;
            if rejected >= chosen {
                rejected += 1;
            }
            Pair {
                prompt,
                chosen,
                rejected,
            }
        })
        .collect()
}

/// At zero margin every pair contributes -log sigmoid(0) = log(1 + e^0) = ln 2. The margin is
/// zero when pi = pi_ref, and also when each prompt's logits are shifted by a constant
/// (softmax is shift-invariant), whatever beta is.
#[test]
fn loss_at_zero_margin_is_ln_2() {
    let mut rng = Rng::new(11);
    for seed in 0..5 {
        let p = Problem::sample(3, 5, &mut Rng::new(seed));
        let pairs = p.sample_pairs(200, &mut rng);
        for beta in [0.02, 0.1, 0.5, 2.0] {
            let at_ref = loss(&p.ref_logits, &p.ref_logits, &pairs, beta);
            assert!((at_ref - LN_2).abs() < 1e-12, "{at_ref}");
            let mut shifted = p.ref_logits.clone();
            for (x, mut row) in shifted.rows_mut().into_iter().enumerate() {
                row += 3.0 * x as f64 - 1.7;
            }
            let l = loss(&shifted, &p.ref_logits, &pairs, beta);
            assert!((l - LN_2).abs() < 1e-12, "{l}");
        }
    }
}

/// One pair by hand: M = 2, pi_ref uniform (logits 0), theta = (1, 0), beta = 0.5, response 0
/// chosen over 1. The margin is 0.5 ((1 - 0) - (0 - 0)) = 0.5; the loss is
/// log(1 + e^-0.5) = ln(1.6065306597126334) = 0.47407698418010663; dL/dtheta_0 =
/// -(1 - sigmoid(0.5)) beta = -(1 - 0.6224593312018546) 0.5 = -0.1887703343990727, and
/// dL/dtheta_1 = +0.1887703343990727.
#[test]
fn one_pair_by_hand() {
    let theta = array![[1.0, 0.0]];
    let reference = array![[0.0, 0.0]];
    let pairs = [Pair {
        prompt: 0,
        chosen: 0,
        rejected: 1,
    }];
    let m = margins(&theta, &reference, &pairs, 0.5);
    assert!((m[0] - 0.5).abs() < 1e-15);
    assert!((loss(&theta, &reference, &pairs, 0.5) - 0.47407698418010663).abs() < 1e-14);
    let g = loss_grad(&theta, &reference, &pairs, 0.5);
    assert!((g[[0, 0]] + 0.1887703343990727).abs() < 1e-14);
    assert!((g[[0, 1]] - 0.1887703343990727).abs() < 1e-14);
}

/// The margin computed from log-softmaxes equals beta [(theta_w - theta_l) - (ref_w - ref_l)]:
/// linear in the logits, the log-partition cancels. This is why DPO on a tabular policy is
/// exactly logistic regression.
#[test]
fn margin_is_linear_in_the_logits() {
    let mut rng = Rng::new(5);
    let p = Problem::sample(4, 6, &mut rng);
    let theta = Array2::from_shape_fn((4, 6), |_| 2.0 * rng.normal());
    let pairs = random_pairs(4, 6, 100, &mut rng);
    let beta = 0.37;
    for (pair, m) in pairs
        .iter()
        .zip(margins(&theta, &p.ref_logits, &pairs, beta))
    {
        let (x, w, l) = (pair.prompt, pair.chosen, pair.rejected);
        let linear = beta
            * ((theta[[x, w]] - theta[[x, l]]) - (p.ref_logits[[x, w]] - p.ref_logits[[x, l]]));
        assert!((m - linear).abs() < 1e-12);
    }
}

/// The hand-written gradient equals central finite differences of the loss (computed through
/// log-softmaxes, an independent route), at random logits far from the reference.
#[test]
fn gradient_matches_finite_differences() {
    let h = 1e-6;
    for seed in 0..12 {
        let mut rng = Rng::new(100 + seed);
        let (np, nr) = (1 + seed as usize % 4, 2 + seed as usize % 5);
        let p = Problem::sample(np, nr, &mut rng);
        let theta = Array2::from_shape_fn((np, nr), |_| 1.5 * rng.normal());
        let pairs = random_pairs(np, nr, 40, &mut rng);
        for beta in [0.05, 0.3, 1.7] {
            let g = loss_grad(&theta, &p.ref_logits, &pairs, beta);
            for x in 0..np {
                for y in 0..nr {
                    let (mut up, mut down) = (theta.clone(), theta.clone());
                    up[[x, y]] += h;
                    down[[x, y]] -= h;
                    let fd = (loss(&up, &p.ref_logits, &pairs, beta)
                        - loss(&down, &p.ref_logits, &pairs, beta))
                        / (2.0 * h);
                    assert!(
                        (fd - g[[x, y]]).abs() < 1e-8,
                        "seed {seed} beta {beta} [{x},{y}]: {fd} vs {}",
                        g[[x, y]]
                    );
                }
            }
        }
    }
}

/// The fast path the trainer takes (distinct pairs weighted by frequency) against the slow
/// twin (every pair on its own): same loss, same gradient.
#[test]
fn aggregated_pairs_equal_pair_by_pair() {
    let mut rng = Rng::new(8);
    let p = Problem::sample(3, 4, &mut rng);
    let pairs = p.sample_pairs(2000, &mut rng);
    let (unique, weights) = aggregate(&pairs);
    assert!(unique.len() <= 3 * 4 * 3);
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let theta = Array2::from_shape_fn((3, 4), |_| rng.normal());
    let slow = loss(&theta, &p.ref_logits, &pairs, 0.4);
    let fast = loss_weighted(&theta, &p.ref_logits, &unique, &weights, 0.4);
    assert!((slow - fast).abs() < 1e-12);
    let gs = loss_grad(&theta, &p.ref_logits, &pairs, 0.4);
    let gf = loss_grad_weighted(&theta, &p.ref_logits, &unique, &weights, 0.4);
    assert!(max_abs(&(&gs - &gf)) < 1e-12);
    let (same, counts) = aggregate_counts(&pairs);
    assert_eq!(same, unique);
    assert_eq!(counts.iter().sum::<usize>(), 2000);
    let acc = accuracy(&theta, &p.ref_logits, &pairs);
    let acc_fast = accuracy_counted(&theta, &p.ref_logits, &unique, &counts);
    assert_eq!(acc, acc_fast);
    let (bins, ece) = calibration(&theta, &p.ref_logits, &pairs, 0.4, 10);
    let (bins_fast, ece_fast) =
        calibration_counted(&theta, &p.ref_logits, &unique, &counts, 0.4, 10);
    assert!((ece - ece_fast).abs() < 1e-12);
    for (a, b) in bins.iter().zip(&bins_fast) {
        assert_eq!(a.count, b.count);
        assert!(a.count == 0 || (a.observed - b.observed).abs() < 1e-12);
    }
}

/// The DPO loss in the infinite-data limit (every ordered pair weighted by its Bradley-Terry
/// probability) is minimised exactly by pi* = pi_ref exp(r / beta) / Z. Gradient descent with
/// step 1/L, L = beta^2 / 2 (the Hessian in theta is beta^2 sum_pairs w sigmoid'(m)
/// (e_w - e_l)(e_w - e_l)^T, sigmoid' <= 1/4 and the weighted Laplacian's top eigenvalue <= 2
/// since the weights sum to 1), converges monotonically; after 20,000 steps the learned
/// policy matches the closed form to 1e-6 and the implicit reward equals r up to a constant per
/// prompt to 1e-6 beta-independent units.
#[test]
fn infinite_data_optimum_is_the_closed_form() {
    for seed in 1..=3 {
        let p = Problem::sample(4, 5, &mut Rng::new(seed));
        let (pairs, weights) = p.population_pairs();
        for beta in [0.05, 0.1, 0.5, 2.0] {
            let mut theta = p.ref_logits.clone();
            for _ in 0..20_000 {
                let g = loss_grad_weighted(&theta, &p.ref_logits, &pairs, &weights, beta);
                theta.scaled_add(-2.0 / (beta * beta), &g);
            }
            let star = closed_form_policy(&p.ref_logits, &p.true_reward, beta);
            let gap = max_abs(&(&softmax(&theta) - &star));
            assert!(gap < 1e-6, "seed {seed} beta {beta}: |pi - pi*| = {gap}");
            let h = implicit_reward(&theta, &p.ref_logits, beta);
            let off = max_abs(&(centred(&h) - centred(&p.true_reward)));
            assert!(
                off < 1e-6,
                "seed {seed} beta {beta}: implicit reward off by {off}"
            );
        }
    }
}

/// With many sampled pairs the trainer (Adam, as the widget runs it) recovers the reward.
/// N = 200,000 pairs over 3 prompts x 6 unordered response pairs: n ~ 11,100 comparisons of each
/// pair. The Bradley-Terry MLE of a reward difference has standard error about
/// 1 / sqrt(n sigmoid'(dr)), 0.021 at |dr| = 1 (sigmoid' = 0.197) and 0.032 at |dr| = 2.5
/// (sigmoid' = 0.070); the tolerance 0.08 on the centred implicit reward is 2.5 to 4 of those.
/// For the policy, to first order pi_y - pi*_y = pi*_y (d_y - E_pi* d) with d = (h - r)/beta
/// centred, so |pi - pi*| <= (1/4) (max d - min d) <= (1/4) 2 (0.08) / beta = 0.08 at beta = 0.5.
#[test]
fn many_pairs_recover_the_reward_and_the_closed_form() {
    for seed in 1..=3 {
        let config = Config {
            beta: 0.5,
            n_pairs: 200_000,
            n_prompts: 3,
            n_responses: 4,
            learning_rate: 0.05,
            total_steps: 2000,
            seed,
        };
        let t = train_to_end(&config);
        let off = max_abs(&(centred(&t.implicit_reward()) - centred(&t.problem.true_reward)));
        assert!(off < 0.08, "seed {seed}: implicit reward off by {off}");
        let gap = max_abs(&(&t.learned_policy() - &t.closed_form_policy()));
        assert!(gap < 0.08, "seed {seed}: |pi - pi*| = {gap}");
    }
}

/// KL(pi* || pi_ref) falls as beta grows (d KL / d beta = -Var_pi*(r) / beta^3 < 0), and the
/// trained companions show it: beta/4 ends furthest from the reference, 4 beta closest.
#[test]
fn small_beta_drifts_far_large_beta_stays_close() {
    let p = Problem::sample(3, 4, &mut Rng::new(2));
    let mut last = f64::INFINITY;
    for beta in [0.05, 0.1, 0.2, 0.5, 1.0, 2.0] {
        let star = closed_form_policy(&p.ref_logits, &p.true_reward, beta);
        let k = kl(&star.mapv(f64::ln), &p.ref_logits);
        assert!(k < last, "beta {beta}: KL {k} not below {last}");
        last = k;
    }
    let t = train_to_end(&Config::default());
    let (small, large) = (&t.companions[0], &t.companions[1]);
    assert_eq!(small.beta, 0.25 * t.main.beta);
    assert_eq!(large.beta, 4.0 * t.main.beta);
    let end = |r: &mlplay::dpo::Run| *r.kl.last().unwrap();
    assert!(end(small) > end(&t.main) && end(&t.main) > end(large));
    assert!(t.history.kl[0] == 0.0, "training starts at the reference");
}

/// The trainer starts at ln 2 with KL 0, lowers the loss, and the history is logged at the
/// documented interval with the last step included.
#[test]
fn trainer_logs_and_learns() {
    let config = Config::default();
    let mut t = Trainer::new(&config, None);
    assert!((t.history.loss[0] - LN_2).abs() < 1e-12);
    assert_eq!(t.history.accuracy[0], 0.0, "no margin is > 0 at the start");
    assert_eq!(t.train(10_000).unwrap(), config.total_steps);
    let h = &t.history;
    assert_eq!(*h.step.last().unwrap(), config.total_steps);
    assert_eq!(h.step[1], config.log_every());
    assert!(h.loss.last().unwrap() < &0.6);
    // Accuracy on the training pairs cannot beat the share of pairs whose label is the
    // majority label of their (prompt, unordered pair); it should get close to the share of
    // labels agreeing with the true reward.
    let agree = t.agrees_with_reward().iter().filter(|&&a| a).count() as f64 / t.pairs.len() as f64;
    assert!((h.accuracy.last().unwrap() - agree).abs() < 0.05);
}

/// Adam's first step is -lr g / (|g| + eps) per coordinate (m_hat = g, v_hat = g^2).
#[test]
fn adam_first_step_by_hand() {
    let mut theta = array![[1.0, -2.0, 0.5]];
    let g = array![[0.3, -4.0, 0.0]];
    Adam::new((1, 3)).step(&mut theta, &g, 0.1);
    assert!((theta[[0, 0]] - (1.0 - 0.1 * 0.3 / (0.3 + 1e-8))).abs() < 1e-12);
    assert!((theta[[0, 1]] - (-2.0 + 0.1 * 4.0 / (4.0 + 1e-8))).abs() < 1e-12);
    assert_eq!(theta[[0, 2]], 0.5);
}

/// Calibration at pi = pi_ref: every predicted probability is sigmoid(0) = 0.5 (bin [0.5, 0.6)),
/// so the reliability diagram has one bin whose observed frequency is the share of pairs
/// whose lower-numbered response won, and the ECE is |0.5 - that share|. Here: 3 of 4.
#[test]
fn calibration_by_hand() {
    let reference = array![[0.2, -0.1, 0.4]];
    let pairs = [
        Pair {
            prompt: 0,
            chosen: 0,
            rejected: 1,
        },
        Pair {
            prompt: 0,
            chosen: 2,
            rejected: 1,
        },
        Pair {
            prompt: 0,
            chosen: 1,
            rejected: 2,
        },
        Pair {
            prompt: 0,
            chosen: 0,
            rejected: 2,
        },
    ];
    let (bins, ece) = calibration(&reference, &reference, &pairs, 0.5, 10);
    let filled: Vec<_> = bins.iter().filter(|b| b.count > 0).collect();
    assert_eq!(filled.len(), 1);
    assert_eq!(filled[0].lo, 0.5);
    assert_eq!(filled[0].count, 4);
    assert_eq!(filled[0].observed, 0.75);
    assert!((ece - 0.25).abs() < 1e-15);
}

#[test]
fn csv_round_trip_and_errors_name_the_line() {
    let pairs = Problem::sample(2, 3, &mut Rng::new(1)).sample_pairs(25, &mut Rng::new(2));
    assert_eq!(parse_pairs_csv(&pairs_csv(&pairs)).unwrap(), pairs);
    let text = "# my pairs\nprompt, chosen, rejected\n\n0,1,2\n 1 , 0 , 2 \n";
    assert_eq!(parse_pairs_csv(text).unwrap().len(), 2);
    let e = parse_pairs_csv("0,1,2\n0,x,1\n").unwrap_err();
    assert!(e.starts_with("line 2:"), "{e}");
    let e = parse_pairs_csv("0,1,2\n0,1\n").unwrap_err();
    assert!(e.contains("line 2") && e.contains("2 fields"), "{e}");
    let e = parse_pairs_csv("0,2,2\n").unwrap_err();
    assert!(e.contains("same response"), "{e}");
    assert!(parse_pairs_csv("prompt,chosen,rejected\n").is_err());
}

/// Custom pairs replace the Bradley-Terry ones; rows that do not fit P x M are dropped and
/// counted, and the hidden reward is the same as with the generated pairs.
#[test]
fn custom_pairs_are_used_and_rows_that_do_not_fit_are_counted() {
    let config = Config::default(); // 3 prompts x 4 responses
    let rows = parse_pairs_csv("0,1,0\n2,3,1\n5,0,1\n0,7,1\n").unwrap();
    let t = Trainer::new(&config, Some(&rows));
    assert_eq!(t.pairs.len(), 2);
    assert_eq!(t.source, mlplay::dpo::Source::Custom { skipped: 2 });
    let generated = Trainer::new(&config, None);
    assert_eq!(t.problem, generated.problem);
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

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// `mlplay dpo --beta B --pairs N --steps K --seed S --json`: one line per logged step with
/// step, loss, accuracy and kl, then the policies; the closed form in the last line is
/// recomputed here from its ref_policy and true_reward: pi* = pi_ref e^{r/beta} / Z.
#[test]
fn cli_prints_one_line_per_logged_step_then_the_policies() {
    let (code, out, err) = mlplay(&[
        "dpo", "--beta", "0.3", "--pairs", "800", "--steps", "120", "--seed", "4", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, steps) = lines.split_last().unwrap();
    assert_eq!(steps.len(), 121, "steps 0..=120, logged every step");
    for (i, l) in steps.iter().enumerate() {
        assert_eq!(l["step"], i as f64);
        for key in ["loss", "accuracy", "kl"] {
            assert!(l[key].is_number(), "{key} in {l}");
        }
    }
    assert!((steps[0]["loss"].as_f64().unwrap() - LN_2).abs() < 1e-12);
    assert_eq!(steps[0]["kl"], 0.0);
    assert!(steps[120]["loss"].as_f64().unwrap() < steps[0]["loss"].as_f64().unwrap());
    let pi_ref = matrix(&last["ref_policy"]);
    let r = matrix(&last["true_reward"]);
    let star = matrix(&last["closed_form_policy"]);
    let learned = matrix(&last["learned_policy"]);
    assert_eq!(pi_ref.len(), 3);
    for x in 0..3 {
        assert_eq!(learned[x].len(), 4);
        let z: f64 = (0..4).map(|y| pi_ref[x][y] * (r[x][y] / 0.3).exp()).sum();
        for y in 0..4 {
            let want = pi_ref[x][y] * (r[x][y] / 0.3).exp() / z;
            assert!((star[x][y] - want).abs() < 1e-12);
        }
        assert!((learned[x].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // Longer runs log about 250 rows.
    let (_, out, _) = mlplay(&["dpo", "--steps", "1000"]);
    let n = out.lines().count() - 1;
    assert_eq!(n, 251, "steps 0, 4, 8, ..., 1000");
}

#[test]
fn cli_is_deterministic_and_validates_strictly() {
    let a = mlplay(&["dpo", "--seed", "9", "--steps", "30"]).1;
    let b = mlplay(&["dpo", "--steps=30", "--seed", "9"]).1;
    assert_eq!(a, b);
    let (code, out, err) = mlplay(&["dpo", "--beta", "5"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("--beta") && err.contains("0.02 to 2.00"),
        "{err}"
    );
    let (code, _, err) = mlplay(&["dpo", "--pairs", "12.5"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--pairs") && err.contains("whole number"),
        "{err}"
    );
    let (code, _, err) = mlplay(&["dpo", "--gamma", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown parameter --gamma"), "{err}");
}
