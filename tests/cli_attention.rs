//! `mlplay attention` and `mlplay kv-cache`: JSON out, `.npy` dumps that hold exactly the
//! seeded inputs, the reference numbers of REFERENCE.md, and exit code 2 on bad flags.

use std::path::Path;
use std::process::Command;

use mlplay::attention::{attention, Dims, Options, Qkv};
use serde_json::Value;

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join("mlplay-xdg-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .env("XDG_RUNTIME_DIR", &dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = mlplay(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Read a `.npy` written by `write_npy`: check the header by hand, return shape and data.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': ("));
    assert!(header.ends_with('\n'));
    let shape_txt = &header[header.find("'shape': (").unwrap() + 10..header.find(')').unwrap()];
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

#[test]
fn cpu_backend_runs_both_kernels_and_dumps_the_seeded_inputs() {
    let dir = std::env::temp_dir().join(format!("mlplay-dump-{}", std::process::id()));
    for kernel in ["naive", "flash"] {
        let v = json(&[
            "attention",
            "--seq-len",
            "70",
            "--head-dim",
            "12",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--causal",
            "true",
            "--kernel",
            kernel,
            "--backend",
            "cpu",
            "--seed",
            "5",
            "--dump",
            dir.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(v["backend"], "cpu");
        assert_eq!(v["kernel"], kernel);
        assert_eq!(v["kv_heads"], 2);
        assert!(v["time_ms"].as_f64().unwrap() > 0.0);
        assert!(v["max_abs_diff"].as_f64().unwrap() <= 1e-4);
    }
    let dims = Dims {
        n_heads: 4,
        n_kv_heads: 2,
        seq_len: 70,
        head_dim: 12,
    };
    let qkv = Qkv::random(dims, 5);
    let (shape, q) = read_npy(&dir.join("q.npy"));
    assert_eq!(shape, vec![4, 70, 12]);
    assert_eq!(q, qkv.q.iter().copied().collect::<Vec<_>>());
    let (shape, k) = read_npy(&dir.join("k.npy"));
    assert_eq!(shape, vec![2, 70, 12]);
    assert_eq!(k, qkv.k.iter().copied().collect::<Vec<_>>());
    let (shape, v) = read_npy(&dir.join("v.npy"));
    assert_eq!(shape, vec![2, 70, 12]);
    assert_eq!(v, qkv.v.iter().copied().collect::<Vec<_>>());
    let (shape, o) = read_npy(&dir.join("o.npy"));
    assert_eq!(shape, vec![4, 70, 12]);
    let want = attention(
        &qkv,
        Options {
            causal: true,
            temperature: 1.0,
        },
    );
    let err = o
        .iter()
        .zip(want.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-4, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "gpu")]
#[test]
fn gpu_backend_agrees_with_the_cpu_and_names_the_adapter() {
    for kernel in ["naive", "flash"] {
        let v = json(&[
            "attention",
            "--seq-len",
            "130",
            "--head-dim",
            "64",
            "--heads",
            "8",
            "--kv-heads",
            "1",
            "--causal",
            "false",
            "--kernel",
            kernel,
            "--backend",
            "gpu",
            "--seed",
            "1",
        ]);
        assert_eq!(v["backend"], "gpu");
        let adapter = v["adapter"].as_str().unwrap();
        assert!(
            !adapter.is_empty() && adapter != "CPU (ndarray)",
            "{adapter}"
        );
        assert!(v["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{v}");
        assert!(v["timing"] == "timestamp-query" || v["timing"] == "wall-clock");
        if kernel == "flash" {
            assert!(v["tiles"]["block_rows"].as_f64().unwrap() >= 16.0);
        }
    }
}

#[cfg(not(feature = "gpu"))]
#[test]
fn gpu_backend_without_the_feature_says_how_to_get_it() {
    let (code, _, err) = mlplay(&["attention", "--backend", "gpu"]);
    assert_eq!(code, 2);
    assert!(err.contains("--features gpu"), "{err}");
}

#[test]
fn bad_attention_flags_exit_2_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["attention", "--heads", "8", "--kv-heads", "3"],
            "must divide",
        ),
        (vec!["attention", "--kernel", "fast"], "--kernel"),
        (vec!["attention", "--causal", "yes"], "--causal"),
        (vec!["attention", "--seq-len", "0"], "--seq-len"),
        (vec!["attention", "--bogus", "1"], "--bogus"),
        (vec!["attention", "--seed"], "needs a value"),
    ] {
        let (code, out, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn kv_cache_llama_3_70b_is_320_kib_per_token_and_10_gib_at_32k() {
    // REFERENCE.md: 2 x 80 layers x 8 KV heads x 128 x 2 bytes = 327680 B = 320 KiB per token;
    // x 32768 tokens = 10 GiB; as MHA (64 KV heads) 80 GiB, as MQA 1.25 GiB.
    let v = json(&[
        "kv-cache",
        "--preset",
        "llama-3-70b",
        "--context",
        "32768",
        "--batch",
        "1",
        "--dtype",
        "bf16",
        "--json",
    ]);
    assert_eq!(v["bytes_per_token"], 327_680);
    assert_eq!(v["bytes"].as_f64().unwrap(), 10.0 * (1u64 << 30) as f64);
    let mha = json(&[
        "kv-cache",
        "--preset",
        "llama-3-70b",
        "--context",
        "32768",
        "--kv-heads",
        "64",
    ]);
    assert_eq!(mha["bytes"].as_f64().unwrap(), 80.0 * (1u64 << 30) as f64);
    let mqa = json(&[
        "kv-cache",
        "--preset",
        "llama-3-70b",
        "--context",
        "32768",
        "--kv-heads",
        "1",
    ]);
    assert_eq!(mqa["bytes"].as_f64().unwrap(), 1.25 * (1u64 << 30) as f64);
}

#[test]
fn kv_cache_other_presets_dtypes_and_batches() {
    // Llama-3-8B: 2 x 32 x 8 x 128 x 2 = 131072 B per token; 8192 tokens x 4 sequences = 4 GiB.
    let v = json(&[
        "kv-cache",
        "--preset",
        "llama-3-8b",
        "--context",
        "8192",
        "--batch",
        "4",
        "--dtype",
        "bf16",
    ]);
    assert_eq!(v["bytes_per_token"], 131_072);
    assert_eq!(v["bytes"].as_f64().unwrap(), 4.0 * (1u64 << 30) as f64);
    // Qwen2.5-7B: 2 x 28 x 4 x 128 x 4 (fp32) = 114688 B per token.
    let v = json(&["kv-cache", "--preset", "qwen2.5-7b", "--dtype", "fp32"]);
    assert_eq!(v["bytes_per_token"], 114_688);
    // Mistral-7B in int8: 2 x 32 x 8 x 128 x 1 = 65536.
    let v = json(&["kv-cache", "--preset", "mistral-7b", "--dtype", "int8"]);
    assert_eq!(v["bytes_per_token"], 65_536);
    // A K/V head count that does not divide the query heads: the nearest divisor below.
    let v = json(&["kv-cache", "--preset", "qwen2.5-7b", "--kv-heads", "5"]);
    assert_eq!(v["n_kv_heads"], 4);
    assert!(v["note"].as_str().unwrap().contains("do not divide"));
}

#[test]
fn kv_cache_bad_flags_exit_2() {
    for args in [
        vec!["kv-cache", "--preset", "gpt-5"],
        vec!["kv-cache", "--dtype", "fp8"],
        vec!["kv-cache", "--context", "1e9"],
        vec!["kv-cache", "--batch", "0"],
    ] {
        let (code, _, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}
