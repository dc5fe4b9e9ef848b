//! Shared drawing: the light and dark themes and a chart frame every plot uses.

use std::fmt::Display;
use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;

pub(crate) type Area = DrawingArea<CanvasBackend, Shift>;
pub(crate) type Chart<'a> =
    ChartContext<'a, CanvasBackend, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Colours for one colour scheme. The series palette is Okabe & Ito's colour-blind-safe set,
/// lightened on dark backgrounds.
pub(crate) struct Theme {
    pub bg: RGBColor,
    pub fg: RGBColor,
    pub muted: RGBColor,
    pub grid: RGBColor,
    pub accent: RGBColor,
    pub warn: RGBColor,
    pub band: RGBAColor,
    pub palette: [RGBColor; 8],
}

impl Theme {
    pub fn new(dark: bool) -> Theme {
        if dark {
            Theme {
                bg: RGBColor(0x16, 0x19, 0x1f),
                fg: RGBColor(0xe6, 0xed, 0xf3),
                muted: RGBColor(0x9a, 0xa4, 0xaf),
                grid: RGBColor(0x2d, 0x33, 0x3b),
                accent: RGBColor(0x56, 0xb4, 0xe9),
                warn: RGBColor(0xff, 0x8a, 0x4c),
                band: RGBColor(0x56, 0xb4, 0xe9).mix(0.16),
                palette: [
                    RGBColor(0x56, 0xb4, 0xe9),
                    RGBColor(0xff, 0x8a, 0x4c),
                    RGBColor(0x2b, 0xd4, 0xa0),
                    RGBColor(0xe5, 0x9a, 0xcb),
                    RGBColor(0xf0, 0xc0, 0x40),
                    RGBColor(0xa0, 0x9c, 0xff),
                    RGBColor(0xc4, 0x9c, 0x94),
                    RGBColor(0xbb, 0xbb, 0xbb),
                ],
            }
        } else {
            Theme {
                bg: RGBColor(0xff, 0xff, 0xff),
                fg: RGBColor(0x1f, 0x23, 0x28),
                muted: RGBColor(0x57, 0x60, 0x6a),
                grid: RGBColor(0xe6, 0xe8, 0xeb),
                accent: RGBColor(0x00, 0x72, 0xb2),
                warn: RGBColor(0xd5, 0x5e, 0x00),
                band: RGBColor(0x00, 0x72, 0xb2).mix(0.10),
                palette: [
                    RGBColor(0x00, 0x72, 0xb2),
                    RGBColor(0xd5, 0x5e, 0x00),
                    RGBColor(0x00, 0x9e, 0x73),
                    RGBColor(0xcc, 0x79, 0xa7),
                    RGBColor(0xb0, 0x80, 0x00),
                    RGBColor(0x56, 0x4f, 0xb0),
                    RGBColor(0x8c, 0x56, 0x4b),
                    RGBColor(0x66, 0x66, 0x66),
                ],
            }
        }
    }

    pub fn text(&self, size: f64) -> TextStyle<'static> {
        ("sans-serif", size).into_font().color(&self.fg)
    }

    pub fn muted_text(&self, size: f64) -> TextStyle<'static> {
        ("sans-serif", size).into_font().color(&self.muted)
    }
}

/// Drawing errors become strings for the page to show.
pub(crate) fn err<E: Display>(e: E) -> String {
    e.to_string()
}

/// A titled chart with light grid lines and axis labels in the theme's colours.
pub(crate) fn frame<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
) -> Result<Chart<'a>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, theme.text(14.0))
        .margin(8)
        .margin_right(14)
        .x_label_area_size(34)
        .y_label_area_size(44)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(theme.grid)
        .axis_style(theme.muted)
        .label_style(theme.muted_text(11.0))
        .axis_desc_style(theme.text(12.0))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The smallest and largest finite value over several series, padded by 8% of the span.
pub(crate) fn padded_range<'a>(series: impl IntoIterator<Item = &'a [f64]>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for &v in s.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return -1.0..1.0;
    }
    let pad = if hi > lo { 0.08 * (hi - lo) } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// A tick label without trailing zeros: 5 not 5.0, 0.25 not 0.250.
pub(crate) fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}
