//! Drawing for `<ml-transformer>`: 0 the loss and accuracy per step, 1 the attention map of
//! every layer and head on a probe sequence of the task (hover a row, or ↑/↓, to pick the
//! query), 2 each head's attention entropy and the layer-by-layer plot, 3 the
//! previous-token and induction scores per head and as training goes, 4 the next-token
//! distribution after the prompt and a sampled continuation.
//!
//! Training runs in `step` one sequence at a time within the frame budget (the core's
//! `Run`: the same numbers as `mlplay transformer`); every `ANALYSE_EVERY` steps the
//! model is looked at (maps, scores, generation) in three more units of work. The trainer
//! sits behind [`Backend`]: the CPU, or the page's GPU (parameter `backend`, "webgpu").

use plotters::prelude::*;

use super::attn_draw::{
    draw_heatmap, heatmap_box, legend as strip_legend, legend_layout, lines, note, prob_colorbar,
    wrapped, Mark,
};
use super::dpo::{chart, height_n, split_n, step_chart, zip};
use super::gpu::{with_gpu, Gpu};
use super::plot::{dashed, dots, line, rects, tick, Area, Pt, Theme};
use super::{now_ms, TextInput, View, WebInfo};
use std::cell::RefCell;
use std::rc::Rc;

use crate::gpu::transformer::GpuTransformer;
use crate::json::Json;
use crate::params::Params;
use crate::transformer::model::Model;
use crate::transformer::tasks::Task;
use crate::transformer::train::{StepStats, TrainConfig, Trainer};
use crate::transformer::widget::{
    default_prompt, history_json, parse_prompt, probe, train_config, uniform_entropy,
    uniform_scores, Analysis, Generation, Run, ANALYSE_EVERY, ARCH_KEYS, MARK,
};

pub(crate) const INFO: WebInfo = WebInfo {
    panels: &[
        "Training: loss and accuracy of each batch",
        "Attention maps, layer by layer and head by head, on a probe sequence",
        "Attention entropy per head and per layer",
        "Previous-token and induction scores per head",
        "Sampling: the next-token distribution after the prompt",
    ],
    equation: r#"<math display="block"><mrow><msub><mi>A</mi><mi data-key="heads">h</mi></msub><mo>=</mo><mi>softmax</mi><mrow><mo>(</mo><mfrac><mrow><msub><mi>Q</mi><mi>h</mi></msub><msubsup><mi>K</mi><mi>h</mi><mo>⊤</mo></msubsup></mrow><msqrt><mrow><mi data-key="d_model">d</mi><mo>/</mo><mi data-key="heads">H</mi></mrow></msqrt></mfrac><mo>+</mo><mi>M</mi><mo>)</mo></mrow><mspace width="1.2em"/><mi>L</mi><mo>=</mo><mo>−</mo><mfrac><mn>1</mn><mi>N</mi></mfrac><mo>∑</mo><mi>log</mi><mi>p</mi><mo>(</mo><msub><mi>x</mi><mrow><mi>t</mi><mo>+</mo><mn>1</mn></mrow></msub><mo>∣</mo><msub><mi>x</mi><mrow><mo>≤</mo><mi>t</mi></mrow></msub><mo>)</mo><mspace width="1.2em"/><msub><mi>p</mi><mi data-key="temp">T</mi></msub><mo>∝</mo><msup><mi>e</mi><mrow><mi>z</mi><mo>/</mo><mi data-key="temp">T</mi></mrow></msup></mrow></math>"#,
};

static TEXT_INPUT: TextInput = TextInput {
    label: "Prompt",
    doc: "Characters of the task's alphabet (induction: a-z; copy, reverse: a-p and |; brackets: ( ) [ ] = Y N; text: the passage's letters and punctuation). Apply samples after it; \"Use generated data\" goes back to the task's own prompt.",
    accept: ".txt,text/plain",
};

/// What trains the model: the CPU (the core's `Run`, one sequence per unit of work) or the
/// page's GPU (`gpu::transformer`: one submit per step, its statistics read back
/// asynchronously). Both answer with the same `Trainer` (config, history, model).
enum Backend {
    Cpu(Box<Run>),
    Gpu(Box<GpuArm>),
}

/// The page's GPU once acquired (or why not); `None` while it is being acquired.
type GpuSlot = Rc<RefCell<Option<Result<Rc<Gpu>, String>>>>;

/// What arrives from the GPU between frames.
#[derive(Default)]
struct Inbox {
    stats: Option<Result<StepStats, String>>,
    params: Option<Result<Vec<f64>, String>>,
}

/// Training on the page's GPU. `shadow` holds the config, the history and the model the view
/// looks at: the parameters are read back whenever a look is due, and the step is reported
/// only once they are in, so every map and score is of the step it is labelled with.
struct GpuArm {
    gpu: Rc<Gpu>,
    t: GpuTransformer,
    shadow: Trainer,
    inbox: Rc<RefCell<Inbox>>,
    in_flight: bool,
    held: Option<StepStats>,
}

impl GpuArm {
    fn new(gpu: Rc<Gpu>, c: TrainConfig) -> Result<GpuArm, String> {
        let t = gpu.transformer_trainer(c.clone())?;
        Ok(GpuArm {
            gpu,
            t,
            shadow: Trainer::new(c)?,
            inbox: Rc::default(),
            in_flight: false,
            held: None,
        })
    }

    /// Submit a step, or collect what arrived; `look(step)` says whether that step is looked
    /// at (its parameters are read back first).
    fn work(&mut self, look: impl Fn(u64) -> bool) -> Option<Result<StepStats, String>> {
        let (stats, params) = {
            let mut ib = self.inbox.borrow_mut();
            (ib.stats.take(), ib.params.take())
        };
        if let Some(p) = params {
            self.in_flight = false;
            let p = match p {
                Ok(p) => p,
                Err(e) => return Some(Err(e)),
            };
            self.shadow.model = Model::from_params(self.shadow.model.config.clone(), p);
            let s = self.held.take()?;
            self.shadow.history.push(s);
            return Some(Ok(s));
        }
        if let Some(r) = stats {
            self.in_flight = false;
            let s = match r {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            self.t.record(s);
            if !look(s.step) {
                self.shadow.history.push(s);
                return Some(Ok(s));
            }
            self.held = Some(s);
            let (gpu, inbox, read) = (
                self.gpu.clone(),
                self.inbox.clone(),
                self.t.params_readback(),
            );
            self.in_flight = true;
            wasm_bindgen_futures::spawn_local(async move {
                let p = read.read(&gpu.ctx).await;
                inbox.borrow_mut().params = Some(p);
            });
            return None;
        }
        if self.in_flight {
            return None;
        }
        // The optimiser's settings in force (the view changes them on the shadow).
        self.t.config.lr = self.shadow.config.lr;
        self.t.config.clip = self.shadow.config.clip;
        let read = match self.t.submit_step(&self.gpu.ctx) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let (gpu, inbox) = (self.gpu.clone(), self.inbox.clone());
        self.in_flight = true;
        wasm_bindgen_futures::spawn_local(async move {
            let s = read.read(&gpu.ctx).await;
            inbox.borrow_mut().stats = Some(s);
        });
        None
    }
}

impl Backend {
    /// One unit of work; the step's stats when it completed one.
    fn work(&mut self, look: impl Fn(u64) -> bool) -> Option<Result<StepStats, String>> {
        match self {
            Backend::Cpu(r) => r.work(),
            Backend::Gpu(g) => g.work(look),
        }
    }
    /// The trainer: its config (the optimiser's settings are changed here), history, model.
    fn trainer(&self) -> &Trainer {
        match self {
            Backend::Cpu(r) => &r.trainer,
            Backend::Gpu(g) => &g.shadow,
        }
    }
    fn trainer_mut(&mut self) -> &mut Trainer {
        match self {
            Backend::Cpu(r) => &mut r.trainer,
            Backend::Gpu(g) => &mut g.shadow,
        }
    }
    fn partial(&self) -> f64 {
        match self {
            Backend::Cpu(r) => r.partial(),
            Backend::Gpu(_) => 0.0,
        }
    }
    /// Waiting for the GPU: nothing to do in this frame.
    fn waiting(&self) -> bool {
        matches!(self, Backend::Gpu(g) if g.in_flight)
    }
    fn label(&self) -> String {
        match self {
            Backend::Cpu(_) => "CPU: WebAssembly".into(),
            Backend::Gpu(g) => g.gpu.label(),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Backend::Cpu(_) => "cpu",
            Backend::Gpu(_) => "webgpu",
        }
    }
}

#[derive(Default)]
pub(crate) struct TransformerView {
    backend: Option<Backend>,
    /// The page's GPU once asked for (backend "webgpu"): `None` while it is being acquired.
    gpu: GpuSlot,
    gpu_asked: bool,
    /// Built on the CPU while the GPU was being acquired: move to it before the first step.
    retry_gpu: bool,
    /// When the GPU run's first step was submitted (its tokens per second are wall time).
    gpu_t0: f64,
    /// The values of ARCH_KEYS the model was built for.
    arch: Vec<f64>,
    note: Option<String>,
    error: Option<String>,
    total: u64,
    analysis: Option<Analysis>,
    /// Analysis units left for the step just completed (3: maps, 2: scores, 1: generation).
    due: u8,
    /// (step, best previous-token score, best induction score) at each analysis.
    scores: Vec<(u64, f64, f64)>,
    prompt: Vec<usize>,
    custom: bool,
    temp: f64,
    gen: Option<Generation>,
    query: usize,
    /// Time spent training and tokens read, for tokens per second.
    train_ms: f64,
    tokens: u64,
    v_train: u64,
    v_maps: u64,
    v_gen: u64,
}

fn best(s: &[Vec<f64>]) -> f64 {
    s.iter().flatten().fold(0.0, |m: f64, &v| m.max(v))
}

impl TransformerView {
    fn task(&self) -> Task {
        self.backend
            .as_ref()
            .map_or(Task::Induction, |b| b.trainer().config.task)
    }

    fn config(&self) -> Option<&TrainConfig> {
        self.backend.as_ref().map(|b| &b.trainer().config)
    }

    fn model(&self) -> Option<&Model> {
        self.backend.as_ref().map(|b| &b.trainer().model)
    }

    fn steps(&self) -> u64 {
        self.backend.as_ref().map_or(0, |b| b.trainer().steps())
    }

    /// A new model for the parameters in force: step 0, looked at at once.
    fn rebuild(&mut self, params: &Params) {
        let (c, note) = train_config(params);
        let task_changed = self.config().map(|o| o.task) != Some(c.task);
        self.note = note;
        self.error = None;
        self.scores.clear();
        self.train_ms = 0.0;
        self.tokens = 0;
        self.due = 0;
        if task_changed || !self.custom {
            self.custom = false;
            self.prompt = default_prompt(c.task, c.ctx, c.seed);
        }
        self.retry_gpu = false;
        let built = if params.choice("backend") == "webgpu" {
            let gpu = self.gpu.borrow().clone();
            let (b, why) = match gpu {
                Some(Ok(g)) => match GpuArm::new(g, c.clone()) {
                    Ok(a) => (Ok(Backend::Gpu(Box::new(a))), None),
                    Err(e) => (
                        Run::new(c).map(|r| Backend::Cpu(Box::new(r))),
                        Some(format!("WebGPU: {e}; training on the CPU")),
                    ),
                },
                Some(Err(e)) => (
                    Run::new(c).map(|r| Backend::Cpu(Box::new(r))),
                    Some(format!("no WebGPU ({e}): training on the CPU")),
                ),
                None => {
                    if !self.gpu_asked {
                        self.gpu_asked = true;
                        let slot = self.gpu.clone();
                        with_gpu(move |g| *slot.borrow_mut() = Some(g));
                    }
                    self.retry_gpu = true;
                    (
                        Run::new(c).map(|r| Backend::Cpu(Box::new(r))),
                        Some(
                            "WebGPU is starting; the run moves to it before its first step".into(),
                        ),
                    )
                }
            };
            if let Some(w) = why {
                self.note = Some(match self.note.take() {
                    Some(n) => format!("{n}; {w}"),
                    None => w,
                });
            }
            b
        } else {
            Run::new(c).map(|r| Backend::Cpu(Box::new(r)))
        };
        match built {
            Ok(b) => self.backend = Some(b),
            Err(e) => {
                self.backend = None;
                self.error = Some(e);
                return;
            }
        }
        let (task, ctx, seed) = {
            let c = self.config().expect("built");
            (c.task, c.ctx, c.seed)
        };
        let a = Analysis::full(self.model().expect("built"), 0, probe(task, ctx, seed));
        self.scores.push((0, best(&a.prev), best(&a.induction)));
        self.query = a.probe.len() - 1;
        self.analysis = Some(a);
        self.generate();
        self.v_train += 1;
        self.v_maps += 1;
    }

    /// The GPU asked for has answered while the run, built on the CPU meanwhile, has not
    /// started: time to rebuild it there.
    fn gpu_arrived(&self) -> bool {
        self.retry_gpu && self.steps() == 0 && self.gpu.borrow().is_some()
    }

    fn generate(&mut self) {
        if let (Some(m), Some(c)) = (self.model(), self.config()) {
            self.gen = Some(Generation::new(m, &self.prompt, self.temp, c.seed));
            self.v_gen += 1;
        }
    }

    /// One unit of the analysis due.
    fn analyse(&mut self) {
        let step = self.steps();
        let Some(b) = self.backend.as_ref() else {
            self.due = 0;
            return;
        };
        let (model, c) = (&b.trainer().model, &b.trainer().config);
        match self.due {
            3 => {
                let a = Analysis::maps(model, step, probe(c.task, c.ctx, c.seed));
                let old = self.analysis.replace(a);
                // The scores of the last look stay until this one's are in.
                if let (Some(a), Some(o)) = (self.analysis.as_mut(), old) {
                    a.prev = o.prev;
                    a.induction = o.induction;
                }
                self.v_maps += 1;
            }
            2 => {
                if let Some(a) = self.analysis.as_mut() {
                    a.score(model);
                    self.scores.push((step, best(&a.prev), best(&a.induction)));
                }
                self.v_maps += 1;
            }
            _ => self.generate(),
        }
        self.due -= 1;
    }

    fn progress(&self, done: bool) -> Json {
        let s = self.steps();
        let frac = if self.total == 0 {
            1.0
        } else {
            ((s as f64 + self.backend.as_ref().map_or(0.0, Backend::partial)) / self.total as f64)
                .min(1.0)
        };
        let text = match self
            .backend
            .as_ref()
            .and_then(|b| b.trainer().history.last())
        {
            Some(h) => format!(
                "step {s} of {}, loss {:.3}, {} tokens/s",
                self.total,
                h.loss,
                super::attn_draw::compact(self.tokens_per_s().round())
            ),
            None => format!("step 0 of {}", self.total),
        };
        Json::obj([
            ("done", Json::Bool(done)),
            ("fraction", Json::Num(frac)),
            ("text", Json::str(text)),
            ("error", self.error.clone().map_or(Json::Null, Json::Str)),
        ])
    }

    fn tokens_per_s(&self) -> f64 {
        if self.train_ms > 0.0 {
            self.tokens as f64 / self.train_ms * 1e3
        } else {
            0.0
        }
    }

    fn words(&self) -> Vec<String> {
        let task = self.task();
        self.analysis.as_ref().map_or_else(Vec::new, |a| {
            a.probe.iter().map(|&t| show(task, t)).collect()
        })
    }

    fn query_text(&self) -> String {
        let Some(a) = &self.analysis else {
            return String::new();
        };
        let words = self.words();
        let q = self.query.min(a.probe.len() - 1);
        let mut parts = Vec::new();
        for (l, layer) in a.maps.iter().enumerate() {
            for (h, m) in layer.iter().enumerate() {
                let row = m.row(q);
                let (j, p) =
                    row.iter()
                        .enumerate()
                        .fold((0, 0.0), |b, (j, &p)| if p > b.1 { (j, p) } else { b });
                parts.push(format!("L{l}H{h} → {j} {} ({p:.2})", words[j]));
            }
        }
        format!("Query {q} {}: {}", words[q], parts.join(", "))
    }
}

/// A token as the panels print it (a space as ␣).
fn show(task: Task, t: usize) -> String {
    match task.alphabet()[t] {
        ' ' => "␣".to_string(),
        c => c.to_string(),
    }
}

/// Heatmap columns at a width (each at least 150 px, so a phone shows two).
fn grid_cols(heads: usize, width: f64) -> usize {
    ((width / 150.0).floor() as usize).clamp(1, heads.max(1))
}

/// Cell height of the map grid (the square, its labels and title).
fn cell_height(width: f64, cols: usize) -> f64 {
    let cw = (width / cols as f64).floor();
    let lab = if cw >= 200.0 { 52.0 } else { 0.0 };
    (cw - lab - 10.0).min(300.0) + lab + 24.0
}

const BAR_H: f64 = 40.0;

/// Height of the architecture line above the loss curves.
fn arch_height(text: &str, width: f64) -> f64 {
    17.0 * lines(text, width) as f64 + 8.0
}

impl View for TransformerView {
    fn update(&mut self, params: &Params) {
        self.total = params.get("steps") as u64;
        let arch: Vec<f64> = ARCH_KEYS.iter().map(|k| params.get(k)).collect();
        let temp = params.get("temp");
        let (c, _) = train_config(params);
        // The GPU run's buffers are sized for its batch: a new batch restarts it.
        let gpu_batch =
            matches!(&self.backend, Some(Backend::Gpu(g)) if g.t.config.batch != c.batch);
        if arch != self.arch || self.backend.is_none() || gpu_batch || self.gpu_arrived() {
            self.arch = arch;
            self.temp = temp;
            self.rebuild(params);
            return;
        }
        // The optimiser's settings take effect at the next step.
        if let Some(b) = self.backend.as_mut() {
            let t = &mut b.trainer_mut().config;
            (t.lr, t.batch, t.clip) = (c.lr, c.batch, c.clip);
        }
        if temp != self.temp {
            self.temp = temp;
            self.generate();
        }
        self.v_train += 1;
    }

    fn step(&mut self, params: &Params, budget_ms: f64) -> Option<Json> {
        let start = now_ms();
        if self.gpu_arrived() {
            self.rebuild(params);
        }
        let total = self.total;
        let look = move |s: u64| s % ANALYSE_EVERY == 0 || s == total;
        loop {
            if self.due > 0 {
                self.analyse();
            } else if self.steps() >= self.total || self.backend.is_none() {
                return Some(self.progress(true));
            } else {
                let t0 = now_ms();
                let b = self.backend.as_mut().expect("checked");
                let (ctx, batch) = (b.trainer().config.ctx, b.trainer().config.batch);
                let gpu = matches!(b, Backend::Gpu(_));
                if gpu && b.trainer().steps() == 0 && !b.waiting() {
                    self.gpu_t0 = t0;
                }
                let r = b.work(look);
                let waiting = b.waiting();
                if !gpu {
                    // One sequence of the batch.
                    self.train_ms += now_ms() - t0;
                    self.tokens += ctx as u64;
                }
                match r {
                    Some(Ok(s)) => {
                        self.v_train += 1;
                        if gpu {
                            // Wall time: the GPU works between frames.
                            self.train_ms = now_ms() - self.gpu_t0;
                            self.tokens += (batch * ctx) as u64;
                        }
                        if look(s.step) {
                            self.due = 3;
                        }
                    }
                    Some(Err(e)) => {
                        self.error = Some(e);
                        return Some(self.progress(false));
                    }
                    // The GPU is working: hand the frame back to the browser.
                    None if waiting => break,
                    None => {}
                }
            }
            if now_ms() - start >= budget_ms {
                break;
            }
        }
        let done = self.steps() >= self.total && self.due == 0;
        Some(self.progress(done))
    }

    fn restart(&mut self, params: &Params) {
        self.rebuild(params);
    }

    fn text_input(&self) -> Option<&'static TextInput> {
        Some(&TEXT_INPUT)
    }

    fn text(&self) -> String {
        self.task().decode(&self.prompt)
    }

    fn set_text(&mut self, _params: &Params, text: &str) -> Result<String, String> {
        let Some(c) = self.config() else {
            return Err("no model".into());
        };
        let (task, ctx, seed) = (c.task, c.ctx, c.seed);
        if text.trim().is_empty() {
            self.custom = false;
            self.prompt = default_prompt(task, ctx, seed);
        } else {
            self.prompt = parse_prompt(task, text.trim_end_matches(['\n', '\r']))?;
            self.custom = true;
        }
        self.generate();
        Ok(format!("{} characters", self.prompt.len()))
    }

    fn key_hint(&self, panel: usize) -> Option<&'static str> {
        (panel == 1).then_some("↑ ↓ pick the query row (Home, End)")
    }

    fn key(&mut self, panel: usize, key: &str, down: bool) -> bool {
        let Some(a) = &self.analysis else {
            return false;
        };
        if panel != 1 || !down {
            return false;
        }
        let last = a.probe.len() - 1;
        self.query = match key {
            "ArrowUp" => self.query.saturating_sub(1),
            "ArrowDown" => (self.query + 1).min(last),
            "Home" => 0,
            "End" => last,
            _ => return false,
        };
        true
    }

    fn hover_hint(&self, panel: usize) -> Option<&'static str> {
        (panel == 1).then_some("Hover a row (tap on a phone) to see where each head looks")
    }

    fn pointer(
        &mut self,
        _params: &Params,
        panel: usize,
        kind: &str,
        x: f64,
        y: f64,
        width: f64,
        _height: f64,
    ) -> bool {
        let (Some(a), true) = (&self.analysis, panel == 1 && kind == "hover") else {
            return false;
        };
        let heads = a.maps.first().map_or(1, Vec::len);
        let cols = grid_cols(heads, width);
        let cw = (width / cols as f64).floor();
        let ch = cell_height(width, cols);
        let (lx, ly) = (x % cw, y % ch);
        if y >= ch * (a.maps.len() * heads.div_ceil(cols)) as f64 {
            return false;
        }
        let (x0, y0, side, _) = heatmap_box(cw, ch);
        if lx < x0 || lx > x0 + side || ly < y0 || ly >= y0 + side {
            return false;
        }
        let q = (((ly - y0) / side) * a.probe.len() as f64) as usize;
        let q = q.min(a.probe.len() - 1);
        let changed = q != self.query;
        self.query = q;
        changed
    }

    fn primary_params(&self) -> Option<usize> {
        Some(8)
    }

    fn backend(&self) -> Option<String> {
        self.backend.as_ref().map(Backend::label)
    }

    fn version(&self, panel: usize) -> Option<u64> {
        Some(match panel {
            0 => self.v_train,
            1 => self.v_maps * 1000 + self.query as u64,
            2 | 3 => self.v_maps,
            _ => self.v_gen,
        })
    }

    fn data(&self) -> Json {
        let task = self.task();
        let c = self.config();
        let history = self
            .backend
            .as_ref()
            .map_or_else(|| history_json(&[]), |b| history_json(&b.trainer().history));
        let ctx = c.map_or(0, |c| c.ctx);
        let (bp, bi) = uniform_scores(ctx.max(2));
        let config = c.map_or(Json::Null, |c| {
            Json::obj([
                ("task", Json::str(c.task.name())),
                ("layers", Json::Num(c.n_layers as f64)),
                ("heads", Json::Num(c.n_heads as f64)),
                ("d_model", Json::Num(c.d_model as f64)),
                ("ctx", Json::Num(c.ctx as f64)),
                ("pos", Json::str(c.pos.name())),
                ("tied", Json::Bool(c.tied)),
                ("batch", Json::Num(c.batch as f64)),
                ("lr", Json::Num(c.lr)),
                ("clip", Json::Num(c.clip)),
                ("seed", Json::Num(c.seed as f64)),
                (
                    "n_params",
                    Json::Num(self.model().map_or(0, Model::n_params) as f64),
                ),
            ])
        });
        Json::obj([
            (
                "backend",
                Json::str(self.backend.as_ref().map_or("cpu", Backend::name)),
            ),
            ("config", config),
            ("note", self.note.clone().map_or(Json::Null, Json::Str)),
            ("error", self.error.clone().map_or(Json::Null, Json::Str)),
            ("step", Json::Num(self.steps() as f64)),
            ("steps", Json::Num(self.total as f64)),
            ("tokens_per_s", Json::Num(self.tokens_per_s())),
            ("history", history),
            (
                "analysis",
                self.analysis
                    .as_ref()
                    .map_or(Json::Null, |a| a.to_json(task)),
            ),
            ("query", Json::Num(self.query as f64)),
            ("mark", Json::Num(MARK)),
            (
                "uniform",
                Json::obj([
                    ("previous_token", Json::Num(bp)),
                    ("induction", Json::Num(bi)),
                ]),
            ),
            ("score_history", self.score_json()),
            (
                "generation",
                self.gen.as_ref().map_or(Json::Null, |g| g.to_json(task)),
            ),
            ("custom_prompt", Json::Bool(self.custom)),
        ])
    }

    fn panel_json(&self, panel: usize) -> Json {
        let d = self.data();
        let Json::Obj(pairs) = d else { return d };
        let pick = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map_or(Json::Null, |p| p.1.clone())
        };
        match panel {
            0 => pick("history"),
            1..=3 => Json::obj([
                ("analysis", pick("analysis")),
                ("score_history", pick("score_history")),
                ("uniform", pick("uniform")),
                ("query", pick("query")),
            ]),
            _ => pick("generation"),
        }
    }

    fn panel_csv(&self, panel: usize) -> String {
        let mut out = String::new();
        let task = self.task();
        match panel {
            0 => {
                out.push_str("step,loss,accuracy,grad_norm\n");
                if let Some(b) = &self.backend {
                    for s in &b.trainer().history {
                        out.push_str(&format!(
                            "{},{},{},{}\n",
                            s.step, s.loss, s.accuracy, s.grad_norm
                        ));
                    }
                }
            }
            1 => {
                out.push_str("layer,head,query,key,query_token,key_token,weight\n");
                if let Some(a) = &self.analysis {
                    let w: Vec<String> = a.probe.iter().map(|&t| show(task, t)).collect();
                    for (l, layer) in a.maps.iter().enumerate() {
                        for (h, m) in layer.iter().enumerate() {
                            for ((i, j), v) in m.indexed_iter().filter(|(ij, _)| ij.1 <= ij.0) {
                                out.push_str(&format!("{l},{h},{i},{j},{},{},{v}\n", w[i], w[j]));
                            }
                        }
                    }
                }
            }
            2 | 3 => {
                out.push_str("layer,head,entropy,previous_token,induction\n");
                if let Some(a) = &self.analysis {
                    for (l, layer) in a.entropy.iter().enumerate() {
                        for (h, e) in layer.iter().enumerate() {
                            let g = |s: &Vec<Vec<f64>>| s.get(l).and_then(|r| r.get(h)).copied();
                            out.push_str(&format!(
                                "{l},{h},{e},{},{}\n",
                                g(&a.prev).unwrap_or(f64::NAN),
                                g(&a.induction).unwrap_or(f64::NAN)
                            ));
                        }
                    }
                }
            }
            _ => {
                out.push_str("token,probability\n");
                if let Some(g) = &self.gen {
                    for (i, p) in g.next.iter().enumerate() {
                        out.push_str(&format!("\"{}\",{p}\n", task.alphabet()[i]));
                    }
                }
            }
        }
        out
    }

    fn panel_height(&self, panel: usize, width: f64) -> f64 {
        let (layers, heads) = self.config().map_or((1, 1), |c| (c.n_layers, c.n_heads));
        match panel {
            0 => {
                arch_height(&self.arch_line(), width)
                    + strip_height(&LOSS_KEYS, width)
                    + height_n(2, width, 300.0, 260.0)
            }
            1 => {
                let cols = grid_cols(heads, width);
                let rows = layers * heads.div_ceil(cols);
                cell_height(width, cols) * rows as f64
                    + BAR_H
                    + 17.0 * lines(&self.query_text(), width) as f64
                    + 8.0
            }
            2 => strip_height(&ENTROPY_KEYS, width) + height_n(2, width, 300.0, 260.0),
            3 => strip_height(&SCORE_KEYS, width) + height_n(2, width, 300.0, 260.0),
            _ => {
                let (p, s) = self.gen_lines();
                17.0 * (lines(&p, width) + lines(&s, width)) as f64 + 14.0 + 280.0
            }
        }
    }

    fn draw(&self, panel: usize, area: &Area, theme: &Theme) -> Result<(), String> {
        let (w, _) = area.dim_in_pixel();
        let width = f64::from(w);
        if self.backend.is_none() {
            return note(area, theme, self.error.as_deref().unwrap_or(""), 8);
        }
        match panel {
            0 => self.draw_training(area, theme, width),
            1 => self.draw_maps(area, theme, width),
            2 => self.draw_entropy(area, theme, width),
            3 => self.draw_scores(area, theme, width),
            _ => self.draw_generation(area, theme, width),
        }
    }

    fn describe(&self, panel: usize) -> String {
        let Some(a) = &self.analysis else {
            return self.error.clone().unwrap_or_default();
        };
        let marked = |i: usize| {
            let mut v = Vec::new();
            for l in 0..a.maps.len() {
                for h in 0..a.maps[l].len() {
                    let m = a.marks(l, h);
                    if [m.0, m.1][i] {
                        v.push(format!("L{l}H{h}"));
                    }
                }
            }
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        match panel {
            0 => match self
                .backend
                .as_ref()
                .and_then(|b| b.trainer().history.last())
            {
                Some(h) => format!(
                    "Step {} of {}: loss {:.3}, accuracy {:.2}.",
                    h.step, self.total, h.loss, h.accuracy
                ),
                None => format!("Not trained yet: {} steps to go.", self.total),
            },
            1 => format!("At step {}. {}", a.step, self.query_text()),
            2 => format!(
                "Mean attention entropy per layer (nats): {}.",
                a.layer_entropy()
                    .iter()
                    .map(|e| format!("{e:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            3 => format!(
                "Previous-token heads: {}; induction heads: {} (score at least {MARK}).",
                marked(0),
                marked(1)
            ),
            _ => {
                let (p, s) = self.gen_lines();
                format!("{p}. {s}.")
            }
        }
    }
}

impl TransformerView {
    fn score_json(&self) -> Json {
        let col = |f: fn(&(u64, f64, f64)) -> f64| {
            Json::nums(&self.scores.iter().map(f).collect::<Vec<_>>())
        };
        Json::obj([
            ("step", col(|s| s.0 as f64)),
            ("previous_token", col(|s| s.1)),
            ("induction", col(|s| s.2)),
        ])
    }

    fn gen_lines(&self) -> (String, String) {
        let task = self.task();
        let Some(g) = &self.gen else {
            return (String::new(), String::new());
        };
        let text = |t: &[usize]| t.iter().map(|&x| show(task, x)).collect::<String>();
        (
            format!("Prompt: {}", text(&g.prompt)),
            format!("Sample (T = {:.2}): {}", g.temperature, text(&g.sample)),
        )
    }

    fn arch_line(&self) -> String {
        let Some(c) = self.config() else {
            return String::new();
        };
        let mut s = format!(
            "{} · {} layers × {} heads, d_model {}, {} positions, {} parameters · changing these restarts training",
            c.task.name(),
            c.n_layers,
            c.n_heads,
            c.d_model,
            c.pos.name(),
            super::kvcache::group(self.model().map_or(0, Model::n_params))
        );
        if let Some(n) = &self.note {
            s = format!("{n}. {s}");
        }
        s
    }

    fn draw_training(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let arch = self.arch_line();
        let (top, rest) = area.split_vertically(arch_height(&arch, width) as u32);
        wrapped(&top, theme, &arch, 4)?;
        let b = self.backend.as_ref().expect("checked");
        let hist = &b.trainer().history;
        let xs: Vec<f64> = hist.iter().map(|s| s.step as f64).collect();
        let loss: Vec<f64> = hist.iter().map(|s| s.loss).collect();
        let acc: Vec<f64> = hist.iter().map(|s| s.accuracy).collect();
        let steps = (self.total.max(self.steps())) as f64;
        let (thin, smooth, green) = (
            theme.muted.stroke_width(1),
            theme.accent.stroke_width(2),
            theme.palette[2].stroke_width(2),
        );
        let rest = strip(
            &rest,
            theme,
            &[
                (Mark::Dashed(theme.muted), LOSS_KEYS[0].into()),
                (Mark::Line(theme.accent), LOSS_KEYS[1].into()),
                (Mark::Line(theme.palette[2]), LOSS_KEYS[2].into()),
            ],
        )?;
        let parts = split_n(&rest, 2, width);
        let ln_v = crate::math::ln(self.task().vocab() as f64);
        let top_loss = loss
            .iter()
            .fold(ln_v, |m, &l| if l.is_finite() { m.max(l) } else { m });
        let mut c = step_chart(
            &parts[0],
            theme,
            "Loss (nats)",
            steps,
            0.0..top_loss * 1.08,
            "loss",
        )?;
        dashed(&mut c, &[(0.0, ln_v), (steps, ln_v)], 5, 4, thin)?;
        line(
            &mut c,
            &zip(&xs, &loss),
            theme.accent.mix(0.3).stroke_width(1),
        )?;
        line(&mut c, &zip(&xs, &ema(&loss)), smooth)?;
        let mut c = step_chart(
            &parts[1],
            theme,
            "Accuracy (next token)",
            steps,
            0.0..1.02,
            "accuracy",
        )?;
        line(
            &mut c,
            &zip(&xs, &acc),
            theme.palette[2].mix(0.3).stroke_width(1),
        )?;
        line(&mut c, &zip(&xs, &ema(&acc)), green)
    }

    fn draw_maps(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let a = self.analysis.as_ref().expect("built");
        let heads = a.maps.first().map_or(1, Vec::len);
        let cols = grid_cols(heads, width);
        let ch = cell_height(width, cols);
        let cw = (width / cols as f64).floor();
        let per_layer = heads.div_ceil(cols);
        let words = self.words();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let q = self.query.min(a.probe.len() - 1);
        let n = a.probe.len();
        let (_, _, side, _) = heatmap_box(cw, ch);
        let k = n.div_ceil((side / 3.0).floor().max(1.0) as usize).max(1);
        for (l, layer) in a.maps.iter().enumerate() {
            for (h, m) in layer.iter().enumerate() {
                let row = l * per_layer + h / cols;
                let cell = area.clone().shrink(
                    (((h % cols) as f64 * cw) as u32, (row as f64 * ch) as u32),
                    (cw as u32, ch as u32),
                );
                let (prev, ind) = a.marks(l, h);
                let (color, tag) = match (prev, ind) {
                    (_, true) => (theme.palette[2], " · induction"),
                    (true, _) => (theme.palette[1], " · prev-token"),
                    _ => (theme.muted, ""),
                };
                let title = format!("L{l} H{h}{tag}");
                if k == 1 {
                    let w32 = m.mapv(|v| v as f32);
                    draw_heatmap(&cell, theme, &refs, w32.view(), q, &title, color)?;
                } else {
                    // Cells under 3 px: each drawn cell holds the largest weight of a k x k
                    // block (a sharp diagonal stays visible), and a 32-head, 128-token grid
                    // redraws several times faster.
                    let b = n.div_ceil(k);
                    let pooled = ndarray::Array2::from_shape_fn((b, b), |(r, c)| {
                        let mut best = 0.0f64;
                        for i in r * k..((r + 1) * k).min(n) {
                            for j in c * k..((c + 1) * k).min(n) {
                                best = best.max(m[[i, j]]);
                            }
                        }
                        best as f32
                    });
                    let blank = vec![""; b];
                    draw_heatmap(&cell, theme, &blank, pooled.view(), q / k, &title, color)?;
                }
            }
        }
        let grid_h = ch * (a.maps.len() * per_layer) as f64;
        let (_, below) = area.split_vertically(grid_h as u32);
        let (bar, text) = below.split_vertically(BAR_H as u32);
        let caption = if width >= 560.0 {
            "attention weight (rows sum to 1; frames: orange previous-token, green induction head)"
        } else {
            "weight"
        };
        prob_colorbar(&bar, theme, 1.0, caption)?;
        wrapped(&text, theme, &self.query_text(), 2)?;
        Ok(())
    }

    fn draw_entropy(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let a = self.analysis.as_ref().expect("built");
        let area = strip(
            area,
            theme,
            &[
                (Mark::Dot(theme.muted), ENTROPY_KEYS[0].into()),
                (Mark::Line(theme.accent), ENTROPY_KEYS[1].into()),
                (Mark::Dashed(theme.muted), ENTROPY_KEYS[2].into()),
            ],
        )?;
        let parts = split_n(&area, 2, width);
        let u = uniform_entropy(a.probe.len());
        let layers = a.entropy.len();
        let heads = a.entropy.first().map_or(1, Vec::len);
        let slot = heads + 1;
        let n = (layers * slot) as f64 - 1.0;
        let fmt_x = head_label(slot, heads);
        let thin = theme.muted.stroke_width(1);
        let mut c = chart(
            &parts[0],
            theme,
            &format!("Entropy per head (step {})", a.step),
            -0.6..n - 0.4,
            0.0..u * 1.12,
            "",
            "nats",
            &fmt_x,
            &|v| tick(*v),
            (layers * slot).min(if width < 560.0 { 8 } else { 16 }),
            false,
        )?;
        let mut bars = Vec::new();
        for (l, row) in a.entropy.iter().enumerate() {
            let fill = if l % 2 == 0 {
                theme.accent.filled()
            } else {
                theme.accent.mix(0.55).filled()
            };
            for (h, &e) in row.iter().enumerate() {
                let x = (l * slot + h) as f64;
                bars.push(([(x - 0.38, 0.0), (x + 0.38, e)], fill));
            }
        }
        rects(&mut c, &bars)?;
        dashed(&mut c, &[(-0.6, u), (n - 0.4, u)], 5, 4, thin)?;

        let le = a.layer_entropy();
        let mut c = chart(
            &parts[1],
            theme,
            "Layer by layer",
            -0.3..(layers as f64 - 0.7),
            0.0..u * 1.12,
            "layer",
            "mean entropy (nats)",
            &|v: &f64| {
                if (v - v.round()).abs() < 1e-9 {
                    tick(*v)
                } else {
                    String::new()
                }
            },
            &|v| tick(*v),
            layers.max(2),
            false,
        )?;
        let mut pts = Vec::new();
        for (l, row) in a.entropy.iter().enumerate() {
            for &e in row {
                pts.push((l as f64, e));
            }
        }
        dots(&mut c, &pts, 4, theme.muted.mix(0.8).filled())?;
        let lp: Vec<Pt> = le.iter().enumerate().map(|(l, &e)| (l as f64, e)).collect();
        line(&mut c, &lp, theme.accent.stroke_width(2))?;
        dots(&mut c, &lp, 5, theme.accent.filled())?;
        dashed(&mut c, &[(-0.3, u), (layers as f64 - 0.7, u)], 5, 4, thin)
    }

    fn draw_scores(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let a = self.analysis.as_ref().expect("built");
        let (cp, ci) = (theme.palette[1], theme.palette[2]);
        let area = strip(
            area,
            theme,
            &[
                (Mark::Line(cp), SCORE_KEYS[0].into()),
                (Mark::Line(ci), SCORE_KEYS[1].into()),
                (Mark::Dashed(theme.fg), SCORE_KEYS[2].into()),
                (Mark::Dashed(theme.muted), SCORE_KEYS[3].into()),
            ],
        )?;
        let parts = split_n(&area, 2, width);
        let ctx = self.config().map_or(2, |c| c.ctx);
        let (bp, bi) = uniform_scores(ctx);
        let layers = a.prev.len();
        let heads = a.prev.first().map_or(1, Vec::len);
        let slot = heads + 1;
        let n = (layers * slot) as f64 - 1.0;
        let fmt_x = head_label(slot, heads);
        let mut c = chart(
            &parts[0],
            theme,
            &format!("Scores per head (step {})", a.step),
            -0.6..n - 0.4,
            0.0..1.02,
            "",
            "mean attention on the key",
            &fmt_x,
            &|v| tick(*v),
            (layers * slot).min(if width < 560.0 { 8 } else { 16 }),
            false,
        )?;
        let mut bars = Vec::new();
        for l in 0..layers {
            for h in 0..heads {
                let x = (l * slot + h) as f64;
                bars.push(([(x - 0.4, 0.0), (x, a.prev[l][h])], cp.filled()));
                bars.push(([(x, 0.0), (x + 0.4, a.induction[l][h])], ci.filled()));
            }
        }
        rects(&mut c, &bars)?;
        let mark = theme.fg.stroke_width(1);
        dashed(&mut c, &[(-0.6, MARK), (n - 0.4, MARK)], 6, 3, mark)?;
        dashed(
            &mut c,
            &[(-0.6, bp), (n - 0.4, bp)],
            2,
            3,
            cp.stroke_width(1),
        )?;
        dashed(
            &mut c,
            &[(-0.6, bi), (n - 0.4, bi)],
            2,
            3,
            ci.stroke_width(1),
        )?;

        let steps = self.total.max(self.steps()) as f64;
        let mut c = step_chart(
            &parts[1],
            theme,
            "Best head as it trains",
            steps,
            0.0..1.02,
            "score",
        )?;
        let xs: Vec<f64> = self.scores.iter().map(|s| s.0 as f64).collect();
        let p: Vec<f64> = self.scores.iter().map(|s| s.1).collect();
        let i: Vec<f64> = self.scores.iter().map(|s| s.2).collect();
        dashed(&mut c, &[(0.0, MARK), (steps, MARK)], 6, 3, mark)?;
        line(&mut c, &zip(&xs, &p), cp.stroke_width(2))?;
        line(&mut c, &zip(&xs, &i), ci.stroke_width(2))
    }

    fn draw_generation(&self, area: &Area, theme: &Theme, width: f64) -> Result<(), String> {
        let task = self.task();
        let Some(g) = &self.gen else { return Ok(()) };
        let (p, s) = self.gen_lines();
        let y = wrapped(area, theme, &p, 4)?;
        let y = wrapped(area, theme, &s, y)?;
        let (_, rest) = area.split_vertically((y + 10) as u32);
        let v = g.next.len();
        let labels: Vec<String> = (0..v).map(|i| show(task, i)).collect();
        let every = ((v as f64 * 14.0 / (width - 60.0)).ceil() as usize).max(1);
        let fmt_x = |x: &f64| {
            let i = x.round() as usize;
            if (x - x.round()).abs() < 1e-9 && i < v && i % every == 0 {
                labels[i].clone()
            } else {
                String::new()
            }
        };
        let top = g.next.iter().fold(0.0f64, |m, &p| m.max(p));
        let mut c = chart(
            &rest,
            theme,
            &format!("Next token after the prompt (T = {:.2})", g.temperature),
            -0.6..v as f64 - 0.4,
            0.0..(top * 1.1).max(0.05),
            "token",
            "probability",
            &fmt_x,
            &|v| tick(*v),
            v,
            false,
        )?;
        let argmax = g
            .next
            .iter()
            .enumerate()
            .fold(0, |b, (i, &p)| if p > g.next[b] { i } else { b });
        let bars: Vec<([Pt; 2], ShapeStyle)> = g
            .next
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let style = if i == argmax {
                    theme.accent.filled()
                } else {
                    theme.accent.mix(0.45).filled()
                };
                ([(i as f64 - 0.4, 0.0), (i as f64 + 0.4, p)], style)
            })
            .collect();
        rects(&mut c, &bars)
    }
}

/// Tick labels "L0H1" for bars grouped by layer (`slot` places a layer, `heads` filled).
fn head_label(slot: usize, heads: usize) -> impl Fn(&f64) -> String {
    move |v: &f64| {
        let i = v.round() as usize;
        if (v - v.round()).abs() < 1e-9 && v >= &-0.1 && i % slot < heads {
            format!("L{}H{}", i / slot, i % slot)
        } else {
            String::new()
        }
    }
}

/// A legend strip across the top of `area` (outside the plots, so it never covers data);
/// returns the area below it.
fn strip(area: &Area, theme: &Theme, items: &[(Mark, String)]) -> Result<Area, String> {
    let (w, _) = area.dim_in_pixel();
    let labels: Vec<String> = items.iter().map(|i| i.1.clone()).collect();
    let (_, h) = legend_layout(&labels, f64::from(w));
    let (top, rest) = area.split_vertically((h + 4.0) as u32);
    strip_legend(&top, theme, items)?;
    Ok(rest)
}

fn strip_height(labels: &[&str], width: f64) -> f64 {
    let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
    legend_layout(&labels, width).1 + 4.0
}

const LOSS_KEYS: [&str; 3] = [
    "uniform guess: ln V",
    "loss, smoothed",
    "accuracy, smoothed",
];
const ENTROPY_KEYS: [&str; 3] = [
    "a head",
    "layer mean",
    "uniform attention: most a head can spread",
];
const SCORE_KEYS: [&str; 4] = [
    "previous token: i → i−1",
    "induction: → after the last copy",
    "mark 0.5",
    "uniform attention (dotted)",
];

/// Exponential moving average (weight 0.9 on the past), started at the first value.
fn ema(xs: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(xs.len());
    let mut m = f64::NAN;
    for &x in xs {
        m = if m.is_nan() { x } else { 0.9 * m + 0.1 * x };
        out.push(m);
    }
    out
}
