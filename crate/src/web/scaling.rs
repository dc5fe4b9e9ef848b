//! Drawing for `<ml-scaling-laws>`: panel 0 the loss landscape over (log N, log D), panel 1
//! the loss along one budget's iso-FLOP line, panel 2 the fit of the five constants with
//! its bootstrap intervals.
//!
//! `update` runs on every slider event, so it only recomputes what a parameter touches: the
//! landscape per constant set (cached), the iso-FLOP curves per budget, and a new fit only
//! when the fit's inputs change. The fit itself (L-BFGS runs, then bootstrap replicates) is
//! background work done a slice per frame through `step`, redrawing only panel 2.

use std::ops::Range;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::{
    chart as plot_chart, dashed, discs, line as polyline, padded_range, polygon, px_circle,
    px_line, px_rect, px_text, rect, tick, Area, Axes, Chart, Fmt, Theme,
};
use super::{now_ms, TextInput, View, WebInfo};
use crate::json::Json;
use crate::params::Params;
use crate::scaling::fit::{compute_of, Interval};
use crate::scaling::law::Law;
use crate::scaling::{
    budget_json, fit as fitting, iso_json, landscape_json, models, panel_csv, Config, FitPanel,
    IsoFlop, Landscape, ModelPoint, Source, LOG_D_RANGE, LOG_N_RANGE,
};

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The loss landscape: iso-loss contours, iso-FLOP lines, compute-optimal frontiers, published models",
        "Along one budget: loss against model size on the iso-FLOP line",
        "Fit the law yourself: Huber loss on log L, L-BFGS, 95% bootstrap intervals",
    ],
    equation: r#"<math display="block"><mrow><mi>L</mi><mo>(</mo><mi>N</mi><mo>,</mo><mi>D</mi><mo>)</mo><mo>=</mo><mi data-key="constants">E</mi><mo>+</mo><mfrac><mi data-key="constants">A</mi><msup><mi>N</mi><mi data-key="constants">α</mi></msup></mfrac><mo>+</mo><mfrac><mi data-key="constants">B</mi><msup><mi>D</mi><mi data-key="constants">β</mi></msup></mfrac><mo>,</mo><mspace width="1em"/><mi data-key="log_c">C</mi><mo>≈</mo><mn>6</mn><mi>N</mi><mi>D</mi></mrow></math><math display="block"><mrow><msub><mi>N</mi><mtext>opt</mtext></msub><mo>=</mo><mi>G</mi><msup><mrow><mo>(</mo><mfrac><mi data-key="log_c">C</mi><mn>6</mn></mfrac><mo>)</mo></mrow><mfrac><mi>β</mi><mrow><mi>α</mi><mo>+</mo><mi>β</mi></mrow></mfrac></msup><mo>,</mo><mspace width="0.6em"/><msub><mi>D</mi><mtext>opt</mtext></msub><mo>=</mo><msup><mi>G</mi><mrow><mo>−</mo><mn>1</mn></mrow></msup><msup><mrow><mo>(</mo><mfrac><mi data-key="log_c">C</mi><mn>6</mn></mfrac><mo>)</mo></mrow><mfrac><mi>α</mi><mrow><mi>α</mi><mo>+</mo><mi>β</mi></mrow></mfrac></msup><mo>,</mo><mspace width="0.6em"/><mi>G</mi><mo>=</mo><msup><mrow><mo>(</mo><mfrac><mrow><mi>α</mi><mi>A</mi></mrow><mrow><mi>β</mi><mi>B</mi></mrow></mfrac><mo>)</mo></mrow><mfrac><mn>1</mn><mrow><mi>α</mi><mo>+</mo><mi>β</mi></mrow></mfrac></msup></mrow></math><math display="block"><mrow><munder><mi>min</mi><mrow><mi>A</mi><mo>,</mo><mi>B</mi><mo>,</mo><mi>E</mi><mo>,</mo><mi>α</mi><mo>,</mo><mi>β</mi></mrow></munder><munder><mo>∑</mo><mi>i</mi></munder><msub><mtext>Huber</mtext><mi>δ</mi></msub><mo>(</mo><mi>log</mi><mover><mi>L</mi><mo>^</mo></mover><mo>(</mo><msub><mi>N</mi><mi>i</mi></msub><mo>,</mo><msub><mi>D</mi><mi>i</mi></msub><mo>)</mo><mo>−</mo><mi>log</mi><msub><mi>L</mi><mi>i</mi></msub><mo>)</mo><mo>,</mo><mspace width="0.6em"/><mi>δ</mi><mo>=</mo><msup><mn>10</mn><mrow><mo>−</mo><mn>3</mn></mrow></msup></mrow></math><math display="block"><mrow><mtext>synthetic runs:&#160;</mtext><mi>log</mi><msub><mi>L</mi><mi>i</mi></msub><mo>=</mo><mi>log</mi><mi>L</mi><mo>(</mo><msub><mi>N</mi><mi>i</mi></msub><mo>,</mo><msub><mi>D</mi><mi>i</mi></msub><mo>)</mo><mo>+</mo><mi data-key="noise">σ</mi><msub><mi>z</mi><mi>i</mi></msub><mo>,</mo><mspace width="0.6em"/><mi>i</mi><mo>=</mo><mn>1</mn><mo>,</mo><mo>…</mo><mo>,</mo><mi data-key="count">n</mi></mrow></math>"#,
};

const TEXT: TextInput = TextInput {
    label: "Your runs (CSV: N, D, L)",
    doc: "One training run per line: parameters N, training tokens D, final loss L in nats per token. Commas, tabs or spaces; 70B, 1.4T and 4e8 all work; a header row may name the columns; lines starting with # are ignored. Applying fits these runs instead of the synthetic ones; the box starts with the synthetic runs, to edit.",
    accept: ".csv,.tsv,.txt,text/csv,text/plain",
};

/// Sub-plots sit side by side from this width (CSS px) up, stacked below it.
const WIDE: f64 = 640.0;

pub(crate) struct ScalingView {
    config: Option<Config>,
    /// Runs given through the text box, fitted instead of synthetic ones.
    points_csv: Option<String>,
    /// Landscapes by constant-set name, computed on first use.
    landscapes: Vec<(&'static str, Landscape)>,
    iso: Option<IsoFlop>,
    models: Vec<ModelPoint>,
    fit: Option<FitPanel>,
    /// Milliseconds spent on the fit's L-BFGS starts and on its bootstrap replicates.
    fit_ms: f64,
    boot_ms: f64,
}

impl Default for ScalingView {
    fn default() -> Self {
        ScalingView {
            config: None,
            points_csv: None,
            landscapes: Vec::new(),
            iso: None,
            models: Vec::new(),
            fit: None,
            fit_ms: 0.0,
            boot_ms: 0.0,
        }
    }
}

// ------------------------------------------------------------------ number formatting

/// 32.2B, 2.98T, 175B, 400M: three significant digits and a K/M/B/T suffix.
fn si(x: f64) -> String {
    let (v, suffix) = if x >= 1e12 {
        (x / 1e12, "T")
    } else if x >= 1e9 {
        (x / 1e9, "B")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{suffix}")
}

fn superscript(n: i32) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

/// 5.75×10²³.
fn sci(x: f64) -> String {
    let e = x.log10().floor() as i32;
    let m = x / 10f64.powi(e);
    format!("{m:.2}×10{}", superscript(e))
}

/// Axis ticks on a log10 axis: 10^k as 10M, 1B, 100B, 1T (nothing between integers).
fn log_tick(v: f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        return String::new();
    }
    let k = v.round() as i32;
    let (m, suffix) = match k {
        k if k >= 12 => (k - 12, "T"),
        k if k >= 9 => (k - 9, "B"),
        k if k >= 6 => (k - 6, "M"),
        k if k >= 3 => (k - 3, "k"),
        k => (k, ""),
    };
    if m < 0 {
        return format!("1e{k}");
    }
    format!("{}{suffix}", 10i64.pow(m as u32))
}

fn law_label(name: &str) -> &'static str {
    if name == "epoch" {
        "Epoch AI 2024"
    } else {
        "Hoffmann 2022"
    }
}

// ------------------------------------------------------------------ geometry helpers

/// Liang-Barsky: the part of segment p-q inside the box, if any.
fn clip_segment(
    p: (f64, f64),
    q: (f64, f64),
    xr: &Range<f64>,
    yr: &Range<f64>,
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for (den, num) in [
        (-dx, p.0 - xr.start),
        (dx, xr.end - p.0),
        (-dy, p.1 - yr.start),
        (dy, yr.end - p.1),
    ] {
        if den == 0.0 {
            if num < 0.0 {
                return None;
            }
        } else {
            let t = num / den;
            if den < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((
        (p.0 + t0 * dx, p.1 + t0 * dy),
        (p.0 + t1 * dx, p.1 + t1 * dy),
    ))
}

/// A polyline cut to the box: the pieces inside it.
fn clip_polyline(pts: &[(f64, f64)], xr: &Range<f64>, yr: &Range<f64>) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for w in pts.windows(2) {
        match clip_segment(w[0], w[1], xr, yr) {
            Some((a, b)) => {
                if !open || pieces.last().and_then(|p| p.last()) != Some(&a) {
                    pieces.push(vec![a]);
                }
                pieces.last_mut().expect("just pushed").push(b);
                open = b == w[1];
            }
            None => open = false,
        }
    }
    pieces
}

/// Position of a point of the box's edge along its perimeter, counter-clockwise from the
/// lower-left corner.
fn perimeter_t(p: (f64, f64), xr: &Range<f64>, yr: &Range<f64>) -> f64 {
    let (w, h) = (xr.end - xr.start, yr.end - yr.start);
    let eps = 1e-9 * (w + h);
    if (p.1 - yr.start).abs() < eps {
        p.0 - xr.start
    } else if (p.0 - xr.end).abs() < eps {
        w + (p.1 - yr.start)
    } else if (p.1 - yr.end).abs() < eps {
        w + h + (xr.end - p.0)
    } else {
        2.0 * w + h + (yr.end - p.1)
    }
}

/// The region of the box on the side of an open contour line where `inside` holds: the
/// line, then the box's edge back to its start through the corners in the region. None if
/// the line does not run from edge to edge or the corners do not say which way to go.
fn below_region(
    line: &[(f64, f64)],
    xr: &Range<f64>,
    yr: &Range<f64>,
    inside: impl Fn(f64, f64) -> bool,
) -> Option<Vec<(f64, f64)>> {
    let (&start, &end) = (line.first()?, line.last()?);
    let (w, h) = (xr.end - xr.start, yr.end - yr.start);
    let perimeter = 2.0 * (w + h);
    let corners = [
        (w, (xr.end, yr.start)),
        (w + h, (xr.end, yr.end)),
        (2.0 * w + h, (xr.start, yr.end)),
        (0.0, (xr.start, yr.start)),
    ];
    let (t_end, t_start) = (perimeter_t(end, xr, yr), perimeter_t(start, xr, yr));
    // Corners met going counter-clockwise from the end back to the start, and clockwise.
    let ccw_span = (t_start - t_end).rem_euclid(perimeter);
    let mut ccw: Vec<(f64, (f64, f64))> = corners
        .iter()
        .map(|&(t, c)| ((t - t_end).rem_euclid(perimeter), c))
        .filter(|&(d, _)| d > 0.0 && d < ccw_span)
        .collect();
    let mut cw: Vec<(f64, (f64, f64))> = corners
        .iter()
        .map(|&(t, c)| ((t_end - t).rem_euclid(perimeter), c))
        .filter(|&(d, _)| d > 0.0 && d < perimeter - ccw_span)
        .collect();
    let all_in = |v: &[(f64, (f64, f64))]| v.iter().all(|&(_, (x, y))| inside(x, y));
    let way = if !ccw.is_empty() && all_in(&ccw) {
        &mut ccw
    } else if !cw.is_empty() && all_in(&cw) {
        &mut cw
    } else {
        return None;
    };
    // At most four corners: order them along the way by insertion.
    for i in 1..way.len() {
        let mut j = i;
        while j > 0 && way[j - 1].0 > way[j].0 {
            way.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut poly = line.to_vec();
    poly.extend(way.iter().map(|&(_, c)| c));
    Some(poly)
}

/// Colours of the two constant sets, the same in every panel.
fn law_colour(theme: &Theme, name: &str) -> RGBColor {
    if name == "epoch" {
        theme.palette[2]
    } else {
        theme.palette[0]
    }
}

fn verdict_colour(theme: &Theme, verdict: &str) -> RGBColor {
    match verdict {
        "under-trained" => theme.palette[1],
        "over-trained" => theme.palette[5],
        _ => theme.fg,
    }
}

/// The budget's iso-FLOP line and its markers.
fn budget_colour(theme: &Theme) -> RGBColor {
    theme.palette[3]
}

/// Viridis (van der Walt & Smith), eight stops: a colour-blind-safe sequential ramp.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (0x44, 0x01, 0x54),
        (0x46, 0x32, 0x7e),
        (0x36, 0x5c, 0x8d),
        (0x27, 0x7f, 0x8e),
        (0x1f, 0xa1, 0x87),
        (0x4a, 0xc1, 0x6d),
        (0x9f, 0xda, 0x3a),
        (0xe0, 0xd0, 0x20),
    ];
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + f * (f64::from(b) - f64::from(a))).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Viridis over the part of its range that stands out on the theme's background (its
/// darkest purples vanish on a dark page).
fn viridis_for(theme: &Theme, t: f64) -> RGBColor {
    if theme.bg.0 < 0x80 {
        viridis(0.22 + 0.78 * t)
    } else {
        viridis(0.9 * t)
    }
}

/// Band fill of the landscape: a quiet grey-blue ramp, darker for lower loss, so the
/// coloured frontiers and models stand out on it.
fn band_colour(theme: &Theme, band: usize, bands: usize) -> RGBColor {
    let t = 1.0 - band as f64 / bands.max(1) as f64; // 1 at the lowest loss
    let (lo, hi) = if theme.bg.0 < 0x80 {
        ((0x1c, 0x21, 0x29), (0x3a, 0x4b, 0x60))
    } else {
        ((0xfb, 0xfc, 0xfd), (0xbf, 0xcf, 0xe0))
    };
    let mix = |a: u8, b: u8| (f64::from(a) + t * (f64::from(b) - f64::from(a))).round() as u8;
    RGBColor(mix(lo.0, hi.0), mix(lo.1, hi.1), mix(lo.2, hi.2))
}

/// A chart with log10 axes labelled 1B, 10B, ... and the theme's colours.
#[allow(clippy::too_many_arguments)]
fn log_chart<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
    y_fmt: Fmt<'_>,
) -> Result<Chart<'a>, String> {
    let x_ticks = ((x.end - x.start).round() as usize + 1).min(12);
    plot_chart(
        area,
        theme,
        &Axes {
            margin_right: 16,
            x_area: 36,
            y_area: 48,
            x_labels: x_ticks,
            y_labels: 8,
            x_fmt: &log_tick_ref,
            y_fmt,
            ..Axes::new(title, x, y, x_desc, y_desc)
        },
    )
}

fn log_tick_ref(v: &f64) -> String {
    log_tick(*v)
}

/// A backend pixel (what `map_coordinate` returns) in an area's own pixel coordinates.
fn local(area: &Area, px: (i32, i32)) -> (i32, i32) {
    let base = area.get_base_pixel();
    (px.0 - base.0, px.1 - base.1)
}

/// The size of a line of sans-serif text, estimated from its length. plotters measures
/// text by adding a span to the page and reading its size, which forces a layout of the
/// whole page each time; for the box behind a label an estimate is plenty.
fn approx_text_size(text: &str, size: f64) -> (i32, i32) {
    let chars = text.chars().count() as f64;
    (
        (0.52 * size * chars).ceil() as i32,
        (1.15 * size).ceil() as i32,
    )
}

/// Text of `size` px with a background box, in pixel coordinates of an area.
fn label(
    area: &Area,
    theme: &Theme,
    text: &str,
    at: (i32, i32),
    pos: Pos,
    (style, size): (TextStyle, f64),
) -> Result<(), String> {
    let (w, h) = approx_text_size(text, size);
    let x0 = match pos.h_pos {
        HPos::Left => at.0,
        HPos::Center => at.0 - w / 2,
        HPos::Right => at.0 - w,
    };
    let y0 = match pos.v_pos {
        VPos::Top => at.1,
        VPos::Center => at.1 - h / 2,
        VPos::Bottom => at.1 - h,
    };
    px_rect(
        area,
        [(x0 - 2, y0 - 1), (x0 + w + 2, y0 + h + 1)],
        theme.bg.mix(0.85).filled(),
    )?;
    px_text(area, text, at, &style.pos(pos))
}

/// Items of a legend strip: a swatch kind, its colour, its words.
enum Swatch {
    Line(RGBColor, u32),
    Dashed(RGBColor, u32),
    Dot(RGBColor),
}

const LEGEND_ITEM: f64 = 210.0;
const LEGEND_ROW: f64 = 18.0;

fn legend_rows(items: usize, width: f64) -> usize {
    let per_row = ((width - 16.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    items.div_ceil(per_row)
}

fn draw_legend(
    area: &Area,
    theme: &Theme,
    items: &[(Swatch, String)],
    width: f64,
    top: i32,
) -> Result<(), String> {
    let per_row = ((width - 16.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    draw_legend_at(area, theme, items, per_row, LEGEND_ITEM, top)
}

fn draw_legend_at(
    area: &Area,
    theme: &Theme,
    items: &[(Swatch, String)],
    per_row: usize,
    item_width: f64,
    top: i32,
) -> Result<(), String> {
    for (k, (swatch, text)) in items.iter().enumerate() {
        let x = 12 + ((k % per_row) as f64 * item_width) as i32;
        let y = top + 9 + (k / per_row) as i32 * LEGEND_ROW as i32;
        match swatch {
            Swatch::Line(c, w) => px_line(area, &[(x, y), (x + 22, y)], c.stroke_width(*w))?,
            Swatch::Dashed(c, w) => {
                for s in 0..3 {
                    px_line(
                        area,
                        &[(x + 8 * s, y), (x + 8 * s + 5, y)],
                        c.stroke_width(*w),
                    )?;
                }
            }
            Swatch::Dot(c) => {
                px_circle(area, (x + 11, y), 5, c.filled())?;
                px_circle(area, (x + 11, y), 5, theme.bg.stroke_width(1))?;
            }
        }
        px_text(
            area,
            text,
            (x + 28, y),
            &theme.text(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}

/// A legend with one item per row (long items).
fn draw_legend_rows(area: &Area, theme: &Theme, items: &[(Swatch, String)]) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    // Wide enough for any item: the per-row layout of `draw_legend`.
    draw_legend_at(area, theme, items, 1, f64::from(w), 0)
}

// ------------------------------------------------------------------ the view

impl ScalingView {
    fn config(&self) -> &Config {
        self.config
            .as_ref()
            .expect("update() runs before any view is read")
    }

    fn landscape(&self) -> &Landscape {
        let name = self.config().constants;
        let (_, l) = self
            .landscapes
            .iter()
            .find(|(n, _)| *n == name)
            .expect("update() computed it");
        l
    }

    fn iso(&self) -> &IsoFlop {
        self.iso.as_ref().expect("update() runs first")
    }

    fn fit(&self) -> &FitPanel {
        self.fit.as_ref().expect("update() runs first")
    }

    /// Lines of panel 0's readout for the budget, one or two per constant set; the flag
    /// marks the chosen set's lines.
    fn readout(&self, width: f64) -> Vec<(String, bool)> {
        let c = self.config();
        let iso = self.iso();
        let mut lines = vec![(format!("Budget C = {} FLOPs", sci(c.compute)), true)];
        for (name, o, chosen) in [
            (c.constants, &iso.optimum, true),
            (c.other_constants(), &iso.optimum_other, false),
        ] {
            if width >= 760.0 {
                lines.push((
                    format!(
                        "{}: N_opt = {} parameters, D_opt = {} tokens, {:.1} tokens per parameter, predicted loss L = {:.3}",
                        law_label(name),
                        si(o.n),
                        si(o.d),
                        o.tokens_per_param(),
                        o.loss
                    ),
                    chosen,
                ));
            } else {
                lines.push((
                    format!(
                        "{}: N_opt = {}, D_opt = {}",
                        law_label(name),
                        si(o.n),
                        si(o.d)
                    ),
                    chosen,
                ));
                lines.push((
                    format!(
                        "    {:.1} tokens per parameter, L = {:.3}",
                        o.tokens_per_param(),
                        o.loss
                    ),
                    chosen,
                ));
            }
        }
        lines
    }

    fn landscape_legend(&self, theme: &Theme) -> Vec<(Swatch, String)> {
        let c = self.config();
        vec![
            (
                Swatch::Line(law_colour(theme, c.constants), 3),
                format!("frontier, {} (drawn)", law_label(c.constants)),
            ),
            (
                Swatch::Dashed(law_colour(theme, c.other_constants()), 2),
                format!("frontier, {}", law_label(c.other_constants())),
            ),
            (
                Swatch::Line(budget_colour(theme), 2),
                "the budget's iso-FLOP line".into(),
            ),
            (
                Swatch::Line(theme.muted, 1),
                "iso-FLOP lines, 10ᵏ FLOPs".into(),
            ),
            (
                Swatch::Dot(verdict_colour(theme, "under-trained")),
                "under-trained: N > 1.5 N_opt".into(),
            ),
            (
                Swatch::Dot(verdict_colour(theme, "over-trained")),
                "over-trained: N < N_opt / 1.5".into(),
            ),
            (
                Swatch::Dot(verdict_colour(theme, "near-optimal")),
                "near compute-optimal".into(),
            ),
        ]
    }

    fn draw_landscape(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let c = self.config();
        let land = self.landscape();
        let readout = self.readout(width);
        let legend = self.landscape_legend(theme);
        let strip = 8.0 + 18.0 * readout.len() as f64;
        let legend_h = 6.0 + LEGEND_ROW * legend_rows(legend.len(), width) as f64;
        let (top, rest) = area.split_vertically(strip as u32);
        let (mid, plot) = rest.split_vertically(legend_h as u32);
        for (k, (text, chosen)) in readout.iter().enumerate() {
            let style = if k == 0 {
                FontDesc::new(FontFamily::SansSerif, 13.0, FontStyle::Normal)
                    .style(FontStyle::Bold)
                    .color(&theme.fg)
            } else if *chosen {
                theme.text(12.5)
            } else {
                theme.muted_text(12.5)
            };
            px_text(
                &top,
                text,
                (12, 12 + 18 * k as i32),
                &style.pos(Pos::new(HPos::Left, VPos::Center)),
            )?;
        }
        draw_legend(&mid, theme, &legend, width, 0)?;

        let xr = LOG_N_RANGE.0..LOG_N_RANGE.1;
        let yr = LOG_D_RANGE.0..LOG_D_RANGE.1;
        let mut chart = log_chart(
            &plot,
            theme,
            &format!("L(N, D) under {} constants", law_label(c.constants)),
            xr.clone(),
            yr.clone(),
            "parameters N",
            "training tokens D",
            &|v| log_tick(*v),
        )?;

        // Filled bands: the whole map in the highest band's colour, then for each level from
        // the top down the region {L < level} painted over it. L falls in both N and D, so
        // that region is the upper-right side of the level's one contour line, closed along
        // the map's edge through the corners that lie in it: one polygon per level.
        let bands = land.levels.len() + 1;
        rect(
            &mut chart,
            [(xr.start, yr.start), (xr.end, yr.end)],
            band_colour(theme, bands - 1, bands).filled(),
        )?;
        for (k, &level) in land.levels.iter().enumerate().rev() {
            let Some(line) = land.lines.iter().find(|l| l.level == level) else {
                continue;
            };
            if let Some(poly) = below_region(&line.points, &xr, &yr, |x, y| {
                land.law.loss(10f64.powf(x), 10f64.powf(y)) < level
            }) {
                polygon(&mut chart, &poly, band_colour(theme, k, bands).filled())?;
            }
        }

        // Iso-loss lines with their level written on them.
        let contour_colour = theme.muted.mix(0.55);
        for line in &land.lines {
            polyline(&mut chart, &line.points, contour_colour.stroke_width(1))?;
        }
        let plot_area = chart.plotting_area().clone();
        let strip_area = plot_area.strip_coord_spec();
        for line in &land.lines {
            if line.points.len() < 12 {
                continue;
            }
            // Label at the point a third of the way along, off the busy middle.
            let p = line.points[line.points.len() / 3];
            let at = local(&strip_area, plot_area.map_coordinate(&p));
            label(
                &strip_area,
                theme,
                &tick(line.level),
                at,
                Pos::new(HPos::Center, VPos::Center),
                (theme.muted_text(10.5), 10.5),
            )?;
        }

        // Iso-FLOP lines log D = log(C/6) - log N, one per decade, labelled at the bottom right.
        for k in 17..=29 {
            let c6 = (10f64.powi(k) / 6.0).log10();
            let Some((a, b)) =
                clip_segment((xr.start, c6 - xr.start), (xr.end, c6 - xr.end), &xr, &yr)
            else {
                continue;
            };
            polyline(&mut chart, &[a, b], theme.muted.mix(0.45).stroke_width(1))?;
            if k % 2 == 1 && (b.0 - a.0) > 0.6 {
                let px = local(&strip_area, plot_area.map_coordinate(&b));
                label(
                    &strip_area,
                    theme,
                    &format!("10{}", superscript(k)),
                    (px.0 - 3, px.1 - 3),
                    Pos::new(HPos::Right, VPos::Bottom),
                    (theme.muted_text(10.0), 10.0),
                )?;
            }
        }

        // The frontiers: log N_opt and log D_opt are straight lines in log C.
        for name in [c.other_constants(), c.constants] {
            let law = Law::named(name).expect("a name from CONSTANTS");
            let pts: Vec<(f64, f64)> = (0..=300)
                .map(|i| {
                    let o = law.optimum(10f64.powf(14.0 + 0.06 * i as f64));
                    (o.n.log10(), o.d.log10())
                })
                .collect();
            let colour = law_colour(theme, name);
            for piece in clip_polyline(&pts, &xr, &yr) {
                if name == c.constants {
                    polyline(&mut chart, &piece, colour.stroke_width(3))?;
                } else {
                    dashed(&mut chart, &piece, 8, 5, colour.stroke_width(2))?;
                }
            }
        }

        // The budget's iso-FLOP line and both optima on it.
        let c6 = (c.compute / 6.0).log10();
        if let Some((a, b)) =
            clip_segment((xr.start, c6 - xr.start), (xr.end, c6 - xr.end), &xr, &yr)
        {
            polyline(&mut chart, &[a, b], budget_colour(theme).stroke_width(2))?;
        }
        let iso = self.iso();
        for (name, o) in [
            (c.other_constants(), &iso.optimum_other),
            (c.constants, &iso.optimum),
        ] {
            let p = (o.n.log10(), o.d.log10());
            if xr.contains(&p.0) && yr.contains(&p.1) {
                let colour = law_colour(theme, name);
                discs(
                    &mut chart,
                    &[(p, 7, colour.filled()), (p, 7, theme.bg.stroke_width(2))],
                )?;
            }
        }

        // Published models, each with a dotted line to the optimum for its own compute.
        for m in &self.models {
            let p = (m.model.n.log10(), m.model.d.log10());
            let q = (m.optimum.n.log10(), m.optimum.d.log10());
            let colour = verdict_colour(theme, m.verdict);
            if let Some((a, b)) = clip_segment(p, q, &xr, &yr) {
                dashed(&mut chart, &[a, b], 2, 3, colour.stroke_width(2))?;
            }
            discs(
                &mut chart,
                &[(p, 5, colour.filled()), (p, 5, theme.bg.stroke_width(1))],
            )?;
            // Labels left or right of the point so the close pairs (GPT-3 / Gopher,
            // Chinchilla / Llama 2) do not collide.
            let left = matches!(m.model.name, "GPT-3" | "Chinchilla");
            let px = local(&strip_area, plot_area.map_coordinate(&p));
            let (x, h) = if left {
                (px.0 - 8, HPos::Right)
            } else {
                (px.0 + 8, HPos::Left)
            };
            label(
                &strip_area,
                theme,
                m.model.name,
                (x, px.1),
                Pos::new(h, VPos::Center),
                (theme.text(11.5), 11.5),
            )?;
        }
        Ok(())
    }

    /// Panel 1's legend: one row per curve with its minimum, and the rule of thumb.
    fn iso_legend(&self, theme: &Theme, width: f64) -> Vec<(Swatch, String)> {
        let c = self.config();
        let iso = self.iso();
        let item = |o: &crate::scaling::law::Optimum, name: &str| {
            if width >= 560.0 {
                format!(
                    "{}: minimum L = {:.3} at N = {}, D = {} ({:.1} tokens per parameter)",
                    law_label(name),
                    o.loss,
                    si(o.n),
                    si(o.d),
                    o.tokens_per_param()
                )
            } else {
                format!(
                    "{}: min L = {:.3} at N = {}",
                    law_label(name),
                    o.loss,
                    si(o.n)
                )
            }
        };
        vec![
            (
                Swatch::Line(law_colour(theme, c.constants), 3),
                item(&iso.optimum, c.constants),
            ),
            (
                Swatch::Dashed(law_colour(theme, c.other_constants()), 2),
                item(&iso.optimum_other, c.other_constants()),
            ),
            (
                Swatch::Dashed(theme.muted, 1),
                "D = 20 N, Chinchilla's rule of thumb".into(),
            ),
        ]
    }

    fn draw_iso(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let c = self.config();
        let iso = self.iso();
        let legend = self.iso_legend(theme, width);
        let (top, plot) = area.split_vertically((6.0 + LEGEND_ROW * legend.len() as f64) as u32);
        draw_legend_rows(&top, theme, &legend)?;
        let xr = iso.log_n[0]..*iso.log_n.last().expect("points");
        let yr = padded_range([iso.loss.as_slice(), iso.loss_other.as_slice()]);
        let title = format!("C = {} FLOPs, D = C / 6N", sci(c.compute));
        let mut chart = log_chart(
            &plot,
            theme,
            &title,
            xr.clone(),
            yr.clone(),
            "parameters N (tokens D = C / 6N)",
            "predicted loss L",
            &|v| format!("{v:.2}"),
        )?;
        // Chinchilla's rule of thumb, D = 20 N: N = sqrt(C / 120).
        let n20 = (c.compute / 120.0).sqrt().log10();
        if xr.contains(&n20) {
            dashed(
                &mut chart,
                &[(n20, yr.start), (n20, yr.end)],
                4,
                4,
                theme.muted.stroke_width(1),
            )?;
        }
        let pts = |ys: &[f64]| -> Vec<(f64, f64)> {
            iso.log_n.iter().copied().zip(ys.iter().copied()).collect()
        };
        let other = c.other_constants();
        dashed(
            &mut chart,
            &pts(&iso.loss_other),
            8,
            5,
            law_colour(theme, other).stroke_width(2),
        )?;
        polyline(
            &mut chart,
            &pts(&iso.loss),
            law_colour(theme, c.constants).stroke_width(3),
        )?;
        for (name, o) in [(other, &iso.optimum_other), (c.constants, &iso.optimum)] {
            let p = (o.n.log10(), o.loss);
            discs(
                &mut chart,
                &[
                    (p, 6, law_colour(theme, name).filled()),
                    (p, 6, theme.bg.stroke_width(2)),
                ],
            )?;
        }
        Ok(())
    }

    /// Status of the fit panel: what is fitted, and how far the fit has got (and its cost).
    fn fit_status_parts(&self) -> (String, String) {
        let f = self.fit();
        let c = self.config();
        let what = match c.source() {
            Source::Synthetic => format!(
                "{} synthetic runs from {}, σ = {:.3}",
                f.points.len(),
                law_label(c.constants),
                c.noise
            ),
            Source::Entered => format!("{} runs from the text box", f.points.len()),
        };
        if let Some(e) = &f.error {
            return (what, format!("no fit: {e}"));
        }
        let reps = f.replicates();
        let target = f.setup.bootstrap;
        let fit_part = if f.fitted().is_some() {
            format!(
                "L-BFGS from {} starts: {:.0} ms",
                fitting::STARTS,
                self.fit_ms
            )
        } else {
            "fitting…".to_string()
        };
        let boot_part = if target == 0 {
            "no bootstrap".to_string()
        } else if reps < target {
            format!("bootstrap {reps}/{target}…")
        } else {
            format!("{target} bootstrap refits: {:.0} ms", self.boot_ms)
        };
        (what, format!("{fit_part} · {boot_part}"))
    }

    fn fit_status(&self) -> String {
        let (a, b) = self.fit_status_parts();
        format!("{a} · {b}")
    }

    fn draw_fit_data(&self, area: &Area, theme: &Theme) -> Result<(), String> {
        let f = self.fit();
        let c = self.config();
        if f.points.is_empty() {
            px_text(
                area,
                "No usable runs: type N, D, L rows into the editor.",
                (16, 40),
                &theme.text(13.0),
            )?;
            return Ok(());
        }
        let xs: Vec<f64> = f.points.iter().map(|p| p.n.log10()).collect();
        let ls: Vec<f64> = f.points.iter().map(|p| p.loss).collect();
        let xr = padded_range([xs.as_slice()]);
        let yr = padded_range([ls.as_slice()]);
        let mut chart = log_chart(
            area,
            theme,
            "Runs and the fitted law along each budget",
            xr.clone(),
            yr.clone(),
            "parameters N",
            "final loss L",
            &|v| format!("{v:.2}"),
        )?;
        // Budgets: half-decade bins of C = 6 N D (Hoffmann's budgets fall one to a bin).
        let bin = |p: &fitting::Point| (compute_of(p).log10() * 2.0).round() as i64;
        let mut bins: Vec<i64> = Vec::new();
        for p in &f.points {
            if !bins.contains(&bin(p)) {
                bins.push(bin(p));
            }
        }
        let (lo_bin, hi_bin) = bins
            .iter()
            .fold((i64::MAX, i64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let colour_of =
            |b: i64| viridis_for(theme, (b - lo_bin) as f64 / (hi_bin - lo_bin).max(1) as f64);
        let fitted = f.fitted().copied();
        let truth = (c.source() == Source::Synthetic).then_some(f.setup.law);
        for &b in &bins {
            let members: Vec<&fitting::Point> = f.points.iter().filter(|p| bin(p) == b).collect();
            // The bin's budget: the geometric mean of its runs' compute.
            let logc =
                members.iter().map(|p| compute_of(p).log10()).sum::<f64>() / members.len() as f64;
            let cb = 10f64.powf(logc);
            let lo = members
                .iter()
                .map(|p| p.n.log10())
                .fold(f64::INFINITY, f64::min)
                - 0.15;
            let hi = members
                .iter()
                .map(|p| p.n.log10())
                .fold(f64::NEG_INFINITY, f64::max)
                + 0.15;
            let curve = |law: &Law| -> Vec<(f64, f64)> {
                (0..=60)
                    .map(|i| {
                        let x = lo + (hi - lo) * i as f64 / 60.0;
                        (x, law.loss_at_compute(cb, 10f64.powf(x)))
                    })
                    .collect()
            };
            let colour = colour_of(b);
            if let Some(t) = &truth {
                for piece in clip_polyline(&curve(t), &xr, &yr) {
                    dashed(&mut chart, &piece, 4, 4, theme.muted.stroke_width(1))?;
                }
            }
            if let Some(l) = &fitted {
                for piece in clip_polyline(&curve(l), &xr, &yr) {
                    polyline(&mut chart, &piece, colour.stroke_width(2))?;
                }
            }
        }
        let runs: Vec<_> = f
            .points
            .iter()
            .map(|p| ((p.n.log10(), p.loss), 3, colour_of(bin(p)).filled()))
            .collect();
        discs(&mut chart, &runs)?;
        Ok(())
    }

    fn draw_intervals(&self, area: &Area, theme: &Theme) -> Result<(), String> {
        let f = self.fit();
        let c = self.config();
        let reference = f.setup.law;
        let ref_name = match c.source() {
            Source::Synthetic => "true",
            Source::Entered => {
                if c.constants == "epoch" {
                    "Epoch"
                } else {
                    "Hoffmann"
                }
            }
        };
        let xr = -2.5..2.5;
        let x_fmt = |v: &f64| {
            let r = 2f64.powf(*v);
            match v.round() as i32 {
                _ if (v - v.round()).abs() > 1e-6 => String::new(),
                0 => "×1".into(),
                k if k > 0 => format!("×{r:.0}"),
                k => format!("×1/{}", 2i32.pow((-k) as u32)),
            }
        };
        let title = format!("Fitted ÷ {ref_name} value, 95% interval (log scale)");
        let mut chart = plot_chart(
            area,
            theme,
            &Axes {
                margin_right: 16,
                x_area: 30,
                y_area: 8,
                x_fmt: &x_fmt,
                // No y axis: the rows are labelled in the plot.
                y_mesh: false,
                y_axis: false,
                ..Axes::new(&title, xr.clone(), 0.0..6.0, "", "")
            },
        )?;
        polyline(
            &mut chart,
            &[(0.0, 0.0), (0.0, 6.0)],
            theme.muted.stroke_width(1),
        )?;
        let plot_area = chart.plotting_area().clone();
        let strip = plot_area.strip_coord_spec();
        let names = ["E", "A", "B", "α", "β", "a = β/(α+β)"];
        let reference_values = fitting::QUANTITIES.map(|(_, get)| get(&reference));
        let iv: Vec<Interval> = f.intervals().unwrap_or_default();
        let fitted = f.fitted();
        let digits = |v: f64| {
            if v.abs() >= 100.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.4}")
            }
        };
        for k in 0..6 {
            let y_text = 6.0 - k as f64 - 0.3;
            let y_bar = 6.0 - k as f64 - 0.72;
            let truth = reference_values[k];
            let text = match (fitted, iv.get(k)) {
                (Some(_), Some(i)) if i.lo.is_finite() => format!(
                    "{}  {}  [{}, {}]   {ref_name} {}",
                    names[k],
                    digits(i.estimate),
                    digits(i.lo),
                    digits(i.hi),
                    digits(truth)
                ),
                (Some(_), Some(i)) => format!(
                    "{}  {}   {ref_name} {}",
                    names[k],
                    digits(i.estimate),
                    digits(truth)
                ),
                _ => format!("{}   {ref_name} {}", names[k], digits(truth)),
            };
            let at = local(&strip, plot_area.map_coordinate(&(xr.start, y_text)));
            label(
                &strip,
                theme,
                &text,
                (at.0 + 4, at.1),
                Pos::new(HPos::Left, VPos::Center),
                (theme.text(11.5), 11.5),
            )?;
            let Some(i) = iv.get(k).filter(|_| fitted.is_some()) else {
                continue;
            };
            let ratio = |v: f64| (v / truth).log2().clamp(xr.start, xr.end);
            if i.lo.is_finite() {
                let colour = if i.covers(truth) {
                    theme.palette[2]
                } else {
                    theme.palette[1]
                };
                polyline(
                    &mut chart,
                    &[(ratio(i.lo), y_bar), (ratio(i.hi), y_bar)],
                    colour.stroke_width(4),
                )?;
            }
            let at = (ratio(i.estimate), y_bar);
            discs(
                &mut chart,
                &[
                    (at, 5, theme.fg.filled()),
                    (at, 5, theme.bg.stroke_width(1)),
                ],
            )?;
        }
        Ok(())
    }

    fn fit_legend(&self, theme: &Theme) -> Vec<(Swatch, String)> {
        let mut items = vec![
            (
                Swatch::Dot(viridis_for(theme, 0.5)),
                "runs, coloured by budget C".into(),
            ),
            (
                Swatch::Line(viridis_for(theme, 0.5), 2),
                "fitted law along each budget".into(),
            ),
        ];
        if self.config().source() == Source::Synthetic {
            items.push((Swatch::Dashed(theme.muted, 1), "true law".into()));
        }
        items
    }

    /// Height of the fit panel's header: status lines and the legend.
    fn fit_header(&self, width: f64) -> f64 {
        let status = if width >= 760.0 { 1.0 } else { 2.0 };
        8.0 + 18.0 * status + LEGEND_ROW * legend_rows(3, width) as f64
    }

    fn draw_fit(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let (top, rest) = area.split_vertically(self.fit_header(width) as u32);
        let (what, progress) = self.fit_status_parts();
        let lines = if width >= 760.0 {
            vec![format!("{what} · {progress}")]
        } else {
            vec![what, progress]
        };
        for (k, line) in lines.iter().enumerate() {
            px_text(
                &top,
                line,
                (12, 12 + 18 * k as i32),
                &theme.text(12.5).pos(Pos::new(HPos::Left, VPos::Center)),
            )?;
        }
        draw_legend(
            &top,
            theme,
            &self.fit_legend(theme),
            width,
            4 + 18 * lines.len() as i32,
        )?;
        if width >= WIDE {
            let (left, right) = rest.split_horizontally((0.56 * width) as u32);
            self.draw_fit_data(&left, theme)?;
            self.draw_intervals(&right, theme)
        } else {
            let (up, down) = rest.split_vertically(FIT_DATA_NARROW as u32);
            self.draw_fit_data(&up, theme)?;
            self.draw_intervals(&down, theme)
        }
    }
}

/// Heights (CSS px) of the fit panel's parts when stacked.
const FIT_DATA_NARROW: f64 = 280.0;
const FIT_TABLE_NARROW: f64 = 300.0;

impl View for ScalingView {
    fn update(&mut self, params: &Params) {
        let mut config = Config::from_params(params);
        config.points_csv.clone_from(&self.points_csv);
        let law = config.law();
        let other = Law::named(config.other_constants()).expect("a name from CONSTANTS");
        if !self.landscapes.iter().any(|(n, _)| *n == config.constants) {
            self.landscapes
                .push((config.constants, Landscape::new(&law)));
        }
        self.iso = Some(IsoFlop::new(&law, &other, config.compute));
        self.models = models(&law);
        let setup = config.fit_setup();
        if self.fit.as_ref().is_none_or(|f| f.setup != setup) {
            self.fit = Some(FitPanel::new(setup));
            self.fit_ms = 0.0;
            self.boot_ms = 0.0;
        }
        self.config = Some(config);
    }

    fn data(&self) -> Json {
        Json::obj([
            ("budget", budget_json(self.config(), self.iso())),
            ("landscape", landscape_json(self.landscape(), &self.models)),
            ("iso_flop", iso_json(self.iso())),
            ("fit", self.fit().to_json()),
        ])
    }

    fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 => Json::obj([
                ("budget", budget_json(self.config(), self.iso())),
                ("landscape", landscape_json(self.landscape(), &self.models)),
            ]),
            1 => iso_json(self.iso()),
            _ => self.fit().to_json(),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        panel_csv(
            panel,
            self.landscape(),
            self.iso(),
            &self.models,
            self.fit(),
        )
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        match panel {
            0 => {
                let readout = self.readout(width).len() as f64;
                let legend = legend_rows(7, width) as f64;
                8.0 + 18.0 * readout
                    + 6.0
                    + LEGEND_ROW * legend
                    + (0.62 * width).clamp(300.0, 500.0)
            }
            1 => 6.0 + 3.0 * LEGEND_ROW + (0.45 * width).clamp(280.0, 380.0),
            _ => {
                let header = self.fit_header(width);
                if width >= WIDE {
                    header + (0.42 * width).clamp(320.0, 420.0)
                } else {
                    header + FIT_DATA_NARROW + FIT_TABLE_NARROW
                }
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        let width = f64::from(w);
        match panel {
            0 => self.draw_landscape(area, theme, width),
            1 => self.draw_iso(area, theme, width),
            _ => self.draw_fit(area, theme, width),
        }
    }

    fn describe(&self, panel: usize) -> String {
        let c = self.config();
        let iso = self.iso();
        match panel {
            0 => {
                let verdicts: Vec<String> = self
                    .models
                    .iter()
                    .map(|m| format!("{} {} (N = {:.1} N_opt)", m.model.name, m.verdict, m.ratio))
                    .collect();
                format!(
                    "Loss landscape under the {} constants. At C = {} FLOPs the compute-optimal model has {} parameters and {} tokens ({:.1} per parameter), predicted loss {:.3}; under the {} constants {} and {}. Published models: {}.",
                    law_label(c.constants),
                    sci(c.compute),
                    si(iso.optimum.n),
                    si(iso.optimum.d),
                    iso.optimum.tokens_per_param(),
                    iso.optimum.loss,
                    law_label(c.other_constants()),
                    si(iso.optimum_other.n),
                    si(iso.optimum_other.d),
                    verdicts.join(", ")
                )
            }
            1 => format!(
                "Loss against model size along the budget C = {} FLOPs: minimum {:.3} at N = {} ({}), {:.3} at N = {} ({}).",
                sci(c.compute),
                iso.optimum.loss,
                si(iso.optimum.n),
                law_label(c.constants),
                iso.optimum_other.loss,
                si(iso.optimum_other.n),
                law_label(c.other_constants())
            ),
            _ => {
                let f = self.fit();
                match (f.fitted(), f.intervals()) {
                    (Some(l), Some(iv)) => format!(
                        "{}. Fitted E = {:.3}, A = {:.1}, B = {:.1}, α = {:.3}, β = {:.3}; 95% interval of α [{:.3}, {:.3}], of β [{:.3}, {:.3}].",
                        self.fit_status(),
                        l.e,
                        l.a,
                        l.b,
                        l.alpha,
                        l.beta,
                        iv[3].lo,
                        iv[3].hi,
                        iv[4].lo,
                        iv[4].hi
                    ),
                    _ => self.fit_status(),
                }
            }
        }
    }

    fn step(&mut self, _params: &Params, budget_ms: f64) -> Option<Json> {
        let fit = self.fit.as_mut()?;
        let t0 = now_ms();
        let mut last = t0;
        loop {
            let fitted = fit.fitted().is_some();
            if !fit.step() {
                break;
            }
            let now = now_ms();
            if fitted {
                self.boot_ms += now - last;
            } else {
                self.fit_ms += now - last;
            }
            last = now;
            if now - t0 >= budget_ms {
                break;
            }
        }
        let fit = self.fit();
        Some(Json::obj([
            ("done", Json::Bool(fit.done())),
            ("fraction", Json::Num(fit.fraction())),
            ("text", Json::str(self.fit_status())),
            ("error", Json::Null),
            ("panels", Json::nums(&[2.0])),
        ]))
    }

    fn pending(&self) -> bool {
        self.fit.as_ref().is_some_and(|f| !f.done())
    }

    fn text_input(&self) -> Option<&'static TextInput> {
        Some(&TEXT)
    }

    /// The runs in force as CSV: the entered text as given, else the synthetic runs.
    fn text(&self) -> String {
        match &self.points_csv {
            Some(text) => text.clone(),
            None => {
                let c = self.config();
                format!(
                    "# {} synthetic runs from {}, noise σ = {}, seed {}\n{}",
                    self.fit().points.len(),
                    law_label(c.constants),
                    c.noise,
                    c.seed,
                    fitting::to_csv(&self.fit().points)
                )
            }
        }
    }

    fn set_text(&mut self, params: &Params, text: &str) -> Result<String, String> {
        if text.trim().is_empty() {
            self.points_csv = None;
            self.update(params);
            return Ok("fitting synthetic runs from the chosen law".into());
        }
        let parsed = fitting::parse_csv(text);
        if let Err(e) = fitting::check_points(&parsed.points) {
            let first = parsed
                .skipped
                .first()
                .map_or(String::new(), |s| format!(" ({s})"));
            return Err(format!("Your runs: {e}{first}; the runs in force are kept"));
        }
        self.points_csv = Some(text.to_string());
        self.update(params);
        let mut summary = format!("fitting {} runs", parsed.points.len());
        if let Some(first) = parsed.skipped.first() {
            summary.push_str(&format!(
                "; {} line{} skipped ({first})",
                parsed.skipped.len(),
                if parsed.skipped.len() == 1 { "" } else { "s" }
            ));
        }
        Ok(summary)
    }
}
