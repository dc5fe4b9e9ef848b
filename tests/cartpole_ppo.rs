//! PPO for `<ml-cartpole-ppo>`: GAE against its definitions, every hand-written gradient
//! against central finite differences, and seeded runs that learn, repeat bit for bit, and
//! stop cleanly when they diverge.

use mlplay::cartpole_ppo::{config_from_params, history_json, preset_values, PRESETS, SPEC};
use mlplay::nn::normal;
use mlplay::params::Params;
use mlplay::ppo::{
    explained_variance, gae, log_softmax, sample_loss, Config, LossCoefs, NetActs, NetScratch,
    Nets, SampleTarget, Trainer, Unit, ACTIONS, OBS,
};
use mlplay::rng::Rng;

fn fast_config(seed: u64) -> Config {
    let mut p = Params::defaults(&SPEC);
    p.set("seed", &seed.to_string());
    config_from_params(&p)
}

// ---- GAE ----------------------------------------------------------------------------------

/// At λ = 1, GAE is the discounted return to the end of the rollout plus the discounted
/// bootstrap value, minus V(s_t): A_t = Σ_{k≥t} γ^{k−t} r_k + γ^{T−t} V(s_T) − V(s_t).
#[test]
fn gae_at_lambda_one_is_the_discounted_return_minus_v() {
    let mut rng = Rng::new(1);
    let t_max = 12;
    let r: Vec<f64> = (0..t_max).map(|_| rng.uniform_range(-1.0, 2.0)).collect();
    let v: Vec<f64> = (0..t_max).map(|_| rng.uniform_range(-3.0, 3.0)).collect();
    let boot = 1.7;
    let next_v: Vec<f64> = (0..t_max)
        .map(|t| if t + 1 < t_max { v[t + 1] } else { boot })
        .collect();
    let gamma = 0.93;
    let adv = gae(&r, &v, &next_v, &[false; 12], &[false; 12], gamma, 1.0);
    for t in 0..t_max {
        let mut ret = gamma.powi((t_max - t) as i32) * boot;
        for (k, rk) in r.iter().enumerate().skip(t) {
            ret += gamma.powi((k - t) as i32) * rk;
        }
        assert!((adv[t] - (ret - v[t])).abs() < 1e-12, "t={t}");
    }
}

/// At λ = 0, GAE is the one-step TD error δ_t = r_t + γ V(s_{t+1}) (1 − terminated_t) − V(s_t).
#[test]
fn gae_at_lambda_zero_is_the_td_error() {
    let r = [1.0, 0.5, -1.0, 2.0];
    let v = [0.2, 0.4, -0.3, 1.1];
    let next_v = [0.4, 9.0, 1.1, 0.7];
    let term = [false, true, false, false];
    let ended = [false, true, false, false];
    let adv = gae(&r, &v, &next_v, &term, &ended, 0.9, 0.0);
    let want = [
        1.0 + 0.9 * 0.4 - 0.2,
        0.5 - 0.4,
        -1.0 + 0.9 * 1.1 + 0.3,
        2.0 + 0.9 * 0.7 - 1.1,
    ];
    for t in 0..4 {
        assert!((adv[t] - want[t]).abs() < 1e-15, "t={t}");
    }
}

/// By hand, γ = λ = 0.5, rewards 1, values (2, 3, 4, 5), bootstrap V(s_4) = 6, and the
/// episode ending at t = 1 with V(final observation) = 10:
///   δ = (1 + 0.5·3 − 2, 1 + 0.5·10 − 3, 1 + 0.5·5 − 4, 1 + 0.5·6 − 5) = (0.5, 3, −0.5, −1)
///   A_3 = −1, A_2 = −0.5 + 0.25·(−1) = −0.75, A_1 = 3 (the episode ended: no A_2 term),
///   A_0 = 0.5 + 0.25·3 = 1.25.
/// Truncated, V(final) = 10 is bootstrapped; terminated instead, δ_1 = 1 − 3 = −2, A_1 = −2
/// and A_0 = 0.5 + 0.25·(−2) = 0.
#[test]
fn gae_bootstraps_a_truncation_and_not_a_termination() {
    let r = [1.0; 4];
    let v = [2.0, 3.0, 4.0, 5.0];
    let next_v = [3.0, 10.0, 5.0, 6.0];
    let ended = [false, true, false, false];
    let truncated = gae(&r, &v, &next_v, &[false; 4], &ended, 0.5, 0.5);
    assert_eq!(truncated, vec![1.25, 3.0, -0.75, -1.0]);
    let terminated = gae(&r, &v, &next_v, &ended, &ended, 0.5, 0.5);
    assert_eq!(terminated, vec![0.0, -2.0, -0.75, -1.0]);
}

// ---- The loss and its gradients -------------------------------------------------------------

fn loss_value(logits: &[f64], value: f64, t: &SampleTarget, c: &LossCoefs, m: f64) -> f64 {
    let mut d = [0.0; ACTIONS];
    let (s, _) = sample_loss(logits, value, t, c, m, &mut d);
    s.pg - c.ent_coef * s.entropy + c.vf_coef * s.value
}

/// At π_θ = π_old the ratio is 1: L_pg = −A, approx KL = 0, nothing is clipped; with two
/// equal logits p = (½, ½), H = ln 2 and dL_pg/dz_a = −A r (1 − p_a) = −A/2.
#[test]
fn sample_loss_at_the_old_policy_by_hand() {
    let t = SampleTarget {
        action: 1,
        old_logp: -std::f64::consts::LN_2,
        advantage: 1.5,
        old_value: 0.0,
        ret: 2.0,
    };
    let c = LossCoefs {
        clip: Some(0.2),
        clip_vloss: false,
        ent_coef: 0.0,
        vf_coef: 0.5,
    };
    let mut d = [0.0; 2];
    let (s, dv) = sample_loss(&[0.3, 0.3], 0.5, &t, &c, 1.0, &mut d);
    assert!((s.ratio - 1.0).abs() < 1e-15);
    assert!((s.pg + 1.5).abs() < 1e-15);
    assert!(s.approx_kl.abs() < 1e-15 && !s.clipped);
    assert!((s.entropy - std::f64::consts::LN_2).abs() < 1e-15);
    assert!((d[1] + 0.75).abs() < 1e-15 && (d[0] - 0.75).abs() < 1e-15);
    // Value: ½ (0.5 − 2)² = 1.125; dL/dV = c_V (V − R) = 0.5 · (−1.5).
    assert!((s.value - 1.125).abs() < 1e-15);
    assert!((dv + 0.75).abs() < 1e-15);
}

/// A > 0 and r = 1.5 > 1 + ε: the clipped branch −A (1 + ε) is the larger, so the policy
/// gradient is zero and only the entropy bonus moves the logits; approx KL = (r − 1) − ln r.
#[test]
fn a_clipped_sample_has_no_policy_gradient() {
    let mut logp = [0.0; 2];
    log_softmax(&[0.0, 1.0], &mut logp);
    let t = SampleTarget {
        action: 1,
        old_logp: logp[1] - 1.5f64.ln(),
        advantage: 2.0,
        old_value: 0.0,
        ret: 0.0,
    };
    let c = LossCoefs {
        clip: Some(0.2),
        clip_vloss: false,
        ent_coef: 0.0,
        vf_coef: 0.5,
    };
    let mut d = [9.0; 2];
    let (s, _) = sample_loss(&[0.0, 1.0], 0.0, &t, &c, 1.0, &mut d);
    assert!((s.ratio - 1.5).abs() < 1e-12 && s.clipped);
    assert!((s.pg + 2.0 * 1.2).abs() < 1e-12);
    assert!((s.approx_kl - (0.5 - 1.5f64.ln())).abs() < 1e-12);
    assert_eq!(d, [0.0, 0.0]);
    // Unclipped, the same sample pushes: dL/dz_1 = −A r (1 − p_1) ≠ 0.
    let unclipped = LossCoefs { clip: None, ..c };
    sample_loss(&[0.0, 1.0], 0.0, &t, &unclipped, 1.0, &mut d);
    let p1 = logp[1].exp();
    assert!((d[1] + 2.0 * 1.5 * (1.0 - p1)).abs() < 1e-12);
}

/// dL/dlogits and dL/dV against central differences, over random samples and every
/// combination of clipping, value clipping and entropy bonus (samples within 1e-4 of a
/// kink of the piecewise loss are skipped: it is not differentiable there).
#[test]
fn sample_loss_gradients_match_finite_differences() {
    let h = 1e-6;
    let mut rng = Rng::new(21);
    let mut checked = 0;
    for case in 0..400 {
        let logits = [rng.uniform_range(-2.0, 2.0), rng.uniform_range(-2.0, 2.0)];
        let value = rng.uniform_range(-3.0, 3.0);
        let t = SampleTarget {
            action: case % 2,
            old_logp: -rng.uniform_range(0.05, 2.0),
            advantage: rng.uniform_range(-2.0, 2.0),
            old_value: value + rng.uniform_range(-0.5, 0.5),
            ret: rng.uniform_range(-3.0, 3.0),
        };
        let c = LossCoefs {
            clip: [Some(0.2), None][case % 4 / 2],
            clip_vloss: case % 8 >= 4,
            ent_coef: [0.0, 0.05][case % 16 / 8],
            vf_coef: 0.7,
        };
        let m = 3.0;
        let mut d = [0.0; 2];
        let (s, dv) = sample_loss(&logits, value, &t, &c, m, &mut d);
        let eps = c.clip.unwrap_or(0.0);
        let near_kink = c.clip.is_some()
            && ((s.ratio - (1.0 + eps)).abs() < 1e-4 || (s.ratio - (1.0 - eps)).abs() < 1e-4)
            || c.clip_vloss && ((value - t.old_value).abs() - eps).abs() < 1e-4;
        if near_kink {
            continue;
        }
        for k in 0..2 {
            let (mut zp, mut zm) = (logits, logits);
            zp[k] += h;
            zm[k] -= h;
            let fd =
                (loss_value(&zp, value, &t, &c, m) - loss_value(&zm, value, &t, &c, m)) / (2.0 * h);
            assert!(
                (fd - d[k]).abs() < 1e-8,
                "case {case} logit {k}: {} vs fd {fd}",
                d[k]
            );
        }
        let fd = (loss_value(&logits, value + h, &t, &c, m)
            - loss_value(&logits, value - h, &t, &c, m))
            / (2.0 * h);
        assert!((fd - dv).abs() < 1e-8, "case {case} value: {dv} vs fd {fd}");
        checked += 1;
    }
    assert!(checked > 350, "{checked}");
}

/// Through the networks: the gradient of a minibatch's total loss with respect to every
/// weight of the actor and critic (separate, or a shared trunk whose two heads' gradients
/// add up) against central differences.
#[test]
fn network_gradients_of_the_ppo_loss_match_finite_differences() {
    let h = 1e-6;
    for shared in [false, true] {
        let mut rng = Rng::new(5);
        let mut nets = Nets::new(6, shared, &mut rng);
        // Perturb so the policy head is not almost zero.
        for m in nets.mlps_mut() {
            for p in m.params.iter_mut() {
                *p += 0.3 * normal(&mut rng);
            }
        }
        let rows = 7;
        let obs: Vec<f64> = (0..rows * OBS)
            .map(|_| rng.uniform_range(-1.0, 1.0))
            .collect();
        let targets: Vec<SampleTarget> = (0..rows)
            .map(|i| SampleTarget {
                action: i % 2,
                old_logp: -rng.uniform_range(0.3, 1.2),
                advantage: rng.uniform_range(-1.5, 1.5),
                old_value: rng.uniform_range(-1.0, 1.0),
                ret: rng.uniform_range(-2.0, 2.0),
            })
            .collect();
        let c = LossCoefs {
            clip: Some(0.3),
            clip_vloss: true,
            ent_coef: 0.02,
            vf_coef: 0.5,
        };
        let total = |nets: &Nets| -> f64 {
            let mut acts = NetActs::default();
            nets.forward(&obs, rows, &mut acts);
            let (z, v) = (nets.logits(&acts), nets.values(&acts));
            (0..rows)
                .map(|i| loss_value(&z[i * 2..i * 2 + 2], v[i], &targets[i], &c, rows as f64))
                .sum()
        };
        let mut acts = NetActs::default();
        nets.forward(&obs, rows, &mut acts);
        let (mut dz, mut dv) = (vec![0.0; rows * 2], vec![0.0; rows]);
        {
            let (z, v) = (nets.logits(&acts), nets.values(&acts));
            for i in 0..rows {
                dv[i] = sample_loss(
                    &z[i * 2..i * 2 + 2],
                    v[i],
                    &targets[i],
                    &c,
                    rows as f64,
                    &mut dz[i * 2..i * 2 + 2],
                )
                .1;
            }
        }
        let mut grads: Vec<Vec<f64>> = nets
            .mlps()
            .iter()
            .map(|m| vec![0.0; m.n_params()])
            .collect();
        nets.backward(&acts, &dz, &dv, &mut grads, &mut NetScratch::default());
        let mut worst: f64 = 0.0;
        for (ni, g) in grads.iter().enumerate() {
            for (pi, &gp) in g.iter().enumerate() {
                let (mut plus, mut minus) = (nets.clone(), nets.clone());
                plus.mlps_mut()[ni].params[pi] += h;
                minus.mlps_mut()[ni].params[pi] -= h;
                let fd = (total(&plus) - total(&minus)) / (2.0 * h);
                worst = worst.max((fd - gp).abs());
                assert!(
                    (fd - gp).abs() < 1e-7,
                    "shared={shared} net {ni} param {pi}: {} vs fd {fd}",
                    gp
                );
            }
        }
        assert!(worst < 1e-7);
    }
}

/// Returns (1, 2, 3), values (1, 2, 4): R − V = (0, 0, −1) has variance 2/9, R has 2/3,
/// so 1 − (2/9)/(2/3) = 2/3. A perfect critic explains everything; a constant one nothing.
#[test]
fn explained_variance_by_hand() {
    assert!((explained_variance(&[1.0, 2.0, 4.0], &[1.0, 2.0, 3.0]) - 2.0 / 3.0).abs() < 1e-15);
    assert_eq!(explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
    assert!(explained_variance(&[5.0, 5.0, 5.0], &[1.0, 2.0, 3.0]).abs() < 1e-15);
    assert!(explained_variance(&[1.0, 2.0], &[3.0, 3.0]).is_nan());
}

#[test]
fn log_softmax_is_stable_and_normalised() {
    let mut out = [0.0; 2];
    log_softmax(&[1000.0, 0.0], &mut out);
    assert_eq!(out[0], 0.0);
    assert_eq!(out[1], -1000.0);
    log_softmax(&[0.2, -0.7], &mut out);
    assert!((out[0].exp() + out[1].exp() - 1.0).abs() < 1e-15);
    assert!((out[0] - out[1] - 0.9).abs() < 1e-15);
}

// ---- Runs ---------------------------------------------------------------------------------

/// The fast preset solves CartPole (mean return of the last 20 episodes ≥ 475) well within
/// its 100,000-step budget on a fixed seed, and stops there.
#[test]
fn the_fast_preset_learns_to_balance() {
    let mut t = Trainer::new(fast_config(1));
    while t.run_update().is_some() {}
    let solved = t.solved_at.expect("seed 1 solves");
    assert!(solved <= 100_000, "solved at {solved}");
    assert!(t.done() && t.error.is_none());
    assert!(t.mean_return_20() >= 475.0);
    // It really learned: the first episodes were short (a random policy lasts ~20 steps).
    let first: f64 = t.episodes[..20].iter().map(|e| e.ret).sum::<f64>() / 20.0;
    assert!(first < 60.0, "first episodes average {first}");
}

/// Two runs with the same seed give the same curve bit for bit, however the work is sliced
/// (one unit at a time, 13 at a time, or an update at a time); another seed gives another.
#[test]
fn runs_are_deterministic_and_independent_of_slicing() {
    let mut c = fast_config(7);
    c.total_steps = 6_000;
    c.stop_when_solved = false;
    let mut a = Trainer::new(c.clone());
    while a.run_update().is_some() {}
    let mut b = Trainer::new(c.clone());
    while !b.done() {
        b.step(1);
    }
    let mut d = Trainer::new(c.clone());
    while !d.done() {
        d.step(13);
    }
    let ja = history_json(&a).to_string();
    assert_eq!(ja, history_json(&b).to_string());
    assert_eq!(ja, history_json(&d).to_string());
    assert_eq!(a.nets, b.nets);
    assert_eq!(a.nets, d.nets);
    assert!(a.updates.len() >= 20);
    c.seed = 8;
    let mut e = Trainer::new(c);
    while e.run_update().is_some() {}
    assert_ne!(ja, history_json(&e).to_string());
}

/// The work units: N·T environment steps, then K epochs of ⌈N·T / M⌉ minibatches of
/// ⌈M / 64⌉ chunks each.
#[test]
fn an_update_is_made_of_the_expected_units() {
    let mut c = fast_config(3);
    c.num_envs = 4;
    c.num_steps = 16;
    c.minibatch_size = 48; // 64 samples: minibatches of 48 and 16, one chunk each
    c.update_epochs = 3;
    let mut t = Trainer::new(c);
    let mut kinds = Vec::new();
    while t.updates.is_empty() {
        kinds.push(t.next_unit().unwrap());
        t.step(1);
    }
    let env_steps = kinds.iter().filter(|&&k| k == Unit::EnvStep).count();
    let chunks = kinds.iter().filter(|&&k| k == Unit::Chunk).count();
    assert_eq!(env_steps, 16);
    assert_eq!(chunks, 3 * 2);
    assert_eq!(t.env_steps, 64);
    assert_eq!(t.updates[0].epochs, 3);
}

/// Hyperparameters changed mid-run apply from the next update on: the learning rate and
/// the number of environments.
#[test]
fn changes_take_effect_at_the_next_update() {
    let mut c = fast_config(2);
    c.anneal = mlplay::ppo::Anneal::None;
    let mut t = Trainer::new(c.clone());
    t.run_update();
    t.run_update();
    assert_eq!(t.updates[1].learning_rate, c.learning_rate);
    let mut c2 = c.clone();
    c2.learning_rate = 0.001;
    c2.num_envs = 3;
    t.set_config(c2);
    let u = t.run_update().unwrap();
    assert_eq!(u.learning_rate, 0.001);
    assert_eq!(u.env_steps, 2 * 8 * 32 + 3 * 32);
}

/// A huge learning rate blows the critic up; the run stops with a message, keeps the last
/// good networks (finite), and records no diverged update.
#[test]
fn a_diverging_run_stops_with_the_last_good_state() {
    let mut c = fast_config(1);
    c.learning_rate = 50.0;
    c.max_grad_norm = 1e9;
    c.anneal = mlplay::ppo::Anneal::None;
    c.stop_when_solved = false;
    let mut t = Trainer::new(c);
    let mut n = 0;
    while t.run_update().is_some() {
        n += 1;
        assert!(n < 1000, "never diverged");
    }
    let msg = t.error.clone().expect("an error message");
    assert!(
        msg.contains("diverged") && msg.contains("learning rate"),
        "{msg}"
    );
    assert!(t.nets.all_finite());
    assert!(t
        .updates
        .iter()
        .all(|u| u.value_loss.is_finite() && u.value_loss <= 1e6));
    // Stepping a stopped run does nothing.
    let before = t.env_steps;
    t.step(100);
    assert_eq!(t.env_steps, before);
}

/// Every preset sets values inside the parameter table's ranges, and leaves the seed, the
/// physics and the view settings alone.
#[test]
fn presets_are_valid_rows_of_the_table() {
    for name in PRESETS {
        let values = preset_values(name).unwrap();
        let mut p = Params::defaults(&SPEC);
        for (k, v) in &values {
            assert!(p.set_strict(k, v).is_ok(), "{name}: {k}={v}");
            assert!(!["seed", "gravity", "drive", "xdot", "preset"].contains(k));
        }
    }
    assert!(preset_values("nonsense").is_none());
    // RL-Zoo's CartPole-v1: 8 envs x 32 steps, 20 epochs, minibatch 256, lr 1e-3.
    let zoo = preset_values("rl-zoo").unwrap();
    for (k, v) in [
        ("envs", "8"),
        ("steps", "32"),
        ("epochs", "20"),
        ("minibatch", "256"),
        ("lr", "0.001"),
    ] {
        assert!(zoo.contains(&(k, v)), "{k}");
    }
}

/// Saved weights read back to the same bits (the JSON writer prints shortest round-trip
/// digits), for separate and shared networks; anything else is refused with a reason.
#[test]
fn weights_round_trip_and_bad_files_are_refused() {
    use mlplay::cartpole_ppo::{parse_weights, weights_json};
    for shared in [false, true] {
        let mut c = fast_config(3);
        c.shared = shared;
        let mut t = Trainer::new(c);
        t.run_update();
        let text = weights_json(&t).to_string();
        let (nets, s) = parse_weights(&text).unwrap();
        assert_eq!(s, shared);
        assert_eq!(nets, t.nets);
    }
    let good = weights_json(&Trainer::new(fast_config(1))).to_string();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["nets"][0]["params"][5] = serde_json::json!("x");
    let not_a_number = v.to_string();
    let cases = [
        ("[1, 2", "Not a weights file"),
        (r#"{"format": "other"}"#, "Not a weights file"),
        (&good.replace(r#""hidden":16"#, r#""hidden":12"#), "hidden"),
        (
            &good.replace(r#""network":"separate""#, r#""network":"both""#),
            "network",
        ),
        (&good.replace("[4,16,16,2]", "[4,16,2]"), "layer sizes"),
        (&not_a_number, "not a finite number"),
    ];
    for (text, want) in cases {
        match parse_weights(text) {
            Ok(_) => panic!("accepted a bad file ({want})"),
            Err(e) => assert!(e.contains(want), "{want}: {e}"),
        }
    }
    // Hidden 64 in the file: the networks come back 64 wide.
    let mut c = fast_config(1);
    c.hidden = 64;
    let (nets, _) = parse_weights(&weights_json(&Trainer::new(c)).to_string()).unwrap();
    assert_eq!(nets.hidden(), 64);
}

/// Target KL: an update stops after the first epoch whose mean approx KL exceeds the target
/// (here any positive KL does); without a target every update runs all K epochs.
#[test]
fn target_kl_stops_the_epochs_early() {
    let mut c = fast_config(6);
    c.update_epochs = 5;
    c.target_kl = Some(1e-12);
    let mut t = Trainer::new(c.clone());
    for _ in 0..3 {
        let u = t.run_update().unwrap();
        assert_eq!(u.epochs, 1, "update {}", u.update);
    }
    c.target_kl = None;
    let mut t = Trainer::new(c);
    assert_eq!(t.run_update().unwrap().epochs, 5);
}

/// Linear annealing (CleanRL's frac): update k uses lr · (1 − steps before it / budget), and
/// with lr+clip the clip range too; batches of 8 x 32 = 256 steps of a 2,560-step budget.
#[test]
fn learning_rate_and_clip_anneal_linearly() {
    let mut c = fast_config(2);
    c.total_steps = 2560;
    c.stop_when_solved = false;
    c.anneal = mlplay::ppo::Anneal::LrAndClip;
    let mut t = Trainer::new(c.clone());
    let mut k = 0;
    while let Some(u) = t.run_update() {
        let frac = 1.0 - (256 * k) as f64 / 2560.0;
        assert!(
            (u.learning_rate - c.learning_rate * frac).abs() < 1e-15,
            "update {k}"
        );
        assert!(
            (u.clip_coef - c.clip_coef * frac).abs() < 1e-15,
            "update {k}"
        );
        k += 1;
    }
    assert_eq!(k, 10);
}
