//! The in-browser benchmarks' entry points (`bench/*.mjs`): kernel throughput on the page's
//! GPU beside the CPU twins. Compiled only with the `browser-bench` feature, into the separate
//! module `./build.sh bench` builds (www/pkg-bench/): the site's own wasm does not carry them
//! (they were 16 KB of its gzip payload). The kernels they time are the site's own.

use std::cell::RefCell;
use std::rc::Rc;

use super::gpu::{with_gpu, Gpu};

/// `benchAttention(kernel, n, heads, headDim, reps)`: the page's GPU times one kernel on a
/// seeded problem (d-wide heads, MHA, not causal), best of `reps` runs after a warm-up, and
/// checks it against the other kernel. Resolves to JSON `{adapter, kernel, n, heads,
/// head_dim, best_ms, median_ms, gflops, method, max_abs_diff_vs_other}`; rejects without a GPU.
/// For `bench/attention.mjs`.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = benchAttention)]
pub async fn bench_attention(
    kernel: String,
    n: usize,
    heads: usize,
    head_dim: usize,
    reps: usize,
) -> Result<String, wasm_bindgen::JsError> {
    use crate::attention::{max_abs_diff, Dims, Options, Qkv};
    use crate::gpu::{padded_dim, run, AttnBuffers, Dispatch};
    use crate::json::Json;
    let fail = |e: String| wasm_bindgen::JsError::new(&e);
    let (tx, rx) = futures_oneshot();
    with_gpu(tx);
    let gpu = rx.await.map_err(fail)?;
    let ctx = &gpu.ctx;
    let dims = Dims {
        n_heads: heads,
        n_kv_heads: heads,
        seq_len: n,
        head_dim,
    };
    dims.validate().map_err(fail)?;
    let qkv = Qkv::random(dims, n as u64);
    let bufs = AttnBuffers::upload(ctx, &qkv).map_err(fail)?;
    let opts = Options::default();
    let rows = ((64usize << 20) / (heads * n * 4)).max(1);
    let naive = gpu.naive().plan_chunked(ctx, &bufs, opts, 0, rows);
    let flash = gpu.flash(padded_dim(head_dim)).map_err(fail)?;
    let fplan = flash.plan(ctx, &bufs, opts).map_err(fail)?;
    let (work, other): (&dyn Dispatch, &dyn Dispatch) = match kernel.as_str() {
        "naive" => (&naive, &fplan),
        "flash" => (&fplan, &naive),
        k => return Err(fail(format!("no kernel {k:?} (naive or flash)"))),
    };
    run(ctx, other).await.map_err(fail)?;
    let o_other = bufs.read_output(ctx).await.map_err(fail)?;
    run(ctx, work).await.map_err(fail)?; // warm-up
    let mut times = Vec::new();
    let mut method = "";
    for _ in 0..reps.max(1) {
        let t = run(ctx, work).await.map_err(fail)?;
        method = t.method;
        times.push(t.ms);
    }
    let o = bufs.read_output(ctx).await.map_err(fail)?;
    times.sort_by(f64::total_cmp);
    let best = times[0];
    Ok(Json::obj([
        ("adapter", Json::str(gpu.label())),
        ("kernel", Json::str(kernel)),
        ("n", Json::Num(n as f64)),
        ("heads", Json::Num(heads as f64)),
        ("head_dim", Json::Num(head_dim as f64)),
        ("best_ms", Json::Num(best)),
        ("median_ms", Json::Num(times[times.len() / 2])),
        ("gflops", Json::Num(dims.flops() / (best * 1e-3) / 1e9)),
        ("method", Json::str(method)),
        (
            "tiles",
            Json::Arr(vec![
                Json::Num(flash.config.block_rows() as f64),
                Json::Num(flash.config.block_cols() as f64),
            ]),
        ),
        (
            "max_abs_diff_vs_other",
            Json::Num(f64::from(max_abs_diff(&o, &o_other))),
        ),
    ])
    .to_string())
}

/// `benchDiffusion(hidden, batch, trainSteps, cpuTrainSteps, particles, sampleSteps,
/// cpuParticles)`: training steps per second and sampling throughput (particles x steps per
/// second) of the page's GPU kernels and of their CPU twins, in one run
/// (`crate::gpu::diffusion_bench::measure`). Resolves to its JSON; rejects without a GPU.
/// For `bench/diffusion.mjs`.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = benchDiffusion)]
pub async fn bench_diffusion(
    hidden: usize,
    batch: usize,
    train_steps: usize,
    cpu_train_steps: usize,
    particles: usize,
    sample_steps: usize,
    cpu_particles: usize,
) -> Result<String, wasm_bindgen::JsError> {
    use crate::gpu::diffusion_bench::{measure, BenchConfig};
    let fail = |e: String| wasm_bindgen::JsError::new(&e);
    let (tx, rx) = futures_oneshot();
    with_gpu(tx);
    let gpu = rx.await.map_err(fail)?;
    let cfg = BenchConfig {
        hidden,
        batch,
        train_steps,
        cpu_train_steps,
        particles,
        sample_steps,
        cpu_particles,
    };
    let mut json = measure(
        &gpu.ctx,
        cfg,
        |p, lr| gpu.mlp_trainer(hidden, batch, p, lr),
        |p, seed, stages| gpu.sampler(p, hidden, particles, seed, stages, 0),
    )
    .await
    .map_err(fail)?;
    if let crate::json::Json::Obj(pairs) = &mut json {
        pairs[0].1 = crate::json::Json::str(gpu.label());
    }
    Ok(json.to_string())
}

/// `benchTransformer(gpuSteps, cpuSteps)`: training tokens per second of the default
/// transformer (`TrainConfig::default()`) on the page's GPU kernels and on the wasm CPU
/// Trainer, in one run (`crate::gpu::transformer_bench::measure`). Resolves to its JSON;
/// rejects without a GPU. For `bench/transformer.mjs`.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = benchTransformer)]
pub async fn bench_transformer(
    gpu_steps: usize,
    cpu_steps: usize,
) -> Result<String, wasm_bindgen::JsError> {
    let fail = |e: String| wasm_bindgen::JsError::new(&e);
    let (tx, rx) = futures_oneshot();
    with_gpu(tx);
    let gpu = rx.await.map_err(fail)?;
    let mut json = crate::gpu::transformer_bench::measure(
        &gpu.ctx,
        crate::transformer::train::TrainConfig::default(),
        gpu_steps,
        cpu_steps,
        |c| gpu.transformer_trainer(c),
    )
    .await
    .map_err(fail)?;
    if let crate::json::Json::Obj(pairs) = &mut json {
        pairs[0].1 = crate::json::Json::str(gpu.label());
    }
    Ok(json.to_string())
}

/// A callback-to-future bridge for `with_gpu` (single-threaded: Rc, no locks).
#[allow(clippy::type_complexity)]
fn futures_oneshot() -> (
    Box<dyn FnOnce(Result<Rc<Gpu>, String>)>,
    impl std::future::Future<Output = Result<Rc<Gpu>, String>>,
) {
    let slot: Rc<RefCell<Option<Result<Rc<Gpu>, String>>>> = Rc::new(RefCell::new(None));
    let waker: Rc<RefCell<Option<std::task::Waker>>> = Rc::new(RefCell::new(None));
    let (s2, w2) = (slot.clone(), waker.clone());
    let send = Box::new(move |r| {
        *s2.borrow_mut() = Some(r);
        if let Some(w) = w2.borrow_mut().take() {
            w.wake();
        }
    });
    let recv = std::future::poll_fn(move |cx| match slot.borrow_mut().take() {
        Some(r) => std::task::Poll::Ready(r),
        None => {
            *waker.borrow_mut() = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    });
    (send, recv)
}
