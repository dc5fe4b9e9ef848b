//! Drawing for `<ml-dpo>`: training curves and calibration, implicit against true reward,
//! the logistic-regression view, KL at three betas, and the learned policy beside pi*.
//! Also the small chart helpers `<ml-grpo>` shares (categorical and log-scale axes).

use std::ops::Range;

use plotters::prelude::*;

pub(super) use super::plot::legend;
use super::plot::{
    chart as plot_chart, dashed, discs, dots, key, line, padded_range, px_rect, px_text, rects,
    tick, Area, Axes, Chart, Key, Pt, Theme,
};
use super::{now_ms, TextInput, View, WebInfo};
use crate::dpo::{aggregate, pairs_csv, parse_pairs_csv, sigmoid, Config, Pair, Source, Trainer};
use crate::json::Json;
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "Training: the DPO loss, preference accuracy and calibration",
        "The implicit reward β log π/π_ref against the hidden true reward",
        "DPO is logistic regression: σ(margin), each pair a point",
        "KL(π ‖ π_ref) over training: small β drifts far, large β stays close",
        "The learned policy beside the closed form π* ∝ π_ref exp(r/β)",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>L</mi><mtext>DPO</mtext></msub><mo>=</mo><mo>−</mo><mfrac><mn>1</mn><mi data-key="pairs">N</mi></mfrac><munder><mo>∑</mo><mrow><mo>(</mo><mi>x</mi><mo>,</mo><msub><mi>y</mi><mi>w</mi></msub><mo>,</mo><msub><mi>y</mi><mi>l</mi></msub><mo>)</mo></mrow></munder><mi>log</mi><mi>σ</mi><mrow><mo>(</mo><mi data-key="beta">β</mi><mi>log</mi><mfrac><mrow><mi>π</mi><mo>(</mo><msub><mi>y</mi><mi>w</mi></msub><mo>|</mo><mi>x</mi><mo>)</mo></mrow><mrow><msub><mi>π</mi><mtext>ref</mtext></msub><mo>(</mo><msub><mi>y</mi><mi>w</mi></msub><mo>|</mo><mi>x</mi><mo>)</mo></mrow></mfrac><mo>−</mo><mi data-key="beta">β</mi><mi>log</mi><mfrac><mrow><mi>π</mi><mo>(</mo><msub><mi>y</mi><mi>l</mi></msub><mo>|</mo><mi>x</mi><mo>)</mo></mrow><mrow><msub><mi>π</mi><mtext>ref</mtext></msub><mo>(</mo><msub><mi>y</mi><mi>l</mi></msub><mo>|</mo><mi>x</mi><mo>)</mo></mrow></mfrac><mo>)</mo></mrow></mrow></math><math display="block"><mrow><msup><mi>π</mi><mo>*</mo></msup><mo>(</mo><mi>y</mi><mo>|</mo><mi>x</mi><mo>)</mo><mo>=</mo><mfrac><mn>1</mn><mrow><mi>Z</mi><mo>(</mo><mi>x</mi><mo>)</mo></mrow></mfrac><msub><mi>π</mi><mtext>ref</mtext></msub><mo>(</mo><mi>y</mi><mo>|</mo><mi>x</mi><mo>)</mo><mi>exp</mi><mrow><mo>(</mo><mi>r</mi><mo>(</mo><mi>x</mi><mo>,</mo><mi>y</mi><mo>)</mo><mo>/</mo><mi data-key="beta">β</mi><mo>)</mo></mrow><mspace width="1.5em"/><mtext>pairs: </mtext><mi>P</mi><mo>(</mo><mi>a</mi><mo>≻</mo><mi>b</mi><mo>)</mo><mo>=</mo><mi>σ</mi><mo>(</mo><mi>r</mi><mo>(</mo><mi>x</mi><mo>,</mo><mi>a</mi><mo>)</mo><mo>−</mo><mi>r</mi><mo>(</mo><mi>x</mi><mo>,</mo><mi>b</mi><mo>)</mo><mo>)</mo></mrow></math>"#,
};

const TEXT: TextInput = TextInput {
    label: "Preference pairs (CSV: prompt,chosen,rejected)",
    doc: "One pair per line with 0-based indices: the prompt (0 to P−1), then the chosen and the rejected response (0 to M−1). Apply trains on these pairs instead of the Bradley-Terry ones; the hidden reward and π* stay as they are. Edit a row to flip a preference.",
    accept: ".csv,text/csv,text/plain",
};

/// Sub-plots sit side by side from this width (CSS px) up, stacked below it.
pub(super) const WIDE: f64 = 560.0;
/// Three sub-plots in a row need this much width.
pub(super) const WIDE3: f64 = 900.0;

/// A titled chart like `plot::frame`, with its own tick formatters and label counts (for
/// categorical axes and log scales), and vertical grid lines only when `x_mesh`.
#[allow(clippy::too_many_arguments)]
pub(super) fn chart<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
    x_labels: usize,
    x_mesh: bool,
) -> Result<Chart<'a>, String> {
    plot_chart(
        area,
        theme,
        &Axes {
            x_labels,
            x_fmt,
            y_fmt,
            // Bars and cells: vertical grid lines would only cut through them.
            x_mesh,
            ..Axes::new(title, x, y, x_desc, y_desc)
        },
    )
}

/// A line chart against training steps.
pub(super) fn step_chart<'a>(
    area: &'a Area,
    theme: &Theme,
    title: &str,
    steps: f64,
    y: Range<f64>,
    y_desc: &str,
) -> Result<Chart<'a>, String> {
    chart(
        area,
        theme,
        title,
        0.0..steps.max(1.0),
        y,
        "step",
        y_desc,
        &|v| tick(*v),
        &|v| tick(*v),
        5,
        true,
    )
}

/// Points (x_i, y_i) of two equally long columns (the shorter one decides).
pub(super) fn zip(xs: &[f64], ys: &[f64]) -> Vec<Pt> {
    xs.iter().copied().zip(ys.iter().copied()).collect()
}

/// Approximate width in CSS px of `text` at 12 px sans-serif.
fn text_width(text: &str) -> f64 {
    6.6 * text.chars().count() as f64
}

/// Legend entries laid out in rows across `width`: (row, x) of each entry.
fn strip_layout(labels: &[&str], width: f64) -> Vec<(usize, f64)> {
    let (mut row, mut x) = (0, 12.0);
    labels
        .iter()
        .map(|l| {
            let w = 34.0 + text_width(l);
            if x + w > width - 8.0 && x > 12.0 {
                row += 1;
                x = 12.0;
            }
            let at = (row, x);
            x += w;
            at
        })
        .collect()
}

/// Height of a legend strip (see [`draw_strip`]).
pub(super) fn strip_height(labels: &[&str], width: f64) -> f64 {
    let rows = strip_layout(labels, width).last().map_or(0, |r| r.0 + 1);
    8.0 + 18.0 * rows as f64
}

/// A legend drawn above a chart that has no room for one inside: a colour box per entry.
pub(super) fn draw_strip(
    area: &Area,
    theme: &Theme,
    items: &[(RGBColor, &str)],
    width: f64,
) -> Result<(), String> {
    let labels: Vec<&str> = items.iter().map(|i| i.1).collect();
    for ((color, label), (row, x)) in items.iter().zip(strip_layout(&labels, width)) {
        let (x, y) = (x as i32, 10 + 18 * row as i32);
        px_rect(area, [(x, y - 5), (x + 14, y + 5)], color.filled())?;
        px_text(
            area,
            label,
            (x + 20, y),
            &theme.text(12.0).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        )?;
    }
    Ok(())
}

/// Areas for `n` sub-plots: in a row when there is room, stacked otherwise.
pub(super) fn split_n(area: &Area, n: usize, width: f64) -> Vec<Area> {
    let row = if n >= 3 { WIDE3 } else { WIDE };
    if width >= row {
        area.split_evenly((1, n))
    } else {
        area.split_evenly((n, 1))
    }
}

/// Panel height for `n` sub-plots at this width.
pub(super) fn height_n(n: usize, width: f64, row_h: f64, stacked_h: f64) -> f64 {
    let row = if n >= 3 { WIDE3 } else { WIDE };
    if width >= row {
        row_h
    } else {
        n as f64 * stacked_h
    }
}

/// The prompt and response shapes that decide the data; changing them starts a new run.
type Shape = (usize, usize, usize, u64);

#[derive(Default)]
pub(crate) struct DpoView {
    trainer: Option<Trainer>,
    shape: Option<Shape>,
    /// Pairs given as text; `None`: the Bradley-Terry pairs.
    custom: Option<Vec<Pair>>,
}

impl DpoView {
    fn t(&self) -> &Trainer {
        self.trainer
            .as_ref()
            .expect("update() runs before any view is read")
    }

    fn shape(&self, c: &Config) -> Shape {
        let n = if self.custom.is_some() { 0 } else { c.n_pairs };
        (c.n_prompts, c.n_responses, n, c.seed)
    }

    fn rebuild(&mut self, c: &Config) {
        self.trainer = Some(Trainer::new(c, self.custom.as_deref()));
        self.shape = Some(self.shape(c));
    }

    fn progress(&self, error: Option<String>) -> Json {
        let t = self.t();
        let h = &t.history;
        let last = h.step.len() - 1;
        Json::obj([
            ("done", Json::Bool(t.done())),
            (
                "fraction",
                Json::Num((t.step as f64 / t.config.total_steps.max(1) as f64).min(1.0)),
            ),
            (
                "text",
                Json::str(format!(
                    "step {} / {} · loss {:.3} · accuracy {:.0}% · KL {:.3}",
                    t.step,
                    t.config.total_steps,
                    h.loss[last],
                    100.0 * h.accuracy[last],
                    h.kl[last]
                )),
            ),
            ("error", error.map_or(Json::Null, Json::str)),
        ])
    }
}

fn draw_training(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let h = &t.history;
    let steps = t.config.total_steps.max(t.step) as f64;
    let parts = split_n(area, 3, width);
    let xs: Vec<f64> = h.step.iter().map(|&s| s as f64).collect();
    let ln2 = std::f64::consts::LN_2;

    // The loss, from ln 2 (every margin 0) down.
    let top = h
        .loss
        .iter()
        .fold(ln2, |m, &l| if l.is_finite() { m.max(l) } else { m });
    let mut c = step_chart(&parts[0], theme, "DPO loss", steps, 0.0..top * 1.1, "loss")?;
    let (thin, thick) = (theme.muted.stroke_width(1), theme.accent.stroke_width(2));
    dashed(&mut c, &[(0.0, ln2), (steps, ln2)], 5, 4, thin)?;
    key(&mut c, "ln 2: every margin 0", Key::Line(thin))?;
    line(&mut c, &zip(&xs, &h.loss), thick)?;
    key(&mut c, "L_DPO on the training pairs", Key::Line(thick))?;
    legend(&mut c, theme, SeriesLabelPosition::LowerLeft)?;

    // Preference accuracy, against the share of labels that agree with the hidden reward.
    let agree = t.agrees_with_reward();
    let agree_frac = agree.iter().filter(|&&a| a).count() as f64 / agree.len().max(1) as f64;
    let mut c = step_chart(
        &parts[1],
        theme,
        "Preference accuracy",
        steps,
        0.0..1.05,
        "pairs ranked right",
    )?;
    let agree_style = theme.palette[2].stroke_width(2);
    dashed(
        &mut c,
        &[(0.0, agree_frac), (steps, agree_frac)],
        5,
        4,
        agree_style,
    )?;
    key(
        &mut c,
        &format!("labels agreeing with r: {:.0}%", 100.0 * agree_frac),
        Key::Line(agree_style),
    )?;
    line(&mut c, &zip(&xs, &h.accuracy), thick)?;
    key(&mut c, "margin > 0", Key::Line(thick))?;
    legend(&mut c, theme, SeriesLabelPosition::LowerRight)?;

    // Reliability diagram: predicted P(first preferred) against how often it was.
    let (bins, ece) = t.calibration();
    let mut c = chart(
        &parts[2],
        theme,
        &format!("Calibration (ECE {ece:.3})"),
        0.0..1.0,
        0.0..1.0,
        "predicted σ(h_a − h_b)",
        "observed frequency",
        &|v| tick(*v),
        &|v| tick(*v),
        6,
        true,
    )?;
    dashed(&mut c, &[(0.0, 0.0), (1.0, 1.0)], 5, 4, thin)?;
    key(&mut c, "perfectly calibrated", Key::Line(thin))?;
    let filled: Vec<_> = bins.iter().filter(|b| b.count > 0).collect();
    let most = filled.iter().map(|b| b.count).max().unwrap_or(1) as f64;
    let pts: Vec<Pt> = filled.iter().map(|b| (b.predicted, b.observed)).collect();
    line(&mut c, &pts, thick)?;
    key(&mut c, "bins (area ∝ pairs)", Key::Line(thick))?;
    let bubbles: Vec<_> = filled
        .iter()
        .map(|b| {
            let r = 2.0 + 6.0 * (b.count as f64 / most).sqrt();
            ((b.predicted, b.observed), r as i32, theme.accent.filled())
        })
        .collect();
    discs(&mut c, &bubbles)?;
    legend(&mut c, theme, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// Subtract each row's mean (rewards are identified only up to a per-prompt constant).
fn centred_rows(a: &ndarray::Array2<f64>) -> ndarray::Array2<f64> {
    let mut out = a.clone();
    for mut row in out.rows_mut() {
        let m = row.mean().unwrap_or(0.0);
        row.mapv_inplace(|v| v - m);
    }
    out
}

fn draw_implicit(area: &Area, theme: &Theme, t: &Trainer) -> Result<(), String> {
    let r = centred_rows(&t.problem.true_reward);
    let h = centred_rows(&t.implicit_reward());
    let lim = padded_range([r.as_slice().unwrap_or(&[]), h.as_slice().unwrap_or(&[])]);
    let span = lim.start.abs().max(lim.end.abs()).max(0.5);
    let mut c = chart(
        area,
        theme,
        "Both centred per prompt",
        -span..span,
        -span..span,
        "true reward r(x, y) − mean over y",
        "β log π/π_ref − mean over y",
        &|v| tick(*v),
        &|v| tick(*v),
        7,
        true,
    )?;
    let thin = theme.muted.stroke_width(1);
    dashed(&mut c, &[(-span, -span), (span, span)], 5, 4, thin)?;
    key(&mut c, "implicit = true", Key::Line(thin))?;
    for x in 0..r.nrows() {
        let color = theme.palette[x % theme.palette.len()];
        let pts: Vec<Pt> = (0..r.ncols()).map(|y| (r[[x, y]], h[[x, y]])).collect();
        dots(&mut c, &pts, 5, color.filled())?;
        key(&mut c, &format!("prompt {x}"), Key::Dot(color.filled(), 5))?;
    }
    legend(&mut c, theme, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

const SIGMOID_LABELS: [&str; 3] = [
    "σ(m)",
    "label agrees with the true reward",
    "label against it (Bradley-Terry noise), area ∝ pairs",
];

fn draw_sigmoid(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let (top, area) = area.split_vertically(strip_height(&SIGMOID_LABELS, width) as u32);
    let items: Vec<(RGBColor, &str)> = [theme.muted, theme.accent, theme.warn]
        .into_iter()
        .zip(SIGMOID_LABELS)
        .collect();
    draw_strip(&top, theme, &items, width)?;
    let area = &area;
    let margins = t.margins();
    let lim = margins
        .iter()
        .filter(|m| m.is_finite())
        .fold(4.0f64, |a, m| a.max(m.abs() * 1.1));
    let mut c = chart(
        area,
        theme,
        "Each pair on σ(m); its loss is −log σ(m)",
        -lim..lim,
        -0.02..1.05,
        "margin m = h(y_w) − h(y_l),  h = β log π/π_ref",
        "σ(m) = P(chosen ≻ rejected)",
        &|v| tick(*v),
        &|v| tick(*v),
        7,
        true,
    )?;
    dashed(
        &mut c,
        &[(0.0, 0.0), (0.0, 1.0)],
        5,
        4,
        theme.muted.stroke_width(1),
    )?;
    let n = 241;
    let curve: Vec<Pt> = (0..n)
        .map(|i| {
            let m = -lim + 2.0 * lim * i as f64 / (n - 1) as f64;
            (m, sigmoid(m))
        })
        .collect();
    line(&mut c, &curve, theme.muted.stroke_width(2))?;
    // Identical pairs sit on one point: draw each distinct pair once, its area by its count.
    let (unique, weights) = aggregate(&t.pairs);
    let h = t.implicit_reward();
    let most = weights.iter().fold(0.0f64, |a, &b| a.max(b));
    let r = &t.problem.true_reward;
    for (agrees, color) in [(true, theme.accent), (false, theme.warn)] {
        let points: Vec<_> = unique
            .iter()
            .zip(&weights)
            .filter(|(p, _)| (r[[p.prompt, p.chosen]] >= r[[p.prompt, p.rejected]]) == agrees)
            .map(|(p, &w)| {
                let m = h[[p.prompt, p.chosen]] - h[[p.prompt, p.rejected]];
                let size = 2.5 + 5.5 * (w / most).sqrt();
                (m, size)
            })
            .collect();
        let style = color.mix(0.75).filled();
        let points: Vec<_> = points
            .iter()
            .map(|&(m, s)| ((m, sigmoid(m)), s as i32, style))
            .collect();
        discs(&mut c, &points)?;
    }
    Ok(())
}

fn draw_kl(area: &Area, theme: &Theme, t: &Trainer) -> Result<(), String> {
    let h = &t.history;
    let steps = t.config.total_steps.max(t.step) as f64;
    let runs: Vec<_> = std::iter::once(&t.main).chain(&t.companions).collect();
    let top = runs
        .iter()
        .flat_map(|r| r.kl.iter())
        .fold(0.05f64, |a, &k| if k.is_finite() { a.max(k) } else { a });
    let mut c = step_chart(
        area,
        theme,
        "KL(π ‖ π_ref) at β/4, β and 4β",
        steps,
        0.0..top * 1.1,
        "KL (nats)",
    )?;
    let names = ["β", "β/4", "4β"];
    let colors = [theme.accent, theme.warn, theme.palette[2]];
    let widths = [3, 2, 2];
    for (i, run) in runs.iter().enumerate() {
        let style = colors[i].stroke_width(widths[i]);
        let pts: Vec<Pt> = h
            .step
            .iter()
            .map(|&s| s as f64)
            .zip(run.kl.iter().copied())
            .collect();
        line(&mut c, &pts, style)?;
        key(
            &mut c,
            &format!("{} = {}", names[i], tick(run.beta)),
            Key::Line(style),
        )?;
    }
    legend(&mut c, theme, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

const POLICY_LABELS: [&str; 3] = [
    "π_ref (reference)",
    "π learned by DPO",
    "π* ∝ π_ref exp(r/β)",
];

fn draw_policies(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let (top, area) = area.split_vertically(strip_height(&POLICY_LABELS, width) as u32);
    let colors = [theme.muted, theme.accent, theme.palette[2]];
    let items: Vec<(RGBColor, &str)> = colors.into_iter().zip(POLICY_LABELS).collect();
    draw_strip(&top, theme, &items, width)?;
    let (np, nr) = (t.problem.n_prompts(), t.problem.n_responses());
    let pref = t.problem.ref_policy();
    let pi = t.learned_policy();
    let star = t.closed_form_policy();
    // Slot of response y of prompt x, with a one-slot gap between prompts.
    let slot = |x: usize, y: usize| (x * (nr + 1) + y) as f64;
    let x_max = slot(np - 1, nr - 1) + 1.0;
    let top = [&pref, &pi, &star]
        .iter()
        .flat_map(|a| a.iter())
        .fold(0.1f64, |a, &p| a.max(p));
    let groups = nr + 1;
    let centre = (nr - 1) / 2;
    let mut c = chart(
        &area,
        theme,
        &format!("π_ref, the learned π and π* at β = {}", tick(t.main.beta)),
        -0.6..x_max - 0.4,
        0.0..(top * 1.08).min(1.02),
        "responses y = 0, 1, … of each prompt x",
        "probability",
        &|v| {
            let i = v.round() as usize;
            let (x, y) = (i / groups, i % groups);
            if (v - v.round()).abs() < 1e-6 && y == centre {
                format!("prompt {x}")
            } else {
                String::new()
            }
        },
        &|v| tick(*v),
        x_max.ceil() as usize + 1,
        false,
    )?;
    let w = 0.27;
    for (k, probs) in [&pref, &pi, &star].iter().enumerate() {
        let color = colors[k];
        let mut bars = Vec::with_capacity(np * nr);
        for x in 0..np {
            for y in 0..nr {
                let left = slot(x, y) - 0.4 + k as f64 * w;
                bars.push((
                    [(left, 0.0), (left + w * 0.92, probs[[x, y]])],
                    color.filled(),
                ));
            }
        }
        rects(&mut c, &bars)?;
    }
    Ok(())
}

impl View for DpoView {
    fn update(&mut self, params: &Params) {
        let c = Config::from_params(params);
        if self.trainer.is_none() || self.shape != Some(self.shape(&c)) {
            self.rebuild(&c);
        } else if let Some(t) = &mut self.trainer {
            // beta, the learning rate and the length act from the next step on.
            t.set_hyperparameters(&c);
        }
    }

    fn data(&self) -> Json {
        self.t().to_json()
    }

    fn panel_json(&self, panel: usize) -> Json {
        self.t().panel_json(panel)
    }

    fn panel_csv(&self, panel: usize) -> String {
        self.t().panel_csv(panel)
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        match panel {
            0 => height_n(3, width, 290.0, 250.0),
            1 => {
                if width >= WIDE {
                    360.0
                } else {
                    320.0
                }
            }
            2 => strip_height(&SIGMOID_LABELS, width) + if width >= WIDE { 340.0 } else { 300.0 },
            3 => 300.0,
            _ => 300.0 + strip_height(&POLICY_LABELS, width),
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let t = self.t();
        let (w, _) = area.dim_in_pixel();
        match panel {
            0 => draw_training(area, theme, t, f64::from(w)),
            1 => draw_implicit(area, theme, t),
            2 => draw_sigmoid(area, theme, t, f64::from(w)),
            3 => draw_kl(area, theme, t),
            _ => draw_policies(area, theme, t, f64::from(w)),
        }
    }

    fn describe(&self, panel: usize) -> String {
        let t = self.t();
        let h = &t.history;
        let last = h.step.len() - 1;
        let beta = t.main.beta;
        match panel {
            0 => format!(
                "After {} of {} steps on {} pairs the DPO loss is {:.3} (ln 2 = 0.693 at the start), {:.0}% of pairs are ranked right, and the expected calibration error is {:.3}.",
                t.step,
                t.config.total_steps,
                t.pairs.len(),
                h.loss[last],
                100.0 * h.accuracy[last],
                h.ece[last]
            ),
            1 => {
                let r = centred_rows(&t.problem.true_reward);
                let hr = centred_rows(&t.implicit_reward());
                let worst = (&r - &hr).iter().fold(0.0f64, |a, d| a.max(d.abs()));
                format!(
                    "Implicit reward β log π/π_ref against the true reward for {} responses, both centred per prompt; the largest gap is {worst:.3}.",
                    r.len()
                )
            }
            2 => {
                let m = t.margins();
                let neg = m.iter().filter(|&&v| v < 0.0).count();
                format!(
                    "The sigmoid σ(m) with each of the {} pairs at its margin; {neg} pairs have a negative margin (ranked the wrong way round).",
                    m.len()
                )
            }
            3 => format!(
                "KL to the reference over training at β = {}, β/4 and 4β: now {:.3}, {:.3} and {:.3} nats.",
                tick(beta),
                t.main.kl.last().copied().unwrap_or(0.0),
                t.companions[0].kl.last().copied().unwrap_or(0.0),
                t.companions[1].kl.last().copied().unwrap_or(0.0)
            ),
            _ => {
                let gap = (&t.learned_policy() - &t.closed_form_policy())
                    .iter()
                    .fold(0.0f64, |a, d| a.max(d.abs()));
                format!(
                    "Bars of the reference, learned and closed-form policies for each prompt and response at β = {}; the largest gap between learned and closed form is {gap:.3}.",
                    tick(beta)
                )
            }
        }
    }

    fn step(&mut self, _params: &Params, budget_ms: f64) -> Option<Json> {
        let start = now_ms();
        let t = self.trainer.as_mut()?;
        let mut error = None;
        while !t.done() {
            if let Err(e) = t.train(1) {
                error = Some(e);
                break;
            }
            if now_ms() - start >= budget_ms {
                break;
            }
        }
        Some(self.progress(error))
    }

    fn restart(&mut self, params: &Params) {
        let c = Config::from_params(params);
        self.rebuild(&c);
    }

    fn text_input(&self) -> Option<&'static TextInput> {
        Some(&TEXT)
    }

    fn text(&self) -> String {
        pairs_csv(&self.t().pairs)
    }

    fn set_text(&mut self, params: &Params, text: &str) -> Result<String, String> {
        let c = Config::from_params(params);
        if text.trim().is_empty() {
            self.custom = None;
            self.rebuild(&c);
            return Ok(format!(
                "using {} Bradley-Terry pairs drawn from the hidden reward",
                c.n_pairs
            ));
        }
        let rows = parse_pairs_csv(text)?;
        let candidate = Trainer::new(&c, Some(&rows));
        let skipped = match candidate.source {
            Source::Custom { skipped } => skipped,
            Source::BradleyTerry => 0,
        };
        if candidate.pairs.is_empty() {
            return Err(format!(
                "none of the {} rows fits {} prompts × {} responses (indices start at 0); the pairs in force are kept",
                rows.len(),
                c.n_prompts,
                c.n_responses
            ));
        }
        let kept = candidate.pairs.len();
        self.custom = Some(rows);
        self.trainer = Some(candidate);
        self.shape = Some(self.shape(&c));
        Ok(if skipped > 0 {
            format!(
                "using {kept} pairs from the text; {skipped} rows outside {} prompts × {} responses ignored",
                c.n_prompts, c.n_responses
            )
        } else {
            format!("using {kept} pairs from the text")
        })
    }
}
