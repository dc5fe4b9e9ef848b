//! The wasm-bindgen layer: one [`Handle`] per custom element, drawing into that element's
//! own canvases (never looked up by id), and the registry the page builds its elements from.
//!
//! The element itself (shadow DOM, sliders, lifecycle, events) lives in `www/mlplay.js`;
//! this layer owns the parameters and the plotted data, so large state stays in wasm memory
//! and JS holds an opaque handle. Panics are caught by a hook that logs them to the console
//! and keeps the message for the element to show, so a bug never leaves a blank page.

mod plot;
mod ppo_clip;
mod rope;
mod scaling;

use std::cell::RefCell;

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::json::Json;
use crate::params::{Notice, Params, WidgetSpec};
use crate::widgets;

pub(crate) use plot::{Area, Theme};

/// What the page needs to draw one widget: its views, computed from the parameters.
pub(crate) trait View {
    /// Recompute everything plotted from the parameters.
    fn update(&mut self, params: &Params);
    /// All plotted data (the `data` of the element's `state`).
    fn data(&self) -> Json;
    /// One panel's plotted data (JSON export).
    fn panel_json(&self, panel: usize) -> Json;
    /// One panel's plotted data as CSV (CSV export).
    fn panel_csv(&self, panel: usize) -> String;
    /// Panel height in CSS pixels for a given width (narrow screens stack sub-plots).
    fn panel_height(&self, panel: usize, width: f64) -> f64;
    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String>;
    /// A sentence describing what the panel shows now, for screen readers.
    fn describe(&self, panel: usize) -> String;
    /// Trainers only: do about `budget_ms` of work (the page keeps each frame under 8 ms)
    /// and report progress as `{"done", "fraction", "text", "error"}`; `error` (a diverging
    /// run, say) pauses training with the message shown and the last good state kept.
    fn step(&mut self, _params: &Params, _budget_ms: f64) -> Option<Json> {
        None
    }
    /// Trainers only: start training again from scratch with the current parameters.
    fn restart(&mut self, _params: &Params) {}
    /// Work left to do in the background, for widgets that are not trainers (a fit spread
    /// over frames, say): while this is true and the element is on screen, the page calls
    /// [`View::step`] once per animation frame and redraws, without any training controls.
    fn pending(&self) -> bool {
        false
    }
    /// Free-text inputs this widget shows under its controls (none by default).
    fn texts(&self) -> &'static [TextInput] {
        &[]
    }
    /// The current value of one of [`View::texts`].
    fn text(&self, _key: &str) -> String {
        String::new()
    }
    /// Set one of [`View::texts`]; returns a notice when part of the text could not be used.
    fn set_text(&mut self, _key: &str, _value: &str) -> Option<String> {
        None
    }
}

/// A free-text input under a widget's sliders (a CSV of data points, say), for state the
/// numeric parameter table cannot hold. Its key works like a parameter's: an element
/// attribute and property, a share-link key (written only when it differs from the
/// default), `set`, and Reset. The view owns and validates the text.
pub(crate) struct TextInput {
    pub key: &'static str,
    pub label: &'static str,
    /// One sentence under the box: what goes in it.
    pub doc: &'static str,
    pub rows: u32,
}

/// Milliseconds from the browser's clock, for trainers' time budgets.
#[allow(dead_code)] // used by trainers
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The web-only description of a widget: panel titles and its equation as MathML, whose
/// `<mi data-key="...">` symbols the page ties to the sliders.
pub(crate) struct WebInfo {
    pub panels: &'static [&'static str],
    pub equation: &'static str,
}

fn view_for(spec: &WidgetSpec) -> (Box<dyn View>, &'static WebInfo) {
    match spec.name {
        "ppo-clip" => (Box::new(ppo_clip::PpoClipView::default()), &ppo_clip::INFO),
        "rope" => (Box::new(rope::RopeView::default()), &rope::INFO),
        "scaling-laws" => (Box::new(scaling::ScalingView::default()), &scaling::INFO),
        other => unreachable!("widget {other} has no web view"),
    }
}

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        web_sys::console::error_1(&format!("mlplay panicked: {msg}").into());
        LAST_PANIC.with(|p| *p.borrow_mut() = msg);
    }));
}

/// The message of the last Rust panic, for the element that hit it to show.
#[wasm_bindgen(js_name = lastPanic)]
pub fn last_panic() -> String {
    LAST_PANIC.with(|p| p.borrow().clone())
}

/// Every widget: its parameter table, panels and equation, as JSON.
#[wasm_bindgen]
pub fn registry() -> String {
    Json::Arr(
        widgets::ALL
            .iter()
            .map(|spec| {
                let (view, info) = view_for(spec);
                let mut obj = spec.to_json();
                if let Json::Obj(pairs) = &mut obj {
                    pairs.push((
                        "panels".into(),
                        Json::Arr(info.panels.iter().map(|t| Json::str(*t)).collect()),
                    ));
                    pairs.push(("equation".into(), Json::str(info.equation)));
                    let texts = view.texts().iter().map(|t| {
                        Json::obj([
                            ("key", Json::str(t.key)),
                            ("label", Json::str(t.label)),
                            ("doc", Json::str(t.doc)),
                            ("rows", Json::Num(f64::from(t.rows))),
                            ("default", Json::str(view.text(t.key))),
                        ])
                    });
                    pairs.push(("texts".into(), Json::Arr(texts.collect())));
                }
                obj
            })
            .collect(),
    )
    .to_string()
}

fn notices_json(notices: &[Notice]) -> String {
    Json::Arr(
        notices
            .iter()
            .map(|n| {
                Json::obj([
                    ("key", Json::str(&n.key)),
                    ("message", Json::str(&n.message)),
                ])
            })
            .collect(),
    )
    .to_string()
}

/// `%XX`-encode everything but unreserved characters, for text values in share links.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Query keys that belong to the page, not to any widget.
const PAGE_KEYS: [&str; 3] = ["w", "hide", "theme"];

/// One widget instance: its parameters and its views.
#[wasm_bindgen]
pub struct Handle {
    params: Params,
    view: Box<dyn View>,
    dirty: bool,
    /// Each text input's starting value, for Reset and for leaving defaults out of links.
    text_defaults: Vec<(&'static str, String)>,
}

impl Handle {
    fn is_text(&self, key: &str) -> bool {
        self.text_defaults.iter().any(|(k, _)| *k == key)
    }
}

#[wasm_bindgen]
impl Handle {
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> Result<Handle, JsError> {
        let spec =
            widgets::find(name).ok_or_else(|| JsError::new(&format!("no widget {name:?}")))?;
        let (view, _) = view_for(spec);
        let text_defaults = view
            .texts()
            .iter()
            .map(|t| (t.key, view.text(t.key)))
            .collect();
        Ok(Handle {
            params: Params::defaults(spec),
            view,
            dirty: true,
            text_defaults,
        })
    }

    /// Set one parameter (or text input) leniently; returns the notice's message when the
    /// value was replaced or partly unusable.
    pub fn set(&mut self, key: &str, raw: &str) -> Option<String> {
        self.dirty = true;
        if self.is_text(key) {
            return self.view.set_text(key, raw);
        }
        self.params.set(key, raw).map(|n| n.message)
    }

    /// A text input's current value ("" for a key that is not one).
    pub fn text(&self, key: &str) -> String {
        if self.is_text(key) {
            self.view.text(key)
        } else {
            String::new()
        }
    }

    /// Apply a URL query string; returns the notices as a JSON array of `{key, message}`.
    #[wasm_bindgen(js_name = applyQuery)]
    pub fn apply_query(&mut self, query: &str) -> String {
        self.dirty = true;
        let texts: Vec<&'static str> = self.text_defaults.iter().map(|(k, _)| *k).collect();
        let ignore: Vec<&str> = PAGE_KEYS.iter().chain(&texts).copied().collect();
        let mut notices = self.params.apply_query(query, &ignore);
        for pair in query.trim_start_matches('?').split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = crate::params::percent_decode(k);
            if let Some(&key) = texts.iter().find(|t| **t == key) {
                let value = crate::params::percent_decode(v);
                if let Some(message) = self.view.set_text(key, &value) {
                    notices.push(Notice {
                        key: key.to_string(),
                        message,
                    });
                }
            }
        }
        notices_json(&notices)
    }

    /// The parameters alone as JSON (what `change` events carry; cheaper than `state`).
    pub fn params(&self) -> String {
        self.params.to_json().to_string()
    }

    /// Background work left (see `View::pending`); trainers report false.
    pub fn pending(&mut self) -> bool {
        self.fresh().pending()
    }

    /// A parameter's value (NaN for a key the widget does not have).
    pub fn get(&self, key: &str) -> f64 {
        self.params
            .spec
            .param(key)
            .map_or(f64::NAN, |_| self.params.get(key))
    }

    /// A parameter's value formatted as its slider readout shows it.
    pub fn format(&self, key: &str) -> String {
        self.params
            .spec
            .param(key)
            .map_or_else(String::new, |p| p.format(self.params.get(key)))
    }

    /// Every parameter as `key=value&...`, exact, for share links; then each text input
    /// that differs from its default, percent-encoded.
    pub fn query(&self) -> String {
        let mut q = self.params.to_query();
        for (key, default) in &self.text_defaults {
            let value = self.view.text(key);
            if value != *default {
                q.push_str(&format!("&{key}={}", percent_encode(&value)));
            }
        }
        q
    }

    pub fn reset(&mut self) {
        self.params = Params::defaults(self.params.spec);
        for (key, default) in &self.text_defaults {
            self.view.set_text(key, default);
        }
        self.dirty = true;
    }

    fn fresh(&mut self) -> &dyn View {
        if self.dirty {
            self.view.update(&self.params);
            self.dirty = false;
        }
        self.view.as_ref()
    }

    /// Trainers (and views with background work): about `budget_ms` of work; progress as
    /// JSON, or "" for widgets with nothing to do.
    pub fn step(&mut self, budget_ms: f64) -> String {
        if self.dirty {
            self.view.update(&self.params);
            self.dirty = false;
        }
        self.view
            .step(&self.params, budget_ms)
            .map_or_else(String::new, |p| p.to_string())
    }

    /// Trainers: start again from scratch with the current parameters.
    pub fn restart(&mut self) {
        self.fresh();
        self.view.restart(&self.params);
    }

    /// `{"widget", "params", "data"}` as JSON.
    pub fn state(&mut self) -> String {
        let data = self.fresh().data();
        Json::obj([
            ("widget", Json::str(self.params.spec.name)),
            ("params", self.params.to_json()),
            ("data", data),
        ])
        .to_string()
    }

    #[wasm_bindgen(js_name = panelJson)]
    pub fn panel_json(&mut self, panel: usize) -> String {
        self.fresh().panel_json(panel).to_string()
    }

    #[wasm_bindgen(js_name = panelCsv)]
    pub fn panel_csv(&mut self, panel: usize) -> String {
        self.fresh().panel_csv(panel)
    }

    #[wasm_bindgen(js_name = panelHeight)]
    pub fn panel_height(&mut self, panel: usize, width: f64) -> f64 {
        self.fresh().panel_height(panel, width)
    }

    pub fn describe(&mut self, panel: usize) -> String {
        self.fresh().describe(panel)
    }

    /// Draw a panel into a canvas of `width` x `height` CSS pixels; the canvas's own size
    /// is in device pixels, so the drawing is scaled to stay sharp on high-DPI screens.
    pub fn draw(
        &mut self,
        panel: usize,
        canvas: HtmlCanvasElement,
        dark: bool,
        width: f64,
        height: f64,
    ) -> Result<(), JsError> {
        let ctx: CanvasRenderingContext2d = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into().ok())
            .ok_or_else(|| JsError::new("no 2d canvas context"))?;
        let scale = f64::from(canvas.width()) / width.max(1.0);
        ctx.set_transform(scale, 0.0, 0.0, scale, 0.0, 0.0)
            .map_err(|_| JsError::new("canvas transform failed"))?;
        let backend = CanvasBackend::with_canvas_object(canvas)
            .ok_or_else(|| JsError::new("canvas backend unavailable"))?;
        let root = backend
            .into_drawing_area()
            .shrink((0, 0), (width.round() as u32, height.round() as u32));
        let theme = Theme::new(dark);
        root.fill(&theme.bg)
            .map_err(|e| JsError::new(&e.to_string()))?;
        let view = self.fresh();
        view.draw(panel, &root, &theme)
            .map_err(|e| JsError::new(&e))?;
        root.present().map_err(|e| JsError::new(&e.to_string()))?;
        Ok(())
    }
}
