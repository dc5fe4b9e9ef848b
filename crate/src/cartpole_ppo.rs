//! The widget `<ml-cartpole-ppo>`: PPO learning CartPole-v1 live, every hyperparameter a
//! slider. Its parameter table and presets, the typed [`Config`] read from them, the JSON
//! it reports, and the two CLI commands built on it:
//!
//! ```text
//! mlplay cartpole-trace --seed S --actions 0,1,1,0 [--initial-state x,ẋ,θ,θ̇] --json
//! mlplay cartpole-ppo --seed S --total-steps N [--preset NAME] [--key value]...
//! ```
//!
//! The math lives in [`crate::cartpole`] (the environment), [`crate::nn`] (the MLP, its
//! backward pass, Adam) and [`crate::ppo`] (GAE, the losses, the step-wise trainer).

use crate::cartpole::{Integrator, Physics};
use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::ppo::{Anneal, Config, Nets, Trainer, UpdateStats};

/// The presets, in menu order.
pub const PRESETS: &[&str] = &["fast", "rl-zoo", "cleanrl", "no-clipping", "one-epoch"];

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "cartpole-ppo",
    title: "PPO learns to balance a pole, live",
    summary: "Proximal Policy Optimization on Gymnasium's CartPole-v1, in your browser: press Train and watch the policy, the critic and PPO's clip at work until the pole stays up.",
    trainer: true,
    params: &[
        ParamSpec::choice(
            "preset",
            "Preset",
            "preset",
            "A set of hyperparameters to start from: fast (tuned for wall-clock time to solve), rl-zoo (RL Baselines3 Zoo's tuned CartPole-v1), cleanrl (CleanRL ppo.py defaults), no-clipping and one-epoch (fast, with one thing changed). Choosing one sets the sliders below; the seed and physics stay.",
            0,
            PRESETS,
        ),
        ParamSpec::number("lr", "Learning rate η", "η", "Adam's step size, annealed linearly to 0 over the step budget when annealing is on (a log-scale slider).", 0.0075, 0.00005, 0.05, 0.00005).log_scale(),
        ParamSpec::number("clip", "Clip range ε", "ε", "The ratio r = π_θ/π_old is clipped to [1−ε, 1+ε] in the surrogate (and the value change to ±ε with value clipping on).", 0.2, 0.01, 1.0, 0.01),
        ParamSpec::number("gamma", "Discount γ", "γ", "How much a reward one step later is worth; 1/(1−γ) is the horizon the critic looks ahead.", 0.98, 0.8, 0.999, 0.001),
        ParamSpec::number("lambda", "GAE λ", "λ", "Generalised advantage estimation: 0 is the one-step TD error, 1 the Monte-Carlo return minus V.", 0.8, 0.0, 1.0, 0.01),
        ParamSpec::number("epochs", "Epochs K", "K", "Passes over each rollout's batch.", 3.0, 1.0, 30.0, 1.0),
        ParamSpec::number("minibatch", "Minibatch size M", "M", "Samples per gradient step (at most the batch N·T; advantages are normalised per minibatch).", 32.0, 8.0, 2048.0, 8.0),
        ParamSpec::number("envs", "Environments N", "N", "CartPoles run in parallel; each rollout takes N·T steps.", 8.0, 1.0, 32.0, 1.0),
        ParamSpec::number("steps", "Steps per rollout T", "T", "Steps each environment takes per rollout.", 32.0, 8.0, 512.0, 8.0),
        ParamSpec::number("ent", "Entropy coefficient", "c_ent", "Weight of the entropy bonus that keeps the policy exploring.", 0.0, 0.0, 0.1, 0.001),
        ParamSpec::number("vf", "Value coefficient", "c_V", "Weight of the critic's loss in the total loss.", 0.5, 0.05, 2.0, 0.05),
        ParamSpec::number("hidden", "Hidden width", "H", "Units in each of the two tanh hidden layers (changing it starts a new run).", 16.0, 8.0, 128.0, 8.0),
        ParamSpec::number("seed", "Seed", "seed", "Seed of the weights, the environments and the sampling (changing it starts a new run).", 1.0, 0.0, 9999.0, 1.0),
        ParamSpec::choice("drive", "Who pushes the cart", "drive", "The agent's current policy, or you with the arrow keys (click the cart-pole panel first).", 0, &["agent", "you"]),
        ParamSpec::number("xdot", "Heatmap slice ẋ", "ẋ", "Cart velocity at which the policy and value heatmaps are drawn.", 0.0, -2.0, 2.0, 0.1),
        ParamSpec::number("thetadot", "Heatmap slice θ̇", "θ̇", "Pole angular velocity at which the heatmaps are drawn.", 0.0, -2.0, 2.0, 0.1),
        ParamSpec::number("budget", "Step budget", "steps", "Environment steps of the run, and the horizon over which annealing goes to 0 (the CLI's --total-steps).", 100000.0, 1000.0, 1000000.0, 1000.0),
        ParamSpec::choice("anneal", "Annealing", "anneal", "What decays linearly to 0 over the step budget.", 1, &["none", "lr", "lr+clip"]),
        ParamSpec::choice("clipping", "Surrogate", "clip", "The clipped surrogate (PPO) or the plain r·A (no trust region).", 0, &["clipped", "unclipped"]),
        ParamSpec::choice("vclip", "Value clipping", "vclip", "Also clip the critic's change to ±ε per update.", 0, &["off", "on"]),
        ParamSpec::number("target_kl", "Target KL", "KL*", "Stop an update's epochs early once the epoch's approx KL exceeds this (0: never).", 0.0, 0.0, 0.2, 0.005),
        ParamSpec::number("max_grad", "Max gradient norm", "g_max", "Gradients of all parameters together are scaled down to this L2 norm.", 0.5, 0.1, 5.0, 0.1),
        ParamSpec::choice("network", "Actor and critic", "net", "Two separate networks, or one shared trunk with a policy head and a value head (changing it starts a new run).", 0, &["separate", "shared"]),
        ParamSpec::choice("stop", "Stop when", "stop", "Stop once solved (mean return of the last 20 episodes ≥ 475) or only when the step budget is spent.", 0, &["solved", "budget"]),
        ParamSpec::choice("integrator", "Integrator", "integrator", "Gymnasium's explicit Euler (default) or semi-implicit Euler.", 0, &["euler", "semi-implicit"]),
        ParamSpec::number("gravity", "Gravity g", "g", "Gravitational acceleration, m/s² (Earth 9.8, the Moon 1.6).", 9.8, 1.0, 25.0, 0.1),
        ParamSpec::number("masscart", "Cart mass", "m_c", "Mass of the cart, kg.", 1.0, 0.1, 5.0, 0.1),
        ParamSpec::number("masspole", "Pole mass", "m_p", "Mass of the pole, kg.", 0.1, 0.01, 1.0, 0.01),
        ParamSpec::number("length", "Pole half-length", "l", "HALF the pole's length, m (Gymnasium's `length`).", 0.5, 0.1, 2.0, 0.05),
        ParamSpec::number("force", "Push force", "F", "Force of each push, N.", 10.0, 1.0, 30.0, 0.5),
    ],
};

/// The hyperparameters every preset sets (the seed, the physics, the stop rule and the
/// view's own settings are left as they are), for the fast preset: tuned on the CLI for
/// wall-clock time to solve (see docs/BENCHMARKS.md), starting from RL-Zoo's settings: the
/// smallest network that still solves every seed tried (30 of 30 within 45,000 steps), 3
/// epochs, minibatches of 32 and a larger learning rate.
const FAST: &[(&str, &str)] = &[
    ("lr", "0.0075"),
    ("clip", "0.2"),
    ("gamma", "0.98"),
    ("lambda", "0.8"),
    ("epochs", "3"),
    ("minibatch", "32"),
    ("envs", "8"),
    ("steps", "32"),
    ("ent", "0"),
    ("vf", "0.5"),
    ("hidden", "16"),
    ("budget", "100000"),
    ("anneal", "lr"),
    ("clipping", "clipped"),
    ("vclip", "off"),
    ("target_kl", "0"),
    ("max_grad", "0.5"),
    ("network", "separate"),
];

/// What each other preset changes relative to [`FAST`].
fn preset_overrides(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    Some(match name {
        "fast" => &[],
        "no-clipping" => &[("clipping", "unclipped")],
        "one-epoch" => &[("epochs", "1")],
        // RL Baselines3 Zoo, hyperparams/ppo.yml, CartPole-v1 (SB3's batch_size is the
        // minibatch size; its value-function clipping is off by default).
        "rl-zoo" => &[
            ("lr", "0.001"),
            ("lambda", "0.8"),
            ("epochs", "20"),
            ("minibatch", "256"),
            ("hidden", "64"),
            ("anneal", "lr+clip"),
        ],
        // CleanRL ppo.py's defaults.
        "cleanrl" => &[
            ("lr", "0.00025"),
            ("gamma", "0.99"),
            ("lambda", "0.95"),
            ("minibatch", "128"),
            ("envs", "4"),
            ("steps", "128"),
            ("ent", "0.01"),
            ("hidden", "64"),
            ("budget", "500000"),
            ("vclip", "on"),
        ],
        _ => return None,
    })
}

/// Every value preset `name` sets, or None for a name not in [`PRESETS`].
pub fn preset_values(name: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let overrides = preset_overrides(name)?;
    Some(
        FAST.iter()
            .map(|&(k, v)| {
                let v = overrides.iter().find(|(ok, _)| *ok == k).map_or(v, |o| o.1);
                (k, v)
            })
            .collect(),
    )
}

/// Sets every value of preset `name` (a name from [`PRESETS`]); other parameters stay.
pub fn apply_preset(params: &mut Params, name: &str) {
    if let Some(values) = preset_values(name) {
        for (k, v) in &values {
            let notice = params.set(k, v);
            debug_assert!(notice.is_none(), "preset {name}: {k}={v} is out of range");
        }
    }
}

/// The typed configuration of a run from the widget's parameters.
pub fn config_from_params(p: &Params) -> Config {
    Config {
        physics: Physics {
            gravity: p.get("gravity"),
            masscart: p.get("masscart"),
            masspole: p.get("masspole"),
            length: p.get("length"),
            force_mag: p.get("force"),
            tau: 0.02,
            integrator: if p.choice("integrator") == "euler" {
                Integrator::Euler
            } else {
                Integrator::SemiImplicitEuler
            },
        },
        num_envs: p.get("envs") as usize,
        num_steps: p.get("steps") as usize,
        learning_rate: p.get("lr"),
        gamma: p.get("gamma"),
        gae_lambda: p.get("lambda"),
        update_epochs: p.get("epochs") as usize,
        minibatch_size: p.get("minibatch") as usize,
        norm_adv: true,
        clip: p.choice("clipping") == "clipped",
        clip_coef: p.get("clip"),
        clip_vloss: p.choice("vclip") == "on",
        ent_coef: p.get("ent"),
        vf_coef: p.get("vf"),
        max_grad_norm: p.get("max_grad"),
        target_kl: Some(p.get("target_kl")).filter(|&k| k > 0.0),
        anneal: match p.choice("anneal") {
            "none" => Anneal::None,
            "lr" => Anneal::Lr,
            _ => Anneal::LrAndClip,
        },
        hidden: p.get("hidden") as usize,
        shared: p.choice("network") == "shared",
        total_steps: p.get("budget") as usize,
        stop_when_solved: p.choice("stop") == "solved",
        seed: p.get("seed") as u64,
    }
}

/// An update's diagnostics as the CLI prints them (one JSON line), without the wall time.
pub fn update_json(s: &UpdateStats) -> Vec<(String, Json)> {
    [
        ("update", Json::Num(s.update as f64)),
        ("env_steps", Json::Num(s.env_steps as f64)),
        ("episodes", Json::Num(s.episodes as f64)),
        ("mean_return_20", Json::Num(s.mean_return_20)),
        ("policy_loss", Json::Num(s.policy_loss)),
        ("value_loss", Json::Num(s.value_loss)),
        ("entropy", Json::Num(s.entropy)),
        ("approx_kl", Json::Num(s.approx_kl)),
        ("clip_frac", Json::Num(s.clip_frac)),
        ("explained_var", Json::Num(s.explained_var)),
        ("learning_rate", Json::Num(s.learning_rate)),
        ("clip_coef", Json::Num(s.clip_coef)),
        ("epochs", Json::Num(s.epochs as f64)),
        ("grad_norm", Json::Num(s.grad_norm)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The learning curve and the per-update diagnostics of a trainer, as columns.
pub fn history_json(t: &Trainer) -> Json {
    let col = |f: &dyn Fn(&UpdateStats) -> f64| {
        Json::Arr(t.updates.iter().map(|u| Json::Num(f(u))).collect())
    };
    Json::obj([
        ("env_steps", Json::Num(t.env_steps as f64)),
        ("done", Json::Bool(t.done())),
        (
            "solved_at_steps",
            t.solved_at.map_or(Json::Null, |s| Json::Num(s as f64)),
        ),
        ("mean_return_20", Json::Num(t.mean_return_20())),
        ("error", t.error.as_ref().map_or(Json::Null, Json::str)),
        (
            "episodes",
            Json::obj([
                (
                    "env_steps",
                    Json::Arr(
                        t.episodes
                            .iter()
                            .map(|e| Json::Num(e.env_steps as f64))
                            .collect(),
                    ),
                ),
                (
                    "return",
                    Json::Arr(t.episodes.iter().map(|e| Json::Num(e.ret)).collect()),
                ),
            ]),
        ),
        (
            "updates",
            Json::obj([
                ("env_steps", col(&|u| u.env_steps as f64)),
                ("mean_return_20", col(&|u| u.mean_return_20)),
                ("policy_loss", col(&|u| u.policy_loss)),
                ("value_loss", col(&|u| u.value_loss)),
                ("entropy", col(&|u| u.entropy)),
                ("approx_kl", col(&|u| u.approx_kl)),
                ("clip_frac", col(&|u| u.clip_frac)),
                ("explained_var", col(&|u| u.explained_var)),
                ("learning_rate", col(&|u| u.learning_rate)),
            ]),
        ),
    ])
}

/// What `mlplay cartpole-ppo` would print as its data, for the registry: a full run.
pub fn run(params: &Params) -> Json {
    let mut t = Trainer::new(config_from_params(params));
    while t.run_update().is_some() {}
    history_json(&t)
}

/// Parses `a,b,c` into numbers.
fn parse_list(flag: &str, raw: &str) -> Result<Vec<f64>, String> {
    raw.split(',')
        .map(|s| {
            crate::math::parse_f64(s.trim())
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!(
                        "invalid value \"{raw}\" for --{flag}: expected comma-separated numbers"
                    )
                })
        })
        .collect()
}

/// `--key value` or `--key=value` pairs, in order.
fn flags(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        let Some(key) = flag.strip_prefix("--") else {
            return Err(format!("expected --key value, got {flag:?}"));
        };
        match key.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => match rest.next() {
                Some(v) => out.push((key.to_string(), v.clone())),
                None => return Err(format!("--{key} needs a value")),
            },
        }
    }
    Ok(out)
}

/// Keys of the table that `cartpole-trace` accepts besides its own flags.
const TRACE_KEYS: &[&str] = &[
    "seed",
    "gravity",
    "masscart",
    "masspole",
    "length",
    "force",
    "integrator",
];

/// `mlplay cartpole-trace`: the JSON line it prints, or an error naming the bad flag.
pub fn cli_trace(args: &[String]) -> Result<String, String> {
    let mut params = Params::defaults(&SPEC);
    let mut actions: Option<Vec<usize>> = None;
    let mut initial = None;
    for (k, v) in flags(args)? {
        match k.as_str() {
            "actions" => {
                let list = v
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| match s.trim() {
                        "0" => Ok(0),
                        "1" => Ok(1),
                        _ => Err(format!(
                            "invalid value \"{v}\" for --actions: expected comma-separated 0 (push left) or 1 (push right)"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                actions = Some(list);
            }
            "initial-state" => {
                let s = parse_list("initial-state", &v)?;
                if s.len() != 4 {
                    return Err(format!(
                        "invalid value \"{v}\" for --initial-state: expected 4 numbers x,x_dot,theta,theta_dot"
                    ));
                }
                initial = Some([s[0], s[1], s[2], s[3]]);
            }
            key if TRACE_KEYS.contains(&key) => params.set_strict(key, &v)?,
            key => {
                return Err(format!(
                    "unknown parameter --{key} for cartpole-trace (allowed: --actions, --initial-state, {})",
                    TRACE_KEYS.iter().map(|k| format!("--{k}")).collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }
    let actions = actions.ok_or("cartpole-trace needs --actions, e.g. --actions 0,1,1,0")?;
    let physics = config_from_params(&params).physics;
    let trace = crate::cartpole::trace(&physics, params.get("seed") as u64, initial, &actions);
    Ok(trace.to_json().to_string())
}

/// `mlplay cartpole-ppo`: validates the flags (the preset first, then every `--key value`
/// over it) and returns the parameters, or an error naming the bad flag and its range.
pub fn cli_ppo_params(args: &[String]) -> Result<Params, String> {
    let pairs = flags(args)?;
    let mut params = Params::defaults(&SPEC);
    if let Some((_, name)) = pairs.iter().rev().find(|(k, _)| k == "preset") {
        params.set_strict("preset", name)?;
        let name = params.choice("preset");
        apply_preset(&mut params, name);
    }
    for (k, v) in &pairs {
        match k.as_str() {
            "preset" => {}
            "total-steps" => params
                .set_strict("budget", v)
                .map_err(|e| e.replace("--budget", "--total-steps"))?,
            key => params.set_strict(key, v)?,
        }
    }
    Ok(params)
}

/// The last line of `mlplay cartpole-ppo`.
pub fn done_json(t: &Trainer, wall_ms: f64) -> Json {
    Json::obj([
        ("done", Json::Bool(true)),
        (
            "solved_at_steps",
            t.solved_at.map_or(Json::Null, |s| Json::Num(s as f64)),
        ),
        ("env_steps", Json::Num(t.env_steps as f64)),
        ("episodes", Json::Num(t.episodes.len() as f64)),
        ("mean_return_20", Json::Num(t.mean_return_20())),
        ("error", t.error.as_ref().map_or(Json::Null, Json::str)),
        ("wall_ms", Json::Num(wall_ms)),
    ])
}

/// `mlplay cartpole-ppo`: one JSON line per update, then the `done` line, written to `out`.
/// (Native only in practice: `std::time::Instant` has no clock in wasm32-unknown-unknown.)
pub fn cli_ppo(args: &[String], out: &mut dyn std::io::Write) -> Result<(), String> {
    let params = cli_ppo_params(args)?;
    let start = std::time::Instant::now();
    let mut t = Trainer::new(config_from_params(&params));
    let ms = |start: &std::time::Instant| start.elapsed().as_secs_f64() * 1e3;
    while let Some(stats) = t.run_update() {
        let mut line = update_json(&stats);
        line.push(("wall_ms".into(), Json::Num(ms(&start))));
        writeln!(out, "{}", Json::Obj(line)).map_err(|e| e.to_string())?;
    }
    writeln!(out, "{}", done_json(&t, ms(&start))).map_err(|e| e.to_string())?;
    Ok(())
}

/// The `format` field of saved weights.
pub const WEIGHTS_FORMAT: &str = "mlplay-cartpole-ppo-weights/1";

/// The policy and value networks as JSON (the widget's weight export): every network's
/// layer sizes and flat parameters (per layer W as (in, out) row-major, then b).
pub fn weights_json(t: &Trainer) -> Json {
    let names: &[&str] = match t.nets {
        Nets::Separate { .. } => &["actor", "critic"],
        Nets::Shared { .. } => &["trunk", "policy_head", "value_head"],
    };
    Json::obj([
        ("format", Json::str(WEIGHTS_FORMAT)),
        (
            "layout",
            Json::str("per layer: W (in, out) row-major, then b (out); tanh after every layer but a head's last"),
        ),
        (
            "network",
            Json::str(if t.config.shared { "shared" } else { "separate" }),
        ),
        ("hidden", Json::Num(t.nets.hidden() as f64)),
        ("seed", Json::Num(t.config.seed as f64)),
        ("env_steps", Json::Num(t.env_steps as f64)),
        ("mean_return_20", Json::Num(t.mean_return_20())),
        (
            "nets",
            Json::Arr(
                t.nets
                    .mlps()
                    .iter()
                    .zip(names)
                    .map(|(m, name)| {
                        Json::obj([
                            ("name", Json::str(*name)),
                            (
                                "sizes",
                                Json::Arr(m.sizes.iter().map(|&s| Json::Num(s as f64)).collect()),
                            ),
                            ("tanh_last", Json::Bool(m.tanh_last)),
                            ("params", Json::nums(&m.params)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// Reads weights saved by [`weights_json`]: the networks, and whether they are shared.
/// Refuses anything else with a reason a person can act on.
pub fn parse_weights(text: &str) -> Result<(Nets, bool), String> {
    let v = Json::parse(text).map_err(|e| format!("Not a weights file: {e}"))?;
    if v.get("format").and_then(Json::as_str) != Some(WEIGHTS_FORMAT) {
        return Err(format!(
            "Not a weights file of this widget (expected \"format\": \"{WEIGHTS_FORMAT}\")"
        ));
    }
    let shared = match v.get("network").and_then(Json::as_str) {
        Some("separate") => false,
        Some("shared") => true,
        _ => return Err("\"network\" must be \"separate\" or \"shared\"".into()),
    };
    let spec = SPEC.param("hidden").expect("hidden");
    let hidden = v
        .get("hidden")
        .and_then(Json::as_f64)
        .filter(|h| {
            h.fract() == 0.0
                && *h >= spec.min
                && *h <= spec.max
                && (h - spec.min) % spec.step == 0.0
        })
        .ok_or_else(|| {
            format!(
                "\"hidden\" must be a width from {} to {} in steps of {}",
                spec.min, spec.max, spec.step
            )
        })? as usize;
    // The shapes these networks must have: the same constructor, any seed.
    let mut nets = Nets::new(hidden, shared, &mut crate::rng::Rng::new(0));
    let saved = v
        .get("nets")
        .and_then(Json::as_array)
        .ok_or("\"nets\" must be a list of networks")?;
    let mut mlps = nets.mlps_mut();
    if saved.len() != mlps.len() {
        return Err(format!(
            "a {} network has {} parts, the file has {}",
            if shared { "shared" } else { "separate" },
            mlps.len(),
            saved.len()
        ));
    }
    for (i, (m, s)) in mlps.iter_mut().zip(saved).enumerate() {
        let sizes: Option<Vec<usize>> = s
            .get("sizes")
            .and_then(Json::as_array)
            .map(|a| a.iter().map(|x| x.as_f64().map(|x| x as usize)).collect())
            .and_then(|v: Option<Vec<usize>>| v);
        if sizes.as_deref() != Some(m.sizes.as_slice()) {
            return Err(format!(
                "network {i} should have layer sizes {:?} for hidden width {hidden}",
                m.sizes
            ));
        }
        let params = s
            .get("params")
            .and_then(Json::as_array)
            .ok_or_else(|| format!("network {i} has no \"params\" list"))?;
        if params.len() != m.params.len() {
            return Err(format!(
                "network {i} should have {} parameters, the file has {}",
                m.params.len(),
                params.len()
            ));
        }
        for (dst, src) in m.params.iter_mut().zip(params) {
            *dst = src.as_f64().ok_or_else(|| {
                format!("network {i} has a parameter that is not a finite number")
            })?;
        }
    }
    Ok((nets, shared))
}
