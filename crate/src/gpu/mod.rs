//! The GPU layer: WGSL compute kernels through wgpu, WebGPU in the browser and Vulkan natively.
//!
//! - [`GpuContext`]: adapter, device and queue, acquired once ([`GpuContext::acquire`]) and
//!   shared by everything that computes (the browser keeps one per page). Limits and features
//!   are read from the adapter, never assumed: the kernels pick their tile sizes from
//!   [`GpuContext::limits`], timing uses timestamp queries only where the adapter has them.
//!   A lost device or a validation error is recorded and turned into an `Err` for the caller,
//!   who falls back to the CPU twin.
//! - [`AttnBuffers`]: Q, K, V and O of one attention problem on the device; heads padded with
//!   zeros to a multiple of 4 floats so the kernels can read `vec4`s.
//! - One file per kernel, its WGSL beside it: [`attention`] (naive: scores, softmax and the
//!   weighted sum through global memory) and [`flash`] (tiled, online softmax). Each kernel
//!   builds a [`Dispatch`] for a problem; [`run`] submits it, [`read_f32`] reads results
//!   back asynchronously (the only way on the web), and [`block_on`] drives those futures
//!   natively.
//!
//! Every kernel has an ndarray twin (`crate::attention`, `crate::flash`); `tests/gpu.rs`
//! compares them on lavapipe and `tests/wasm.rs` in the browser.

#[cfg(all(target_arch = "wasm32", not(feature = "web")))]
compile_error!(
    "on wasm32 the `gpu` feature needs `web` (the browser's WebGPU through wasm-bindgen)"
);

/// A kernel's WGSL as the program ships it: `wgsl!(include_str!("x.wgsl"))` is the file
/// without its `//` comments and the lines they leave blank, stripped at compile time
/// ([`strip_wgsl`]). The comments document the kernels in the repository; the browser need
/// not download them (about 2 KB of the gzip payload for the two attention kernels).
/// Declare it before the kernel modules so they can use it.
macro_rules! wgsl {
    ($src:expr) => {{
        const SRC: &str = $src;
        const LEN: usize = $crate::gpu::strip_wgsl(SRC, &mut []);
        const OUT: &[u8; LEN] = &$crate::gpu::stripped_wgsl::<LEN>(SRC);
        match ::core::str::from_utf8(OUT) {
            Ok(s) => s,
            Err(_) => panic!("WGSL sources are UTF-8"),
        }
    }};
}

pub mod attention;
pub mod diffusion_bench;
pub mod flash;
pub mod mlp;
pub mod sampler;
pub mod transformer;
pub mod transformer_bench;

/// `src` without its `//` comments (WGSL has no string literals, so `//` always starts one),
/// without the whitespace before them and without the lines left blank, written into `out`
/// as far as it reaches; returns the stripped length (`&mut []` just measures). A `const
/// fn`, for [`wgsl!`].
pub const fn strip_wgsl(src: &str, out: &mut [u8]) -> usize {
    let b = src.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        // The line [i, end).
        let mut end = i;
        while end < b.len() && b[end] != b'\n' {
            end += 1;
        }
        // Its code: up to a `//`, less trailing whitespace.
        let mut code = i;
        while code < end && !(b[code] == b'/' && code + 1 < end && b[code + 1] == b'/') {
            code += 1;
        }
        while code > i && matches!(b[code - 1], b' ' | b'\t' | b'\r') {
            code -= 1;
        }
        let mut blank = true;
        let mut k = i;
        while k < code {
            blank = blank && matches!(b[k], b' ' | b'\t');
            k += 1;
        }
        if !blank {
            let mut k = i;
            while k <= code {
                if n < out.len() {
                    out[n] = if k < code { b[k] } else { b'\n' };
                }
                n += 1;
                k += 1;
            }
        }
        i = end + 1;
    }
    n
}

/// [`strip_wgsl`] into an array of its exact length `N`.
pub const fn stripped_wgsl<const N: usize>(src: &str) -> [u8; N] {
    let mut out = [0u8; N];
    strip_wgsl(src, &mut out);
    out
}

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ndarray::{Array3, ArrayView3};
use wgpu::util::DeviceExt;

use crate::attention::{Dims, Qkv};

/// One adapter + device + queue. Cheap to share behind an `Rc`/`Arc`; kernels borrow it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Whether timestamp queries were granted (kernel timing without the submit overhead).
    pub timestamps: bool,
    lost: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl GpuContext {
    /// Ask for the high-performance adapter and a device with the adapter's own limits.
    /// `Err` says why there is none (no WebGPU, no adapter, no compute shaders).
    pub async fn acquire() -> Result<GpuContext, String> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| format!("no GPU adapter: {e}"))?;
        Self::from_adapter(adapter).await
    }

    /// A device on a given adapter (tests and benchmarks choose theirs).
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<GpuContext, String> {
        let info = adapter.get_info();
        let downlevel = adapter.get_downlevel_capabilities();
        if !downlevel
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(format!("{} has no compute shaders", info.name));
        }
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("mlplay"),
                required_features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("{}: no device: {e}", info.name))?;
        let lost = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let lost = lost.clone();
            let errors = errors.clone();
            device.set_device_lost_callback(move |reason, message| {
                lost.store(true, Ordering::SeqCst);
                if let Ok(mut e) = errors.lock() {
                    e.push(format!("device lost ({reason:?}): {message}"));
                }
            });
        }
        {
            let errors = errors.clone();
            // Without a handler wgpu panics on the first validation error; record it instead
            // and let the caller fall back to the CPU.
            device.on_uncaptured_error(Arc::new(move |e| {
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }));
        }
        Ok(GpuContext {
            device,
            queue,
            info,
            timestamps,
            lost,
            errors,
        })
    }

    /// `acquire`, blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn acquire_blocking() -> Result<GpuContext, String> {
        block_on(Self::acquire())
    }

    /// The adapter as people name it: `NVIDIA H200 (Vulkan)`, `llvmpipe (LLVM 15, 256 bits) (Vulkan)`.
    pub fn adapter_name(&self) -> String {
        let backend = match self.info.backend {
            wgpu::Backend::BrowserWebGpu => "WebGPU".to_string(),
            b => format!("{b:?}"),
        };
        let name = if self.info.name.is_empty() {
            "unnamed adapter"
        } else {
            &self.info.name
        };
        format!("{name} ({backend})")
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// True once the device is lost; every later call fails and widgets use the CPU.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Errors recorded since the last call (validation errors, device loss), joined.
    pub fn take_errors(&self) -> Result<(), String> {
        let mut errors = self.errors.lock().map_err(|e| e.to_string())?;
        if errors.is_empty() && !self.is_lost() {
            return Ok(());
        }
        let msg = if errors.is_empty() {
            "the GPU device was lost".to_string()
        } else {
            errors.join("; ")
        };
        errors.clear();
        Err(msg)
    }

    /// A compute pipeline from WGSL source, with the workgroup memory left uninitialised
    /// (every kernel writes what it reads).
    pub fn pipeline(
        &self,
        label: &str,
        source: &str,
        layout: &wgpu::PipelineLayout,
        entry: &str,
    ) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        self.pipeline_from(label, &module, layout, entry)
    }

    /// As [`GpuContext::pipeline`], but without the bounds checks and loop bounding that
    /// wgpu adds to every shader natively (in the browser this is the same as `pipeline`).
    ///
    /// # Safety
    /// Every index the shader computes must be in bounds and every loop must terminate for
    /// all inputs the host passes: the caller vouches for the kernel (flash.wgsl's indices
    /// are bounded by its constants and by the buffer sizes `AttnBuffers` allocates).
    pub unsafe fn pipeline_unchecked(
        &self,
        label: &str,
        source: &str,
        layout: &wgpu::PipelineLayout,
        entry: &str,
    ) -> wgpu::ComputePipeline {
        // SAFETY: passed on to the caller (see above).
        let module = unsafe {
            self.device.create_shader_module_trusted(
                wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                },
                wgpu::ShaderRuntimeChecks::unchecked(),
            )
        };
        self.pipeline_from(label, &module, layout, entry)
    }

    fn pipeline_from(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        layout: &wgpu::PipelineLayout,
        entry: &str,
    ) -> wgpu::ComputePipeline {
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &[],
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
    }
}

/// Layout entries for a compute-only bind group: `(binding, kind)`.
pub(crate) fn layout(
    ctx: &GpuContext,
    label: &str,
    entries: &[(u32, wgpu::BufferBindingType)],
) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = entries
        .iter()
        .map(|&(binding, ty)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let bgl = ctx
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
    let pl = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
    (bgl, pl)
}

pub(crate) const READ: wgpu::BufferBindingType =
    wgpu::BufferBindingType::Storage { read_only: true };
pub(crate) const READ_WRITE: wgpu::BufferBindingType =
    wgpu::BufferBindingType::Storage { read_only: false };
pub(crate) const UNIFORM: wgpu::BufferBindingType = wgpu::BufferBindingType::Uniform;

/// A bind group of whole buffers, binding i = buffers[i].
pub(crate) fn bind(
    ctx: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

/// A uniform buffer holding `words` (u32 or f32 bit patterns), padded to 16 bytes.
pub(crate) fn uniform(ctx: &GpuContext, words: &[u32]) -> wgpu::Buffer {
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.resize(bytes.len().div_ceil(16) * 16, 0);
    ctx.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// A zeroed storage buffer of `floats` f32s that can be copied out.
pub(crate) fn storage(ctx: &GpuContext, label: &str, floats: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// `d` rounded up to a multiple of 4 (the kernels read heads as `vec4`s).
pub fn padded_dim(d: usize) -> usize {
    d.div_ceil(4) * 4
}

/// Q, K, V and O of one problem on the device, heads padded with zeros to [`padded_dim`].
pub struct AttnBuffers {
    pub dims: Dims,
    /// Padded head width DP.
    pub dp: usize,
    pub q: wgpu::Buffer,
    pub k: wgpu::Buffer,
    pub v: wgpu::Buffer,
    pub o: wgpu::Buffer,
}

fn padded_bytes(x: ArrayView3<f32>, dp: usize) -> Vec<u8> {
    let (heads, n, d) = x.dim();
    let mut out = vec![0u8; heads * n * dp * 4];
    for ((h, i, c), &v) in x.indexed_iter() {
        let at = ((h * n + i) * dp + c) * 4;
        out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let _ = d;
    out
}

impl AttnBuffers {
    pub fn upload(ctx: &GpuContext, qkv: &Qkv) -> Result<AttnBuffers, String> {
        let dims = qkv.dims();
        dims.validate()?;
        let dp = padded_dim(dims.head_dim);
        let limits = ctx.limits();
        let largest = (dims.n_heads * dims.seq_len * dp * 4) as u64;
        if largest > limits.max_storage_buffer_binding_size || largest > limits.max_buffer_size {
            return Err(format!(
                "Q needs {largest} bytes, more than this adapter binds ({} bytes)",
                limits.max_storage_buffer_binding_size
            ));
        }
        let init = |label: &str, x: ArrayView3<f32>| {
            ctx.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &padded_bytes(x, dp),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                })
        };
        Ok(AttnBuffers {
            dims,
            dp,
            q: init("q", qkv.q.view()),
            k: init("k", qkv.k.view()),
            v: init("v", qkv.v.view()),
            o: storage(ctx, "o", dims.n_heads * dims.seq_len * dp),
        })
    }

    /// O as `(H, N, d)`, the padding dropped.
    pub async fn read_output(&self, ctx: &GpuContext) -> Result<Array3<f32>, String> {
        let d = self.dims;
        let flat = read_f32(ctx, &self.o, d.n_heads * d.seq_len * self.dp).await?;
        let padded = Array3::from_shape_vec((d.n_heads, d.seq_len, self.dp), flat)
            .map_err(|e| e.to_string())?;
        Ok(padded.slice(ndarray::s![.., .., ..d.head_dim]).to_owned())
    }
}

/// Work a kernel has prepared for one problem: encoded into a compute pass.
pub trait Dispatch {
    /// Commands that must precede the pass (clearing accumulators, say).
    fn encode_before(&self, _encoder: &mut wgpu::CommandEncoder) {}
    /// The dispatches themselves; all in one pass so that one pair of timestamps times them.
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>);
}

/// How long the GPU took, and how that was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuTiming {
    pub ms: f64,
    /// `timestamp-query` (the pass alone, from the GPU's own clock) or `wall-clock`
    /// (submit to readback of a few bytes, from the host's clock).
    pub method: &'static str,
}

/// Milliseconds on a monotonic clock: `performance.now()` in the browser.
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
        let now = perf.as_ref().and_then(|p| {
            js_sys::Reflect::get(p, &"now".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                .and_then(|f| f.call0(p).ok())
                .and_then(|v| v.as_f64())
        });
        now.unwrap_or_else(js_sys::Date::now)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast;

/// Submit `work` in one compute pass and wait for it (asynchronously), timing it with
/// timestamp queries when the device has them, else with the host clock around submit and
/// a 4-byte readback.
pub async fn run(ctx: &GpuContext, work: &dyn Dispatch) -> Result<GpuTiming, String> {
    ctx.take_errors()?;
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    work.encode_before(&mut encoder);
    let queries = ctx.timestamps.then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass time"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: queries
                .as_ref()
                .map(|query_set| wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
        });
        work.encode(&mut pass);
    }
    // Something small to read back, so that waiting for it waits for the pass.
    let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    if let Some(q) = &queries {
        encoder.resolve_query_set(q, 0..2, &resolved, 0);
    }
    let t0 = now_ms();
    ctx.queue.submit([encoder.finish()]);
    let words = read_bytes(ctx, &resolved, 16).await?;
    let wall = now_ms() - t0;
    ctx.take_errors()?;
    if queries.is_some() {
        let stamp = |i: usize| u64::from_le_bytes(words[i * 8..i * 8 + 8].try_into().unwrap());
        let ticks = stamp(1).wrapping_sub(stamp(0));
        let ms = ticks as f64 * f64::from(ctx.queue.get_timestamp_period()) / 1e6;
        // Some adapters grant the feature but report zeros; trust the clock then.
        if ms > 0.0 && ms.is_finite() && ms <= wall * 1.5 + 1.0 {
            return Ok(GpuTiming {
                ms,
                method: "timestamp-query",
            });
        }
    }
    Ok(GpuTiming {
        ms: wall,
        method: "wall-clock",
    })
}

/// Read a buffer's first `floats` f32s back to the host (asynchronously: `map_async`).
pub async fn read_f32(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    floats: usize,
) -> Result<Vec<f32>, String> {
    let bytes = read_bytes(ctx, buffer, (floats * 4) as u64).await?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

async fn read_bytes(ctx: &GpuContext, buffer: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, String> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    ctx.queue.submit([encoder.finish()]);
    let (tx, rx) = oneshot();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        tx.send(r.map_err(|e| e.to_string()))
    });
    // Natively the callback runs inside poll; in the browser poll does nothing and the
    // callback comes from the event loop.
    let _ = ctx.device.poll(wgpu::PollType::wait_indefinitely());
    rx.await
        .unwrap_or_else(|| Err("the GPU readback was dropped".to_string()))?;
    ctx.take_errors()?;
    let bytes = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| e.to_string())?
        .to_vec();
    staging.unmap();
    Ok(bytes)
}

/// A one-shot channel that works on both targets (the map callback must be `Send` natively).
struct Shared<T> {
    value: Option<T>,
    closed: bool,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Shared<T>>>);
struct Receiver<T>(Arc<Mutex<Shared<T>>>);

fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Mutex::new(Shared {
        value: None,
        closed: false,
        waker: None,
    }));
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    fn send(self, value: T) {
        if let Ok(mut s) = self.0.lock() {
            s.value = Some(value);
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.closed = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> Future for Receiver<T> {
    /// `None` when the sender was dropped without sending.
    type Output = Option<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Ok(mut s) = self.0.lock() else {
            return Poll::Ready(None);
        };
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Drive a future to completion on this thread (native: wgpu's native futures complete
/// inside `device.poll`, which the readback calls).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(std::time::Duration::from_millis(1)),
        }
    }
}

/// Which attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Naive,
    Flash,
}

impl Kernel {
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Naive => "naive",
            Kernel::Flash => "flash",
        }
    }
}

/// One attention problem start to finish: upload, build the kernel (flash: the best tile
/// configuration for this device), run, read O back. Callers that run many problems keep
/// the kernels and plans instead (pipeline creation dominates small problems).
pub async fn attention(
    ctx: &GpuContext,
    qkv: &Qkv,
    opts: crate::attention::Options,
    kernel: Kernel,
) -> Result<(Array3<f32>, GpuTiming), String> {
    let bufs = AttnBuffers::upload(ctx, qkv)?;
    let timing = match kernel {
        Kernel::Naive => {
            let k = attention::NaiveAttention::new(ctx);
            run(ctx, &k.plan(ctx, &bufs, opts, 0)).await?
        }
        Kernel::Flash => {
            let k = flash::FlashAttention::new(ctx, bufs.dp)?;
            run(ctx, &k.plan(ctx, &bufs, opts)?).await?
        }
    };
    Ok((bufs.read_output(ctx).await?, timing))
}
