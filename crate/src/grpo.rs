//! Group-relative policy optimisation (Shao et al. 2024, DeepSeekMath), on arithmetic a toy
//! policy can learn in seconds, beside the two baselines it is usually compared with.
//!
//! ```text
//! A_i = (r_i - mean(r_1..r_G)) / std(r_1..r_G)            (all A_i = 0 when the rewards are equal)
//! J(theta) = E_q (1/G) sum_i [ min(rho_i A_i, clip(rho_i, 1-eps, 1+eps) A_i) - beta k3_i ]
//! rho_i = pi_theta(o_i|q) / pi_old(o_i|q),   k3_i = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1
//! ```
//!
//! std is the population standard deviation, so a group's advantages have mean 0 and
//! standard deviation exactly 1. k3 is Schulman's unbiased, non-negative estimator of
//! KL(pi_theta || pi_ref) from samples of pi_theta.
//!
//! The toy of `<ml-grpo>`: the 100 prompts "a + b = ?" with a, b in 0..9, and a categorical
//! policy per prompt over the candidate answers 0..18 (with the format reward on, each answer
//! also written in tags, `<answer>7</answer>`, worth an extra 0.2). Reward: 1 for the right
//! sum. Completions are single tokens, so "per token, averaged per sequence" is one term.
//! With tabular logits `theta[q]` and `pi = softmax(theta[q])`, every gradient is exact:
//!
//! ```text
//! d rho_i / d theta[q] = rho_i (e_{o_i} - pi),   d k3_i / d theta[q] = -(pi_ref/pi_theta - 1) (e_{o_i} - pi)
//! ```
//!
//! Each step draws B prompts, G completions each from pi_old (the policy at the start of the
//! step), and takes mu gradient-ascent steps on J (plain SGD, so a zero gradient is no update).
//! Two comparison learners train on the same prompts: REINFORCE without a baseline (A_i = r_i,
//! one step, no clip, no KL), and PPO with a learned critic (A_i = r_i - V(q) normalised over
//! the batch, V a table fitted to the rewards; the same clip and KL as GRPO).

use std::io::Write;

use ndarray::{Array1, Array2, Axis};

use crate::json::Json;
use crate::math::{exp, ln};
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::ppo_clip::{l_clip, l_clip_grad};
use crate::rng::Rng;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "grpo",
    title: "GRPO: advantages from a group, no critic",
    summary: "Sample G answers per prompt, z-score their rewards within the group, and use that as the advantage in PPO's clipped objective.",
    trainer: true,
    params: &[
        ParamSpec::number(
            "group-size",
            "Group size G",
            "G",
            "Completions sampled per prompt; their rewards' mean and std give the advantages (paper: 64).",
            8.0,
            2.0,
            64.0,
            1.0,
        ),
        ParamSpec::number(
            "beta",
            "KL strength β",
            "β",
            "Weight of the k3 KL penalty to the reference policy (paper: 0.04).",
            0.04,
            0.0,
            0.5,
            0.01,
        ),
        ParamSpec::number(
            "eps",
            "Clip range ε",
            "ε",
            "Half-width of the trust region [1-ε, 1+ε] for the ratio ρ = π/π_old; acts from the second epoch on.",
            0.2,
            0.05,
            0.5,
            0.01,
        ),
        ParamSpec::number(
            "lr",
            "Learning rate η",
            "η",
            "Step size of plain gradient ascent on the policy logits (the objective is a mean over B·G samples).",
            8.0,
            0.5,
            40.0,
            0.5,
        ),
        ParamSpec::number(
            "epochs",
            "Epochs μ",
            "μ",
            "Gradient steps on each sampled batch; with μ = 1 the ratio is 1 and the clip never acts.",
            2.0,
            1.0,
            8.0,
            1.0,
        ),
        ParamSpec::number(
            "batch",
            "Prompts per step B",
            "B",
            "Prompts drawn (without replacement) from the 100 sums a + b at each step.",
            8.0,
            1.0,
            32.0,
            1.0,
        ),
        ParamSpec::choice(
            "format",
            "Format reward",
            "format",
            "Off: answers are bare numbers. On: each answer can also be written in tags, worth +0.2.",
            0,
            &["off", "on"],
        ),
        ParamSpec::number(
            "steps",
            "Training steps K",
            "K",
            "Number of sample-then-update steps a training run takes.",
            300.0,
            10.0,
            3000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed for the reference policy, the prompt batches and every sampled completion.",
            1.0,
            0.0,
            9999.0,
            1.0,
        ),
    ],
};

/// The typed configuration read once from the parameter table.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// G, completions per prompt.
    pub group_size: usize,
    /// beta, the weight of the k3 KL penalty.
    pub kl_coef: f64,
    /// eps, the clip range.
    pub clip_coef: f64,
    /// Gradient-ascent step size on the logits.
    pub learning_rate: f64,
    /// mu, gradient steps per sampled batch.
    pub update_epochs: usize,
    /// B, prompts per step.
    pub batch_prompts: usize,
    /// Whether answers can be written in tags for the format reward.
    pub format_reward: bool,
    /// Steps in a run.
    pub total_steps: usize,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        Config {
            group_size: p.get("group-size") as usize,
            kl_coef: p.get("beta"),
            clip_coef: p.get("eps"),
            learning_rate: p.get("lr"),
            update_epochs: p.get("epochs") as usize,
            batch_prompts: p.get("batch") as usize,
            format_reward: p.choice("format") == "on",
            total_steps: p.get("steps") as usize,
            seed: p.get("seed") as u64,
        }
    }

    /// Steps between two logged rows: about 250 rows per run, whatever its length.
    pub fn log_every(&self) -> usize {
        self.total_steps.div_ceil(250).max(1)
    }
}

/// Largest operand of the sums.
pub const MAX_OPERAND: usize = 9;
/// Answers 0 ..= 18.
pub const N_VALUES: usize = 2 * MAX_OPERAND + 1;
/// Extra reward for an answer written in tags, when the format reward is on.
pub const FORMAT_REWARD: f64 = 0.2;
/// The reference policy's preference for answers near the sum: logit -SKILL |answer - sum|.
pub const SKILL: f64 = 0.45;
/// Standard deviation of the reference policy's per-answer logit noise.
pub const NOISE: f64 = 0.8;
/// How much less likely the reference policy writes tags (logit offset).
pub const TAG_PENALTY: f64 = 1.5;
/// Step size of the PPO comparison's critic (gradient descent on (V - r)^2 / 2).
pub const VALUE_LR: f64 = 0.5;
/// Resampled batches per gradient-noise estimate, at most; fewer for large batches (see
/// [`noise_resamples`]).
pub const NOISE_RESAMPLES: usize = 32;
/// Completions a gradient-noise estimate may sample in all (bounds the cost of a logged step).
pub const NOISE_SAMPLE_BUDGET: usize = 16_384;

/// Resamples for one noise estimate: 32 up to 512 completions per batch, then fewer (at least
/// 8), so that a logged step at B = 32, G = 64 stays a few milliseconds in the browser.
pub fn noise_resamples(samples_per_batch: usize) -> usize {
    (NOISE_SAMPLE_BUDGET / samples_per_batch.max(1)).clamp(8, NOISE_RESAMPLES)
}

/// The arithmetic task: prompts, candidate answers, rule-based rewards.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub format_reward: bool,
}

impl Task {
    pub fn n_prompts(&self) -> usize {
        (MAX_OPERAND + 1) * (MAX_OPERAND + 1)
    }

    /// Bare answers 0..=18, then (format reward on) the same in tags.
    pub fn n_answers(&self) -> usize {
        if self.format_reward {
            2 * N_VALUES
        } else {
            N_VALUES
        }
    }

    /// Prompt q is "a + b" with q = 10 a + b.
    pub fn operands(&self, q: usize) -> (usize, usize) {
        (q / (MAX_OPERAND + 1), q % (MAX_OPERAND + 1))
    }

    /// The number an answer token stands for, and whether it is written in tags.
    pub fn answer(&self, c: usize) -> (usize, bool) {
        (c % N_VALUES, c >= N_VALUES)
    }

    pub fn prompt_text(&self, q: usize) -> String {
        let (a, b) = self.operands(q);
        format!("{a} + {b} = ?")
    }

    pub fn answer_text(&self, c: usize) -> String {
        match self.answer(c) {
            (v, true) => format!("<answer>{v}</answer>"),
            (v, false) => v.to_string(),
        }
    }

    pub fn is_correct(&self, q: usize, c: usize) -> bool {
        let (a, b) = self.operands(q);
        self.answer(c).0 == a + b
    }

    /// 1 for the right sum, plus the format reward for tags when it is on.
    pub fn reward(&self, q: usize, c: usize) -> f64 {
        let correct = if self.is_correct(q, c) { 1.0 } else { 0.0 };
        let tagged = self.answer(c).1;
        correct
            + if self.format_reward && tagged {
                FORMAT_REWARD
            } else {
                0.0
            }
    }

    /// The reference ("pretrained") policy's logits: answers near the sum are likelier,
    /// with seeded noise, and tags rarer. theta_ref[q, c] = -SKILL |v - (a+b)| + NOISE z.
    pub fn reference_logits(&self, rng: &mut Rng) -> Array2<f64> {
        Array2::from_shape_fn((self.n_prompts(), self.n_answers()), |(q, c)| {
            let (a, b) = self.operands(q);
            let (v, tagged) = self.answer(c);
            let near = -SKILL * (v as f64 - (a + b) as f64).abs();
            near + NOISE * rng.normal() - if tagged { TAG_PENALTY } else { 0.0 }
        })
    }
}

/// log softmax of one row of logits.
pub fn log_softmax_row(row: ndarray::ArrayView1<f64>) -> Array1<f64> {
    let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let lse = m + ln(row.iter().map(|z| exp(z - m)).sum::<f64>());
    row.mapv(|z| z - lse)
}

/// Row-wise log softmax.
pub fn log_softmax(logits: &Array2<f64>) -> Array2<f64> {
    let mut out = logits.clone(); // (Q, C)
    for (mut o, row) in out.rows_mut().into_iter().zip(logits.rows()) {
        o.assign(&log_softmax_row(row));
    }
    out
}

/// One draw from a categorical distribution by inverting its CDF.
pub fn sample_categorical(probs: &Array1<f64>, rng: &mut Rng) -> usize {
    let u = rng.uniform();
    let mut acc = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1 // rounding: the CDF's last value can fall a hair short of 1
}

/// GRPO's group-relative advantages: `(r_i - mean) / std` with the population std; all zero
/// when the rewards are equal (no signal, so no update: never a division by zero).
pub fn group_advantages(rewards: &[f64]) -> Vec<f64> {
    let (mean, std) = mean_std(rewards);
    let equal = rewards.iter().all(|&r| r == rewards[0]);
    if equal || std == 0.0 {
        return vec![0.0; rewards.len()];
    }
    rewards.iter().map(|r| (r - mean) / std).collect()
}

/// Mean and population standard deviation (0, 0 for an empty slice).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Schulman's k3 estimator of KL(pi || pi_ref) at one sample o ~ pi, from the two log-probs:
/// `pi_ref/pi - log(pi_ref/pi) - 1` (>= 0 since x - 1 >= log x; unbiased since E_pi[pi_ref/pi] = 1).
pub fn k3(logp: f64, ref_logp: f64) -> f64 {
    let log_ratio = ref_logp - logp;
    exp(log_ratio) - log_ratio - 1.0
}

/// Exact KL(p || q) of two categoricals given as log-probabilities.
pub fn kl_categorical(logp: &Array1<f64>, logq: &Array1<f64>) -> f64 {
    logp.iter()
        .zip(logq)
        .map(|(&lp, &lq)| {
            if lp == f64::NEG_INFINITY {
                0.0
            } else {
                exp(lp) * (lp - lq)
            }
        })
        .sum()
}

/// G completions for one prompt, their rewards and advantages, and pi_old of each.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub prompt: usize,
    pub completions: Vec<usize>,
    pub rewards: Vec<f64>,
    pub advantages: Vec<f64>,
    /// log pi_old(o_i | q): the policy that sampled them.
    pub old_logp: Vec<f64>,
}

impl Group {
    pub fn mean_std(&self) -> (f64, f64) {
        mean_std(&self.rewards)
    }

    pub fn zero_advantage(&self) -> bool {
        self.advantages.iter().all(|&a| a == 0.0)
    }
}

/// The surrogate objective `(1/B) sum_groups (1/G) sum_i [ L_clip(rho_i, A_i, eps) - beta k3_i ]`,
/// maximised. `eps = INFINITY` removes the clip; `beta = 0` the KL term.
pub fn objective(
    logits: &Array2<f64>,
    ref_logp: &Array2<f64>,
    groups: &[Group],
    eps: f64,
    beta: f64,
) -> f64 {
    let b = groups.len() as f64;
    groups
        .iter()
        .map(|g| {
            let logp = log_softmax_row(logits.row(g.prompt)); // (C,)
            let n = g.completions.len() as f64;
            g.completions
                .iter()
                .enumerate()
                .map(|(i, &o)| {
                    let rho = exp(logp[o] - g.old_logp[i]);
                    l_clip(rho, g.advantages[i], eps) - beta * k3(logp[o], ref_logp[[g.prompt, o]])
                })
                .sum::<f64>()
                / n
        })
        .sum::<f64>()
        / b
}

/// dJ/dtheta of [`objective`]: per sample, `(L_clip'(rho) rho + beta (pi_ref/pi - 1)) (e_o - pi) / (B G)`
/// in its prompt's row.
pub fn objective_grad(
    logits: &Array2<f64>,
    ref_logp: &Array2<f64>,
    groups: &[Group],
    eps: f64,
    beta: f64,
) -> Array2<f64> {
    let mut grad = Array2::zeros(logits.raw_dim()); // (Q, C)
    let b = groups.len() as f64;
    for g in groups {
        let logp = log_softmax_row(logits.row(g.prompt)); // (C,)
        let pi = logp.mapv(exp); // (C,)
        let n = g.completions.len() as f64;
        let mut row = grad.row_mut(g.prompt);
        for (i, &o) in g.completions.iter().enumerate() {
            let rho = exp(logp[o] - g.old_logp[i]);
            let q = exp(ref_logp[[g.prompt, o]] - logp[o]);
            let coef = (l_clip_grad(rho, g.advantages[i], eps) * rho + beta * (q - 1.0)) / (b * n);
            if coef == 0.0 {
                continue; // zero advantage and no KL pull: this sample moves nothing
            }
            row.scaled_add(-coef, &pi);
            row[o] += coef;
        }
    }
    grad
}

/// The three ways of turning a group's rewards into advantages that the widget compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Group z-score, clipped objective, k3 KL.
    Grpo,
    /// A_i = r_i: vanilla policy gradient, one step per batch, no clip, no KL.
    Reinforce,
    /// A_i = r_i - V(q), normalised over the batch; V a learned table; same clip and KL as GRPO.
    PpoCritic,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Grpo, Method::Reinforce, Method::PpoCritic];

    pub fn name(self) -> &'static str {
        match self {
            Method::Grpo => "grpo",
            Method::Reinforce => "reinforce",
            Method::PpoCritic => "ppo_critic",
        }
    }

    fn stream(self) -> u64 {
        match self {
            Method::Grpo => 1,
            Method::Reinforce => 2,
            Method::PpoCritic => 3,
        }
    }
}

/// An independent random stream of a seed (Rng::new splits it through SplitMix64).
fn stream(seed: u64, k: u64) -> Rng {
    Rng::new(seed.wrapping_add(k << 32))
}

/// What one step sampled and how the advantages came out.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub groups: Vec<Group>,
    pub mean_reward: f64,
    pub adv_mean: f64,
    pub adv_std: f64,
    /// Groups whose rewards were all equal (zero advantage, no policy-gradient update).
    pub zero_groups: usize,
    /// Mean k3 over the samples: an estimate of KL(pi_old || pi_ref).
    pub k3_mean: f64,
}

impl Batch {
    /// The batch's statistics from its groups (advantages already set).
    pub fn new(groups: Vec<Group>, ref_logp: &Array2<f64>) -> Self {
        let rewards: Vec<f64> = groups.iter().flat_map(|g| g.rewards.clone()).collect();
        let advs: Vec<f64> = groups.iter().flat_map(|g| g.advantages.clone()).collect();
        let (adv_mean, adv_std) = mean_std(&advs);
        let k3s: Vec<f64> = groups
            .iter()
            .flat_map(|g| {
                g.completions
                    .iter()
                    .zip(&g.old_logp)
                    .map(|(&o, &lp)| k3(lp, ref_logp[[g.prompt, o]]))
                    .collect::<Vec<_>>()
            })
            .collect();
        Batch {
            mean_reward: mean_std(&rewards).0,
            adv_mean,
            adv_std,
            zero_groups: groups.iter().filter(|g| g.zero_advantage()).count(),
            k3_mean: mean_std(&k3s).0,
            groups,
        }
    }
}

/// One policy (and, for PPO, its critic) being trained by one method.
#[derive(Clone, Debug)]
pub struct Learner {
    pub method: Method,
    pub logits: Array2<f64>, // (Q, C)
    /// V(q), PPO's learned critic; unused (zeros) for the other methods.
    pub critic: Array1<f64>, // (Q,)
    rng: Rng,
}

impl Learner {
    fn new(method: Method, start: &Array2<f64>, seed: u64) -> Self {
        Learner {
            method,
            logits: start.clone(),
            critic: Array1::zeros(start.nrows()),
            rng: stream(seed, method.stream()),
        }
    }

    /// Sample G completions per prompt from the current policy (pi_old) with their rewards.
    fn sample(&mut self, task: &Task, prompts: &[usize], g: usize) -> Vec<Group> {
        prompts
            .iter()
            .map(|&q| {
                let logp = log_softmax_row(self.logits.row(q)); // (C,)
                let pi = logp.mapv(exp);
                let completions: Vec<usize> = (0..g)
                    .map(|_| sample_categorical(&pi, &mut self.rng))
                    .collect();
                Group {
                    prompt: q,
                    rewards: completions.iter().map(|&o| task.reward(q, o)).collect(),
                    old_logp: completions.iter().map(|&o| logp[o]).collect(),
                    advantages: vec![0.0; g],
                    completions,
                }
            })
            .collect()
    }

    /// One step: sample, compute the method's advantages, update. Returns what was sampled.
    pub fn step(
        &mut self,
        task: &Task,
        ref_logp: &Array2<f64>,
        prompts: &[usize],
        config: &Config,
    ) -> Result<Batch, String> {
        let mut groups = self.sample(task, prompts, config.group_size);
        let (eps, beta, epochs) = match self.method {
            Method::Grpo => {
                for g in &mut groups {
                    g.advantages = group_advantages(&g.rewards);
                }
                (config.clip_coef, config.kl_coef, config.update_epochs)
            }
            Method::Reinforce => {
                for g in &mut groups {
                    g.advantages = g.rewards.clone();
                }
                (f64::INFINITY, 0.0, 1)
            }
            Method::PpoCritic => {
                let raw: Vec<f64> = groups
                    .iter()
                    .flat_map(|g| g.rewards.iter().map(|r| r - self.critic[g.prompt]))
                    .collect();
                let (m, s) = mean_std(&raw);
                let mut it = raw.iter();
                for g in &mut groups {
                    for a in &mut g.advantages {
                        let x = it.next().expect("one advantage per sample");
                        *a = if s > 0.0 { (x - m) / s } else { 0.0 };
                    }
                }
                (config.clip_coef, config.kl_coef, config.update_epochs)
            }
        };
        let mut logits = self.logits.clone();
        for _ in 0..epochs {
            let grad = objective_grad(&logits, ref_logp, &groups, eps, beta);
            logits.scaled_add(config.learning_rate, &grad);
        }
        if logits.iter().any(|z| !z.is_finite()) {
            return Err(format!(
                "{}: a logit became non-finite; training stopped (try a smaller learning rate)",
                self.method.name()
            ));
        }
        self.logits = logits;
        if self.method == Method::PpoCritic {
            // The critic's own regression step: V(q) += alpha mean_i (r_i - V(q)).
            for g in &groups {
                let (mean, _) = g.mean_std();
                self.critic[g.prompt] += VALUE_LR * (mean - self.critic[g.prompt]);
            }
        }
        Ok(Batch::new(groups, ref_logp))
    }
}

/// Expected accuracy of a policy: the mean over all prompts of pi(right sum | q) (exact).
pub fn accuracy(task: &Task, logits: &Array2<f64>) -> f64 {
    let lp = log_softmax(logits);
    let n = task.n_prompts();
    (0..n)
        .map(|q| {
            (0..task.n_answers())
                .filter(|&c| task.is_correct(q, c))
                .map(|c| exp(lp[[q, c]]))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64
}

/// pi(right sum | q) for every prompt (the accuracy map).
pub fn accuracy_per_prompt(task: &Task, logits: &Array2<f64>) -> Vec<f64> {
    let lp = log_softmax(logits);
    (0..task.n_prompts())
        .map(|q| {
            (0..task.n_answers())
                .filter(|&c| task.is_correct(q, c))
                .map(|c| exp(lp[[q, c]]))
                .sum()
        })
        .collect()
}

/// Exact KL(pi || pi_ref), averaged over the prompts.
pub fn mean_kl(logits: &Array2<f64>, ref_logp: &Array2<f64>) -> f64 {
    let lp = log_softmax(logits);
    let n = lp.nrows() as f64;
    lp.axis_iter(Axis(0))
        .zip(ref_logp.axis_iter(Axis(0)))
        .map(|(p, q)| kl_categorical(&p.to_owned(), &q.to_owned()))
        .sum::<f64>()
        / n
}

/// Which advantage a gradient-noise estimate uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// A_i = r_i (REINFORCE without a baseline).
    Raw,
    /// A_i = r_i - mean (the group mean as a control variate).
    GroupMean,
    /// A_i = (r_i - mean) / std (GRPO).
    GroupZ,
}

impl Estimator {
    pub const ALL: [Estimator; 3] = [Estimator::Raw, Estimator::GroupMean, Estimator::GroupZ];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Raw => "raw_reward",
            Estimator::GroupMean => "group_mean",
            Estimator::GroupZ => "group_z",
        }
    }

    fn advantages(self, rewards: &[f64]) -> Vec<f64> {
        match self {
            Estimator::Raw => rewards.to_vec(),
            Estimator::GroupMean => {
                let (m, _) = mean_std(rewards);
                rewards.iter().map(|r| r - m).collect()
            }
            Estimator::GroupZ => group_advantages(rewards),
        }
    }
}

/// Noise-to-signal of a policy-gradient estimator at a fixed policy and prompt batch:
/// K independent batches of G completions give K gradients g_k (at rho = 1, no KL); returns
/// `(1/(K-1)) sum_k |g_k - mean g|^2 / |mean g|^2` (None when the mean gradient vanishes).
/// Scale-free, so estimators whose advantages differ by a factor compare fairly.
pub fn gradient_noise(
    task: &Task,
    logits: &Array2<f64>,
    prompts: &[usize],
    group_size: usize,
    estimator: Estimator,
    resamples: usize,
    rng: &mut Rng,
) -> Option<f64> {
    // The gradient is zero outside the batch's rows, so only those are kept: (B, C).
    let c = logits.ncols();
    let pis: Vec<Array1<f64>> = prompts
        .iter()
        .map(|&q| log_softmax_row(logits.row(q)).mapv(exp))
        .collect();
    let scale = 1.0 / (prompts.len() * group_size) as f64;
    let mut sum = Array2::<f64>::zeros((prompts.len(), c));
    let mut sum_sq_norm = 0.0;
    let mut grad = Array2::<f64>::zeros((prompts.len(), c));
    for _ in 0..resamples {
        grad.fill(0.0);
        for (b, (&q, pi)) in prompts.iter().zip(&pis).enumerate() {
            let completions: Vec<usize> = (0..group_size)
                .map(|_| sample_categorical(pi, rng))
                .collect();
            let rewards: Vec<f64> = completions.iter().map(|&o| task.reward(q, o)).collect();
            let advs = estimator.advantages(&rewards);
            let mut row = grad.row_mut(b);
            for (&o, &a) in completions.iter().zip(&advs) {
                row.scaled_add(-a * scale, pi);
                row[o] += a * scale;
            }
        }
        sum += &grad;
        sum_sq_norm += grad.iter().map(|x| x * x).sum::<f64>();
    }
    // Var = (sum |g_k|^2 - K |mean|^2) / (K - 1), the unbiased sample variance (trace).
    let k = resamples as f64;
    let mean = sum / k;
    let signal = mean.iter().map(|x| x * x).sum::<f64>();
    let var = ((sum_sq_norm - k * signal) / (k - 1.0)).max(0.0);
    (signal > 1e-20).then(|| var / signal)
}

/// The logged curves of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub step: Vec<usize>,
    pub mean_reward: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub kl: Vec<f64>,
    pub adv_mean: Vec<f64>,
    pub adv_std: Vec<f64>,
    pub zero_groups: Vec<usize>,
    pub k3_mean: Vec<f64>,
    /// Accuracy of the REINFORCE and PPO-critic learners at the same steps.
    pub accuracy_reinforce: Vec<f64>,
    pub accuracy_ppo: Vec<f64>,
    /// Gradient noise-to-signal of each [`Estimator`] at GRPO's policy (None: no signal).
    pub noise: [Vec<Option<f64>>; 3],
}

/// A GRPO run with its two comparison learners.
#[derive(Clone, Debug)]
pub struct Trainer {
    pub config: Config,
    pub task: Task,
    pub ref_logits: Array2<f64>,
    pub ref_logp: Array2<f64>,
    /// GRPO, REINFORCE, PPO-critic, in [`Method::ALL`] order.
    pub learners: Vec<Learner>,
    prompt_rng: Rng,
    noise_rng: Rng,
    pub step: usize,
    pub history: History,
    /// GRPO's most recent batch.
    pub last_batch: Option<Batch>,
    /// Before the first step: a batch sampled from the reference policy on the first step's
    /// prompts, with GRPO's advantages, to show what a group looks like (not trained on).
    pub preview: Batch,
    /// The accuracy every learner starts at.
    pub initial_accuracy: f64,
}

impl Trainer {
    pub fn new(config: &Config) -> Self {
        let task = Task {
            format_reward: config.format_reward,
        };
        let ref_logits = task.reference_logits(&mut stream(config.seed, 0));
        let ref_logp = log_softmax(&ref_logits);
        let prompt_rng = stream(config.seed, 4);
        let preview = {
            let mut learner = Learner::new(Method::Grpo, &ref_logits, config.seed);
            learner.rng = stream(config.seed, 6);
            let first = Trainer::draw_prompts_from(&mut prompt_rng.clone(), &task, config);
            let mut groups = learner.sample(&task, &first, config.group_size);
            for g in &mut groups {
                g.advantages = group_advantages(&g.rewards);
            }
            Batch::new(groups, &ref_logp)
        };
        Trainer {
            preview,
            learners: Method::ALL
                .iter()
                .map(|&m| Learner::new(m, &ref_logits, config.seed))
                .collect(),
            prompt_rng,
            noise_rng: stream(config.seed, 5),
            initial_accuracy: accuracy(&task, &ref_logits),
            config: config.clone(),
            task,
            ref_logits,
            ref_logp,
            step: 0,
            history: History::default(),
            last_batch: None,
        }
    }

    /// Hyperparameters that change without restarting (all but the seed and the format).
    pub fn set_hyperparameters(&mut self, config: &Config) {
        let (seed, format) = (self.config.seed, self.config.format_reward);
        self.config = config.clone();
        self.config.seed = seed;
        self.config.format_reward = format;
    }

    pub fn done(&self) -> bool {
        self.step >= self.config.total_steps
    }

    /// B distinct prompts by a partial Fisher-Yates shuffle.
    fn draw_prompts_from(rng: &mut Rng, task: &Task, config: &Config) -> Vec<usize> {
        let n = task.n_prompts();
        let mut all: Vec<usize> = (0..n).collect();
        let b = config.batch_prompts.min(n);
        for i in 0..b {
            let j = i + ((rng.uniform() * (n - i) as f64) as usize).min(n - i - 1);
            all.swap(i, j);
        }
        all.truncate(b);
        all
    }

    fn draw_prompts(&mut self) -> Vec<usize> {
        Trainer::draw_prompts_from(&mut self.prompt_rng, &self.task, &self.config)
    }

    /// The batch to show: the latest, or the preview before the first step.
    pub fn shown_batch(&self) -> &Batch {
        self.last_batch.as_ref().unwrap_or(&self.preview)
    }

    /// Up to `n` steps (fewer when the run ends); the number taken. A step that makes a
    /// logit non-finite is refused, the state kept, and an error returned.
    pub fn train(&mut self, n: usize) -> Result<usize, String> {
        let mut taken = 0;
        while taken < n && !self.done() {
            let prompts = self.draw_prompts();
            let mut learners = self.learners.clone();
            let mut batch = None;
            for l in &mut learners {
                let b = l.step(&self.task, &self.ref_logp, &prompts, &self.config)?;
                if l.method == Method::Grpo {
                    batch = Some(b);
                }
            }
            self.learners = learners;
            self.last_batch = batch;
            self.step += 1;
            taken += 1;
            if self.step % self.config.log_every() == 0 || self.done() || self.step == 1 {
                self.log(&prompts);
            }
        }
        Ok(taken)
    }

    fn log(&mut self, prompts: &[usize]) {
        let b = self.last_batch.as_ref().expect("a step ran");
        let h = &mut self.history;
        let grpo = &self.learners[0].logits;
        h.step.push(self.step);
        h.mean_reward.push(b.mean_reward);
        h.accuracy.push(accuracy(&self.task, grpo));
        h.kl.push(mean_kl(grpo, &self.ref_logp));
        h.adv_mean.push(b.adv_mean);
        h.adv_std.push(b.adv_std);
        h.zero_groups.push(b.zero_groups);
        h.k3_mean.push(b.k3_mean);
        h.accuracy_reinforce
            .push(accuracy(&self.task, &self.learners[1].logits));
        h.accuracy_ppo
            .push(accuracy(&self.task, &self.learners[2].logits));
        for (i, e) in Estimator::ALL.iter().enumerate() {
            h.noise[i].push(gradient_noise(
                &self.task,
                grpo,
                prompts,
                self.config.group_size,
                *e,
                noise_resamples(prompts.len() * self.config.group_size),
                &mut self.noise_rng,
            ));
        }
    }

    pub fn grpo_logits(&self) -> &Array2<f64> {
        &self.learners[0].logits
    }

    /// One logged row as a CLI line.
    pub fn log_line(&self, i: usize) -> Json {
        let h = &self.history;
        Json::obj([
            ("step", Json::Num(h.step[i] as f64)),
            ("mean_reward", Json::Num(h.mean_reward[i])),
            ("accuracy", Json::Num(h.accuracy[i])),
            ("kl", Json::Num(h.kl[i])),
            ("adv_mean", Json::Num(h.adv_mean[i])),
            ("adv_std", Json::Num(h.adv_std[i])),
            ("zero_adv_groups", Json::Num(h.zero_groups[i] as f64)),
        ])
    }

    /// Parameters and work of each method, for the comparison panel.
    pub fn costs_json(&self) -> Json {
        let (q, c) = (self.task.n_prompts(), self.task.n_answers());
        let samples = self.config.batch_prompts * self.config.group_size;
        let per = |m: Method| {
            let (critic, updates) = match m {
                Method::Grpo => (0, self.config.update_epochs),
                Method::Reinforce => (0, 1),
                Method::PpoCritic => (q, self.config.update_epochs),
            };
            Json::obj([
                ("method", Json::str(m.name())),
                ("policy_params", Json::Num((q * c) as f64)),
                ("critic_params", Json::Num(critic as f64)),
                ("samples_per_step", Json::Num(samples as f64)),
                ("policy_gradient_passes_per_step", Json::Num(updates as f64)),
                // The critic's forward (V(q) for each sample) and its regression step.
                (
                    "critic_passes_per_step",
                    Json::Num(if critic > 0 { 2.0 } else { 0.0 }),
                ),
            ])
        };
        Json::Arr(Method::ALL.iter().map(|&m| per(m)).collect())
    }

    fn group_json(&self, g: &Group) -> Json {
        let (mean, std) = g.mean_std();
        Json::obj([
            ("prompt", Json::Num(g.prompt as f64)),
            ("prompt_text", Json::str(self.task.prompt_text(g.prompt))),
            (
                "completions",
                Json::Arr(
                    g.completions
                        .iter()
                        .map(|&o| Json::str(self.task.answer_text(o)))
                        .collect(),
                ),
            ),
            ("rewards", Json::nums(&g.rewards)),
            ("mean", Json::Num(mean)),
            ("std", Json::Num(std)),
            ("advantages", Json::nums(&g.advantages)),
            ("zero_advantage", Json::Bool(g.zero_advantage())),
        ])
    }

    fn history_json(&self) -> Json {
        let h = &self.history;
        let opt = |xs: &[Option<f64>]| {
            Json::Arr(xs.iter().map(|x| x.map_or(Json::Null, Json::Num)).collect())
        };
        Json::obj([
            (
                "step",
                Json::Arr(h.step.iter().map(|&s| Json::Num(s as f64)).collect()),
            ),
            ("mean_reward", Json::nums(&h.mean_reward)),
            ("accuracy", Json::nums(&h.accuracy)),
            ("kl", Json::nums(&h.kl)),
            ("k3_mean", Json::nums(&h.k3_mean)),
            ("adv_mean", Json::nums(&h.adv_mean)),
            ("adv_std", Json::nums(&h.adv_std)),
            (
                "zero_adv_groups",
                Json::Arr(h.zero_groups.iter().map(|&z| Json::Num(z as f64)).collect()),
            ),
            ("accuracy_reinforce", Json::nums(&h.accuracy_reinforce)),
            ("accuracy_ppo", Json::nums(&h.accuracy_ppo)),
            (
                "gradient_noise",
                Json::obj(
                    Estimator::ALL
                        .iter()
                        .zip(&h.noise)
                        .map(|(e, xs)| (e.name(), opt(xs))),
                ),
            ),
        ])
    }

    /// Everything the widget plots (the element's `state.data`).
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("step", Json::Num(self.step as f64)),
            ("steps", Json::Num(self.config.total_steps as f64)),
            ("done", Json::Bool(self.done())),
            ("initial_accuracy", Json::Num(self.initial_accuracy)),
            (
                "accuracy",
                Json::Num(accuracy(&self.task, self.grpo_logits())),
            ),
            ("kl", Json::Num(mean_kl(self.grpo_logits(), &self.ref_logp))),
            (
                "groups",
                Json::Arr(
                    self.shown_batch()
                        .groups
                        .iter()
                        .map(|g| self.group_json(g))
                        .collect(),
                ),
            ),
            ("groups_are_preview", Json::Bool(self.last_batch.is_none())),
            ("history", self.history_json()),
            (
                "accuracy_per_prompt",
                Json::nums(&accuracy_per_prompt(&self.task, self.grpo_logits())),
            ),
            (
                "reference_accuracy_per_prompt",
                Json::nums(&accuracy_per_prompt(&self.task, &self.ref_logits)),
            ),
            ("costs", self.costs_json()),
        ])
    }

    /// The data of one panel (0 the group, 1 training curves, 2 comparisons, 3 accuracy map).
    pub fn panel_json(&self, panel: usize) -> Json {
        let all = self.to_json();
        let keys: &[&str] = match panel {
            0 => &["step", "groups", "groups_are_preview"],
            1 => &["step", "history"],
            2 => &["step", "history", "costs"],
            _ => &["accuracy_per_prompt", "reference_accuracy_per_prompt"],
        };
        Json::obj(
            keys.iter()
                .map(|k| (*k, all.get(k).cloned().unwrap_or(Json::Null))),
        )
    }

    /// The data of one panel as CSV with a header row.
    pub fn panel_csv(&self, panel: usize) -> String {
        let h = &self.history;
        let mut out = String::new();
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
        match panel {
            0 => {
                out.push_str("prompt,completion,answer,reward,advantage,group_mean,group_std\n");
                for g in &self.shown_batch().groups {
                    let (m, s) = g.mean_std();
                    for (i, &o) in g.completions.iter().enumerate() {
                        out.push_str(&format!(
                            "\"{}\",{i},\"{}\",{},{},{m},{s}\n",
                            self.task.prompt_text(g.prompt),
                            self.task.answer_text(o),
                            g.rewards[i],
                            g.advantages[i]
                        ));
                    }
                }
            }
            1 => {
                out.push_str(
                    "step,mean_reward,accuracy,kl,k3_mean,adv_mean,adv_std,zero_adv_groups\n",
                );
                for i in 0..h.step.len() {
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{}\n",
                        h.step[i],
                        h.mean_reward[i],
                        h.accuracy[i],
                        h.kl[i],
                        h.k3_mean[i],
                        h.adv_mean[i],
                        h.adv_std[i],
                        h.zero_groups[i]
                    ));
                }
            }
            2 => {
                out.push_str("step,accuracy_grpo,accuracy_reinforce,accuracy_ppo_critic,noise_raw_reward,noise_group_mean,noise_group_z\n");
                for i in 0..h.step.len() {
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{}\n",
                        h.step[i],
                        h.accuracy[i],
                        h.accuracy_reinforce[i],
                        h.accuracy_ppo[i],
                        opt(h.noise[0][i]),
                        opt(h.noise[1][i]),
                        opt(h.noise[2][i])
                    ));
                }
            }
            _ => {
                out.push_str("a,b,pi_correct,pi_ref_correct\n");
                let now = accuracy_per_prompt(&self.task, self.grpo_logits());
                let before = accuracy_per_prompt(&self.task, &self.ref_logits);
                for q in 0..self.task.n_prompts() {
                    let (a, b) = self.task.operands(q);
                    out.push_str(&format!("{a},{b},{},{}\n", now[q], before[q]));
                }
            }
        }
        out
    }
}

/// A whole run, trained to its last step (what `widgets::run` reports).
pub fn train_to_end(config: &Config) -> Trainer {
    let mut t = Trainer::new(config);
    // On error the last good state is kept, and that is what this reports.
    let _ = t.train(config.total_steps);
    t
}

/// `mlplay grpo ...`: one JSON line per logged step
/// (`step, mean_reward, accuracy, kl, adv_mean, adv_std`, and `zero_adv_groups`).
pub fn cli(params: &Params, out: &mut impl Write) -> std::io::Result<()> {
    let config = Config::from_params(params);
    let mut t = Trainer::new(&config);
    let mut printed = 0;
    while !t.done() {
        let result = t.train(config.log_every());
        while printed < t.history.step.len() {
            writeln!(out, "{}", t.log_line(printed))?;
            printed += 1;
        }
        if let Err(e) = result {
            writeln!(out, "{}", Json::obj([("error", Json::str(e))]))?;
            break;
        }
    }
    Ok(())
}
