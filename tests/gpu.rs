//! GPU == CPU: every WGSL kernel against its ndarray twin on a real wgpu device (lavapipe,
//! Mesa's Vulkan on the CPU, in CI; whatever adapter is there elsewhere), within 1e-4 max
//! absolute error in f32, over a grid of sizes, head counts and masks. Runs with
//! `cargo test --features gpu` (what `./build.sh test` does).
#![cfg(feature = "gpu")]

mod common;

use common::ctx;
use std::collections::HashMap;

use mlplay::attention::{
    attention, attention_weights, max_abs_diff, pool_weights, Dims, Options, Qkv,
};
use mlplay::gpu::attention::NaiveAttention;
use mlplay::gpu::flash::{FlashAttention, TileConfig};
use mlplay::gpu::{block_on, padded_dim, read_f32, run, AttnBuffers};
use ndarray::{s, Array2, Array3, Axis};

const TOL: f32 = 1e-4;

/// The kernels, built once per head width.
#[derive(Default)]
struct Kernels {
    naive: Option<NaiveAttention>,
    flash: HashMap<usize, FlashAttention>,
}

impl Kernels {
    fn naive(&mut self, qkv: &Qkv, opts: Options) -> Array3<f32> {
        let ctx = ctx();
        let k = self.naive.get_or_insert_with(|| NaiveAttention::new(ctx));
        let bufs = AttnBuffers::upload(ctx, qkv).unwrap();
        block_on(run(ctx, &k.plan(ctx, &bufs, opts, 0))).unwrap();
        block_on(bufs.read_output(ctx)).unwrap()
    }

    fn flash(&mut self, qkv: &Qkv, opts: Options) -> Array3<f32> {
        let ctx = ctx();
        let dp = padded_dim(qkv.dims().head_dim);
        let k = self
            .flash
            .entry(dp)
            .or_insert_with(|| FlashAttention::new(ctx, dp).unwrap());
        flash_with(k, qkv, opts)
    }
}

fn flash_with(k: &FlashAttention, qkv: &Qkv, opts: Options) -> Array3<f32> {
    let ctx = ctx();
    let bufs = AttnBuffers::upload(ctx, qkv).unwrap();
    block_on(run(ctx, &k.plan(ctx, &bufs, opts).unwrap())).unwrap();
    block_on(bufs.read_output(ctx)).unwrap()
}

fn dims(n_heads: usize, n_kv_heads: usize, seq_len: usize, head_dim: usize) -> Dims {
    Dims {
        n_heads,
        n_kv_heads,
        seq_len,
        head_dim,
    }
}

/// The grid: sizes that are and are not multiples of the tiles, d not a multiple of 4,
/// MHA, GQA and MQA.
fn grid() -> Vec<Dims> {
    vec![
        dims(1, 1, 1, 8),
        dims(1, 1, 7, 16),
        dims(2, 1, 33, 64),
        dims(4, 2, 64, 64),
        dims(4, 4, 100, 32),
        dims(8, 2, 129, 64),
        dims(3, 3, 70, 12),
        dims(2, 1, 45, 128),
        dims(1, 1, 300, 64),
    ]
}

#[test]
fn naive_and_flash_kernels_equal_the_cpu_over_the_grid() {
    let mut kernels = Kernels::default();
    let mut report = Vec::new();
    for (case, d) in grid().into_iter().enumerate() {
        for causal in [false, true] {
            let opts = Options {
                causal,
                temperature: if case % 2 == 0 { 1.0 } else { 0.7 },
            };
            let qkv = Qkv::random(d, 100 + case as u64);
            let cpu = attention(&qkv, opts);
            let naive = kernels.naive(&qkv, opts);
            let flash = kernels.flash(&qkv, opts);
            let e_naive = max_abs_diff(&naive, &cpu);
            let e_flash = max_abs_diff(&flash, &cpu);
            let e_pair = max_abs_diff(&flash, &naive);
            report.push(format!(
                "{d:?} causal={causal}: naive {e_naive:.1e}, flash {e_flash:.1e}, flash-naive {e_pair:.1e}"
            ));
            assert!(
                e_naive <= TOL && e_flash <= TOL && e_pair <= TOL,
                "{}",
                report.join("\n")
            );
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn every_tile_configuration_the_device_allows_is_correct() {
    let ctx = ctx();
    let limits = ctx.limits();
    for d in [dims(4, 2, 77, 64), dims(2, 1, 40, 16)] {
        let dp = padded_dim(d.head_dim);
        let configs: Vec<TileConfig> = TileConfig::candidates(dp)
            .into_iter()
            .filter(|c| c.fits(&limits))
            .collect();
        assert!(!configs.is_empty(), "no tile configuration fits {limits:?}");
        for config in configs {
            let k = FlashAttention::with_config(ctx, config);
            for causal in [false, true] {
                let opts = Options {
                    causal,
                    temperature: 1.3,
                };
                let qkv = Qkv::random(d, 7);
                let e = max_abs_diff(&flash_with(&k, &qkv, opts), &attention(&qkv, opts));
                assert!(e <= TOL, "{config:?} {d:?} causal={causal}: {e}");
            }
        }
    }
}

#[test]
fn the_16_kib_configuration_fits_the_webgpu_default_limits() {
    // What a browser grants without asking: the kernel must still run there.
    let defaults = wgpu::Limits::default();
    assert_eq!(defaults.max_compute_workgroup_storage_size, 16384);
    let c = TileConfig::choose(&defaults, 64).unwrap();
    assert!(c.workgroup_bytes() <= 16384, "{c:?}");
    // Hand count for tx = 4, ty = 4, dp = 64 (B_r = B_c = 16): (16 + 16) 68 + 16 64 + 16 20 + 16 4
    // = 2176 + 1024 + 320 + 64 = 3584 floats = 14336 bytes.
    assert_eq!(
        TileConfig {
            tx: 4,
            ty: 4,
            dp: 64
        }
        .workgroup_bytes(),
        14336
    );
    assert_eq!(
        c,
        TileConfig {
            tx: 4,
            ty: 4,
            dp: 64
        }
    );
}

#[test]
fn naive_probabilities_and_the_pooled_heatmap_equal_the_cpu() {
    let ctx = ctx();
    let k = NaiveAttention::new(ctx);
    let d = dims(3, 1, 50, 16);
    let qkv = Qkv::random(d, 11);
    for causal in [false, true] {
        let opts = Options {
            causal,
            temperature: 0.8,
        };
        let bufs = AttnBuffers::upload(ctx, &qkv).unwrap();
        // One chunk: the probability matrix comes back whole.
        let plan = k.plan(ctx, &bufs, opts, 8);
        assert_eq!(plan.chunk_rows, 50);
        block_on(run(ctx, &plan)).unwrap();
        let p = block_on(read_f32(ctx, &plan.probs, 3 * 50 * 50)).unwrap();
        let p = Array3::from_shape_vec((3, 50, 50), p).unwrap();
        let (pooled, blocks) = plan.pooled.as_ref().unwrap();
        let pooled = block_on(read_f32(ctx, pooled, 3 * blocks * blocks)).unwrap();
        let pooled = Array3::from_shape_vec((3, *blocks, *blocks), pooled).unwrap();
        for h in 0..3 {
            let want = attention_weights(
                qkv.q.index_axis(Axis(0), h),
                qkv.k.index_axis(Axis(0), 0),
                opts,
            );
            let e = max_abs_diff(p.index_axis(Axis(0), h), &want);
            assert!(e <= TOL, "P head {h} causal={causal}: {e}");
            let want_pool: Array2<f32> = pool_weights(want.view(), 8);
            let e = max_abs_diff(pooled.index_axis(Axis(0), h), &want_pool);
            assert!(e <= TOL, "pooled head {h} causal={causal}: {e}");
        }
    }
}

#[test]
fn naive_in_several_chunks_equals_one_chunk() {
    // Forcing 7-row chunks (and a pooled heatmap whose blocks straddle chunks) must give the
    // same O and heatmap as the CPU.
    let ctx = ctx();
    let k = NaiveAttention::new(ctx);
    let d = dims(2, 2, 33, 8);
    let qkv = Qkv::random(d, 5);
    for causal in [false, true] {
        let opts = Options {
            causal,
            temperature: 1.0,
        };
        let bufs = AttnBuffers::upload(ctx, &qkv).unwrap();
        let plan = k.plan_chunked(ctx, &bufs, opts, 5, 7);
        block_on(run(ctx, &plan)).unwrap();
        let o = block_on(bufs.read_output(ctx)).unwrap();
        assert!(max_abs_diff(&o, &attention(&qkv, opts)) <= TOL);
        let (pooled, blocks) = plan.pooled.as_ref().unwrap();
        let pooled = block_on(read_f32(ctx, pooled, 2 * blocks * blocks)).unwrap();
        for h in 0..2 {
            let want = pool_weights(
                attention_weights(
                    qkv.q.index_axis(Axis(0), h),
                    qkv.k.index_axis(Axis(0), h),
                    opts,
                )
                .view(),
                5,
            );
            let got =
                Array2::from_shape_vec((5, 5), pooled[h * 25..(h + 1) * 25].to_vec()).unwrap();
            assert!(max_abs_diff(&got, &want) <= TOL, "h={h} causal={causal}");
            // Each pooled row is a distribution over key blocks.
            for row in got.rows() {
                assert!((row.sum() - 1.0).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn gqa_head_groups_read_the_shared_kv_head() {
    // Two query heads sharing one K/V head on the GPU equal two MHA heads with the K/V copied.
    let ctx = ctx();
    let gqa = Qkv::random(dims(4, 2, 20, 16), 9);
    let mut mha = gqa.clone();
    let rep = |x: &Array3<f32>| {
        let mut out = Array3::zeros((4, 20, 16));
        for h in 0..4 {
            out.slice_mut(s![h, .., ..])
                .assign(&x.slice(s![h / 2, .., ..]));
        }
        out
    };
    mha.k = rep(&gqa.k);
    mha.v = rep(&gqa.v);
    let opts = Options::default();
    let mut kernels = Kernels::default();
    let a = kernels.flash(&gqa, opts);
    let b = kernels.flash(&mha, opts);
    assert!(max_abs_diff(&a, &b) <= 1e-6);
    let _ = ctx;
}

#[test]
fn reports_the_adapter() {
    let ctx = ctx();
    let limits = ctx.limits();
    println!(
        "adapter: {} ({:?}), timestamps {}, workgroup storage {} B, invocations {}, binding {} B, chosen tiles for d=64: {:?}",
        ctx.adapter_name(),
        ctx.info.device_type,
        ctx.timestamps,
        limits.max_compute_workgroup_storage_size,
        limits.max_compute_invocations_per_workgroup,
        limits.max_storage_buffer_binding_size,
        TileConfig::choose(&limits, 64)
    );
    assert!(!ctx.is_lost());
}

#[test]
fn the_widget_sentence_on_the_gpu_equals_its_cpu_weights() {
    // What <ml-attention> does in the browser: the sentence's Q, K, V through the naive
    // kernel, the probabilities read back, compared with the CPU core's weights.
    use mlplay::attention::{compute, Config, Model};
    let ctx = ctx();
    let k = NaiveAttention::new(ctx);
    for (temp, causal) in [(1.0, false), (0.3, true), (4.0, false)] {
        let c = Config {
            temperature: temp,
            causal,
            n_heads: 8,
            kv_heads_requested: 2,
            ..Default::default()
        };
        let d = compute(&c);
        let qkv = Model::new(c.seed, 8, 2).qkv(&d.tokens);
        let bufs = AttnBuffers::upload(ctx, &qkv).unwrap();
        let plan = k.plan(ctx, &bufs, c.options(), 0);
        block_on(run(ctx, &plan)).unwrap();
        let n = d.tokens.len();
        let p = block_on(read_f32(ctx, &plan.probs, 8 * n * n)).unwrap();
        let p = Array3::from_shape_vec((8, n, n), p).unwrap();
        let e = max_abs_diff(&p, &d.weights);
        assert!(e <= TOL, "T={temp} causal={causal}: {e}");
    }
}
