//! The wasm-bindgen layer: one [`Handle`] per custom element, drawing into that element's
//! own canvases (never looked up by id), and the registry the page builds its elements from.
//!
//! The element itself (shadow DOM, sliders, lifecycle, events) lives in `www/mlplay.js`;
//! this layer owns the parameters and the plotted data, so large state stays in wasm memory
//! and JS holds an opaque handle. Panics are caught by a hook that logs them to the console
//! and keeps the message for the element to show, so a bug never leaves a blank page.

mod attention;
mod attn_draw;
#[cfg(feature = "browser-bench")]
mod bench;
mod cartpole;
mod diffusion;
mod dpo;
mod flash;
mod gpu;
mod grpo;
mod kvcache;
mod plot;
mod ppo_clip;
mod rope;
mod scaling;
mod transformer;

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
    /// Widgets that take data as text (pasted, or loaded from a file): what the page's text
    /// box is for. `None` (the default): no text box.
    fn text_input(&self) -> Option<&'static TextInput> {
        None
    }
    /// The data the text box shows now, in the format `set_text` reads.
    fn text(&self) -> String {
        String::new()
    }
    /// Use `text` as the widget's data; an empty text goes back to the widget's own
    /// (generated) data. `Ok` carries a short summary of what was read; `Err` a message for
    /// a notice, with the data in force kept.
    fn set_text(&mut self, _params: &Params, _text: &str) -> Result<String, String> {
        Err("this widget takes no text input".to_string())
    }
    /// Parameters that follow from setting `key` (a preset menu sets the sliders), as a
    /// query string applied right after it; `None` when nothing else changes.
    fn linked(&self, _key: &str, _params: &Params) -> Option<String> {
        None
    }
    /// A number that changes whenever panel `panel` would draw differently (same theme
    /// and size); the page skips redrawing unchanged panels while it animates or trains.
    /// `None`: always redraw.
    fn version(&self, _panel: usize) -> Option<u64> {
        None
    }
    /// Whether the view wants animation frames even when not training (a simulation that
    /// plays on screen); the page then calls [`View::tick`] every frame while visible.
    fn animating(&self) -> bool {
        false
    }
    /// Advance what is animated by `dt_ms` of wall-clock time.
    fn tick(&mut self, _params: &Params, _dt_ms: f64) {}
    /// A short hint when panel `panel` takes keyboard input (its canvas becomes focusable).
    fn key_hint(&self, _panel: usize) -> Option<&'static str> {
        None
    }
    /// A key (`KeyboardEvent.key`) went down or up on panel `panel`; true if it was used.
    fn key(&mut self, _panel: usize, _key: &str, _down: bool) -> bool {
        false
    }
    /// A file the view wants now, as a path relative to `mlplay.js` (default weights, say).
    /// The page fetches each path once and hands the result to [`View::provide`].
    fn resource(&self) -> Option<String> {
        None
    }
    /// The bytes of `path`, or why they could not be fetched; `Err` becomes a notice.
    fn provide(
        &mut self,
        _params: &Params,
        _path: &str,
        _bytes: Result<&[u8], &str>,
    ) -> Result<(), String> {
        Ok(())
    }
    /// A short hint when panel `panel` takes pointer input (drawing points with a mouse or
    /// finger); its canvas then gets the hint as its tooltip and `touch-action: none`.
    fn pointer_hint(&self, _panel: usize) -> Option<&'static str> {
        None
    }
    /// A short hint when panel `panel` follows the pointer without a press (hovering a
    /// query row, say; a tap on a touch screen): the page sends [`View::pointer`] events of
    /// kind "hover" for it and, unlike [`View::pointer_hint`], leaves scrolling alone.
    fn hover_hint(&self, _panel: usize) -> Option<&'static str> {
        None
    }
    /// A pointer `kind` ("down", "move", "up"; "hover" on hover panels) at (x, y) CSS px on panel `panel`, drawn at
    /// `width` x `height` CSS px; true if it was used (the page then redraws).
    #[allow(clippy::too_many_arguments)]
    fn pointer(
        &mut self,
        _params: &Params,
        _panel: usize,
        _kind: &str,
        _x: f64,
        _y: f64,
        _width: f64,
        _height: f64,
    ) -> bool {
        false
    }
    /// How many parameters (from the top of the table) the page shows at once; the rest go
    /// under "More settings". `None`: all of them.
    fn primary_params(&self) -> Option<usize> {
        None
    }
    /// The label of a "load a file" button, when the view can load something (weights).
    fn load_label(&self) -> Option<&'static str> {
        None
    }
    /// Load a file's text; `Ok(query)` gives parameters that follow from what was loaded
    /// (applied to the parameters without another `update`), `Err` the reason it was refused.
    fn load(&mut self, _params: &Params, _text: &str) -> Result<Option<String>, String> {
        Err("this widget does not load files".into())
    }
    /// What computes the numbers, for the badge in the widget's header: "WebGPU: <adapter>",
    /// "CPU: <why>". `None` (the default): no badge.
    fn backend(&self) -> Option<String> {
        None
    }
}

/// A widget's text box: data given as text, e.g. a CSV of preference pairs.
pub(crate) struct TextInput {
    /// The box's heading, e.g. "Preference pairs (CSV)".
    pub label: &'static str,
    /// The format, and what applying it does, in a sentence or two.
    pub doc: &'static str,
    /// File types the "Load file" picker offers, e.g. ".csv,text/csv".
    pub accept: &'static str,
}

/// Milliseconds from the browser's high-resolution clock (`performance.now()`, in windows
/// and workers; `Date.now()`, whole milliseconds, where there is none), for time budgets.
pub(crate) fn now_ms() -> f64 {
    thread_local! {
        static NOW: Option<js_sys::Function> = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
            .ok()
            .filter(|p| p.is_object())
            .and_then(|p| {
                let now = js_sys::Reflect::get(&p, &"now".into()).ok()?;
                let f: js_sys::Function = now.dyn_into().ok()?;
                Some(f.bind0(&p))
            });
    }
    NOW.with(|now| {
        now.as_ref()
            .and_then(|f| f.call0(&JsValue::NULL).ok())
            .and_then(|v| v.as_f64())
            .unwrap_or_else(js_sys::Date::now)
    })
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
        "cartpole-ppo" => (Box::new(cartpole::CartPoleView::default()), &cartpole::INFO),
        "rope" => (Box::new(rope::RopeView::default()), &rope::INFO),
        "dpo" => (Box::new(dpo::DpoView::default()), &dpo::INFO),
        "grpo" => (Box::new(grpo::GrpoView::default()), &grpo::INFO),
        "scaling-laws" => (Box::new(scaling::ScalingView::default()), &scaling::INFO),
        "attention" => (
            Box::new(attention::AttentionView::default()),
            &attention::INFO,
        ),
        "flash-attention" => (Box::new(flash::FlashView::default()), &flash::INFO),
        "kv-cache" => (Box::new(kvcache::KvCacheView::default()), &kvcache::INFO),
        "diffusion" => (
            Box::new(diffusion::DiffusionView::new(false)),
            &diffusion::INFO,
        ),
        "flow-matching" => (
            Box::new(diffusion::DiffusionView::new(true)),
            &diffusion::FLOW_INFO,
        ),
        "transformer" => (
            Box::new(transformer::TransformerView::default()),
            &transformer::INFO,
        ),
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
                    let text_input = view.text_input().map_or(Json::Null, |t| {
                        Json::obj([
                            ("label", Json::str(t.label)),
                            ("doc", Json::str(t.doc)),
                            ("accept", Json::str(t.accept)),
                        ])
                    });
                    pairs.push(("text_input".into(), text_input));
                    pairs.push((
                        "keys".into(),
                        Json::Arr(
                            (0..info.panels.len())
                                .map(|i| view.key_hint(i).map_or(Json::Null, Json::str))
                                .collect(),
                        ),
                    ));
                    pairs.push((
                        "pointer".into(),
                        Json::Arr(
                            (0..info.panels.len())
                                .map(|i| view.pointer_hint(i).map_or(Json::Null, Json::str))
                                .collect(),
                        ),
                    ));
                    pairs.push((
                        "hover".into(),
                        Json::Arr(
                            (0..info.panels.len())
                                .map(|i| view.hover_hint(i).map_or(Json::Null, Json::str))
                                .collect(),
                        ),
                    ));
                    pairs.push((
                        "load".into(),
                        view.load_label().map_or(Json::Null, Json::str),
                    ));
                    pairs.push((
                        "primary".into(),
                        view.primary_params()
                            .map_or(Json::Null, |n| Json::Num(n as f64)),
                    ));
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

/// One widget instance: its parameters and its views.
#[wasm_bindgen]
pub struct Handle {
    params: Params,
    view: Box<dyn View>,
    dirty: bool,
    /// The version each panel had when it was last drawn (see [`View::version`]).
    drawn: Vec<Option<u64>>,
}

#[wasm_bindgen]
impl Handle {
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str) -> Result<Handle, JsError> {
        let spec =
            widgets::find(name).ok_or_else(|| JsError::new(&format!("no widget {name:?}")))?;
        let (view, _) = view_for(spec);
        Ok(Handle {
            params: Params::defaults(spec),
            view,
            dirty: true,
            drawn: Vec::new(),
        })
    }

    /// Set one parameter leniently; returns the notice's message when the value was replaced.
    pub fn set(&mut self, key: &str, raw: &str) -> Option<String> {
        self.dirty = true;
        let notice = self.params.set(key, raw).map(|n| n.message);
        self.apply_linked(key);
        notice
    }

    /// Parameters that follow from `key` (see [`View::linked`]), applied after it.
    fn apply_linked(&mut self, key: &str) {
        if let Some(query) = self.view.linked(key, &self.params) {
            self.params.apply_query(&query, &[]);
        }
    }

    /// Apply a URL query string; returns the notices as a JSON array of `{key, message}`.
    #[wasm_bindgen(js_name = applyQuery)]
    pub fn apply_query(&mut self, query: &str) -> String {
        self.dirty = true;
        let mut notices = Vec::new();
        for (k, v) in crate::params::query_pairs(query) {
            if ["w", "hide", "theme"].contains(&k.as_str()) {
                continue;
            }
            notices.extend(self.params.set(&k, &v));
            self.apply_linked(&k);
        }
        notices_json(&notices)
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

    /// The parameters alone as JSON (what `change` events carry; cheaper than `state`).
    pub fn params(&self) -> String {
        self.params.to_json().to_string()
    }

    /// Background work left (see `View::pending`); trainers report false.
    pub fn pending(&mut self) -> bool {
        self.fresh().pending()
    }

    /// What computes this widget's numbers (the header badge), or "" for none.
    pub fn backend(&mut self) -> String {
        self.fresh().backend().unwrap_or_default()
    }

    /// Every parameter as `key=value&...`, exact, for share links.
    pub fn query(&self) -> String {
        self.params.to_query()
    }

    pub fn reset(&mut self) {
        self.params = Params::defaults(self.params.spec);
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

    /// The widget's data as text (what its text box shows); "" for widgets without one.
    pub fn text(&mut self) -> String {
        self.fresh().text()
    }

    /// Use `text` as the widget's data ("" goes back to its generated data). Returns
    /// `{"ok": true, "message": summary}` or `{"ok": false, "message": why}` as JSON; on
    /// failure the data in force is kept.
    #[wasm_bindgen(js_name = setText)]
    pub fn set_text(&mut self, text: &str) -> String {
        self.fresh();
        let (ok, message) = match self.view.set_text(&self.params, text) {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        Json::obj([("ok", Json::Bool(ok)), ("message", Json::str(message))]).to_string()
    }

    /// Whether panel `panel` would draw differently from its last drawing (always true for
    /// views without versions); the page asks before redrawing while it animates.
    pub fn changed(&mut self, panel: usize) -> bool {
        let v = self.fresh().version(panel);
        v.is_none() || self.drawn.get(panel).copied().flatten() != v
    }

    /// Whether the view wants animation frames (see [`View::animating`]).
    pub fn animating(&mut self) -> bool {
        self.fresh().animating()
    }

    /// Advance the view's animation by `dt_ms` of wall-clock time.
    pub fn tick(&mut self, dt_ms: f64) {
        self.fresh();
        self.view.tick(&self.params, dt_ms);
    }

    /// A key went down or up on a panel; true when the view used it.
    pub fn key(&mut self, panel: usize, key: &str, down: bool) -> bool {
        self.fresh();
        self.view.key(panel, key, down)
    }

    /// The path of a file the view wants fetched (relative to mlplay.js), or "".
    pub fn resource(&mut self) -> String {
        self.fresh().resource().unwrap_or_default()
    }

    /// The fetched bytes of `path` (`error` non-empty when the fetch failed); returns "" or
    /// the reason they were refused.
    pub fn provide(&mut self, path: &str, bytes: &[u8], error: &str) -> String {
        self.fresh();
        let got = if error.is_empty() {
            Ok(bytes)
        } else {
            Err(error)
        };
        self.view
            .provide(&self.params, path, got)
            .err()
            .unwrap_or_default()
    }

    /// A pointer event on a panel; true when the view used it.
    #[allow(clippy::too_many_arguments)]
    pub fn pointer(
        &mut self,
        panel: usize,
        kind: &str,
        x: f64,
        y: f64,
        width: f64,
        height: f64,
    ) -> bool {
        self.fresh();
        self.view
            .pointer(&self.params, panel, kind, x, y, width, height)
    }

    /// Load a file's text (weights, say); returns "" or the reason it was refused.
    pub fn load(&mut self, text: &str) -> String {
        self.fresh();
        match self.view.load(&self.params, text) {
            Ok(query) => {
                if let Some(q) = query {
                    // What the loaded file implies for the parameters; the view already
                    // matches it, so no update is needed.
                    self.params.apply_query(&q, &[]);
                }
                String::new()
            }
            Err(msg) => msg,
        }
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
        plot::set_context(Some((ctx, scale)));
        let view = self.fresh();
        let drawn = view.draw(panel, &root, &theme);
        plot::set_context(None);
        drawn.map_err(|e| JsError::new(&e))?;
        let version = view.version(panel);
        if self.drawn.len() <= panel {
            self.drawn.resize(panel + 1, None);
        }
        self.drawn[panel] = version;
        root.present().map_err(|e| JsError::new(&e.to_string()))?;
        Ok(())
    }
}
