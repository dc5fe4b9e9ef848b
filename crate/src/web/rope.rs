//! Drawing for `<ml-rope>`: panel 0 the rotation of one pair on a dial with every pair's
//! term of the score, panel 1 the score matrices (RoPE and sinusoidal), panel 2 the
//! long-term decay, panel 3 the frequencies and wavelengths under context scaling.

use std::f64::consts::TAU;

use ndarray::{Array1, Array2};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::{
    chart as plot_chart, dashed, dots, frame, line, padded_range, px_circle, px_line, px_polygon,
    px_rect, px_text, rect, rects, text, tick, Area, Axes, Chart, Theme,
};
use super::{View, WebInfo};
use crate::json::Json;
use crate::params::Params;
use crate::rope::{
    compute, group_thousands, Config, Data, Decay, Dial, Frequencies, Matrices, Scaling,
    DECAY_MAX_OFFSET,
};

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The rotation: pair i of q at position m and of k at position n",
        "The score q·k over all positions: RoPE's diagonals are constant, absolute sinusoids' are not",
        "Long-term decay with the distance |m − n|",
        "Frequencies θᵢ and wavelengths 2π/θᵢ, and what context scaling does to them",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>θ</mi><mi data-key="pair">i</mi></msub><mo>=</mo><msup><mi data-key="base">b</mi><mrow><mo>−</mo><mn>2</mn><mi data-key="pair">i</mi><mo>/</mo><mi data-key="dim">d</mi></mrow></msup><mo>,</mo><mspace width="1em"/><mrow><mo>(</mo><mtable><mtr><mtd><msub><mi>x</mi><mi>a</mi></msub></mtd></mtr><mtr><mtd><msub><mi>x</mi><mi>b</mi></msub></mtd></mtr></mtable><mo>)</mo></mrow><mo>↦</mo><mrow><mo>(</mo><mtable><mtr><mtd><mi>cos</mi><mi data-key="m">m</mi><msub><mi>θ</mi><mi>i</mi></msub></mtd><mtd><mo>−</mo><mi>sin</mi><mi data-key="m">m</mi><msub><mi>θ</mi><mi>i</mi></msub></mtd></mtr><mtr><mtd><mi>sin</mi><mi data-key="m">m</mi><msub><mi>θ</mi><mi>i</mi></msub></mtd><mtd><mi>cos</mi><mi data-key="m">m</mi><msub><mi>θ</mi><mi>i</mi></msub></mtd></mtr></mtable><mo>)</mo></mrow><mrow><mo>(</mo><mtable><mtr><mtd><msub><mi>x</mi><mi>a</mi></msub></mtd></mtr><mtr><mtd><msub><mi>x</mi><mi>b</mi></msub></mtd></mtr></mtable><mo>)</mo></mrow></mrow></math><math display="block"><mrow><msup><mrow><mo>(</mo><msub><mi>R</mi><mrow><mi data-key="m">m</mi><mo>+</mo><mi data-key="shift">Δ</mi></mrow></msub><mi>q</mi><mo>)</mo></mrow><mo>⊤</mo></msup><mrow><mo>(</mo><msub><mi>R</mi><mrow><mi data-key="n">n</mi><mo>+</mo><mi data-key="shift">Δ</mi></mrow></msub><mi>k</mi><mo>)</mo></mrow><mo>=</mo><msup><mi>q</mi><mo>⊤</mo></msup><msub><mi>R</mi><mrow><mi data-key="n">n</mi><mo>−</mo><mi data-key="m">m</mi></mrow></msub><mi>k</mi><mo>=</mo><mi>Re</mi><munder><mo>∑</mo><mi>i</mi></munder><msub><mover><mi>q</mi><mo>~</mo></mover><mi>i</mi></msub><msubsup><mover><mi>k</mi><mo>~</mo></mover><mi>i</mi><mo>*</mo></msubsup><msup><mi>e</mi><mrow><mi>i</mi><mo>(</mo><mi data-key="m">m</mi><mo>−</mo><mi data-key="n">n</mi><mo>)</mo><msub><mi>θ</mi><mi>i</mi></msub></mrow></msup></mrow></math>"#,
};

/// Sub-plots sit side by side from this width (CSS px) up, stacked below it.
const WIDE: f64 = 560.0;
/// Height of the layout strip under the dial, CSS px.
const STRIP: f64 = 46.0;
/// Height of the colour bar under the heatmaps, CSS px.
const COLORBAR: f64 = 40.0;

/// Each part of the data depends on a few parameters only; the view recomputes just the
/// parts whose parameters moved (dragging m does not redo the decay curves).
#[derive(Default)]
pub(crate) struct RopeView {
    data: Option<Data>,
}

impl RopeView {
    fn data(&self) -> &Data {
        self.data
            .as_ref()
            .expect("update() runs before any view is read")
    }
}

fn decay_inputs(c: &Config) -> (usize, u64, u64, u64, &'static str, u64) {
    (
        c.head_dim,
        c.base.to_bits(),
        c.seed,
        c.similarity.to_bits(),
        c.scaling.name(),
        c.scaling.factor().to_bits(),
    )
}

/// A colour between two others, t in [0, 1].
fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let f = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

/// The heatmaps' diverging colours (PuOr, colour-blind safe) over a map's own range
/// `lo..hi`: purple at the bottom, the background in the middle, orange at the top. The
/// whole range is used so that a diagonal that is not constant shows, whatever the sign.
fn diverging(theme: &Theme, v: f64, (lo, hi): (f64, f64)) -> RGBColor {
    let dark = theme.bg.0 < 0x80;
    let (neg, pos) = if dark {
        (RGBColor(0xb2, 0xab, 0xd2), RGBColor(0xfd, 0xb8, 0x63))
    } else {
        (RGBColor(0x54, 0x27, 0x88), RGBColor(0xb3, 0x58, 0x06))
    };
    let half = (hi - lo) / 2.0;
    let t = if half > 0.0 {
        (v - (lo + half)) / half
    } else {
        0.0
    };
    if t < 0.0 {
        mix(theme.bg, neg, -t)
    } else {
        mix(theme.bg, pos, t)
    }
}

/// Compact labels for log axes: 1, 10, 100, 1k, 10k, 100k; 0.1, 0.01, 1e-3.
fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", tick(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", tick(v / 1e3))
    } else if v >= 0.01 {
        tick(v)
    } else {
        format!("{v:.0e}")
    }
}

/// An angle in radians, and in turns when it is more than one.
fn angle_text(a: f64) -> String {
    let turns = (a / TAU).floor();
    if turns >= 1.0 {
        let unit = if turns == 1.0 { "turn" } else { "turns" };
        format!("{a:.2} rad = {turns} {unit} + {:.2}", a - turns * TAU)
    } else {
        format!("{a:.2} rad")
    }
}

fn rotation_text(scaling: Scaling) -> String {
    match scaling {
        Scaling::None => String::new(),
        s => format!(" ({} ×{})", s.name(), s.factor()),
    }
}

/// A legend entry: label, colour, dashed.
type LegendItem = (String, RGBColor, bool);

/// Where each legend entry goes (left end, middle of its row), flowed left to right and
/// wrapped to a new 20 px row when the next one would not fit; and the strip's height.
fn legend_layout(items: &[LegendItem], width: f64) -> (Vec<(i32, i32)>, f64) {
    let (mut x, mut y) = (12.0, 13.0);
    let places = items
        .iter()
        .map(|(label, ..)| {
            // 12 px sans-serif averages under 7 px a character.
            let w = 24.0 + 6.8 * label.chars().count() as f64 + 22.0;
            if x > 12.0 && x + w > width - 4.0 {
                x = 12.0;
                y += 20.0;
            }
            let at = (x as i32, y as i32);
            x += w;
            at
        })
        .collect();
    (places, y + 13.0)
}

/// Coloured keys across the top of an area (see [`legend_layout`]).
fn draw_legend(area: &Area, theme: &Theme, items: &[LegendItem]) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let (places, _) = legend_layout(items, f64::from(w));
    for ((label, color, dashed), (x, y)) in items.iter().zip(places) {
        if *dashed {
            for s in 0..3 {
                px_line(
                    area,
                    &[(x + s * 7, y), (x + s * 7 + 4, y)],
                    color.stroke_width(3),
                )?;
            }
        } else {
            px_line(area, &[(x, y), (x + 18, y)], color.stroke_width(3))?;
        }
        px_text(
            area,
            label,
            (x + 24, y),
            &theme.text(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}

fn decay_legend(decay: &Decay, theme: &Theme) -> Vec<LegendItem> {
    decay
        .curves
        .iter()
        .zip(decay_colors(theme))
        .map(|(c, color)| (c.label.clone(), color, false))
        .collect()
}

fn frequency_legend(f: &Frequencies, theme: &Theme) -> Vec<LegendItem> {
    let mut items = vec![("original θᵢ and 2π/θᵢ".to_string(), theme.palette[0], false)];
    if f.scaling != Scaling::None {
        items.push((
            format!("{} scaling ×{}", f.scaling.name(), f.scaling.factor()),
            theme.palette[3],
            true,
        ));
    }
    items
}

/// An arrow from (x0, y0) to (x1, y1), pixels, with a filled head.
fn arrow(area: &Area, from: (i32, i32), to: (i32, i32), style: ShapeStyle) -> Result<(), String> {
    let (dx, dy) = (f64::from(to.0 - from.0), f64::from(to.1 - from.1));
    let len = dx.hypot(dy);
    px_line(area, &[from, to], style)?;
    if len < 2.0 {
        return Ok(());
    }
    let (ux, uy) = (dx / len, dy / len);
    let head = 9.0f64.min(len * 0.5);
    let base = (f64::from(to.0) - ux * head, f64::from(to.1) - uy * head);
    let side = |s: f64| {
        (
            (base.0 - uy * head * 0.45 * s).round() as i32,
            (base.1 + ux * head * 0.45 * s).round() as i32,
        )
    };
    px_polygon(area, &[to, side(1.0), side(-1.0)], style.color.filled())?;
    Ok(())
}

/// An arc of radius r (pixels) around c from angle a0 by sweep (radians, counter-clockwise
/// on screen as in the math).
fn arc(
    area: &Area,
    c: (f64, f64),
    r: f64,
    a0: f64,
    sweep: f64,
    style: ShapeStyle,
) -> Result<(), String> {
    let steps = ((sweep.abs() / TAU * 96.0).ceil() as usize).max(2);
    let pts: Vec<(i32, i32)> = (0..=steps)
        .map(|j| {
            let a = a0 + sweep * j as f64 / steps as f64;
            (
                (c.0 + r * a.cos()).round() as i32,
                (c.1 - r * a.sin()).round() as i32,
            )
        })
        .collect();
    px_line(area, &pts, style)?;
    Ok(())
}

fn draw_dial(area: &Area, theme: &Theme, d: &Data) -> Result<(), String> {
    let dial = &d.dial;
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let clamped = if d.config.pair_requested > dial.pair {
        format!(" (the last for d = {})", d.config.head_dim)
    } else {
        String::new()
    };
    let title = format!(
        "pair i = {}{clamped}: θ{} = {} rad per token{}",
        dial.pair,
        subscript(dial.pair),
        sig(dial.theta),
        rotation_text(d.config.scaling)
    );
    px_text(
        area,
        &title,
        ((w / 2.0) as i32, 4),
        &theme.text(13.0).pos(Pos::new(HPos::Center, VPos::Top)),
    )?;
    let top = 24.0;
    let lines = 3.0 * 15.0 + 6.0;
    let r = ((h - top - lines - 16.0) / 2.0)
        .min(w / 2.0 - 16.0)
        .max(20.0);
    let c = (w / 2.0, top + 8.0 + r);
    let px = |x: f64, y: f64| ((c.0 + x).round() as i32, (c.1 - y).round() as i32);
    // The dial: unit circle and axes.
    px_circle(area, px(0.0, 0.0), r as i32, theme.grid.stroke_width(2))?;
    for (x, y) in [(1.0, 0.0), (0.0, 1.0)] {
        px_line(
            area,
            &[px(-r * x, -r * y), px(r * x, r * y)],
            theme.grid.stroke_width(1),
        )?;
    }
    let len = |p: [f64; 2]| p[0].hypot(p[1]);
    let scale = 0.92 * r / len(dial.q_pair).max(len(dial.k_pair)).max(1e-12);
    let (qc, kc) = (theme.palette[0], theme.palette[1]);
    let phase = |p: [f64; 2]| p[1].atan2(p[0]);
    // Where each pair started (position 0), faint, and the arc it turned through.
    for (p0, angle, color, rr) in [
        (dial.q_pair, dial.angle_q, qc, 0.34),
        (dial.k_pair, dial.angle_k, kc, 0.22),
    ] {
        let end = px(p0[0] * scale, p0[1] * scale);
        arrow(area, px(0.0, 0.0), end, color.mix(0.35).stroke_width(2))?;
        let sweep = angle.rem_euclid(TAU);
        arc(
            area,
            c,
            r * rr,
            phase(p0),
            sweep,
            color.mix(0.8).stroke_width(2),
        )?;
    }
    // The angle between the rotated pairs, on the rim.
    let (qa, ka) = (phase(dial.q_rot_pair), phase(dial.k_rot_pair));
    arc(
        area,
        c,
        r * 1.06,
        ka,
        dial.angle_between,
        theme.fg.stroke_width(2),
    )?;
    // The rotated pairs.
    for (p, color) in [(dial.k_rot_pair, kc), (dial.q_rot_pair, qc)] {
        arrow(
            area,
            px(0.0, 0.0),
            px(p[0] * scale, p[1] * scale),
            color.stroke_width(3),
        )?;
    }
    let label_at = |a: f64, rr: f64| px(r * rr * a.cos(), r * rr * a.sin());
    let tag = |text: &str, at: (i32, i32), color: RGBColor| {
        px_text(
            area,
            text,
            at,
            &FontDesc::new(FontFamily::SansSerif, 13.0, FontStyle::Normal)
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        )
    };
    tag(
        "q",
        label_at(qa, 1.0 * len(dial.q_rot_pair) * scale / r + 0.1),
        qc,
    )?;
    tag(
        "k",
        label_at(ka, 1.0 * len(dial.k_rot_pair) * scale / r + 0.1),
        kc,
    )?;
    // Readouts under the dial.
    let y0 = (c.1 + r + 12.0) as i32;
    let rows = [
        (
            format!(
                "q at m + Δ = {}: turned {}",
                dial.m_pos,
                angle_text(dial.angle_q)
            ),
            qc,
        ),
        (
            format!(
                "k at n + Δ = {}: turned {}",
                dial.n_pos,
                angle_text(dial.angle_k)
            ),
            kc,
        ),
        (
            format!(
                "angle between them: {:.3} rad ({:.1}°), fixed by m − n = {}",
                dial.angle_between,
                dial.angle_between.to_degrees(),
                d.config.m as i64 - d.config.n as i64
            ),
            theme.fg,
        ),
    ];
    for (j, (text, color)) in rows.into_iter().enumerate() {
        px_text(
            area,
            &text,
            ((w / 2.0) as i32, y0 + 15 * j as i32),
            &FontDesc::new(FontFamily::SansSerif, 12.0, FontStyle::Normal)
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        )?;
    }
    Ok(())
}

fn subscript(i: usize) -> String {
    const DIGITS: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    i.to_string()
        .chars()
        .map(|c| DIGITS[c.to_digit(10).unwrap_or(0) as usize])
        .collect()
}

/// Three significant figures, plain when that reads well.
fn sig(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if (1e-3..1e5).contains(&x.abs()) {
        let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{x:.2e}")
    }
}

fn draw_terms(area: &Area, theme: &Theme, d: &Data) -> Result<(), String> {
    let dial = &d.dial;
    let c = &dial.contributions;
    let half = c.len() as f64;
    let y = padded_range([c.as_slice().unwrap_or(&[]), &[0.0]]);
    let title = format!("q·k = Σ of these {} terms = {}", c.len(), dial.score_text);
    let mut chart = frame(
        area,
        theme,
        &title,
        -0.5..half - 0.5,
        y,
        "pair index i",
        "pair i's term of q·k",
    )?;
    let bar = (0.42f64).min(0.5 - 0.5 / half.max(2.0));
    let bars: Vec<_> = c
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let color = if i == dial.pair {
                theme.fg
            } else {
                theme.palette[2]
            };
            ([(i as f64 - bar, 0.0), (i as f64 + bar, v)], color.filled())
        })
        .collect();
    rects(&mut chart, &bars)?;
    line(
        &mut chart,
        &[(-0.5, 0.0), (half - 0.5, 0.0)],
        theme.muted.stroke_width(1),
    )?;
    Ok(())
}

/// The d components of q, coloured by the pair they belong to, with pair i outlined: the
/// interleaved layout puts a pair side by side, halves puts it d/2 apart.
fn draw_strip(area: &Area, theme: &Theme, d: &Data) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let dim = d.config.head_dim;
    let (a, b) = d.config.pairing.pair(dim, d.dial.pair);
    let label = format!(
        "q's components by pair ({}): pair {} = x{a}, x{b}",
        d.config.pairing.name(),
        d.dial.pair,
    );
    px_text(
        area,
        &label,
        (10, 2),
        &theme.muted_text(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    let (x0, x1, y0, y1) = (10.0, f64::from(w) - 10.0, 20, 38);
    let cell = (x1 - x0) / dim as f64;
    for j in 0..dim {
        let pair = match d.config.pairing {
            crate::rope::Pairing::Interleaved => j / 2,
            crate::rope::Pairing::Halves => j % (dim / 2),
        };
        let color = theme.palette[pair % 6].mix(if j == a || j == b { 1.0 } else { 0.45 });
        let left = (x0 + cell * j as f64).round() as i32;
        let right = ((x0 + cell * (j + 1) as f64).round() as i32 - 1).max(left);
        px_rect(area, [(left, y0), (right, y1)], color.filled())?;
        if j == a || j == b {
            px_rect(
                area,
                [(left - 1, y0 - 2), (right + 1, y1 + 2)],
                theme.fg.stroke_width(2),
            )?;
        }
    }
    Ok(())
}

fn draw_heatmap(
    area: &Area,
    theme: &Theme,
    title: &str,
    s: &Array2<f64>,
    range: (f64, f64),
    marker: Option<(usize, usize)>,
) -> Result<(), String> {
    let p = s.nrows() as f64;
    let mut chart = chart(
        area,
        theme,
        title,
        0.0..p,
        -p..0.0,
        ["key position n", "query position m"],
        [(6, &|v| tick(*v)), (6, &|v| tick(-*v))],
        false,
    )?;
    // Row m is drawn from the top down (y = -m), so the main diagonal runs from the top left.
    let cells: Vec<_> = s
        .indexed_iter()
        .map(|((m, n), &v)| {
            let (x, y) = (n as f64, -(m as f64));
            (
                [(x, y), (x + 1.0, y - 1.0)],
                diverging(theme, v, range).filled(),
            )
        })
        .collect();
    rects(&mut chart, &cells)?;
    if let Some((m, n)) = marker {
        // The diagonal m - n = const through the dial's positions, and their cell.
        let offset = m as f64 - n as f64;
        let (lo, hi) = (offset.max(0.0), (p + offset).min(p));
        if hi > lo {
            dashed(
                &mut chart,
                &[(lo - offset, -lo), (hi - offset, -hi)],
                4,
                4,
                theme.fg.mix(0.55).stroke_width(1),
            )?;
        }
        if m < s.nrows() && n < s.nrows() {
            let (x, y) = (n as f64, -(m as f64));
            rect(
                &mut chart,
                [(x - 0.3, y + 0.3), (x + 1.3, y - 1.3)],
                theme.fg.stroke_width(2),
            )?;
        }
    }
    Ok(())
}

/// A horizontal colour bar for one heatmap over its range `lo..hi`.
fn draw_colorbar(area: &Area, theme: &Theme, (lo, hi): (f64, f64)) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let (x0, x1) = (f64::from(w) * 0.12 + 20.0, f64::from(w) * 0.88);
    let steps = 90;
    for j in 0..steps {
        let v = lo + (hi - lo) * (j as f64 + 0.5) / steps as f64;
        let l = (x0 + (x1 - x0) * j as f64 / steps as f64).round() as i32;
        let r = (x0 + (x1 - x0) * (j + 1) as f64 / steps as f64).round() as i32;
        px_rect(
            area,
            [(l, 4), (r, 14)],
            diverging(theme, v, (lo, hi)).filled(),
        )?;
    }
    px_rect(
        area,
        [(x0 as i32, 4), (x1 as i32, 14)],
        theme.grid.stroke_width(1),
    )?;
    for (x, text) in [
        (x0, format!("{lo:.1}")),
        (
            (x0 + x1) / 2.0,
            format!("q·k (this map's range; middle {:.1})", (lo + hi) / 2.0),
        ),
        (x1, format!("{hi:.1}")),
    ] {
        px_text(
            area,
            &text,
            (x as i32, 17),
            &theme
                .muted_text(11.0)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        )?;
    }
    Ok(())
}

/// An axis's tick count and tick label formatter.
type Labels<'f> = (usize, &'f dyn Fn(&f64) -> String);

/// Tick labels of a log axis, which plots log10 of its values: 10^v to two significant
/// figures, compactly (1, 10, 100, 1k; 0.1, 1e-3).
fn log_label(v: &f64) -> String {
    let x = 10f64.powf(*v);
    let unit = 10f64.powi(x.log10().floor() as i32 - 1);
    compact((x / unit).round() * unit)
}

/// Ticks for a log axis over `span` decades: one per decade where they fit.
fn log_ticks(span: f64) -> usize {
    (span.ceil() as usize + 1).clamp(3, 9)
}

/// A titled chart on f64 axes like `plot::frame` (the same chart type, so the wasm holds one
/// copy of plotters' chart code), with its own tick labels and tick counts: a log axis is
/// drawn by plotting log10 of the values and labelling with [`log_label`].
#[allow(clippy::too_many_arguments)]
fn chart<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    desc: [&str; 2],
    labels: [Labels; 2],
    grid: bool,
) -> Result<Chart<'a>, String> {
    plot_chart(
        area,
        theme,
        &Axes {
            title_size: 13.0,
            margin_right: 16,
            y_area: 48,
            x_labels: labels[0].0,
            y_labels: labels[1].0,
            x_fmt: labels[0].1,
            y_fmt: labels[1].1,
            grid,
            ..Axes::new(title, x, y, desc[0], desc[1])
        },
    )
}

fn decay_colors(theme: &Theme) -> [RGBColor; 3] {
    [theme.palette[0], theme.palette[1], theme.palette[2]]
}

fn draw_decay_plot(
    area: &Area,
    theme: &Theme,
    decay: &Decay,
    title: &str,
    pick: fn(&crate::rope::DecayCurve) -> &Vec<f64>,
) -> Result<(), String> {
    let colors = decay_colors(theme);
    let y_max = decay
        .curves
        .iter()
        .flat_map(|c| pick(c).iter().copied())
        .fold(1.0f64, f64::max)
        * 1.06;
    let x_end = (DECAY_MAX_OFFSET as f64).log10();
    let mut chart = chart(
        area,
        theme,
        title,
        0.0..x_end,
        0.0..y_max,
        [
            "distance |m − n| (tokens, log scale)",
            "relative to m − n = 0",
        ],
        [(log_ticks(x_end), &log_label), (6, &|v| tick(*v))],
        true,
    )?;
    // References first, the configured base on top.
    for (j, c) in decay.curves.iter().enumerate().rev() {
        let pts: Vec<(f64, f64)> = decay
            .offsets
            .iter()
            .zip(pick(c))
            .skip(1)
            .map(|(&r, &v)| (r.log10(), v))
            .collect();
        let width = if j == 0 { 3 } else { 2 };
        line(&mut chart, &pts, colors[j].stroke_width(width))?;
    }
    Ok(())
}

/// One of the frequency panel's plots: a per-pair quantity on a log axis, before and after
/// scaling, with optional horizontal reference lines (value, label, colour).
#[allow(clippy::too_many_arguments)]
fn draw_per_pair(
    area: &Area,
    theme: &Theme,
    title: &str,
    y_desc: &str,
    orig: &Array1<f64>,
    new: Option<&Array1<f64>>,
    lines: &[(f64, String, RGBColor)],
    shade_above: Option<f64>,
) -> Result<(), String> {
    let half = orig.len();
    let (c0, c1) = (theme.palette[0], theme.palette[3]);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in orig
        .iter()
        .chain(new.into_iter().flatten())
        .chain(lines.iter().map(|l| &l.0))
    {
        lo = lo.min(v.log10());
        hi = hi.max(v.log10());
    }
    let pad = ((hi - lo) * 0.08).max(0.15);
    let y = (lo - pad)..(hi + pad);
    let x = -0.5..(half as f64 - 0.5).max(0.5);
    let mut chart = chart(
        area,
        theme,
        title,
        x.clone(),
        y.clone(),
        ["pair index i", y_desc],
        [(6, &|v| tick(*v)), (log_ticks(y.end - y.start), &log_label)],
        true,
    )?;
    if let Some(v) = shade_above {
        rect(
            &mut chart,
            [(x.start, v.log10()), (x.end, y.end)],
            theme.band.filled(),
        )?;
    }
    for (v, label, color) in lines {
        let ly = v.log10();
        dashed(
            &mut chart,
            &[(x.start, ly), (x.end, ly)],
            6,
            4,
            color.stroke_width(2),
        )?;
        text(
            &mut chart,
            label,
            (x.start + 0.02 * (x.end - x.start), ly),
            &FontDesc::new(FontFamily::SansSerif, 11.0, FontStyle::Normal)
                .color(color)
                .pos(Pos::new(HPos::Left, VPos::Bottom)),
        )?;
    }
    let pts = |v: &Array1<f64>| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &t)| (i as f64, t.log10()))
            .collect()
    };
    if let Some(new) = new {
        dashed(&mut chart, &pts(new), 5, 4, c1.stroke_width(2))?;
    }
    let orig = pts(orig);
    line(&mut chart, &orig, c0.stroke_width(2))?;
    if half <= 64 {
        dots(&mut chart, &orig, 2, c0.filled())?;
    }
    Ok(())
}

fn draw_frequencies(area: &Area, theme: &Theme, f: &Frequencies, wide: bool) -> Result<(), String> {
    let scaled = f.scaling != Scaling::None;
    let items = frequency_legend(f, theme);
    let (w, _) = area.dim_in_pixel();
    let (_, strip) = legend_layout(&items, f64::from(w));
    let (top, plots) = area.split_vertically(strip as u32);
    draw_legend(&top, theme, &items)?;
    let parts = if wide {
        plots.split_evenly((1, 2))
    } else {
        plots.split_evenly((2, 1))
    };
    draw_per_pair(
        &parts[0],
        theme,
        "θᵢ: how fast pair i turns",
        "radians per token",
        &f.theta,
        scaled.then_some(&f.theta_scaled),
        &[],
        None,
    )?;
    let ctx = f.train_ctx as f64;
    let mut lines = vec![(ctx, format!("L = {}", group_thousands(ctx)), theme.muted)];
    if scaled {
        let stretched = ctx * f.scaling.factor();
        lines.push((
            stretched,
            format!("s·L = {}", group_thousands(stretched)),
            theme.palette[4],
        ));
    }
    draw_per_pair(
        &parts[1],
        theme,
        &format!(
            "wavelength 2π/θᵢ: {} of {} pairs exceed L",
            f.slow_pairs,
            f.theta.len()
        ),
        "tokens per turn",
        &f.wavelength,
        scaled.then_some(&f.wavelength_scaled),
        &lines,
        Some(ctx),
    )
}

impl View for RopeView {
    fn update(&mut self, params: &Params) {
        let config = Config::from_params(params);
        let reuse = self.data.take().filter(|old| {
            decay_inputs(&old.config) == decay_inputs(&config)
                && old.config.max_pos == config.max_pos
        });
        let Some(old) = reuse else {
            self.data = Some(compute(&config));
            return;
        };
        // Same content, frequencies and decay: redo the dial and, when the pairing moved,
        // the matrix choice; everything here is cheap next to the decay curves.
        let thetas = config.thetas();
        let mut rng = crate::rng::Rng::new(config.seed);
        let (q0, k0) = crate::rope::content_vectors(config.head_dim, config.similarity, &mut rng);
        let (q, k) = if config.pairing == old.config.pairing {
            (old.q, old.k)
        } else {
            crate::rope::seeded_content(&config)
        };
        let matrices = if config.pairing == old.config.pairing {
            old.matrices
        } else {
            Matrices::compute(&config, &q0, &k0, &thetas)
        };
        self.data = Some(Data {
            dial: Dial::compute(&config, &q, &k, &thetas),
            frequencies: Frequencies::compute(&config),
            matrices,
            decay: old.decay,
            q,
            k,
            config,
        });
    }

    fn data(&self) -> Json {
        self.data().to_json()
    }

    fn panel_json(&self, panel: usize) -> Json {
        self.data().panel_json(panel)
    }

    fn panel_csv(&self, panel: usize) -> String {
        self.data().panel_csv(panel)
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        let wide = width >= WIDE;
        match panel {
            0 if wide => 360.0 + STRIP,
            0 => (width - 20.0).min(320.0) + 70.0 + 260.0 + STRIP,
            1 if wide => (width / 2.0 - 68.0).min(440.0) + 64.0 + COLORBAR,
            1 => 2.0 * ((width - 68.0).min(440.0) + 64.0 + COLORBAR),
            _ => {
                let theme = Theme::new(false);
                let items = if panel == 2 {
                    decay_legend(&self.data().decay, &theme)
                } else {
                    frequency_legend(&self.data().frequencies, &theme)
                };
                let strip = legend_layout(&items, width).1;
                strip + if wide { 300.0 } else { 2.0 * 270.0 }
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let d = self.data();
        let (w, h) = area.dim_in_pixel();
        let width = f64::from(w);
        let wide = width >= WIDE;
        match panel {
            0 => {
                let (main, strip) = area.split_vertically(h.saturating_sub(STRIP as u32));
                if wide {
                    let dial_w = (width * 0.44).min(440.0) as u32;
                    let (left, right) = main.split_horizontally(dial_w);
                    draw_dial(&left, theme, d)?;
                    draw_terms(&right, theme, d)?;
                } else {
                    let dial_h = ((width - 20.0).min(320.0) + 70.0) as u32;
                    let (upper, lower) = main.split_vertically(dial_h);
                    draw_dial(&upper, theme, d)?;
                    draw_terms(&lower, theme, d)?;
                }
                draw_strip(&strip, theme, d)?;
            }
            1 => {
                let m = &d.matrices;
                let parts = if wide {
                    area.split_evenly((1, 2))
                } else {
                    area.split_evenly((2, 1))
                };
                let marker = Some((d.dial.m_pos, d.dial.n_pos));
                let titles = [
                    format!(
                        "RoPE ({}): diagonal spread {:.1e}",
                        d.config.pairing.name(),
                        m.spread_rope
                    ),
                    format!(
                        "sinusoidal, added: diagonal spread {:.2}",
                        m.spread_sinusoidal
                    ),
                ];
                for (j, s) in [&m.rope, &m.sinusoidal].into_iter().enumerate() {
                    // Each map on its own symmetric scale (its colour bar below it), kept
                    // square by trimming its part to a side that fits.
                    let range = s.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                    let (pw, ph) = parts[j].dim_in_pixel();
                    let (map, bar) = parts[j].split_vertically(ph.saturating_sub(COLORBAR as u32));
                    let side = (ph as i32 - COLORBAR as i32 - 64)
                        .min(pw as i32 - 68)
                        .max(40) as u32;
                    let used = (side + 68).min(pw);
                    let pad = (pw - used) / 2;
                    let cell = map.margin(0, 0, pad as i32, (pw - used - pad) as i32);
                    draw_heatmap(&cell, theme, &titles[j], s, range, marker)?;
                    draw_colorbar(&bar, theme, range)?;
                }
            }
            2 => {
                let items = decay_legend(&d.decay, theme);
                let (_, strip) = legend_layout(&items, width);
                let (top, plots) = area.split_vertically(strip as u32);
                draw_legend(&top, theme, &items)?;
                let parts = if wide {
                    plots.split_evenly((1, 2))
                } else {
                    plots.split_evenly((2, 1))
                };
                draw_decay_plot(
                    &parts[0],
                    theme,
                    &d.decay,
                    &format!(
                        "mean |q·k| over {} random pairs (ρ = {})",
                        d.decay.samples, d.config.similarity
                    ),
                    |c| &c.mean_abs,
                )?;
                draw_decay_plot(
                    &parts[1],
                    theme,
                    &d.decay,
                    "RoFormer's bound (2/d) Σⱼ |Sⱼ|",
                    |c| &c.bound,
                )?;
            }
            _ => draw_frequencies(area, theme, &d.frequencies, wide)?,
        }
        Ok(())
    }

    fn describe(&self, panel: usize) -> String {
        let d = self.data();
        let dial = &d.dial;
        match panel {
            0 => format!(
                "Pair {} (θ = {} rad per token): q at position {} has turned {:.2} rad, k at position {} {:.2} rad; \
                 the angle between them is {:.3} rad. Score q·k = {}; it depends only on m − n = {}.",
                dial.pair,
                sig(dial.theta),
                dial.m_pos,
                dial.angle_q,
                dial.n_pos,
                dial.angle_k,
                dial.angle_between,
                dial.score_text,
                d.config.m as i64 - d.config.n as i64
            ),
            1 => format!(
                "Score matrices over positions 0 to {}: with RoPE every diagonal is constant (spread {:.1e}); \
                 with sinusoidal encodings added to the content it is not (spread {:.2}).",
                d.config.max_pos - 1,
                d.matrices.spread_rope,
                d.matrices.spread_sinusoidal
            ),
            2 => {
                let at = d
                    .decay
                    .offsets
                    .iter()
                    .position(|&r| r >= 1000.0)
                    .unwrap_or(0);
                let values: Vec<String> = d
                    .decay
                    .curves
                    .iter()
                    .map(|c| {
                        format!(
                            "{}: mean |score| {:.2}, bound {:.2}",
                            c.label, c.mean_abs[at], c.bound[at]
                        )
                    })
                    .collect();
                format!(
                    "Mean |q·k| and RoFormer's bound against |m − n| from 1 to {} tokens, relative to m − n = 0. At {} tokens: {}.",
                    group_thousands(DECAY_MAX_OFFSET as f64),
                    d.decay.offsets[at],
                    values.join("; ")
                )
            }
            _ => {
                let f = &d.frequencies;
                let last = f.theta.len() - 1;
                format!(
                    "θᵢ falls from {} to {} radians per token; wavelengths run from {} to {} tokens, and {} of {} pairs turn less than once in the trained context of {}.{}",
                    sig(f.theta[0]),
                    sig(f.theta[last]),
                    sig(f.wavelength[0]),
                    sig(f.wavelength[last]),
                    f.slow_pairs,
                    f.theta.len(),
                    group_thousands(f.train_ctx as f64),
                    match f.scaling {
                        Scaling::None => String::new(),
                        s => format!(
                            " With {} scaling ×{}, the fastest pair's wavelength becomes {} and the slowest's {}.",
                            s.name(),
                            s.factor(),
                            sig(f.wavelength_scaled[0]),
                            sig(f.wavelength_scaled[last])
                        ),
                    }
                )
            }
        }
    }
}
