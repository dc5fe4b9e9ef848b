//! Flash attention on the GPU (`flash.wgsl`): one workgroup per (query tile, head), the
//! online softmax over key/value tiles in workgroup memory, register tiles of 4 rows x 4 keys
//! per thread. Twin: [`crate::flash::flash_attention`].
//!
//! The tile sizes are constants of the shader, chosen per device from its limits: the
//! largest [`TileConfig`] whose workgroup memory and thread count the device allows (the
//! default WebGPU limit, 16 KiB of workgroup memory, fits the smallest useful ones).

use crate::attention::Options;

use super::{bind, layout, uniform, AttnBuffers, Dispatch, GpuContext};
use super::{READ, READ_WRITE, UNIFORM};

/// The WGSL source, with the default tile configuration (validated by naga in a plain test),
/// its comments stripped at compile time (`wgsl!`).
pub const WGSL: &str = wgsl!(include_str!("flash.wgsl"));

/// A tile configuration: `tx` x `ty` threads; query tiles of `4 ty` rows, key tiles of
/// `4 tx` keys, for heads padded to `dp` floats (a multiple of `4 tx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    pub tx: u32,
    pub ty: u32,
    pub dp: u32,
}

impl TileConfig {
    /// Query rows per workgroup, B_r.
    pub fn block_rows(&self) -> usize {
        4 * self.ty as usize
    }

    /// Keys per tile, B_c.
    pub fn block_cols(&self) -> usize {
        4 * self.tx as usize
    }

    pub fn threads(&self) -> u32 {
        self.tx * self.ty
    }

    /// Workgroup memory in bytes (see the header of flash.wgsl).
    pub fn workgroup_bytes(&self) -> u32 {
        let (br, bc, dp, tx) = (4 * self.ty, 4 * self.tx, self.dp, self.tx);
        4 * ((br + bc) * (dp + 4) + bc * dp + br * (bc + 4) + br * tx)
    }

    pub fn valid(&self) -> bool {
        self.tx > 0 && self.ty > 0 && self.dp > 0 && self.dp % (4 * self.tx) == 0
    }

    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        self.valid()
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
            && self.threads() <= limits.max_compute_invocations_per_workgroup
            && self.tx <= limits.max_compute_workgroup_size_x
            && self.ty <= limits.max_compute_workgroup_size_y
    }

    /// Candidates for heads padded to `dp`, best first (measured on an H200 and lavapipe;
    /// see docs/BENCHMARKS.md): wide tiles where memory allows, smaller ones down to what
    /// 16 KiB of workgroup memory holds.
    pub fn candidates(dp: usize) -> Vec<TileConfig> {
        let dp = dp as u32;
        [
            (8, 16),
            (8, 8),
            (4, 16),
            (4, 8),
            (4, 4),
            (2, 8),
            (2, 4),
            (1, 4),
        ]
        .into_iter()
        .map(|(tx, ty)| TileConfig { tx, ty, dp })
        .filter(TileConfig::valid)
        .collect()
    }

    /// The first candidate the device allows.
    pub fn choose(limits: &wgpu::Limits, dp: usize) -> Option<TileConfig> {
        Self::candidates(dp).into_iter().find(|c| c.fits(limits))
    }

    /// The shader for this configuration: the three tunable constants rewritten.
    pub fn source(&self) -> String {
        let mut src = WGSL.to_string();
        for (name, default, value) in [("TX", 8, self.tx), ("TY", 16, self.ty), ("DP", 64, self.dp)]
        {
            let line = format!("const {name}: u32 = {default}u;");
            assert!(src.contains(&line), "flash.wgsl lost the line {line}");
            src = src.replacen(&line, &format!("const {name}: u32 = {value}u;"), 1);
        }
        src
    }
}

/// The pipeline for one tile configuration.
pub struct FlashAttention {
    pub config: TileConfig,
    bgl: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

/// One bound problem, ready to dispatch.
pub struct FlashPlan {
    group: wgpu::BindGroup,
    pipeline: wgpu::ComputePipeline,
    workgroups: (u32, u32),
}

impl FlashAttention {
    /// The kernel for heads padded to `dp` floats, with the best configuration the device allows.
    pub fn new(ctx: &GpuContext, dp: usize) -> Result<FlashAttention, String> {
        let config = TileConfig::choose(&ctx.limits(), dp).ok_or_else(|| {
            format!("no flash-attention tile fits this device's limits for head width {dp}")
        })?;
        Ok(Self::with_config(ctx, config))
    }

    /// A given configuration (tests and benchmarks sweep them); it must fit the device.
    pub fn with_config(ctx: &GpuContext, config: TileConfig) -> FlashAttention {
        Self::build(ctx, config, true)
    }

    /// `with_config` without wgpu's runtime bounds checks and loop bounding (native only;
    /// the browser always checks). The benchmark reports what the checks cost.
    pub fn with_config_unchecked(ctx: &GpuContext, config: TileConfig) -> FlashAttention {
        Self::build(ctx, config, false)
    }

    fn build(ctx: &GpuContext, config: TileConfig, checked: bool) -> FlashAttention {
        let (bgl, pl) = layout(
            ctx,
            "flash attention",
            &[
                (0, UNIFORM),
                (1, READ),
                (2, READ),
                (3, READ),
                (4, READ_WRITE),
            ],
        );
        let source = config.source();
        let pipeline = if checked {
            ctx.pipeline("flash attention", &source, &pl, "main")
        } else {
            // SAFETY: every index in flash.wgsl is bounded by construction: tile indices by the
            // constants BR, BC, D4 (loops run to them, and `config.valid()` makes D4 a multiple
            // of TX); global reads and writes are guarded by `row < seq_len` against buffers
            // that `AttnBuffers::upload` sizes as (heads, seq_len, DP); head and K/V-head
            // indices by the dispatch (n_heads workgroups in y) and `Dims::validate`
            // (n_kv_heads divides n_heads). Every loop has a constant or seq_len bound.
            unsafe { ctx.pipeline_unchecked("flash attention", &source, &pl, "main") }
        };
        FlashAttention {
            config,
            bgl,
            pipeline,
        }
    }

    pub fn plan(
        &self,
        ctx: &GpuContext,
        bufs: &AttnBuffers,
        opts: Options,
    ) -> Result<FlashPlan, String> {
        let d = bufs.dims;
        if bufs.dp != self.config.dp as usize {
            return Err(format!(
                "kernel built for head width {} but the buffers hold {}",
                self.config.dp, bufs.dp
            ));
        }
        let scale_log2 = opts.scale(d.head_dim) * std::f32::consts::LOG2_E;
        let params = uniform(
            ctx,
            &[
                d.n_heads as u32,
                d.n_kv_heads as u32,
                d.seq_len as u32,
                u32::from(opts.causal),
                scale_log2.to_bits(),
            ],
        );
        let tiles = d.seq_len.div_ceil(self.config.block_rows()) as u32;
        let max = ctx.limits().max_compute_workgroups_per_dimension;
        if tiles > max || d.n_heads as u32 > max {
            return Err(format!(
                "{tiles} query tiles exceed this device's {max} workgroups"
            ));
        }
        Ok(FlashPlan {
            group: bind(
                ctx,
                &self.bgl,
                &[&params, &bufs.q, &bufs.k, &bufs.v, &bufs.o],
            ),
            pipeline: self.pipeline.clone(),
            workgroups: (tiles, d.n_heads as u32),
        })
    }
}

impl Dispatch for FlashPlan {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(self.workgroups.0, self.workgroups.1, 1);
    }
}
