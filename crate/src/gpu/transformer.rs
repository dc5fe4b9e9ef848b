//! The transformer of `crate::transformer::model` trained on the GPU (`transformer.wgsl`):
//! forward, the hand-written backward, the global-norm clip and Adam in f32, for the batches
//! the CPU draws. Twin: `Model::{forward, loss_sum, backward}` and `transformer::train::Trainer`
//! (same [`Layout`], so one flat parameter vector moves between the two; same batches from the
//! same seeded task stream; same Adam: beta = (0.9, 0.99), eps 1e-8, clip 1.0).
//!
//! Everything lives in one f32 arena on the device ([`Arena`]: parameters, gradient, Adam's m
//! and v, the activations of every layer kept for the backward pass, scratch). Each kernel
//! reads its operands at offsets its uniform names, so one tiled `gemm` with strides serves
//! the projections, the per-head scores and weighted sums, and both products of every
//! backward step; the weight gradients are GEMMs whose inner dimension runs over all
//! B x ctx rows, which is the sum over the batch (in a fixed order: deterministic).
//!
//! Sequences shorter than ctx are padded at the end with token 0 and no target: causal
//! attention keeps the padding out of every real position, and unscored rows send back an
//! exactly zero gradient, so the result is that of the unpadded batch.
//!
//! One [`GpuTransformer::submit_step`] writes the batch's token ids and the step's scalars and
//! submits one command buffer (clear the gradient, then every dispatch: about 14 per layer
//! forward, 26 per layer backward, the loss, the norm and Adam); only the three statistics
//! come back (the [`StepReadback`] it returns, 12 bytes), parameters when asked
//! ([`GpuTransformer::params`], [`GpuTransformer::params_readback`]). Natively
//! [`GpuTransformer::step`] does both and blocks; in the browser the readbacks are awaited
//! (they own what they read, so no borrow of the trainer is held across the await).

use wgpu::util::DeviceExt;

use super::mlp::{f32_bytes, groups};
use super::{bind, layout, read_f32, storage, GpuContext, READ, READ_WRITE, UNIFORM};
use crate::rng::Rng;
use crate::transformer::model::{sinusoidal_positions, Config, Layout, Model, Pos};
use crate::transformer::tasks::Example;
use crate::transformer::train::{StepStats, TrainConfig};

/// The WGSL source (validated by naga in `tests/wgsl.rs`), comments stripped (`wgsl!`).
pub const WGSL: &str = wgsl!(include_str!("transformer.wgsl"));

/// The entry points of transformer.wgsl, in the order of [`TransformerKernels`]' pipelines.
pub const ENTRY_POINTS: [&str; 14] = [
    "gemm",
    "embed",
    "layer_norm",
    "ln_back",
    "col_sum",
    "rope",
    "softmax_causal",
    "softmax_back",
    "gelu",
    "gelu_back",
    "xent",
    "embed_back",
    "finish",
    "adam",
];

/// `NONE` in transformer.wgsl: no offset, no target.
const NONE: u32 = u32::MAX;
/// Output tile of `gemm` (TILE in the WGSL).
const TILE: usize = 16;
/// The scalars block: [0] 1/n, [1] n, [2] lr / (1 - b1^t), [3] sqrt(1 - b2^t), [4] loss,
/// [5] accuracy, [6] gradient norm, [7] clip.
const SCALARS: usize = 8;

#[derive(Clone, Copy)]
enum K {
    Gemm,
    Embed,
    LayerNorm,
    LnBack,
    ColSum,
    Rope,
    Softmax,
    SoftmaxBack,
    Gelu,
    GeluBack,
    Xent,
    EmbedBack,
    Finish,
    Adam,
}

/// The pipelines of transformer.wgsl, built once per device and shared by trainers.
pub struct TransformerKernels {
    bgl: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl TransformerKernels {
    pub fn new(ctx: &GpuContext) -> Result<TransformerKernels, String> {
        let (bgl, pl) = layout(
            ctx,
            "transformer",
            &[(0, UNIFORM), (1, READ_WRITE), (2, READ)],
        );
        let pipelines = ENTRY_POINTS
            .iter()
            .map(|e| ctx.pipeline("transformer", WGSL, &pl, e))
            .collect();
        ctx.take_errors()?;
        Ok(TransformerKernels { bgl, pipelines })
    }
}

/// Offsets (in floats) of one block's saved activations, each (R, width) row-major with
/// R = B ctx rows (sequence b's position t is row b ctx + t).
#[derive(Clone, Debug)]
pub struct BlockArena {
    pub xhat1: usize,
    pub rstd1: usize,
    pub h1: usize,
    /// q, k, v: three (R, D) blocks one after the other (q and k after RoPE).
    pub qkv: usize,
    /// Softmax weights, (B, H, T, T).
    pub attn: usize,
    pub o: usize,
    pub xhat2: usize,
    pub rstd2: usize,
    pub h2: usize,
    pub u: usize,
    pub f: usize,
}

/// Where everything is in the f32 arena.
#[derive(Clone, Debug)]
pub struct Arena {
    pub theta: usize,
    pub grad: usize,
    pub m: usize,
    pub v: usize,
    pub scalars: usize,
    /// The sinusoid table (ctx, D), or RoPE's cos and sin tables (ctx, d_head / 2) each.
    pub table: usize,
    pub x: usize,
    pub blocks: Vec<BlockArena>,
    pub xhatf: usize,
    pub rstdf: usize,
    pub hf: usize,
    /// (R, V)
    pub logits: usize,
    pub dlogits: usize,
    /// Per row: loss term (R), then correct (R).
    pub rows: usize,
    pub dx: usize,
    pub dtmp: usize,
    pub du: usize,
    pub dqkv: usize,
    pub da: usize,
    pub len: usize,
}

impl Arena {
    pub fn new(c: &Config, batch: usize) -> Arena {
        let n_params = Layout::new(c).len;
        let (d, f, v, t) = (c.d_model, c.d_ff(), c.vocab, c.ctx);
        let r = batch * t;
        let tt = batch * c.n_heads * t * t;
        let mut at = 0;
        let mut take = |n: usize| {
            let o = at;
            at += n;
            o
        };
        let theta = take(n_params);
        let grad = take(n_params);
        let m = take(n_params);
        let v_ = take(n_params);
        let scalars = take(SCALARS);
        let table = take(match c.pos {
            Pos::Learned => 0,
            Pos::Sinusoidal => t * d,
            Pos::Rope => t * c.d_head(),
        });
        let x = take(r * d);
        let blocks = (0..c.n_layers)
            .map(|_| BlockArena {
                xhat1: take(r * d),
                rstd1: take(r),
                h1: take(r * d),
                qkv: take(3 * r * d),
                attn: take(tt),
                o: take(r * d),
                xhat2: take(r * d),
                rstd2: take(r),
                h2: take(r * d),
                u: take(r * f),
                f: take(r * f),
            })
            .collect();
        Arena {
            theta,
            grad,
            m,
            v: v_,
            scalars,
            table,
            x,
            blocks,
            xhatf: take(r * d),
            rstdf: take(r),
            hf: take(r * d),
            logits: take(r * v),
            dlogits: take(r * v),
            rows: take(2 * r),
            dx: take(r * d),
            dtmp: take(r * d),
            du: take(r * f),
            dqkv: take(3 * r * d),
            da: take(tt),
            len: at,
        }
    }
}

/// One dispatch: pipeline, bind group, workgroups.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    workgroups: (u32, u32, u32),
}

/// A strided operand of `gemm`: element (i, k) of problem (z1, z2) is at
/// off + z1 z1s + z2 z2s + i rs + k cs.
#[derive(Clone, Copy)]
struct Mat {
    off: usize,
    rs: usize,
    cs: usize,
    z1s: usize,
    z2s: usize,
}

fn mat(off: usize, rs: usize, cs: usize) -> Mat {
    Mat {
        off,
        rs,
        cs,
        z1s: 0,
        z2s: 0,
    }
}

fn zmat(off: usize, rs: usize, cs: usize, z1s: usize, z2s: usize) -> Mat {
    Mat {
        off,
        rs,
        cs,
        z1s,
        z2s,
    }
}

/// C (M x N) = (C +) alpha A (M x K) B (K x N) (+ bias) for z1 x z2 problems.
struct Gemm {
    m: usize,
    n: usize,
    k: usize,
    z: (usize, usize),
    a: Mat,
    b: Mat,
    c: Mat,
    accumulate: bool,
    bias: Option<usize>,
    alpha: f32,
}

impl Gemm {
    fn new(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: Mat) -> Gemm {
        Gemm {
            m,
            n,
            k,
            z: (1, 1),
            a,
            b,
            c,
            accumulate: false,
            bias: None,
            alpha: 1.0,
        }
    }
    fn acc(mut self) -> Gemm {
        self.accumulate = true;
        self
    }
}

/// Records the dispatches of a step.
struct Builder<'a> {
    ctx: &'a GpuContext,
    kernels: &'a TransformerKernels,
    mem: &'a wgpu::Buffer,
    ids: &'a wgpu::Buffer,
    passes: Vec<Pass>,
}

fn o32(x: usize) -> u32 {
    x as u32
}

impl Builder<'_> {
    fn push(&mut self, k: K, args: &[u32], workgroups: (u32, u32, u32)) {
        let mut words = [0u32; 24];
        words[..args.len()].copy_from_slice(args);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let uniform = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("transformer op"),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let group = bind(self.ctx, &self.kernels.bgl, &[&uniform, self.mem, self.ids]);
        self.passes.push(Pass {
            pipeline: self.kernels.pipelines[k as usize].clone(),
            group,
            workgroups,
        });
    }

    /// A kernel with one thread per item, in 64-thread workgroups.
    fn flat(&mut self, k: K, args: &[usize], threads: usize) {
        let (x, y) = groups(threads);
        let words: Vec<u32> = args.iter().map(|&a| o32(a)).collect();
        self.push(k, &words, (x, y, 1));
    }

    fn gemm(&mut self, g: Gemm) {
        let w = [
            o32(g.m),
            o32(g.n),
            o32(g.k),
            o32(g.z.1),
            o32(g.a.off),
            o32(g.a.rs),
            o32(g.a.cs),
            o32(g.a.z1s),
            o32(g.a.z2s),
            o32(g.b.off),
            o32(g.b.rs),
            o32(g.b.cs),
            o32(g.b.z1s),
            o32(g.b.z2s),
            o32(g.c.off),
            o32(g.c.rs),
            o32(g.c.z1s),
            o32(g.c.z2s),
            u32::from(g.accumulate),
            g.bias.map_or(NONE, o32),
            g.alpha.to_bits(),
        ];
        let wg = (
            o32(g.n.div_ceil(TILE)),
            o32(g.m.div_ceil(TILE)),
            o32(g.z.0 * g.z.1),
        );
        self.push(K::Gemm, &w, wg);
    }

    /// The backward pass of y = x W over `r` rows (x: r x n_in, W: n_in x n_out, row-major):
    /// dW += x^T dy, then dx = dy W^T.
    #[allow(clippy::too_many_arguments)]
    fn linear_back(
        &mut self,
        r: usize,
        n_in: usize,
        n_out: usize,
        x: usize,
        dy: usize,
        w: usize,
        dw: usize,
        dx: usize,
    ) {
        self.gemm(
            Gemm::new(
                n_in,
                n_out,
                r,
                mat(x, 1, n_in),
                mat(dy, n_out, 1),
                mat(dw, n_out, 1),
            )
            .acc(),
        );
        self.gemm(Gemm::new(
            r,
            n_in,
            n_out,
            mat(dy, n_out, 1),
            mat(w, 1, n_out),
            mat(dx, n_in, 1),
        ));
    }

    fn layer_norm(&mut self, r: usize, d: usize, x: usize, g: usize, b: usize, out: [usize; 3]) {
        self.flat(K::LayerNorm, &[r, d, x, g, b, out[0], out[1], out[2]], r);
    }

    /// dx (+)= LN backward of dy; dg += sum dy xhat, db += sum dy.
    #[allow(clippy::too_many_arguments)]
    fn ln_back(
        &mut self,
        r: usize,
        d: usize,
        dy: usize,
        xhat: usize,
        rstd: usize,
        g: usize,
        dx: usize,
        accumulate: bool,
        dg: usize,
        db: usize,
    ) {
        self.flat(
            K::LnBack,
            &[r, d, dy, xhat, rstd, g, dx, usize::from(accumulate)],
            r,
        );
        self.col_sum(d, r, d, dy, Some(xhat), dg);
        self.col_sum(d, r, d, dy, None, db);
    }

    fn col_sum(&mut self, cols: usize, n: usize, s: usize, a: usize, b: Option<usize>, out: usize) {
        let words = [
            o32(cols),
            o32(n),
            o32(s),
            o32(a),
            b.map_or(NONE, o32),
            o32(out),
        ];
        let (x, y) = groups(cols);
        self.push(K::ColSum, &words, (x, y, 1));
    }

    fn rope(&mut self, c: &Config, r: usize, x: usize, z_stride: usize, table: usize, sign: f32) {
        let half = c.d_head() / 2;
        let words = [
            o32(r),
            o32(c.d_model),
            o32(c.ctx),
            o32(c.d_head()),
            o32(x),
            o32(z_stride),
            o32(table),
            o32(table + c.ctx * half),
            sign.to_bits(),
        ];
        let (gx, gy) = groups(2 * r * c.d_model / 2);
        self.push(K::Rope, &words, (gx, gy, 1));
    }
}

/// The dispatches of a training step: forward through the logits (`forward`), then the loss,
/// backward and norm (`gradient`), then Adam (`all`).
struct Plan {
    passes: Vec<Pass>,
    forward: usize,
    gradient: usize,
}

fn plan(
    ctx: &GpuContext,
    kernels: &TransformerKernels,
    c: &Config,
    batch: usize,
    ar: &Arena,
    mem: &wgpu::Buffer,
    ids: &wgpu::Buffer,
) -> Plan {
    let lo = Layout::new(c);
    let mut bd = Builder {
        ctx,
        kernels,
        mem,
        ids,
        passes: Vec::new(),
    };
    let (d, f, v, t, nh, dh) = (c.d_model, c.d_ff(), c.vocab, c.ctx, c.n_heads, c.d_head());
    let r = batch * t;
    let th = ar.theta;
    let gr = ar.grad;
    let rd = r * d;
    let scale = 1.0 / (dh as f32).sqrt();
    let pos = match c.pos {
        Pos::Learned => th + lo.pos_emb,
        Pos::Sinusoidal => ar.table,
        Pos::Rope => NONE as usize,
    };
    bd.flat(K::Embed, &[r, d, t, th + lo.tok_emb, pos, ar.x], r * d);
    for (l, b) in lo.layers.iter().zip(&ar.blocks) {
        bd.layer_norm(
            r,
            d,
            ar.x,
            th + l.ln1_g,
            th + l.ln1_b,
            [b.xhat1, b.rstd1, b.h1],
        );
        // q, k, v = h1 W_q, h1 W_k, h1 W_v (W_q, W_k, W_v consecutive in the layout).
        let mut g = Gemm::new(
            r,
            d,
            d,
            mat(b.h1, d, 1),
            zmat(th + l.w_q, d, 1, 0, d * d),
            zmat(b.qkv, d, 1, 0, rd),
        );
        g.z = (1, 3);
        bd.gemm(g);
        if c.pos == Pos::Rope {
            bd.rope(c, r, b.qkv, rd, ar.table, 1.0);
        }
        // Per (sequence, head): S = q_h k_h^T / sqrt(dh), A = causal softmax(S), o_h = A v_h.
        let head = |off: usize| zmat(off, d, 1, t * d, dh);
        let mut g = Gemm::new(
            t,
            t,
            dh,
            head(b.qkv),
            zmat(b.qkv + rd, 1, d, t * d, dh),
            zmat(b.attn, t, 1, nh * t * t, t * t),
        );
        g.z = (batch, nh);
        g.alpha = scale;
        bd.gemm(g);
        bd.flat(K::Softmax, &[batch * nh * t, t, b.attn], batch * nh * t);
        let mut g = Gemm::new(
            t,
            dh,
            t,
            zmat(b.attn, t, 1, nh * t * t, t * t),
            head(b.qkv + 2 * rd),
            head(b.o),
        );
        g.z = (batch, nh);
        bd.gemm(g);
        // x += o W_o
        bd.gemm(
            Gemm::new(
                r,
                d,
                d,
                mat(b.o, d, 1),
                mat(th + l.w_o, d, 1),
                mat(ar.x, d, 1),
            )
            .acc(),
        );
        bd.layer_norm(
            r,
            d,
            ar.x,
            th + l.ln2_g,
            th + l.ln2_b,
            [b.xhat2, b.rstd2, b.h2],
        );
        // u = h2 W_1 + b_1;  f = GELU(u);  x += f W_2 + b_2
        let mut g = Gemm::new(
            r,
            f,
            d,
            mat(b.h2, d, 1),
            mat(th + l.w_1, f, 1),
            mat(b.u, f, 1),
        );
        g.bias = Some(th + l.b_1);
        bd.gemm(g);
        bd.flat(K::Gelu, &[r * f, b.u, b.f], r * f);
        let mut g = Gemm::new(
            r,
            d,
            f,
            mat(b.f, f, 1),
            mat(th + l.w_2, d, 1),
            mat(ar.x, d, 1),
        )
        .acc();
        g.bias = Some(th + l.b_2);
        bd.gemm(g);
    }
    bd.layer_norm(
        r,
        d,
        ar.x,
        th + lo.lnf_g,
        th + lo.lnf_b,
        [ar.xhatf, ar.rstdf, ar.hf],
    );
    let w_out = if c.tied {
        mat(th + lo.tok_emb, 1, d) // E^T: (D, V)
    } else {
        mat(th + lo.w_out, v, 1)
    };
    bd.gemm(Gemm::new(
        r,
        v,
        d,
        mat(ar.hf, d, 1),
        w_out,
        mat(ar.logits, v, 1),
    ));
    let forward = bd.passes.len();

    // The loss and dL/dlogits.
    bd.flat(
        K::Xent,
        &[r, v, ar.logits, ar.dlogits, ar.rows, ar.scalars],
        r,
    );
    if c.tied {
        // dE += dlogits^T hf;  dhf = dlogits E
        bd.gemm(
            Gemm::new(
                v,
                d,
                r,
                mat(ar.dlogits, 1, v),
                mat(ar.hf, d, 1),
                mat(gr + lo.tok_emb, d, 1),
            )
            .acc(),
        );
        bd.gemm(Gemm::new(
            r,
            d,
            v,
            mat(ar.dlogits, v, 1),
            mat(th + lo.tok_emb, d, 1),
            mat(ar.dtmp, d, 1),
        ));
    } else {
        // dW_out += hf^T dlogits;  dhf = dlogits W_out^T
        bd.linear_back(
            r,
            d,
            v,
            ar.hf,
            ar.dlogits,
            th + lo.w_out,
            gr + lo.w_out,
            ar.dtmp,
        );
    }
    bd.ln_back(
        r,
        d,
        ar.dtmp,
        ar.xhatf,
        ar.rstdf,
        th + lo.lnf_g,
        ar.dx,
        false,
        gr + lo.lnf_g,
        gr + lo.lnf_b,
    );
    for (l, b) in lo.layers.iter().zip(&ar.blocks).rev() {
        // x_out = x_mid + GELU(h2 W_1 + b_1) W_2 + b_2
        bd.col_sum(d, r, d, ar.dx, None, gr + l.b_2);
        bd.linear_back(r, f, d, b.f, ar.dx, th + l.w_2, gr + l.w_2, ar.du);
        bd.flat(K::GeluBack, &[r * f, ar.du, b.u], r * f);
        bd.col_sum(f, r, f, ar.du, None, gr + l.b_1);
        bd.linear_back(r, d, f, b.h2, ar.du, th + l.w_1, gr + l.w_1, ar.dtmp);
        bd.ln_back(
            r,
            d,
            ar.dtmp,
            b.xhat2,
            b.rstd2,
            th + l.ln2_g,
            ar.dx,
            true,
            gr + l.ln2_g,
            gr + l.ln2_b,
        );
        // x_mid = x_in + concat_h(A_h v_h) W_o
        bd.linear_back(r, d, d, b.o, ar.dx, th + l.w_o, gr + l.w_o, ar.dtmp);
        let head = |off: usize| zmat(off, d, 1, t * d, dh);
        let head_t = |off: usize| zmat(off, 1, d, t * d, dh);
        let tt = |off: usize| zmat(off, t, 1, nh * t * t, t * t);
        let tt_t = |off: usize| zmat(off, 1, t, nh * t * t, t * t);
        let per_head = |mut g: Gemm| {
            g.z = (batch, nh);
            g
        };
        // dA = d_o_h v_h^T;  dv_h = A^T d_o_h
        bd.gemm(per_head(Gemm::new(
            t,
            t,
            dh,
            head(ar.dtmp),
            head_t(b.qkv + 2 * rd),
            tt(ar.da),
        )));
        bd.gemm(per_head(Gemm::new(
            t,
            dh,
            t,
            tt_t(b.attn),
            head(ar.dtmp),
            head(ar.dqkv + 2 * rd),
        )));
        // dS = A (dA - sum dA A) / sqrt(dh);  dq_h = dS k_h;  dk_h = dS^T q_h
        bd.flat(
            K::SoftmaxBack,
            &[batch * nh * t, t, b.attn, ar.da, scale.to_bits() as usize],
            batch * nh * t,
        );
        bd.gemm(per_head(Gemm::new(
            t,
            dh,
            t,
            tt(ar.da),
            head(b.qkv + rd),
            head(ar.dqkv),
        )));
        bd.gemm(per_head(Gemm::new(
            t,
            dh,
            t,
            tt_t(ar.da),
            head(b.qkv),
            head(ar.dqkv + rd),
        )));
        if c.pos == Pos::Rope {
            // RoPE is a rotation R_t: its backward is R_{-t}.
            bd.rope(c, r, ar.dqkv, rd, ar.table, -1.0);
        }
        // dW_{q,k,v} += h1^T d{q,k,v}
        let mut g = Gemm::new(
            d,
            d,
            r,
            mat(b.h1, 1, d),
            zmat(ar.dqkv, d, 1, 0, rd),
            zmat(gr + l.w_q, d, 1, 0, d * d),
        )
        .acc();
        g.z = (1, 3);
        bd.gemm(g);
        // dh1 = dq W_q^T + dk W_k^T + dv W_v^T
        for (i, w) in [l.w_q, l.w_k, l.w_v].into_iter().enumerate() {
            let mut g = Gemm::new(
                r,
                d,
                d,
                mat(ar.dqkv + i * rd, d, 1),
                mat(th + w, 1, d),
                mat(ar.dtmp, d, 1),
            );
            g.accumulate = i > 0;
            bd.gemm(g);
        }
        bd.ln_back(
            r,
            d,
            ar.dtmp,
            b.xhat1,
            b.rstd1,
            th + l.ln1_g,
            ar.dx,
            true,
            gr + l.ln1_g,
            gr + l.ln1_b,
        );
    }
    bd.flat(K::EmbedBack, &[v, d, r, ar.dx, gr + lo.tok_emb], v * d);
    if c.pos == Pos::Learned {
        bd.col_sum(t * d, batch, t * d, ar.dx, None, gr + lo.pos_emb);
    }
    bd.push(
        K::Finish,
        &[o32(r), o32(lo.len), o32(ar.rows), o32(gr), o32(ar.scalars)],
        (1, 1, 1),
    );
    let gradient = bd.passes.len();
    bd.flat(K::Adam, &[lo.len, th, gr, ar.m, ar.v, ar.scalars], lo.len);
    Plan {
        passes: bd.passes,
        forward,
        gradient,
    }
}

/// Adam's constants of the CPU Trainer (`train.rs`: `nn::Adam` with beta2 0.99, eps 1e-8).
pub const BETA1: f64 = 0.9;
pub const BETA2: f64 = 0.99;

/// The seed of the CPU Trainer's batch stream (`Trainer::new`: `Rng::new(seed ^ 0x5eed_da7a)`);
/// `tests/gpu_transformer.rs` checks that both draw the same batches.
pub const DATA_SEED_XOR: u64 = 0x5eed_da7a;

/// A training run on the GPU: the configuration, the batch stream and Adam's step count on
/// the CPU; parameters, Adam's moments and every activation on the device.
pub struct GpuTransformer {
    pub config: TrainConfig,
    pub model_config: Config,
    pub layout: Layout,
    pub arena: Arena,
    pub history: Vec<StepStats>,
    rng: Rng,
    mem: wgpu::Buffer,
    ids: wgpu::Buffer,
    plan: Plan,
    /// beta1^t and beta2^t as products (as `nn::Adam`), t = Adam steps taken.
    beta_t: (f64, f64),
    /// Steps submitted (Adam's t restarts with `set_params`; this does not).
    submitted: u64,
}

impl GpuTransformer {
    /// The model `Model::init(config.model_config(), config.seed)` (the CPU Trainer's), Adam's
    /// moments zero. `Err` for an invalid configuration or one larger than the device binds.
    pub fn new(
        ctx: &GpuContext,
        kernels: &TransformerKernels,
        config: TrainConfig,
    ) -> Result<GpuTransformer, String> {
        let mc = config.model_config();
        mc.validate()?;
        if config.batch == 0 {
            return Err("a batch needs at least one sequence".into());
        }
        let arena = Arena::new(&mc, config.batch);
        let bytes = (arena.len * 4) as u64;
        let limits = ctx.limits();
        if bytes > limits.max_storage_buffer_binding_size || bytes > limits.max_buffer_size {
            return Err(format!(
                "this model and batch need {bytes} bytes on the GPU, more than the device binds ({})",
                limits.max_storage_buffer_binding_size
            ));
        }
        let mem = storage(ctx, "transformer arena", arena.len);
        let ids = storage(ctx, "transformer ids", 2 * config.batch * mc.ctx);
        // Tables computed in f64 on the CPU (as the twin), rounded to f32.
        let table: Vec<f32> = match mc.pos {
            Pos::Learned => Vec::new(),
            Pos::Sinusoidal => sinusoidal_positions(mc.ctx, mc.d_model)
                .iter()
                .map(|&x| x as f32)
                .collect(),
            Pos::Rope => {
                let thetas = crate::rope::thetas(mc.d_head(), 10_000.0);
                let angles: Vec<f64> = (0..mc.ctx)
                    .flat_map(|t| thetas.iter().map(move |th| t as f64 * th))
                    .collect();
                let (sin, cos): (Vec<f32>, Vec<f32>) = angles
                    .iter()
                    .map(|&a| {
                        let (s, c) = crate::math::sin_cos(a);
                        (s as f32, c as f32)
                    })
                    .unzip();
                cos.into_iter().chain(sin).collect()
            }
        };
        if !table.is_empty() {
            ctx.queue
                .write_buffer(&mem, (arena.table * 4) as u64, &f32_bytes(&table));
        }
        let plan = plan(ctx, kernels, &mc, config.batch, &arena, &mem, &ids);
        let mut run = GpuTransformer {
            layout: Layout::new(&mc),
            model_config: mc.clone(),
            rng: Rng::new(config.seed ^ DATA_SEED_XOR),
            config,
            arena,
            history: Vec::new(),
            mem,
            ids,
            plan,
            beta_t: (1.0, 1.0),
            submitted: 0,
        };
        let init = Model::init(mc, run.config.seed);
        run.set_params(ctx, &init.params)?;
        ctx.take_errors()?;
        Ok(run)
    }

    pub fn n_params(&self) -> usize {
        self.layout.len
    }

    /// Steps submitted (as `Trainer::steps`; `history` holds those whose statistics were
    /// read and recorded).
    pub fn steps(&self) -> u64 {
        self.submitted
    }

    /// The next batch of the run's stream (the CPU Trainer's, draw for draw).
    pub fn draw_batch(&mut self) -> Vec<Example> {
        (0..self.config.batch)
            .map(|_| self.config.task.example(self.config.ctx, &mut self.rng))
            .collect()
    }

    /// Token ids and targets padded to ctx, and the step's scalars (1/n, n, Adam's step size
    /// and bias correction for step `t`, the clip) to the device.
    fn upload(&self, ctx: &GpuContext, batch: &[Example], adam: (f64, f64)) -> Result<(), String> {
        let (b, t) = (self.config.batch, self.model_config.ctx);
        if batch.len() != b {
            return Err(format!("a batch is {b} sequences, got {}", batch.len()));
        }
        let mut ids = vec![0u32; 2 * b * t];
        ids[b * t..].fill(NONE);
        let mut n = 0usize;
        for (s, e) in batch.iter().enumerate() {
            if e.tokens.is_empty() || e.tokens.len() > t || e.targets.len() != e.tokens.len() {
                return Err(format!(
                    "sequence {s}: {} tokens for ctx {t}",
                    e.tokens.len()
                ));
            }
            for (i, (&tok, tgt)) in e.tokens.iter().zip(&e.targets).enumerate() {
                if tok >= self.model_config.vocab
                    || tgt.is_some_and(|y| y >= self.model_config.vocab)
                {
                    return Err(format!("sequence {s}: a token outside the vocabulary"));
                }
                ids[s * t + i] = tok as u32;
                if let Some(y) = *tgt {
                    ids[b * t + s * t + i] = y as u32;
                    n += 1;
                }
            }
        }
        let n = n.max(1);
        ctx.queue.write_buffer(
            &self.ids,
            0,
            &ids.iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        let scalars = [
            (1.0 / n as f64) as f32,
            n as f32,
            adam.0 as f32,
            adam.1 as f32,
            0.0,
            0.0,
            0.0,
            self.config.clip as f32,
        ];
        ctx.queue.write_buffer(
            &self.mem,
            (self.arena.scalars * 4) as u64,
            &f32_bytes(&scalars),
        );
        Ok(())
    }

    /// Encode and submit the first `n` passes (the gradient cleared first when they reach the
    /// backward pass).
    fn submit(&self, ctx: &GpuContext, n: usize) -> Result<(), String> {
        ctx.take_errors()?;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        if n > self.plan.forward {
            encoder.clear_buffer(
                &self.mem,
                (self.arena.grad * 4) as u64,
                Some((self.layout.len * 4) as u64),
            );
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for p in &self.plan.passes[..n] {
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &p.group, &[]);
                pass.dispatch_workgroups(p.workgroups.0, p.workgroups.1, p.workgroups.2);
            }
        }
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// One Adam step on `batch`, submitted and not waited for; the returned [`StepReadback`]
    /// reads its loss, accuracy and gradient norm (12 bytes) when awaited.
    pub fn submit_step_on(
        &mut self,
        ctx: &GpuContext,
        batch: &[Example],
    ) -> Result<StepReadback, String> {
        let (b1, b2) = (self.beta_t.0 * BETA1, self.beta_t.1 * BETA2);
        // nn::Adam: step_size = lr / (1 - beta1^t), denominator sqrt(v) / sqrt(1 - beta2^t) + eps.
        let adam = (self.config.lr / (1.0 - b1), (1.0 - b2).sqrt());
        self.upload(ctx, batch, adam)?;
        self.submit(ctx, self.plan.passes.len())?;
        self.beta_t = (b1, b2);
        self.submitted += 1;
        Ok(StepReadback {
            mem: self.mem.clone(),
            off: self.arena.scalars + 4,
            step: self.submitted,
        })
    }

    /// One Adam step on the next batch of the stream, submitted (the browser's half of
    /// `step`: await the readback, then [`GpuTransformer::record`] its statistics).
    pub fn submit_step(&mut self, ctx: &GpuContext) -> Result<StepReadback, String> {
        let batch = self.draw_batch();
        self.submit_step_on(ctx, &batch)
    }

    /// Appends a step's statistics to `history`.
    pub fn record(&mut self, stats: StepStats) {
        self.history.push(stats);
    }

    /// `submit_step` then its statistics, blocking (native; `Trainer::step`'s twin).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step(&mut self, ctx: &GpuContext) -> Result<StepStats, String> {
        let pending = self.submit_step(ctx)?;
        let stats = super::block_on(pending.read(ctx))?;
        self.record(stats);
        Ok(stats)
    }

    /// The logits (B ctx rows of V, sequence b's position t at row b ctx + t) of `batch` at
    /// the current parameters.
    pub async fn forward(&self, ctx: &GpuContext, batch: &[Example]) -> Result<Vec<f32>, String> {
        self.upload(ctx, batch, (0.0, 1.0))?;
        self.submit(ctx, self.plan.forward)?;
        let r = self.config.batch * self.model_config.ctx;
        self.read(ctx, self.arena.logits, r * self.model_config.vocab)
            .await
    }

    /// The gradient of the mean loss on `batch` (before clipping) and [loss, accuracy, norm],
    /// without a step.
    pub async fn gradient(
        &self,
        ctx: &GpuContext,
        batch: &[Example],
    ) -> Result<(Vec<f32>, [f32; 3]), String> {
        self.upload(ctx, batch, (0.0, 1.0))?;
        self.submit(ctx, self.plan.gradient)?;
        let g = self.read(ctx, self.arena.grad, self.layout.len).await?;
        let s = self.read(ctx, self.arena.scalars + 4, 3).await?;
        Ok((g, [s[0], s[1], s[2]]))
    }

    /// The parameters now, in the CPU model's flat layout.
    pub async fn params(&self, ctx: &GpuContext) -> Result<Vec<f64>, String> {
        self.params_readback().read(ctx).await
    }

    /// The parameters as they will be after the work submitted so far, read when awaited
    /// (owned: nothing of the trainer is borrowed across the browser's await).
    pub fn params_readback(&self) -> ParamsReadback {
        ParamsReadback {
            mem: self.mem.clone(),
            off: self.arena.theta,
            len: self.layout.len,
        }
    }

    /// The CPU model with the GPU's parameters (for attention maps and head scores).
    pub async fn model(&self, ctx: &GpuContext) -> Result<Model, String> {
        Ok(Model::from_params(
            self.model_config.clone(),
            self.params(ctx).await?,
        ))
    }

    /// Replace the parameters (rounded to f32) and restart Adam (moments zero, t = 0).
    pub fn set_params(&mut self, ctx: &GpuContext, params: &[f64]) -> Result<(), String> {
        if params.len() != self.layout.len {
            return Err(format!(
                "{} parameters given, the model has {}",
                params.len(),
                self.layout.len
            ));
        }
        let p: Vec<f32> = params.iter().map(|&x| x as f32).collect();
        ctx.queue
            .write_buffer(&self.mem, (self.arena.theta * 4) as u64, &f32_bytes(&p));
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.clear_buffer(
            &self.mem,
            (self.arena.m * 4) as u64,
            Some((2 * self.layout.len * 4) as u64),
        );
        ctx.queue.submit([encoder.finish()]);
        self.beta_t = (1.0, 1.0);
        Ok(())
    }

    /// `len` floats of the arena from `off`.
    async fn read(&self, ctx: &GpuContext, off: usize, len: usize) -> Result<Vec<f32>, String> {
        read_arena(ctx, &self.mem, off, len).await
    }
}

/// `len` floats of an arena from `off` (copied into a buffer of their own, then mapped).
async fn read_arena(
    ctx: &GpuContext,
    mem: &wgpu::Buffer,
    off: usize,
    len: usize,
) -> Result<Vec<f32>, String> {
    let out = storage(ctx, "transformer readback", len);
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    encoder.copy_buffer_to_buffer(mem, (off * 4) as u64, &out, 0, (len * 4) as u64);
    ctx.queue.submit([encoder.finish()]);
    read_f32(ctx, &out, len).await
}

/// A submitted step's statistics, to be read (owned, so a widget can await it without
/// holding a borrow of the trainer).
pub struct StepReadback {
    mem: wgpu::Buffer,
    off: usize,
    /// The step's number (1 for the first).
    pub step: u64,
}

impl StepReadback {
    /// Loss, accuracy and gradient norm of the step (on its batch, before its update). `Err`
    /// when the loss or the norm is not finite; then Adam moved nothing, as the CPU Trainer.
    pub async fn read(self, ctx: &GpuContext) -> Result<StepStats, String> {
        let s = read_arena(ctx, &self.mem, self.off, 3).await?;
        let (loss, accuracy, grad_norm) = (f64::from(s[0]), f64::from(s[1]), f64::from(s[2]));
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(format!(
                "the loss diverged at step {} (loss {loss}, gradient norm {grad_norm}); lower the learning rate",
                self.step
            ));
        }
        Ok(StepStats {
            step: self.step,
            loss,
            accuracy,
            grad_norm,
        })
    }
}

/// The parameters, to be read (owned, as [`StepReadback`]).
pub struct ParamsReadback {
    mem: wgpu::Buffer,
    off: usize,
    len: usize,
}

impl ParamsReadback {
    /// In the CPU model's flat layout.
    pub async fn read(self, ctx: &GpuContext) -> Result<Vec<f64>, String> {
        let p = read_arena(ctx, &self.mem, self.off, self.len).await?;
        Ok(p.into_iter().map(f64::from).collect())
    }
}
