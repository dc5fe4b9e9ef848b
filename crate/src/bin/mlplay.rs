//! `mlplay`: every widget's core, headless, with JSON on stdout.
//!
//! ```text
//! mlplay list --json                 every widget with its parameter table
//! mlplay <widget> [--key value]...   the widget's plotted data, same keys as its attributes
//! mlplay rope ... --q v1,... --k v1,... rotated vectors and their score (rope::cli)
//! mlplay rope ... --matrix             RoPE's score matrix (rope::cli)
//! mlplay attention --seq-len N --head-dim D --heads H --kv-heads G --causal true|false
//!                  --kernel naive|flash --backend cpu|gpu --seed S [--dump DIR] --json
//! mlplay kv-cache --preset NAME --context N --batch B --dtype bf16|fp16|fp32|int8 [--kv-heads G] --json
//! ```
//! Bad keys or values exit with code 2 and a message naming the key and its allowed range.

use std::process::ExitCode;

use mlplay::params::Params;
use mlplay::widgets;

const USAGE: &str = "usage: mlplay list [--json]
       mlplay <widget> [--key value]... [--json]
       mlplay rope [--key value]... --q v1,v2,... --k v1,v2,... | --matrix [--json]
       mlplay attention --seq-len N --head-dim D --heads H --kv-heads G --causal true|false
                        --kernel naive|flash --backend cpu|gpu --seed S [--dump DIR] --json
       mlplay attention --widget [--key value]... [--json]   (<ml-attention>'s sentence data)
       mlplay kv-cache --preset NAME --context N --batch B --dtype bf16|fp16|fp32|int8 [--kv-heads G] --json
";

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
    // Widgets whose CLI takes flags beyond their parameter table.
    match command.as_str() {
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
    let out = mlplay::json::Json::obj([
        ("widget", mlplay::json::Json::str(spec.name)),
        ("params", params.to_json()),
        ("data", widgets::run(&params)),
    ]);
    println!("{out}");
    ExitCode::SUCCESS
}
