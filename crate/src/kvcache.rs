//! The KV cache: what a decoder keeps per token so that generating token t+1 does not
//! recompute the keys and values of tokens 1..t, and how much memory that costs.
//!
//! ```text
//! bytes = 2 (K and V) x n_layers x n_kv_heads x head_dim x seq_len x batch x bytes_per_element
//! ```
//!
//! Grouped-query attention (Ainslie et al. 2023) shares each K/V head among
//! n_heads / n_kv_heads query heads, dividing the cache by that factor: multi-head attention
//! keeps n_kv_heads = n_heads, multi-query attention (Shazeer 2019) keeps one. Presets carry the
//! published configs (`config.json` of each model). `<ml-kv-cache>` plots the cache against
//! context length and across models; `mlplay kv-cache` prints the bytes.

use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};

/// The shape of a model as far as its KV cache is concerned (from its published config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// CLI and menu name, e.g. `llama-3-70b`.
    pub name: &'static str,
    /// As people write it, e.g. `Llama-3-70B`.
    pub label: &'static str,
    /// `num_hidden_layers`.
    pub n_layers: usize,
    /// `num_attention_heads`.
    pub n_heads: usize,
    /// `num_key_value_heads` (equal to n_heads for MHA).
    pub n_kv_heads: usize,
    /// `hidden_size / num_attention_heads` (or `head_dim` where the config gives it).
    pub head_dim: usize,
    /// Parameters, for the weights beside the cache (bf16).
    pub params: f64,
}

/// Presets, in menu order.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "llama-3-8b",
        label: "Llama-3-8B",
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        params: 8.03e9,
    },
    Preset {
        name: "llama-3-70b",
        label: "Llama-3-70B",
        n_layers: 80,
        n_heads: 64,
        n_kv_heads: 8,
        head_dim: 128,
        params: 70.6e9,
    },
    Preset {
        name: "mistral-7b",
        label: "Mistral-7B",
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        params: 7.25e9,
    },
    Preset {
        name: "qwen2.5-7b",
        label: "Qwen2.5-7B",
        n_layers: 28,
        n_heads: 28,
        n_kv_heads: 4,
        head_dim: 128,
        params: 7.62e9,
    },
    Preset {
        name: "qwen2.5-72b",
        label: "Qwen2.5-72B",
        n_layers: 80,
        n_heads: 64,
        n_kv_heads: 8,
        head_dim: 128,
        params: 72.7e9,
    },
    Preset {
        name: "llama-2-7b",
        label: "Llama-2-7B (MHA)",
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 32,
        head_dim: 128,
        params: 6.74e9,
    },
    Preset {
        name: "falcon-7b",
        label: "Falcon-7B (MQA)",
        n_layers: 32,
        n_heads: 71,
        n_kv_heads: 1,
        head_dim: 64,
        params: 7.22e9,
    },
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// Element types of the cache: name and bytes.
pub const DTYPES: &[(&str, usize)] = &[("bf16", 2), ("fp16", 2), ("fp32", 4), ("int8", 1)];

/// GPU memory sizes offered for "how many fit", GiB, with a card of that size.
pub const GPUS: &[(&str, f64)] = &[
    ("RTX 4090", 24.0),
    ("A100 40GB", 40.0),
    ("L40S", 48.0),
    ("H100", 80.0),
    ("H200", 140.0),
];

const GIB: f64 = (1u64 << 30) as f64;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "kv-cache",
    title: "How big is the KV cache?",
    summary: "Keys and values of every past token, in every layer: memory per token and per context, and how grouped-query attention shrinks it.",
    trainer: false,
    params: &[
        ParamSpec::choice(
            "preset",
            "Model",
            "model",
            "A published model config: layers, query heads, K/V heads, head width.",
            1,
            &[
                "llama-3-8b",
                "llama-3-70b",
                "mistral-7b",
                "qwen2.5-7b",
                "qwen2.5-72b",
                "llama-2-7b",
                "falcon-7b",
            ],
        ),
        ParamSpec::number(
            "context",
            "Context length",
            "N",
            "Tokens kept in the cache per sequence.",
            32768.0,
            256.0,
            131072.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "batch",
            "Batch",
            "B",
            "Sequences served at once, each with its own cache.",
            1.0,
            1.0,
            256.0,
            1.0,
        ),
        ParamSpec::choice(
            "dtype",
            "Cache type",
            "bytes",
            "Element type of the cached keys and values.",
            0,
            &["bf16", "fp16", "fp32", "int8"],
        ),
        ParamSpec::number(
            "kv-heads",
            "K/V heads (0: the model's)",
            "n_kv",
            "K/V heads per layer: the query-head count is MHA, 1 is MQA, 0 keeps the model's own; it must divide the query heads (the nearest divisor below is used).",
            0.0,
            0.0,
            128.0,
            1.0,
        ),
        ParamSpec::choice(
            "gpu",
            "GPU memory, GiB",
            "GPU",
            "Memory of one GPU (RTX 4090, A100 40GB, L40S, H100, H200), for how many caches fit.",
            3,
            &["24", "40", "48", "80", "140"],
        ),
    ],
};

/// The typed configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub preset: &'static Preset,
    pub context: usize,
    pub batch: usize,
    pub dtype: &'static str,
    pub bytes_per_element: usize,
    /// K/V heads asked for; 0 = the preset's.
    pub kv_heads_requested: usize,
    pub gpu_gib: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        let dtype = p.choice("dtype");
        Config {
            preset: preset(p.choice("preset")).expect("menu names are presets"),
            context: p.get("context") as usize,
            batch: p.get("batch") as usize,
            dtype,
            bytes_per_element: DTYPES.iter().find(|d| d.0 == dtype).map_or(2, |d| d.1),
            kv_heads_requested: p.get("kv-heads") as usize,
            gpu_gib: GPUS[p.get("gpu") as usize].1,
        }
    }

    /// The K/V heads in force and, when the request could not be used as it is, why.
    pub fn kv_heads(&self) -> (usize, Option<String>) {
        let h = self.preset.n_heads;
        let want = self.kv_heads_requested;
        if want == 0 {
            return (self.preset.n_kv_heads, None);
        }
        let g = (1..=want.min(h)).rev().find(|g| h % g == 0).unwrap_or(1);
        let note = (g != want).then(|| {
            format!(
                "{want} K/V heads do not divide {h} query heads; using {g}, the nearest divisor below"
            )
        });
        (g, note)
    }
}

/// Bytes of cache per token of one sequence: 2 n_layers n_kv_heads head_dim bytes_per_element.
pub fn bytes_per_token(p: &Preset, n_kv_heads: usize, bytes_per_element: usize) -> u64 {
    2 * (p.n_layers * n_kv_heads * p.head_dim * bytes_per_element) as u64
}

/// Bytes of the whole cache.
pub fn cache_bytes(
    p: &Preset,
    n_kv_heads: usize,
    bytes_per_element: usize,
    context: usize,
    batch: usize,
) -> u64 {
    bytes_per_token(p, n_kv_heads, bytes_per_element) * context as u64 * batch as u64
}

/// Caches of `per_sequence` bytes that fit in `free` bytes.
pub fn caches_that_fit(per_sequence: u64, free: f64) -> u64 {
    if free <= 0.0 || per_sequence == 0 {
        0
    } else {
        (free / per_sequence as f64).floor() as u64
    }
}

/// bf16 weights, 2 bytes per parameter.
pub fn weight_bytes(p: &Preset) -> f64 {
    2.0 * p.params
}

/// One bar of the comparison: a model's cache at the current context, batch and type.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: &'static str,
    pub n_kv_heads: usize,
    pub bytes: u64,
    pub selected: bool,
}

/// One curve of cache size against context length.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub n_kv_heads: usize,
    /// (context, bytes) at the plotted contexts.
    pub points: Vec<(f64, f64)>,
}

/// Everything `<ml-kv-cache>` shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub config: Config,
    pub n_kv_heads: usize,
    pub note: Option<String>,
    pub bytes_per_token: u64,
    pub bytes: u64,
    pub per_sequence: u64,
    pub weight_bytes: f64,
    /// Sequences of this context whose caches fit on an empty GPU of the chosen size.
    pub sequences_fit: u64,
    /// The same beside the model's bf16 weights.
    pub sequences_fit_with_weights: u64,
    pub bars: Vec<Bar>,
    pub curves: Vec<Curve>,
}

/// Contexts plotted: powers of two from 256 to 131072.
pub fn plotted_contexts() -> Vec<f64> {
    (8..=17).map(|e| f64::from(1u32 << e)).collect()
}

pub fn compute(c: &Config) -> Data {
    let (g, note) = c.kv_heads();
    let p = c.preset;
    let bpt = bytes_per_token(p, g, c.bytes_per_element);
    let per_sequence = bpt * c.context as u64;
    let bars = PRESETS
        .iter()
        .map(|q| {
            // Other models at their own K/V heads; the selected one as configured.
            let heads = if q.name == p.name { g } else { q.n_kv_heads };
            Bar {
                label: q.label,
                n_kv_heads: heads,
                bytes: cache_bytes(q, heads, c.bytes_per_element, c.context, c.batch),
                selected: q.name == p.name,
            }
        })
        .collect();
    // The selected model as MHA, as published, as configured, and as MQA (duplicates dropped).
    let mut variants: Vec<(String, usize)> = vec![
        (format!("MHA ({} K/V heads)", p.n_heads), p.n_heads),
        (format!("as published ({})", p.n_kv_heads), p.n_kv_heads),
    ];
    if g != p.n_kv_heads && g != p.n_heads && g != 1 {
        variants.push((format!("chosen ({g})"), g));
    }
    variants.push(("MQA (1)".to_string(), 1));
    variants.dedup_by_key(|v| v.1);
    let mut seen = Vec::new();
    variants.retain(|v| {
        let fresh = !seen.contains(&v.1);
        seen.push(v.1);
        fresh
    });
    let curves = variants
        .into_iter()
        .map(|(label, heads)| Curve {
            label,
            n_kv_heads: heads,
            points: plotted_contexts()
                .into_iter()
                .map(|n| {
                    let b = cache_bytes(p, heads, c.bytes_per_element, n as usize, c.batch);
                    (n, b as f64)
                })
                .collect(),
        })
        .collect();
    Data {
        n_kv_heads: g,
        note,
        bytes_per_token: bpt,
        bytes: per_sequence * c.batch as u64,
        per_sequence,
        weight_bytes: weight_bytes(p),
        sequences_fit: caches_that_fit(per_sequence, c.gpu_gib * GIB),
        sequences_fit_with_weights: caches_that_fit(
            per_sequence,
            c.gpu_gib * GIB - weight_bytes(p),
        ),
        bars,
        curves,
        config: c.clone(),
    }
}

/// 10 GiB, 320 KiB, 1.5 TiB: binary units, three significant digits.
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    let digits = if v >= 100.0 || v.fract() == 0.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {}", units[u])
}

impl Data {
    pub fn to_json(&self) -> Json {
        let p = self.config.preset;
        Json::obj([
            ("bytes_per_token", Json::Num(self.bytes_per_token as f64)),
            ("bytes", Json::Num(self.bytes as f64)),
            ("bytes_human", Json::str(human_bytes(self.bytes as f64))),
            ("per_sequence_bytes", Json::Num(self.per_sequence as f64)),
            ("preset", Json::str(p.name)),
            ("n_layers", Json::Num(p.n_layers as f64)),
            ("n_heads", Json::Num(p.n_heads as f64)),
            ("n_kv_heads", Json::Num(self.n_kv_heads as f64)),
            ("head_dim", Json::Num(p.head_dim as f64)),
            ("dtype", Json::str(self.config.dtype)),
            (
                "bytes_per_element",
                Json::Num(self.config.bytes_per_element as f64),
            ),
            ("context", Json::Num(self.config.context as f64)),
            ("batch", Json::Num(self.config.batch as f64)),
            ("note", self.note.as_ref().map_or(Json::Null, Json::str)),
            ("gpu_gib", Json::Num(self.config.gpu_gib)),
            ("weight_bytes", Json::Num(self.weight_bytes)),
            ("sequences_fit", Json::Num(self.sequences_fit as f64)),
            (
                "sequences_fit_with_weights",
                Json::Num(self.sequences_fit_with_weights as f64),
            ),
            ("bars", self.panel_json(0)),
            ("curves", self.panel_json(1)),
        ])
    }

    pub fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 => Json::Arr(
                self.bars
                    .iter()
                    .map(|b| {
                        Json::obj([
                            ("model", Json::str(b.label)),
                            ("n_kv_heads", Json::Num(b.n_kv_heads as f64)),
                            ("bytes", Json::Num(b.bytes as f64)),
                            ("selected", Json::Bool(b.selected)),
                        ])
                    })
                    .collect(),
            ),
            _ => Json::Arr(
                self.curves
                    .iter()
                    .map(|c| {
                        Json::obj([
                            ("label", Json::str(&c.label)),
                            ("n_kv_heads", Json::Num(c.n_kv_heads as f64)),
                            (
                                "context",
                                Json::Arr(c.points.iter().map(|p| Json::Num(p.0)).collect()),
                            ),
                            (
                                "bytes",
                                Json::Arr(c.points.iter().map(|p| Json::Num(p.1)).collect()),
                            ),
                        ])
                    })
                    .collect(),
            ),
        }
    }

    pub fn panel_csv(&self, panel: usize) -> String {
        let mut out = String::new();
        match panel {
            0 => {
                out.push_str("model,n_kv_heads,bytes,selected\n");
                for b in &self.bars {
                    out.push_str(&format!(
                        "{},{},{},{}\n",
                        b.label, b.n_kv_heads, b.bytes, b.selected
                    ));
                }
            }
            _ => {
                out.push_str("context");
                for c in &self.curves {
                    out.push_str(&format!(",bytes {}", c.label.replace(',', ";")));
                }
                out.push('\n');
                for (i, n) in plotted_contexts().iter().enumerate() {
                    out.push_str(&n.to_string());
                    for c in &self.curves {
                        out.push_str(&format!(",{}", c.points[i].1));
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// `mlplay kv-cache --preset NAME --context N --batch B --dtype T [--kv-heads G] [--gpu M] --json`:
/// the widget's parameters, strictly checked, and the cache's numbers at the top level.
pub fn cli(args: &[String]) -> Result<Json, String> {
    let mut params = Params::defaults(&SPEC);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --key value, got {flag:?}"))?;
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (
                key,
                rest.next()
                    .ok_or_else(|| format!("--{key} needs a value"))?
                    .clone(),
            ),
        };
        params.set_strict(key, &value)?;
    }
    Ok(compute(&Config::from_params(&params)).to_json())
}
