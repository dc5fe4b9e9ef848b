//! The web layer in a real browser (wasm-bindgen-test-runner drives headless Chromium):
//! handles, lenient parameters, and drawing into a canvas, checked by reading its pixels.
#![cfg(all(target_arch = "wasm32", feature = "web"))]

use mlplay::web::{registry, Handle};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

wasm_bindgen_test_configure!(run_in_browser);

fn canvas(width: u32, height: u32) -> HtmlCanvasElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let c: HtmlCanvasElement = doc.create_element("canvas").unwrap().dyn_into().unwrap();
    c.set_width(width);
    c.set_height(height);
    c
}

fn pixels(c: &HtmlCanvasElement) -> Vec<u8> {
    let ctx: CanvasRenderingContext2d = c.get_context("2d").unwrap().unwrap().dyn_into().unwrap();
    ctx.get_image_data(0.0, 0.0, c.width() as f64, c.height() as f64)
        .unwrap()
        .data()
        .to_vec()
}

#[wasm_bindgen_test]
fn registry_lists_the_widget_with_its_panels_and_equation() {
    let r = registry();
    assert!(r.contains(r#""name":"ppo-clip""#));
    assert!(r.contains(r#""element":"ml-ppo-clip""#));
    assert!(r.contains("<math"));
    assert!(
        r.contains(r#"data-key=\"eps\""#),
        "equation symbols are tied to the sliders"
    );
}

#[wasm_bindgen_test]
fn handle_sets_leniently_and_reports() {
    let mut h = Handle::new("ppo-clip").unwrap();
    assert_eq!(h.set("eps", "0.3"), None);
    assert_eq!(h.get("eps"), 0.3);
    let notice = h.set("eps", "9").unwrap();
    assert!(notice.contains("clamped to 0.50"), "{notice}");
    assert_eq!(h.get("eps"), 0.5);
    assert!(h.get("nope").is_nan());
    assert!(Handle::new("nope").is_err());
    h.reset();
    assert_eq!(h.get("eps"), 0.2);
    assert!(h
        .state()
        .starts_with(r#"{"widget":"ppo-clip","params":{"eps":0.2,"#));
}

#[wasm_bindgen_test]
fn draws_themed_pixels_that_follow_the_parameters() {
    let mut h = Handle::new("ppo-clip").unwrap();
    let (w, ht) = (640.0, h.panel_height(0, 640.0));
    // A device-pixel ratio of 2: the canvas is twice the CSS size.
    let c = canvas(1280, (2.0 * ht) as u32);
    h.draw(0, c.clone(), false, w, ht).unwrap();
    let light = pixels(&c);
    // The corner is the light theme's background, #ffffff, opaque.
    assert_eq!(&light[0..4], &[255, 255, 255, 255]);
    // Something was drawn: a good share of pixels differ from the background.
    let inked = light.chunks(4).filter(|p| p[0] < 200 || p[2] < 200).count();
    assert!(inked > 5_000, "only {inked} inked pixels");
    // The dark theme's background is #16191f.
    h.draw(0, c.clone(), true, w, ht).unwrap();
    assert_eq!(&pixels(&c)[0..4], &[0x16, 0x19, 0x1f, 255]);
    // Changing eps moves the trust region: the light drawing changes.
    h.set("eps", "0.45");
    h.draw(0, c.clone(), false, w, ht).unwrap();
    assert_ne!(pixels(&c), light);
}

/// `<ml-scaling-laws>`'s text box: it starts with the synthetic runs as CSV, takes runs given
/// as text (with a summary naming a skipped line), refuses too few runs keeping those in
/// force, and goes back to synthetic runs on an empty text.
#[wasm_bindgen_test]
fn scaling_text_box_takes_runs_and_goes_back() {
    let mut h = Handle::new("scaling-laws").unwrap();
    let generated = h.text();
    assert!(generated.starts_with("# 90 synthetic runs"), "{generated}");
    assert!(registry().contains(r#""text_input":{"label":"Your runs (CSV: N, D, L)""#));
    // The generated text read back as runs: 90 of them, the same fit source "entered".
    let ok = h.set_text(&format!("{generated}not a run\n"));
    assert!(
        ok.contains(r#""ok":true"#) && ok.contains("fitting 90 runs; 1 line skipped"),
        "{ok}"
    );
    assert!(h.state().contains(r#""source":"entered""#));
    let refused = h.set_text("N,D,L\n1e9,2e10,2.5\n");
    assert!(
        refused.contains(r#""ok":false"#) && refused.contains("at least 6 points"),
        "{refused}"
    );
    assert!(
        h.state().contains(r#""source":"entered""#),
        "the runs in force are kept"
    );
    assert!(h.set_text("").contains(r#""ok":true"#));
    assert!(h.state().contains(r#""source":"synthetic""#));
    assert_eq!(h.text(), generated);
}

/// Background work (framework): a non-trainer with `pending` work is stepped to the end,
/// each step reporting progress and naming the panel to redraw.
#[wasm_bindgen_test]
fn background_fit_steps_to_the_end() {
    let mut h = Handle::new("scaling-laws").unwrap();
    h.set("boot", "20");
    assert!(h.pending());
    let mut steps = 0;
    let mut last = String::new();
    while h.pending() {
        last = h.step(4.0);
        steps += 1;
        assert!(steps < 10_000);
    }
    assert!(
        last.contains(r#""done":true"#) && last.contains(r#""panels":[2]"#),
        "{last}"
    );
    assert!(h.state().contains(r#""replicates":20,"target":20"#));
    // A budget change does not restart the fit.
    h.set("log_c", "25");
    assert!(!h.pending());
    // A fit parameter does.
    h.set("seed", "2");
    assert!(h.pending());
    // PPO's widget has no background work.
    assert!(!Handle::new("ppo-clip").unwrap().pending());
}

// ---- The WGSL kernels in the browser (SwiftShader under --enable-unsafe-webgpu): GPU == CPU.

#[wasm_bindgen_test]
async fn attention_kernels_on_webgpu_equal_the_cpu_twin() {
    use mlplay::attention::{attention, max_abs_diff, Dims, Options, Qkv};
    use mlplay::gpu::{self, GpuContext, Kernel};
    let ctx = GpuContext::acquire().await.expect(
        "webdriver.json launches Chromium with --enable-unsafe-webgpu: an adapter is expected",
    );
    for (case, (h, g, n, d)) in [(2, 1, 33, 16), (4, 2, 70, 64), (3, 3, 17, 12)]
        .into_iter()
        .enumerate()
    {
        let dims = Dims {
            n_heads: h,
            n_kv_heads: g,
            seq_len: n,
            head_dim: d,
        };
        let qkv = Qkv::random(dims, 40 + case as u64);
        for causal in [false, true] {
            let opts = Options {
                causal,
                temperature: 0.8,
            };
            let cpu = attention(&qkv, opts);
            for kernel in [Kernel::Naive, Kernel::Flash] {
                let (out, timing) = gpu::attention(&ctx, &qkv, opts, kernel).await.unwrap();
                let e = max_abs_diff(&out, &cpu);
                assert!(
                    e <= 1e-4,
                    "{kernel:?} {dims:?} causal={causal}: max abs diff {e} on {}",
                    ctx.adapter_name()
                );
                assert!(timing.ms >= 0.0);
            }
        }
    }
}

/// The denoiser's WGSL forward pass, its noise and its sampler stage on WebGPU equal the CPU
/// twins (`mlplay::diffusion`). The two sides add in the same order, so what remains is exp
/// (WGSL allows 3 + 2|x| ulp) and fused multiply-adds: tests/gpu_diffusion.rs derives bounds
/// of a few hundred u times the absolute sizes summed; here 1e-5 absolute on outputs of order 1
/// at H = 32 (lavapipe shows 2e-8), and the noise to 1.2e-6 max(|z|, 1) as there.
#[wasm_bindgen_test]
async fn diffusion_kernels_on_webgpu_equal_the_cpu_twin() {
    use mlplay::diffusion::mlp::{input_rows, Mlp};
    use mlplay::diffusion::noise::{normals, INITIAL_STEP};
    use mlplay::diffusion::sample::{Plan, Run, Sampler};
    use mlplay::diffusion::schedule::{Schedule, ScheduleKind};
    use mlplay::gpu::mlp::{GpuTrainer, MlpKernels};
    use mlplay::gpu::sampler::{stages_from_plan, GpuSampler, SamplerKernels};
    use mlplay::gpu::GpuContext;
    use ndarray::Array2;
    let ctx = GpuContext::acquire().await.expect(
        "webdriver.json launches Chromium with --enable-unsafe-webgpu: an adapter is expected",
    );
    let (h, b) = (32, 70);
    let net = Mlp::init(h, 5);
    let points = Array2::from_shape_fn((b, 2), |(i, c)| ((i * 7 + c * 3) % 11) as f32 * 0.4 - 2.0);
    let s: Vec<f32> = (0..b).map(|i| i as f32 / b as f32).collect();
    let x = input_rows(points.view(), &s);
    let kernels = MlpKernels::new(&ctx).unwrap();
    let trainer = GpuTrainer::new(&ctx, &kernels, h, b, &net.params, 1e-3).unwrap();
    let gpu = trainer.forward(&ctx, x.view()).await.unwrap();
    let cpu = net.forward(x.view());
    for (g, c) in gpu.iter().zip(&cpu) {
        assert!(
            (g - c).abs() <= 1e-5,
            "forward: gpu {g} cpu {c} on {}",
            ctx.adapter_name()
        );
    }

    let sk = SamplerKernels::new(&ctx).unwrap();
    let n = 100;
    let sampler = GpuSampler::new(&ctx, &sk, &net.params, h, n, 9, INITIAL_STEP, &[], 0).unwrap();
    sampler.run(&ctx).unwrap();
    let z = sampler.positions(&ctx).await.unwrap();
    let zc = normals(9, INITIAL_STEP, n);
    for (g, c) in z.chunks(2).zip(zc.chunks(2)) {
        let tol = 1.2e-6 * c[0].hypot(c[1]).max(1.0);
        assert!(
            (g[0] - c[0]).abs() <= tol && (g[1] - c[1]).abs() <= tol,
            "noise: gpu {g:?} cpu {c:?}"
        );
    }
    // The CPU sampler (sample::Run) and the GPU on three tables: DDPM on a short schedule
    // (noise on every row but the last), Euler, and midpoint (the d coefficient); positions
    // stay of order 1, so 1e-5 absolute is a few hundred u as in tests/gpu_diffusion.rs.
    let short = Schedule::new(ScheduleKind::Linear, 10);
    for plan in [
        Plan::diffusion(Sampler::Ddpm { tilde: false }, &short, 10).unwrap(),
        Plan::flow(Sampler::Euler, 3).unwrap(),
        Plan::flow(Sampler::Midpoint, 2).unwrap(),
    ] {
        let stages = stages_from_plan(&plan);
        let sampler =
            GpuSampler::new(&ctx, &sk, &net.params, h, n, 9, INITIAL_STEP, &stages, 0).unwrap();
        sampler.run(&ctx).unwrap();
        let x1 = sampler.positions(&ctx).await.unwrap();
        let mut run = Run::new(plan, 9, n);
        for (g, c) in x1.iter().zip(run.finish(&net)) {
            assert!((g - c).abs() <= 1e-5, "sampler: gpu {g} cpu {c}");
        }
    }
}

/// `math::parse_f64` converts with the engine's `parseFloat` here and with `str::parse`
/// natively. Its bits must be the nearest double (values from CPython's `float`), and the
/// grammar check must refuse what `parseFloat` would half-read.
#[wasm_bindgen_test]
fn parse_f64_in_the_browser_rounds_like_rust() {
    use mlplay::math::parse_f64;
    let exact: &[(&str, u64)] = &[
        ("9007199254740993", 0x4340_0000_0000_0000), // 2^53 + 1: a tie, to even (2^53)
        ("2.2250738585072011e-308", 0x000F_FFFF_FFFF_FFFF), // the largest subnormal
        ("0.1e1", 0x3FF0_0000_0000_0000),
        ("123456789012345678901234567890", 0x45F8_EE90_FF6C_373E),
        ("-0", 0x8000_0000_0000_0000),
    ];
    for &(s, bits) in exact {
        assert_eq!(parse_f64(s).map(f64::to_bits), Some(bits), "{s}");
    }
    for bad in ["1abc", " 1", "0x1A", "Infinityx", "1e", ""] {
        assert_eq!(parse_f64(bad), None, "{bad:?}");
    }
}
