//! Drawing for `<ml-ppo-clip>`: panel 0 the clipped objective against r, panel 1 the update.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::{
    dashed, dots, frame, key, legend, line, padded_range, px_rect, px_text, rect, text, Area, Key,
    Theme,
};
use super::{View, WebInfo};
use crate::json::Json;
use crate::params::Params;
use crate::ppo_clip::{compute, Config, Curve, Data, Trajectory};

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The clipped objective against the ratio r",
        "What the clip does to K epochs of updates",
    ],
    equation: r#"<math display="block"><mrow><msup><mi>L</mi><mtext>CLIP</mtext></msup><mo>(</mo><mi>r</mi><mo>)</mo><mo>=</mo><mi>min</mi><mo>(</mo><mi>r</mi><mi data-key="adv">A</mi><mo>,</mo><mspace width="0.3em"/><mtext>clip</mtext><mo>(</mo><mi>r</mi><mo>,</mo><mn>1</mn><mo>−</mo><mi data-key="eps">ε</mi><mo>,</mo><mn>1</mn><mo>+</mo><mi data-key="eps">ε</mi><mo>)</mo><mi data-key="adv">A</mi><mo>)</mo></mrow></math><math display="block"><mrow><mi>r</mi><mo>=</mo><mfrac><mrow><msub><mi>π</mi><mi>θ</mi></msub><mo>(</mo><mi>a</mi><mo>|</mo><mi>s</mi><mo>)</mo></mrow><mrow><msub><mi>π</mi><mtext>old</mtext></msub><mo>(</mo><mi>a</mi><mo>|</mo><mi>s</mi><mo>)</mo></mrow></mfrac></mrow></math><math display="block"><mrow><mi>θ</mi><mo>←</mo><mi>θ</mi><mo>+</mo><mi data-key="lr">η</mi><msub><mo>∇</mo><mi>θ</mi></msub><munder><mo>∑</mo><mi>a</mi></munder><msub><mi>π</mi><mtext>old</mtext></msub><mo>(</mo><mi>a</mi><mo>)</mo><msup><mi>L</mi><mtext>CLIP</mtext></msup><mo>(</mo><msub><mi>r</mi><mi>a</mi></msub><mo>)</mo><mspace width="1em"/><mtext>repeated&#160;</mtext><mi data-key="epochs">K</mi><mtext>&#160;times</mtext></mrow></math>"#,
};

/// Sub-plots sit side by side from this width (CSS px) up, stacked below it.
const WIDE: f64 = 560.0;
/// Width of one entry of panel 1's legend strip, CSS px.
const LEGEND_ITEM: f64 = 236.0;

#[derive(Default)]
pub(crate) struct PpoClipView {
    data: Option<Data>,
}

impl PpoClipView {
    fn data(&self) -> &Data {
        self.data
            .as_ref()
            .expect("update() runs before any view is read")
    }
}

fn legend_rows(n: usize, width: f64) -> usize {
    let per_row = ((width - 16.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    n.div_ceil(per_row)
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{x:.2}")
    } else {
        format!("{x:.2}")
    }
}

/// Runs of consecutive indices where the clipped objective is flat (dL/dr = 0).
fn flat_runs(c: &Curve) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for i in 0..c.r.len() {
        if c.grad[i] == 0.0 && c.advantage != 0.0 {
            if !open {
                runs.push(Vec::new());
                open = true;
            }
            runs.last_mut().unwrap().push((c.r[i], c.clipped[i]));
        } else {
            open = false;
        }
    }
    runs
}

fn draw_objective(area: &Area, theme: &Theme, c: &Curve, eps: f64) -> Result<(), String> {
    let a = c.advantage;
    let title = match a {
        a if a > 0.0 => format!("A = {a:.1}  (a better-than-average action)"),
        a if a < 0.0 => format!("A = {a:.1}  (a worse-than-average action)"),
        _ => "A = 0  (no preference: flat)".to_string(),
    };
    let y = padded_range([c.clipped.as_slice(), c.unclipped.as_slice()]);
    let (lo, hi) = (y.start, y.end);
    let r_max = *c.r.last().unwrap_or(&2.0);
    let mut chart = frame(
        area,
        theme,
        &title,
        0.0..r_max,
        y,
        "ratio r = π_θ / π_old",
        "objective",
    )?;
    // The trust region [1 - eps, 1 + eps].
    rect(
        &mut chart,
        [(1.0 - eps, lo), (1.0 + eps, hi)],
        theme.band.filled(),
    )?;
    // Label the band's edges on the side away from the legend.
    let (edge, y_text) = if a < 0.0 {
        (Pos::new(HPos::Center, VPos::Top), hi)
    } else {
        (Pos::new(HPos::Center, VPos::Bottom), lo)
    };
    let band_px = chart.backend_coord(&(1.0 + eps, lo)).0 - chart.backend_coord(&(1.0 - eps, lo)).0;
    let edge_style = theme.muted_text(11.0).pos(edge);
    if band_px >= 36 {
        text(&mut chart, "1−ε", (1.0 - eps, y_text), &edge_style)?;
        text(&mut chart, "1+ε", (1.0 + eps, y_text), &edge_style)?;
    } else {
        // Too narrow for two labels side by side.
        text(&mut chart, "1±ε", (1.0, y_text), &edge_style)?;
    }
    let pts = |ys: &[f64]| {
        c.r.iter()
            .copied()
            .zip(ys.iter().copied())
            .collect::<Vec<_>>()
    };
    let unclipped = theme.muted.stroke_width(2);
    dashed(&mut chart, &pts(&c.unclipped), 6, 4, unclipped)?;
    key(&mut chart, "r·A, unclipped", Key::Line(unclipped))?;
    let clipped = theme.accent.stroke_width(3);
    line(&mut chart, &pts(&c.clipped), clipped)?;
    key(&mut chart, "L_clip", Key::Line(clipped))?;
    let flat = theme.warn.stroke_width(4);
    let runs = flat_runs(c);
    for (i, run) in runs.iter().enumerate() {
        line(&mut chart, run, flat)?;
        if i == 0 {
            key(&mut chart, "∂L/∂r = 0: clipped", Key::Line(flat))?;
        }
    }
    let pos = if a < 0.0 {
        SeriesLabelPosition::LowerLeft
    } else {
        SeriesLabelPosition::UpperLeft
    };
    legend(&mut chart, theme, pos)
}

fn draw_ratios(
    area: &Area,
    theme: &Theme,
    title: &str,
    t: &Trajectory,
    eps: f64,
    y_max: f64,
) -> Result<(), String> {
    let epochs = (t.ratios.len() - 1).max(1) as f64;
    let mut chart = frame(
        area,
        theme,
        title,
        0.0..epochs,
        0.0..y_max,
        "epoch",
        "ratio r",
    )?;
    rect(
        &mut chart,
        [(0.0, 1.0 - eps), (epochs, 1.0 + eps)],
        theme.band.filled(),
    )?;
    dashed(
        &mut chart,
        &[(0.0, 1.0), (epochs, 1.0)],
        5,
        4,
        theme.muted.stroke_width(1),
    )?;
    let n = t.ratios.first().map_or(0, Vec::len);
    for a in 0..n {
        let color = theme.palette[a % theme.palette.len()];
        let pts: Vec<(f64, f64)> = t
            .ratios
            .iter()
            .enumerate()
            .map(|(k, rs)| (k as f64, rs[a].min(y_max)))
            .collect();
        line(&mut chart, &pts, color.stroke_width(2))?;
        if let Some(&last) = pts.last() {
            dots(&mut chart, &[last], 3, color.filled())?;
        }
    }
    Ok(())
}

fn draw_legend(area: &Area, theme: &Theme, d: &Data, width: f64) -> Result<(), String> {
    let pi_old = d.problem.pi_old();
    let per_row = ((width - 16.0) / LEGEND_ITEM).floor().max(1.0) as usize;
    for (a, adv) in d.problem.advantages.iter().enumerate() {
        let x = 12 + ((a % per_row) as f64 * LEGEND_ITEM) as i32;
        let y = 10 + (a / per_row) as i32 * 18;
        let color = theme.palette[a % theme.palette.len()];
        px_rect(area, [(x, y - 5), (x + 14, y + 5)], color.filled())?;
        let label = format!(
            "action {a}:  A = {},  π_old = {:.2}",
            signed(*adv),
            pi_old[a]
        );
        px_text(
            area,
            &label,
            (x + 20, y),
            &theme.text(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}

impl View for PpoClipView {
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
        let plots = if width >= WIDE { 280.0 } else { 2.0 * 250.0 };
        match panel {
            0 => plots,
            _ => {
                let n = self.data().problem.advantages.len();
                plots + 8.0 + 18.0 * legend_rows(n, width) as f64
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let d = self.data();
        let eps = d.config.clip_coef;
        let (w, _) = area.dim_in_pixel();
        let width = f64::from(w);
        let split = |a: &Area| -> Vec<Area> {
            if width >= WIDE {
                a.split_evenly((1, 2))
            } else {
                a.split_evenly((2, 1))
            }
        };
        match panel {
            0 => {
                let parts = split(area);
                draw_objective(&parts[0], theme, &d.curve, eps)?;
                draw_objective(&parts[1], theme, &d.curve_flipped, eps)?;
            }
            _ => {
                let n = d.problem.advantages.len();
                let strip = 8.0 + 18.0 * legend_rows(n, width) as f64;
                let (top, plots) = area.split_vertically(strip as u32);
                draw_legend(&top, theme, d, width)?;
                let highest = d
                    .clipped
                    .ratios
                    .iter()
                    .chain(&d.unclipped.ratios)
                    .flatten()
                    .fold(
                        1.0 + eps,
                        |m: f64, &r| if r.is_finite() { m.max(r) } else { m },
                    );
                let y_max = highest * 1.08;
                let parts = split(&plots);
                draw_ratios(
                    &parts[0],
                    theme,
                    "Clipped objective (PPO)",
                    &d.clipped,
                    eps,
                    y_max,
                )?;
                draw_ratios(
                    &parts[1],
                    theme,
                    "Unclipped objective",
                    &d.unclipped,
                    eps,
                    y_max,
                )?;
            }
        }
        Ok(())
    }

    fn describe(&self, panel: usize) -> String {
        let d = self.data();
        let eps = d.config.clip_coef;
        match panel {
            0 => format!(
                "PPO's clipped objective against the ratio r for A = {:.1} and A = {:.1}, ε = {eps:.2}. \
                 Where A > 0 the gradient is zero for r > {:.2}; where A < 0 it is zero for r < {:.2}.",
                d.curve.advantage,
                d.curve_flipped.advantage,
                1.0 + eps,
                1.0 - eps
            ),
            _ => format!(
                "Ratios of {} actions over {} epochs at learning rate {:.2}. Clipped objective: largest |r − 1| at the end {:.3}. Unclipped: {:.3}.",
                d.problem.advantages.len(),
                d.config.update_epochs,
                d.config.learning_rate,
                d.clipped.final_max_deviation(),
                d.unclipped.final_max_deviation()
            ),
        }
    }
}
