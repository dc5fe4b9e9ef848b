//! Scaled dot-product attention (Vaswani et al. 2017), multi-head with grouped-query
//! attention (Ainslie et al. 2023): the CPU reference every GPU kernel is checked against,
//! and the fallback wherever WebGPU is missing.
//!
//! ```text
//! Attention(Q, K, V) = softmax(Q K^T / (sqrt(d_k) T) + mask) V        mask_ij = -inf for j > i (causal)
//! ```
//!
//! `T` is a temperature (1 in the paper). With `n_heads` query heads and `n_kv_heads` key/value
//! heads, query head `h` reads K/V head `h / (n_heads / n_kv_heads)`: multi-head attention at
//! `n_kv_heads = n_heads`, multi-query attention at 1, grouped-query attention in between.
//! Tensors are `(heads, seq_len, head_dim)`, row-major, f32 as on the GPU.
//!
//! The slow, obvious twin of `gpu::attention` (same three steps: scores, softmax, weighted
//! sum) and of `flash` / `gpu::flash` (the tiled online softmax). `<ml-attention>` draws the
//! weights of [`attention_weights`]; `mlplay attention` compares every backend against
//! [`attention`].

use ndarray::{s, Array2, Array3, ArrayView2, Axis};

use crate::rng::Rng;

/// The shape of one multi-head attention problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    /// Query heads H.
    pub n_heads: usize,
    /// Key/value heads G (divides H): H is MHA, 1 is MQA.
    pub n_kv_heads: usize,
    /// Tokens N.
    pub seq_len: usize,
    /// Width of one head, d_k.
    pub head_dim: usize,
}

impl Dims {
    /// Errors for shapes no kernel accepts: a zero size, or G not dividing H.
    pub fn validate(&self) -> Result<(), String> {
        if self.n_heads == 0 || self.n_kv_heads == 0 || self.seq_len == 0 || self.head_dim == 0 {
            return Err(format!("every size must be at least 1 (got {self:?})"));
        }
        if self.n_heads % self.n_kv_heads != 0 {
            return Err(format!(
                "n_kv_heads = {} must divide n_heads = {}",
                self.n_kv_heads, self.n_heads
            ));
        }
        Ok(())
    }

    /// Query heads per K/V head, H / G.
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// The K/V head that query head `h` reads.
    pub fn kv_head(&self, h: usize) -> usize {
        h / self.group_size()
    }

    /// Floating-point operations of the two matrix products, 4 N^2 d per head (the
    /// convention of the FlashAttention papers; the mask is not discounted).
    pub fn flops(&self) -> f64 {
        4.0 * (self.seq_len as f64).powi(2) * self.head_dim as f64 * self.n_heads as f64
    }
}

/// What changes the scores besides Q and K.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Mask every key after the query (j > i).
    pub causal: bool,
    /// Divides the scores: below 1 sharpens the softmax, above 1 flattens it.
    pub temperature: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            causal: false,
            temperature: 1.0,
        }
    }
}

impl Options {
    /// The factor on Q K^T: 1 / (sqrt(d_k) T).
    pub fn scale(&self, head_dim: usize) -> f32 {
        1.0 / ((head_dim as f32).sqrt() * self.temperature)
    }
}

/// Queries `(H, N, d)`, keys and values `(G, N, d)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Qkv {
    pub q: Array3<f32>,
    pub k: Array3<f32>,
    pub v: Array3<f32>,
}

impl Qkv {
    /// Standard normal entries from `seed`: all of Q, then K, then V, in row-major order
    /// (the CLI's `--dump` files hold exactly these numbers).
    pub fn random(dims: Dims, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let (h, g, n, d) = (dims.n_heads, dims.n_kv_heads, dims.seq_len, dims.head_dim);
        let mut draw = |heads: usize| Array3::from_shape_fn((heads, n, d), |_| rng.normal() as f32);
        let q = draw(h); // (H, N, d)
        let k = draw(g); // (G, N, d)
        let v = draw(g); // (G, N, d)
        Qkv { q, k, v }
    }

    pub fn dims(&self) -> Dims {
        let (n_heads, seq_len, head_dim) = self.q.dim();
        Dims {
            n_heads,
            n_kv_heads: self.k.dim().0,
            seq_len,
            head_dim,
        }
    }
}

/// e^x through `crate::math` (the same bits natively and in wasm), for f32.
pub fn exp(x: f32) -> f32 {
    crate::math::exp(f64::from(x)) as f32
}

/// softmax(q k^T scale + mask) for one head: row i is query i's distribution over keys.
pub fn attention_weights(q: ArrayView2<f32>, k: ArrayView2<f32>, opts: Options) -> Array2<f32> {
    let scale = opts.scale(q.ncols());
    let mut scores = q.dot(&k.t()) * scale; // (N, N)
    for (i, mut row) in scores.axis_iter_mut(Axis(0)).enumerate() {
        if opts.causal {
            row.slice_mut(s![i + 1..]).fill(f32::NEG_INFINITY);
        }
        // Subtract the row maximum before exponentiating (softmax is shift-invariant).
        let m = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|x| exp(x - m));
        let sum = row.sum();
        row /= sum;
    }
    scores
}

/// Every head's output, `(H, N, d)`: `attention_weights(q_h, k_g(h)) v_g(h)`.
pub fn attention(qkv: &Qkv, opts: Options) -> Array3<f32> {
    let dims = qkv.dims();
    let mut out = Array3::zeros(qkv.q.dim()); // (H, N, d)
    for h in 0..dims.n_heads {
        let g = dims.kv_head(h);
        let p = attention_weights(
            qkv.q.index_axis(Axis(0), h),
            qkv.k.index_axis(Axis(0), g),
            opts,
        ); // (N, N)
        out.index_axis_mut(Axis(0), h)
            .assign(&p.dot(&qkv.v.index_axis(Axis(0), g))); // (N, d)
    }
    out
}

/// Start of block `b` of `blocks` equal-as-possible blocks over `n` indices.
pub fn block_start(b: usize, blocks: usize, n: usize) -> usize {
    b * n / blocks
}

/// A `blocks x blocks` summary of an `(N, N)` weight matrix for drawing a long sequence:
/// entry (a, b) is the probability mass that a query of row block a puts on key block b,
/// averaged over the rows of block a (so each row still sums to 1). The GPU twin is the
/// `pool` entry point of `gpu/attention.wgsl`.
pub fn pool_weights(p: ArrayView2<f32>, blocks: usize) -> Array2<f32> {
    let n = p.nrows();
    let blocks = blocks.min(n);
    Array2::from_shape_fn((blocks, blocks), |(a, b)| {
        let (r0, r1) = (block_start(a, blocks, n), block_start(a + 1, blocks, n));
        let (c0, c1) = (block_start(b, blocks, n), block_start(b + 1, blocks, n));
        p.slice(s![r0..r1, c0..c1]).sum() / (r1 - r0) as f32
    })
}

/// Largest absolute difference between two arrays of the same shape.
pub fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

// ---------------------------------------------------------------------------------------
// The model behind <ml-attention>: a sentence over a small fixed vocabulary, seeded token
// embeddings plus sinusoidal positions, and seeded projections per head.

use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};

/// The words a sentence may use.
pub const VOCAB: &[&str] = &[
    "the", "a", "cat", "dog", "sat", "on", "mat", "because", "it", "was", "tired", "chased", "red",
    "ball", "in", "park", "she", "gave", "him", "book", "and", "he", "read", "bank", "of", "river",
    "quiet", "big", "small", "ran", "to", "home",
];

/// The preset sentences (the `sentence` menu); a text box can replace them.
pub const SENTENCES: &[&str] = &[
    "the cat sat on the mat because it was tired",
    "the dog chased the red ball in the park",
    "she gave him the book and he read it",
    "the bank of the river was quiet",
];

/// Width of the embeddings.
pub const D_MODEL: usize = 32;
/// Width of one head.
pub const D_HEAD: usize = 16;
/// Longest sentence.
pub const MAX_TOKENS: usize = 16;
/// Longest sequence of the long-sequence panel, and the most the CPU computes there.
pub const LONG_MAX: usize = 4096;
pub const LONG_CPU_MAX: usize = 512;
/// Side of the pooled heatmap of a long sequence.
pub const POOL_BLOCKS: usize = 64;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "attention",
    title: "Scaled dot-product attention, head by head",
    summary: "Each query's softmax over the keys, per head: temperature, causal mask, and query heads sharing K/V heads (MHA, GQA, MQA); then a long sequence on the GPU.",
    trainer: false,
    params: &[
        ParamSpec::choice(
            "sentence",
            "Sentence",
            "x",
            "One of the preset sentences (the text box below takes your own from the same vocabulary).",
            0,
            &["cat", "dog", "book", "river"],
        ),
        ParamSpec::number(
            "temp",
            "Temperature",
            "T",
            "Divides the scores before the softmax: below 1 sharpens each row, above 1 flattens it.",
            1.0,
            0.1,
            10.0,
            0.01,
        )
        .log_scale(),
        ParamSpec::choice(
            "causal",
            "Causal mask",
            "mask",
            "On: each token attends only to itself and earlier tokens (decoder attention).",
            0,
            &["off", "on"],
        ),
        ParamSpec::number(
            "heads",
            "Query heads",
            "H",
            "Number of attention heads, each with its own query projection.",
            4.0,
            1.0,
            8.0,
            1.0,
        ),
        ParamSpec::number(
            "kv-heads",
            "K/V heads",
            "G",
            "Key/value heads, each shared by H/G query heads: G = H is MHA, 1 is MQA (the nearest divisor of H below is used).",
            2.0,
            1.0,
            8.0,
            1.0,
        ),
        ParamSpec::number(
            "query",
            "Query token",
            "i",
            "The token whose row is drawn as a probability distribution (counted from 0).",
            8.0,
            0.0,
            15.0,
            1.0,
        ),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed of the embeddings and projections, and of the long sequence's tokens.",
            1.0,
            0.0,
            9999.0,
            1.0,
        ),
        ParamSpec::number(
            "long-n",
            "Long sequence N",
            "N",
            "Tokens of the long sequence in the last panel (computed on the GPU; the CPU stops at 512).",
            1024.0,
            64.0,
            4096.0,
            1.0,
        )
        .log_scale(),
    ],
};

/// The typed configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub sentence: usize,
    pub temperature: f32,
    pub causal: bool,
    pub n_heads: usize,
    /// K/V heads asked for (may not divide `n_heads`; see [`Config::kv_heads`]).
    pub kv_heads_requested: usize,
    pub query: usize,
    pub seed: u64,
    pub long_n: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        Config {
            sentence: p.get("sentence") as usize,
            temperature: p.get("temp") as f32,
            causal: p.choice("causal") == "on",
            n_heads: p.get("heads") as usize,
            kv_heads_requested: p.get("kv-heads") as usize,
            query: p.get("query") as usize,
            seed: p.get("seed") as u64,
            long_n: p.get("long-n") as usize,
        }
    }

    pub fn options(&self) -> Options {
        Options {
            causal: self.causal,
            temperature: self.temperature,
        }
    }

    /// K/V heads in force: the largest divisor of H not above the request, and a note when
    /// that is not the request.
    pub fn kv_heads(&self) -> (usize, Option<String>) {
        let (h, want) = (self.n_heads, self.kv_heads_requested.max(1));
        let g = (1..=want.min(h)).rev().find(|g| h % g == 0).unwrap_or(1);
        let note = (g != want)
            .then(|| format!("{want} K/V heads do not divide {h} query heads; using {g}"));
        (g, note)
    }
}

/// Split a sentence into vocabulary indices; `Err` names the unknown words.
pub fn tokenize(text: &str) -> Result<Vec<usize>, String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    if words.is_empty() {
        return Err("the sentence has no words".into());
    }
    if words.len() > MAX_TOKENS {
        return Err(format!(
            "{} words; at most {MAX_TOKENS} fit the heatmap",
            words.len()
        ));
    }
    let unknown: Vec<&String> = words
        .iter()
        .filter(|w| !VOCAB.contains(&w.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "not in the vocabulary: {} (the words are: {})",
            unknown
                .iter()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(", "),
            VOCAB.join(" ")
        ));
    }
    Ok(words
        .iter()
        .map(|w| VOCAB.iter().position(|v| v == w).unwrap())
        .collect())
}

/// Token embeddings and per-head projections, all drawn from the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// (V, D_MODEL), entries N(0, 1).
    pub embed: Array2<f32>,
    /// Per query head (D_MODEL, D_HEAD); per K/V head for `w_k` and `w_v`.
    pub w_q: Vec<Array2<f32>>,
    pub w_k: Vec<Array2<f32>>,
    pub w_v: Vec<Array2<f32>>,
}

/// A (D_MODEL, D_HEAD) projection with N(0, 1 / D_MODEL) entries, from its own stream so that
/// head h is the same matrix whatever the head count.
fn projection(seed: u64, role: u64, head: usize) -> Array2<f32> {
    let mut rng = Rng::new(seed ^ (role << 40) ^ ((head as u64 + 1) << 48));
    let sd = 1.0 / (D_MODEL as f64).sqrt();
    Array2::from_shape_fn((D_MODEL, D_HEAD), |_| (sd * rng.normal()) as f32)
}

impl Model {
    pub fn new(seed: u64, n_heads: usize, n_kv_heads: usize) -> Model {
        let mut rng = Rng::new(seed);
        Model {
            embed: Array2::from_shape_fn((VOCAB.len(), D_MODEL), |_| rng.normal() as f32),
            w_q: (0..n_heads).map(|h| projection(seed, 1, h)).collect(),
            w_k: (0..n_kv_heads).map(|g| projection(seed, 2, g)).collect(),
            w_v: (0..n_kv_heads).map(|g| projection(seed, 3, g)).collect(),
        }
    }

    /// x_t = E[token_t] + PE(t), PE(t, 2i) = sin(t / 10000^(2i/d)), PE(t, 2i+1) = cos(...).
    pub fn inputs(&self, tokens: &[usize]) -> Array2<f32> {
        Array2::from_shape_fn((tokens.len(), D_MODEL), |(t, j)| {
            let i = (j / 2) as f64;
            let angle = t as f64 / crate::math::pow(10000.0, 2.0 * i / D_MODEL as f64);
            let pe = if j % 2 == 0 {
                crate::math::sin(angle)
            } else {
                crate::math::cos(angle)
            };
            self.embed[[tokens[t], j]] + pe as f32
        })
    }

    /// Q = X W_q[h], K = X W_k[g], V = X W_v[g]: (H, N, D_HEAD) and (G, N, D_HEAD).
    pub fn qkv(&self, tokens: &[usize]) -> Qkv {
        let x = self.inputs(tokens); // (N, D_MODEL)
        let stack = |ws: &[Array2<f32>]| {
            let mut out = Array3::zeros((ws.len(), tokens.len(), D_HEAD));
            for (h, w) in ws.iter().enumerate() {
                out.index_axis_mut(Axis(0), h).assign(&x.dot(w)); // (N, D_HEAD)
            }
            out
        };
        Qkv {
            q: stack(&self.w_q),
            k: stack(&self.w_k),
            v: stack(&self.w_v),
        }
    }
}

/// The long sequence's tokens: uniform over the vocabulary from the seed.
pub fn long_tokens(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed.wrapping_add(0x5eed));
    (0..n)
        .map(|_| ((rng.next_u64() >> 11) % VOCAB.len() as u64) as usize)
        .collect()
}

/// Everything `<ml-attention>` shows of the sentence, on the CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub config: Config,
    pub tokens: Vec<usize>,
    pub n_kv_heads: usize,
    pub note: Option<String>,
    /// The query row drawn (clamped to the sentence).
    pub query: usize,
    /// (H, N, N) attention weights.
    pub weights: Array3<f32>,
    /// (H, N, D_HEAD) outputs.
    pub output: Array3<f32>,
}

/// The sentence's weights and outputs for `tokens` (the preset's, or the text box's).
pub fn compute_with(config: &Config, tokens: &[usize]) -> Data {
    let (g, note) = config.kv_heads();
    let model = Model::new(config.seed, config.n_heads, g);
    let qkv = model.qkv(tokens);
    let opts = config.options();
    let n = tokens.len();
    let mut weights = Array3::zeros((config.n_heads, n, n));
    for h in 0..config.n_heads {
        let kv = qkv.dims().kv_head(h);
        weights
            .index_axis_mut(Axis(0), h)
            .assign(&attention_weights(
                qkv.q.index_axis(Axis(0), h),
                qkv.k.index_axis(Axis(0), kv),
                opts,
            ));
    }
    Data {
        output: attention(&qkv, opts),
        weights,
        tokens: tokens.to_vec(),
        n_kv_heads: g,
        note,
        query: config.query.min(n - 1),
        config: config.clone(),
    }
}

/// The preset sentence.
pub fn compute(config: &Config) -> Data {
    let tokens = tokenize(SENTENCES[config.sentence]).expect("presets use the vocabulary");
    compute_with(config, &tokens)
}

/// The long-sequence panel's problem: Q, K, V of `n` seeded tokens through the same model.
pub fn long_qkv(config: &Config, n: usize) -> Qkv {
    let (g, _) = config.kv_heads();
    Model::new(config.seed, config.n_heads, g).qkv(&long_tokens(n, config.seed))
}

fn arr3(x: &Array3<f32>) -> Json {
    Json::Arr(
        x.outer_iter()
            .map(|m| {
                Json::Arr(
                    m.rows()
                        .into_iter()
                        .map(|r| Json::Arr(r.iter().map(|&v| Json::Num(f64::from(v))).collect()))
                        .collect(),
                )
            })
            .collect(),
    )
}

impl Data {
    pub fn words(&self) -> Vec<&'static str> {
        self.tokens.iter().map(|&t| VOCAB[t]).collect()
    }

    pub fn sentence_json(&self, weights: &Array3<f32>) -> Json {
        let dims = Dims {
            n_heads: self.config.n_heads,
            n_kv_heads: self.n_kv_heads,
            seq_len: self.tokens.len(),
            head_dim: D_HEAD,
        };
        Json::obj([
            (
                "tokens",
                Json::Arr(self.words().into_iter().map(Json::str).collect()),
            ),
            ("n_heads", Json::Num(self.config.n_heads as f64)),
            ("n_kv_heads", Json::Num(self.n_kv_heads as f64)),
            (
                "kv_head_of",
                Json::Arr(
                    (0..dims.n_heads)
                        .map(|h| Json::Num(dims.kv_head(h) as f64))
                        .collect(),
                ),
            ),
            ("note", self.note.as_ref().map_or(Json::Null, Json::str)),
            ("query", Json::Num(self.query as f64)),
            ("weights", arr3(weights)),
        ])
    }
}

/// The widget's sentence data computed on the CPU (what `mlplay attention --widget` prints
/// and what the browser shows where WebGPU is missing).
pub fn widget_json(config: &Config) -> Json {
    let d = compute(config);
    Json::obj([
        ("backend", Json::str("cpu")),
        ("sentence", d.sentence_json(&d.weights)),
        ("output_head0_row", {
            let o = d.output.slice(s![0, d.query, ..]);
            Json::Arr(o.iter().map(|&v| Json::Num(f64::from(v))).collect())
        }),
    ])
}

/// Write a little-endian f32 array as a NumPy `.npy` file (format 1.0, C order).
pub fn write_npy(path: &std::path::Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n', padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for x in data {
        out.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, out)
}

/// `mlplay attention`'s flags.
#[derive(Clone, Debug, PartialEq)]
pub struct CliArgs {
    pub dims: Dims,
    pub causal: bool,
    /// `naive` or `flash`.
    pub kernel: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    pub seed: u64,
    pub dump: Option<std::path::PathBuf>,
}

/// Parse `--seq-len N --head-dim D --heads H --kv-heads G --causal true|false
/// --kernel naive|flash --backend cpu|gpu --seed S [--dump DIR] [--json]`.
pub fn parse_cli(args: &[String]) -> Result<CliArgs, String> {
    let mut a = CliArgs {
        dims: Dims {
            n_heads: 8,
            n_kv_heads: 0,
            seq_len: 256,
            head_dim: 64,
        },
        causal: false,
        kernel: "flash".into(),
        backend: "gpu".into(),
        seed: 0,
        dump: None,
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (
                flag.as_str(),
                rest.next()
                    .ok_or_else(|| format!("{flag} needs a value"))?
                    .clone(),
            ),
        };
        let int = |lo: usize, hi: usize| -> Result<usize, String> {
            match value.parse::<usize>() {
                Ok(v) if (lo..=hi).contains(&v) => Ok(v),
                _ => Err(format!(
                    "invalid value {value:?} for {key}: a whole number from {lo} to {hi}"
                )),
            }
        };
        match key {
            "--seq-len" => a.dims.seq_len = int(1, 1 << 20)?,
            "--head-dim" => a.dims.head_dim = int(1, 512)?,
            "--heads" => a.dims.n_heads = int(1, 256)?,
            "--kv-heads" => a.dims.n_kv_heads = int(1, 256)?,
            "--seed" => a.seed = int(0, usize::MAX)? as u64,
            "--causal" => {
                a.causal = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("invalid value {value:?} for --causal: true or false")),
                }
            }
            "--kernel" if value == "naive" || value == "flash" => a.kernel = value,
            "--kernel" => return Err(format!("invalid value {value:?} for --kernel: naive or flash")),
            "--backend" if value == "cpu" || value == "gpu" => a.backend = value,
            "--backend" => return Err(format!("invalid value {value:?} for --backend: cpu or gpu")),
            "--dump" => a.dump = Some(value.into()),
            other => {
                return Err(format!(
                    "unknown flag {other} for attention (allowed: --seq-len, --head-dim, --heads, --kv-heads, --causal, --kernel, --backend, --seed, --dump, --json)"
                ))
            }
        }
    }
    if a.dims.n_kv_heads == 0 {
        a.dims.n_kv_heads = a.dims.n_heads;
    }
    a.dims.validate()?;
    Ok(a)
}

/// Tile sizes of the CPU flash twin when the CLI runs it (the GPU's default for d = 64).
pub const CPU_FLASH_TILES: (usize, usize) = (64, 32);

/// `mlplay attention`: run one kernel on one backend, time it, and compare it with the CPU
/// naive result. `Err((code, message))`: 2 for bad flags, 1 for a missing GPU.
pub fn cli(args: &[String]) -> Result<crate::json::Json, (u8, String)> {
    if args.iter().any(|a| a == "--widget") {
        return widget_cli(args);
    }
    let a = parse_cli(args).map_err(|e| (2, e))?;
    let qkv = Qkv::random(a.dims, a.seed);
    let opts = Options {
        causal: a.causal,
        temperature: 1.0,
    };
    let (out, ms, method, adapter, tiles) = match a.backend.as_str() {
        "cpu" => {
            let t0 = std::time::Instant::now();
            let (out, tiles) = if a.kernel == "naive" {
                (attention(&qkv, opts), None)
            } else {
                let (br, bc) = CPU_FLASH_TILES;
                (
                    crate::flash::flash_attention(&qkv, opts, br, bc),
                    Some((br, bc)),
                )
            };
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            (out, ms, "wall-clock", "CPU (ndarray)".to_string(), tiles)
        }
        _ => run_gpu(&a, &qkv, opts)?,
    };
    let reference = attention(&qkv, opts);
    let diff = max_abs_diff(&out, &reference);
    if let Some(dir) = &a.dump {
        let d = a.dims;
        std::fs::create_dir_all(dir).map_err(|e| (1, format!("{}: {e}", dir.display())))?;
        for (name, shape, data) in [
            (
                "q.npy",
                [d.n_heads, d.seq_len, d.head_dim],
                qkv.q.as_slice(),
            ),
            (
                "k.npy",
                [d.n_kv_heads, d.seq_len, d.head_dim],
                qkv.k.as_slice(),
            ),
            (
                "v.npy",
                [d.n_kv_heads, d.seq_len, d.head_dim],
                qkv.v.as_slice(),
            ),
            ("o.npy", [d.n_heads, d.seq_len, d.head_dim], out.as_slice()),
        ] {
            let path = dir.join(name);
            write_npy(&path, &shape, data.expect("standard layout"))
                .map_err(|e| (1, format!("{}: {e}", path.display())))?;
        }
    }
    Ok(Json::obj([
        ("backend", Json::str(&a.backend)),
        ("adapter", Json::str(adapter)),
        ("kernel", Json::str(&a.kernel)),
        ("seq_len", Json::Num(a.dims.seq_len as f64)),
        ("head_dim", Json::Num(a.dims.head_dim as f64)),
        ("heads", Json::Num(a.dims.n_heads as f64)),
        ("kv_heads", Json::Num(a.dims.n_kv_heads as f64)),
        ("causal", Json::Bool(a.causal)),
        ("seed", Json::Num(a.seed as f64)),
        (
            "tiles",
            tiles.map_or(Json::Null, |(br, bc)| {
                Json::obj([
                    ("block_rows", Json::Num(br as f64)),
                    ("block_cols", Json::Num(bc as f64)),
                ])
            }),
        ),
        ("time_ms", Json::Num(ms)),
        ("timing", Json::str(method)),
        ("gflops", Json::Num(a.dims.flops() / (ms * 1e-3) / 1e9)),
        ("max_abs_diff", Json::Num(f64::from(diff))),
        (
            "dump",
            a.dump
                .as_ref()
                .map_or(Json::Null, |d| Json::str(d.display().to_string())),
        ),
    ]))
}

/// `mlplay attention --widget [--key value]...`: the widget's parameters, strictly checked,
/// and its sentence data, as every other widget prints it.
fn widget_cli(args: &[String]) -> Result<Json, (u8, String)> {
    let mut params = Params::defaults(&SPEC);
    let mut rest = args.iter().filter(|a| *a != "--widget" && *a != "--json");
    while let Some(flag) = rest.next() {
        let key = flag
            .strip_prefix("--")
            .ok_or_else(|| (2, format!("expected --key value, got {flag:?}")))?;
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => (
                key,
                rest.next()
                    .ok_or_else(|| (2, format!("--{key} needs a value")))?
                    .clone(),
            ),
        };
        params.set_strict(key, &value).map_err(|e| (2, e))?;
    }
    Ok(Json::obj([
        ("widget", Json::str(SPEC.name)),
        ("params", params.to_json()),
        ("data", widget_json(&Config::from_params(&params))),
    ]))
}

type Run = (
    Array3<f32>,
    f64,
    &'static str,
    String,
    Option<(usize, usize)>,
);

#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
fn run_gpu(a: &CliArgs, qkv: &Qkv, opts: Options) -> Result<Run, (u8, String)> {
    use crate::gpu::{self, block_on, AttnBuffers, GpuContext};
    let ctx = GpuContext::acquire_blocking().map_err(|e| (1, e))?;
    let gpu_err = |e: String| (1, format!("{}: {e}", ctx.adapter_name()));
    let bufs = AttnBuffers::upload(&ctx, qkv).map_err(gpu_err)?;
    let (timing, tiles) = if a.kernel == "naive" {
        let k = gpu::attention::NaiveAttention::new(&ctx);
        let plan = k.plan(&ctx, &bufs, opts, 0);
        block_on(gpu::run(&ctx, &plan)).map_err(gpu_err)?; // warm-up: first-use costs
        (block_on(gpu::run(&ctx, &plan)).map_err(gpu_err)?, None)
    } else {
        let k = gpu::flash::FlashAttention::new(&ctx, bufs.dp).map_err(gpu_err)?;
        let plan = k.plan(&ctx, &bufs, opts).map_err(gpu_err)?;
        block_on(gpu::run(&ctx, &plan)).map_err(gpu_err)?;
        let t = block_on(gpu::run(&ctx, &plan)).map_err(gpu_err)?;
        (t, Some((k.config.block_rows(), k.config.block_cols())))
    };
    let out = block_on(bufs.read_output(&ctx)).map_err(gpu_err)?;
    Ok((out, timing.ms, timing.method, ctx.adapter_name(), tiles))
}

#[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
fn run_gpu(_: &CliArgs, _: &Qkv, _: Options) -> Result<Run, (u8, String)> {
    Err((
        2,
        "this mlplay was built without the gpu feature: rebuild with --features gpu, or use --backend cpu".into(),
    ))
}
