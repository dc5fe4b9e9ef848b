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
        row.mapv_inplace(|x| (x - m).exp());
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
