//! A decoder-only transformer (GPT-2's pre-norm block, Radford et al. 2019) with its
//! backward pass written out by hand, small enough to train in the page.
//!
//! ```text
//! x_0 = E[tok] (+ P[pos] for learned or sinusoidal positions)
//! per block:  h = LN_1(x);  q, k, v = h W_q, h W_k, h W_v   (RoPE rotates q and k per head)
//!             A_h = softmax(q_h k_h^T / sqrt(d_head) + M)   (M: -inf above the diagonal)
//!             x = x + concat_h(A_h v_h) W_o
//!             x = x + GELU(LN_2(x) W_1 + b_1) W_2 + b_2
//! logits = LN_f(x) W_out   (W_out = E^T when tied)
//! loss   = mean over the scored positions of -log softmax(logits)[target]
//! ```
//!
//! All parameters live in one flat `Vec<f64>` described by [`Layout`], so Adam, gradient
//! clipping and the finite-difference tests treat the model as one vector. Used by
//! `<ml-transformer>` and `mlplay transformer`.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2};

use crate::math;
use crate::rng::Rng;
use crate::rope::{self, Pairing};

/// How the model knows where a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// A learned vector per position added to the token embedding (GPT-2).
    Learned,
    /// Vaswani et al.'s fixed sinusoids added to the token embedding.
    Sinusoidal,
    /// Rotary embeddings (Su et al. 2021) applied to q and k in every head; nothing added.
    Rope,
}

impl Pos {
    pub const NAMES: [&'static str; 3] = ["learned", "sinusoidal", "rope"];

    pub fn name(self) -> &'static str {
        match self {
            Pos::Learned => "learned",
            Pos::Sinusoidal => "sinusoidal",
            Pos::Rope => "rope",
        }
    }

    pub fn from_name(name: &str) -> Option<Pos> {
        match name {
            "learned" => Some(Pos::Learned),
            "sinusoidal" => Some(Pos::Sinusoidal),
            "rope" => Some(Pos::Rope),
            _ => None,
        }
    }
}

/// The architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Vocabulary size V.
    pub vocab: usize,
    /// Residual width d_model.
    pub d_model: usize,
    /// Number of blocks.
    pub n_layers: usize,
    /// Attention heads per block; d_head = d_model / n_heads.
    pub n_heads: usize,
    /// Longest sequence the model reads (learned positions have one vector per slot).
    pub ctx: usize,
    pub pos: Pos,
    /// Output projection shared with the token embedding (W_out = E^T).
    pub tied: bool,
}

impl Config {
    pub fn d_head(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Width of the MLP's hidden layer (4 d_model, as in GPT-2).
    pub fn d_ff(&self) -> usize {
        4 * self.d_model
    }

    /// Checks the shape constraints; `Err` names the one that fails.
    pub fn validate(&self) -> Result<(), String> {
        if self.vocab < 2
            || self.d_model == 0
            || self.n_layers == 0
            || self.n_heads == 0
            || self.ctx < 2
        {
            return Err(
                "vocab >= 2, d_model, n_layers, n_heads >= 1 and ctx >= 2 are needed".into(),
            );
        }
        if self.d_model % self.n_heads != 0 {
            return Err(format!(
                "n_heads = {} must divide d_model = {}",
                self.n_heads, self.d_model
            ));
        }
        if self.pos == Pos::Rope && self.d_head() % 2 != 0 {
            return Err(format!(
                "RoPE needs an even head width (d_head = {})",
                self.d_head()
            ));
        }
        Ok(())
    }
}

/// Offsets of every tensor in the flat parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub tok_emb: usize,
    pub pos_emb: usize,
    pub layers: Vec<LayerLayout>,
    pub lnf_g: usize,
    pub lnf_b: usize,
    pub w_out: usize,
    pub len: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LayerLayout {
    pub ln1_g: usize,
    pub ln1_b: usize,
    pub w_q: usize,
    pub w_k: usize,
    pub w_v: usize,
    pub w_o: usize,
    pub ln2_g: usize,
    pub ln2_b: usize,
    pub w_1: usize,
    pub b_1: usize,
    pub w_2: usize,
    pub b_2: usize,
}

impl Layout {
    pub fn new(c: &Config) -> Layout {
        let (v, d, f) = (c.vocab, c.d_model, c.d_ff());
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += n;
            o
        };
        let tok_emb = take(v * d);
        let pos_emb = take(if c.pos == Pos::Learned { c.ctx * d } else { 0 });
        let layers = (0..c.n_layers)
            .map(|_| LayerLayout {
                ln1_g: take(d),
                ln1_b: take(d),
                w_q: take(d * d),
                w_k: take(d * d),
                w_v: take(d * d),
                w_o: take(d * d),
                ln2_g: take(d),
                ln2_b: take(d),
                w_1: take(d * f),
                b_1: take(f),
                w_2: take(f * d),
                b_2: take(d),
            })
            .collect();
        let lnf_g = take(d);
        let lnf_b = take(d);
        let w_out = take(if c.tied { 0 } else { d * v });
        Layout {
            tok_emb,
            pos_emb,
            layers,
            lnf_g,
            lnf_b,
            w_out,
            len: at,
        }
    }
}

const LN_EPS: f64 = 1e-5;

fn mat(p: &[f64], at: usize, rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    ArrayView2::from_shape((rows, cols), &p[at..at + rows * cols]).expect("layout")
}

fn mat_mut(p: &mut [f64], at: usize, rows: usize, cols: usize) -> ArrayViewMut2<'_, f64> {
    ArrayViewMut2::from_shape((rows, cols), &mut p[at..at + rows * cols]).expect("layout")
}

/// Vaswani et al. 2017: PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(...).
pub fn sinusoidal_positions(ctx: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((ctx, d), |(t, j)| {
        let i = (j / 2) as f64;
        let angle = t as f64 / math::pow(10_000.0, 2.0 * i / d as f64);
        if j % 2 == 0 {
            math::sin(angle)
        } else {
            math::cos(angle)
        }
    })
}

/// GELU, tanh approximation (GPT-2): 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
pub fn gelu(u: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * u * (1.0 + math::tanh(c * (u + 0.044715 * u * u * u)))
}

/// d GELU / du of the same approximation.
pub fn gelu_grad(u: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    let th = math::tanh(c * (u + 0.044715 * u * u * u));
    0.5 * (1.0 + th) + 0.5 * u * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * u * u)
}

/// Layer norm over the last axis: returns (x_hat, 1/sigma) for the backward pass and y.
fn layer_norm(x: &Array2<f64>, g: &[f64], b: &[f64]) -> (Array2<f64>, Array1<f64>, Array2<f64>) {
    let (t, d) = x.dim();
    let mut xhat = Array2::zeros((t, d));
    let mut rstd = Array1::zeros(t);
    let mut y = Array2::zeros((t, d));
    for r in 0..t {
        let row = x.row(r);
        let mu = row.sum() / d as f64;
        let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / d as f64;
        let rs = 1.0 / (var + LN_EPS).sqrt();
        rstd[r] = rs;
        for j in 0..d {
            let xh = (row[j] - mu) * rs;
            xhat[[r, j]] = xh;
            y[[r, j]] = xh * g[j] + b[j];
        }
    }
    (xhat, rstd, y)
}

/// Backward of [`layer_norm`]: accumulates dg, db and returns dx.
fn layer_norm_backward(
    dy: &Array2<f64>,
    xhat: &Array2<f64>,
    rstd: &Array1<f64>,
    g: &[f64],
    dg: &mut [f64],
    db: &mut [f64],
) -> Array2<f64> {
    let (t, d) = dy.dim();
    let mut dx = Array2::zeros((t, d));
    for r in 0..t {
        let mut mean_dxh = 0.0;
        let mut mean_dxh_xh = 0.0;
        for j in 0..d {
            let dxh = dy[[r, j]] * g[j];
            dg[j] += dy[[r, j]] * xhat[[r, j]];
            db[j] += dy[[r, j]];
            mean_dxh += dxh;
            mean_dxh_xh += dxh * xhat[[r, j]];
        }
        mean_dxh /= d as f64;
        mean_dxh_xh /= d as f64;
        for j in 0..d {
            let dxh = dy[[r, j]] * g[j];
            dx[[r, j]] = rstd[r] * (dxh - mean_dxh - xhat[[r, j]] * mean_dxh_xh);
        }
    }
    dx
}

/// What the backward pass needs from one block's forward pass.
#[derive(Clone, Debug)]
pub struct BlockCache {
    pub xhat1: Array2<f64>,
    pub rstd1: Array1<f64>,
    pub h1: Array2<f64>,
    /// q and k after RoPE (when on), v: (T, d_model), heads side by side.
    pub q: Array2<f64>,
    pub k: Array2<f64>,
    pub v: Array2<f64>,
    /// Attention weights per head: (T, T) each, rows sum to 1, zero above the diagonal.
    pub attn: Vec<Array2<f64>>,
    /// concat_h(A_h v_h), before W_o: (T, d_model).
    pub o: Array2<f64>,
    pub xhat2: Array2<f64>,
    pub rstd2: Array1<f64>,
    pub h2: Array2<f64>,
    /// Pre-activation of the MLP's hidden layer (T, d_ff) and GELU of it.
    pub u: Array2<f64>,
    pub f: Array2<f64>,
}

/// The forward pass of one sequence, everything the backward pass and the widget read.
#[derive(Clone, Debug)]
pub struct Forward {
    pub tokens: Vec<usize>,
    pub blocks: Vec<BlockCache>,
    pub xhatf: Array2<f64>,
    pub rstdf: Array1<f64>,
    pub hf: Array2<f64>,
    /// (T, V)
    pub logits: Array2<f64>,
}

/// A model: its architecture and its flat parameters.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    pub layout: Layout,
    pub params: Vec<f64>,
    sinusoids: Option<Array2<f64>>,
    thetas: Option<Array1<f64>>,
}

impl Model {
    /// GPT-2's initialisation: weights N(0, 0.02^2), the two projections into the residual
    /// stream (W_o, W_2) scaled by 1/sqrt(2 n_layers), biases 0, layer-norm gains 1.
    pub fn init(config: Config, seed: u64) -> Model {
        config.validate().expect("valid transformer config");
        let layout = Layout::new(&config);
        let mut params = vec![0.0; layout.len];
        let mut rng = Rng::new(seed);
        let std = 0.02;
        let resid = std / (2.0 * config.n_layers as f64).sqrt();
        let (v, d, f) = (config.vocab, config.d_model, config.d_ff());
        let mut fill = |at: usize, n: usize, s: f64, rng: &mut Rng| {
            for x in &mut params[at..at + n] {
                *x = s * rng.normal();
            }
        };
        fill(layout.tok_emb, v * d, std, &mut rng);
        if config.pos == Pos::Learned {
            fill(layout.pos_emb, config.ctx * d, std, &mut rng);
        }
        for l in &layout.layers {
            fill(l.w_q, d * d, std, &mut rng);
            fill(l.w_k, d * d, std, &mut rng);
            fill(l.w_v, d * d, std, &mut rng);
            fill(l.w_o, d * d, resid, &mut rng);
            fill(l.w_1, d * f, std, &mut rng);
            fill(l.w_2, f * d, resid, &mut rng);
        }
        if !config.tied {
            fill(layout.w_out, d * v, std, &mut rng);
        }
        for l in &layout.layers {
            params[l.ln1_g..l.ln1_g + d].fill(1.0);
            params[l.ln2_g..l.ln2_g + d].fill(1.0);
        }
        params[layout.lnf_g..layout.lnf_g + d].fill(1.0);
        Model::from_params(config, params)
    }

    /// A model with the given flat parameters (length [`Layout::len`]).
    pub fn from_params(config: Config, params: Vec<f64>) -> Model {
        let layout = Layout::new(&config);
        assert_eq!(params.len(), layout.len, "parameter count");
        let sinusoids = (config.pos == Pos::Sinusoidal)
            .then(|| sinusoidal_positions(config.ctx, config.d_model));
        let thetas = (config.pos == Pos::Rope).then(|| rope::thetas(config.d_head(), 10_000.0));
        Model {
            config,
            layout,
            params,
            sinusoids,
            thetas,
        }
    }

    pub fn n_params(&self) -> usize {
        self.layout.len
    }

    /// Rotates every head of every row of `x` (T, d_model) by its position: R_{sign * t}.
    fn rope_rows(&self, x: &mut Array2<f64>, sign: f64) {
        let Some(thetas) = &self.thetas else { return };
        let dh = self.config.d_head();
        for t in 0..x.nrows() {
            for h in 0..self.config.n_heads {
                let cols = s![t, h * dh..(h + 1) * dh];
                let rotated = rope::rotate(x.slice(cols), sign * t as f64, thetas, Pairing::Halves);
                x.slice_mut(cols).assign(&rotated);
            }
        }
    }

    /// The forward pass over one sequence (at most `ctx` tokens).
    pub fn forward(&self, tokens: &[usize]) -> Forward {
        let c = &self.config;
        let p = &self.params;
        let (t_len, d, dh, f) = (tokens.len(), c.d_model, c.d_head(), c.d_ff());
        assert!(
            t_len >= 1 && t_len <= c.ctx,
            "sequence of {t_len} tokens for ctx {}",
            c.ctx
        );
        let emb = mat(p, self.layout.tok_emb, c.vocab, d); // (V, D)
        let mut x = Array2::from_shape_fn((t_len, d), |(t, j)| emb[[tokens[t], j]]); // (T, D)
        match c.pos {
            Pos::Learned => x += &mat(p, self.layout.pos_emb, c.ctx, d).slice(s![..t_len, ..]),
            Pos::Sinusoidal => {
                x += &self
                    .sinusoids
                    .as_ref()
                    .expect("sinusoids")
                    .slice(s![..t_len, ..])
            }
            Pos::Rope => {}
        }
        let scale = 1.0 / (dh as f64).sqrt();
        let mut blocks = Vec::with_capacity(c.n_layers);
        for l in &self.layout.layers {
            let (xhat1, rstd1, h1) =
                layer_norm(&x, &p[l.ln1_g..l.ln1_g + d], &p[l.ln1_b..l.ln1_b + d]);
            let mut q = h1.dot(&mat(p, l.w_q, d, d)); // (T, D)
            let mut k = h1.dot(&mat(p, l.w_k, d, d)); // (T, D)
            let v = h1.dot(&mat(p, l.w_v, d, d)); // (T, D)
            self.rope_rows(&mut q, 1.0);
            self.rope_rows(&mut k, 1.0);
            let mut o = Array2::zeros((t_len, d)); // (T, D)
            let mut attn = Vec::with_capacity(c.n_heads);
            for h in 0..c.n_heads {
                let cols = s![.., h * dh..(h + 1) * dh];
                let scores = q.slice(cols).dot(&k.slice(cols).t()) * scale; // (T, T)
                let a = causal_softmax(&scores);
                o.slice_mut(cols).assign(&a.dot(&v.slice(cols))); // (T, T) . (T, dh)
                attn.push(a);
            }
            x += &o.dot(&mat(p, l.w_o, d, d));
            let (xhat2, rstd2, h2) =
                layer_norm(&x, &p[l.ln2_g..l.ln2_g + d], &p[l.ln2_b..l.ln2_b + d]);
            let mut u = h2.dot(&mat(p, l.w_1, d, f)); // (T, F)
            u += &ArrayView2::from_shape((1, f), &p[l.b_1..l.b_1 + f]).expect("b_1");
            let fa = u.mapv(gelu); // (T, F)
            x += &fa.dot(&mat(p, l.w_2, f, d));
            x += &ArrayView2::from_shape((1, d), &p[l.b_2..l.b_2 + d]).expect("b_2");
            blocks.push(BlockCache {
                xhat1,
                rstd1,
                h1,
                q,
                k,
                v,
                attn,
                o,
                xhat2,
                rstd2,
                h2,
                u,
                f: fa,
            });
        }
        let lo = &self.layout;
        let (xhatf, rstdf, hf) =
            layer_norm(&x, &p[lo.lnf_g..lo.lnf_g + d], &p[lo.lnf_b..lo.lnf_b + d]);
        let logits = if c.tied {
            hf.dot(&emb.t()) // (T, D) . (D, V)
        } else {
            hf.dot(&mat(p, lo.w_out, d, c.vocab))
        };
        Forward {
            tokens: tokens.to_vec(),
            blocks,
            xhatf,
            rstdf,
            hf,
            logits,
        }
    }

    /// Cross-entropy of one sequence's scored positions (`targets[t]` is the token expected
    /// after position t, `None` where nothing is scored), summed, and the number scored.
    pub fn loss_sum(fw: &Forward, targets: &[Option<usize>]) -> (f64, usize, usize) {
        let mut sum = 0.0;
        let mut n = 0;
        let mut correct = 0;
        for (t, target) in targets.iter().enumerate() {
            if let Some(y) = *target {
                let row = fw.logits.row(t);
                let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let lse = m + math::ln(row.iter().map(|&z| math::exp(z - m)).sum::<f64>());
                sum += lse - row[y];
                n += 1;
                let argmax =
                    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
                correct += usize::from(argmax == y);
            }
        }
        (sum, n, correct)
    }

    /// Backward pass of `weight * sum of the scored cross-entropies` of one sequence,
    /// accumulated into `grad` (same layout as the parameters).
    pub fn backward(&self, fw: &Forward, targets: &[Option<usize>], weight: f64, grad: &mut [f64]) {
        let c = &self.config;
        let p = &self.params;
        let lo = &self.layout;
        let (t_len, d, dh, f, v) = (fw.tokens.len(), c.d_model, c.d_head(), c.d_ff(), c.vocab);
        // dL/dlogits = weight (softmax - onehot) at scored positions.
        let mut dlogits = Array2::<f64>::zeros((t_len, v)); // (T, V)
        for (t, target) in targets.iter().enumerate() {
            if let Some(y) = *target {
                let row = fw.logits.row(t);
                let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let z: f64 = row.iter().map(|&l| math::exp(l - m)).sum();
                for i in 0..v {
                    dlogits[[t, i]] = weight * math::exp(row[i] - m) / z;
                }
                dlogits[[t, y]] -= weight;
            }
        }
        let dhf = if c.tied {
            let demb = dlogits.t().dot(&fw.hf); // (V, D)
            mat_mut(grad, lo.tok_emb, v, d).scaled_add(1.0, &demb);
            dlogits.dot(&mat(p, lo.tok_emb, v, d)) // (T, V) . (V, D)
        } else {
            let dw = fw.hf.t().dot(&dlogits); // (D, V)
            mat_mut(grad, lo.w_out, d, v).scaled_add(1.0, &dw);
            dlogits.dot(&mat(p, lo.w_out, d, v).t())
        };
        let (gf, rest) = grad.split_at_mut(lo.lnf_b);
        let mut dx = layer_norm_backward(
            &dhf,
            &fw.xhatf,
            &fw.rstdf,
            &p[lo.lnf_g..lo.lnf_g + d],
            &mut gf[lo.lnf_g..lo.lnf_g + d],
            &mut rest[..d],
        );
        let scale = 1.0 / (dh as f64).sqrt();
        for (l, b) in lo.layers.iter().zip(&fw.blocks).rev() {
            // x_out = x_mid + GELU(h2 W_1 + b_1) W_2 + b_2
            for t in 0..t_len {
                for j in 0..d {
                    grad[l.b_2 + j] += dx[[t, j]];
                }
            }
            mat_mut(grad, l.w_2, f, d).scaled_add(1.0, &b.f.t().dot(&dx));
            let mut du = dx.dot(&mat(p, l.w_2, f, d).t()); // (T, F)
            du.zip_mut_with(&b.u, |g, &u| *g *= gelu_grad(u));
            for t in 0..t_len {
                for j in 0..f {
                    grad[l.b_1 + j] += du[[t, j]];
                }
            }
            mat_mut(grad, l.w_1, d, f).scaled_add(1.0, &b.h2.t().dot(&du));
            let dh2 = du.dot(&mat(p, l.w_1, d, f).t()); // (T, D)
            let (g2, rest) = grad.split_at_mut(l.ln2_b);
            dx += &layer_norm_backward(
                &dh2,
                &b.xhat2,
                &b.rstd2,
                &p[l.ln2_g..l.ln2_g + d],
                &mut g2[l.ln2_g..l.ln2_g + d],
                &mut rest[..d],
            );
            // x_mid = x_in + concat_h(A_h v_h) W_o
            mat_mut(grad, l.w_o, d, d).scaled_add(1.0, &b.o.t().dot(&dx));
            let d_o = dx.dot(&mat(p, l.w_o, d, d).t()); // (T, D)
            let mut dq = Array2::<f64>::zeros((t_len, d));
            let mut dk = Array2::<f64>::zeros((t_len, d));
            let mut dv = Array2::<f64>::zeros((t_len, d));
            for (h, a) in b.attn.iter().enumerate() {
                let cols = s![.., h * dh..(h + 1) * dh];
                let doh = d_o.slice(cols);
                let da = doh.dot(&b.v.slice(cols).t()); // (T, T)
                dv.slice_mut(cols).assign(&a.t().dot(&doh));
                // Softmax backward per row: dS = A (dA - sum_j dA A).
                let mut ds = Array2::<f64>::zeros((t_len, t_len));
                for i in 0..t_len {
                    let dot: f64 = (0..=i).map(|j| da[[i, j]] * a[[i, j]]).sum();
                    for j in 0..=i {
                        ds[[i, j]] = a[[i, j]] * (da[[i, j]] - dot) * scale;
                    }
                }
                dq.slice_mut(cols).assign(&ds.dot(&b.k.slice(cols)));
                dk.slice_mut(cols).assign(&ds.t().dot(&b.q.slice(cols)));
            }
            // RoPE is a rotation R_t: its backward is R_t^T = R_{-t}.
            self.rope_rows(&mut dq, -1.0);
            self.rope_rows(&mut dk, -1.0);
            mat_mut(grad, l.w_q, d, d).scaled_add(1.0, &b.h1.t().dot(&dq));
            mat_mut(grad, l.w_k, d, d).scaled_add(1.0, &b.h1.t().dot(&dk));
            mat_mut(grad, l.w_v, d, d).scaled_add(1.0, &b.h1.t().dot(&dv));
            let dh1 = dq.dot(&mat(p, l.w_q, d, d).t())
                + dk.dot(&mat(p, l.w_k, d, d).t())
                + dv.dot(&mat(p, l.w_v, d, d).t()); // (T, D)
            let (g1, rest) = grad.split_at_mut(l.ln1_b);
            dx += &layer_norm_backward(
                &dh1,
                &b.xhat1,
                &b.rstd1,
                &p[l.ln1_g..l.ln1_g + d],
                &mut g1[l.ln1_g..l.ln1_g + d],
                &mut rest[..d],
            );
        }
        for t in 0..t_len {
            for j in 0..d {
                grad[lo.tok_emb + fw.tokens[t] * d + j] += dx[[t, j]];
                if c.pos == Pos::Learned {
                    grad[lo.pos_emb + t * d + j] += dx[[t, j]];
                }
            }
        }
    }
}

/// Row-wise softmax of `scores` with the causal mask (column j > row i is -inf).
pub fn causal_softmax(scores: &Array2<f64>) -> Array2<f64> {
    let t = scores.nrows();
    let mut a = Array2::zeros((t, scores.ncols()));
    for i in 0..t {
        let m = (0..=i).fold(f64::NEG_INFINITY, |m, j| m.max(scores[[i, j]]));
        let mut z = 0.0;
        for j in 0..=i {
            let e = math::exp(scores[[i, j]] - m);
            a[[i, j]] = e;
            z += e;
        }
        for j in 0..=i {
            a[[i, j]] /= z;
        }
    }
    a
}
