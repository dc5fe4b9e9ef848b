//! Direct preference optimisation (Rafailov et al. 2023) on a policy small enough to solve exactly.
//!
//! ```text
//! L_DPO(theta) = -E_(x, y_w, y_l) [ log sigmoid( beta [ log pi(y_w|x)/pi_ref(y_w|x) - log pi(y_l|x)/pi_ref(y_l|x) ] ) ]
//! implicit reward  h(x, y) = beta log pi(y|x) / pi_ref(y|x)
//! optimum          pi*(y|x) = pi_ref(y|x) exp(r(x, y) / beta) / Z(x)
//! ```
//!
//! The toy of `<ml-dpo>`: P prompts, M candidate responses each, a tabular softmax policy
//! `pi(.|x) = softmax(theta[x])`, a frozen reference `pi_ref = softmax(theta_ref[x])`, and a
//! hidden true reward `r(x, y)`. Preference pairs are drawn from the Bradley-Terry model:
//! a prompt and two distinct responses uniformly, `a` preferred to `b` with probability
//! `sigmoid(r(x, a) - r(x, b))`.
//!
//! The margin `m = h(x, y_w) - h(x, y_l) = beta [(theta_w - theta_l) - (theta_ref_w - theta_ref_l)]`
//! is *linear* in the logits (the log-partition cancels), so DPO here is exactly logistic
//! regression with the pair's indicator difference as features:
//!
//! ```text
//! dL/dtheta[x] = -(1/N) sum_{pairs at x} (1 - sigmoid(m)) beta (e_w - e_l)
//! ```
//!
//! With Bradley-Terry labels its population minimiser satisfies `h(x, .) = r(x, .) + c(x)`,
//! i.e. `pi = pi*`: the widget trains towards the closed form and shows how close it gets.
//! Training uses Adam on the logits (what DPO uses in practice), full batch, deterministic.

use std::io::Write;

use ndarray::{Array2, Axis};

use crate::json::Json;
use crate::math::{exp, ln, pow};
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::rng::Rng;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "dpo",
    title: "DPO: preference optimisation as logistic regression",
    summary: "A policy learns from pairs (chosen, rejected) by logistic regression on β log π/π_ref differences, and lands on π_ref exp(r/β).",
    trainer: true,
    params: &[
        ParamSpec::number(
            "beta",
            "KL strength β",
            "β",
            "Scale of the implicit reward β log π/π_ref: small β lets the policy drift far from the reference (DPO paper: 0.1 to 0.5).",
            0.5,
            0.02,
            2.0,
            0.01,
        ),
        ParamSpec::number(
            "pairs",
            "Preference pairs N",
            "N",
            "Number of (prompt, chosen, rejected) pairs drawn from the hidden reward by the Bradley-Terry model.",
            500.0,
            10.0,
            5000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "prompts",
            "Prompts P",
            "P",
            "Number of prompts x; each has its own softmax over the candidate responses.",
            3.0,
            1.0,
            6.0,
            1.0,
        ),
        ParamSpec::number(
            "responses",
            "Responses per prompt M",
            "M",
            "Number of candidate responses y per prompt.",
            4.0,
            2.0,
            8.0,
            1.0,
        ),
        ParamSpec::number(
            "lr",
            "Learning rate η",
            "η",
            "Adam step size on the policy logits (full-batch gradient of the DPO loss).",
            0.05,
            0.005,
            0.5,
            0.005,
        ),
        ParamSpec::number(
            "steps",
            "Training steps K",
            "K",
            "Number of full-batch Adam steps a training run takes.",
            400.0,
            10.0,
            5000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed for the reference policy, the hidden reward and the preference pairs.",
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
    /// beta: the KL strength, i.e. the scale of the implicit reward.
    pub beta: f64,
    /// Number of Bradley-Terry preference pairs.
    pub n_pairs: usize,
    /// Number of prompts P.
    pub n_prompts: usize,
    /// Candidate responses per prompt M.
    pub n_responses: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Number of full-batch steps in a run.
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
            beta: p.get("beta"),
            n_pairs: p.get("pairs") as usize,
            n_prompts: p.get("prompts") as usize,
            n_responses: p.get("responses") as usize,
            learning_rate: p.get("lr"),
            total_steps: p.get("steps") as usize,
            seed: p.get("seed") as u64,
        }
    }

    /// Steps between two logged rows: about 250 rows per run, whatever its length.
    pub fn log_every(&self) -> usize {
        self.total_steps.div_ceil(250).max(1)
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + exp(-z))
    } else {
        let e = exp(z);
        e / (1.0 + e)
    }
}

/// `-log sigmoid(m) = log(1 + e^{-m})`, stable for large |m|.
pub fn neg_log_sigmoid(m: f64) -> f64 {
    (-m).max(0.0) + ln(1.0 + exp(-m.abs()))
}

/// Row-wise `log softmax`.
pub fn log_softmax(logits: &Array2<f64>) -> Array2<f64> {
    let mut out = logits.clone(); // (P, M)
    for mut row in out.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let lse = m + ln(row.iter().map(|z| exp(z - m)).sum::<f64>());
        row.mapv_inplace(|z| z - lse);
    }
    out
}

/// Row-wise softmax.
pub fn softmax(logits: &Array2<f64>) -> Array2<f64> {
    log_softmax(logits).mapv(exp)
}

/// One preference: at prompt `prompt`, response `chosen` was preferred to `rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    pub prompt: usize,
    pub chosen: usize,
    pub rejected: usize,
}

/// The toy world: a frozen reference policy and the hidden reward that labels the pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// theta_ref, the reference policy's logits.
    pub ref_logits: Array2<f64>, // (P, M)
    /// r(x, y), the hidden true reward.
    pub true_reward: Array2<f64>, // (P, M)
}

impl Problem {
    /// theta_ref ~ N(0, 0.7^2) and r ~ N(0, 1), drawn in that order from `rng`.
    pub fn sample(n_prompts: usize, n_responses: usize, rng: &mut Rng) -> Self {
        let ref_logits = Array2::from_shape_fn((n_prompts, n_responses), |_| 0.7 * rng.normal());
        let true_reward = Array2::from_shape_fn((n_prompts, n_responses), |_| rng.normal());
        Problem {
            ref_logits,
            true_reward,
        }
    }

    pub fn n_prompts(&self) -> usize {
        self.ref_logits.nrows()
    }

    pub fn n_responses(&self) -> usize {
        self.ref_logits.ncols()
    }

    pub fn ref_policy(&self) -> Array2<f64> {
        softmax(&self.ref_logits)
    }

    /// Bradley-Terry: P(a preferred to b | x) = sigmoid(r(x, a) - r(x, b)).
    pub fn preference_probability(&self, prompt: usize, a: usize, b: usize) -> f64 {
        sigmoid(self.true_reward[[prompt, a]] - self.true_reward[[prompt, b]])
    }

    /// `n` pairs: a prompt and two distinct responses uniformly, the winner by Bradley-Terry.
    pub fn sample_pairs(&self, n: usize, rng: &mut Rng) -> Vec<Pair> {
        let (np, nr) = (self.n_prompts(), self.n_responses());
        (0..n)
            .map(|_| {
                let prompt = ((rng.uniform() * np as f64) as usize).min(np - 1);
                let a = ((rng.uniform() * nr as f64) as usize).min(nr - 1);
                let mut b = ((rng.uniform() * (nr - 1) as f64) as usize).min(nr - 2);
                if b >= a {
                    b += 1;
                }
                let (chosen, rejected) =
                    if rng.uniform() < self.preference_probability(prompt, a, b) {
                        (a, b)
                    } else {
                        (b, a)
                    };
                Pair {
                    prompt,
                    chosen,
                    rejected,
                }
            })
            .collect()
    }

    /// The infinite-data limit of [`Problem::sample_pairs`]: every ordered pair (a, b), a != b,
    /// with a as the winner, weighted by its probability (1/P) (1/(M(M-1))) sigmoid(r_a - r_b).
    pub fn population_pairs(&self) -> (Vec<Pair>, Vec<f64>) {
        let (np, nr) = (self.n_prompts(), self.n_responses());
        let mut pairs = Vec::new();
        let mut weights = Vec::new();
        for prompt in 0..np {
            for a in 0..nr {
                for b in (0..nr).filter(|&b| b != a) {
                    pairs.push(Pair {
                        prompt,
                        chosen: a,
                        rejected: b,
                    });
                    weights.push(
                        self.preference_probability(prompt, a, b) / (np * nr * (nr - 1)) as f64,
                    );
                }
            }
        }
        (pairs, weights)
    }
}

/// `beta log pi(y|x) / pi_ref(y|x)` for every prompt and response.
pub fn implicit_reward(logits: &Array2<f64>, ref_logits: &Array2<f64>, beta: f64) -> Array2<f64> {
    (log_softmax(logits) - log_softmax(ref_logits)) * beta // (P, M)
}

/// The DPO margin of one pair: `h(x, y_w) - h(x, y_l)`, through the log-softmax (the slow,
/// obviously-right way; [`loss_grad`] uses the cancellation of the log-partition instead).
pub fn margins(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    beta: f64,
) -> Vec<f64> {
    let h = implicit_reward(logits, ref_logits, beta); // (P, M)
    pairs
        .iter()
        .map(|p| h[[p.prompt, p.chosen]] - h[[p.prompt, p.rejected]])
        .collect()
}

/// The DPO loss with a weight per pair (weights summing to one; [`loss`] uses 1/N each).
pub fn loss_weighted(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    weights: &[f64],
    beta: f64,
) -> f64 {
    margins(logits, ref_logits, pairs, beta)
        .iter()
        .zip(weights)
        .map(|(&m, &w)| w * neg_log_sigmoid(m))
        .sum()
}

/// `L_DPO`, the mean of `-log sigmoid(margin)` over the pairs.
pub fn loss(logits: &Array2<f64>, ref_logits: &Array2<f64>, pairs: &[Pair], beta: f64) -> f64 {
    let w = vec![1.0 / pairs.len().max(1) as f64; pairs.len()];
    loss_weighted(logits, ref_logits, pairs, &w, beta)
}

/// dL/dtheta for [`loss_weighted`]: `-sum_pairs w (1 - sigmoid(m)) beta (e_w - e_l)` in the
/// pair's prompt row. The margin is computed from the logits directly (the log-partition
/// cancels), independently of the log-softmax route [`margins`] takes.
pub fn loss_grad_weighted(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    weights: &[f64],
    beta: f64,
) -> Array2<f64> {
    let mut grad = Array2::zeros(logits.raw_dim()); // (P, M)
    for (p, &w) in pairs.iter().zip(weights) {
        let (x, yw, yl) = (p.prompt, p.chosen, p.rejected);
        let m = beta
            * ((logits[[x, yw]] - logits[[x, yl]]) - (ref_logits[[x, yw]] - ref_logits[[x, yl]]));
        let g = w * (1.0 - sigmoid(m)) * beta;
        grad[[x, yw]] -= g;
        grad[[x, yl]] += g;
    }
    grad
}

pub fn loss_grad(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    beta: f64,
) -> Array2<f64> {
    let w = vec![1.0 / pairs.len().max(1) as f64; pairs.len()];
    loss_grad_weighted(logits, ref_logits, pairs, &w, beta)
}

/// The distinct pairs and their frequencies (weights summing to one), in a fixed order: the
/// same loss and gradient as the pairs one by one, at a cost that does not grow with N.
pub fn aggregate(pairs: &[Pair]) -> (Vec<Pair>, Vec<f64>) {
    let (unique, counts) = aggregate_counts(pairs);
    let n = pairs.len() as f64;
    let weights = counts.iter().map(|&c| c as f64 / n).collect();
    (unique, weights)
}

/// The distinct pairs and how often each occurs, in a fixed order.
pub fn aggregate_counts(pairs: &[Pair]) -> (Vec<Pair>, Vec<usize>) {
    let mut sorted: Vec<(usize, usize, usize)> = pairs
        .iter()
        .map(|p| (p.prompt, p.chosen, p.rejected))
        .collect();
    sorted.sort_unstable();
    let mut unique: Vec<Pair> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for (prompt, chosen, rejected) in sorted {
        let p = Pair {
            prompt,
            chosen,
            rejected,
        };
        if unique.last() == Some(&p) {
            *counts.last_mut().expect("a count per pair") += 1;
        } else {
            unique.push(p);
            counts.push(1);
        }
    }
    (unique, counts)
}

/// Fraction of pairs the policy ranks the right way round (margin > 0, as TRL counts it).
pub fn accuracy(logits: &Array2<f64>, ref_logits: &Array2<f64>, pairs: &[Pair]) -> f64 {
    accuracy_counted(logits, ref_logits, pairs, &vec![1; pairs.len()])
}

/// [`accuracy`] with a count per pair (the trainer's distinct pairs and how often each occurs).
pub fn accuracy_counted(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    counts: &[usize],
) -> f64 {
    // The sign of the margin does not depend on beta > 0.
    let right: usize = margins(logits, ref_logits, pairs, 1.0)
        .iter()
        .zip(counts)
        .filter(|(&m, _)| m > 0.0)
        .map(|(_, &c)| c)
        .sum();
    right as f64 / counts.iter().sum::<usize>().max(1) as f64
}

/// KL(pi || pi_ref), averaged over the prompts (each prompt equally likely).
pub fn kl(logits: &Array2<f64>, ref_logits: &Array2<f64>) -> f64 {
    let lp = log_softmax(logits); // (P, M)
    let lq = log_softmax(ref_logits); // (P, M)
    let per_prompt = (lp.mapv(exp) * (&lp - &lq)).sum_axis(Axis(1)); // (P,)
    per_prompt.mean().unwrap_or(0.0)
}

/// `pi*(y|x) = pi_ref(y|x) exp(r(x, y) / beta) / Z(x)`: the maximiser of E[r] - beta KL(pi || pi_ref).
pub fn closed_form_policy(
    ref_logits: &Array2<f64>,
    reward: &Array2<f64>,
    beta: f64,
) -> Array2<f64> {
    softmax(&(log_softmax(ref_logits) + reward / beta))
}

/// One bin of the reliability diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub predicted: f64,
    /// Observed frequency of the event in the bin.
    pub observed: f64,
}

/// Reliability diagram of the model's preference probabilities. Each pair is read in a fixed
/// orientation (lower-numbered response first, so the labels are not all 1): the model
/// predicts `P(first preferred) = sigmoid(h_first - h_second)`, the label says whether it was.
/// Returns the bins and the expected calibration error sum_bins (n_b / N) |predicted - observed|.
pub fn calibration(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    beta: f64,
    n_bins: usize,
) -> (Vec<CalibrationBin>, f64) {
    calibration_counted(
        logits,
        ref_logits,
        pairs,
        &vec![1; pairs.len()],
        beta,
        n_bins,
    )
}

/// [`calibration`] with a count per pair (the trainer's distinct pairs and how often each occurs).
pub fn calibration_counted(
    logits: &Array2<f64>,
    ref_logits: &Array2<f64>,
    pairs: &[Pair],
    counts: &[usize],
    beta: f64,
    n_bins: usize,
) -> (Vec<CalibrationBin>, f64) {
    let h = implicit_reward(logits, ref_logits, beta); // (P, M)
    let mut sums = vec![(0usize, 0.0, 0.0); n_bins];
    for (p, &c) in pairs.iter().zip(counts) {
        let (first, second) = (p.chosen.min(p.rejected), p.chosen.max(p.rejected));
        let pred = sigmoid(h[[p.prompt, first]] - h[[p.prompt, second]]);
        let label = if p.chosen == first { 1.0 } else { 0.0 };
        let bin = ((pred * n_bins as f64) as usize).min(n_bins - 1);
        sums[bin].0 += c;
        sums[bin].1 += c as f64 * pred;
        sums[bin].2 += c as f64 * label;
    }
    let n = counts.iter().sum::<usize>().max(1) as f64;
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, ps, ls))| {
            let (predicted, observed) = if count > 0 {
                (ps / count as f64, ls / count as f64)
            } else {
                (f64::NAN, f64::NAN)
            };
            if count > 0 {
                ece += count as f64 / n * (predicted - observed).abs();
            }
            CalibrationBin {
                lo: i as f64 / n_bins as f64,
                hi: (i + 1) as f64 / n_bins as f64,
                count,
                predicted,
                observed,
            }
        })
        .collect();
    (bins, ece)
}

/// Adam (Kingma & Ba 2015) with the usual 0.9 / 0.999 / 1e-8, minimising.
#[derive(Clone, Debug)]
pub struct Adam {
    m: Array2<f64>,
    v: Array2<f64>,
    t: i32,
}

impl Adam {
    pub fn new(shape: (usize, usize)) -> Self {
        Adam {
            m: Array2::zeros(shape),
            v: Array2::zeros(shape),
            t: 0,
        }
    }

    /// theta <- theta - lr m_hat / (sqrt(v_hat) + eps).
    pub fn step(&mut self, theta: &mut Array2<f64>, grad: &Array2<f64>, lr: f64) {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        self.t += 1;
        self.m = &self.m * b1 + grad * (1.0 - b1);
        self.v = &self.v * b2 + &grad.mapv(|g| g * g) * (1.0 - b2);
        let c1 = 1.0 - pow(b1, f64::from(self.t));
        let c2 = 1.0 - pow(b2, f64::from(self.t));
        ndarray::Zip::from(theta)
            .and(&self.m)
            .and(&self.v)
            .for_each(|th, &m, &v| *th -= lr * (m / c1) / ((v / c2).sqrt() + eps));
    }
}

/// One policy being trained at one beta.
#[derive(Clone, Debug)]
pub struct Run {
    pub beta: f64,
    pub logits: Array2<f64>, // (P, M)
    adam: Adam,
    /// KL(pi || pi_ref) at each logged step.
    pub kl: Vec<f64>,
}

impl Run {
    fn new(beta: f64, start: &Array2<f64>) -> Self {
        Run {
            beta,
            logits: start.clone(),
            adam: Adam::new(start.dim()),
            kl: Vec::new(),
        }
    }
}

/// The logged curves of the main run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub step: Vec<usize>,
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub kl: Vec<f64>,
    /// Expected calibration error (10 bins).
    pub ece: Vec<f64>,
}

/// Where the pairs came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Drawn from the hidden reward by the Bradley-Terry model.
    BradleyTerry,
    /// Given by a person (edited or loaded as CSV); `skipped` rows did not fit P x M.
    Custom { skipped: usize },
}

/// Multipliers of beta for the two companion runs of the KL panel.
pub const COMPANION_BETAS: [f64; 2] = [0.25, 4.0];
/// Bins of the reliability diagram.
pub const CALIBRATION_BINS: usize = 10;

/// A DPO training run: the main policy at beta, two companions at beta/4 and 4 beta trained
/// on the same pairs (the KL panel), and what is logged.
#[derive(Clone, Debug)]
pub struct Trainer {
    pub config: Config,
    pub problem: Problem,
    pub pairs: Vec<Pair>,
    /// The distinct pairs, their frequencies and counts, which training and logging use
    /// (see [`aggregate`]); `pairs` is kept for display and export.
    unique: (Vec<Pair>, Vec<f64>),
    counts: Vec<usize>,
    pub source: Source,
    pub main: Run,
    pub companions: Vec<Run>,
    /// Steps taken so far.
    pub step: usize,
    pub history: History,
}

impl Trainer {
    /// A fresh run: the problem and (unless `custom` pairs are given) the Bradley-Terry pairs
    /// from one seeded stream, so changing N keeps the problem and extends the same pairs.
    pub fn new(config: &Config, custom: Option<&[Pair]>) -> Self {
        let mut rng = Rng::new(config.seed);
        let problem = Problem::sample(config.n_prompts, config.n_responses, &mut rng);
        let (pairs, source) = match custom {
            None => (
                problem.sample_pairs(config.n_pairs, &mut rng),
                Source::BradleyTerry,
            ),
            Some(rows) => {
                let fits = |p: &&Pair| {
                    p.prompt < config.n_prompts
                        && p.chosen < config.n_responses
                        && p.rejected < config.n_responses
                };
                let kept: Vec<Pair> = rows.iter().filter(fits).copied().collect();
                let skipped = rows.len() - kept.len();
                (kept, Source::Custom { skipped })
            }
        };
        // The policy starts at the reference: every margin 0, the loss ln 2, the KL 0.
        let start = problem.ref_logits.clone();
        let mut t = Trainer {
            main: Run::new(config.beta, &start),
            companions: COMPANION_BETAS
                .iter()
                .map(|k| Run::new(k * config.beta, &start))
                .collect(),
            config: config.clone(),
            problem,
            unique: aggregate(&pairs),
            counts: aggregate_counts(&pairs).1,
            pairs,
            source,
            step: 0,
            history: History::default(),
        };
        t.log();
        t
    }

    /// Hyperparameters that change without restarting: beta, the learning rate and the length.
    pub fn set_hyperparameters(&mut self, config: &Config) {
        self.config.beta = config.beta;
        self.config.learning_rate = config.learning_rate;
        self.config.total_steps = config.total_steps;
        self.main.beta = config.beta;
        for (run, k) in self.companions.iter_mut().zip(COMPANION_BETAS) {
            run.beta = k * config.beta;
        }
    }

    pub fn done(&self) -> bool {
        self.step >= self.config.total_steps
    }

    fn log(&mut self) {
        let (logits, reference) = (&self.main.logits, &self.problem.ref_logits);
        let beta = self.main.beta;
        self.history.step.push(self.step);
        let (unique, weights) = &self.unique;
        self.history
            .loss
            .push(loss_weighted(logits, reference, unique, weights, beta));
        self.history
            .accuracy
            .push(accuracy_counted(logits, reference, unique, &self.counts));
        self.history.kl.push(kl(logits, reference));
        self.history.ece.push(
            calibration_counted(
                logits,
                reference,
                unique,
                &self.counts,
                beta,
                CALIBRATION_BINS,
            )
            .1,
        );
        self.main.kl.push(kl(logits, reference));
        for run in &mut self.companions {
            run.kl.push(kl(&run.logits, reference));
        }
    }

    /// Up to `n` full-batch Adam steps (fewer when the run ends); the number taken. A step
    /// that would make a logit non-finite is refused, the state kept, and an error returned.
    pub fn train(&mut self, n: usize) -> Result<usize, String> {
        let mut taken = 0;
        while taken < n && !self.done() {
            let lr = self.config.learning_rate;
            let reference = &self.problem.ref_logits;
            let mut next = Vec::with_capacity(1 + self.companions.len());
            for run in std::iter::once(&self.main).chain(&self.companions) {
                let (unique, weights) = &self.unique;
                let grad = loss_grad_weighted(&run.logits, reference, unique, weights, run.beta);
                let mut logits = run.logits.clone();
                let mut adam = run.adam.clone();
                adam.step(&mut logits, &grad, lr);
                if logits.iter().any(|z| !z.is_finite()) {
                    return Err(format!(
                        "step {}: a logit became non-finite at beta = {}; training stopped",
                        self.step + 1,
                        run.beta
                    ));
                }
                next.push((logits, adam));
            }
            for (run, (logits, adam)) in std::iter::once(&mut self.main)
                .chain(&mut self.companions)
                .zip(next)
            {
                run.logits = logits;
                run.adam = adam;
            }
            self.step += 1;
            taken += 1;
            if self.step % self.config.log_every() == 0 || self.done() {
                self.log();
            }
        }
        Ok(taken)
    }

    pub fn learned_policy(&self) -> Array2<f64> {
        softmax(&self.main.logits)
    }

    pub fn closed_form_policy(&self) -> Array2<f64> {
        closed_form_policy(
            &self.problem.ref_logits,
            &self.problem.true_reward,
            self.main.beta,
        )
    }

    pub fn implicit_reward(&self) -> Array2<f64> {
        implicit_reward(&self.main.logits, &self.problem.ref_logits, self.main.beta)
    }

    pub fn margins(&self) -> Vec<f64> {
        margins(
            &self.main.logits,
            &self.problem.ref_logits,
            &self.pairs,
            self.main.beta,
        )
    }

    /// For each pair: does its label agree with the hidden reward (the better response chosen)?
    pub fn agrees_with_reward(&self) -> Vec<bool> {
        let r = &self.problem.true_reward;
        self.pairs
            .iter()
            .map(|p| r[[p.prompt, p.chosen]] >= r[[p.prompt, p.rejected]])
            .collect()
    }

    pub fn calibration(&self) -> (Vec<CalibrationBin>, f64) {
        calibration_counted(
            &self.main.logits,
            &self.problem.ref_logits,
            &self.unique.0,
            &self.counts,
            self.main.beta,
            CALIBRATION_BINS,
        )
    }

    /// The latest logged row as one CLI line.
    pub fn log_line(&self, i: usize) -> Json {
        let h = &self.history;
        Json::obj([
            ("step", Json::Num(h.step[i] as f64)),
            ("loss", Json::Num(h.loss[i])),
            ("accuracy", Json::Num(h.accuracy[i])),
            ("kl", Json::Num(h.kl[i])),
        ])
    }

    /// The CLI's last line: the learned, closed-form and reference policies and the reward.
    pub fn final_line(&self) -> Json {
        Json::obj([
            ("step", Json::Num(self.step as f64)),
            ("beta", Json::Num(self.main.beta)),
            ("learned_policy", rows_json(&self.learned_policy())),
            ("closed_form_policy", rows_json(&self.closed_form_policy())),
            ("ref_policy", rows_json(&self.problem.ref_policy())),
            ("true_reward", rows_json(&self.problem.true_reward)),
        ])
    }

    /// Everything the widget plots, as JSON (the element's `state.data`).
    pub fn to_json(&self) -> Json {
        let h = &self.history;
        let (bins, ece) = self.calibration();
        Json::obj([
            ("step", Json::Num(self.step as f64)),
            ("steps", Json::Num(self.config.total_steps as f64)),
            ("done", Json::Bool(self.done())),
            ("beta", Json::Num(self.main.beta)),
            (
                "source",
                Json::str(match self.source {
                    Source::BradleyTerry => "bradley-terry",
                    Source::Custom { .. } => "custom",
                }),
            ),
            (
                "skipped_rows",
                Json::Num(match self.source {
                    Source::Custom { skipped } => skipped as f64,
                    Source::BradleyTerry => 0.0,
                }),
            ),
            ("pairs", pairs_json(&self.pairs)),
            (
                "history",
                Json::obj([
                    (
                        "step",
                        Json::Arr(h.step.iter().map(|&s| Json::Num(s as f64)).collect()),
                    ),
                    ("loss", Json::nums(&h.loss)),
                    ("accuracy", Json::nums(&h.accuracy)),
                    ("kl", Json::nums(&h.kl)),
                    ("ece", Json::nums(&h.ece)),
                ]),
            ),
            ("calibration", calibration_json(&bins, ece)),
            ("margins", Json::nums(&self.margins())),
            (
                "agrees_with_reward",
                Json::Arr(
                    self.agrees_with_reward()
                        .into_iter()
                        .map(Json::Bool)
                        .collect(),
                ),
            ),
            ("implicit_reward", rows_json(&self.implicit_reward())),
            ("kl_runs", self.kl_runs_json()),
            ("learned_policy", rows_json(&self.learned_policy())),
            ("closed_form_policy", rows_json(&self.closed_form_policy())),
            ("ref_policy", rows_json(&self.problem.ref_policy())),
            ("true_reward", rows_json(&self.problem.true_reward)),
        ])
    }

    fn kl_runs_json(&self) -> Json {
        Json::Arr(
            std::iter::once(&self.main)
                .chain(&self.companions)
                .map(|r| Json::obj([("beta", Json::Num(r.beta)), ("kl", Json::nums(&r.kl))]))
                .collect(),
        )
    }

    /// The data of one panel (0 training curves, 1 implicit reward, 2 sigmoid view,
    /// 3 KL runs, 4 policies), for the JSON export.
    pub fn panel_json(&self, panel: usize) -> Json {
        let all = self.to_json();
        let keys: &[&str] = match panel {
            0 => &["step", "history", "calibration"],
            1 => &["beta", "implicit_reward", "true_reward"],
            2 => &["beta", "pairs", "margins", "agrees_with_reward"],
            3 => &["step", "history", "kl_runs"],
            _ => &[
                "beta",
                "learned_policy",
                "closed_form_policy",
                "ref_policy",
                "true_reward",
            ],
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
        match panel {
            0 => {
                out.push_str("step,loss,accuracy,kl,ece\n");
                for i in 0..h.step.len() {
                    out.push_str(&format!(
                        "{},{},{},{},{}\n",
                        h.step[i], h.loss[i], h.accuracy[i], h.kl[i], h.ece[i]
                    ));
                }
            }
            1 | 4 => {
                out.push_str("prompt,response,true_reward,implicit_reward,ref_policy,learned_policy,closed_form_policy\n");
                let (hr, pi, star, pref) = (
                    self.implicit_reward(),
                    self.learned_policy(),
                    self.closed_form_policy(),
                    self.problem.ref_policy(),
                );
                for ((x, y), r) in self.problem.true_reward.indexed_iter() {
                    out.push_str(&format!(
                        "{x},{y},{r},{},{},{},{}\n",
                        hr[[x, y]],
                        pref[[x, y]],
                        pi[[x, y]],
                        star[[x, y]]
                    ));
                }
            }
            2 => {
                out.push_str("prompt,chosen,rejected,margin,sigmoid_margin,agrees_with_reward\n");
                for ((p, m), a) in self
                    .pairs
                    .iter()
                    .zip(self.margins())
                    .zip(self.agrees_with_reward())
                {
                    out.push_str(&format!(
                        "{},{},{},{m},{},{a}\n",
                        p.prompt,
                        p.chosen,
                        p.rejected,
                        sigmoid(m)
                    ));
                }
            }
            _ => {
                let runs: Vec<&Run> = std::iter::once(&self.main)
                    .chain(&self.companions)
                    .collect();
                out.push_str("step");
                for r in &runs {
                    out.push_str(&format!(",kl_beta_{}", r.beta));
                }
                out.push('\n');
                for i in 0..h.step.len() {
                    out.push_str(&h.step[i].to_string());
                    for r in &runs {
                        out.push_str(&format!(",{}", r.kl[i]));
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn rows_json(a: &Array2<f64>) -> Json {
    Json::Arr(a.rows().into_iter().map(|r| Json::nums(r.iter())).collect())
}

fn pairs_json(pairs: &[Pair]) -> Json {
    Json::Arr(
        pairs
            .iter()
            .map(|p| {
                Json::Arr(vec![
                    Json::Num(p.prompt as f64),
                    Json::Num(p.chosen as f64),
                    Json::Num(p.rejected as f64),
                ])
            })
            .collect(),
    )
}

fn calibration_json(bins: &[CalibrationBin], ece: f64) -> Json {
    Json::obj([
        ("ece", Json::Num(ece)),
        (
            "bins",
            Json::Arr(
                bins.iter()
                    .map(|b| {
                        Json::obj([
                            ("lo", Json::Num(b.lo)),
                            ("hi", Json::Num(b.hi)),
                            ("count", Json::Num(b.count as f64)),
                            ("predicted", Json::Num(b.predicted)),
                            ("observed", Json::Num(b.observed)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ])
}

/// The pairs as CSV, `prompt,chosen,rejected` with 0-based indices (what [`parse_pairs_csv`] reads).
pub fn pairs_csv(pairs: &[Pair]) -> String {
    let mut out = String::from("prompt,chosen,rejected\n");
    for p in pairs {
        out.push_str(&format!("{},{},{}\n", p.prompt, p.chosen, p.rejected));
    }
    out
}

/// Read `prompt,chosen,rejected` rows (0-based indices; a header line, blank lines and lines
/// starting with `#` are skipped). An error names the first bad line and says why.
pub fn parse_pairs_csv(text: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<usize>, _> = fields.iter().map(|f| f.parse::<usize>()).collect();
        let is_header = first && fields.iter().all(|f| crate::math::parse_f64(f).is_none());
        first = false;
        let numbers = match parsed {
            Ok(n) => n,
            Err(_) if is_header => continue,
            Err(_) => {
                return Err(format!(
                    "line {}: \"{line}\" is not three whole numbers prompt,chosen,rejected",
                    i + 1
                ))
            }
        };
        let [prompt, chosen, rejected] = numbers[..] else {
            return Err(format!(
                "line {}: \"{line}\" has {} fields; expected prompt,chosen,rejected",
                i + 1,
                numbers.len()
            ));
        };
        if chosen == rejected {
            return Err(format!(
                "line {}: chosen and rejected are the same response ({chosen})",
                i + 1
            ));
        }
        pairs.push(Pair {
            prompt,
            chosen,
            rejected,
        });
    }
    if pairs.is_empty() {
        return Err("no pairs: give one prompt,chosen,rejected row per line".to_string());
    }
    Ok(pairs)
}

/// A whole run, trained to its last step (what `widgets::run` reports).
pub fn train_to_end(config: &Config) -> Trainer {
    let mut t = Trainer::new(config, None);
    // Adam on a tabular logistic regression stays finite; an error would leave the
    // last good state, which is still what this reports.
    let _ = t.train(config.total_steps);
    t
}

/// `mlplay dpo ...`: one JSON line per logged step (`step, loss, accuracy, kl`), then one with
/// the learned, closed-form and reference policies and the true reward.
pub fn cli(params: &Params, out: &mut impl Write) -> std::io::Result<()> {
    let config = Config::from_params(params);
    let mut t = Trainer::new(&config, None);
    writeln!(out, "{}", t.log_line(0))?;
    let mut printed = 1;
    while !t.done() {
        if let Err(e) = t.train(config.log_every()) {
            writeln!(out, "{}", Json::obj([("error", Json::str(e))]))?;
            break;
        }
        while printed < t.history.step.len() {
            writeln!(out, "{}", t.log_line(printed))?;
            printed += 1;
        }
    }
    writeln!(out, "{}", t.final_line())
}
