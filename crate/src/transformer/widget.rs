//! `<ml-transformer>`'s parameter table and headless core: a training step spread over
//! frames one sequence at a time ([`Run`], the same numbers as [`Trainer::step`]), and what
//! the panels show of the model: the attention maps of every head on a probe sequence of
//! the task, their entropy, the previous-token and induction scores of Olsson et al. 2022
//! with the heads that pass [`MARK`] marked, and the next-token distribution after a prompt.
//!
//! The model's defaults are [`TrainConfig::default()`]'s, read at run time through
//! [`default_of`] (the table's own numbers only stand in), so the trainer's `Default` stays
//! the one copy. What `mlplay list` and the page's first `state` show is [`run`]: the
//! untrained model (step 0); `mlplay transformer` trains it with the same keys.

use ndarray::Array2;

use super::model::{Model, Pos};
use super::tasks::{Example, Task};
use super::train::{
    generate, head_entropy, head_scores, next_distribution, StepStats, TrainConfig, Trainer,
};
use super::{PROBE_SEED, PROBE_SEQUENCES};
use crate::json::Json;
use crate::nn::clip_grad_norm;
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::rng::Rng;

/// A head is marked as a previous-token (or induction) head when its score passes 0.5: it
/// then puts more weight on that one key than on all the others together. Uniform attention
/// over the i + 1 visible keys scores the mean of 1/(i + 1) ([`uniform_scores`]): 0.12 and
/// 0.06 at ctx 24, and at most 0.25 (previous-token, ctx 8), so 0.5 is twice the largest
/// baseline and 4-8 times the usual ones; a head passes it only by attending on purpose.
pub const MARK: f64 = 0.5;

/// Training steps between two looks at the model (maps, entropy, scores, generation): at the
/// default size they cost about one training step, so this keeps them near a tenth of the
/// time while the maps still move smoothly.
pub const ANALYSE_EVERY: u64 = 10;

/// The architecture's keys: changing one of them (or the task or seed) restarts training.
pub const ARCH_KEYS: [&str; 9] = [
    "task", "layers", "heads", "d_model", "pos", "ctx", "tied", "seed", "backend",
];

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "transformer",
    title: "A transformer trained in the page: watching attention heads form",
    summary: "A small decoder-only transformer learns a task from scratch; every head's attention map, its entropy and its previous-token and induction scores update as it trains, and it samples text at a temperature.",
    trainer: true,
    // Defaults: TrainConfig::default() through `default_of` (the numbers here stand in).
    params: &[
        ParamSpec::choice(
            "task",
            "Task",
            "task",
            "copy, reverse, induction (a random segment repeated: r r r), balanced brackets, or the characters of a passage. Restarts training.",
            0,
            &Task::NAMES,
        ),
        ParamSpec::number(
            "layers",
            "Layers",
            "L",
            "Transformer blocks (attention + MLP). Restarts training.",
            1.0,
            1.0,
            4.0,
            1.0,
        ),
        ParamSpec::number(
            "heads",
            "Heads",
            "H",
            "Attention heads per layer (the largest count up to this that divides d_model is used). Restarts training.",
            1.0,
            1.0,
            8.0,
            1.0,
        ),
        ParamSpec::number(
            "d_model",
            "Width d_model",
            "d",
            "Width of the residual stream; each head gets d_model / H. Restarts training.",
            8.0,
            8.0,
            128.0,
            8.0,
        ),
        ParamSpec::choice(
            "pos",
            "Positions",
            "pos",
            "Learned position vectors, fixed sinusoids, or rotary embeddings on q and k. Restarts training.",
            0,
            &Pos::NAMES,
        ),
        ParamSpec::number(
            "lr",
            "Learning rate",
            "η",
            "Adam's step size; takes effect at the next step.",
            1e-4,
            1e-4,
            0.1,
            1e-4,
        )
        .log_scale(),
        ParamSpec::number(
            "temp",
            "Temperature",
            "T",
            "Divides the logits before the softmax when sampling: below 1 sharpens, above 1 flattens.",
            1.0,
            0.1,
            10.0,
            0.01,
        )
        .log_scale(),
        ParamSpec::number(
            "steps",
            "Training steps",
            "N",
            "Adam steps of a Train run. With the defaults (seed 1) the induction heads form near step 2,250.",
            3000.0,
            10.0,
            20000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "batch",
            "Batch",
            "B",
            "Sequences per Adam step; takes effect at the next step.",
            1.0,
            1.0,
            64.0,
            1.0,
        ),
        ParamSpec::number(
            "clip",
            "Gradient clip",
            "c",
            "The gradient's global norm is scaled down to this; takes effect at the next step.",
            0.1,
            0.1,
            10.0,
            0.1,
        )
        .log_scale(),
        ParamSpec::number(
            "ctx",
            "Context",
            "ctx",
            "Tokens the model reads (and the length of the training sequences). Restarts training.",
            8.0,
            8.0,
            128.0,
            1.0,
        ),
        ParamSpec::choice(
            "tied",
            "Output embedding",
            "tied",
            "Tied: the output projection is the token embedding transposed. Restarts training.",
            0,
            &["tied", "untied"],
        ),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed of the initial weights, the training data, the probe sequence and the samples. Restarts training.",
            0.0,
            0.0,
            9999.0,
            1.0,
        ),
        ParamSpec::choice(
            "backend",
            "Backend",
            "backend",
            "Where Train runs: the CPU (WebAssembly, f64) or WebGPU (the WGSL kernels: the same model, batches and Adam in f32, one submit per step). Without WebGPU the CPU runs, with a note. Restarts training.",
            0,
            &["cpu", "webgpu"],
        ),
    ],
};

/// The defaults [`SPEC`] takes from `TrainConfig::default()` (see `widgets::core_default`).
pub fn default_of(key: &str) -> Option<f64> {
    let c = TrainConfig::default();
    Some(match key {
        "task" => c.task as usize as f64,
        "layers" => c.n_layers as f64,
        "heads" => c.n_heads as f64,
        "d_model" => c.d_model as f64,
        "pos" => Pos::NAMES.iter().position(|n| *n == c.pos.name())? as f64,
        "lr" => c.lr,
        "batch" => c.batch as f64,
        "clip" => c.clip,
        "ctx" => c.ctx as f64,
        "tied" => f64::from(u8::from(!c.tied)),
        "seed" => c.seed as f64,
        _ => return None,
    })
}

/// The training configuration the parameters ask for, and a note when the head count had to
/// change (H must divide d_model, and RoPE needs an even head width).
pub fn train_config(p: &Params) -> (TrainConfig, Option<String>) {
    let d = p.get("d_model") as usize;
    let want = p.get("heads") as usize;
    let pos = Pos::from_name(p.choice("pos")).unwrap_or(Pos::Learned);
    let ok = |h: usize| d % h == 0 && (pos != Pos::Rope || (d / h) % 2 == 0);
    let heads = (1..=want).rev().find(|&h| ok(h)).unwrap_or(1);
    let note = (heads != want).then(|| {
        format!(
            "{want} heads do not fit d_model {d} ({} positions): using {heads}",
            pos.name()
        )
    });
    let config = TrainConfig {
        task: Task::from_name(p.choice("task")).unwrap_or(Task::Induction),
        n_layers: p.get("layers") as usize,
        n_heads: heads,
        d_model: d,
        ctx: p.get("ctx") as usize,
        pos,
        tied: p.choice("tied") == "tied",
        batch: p.get("batch") as usize,
        lr: p.get("lr"),
        clip: p.get("clip"),
        seed: p.get("seed") as u64,
    };
    (config, note)
}

/// A training run whose steps are done one sequence at a time, so that a step can be spread
/// over several frames. Each step draws its batch from the trainer's stream, accumulates
/// the gradient of the mean loss sequence by sequence in the batch's order, then clips and
/// takes Adam's step: the same operations in the same order as [`Trainer::step`], so the
/// same bits (tests/transformer_widget.rs), whatever the slicing.
pub struct Run {
    pub trainer: Trainer,
    /// The batch of the step in progress (empty between steps).
    batch: Vec<Example>,
    /// Next sequence of the batch.
    next: usize,
    /// Scored positions of the whole batch (the mean's denominator).
    scored: usize,
    loss_sum: f64,
    correct: usize,
    grad: Vec<f64>,
}

impl Run {
    pub fn new(config: TrainConfig) -> Result<Run, String> {
        let trainer = Trainer::new(config)?;
        let n = trainer.model.n_params();
        Ok(Run {
            trainer,
            batch: Vec::new(),
            next: 0,
            scored: 0,
            loss_sum: 0.0,
            correct: 0,
            grad: vec![0.0; n],
        })
    }

    /// Fraction of the step in progress done (0 between steps).
    pub fn partial(&self) -> f64 {
        if self.batch.is_empty() {
            0.0
        } else {
            self.next as f64 / self.batch.len() as f64
        }
    }

    /// One unit of work: one sequence's forward and backward pass. Returns the step's stats
    /// when it completed a step, `Err` when that step diverged (the weights are kept).
    pub fn work(&mut self) -> Option<Result<StepStats, String>> {
        if self.batch.is_empty() {
            let (task, ctx, b) = {
                let c = &self.trainer.config;
                (c.task, c.ctx, c.batch)
            };
            let rng = self.trainer.rng_mut();
            self.batch = (0..b).map(|_| task.example(ctx, rng)).collect();
            self.scored = self
                .batch
                .iter()
                .map(|e| e.targets.iter().filter(|t| t.is_some()).count())
                .sum::<usize>()
                .max(1);
            self.next = 0;
            self.loss_sum = 0.0;
            self.correct = 0;
            self.grad.fill(0.0);
        }
        let e = &self.batch[self.next];
        let model = &self.trainer.model;
        let fw = model.forward(&e.tokens);
        let (s, _, c) = Model::loss_sum(&fw, &e.targets);
        self.loss_sum += s;
        self.correct += c;
        model.backward(&fw, &e.targets, 1.0 / self.scored as f64, &mut self.grad);
        self.next += 1;
        if self.next < self.batch.len() {
            return None;
        }
        self.batch.clear();
        Some(self.finish())
    }

    fn finish(&mut self) -> Result<StepStats, String> {
        let n = self.scored as f64;
        let (loss, accuracy) = (self.loss_sum / n, self.correct as f64 / n);
        let (clip, lr) = (self.trainer.config.clip, self.trainer.config.lr);
        let grad_norm = clip_grad_norm(&mut [&mut self.grad[..]], clip);
        let step = self.trainer.steps() + 1;
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(format!(
                "the loss diverged at step {step} (loss {loss}); the last good weights are kept: lower the learning rate and Restart"
            ));
        }
        let mut params = std::mem::take(&mut self.trainer.model.params);
        self.trainer
            .adam_mut()
            .step(&mut [&mut params[..]], &[&self.grad[..]], lr);
        self.trainer.model.params = params;
        let stats = StepStats {
            step,
            loss,
            accuracy,
            grad_norm,
        };
        self.trainer.history.push(stats);
        Ok(stats)
    }
}

/// The sequence the maps are drawn on: an example of the task (seeded), so the maps show
/// the task's own structure (the repeats of `induction`, the bar of `copy`).
pub fn probe(task: Task, ctx: usize, seed: u64) -> Vec<usize> {
    task.example(ctx, &mut Rng::new(seed ^ PROBE_SEED)).tokens
}

/// What the panels show of the model at one step.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub step: u64,
    pub probe: Vec<usize>,
    /// `[layer][head]`, each (T, T): row i is query i's distribution over keys 0..=i.
    pub maps: Vec<Vec<Array2<f64>>>,
    /// Mean row entropy (nats), `[layer][head]`.
    pub entropy: Vec<Vec<f64>>,
    /// Previous-token and induction scores, `[layer][head]` (train::head_scores, as the CLI).
    pub prev: Vec<Vec<f64>>,
    pub induction: Vec<Vec<f64>>,
}

impl Analysis {
    /// The maps and their entropy on `probe` (one forward pass).
    pub fn maps(model: &Model, step: u64, probe: Vec<usize>) -> Analysis {
        let fw = model.forward(&probe);
        let entropy = head_entropy(&fw);
        let maps = fw.blocks.into_iter().map(|b| b.attn).collect();
        Analysis {
            step,
            probe,
            maps,
            entropy,
            prev: Vec::new(),
            induction: Vec::new(),
        }
    }

    /// Adds the scores (PROBE_SEQUENCES forward passes on repeated random sequences).
    pub fn score(&mut self, model: &Model) {
        let (prev, induction) = head_scores(model, PROBE_SEQUENCES, PROBE_SEED);
        self.prev = prev;
        self.induction = induction;
    }

    /// Everything at once.
    pub fn full(model: &Model, step: u64, probe: Vec<usize>) -> Analysis {
        let mut a = Analysis::maps(model, step, probe);
        a.score(model);
        a
    }

    /// Mean entropy of each layer's heads (the layer-by-layer plot).
    pub fn layer_entropy(&self) -> Vec<f64> {
        self.entropy
            .iter()
            .map(|l| l.iter().sum::<f64>() / l.len().max(1) as f64)
            .collect()
    }

    /// "previous-token" / "induction" for heads whose score passes [`MARK`] (both can).
    pub fn marks(&self, layer: usize, head: usize) -> (bool, bool) {
        let get = |s: &Vec<Vec<f64>>| s.get(layer).and_then(|l| l.get(head)).copied();
        (
            get(&self.prev).is_some_and(|v| v >= MARK),
            get(&self.induction).is_some_and(|v| v >= MARK),
        )
    }

    pub fn to_json(&self, task: Task) -> Json {
        let grid = |s: &Vec<Vec<f64>>| Json::Arr(s.iter().map(Json::nums).collect());
        let maps = self
            .maps
            .iter()
            .map(|l| {
                Json::Arr(
                    l.iter()
                        .map(|a| {
                            Json::Arr(a.rows().into_iter().map(|r| Json::nums(r.iter())).collect())
                        })
                        .collect(),
                )
            })
            .collect();
        let heads = |pick: fn(&Analysis, usize, usize) -> bool| {
            let mut out = Vec::new();
            for l in 0..self.maps.len() {
                for h in 0..self.maps[l].len() {
                    if pick(self, l, h) {
                        out.push(Json::nums(&[l as f64, h as f64]));
                    }
                }
            }
            Json::Arr(out)
        };
        Json::obj([
            ("step", Json::Num(self.step as f64)),
            ("probe", Json::str(task.decode(&self.probe))),
            ("maps", Json::Arr(maps)),
            ("entropy", grid(&self.entropy)),
            ("layer_entropy", Json::nums(&self.layer_entropy())),
            ("previous_token", grid(&self.prev)),
            ("induction", grid(&self.induction)),
            ("previous_token_heads", heads(|a, l, h| a.marks(l, h).0)),
            ("induction_heads", heads(|a, l, h| a.marks(l, h).1)),
        ])
    }
}

/// What uniform attention (each query spreading evenly over its i + 1 keys) scores on
/// `head_scores`'s sequences of length T = 2 floor(ctx / 2): previous-token, the mean of
/// 1/(i + 1) over i = 1..T-1; induction, over i = T/2..T-1.
pub fn uniform_scores(ctx: usize) -> (f64, f64) {
    let half = ctx / 2;
    let t = 2 * half;
    let mean = |lo: usize| (lo..t).map(|i| 1.0 / (i + 1) as f64).sum::<f64>() / (t - lo) as f64;
    (mean(1), mean(half))
}

/// The entropy of uniform attention, averaged over the rows of a T-token map: mean of
/// ln(i + 1) over i = 0..T-1 (the most a causal head can have).
pub fn uniform_entropy(t: usize) -> f64 {
    (0..t).map(|i| crate::math::ln((i + 1) as f64)).sum::<f64>() / t.max(1) as f64
}

/// The prompt a task starts with: its probe example up to the first position the model is
/// scored on (the copy task's symbols and bar, a segment and its first repeated token, a
/// bracket string and `=`); for the passage, its first half context.
pub fn default_prompt(task: Task, ctx: usize, seed: u64) -> Vec<usize> {
    let e = task.example(ctx, &mut Rng::new(seed ^ PROBE_SEED));
    if task == Task::Text {
        return e.tokens[..(ctx / 2).max(1)].to_vec();
    }
    let first = e.targets.iter().position(Option::is_some).unwrap_or(0);
    e.tokens[..=first].to_vec()
}

/// A prompt in the task's alphabet; `Err` says which character is not and what is.
pub fn parse_prompt(task: Task, text: &str) -> Result<Vec<usize>, String> {
    if text.is_empty() {
        return Err("the prompt is empty".into());
    }
    if text.chars().count() > 200 {
        return Err("the prompt is longer than 200 characters".into());
    }
    task.encode(text).map_err(|e| {
        let a: String = task.alphabet().into_iter().collect();
        format!("{e} (it has: {a}); the prompt in force is kept")
    })
}

/// The next-token distribution after a prompt and a sampled continuation.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub prompt: Vec<usize>,
    pub temperature: f64,
    pub next: Vec<f64>,
    pub sample: Vec<usize>,
}

impl Generation {
    /// `n` tokens are sampled (seeded) after the prompt.
    pub fn new(model: &Model, prompt: &[usize], temperature: f64, seed: u64) -> Generation {
        let n = (model.config.ctx.saturating_sub(prompt.len())).clamp(8, 32);
        Generation {
            prompt: prompt.to_vec(),
            temperature,
            next: next_distribution(model, prompt, temperature),
            sample: generate(model, prompt, n, temperature, seed ^ 0x5a3_91e),
        }
    }

    pub fn to_json(&self, task: Task) -> Json {
        Json::obj([
            ("prompt", Json::str(task.decode(&self.prompt))),
            ("temperature", Json::Num(self.temperature)),
            (
                "alphabet",
                Json::Arr(
                    task.alphabet()
                        .iter()
                        .map(|c| Json::str(c.to_string()))
                        .collect(),
                ),
            ),
            ("next", Json::nums(&self.next)),
            ("sample", Json::str(task.decode(&self.sample))),
        ])
    }
}

/// Loss and accuracy per step, for the state and the loss panel's export.
pub fn history_json(history: &[StepStats]) -> Json {
    let col = |f: fn(&StepStats) -> f64| Json::nums(&history.iter().map(f).collect::<Vec<_>>());
    Json::obj([
        ("step", col(|s| s.step as f64)),
        ("loss", col(|s| s.loss)),
        ("accuracy", col(|s| s.accuracy)),
        ("grad_norm", col(|s| s.grad_norm)),
    ])
}

/// The widget's data before training (step 0), as `mlplay list`'s readers and the page's
/// first `state` see it: the untrained model's maps, scores and next-token distribution.
pub fn run(params: &Params) -> Json {
    let (c, note) = train_config(params);
    let model = Model::init(c.model_config(), c.seed);
    let a = Analysis::full(&model, 0, probe(c.task, c.ctx, c.seed));
    let prompt = default_prompt(c.task, c.ctx, c.seed);
    let g = Generation::new(&model, &prompt, params.get("temp"), c.seed);
    Json::obj([
        ("n_heads", Json::Num(c.n_heads as f64)),
        ("note", note.map_or(Json::Null, Json::Str)),
        ("n_params", Json::Num(model.n_params() as f64)),
        ("history", history_json(&[])),
        ("analysis", a.to_json(c.task)),
        ("generation", g.to_json(c.task)),
    ])
}
