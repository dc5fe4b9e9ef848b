//! Many particles through a sampler on the GPU (`sampler.wgsl`): a workgroup of 64 threads
//! runs the MLP for 16 particles at once (activations in workgroup memory, each weight read
//! once and used 16 times), one dispatch per row of the sampler's table, every row's coefficients
//! and time embedding uploaded once (a uniform record per row, bound at a dynamic offset), no
//! readback between steps. Twin: [`crate::diffusion::sample::Run`], with the counter-based
//! noise of [`crate::diffusion::noise`] computed in the kernel.
//!
//! The rows are those of [`crate::diffusion::sample::Plan`] ([`stages_from_plan`]): for every
//! particle, `out = net(x, e(s_r))`, `x <- a x + b out + c z_r + d prev`, `prev <- out`.
//! [`GpuSampler::run`] submits the draw and every row; [`GpuSampler::run_stages`] a range of
//! rows (an animation advancing a few per frame); [`GpuSampler::positions`] reads the
//! particles back asynchronously and [`GpuSampler::trajectories`] the recorded paths of the
//! first few.

use std::num::NonZeroU64;

use wgpu::util::DeviceExt;

use super::mlp::{f32_bytes, groups, param_count, MAX_HIDDEN};
use super::{read_f32, storage, GpuContext, READ, READ_WRITE};

/// The WGSL source (validated by naga in `tests/wgsl.rs`), its comments stripped at compile
/// time (`wgsl!`).
pub const WGSL: &str = wgsl!(include_str!("sampler.wgsl"));

/// The noise counter of the initial draw x_T (flow: x_0), as in the spec.
pub const INIT_NOISE_STEP: u32 = 0xFFFF_FFFF;

/// Bytes of one `Stage` record in sampler.wgsl.
const RECORD_BYTES: u64 = 112;
const NO_RECORD: u32 = 0xFFFF_FFFF;
const NOISE: u32 = 4;
/// Particles per workgroup of `advance` (`TP` in sampler.wgsl).
const PARTICLES_PER_WORKGROUP: usize = 16;
/// Workgroup memory of `advance`: two halves of TP x MAX_H floats.
const WORKGROUP_BYTES: u32 = 16_384;

/// One row: `out = net(x, embedding)`, `x <- a x + b out + c z(seed, noise_step, i) + d prev`,
/// `prev <- out`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    /// The time embedding e(s) of this row (`crate::diffusion::mlp::time_embedding`).
    pub embedding: [f32; 16],
    /// The noise counter (the row index r of the table); `None`: no noise (c ignored).
    pub noise_step: Option<u32>,
}

/// The rows of a CPU sampling plan, as the kernel takes them: row r's noise is step r, drawn
/// only where c != 0 (as `Run::step`).
pub fn stages_from_plan(plan: &crate::diffusion::sample::Plan) -> Vec<Stage> {
    plan.rows
        .iter()
        .zip(&plan.s)
        .enumerate()
        .map(|(r, (&[a, b, c, d], &s))| Stage {
            a,
            b,
            c,
            d,
            embedding: crate::diffusion::mlp::time_embedding(s),
            noise_step: (c != 0.0).then_some(r as u32),
        })
        .collect()
}

/// The two pipelines of `sampler.wgsl`, built once per device.
pub struct SamplerKernels {
    bgl: wgpu::BindGroupLayout,
    init: wgpu::ComputePipeline,
    advance: wgpu::ComputePipeline,
}

impl SamplerKernels {
    /// `Err` where the device has less workgroup memory than WebGPU guarantees (16 KiB).
    pub fn new(ctx: &GpuContext) -> Result<SamplerKernels, String> {
        let have = ctx.limits().max_compute_workgroup_storage_size;
        if have < WORKGROUP_BYTES {
            return Err(format!(
                "the sampler needs {WORKGROUP_BYTES} bytes of workgroup memory; this device has {have}"
            ));
        }
        let buffer = |binding, ty, dynamic, min: Option<NonZeroU64>| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: dynamic,
                min_binding_size: min,
            },
            count: None,
        };
        let bgl = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("sampler"),
                entries: &[
                    buffer(
                        0,
                        wgpu::BufferBindingType::Uniform,
                        true,
                        NonZeroU64::new(RECORD_BYTES),
                    ),
                    buffer(1, READ, false, None),
                    buffer(2, READ_WRITE, false, None),
                    buffer(3, READ_WRITE, false, None),
                    buffer(4, READ_WRITE, false, None),
                ],
            });
        let pl = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("sampler"),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
        Ok(SamplerKernels {
            init: ctx.pipeline("sampler", WGSL, &pl, "init"),
            advance: ctx.pipeline("sampler", WGSL, &pl, "advance"),
            bgl,
        })
    }
}

/// One sampling problem on the device: the particles, the stages and the paths recorded.
pub struct GpuSampler {
    pub n: usize,
    pub hidden: usize,
    /// Rows (dispatches after the initial draw).
    pub n_stages: usize,
    /// Particles whose paths are recorded (the first ones), and rows recorded (the initial
    /// draw, then every row).
    pub n_traj: usize,
    pub traj_rows: usize,
    x: wgpu::Buffer,
    traj: wgpu::Buffer,
    group: wgpu::BindGroup,
    stride: u64,
    init: wgpu::ComputePipeline,
    advance: wgpu::ComputePipeline,
}

impl GpuSampler {
    /// `n` particles of a `hidden`-wide MLP with parameters `params`, drawn from the seed's
    /// noise at `init_noise_step` ([`INIT_NOISE_STEP`] for x_T), then moved by `stages`;
    /// the paths of the first `n_traj` particles are recorded.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: &GpuContext,
        kernels: &SamplerKernels,
        params: &[f32],
        hidden: usize,
        n: usize,
        seed: u32,
        init_noise_step: u32,
        stages: &[Stage],
        n_traj: usize,
    ) -> Result<GpuSampler, String> {
        if hidden == 0 || hidden > MAX_HIDDEN {
            return Err(format!(
                "hidden width {hidden}: the GPU sampler takes 1 to {MAX_HIDDEN}"
            ));
        }
        if params.len() != param_count(hidden) {
            return Err(format!(
                "{} parameters given, the {hidden}-wide MLP has {}",
                params.len(),
                param_count(hidden)
            ));
        }
        if n == 0 {
            return Err("no particles to sample".to_string());
        }
        let limits = ctx.limits();
        let bytes = (n * 8) as u64;
        if bytes > limits.max_storage_buffer_binding_size || bytes > limits.max_buffer_size {
            return Err(format!(
                "{n} particles need {bytes} bytes, more than this device binds"
            ));
        }
        let n_traj = n_traj.min(n);
        let traj_rows = 1 + stages.len();
        if ((traj_rows * n_traj * 8) as u64) > limits.max_storage_buffer_binding_size {
            return Err(format!(
                "{n_traj} trajectories of {traj_rows} rows do not fit a binding"
            ));
        }
        let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
        let stride = RECORD_BYTES.div_ceil(align) * align;
        // Record 0: the initial draw; record 1 + r: row r.
        let mut records = vec![0u8; (stride as usize) * (1 + stages.len())];
        let common = |flags: u32, noise_step: u32, record: u32| -> [u32; 8] {
            [
                n as u32,
                hidden as u32,
                seed,
                noise_step,
                flags,
                record,
                n_traj as u32,
                0,
            ]
        };
        let mut put = |k: usize, coef: [f32; 4], emb: &[f32; 16], tail: [u32; 8]| {
            let mut words: Vec<u32> = coef.iter().map(|c| c.to_bits()).collect();
            words.extend(emb.iter().map(|e| e.to_bits()));
            words.extend(tail);
            let at = k * stride as usize;
            for (j, w) in words.iter().enumerate() {
                records[at + 4 * j..at + 4 * j + 4].copy_from_slice(&w.to_le_bytes());
            }
        };
        put(0, [0.0; 4], &[0.0; 16], common(0, init_noise_step, 0));
        for (r, s) in stages.iter().enumerate() {
            let flags = if s.noise_step.is_some() { NOISE } else { 0 };
            let record = if n_traj > 0 { 1 + r as u32 } else { NO_RECORD };
            let tail = common(flags, s.noise_step.unwrap_or(0), record);
            put(1 + r, [s.a, s.b, s.c, s.d], &s.embedding, tail);
        }
        let stage_buf = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("sampler stages"),
                contents: &records,
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let theta = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("sampler theta"),
                contents: &f32_bytes(params),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let x = storage(ctx, "particles", 2 * n);
        let prev = storage(ctx, "previous outputs", 2 * n);
        let traj = storage(ctx, "trajectories", (2 * n_traj * traj_rows).max(2));
        let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sampler"),
            layout: &kernels.bgl,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &stage_buf,
                        offset: 0,
                        size: NonZeroU64::new(RECORD_BYTES),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: theta.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: x.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: prev.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: traj.as_entire_binding(),
                },
            ],
        });
        Ok(GpuSampler {
            n,
            hidden,
            n_stages: stages.len(),
            n_traj,
            traj_rows,
            x,
            traj,
            group,
            stride,
            init: kernels.init.clone(),
            advance: kernels.advance.clone(),
        })
    }

    /// The initial draw and every row, submitted (not waited for).
    pub fn run(&self, ctx: &GpuContext) -> Result<(), String> {
        self.run_stages(ctx, true, 0..self.n_stages)
    }

    /// Optionally the initial draw, then rows `range` (clamped to the rows there are), one
    /// dispatch each, submitted in one command buffer.
    pub fn run_stages(
        &self,
        ctx: &GpuContext,
        draw: bool,
        range: std::ops::Range<usize>,
    ) -> Result<(), String> {
        ctx.take_errors()?;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        self.encode(&mut encoder, draw, range);
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// The initial draw and every row, with a copy of the particles after the draw and after
    /// each row of `after_rows` (ascending), then the recorded paths, into one buffer, all in
    /// one command buffer (no readback between steps): `(1 + after_rows.len())` clouds of n
    /// points, then `traj_rows` rows of `n_traj` points, for a player scrubbing the reverse
    /// process to read back once with [`read_f32`] ([`GpuSampler::snapshot_floats`] floats).
    pub fn run_snapshots(
        &self,
        ctx: &GpuContext,
        after_rows: &[usize],
    ) -> Result<wgpu::Buffer, String> {
        ctx.take_errors()?;
        let cloud = (8 * self.n) as u64;
        let size = 4 * self.snapshot_floats(after_rows.len()) as u64;
        if size > ctx.limits().max_buffer_size {
            return Err(format!(
                "{size} bytes of snapshots, more than this device holds"
            ));
        }
        let snaps = storage(ctx, "snapshots", (size / 4) as usize);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        self.encode(&mut encoder, true, 0..0);
        encoder.copy_buffer_to_buffer(&self.x, 0, &snaps, 0, cloud);
        let mut done = 0;
        for (j, &r) in after_rows.iter().enumerate() {
            self.encode(&mut encoder, false, done..r + 1);
            done = done.max(r + 1);
            encoder.copy_buffer_to_buffer(&self.x, 0, &snaps, (1 + j as u64) * cloud, cloud);
        }
        let at = (1 + after_rows.len() as u64) * cloud;
        encoder.copy_buffer_to_buffer(&self.traj, 0, &snaps, at, size - at);
        ctx.queue.submit([encoder.finish()]);
        Ok(snaps)
    }

    /// Floats of [`GpuSampler::run_snapshots`]'s buffer for `kept` rows copied.
    pub fn snapshot_floats(&self, kept: usize) -> usize {
        2 * self.n * (1 + kept) + 2 * self.n_traj * self.traj_rows
    }

    /// One compute pass: the draw (optionally), then rows `range`.
    fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        draw: bool,
        range: std::ops::Range<usize>,
    ) {
        let (gx, gy) = groups(self.n);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        if draw {
            pass.set_pipeline(&self.init);
            pass.set_bind_group(0, &self.group, &[0]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        pass.set_pipeline(&self.advance);
        let tiles = self.n.div_ceil(PARTICLES_PER_WORKGROUP);
        let tx = tiles.min(65_535);
        let (tx, ty) = (tx as u32, tiles.div_ceil(tx) as u32);
        for k in range.start.min(self.n_stages)..range.end.min(self.n_stages) {
            let offset = ((1 + k) as u64 * self.stride) as u32;
            pass.set_bind_group(0, &self.group, &[offset]);
            pass.dispatch_workgroups(tx, ty, 1);
        }
    }

    /// The particles now, flat (x0, x1) per particle.
    pub async fn positions(&self, ctx: &GpuContext) -> Result<Vec<f32>, String> {
        read_f32(ctx, &self.x, 2 * self.n).await
    }

    /// The recorded paths: `traj_rows` rows of `n_traj` points (x0, x1), row 0 the draw,
    /// row 1 + r after table row r.
    pub async fn trajectories(&self, ctx: &GpuContext) -> Result<Vec<f32>, String> {
        read_f32(ctx, &self.traj, 2 * self.n_traj * self.traj_rows).await
    }
}
