//! Training the transformer with Adam on a task, step by step, and reading its heads:
//! the previous-token and induction scores of Olsson et al. 2022 ("In-context learning and
//! induction heads"), measured on repeated random sequences.

use super::model::{Config, Forward, Model, Pos};
use super::tasks::{repeated_segment, Example, Task};
use crate::nn::{clip_grad_norm, Adam};
use crate::rng::Rng;

/// Everything a run depends on; `Default` is the widget's default model: two layers of two
/// heads, d_model 32, rotary positions, ctx 16, on the induction task, where it forms a
/// previous-token head in layer 0 and induction heads in layer 1 (the loss falls from the
/// ~2.8 nats of guessing among the tokens seen to near 0 in a few hundred steps: seed 1 at
/// step ~2,000 of batches of 16, seed 4 by ~3,500; seeds 2, 3 and 5 were still on the plateau
/// at 4,000, see tests/transformer.rs). Rotary positions make the
/// previous-token head easy to find; with learned positions the same model sat on the
/// plateau for the 4,000 steps tried.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub task: Task,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub ctx: usize,
    pub pos: Pos,
    pub tied: bool,
    /// Sequences per Adam step.
    pub batch: usize,
    /// Adam's step size.
    pub lr: f64,
    /// Global gradient-norm clip (GPT-2 and nanoGPT: 1.0).
    pub clip: f64,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            task: Task::Induction,
            n_layers: 2,
            n_heads: 2,
            d_model: 32,
            ctx: 16,
            pos: Pos::Rope,
            tied: true,
            batch: 16,
            lr: 3e-3,
            clip: 1.0,
            seed: 1,
        }
    }
}

impl TrainConfig {
    pub fn model_config(&self) -> Config {
        Config {
            vocab: self.task.vocab(),
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            ctx: self.ctx,
            pos: self.pos,
            tied: self.tied,
        }
    }
}

/// What one step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    pub step: u64,
    /// Mean cross-entropy over the batch's scored positions (nats).
    pub loss: f64,
    /// Fraction of scored positions where the most likely token was the target.
    pub accuracy: f64,
    pub grad_norm: f64,
}

/// A run: the model, Adam's state and the data stream.
pub struct Trainer {
    pub config: TrainConfig,
    pub model: Model,
    adam: Adam,
    rng: Rng,
    grad: Vec<f64>,
    pub history: Vec<StepStats>,
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Result<Trainer, String> {
        let mc = config.model_config();
        mc.validate()?;
        let model = Model::init(mc, config.seed);
        let n = model.n_params();
        let mut adam = Adam::new(n);
        adam.beta2 = 0.99; // small-model nanoGPT setting (beta2 0.99 for short runs)
        adam.eps = 1e-8;
        Ok(Trainer {
            rng: Rng::new(config.seed ^ 0x5eed_da7a),
            config,
            model,
            adam,
            grad: vec![0.0; n],
            history: Vec::new(),
        })
    }

    pub fn steps(&self) -> u64 {
        self.history.len() as u64
    }

    /// Draws a batch (seeded), returns loss, accuracy and the gradient of the mean loss.
    pub fn batch_gradient(model: &Model, batch: &[Example], grad: &mut [f64]) -> (f64, f64) {
        grad.fill(0.0);
        let forwards: Vec<Forward> = batch.iter().map(|e| model.forward(&e.tokens)).collect();
        let (mut sum, mut n, mut correct) = (0.0, 0, 0);
        for (fw, e) in forwards.iter().zip(batch) {
            let (s, k, c) = Model::loss_sum(fw, &e.targets);
            sum += s;
            n += k;
            correct += c;
        }
        let n = n.max(1);
        for (fw, e) in forwards.iter().zip(batch) {
            model.backward(fw, &e.targets, 1.0 / n as f64, grad);
        }
        (sum / n as f64, correct as f64 / n as f64)
    }

    /// One Adam step on a fresh batch. `Err` when the loss or gradient is not finite (the
    /// parameters are left as they were).
    pub fn step(&mut self) -> Result<StepStats, String> {
        let batch: Vec<Example> = (0..self.config.batch)
            .map(|_| self.config.task.example(self.config.ctx, &mut self.rng))
            .collect();
        let (loss, accuracy) = Trainer::batch_gradient(&self.model, &batch, &mut self.grad);
        let grad_norm = clip_grad_norm(&mut [&mut self.grad[..]], self.config.clip);
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(format!(
                "the loss diverged at step {} (loss {loss}, gradient norm {grad_norm}); lower the learning rate",
                self.steps() + 1
            ));
        }
        self.adam.step(
            &mut [&mut self.model.params[..]],
            &[&self.grad[..]],
            self.config.lr,
        );
        let stats = StepStats {
            step: self.steps() + 1,
            loss,
            accuracy,
            grad_norm,
        };
        self.history.push(stats);
        Ok(stats)
    }

    /// The data stream (framework: for callers that spread a step over several calls, as
    /// `<ml-transformer>` does within the page's frame budget).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Adam's state (framework: see [`Trainer::rng_mut`]).
    pub fn adam_mut(&mut self) -> &mut Adam {
        &mut self.adam
    }

    /// Loss and accuracy on `n` held-out sequences of a separate seeded stream.
    pub fn evaluate(&self, n: usize, seed: u64) -> (f64, f64) {
        let mut rng = Rng::new(seed);
        let batch: Vec<Example> = (0..n)
            .map(|_| self.config.task.example(self.config.ctx, &mut rng))
            .collect();
        let mut scratch = vec![0.0; self.model.n_params()];
        Trainer::batch_gradient(&self.model, &batch, &mut scratch)
    }
}

/// A probe for [`head_scores`]: `ctx` tokens drawn like the induction task's
/// ([`repeated_segment`]: filler, a segment r, filler, r again), the index of the second
/// copy's first token, and the distance between the copies.
pub struct Probe {
    pub tokens: Vec<usize>,
    pub second: usize,
    pub offset: usize,
}

impl Probe {
    /// A fresh probe over `vocab` tokens that fills a context of `ctx`, as the induction task
    /// draws it (ctx + 1 tokens, the last one only a target, so ctx read).
    pub fn draw(vocab: usize, ctx: usize, rng: &mut Rng) -> Probe {
        let (mut tokens, second, offset) = repeated_segment(ctx + 1, vocab, rng);
        tokens.truncate(ctx);
        Probe {
            tokens,
            second,
            offset,
        }
    }
}

/// Per-head scores, `[layer][head]`, averaged over `n` probes ([`Probe::draw`], seeded):
/// - previous-token: the attention weight from position i to i - 1, over i >= 1 (Elhage et
///   al. 2021);
/// - induction: the prefix-matching score of Olsson et al. 2022 ("In-context learning and
///   induction heads", section 2; TransformerLens's induction score on repeated random
///   tokens): over the positions i of the second copy, where the current token occurred
///   before at i - m (m the distance between the copies), the attention weight from i to
///   i - m + 1, the token that followed it. Positions before the second copy, where no earlier
///   occurrence exists, are not scored.
///
/// The distance m varies from probe to probe (|r| to ctx + 1 - |r|), so a head that attends at
/// a fixed offset, which a repeat of fixed length would credit as an induction head, scores
/// only on the probes whose m matches it. Uniform attention over the i + 1 keys it may see scores
/// 1/(i + 1): averaged as here, (H_16 - 1) / 15 = 0.159 previous-token and about 0.07
/// induction at the default ctx 16 (the second copy is the last 4 to 6 positions).
pub fn head_scores(model: &Model, n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let c = &model.config;
    let mut rng = Rng::new(seed);
    let mut prev = vec![vec![0.0; c.n_heads]; c.n_layers];
    let mut induction = vec![vec![0.0; c.n_heads]; c.n_layers];
    for _ in 0..n {
        let probe = Probe::draw(c.vocab, c.ctx, &mut rng);
        let (t_len, second, m) = (probe.tokens.len(), probe.second, probe.offset);
        let fw = model.forward(&probe.tokens);
        for (l, b) in fw.blocks.iter().enumerate() {
            for (h, a) in b.attn.iter().enumerate() {
                let p: f64 = (1..t_len).map(|i| a[[i, i - 1]]).sum::<f64>() / (t_len - 1) as f64;
                let ind: f64 = (second..t_len).map(|i| a[[i, i + 1 - m]]).sum::<f64>()
                    / (t_len - second) as f64;
                prev[l][h] += p / n as f64;
                induction[l][h] += ind / n as f64;
            }
        }
    }
    (prev, induction)
}

/// The first probe [`head_scores`] reads with this seed.
pub fn probe(model: &Model, seed: u64) -> Probe {
    Probe::draw(model.config.vocab, model.config.ctx, &mut Rng::new(seed))
}

/// The tokens of [`probe`].
pub fn probe_sequence(model: &Model, seed: u64) -> Vec<usize> {
    probe(model, seed).tokens
}

/// Entropy (nats) of each head's attention rows, averaged over rows: `[layer][head]`.
pub fn head_entropy(fw: &Forward) -> Vec<Vec<f64>> {
    fw.blocks
        .iter()
        .map(|b| {
            b.attn
                .iter()
                .map(|a| {
                    let t = a.nrows();
                    let total: f64 = (0..t)
                        .map(|i| {
                            -(0..=i)
                                .map(|j| a[[i, j]])
                                .filter(|&w| w > 0.0)
                                .map(|w| w * crate::math::ln(w))
                                .sum::<f64>()
                        })
                        .sum();
                    total / t as f64
                })
                .collect()
        })
        .collect()
}

/// The next-token distribution after `prompt` at temperature `temp` (softmax(logits / temp)).
pub fn next_distribution(model: &Model, prompt: &[usize], temp: f64) -> Vec<f64> {
    let ctx = model.config.ctx;
    let window = &prompt[prompt.len().saturating_sub(ctx)..];
    let fw = model.forward(window);
    let row = fw.logits.row(window.len() - 1);
    let t = temp.max(1e-6);
    let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let e: Vec<f64> = row.iter().map(|&z| crate::math::exp((z - m) / t)).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

/// Samples `n` tokens after `prompt` (seeded).
pub fn generate(model: &Model, prompt: &[usize], n: usize, temp: f64, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let p = next_distribution(model, &seq, temp);
        let u = rng.uniform();
        let mut acc = 0.0;
        let mut pick = p.len() - 1;
        for (i, &pi) in p.iter().enumerate() {
            acc += pi;
            if u < acc {
                pick = i;
                break;
            }
        }
        seq.push(pick);
    }
    seq[prompt.len()..].to_vec()
}
