//! `mlplay cartpole-trace` and `mlplay cartpole-ppo`: their JSON, their validation, and the
//! same numbers as the library.

use std::process::Command;

use serde_json::Value;

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

/// From [0, 0, 0, 0], one push right gives ẋ = 88/451 and θ̇ = −12/41 (derived in
/// tests/cartpole.rs); the output has one state and one pair of flags per action.
#[test]
fn trace_prints_the_states_after_each_action() {
    let (code, out, _) = mlplay(&[
        "cartpole-trace",
        "--seed",
        "3",
        "--actions",
        "1,0,1",
        "--initial-state",
        "0,0,0,0",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(nums(&v["initial_state"]), vec![0.0; 4]);
    assert_eq!(nums(&v["actions"]), vec![1.0, 0.0, 1.0]);
    let states = v["states"].as_array().unwrap();
    assert_eq!(states.len(), 3);
    let s1 = nums(&states[0]);
    assert!((s1[1] - 88.0 / 451.0).abs() < 1e-12 && (s1[3] + 12.0 / 41.0).abs() < 1e-12);
    assert_eq!(v["terminated"], serde_json::json!([false, false, false]));
    assert_eq!(v["truncated"], serde_json::json!([false, false, false]));
}

/// Without --initial-state the start is a reset drawn from the seed: inside [−0.05, 0.05]⁴,
/// the same for the same seed, different for another.
#[test]
fn trace_resets_from_the_seed() {
    let a = mlplay(&["cartpole-trace", "--seed", "5", "--actions", "0"]).1;
    let b = mlplay(&["cartpole-trace", "--seed", "5", "--actions", "0"]).1;
    let c = mlplay(&["cartpole-trace", "--seed", "6", "--actions", "0"]).1;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let v: Value = serde_json::from_str(&a).unwrap();
    assert!(nums(&v["initial_state"]).iter().all(|x| x.abs() <= 0.05));
}

/// Pushing right from a pole leaning right at 0.2 rad makes it fall within a few steps; the
/// trace stops right after the first terminated step (|θ| > 12° = 0.2094 rad).
#[test]
fn trace_stops_after_termination() {
    let actions = vec!["1"; 50].join(",");
    let (code, out, _) = mlplay(&[
        "cartpole-trace",
        "--actions",
        &actions,
        "--initial-state",
        "0,0,0.2,0",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let term: Vec<bool> = serde_json::from_value(v["terminated"].clone()).unwrap();
    let n = term.len();
    assert!(n < 50);
    assert!(term[n - 1] && term[..n - 1].iter().all(|t| !t));
    let last = nums(&v["states"][n - 1]);
    assert!(last[2].abs() > 0.2094);
    assert_eq!(v["actions"].as_array().unwrap().len(), n);
}

#[test]
fn trace_rejects_bad_input_with_exit_2() {
    for (args, needle) in [
        (vec!["cartpole-trace", "--actions", "0,2"], "--actions"),
        (
            vec!["cartpole-trace", "--actions", "0", "--initial-state", "1,2"],
            "--initial-state",
        ),
        (vec!["cartpole-trace"], "--actions"),
        (
            vec!["cartpole-trace", "--actions", "0", "--gravity", "99"],
            "1.0 to 25.0",
        ),
        (
            vec!["cartpole-trace", "--actions", "0", "--lr", "0.1"],
            "--lr",
        ),
    ] {
        let (code, out, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// One JSON line per update with the keys, then the done line.
#[test]
fn ppo_prints_one_line_per_update_then_done() {
    let (code, out, _) = mlplay(&[
        "cartpole-ppo",
        "--seed",
        "4",
        "--total-steps",
        "3000",
        "--stop",
        "budget",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The fast preset's batch is 8 x 32 = 256 steps: 12 updates reach 3072 >= 3000.
    assert_eq!(lines.len(), 13);
    for (i, l) in lines[..12].iter().enumerate() {
        for key in [
            "update",
            "env_steps",
            "episodes",
            "mean_return_20",
            "policy_loss",
            "value_loss",
            "entropy",
            "approx_kl",
            "clip_frac",
            "explained_var",
            "wall_ms",
        ] {
            assert!(l.get(key).is_some(), "line {i} lacks {key}");
        }
        assert_eq!(l["update"], (i + 1) as f64);
        assert_eq!(l["env_steps"], (256 * (i + 1)) as f64);
        let ent = l["entropy"].as_f64().unwrap();
        assert!(ent > 0.0 && ent <= std::f64::consts::LN_2 + 1e-12);
        let cf = l["clip_frac"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&cf));
    }
    let done = &lines[12];
    assert_eq!(done["done"], true);
    assert_eq!(done["solved_at_steps"], Value::Null);
    assert!(done["wall_ms"].as_f64().unwrap() >= 0.0);
}

/// Two runs, the same curve: every line equal except the wall-clock times.
#[test]
fn ppo_is_deterministic() {
    let run = || {
        let out = mlplay(&["cartpole-ppo", "--seed", "9", "--total-steps", "2000"]).1;
        out.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("wall_ms");
                v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// --preset sets its values first and --key value flags override them, in any order; the
/// preset's batch size shows in the env steps per update.
#[test]
fn presets_and_overrides() {
    let first = |args: &[&str]| -> Value {
        let mut a = vec!["cartpole-ppo", "--total-steps", "1000", "--stop", "budget"];
        a.extend_from_slice(args);
        let out = mlplay(&a).1;
        serde_json::from_str(out.lines().next().unwrap()).unwrap()
    };
    // CleanRL: 4 envs x 128 steps.
    assert_eq!(first(&["--preset", "cleanrl"])["env_steps"], 512.0);
    // An override after or before the preset wins.
    assert_eq!(
        first(&["--preset", "cleanrl", "--envs", "2"])["env_steps"],
        256.0
    );
    assert_eq!(
        first(&["--steps", "16", "--preset", "cleanrl"])["env_steps"],
        64.0
    );
    let (code, _, err) = mlplay(&["cartpole-ppo", "--preset", "best"]);
    assert_eq!(code, 2);
    assert!(err.contains("--preset") && err.contains("rl-zoo"), "{err}");
}

#[test]
fn ppo_rejects_bad_flags_naming_the_key_and_range() {
    for (args, needles) in [
        (
            vec!["cartpole-ppo", "--lr", "9"],
            vec!["--lr", "0.00005 to 0.05000"],
        ),
        (
            vec!["cartpole-ppo", "--epochs", "2.5"],
            vec!["--epochs", "1 to 30"],
        ),
        (
            vec!["cartpole-ppo", "--total-steps", "5"],
            vec!["--total-steps", "1000 to 1000000"],
        ),
        (vec!["cartpole-ppo", "--colour", "red"], vec!["--colour"]),
        (vec!["cartpole-ppo", "--seed"], vec!["--seed"]),
    ] {
        let (code, out, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err}");
        }
    }
}
