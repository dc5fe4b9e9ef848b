//! Drawing for `<ml-flash-attention>`: panel 0 the tiles of a 16-token example with the
//! running max and sum of the current query tile, panel 1 the output so far beside naive
//! attention's, panel 2 the HBM-traffic model of Dao et al. 2022, panel 3 a live timing of the
//! naive and flash kernels on this page's GPU (the CPU twins without one).
//!
//! The timing is background work: `pending` while sizes are left, and `step` (called by the
//! page once per frame while the widget is on screen) starts the next size when none is
//! running, so it pauses when the reader scrolls away.

use std::cell::RefCell;
use std::rc::Rc;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::attn_draw::{
    chart, compact, legend, legend_layout, lines, mix, note, prob_color, wrapped, Mark,
};
use super::gpu::{status, with_gpu, Gpu};
use super::plot::{dashed, dots, line, px_line, px_rect, px_text, Area, Theme};
use super::{View, WebInfo};
use crate::attention::{max_abs_diff, Dims, Options, Qkv};
use crate::flash::{
    traffic, Config, Demo, Traffic, DEMO_D, DEMO_N, DEMO_TILE, TIMING_D, TIMING_NS,
};
use crate::gpu::{now_ms, padded_dim, run, AttnBuffers};
use crate::json::Json;
use crate::kvcache::human_bytes;
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The tiles, one step at a time: the running max m and sum l of the current query tile",
        "The output so far (O / l) beside naive attention's",
        "Memory traffic: naive against tiled, as N grows (Dao et al. 2022, Theorem 2)",
        "Live timing on this device: naive and flash kernels over N",
    ],
    equation: r#"<math display="block"><mrow><msup><mi>m</mi><mo>′</mo></msup><mo>=</mo><mi>max</mi><mo>(</mo><mi>m</mi><mo>,</mo><mi>rowmax</mi><msub><mi>S</mi><mi data-key="step">j</mi></msub><mo>)</mo><mo>,</mo><mspace width="0.6em"/><msup><mi>l</mi><mo>′</mo></msup><mo>=</mo><msup><mi>e</mi><mrow><mi>m</mi><mo>−</mo><msup><mi>m</mi><mo>′</mo></msup></mrow></msup><mi>l</mi><mo>+</mo><mi>rowsum</mi><msup><mi>e</mi><mrow><msub><mi>S</mi><mi data-key="step">j</mi></msub><mo>−</mo><msup><mi>m</mi><mo>′</mo></msup></mrow></msup><mo>,</mo><mspace width="0.6em"/><msup><mi>O</mi><mo>′</mo></msup><mo>=</mo><msup><mi>e</mi><mrow><mi>m</mi><mo>−</mo><msup><mi>m</mi><mo>′</mo></msup></mrow></msup><mi>O</mi><mo>+</mo><msup><mi>e</mi><mrow><msub><mi>S</mi><mi data-key="step">j</mi></msub><mo>−</mo><msup><mi>m</mi><mo>′</mo></msup></mrow></msup><msub><mi>V</mi><mi data-key="step">j</mi></msub></mrow></math><math display="block"><mrow><mtext>HBM&#160;accesses:&#160;</mtext><mi>Θ</mi><mo>(</mo><mi data-key="n">N</mi><mi data-key="d">d</mi><mo>+</mo><msup><mi data-key="n">N</mi><mn>2</mn></msup><mo>)</mo><mtext>&#160;naive,&#160;&#160;</mtext><mi>Θ</mi><mo>(</mo><msup><mi data-key="n">N</mi><mn>2</mn></msup><msup><mi data-key="d">d</mi><mn>2</mn></msup><mo>/</mo><mi data-key="sram">M</mi><mo>)</mo><mtext>&#160;tiled</mtext></mrow></math>"#,
};

/// One measured size.
#[derive(Clone, Debug)]
struct Row {
    n: usize,
    naive_ms: f64,
    flash_ms: f64,
    diff: f32,
}

/// The live timing: sizes measured so far, for one head count.
struct Timing {
    heads: usize,
    rows: Vec<Row>,
    next: usize,
    in_flight: bool,
    stopped: Option<String>,
    on_gpu: Option<bool>,
    device: String,
    method: &'static str,
    error: Option<String>,
    /// Bumped when the head count changes, so a run in flight for the old one is dropped.
    generation: u64,
    changed: bool,
}

/// A run longer than this ends the sweep (the next size would take about four times longer).
const GPU_BUDGET_MS: f64 = 1500.0;
const CPU_BUDGET_MS: f64 = 400.0;
/// The CPU twins time at most this many tokens.
const CPU_MAX_N: usize = 512;
/// Bytes of scores the naive kernel may keep per chunk in the browser.
const WEB_SCRATCH: usize = 64 << 20;

pub(crate) struct FlashView {
    config: Option<Config>,
    demo: Option<Demo>,
    traffic: Option<Traffic>,
    timing: Rc<RefCell<Timing>>,
}

impl Default for FlashView {
    fn default() -> Self {
        FlashView {
            config: None,
            demo: None,
            traffic: None,
            timing: Rc::new(RefCell::new(Timing {
                heads: 0,
                rows: Vec::new(),
                next: 0,
                in_flight: false,
                stopped: None,
                on_gpu: None,
                device: String::new(),
                method: "",
                error: None,
                generation: 0,
                changed: false,
            })),
        }
    }
}

fn problem(n: usize, heads: usize) -> Qkv {
    Qkv::random(
        Dims {
            n_heads: heads,
            n_kv_heads: heads,
            seq_len: n,
            head_dim: TIMING_D,
        },
        n as u64,
    )
}

async fn time_on_gpu(gpu: &Gpu, n: usize, heads: usize) -> Result<(Row, &'static str), String> {
    let qkv = problem(n, heads);
    let ctx = &gpu.ctx;
    let bufs = AttnBuffers::upload(ctx, &qkv)?;
    let opts = Options::default();
    let rows = (WEB_SCRATCH / (heads * n * 4)).max(1);
    let naive = gpu.naive().plan_chunked(ctx, &bufs, opts, 0, rows);
    let flash = gpu.flash(padded_dim(TIMING_D))?;
    let fplan = flash.plan(ctx, &bufs, opts)?;
    // One warm-up each (first use compiles and allocates), then the timed runs.
    if n == TIMING_NS[0] {
        run(ctx, &naive).await?;
        run(ctx, &fplan).await?;
    }
    let t_naive = run(ctx, &naive).await?;
    let o_naive = bufs.read_output(ctx).await?;
    let t_flash = run(ctx, &fplan).await?;
    let o_flash = bufs.read_output(ctx).await?;
    let method = if t_naive.method == "timestamp-query" && t_flash.method == "timestamp-query" {
        "timestamp queries"
    } else {
        "performance.now() around submit and readback"
    };
    Ok((
        Row {
            n,
            naive_ms: t_naive.ms,
            flash_ms: t_flash.ms,
            diff: max_abs_diff(&o_naive, &o_flash),
        },
        method,
    ))
}

fn time_on_cpu(n: usize, heads: usize) -> Row {
    let qkv = problem(n, heads);
    let opts = Options::default();
    let t0 = now_ms();
    let a = crate::attention::attention(&qkv, opts);
    let t1 = now_ms();
    let b = crate::flash::flash_attention(&qkv, opts, 64, 32);
    let t2 = now_ms();
    Row {
        n,
        naive_ms: t1 - t0,
        flash_ms: t2 - t1,
        diff: max_abs_diff(&a, &b),
    }
}

impl FlashView {
    fn config(&self) -> &Config {
        self.config
            .as_ref()
            .expect("update() runs before any view is read")
    }

    fn demo(&self) -> &Demo {
        self.demo.as_ref().expect("update() runs first")
    }

    fn traffic(&self) -> &Traffic {
        self.traffic.as_ref().expect("update() runs first")
    }

    /// Start the next size of the timing if nothing runs (called from `step`).
    fn advance_timing(&mut self) {
        let (heads, n, generation) = {
            let t = self.timing.borrow();
            if t.in_flight || t.stopped.is_some() || t.error.is_some() || t.next >= TIMING_NS.len()
            {
                return;
            }
            (t.heads, TIMING_NS[t.next], t.generation)
        };
        self.timing.borrow_mut().in_flight = true;
        let timing = self.timing.clone();
        with_gpu(move |gpu| match gpu {
            Ok(gpu) => {
                wasm_bindgen_futures::spawn_local(async move {
                    let result = time_on_gpu(&gpu, n, heads).await;
                    let mut t = timing.borrow_mut();
                    if t.generation != generation {
                        return;
                    }
                    t.in_flight = false;
                    t.on_gpu = Some(true);
                    t.device = gpu.label();
                    t.changed = true;
                    match result {
                        Ok((row, method)) => {
                            t.method = method;
                            let slow = row.naive_ms.max(row.flash_ms) > GPU_BUDGET_MS;
                            t.rows.push(row);
                            t.next += 1;
                            if slow && t.next < TIMING_NS.len() {
                                t.stopped = Some(format!(
                                    "stopped after N = {n}: one run took over {:.1} s",
                                    GPU_BUDGET_MS / 1e3
                                ));
                            }
                        }
                        Err(e) => t.error = Some(e),
                    }
                });
            }
            Err(why) => {
                let mut t = timing.borrow_mut();
                if t.generation != generation {
                    return;
                }
                t.in_flight = false;
                t.on_gpu = Some(false);
                t.device = format!("CPU: {why}");
                t.method = "performance.now() around the CPU twins";
                t.changed = true;
                if n > CPU_MAX_N {
                    t.stopped = Some(format!("the CPU stops at N = {CPU_MAX_N}"));
                    return;
                }
                let row = time_on_cpu(n, heads);
                let slow = row.naive_ms.max(row.flash_ms) > CPU_BUDGET_MS;
                t.rows.push(row);
                t.next += 1;
                if slow {
                    t.stopped = Some(format!(
                        "stopped after N = {n}: one run took over {:.1} s",
                        CPU_BUDGET_MS / 1e3
                    ));
                }
            }
        });
    }
}

// ----------------------------------------------------------------------------- drawing

fn diverging(theme: &Theme, v: f64, vmax: f64) -> RGBColor {
    if !v.is_finite() {
        return theme.bg;
    }
    let dark = theme.bg.0 < 0x80;
    let (neg, pos) = if dark {
        (RGBColor(0x9e, 0xc9, 0xf5), RGBColor(0xfd, 0xb8, 0x63))
    } else {
        (RGBColor(0x21, 0x66, 0xac), RGBColor(0xb3, 0x58, 0x06))
    };
    let t = (v / vmax.max(1e-9)).clamp(-1.0, 1.0);
    if t < 0.0 {
        mix(mix(theme.bg, theme.grid, 0.5), neg, -t)
    } else {
        mix(mix(theme.bg, theme.grid, 0.5), pos, t)
    }
}

/// Panel 0: the score matrix as tiles, and the current tile's running statistics.
fn draw_tiles(area: &Area, theme: &Theme, d: &Demo) -> Result<(), String> {
    let (aw, ah) = area.dim_in_pixel();
    let (aw, ah) = (f64::from(aw), f64::from(ah));
    let wide = aw >= 620.0;
    let side = if wide {
        (aw * 0.48).min(ah - 40.0).min(360.0)
    } else {
        (aw - 40.0).min(340.0)
    };
    let cell = side / DEMO_N as f64;
    let (x0, y0) = (28.0, 26.0);
    let tiles = DEMO_N / DEMO_TILE;
    let latest = d.latest();
    let cur = d.current();
    let title = match cur {
        Some(c) => format!(
            "step {} of {}: query tile {} has read key tile {}",
            d.done,
            d.steps.len(),
            c.q_tile,
            c.kv_tile
        ),
        None => format!("step 0 of {}: nothing read yet", d.steps.len()),
    };
    px_text(
        area,
        &title,
        (x0 as i32, 4),
        &theme.text(12.5).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    let visited = |qi: usize, kj: usize| {
        d.steps[..d.done]
            .iter()
            .any(|s| s.q_tile == qi && s.kv_tile == kj)
    };
    let planned = |qi: usize, kj: usize| d.steps.iter().any(|s| s.q_tile == qi && s.kv_tile == kj);
    for i in 0..DEMO_N {
        for j in 0..DEMO_N {
            let (qi, kj) = (i / DEMO_TILE, j / DEMO_TILE);
            let (x, y) = (x0 + j as f64 * cell, y0 + i as f64 * cell);
            let color = if visited(qi, kj) {
                // The weight as this query tile's state sees it now: e^{S - m} / l.
                let st = latest[qi].expect("a visited tile's query tile has a state");
                let r = i - qi * DEMO_TILE;
                let c0 = kj * DEMO_TILE;
                let sc = d.steps[..d.done]
                    .iter()
                    .find(|s| s.q_tile == qi && s.kv_tile == kj)
                    .map(|s| s.scores[[r, j - c0]])
                    .unwrap_or(f32::NEG_INFINITY);
                let w = crate::attention::exp(sc - st.state.m[r]) / st.state.l[r];
                prob_color(theme, f64::from(w), 1.0)
            } else if planned(qi, kj) {
                theme.bg
            } else {
                mix(theme.bg, theme.muted, 0.25) // skipped by the causal mask
            };
            px_rect(
                area,
                [
                    (x.round() as i32, y.round() as i32),
                    ((x + cell).round() as i32, (y + cell).round() as i32),
                ],
                color.filled(),
            )?;
        }
    }
    // Tile grid, and the current tile.
    for t in 0..=tiles {
        let p = (t * DEMO_TILE) as f64 * cell;
        px_line(
            area,
            &[
                ((x0 + p) as i32, y0 as i32),
                ((x0 + p) as i32, (y0 + side) as i32),
            ],
            theme.muted.stroke_width(1),
        )?;
        px_line(
            area,
            &[
                (x0 as i32, (y0 + p) as i32),
                ((x0 + side) as i32, (y0 + p) as i32),
            ],
            theme.muted.stroke_width(1),
        )?;
    }
    if let Some(c) = cur {
        let (x, y) = (
            x0 + (c.kv_tile * DEMO_TILE) as f64 * cell,
            y0 + (c.q_tile * DEMO_TILE) as f64 * cell,
        );
        let s = DEMO_TILE as f64 * cell;
        px_rect(
            area,
            [
                (x as i32 - 1, y as i32 - 1),
                ((x + s) as i32 + 1, (y + s) as i32 + 1),
            ],
            theme.warn.stroke_width(3),
        )?;
    }
    px_text(
        area,
        "keys →",
        ((x0 + side) as i32, (y0 + side + 4.0) as i32),
        &theme.muted_text(11.0).pos(Pos::new(HPos::Right, VPos::Top)),
    )?;
    px_text(
        area,
        "queries ↓",
        (x0 as i32, (y0 + side + 4.0) as i32),
        &theme.muted_text(11.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;

    // The running statistics of the current query tile.
    let (tx, ty) = if wide {
        (x0 + side + 30.0, y0)
    } else {
        (10.0, y0 + side + 30.0)
    };
    let Some(c) = cur else {
        px_text(
            area,
            "Move the tile step to start: each step reads one key/value tile.",
            (tx as i32, ty as i32),
            &theme.muted_text(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
        )?;
        return Ok(());
    };
    let prev = d.previous();
    let text = |s: String, x: f64, y: f64, muted: bool| {
        let style = if muted {
            theme.muted_text(12.0)
        } else {
            theme.text(12.0)
        };
        px_text(
            area,
            &s,
            (x as i32, y as i32),
            &style.pos(Pos::new(HPos::Left, VPos::Top)),
        )
    };
    text(
        format!(
            "query tile {}, rows {}–{}",
            c.q_tile,
            c.q_tile * 4,
            c.q_tile * 4 + 3
        ),
        tx,
        ty,
        false,
    )?;
    let cols = [tx, tx + 44.0, tx + 120.0, tx + 196.0];
    let header = ["row", "m", "l", "e^(m−m′)"];
    for (k, h) in header.iter().enumerate() {
        text(h.to_string(), cols[k], ty + 22.0, true)?;
    }
    for r in 0..c.state.m.len() {
        let y = ty + 42.0 + 20.0 * r as f64;
        let alpha = prev.map_or(0.0, |p| crate::attention::exp(p.state.m[r] - c.state.m[r]));
        text(format!("{}", c.q_tile * DEMO_TILE + r), cols[0], y, false)?;
        text(format!("{:+.3}", c.state.m[r]), cols[1], y, false)?;
        text(format!("{:.3}", c.state.l[r]), cols[2], y, false)?;
        text(
            if prev.is_some() {
                format!("{alpha:.3}")
            } else {
                "(first tile)".to_string()
            },
            cols[3],
            y,
            prev.is_none(),
        )?;
    }
    let y = ty + 42.0 + 20.0 * 4.0 + 10.0;
    let lines = [
        "m: the largest score seen so far in the row; l: the sum of e^(S − m) over the keys seen. A new maximum rescales l and O by e^(m − m′) < 1.".to_string(),
        match d.finished_error() {
            Some(e) => format!(
                "Rows 0–{} are finished: |O/l − naive| ≤ {e:.1e}.",
                d.finished_rows() - 1
            ),
            None => "No query tile is finished yet.".to_string(),
        },
    ];
    let mut y = y;
    for (k, line) in lines.iter().enumerate() {
        if k == 1 {
            y += 8.0; // a gap before the verdict
        }
        for part in super::kvcache::wrap(line, if wide { aw - tx } else { aw }) {
            text(part, tx, y, k < 1)?;
            y += 17.0;
        }
    }
    Ok(())
}

fn draw_matrix(
    area: &Area,
    theme: &Theme,
    title: &str,
    m: ndarray::ArrayView2<f32>,
    vmax: f64,
) -> Result<(), String> {
    let (aw, ah) = area.dim_in_pixel();
    let (rows, cols) = m.dim();
    let cell = ((f64::from(aw) - 40.0) / cols as f64)
        .min((f64::from(ah) - 30.0) / rows as f64)
        .max(2.0);
    let (x0, y0) = (30.0, 24.0);
    px_text(
        area,
        title,
        (x0 as i32, 4),
        &theme.text(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    for ((i, j), &v) in m.indexed_iter() {
        let (x, y) = (x0 + j as f64 * cell, y0 + i as f64 * cell);
        px_rect(
            area,
            [
                (x.round() as i32, y.round() as i32),
                ((x + cell).round() as i32, (y + cell).round() as i32),
            ],
            diverging(theme, f64::from(v), vmax).filled(),
        )?;
    }
    for t in (0..=rows).step_by(DEMO_TILE) {
        let y = y0 + t as f64 * cell;
        px_line(
            area,
            &[
                (x0 as i32, y as i32),
                ((x0 + cols as f64 * cell) as i32, y as i32),
            ],
            theme.muted.stroke_width(1),
        )?;
        if t < rows {
            px_text(
                area,
                &format!("{t}"),
                ((x0 - 4.0) as i32, (y + 6.0) as i32),
                &theme
                    .muted_text(10.0)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            )?;
        }
    }
    Ok(())
}

fn outputs_text(d: &Demo) -> String {
    match d.finished_error() {
        Some(e) => format!(
            "Finished rows (0–{}): max |O_flash − O_naive| = {e:.1e}. Rows not reached are blank.",
            d.finished_rows() - 1
        ),
        None => "No row is finished yet; the current tile shows O / l so far.".to_string(),
    }
}

fn draw_outputs(area: &Area, theme: &Theme, d: &Demo) -> Result<(), String> {
    let (aw, _) = area.dim_in_pixel();
    let text = outputs_text(d);
    let (top, bottom) = area.split_vertically((12 + 17 * lines(&text, f64::from(aw))) as u32);
    let vmax = d.naive.iter().fold(0.0f32, |m, &v| m.max(v.abs())) as f64;
    wrapped(&top, theme, &text, 6)?;
    let halves = if aw >= 420 {
        bottom.split_evenly((1, 2))
    } else {
        bottom.split_evenly((2, 1))
    };
    draw_matrix(
        &halves[0],
        theme,
        "flash: O / l so far (16 rows × 8 dims)",
        d.flash.view(),
        vmax,
    )?;
    draw_matrix(
        &halves[1],
        theme,
        "naive: softmax(S) V",
        d.naive.view(),
        vmax,
    )
}

fn context_label(log2: &f64) -> String {
    if (log2 - log2.round()).abs() > 1e-9 {
        return String::new();
    }
    let n = 2f64.powf(log2.round()) as u64;
    if n >= 1024 {
        format!("{}K", n / 1024)
    } else {
        n.to_string()
    }
}

fn traffic_legend(theme: &Theme, t: &Traffic) -> Vec<(Mark, String)> {
    vec![
        (
            Mark::Line(theme.palette[1]),
            "standard: 4Nd + 4N² (Algorithm 0)".to_string(),
        ),
        (
            Mark::Line(theme.palette[0]),
            format!("flash, Algorithm 1 (B_c = {})", t.blocks.1),
        ),
        (
            Mark::Dashed(theme.palette[2]),
            format!("FA-2 order, Q tiles of B_r = {}", t.blocks.0),
        ),
    ]
}

fn draw_traffic(area: &Area, theme: &Theme, t: &Traffic, c: &Config) -> Result<(), String> {
    let (aw, _) = area.dim_in_pixel();
    let items = traffic_legend(theme, t);
    let labels: Vec<String> = items.iter().map(|i| i.1.clone()).collect();
    let lh = legend_layout(&labels, f64::from(aw)).1 + 4.0;
    let (top, rest) = area.split_vertically(lh as u32);
    legend(&top, theme, &items)?;
    let text_h = 14 + 17 * lines(&traffic_text(t, c), f64::from(aw)) as u32;
    let (plot, bottom) = rest.split_vertically(rest.dim_in_pixel().1.saturating_sub(text_h));
    let all: Vec<f64> = t
        .standard
        .iter()
        .chain(&t.flash)
        .chain(&t.flash2)
        .copied()
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log2()
        .floor();
    let hi = all.iter().copied().fold(0.0, f64::max).log2().ceil();
    let every = ((hi - lo) / 6.0).ceil().max(1.0);
    let y_fmt = move |v: &f64| {
        let r = v.round();
        if (v - r).abs() > 1e-9 || (r % every).abs() > 1e-9 {
            return String::new();
        }
        human_bytes(2f64.powf(r))
    };
    let mut ch = chart(
        &plot,
        theme,
        &format!(
            "HBM traffic per head, fp16, d = {}, M = {} KiB",
            c.d, c.sram_kib
        ),
        8.0..17.0,
        lo..hi,
        ["sequence length N (log scale)", "bytes moved (log scale)"],
        [(10, &context_label), ((hi - lo) as usize + 1, &y_fmt)],
        64,
    )?;
    let pts = |ys: &[f64]| -> Vec<(f64, f64)> {
        t.ns.iter()
            .zip(ys)
            .map(|(&n, &b)| (n.log2(), b.log2()))
            .collect()
    };
    line(&mut ch, &pts(&t.standard), theme.palette[1].stroke_width(2))?;
    line(&mut ch, &pts(&t.flash), theme.palette[0].stroke_width(2))?;
    dashed(
        &mut ch,
        &pts(&t.flash2),
        6,
        4,
        theme.palette[2].stroke_width(2),
    )?;
    let x = (c.n as f64).log2();
    dashed(
        &mut ch,
        &[(x, lo), (x, hi)],
        3,
        3,
        theme.muted.stroke_width(1),
    )?;
    for (v, color) in [
        (t.at_n.0, theme.palette[1]),
        (t.at_n.1, theme.palette[0]),
        (t.at_n.2, theme.palette[2]),
    ] {
        dots(&mut ch, &[(x, v.log2())], 4, color.filled())?;
    }
    wrapped(&bottom, theme, &traffic_text(t, c), 8).map(|_| ())
}

fn traffic_text(t: &Traffic, c: &Config) -> String {
    format!(
        "At N = {}: standard {}, flash {} ({:.1}× less), FA-2 order {} ({:.1}× less).",
        c.n,
        human_bytes(t.at_n.0),
        human_bytes(t.at_n.1),
        t.at_n.0 / t.at_n.1,
        human_bytes(t.at_n.2),
        t.at_n.0 / t.at_n.2
    )
}

fn draw_timing(area: &Area, theme: &Theme, t: &Timing) -> Result<(), String> {
    let (aw, _) = area.dim_in_pixel();
    let items = vec![
        (Mark::Line(theme.palette[1]), "naive kernel".to_string()),
        (Mark::Line(theme.palette[0]), "flash kernel".to_string()),
    ];
    let labels: Vec<String> = items.iter().map(|i| i.1.clone()).collect();
    let lh = legend_layout(&labels, f64::from(aw)).1 + 4.0;
    let (top, rest) = area.split_vertically(lh as u32);
    legend(&top, theme, &items)?;
    let text_h = timing_text_height(t, f64::from(aw)) as u32;
    let (plot, bottom) = rest.split_vertically(rest.dim_in_pixel().1.saturating_sub(text_h));
    let x_hi = (*TIMING_NS.last().unwrap() as f64).log2();
    let x_lo = (TIMING_NS[0] as f64).log2();
    let ms: Vec<f64> = t
        .rows
        .iter()
        .flat_map(|r| [r.naive_ms, r.flash_ms])
        .filter(|v| *v > 0.0)
        .collect();
    let lo = ms.iter().copied().fold(0.1, f64::min).log10().floor();
    let hi = ms.iter().copied().fold(10.0, f64::max).log10().ceil();
    let y_fmt = |v: &f64| {
        if (v - v.round()).abs() > 1e-9 {
            return String::new();
        }
        let x = 10f64.powf(v.round());
        if x >= 1.0 {
            format!("{} ms", compact(x))
        } else {
            format!("{x} ms")
        }
    };
    let title = if t.device.is_empty() {
        "waiting for the widget to come into view".to_string()
    } else {
        format!("{}: H = {}, d = {TIMING_D}", t.device, t.heads)
    };
    let mut ch = chart(
        &plot,
        theme,
        &title,
        x_lo - 0.2..x_hi + 0.2,
        lo..hi,
        ["sequence length N (log scale)", "time per run (log scale)"],
        [(8, &context_label), ((hi - lo) as usize + 1, &y_fmt)],
        64,
    )?;
    for (color, pick) in [
        (theme.palette[1], (|r: &Row| r.naive_ms) as fn(&Row) -> f64),
        (theme.palette[0], |r: &Row| r.flash_ms),
    ] {
        let pts: Vec<(f64, f64)> = t
            .rows
            .iter()
            .filter(|r| pick(r) > 0.0)
            .map(|r| ((r.n as f64).log2(), pick(r).log10()))
            .collect();
        line(&mut ch, &pts, color.stroke_width(2))?;
        dots(&mut ch, &pts, 4, color.filled())?;
    }
    let mut y = 6;
    for line in timing_texts(t) {
        for part in super::kvcache::wrap(&line, f64::from(aw)) {
            note(&bottom, theme, &part, y)?;
            y += 17;
        }
    }
    Ok(())
}

/// The status lines under the timing plot.
fn timing_texts(t: &Timing) -> [String; 2] {
    let last = t.rows.last();
    let status = if let Some(e) = &t.error {
        format!("The GPU run failed: {e}")
    } else if let Some(s) = &t.stopped {
        format!("Done ({s}).")
    } else if t.next >= TIMING_NS.len() {
        "Done.".to_string()
    } else {
        format!("Measuring N = {}…", TIMING_NS[t.next])
    };
    let line2 = match last {
        Some(r) => format!(
            "N = {}: naive {:.2} ms, flash {:.2} ms ({:.1} GFLOP/s), |O_naive − O_flash| ≤ {:.1e}; {}.",
            r.n,
            r.naive_ms,
            r.flash_ms,
            4.0 * (r.n as f64).powi(2) * TIMING_D as f64 * t.heads as f64 / (r.flash_ms * 1e-3) / 1e9,
            r.diff,
            t.method
        ),
        None => String::new(),
    };
    [status, line2]
}

fn timing_text_height(t: &Timing, width: f64) -> f64 {
    12.0 + 17.0
        * timing_texts(t)
            .iter()
            .map(|l| lines(l, width))
            .sum::<usize>() as f64
}

fn timing_json(t: &Timing) -> Json {
    Json::obj([
        (
            "status",
            Json::str(if t.error.is_some() {
                "error"
            } else if t.stopped.is_some() || t.next >= TIMING_NS.len() {
                "done"
            } else {
                "measuring"
            }),
        ),
        ("on_gpu", t.on_gpu.map_or(Json::Null, Json::Bool)),
        ("device", Json::str(&t.device)),
        ("heads", Json::Num(t.heads as f64)),
        ("head_dim", Json::Num(TIMING_D as f64)),
        ("method", Json::str(t.method)),
        ("stopped", t.stopped.as_ref().map_or(Json::Null, Json::str)),
        ("error", t.error.as_ref().map_or(Json::Null, Json::str)),
        (
            "rows",
            Json::Arr(
                t.rows
                    .iter()
                    .map(|r| {
                        Json::obj([
                            ("n", Json::Num(r.n as f64)),
                            ("naive_ms", Json::Num(r.naive_ms)),
                            ("flash_ms", Json::Num(r.flash_ms)),
                            ("max_abs_diff", Json::Num(f64::from(r.diff))),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

impl View for FlashView {
    fn update(&mut self, params: &Params) {
        let c = Config::from_params(params);
        self.demo = Some(Demo::new(&c));
        self.traffic = Some(traffic(&c));
        {
            let mut t = self.timing.borrow_mut();
            if t.heads != c.heads {
                t.heads = c.heads;
                t.rows.clear();
                t.next = 0;
                t.in_flight = false;
                t.stopped = None;
                t.error = None;
                t.generation += 1;
            }
        }
        self.config = Some(c);
    }

    fn pending(&self) -> bool {
        let t = self.timing.borrow();
        t.changed || (t.error.is_none() && t.stopped.is_none() && t.next < TIMING_NS.len())
    }

    fn step(&mut self, _params: &Params, _budget_ms: f64) -> Option<Json> {
        self.advance_timing();
        let changed = std::mem::take(&mut self.timing.borrow_mut().changed);
        let done = !self.pending();
        Some(Json::obj([
            ("done", Json::Bool(done)),
            ("fraction", Json::Null),
            ("text", Json::str("")),
            (
                "panels",
                Json::Arr(if changed {
                    vec![Json::Num(3.0)]
                } else {
                    vec![]
                }),
            ),
        ]))
    }

    fn backend(&self) -> Option<String> {
        let t = self.timing.borrow();
        if !t.device.is_empty() {
            return Some(t.device.clone());
        }
        Some(match status() {
            Some(Ok(g)) => g.label(),
            Some(Err(why)) => format!("CPU: {why}"),
            None => "WebGPU: starting…".to_string(),
        })
    }

    fn data(&self) -> Json {
        Json::obj([
            ("demo", self.demo().to_json()),
            ("traffic", self.traffic().to_json()),
            ("timing", timing_json(&self.timing.borrow())),
        ])
    }

    fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 | 1 => self.demo().to_json(),
            2 => self.traffic().to_json(),
            _ => timing_json(&self.timing.borrow()),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        let mut out = String::new();
        match panel {
            0 => {
                out.push_str("step,q_tile,kv_tile,row,m,l\n");
                for (k, st) in self.demo().steps[..self.demo().done].iter().enumerate() {
                    for r in 0..st.state.m.len() {
                        out.push_str(&format!(
                            "{},{},{},{},{},{}\n",
                            k + 1,
                            st.q_tile,
                            st.kv_tile,
                            st.q_tile * DEMO_TILE + r,
                            st.state.m[r],
                            st.state.l[r]
                        ));
                    }
                }
            }
            1 => {
                out.push_str("row,dim,flash_so_far,naive\n");
                let d = self.demo();
                for ((i, j), v) in d.flash.indexed_iter() {
                    let f = if v.is_finite() {
                        v.to_string()
                    } else {
                        String::new()
                    };
                    out.push_str(&format!("{i},{j},{f},{}\n", d.naive[[i, j]]));
                }
            }
            2 => {
                let t = self.traffic();
                out.push_str("n,standard_bytes,flash_bytes,flash2_bytes\n");
                for i in 0..t.ns.len() {
                    out.push_str(&format!(
                        "{},{},{},{}\n",
                        t.ns[i], t.standard[i], t.flash[i], t.flash2[i]
                    ));
                }
            }
            _ => {
                out.push_str("n,naive_ms,flash_ms,max_abs_diff\n");
                for r in &self.timing.borrow().rows {
                    out.push_str(&format!(
                        "{},{},{},{}\n",
                        r.n, r.naive_ms, r.flash_ms, r.diff
                    ));
                }
            }
        }
        out
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        match panel {
            0 => {
                if width >= 620.0 {
                    (width * 0.48).min(360.0) + 80.0
                } else {
                    (width - 40.0).min(340.0) + 60.0 + 240.0
                }
            }
            1 => {
                let top = 12.0 + 17.0 * lines(&outputs_text(self.demo()), width) as f64;
                if width >= 420.0 {
                    top + ((width / 2.0 - 40.0) / DEMO_D as f64).min(20.0) * DEMO_N as f64 + 40.0
                } else {
                    top + 2.0 * (((width - 40.0) / DEMO_D as f64).min(16.0) * DEMO_N as f64 + 36.0)
                }
            }
            2 => {
                let items = traffic_legend(&Theme::new(false), self.traffic());
                let labels: Vec<String> = items.into_iter().map(|i| i.1).collect();
                let text = traffic_text(self.traffic(), self.config());
                legend_layout(&labels, width).1
                    + 4.0
                    + 300.0
                    + 14.0
                    + 17.0 * lines(&text, width) as f64
            }
            _ => 24.0 + 300.0 + timing_text_height(&self.timing.borrow(), width).max(46.0),
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        match panel {
            0 => draw_tiles(area, theme, self.demo()),
            1 => draw_outputs(area, theme, self.demo()),
            2 => draw_traffic(area, theme, self.traffic(), self.config()),
            _ => draw_timing(area, theme, &self.timing.borrow()),
        }
    }

    fn describe(&self, panel: usize) -> String {
        let d = self.demo();
        match panel {
            0 => {
                match d.current() {
                    Some(c) => {
                        format!(
                    "Step {} of {}: query tile {} has read key tile {}; running maxima {:?}.",
                    d.done,
                    d.steps.len(),
                    c.q_tile,
                    c.kv_tile,
                    c.state.m.iter().map(|m| (m * 1000.0).round() / 1000.0).collect::<Vec<_>>()
                )
                    }
                    None => "No tile read yet.".to_string(),
                }
            }
            1 => match d.finished_error() {
                Some(e) => format!(
                    "{} rows finished; largest difference from naive attention {e:.1e}.",
                    d.finished_rows()
                ),
                None => "No row finished yet.".to_string(),
            },
            2 => {
                let t = self.traffic();
                let c = self.config();
                format!(
                    "At N = {}, standard attention moves {} and flash attention {}.",
                    c.n,
                    human_bytes(t.at_n.0),
                    human_bytes(t.at_n.1)
                )
            }
            _ => {
                let t = self.timing.borrow();
                format!(
                    "Timing of naive and flash attention for {} sizes on {}.",
                    t.rows.len(),
                    t.device
                )
            }
        }
    }
}
