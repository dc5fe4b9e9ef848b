//! The denoiser MLP on the GPU (`mlp.wgsl`): forward, the exact backward of the simple loss
//! and Adam, for batches the CPU draws. Twin: `crate::diffusion::mlp` (`Mlp::forward`,
//! `Mlp::loss_and_grad`, `Adam::step`); the layout and the loss are those of
//! /work/diffusion-spec.md (18 -> H -> H -> H -> 2, SiLU, L = 1/(2B) sum (out - y)^2).
//!
//! [`GpuTrainer`] holds the parameters, Adam's m and v and all scratch on the device. One
//! [`GpuTrainer::step`] uploads a batch (B x 18 inputs, B x 2 targets) and submits nine
//! dispatches in one compute pass (three hidden layers, the output layer with the loss terms,
//! three backward layers, the per-chunk gradient sums, the chunk reduction with Adam); nothing
//! comes back unless asked: [`GpuTrainer::loss`] (one float), [`GpuTrainer::params`],
//! [`GpuTrainer::gradient`]. The batch gradient is reduced on the GPU in a fixed order (chunks
//! of [`CHUNK`] samples, then the chunks in order), so a run is deterministic.

use ndarray::{Array2, ArrayView2};
use wgpu::util::DeviceExt;

use super::{bind, layout, read_f32, storage, GpuContext, READ, READ_WRITE, UNIFORM};

/// The WGSL source (validated by naga in `tests/wgsl.rs`), its comments stripped at compile
/// time (`wgsl!`).
pub const WGSL: &str = wgsl!(include_str!("mlp.wgsl"));

/// Inputs per row: x (2) and the time embedding (16).
pub const INPUTS: usize = 18;
/// Outputs per row.
pub const OUTPUTS: usize = 2;
/// The widest hidden layer the sampler kernel holds in a thread (and the trainer accepts).
pub const MAX_HIDDEN: usize = 128;
/// Samples per partial gradient sum (`CHUNK` in mlp.wgsl).
pub const CHUNK: usize = 32;
/// Threads per workgroup of every entry point.
const WG: usize = 64;

/// Adam's constants (the spec's; `BETA1`, `BETA2`, `EPS` in mlp.wgsl).
pub const BETA1: f32 = 0.9;
pub const BETA2: f32 = 0.999;

/// Parameters of the 18 -> H -> H -> H -> 2 MLP: (18 + 1) H + 2 (H + 1) H + (H + 1) 2.
pub fn param_count(hidden: usize) -> usize {
    (INPUTS + 1) * hidden + 2 * (hidden + 1) * hidden + (hidden + 1) * OUTPUTS
}

/// Workgroups for `threads` flat threads: (x, y) with x <= 65535 (the WGSL side numbers
/// threads t = gid.x + gid.y * 64 * num_workgroups.x).
pub(crate) fn groups(threads: usize) -> (u32, u32) {
    let g = threads.div_ceil(WG).max(1);
    let x = g.min(65_535);
    (x as u32, g.div_ceil(x) as u32)
}

/// The six pipelines of `mlp.wgsl`, built once per device.
pub struct MlpKernels {
    bgl: wgpu::BindGroupLayout,
    forward_hidden: wgpu::ComputePipeline,
    forward_out: wgpu::ComputePipeline,
    backward_hidden: wgpu::ComputePipeline,
    grad_partial: wgpu::ComputePipeline,
    adam: wgpu::ComputePipeline,
    loss_sum: wgpu::ComputePipeline,
}

impl MlpKernels {
    /// `Err` where the device cannot bind the seven storage buffers a pass uses.
    pub fn new(ctx: &GpuContext) -> Result<MlpKernels, String> {
        let limits = ctx.limits();
        if limits.max_storage_buffers_per_shader_stage < 7 {
            return Err(format!(
                "the MLP kernels bind 7 storage buffers; this device allows {}",
                limits.max_storage_buffers_per_shader_stage
            ));
        }
        let (bgl, pl) = layout(
            ctx,
            "mlp",
            &[
                (0, UNIFORM),
                (1, READ_WRITE),
                (2, READ_WRITE),
                (3, READ),
                (4, READ_WRITE),
                (5, READ_WRITE),
                (6, READ_WRITE),
                (7, READ_WRITE),
            ],
        );
        let p = |entry: &str| ctx.pipeline("mlp", WGSL, &pl, entry);
        Ok(MlpKernels {
            forward_hidden: p("forward_hidden"),
            forward_out: p("forward_out"),
            backward_hidden: p("backward_hidden"),
            grad_partial: p("grad_partial"),
            adam: p("adam"),
            loss_sum: p("loss_sum"),
            bgl,
        })
    }
}

/// The `Pass` uniform of mlp.wgsl.
#[derive(Clone, Copy, Default)]
struct PassParams {
    layer: u32,
    apply: u32,
    lr: f32,
    bc1: f32,
    bc2: f32,
}

/// One dispatch of a step: its pipeline, bind group and workgroups.
struct Pass {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    workgroups: (u32, u32),
}

/// A training run's state on the device: parameters, Adam moments, one batch and scratch.
pub struct GpuTrainer {
    pub hidden: usize,
    /// Rows per batch, B (fixed for a trainer: the scratch is sized for it).
    pub batch: usize,
    pub n_params: usize,
    /// Learning rate of the next steps.
    pub lr: f32,
    /// Adam steps taken, n (the next step uses n + 1).
    pub steps: u32,
    n_chunks: usize,
    theta: wgpu::Buffer,
    moments: wgpu::Buffer,
    batch_buf: wgpu::Buffer,
    /// O (B x 2) first, then the hidden activations.
    act: wgpu::Buffer,
    /// The gradient g first, then the per-chunk sums.
    partial: wgpu::Buffer,
    loss_buf: wgpu::Buffer,
    adam_params: wgpu::Buffer,
    /// forward (3 hidden + output), backward (3), gradient chunks, adam.
    passes: Vec<Pass>,
    loss_pass: Pass,
}

impl GpuTrainer {
    /// A trainer for `batch` rows per step starting from `params` (the twin's flat layout),
    /// Adam's moments zero.
    pub fn new(
        ctx: &GpuContext,
        kernels: &MlpKernels,
        hidden: usize,
        batch: usize,
        params: &[f32],
        lr: f32,
    ) -> Result<GpuTrainer, String> {
        if hidden == 0 || hidden > MAX_HIDDEN {
            return Err(format!(
                "hidden width {hidden}: the GPU MLP takes 1 to {MAX_HIDDEN}"
            ));
        }
        if batch == 0 {
            return Err("a batch needs at least one row".to_string());
        }
        let n_params = param_count(hidden);
        if params.len() != n_params {
            return Err(format!(
                "{} parameters given, the {hidden}-wide MLP has {n_params}",
                params.len()
            ));
        }
        let n_chunks = batch.div_ceil(CHUNK);
        let act_floats = OUTPUTS * batch + 6 * batch * hidden;
        let partial_floats = (1 + n_chunks) * n_params;
        let limits = ctx.limits();
        let largest = (act_floats.max(partial_floats) * 4) as u64;
        if largest > limits.max_storage_buffer_binding_size || largest > limits.max_buffer_size {
            return Err(format!(
                "a batch of {batch} at width {hidden} needs {largest} bytes of scratch, more than this device binds ({})",
                limits.max_storage_buffer_binding_size
            ));
        }
        let theta = storage(ctx, "mlp theta", n_params);
        ctx.queue.write_buffer(&theta, 0, &f32_bytes(params));
        let moments = storage(ctx, "mlp moments", 2 * n_params);
        let batch_buf = storage(ctx, "mlp batch", batch * (INPUTS + OUTPUTS));
        let act = storage(ctx, "mlp activations", act_floats);
        let delta = storage(ctx, "mlp deltas", 3 * batch * hidden + OUTPUTS * batch);
        let partial = storage(ctx, "mlp gradient", partial_floats);
        let loss_buf = storage(ctx, "mlp loss", 1 + OUTPUTS * batch);
        let adam_params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mlp adam"),
            size: 48,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let words = |p: PassParams| -> Vec<u8> {
            let w = [
                batch as u32,
                hidden as u32,
                p.layer,
                n_chunks as u32,
                n_params as u32,
                p.apply,
                0,
                0,
                p.lr.to_bits(),
                p.bc1.to_bits(),
                p.bc2.to_bits(),
                0,
            ];
            w.iter().flat_map(|w| w.to_le_bytes()).collect()
        };
        let group = |params: &wgpu::Buffer| {
            bind(
                ctx,
                &kernels.bgl,
                &[
                    params, &theta, &moments, &batch_buf, &act, &delta, &partial, &loss_buf,
                ],
            )
        };
        let fixed = |layer: u32| {
            ctx.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("mlp pass"),
                    contents: &words(PassParams {
                        layer,
                        ..Default::default()
                    }),
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        };
        let rows_h = groups(batch * hidden);
        let mut passes = Vec::new();
        for l in 0..3 {
            passes.push(Pass {
                pipeline: kernels.forward_hidden.clone(),
                group: group(&fixed(l)),
                workgroups: rows_h,
            });
        }
        passes.push(Pass {
            pipeline: kernels.forward_out.clone(),
            group: group(&fixed(3)),
            workgroups: groups(batch * OUTPUTS),
        });
        for l in (0..3).rev() {
            passes.push(Pass {
                pipeline: kernels.backward_hidden.clone(),
                group: group(&fixed(l)),
                workgroups: rows_h,
            });
        }
        passes.push(Pass {
            pipeline: kernels.grad_partial.clone(),
            group: group(&fixed(0)),
            workgroups: groups(n_params * n_chunks),
        });
        passes.push(Pass {
            pipeline: kernels.adam.clone(),
            group: group(&adam_params),
            workgroups: groups(n_params),
        });
        let loss_pass = Pass {
            pipeline: kernels.loss_sum.clone(),
            group: group(&fixed(0)),
            workgroups: (1, 1),
        };
        // The Adam uniform's fixed words; the per-step ones are rewritten by `submit`.
        ctx.queue
            .write_buffer(&adam_params, 0, &words(PassParams::default()));
        Ok(GpuTrainer {
            hidden,
            batch,
            n_params,
            lr,
            steps: 0,
            n_chunks,
            theta,
            moments,
            batch_buf,
            loss_buf,
            adam_params,
            act,
            partial,
            passes,
            loss_pass,
        })
    }

    /// Upload one batch: `x` B x 18 (x, then the time embedding), `y` B x 2 (the targets).
    pub fn upload_batch(
        &self,
        ctx: &GpuContext,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
    ) -> Result<(), String> {
        if x.dim() != (self.batch, INPUTS) || y.dim() != (self.batch, OUTPUTS) {
            return Err(format!(
                "a batch is {} x {INPUTS} inputs and {} x {OUTPUTS} targets, got {:?} and {:?}",
                self.batch,
                self.batch,
                x.dim(),
                y.dim()
            ));
        }
        let mut floats = Vec::with_capacity(self.batch * (INPUTS + OUTPUTS));
        floats.extend(x.iter().copied());
        floats.extend(y.iter().copied());
        ctx.queue
            .write_buffer(&self.batch_buf, 0, &f32_bytes(&floats));
        Ok(())
    }

    /// One Adam step on the batch (x, y): upload, forward, backward, reduce, update; submitted,
    /// not waited for.
    pub fn step(
        &mut self,
        ctx: &GpuContext,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
    ) -> Result<(), String> {
        self.upload_batch(ctx, x, y)?;
        self.steps += 1;
        self.submit(ctx, self.passes.len(), true)
    }

    /// The gradient of the loss on (x, y) at the current parameters, without a step.
    pub async fn gradient(
        &self,
        ctx: &GpuContext,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
    ) -> Result<Vec<f32>, String> {
        self.upload_batch(ctx, x, y)?;
        self.submit(ctx, self.passes.len(), false)?;
        read_f32(ctx, &self.partial, self.n_params).await
    }

    /// The network's outputs (B x 2) on the inputs `x` (B x 18), at the current parameters.
    pub async fn forward(
        &self,
        ctx: &GpuContext,
        x: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>, String> {
        let y = Array2::zeros((self.batch, OUTPUTS));
        self.upload_batch(ctx, x, y.view())?;
        self.submit(ctx, 4, false)?;
        let flat = read_f32(ctx, &self.act, self.batch * OUTPUTS).await?;
        Array2::from_shape_vec((self.batch, OUTPUTS), flat).map_err(|e| e.to_string())
    }

    /// The loss of the last batch stepped on (or passed to `gradient`), before its update.
    pub async fn loss(&self, ctx: &GpuContext) -> Result<f32, String> {
        ctx.take_errors()?;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            encode(&mut pass, std::slice::from_ref(&self.loss_pass));
        }
        ctx.queue.submit([encoder.finish()]);
        Ok(read_f32(ctx, &self.loss_buf, 1).await?[0])
    }

    /// The loss of the last batch stepped on, copied into `log` at float `slot` on the
    /// device (a run logs every step's loss and reads the log back once per chunk of steps).
    pub fn log_loss(
        &self,
        ctx: &GpuContext,
        log: &wgpu::Buffer,
        slot: usize,
    ) -> Result<(), String> {
        ctx.take_errors()?;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            encode(&mut pass, std::slice::from_ref(&self.loss_pass));
        }
        encoder.copy_buffer_to_buffer(&self.loss_buf, 0, log, 4 * slot as u64, 4);
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// Adam's moments on the device (m then v, the parameters' layout each), for a
    /// readback that outlives a borrow of the trainer.
    pub fn moments_buffer(&self) -> &wgpu::Buffer {
        &self.moments
    }

    /// The parameters now (the twin's flat layout).
    pub async fn params(&self, ctx: &GpuContext) -> Result<Vec<f32>, String> {
        read_f32(ctx, &self.theta, self.n_params).await
    }

    /// Replace the parameters and restart Adam (moments zero, n = 0).
    pub fn set_params(&mut self, ctx: &GpuContext, params: &[f32]) -> Result<(), String> {
        if params.len() != self.n_params {
            return Err(format!(
                "{} parameters given, the MLP has {}",
                params.len(),
                self.n_params
            ));
        }
        ctx.queue.write_buffer(&self.theta, 0, &f32_bytes(params));
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        encoder.clear_buffer(&self.moments, 0, None);
        ctx.queue.submit([encoder.finish()]);
        self.steps = 0;
        Ok(())
    }

    /// Adam's m and v now (the parameters' layout each).
    pub async fn moments(&self, ctx: &GpuContext) -> Result<(Vec<f32>, Vec<f32>), String> {
        let mut mv = read_f32(ctx, &self.moments, 2 * self.n_params).await?;
        let v = mv.split_off(self.n_params);
        Ok((mv, v))
    }

    /// Replace the parameters and Adam's state (m, v and the step count n), to resume a run.
    pub fn set_state(
        &mut self,
        ctx: &GpuContext,
        params: &[f32],
        m: &[f32],
        v: &[f32],
        n: u32,
    ) -> Result<(), String> {
        self.set_params(ctx, params)?;
        if m.len() != self.n_params || v.len() != self.n_params {
            return Err("Adam's m and v have the parameters' length".to_string());
        }
        let mut mv = m.to_vec();
        mv.extend_from_slice(v);
        ctx.queue.write_buffer(&self.moments, 0, &f32_bytes(&mv));
        self.steps = n;
        Ok(())
    }

    /// The parameter buffer, for kernels that read it (the sampler).
    pub fn theta(&self) -> &wgpu::Buffer {
        &self.theta
    }

    /// Submit the first `n_passes` passes; `apply` selects Adam (else the last pass only
    /// writes the gradient).
    fn submit(&self, ctx: &GpuContext, n_passes: usize, apply: bool) -> Result<(), String> {
        ctx.take_errors()?;
        // As the twin: the powers in f64, rounded to f32.
        let n = f64::from(self.steps.max(1));
        let bc1 = (1.0 - crate::math::pow(f64::from(BETA1), n)) as f32;
        let bc2 = (1.0 - crate::math::pow(f64::from(BETA2), n)) as f32;
        let words = [
            self.batch as u32,
            self.hidden as u32,
            0,
            self.n_chunks as u32,
            self.n_params as u32,
            u32::from(apply),
            0,
            0,
            self.lr.to_bits(),
            bc1.to_bits(),
            bc2.to_bits(),
            0,
        ];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        ctx.queue.write_buffer(&self.adam_params, 0, &bytes);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            encode(&mut pass, &self.passes[..n_passes]);
        }
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    }
}

fn encode(pass: &mut wgpu::ComputePass<'_>, passes: &[Pass]) {
    for p in passes {
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &p.group, &[]);
        pass.dispatch_workgroups(p.workgroups.0, p.workgroups.1, 1);
    }
}

/// Little-endian bytes of f32s (what a storage buffer holds).
pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A training run of `crate::diffusion::train::Trainer` with its steps on the GPU: the CPU
/// side keeps the configuration, the data set and the batch generator (the same batches, in
/// the same order, as the CPU run), the learning-rate schedule and the step count; the GPU
/// holds the parameters and Adam's state. [`GpuRun::sync`] brings them back into the
/// trainer's model and Adam, after which the CPU could carry on exactly where the GPU stopped.
pub struct GpuRun {
    pub cpu: crate::diffusion::train::Trainer,
    pub gpu: GpuTrainer,
}

impl GpuRun {
    /// Start from the trainer's current model and Adam state.
    pub fn new(
        ctx: &GpuContext,
        kernels: &MlpKernels,
        cpu: crate::diffusion::train::Trainer,
    ) -> Result<GpuRun, String> {
        let net = &cpu.model.net;
        let mut gpu = GpuTrainer::new(
            ctx,
            kernels,
            net.hidden,
            cpu.config.batch,
            &net.params,
            cpu.lr_now(),
        )?;
        gpu.set_state(ctx, &net.params, &cpu.adam.m, &cpu.adam.v, cpu.adam.n)?;
        Ok(GpuRun { cpu, gpu })
    }

    /// One step as `Trainer::step` takes it (the next batch, the scheduled learning rate),
    /// submitted to the GPU; the loss is not read back (see [`GpuRun::loss`]).
    pub fn step(&mut self, ctx: &GpuContext) -> Result<(), String> {
        self.gpu.lr = self.cpu.lr_now();
        let (x, y) = self.cpu.draw_batch();
        self.gpu.step(ctx, x.view(), y.view())?;
        self.cpu.model.steps += 1;
        Ok(())
    }

    /// The loss of the last step (on its batch, before its update).
    pub async fn loss(&self, ctx: &GpuContext) -> Result<f32, String> {
        self.gpu.loss(ctx).await
    }

    /// The GPU's parameters and Adam state into the trainer (`cpu.model.net`, `cpu.adam`).
    pub async fn sync(&mut self, ctx: &GpuContext) -> Result<(), String> {
        self.cpu.model.net.params = self.gpu.params(ctx).await?;
        let (m, v) = self.gpu.moments(ctx).await?;
        self.cpu.adam.m = m;
        self.cpu.adam.v = v;
        self.cpu.adam.n = self.gpu.steps;
        self.cpu.adam.lr = self.gpu.lr;
        Ok(())
    }
}
