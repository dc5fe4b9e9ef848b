//! GRPO against hand-derived values, finite differences, Monte Carlo and a seeded run.

use std::process::Command;

use mlplay::grpo::{
    accuracy, gradient_noise, group_advantages, k3, kl_categorical, log_softmax, log_softmax_row,
    mean_std, objective, objective_grad, sample_categorical, train_to_end, Config, Estimator,
    Group, Task, Trainer,
};
use mlplay::rng::Rng;
use ndarray::{Array1, Array2};
use serde_json::Value;

/// Rewards (1, 0, 0, 0): mean 1/4, population variance (9/16 + 3/16) / 4 = 3/16, std
/// sqrt(3)/4 = 0.4330127; A = (3/4) / (sqrt(3)/4) = sqrt(3) for the right answer and
/// (-1/4) / (sqrt(3)/4) = -1/sqrt(3) for the others. G = 2 with (0, 1): A = (-1, 1).
#[test]
fn advantages_by_hand() {
    let a = group_advantages(&[1.0, 0.0, 0.0, 0.0]);
    assert!((a[0] - 3f64.sqrt()).abs() < 1e-12);
    for &x in &a[1..] {
        assert!((x + 1.0 / 3f64.sqrt()).abs() < 1e-12);
    }
    assert_eq!(group_advantages(&[0.0, 1.0]), vec![-1.0, 1.0]);
}

/// Property: any group with two different rewards gets advantages of mean 0 and population
/// std 1; a group whose rewards are all equal gets exactly zero, never NaN, even where the
/// floating-point mean is not exactly the common value (0.1 * 3 / 3 != 0.1).
#[test]
fn advantages_have_mean_0_and_std_1_or_are_all_zero() {
    let mut rng = Rng::new(3);
    for _ in 0..500 {
        let g = 2 + (rng.uniform() * 63.0) as usize;
        let rewards: Vec<f64> = (0..g)
            .map(|_| {
                let r = if rng.uniform() < 0.3 { 1.0 } else { 0.0 };
                r + if rng.uniform() < 0.5 { 0.2 } else { 0.0 }
            })
            .collect();
        let a = group_advantages(&rewards);
        let (m, s) = mean_std(&a);
        if rewards.iter().all(|&r| r == rewards[0]) {
            assert!(a.iter().all(|&x| x == 0.0));
        } else {
            assert!(m.abs() < 1e-12, "mean {m}");
            assert!((s - 1.0).abs() < 1e-12, "std {s}");
        }
    }
    for equal in [vec![0.1; 3], vec![1.2; 64], vec![0.0; 8], vec![1.0; 2]] {
        let a = group_advantages(&equal);
        assert!(a.iter().all(|&x| x == 0.0 && x.is_finite()));
    }
}

fn random_logits(n: usize, scale: f64, rng: &mut Rng) -> Array1<f64> {
    Array1::from_shape_fn(n, |_| scale * rng.normal())
}

/// k3 = q/p - log(q/p) - 1 >= 0 (x - 1 >= log x), 0 exactly when q = p; E_p[k3] = KL(p || q)
/// exactly (E_p[q/p] = 1); and a Monte Carlo mean over 200,000 draws from p lands within four
/// standard errors of the exact KL.
#[test]
fn k3_is_nonnegative_unbiased_and_matches_monte_carlo() {
    let mut rng = Rng::new(17);
    for trial in 0..6 {
        let n = 3 + trial * 3;
        let lp = log_softmax_row(random_logits(n, 1.2, &mut rng).view());
        let lq = log_softmax_row(random_logits(n, 1.2, &mut rng).view());
        let exact = kl_categorical(&lp, &lq);
        for i in 0..n {
            assert!(k3(lp[i], lq[i]) >= 0.0);
            assert_eq!(k3(lp[i], lp[i]), 0.0);
        }
        let expectation: f64 = (0..n).map(|i| lp[i].exp() * k3(lp[i], lq[i])).sum();
        assert!((expectation - exact).abs() < 1e-12);
        let p = lp.mapv(f64::exp);
        let draws = 200_000;
        let samples: Vec<f64> = (0..draws)
            .map(|_| {
                let o = sample_categorical(&p, &mut rng);
                k3(lp[o], lq[o])
            })
            .collect();
        let (mean, std) = mean_std(&samples);
        let se = std / (draws as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "trial {trial}: MC {mean} vs exact {exact} (se {se})"
        );
    }
}

/// Groups on random prompts with advantages ~ N(0, 1) and pi_old a different random policy, so
/// that ratios spread over both sides of the clip range.
fn random_groups(logits: &Array2<f64>, rng: &mut Rng, b: usize, g: usize) -> Vec<Group> {
    let old = logits + &Array2::from_shape_fn(logits.raw_dim(), |_| 0.4 * rng.normal());
    let old_lp = log_softmax(&old);
    (0..b)
        .map(|_| {
            let q = (rng.uniform() * logits.nrows() as f64) as usize;
            let p = old_lp.row(q).mapv(f64::exp);
            let completions: Vec<usize> = (0..g).map(|_| sample_categorical(&p, rng)).collect();
            Group {
                prompt: q,
                old_logp: completions.iter().map(|&o| old_lp[[q, o]]).collect(),
                rewards: vec![0.0; g],
                advantages: (0..g).map(|_| rng.normal()).collect(),
                completions,
            }
        })
        .collect()
}

/// The clipped objective's gradient (with the k3 term) equals central finite differences,
/// away from the kinks rho = 1 +- eps where the objective is not differentiable.
#[test]
fn clipped_objective_gradient_matches_finite_differences() {
    let h = 1e-6;
    let mut checked = 0;
    for seed in 0..10 {
        let mut rng = Rng::new(500 + seed);
        let logits = Array2::from_shape_fn((6, 7), |_| rng.normal());
        let reference = log_softmax(&Array2::from_shape_fn((6, 7), |_| rng.normal()));
        let groups = random_groups(&logits, &mut rng, 4, 6);
        let lp = log_softmax(&logits);
        for (eps, beta) in [(0.2, 0.04), (0.1, 0.5), (f64::INFINITY, 0.0)] {
            let near_kink = groups.iter().any(|g| {
                g.completions.iter().enumerate().any(|(i, &o)| {
                    let rho = (lp[[g.prompt, o]] - g.old_logp[i]).exp();
                    ((rho - 1.0).abs() - eps).abs() < 1e-4
                })
            });
            if near_kink {
                continue;
            }
            let grad = objective_grad(&logits, &reference, &groups, eps, beta);
            for q in 0..6 {
                for c in 0..7 {
                    let (mut up, mut down) = (logits.clone(), logits.clone());
                    up[[q, c]] += h;
                    down[[q, c]] -= h;
                    let fd = (objective(&up, &reference, &groups, eps, beta)
                        - objective(&down, &reference, &groups, eps, beta))
                        / (2.0 * h);
                    assert!(
                        (fd - grad[[q, c]]).abs() < 1e-8,
                        "seed {seed} eps {eps} beta {beta} [{q},{c}]: {fd} vs {}",
                        grad[[q, c]]
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20,
        "only {checked} configurations away from the kinks"
    );
}

/// At rho = 1 (pi = pi_old), with no clip and no KL, the gradient is REINFORCE's score-function
/// estimate (1/(B G)) sum_i A_i (e_{o_i} - pi).
#[test]
fn at_ratio_one_the_gradient_is_the_score_function() {
    let mut rng = Rng::new(9);
    let logits = Array2::from_shape_fn((3, 5), |_| rng.normal());
    let lp = log_softmax(&logits);
    let mut groups = random_groups(&logits, &mut rng, 3, 4);
    for g in &mut groups {
        g.old_logp = g.completions.iter().map(|&o| lp[[g.prompt, o]]).collect();
    }
    let grad = objective_grad(&logits, &lp, &groups, f64::INFINITY, 0.0);
    let mut want = Array2::<f64>::zeros((3, 5));
    for g in &groups {
        for (i, &o) in g.completions.iter().enumerate() {
            for c in 0..5 {
                let e = if c == o { 1.0 } else { 0.0 };
                want[[g.prompt, c]] += g.advantages[i] * (e - lp[[g.prompt, c]].exp()) / 12.0;
            }
        }
    }
    assert!((&grad - &want).iter().all(|d| d.abs() < 1e-14));
}

/// A group whose rewards are all equal has zero advantage, so with beta = 0 its gradient is
/// exactly zero (no update), and at pi = pi_ref the k3 term vanishes too: nothing moves, and
/// nothing is NaN.
#[test]
fn a_group_with_equal_rewards_gives_no_update() {
    let task = Task {
        format_reward: false,
    };
    let reference = task.reference_logits(&mut Rng::new(1));
    let ref_lp = log_softmax(&reference);
    let q = 34; // 3 + 4
    let completions = vec![2, 9, 11, 9];
    let rewards: Vec<f64> = completions.iter().map(|&o| task.reward(q, o)).collect();
    assert_eq!(rewards, vec![0.0; 4], "no 7 among them");
    let group = Group {
        prompt: q,
        old_logp: completions.iter().map(|&o| ref_lp[[q, o]]).collect(),
        advantages: group_advantages(&rewards),
        rewards,
        completions,
    };
    assert!(group.zero_advantage());
    let groups = [group];
    let moved = reference.clone() + 0.3; // same policy, shifted logits
    for (logits, beta) in [(&reference, 0.04), (&moved, 0.04), (&reference, 0.0)] {
        let g = objective_grad(logits, &ref_lp, &groups, 0.2, beta);
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(g.iter().all(|&x| x.abs() < 1e-15), "beta {beta}: {g:?}");
    }
}

/// Rule-based rewards: the right sum is worth 1, tags 0.2 more when the format reward is on.
#[test]
fn rewards_by_hand() {
    let off = Task {
        format_reward: false,
    };
    let on = Task {
        format_reward: true,
    };
    assert_eq!(off.n_prompts(), 100);
    assert_eq!(off.n_answers(), 19);
    assert_eq!(on.n_answers(), 38);
    let q = 3 * 10 + 4;
    assert_eq!(off.prompt_text(q), "3 + 4 = ?");
    assert_eq!(off.reward(q, 7), 1.0);
    assert_eq!(off.reward(q, 8), 0.0);
    assert_eq!(on.reward(q, 7), 1.0);
    assert_eq!(on.answer_text(19 + 7), "<answer>7</answer>");
    assert!((on.reward(q, 19 + 7) - 1.2).abs() < 1e-15);
    assert!((on.reward(q, 19 + 8) - 0.2).abs() < 1e-15);
}

/// For one prompt with 0/1 rewards and the raw-reward estimator, the batch gradient is
/// (k/G)(e_c - pi) with k ~ Binomial(G, p), p = pi(c): mean p (e_c - pi), variance
/// p (1 - p) / G |e_c - pi|^2, so Var / |mean|^2 = (1 - p) / (p G) exactly. The estimate from
/// 4,000 resampled groups is within 10% (its relative standard error is about sqrt(2/4000) = 2%).
#[test]
fn gradient_noise_of_raw_rewards_by_hand() {
    let task = Task {
        format_reward: false,
    };
    let mut rng = Rng::new(4);
    let logits = task.reference_logits(&mut Rng::new(2));
    let q = 25; // 2 + 5
    let p = log_softmax_row(logits.row(q))[7].exp();
    for g in [4, 16] {
        let noise =
            gradient_noise(&task, &logits, &[q], g, Estimator::Raw, 4000, &mut rng).unwrap();
        let want = (1.0 - p) / (p * g as f64);
        assert!(
            (noise / want - 1.0).abs() < 0.1,
            "G {g}: {noise} vs {want} (p = {p})"
        );
    }
}

/// The seeded default run (B = 8 prompts x G = 8 answers, 300 steps, lr 8, mu = 2) takes the
/// exact accuracy from the reference's ~0.2 to above 0.8. The threshold: 300 steps x 8
/// prompts visit each of the 100 prompts about 24 times; a prompt that starts at
/// pi(right) = 0.2 needs only a handful of groups with a right answer (P = 1 - 0.8^8 = 0.83
/// per visit) to pass 0.8 at this step size, so a run that learns clears it with room, while
/// a run whose update were broken (sign, zero advantages, no KL gradient) stays near 0.2.
#[test]
fn seeded_runs_raise_accuracy() {
    for seed in 1..=4 {
        let t = train_to_end(&Config {
            seed,
            ..Config::default()
        });
        let start = t.initial_accuracy;
        let end = accuracy(&t.task, t.grpo_logits());
        assert!(
            (0.15..0.3).contains(&start),
            "seed {seed}: starts at {start}"
        );
        assert!(end > 0.8, "seed {seed}: {start} -> {end}");
        assert_eq!(*t.history.accuracy.last().unwrap(), end);
        // The comparison learners trained on the same prompts also improved.
        assert!(*t.history.accuracy_reinforce.last().unwrap() > start + 0.3);
        assert!(*t.history.accuracy_ppo.last().unwrap() > start + 0.3);
        // PPO's critic only learned values for rewards in [0, 1].
        let critic = &t.learners[2].critic;
        assert!(critic.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}

/// Every logged row's batch statistics follow from the group z-scores: the batch's advantages
/// have mean 0, and, since each group with unequal rewards contributes G values of mean 0 and
/// variance 1 and each equal-reward group G zeros, std = sqrt(1 - zero_groups / B).
#[test]
fn batch_advantage_statistics_follow_from_the_groups() {
    let mut t = Trainer::new(&Config::default());
    t.train(120).unwrap();
    let h = &t.history;
    for i in 0..h.step.len() {
        assert!(h.adv_mean[i].abs() < 1e-12);
        let want = (1.0 - h.zero_groups[i] as f64 / 8.0).sqrt();
        assert!((h.adv_std[i] - want).abs() < 1e-12, "row {i}");
        assert!(h.k3_mean[i] >= 0.0);
    }
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

/// `mlplay grpo --group-size G --beta B --steps K --seed S --json`: one line per logged step.
#[test]
fn cli_prints_one_line_per_logged_step() {
    let (code, out, err) = mlplay(&[
        "grpo",
        "--group-size",
        "6",
        "--beta",
        "0.1",
        "--steps",
        "60",
        "--seed",
        "5",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 60);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], (i + 1) as f64);
        for key in ["mean_reward", "accuracy", "kl", "adv_mean", "adv_std"] {
            assert!(l[key].is_number(), "{key} in {l}");
        }
        assert!(l["adv_mean"].as_f64().unwrap().abs() < 1e-12);
        let zero = l["zero_adv_groups"].as_f64().unwrap();
        let want = (1.0 - zero / 8.0).sqrt();
        assert!((l["adv_std"].as_f64().unwrap() - want).abs() < 1e-12);
        assert!(l["kl"].as_f64().unwrap() >= 0.0);
    }
    let first = lines[0]["accuracy"].as_f64().unwrap();
    let last = lines[59]["accuracy"].as_f64().unwrap();
    assert!(last > first, "{first} -> {last}");
    let (_, out, _) = mlplay(&["grpo", "--steps", "1000", "--seed", "2"]);
    assert_eq!(
        out.lines().count(),
        251,
        "steps 1 (always), 4, 8, ..., 1000"
    );
}

#[test]
fn cli_is_deterministic_and_validates_strictly() {
    let a = mlplay(&["grpo", "--seed", "9", "--steps", "20"]).1;
    let b = mlplay(&["grpo", "--steps=20", "--seed", "9"]).1;
    assert_eq!(a, b);
    let (code, out, err) = mlplay(&["grpo", "--group-size", "1"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("--group-size") && err.contains("2 to 64"),
        "{err}"
    );
    let (code, _, err) = mlplay(&["grpo", "--format", "maybe"]);
    assert_eq!(code, 2);
    assert!(err.contains("--format") && err.contains("off, on"), "{err}");
    let (code, _, _) = mlplay(&["grpo", "--format", "on", "--steps", "10"]);
    assert_eq!(code, 0);
}
