//! The two scaling-law commands of the CLI, beside the widget's own `mlplay scaling-laws`:
//!
//! ```text
//! mlplay scaling --compute C [--constants hoffmann|epoch] [--json]
//!     {"n_opt":..., "d_opt":..., "loss":..., "tokens_per_param":...}
//! mlplay scaling-fit --csv FILE [--boot R] [--seed S] [--json]
//!     the five fitted constants, the exponent a of N_opt ∝ C^a, and 95% bootstrap intervals
//! ```
//! `--compute` is a plain number of FLOPs (`5.76e23`); the widget's slider moves log10 C.
//! The fit is the widget's fit ([`super::fit::FitJob`]) with the same defaults (200
//! replicates, seed 1), so the same points give the same numbers on the page.

use super::fit::{self, FitJob, FitOptions};
use super::law::Law;
use super::{intervals_json, CONSTANTS, SPEC};
use crate::json::Json;

/// A command: its arguments after the command name, JSON out or an error message.
pub type Command = fn(&[String]) -> Result<Json, String>;

/// The command of this name (`scaling` or `scaling-fit`), if it is one of these.
pub fn command(name: &str) -> Option<Command> {
    match name {
        "scaling" => Some(scaling),
        "scaling-fit" => Some(scaling_fit),
        _ => None,
    }
}

/// `--key value` / `--key=value` pairs; `--json` is accepted and ignored (JSON is the only
/// output). Keys not in `allowed` are errors naming the allowed ones.
fn flags(cmd: &str, args: &[String], allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        let Some(key) = flag.strip_prefix("--") else {
            return Err(format!("expected --key value, got {flag:?}"));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match rest.next() {
                Some(v) => (key.to_string(), v.clone()),
                None => return Err(format!("--{key} needs a value")),
            },
        };
        if !allowed.contains(&key.as_str()) {
            return Err(format!(
                "unknown parameter --{key} for {cmd} (allowed: {})",
                allowed
                    .iter()
                    .map(|k| format!("--{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn last<'a>(flags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    flags
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A whole number from `lo` to `hi`, from the widget's table where the key is shared.
fn whole(flags: &[(String, String)], key: &str, table_key: &str) -> Result<Option<u64>, String> {
    let p = SPEC.param(table_key).expect("a key of the widget's table");
    let Some(raw) = last(flags, key) else {
        return Ok(None);
    };
    match raw.trim().parse::<u64>() {
        Ok(v) if (p.min..=p.max).contains(&(v as f64)) => Ok(Some(v)),
        _ => Err(format!(
            "invalid value \"{raw}\" for --{key}: --{key} must be a whole number from {} to {}",
            p.min, p.max
        )),
    }
}

/// `mlplay scaling`: the compute-optimal model for a budget under one constant set.
pub fn scaling(args: &[String]) -> Result<Json, String> {
    let flags = flags("scaling", args, &["compute", "constants"])?;
    let raw = last(&flags, "compute").ok_or("--compute C is required (FLOPs, e.g. 5.76e23)")?;
    let c: f64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(|| {
            format!("invalid value \"{raw}\" for --compute: --compute must be a positive number of FLOPs, e.g. 5.76e23")
        })?;
    let name = last(&flags, "constants").unwrap_or("hoffmann");
    let law = Law::named(&name.trim().to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "invalid value \"{name}\" for --constants: --constants must be one of {}",
            CONSTANTS.join(", ")
        )
    })?;
    let o = law.optimum(c);
    Ok(Json::obj([
        ("n_opt", Json::Num(o.n)),
        ("d_opt", Json::Num(o.d)),
        ("loss", Json::Num(o.loss)),
        ("tokens_per_param", Json::Num(o.tokens_per_param())),
    ]))
}

/// `mlplay scaling-fit`: fit the five constants to a CSV of (N, D, L) runs.
pub fn scaling_fit(args: &[String]) -> Result<Json, String> {
    let flags = flags("scaling-fit", args, &["csv", "boot", "seed"])?;
    let path = last(&flags, "csv").ok_or("--csv FILE is required (rows of N, D, L)")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let defaults = FitOptions::default();
    let boot = whole(&flags, "boot", "boot")?.unwrap_or(SPEC.param("boot").unwrap().default as u64);
    let seed = whole(&flags, "seed", "seed")?.unwrap_or(SPEC.param("seed").unwrap().default as u64);
    let parsed = fit::parse_csv(&text);
    let opts = FitOptions {
        bootstrap: boot as usize,
        seed,
        ..defaults
    };
    let mut job = FitJob::new(&parsed.points, &opts).map_err(|e| format!("{path}: {e}"))?;
    job.finish();
    let f = job.fit().expect("a finished job has a fit");
    let iv = job.intervals().expect("a finished job has intervals");
    let l = &f.law;
    Ok(Json::obj([
        ("points", Json::Num(parsed.points.len() as f64)),
        (
            "skipped",
            Json::Arr(parsed.skipped.iter().map(Json::str).collect()),
        ),
        (
            "constants",
            Json::obj([
                ("E", Json::Num(l.e)),
                ("A", Json::Num(l.a)),
                ("B", Json::Num(l.b)),
                ("alpha", Json::Num(l.alpha)),
                ("beta", Json::Num(l.beta)),
                ("a", Json::Num(l.n_exponent())),
            ]),
        ),
        ("intervals", intervals_json(&iv)),
        ("level", Json::Num(fit::LEVEL)),
        ("bootstrap", Json::Num(boot as f64)),
        ("seed", Json::Num(seed as f64)),
        ("objective", Json::Num(f.objective)),
        ("converged", Json::Bool(f.converged)),
    ]))
}
