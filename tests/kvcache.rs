//! The KV-cache core: REFERENCE.md's Llama-3-70B numbers, the formula for every preset
//! against its published config, GQA's divisor rule, and what fits on a GPU.

use mlplay::kvcache::{
    bytes_per_token, cache_bytes, caches_that_fit, compute, human_bytes, preset, Config, PRESETS,
};
use mlplay::params::Params;

const GIB: u64 = 1 << 30;

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut p = Params::defaults(&mlplay::kvcache::SPEC);
    for (k, v) in pairs {
        p.set_strict(k, v).unwrap();
    }
    Config::from_params(&p)
}

#[test]
fn llama_3_70b_matches_the_reference_sheet() {
    // 2 x 80 x 8 x 128 x 2 bytes = 327680 = 320 KiB per token; 10 GiB at 32768 tokens;
    // 80 GiB as MHA (64 K/V heads), 1.25 GiB as MQA.
    let p = preset("llama-3-70b").unwrap();
    assert_eq!(
        (p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim),
        (80, 64, 8, 128)
    );
    assert_eq!(bytes_per_token(p, 8, 2), 320 * 1024);
    assert_eq!(cache_bytes(p, 8, 2, 32768, 1), 10 * GIB);
    assert_eq!(cache_bytes(p, 64, 2, 32768, 1), 80 * GIB);
    assert_eq!(cache_bytes(p, 1, 2, 32768, 1), 5 * GIB / 4);
    let d = compute(&Config::default());
    assert_eq!(
        d.bytes,
        10 * GIB,
        "the widget's default is the reference case"
    );
    assert_eq!(d.bytes_per_token, 327_680);
}

#[test]
fn presets_carry_their_published_configs() {
    // (num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim) from each
    // model's config.json (head_dim = hidden_size / num_attention_heads).
    let want = [
        ("llama-3-8b", (32, 32, 8, 128)),  // hidden 4096
        ("llama-3-70b", (80, 64, 8, 128)), // hidden 8192
        ("mistral-7b", (32, 32, 8, 128)),  // hidden 4096
        ("qwen2.5-7b", (28, 28, 4, 128)),  // hidden 3584
        ("qwen2.5-72b", (80, 64, 8, 128)), // hidden 8192
        ("llama-2-7b", (32, 32, 32, 128)), // MHA
        ("falcon-7b", (32, 71, 1, 64)),    // MQA, hidden 4544
    ];
    assert_eq!(PRESETS.len(), want.len());
    for (name, (l, h, g, d)) in want {
        let p = preset(name).unwrap();
        assert_eq!(
            (p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim),
            (l, h, g, d),
            "{name}"
        );
        assert_eq!(
            p.n_heads % p.n_kv_heads,
            0,
            "{name}: K/V heads divide query heads"
        );
    }
    // Every menu entry is a preset.
    let menu = mlplay::kvcache::SPEC.param("preset").unwrap().choices;
    assert_eq!(
        menu,
        PRESETS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .as_slice()
    );
}

#[test]
fn cache_scales_linearly_in_every_factor() {
    let p = preset("mistral-7b").unwrap();
    let base = cache_bytes(p, 8, 2, 1000, 3);
    assert_eq!(cache_bytes(p, 8, 2, 2000, 3), 2 * base);
    assert_eq!(cache_bytes(p, 8, 2, 1000, 6), 2 * base);
    assert_eq!(cache_bytes(p, 8, 4, 1000, 3), 2 * base);
    assert_eq!(cache_bytes(p, 4, 2, 1000, 3) * 2, base);
}

#[test]
fn kv_heads_that_do_not_divide_fall_to_the_nearest_divisor_below() {
    let c = config(&[("preset", "qwen2.5-7b"), ("kv-heads", "5")]);
    let (g, note) = c.kv_heads();
    assert_eq!(g, 4); // divisors of 28: 1, 2, 4, 7, 14, 28
    assert!(note.unwrap().contains("5 K/V heads do not divide 28"));
    assert_eq!(
        config(&[("preset", "qwen2.5-7b"), ("kv-heads", "7")]).kv_heads(),
        (7, None)
    );
    assert_eq!(
        config(&[("preset", "qwen2.5-7b"), ("kv-heads", "0")]).kv_heads(),
        (4, None)
    );
    // More than the query heads: MHA at most.
    let (g, note) = config(&[("preset", "llama-3-8b"), ("kv-heads", "100")]).kv_heads();
    assert_eq!(g, 32);
    assert!(note.is_some());
    // Falcon's 71 heads are prime: anything between 1 and 71 becomes 1.
    assert_eq!(
        config(&[("preset", "falcon-7b"), ("kv-heads", "70")])
            .kv_heads()
            .0,
        1
    );
}

#[test]
fn what_fits_on_a_gpu() {
    // Llama-3-8B at 32768 tokens in bf16: 4 GiB per sequence. An empty 80 GiB GPU holds 20;
    // beside 2 x 8.03e9 bytes of weights, floor((80 GiB - 16.06 GB) / 4 GiB) = 16.
    let d = compute(&config(&[("preset", "llama-3-8b"), ("gpu", "80")]));
    assert_eq!(d.per_sequence, 4 * GIB);
    assert_eq!(d.sequences_fit, 20);
    let free = 80.0 * GIB as f64 - 16.06e9;
    assert_eq!(
        d.sequences_fit_with_weights,
        (free / (4 * GIB) as f64).floor() as u64
    );
    assert_eq!(d.sequences_fit_with_weights, 16);
    // 70B's bf16 weights (141 GB) do not fit on an 80 GiB GPU at all.
    let d = compute(&config(&[("preset", "llama-3-70b"), ("gpu", "80")]));
    assert_eq!(d.sequences_fit_with_weights, 0);
    assert_eq!(caches_that_fit(0, 1e9), 0);
    assert_eq!(caches_that_fit(10, -1.0), 0);
}

#[test]
fn bars_and_curves_agree_with_the_formula() {
    let c = config(&[("context", "8192"), ("batch", "2"), ("dtype", "int8")]);
    let d = compute(&c);
    assert_eq!(d.bars.len(), PRESETS.len());
    for (bar, p) in d.bars.iter().zip(PRESETS) {
        assert_eq!(
            bar.bytes,
            cache_bytes(p, p.n_kv_heads, 1, 8192, 2),
            "{}",
            p.name
        );
    }
    assert_eq!(d.bars.iter().filter(|b| b.selected).count(), 1);
    // Curves: MHA (64), published (8), MQA (1), from 256 to 131072 tokens.
    let heads: Vec<usize> = d.curves.iter().map(|c| c.n_kv_heads).collect();
    assert_eq!(heads, vec![64, 8, 1]);
    let p = preset("llama-3-70b").unwrap();
    for cv in &d.curves {
        assert_eq!(cv.points.len(), 10);
        for &(n, b) in &cv.points {
            assert_eq!(b, cache_bytes(p, cv.n_kv_heads, 1, n as usize, 2) as f64);
        }
    }
    // A chosen head count between MQA and MHA adds its own curve.
    let d = compute(&config(&[("kv-heads", "16")]));
    assert_eq!(
        d.curves.iter().map(|c| c.n_kv_heads).collect::<Vec<_>>(),
        vec![64, 8, 16, 1]
    );
}

#[test]
fn human_bytes_in_binary_units() {
    assert_eq!(human_bytes(327_680.0), "320 KiB");
    assert_eq!(human_bytes(10.0 * GIB as f64), "10 GiB");
    assert_eq!(human_bytes(1.25 * GIB as f64), "1.25 GiB");
    assert_eq!(human_bytes(512.0), "512 B");
    assert_eq!(human_bytes(1.5 * 1024f64.powi(4)), "1.50 TiB");
}
