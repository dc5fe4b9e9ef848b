//! Drawing and the frame loop for `<ml-cartpole-ppo>`: PPO trains in slices of a few
//! milliseconds per animation frame, while the cart and pole play on screen under the
//! current policy (or under your arrow keys).
//!
//! Panels: 0 the cart and pole, 1 the learning curve, 2 PPO's diagnostics per update,
//! 3 the policy and value heatmaps over (x, θ), 4 the last minibatch on the L_clip curve.
//! Heavy panels are redrawn at most every [`REDRAW_MS`] while training (the page asks
//! [`View::version`] before drawing), so the animation keeps the display rate.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::{
    chart, dashed, discs, dots, frame, key, legend, line, padded_range, px_circle, px_line,
    px_polygon, px_rect, px_text, rect, rects, text, tick, Area, Axes, Key, Pt, Theme,
};
use super::{now_ms, View, WebInfo};
use crate::cartpole::{
    is_terminal, observe, reset_state, CartPole, Physics, State, MAX_EPISODE_STEPS, SOLVED_RETURN,
    THETA_THRESHOLD, X_THRESHOLD,
};
use crate::cartpole_ppo::{
    config_from_params, history_json, parse_weights, preset_values, weights_json,
};
use crate::json::Json;
use crate::params::Params;
use crate::ppo::{Config, Trainer, Unit, SOLVED_WINDOW};
use crate::ppo_clip::l_clip;
use crate::rng::Rng;

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "The cart and pole, pushed by the current policy",
        "Learning curve: episode return against environment steps",
        "PPO's diagnostics, one point per update",
        "What the networks think: P(push right | x, θ) and V(x, θ)",
        "The clip at work: the last minibatch on L_clip",
    ],
    equation: r#"<math display="block"><mrow><mi>L</mi><mo>(</mo><mi>θ</mi><mo>)</mo><mo>=</mo><msub><mover><mi>𝔼</mi><mo>^</mo></mover><mi>t</mi></msub><mo>[</mo><mi>min</mi><mo>(</mo><msub><mi>r</mi><mi>t</mi></msub><msub><mover><mi>A</mi><mo>^</mo></mover><mi>t</mi></msub><mo>,</mo><mspace width="0.2em"/><mtext>clip</mtext><mo>(</mo><msub><mi>r</mi><mi>t</mi></msub><mo>,</mo><mn>1</mn><mo>−</mo><mi data-key="clip">ε</mi><mo>,</mo><mn>1</mn><mo>+</mo><mi data-key="clip">ε</mi><mo>)</mo><msub><mover><mi>A</mi><mo>^</mo></mover><mi>t</mi></msub><mo>)</mo><mo>+</mo><msub><mi data-key="ent">c</mi><mtext>ent</mtext></msub><mi>H</mi><mo>[</mo><msub><mi>π</mi><mi>θ</mi></msub><mo>]</mo><mo>−</mo><msub><mi data-key="vf">c</mi><mi>V</mi></msub><mo>(</mo><msub><mi>V</mi><mi>θ</mi></msub><mo>(</mo><msub><mi>s</mi><mi>t</mi></msub><mo>)</mo><mo>−</mo><msub><mi>R</mi><mi>t</mi></msub><msup><mo>)</mo><mn>2</mn></msup><mo>]</mo></mrow></math><math display="block"><mrow><msub><mi>r</mi><mi>t</mi></msub><mo>=</mo><mfrac><mrow><msub><mi>π</mi><mi>θ</mi></msub><mo>(</mo><msub><mi>a</mi><mi>t</mi></msub><mo>|</mo><msub><mi>s</mi><mi>t</mi></msub><mo>)</mo></mrow><mrow><msub><mi>π</mi><mtext>old</mtext></msub><mo>(</mo><msub><mi>a</mi><mi>t</mi></msub><mo>|</mo><msub><mi>s</mi><mi>t</mi></msub><mo>)</mo></mrow></mfrac><mspace width="1.2em"/><msub><mover><mi>A</mi><mo>^</mo></mover><mi>t</mi></msub><mo>=</mo><munder><mo>∑</mo><mrow><mi>l</mi><mo>≥</mo><mn>0</mn></mrow></munder><mo>(</mo><mi data-key="gamma">γ</mi><mi data-key="lambda">λ</mi><msup><mo>)</mo><mi>l</mi></msup><msub><mi>δ</mi><mrow><mi>t</mi><mo>+</mo><mi>l</mi></mrow></msub><mo>,</mo><mspace width="0.6em"/><msub><mi>δ</mi><mi>t</mi></msub><mo>=</mo><msub><mi>r</mi><mi>t</mi></msub><mo>+</mo><mi data-key="gamma">γ</mi><mi>V</mi><mo>(</mo><msub><mi>s</mi><mrow><mi>t</mi><mo>+</mo><mn>1</mn></mrow></msub><mo>)</mo><mo>−</mo><mi>V</mi><mo>(</mo><msub><mi>s</mi><mi>t</mi></msub><mo>)</mo></mrow></math><math display="block"><mrow><mtext>each update:&#160;</mtext><mi data-key="envs">N</mi><mo>×</mo><mi data-key="steps">T</mi><mtext>&#160;steps, then&#160;</mtext><mi data-key="epochs">K</mi><mtext>&#160;epochs of Adam(</mtext><mi data-key="lr">η</mi><mtext>) on minibatches of&#160;</mtext><mi data-key="minibatch">M</mi></mrow></math>"#,
};

/// Panels of the widget.
const PANELS: usize = 5;
/// Heavy panels redraw at most this often while training (ms).
const REDRAW_MS: f64 = 200.0;
/// The heatmaps are recomputed at most this often while training (ms).
const HEAT_MS: f64 = 400.0;
/// Heatmap grid: cart positions × pole angles.
const HEAT_NX: usize = 40;
const HEAT_NY: usize = 24;
/// Sub-plots sit side by side from this width (CSS px) up, stacked below it.
const WIDE: f64 = 560.0;
/// Seconds per physics step (Gymnasium's tau): the display plays in real time.
const STEP_MS: f64 = 20.0;
/// How long a fallen pole stays on screen before the next episode (ms).
const FALLEN_MS: f64 = 700.0;

/// Who pushes the cart on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driver {
    Agent,
    You,
}

/// The episode playing on screen (separate from training: its own environment and seed).
struct Show {
    env: CartPole,
    rng: Rng,
    driver: Driver,
    /// Time not yet turned into physics steps (ms).
    acc_ms: f64,
    /// Time left showing a fallen pole before the next episode (ms); 0 while playing.
    fallen_ms: f64,
    /// Force of the last step (N), for the arrow.
    last_force: f64,
    keys_left: bool,
    keys_right: bool,
    episode: usize,
    /// Returns of the finished episodes on screen, most recent last.
    returns: Vec<f64>,
    /// The current episode's states, for the CSV export.
    trail: Vec<(State, f64)>,
}

impl Show {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5EED_CA27);
        let env = CartPole::new(reset_state(&mut rng));
        Show {
            env,
            rng,
            driver: Driver::Agent,
            acc_ms: 0.0,
            fallen_ms: 0.0,
            last_force: 0.0,
            keys_left: false,
            keys_right: false,
            episode: 1,
            returns: Vec::new(),
            trail: Vec::new(),
        }
    }

    fn new_episode(&mut self) {
        self.env = CartPole::new(reset_state(&mut self.rng));
        self.fallen_ms = 0.0;
        self.episode += 1;
        self.trail.clear();
    }
}

/// P(right) and V over the (x, θ) grid at the slice (ẋ, θ̇).
#[derive(Default)]
struct Heat {
    x: Vec<f64>,
    theta: Vec<f64>,
    /// Row-major (θ, x).
    p_right: Vec<f64>,
    value: Vec<f64>,
}

pub(crate) struct CartPoleView {
    trainer: Option<Trainer>,
    physics: Physics,
    /// Measured milliseconds per work unit (environment step, chunk), for the budget.
    cost: [f64; 2],
    /// Time spent training since the last restart, and the wall-clock time since the first
    /// slice of training (ms).
    train_ms: f64,
    wall_start: Option<f64>,
    solved_train_ms: Option<f64>,
    solved_wall_ms: Option<f64>,
    versions: [u64; PANELS],
    /// When a heavy panel was last marked for redrawing, which one is next in turn, and
    /// the episodes (panel 1) or updates (panels 2 to 4) each showed when last marked.
    last_bump_ms: f64,
    turn: usize,
    drawn_data: [usize; PANELS],
    heat: Heat,
    heat_ms: f64,
    /// Updates done when the heatmaps were computed.
    heat_updates: usize,
    /// Measured cost of computing the heatmaps (ms).
    heat_cost: f64,
    /// Measured cost of drawing each panel (ms), kept by `draw` (which only reads the view).
    draw_ms: [std::cell::Cell<f64>; PANELS],
    slice: (f64, f64),
    show: Show,
    seed: u64,
}

impl Default for CartPoleView {
    fn default() -> Self {
        CartPoleView {
            trainer: None,
            physics: Physics::default(),
            cost: [0.02, 0.3],
            train_ms: 0.0,
            wall_start: None,
            solved_train_ms: None,
            solved_wall_ms: None,
            versions: [0; PANELS],
            last_bump_ms: f64::NEG_INFINITY,
            turn: 0,
            drawn_data: [0; PANELS],
            heat: Heat::default(),
            heat_ms: f64::NEG_INFINITY,
            heat_updates: 0,
            heat_cost: 2.0,
            draw_ms: Default::default(),
            slice: (0.0, 0.0),
            show: Show::new(0),
            seed: 0,
        }
    }
}

fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(ms: f64) -> String {
    if ms < 10_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else {
        format!("{:.0} s", ms / 1e3)
    }
}

/// Linear interpolation between colours.
fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// Viridis (colour-blind safe, perceptually uniform) at t in [0, 1], from five stops.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [RGBColor; 5] = [
        RGBColor(0x44, 0x01, 0x54),
        RGBColor(0x3b, 0x52, 0x8b),
        RGBColor(0x21, 0x91, 0x8c),
        RGBColor(0x5e, 0xc9, 0x62),
        RGBColor(0xfd, 0xe7, 0x25),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    mix(STOPS[i], STOPS[i + 1], t - i as f64)
}

/// P(right) on a diverging scale: push left (blue) through undecided (neutral) to push
/// right (vermillion), the Okabe-Ito pair.
fn p_colour(theme: &Theme, p: f64) -> RGBColor {
    let neutral = mix(theme.bg, theme.muted, 0.12);
    if p < 0.5 {
        mix(theme.palette[0], neutral, p / 0.5)
    } else {
        mix(neutral, theme.palette[1], (p - 0.5) / 0.5)
    }
}

impl CartPoleView {
    fn trainer(&self) -> &Trainer {
        self.trainer
            .as_ref()
            .expect("update() runs before any view is read")
    }

    fn bump(&mut self, panels: &[usize]) {
        for &p in panels {
            self.versions[p] += 1;
        }
    }

    fn bump_all(&mut self) {
        self.bump(&[0, 1, 2, 3, 4]);
    }

    fn start(&mut self, config: Config) {
        self.seed = config.seed;
        self.trainer = Some(Trainer::new(config));
        self.train_ms = 0.0;
        self.wall_start = None;
        self.solved_train_ms = None;
        self.solved_wall_ms = None;
        self.drawn_data = [0; PANELS];
        self.heat_ms = f64::NEG_INFINITY;
        self.compute_heat();
        self.bump_all();
    }

    fn compute_heat(&mut self) {
        let (xd, td) = self.slice;
        let x: Vec<f64> = (0..HEAT_NX)
            .map(|i| -X_THRESHOLD + 2.0 * X_THRESHOLD * (i as f64 + 0.5) / HEAT_NX as f64)
            .collect();
        let theta: Vec<f64> = (0..HEAT_NY)
            .map(|j| -THETA_THRESHOLD + 2.0 * THETA_THRESHOLD * (j as f64 + 0.5) / HEAT_NY as f64)
            .collect();
        let mut obs = Vec::with_capacity(HEAT_NX * HEAT_NY * 4);
        for &th in &theta {
            for &xx in &x {
                obs.extend_from_slice(&observe(&[xx, xd, th, td]));
            }
        }
        let (p_right, value) = self.trainer().nets.evaluate(&obs, HEAT_NX * HEAT_NY);
        self.heat = Heat {
            x,
            theta,
            p_right,
            value,
        };
        self.heat_ms = now_ms();
        self.heat_updates = self.trainer().updates.len();
    }

    /// The heavy panel (1 to 4) to redraw this frame, if any: the next one in turn whose
    /// data changed, at most one every REDRAW_MS / 4, so that no frame draws them all.
    fn next_heavy(&self, now: f64) -> Option<usize> {
        if now - self.last_bump_ms < REDRAW_MS / 4.0 {
            return None;
        }
        let t = self.trainer();
        let changed = |p: usize| match p {
            1 => t.episodes.len() != self.drawn_data[1],
            2 | 4 => t.updates.len() != self.drawn_data[p],
            _ => self.heat_stale() && now - self.heat_ms >= HEAT_MS,
        };
        (0..4)
            .map(|k| 1 + (self.turn + k) % 4)
            .find(|&p| changed(p))
    }

    /// Marks heavy panel `p` for redrawing (recomputing the heatmaps first for panel 3).
    fn release(&mut self, p: usize, now: f64) {
        let t = self.trainer();
        self.drawn_data[p] = if p == 1 {
            t.episodes.len()
        } else {
            t.updates.len()
        };
        if p == 3 {
            self.compute_heat();
            self.heat_cost = 0.7 * self.heat_cost + 0.3 * (now_ms() - now);
        }
        self.bump(&[p]);
        self.turn = p % 4;
        self.last_bump_ms = now;
    }

    /// Whether the heatmaps were computed before the last update.
    fn heat_stale(&self) -> bool {
        self.heat_updates != self.trainer().updates.len()
    }

    fn progress(&self) -> Json {
        let t = self.trainer();
        let mean = t.mean_return_20();
        let text = if let Some(e) = &t.error {
            format!("stopped: {}", e.split(':').next().unwrap_or(e))
        } else if let Some(s) = t.solved_at {
            format!(
                "solved at {} steps{} · mean return {:.0}",
                fmt_int(s),
                self.solved_wall_ms
                    .map_or(String::new(), |ms| format!(" in {}", secs(ms))),
                mean
            )
        } else {
            format!(
                "{} steps · {} episodes · mean return {}",
                fmt_int(t.env_steps),
                t.episodes.len(),
                if mean.is_finite() {
                    format!("{mean:.0}")
                } else {
                    "–".into()
                }
            )
        };
        Json::obj([
            ("done", Json::Bool(t.done())),
            ("fraction", Json::Num(t.progress())),
            ("text", Json::str(text)),
            ("error", t.error.as_ref().map_or(Json::Null, Json::str)),
            ("env_steps", Json::Num(t.env_steps as f64)),
            ("updates", Json::Num(t.updates.len() as f64)),
            ("mean_return_20", Json::Num(mean)),
            (
                "solved_at_steps",
                t.solved_at.map_or(Json::Null, |s| Json::Num(s as f64)),
            ),
            ("train_ms", Json::Num(self.train_ms)),
            (
                "solved_wall_ms",
                self.solved_wall_ms.map_or(Json::Null, Json::Num),
            ),
        ])
    }

    fn heat_json(&self) -> Json {
        Json::obj([
            ("x", Json::nums(&self.heat.x)),
            ("theta", Json::nums(&self.heat.theta)),
            ("x_dot", Json::Num(self.slice.0)),
            ("theta_dot", Json::Num(self.slice.1)),
            ("p_right", Json::nums(&self.heat.p_right)),
            ("value", Json::nums(&self.heat.value)),
        ])
    }

    fn minibatch_json(&self) -> Json {
        let t = self.trainer();
        let eps = t.updates.last().map_or(t.config.clip_coef, |u| u.clip_coef);
        let clipped = t
            .last_minibatch
            .iter()
            .filter(|(r, a)| clipped_sample(*r, *a, eps, t.config.clip))
            .count();
        Json::obj([
            ("clip", Json::Num(eps)),
            (
                "ratio",
                Json::Arr(t.last_minibatch.iter().map(|p| Json::Num(p.0)).collect()),
            ),
            (
                "advantage",
                Json::Arr(t.last_minibatch.iter().map(|p| Json::Num(p.1)).collect()),
            ),
            ("clipped", Json::Num(clipped as f64)),
        ])
    }

    fn display_json(&self) -> Json {
        let s = &self.show;
        Json::obj([
            (
                "who",
                Json::str(match s.driver {
                    Driver::Agent => "agent",
                    Driver::You => "you",
                }),
            ),
            ("state", Json::nums(&s.env.state)),
            ("steps", Json::Num(s.env.steps as f64)),
            ("episode", Json::Num(s.episode as f64)),
            ("returns", Json::nums(&s.returns)),
        ])
    }
}

/// Whether a sample with this ratio and advantage is on a flat part of L_clip (gradient 0).
fn clipped_sample(r: f64, a: f64, eps: f64, clipping: bool) -> bool {
    clipping && ((a > 0.0 && r > 1.0 + eps) || (a < 0.0 && r < 1.0 - eps))
}

// ------------------------------------------------------------------------------------------
// Drawing.

fn draw_cart(v: &CartPoleView, area: &Area, theme: &Theme) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let s = &v.show;
    let [x, _, theta, _] = s.env.state;
    let ground = h - 40.0;
    let cart_h = 22.0;
    // Metres to pixels, the same in both directions: the track ±2.4 m (plus a margin) fits
    // the width and the pole (2 l) the height under the text lines.
    let scale = ((w - 24.0) / (2.0 * (X_THRESHOLD + 0.5)))
        .min((ground - cart_h - 44.0) / (2.0 * v.physics.length));
    let cart_w = (0.5 * scale).max(24.0);
    let pole_px = 2.0 * v.physics.length * scale;
    let cx = w / 2.0 + x.clamp(-X_THRESHOLD - 0.45, X_THRESHOLD + 0.45) * scale;
    let px = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
    // Track and its limits.
    px_line(
        area,
        &[px(6.0, ground), px(w - 6.0, ground)],
        theme.muted.stroke_width(2),
    )?;
    for side in [-1.0, 1.0] {
        let lx = w / 2.0 + side * X_THRESHOLD * scale;
        px_line(
            area,
            &[px(lx, ground - 6.0), px(lx, ground + 8.0)],
            theme.warn.stroke_width(2),
        )?;
        px_text(
            area,
            if side < 0.0 { "−2.4 m" } else { "+2.4 m" },
            px(lx, ground + 10.0),
            &theme
                .muted_text(11.0)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        )?;
    }
    // The ±12° fan where the pole may lean.
    let pivot = (cx, ground - cart_h);
    for side in [-1.0, 1.0] {
        let a = side * THETA_THRESHOLD;
        let tip = (
            pivot.0 + pole_px * crate::math::sin(a),
            pivot.1 - pole_px * crate::math::cos(a),
        );
        px_line(
            area,
            &[px(pivot.0, pivot.1), px(tip.0, tip.1)],
            theme.grid.stroke_width(1),
        )?;
    }
    // Cart, wheels, push arrow.
    let fell = s.fallen_ms > 0.0;
    px_rect(
        area,
        [
            px(cx - cart_w / 2.0, ground - cart_h),
            px(cx + cart_w / 2.0, ground - 3.0),
        ],
        theme.fg.mix(0.85).filled(),
    )?;
    for dx in [-cart_w / 3.0, cart_w / 3.0] {
        px_circle(area, px(cx + dx, ground - 2.0), 4, theme.muted.filled())?;
    }
    if s.last_force != 0.0 && !fell {
        let dir = s.last_force.signum();
        let base = cx - dir * (cart_w / 2.0 + 4.0);
        let y = ground - cart_h / 2.0 - 1.5;
        let colour = theme.palette[if dir > 0.0 { 1 } else { 0 }];
        px_line(
            area,
            &[px(base - dir * 22.0, y), px(base, y)],
            colour.stroke_width(3),
        )?;
        px_polygon(
            area,
            &[
                px(base, y),
                px(base - dir * 8.0, y - 6.0),
                px(base - dir * 8.0, y + 6.0),
            ],
            colour.filled(),
        )?;
    }
    // Pole.
    let tip = (
        pivot.0 + pole_px * crate::math::sin(theta),
        pivot.1 - pole_px * crate::math::cos(theta),
    );
    let pole_colour = if fell { theme.warn } else { theme.accent };
    px_line(
        area,
        &[px(pivot.0, pivot.1), px(tip.0, tip.1)],
        pole_colour.stroke_width(7),
    )?;
    px_circle(area, px(pivot.0, pivot.1), 4, theme.fg.filled())?;
    // Words.
    let who = match s.driver {
        Driver::Agent => "Agent (its more likely action)",
        Driver::You => "You: hold ← or → on this panel",
    };
    px_text(
        area,
        &format!("{who} · episode {} · step {}", s.episode, s.env.steps),
        (10, 8),
        &theme.text(13.0),
    )?;
    let recent: Vec<String> = s
        .returns
        .iter()
        .rev()
        .take(5)
        .map(|r| format!("{r:.0}"))
        .collect();
    let mut line = if recent.is_empty() {
        "no episode finished yet".to_string()
    } else {
        format!("last returns: {}", recent.join(", "))
    };
    if s.driver == Driver::You {
        let best = s.returns.iter().fold(0.0f64, |a, &b| a.max(b));
        line.push_str(&format!(" · your best {best:.0}"));
    }
    px_text(area, &line, (10, 26), &theme.muted_text(12.0))?;
    if fell {
        let msg = if s.env.steps >= MAX_EPISODE_STEPS {
            format!("{MAX_EPISODE_STEPS} steps: the time limit")
        } else {
            format!("Fell after {} steps", s.env.steps)
        };
        px_text(
            area,
            &msg,
            px(w / 2.0, 48.0),
            &FontDesc::new(FontFamily::SansSerif, 15.0, FontStyle::Normal)
                .color(&theme.warn)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        )?;
    }
    Ok(())
}

fn draw_curve(v: &CartPoleView, area: &Area, theme: &Theme) -> Result<(), String> {
    let t = v.trainer();
    let x_max = (t.env_steps.max(t.config.total_steps.min(20_000)) as f64).max(1000.0);
    let mut chart = frame(
        area,
        theme,
        "Episode return (dots) and the mean of the last 20 (line)",
        0.0..x_max * 1.02,
        0.0..540.0,
        "environment steps",
        "return",
    )?;
    dashed(
        &mut chart,
        &[(0.0, SOLVED_RETURN), (x_max * 1.02, SOLVED_RETURN)],
        6,
        4,
        theme.warn.stroke_width(1),
    )?;
    key(
        &mut chart,
        "solved: 475",
        Key::Line(theme.warn.stroke_width(1)),
    )?;
    // Raw returns: at most ~1500 dots (every k-th beyond that).
    let n = t.episodes.len();
    let every = n.div_ceil(1500).max(1);
    let dot = theme.palette[0].mix(0.35);
    let raw: Vec<Pt> = t
        .episodes
        .iter()
        .step_by(every)
        .map(|e| (e.env_steps as f64, e.ret))
        .collect();
    dots(&mut chart, &raw, 2, dot.filled())?;
    // The running mean of the last 20 episodes.
    let mut smooth = Vec::with_capacity(n);
    let mut sum = 0.0;
    for (i, e) in t.episodes.iter().enumerate() {
        sum += e.ret;
        if i >= SOLVED_WINDOW {
            sum -= t.episodes[i - SOLVED_WINDOW].ret;
        }
        let k = (i + 1).min(SOLVED_WINDOW) as f64;
        smooth.push((e.env_steps as f64, sum / k));
    }
    line(&mut chart, &smooth, theme.accent.stroke_width(3))?;
    key(
        &mut chart,
        "mean of last 20",
        Key::Line(theme.accent.stroke_width(3)),
    )?;
    if let Some(s) = t.solved_at {
        let s = s as f64;
        dashed(
            &mut chart,
            &[(s, 0.0), (s, 540.0)],
            3,
            3,
            theme.palette[2].stroke_width(2),
        )?;
        let label = match v.solved_wall_ms {
            Some(ms) => format!("solved at {} steps, {}", fmt_int(s as usize), secs(ms)),
            None => format!("solved at {} steps", fmt_int(s as usize)),
        };
        let right = s > 0.6 * x_max;
        let anchor = if right { HPos::Right } else { HPos::Left };
        let dx = if right { -0.01 } else { 0.01 } * x_max;
        text(
            &mut chart,
            &label,
            (s + dx, 40.0),
            &theme.text(12.0).pos(Pos::new(anchor, VPos::Center)),
        )?;
    }
    legend(&mut chart, theme, SeriesLabelPosition::UpperLeft)
}

/// One small chart of a diagnostic against env steps.
fn draw_metric(
    area: &Area,
    theme: &Theme,
    title: &str,
    pts: &[(f64, f64)],
    colour: RGBColor,
    y_fixed: Option<(f64, f64)>,
    x_max: f64,
) -> Result<(), String> {
    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let y = match y_fixed {
        Some((lo, hi)) => lo..hi,
        None => padded_range([ys.as_slice()]),
    };
    let x_fmt = |v: &f64| {
        if *v >= 1000.0 {
            format!("{}k", tick(v / 1000.0))
        } else {
            tick(*v)
        }
    };
    let y_fmt = |v: &f64| {
        if v.abs() > 0.0 && v.abs() < 1e-3 {
            format!("{v:.0e}")
        } else {
            tick(*v)
        }
    };
    let mut chart = chart(
        area,
        theme,
        &Axes {
            title_size: 12.0,
            margin: 6,
            margin_right: 12,
            x_area: 22,
            y_area: 46,
            x_labels: 4,
            y_labels: 4,
            x_fmt: &x_fmt,
            y_fmt: &y_fmt,
            label_size: 10.0,
            ..Axes::new(title, 0.0..x_max, y, "", "")
        },
    )?;
    let finite: Vec<Pt> = pts.iter().copied().filter(|p| p.1.is_finite()).collect();
    line(&mut chart, &finite, colour.stroke_width(2))?;
    if let Some(&last) = finite.last() {
        dots(&mut chart, &[last], 3, colour.filled())?;
    }
    Ok(())
}

fn draw_diagnostics(v: &CartPoleView, area: &Area, theme: &Theme) -> Result<(), String> {
    let t = v.trainer();
    let (w, _) = area.dim_in_pixel();
    let x_max = (t.env_steps.max(1000) as f64) * 1.02;
    let col = |f: fn(&crate::ppo::UpdateStats) -> f64| -> Vec<(f64, f64)> {
        t.updates
            .iter()
            .map(|u| (u.env_steps as f64, f(u)))
            .collect()
    };
    let eps = t.updates.last().map_or(t.config.clip_coef, |u| u.clip_coef);
    // (title, points, fixed y range)
    type Metric = (String, Vec<(f64, f64)>, Option<(f64, f64)>);
    let metrics: [Metric; 6] = [
        ("policy loss L_pg".into(), col(|u| u.policy_loss), None),
        ("value loss ½(V − R)²".into(), col(|u| u.value_loss), None),
        (
            "entropy H (nats; ln 2 = uniform)".into(),
            col(|u| u.entropy),
            Some((0.0, 0.75)),
        ),
        ("approx KL (k3)".into(), col(|u| u.approx_kl), None),
        (
            format!("clip fraction (|r − 1| > {eps:.2})"),
            col(|u| u.clip_frac),
            None,
        ),
        (
            "explained variance".into(),
            col(|u| u.explained_var),
            Some((-1.05, 1.05)),
        ),
    ];
    let parts = if f64::from(w) >= WIDE {
        area.split_evenly((2, 3))
    } else {
        area.split_evenly((3, 2))
    };
    for (i, ((title, pts, fixed), part)) in metrics.iter().zip(&parts).enumerate() {
        draw_metric(
            part,
            theme,
            title,
            pts,
            theme.palette[[0, 1, 2, 5, 3, 6][i]],
            *fixed,
            x_max,
        )?;
    }
    Ok(())
}

fn draw_heatmap(
    area: &Area,
    theme: &Theme,
    title: &str,
    heat: &Heat,
    values: &[f64],
    colour: &dyn Fn(f64) -> RGBColor,
) -> Result<(), String> {
    let deg = 180.0 / std::f64::consts::PI;
    let th_max = THETA_THRESHOLD * deg;
    let mut chart = frame(
        area,
        theme,
        title,
        -X_THRESHOLD..X_THRESHOLD,
        -th_max..th_max,
        "cart position x (m)",
        "pole angle θ (°)",
    )?;
    let (dx, dy) = (
        2.0 * X_THRESHOLD / HEAT_NX as f64,
        2.0 * th_max / HEAT_NY as f64,
    );
    let mut cells = Vec::with_capacity(heat.theta.len() * heat.x.len());
    for (j, &th) in heat.theta.iter().enumerate() {
        for (i, &x) in heat.x.iter().enumerate() {
            let v = values.get(j * HEAT_NX + i).copied().unwrap_or(f64::NAN);
            let (x0, y0) = (x - dx / 2.0, th * deg - dy / 2.0);
            cells.push(([(x0, y0), (x0 + dx, y0 + dy)], colour(v).filled()));
        }
    }
    rects(&mut chart, &cells)?;
    // The upright line θ = 0 and the centre x = 0.
    let axis = theme.fg.mix(0.35).stroke_width(1);
    line(&mut chart, &[(-X_THRESHOLD, 0.0), (X_THRESHOLD, 0.0)], axis)?;
    line(&mut chart, &[(0.0, -th_max), (0.0, th_max)], axis)
}

/// A horizontal colour bar with end labels, in pixels at the bottom of `area`.
fn colour_bar(
    area: &Area,
    theme: &Theme,
    colour: &dyn Fn(f64) -> RGBColor,
    left: &str,
    right: &str,
) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let (x0, x1, y) = (54, w - 16, h - 16);
    let n = 48;
    for k in 0..n {
        let a = x0 + (x1 - x0) * k / n;
        let b = x0 + (x1 - x0) * (k + 1) / n;
        px_rect(
            area,
            [(a, y - 5), (b, y + 5)],
            colour((k as f64 + 0.5) / n as f64).filled(),
        )?;
    }
    px_text(
        area,
        left,
        (x0, y - 8),
        &theme
            .muted_text(11.0)
            .pos(Pos::new(HPos::Left, VPos::Bottom)),
    )?;
    px_text(
        area,
        right,
        (x1, y - 8),
        &theme
            .muted_text(11.0)
            .pos(Pos::new(HPos::Right, VPos::Bottom)),
    )
}

fn draw_heat(v: &CartPoleView, area: &Area, theme: &Theme) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let parts = if f64::from(w) >= WIDE {
        area.split_evenly((1, 2))
    } else {
        area.split_evenly((2, 1))
    };
    let heat = &v.heat;
    let (vlo, vhi) = heat
        .value
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let span = if vhi > vlo { vhi - vlo } else { 1.0 };
    let p_col = |p: f64| p_colour(theme, p);
    let v_col = |x: f64| viridis((x - vlo) / span);
    let slice = format!(" at ẋ = {:.1}, θ̇ = {:.1}", v.slice.0, v.slice.1);
    for (k, part) in parts.iter().enumerate() {
        let (plot, bar) = part.split_vertically(part.dim_in_pixel().1.saturating_sub(38));
        if k == 0 {
            draw_heatmap(
                &plot,
                theme,
                &format!("P(push right){slice}"),
                heat,
                &heat.p_right,
                &p_col,
            )?;
            colour_bar(&bar, theme, &p_col, "0: push left", "1: push right")?;
        } else {
            draw_heatmap(
                &plot,
                theme,
                &format!("V(s){slice}"),
                heat,
                &heat.value,
                &v_col,
            )?;
            let (lo, hi) = if vlo.is_finite() {
                (vlo, vhi)
            } else {
                (0.0, 0.0)
            };
            colour_bar(
                &bar,
                theme,
                &|t| viridis(t),
                &format!("V = {lo:.1}"),
                &format!("V = {hi:.1}"),
            )?;
        }
    }
    Ok(())
}

fn draw_clip(v: &CartPoleView, area: &Area, theme: &Theme) -> Result<(), String> {
    let t = v.trainer();
    let clipping = t.config.clip;
    let eps = t.updates.last().map_or(t.config.clip_coef, |u| u.clip_coef);
    let pts = &t.last_minibatch;
    let n_clipped = pts
        .iter()
        .filter(|(r, a)| clipped_sample(*r, *a, eps, clipping))
        .count();
    let narrow = f64::from(area.dim_in_pixel().0) < WIDE;
    let title = if pts.is_empty() {
        "No minibatch yet: press Train or Step".to_string()
    } else if !clipping {
        format!("Last minibatch of {}: unclipped, all push", pts.len())
    } else if narrow {
        format!("{n_clipped} of {} clipped, ε = {eps:.2}", pts.len())
    } else {
        format!(
            "Last minibatch: {n_clipped} of {} samples clipped (no gradient), ε = {eps:.2}",
            pts.len()
        )
    };
    let r_max = 2.0;
    let mut chart = frame(
        area,
        theme,
        &title,
        0.0..r_max,
        -2.3..3.9,
        "ratio r = π_θ / π_old",
        "L_clip(r, A) / |A|",
    )?;
    if clipping {
        rect(
            &mut chart,
            [(1.0 - eps, -2.3), (1.0 + eps, 3.9)],
            theme.band.filled(),
        )?;
    }
    let e = if clipping { eps } else { 1e9 };
    let curve = |sign: f64| -> Vec<(f64, f64)> {
        (0..=200)
            .map(|i| {
                let r = r_max * i as f64 / 200.0;
                (r, l_clip(r, sign, e))
            })
            .collect()
    };
    let (pos, neg) = (
        theme.palette[2].stroke_width(2),
        theme.palette[5].stroke_width(2),
    );
    line(&mut chart, &curve(1.0), pos)?;
    key(&mut chart, "A > 0: min(r, 1+ε)", Key::Line(pos))?;
    line(&mut chart, &curve(-1.0), neg)?;
    key(&mut chart, "A < 0: −max(r, 1−ε)", Key::Line(neg))?;
    // The samples: on their curve, coloured by whether the clip stops them.
    let pushing = theme.accent.mix(0.75);
    let stopped = theme.warn.mix(0.95);
    let samples: Vec<_> = pts
        .iter()
        .filter(|(_, a)| *a != 0.0)
        .map(|&(r, a)| {
            let sign = a.signum();
            let rc = r.clamp(0.0, r_max);
            let y = l_clip(rc, sign, e);
            let size = (2.0 + a.abs().min(3.0)).round() as i32;
            let c = if clipped_sample(r, a, eps, clipping) {
                stopped
            } else {
                pushing
            };
            ((rc, y), size, c.filled())
        })
        .collect();
    discs(&mut chart, &samples)?;
    // The two legend entries, each with a disc at r = −1, left of the plotted range.
    dots(&mut chart, &[(-1.0, 0.0)], 3, stopped.filled())?;
    key(
        &mut chart,
        "clipped sample (no gradient)",
        Key::Dot(stopped.filled(), 4),
    )?;
    dots(&mut chart, &[(-1.0, 0.0)], 3, pushing.filled())?;
    key(
        &mut chart,
        "sample that pushes (size ∝ |A|)",
        Key::Dot(pushing.filled(), 4),
    )?;
    legend(&mut chart, theme, SeriesLabelPosition::UpperLeft)
}

impl View for CartPoleView {
    fn update(&mut self, params: &Params) {
        let config = config_from_params(params);
        self.physics = config.physics.clone();
        let driver = if params.choice("drive") == "you" {
            Driver::You
        } else {
            Driver::Agent
        };
        if driver != self.show.driver {
            self.show.driver = driver;
            self.show.returns.clear();
            self.show.new_episode();
            self.show.episode = 1;
        }
        let slice = (params.get("xdot"), params.get("thetadot"));
        let restart = match &self.trainer {
            Some(t) => !t.config.same_networks(&config),
            None => true,
        };
        if restart {
            if self.trainer.is_none() || self.seed != config.seed {
                let driver = self.show.driver;
                self.show = Show::new(config.seed);
                self.show.driver = driver;
            }
            self.slice = slice;
            self.start(config);
        } else {
            if let Some(t) = self.trainer.as_mut() {
                t.set_config(config);
            }
            if slice != self.slice {
                self.slice = slice;
                self.compute_heat();
            }
        }
        self.bump_all();
    }

    fn linked(&self, key: &str, params: &Params) -> Option<String> {
        // Choosing a preset sets the sliders it covers.
        (key == "preset")
            .then(|| preset_values(params.choice("preset")))
            .flatten()
            .map(|values| {
                values
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            })
    }

    fn restart(&mut self, params: &Params) {
        self.slice = (params.get("xdot"), params.get("thetadot"));
        self.start(config_from_params(params));
    }

    fn step(&mut self, _params: &Params, budget_ms: f64) -> Option<Json> {
        let start = now_ms();
        let deadline = start + budget_ms;
        if self.wall_start.is_none() {
            self.wall_start = Some(start);
        }
        // One heavy panel may be redrawn this frame; the heatmaps' forward pass over the
        // grid shares the training budget when it is their turn.
        // The frame's budget covers that redraw too (its measured cost), so a frame with a
        // heavy panel trains less instead of running long.
        let heavy = self.next_heavy(start);
        let reserve = match heavy {
            Some(3) => self.heat_cost + self.draw_ms[3].get(),
            Some(p) => self.draw_ms[p].get(),
            None => 0.0,
        }
        .min(budget_ms * 0.75);
        let mut worked = false;
        let mut trained_ms = 0.0;
        loop {
            let t = self.trainer.as_mut().expect("update ran");
            let Some(unit) = t.next_unit() else { break };
            let k = usize::from(unit == Unit::Chunk);
            let now = now_ms();
            if worked && now + self.cost[k] > deadline - reserve {
                break;
            }
            t.step(1);
            worked = true;
            let spent = now_ms() - now;
            trained_ms += spent;
            self.cost[k] = 0.9 * self.cost[k] + 0.1 * spent;
        }
        let end = now_ms();
        self.train_ms += trained_ms;
        if self.trainer().solved_at.is_some() && self.solved_wall_ms.is_none() {
            self.solved_wall_ms = Some(end - self.wall_start.unwrap_or(start));
            self.solved_train_ms = Some(self.train_ms);
        }
        if self.trainer().done() {
            // The last state, all of it.
            for p in 1..PANELS {
                self.release(p, end);
            }
        } else if let Some(p) = heavy.or_else(|| self.next_heavy(end)) {
            self.release(p, end);
        }
        Some(self.progress())
    }

    fn animating(&self) -> bool {
        true
    }

    fn tick(&mut self, _params: &Params, dt_ms: f64) {
        let physics = self.physics.clone();
        let s = &mut self.show;
        let mut changed = false;
        s.acc_ms += dt_ms.min(100.0);
        while s.acc_ms >= STEP_MS {
            s.acc_ms -= STEP_MS;
            changed = true;
            if s.fallen_ms > 0.0 {
                s.fallen_ms -= STEP_MS;
                if s.fallen_ms <= 0.0 {
                    s.new_episode();
                }
                continue;
            }
            let force = match s.driver {
                Driver::Agent => {
                    let obs = observe(&s.env.state);
                    let (p_right, _) = self
                        .trainer
                        .as_ref()
                        .expect("update ran")
                        .nets
                        .evaluate(&obs, 1);
                    if p_right[0] >= 0.5 {
                        physics.force_mag
                    } else {
                        -physics.force_mag
                    }
                }
                Driver::You => match (s.keys_left, s.keys_right) {
                    (true, false) => -physics.force_mag,
                    (false, true) => physics.force_mag,
                    _ => 0.0,
                },
            };
            s.last_force = force;
            s.env.state = physics.step_force(&s.env.state, force);
            s.env.steps += 1;
            s.trail.push((s.env.state, force));
            if is_terminal(&s.env.state) || s.env.steps >= MAX_EPISODE_STEPS {
                s.returns.push(s.env.steps as f64);
                if s.returns.len() > 50 {
                    s.returns.remove(0);
                }
                s.fallen_ms = FALLEN_MS;
            }
        }
        if changed {
            self.bump(&[0]);
        }
    }

    fn key_hint(&self, panel: usize) -> Option<&'static str> {
        (panel == 0).then_some(
            "Drive it yourself: set “Who pushes the cart” to you, then hold ← or → here (Space: new episode)",
        )
    }

    fn key(&mut self, panel: usize, key: &str, down: bool) -> bool {
        if panel != 0 {
            return false;
        }
        let s = &mut self.show;
        if key == "Blur" {
            s.keys_left = false;
            s.keys_right = false;
            return false;
        }
        if s.driver != Driver::You {
            return false;
        }
        match key {
            "ArrowLeft" => s.keys_left = down,
            "ArrowRight" => s.keys_right = down,
            " " => {
                if down {
                    s.new_episode();
                    self.bump(&[0]);
                }
            }
            _ => return false,
        }
        true
    }

    fn primary_params(&self) -> Option<usize> {
        // Preset, the eleven hyperparameters, the seed, who drives and the heatmap slice;
        // the step budget, schedules, switches and physics fold under "More settings".
        Some(16)
    }

    fn load_label(&self) -> Option<&'static str> {
        Some("Load weights…")
    }

    fn load(&mut self, params: &Params, text: &str) -> Result<Option<String>, String> {
        let (nets, shared) = parse_weights(text)?;
        let mut config = config_from_params(params);
        config.hidden = nets.hidden();
        config.shared = shared;
        let query = format!(
            "hidden={}&network={}",
            config.hidden,
            if shared { "shared" } else { "separate" }
        );
        self.start(config);
        if let Some(t) = self.trainer.as_mut() {
            t.nets = nets;
        }
        self.compute_heat();
        self.show.new_episode();
        self.bump_all();
        Ok(Some(query))
    }

    fn version(&self, panel: usize) -> Option<u64> {
        self.versions.get(panel).copied()
    }

    fn data(&self) -> Json {
        let mut j = history_json(self.trainer());
        if let Json::Obj(pairs) = &mut j {
            pairs.push((
                "timing".into(),
                Json::obj([
                    ("train_ms", Json::Num(self.train_ms)),
                    (
                        "solved_train_ms",
                        self.solved_train_ms.map_or(Json::Null, Json::Num),
                    ),
                    (
                        "solved_wall_ms",
                        self.solved_wall_ms.map_or(Json::Null, Json::Num),
                    ),
                ]),
            ));
            pairs.push(("heatmap".into(), self.heat_json()));
            pairs.push(("last_minibatch".into(), self.minibatch_json()));
            pairs.push(("display".into(), self.display_json()));
            let t = self.trainer();
            pairs.push((
                "network".into(),
                Json::obj([
                    ("hidden", Json::Num(t.nets.hidden() as f64)),
                    ("shared", Json::Bool(t.config.shared)),
                    ("params", Json::Num(t.nets.n_params() as f64)),
                ]),
            ));
        }
        j
    }

    fn panel_json(&self, panel: usize) -> Json {
        let h = history_json(self.trainer());
        match panel {
            0 => weights_json(self.trainer()),
            1 => Json::obj([
                ("episodes", h.get("episodes").cloned().unwrap_or(Json::Null)),
                (
                    "solved_at_steps",
                    h.get("solved_at_steps").cloned().unwrap_or(Json::Null),
                ),
            ]),
            2 => h.get("updates").cloned().unwrap_or(Json::Null),
            3 => self.heat_json(),
            _ => self.minibatch_json(),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        let t = self.trainer();
        let mut out = String::new();
        match panel {
            0 => {
                out.push_str("step,x,x_dot,theta,theta_dot,force\n");
                for (i, (s, f)) in self.show.trail.iter().enumerate() {
                    out.push_str(&format!(
                        "{},{},{},{},{},{}\n",
                        i + 1,
                        s[0],
                        s[1],
                        s[2],
                        s[3],
                        f
                    ));
                }
            }
            1 => {
                out.push_str("episode,env_steps,return,mean_return_last_20\n");
                let mut sum = 0.0;
                for (i, e) in t.episodes.iter().enumerate() {
                    sum += e.ret;
                    if i >= SOLVED_WINDOW {
                        sum -= t.episodes[i - SOLVED_WINDOW].ret;
                    }
                    let mean = sum / (i + 1).min(SOLVED_WINDOW) as f64;
                    out.push_str(&format!("{},{},{},{}\n", i + 1, e.env_steps, e.ret, mean));
                }
            }
            2 => {
                out.push_str("update,env_steps,episodes,mean_return_20,policy_loss,value_loss,entropy,approx_kl,clip_frac,explained_var,learning_rate,clip_coef,epochs,grad_norm\n");
                for u in &t.updates {
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                        u.update,
                        u.env_steps,
                        u.episodes,
                        u.mean_return_20,
                        u.policy_loss,
                        u.value_loss,
                        u.entropy,
                        u.approx_kl,
                        u.clip_frac,
                        u.explained_var,
                        u.learning_rate,
                        u.clip_coef,
                        u.epochs,
                        u.grad_norm
                    ));
                }
            }
            3 => {
                out.push_str("x,theta,x_dot,theta_dot,p_right,value\n");
                for (j, th) in self.heat.theta.iter().enumerate() {
                    for (i, x) in self.heat.x.iter().enumerate() {
                        let k = j * HEAT_NX + i;
                        out.push_str(&format!(
                            "{x},{th},{},{},{},{}\n",
                            self.slice.0, self.slice.1, self.heat.p_right[k], self.heat.value[k]
                        ));
                    }
                }
            }
            _ => {
                let eps = t.updates.last().map_or(t.config.clip_coef, |u| u.clip_coef);
                out.push_str("ratio,advantage,clipped\n");
                for &(r, a) in &t.last_minibatch {
                    out.push_str(&format!(
                        "{r},{a},{}\n",
                        clipped_sample(r, a, eps, t.config.clip)
                    ));
                }
            }
        }
        out
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        let wide = width >= WIDE;
        match panel {
            0 => {
                if wide {
                    240.0
                } else {
                    210.0
                }
            }
            1 => 300.0,
            2 => {
                if wide {
                    340.0
                } else {
                    480.0
                }
            }
            3 => {
                if wide {
                    310.0
                } else {
                    2.0 * 290.0
                }
            }
            _ => 320.0,
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let start = now_ms();
        let result = match panel {
            0 => draw_cart(self, area, theme),
            1 => draw_curve(self, area, theme),
            2 => draw_diagnostics(self, area, theme),
            3 => draw_heat(self, area, theme),
            _ => draw_clip(self, area, theme),
        };
        if let Some(cost) = self.draw_ms.get(panel) {
            cost.set(0.7 * cost.get() + 0.3 * (now_ms() - start));
        }
        result
    }

    fn describe(&self, panel: usize) -> String {
        let t = self.trainer();
        let mean = t.mean_return_20();
        match panel {
            0 => {
                let [x, _, th, _] = self.show.env.state;
                format!(
                    "A cart at x = {x:.2} m with its pole at {:.1} degrees, pushed by {}; episode {}, step {}.",
                    th.to_degrees(),
                    if self.show.driver == Driver::You { "you" } else { "the agent" },
                    self.show.episode,
                    self.show.env.steps
                )
            }
            1 => format!(
                "{} episodes over {} environment steps; mean return of the last 20: {}{}.",
                t.episodes.len(),
                t.env_steps,
                if mean.is_finite() { format!("{mean:.0}") } else { "none yet".into() },
                t.solved_at.map_or(String::new(), |s| format!("; solved (at least 475) at {s} steps"))
            ),
            2 => match t.updates.last() {
                Some(u) => format!(
                    "{} updates. Latest: policy loss {:.4}, value loss {:.4}, entropy {:.3}, approx KL {:.4}, clip fraction {:.3}, explained variance {:.3}.",
                    t.updates.len(), u.policy_loss, u.value_loss, u.entropy, u.approx_kl, u.clip_frac, u.explained_var
                ),
                None => "No update yet.".into(),
            },
            3 => {
                let p = &self.heat.p_right;
                let right = p.iter().filter(|&&q| q >= 0.5).count();
                format!(
                    "Heatmaps over cart position and pole angle at x_dot = {:.1}, theta_dot = {:.1}: the policy pushes right in {right} of {} cells.",
                    self.slice.0, self.slice.1, p.len()
                )
            }
            _ => {
                let eps = t.updates.last().map_or(t.config.clip_coef, |u| u.clip_coef);
                let n = t.last_minibatch.len();
                let c = t
                    .last_minibatch
                    .iter()
                    .filter(|(r, a)| clipped_sample(*r, *a, eps, t.config.clip))
                    .count();
                format!("The last minibatch's {n} samples on PPO's clipped objective; {c} of them are clipped and contribute no gradient.")
            }
        }
    }
}
