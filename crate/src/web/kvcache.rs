//! Drawing for `<ml-kv-cache>`: panel 0 the cache of every preset at the chosen context,
//! panel 1 the chosen model's cache against context as MHA, as published, and as MQA, with
//! the memory a GPU has left beside the weights.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::attn_draw::{chart, compact, legend, legend_layout, mix, note, Mark};
use super::plot::{dashed, dots, line, rect, text, Area, Theme};
use super::{View, WebInfo};
use crate::json::Json;
use crate::kvcache::{compute, human_bytes, Config, Data, PRESETS};
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "Every model's cache at this context length, batch and type",
        "The chosen model's cache against context length: MHA, GQA as published, MQA",
    ],
    equation: r#"<math display="block"><mrow><mtext>bytes</mtext><mo>=</mo><mn>2</mn><mo>×</mo><msub><mi>n</mi><mtext>layers</mtext></msub><mo>×</mo><msub><mi data-key="kv-heads">n</mi><mtext>kv</mtext></msub><mo>×</mo><msub><mi>d</mi><mtext>head</mtext></msub><mo>×</mo><mi data-key="context">N</mi><mo>×</mo><mi data-key="batch">B</mi><mo>×</mo><mi data-key="dtype">bytes</mi></mrow></math>"#,
};

const GIB: f64 = (1u64 << 30) as f64;
/// Height of one line of the text above panel 0's bars.
const LINE: f64 = 18.0;

#[derive(Default)]
pub(crate) struct KvCacheView {
    data: Option<Data>,
}

impl KvCacheView {
    fn data(&self) -> &Data {
        self.data
            .as_ref()
            .expect("update() runs before any view is read")
    }
}

/// Words into lines of at most `width` CSS px of 12 px text (about 6.4 px a character).
pub(crate) fn wrap(text: &str, width: f64) -> Vec<String> {
    let max = ((width - 20.0) / 6.4).max(20.0) as usize;
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().unwrap();
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > max {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

/// The sentences above the bars: the formula with this model's numbers, and what fits.
fn header(d: &Data) -> Vec<String> {
    let c = &d.config;
    let p = c.preset;
    let mut out = vec![format!(
        "{}: 2 × {} layers × {} K/V heads × {} dims × {} B = {} per token; × {} tokens × batch {} = {}.",
        p.label,
        p.n_layers,
        d.n_kv_heads,
        p.head_dim,
        c.bytes_per_element,
        human_bytes(d.bytes_per_token as f64),
        group(c.context),
        c.batch,
        human_bytes(d.bytes as f64)
    )];
    let beside = if d.sequences_fit_with_weights == 0 {
        format!(
            "beside its bf16 weights ({:.0} GB) none does",
            d.weight_bytes / 1e9
        )
    } else {
        format!(
            "beside its bf16 weights ({:.0} GB), {}",
            d.weight_bytes / 1e9,
            d.sequences_fit_with_weights
        )
    };
    out.push(format!(
        "An empty {} GiB GPU holds {} such {}-token caches; {beside}.",
        c.gpu_gib,
        d.sequences_fit,
        group(c.context)
    ));
    if let Some(n) = &d.note {
        out.push(format!("Note: {n}."));
    }
    out
}

fn header_lines(d: &Data, width: f64) -> Vec<String> {
    header(d).iter().flat_map(|t| wrap(t, width)).collect()
}

fn draw_bars(area: &Area, theme: &Theme, d: &Data) -> Result<(), String> {
    let c = &d.config;
    let (w, _) = area.dim_in_pixel();
    let lines = header_lines(d, f64::from(w));
    let (top, plot) = area.split_vertically((LINE * lines.len() as f64 + 8.0) as u32);
    for (i, line) in lines.iter().enumerate() {
        note(&top, theme, line, 4 + (LINE as i32) * i as i32)?;
    }
    let n = d.bars.len();
    let max_gib = d
        .bars
        .iter()
        .map(|b| b.bytes as f64 / GIB)
        .fold(c.gpu_gib, f64::max)
        * 1.22;
    let labels: Vec<String> = d.bars.iter().map(|b| b.label.to_string()).collect();
    let y_fmt = |v: &f64| {
        let i = (-v - 0.5).round();
        if i >= 0.0 && (i as usize) < labels.len() && (-v - 0.5 - i).abs() < 0.01 {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    let label_w = if w < 420 { 104 } else { 128 };
    let mut ch = chart(
        &plot,
        theme,
        "",
        0.0..max_gib,
        -(n as f64)..0.0,
        ["cache, GiB", ""],
        [(6, &|v| compact(*v)), (n * 2 + 1, &y_fmt)],
        label_w,
    )?;
    for (i, b) in d.bars.iter().enumerate() {
        let gib = b.bytes as f64 / GIB;
        let y = -(i as f64);
        let color = if b.selected {
            theme.accent
        } else {
            theme.muted
        };
        rect(
            &mut ch,
            [(0.0, y - 0.2), (gib, y - 0.8)],
            color.mix(if b.selected { 1.0 } else { 0.55 }).filled(),
        )?;
        text(
            &mut ch,
            &format!(" {} ({} K/V)", human_bytes(b.bytes as f64), b.n_kv_heads),
            (gib, y - 0.5),
            &theme.text(11.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    // The GPU's memory as a reference line.
    dashed(
        &mut ch,
        &[(c.gpu_gib, 0.0), (c.gpu_gib, -(n as f64))],
        5,
        4,
        theme.warn.stroke_width(2),
    )?;
    text(
        &mut ch,
        &format!("{} GiB GPU ", c.gpu_gib),
        (c.gpu_gib, -(n as f64) + 0.05),
        &theme
            .text(11.0)
            .color(&theme.warn)
            .pos(Pos::new(HPos::Right, VPos::Bottom)),
    )?;
    Ok(())
}

pub(crate) fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Context lengths as people say them: 256, 1K, 32K (K = 1024 tokens).
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

/// Colours of the curves: the palette without its orange, which marks the GPU's memory.
fn curve_color(theme: &Theme, i: usize) -> RGBColor {
    theme.palette[[0, 2, 5, 3][i % 4]]
}

fn curve_legend(theme: &Theme, d: &Data) -> Vec<(Mark, String)> {
    let c = &d.config;
    let mut items: Vec<(Mark, String)> = d
        .curves
        .iter()
        .enumerate()
        .map(|(i, cv)| (Mark::Line(curve_color(theme, i)), cv.label.clone()))
        .collect();
    items.push((Mark::Dashed(theme.warn), format!("{} GiB GPU", c.gpu_gib)));
    if c.gpu_gib * GIB > d.weight_bytes {
        items.push((
            Mark::Dashed(mix(theme.warn, theme.bg, 0.5)),
            "GPU minus bf16 weights".into(),
        ));
    }
    items.push((
        Mark::Dot(theme.fg),
        format!("now: {}", human_bytes(d.bytes as f64)),
    ));
    items
}

fn legend_height(theme: &Theme, d: &Data, width: f64) -> f64 {
    let labels: Vec<String> = curve_legend(theme, d).into_iter().map(|i| i.1).collect();
    legend_layout(&labels, width).1 + 4.0
}

fn draw_curves(area: &Area, theme: &Theme, d: &Data) -> Result<(), String> {
    let c = &d.config;
    let (w, _) = area.dim_in_pixel();
    let (top, area) = area.split_vertically(legend_height(theme, d, f64::from(w)) as u32);
    legend(&top, theme, &curve_legend(theme, d))?;
    let free = c.gpu_gib * GIB - d.weight_bytes;
    let all: Vec<f64> = d
        .curves
        .iter()
        .flat_map(|cv| cv.points.iter().map(|p| p.1))
        .chain([c.gpu_gib * GIB, free, d.bytes as f64])
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .log2()
        .floor();
    let hi = all.iter().copied().fold(0.0, f64::max).log2().ceil() + 1.0;
    // A label every `every` powers of two, at most eight of them.
    let every = ((hi - lo) / 7.0).ceil().max(1.0);
    let y_fmt = move |v: &f64| {
        let r = v.round();
        if (v - r).abs() > 1e-9 || (r % every).abs() > 1e-9 {
            return String::new();
        }
        human_bytes(2f64.powf(r))
    };
    let (x0, x1) = (8.0, 17.0);
    let title = if w < 560 {
        format!("{}, batch {}, {}", c.preset.label, c.batch, c.dtype)
    } else {
        format!(
            "{}, batch {}, {}: the cache grows linearly with N",
            c.preset.label, c.batch, c.dtype
        )
    };
    let mut ch = chart(
        &area,
        theme,
        &title,
        x0..x1,
        lo..hi,
        ["context length N, tokens (log scale)", "cache (log scale)"],
        [(10, &context_label), ((hi - lo) as usize + 1, &y_fmt)],
        64,
    )?;
    for (i, cv) in d.curves.iter().enumerate() {
        let pts: Vec<(f64, f64)> = cv
            .points
            .iter()
            .map(|&(n, b)| (n.log2(), b.log2()))
            .collect();
        line(&mut ch, &pts, curve_color(theme, i).stroke_width(2))?;
    }
    let gpu = (c.gpu_gib * GIB).log2();
    dashed(
        &mut ch,
        &[(x0, gpu), (x1, gpu)],
        6,
        4,
        theme.warn.stroke_width(2),
    )?;
    if free > 0.0 {
        let y = free.log2();
        dashed(
            &mut ch,
            &[(x0, y), (x1, y)],
            6,
            4,
            mix(theme.warn, theme.bg, 0.5).stroke_width(2),
        )?;
    }
    dots(
        &mut ch,
        &[((c.context as f64).log2(), (d.bytes as f64).log2())],
        5,
        theme.fg.filled(),
    )?;
    Ok(())
}

impl View for KvCacheView {
    fn update(&mut self, params: &Params) {
        self.data = Some(compute(&Config::from_params(params)));
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
        match panel {
            0 => {
                let lines = header_lines(self.data(), width).len() as f64;
                LINE * lines + 8.0 + 46.0 + 30.0 * PRESETS.len() as f64
            }
            _ => 320.0 + legend_height(&Theme::new(false), self.data(), width),
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let d = self.data();
        match panel {
            0 => draw_bars(area, theme, d),
            _ => draw_curves(area, theme, d),
        }
    }

    fn describe(&self, panel: usize) -> String {
        let d = self.data();
        let c = &d.config;
        match panel {
            0 => format!(
                "{} keeps {} per token with {} K/V heads; {} tokens times batch {} in {} is {}. {} such caches fit on an empty {} GiB GPU.",
                c.preset.label,
                human_bytes(d.bytes_per_token as f64),
                d.n_kv_heads,
                c.context,
                c.batch,
                c.dtype,
                human_bytes(d.bytes as f64),
                d.sequences_fit,
                c.gpu_gib
            ),
            _ => format!(
                "Cache of {} against context length from 256 to 131072 tokens for {}.",
                c.preset.label,
                d.curves
                    .iter()
                    .map(|cv| cv.label.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
