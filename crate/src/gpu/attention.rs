//! Naive attention on the GPU (`attention.wgsl`): scores, softmax and the weighted sum as
//! three passes through global memory, with the (H, rows, N) score matrix materialised, as
//! the textbook writes it. Optionally a fourth pass pools the probabilities into a small
//! heatmap for long sequences. Twin: [`crate::attention::attention`].
//!
//! Rows go in chunks so that one chunk's scores fit a storage binding (and at most
//! [`MAX_SCRATCH_BYTES`]): N = 8192 with 8 heads is 2 GiB of scores in one piece.

use crate::attention::Options;

use super::{bind, layout, storage, uniform, AttnBuffers, Dispatch, GpuContext};
use super::{READ, READ_WRITE, UNIFORM};

/// The WGSL source, validated by naga in `tests/gpu_wgsl.rs`, its comments stripped at
/// compile time (`wgsl!`).
pub const WGSL: &str = wgsl!(include_str!("attention.wgsl"));

/// Cap on the score scratch buffer of one chunk, bytes.
pub const MAX_SCRATCH_BYTES: u64 = 256 << 20;

/// The four pipelines of `attention.wgsl`, built once per device.
pub struct NaiveAttention {
    bgl: wgpu::BindGroupLayout,
    scores: wgpu::ComputePipeline,
    softmax: wgpu::ComputePipeline,
    weighted_sum: wgpu::ComputePipeline,
    pool: wgpu::ComputePipeline,
}

/// What the naive kernel keeps after a run besides O: the probabilities of the last chunk
/// (all of them when one chunk covers every row) and, if asked for, the pooled heatmap.
pub struct NaivePlan {
    chunks: Vec<(wgpu::BindGroup, u32)>,
    pub probs: wgpu::Buffer,
    /// Rows per chunk; the probabilities are (H, chunk_rows, N).
    pub chunk_rows: usize,
    pub pooled: Option<(wgpu::Buffer, usize)>,
    n_heads: u32,
    seq_len: u32,
    dp4: u32,
    pipelines: [wgpu::ComputePipeline; 4],
}

impl NaiveAttention {
    pub fn new(ctx: &GpuContext) -> NaiveAttention {
        let (bgl, pl) = layout(
            ctx,
            "naive attention",
            &[
                (0, UNIFORM),
                (1, READ),
                (2, READ),
                (3, READ),
                (4, READ_WRITE),
                (5, READ_WRITE),
                (6, READ_WRITE),
            ],
        );
        let p = |entry: &str| ctx.pipeline("naive attention", WGSL, &pl, entry);
        NaiveAttention {
            scores: p("scores"),
            softmax: p("softmax_rows"),
            weighted_sum: p("weighted_sum"),
            pool: p("pool"),
            bgl,
        }
    }

    /// Rows per chunk for a problem: as many as fit the binding limit and the cap.
    pub fn chunk_rows(ctx: &GpuContext, n_heads: usize, seq_len: usize) -> usize {
        let limits = ctx.limits();
        let cap = MAX_SCRATCH_BYTES
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size);
        let row_bytes = (n_heads * seq_len * 4) as u64;
        ((cap / row_bytes) as usize).clamp(1, seq_len.min(65_535))
    }

    /// Bind everything for one problem; `pool_blocks` > 0 adds the pooled heatmap.
    pub fn plan(
        &self,
        ctx: &GpuContext,
        bufs: &AttnBuffers,
        opts: Options,
        pool_blocks: usize,
    ) -> NaivePlan {
        let rows = Self::chunk_rows(ctx, bufs.dims.n_heads, bufs.dims.seq_len);
        self.plan_chunked(ctx, bufs, opts, pool_blocks, rows)
    }

    /// `plan` with a given number of query rows per chunk (tests force several chunks).
    pub fn plan_chunked(
        &self,
        ctx: &GpuContext,
        bufs: &AttnBuffers,
        opts: Options,
        pool_blocks: usize,
        chunk_rows: usize,
    ) -> NaivePlan {
        let d = bufs.dims;
        let chunk_rows = chunk_rows.clamp(1, d.seq_len);
        let probs = storage(ctx, "scores", d.n_heads * chunk_rows * d.seq_len);
        let blocks = pool_blocks.min(d.seq_len);
        let pooled = storage(ctx, "pooled", d.n_heads * blocks.max(1) * blocks.max(1));
        let scale = opts.scale(d.head_dim);
        let chunks = (0..d.seq_len)
            .step_by(chunk_rows)
            .map(|row0| {
                let rows = chunk_rows.min(d.seq_len - row0);
                let params = uniform(
                    ctx,
                    &[
                        d.n_heads as u32,
                        d.n_kv_heads as u32,
                        d.seq_len as u32,
                        (bufs.dp / 4) as u32,
                        u32::from(opts.causal),
                        row0 as u32,
                        chunk_rows as u32,
                        blocks as u32,
                        scale.to_bits(),
                    ],
                );
                let group = bind(
                    ctx,
                    &self.bgl,
                    &[&params, &bufs.q, &bufs.k, &bufs.v, &probs, &bufs.o, &pooled],
                );
                (group, rows as u32)
            })
            .collect();
        NaivePlan {
            chunks,
            probs,
            chunk_rows,
            pooled: (pool_blocks > 0).then_some((pooled, blocks)),
            n_heads: d.n_heads as u32,
            seq_len: d.seq_len as u32,
            dp4: (bufs.dp / 4) as u32,
            pipelines: [
                self.scores.clone(),
                self.softmax.clone(),
                self.weighted_sum.clone(),
                self.pool.clone(),
            ],
        }
    }
}

impl Dispatch for NaivePlan {
    fn encode_before(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some((pooled, _)) = &self.pooled {
            encoder.clear_buffer(pooled, 0, None);
        }
    }

    fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        let [scores, softmax, weighted_sum, pool] = &self.pipelines;
        let (h, n) = (self.n_heads, self.seq_len);
        for (group, rows) in &self.chunks {
            pass.set_bind_group(0, group, &[]);
            pass.set_pipeline(scores);
            pass.dispatch_workgroups(n.div_ceil(16), rows.div_ceil(16), h);
            pass.set_pipeline(softmax);
            pass.dispatch_workgroups(*rows, h, 1);
            pass.set_pipeline(weighted_sum);
            pass.dispatch_workgroups((rows * self.dp4).div_ceil(64), h, 1);
            if let Some((_, blocks)) = &self.pooled {
                let b = *blocks as u32;
                pass.set_pipeline(pool);
                pass.dispatch_workgroups(b.div_ceil(8), b.div_ceil(8), h);
            }
        }
    }
}
