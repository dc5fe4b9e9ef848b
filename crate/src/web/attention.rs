//! Drawing for `<ml-attention>`: panel 0 the attention weights of every head as heatmaps,
//! panel 1 the chosen query's row of each head as a probability distribution, panel 2 a long
//! sequence on the GPU (pooled weights, and the time the naive and flash kernels take).
//!
//! The sentence is computed on the CPU at once (so the widget draws without waiting), then on
//! the page's GPU through the naive kernel; when that readback lands the heatmaps show the
//! GPU's weights and the state says how far they are from the CPU's. Without WebGPU the CPU
//! numbers stay, the long sequence is computed on the CPU up to 512 tokens, and the badge
//! says why.

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::{s, Array3, Axis};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::attn_draw::{draw_heatmap, mix, prob_color, prob_colorbar};
use super::gpu::{with_gpu, Gpu};
use super::plot::{px_line, px_rect, px_text, Area, Theme};
use super::{TextInput, View, WebInfo};
use crate::attention::{
    attention_weights, compute, compute_with, long_qkv, max_abs_diff, pool_weights, tokenize,
    Config, Data, D_HEAD, LONG_CPU_MAX, POOL_BLOCKS, SENTENCES, VOCAB,
};
use crate::gpu::{now_ms, padded_dim, read_f32, run, AttnBuffers};
use crate::json::Json;
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "Attention weights, head by head: row i is token i's softmax over the keys",
        "The query token's row of every head, as a probability distribution",
        "A long sequence: the weights pooled, and what the naive and flash kernels cost",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>O</mi><mi data-key="heads">h</mi></msub><mo>=</mo><mi>softmax</mi><mrow><mo>(</mo><mfrac><mrow><msub><mi>Q</mi><mi data-key="heads">h</mi></msub><msubsup><mi>K</mi><mrow><mi data-key="kv-heads">g</mi><mo>(</mo><mi>h</mi><mo>)</mo></mrow><mo>⊤</mo></msubsup></mrow><mrow><msqrt><msub><mi>d</mi><mi>k</mi></msub></msqrt><mspace width="0.2em"/><mi data-key="temp">T</mi></mrow></mfrac><mo>+</mo><mi data-key="causal">M</mi><mo>)</mo></mrow><msub><mi>V</mi><mrow><mi data-key="kv-heads">g</mi><mo>(</mo><mi>h</mi><mo>)</mo></mrow></msub><mo>,</mo><mspace width="1em"/><mi data-key="kv-heads">g</mi><mo>(</mo><mi>h</mi><mo>)</mo><mo>=</mo><mo>⌊</mo><mi>h</mi><mo>/</mo><mo>(</mo><mi data-key="heads">H</mi><mo>/</mo><mi data-key="kv-heads">G</mi><mo>)</mo><mo>⌋</mo></mrow></math>"#,
};

static TEXT_INPUT: TextInput = TextInput {
    label: "Your own sentence",
    doc: "Up to 16 words from this vocabulary: the a cat dog sat on mat because it was tired chased red ball in park she gave him book and he read bank of river quiet big small ran to home. Apply replaces the preset sentence; choosing another preset or \"Use generated data\" goes back to the presets.",
    accept: ".txt,text/plain",
};

/// Where the numbers come from.
#[derive(Clone, Debug, PartialEq)]
enum Backend {
    Starting,
    Gpu(String),
    Cpu(String),
}

/// What identifies the long-sequence computation (it is redone only when this changes).
#[derive(Clone, Debug, PartialEq)]
struct LongKey {
    n: usize,
    heads: usize,
    kv_heads: usize,
    temperature: u32,
    causal: bool,
    seed: u64,
}

impl LongKey {
    fn of(c: &Config) -> LongKey {
        LongKey {
            n: c.long_n,
            heads: c.n_heads,
            kv_heads: c.kv_heads().0,
            temperature: c.temperature.to_bits(),
            causal: c.causal,
            seed: c.seed,
        }
    }
}

/// The long sequence, computed.
#[derive(Clone, Debug)]
struct Long {
    /// Tokens computed (the request, or at most LONG_CPU_MAX on the CPU).
    n: usize,
    heads: usize,
    on_gpu: bool,
    naive_ms: f64,
    flash_ms: f64,
    /// How the times were taken.
    timing: &'static str,
    /// (H, B, B) pooled weights.
    pooled: Array3<f32>,
    diff_naive_flash: f32,
    /// Flash tile sizes (B_r, B_c).
    tiles: (usize, usize),
    /// Bytes of scores the naive kernel writes to memory.
    scores_bytes: f64,
}

/// What arrives after `update` returns.
struct Shared {
    generation: u64,
    backend: Backend,
    /// The GPU's weights for the sentence of this generation, and their distance to the CPU's.
    sentence_gpu: Option<(u64, Array3<f32>, f32)>,
    long_key: Option<LongKey>,
    long: Option<Long>,
    error: Option<String>,
    /// Panels a landed result changed, for the page's next redraw.
    changed: Vec<usize>,
}

impl Shared {
    fn land(&mut self, panels: &[usize]) {
        for p in panels {
            if !self.changed.contains(p) {
                self.changed.push(*p);
            }
        }
    }
}

pub(crate) struct AttentionView {
    data: Option<Data>,
    /// Tokens from the text box, in force until another preset is chosen.
    custom: Option<Vec<usize>>,
    last_sentence: Option<usize>,
    shared: Rc<RefCell<Shared>>,
}

impl Default for AttentionView {
    fn default() -> Self {
        AttentionView {
            data: None,
            custom: None,
            last_sentence: None,
            shared: Rc::new(RefCell::new(Shared {
                generation: 0,
                backend: Backend::Starting,
                sentence_gpu: None,
                long_key: None,
                long: None,
                error: None,
                changed: Vec::new(),
            })),
        }
    }
}

/// Flash tile sizes the CPU twin uses for the long sequence (the GPU's default for d = 16).
const CPU_TILES: (usize, usize) = (32, 16);
/// Bytes of scores the naive kernel may keep per chunk in the browser.
const WEB_SCRATCH: usize = 64 << 20;

/// Let the browser paint before a long computation (a macrotask: setTimeout 0).
async fn yield_to_page() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&wasm_bindgen::JsValue::NULL, &resolve, &0.into());
            }
            None => {
                let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
            }
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

use wasm_bindgen::JsCast;

/// The sentence through the naive kernel: its (H, N, N) weights.
async fn sentence_on_gpu(gpu: &Gpu, data: &Data) -> Result<Array3<f32>, String> {
    let (g, _) = data.config.kv_heads();
    let qkv =
        crate::attention::Model::new(data.config.seed, data.config.n_heads, g).qkv(&data.tokens);
    let bufs = AttnBuffers::upload(&gpu.ctx, &qkv)?;
    let plan = gpu.naive().plan(&gpu.ctx, &bufs, data.config.options(), 0);
    run(&gpu.ctx, &plan).await?;
    let (h, n) = (data.config.n_heads, data.tokens.len());
    let flat = read_f32(&gpu.ctx, &plan.probs, h * n * n).await?;
    Array3::from_shape_vec((h, n, n), flat).map_err(|e| e.to_string())
}

/// The long sequence on the GPU: naive (pooled heatmap) and flash, each timed.
async fn long_on_gpu(gpu: &Gpu, c: &Config) -> Result<Long, String> {
    let n = c.long_n;
    let qkv = long_qkv(c, n);
    let ctx = &gpu.ctx;
    let bufs = AttnBuffers::upload(ctx, &qkv)?;
    let opts = c.options();
    let naive = gpu.naive();
    let rows = (WEB_SCRATCH / (c.n_heads * n * 4)).max(1);
    let plan = naive.plan_chunked(ctx, &bufs, opts, POOL_BLOCKS, rows);
    let naive_t = run(ctx, &plan).await?;
    let o_naive = bufs.read_output(ctx).await?;
    let (pooled_buf, blocks) = plan.pooled.as_ref().expect("asked for a pooled heatmap");
    let pooled = read_f32(ctx, pooled_buf, c.n_heads * blocks * blocks).await?;
    let pooled =
        Array3::from_shape_vec((c.n_heads, *blocks, *blocks), pooled).map_err(|e| e.to_string())?;
    let flash = gpu.flash(padded_dim(D_HEAD))?;
    let fplan = flash.plan(ctx, &bufs, opts)?;
    let flash_t = run(ctx, &fplan).await?;
    let o_flash = bufs.read_output(ctx).await?;
    Ok(Long {
        n,
        heads: c.n_heads,
        on_gpu: true,
        naive_ms: naive_t.ms,
        flash_ms: flash_t.ms,
        timing: if naive_t.method == "timestamp-query" && flash_t.method == "timestamp-query" {
            "timestamp queries (GPU time of the pass)"
        } else {
            "performance.now() around submit and readback"
        },
        pooled,
        diff_naive_flash: max_abs_diff(&o_naive, &o_flash),
        tiles: (flash.config.block_rows(), flash.config.block_cols()),
        scores_bytes: (c.n_heads * n * n * 4) as f64,
    })
}

/// The long sequence on the CPU twins, at most LONG_CPU_MAX tokens.
fn long_on_cpu(c: &Config) -> Long {
    let n = c.long_n.min(LONG_CPU_MAX);
    let qkv = long_qkv(c, n);
    let opts = c.options();
    let t0 = now_ms();
    let o_naive = crate::attention::attention(&qkv, opts);
    let naive_ms = now_ms() - t0;
    let t1 = now_ms();
    let o_flash = crate::flash::flash_attention(&qkv, opts, CPU_TILES.0, CPU_TILES.1);
    let flash_ms = now_ms() - t1;
    let dims = qkv.dims();
    let blocks = POOL_BLOCKS.min(n);
    let mut pooled = Array3::zeros((c.n_heads, blocks, blocks));
    for h in 0..c.n_heads {
        let p = attention_weights(
            qkv.q.index_axis(Axis(0), h),
            qkv.k.index_axis(Axis(0), dims.kv_head(h)),
            opts,
        );
        pooled
            .index_axis_mut(Axis(0), h)
            .assign(&pool_weights(p.view(), blocks));
    }
    Long {
        n,
        heads: c.n_heads,
        on_gpu: false,
        naive_ms,
        flash_ms,
        timing: "performance.now() around the CPU computation",
        pooled,
        diff_naive_flash: max_abs_diff(&o_naive, &o_flash),
        tiles: CPU_TILES,
        scores_bytes: (c.n_heads * n * n * 4) as f64,
    }
}

impl AttentionView {
    fn data(&self) -> &Data {
        self.data
            .as_ref()
            .expect("update() runs before any view is read")
    }

    /// Start the GPU work (or the CPU fallback for the long sequence) for the data in force.
    fn launch(&mut self, long_changed: bool) {
        let data = self.data().clone();
        let shared = self.shared.clone();
        let generation = shared.borrow().generation;
        with_gpu(move |gpu| match gpu {
            Ok(gpu) => {
                {
                    let mut s = shared.borrow_mut();
                    s.backend = Backend::Gpu(gpu.label());
                    s.land(&[0, 1, 2]);
                }
                wasm_bindgen_futures::spawn_local(async move {
                    let cpu = data.weights.clone();
                    match sentence_on_gpu(&gpu, &data).await {
                        Ok(w) => {
                            let mut s = shared.borrow_mut();
                            if s.generation == generation {
                                let diff = max_abs_diff(&w, &cpu);
                                s.sentence_gpu = Some((generation, w, diff));
                            }
                        }
                        Err(e) => shared.borrow_mut().error = Some(e),
                    }
                    shared.borrow_mut().land(&[0, 1]);
                    if long_changed {
                        yield_to_page().await;
                        let key = LongKey::of(&data.config);
                        if shared.borrow().long_key.as_ref() != Some(&key) {
                            return; // superseded before it started
                        }
                        let result = long_on_gpu(&gpu, &data.config).await;
                        let mut s = shared.borrow_mut();
                        if s.long_key.as_ref() == Some(&key) {
                            match result {
                                Ok(l) => s.long = Some(l),
                                Err(e) => s.error = Some(e),
                            }
                            s.land(&[2]);
                        }
                    }
                });
            }
            Err(why) => {
                {
                    let mut s = shared.borrow_mut();
                    s.backend = Backend::Cpu(why);
                    s.land(&[0, 1, 2]);
                }
                if long_changed {
                    wasm_bindgen_futures::spawn_local(async move {
                        yield_to_page().await;
                        let key = LongKey::of(&data.config);
                        if shared.borrow().long_key.as_ref() != Some(&key) {
                            return;
                        }
                        let long = long_on_cpu(&data.config);
                        let mut s = shared.borrow_mut();
                        if s.long_key.as_ref() == Some(&key) {
                            s.long = Some(long);
                            s.land(&[2]);
                        }
                    });
                }
            }
        });
    }

    /// The weights drawn now: the GPU's for this sentence when they have arrived.
    fn shown_weights(&self) -> (Array3<f32>, &'static str, Option<f32>) {
        let s = self.shared.borrow();
        match &s.sentence_gpu {
            Some((g, w, diff)) if *g == s.generation => (w.clone(), "gpu", Some(*diff)),
            _ => (self.data().weights.clone(), "cpu", None),
        }
    }

    fn recompute(&mut self, config: Config) {
        let data = match &self.custom {
            Some(tokens) => compute_with(&config, tokens),
            None => compute(&config),
        };
        self.data = Some(data);
        let key = LongKey::of(&config);
        let long_changed = {
            let mut s = self.shared.borrow_mut();
            s.generation += 1;
            s.sentence_gpu = None;
            s.error = None;
            let changed = s.long_key.as_ref() != Some(&key);
            if changed {
                s.long_key = Some(key);
                s.long = None;
            }
            changed
        };
        self.launch(long_changed);
    }
}

// ----------------------------------------------------------------------------- drawing

/// Columns of the small-multiple grids for H heads at a width.
fn grid_cols(heads: usize, width: f64) -> usize {
    let fit = ((width - 8.0) / 250.0).floor().max(1.0) as usize;
    fit.min(heads)
        .clamp(1, 4)
        .max(if width >= 340.0 { 2.min(heads) } else { 1 })
}

fn group_color(theme: &Theme, g: usize) -> RGBColor {
    theme.palette[g % theme.palette.len()]
}

/// Height of one heatmap cell of panel 0 (square heatmap plus title and labels).
fn heatmap_cell_height(width: f64, heads: usize) -> f64 {
    let cols = grid_cols(heads, width) as f64;
    let cw = (width / cols).floor();
    let labels = if cw >= 200.0 { 52.0 } else { 0.0 };
    (cw - labels - 10.0).min(300.0) + labels + 24.0
}

fn text_style(theme: &Theme, size: f64) -> TextStyle<'static> {
    theme.text(size)
}

fn draw_weights(area: &Area, theme: &Theme, d: &Data, w: &Array3<f32>) -> Result<(), String> {
    let (aw, _) = area.dim_in_pixel();
    let width = f64::from(aw);
    let heads = d.config.n_heads;
    let cols = grid_cols(heads, width);
    let rows = heads.div_ceil(cols);
    let cell_h = heatmap_cell_height(width, heads);
    let (grid, bar) = area.split_vertically((cell_h * rows as f64) as u32);
    let dims = crate::attention::Dims {
        n_heads: heads,
        n_kv_heads: d.n_kv_heads,
        seq_len: d.tokens.len(),
        head_dim: D_HEAD,
    };
    let words = d.words();
    let cw = (width / cols as f64).floor() as u32;
    for h in 0..heads {
        let (r, c) = (h / cols, h % cols);
        let cell = grid.clone().shrink(
            (c as u32 * cw, (r as f64 * cell_h) as u32),
            (cw, cell_h as u32),
        );
        let g = dims.kv_head(h);
        draw_heatmap(
            &cell,
            theme,
            &words,
            w.index_axis(Axis(0), h),
            d.query,
            &format!("head {h} · K/V head {g}"),
            group_color(theme, g),
        )?;
    }
    let caption = if width >= 560.0 {
        "attention weight (rows sum to 1; frame colour = shared K/V head)"
    } else {
        "weight"
    };
    prob_colorbar(&bar, theme, 1.0, caption)
}

fn draw_rows(area: &Area, theme: &Theme, d: &Data, w: &Array3<f32>) -> Result<(), String> {
    let (aw, ah) = area.dim_in_pixel();
    let width = f64::from(aw);
    let heads = d.config.n_heads;
    let cols = grid_cols(heads, width);
    let rows = heads.div_ceil(cols);
    let cell_h = f64::from(ah) / rows as f64;
    let cw = (width / cols as f64).floor();
    let words = d.words();
    let n = words.len();
    let dims = crate::attention::Dims {
        n_heads: heads,
        n_kv_heads: d.n_kv_heads,
        seq_len: n,
        head_dim: D_HEAD,
    };
    for h in 0..heads {
        let (r, c) = (h / cols, h % cols);
        let cell = area.clone().shrink(
            ((c as f64 * cw) as u32, (r as f64 * cell_h) as u32),
            (cw as u32, cell_h as u32),
        );
        let g = dims.kv_head(h);
        let color = group_color(theme, g);
        let row = w.slice(s![h, d.query, ..]);
        let entropy: f32 = -row
            .iter()
            .map(|&p| if p > 0.0 { p * p.ln() } else { 0.0 })
            .sum::<f32>();
        let (x0, x1) = (34.0, cw - 10.0);
        let (y0, y1) = (22.0, cell_h - 50.0);
        px_text(
            &cell,
            &format!("head {h}: H = {entropy:.2} nats"),
            (x0 as i32, 4),
            &text_style(theme, 12.0)
                .color(&color)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        )?;
        // Axis and grid lines at 0, 0.5, 1.
        for (v, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
            let y = y1 - (y1 - y0) * v;
            px_line(
                &cell,
                &[(x0 as i32, y as i32), (x1 as i32, y as i32)],
                theme.grid.stroke_width(1),
            )?;
            px_text(
                &cell,
                label,
                ((x0 - 4.0) as i32, y as i32),
                &theme
                    .muted_text(10.0)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            )?;
        }
        let bw = (x1 - x0) / n as f64;
        for (j, &p) in row.iter().enumerate() {
            let x = x0 + j as f64 * bw;
            let y = y1 - (y1 - y0) * f64::from(p);
            let fill = if j == d.query {
                color
            } else {
                mix(color, theme.bg, 0.3)
            };
            px_rect(
                &cell,
                [
                    ((x + 1.0) as i32, y as i32),
                    ((x + bw - 1.0) as i32, y1 as i32),
                ],
                fill.filled(),
            )?;
            if bw >= 9.0 {
                px_text(
                    &cell,
                    words[j],
                    ((x + bw / 2.0) as i32, (y1 + 3.0) as i32),
                    &theme
                        .muted_text(bw.clamp(9.0, 11.0))
                        .transform(FontTransform::Rotate90)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )?;
            }
        }
    }
    Ok(())
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

fn draw_long(
    area: &Area,
    theme: &Theme,
    long: Option<&Long>,
    c: &Config,
    backend: &Backend,
) -> Result<(), String> {
    let (aw, ah) = area.dim_in_pixel();
    let width = f64::from(aw);
    let wide = width >= 620.0;
    let Some(l) = long else {
        // A placeholder of the same layout while the kernels run.
        let what = match backend {
            Backend::Cpu(_) => "on the CPU",
            _ => "on the GPU",
        };
        let side = if wide {
            (width * 0.45).min(330.0).min(f64::from(ah) - 44.0)
        } else {
            (width - 20.0).min(360.0)
        };
        px_rect(
            area,
            [(10, 22), ((10.0 + side) as i32, (22.0 + side) as i32)],
            mix(theme.grid, theme.bg, 0.3).filled(),
        )?;
        let (x, y) = if wide {
            ((side + 40.0) as i32, 8)
        } else {
            (10, (side + 50.0) as i32)
        };
        px_text(
            area,
            &format!(
                "Computing {} tokens × {} heads {what}: naive, then flash…",
                c.long_n, c.n_heads
            ),
            (x, y),
            &text_style(theme, 12.0).pos(Pos::new(HPos::Left, VPos::Top)),
        )?;
        return Ok(());
    };
    let (map_area, side_area) = if wide {
        let side = (width * 0.45).min(330.0).min(f64::from(ah) - 44.0);
        area.split_horizontally((side + 20.0) as u32)
    } else {
        let side = (width - 20.0).min(360.0);
        area.split_vertically((side + 44.0) as u32)
    };
    // Pooled heatmap of head 0.
    let (mw, mh) = map_area.dim_in_pixel();
    let blocks = l.pooled.dim().1;
    let side = (f64::from(mw) - 20.0).min(f64::from(mh) - 44.0);
    let cell = side / blocks as f64;
    let head0 = l.pooled.index_axis(Axis(0), 0);
    let vmax = head0.iter().fold(0.0f32, |m, &v| m.max(v)).max(1e-6);
    px_text(
        &map_area,
        &format!("head 0, {} tokens pooled to {blocks} × {blocks}", l.n),
        (10, 4),
        &text_style(theme, 12.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    px_text(
        &map_area,
        "keys →   queries ↓",
        (10, (22.0 + side + 4.0) as i32),
        &theme.muted_text(11.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    for a in 0..blocks {
        for b in 0..blocks {
            let (x, y) = (10.0 + b as f64 * cell, 22.0 + a as f64 * cell);
            px_rect(
                &map_area,
                [
                    (x.round() as i32, y.round() as i32),
                    ((x + cell).round() as i32, (y + cell).round() as i32),
                ],
                prob_color(theme, f64::from(head0[[a, b]]), f64::from(vmax)).filled(),
            )?;
        }
    }
    // Times as bars, and the numbers behind them.
    let (sw, _) = side_area.dim_in_pixel();
    let sw = f64::from(sw);
    let max_ms = l.naive_ms.max(l.flash_ms).max(1e-6);
    let bar_x0 = 70.0;
    let bar_w = (sw - bar_x0 - 90.0).max(60.0);
    let lines_top = 8;
    let where_ = if l.on_gpu { "GPU" } else { "CPU" };
    px_text(
        &side_area,
        &format!(
            "N = {}, {} heads, d = {D_HEAD}, on the {where_}",
            l.n, l.heads
        ),
        (10, lines_top),
        &text_style(theme, 12.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    for (i, (name, ms, color)) in [
        ("naive", l.naive_ms, theme.palette[1]),
        ("flash", l.flash_ms, theme.palette[0]),
    ]
    .into_iter()
    .enumerate()
    {
        let y = 34 + i as i32 * 30;
        px_text(
            &side_area,
            name,
            (10, y + 9),
            &text_style(theme, 12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
        let wpx = (bar_w * ms / max_ms).max(2.0);
        px_rect(
            &side_area,
            [(bar_x0 as i32, y), ((bar_x0 + wpx) as i32, y + 18)],
            color.filled(),
        )?;
        px_text(
            &side_area,
            &fmt_ms(ms),
            ((bar_x0 + wpx + 6.0) as i32, y + 9),
            &text_style(theme, 12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    let mut y = 100;
    for n in long_notes(l, c) {
        for line in super::kvcache::wrap(&n, sw) {
            px_text(
                &side_area,
                &line,
                (10, y),
                &theme.muted_text(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
            )?;
            y += 17;
        }
    }
    Ok(())
}

/// The sentences beside the long sequence's timing bars.
fn long_notes(l: &Long, c: &Config) -> Vec<String> {
    let mut notes = vec![
        if l.flash_ms < l.naive_ms {
            format!("flash is {:.1}× faster here.", l.naive_ms / l.flash_ms)
        } else {
            format!("naive is {:.1}× faster here.", l.flash_ms / l.naive_ms)
        },
        format!(
            "Naive writes {} of scores to memory and reads them back twice; flash keeps {}×{} tiles on chip and never stores them.",
            crate::kvcache::human_bytes(l.scores_bytes),
            l.tiles.0,
            l.tiles.1
        ),
        format!("max |O_naive − O_flash| = {:.1e}", l.diff_naive_flash),
        format!("Timed with {}.", l.timing),
    ];
    if !l.on_gpu && c.long_n > l.n {
        notes.insert(
            0,
            format!(
                "No GPU here: the CPU computes {} of the {} tokens.",
                l.n, c.long_n
            ),
        );
    }
    notes
}

/// Height of the long-sequence panel's text column at a width.
fn long_text_height(l: Option<&Long>, c: &Config, width: f64) -> f64 {
    let lines: usize = l.map_or(1, |l| {
        long_notes(l, c)
            .iter()
            .map(|n| super::kvcache::wrap(n, width).len())
            .sum()
    });
    100.0 + 17.0 * lines as f64 + 10.0
}

fn long_json(l: Option<&Long>, c: &Config) -> Json {
    match l {
        None => Json::obj([
            ("status", Json::str("computing")),
            ("requested_n", Json::Num(c.long_n as f64)),
        ]),
        Some(l) => Json::obj([
            ("status", Json::str("done")),
            ("requested_n", Json::Num(c.long_n as f64)),
            ("n", Json::Num(l.n as f64)),
            ("heads", Json::Num(l.heads as f64)),
            ("head_dim", Json::Num(D_HEAD as f64)),
            ("on_gpu", Json::Bool(l.on_gpu)),
            ("naive_ms", Json::Num(l.naive_ms)),
            ("flash_ms", Json::Num(l.flash_ms)),
            ("timing", Json::str(l.timing)),
            (
                "max_abs_diff_naive_flash",
                Json::Num(f64::from(l.diff_naive_flash)),
            ),
            ("scores_bytes", Json::Num(l.scores_bytes)),
            (
                "tiles",
                Json::Arr(vec![
                    Json::Num(l.tiles.0 as f64),
                    Json::Num(l.tiles.1 as f64),
                ]),
            ),
            (
                "pooled_head0",
                Json::Arr(
                    l.pooled
                        .index_axis(Axis(0), 0)
                        .rows()
                        .into_iter()
                        .map(|r| Json::Arr(r.iter().map(|&v| Json::Num(f64::from(v))).collect()))
                        .collect(),
                ),
            ),
        ]),
    }
}

impl View for AttentionView {
    fn update(&mut self, params: &Params) {
        let config = Config::from_params(params);
        if self.last_sentence != Some(config.sentence) {
            self.custom = None; // a preset chosen: the text box's sentence goes
            self.last_sentence = Some(config.sentence);
        }
        self.recompute(config);
    }

    /// Results are outstanding (the GPU's sentence, the long sequence), or some landed and
    /// are not drawn yet: the page then calls `step` every frame.
    fn pending(&self) -> bool {
        let s = self.shared.borrow();
        let sentence = match s.backend {
            Backend::Starting => true,
            Backend::Gpu(_) => s.sentence_gpu.is_none() && s.error.is_none(),
            Backend::Cpu(_) => false,
        };
        sentence || (s.long.is_none() && s.error.is_none()) || !s.changed.is_empty()
    }

    /// Nothing to compute here (the GPU and the event loop do it): name the panels whose
    /// results landed since the last frame, so the page redraws just those.
    fn step(&mut self, _params: &Params, _budget_ms: f64) -> Option<Json> {
        let panels = std::mem::take(&mut self.shared.borrow_mut().changed);
        let done = !self.pending();
        Some(Json::obj([
            ("done", Json::Bool(done)),
            ("fraction", Json::Null),
            ("text", Json::str("")),
            (
                "panels",
                Json::Arr(panels.into_iter().map(|p| Json::Num(p as f64)).collect()),
            ),
        ]))
    }

    fn backend(&self) -> Option<String> {
        Some(match &self.shared.borrow().backend {
            Backend::Starting => "WebGPU: starting…".to_string(),
            Backend::Gpu(label) => label.clone(),
            Backend::Cpu(why) => format!("CPU: {why}"),
        })
    }

    fn text_input(&self) -> Option<&'static TextInput> {
        Some(&TEXT_INPUT)
    }

    fn text(&self) -> String {
        self.data().words().join(" ")
    }

    fn set_text(&mut self, params: &Params, text: &str) -> Result<String, String> {
        let config = Config::from_params(params);
        if text.trim().is_empty() {
            self.custom = None;
            self.recompute(config);
            return Ok(format!(
                "preset sentence: {}",
                SENTENCES[self.data().config.sentence]
            ));
        }
        let tokens = tokenize(text)?;
        let n = tokens.len();
        self.custom = Some(tokens);
        self.recompute(config);
        Ok(format!("{n} tokens"))
    }

    fn data(&self) -> Json {
        let d = self.data();
        let (w, source, diff) = self.shown_weights();
        let s = self.shared.borrow();
        let (backend, adapter, reason) = match &s.backend {
            Backend::Starting => ("starting", Json::Null, Json::Null),
            Backend::Gpu(a) => ("webgpu", Json::str(a), Json::Null),
            Backend::Cpu(why) => ("cpu", Json::Null, Json::str(why)),
        };
        Json::obj([
            ("backend", Json::str(backend)),
            ("adapter", adapter),
            ("cpu_reason", reason),
            ("sentence", d.sentence_json(&w)),
            ("weights_source", Json::str(source)),
            (
                "gpu_cpu_max_abs_diff",
                diff.map_or(Json::Null, |x| Json::Num(f64::from(x))),
            ),
            ("output_head0_row", {
                let o = d.output.slice(s![0, d.query, ..]);
                Json::Arr(o.iter().map(|&v| Json::Num(f64::from(v))).collect())
            }),
            ("long", long_json(s.long.as_ref(), &d.config)),
            ("gpu_error", s.error.as_ref().map_or(Json::Null, Json::str)),
            (
                "vocabulary",
                Json::Arr(VOCAB.iter().map(|w| Json::str(*w)).collect()),
            ),
        ])
    }

    fn panel_json(&self, panel: usize) -> Json {
        let d = self.data();
        let (w, _, _) = self.shown_weights();
        match panel {
            0 => d.sentence_json(&w),
            1 => Json::obj([
                ("query", Json::Num(d.query as f64)),
                (
                    "tokens",
                    Json::Arr(d.words().into_iter().map(Json::str).collect()),
                ),
                (
                    "rows",
                    Json::Arr(
                        (0..d.config.n_heads)
                            .map(|h| {
                                Json::Arr(
                                    w.slice(s![h, d.query, ..])
                                        .iter()
                                        .map(|&v| Json::Num(f64::from(v)))
                                        .collect(),
                                )
                            })
                            .collect(),
                    ),
                ),
            ]),
            _ => long_json(self.shared.borrow().long.as_ref(), &d.config),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        let d = self.data();
        let (w, _, _) = self.shown_weights();
        let words = d.words();
        let mut out = String::new();
        match panel {
            0 => {
                out.push_str("head,query,key,query_token,key_token,weight\n");
                for ((h, i, j), v) in w.indexed_iter() {
                    out.push_str(&format!("{h},{i},{j},{},{},{v}\n", words[i], words[j]));
                }
            }
            1 => {
                out.push_str("head,key,key_token,weight\n");
                for h in 0..d.config.n_heads {
                    for (j, v) in w.slice(s![h, d.query, ..]).iter().enumerate() {
                        out.push_str(&format!("{h},{j},{},{v}\n", words[j]));
                    }
                }
            }
            _ => {
                out.push_str("head,row_block,key_block,mass\n");
                if let Some(l) = &self.shared.borrow().long {
                    for ((h, a, b), v) in l.pooled.indexed_iter() {
                        out.push_str(&format!("{h},{a},{b},{v}\n"));
                    }
                }
            }
        }
        out
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        let heads = self.data().config.n_heads;
        let rows = heads.div_ceil(grid_cols(heads, width)) as f64;
        match panel {
            0 => heatmap_cell_height(width, heads) * rows + 36.0,
            1 => rows * 190.0,
            _ => {
                let s = self.shared.borrow();
                let c = &self.data().config;
                if width >= 620.0 {
                    let side = (width * 0.45).min(330.0);
                    let text = long_text_height(s.long.as_ref(), c, width - side - 20.0);
                    (side + 44.0).max(text)
                } else {
                    let side = (width - 20.0).min(360.0);
                    side + 44.0 + long_text_height(s.long.as_ref(), c, width)
                }
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let d = self.data();
        match panel {
            0 => {
                let (w, _, _) = self.shown_weights();
                draw_weights(area, theme, d, &w)
            }
            1 => {
                let (w, _, _) = self.shown_weights();
                draw_rows(area, theme, d, &w)
            }
            _ => {
                let s = self.shared.borrow();
                draw_long(area, theme, s.long.as_ref(), &d.config, &s.backend)
            }
        }
    }

    fn describe(&self, panel: usize) -> String {
        let d = self.data();
        let (w, source, _) = self.shown_weights();
        let c = &d.config;
        let words = d.words();
        match panel {
            0 => format!(
                "Attention weights of {} heads sharing {} K/V heads over the {} tokens \"{}\", temperature {:.2}, causal mask {}; computed on the {}.",
                c.n_heads,
                d.n_kv_heads,
                words.len(),
                words.join(" "),
                c.temperature,
                if c.causal { "on" } else { "off" },
                if source == "gpu" { "GPU" } else { "CPU" }
            ),
            1 => {
                let tops: Vec<String> = (0..c.n_heads)
                    .map(|h| {
                        let row = w.slice(s![h, d.query, ..]);
                        let (j, p) = row
                            .iter()
                            .enumerate()
                            .fold((0, 0.0f32), |b, (j, &p)| if p > b.1 { (j, p) } else { b });
                        format!("head {h} puts {p:.2} on \"{}\"", words[j])
                    })
                    .collect();
                format!(
                    "Token {} (\"{}\"): {}.",
                    d.query,
                    words[d.query],
                    tops.join("; ")
                )
            }
            _ => match self.shared.borrow().long.as_ref() {
                None => format!("Computing a {}-token sequence.", c.long_n),
                Some(l) => format!(
                    "{} tokens, {} heads on the {}: naive {}, flash {}.",
                    l.n,
                    l.heads,
                    if l.on_gpu { "GPU" } else { "CPU" },
                    fmt_ms(l.naive_ms),
                    fmt_ms(l.flash_ms)
                ),
            },
        }
    }
}
