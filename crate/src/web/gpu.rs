//! The page's one GPU context: acquired on first request, shared by every widget on the page,
//! with the compiled attention kernels cached beside it.
//!
//! [`with_gpu`] hands the context to a callback: at once when it is ready, after acquisition
//! when that is under way, or an `Err` with the reason when there is none (no WebGPU in this
//! browser, no adapter, a lost device). Widgets then use their CPU twin and say so.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::gpu::attention::NaiveAttention;
use crate::gpu::flash::FlashAttention;
use crate::gpu::mlp::{GpuTrainer, MlpKernels};
use crate::gpu::sampler::{GpuSampler, SamplerKernels, Stage, INIT_NOISE_STEP};
use crate::gpu::transformer::{GpuTransformer, TransformerKernels};
use crate::gpu::GpuContext;

/// The shared context and the kernels built on it (pipelines are compiled once per page).
pub(crate) struct Gpu {
    pub ctx: GpuContext,
    /// The browser's own description of the adapter (GPUAdapterInfo), when it gives one.
    description: Option<String>,
    naive: RefCell<Option<Rc<NaiveAttention>>>,
    flash: RefCell<HashMap<usize, Rc<FlashAttention>>>,
    mlp: RefCell<Option<Rc<MlpKernels>>>,
    sampler: RefCell<Option<Rc<SamplerKernels>>>,
    transformer: RefCell<Option<Rc<TransformerKernels>>>,
}

impl Gpu {
    pub fn naive(&self) -> Rc<NaiveAttention> {
        self.naive
            .borrow_mut()
            .get_or_insert_with(|| Rc::new(NaiveAttention::new(&self.ctx)))
            .clone()
    }

    /// The flash kernel for heads padded to `dp`, with the device's best tile configuration.
    pub fn flash(&self, dp: usize) -> Result<Rc<FlashAttention>, String> {
        if let Some(k) = self.flash.borrow().get(&dp) {
            return Ok(k.clone());
        }
        let k = Rc::new(FlashAttention::new(&self.ctx, dp)?);
        self.flash.borrow_mut().insert(dp, k.clone());
        Ok(k)
    }

    /// The denoiser MLP's training kernels (forward, backward, Adam), compiled once per page.
    pub fn mlp_kernels(&self) -> Result<Rc<MlpKernels>, String> {
        if let Some(k) = self.mlp.borrow().as_ref() {
            return Ok(k.clone());
        }
        let k = Rc::new(MlpKernels::new(&self.ctx)?);
        *self.mlp.borrow_mut() = Some(k.clone());
        Ok(k)
    }

    /// The particle sampler's kernels, compiled once per page.
    pub fn sampler_kernels(&self) -> Result<Rc<SamplerKernels>, String> {
        if let Some(k) = self.sampler.borrow().as_ref() {
            return Ok(k.clone());
        }
        let k = Rc::new(SamplerKernels::new(&self.ctx)?);
        *self.sampler.borrow_mut() = Some(k.clone());
        Ok(k)
    }

    /// A trainer for the `hidden`-wide denoiser on batches of `batch` rows, from `params`.
    // Called by the benchmarks' module only, until a widget trains on it.
    #[cfg_attr(not(feature = "browser-bench"), allow(dead_code))]
    pub fn mlp_trainer(
        &self,
        hidden: usize,
        batch: usize,
        params: &[f32],
        lr: f32,
    ) -> Result<GpuTrainer, String> {
        let k = self.mlp_kernels()?;
        GpuTrainer::new(&self.ctx, &k, hidden, batch, params, lr)
    }

    /// `n` particles drawn from `seed`'s x_T and moved by `stages` (see `gpu::sampler`).
    pub fn sampler(
        &self,
        params: &[f32],
        hidden: usize,
        n: usize,
        seed: u32,
        stages: &[Stage],
        n_traj: usize,
    ) -> Result<GpuSampler, String> {
        let k = self.sampler_kernels()?;
        GpuSampler::new(
            &self.ctx,
            &k,
            params,
            hidden,
            n,
            seed,
            INIT_NOISE_STEP,
            stages,
            n_traj,
        )
    }

    /// A GPU training run of the transformer (`gpu::transformer`): the model, batches and
    /// Adam of `transformer::train::Trainer::new(config)`, on the page's GPU. Step it with
    /// `submit_step(&gpu.ctx)?` and await the returned readback's `read(&gpu.ctx)` for the
    /// step's loss, accuracy and gradient norm; `params_readback().read(&gpu.ctx).await` (or
    /// `model(&gpu.ctx).await`) gives the parameters for the attention maps and head scores.
    /// The kernels are compiled once per page.
    pub fn transformer_trainer(
        &self,
        config: crate::transformer::train::TrainConfig,
    ) -> Result<GpuTransformer, String> {
        let existing = self.transformer.borrow().clone();
        let k = match existing {
            Some(k) => k,
            None => {
                let k = Rc::new(TransformerKernels::new(&self.ctx)?);
                *self.transformer.borrow_mut() = Some(k.clone());
                k
            }
        };
        GpuTransformer::new(&self.ctx, &k, config)
    }

    /// "WebGPU: <adapter>" for badges.
    pub fn label(&self) -> String {
        match &self.description {
            Some(d) => format!("WebGPU: {d}"),
            None => format!("WebGPU: {}", adapter_label(&self.ctx)),
        }
    }
}

/// Why there is no GPU, in a few words for the badge (wgpu's message lists every backend).
fn short_reason(detail: &str) -> String {
    let has_webgpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null());
    if !has_webgpu {
        "no WebGPU in this browser".to_string()
    } else if detail.contains("no adapter") || detail.contains("no GPU adapter") {
        "no WebGPU adapter".to_string()
    } else {
        format!(
            "WebGPU failed ({})",
            detail.chars().take(80).collect::<String>()
        )
    }
}

/// `navigator.gpu.requestAdapter()`'s `info`: description, else vendor and architecture
/// (wgpu's AdapterInfo is empty on the web). `None` where the browser says nothing.
async fn browser_adapter_description() -> Option<String> {
    use wasm_bindgen::JsCast;
    let get = |o: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok();
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let request = get(&gpu, "requestAdapter")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &options,
        &"powerPreference".into(),
        &"high-performance".into(),
    );
    let promise = request
        .call1(&gpu, &options)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info").filter(|i| i.is_object())?;
    let text = |k: &str| {
        get(&info, k)
            .and_then(|v| v.as_string())
            .filter(|s| !s.trim().is_empty())
    };
    if let Some(d) = text("description") {
        return Some(d);
    }
    let parts: Vec<String> = ["vendor", "architecture", "device"]
        .iter()
        .filter_map(|k| text(k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A readable adapter name: the browser's description, else vendor and architecture.
pub(crate) fn adapter_label(ctx: &GpuContext) -> String {
    let i = &ctx.info;
    for s in [&i.name, &i.driver, &i.driver_info] {
        if !s.trim().is_empty() {
            return s.trim().to_string();
        }
    }
    format!("adapter {:04x}:{:04x}", i.vendor, i.device)
}

type Waiter = Box<dyn FnOnce(Result<Rc<Gpu>, String>)>;

enum Slot {
    Idle,
    Pending(Vec<Waiter>),
    Ready(Rc<Gpu>),
    Missing(String),
}

thread_local! {
    static SLOT: RefCell<Slot> = const { RefCell::new(Slot::Idle) };
}

/// Where the page's GPU stands now, without asking for it: `None` while unknown or pending.
pub(crate) fn status() -> Option<Result<Rc<Gpu>, String>> {
    SLOT.with(|s| match &*s.borrow() {
        Slot::Ready(g) if g.ctx.is_lost() => Some(Err("the GPU device was lost".to_string())),
        Slot::Ready(g) => Some(Ok(g.clone())),
        Slot::Missing(why) => Some(Err(why.clone())),
        _ => None,
    })
}

/// Call `f` with the page's GPU (acquiring it on first use) or the reason there is none.
pub(crate) fn with_gpu(f: impl FnOnce(Result<Rc<Gpu>, String>) + 'static) {
    if let Some(now) = status() {
        if let Err(why) = &now {
            SLOT.with(|s| *s.borrow_mut() = Slot::Missing(why.clone()));
        }
        return f(now);
    }
    let start = SLOT.with(|s| {
        let mut s = s.borrow_mut();
        match &mut *s {
            Slot::Pending(waiters) => {
                waiters.push(Box::new(f));
                false
            }
            _ => {
                *s = Slot::Pending(vec![Box::new(f)]);
                true
            }
        }
    });
    if start {
        wasm_bindgen_futures::spawn_local(async {
            let result = match GpuContext::acquire().await {
                Ok(ctx) => Ok(Rc::new(Gpu {
                    ctx,
                    description: browser_adapter_description().await,
                    naive: RefCell::new(None),
                    flash: RefCell::new(HashMap::new()),
                    mlp: RefCell::new(None),
                    sampler: RefCell::new(None),
                    transformer: RefCell::new(None),
                })),
                Err(e) => Err(short_reason(&e)),
            };
            let waiters = SLOT.with(|s| {
                let mut s = s.borrow_mut();
                let next = match &result {
                    Ok(g) => Slot::Ready(g.clone()),
                    Err(why) => Slot::Missing(why.clone()),
                };
                match std::mem::replace(&mut *s, next) {
                    Slot::Pending(w) => w,
                    _ => Vec::new(),
                }
            });
            for w in waiters {
                w(result.clone());
            }
        });
    }
}
