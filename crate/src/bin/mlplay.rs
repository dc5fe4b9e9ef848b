//! `mlplay`: every widget's core, headless, with JSON on stdout.
//!
//! ```text
//! mlplay list --json                 every widget with its parameter table
//! mlplay <widget> [--key value]...   the widget's plotted data, same keys as its attributes
//! mlplay cartpole-trace --seed S --actions 0,1,1,0 [--initial-state x,x_dot,theta,theta_dot]
//! mlplay cartpole-ppo --seed S --total-steps N [--preset NAME] [--key value]...
//!                                    one JSON line per PPO update, then a "done" line
//! mlplay rope ... --q v1,... --k v1,... rotated vectors and their score (rope::cli)
//! mlplay rope ... --matrix             RoPE's score matrix (rope::cli)
//! mlplay scaling --compute C [--constants hoffmann|epoch]   compute-optimal N, D, loss
//! mlplay scaling-fit --csv FILE [--boot R] [--seed S]        fit L(N, D) to runs, with intervals
//! mlplay dpo|grpo [--key value]...   trainers: one JSON line per logged step
//! mlplay attention --seq-len N --head-dim D --heads H --kv-heads G --causal true|false
//!                  --kernel naive|flash --backend cpu|gpu --seed S [--dump DIR] --json
//! mlplay transformer --task NAME --layers L --heads H --d-model D --pos P --steps K --seed S --backend cpu --json
//! mlplay kv-cache --preset NAME --context N --batch B --dtype bf16|fp16|fp32|int8 [--kv-heads G] --json
//! mlplay diffusion-schedule|diffusion-train|diffusion-sample ...   (diffusion::cli)
//! ```
//! Bad keys or values exit with code 2 and a message naming the key and its allowed range.

use std::process::ExitCode;

use mlplay::params::Params;
use mlplay::widgets;

const USAGE: &str =
    "usage: mlplay list [--json]\n       mlplay <widget> [--key value]... [--json]\n       \
     mlplay cartpole-trace --seed S --actions 0,1,... [--initial-state x,x_dot,theta,theta_dot] [--json]\n       \
     mlplay cartpole-ppo --seed S --total-steps N [--preset NAME] [--key value]... [--json]\n       \
     mlplay rope [--key value]... --q v1,v2,... --k v1,v2,... | --matrix [--json]\n       \
     mlplay scaling --compute C [--constants hoffmann|epoch] [--json]\n       \
     mlplay scaling-fit --csv FILE [--boot R] [--seed S] [--json]\n       \
     mlplay attention --seq-len N --head-dim D --heads H --kv-heads G --causal true|false\n       \
                      --kernel naive|flash --backend cpu|gpu --seed S [--dump DIR] --json\n       \
     mlplay attention --widget [--key value]... [--json]   (<ml-attention>'s sentence data)\n       \
     mlplay kv-cache --preset NAME --context N --batch B --dtype bf16|fp16|fp32|int8 [--kv-heads G] --json\n       \
     mlplay diffusion-schedule --schedule linear|cosine --steps T --json\n       \
     mlplay diffusion-train --dataset NAME --method ddpm|flow --steps N --seed S --backend cpu|gpu --out FILE --json\n       \
     mlplay diffusion-sample --weights FILE --sampler ddpm|ddim|euler|midpoint --steps K --n COUNT --seed S --backend cpu|gpu --json\n       \
     mlplay transformer --task copy|reverse|induction|brackets|text --layers L --heads H --d-model D\n       \
       --pos learned|sinusoidal|rope --steps K --seed S --backend cpu|gpu [--ctx N] [--batch B] [--lr X] [--attention] --json\n";

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("mlplay: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage_error("no command given");
    };
    if command == "-h" || command == "--help" || command == "help" {
        print!("{USAGE}\nwidgets: ");
        println!(
            "{}",
            widgets::ALL
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::SUCCESS;
    }
    if command == "list" {
        if let Some(extra) = args[1..].iter().find(|a| *a != "--json") {
            return usage_error(&format!("unexpected argument {extra:?} for list"));
        }
        println!("{}", widgets::list_json());
        return ExitCode::SUCCESS;
    }
    // Commands whose arguments are not a widget's parameter table.
    if let Some(run) = mlplay::scaling::cli::command(command) {
        return match run(&args[1..]) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(msg) => usage_error(&msg),
        };
    }
    if let Some(run) = mlplay::diffusion::cli::command(command) {
        return match run(&args[1..]) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err((2, msg)) => usage_error(&msg),
            Err((code, msg)) => {
                eprintln!("mlplay {command}: {msg}");
                ExitCode::from(code)
            }
        };
    }
    // Commands whose arguments the parameter table cannot express (lists, CLI-only flags).
    match command.as_str() {
        "cartpole-trace" => {
            return match mlplay::cartpole_ppo::cli_trace(&args[1..]) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(msg) => usage_error(&msg),
            }
        }
        "cartpole-ppo" => {
            let stdout = std::io::stdout();
            return match mlplay::cartpole_ppo::cli_ppo(&args[1..], &mut stdout.lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(msg) => usage_error(&msg),
            };
        }
        "attention" => {
            return match mlplay::attention::cli(&args[1..]) {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err((2, msg)) => usage_error(&msg),
                Err((code, msg)) => {
                    eprintln!("mlplay attention: {msg}");
                    ExitCode::from(code)
                }
            }
        }
        "transformer" => {
            return match mlplay::transformer::cli(&args[1..]) {
                Ok(lines) => {
                    for line in lines {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err((2, msg)) => usage_error(&msg),
                Err((code, msg)) => {
                    eprintln!("mlplay transformer: {msg}");
                    ExitCode::from(code)
                }
            }
        }
        "kv-cache" => {
            return match mlplay::kvcache::cli(&args[1..]) {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(msg) => usage_error(&msg),
            }
        }
        _ => {}
    }
    let Some(spec) = widgets::find(command) else {
        let names: Vec<_> = widgets::ALL.iter().map(|w| w.name).collect();
        return usage_error(&format!(
            "unknown widget {command:?} (widgets: {})",
            names.join(", ")
        ));
    };
    // RoPE's explicit vectors (--q, --k) and --matrix are not slider parameters.
    if spec.name == "rope" {
        match mlplay::rope::cli(&args[1..]) {
            Some(Ok(out)) => {
                println!("{out}");
                return ExitCode::SUCCESS;
            }
            Some(Err(msg)) => return usage_error(&msg),
            None => {}
        }
    }
    let mut params = Params::defaults(spec);
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue; // JSON is the only output format; the flag is accepted for clarity.
        }
        let Some(key) = flag.strip_prefix("--") else {
            return usage_error(&format!("expected --key value, got {flag:?}"));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => match rest.next() {
                Some(v) => (key, v.clone()),
                None => return usage_error(&format!("--{key} needs a value")),
            },
        };
        if let Err(msg) = params.set_strict(key, &value) {
            return usage_error(&msg);
        }
    }
    // Trainers that print one JSON line per logged step instead of one object.
    let stdout = &mut std::io::stdout().lock();
    let streamed = match spec.name {
        "dpo" => Some(mlplay::dpo::cli(&params, stdout)),
        "grpo" => Some(mlplay::grpo::cli(&params, stdout)),
        _ => None,
    };
    if let Some(result) = streamed {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mlplay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let out = mlplay::json::Json::obj([
        ("widget", mlplay::json::Json::str(spec.name)),
        ("params", params.to_json()),
        ("data", widgets::run(&params)),
    ]);
    println!("{out}");
    ExitCode::SUCCESS
}
