//! Shared drawing: the light and dark themes, a chart frame every plot uses, and the
//! drawing helpers every widget draws through.
//!
//! # Why helpers, and not plotters' generic API at each call site
//!
//! plotters is generic over the series it draws: every `chart.draw_series(iter.map(|..| ..))`
//! with its own closure or iterator type, every `.legend(|(x, y)| ..)` closure and every
//! `ChartBuilder` is one more copy of plotters' drawing code, inlined into the widget's
//! `draw`. The helpers below take slices of points and concrete styles, are
//! `#[inline(never)]`, and are compiled once (moving nine widgets onto them took each
//! widget's drawing 1-3 KB down and plotters' code outside this file to a third), so a
//! widget's drawing code is a list of calls. Draw through them: [`line`], [`dashed`],
//! [`dots`], [`discs`], [`rect`], [`rects`], [`cloud`], [`text`], [`polygon`], [`key`] + [`legend`]
//! in chart coordinates,
//! [`px_line`], [`px_rect`], [`px_text`], [`px_circle`], [`px_polygon`] in an area's
//! pixels; [`chart`] (with [`Axes`]) or [`frame`] to build a chart.

use std::cell::RefCell;
use std::fmt::Display;
use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_canvas::CanvasBackend;
use wasm_bindgen::Clamped;
use web_sys::{CanvasRenderingContext2d, ImageData};

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
        font(size).color(&self.fg)
    }

    pub fn muted_text(&self, size: f64) -> TextStyle<'static> {
        font(size).color(&self.muted)
    }
}

/// The sans-serif font at `size` px. Named by its enum, never as `("sans-serif", size)`:
/// plotters reads a family name with `str::to_lowercase`, and that one call brings core's
/// Unicode case tables into the wasm (13 KB; see [`legend`] for the other caller).
#[inline(never)]
pub(crate) fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
}

/// Drawing errors become strings for the page to show.
pub(crate) fn err<E: Display>(e: E) -> String {
    e.to_string()
}

/// What drawing returns: an error message for the page, or nothing.
pub(crate) type Drawn = Result<(), String>;
/// A point in a chart's data coordinates.
pub(crate) type Pt = (f64, f64);
/// A pixel in an area's own coordinates (CSS px, origin top left).
pub(crate) type Px = (i32, i32);

/// A tick-label formatter.
pub(crate) type Fmt<'f> = &'f dyn Fn(&f64) -> String;

fn tick_ref(v: &f64) -> String {
    tick(*v)
}

/// Everything about a chart's frame: caption, margins, label areas, ranges, ticks and grid.
/// [`Axes::new`] gives the house defaults (what [`frame`] draws); change fields for the rest.
pub(crate) struct Axes<'f> {
    pub title: &'f str,
    pub title_size: f64,
    pub x: Range<f64>,
    pub y: Range<f64>,
    pub x_desc: &'f str,
    pub y_desc: &'f str,
    pub margin: u32,
    pub margin_right: u32,
    /// Height of the x labels' strip and width of the y labels' strip (px).
    pub x_area: u32,
    pub y_area: u32,
    /// How many tick labels to aim for (plotters picks round values near that many).
    pub x_labels: usize,
    pub y_labels: usize,
    pub x_fmt: Fmt<'f>,
    pub y_fmt: Fmt<'f>,
    /// Tick labels' font size.
    pub label_size: f64,
    /// Vertical / horizontal grid lines.
    pub x_mesh: bool,
    pub y_mesh: bool,
    /// Draw the y axis line, its ticks and labels.
    pub y_axis: bool,
    /// Grid lines in the theme's grid colour (false: transparent, for heatmaps).
    pub grid: bool,
}

impl<'f> Axes<'f> {
    pub fn new(
        title: &'f str,
        x: Range<f64>,
        y: Range<f64>,
        x_desc: &'f str,
        y_desc: &'f str,
    ) -> Self {
        Axes {
            title,
            title_size: 14.0,
            x,
            y,
            x_desc,
            y_desc,
            margin: 8,
            margin_right: 14,
            x_area: 34,
            y_area: 44,
            x_labels: 6,
            y_labels: 6,
            x_fmt: &tick_ref,
            y_fmt: &tick_ref,
            label_size: 11.0,
            x_mesh: true,
            y_mesh: true,
            y_axis: true,
            grid: true,
        }
    }
}

/// A chart on `area` as `axes` describes it, its grid, ticks and axis labels drawn in the
/// theme's colours. The one place a chart is built.
#[inline(never)]
pub(crate) fn chart<'a>(
    area: &'a Area,
    theme: &Theme,
    axes: &Axes<'_>,
) -> Result<Chart<'a>, String> {
    KEYS.with(|k| k.borrow_mut().clear());
    let mut chart = ChartBuilder::on(area)
        .caption(axes.title, theme.text(axes.title_size))
        .margin(axes.margin)
        .margin_right(axes.margin_right)
        .x_label_area_size(axes.x_area)
        .y_label_area_size(axes.y_area)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if !axes.x_mesh {
        mesh.disable_x_mesh();
    }
    if !axes.y_mesh {
        mesh.disable_y_mesh();
    }
    if !axes.y_axis {
        mesh.disable_y_axis();
    }
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(if axes.grid {
            ShapeStyle::from(theme.grid)
        } else {
            TRANSPARENT.into()
        })
        .axis_style(theme.muted)
        .label_style(theme.muted_text(axes.label_size))
        .axis_desc_style(theme.text(12.0))
        .x_labels(axes.x_labels)
        .y_labels(axes.y_labels)
        .x_label_formatter(axes.x_fmt)
        .y_label_formatter(axes.y_fmt);
    // An axis without a description draws none (an empty one would still be measured).
    if !axes.x_desc.is_empty() {
        mesh.x_desc(axes.x_desc);
    }
    if !axes.y_desc.is_empty() {
        mesh.y_desc(axes.y_desc);
    }
    mesh.draw().map_err(err)?;
    Ok(chart)
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
    chart(area, theme, &Axes::new(title, x, y, x_desc, y_desc))
}

/// A polyline through `pts` (data coordinates), as plotters' `LineSeries` draws it.
#[inline(never)]
pub(crate) fn line(chart: &mut Chart<'_>, pts: &[Pt], style: ShapeStyle) -> Drawn {
    if pts.is_empty() {
        return Ok(());
    }
    chart
        .plotting_area()
        .draw(&PathElement::new(pts.to_vec(), style))
        .map_err(err)
}

/// A dashed polyline: `dash` px drawn, `gap` px left out.
#[inline(never)]
pub(crate) fn dashed(
    chart: &mut Chart<'_>,
    pts: &[Pt],
    dash: u32,
    gap: u32,
    style: ShapeStyle,
) -> Drawn {
    chart
        .draw_series(DashedLineSeries::new(pts.iter().copied(), dash, gap, style))
        .map_err(err)?;
    Ok(())
}

/// A filled disc of radius `r` px at each point.
#[inline(never)]
pub(crate) fn dots(chart: &mut Chart<'_>, pts: &[Pt], r: i32, style: ShapeStyle) -> Drawn {
    let area = chart.plotting_area();
    for &p in pts {
        area.draw(&Circle::new(p, r, style)).map_err(err)?;
    }
    Ok(())
}

/// Discs each with its own radius and style.
#[inline(never)]
pub(crate) fn discs(chart: &mut Chart<'_>, discs: &[(Pt, i32, ShapeStyle)]) -> Drawn {
    let area = chart.plotting_area();
    for &(p, r, s) in discs {
        area.draw(&Circle::new(p, r, s)).map_err(err)?;
    }
    Ok(())
}

/// A rectangle between two corners (data coordinates).
#[inline(never)]
pub(crate) fn rect(chart: &mut Chart<'_>, corners: [Pt; 2], style: ShapeStyle) -> Drawn {
    chart
        .plotting_area()
        .draw(&Rectangle::new(corners, style))
        .map_err(err)
}

/// Rectangles each with its own style (heatmap cells, bars).
#[inline(never)]
pub(crate) fn rects(chart: &mut Chart<'_>, cells: &[([Pt; 2], ShapeStyle)]) -> Drawn {
    let area = chart.plotting_area();
    for &(c, s) in cells {
        area.draw(&Rectangle::new(c, s)).map_err(err)?;
    }
    Ok(())
}

thread_local! {
    /// The 2D context of the canvas being drawn and its device pixels per CSS pixel (set by
    /// `Handle::draw` around a view's `draw`), for [`cloud`], which draws straight to it.
    static CONTEXT: RefCell<Option<(CanvasRenderingContext2d, f64)>> = const { RefCell::new(None) };
}

/// The context [`cloud`] draws on and its scale (`None` after the drawing).
pub(crate) fn set_context(ctx: Option<(CanvasRenderingContext2d, f64)>) {
    CONTEXT.with(|c| *c.borrow_mut() = ctx);
}

/// A point cloud: `xy` `(n, 2)` row-major in data coordinates, each point a square of `side`
/// CSS px in `color`, blended over what is drawn; points outside the plotting area are left
/// out. The plotting area's pixels are read once, the points blended into them in wasm, and
/// written back once (plotters makes one canvas call, its style formatted anew, per element,
/// and the canvas rasterizes each): 10^4 points in a few ms, what an animation of particles
/// needs.
#[inline(never)]
pub(crate) fn cloud(chart: &Chart<'_>, xy: &[f32], side: f64, color: RGBAColor) -> Drawn {
    let (xs, ys) = (chart.x_range(), chart.y_range());
    let (x0, y0) = chart.backend_coord(&(xs.start, ys.end));
    let (x1, y1) = chart.backend_coord(&(xs.end, ys.start));
    CONTEXT.with(|c| {
        let c = c.borrow();
        let (ctx, k) = c.as_ref().ok_or("no canvas to draw the cloud on")?;
        // The plotting area in device pixels.
        let (px0, py0) = ((x0 as f64 * k).round(), (y0 as f64 * k).round());
        let w = ((x1 as f64 * k).round() - px0).max(1.0) as usize;
        let h = ((y1 as f64 * k).round() - py0).max(1.0) as usize;
        let image = ctx
            .get_image_data(px0, py0, w as f64, h as f64)
            .map_err(|_| "cannot read the canvas")?;
        let mut data = image.data().0;
        let sx = w as f64 / (xs.end - xs.start);
        let sy = h as f64 / (ys.end - ys.start);
        let d = (side * k).round().max(1.0) as usize;
        let RGBAColor(r, g, b, a) = color;
        let a = (a * 256.0).round() as u32;
        for p in xy.chunks_exact(2) {
            let cx = (p[0] as f64 - xs.start) * sx - d as f64 / 2.0;
            let cy = (ys.end - p[1] as f64) * sy - d as f64 / 2.0;
            if !(cx >= 0.0
                && cy >= 0.0
                && cx < w.saturating_sub(d) as f64
                && cy < h.saturating_sub(d) as f64)
            {
                continue;
            }
            let (cx, cy) = (cx as usize, cy as usize);
            for row in cy..cy + d {
                for px in data[4 * (row * w + cx)..4 * (row * w + cx + d)].chunks_exact_mut(4) {
                    for (v, c) in px.iter_mut().zip([r, g, b]) {
                        *v = ((*v as u32 * (256 - a) + c as u32 * a) >> 8) as u8;
                    }
                }
            }
        }
        let image = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&data), w as u32, h as u32)
            .map_err(|_| "cannot make the cloud's image")?;
        ctx.put_image_data(&image, px0, py0)
            .map_err(|_| "cannot write the canvas".into())
    })
}

/// A filled polygon (data coordinates).
#[inline(never)]
pub(crate) fn polygon(chart: &mut Chart<'_>, pts: &[Pt], style: ShapeStyle) -> Drawn {
    chart
        .plotting_area()
        .draw(&Polygon::new(pts.to_vec(), style))
        .map_err(err)
}

/// Text anchored at a point in data coordinates (the style's `pos` says how).
#[inline(never)]
pub(crate) fn text(chart: &mut Chart<'_>, s: &str, at: Pt, style: &TextStyle<'_>) -> Drawn {
    chart
        .plotting_area()
        .draw(&Text::new(s, at, style.clone()))
        .map_err(err)
}

/// What a legend entry shows beside its label.
#[derive(Clone, Copy)]
pub(crate) enum Key {
    /// A short line (18 px) in this style.
    Line(ShapeStyle),
    /// A disc of this radius.
    Dot(ShapeStyle, i32),
    /// A 14 x 10 px box.
    Box(ShapeStyle),
}

thread_local! {
    /// The entries [`key`] added since the last [`chart`], for [`legend`] to draw.
    static KEYS: RefCell<Vec<(String, Key)>> = const { RefCell::new(Vec::new()) };
}

/// A legend entry; [`legend`] draws the entries, in the order they were added.
#[inline(never)]
pub(crate) fn key(_chart: &mut Chart<'_>, label: &str, key: Key) -> Drawn {
    KEYS.with(|k| k.borrow_mut().push((label.to_string(), key)));
    Ok(())
}

/// The legend entries added with [`key`], in the theme's colours at `pos`: a box inset 5 px
/// from that corner (or edge) of the plotting area, 10 px padding, a 30 px column for the
/// keys, 11 px labels on lines 1.25 em apart. Drawn here rather than by plotters' series
/// labels, whose default font is named by string (see [`font`]).
#[inline(never)]
pub(crate) fn legend(chart: &mut Chart<'_>, theme: &Theme, pos: SeriesLabelPosition) -> Drawn {
    use SeriesLabelPosition::*;
    let keys = KEYS.with(|k| std::mem::take(&mut *k.borrow_mut()));
    if keys.is_empty() {
        return Ok(());
    }
    let area = chart.plotting_area().strip_coord_spec();
    let style = theme.text(11.0).pos(Pos::new(HPos::Left, VPos::Center));
    let line = 11.0 * 1.25;
    let mut text_w = 0;
    for (label, _) in &keys {
        text_w = text_w.max(area.estimate_text_size(label, &style).map_err(err)?.0 as i32);
    }
    let (m, key_w) = (10, 30);
    let w = text_w + key_w + 2 * m;
    let h = (line * keys.len() as f64).round() as i32 + 2 * m;
    let (aw, ah) = area.dim_in_pixel();
    let (aw, ah) = (aw as i32, ah as i32);
    let x = match pos {
        UpperLeft | MiddleLeft | LowerLeft => 5,
        UpperMiddle | MiddleMiddle | LowerMiddle => (aw - w) / 2,
        UpperRight | MiddleRight | LowerRight => aw - w - 5,
        Coordinate(x, _) => x,
    };
    let y = match pos {
        UpperLeft | UpperMiddle | UpperRight => 5,
        MiddleLeft | MiddleMiddle | MiddleRight => (ah - h) / 2,
        LowerLeft | LowerMiddle | LowerRight => ah - h - 5,
        Coordinate(_, y) => y,
    };
    px_rect(&area, [(x, y), (x + w, y + h)], theme.bg.mix(0.9).filled())?;
    px_rect(&area, [(x, y), (x + w, y + h)], theme.grid.into())?;
    for (i, (label, k)) in keys.iter().enumerate() {
        let cy = y + m + (line * (i as f64 + 0.5)).round() as i32;
        let kx = x + m;
        match *k {
            Key::Line(s) => px_line(&area, &[(kx, cy), (kx + 18, cy)], s)?,
            Key::Dot(s, r) => px_circle(&area, (kx + 9, cy), r, s)?,
            Key::Box(s) => px_rect(&area, [(kx, cy - 5), (kx + 14, cy + 5)], s)?,
        }
        px_text(&area, label, (kx + key_w, cy), &style)?;
    }
    Ok(())
}

/// A polyline in an area's pixels.
#[inline(never)]
pub(crate) fn px_line(area: &Area, pts: &[Px], style: ShapeStyle) -> Drawn {
    area.draw(&PathElement::new(pts.to_vec(), style))
        .map_err(err)
}

/// A rectangle in an area's pixels.
#[inline(never)]
pub(crate) fn px_rect(area: &Area, corners: [Px; 2], style: ShapeStyle) -> Drawn {
    area.draw(&Rectangle::new(corners, style)).map_err(err)
}

/// A disc in an area's pixels.
#[inline(never)]
pub(crate) fn px_circle(area: &Area, at: Px, r: i32, style: ShapeStyle) -> Drawn {
    area.draw(&Circle::new(at, r, style)).map_err(err)
}

/// A filled polygon in an area's pixels.
#[inline(never)]
pub(crate) fn px_polygon(area: &Area, pts: &[Px], style: ShapeStyle) -> Drawn {
    area.draw(&Polygon::new(pts.to_vec(), style)).map_err(err)
}

/// Text in an area's pixels (the style's `pos` says how it is anchored).
#[inline(never)]
pub(crate) fn px_text(area: &Area, s: &str, at: Px, style: &TextStyle<'_>) -> Drawn {
    area.draw(&Text::new(s, at, style.clone())).map_err(err)
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
