//! Drawing shared by the attention widgets (`<ml-attention>`, `<ml-flash-attention>`,
//! `<ml-kv-cache>`): a chart with its own tick labels (log axes by plotting log10), a
//! sequential colour map for probabilities, heatmaps, and the backend line under a panel.

use std::ops::Range;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::plot::{
    chart as plot_chart, px_circle, px_line, px_rect, px_text, tick, Area, Axes, Chart, Theme,
};

/// An axis's tick count and tick label formatter.
pub(crate) type Labels<'f> = (usize, &'f dyn Fn(&f64) -> String);

/// A titled chart on f64 axes, with its own tick labels and counts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn chart<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
    desc: [&str; 2],
    labels: [Labels; 2],
    y_label_width: u32,
) -> Result<Chart<'a>, String> {
    plot_chart(
        area,
        theme,
        &Axes {
            title_size: 13.0,
            margin_right: 16,
            x_area: if desc[0].is_empty() { 22 } else { 36 },
            y_area: y_label_width,
            x_labels: labels[0].0,
            y_labels: labels[1].0,
            x_fmt: labels[0].1,
            y_fmt: labels[1].1,
            ..Axes::new(title, x, y, desc[0], desc[1])
        },
    )
}

/// A colour between two others, t in [0, 1].
pub(crate) fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let f = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

/// Viridis (perceptually uniform, colour-blind safe) at t in [0, 1], from eight anchors.
pub(crate) fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(u8, u8, u8); 8] = [
        (0x44, 0x01, 0x54),
        (0x46, 0x33, 0x7e),
        (0x36, 0x5c, 0x8d),
        (0x27, 0x7f, 0x8e),
        (0x1f, 0xa1, 0x87),
        (0x4a, 0xc1, 0x6d),
        (0x9f, 0xda, 0x3a),
        (0xfd, 0xe7, 0x25),
    ];
    let x = t.clamp(0.0, 1.0) * (ANCHORS.len() - 1) as f64;
    let i = (x.floor() as usize).min(ANCHORS.len() - 2);
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    mix(
        RGBColor(a.0, a.1, a.2),
        RGBColor(b.0, b.1, b.2),
        x - i as f64,
    )
}

/// Probability colour: the background at 0 fading into viridis, so that empty (masked)
/// cells read as absent and large weights stand out; `vmax` maps to the top.
pub(crate) fn prob_color(theme: &Theme, p: f64, vmax: f64) -> RGBColor {
    let t = if vmax > 0.0 {
        (p / vmax).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // sqrt spreads the small weights that most of a row holds.
    let t = t.sqrt();
    if t < 0.08 {
        mix(theme.bg, viridis(0.0), t / 0.08)
    } else {
        viridis((t - 0.08) / 0.92)
    }
}

/// A horizontal colour bar for probabilities 0..vmax, with its caption.
pub(crate) fn prob_colorbar(
    area: &Area,
    theme: &Theme,
    vmax: f64,
    caption: &str,
) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let (x0, x1) = (f64::from(w) * 0.15 + 10.0, f64::from(w) * 0.85);
    let steps = 80;
    for j in 0..steps {
        let v = vmax * (j as f64 + 0.5) / steps as f64;
        let l = (x0 + (x1 - x0) * j as f64 / steps as f64).round() as i32;
        let r = (x0 + (x1 - x0) * (j + 1) as f64 / steps as f64).round() as i32;
        px_rect(area, [(l, 4), (r, 14)], prob_color(theme, v, vmax).filled())?;
    }
    px_rect(
        area,
        [(x0 as i32, 4), (x1 as i32, 14)],
        theme.grid.stroke_width(1),
    )?;
    for (x, text, anchor) in [
        (x0, "0".to_string(), HPos::Center),
        ((x0 + x1) / 2.0, caption.to_string(), HPos::Center),
        (x1, format!("{vmax:.2}"), HPos::Center),
    ] {
        px_text(
            area,
            &text,
            (x as i32, 17),
            &theme.muted_text(11.0).pos(Pos::new(anchor, VPos::Top)),
        )?;
    }
    Ok(())
}

/// 1, 10, 100, 1k, 10k, 100k, 1M.
pub(crate) fn compact(v: f64) -> String {
    if v >= 1e9 {
        format!("{}G", tick((v / 1e9 * 10.0).round() / 10.0))
    } else if v >= 1e6 {
        format!("{}M", tick((v / 1e6 * 10.0).round() / 10.0))
    } else if v >= 1e3 {
        format!("{}k", tick((v / 1e3 * 10.0).round() / 10.0))
    } else {
        tick(v)
    }
}

/// One line of text at the top left of an area.
pub(crate) fn note(area: &Area, theme: &Theme, text: &str, y: i32) -> Result<(), String> {
    px_text(
        area,
        text,
        (10, y),
        &theme.muted_text(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
    )
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
}

/// Legend entries laid out left to right, wrapping at the area's width: the positions of
/// each entry and the height needed (CSS px).
pub(crate) fn legend_layout(labels: &[String], width: f64) -> (Vec<(i32, i32)>, f64) {
    let mut pos = Vec::with_capacity(labels.len());
    let (mut x, mut y) = (10.0, 8.0);
    for label in labels {
        let w = 30.0 + 6.4 * label.chars().count() as f64 + 16.0;
        if x > 10.0 && x + w > width - 6.0 {
            x = 10.0;
            y += 18.0;
        }
        pos.push((x as i32, y as i32));
        x += w;
    }
    (pos, y + 14.0)
}

/// A legend strip (drawn outside the plot, so it never covers data).
pub(crate) fn legend(area: &Area, theme: &Theme, items: &[(Mark, String)]) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let labels: Vec<String> = items.iter().map(|i| i.1.clone()).collect();
    let (pos, _) = legend_layout(&labels, f64::from(w));
    for ((mark, label), (x, y)) in items.iter().zip(pos) {
        let yc = y + 6;
        match *mark {
            Mark::Line(c) => px_line(area, &[(x, yc), (x + 22, yc)], c.stroke_width(2))?,
            Mark::Dashed(c) => {
                for k in 0..3 {
                    px_line(
                        area,
                        &[(x + 8 * k, yc), (x + 8 * k + 5, yc)],
                        c.stroke_width(2),
                    )?;
                }
            }
            Mark::Dot(c) => px_circle(area, (x + 11, yc), 4, c.filled())?,
        }
        px_text(
            area,
            label,
            (x + 28, yc),
            &theme.text(11.5).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}

/// Muted text wrapped to the area's width from `y` down; returns the y below it.
pub(crate) fn wrapped(area: &Area, theme: &Theme, text: &str, y: i32) -> Result<i32, String> {
    let (w, _) = area.dim_in_pixel();
    let mut y = y;
    for line in super::kvcache::wrap(text, f64::from(w)) {
        note(area, theme, &line, y)?;
        y += 17;
    }
    Ok(y)
}

/// Lines `text` takes at `width` (CSS px), for panel heights.
pub(crate) fn lines(text: &str, width: f64) -> usize {
    super::kvcache::wrap(text, width).len()
}

/// Where [`draw_heatmap`] puts the matrix in an area of `aw` x `ah` CSS px: its top-left
/// corner, its side, and whether the token labels fit (for hit-testing a pointer).
pub(crate) fn heatmap_box(aw: f64, ah: f64) -> (f64, f64, f64, bool) {
    let labels = aw >= 200.0;
    let lab = if labels { 52.0 } else { 0.0 };
    let side = (aw - lab - 10.0).min(ah - lab - 24.0).min(300.0);
    (lab + 2.0, 22.0, side, labels)
}

/// A square heatmap of weights (row i: query i's distribution over the keys) with a title
/// in `color`, a frame in the same colour, the `query` row outlined and, where they fit,
/// the tokens along both sides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_heatmap(
    area: &Area,
    theme: &Theme,
    words: &[&str],
    w: ndarray::ArrayView2<f32>,
    query: usize,
    title: &str,
    color: RGBColor,
) -> Result<(), String> {
    let (aw, ah) = area.dim_in_pixel();
    let n = words.len();
    let (x0, y0, side, labels) = heatmap_box(f64::from(aw), f64::from(ah));
    let cell = side / n as f64;
    px_text(
        area,
        title,
        (x0 as i32, 4),
        &theme
            .text(12.0)
            .color(&color)
            .pos(Pos::new(HPos::Left, VPos::Top)),
    )?;
    for i in 0..n {
        for j in 0..n {
            if w[[i, j]] == 0.0 {
                continue; // the background's colour already (masked keys): half a causal map
            }
            let (x, y) = (x0 + j as f64 * cell, y0 + i as f64 * cell);
            px_rect(
                area,
                [
                    (x.round() as i32, y.round() as i32),
                    ((x + cell).round() as i32, (y + cell).round() as i32),
                ],
                prob_color(theme, f64::from(w[[i, j]]), 1.0).filled(),
            )?;
        }
    }
    // The frame in the K/V group's colour, and the query row outlined.
    px_rect(
        area,
        [
            (x0 as i32 - 1, y0 as i32 - 1),
            ((x0 + side) as i32 + 1, (y0 + side) as i32 + 1),
        ],
        color.stroke_width(2),
    )?;
    let yq = y0 + query as f64 * cell;
    px_rect(
        area,
        [
            (x0 as i32, yq.round() as i32),
            ((x0 + side) as i32, (yq + cell).round() as i32),
        ],
        theme.fg.stroke_width(2),
    )?;
    if labels && cell >= 9.0 {
        let size = cell.clamp(9.0, 12.0);
        for (i, word) in words.iter().enumerate() {
            let y = y0 + (i as f64 + 0.5) * cell;
            px_text(
                area,
                word,
                ((x0 - 4.0) as i32, y as i32),
                &theme
                    .muted_text(size)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            )?;
            let x = x0 + (i as f64 + 0.5) * cell;
            px_text(
                area,
                word,
                (x as i32, (y0 + side + 4.0) as i32),
                &theme
                    .muted_text(size)
                    .transform(FontTransform::Rotate90)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )?;
        }
    }
    Ok(())
}
