//! The native CLI: JSON out, the same keys as the element's attributes, exit code 2 on bad input.

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

#[test]
fn list_prints_every_widget_with_its_table() {
    let (code, out, _) = mlplay(&["list", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ppo = v
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "ppo-clip")
        .unwrap();
    assert_eq!(ppo["element"], "ml-ppo-clip");
    let eps = ppo["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "eps")
        .unwrap();
    assert_eq!(eps["default"], 0.2);
    assert_eq!(eps["min"], 0.01);
    assert_eq!(eps["max"], 0.5);
}

#[test]
fn ppo_clip_prints_the_curve_points() {
    let (code, out, _) = mlplay(&["ppo-clip", "--eps", "0.2", "--adv", "1", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["params"]["eps"], 0.2);
    let c = &v["data"]["curve"];
    let r: Vec<f64> = serde_json::from_value(c["r"].clone()).unwrap();
    let l: Vec<f64> = serde_json::from_value(c["clipped"].clone()).unwrap();
    assert_eq!(r.len(), 201);
    // L_clip(r) = min(r, clip(r, 0.8, 1.2)) for A = 1: r below 1.2, then flat at 1.2.
    for (r, l) in r.iter().zip(&l) {
        let want = if *r <= 1.2 { *r } else { 1.2 };
        assert!((l - want).abs() < 1e-12, "r={r}: {l} vs {want}");
    }
    let flipped = &v["data"]["curve_flipped"];
    assert_eq!(flipped["advantage"], -1.0);
    // The update panel: K + 1 rows of ratios per objective, one column per action.
    let ratios = v["data"]["update"]["clipped"]["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 21);
    assert_eq!(ratios[0].as_array().unwrap().len(), 4);
}

#[test]
fn same_flags_same_output() {
    let a = mlplay(&["ppo-clip", "--seed", "9", "--lr=1.5"]).1;
    let b = mlplay(&["ppo-clip", "--lr", "1.5", "--seed", "9"]).1;
    assert_eq!(a, b);
}

#[test]
fn bad_keys_and_values_exit_2_naming_the_key_and_range() {
    let (code, out, err) = mlplay(&["ppo-clip", "--eps", "0.9"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("--eps") && err.contains("0.01 to 0.50"),
        "{err}"
    );
    let (code, _, err) = mlplay(&["ppo-clip", "--epochs", "many"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--epochs") && err.contains("1 to 100"),
        "{err}"
    );
    let (code, _, err) = mlplay(&["ppo-clip", "--colour", "red"]);
    assert_eq!(code, 2);
    assert!(err.contains("--colour"), "{err}");
    let (code, _, err) = mlplay(&["nonsense"]);
    assert_eq!(code, 2);
    assert!(err.contains("ppo-clip"), "{err}");
    let (code, _, _) = mlplay(&["ppo-clip", "--eps"]);
    assert_eq!(code, 2);
}
