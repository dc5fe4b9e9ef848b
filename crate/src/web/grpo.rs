//! Drawing for `<ml-grpo>`: one group's rewards and advantages, the training curves, GRPO
//! against REINFORCE and PPO with a critic, and the accuracy on every prompt.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::dpo::{chart, height_n, legend, split_n, step_chart, WIDE};
use super::plot::{
    dashed, key, line as polyline, px_rect, px_text, rect, rects, text, tick, Area, Key, Theme,
};
use super::{now_ms, View, WebInfo};
use crate::grpo::{Config, Estimator, Group, Trainer};
use crate::json::Json;
use crate::params::Params;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "One group: G sampled answers, their rewards, mean ± std, and the z-scored advantages",
        "Training: accuracy, reward, KL to the reference and empty groups",
        "GRPO against REINFORCE without a baseline and PPO with a learned critic",
        "π(right answer) for every prompt a + b, before and now",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>A</mi><mi>i</mi></msub><mo>=</mo><mfrac><mrow><msub><mi>r</mi><mi>i</mi></msub><mo>−</mo><mtext>mean</mtext><mo>(</mo><msub><mi>r</mi><mn>1</mn></msub><mo>,</mo><mo>…</mo><mo>,</mo><msub><mi>r</mi><mi data-key="group-size">G</mi></msub><mo>)</mo></mrow><mrow><mtext>std</mtext><mo>(</mo><msub><mi>r</mi><mn>1</mn></msub><mo>,</mo><mo>…</mo><mo>,</mo><msub><mi>r</mi><mi data-key="group-size">G</mi></msub><mo>)</mo></mrow></mfrac></mrow></math><math display="block"><mrow><mi>J</mi><mo>=</mo><mfrac><mn>1</mn><mi data-key="group-size">G</mi></mfrac><munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi data-key="group-size">G</mi></munderover><mrow><mo>[</mo><mi>min</mi><mo>(</mo><msub><mi>ρ</mi><mi>i</mi></msub><msub><mi>A</mi><mi>i</mi></msub><mo>,</mo><mtext>clip</mtext><mo>(</mo><msub><mi>ρ</mi><mi>i</mi></msub><mo>,</mo><mn>1</mn><mo>−</mo><mi data-key="eps">ε</mi><mo>,</mo><mn>1</mn><mo>+</mo><mi data-key="eps">ε</mi><mo>)</mo><msub><mi>A</mi><mi>i</mi></msub><mo>)</mo><mo>−</mo><mi data-key="beta">β</mi><mrow><mo>(</mo><mfrac><msub><mi>π</mi><mtext>ref</mtext></msub><mi>π</mi></mfrac><mo>−</mo><mi>log</mi><mfrac><msub><mi>π</mi><mtext>ref</mtext></msub><mi>π</mi></mfrac><mo>−</mo><mn>1</mn><mo>)</mo></mrow><mo>]</mo></mrow></mrow></math><math display="block"><mrow><msub><mi>ρ</mi><mi>i</mi></msub><mo>=</mo><mfrac><mrow><mi>π</mi><mo>(</mo><msub><mi>o</mi><mi>i</mi></msub><mo>|</mo><mi>q</mi><mo>)</mo></mrow><mrow><msub><mi>π</mi><mtext>old</mtext></msub><mo>(</mo><msub><mi>o</mi><mi>i</mi></msub><mo>|</mo><mi>q</mi><mo>)</mo></mrow></mfrac><mspace width="1em"/><mi>θ</mi><mo>←</mo><mi>θ</mi><mo>+</mo><mi data-key="lr">η</mi><msub><mo>∇</mo><mi>θ</mi></msub><mi>J</mi><mspace width="0.5em"/><mtext>repeated </mtext><mi data-key="epochs">μ</mi><mtext> times on </mtext><mi data-key="batch">B</mi><mtext> prompts</mtext></mrow></math>"#,
};

/// A colour-blind-safe sequential map (cividis, Nuñez et al. 2018), `t` in [0, 1].
fn cividis(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [0.0, 32.0, 77.0]),
        (0.25, [65.0, 77.0, 107.0]),
        (0.5, [124.0, 123.0, 120.0]),
        (0.75, [188.0, 175.0, 111.0]),
        (1.0, [255.0, 234.0, 70.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let i = STOPS.iter().rposition(|s| s.0 <= t).unwrap_or(0).min(3);
    let (t0, a) = STOPS[i];
    let (t1, b) = STOPS[i + 1];
    let f = (t - t0) / (t1 - t0);
    let mix = |k: usize| (a[k] + f * (b[k] - a[k])).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

#[derive(Default)]
pub(crate) struct GrpoView {
    trainer: Option<Trainer>,
    /// Seed and format decide the task and the reference; changing them starts a new run.
    shape: Option<(u64, bool)>,
}

impl GrpoView {
    fn t(&self) -> &Trainer {
        self.trainer
            .as_ref()
            .expect("update() runs before any view is read")
    }

    fn progress(&self, error: Option<String>) -> Json {
        let t = self.t();
        let h = &t.history;
        let text = match h.step.len() {
            0 => format!("step 0 / {}", t.config.total_steps),
            n => format!(
                "step {} / {} · accuracy {:.0}% · reward {:.2} · KL {:.3}",
                t.step,
                t.config.total_steps,
                100.0 * h.accuracy[n - 1],
                h.mean_reward[n - 1],
                h.kl[n - 1]
            ),
        };
        Json::obj([
            ("done", Json::Bool(t.done())),
            (
                "fraction",
                Json::Num((t.step as f64 / t.config.total_steps.max(1) as f64).min(1.0)),
            ),
            ("text", Json::str(text)),
            ("error", error.map_or(Json::Null, Json::str)),
        ])
    }
}

fn short_answer(t: &Trainer, g: &Group, i: usize) -> String {
    match t.task.answer(g.completions[i]) {
        (v, true) => format!("‹{v}›"),
        (v, false) => v.to_string(),
    }
}

fn draw_group(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let batch = t.shown_batch();
    let parts = split_n(area, 3, width);
    let Some(g) = batch.groups.first() else {
        return Ok(());
    };
    let n = g.completions.len();
    let (mean, std) = g.mean_std();
    let preview = if t.last_batch.is_none() {
        " (preview from π_ref)"
    } else {
        ""
    };
    let max_r = if t.task.format_reward { 1.25 } else { 1.05 };
    let labels = n <= 16;
    let answers: Vec<String> = (0..n).map(|i| short_answer(t, g, i)).collect();
    let x_fmt = |v: &f64| {
        let i = v.round();
        if labels && (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < answers.len() {
            answers[i as usize].clone()
        } else {
            String::new()
        }
    };
    let x_labels = if labels { n + 1 } else { 0 };

    // (a) rewards, mean and the band mean ± std.
    let mut c = chart(
        &parts[0],
        theme,
        &format!("Rewards for “{}”{preview}", t.task.prompt_text(g.prompt)),
        -0.6..n as f64 - 0.4,
        0.0..max_r + 0.55,
        if labels {
            "sampled answer o_i"
        } else {
            "completion i"
        },
        "reward r_i",
        &x_fmt,
        &|v| tick(*v),
        x_labels,
        false,
    )?;
    rect(
        &mut c,
        [(-0.6, (mean - std).max(0.0)), (n as f64 - 0.4, mean + std)],
        theme.band.filled(),
    )?;
    key(
        &mut c,
        &format!("mean ± std: {mean:.2} ± {std:.2}"),
        Key::Box(theme.band.filled()),
    )?;
    let right = theme.palette[2];
    let bars: Vec<_> = (0..n)
        .map(|i| {
            let color = if t.task.is_correct(g.prompt, g.completions[i]) {
                right
            } else {
                theme.muted
            };
            (
                [
                    (i as f64 - 0.35, 0.0),
                    (i as f64 + 0.35, g.rewards[i].max(0.004)),
                ],
                color.filled(),
            )
        })
        .collect();
    rects(&mut c, &bars)?;
    key(&mut c, "right answer", Key::Box(right.filled()))?;
    dashed(
        &mut c,
        &[(-0.6, mean), (n as f64 - 0.4, mean)],
        6,
        3,
        theme.accent.stroke_width(2),
    )?;
    legend(&mut c, theme, SeriesLabelPosition::UpperRight)?;

    // (b) the z-scored advantages.
    let lim = g
        .advantages
        .iter()
        .fold(1.5f64, |a, &v| a.max(v.abs() * 1.15));
    let mut c = chart(
        &parts[1],
        theme,
        "Advantages A_i = (r_i − mean) / std",
        -0.6..n as f64 - 0.4,
        -lim..lim,
        if labels {
            "sampled answer o_i"
        } else {
            "completion i"
        },
        "advantage A_i",
        &x_fmt,
        &|v| tick(*v),
        x_labels,
        false,
    )?;
    polyline(
        &mut c,
        &[(-0.6, 0.0), (n as f64 - 0.4, 0.0)],
        theme.muted.stroke_width(1),
    )?;
    let bars: Vec<_> = (0..n)
        .map(|i| {
            let a = g.advantages[i];
            let color = if a >= 0.0 { theme.accent } else { theme.warn };
            (
                [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, a)],
                color.filled(),
            )
        })
        .collect();
    rects(&mut c, &bars)?;
    if g.zero_advantage() {
        let centred = theme.text(12.0).pos(Pos::new(HPos::Center, VPos::Center));
        let x = (n as f64 - 1.0) / 2.0;
        text(
            &mut c,
            "all rewards equal: every A_i = 0,",
            (x, lim * 0.45),
            &centred,
        )?;
        text(
            &mut c,
            "this group gives no update (and no NaN)",
            (x, lim * 0.3),
            &centred,
        )?;
    }

    // (c) every group of the batch: mean ± std, empty groups marked.
    let b = batch.groups.len();
    let prompt_labels = b <= 12;
    let prompts: Vec<String> = batch
        .groups
        .iter()
        .map(|g| {
            let (x, y) = t.task.operands(g.prompt);
            format!("{x}+{y}")
        })
        .collect();
    let mut c = chart(
        &parts[2],
        theme,
        &format!("The batch: {} of {b} groups with A = 0", batch.zero_groups),
        -0.6..b as f64 - 0.4,
        0.0..max_r,
        "prompt",
        "group mean reward ± std",
        &|v| {
            let i = v.round();
            if prompt_labels && (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < prompts.len() {
                prompts[i as usize].clone()
            } else {
                String::new()
            }
        },
        &|v| tick(*v),
        if prompt_labels { b + 1 } else { 0 },
        false,
    )?;
    for (k, g) in batch.groups.iter().enumerate() {
        let (m, s) = g.mean_std();
        let x = k as f64;
        let color = if g.zero_advantage() {
            theme.muted
        } else {
            theme.accent
        };
        rect(
            &mut c,
            [(x - 0.35, 0.0), (x + 0.35, m.max(0.004))],
            color
                .mix(if g.zero_advantage() { 0.45 } else { 0.85 })
                .filled(),
        )?;
        polyline(
            &mut c,
            &[(x, (m - s).max(0.0)), (x, (m + s).min(max_r))],
            theme.fg.stroke_width(1),
        )?;
        if g.zero_advantage() {
            text(
                &mut c,
                "A=0",
                (x, m.max(0.0) + 0.03),
                &theme
                    .muted_text(10.0)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )?;
        }
    }
    Ok(())
}

fn draw_training(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let h = &t.history;
    let steps = t.config.total_steps.max(t.step) as f64;
    let parts = split_n(area, 3, width);
    let xs: Vec<f64> = h.step.iter().map(|&s| s as f64).collect();
    let line = |ys: &[f64]| {
        xs.iter()
            .copied()
            .zip(ys.iter().copied())
            .collect::<Vec<_>>()
    };
    let top = if t.task.format_reward { 1.25 } else { 1.05 };

    let mut c = step_chart(&parts[0], theme, "Accuracy and reward", steps, 0.0..top, "")?;
    dashed(
        &mut c,
        &[(0.0, t.initial_accuracy), (steps, t.initial_accuracy)],
        5,
        4,
        theme.muted.stroke_width(1),
    )?;
    key(
        &mut c,
        &format!("π_ref accuracy {:.2}", t.initial_accuracy),
        Key::Line(theme.muted.stroke_width(1)),
    )?;
    polyline(
        &mut c,
        &line(&h.mean_reward),
        theme.palette[2].stroke_width(1),
    )?;
    key(
        &mut c,
        "mean sampled reward",
        Key::Line(theme.palette[2].stroke_width(1)),
    )?;
    polyline(&mut c, &line(&h.accuracy), theme.accent.stroke_width(2))?;
    key(
        &mut c,
        "accuracy (exact)",
        Key::Line(theme.accent.stroke_width(2)),
    )?;
    legend(&mut c, theme, SeriesLabelPosition::LowerRight)?;

    let kl_top =
        h.kl.iter()
            .chain(&h.k3_mean)
            .fold(0.05f64, |a, &k| if k.is_finite() { a.max(k) } else { a });
    let mut c = step_chart(
        &parts[1],
        theme,
        "KL(π ‖ π_ref)",
        steps,
        0.0..kl_top * 1.1,
        "nats",
    )?;
    polyline(&mut c, &line(&h.k3_mean), theme.warn.stroke_width(1))?;
    key(
        &mut c,
        "k3 estimate on the batch (π_old)",
        Key::Line(theme.warn.stroke_width(1)),
    )?;
    polyline(&mut c, &line(&h.kl), theme.accent.stroke_width(2))?;
    key(
        &mut c,
        "exact, mean over prompts",
        Key::Line(theme.accent.stroke_width(2)),
    )?;
    legend(&mut c, theme, SeriesLabelPosition::UpperLeft)?;

    let b = t.config.batch_prompts.max(1) as f64;
    let zero: Vec<f64> = h.zero_groups.iter().map(|&z| z as f64 / b).collect();
    let mut c = step_chart(
        &parts[2],
        theme,
        "Advantages of the batch",
        steps,
        0.0..1.5,
        "",
    )?;
    polyline(&mut c, &line(&h.adv_std), theme.accent.stroke_width(2))?;
    key(
        &mut c,
        "std of A over the batch",
        Key::Line(theme.accent.stroke_width(2)),
    )?;
    polyline(&mut c, &line(&zero), theme.warn.stroke_width(2))?;
    key(
        &mut c,
        "share of groups with A = 0",
        Key::Line(theme.warn.stroke_width(2)),
    )?;
    legend(&mut c, theme, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

/// Greedy word wrap to lines of at most `max_chars` characters.
fn wrap(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max_chars {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// The comparison panel's three cost lines.
fn cost_lines(t: &Trainer) -> [String; 3] {
    let (q, c) = (t.task.n_prompts(), t.task.n_answers());
    let bg = t.config.batch_prompts * t.config.group_size;
    [
        format!(
            "GRPO: {} policy logits, no critic; {bg} samples and {} gradient steps per batch",
            q * c,
            t.config.update_epochs
        ),
        format!(
            "REINFORCE (A = r, no baseline): {} logits; {bg} samples, 1 step, no clip, no KL",
            q * c
        ),
        format!(
            "PPO + critic: {} logits + {q} critic values (in an LLM the critic is a second network as big as the policy); +1 value pass and +1 value update per step",
            q * c
        ),
    ]
}

const COST_FONT: f64 = 11.5;
const COST_LINE: f64 = 15.0;

fn cost_wrapped(t: &Trainer, width: f64) -> Vec<Vec<String>> {
    let max_chars = ((width - 40.0) / (COST_FONT * 0.55)).max(24.0) as usize;
    cost_lines(t).iter().map(|l| wrap(l, max_chars)).collect()
}

/// Height of the comparison panel's cost strip.
fn cost_strip(t: &Trainer, width: f64) -> f64 {
    let lines: usize = cost_wrapped(t, width).iter().map(Vec::len).sum();
    10.0 + COST_LINE * lines as f64 + 4.0 * 3.0
}

fn draw_compare(area: &Area, theme: &Theme, t: &Trainer, width: f64) -> Result<(), String> {
    let (top, plots) = area.split_vertically(cost_strip(t, width) as u32);
    let colors = [theme.accent, theme.warn, theme.palette[2]];
    let mut y = 10.0;
    for (color, lines) in colors.iter().zip(cost_wrapped(t, width)) {
        let yi = y as i32;
        px_rect(&top, [(10, yi - 5), (24, yi + 5)], color.filled())?;
        for line in lines {
            px_text(
                &top,
                &line,
                (30, y as i32),
                &theme
                    .text(COST_FONT)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            )?;
            y += COST_LINE;
        }
        y += 4.0;
    }

    let h = &t.history;
    let steps = t.config.total_steps.max(t.step) as f64;
    let parts = split_n(&plots, 2, width);
    let xs: Vec<f64> = h.step.iter().map(|&s| s as f64).collect();
    let line = |ys: &[f64]| {
        xs.iter()
            .copied()
            .zip(ys.iter().copied())
            .collect::<Vec<_>>()
    };
    let mut ch = step_chart(
        &parts[0],
        theme,
        "Accuracy on the same prompt batches",
        steps,
        0.0..1.05,
        "accuracy (exact)",
    )?;
    for (ys, color, label, w) in [
        (
            &h.accuracy_reinforce,
            theme.warn,
            "REINFORCE, no baseline",
            2,
        ),
        (
            &h.accuracy_ppo,
            theme.palette[2],
            "PPO with a learned critic",
            2,
        ),
        (&h.accuracy, theme.accent, "GRPO", 3),
    ] {
        polyline(&mut ch, &line(ys), color.stroke_width(w))?;
        key(&mut ch, label, Key::Line(color.stroke_width(w)))?;
    }
    legend(&mut ch, theme, SeriesLabelPosition::LowerRight)?;

    // Noise-to-signal on a log10 axis.
    let logs: Vec<Vec<Option<f64>>> = h
        .noise
        .iter()
        .map(|xs| {
            xs.iter()
                .map(|x| x.filter(|v| *v > 0.0).map(f64::log10))
                .collect()
        })
        .collect();
    let (lo, hi) = logs
        .iter()
        .flatten()
        .flatten()
        .fold((-1.0f64, 1.0f64), |(a, b), &v| {
            (a.min(v.floor()), b.max(v.ceil()))
        });
    // A decade and a half of headroom for the legend.
    let hi = hi + 1.5;
    let mut ch = chart(
        &parts[1],
        theme,
        "Gradient noise / signal at GRPO's policy",
        0.0..steps.max(1.0),
        lo..hi,
        "step",
        "Var[ĝ] / |E ĝ|²  (log scale)",
        &|v| tick(*v),
        &|v| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{}", 10f64.powi(v.round() as i32))
            } else {
                String::new()
            }
        },
        5,
        true,
    )?;
    let est = [
        (Estimator::Raw, theme.warn, "A = r (REINFORCE)"),
        (Estimator::GroupMean, theme.palette[3], "A = r − mean"),
        (Estimator::GroupZ, theme.accent, "A = (r − mean)/std (GRPO)"),
    ];
    for (e, color, label) in est {
        let i = Estimator::ALL.iter().position(|x| *x == e).unwrap_or(0);
        // Break the line where the estimate is undefined (no signal).
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, v) in xs.iter().zip(&logs[i]) {
            match v {
                Some(v) => segments.last_mut().expect("a segment").push((*x, *v)),
                None => segments.push(Vec::new()),
            }
        }
        let mut first = true;
        for s in segments.iter().filter(|s| !s.is_empty()) {
            polyline(&mut ch, s, color.stroke_width(2))?;
            if first {
                key(&mut ch, label, Key::Line(color.stroke_width(2)))?;
                first = false;
            }
        }
    }
    legend(&mut ch, theme, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

fn draw_heatmap(
    area: &Area,
    theme: &Theme,
    title: &str,
    values: &[f64],
    side: usize,
) -> Result<(), String> {
    let mut c = chart(
        area,
        theme,
        title,
        -0.5..side as f64 - 0.5,
        -0.5..side as f64 - 0.5,
        "b",
        "a",
        &|v| tick(*v),
        &|v| tick(*v),
        side,
        false,
    )?;
    let cell_px = {
        let (w, _) = area.dim_in_pixel();
        (f64::from(w) - 70.0) / side as f64
    };
    for (q, &v) in values.iter().enumerate() {
        let (a, b) = (q / side, q % side);
        let (x, y) = (b as f64, a as f64);
        rect(
            &mut c,
            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
            cividis(v).filled(),
        )?;
        if cell_px >= 26.0 {
            let ink = if v < 0.62 { WHITE } else { BLACK };
            text(
                &mut c,
                &format!("{:.0}", 100.0 * v),
                (x, y),
                &FontDesc::new(FontFamily::SansSerif, 10.0, FontStyle::Normal)
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )?;
        }
    }
    Ok(())
}

impl View for GrpoView {
    fn update(&mut self, params: &Params) {
        let c = Config::from_params(params);
        let shape = (c.seed, c.format_reward);
        if self.trainer.is_none() || self.shape != Some(shape) {
            self.trainer = Some(Trainer::new(&c));
            self.shape = Some(shape);
        } else if let Some(t) = &mut self.trainer {
            // G, beta, eps, lr, mu, B and K act from the next step on.
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
            0 | 1 => height_n(3, width, 290.0, 250.0),
            2 => cost_strip(self.t(), width) + height_n(2, width, 300.0, 260.0),
            _ => {
                if width >= WIDE {
                    (width / 2.0).min(420.0) + 20.0
                } else {
                    2.0 * (width.min(420.0) + 20.0)
                }
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let t = self.t();
        let (w, _) = area.dim_in_pixel();
        let width = f64::from(w);
        match panel {
            0 => draw_group(area, theme, t, width),
            1 => draw_training(area, theme, t, width),
            2 => draw_compare(area, theme, t, width),
            _ => {
                let parts = split_n(area, 2, width);
                let side = crate::grpo::MAX_OPERAND + 1;
                draw_heatmap(
                    &parts[0],
                    theme,
                    "π_ref: before training (%)",
                    &crate::grpo::accuracy_per_prompt(&t.task, &t.ref_logits),
                    side,
                )?;
                draw_heatmap(
                    &parts[1],
                    theme,
                    &format!("GRPO after {} steps (%)", t.step),
                    &crate::grpo::accuracy_per_prompt(&t.task, t.grpo_logits()),
                    side,
                )
            }
        }
    }

    fn describe(&self, panel: usize) -> String {
        let t = self.t();
        let h = &t.history;
        let last = h.step.len().checked_sub(1);
        match panel {
            0 => {
                let b = t.shown_batch();
                match b.groups.first() {
                    Some(g) => {
                        let (m, s) = g.mean_std();
                        format!(
                            "{} answers sampled for {}: rewards {:?}, mean {m:.2}, std {s:.2}; advantages {}. {} of {} groups in the batch have all rewards equal and so zero advantage.",
                            g.completions.len(),
                            t.task.prompt_text(g.prompt),
                            g.rewards,
                            if g.zero_advantage() {
                                "all zero".to_string()
                            } else {
                                g.advantages
                                    .iter()
                                    .map(|a| format!("{a:.2}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            },
                            b.zero_groups,
                            b.groups.len()
                        )
                    }
                    None => "No group sampled yet.".to_string(),
                }
            }
            1 => match last {
                Some(i) => format!(
                    "After {} steps: accuracy {:.1}% (started at {:.1}%), mean sampled reward {:.2}, KL to the reference {:.3} nats.",
                    t.step,
                    100.0 * h.accuracy[i],
                    100.0 * t.initial_accuracy,
                    h.mean_reward[i],
                    h.kl[i]
                ),
                None => format!(
                    "Not trained yet: accuracy {:.1}% under the reference policy.",
                    100.0 * t.initial_accuracy
                ),
            },
            2 => match last {
                Some(i) => {
                    let fmt = |x: Option<f64>| x.map_or("undefined".to_string(), |v| format!("{v:.2}"));
                    format!(
                        "Accuracy after {} steps: GRPO {:.1}%, REINFORCE without baseline {:.1}%, PPO with a {}-value critic {:.1}%. Gradient noise-to-signal now: raw reward {}, group mean {}, group z-score {}.",
                        t.step,
                        100.0 * h.accuracy[i],
                        100.0 * h.accuracy_reinforce[i],
                        t.task.n_prompts(),
                        100.0 * h.accuracy_ppo[i],
                        fmt(h.noise[0][i]),
                        fmt(h.noise[1][i]),
                        fmt(h.noise[2][i])
                    )
                }
                None => "Not trained yet: GRPO, REINFORCE and PPO all start at the reference policy.".to_string(),
            },
            _ => {
                let now = crate::grpo::accuracy(&t.task, t.grpo_logits());
                format!(
                    "Heat maps of the probability of the right answer for each of the 100 prompts a + b: {:.1}% on average under the reference policy, {:.1}% now.",
                    100.0 * t.initial_accuracy,
                    100.0 * now
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
        self.trainer = Some(Trainer::new(&c));
        self.shape = Some((c.seed, c.format_reward));
    }
}
