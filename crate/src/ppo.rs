//! Proximal Policy Optimization (Schulman et al. 2017) on CartPole-v1, with the core
//! implementation details of Huang et al., "The 37 implementation details of PPO" (2022),
//! in the shape of CleanRL's `ppo.py`.
//!
//! ```text
//! rollout:  N envs × T steps under π_old, a ~ Categorical(softmax(actor(s)))
//! GAE:      δ_t = r_t + γ V(s_{t+1}) (1 − terminated_t) − V(s_t)
//!           A_t = δ_t + γ λ (1 − ended_t) A_{t+1},        R_t = A_t + V(s_t)
//!           (a truncated episode is not terminal: s_{t+1} is its final observation)
//! update:   K epochs over shuffled minibatches of size M, advantages normalised per minibatch
//!           r = π_θ(a|s) / π_old(a|s)
//!           L_pg = mean(max(−A r, −A clip(r, 1 − ε, 1 + ε)))
//!           L_V  = ½ mean((V − R)²)   [or ½ mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))]
//!           loss = L_pg − c_ent H[π_θ] + c_V L_V,   global grad-norm clip, Adam (ε = 1e-5)
//! diagnostics: approx KL = mean((r − 1) − log r) (the k3 estimator), clip fraction
//!           = mean(|r − 1| > ε), explained variance = 1 − Var(R − V) / Var(R)
//! ```
//!
//! The trainer is step-wise: [`Trainer::step`] does a bounded number of work units (one
//! vectorised environment step, or one chunk of at most [`CHUNK`] samples of a minibatch's
//! forward and backward pass) and returns, so the browser can give it a few milliseconds per
//! animation frame. The result does not depend on how the work is sliced: the same seed and
//! configuration give the same learning curve, bit for bit, on the CLI and in the browser.
//! Used by `<ml-cartpole-ppo>` and `mlplay cartpole-ppo`.

use crate::cartpole::{Physics, VecEnv, VecTransition, SOLVED_RETURN};
use crate::nn::{clip_grad_norm, Activations, Adam, BackwardScratch, Mlp};
use crate::rng::Rng;

/// Observation size of CartPole.
pub const OBS: usize = 4;
/// Actions of CartPole (0: push left, 1: push right).
pub const ACTIONS: usize = 2;
/// Samples of a minibatch handled per work unit (a fixed size, so slicing the work by
/// time never changes the order of any floating-point sum).
pub const CHUNK: usize = 64;
/// Episodes in the "mean return of the last 20 episodes" that decides solved.
pub const SOLVED_WINDOW: usize = 20;
/// A value loss above this is called diverged (returns are at most 500).
pub const VALUE_LOSS_LIMIT: f64 = 1e6;
/// A policy whose mean entropy (nats) falls below this before it has solved the task is
/// called collapsed: its softmax is saturated, its gradients vanish, it can never recover
/// (what a huge learning rate does to PPO; healthy runs keep 0.05 to 0.7 nats).
pub const ENTROPY_COLLAPSE: f64 = 1e-4;

/// Which schedules anneal linearly to zero over the step budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    None,
    Lr,
    LrAndClip,
}

/// Everything that decides a PPO run. `Default` is CleanRL's `ppo.py` for CartPole-v1.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The environment's physics (Gymnasium's by default).
    pub physics: Physics,
    /// Parallel environments N.
    pub num_envs: usize,
    /// Steps per environment per rollout T (the batch is N·T).
    pub num_steps: usize,
    /// Adam's step size η (before annealing).
    pub learning_rate: f64,
    /// Discount γ.
    pub gamma: f64,
    /// GAE's λ.
    pub gae_lambda: f64,
    /// Passes K over each batch.
    pub update_epochs: usize,
    /// Samples per minibatch M (the last minibatch of an epoch may be smaller).
    pub minibatch_size: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    /// Whether the surrogate is clipped (false: plain policy gradient on r A).
    pub clip: bool,
    /// Clip range ε (before annealing).
    pub clip_coef: f64,
    /// Clip the value function's change to ±ε too.
    pub clip_vloss: bool,
    /// Entropy bonus coefficient c_ent.
    pub ent_coef: f64,
    /// Value loss coefficient c_V.
    pub vf_coef: f64,
    /// Global gradient-norm limit.
    pub max_grad_norm: f64,
    /// Stop an update's epochs early once the epoch's approx KL exceeds this.
    pub target_kl: Option<f64>,
    pub anneal: Anneal,
    /// Width of both hidden layers.
    pub hidden: usize,
    /// One tanh trunk with two heads instead of separate actor and critic networks.
    pub shared: bool,
    /// Environment steps of the run (and the horizon of annealing).
    pub total_steps: usize,
    /// Stop as soon as the mean return of the last 20 episodes reaches 475.
    pub stop_when_solved: bool,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            physics: Physics::default(),
            num_envs: 4,
            num_steps: 128,
            learning_rate: 2.5e-4,
            gamma: 0.99,
            gae_lambda: 0.95,
            update_epochs: 4,
            minibatch_size: 128,
            norm_adv: true,
            clip: true,
            clip_coef: 0.2,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            anneal: Anneal::Lr,
            hidden: 64,
            shared: false,
            total_steps: 500_000,
            stop_when_solved: false,
            seed: 1,
        }
    }
}

impl Config {
    /// Samples per rollout, N·T.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
    }

    /// Whether two configurations need different networks (a change that cannot take
    /// effect mid-run).
    pub fn same_networks(&self, other: &Config) -> bool {
        self.hidden == other.hidden && self.shared == other.shared && self.seed == other.seed
    }
}

// ------------------------------------------------------------------------------------------
// The pieces of the math, as pure functions (the tests check each one).

/// Generalised advantage estimation for ONE environment's T steps.
///
/// `next_values[t]` is V of the observation that followed step t: the next step's
/// observation, or the ended episode's final observation (a truncation bootstraps from it;
/// a termination multiplies it by zero). `ended[t]` cuts the recursion between episodes.
pub fn gae(
    rewards: &[f64],
    values: &[f64],
    next_values: &[f64],
    terminated: &[bool],
    ended: &[bool],
    gamma: f64,
    gae_lambda: f64,
) -> Vec<f64> {
    let t_max = rewards.len();
    let mut adv = vec![0.0; t_max];
    let mut last = 0.0;
    for t in (0..t_max).rev() {
        let not_terminal = if terminated[t] { 0.0 } else { 1.0 };
        let not_ended = if ended[t] { 0.0 } else { 1.0 };
        let delta = rewards[t] + gamma * next_values[t] * not_terminal - values[t];
        last = delta + gamma * gae_lambda * not_ended * last;
        adv[t] = last;
    }
    adv
}

/// Numerically stable log-softmax of one row of logits.
pub fn log_softmax(logits: &[f64], out: &mut [f64]) {
    let m = logits.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let s: f64 = logits.iter().map(|&z| crate::math::exp(z - m)).sum();
    let lse = m + crate::math::ln(s);
    for (o, &z) in out.iter_mut().zip(logits) {
        *o = z - lse;
    }
}

/// One sample's share of the PPO losses and their gradients with respect to its logits and
/// its value. Every term is already divided by the minibatch size `m`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleLoss {
    /// −A r or its clipped version, over m.
    pub pg: f64,
    /// Entropy H of π_θ(·|s), over m.
    pub entropy: f64,
    /// ½ (V − R)² or its clipped version, over m.
    pub value: f64,
    pub ratio: f64,
    /// (r − 1) − log r.
    pub approx_kl: f64,
    pub clipped: bool,
}

/// What decides one sample's loss besides the network outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleTarget {
    pub action: usize,
    pub old_logp: f64,
    /// The (normalised) advantage.
    pub advantage: f64,
    pub old_value: f64,
    pub ret: f64,
}

/// The loss coefficients of one update (after annealing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossCoefs {
    /// Clip range ε, or None for the unclipped surrogate.
    pub clip: Option<f64>,
    pub clip_vloss: bool,
    pub ent_coef: f64,
    pub vf_coef: f64,
}

/// Per-sample loss `L = (L_pg − c_ent H + c_V L_V) / m` and its gradient: `d_logits` gets
/// dL/dlogits, and the return value's second element is dL/dV.
pub fn sample_loss(
    logits: &[f64],
    value: f64,
    target: &SampleTarget,
    coefs: &LossCoefs,
    m: f64,
    d_logits: &mut [f64],
) -> (SampleLoss, f64) {
    let n = logits.len();
    let mut logp = [0.0; 8];
    let logp = &mut logp[..n];
    log_softmax(logits, logp);
    let a = target.action;
    let log_ratio = logp[a] - target.old_logp;
    let ratio = crate::math::exp(log_ratio);
    let adv = target.advantage;
    // Policy: max(−A r, −A clip(r)); its derivative in r is −A unless the clipped branch
    // is strictly larger (then the sample does not move the policy).
    let pg1 = -adv * ratio;
    let (pg, dpg_dratio) = match coefs.clip {
        Some(eps) => {
            let pg2 = -adv * ratio.clamp(1.0 - eps, 1.0 + eps);
            if pg2 > pg1 {
                (pg2, 0.0)
            } else {
                (pg1, -adv)
            }
        }
        None => (pg1, -adv),
    };
    // Entropy H = −Σ p log p; dH/dz_k = −p_k (log p_k + H).
    let mut entropy = 0.0;
    for &lp in logp.iter() {
        entropy -= crate::math::exp(lp) * lp;
    }
    for k in 0..n {
        let p = crate::math::exp(logp[k]);
        let onehot = if k == a { 1.0 } else { 0.0 };
        // dr/dz_k = r (1[k = a] − p_k)
        let d_pg = dpg_dratio * ratio * (onehot - p);
        let d_ent = -p * (logp[k] + entropy);
        d_logits[k] = (d_pg - coefs.ent_coef * d_ent) / m;
    }
    // Value: ½ (V − R)², or the larger of that and the clipped version.
    let (v_loss, dv) = if let (true, Some(eps)) = (coefs.clip_vloss, coefs.clip) {
        let unclipped = (value - target.ret) * (value - target.ret);
        let delta = value - target.old_value;
        let v_clipped = target.old_value + delta.clamp(-eps, eps);
        let clipped = (v_clipped - target.ret) * (v_clipped - target.ret);
        if clipped > unclipped {
            let inside = if delta.abs() < eps { 1.0 } else { 0.0 };
            (0.5 * clipped, (v_clipped - target.ret) * inside)
        } else {
            (0.5 * unclipped, value - target.ret)
        }
    } else {
        (
            0.5 * (value - target.ret) * (value - target.ret),
            value - target.ret,
        )
    };
    let clipped = coefs.clip.is_some_and(|eps| (ratio - 1.0).abs() > eps);
    (
        SampleLoss {
            pg: pg / m,
            entropy: entropy / m,
            value: v_loss / m,
            ratio,
            approx_kl: (ratio - 1.0) - log_ratio,
            clipped,
        },
        coefs.vf_coef * dv / m,
    )
}

/// `1 − Var(R − V) / Var(R)` (population variances); NaN when the returns do not vary.
pub fn explained_variance(values: &[f64], returns: &[f64]) -> f64 {
    let n = returns.len() as f64;
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        let mean = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n
    };
    let var_y = var(&mut returns.iter().copied());
    if var_y == 0.0 {
        return f64::NAN;
    }
    1.0 - var(&mut returns.iter().zip(values).map(|(r, v)| r - v)) / var_y
}

// ------------------------------------------------------------------------------------------
// The networks.

/// The actor and critic: two separate tanh MLPs, or one trunk with a policy and a value head.
#[derive(Clone, Debug, PartialEq)]
pub enum Nets {
    Separate {
        /// [4, H, H, 2], policy head gain 0.01.
        actor: Mlp,
        /// [4, H, H, 1], value head gain 1.
        critic: Mlp,
    },
    Shared {
        /// [4, H, H], tanh after both layers.
        trunk: Mlp,
        /// [H, 2], gain 0.01.
        pi: Mlp,
        /// [H, 1], gain 1.
        v: Mlp,
    },
}

/// Activations of one forward pass of [`Nets`].
#[derive(Clone, Debug, Default)]
pub struct NetActs {
    a: Activations,
    b: Activations,
    c: Activations,
}

/// Scratch for the backward pass of [`Nets`].
#[derive(Clone, Debug, Default)]
pub struct NetScratch {
    s: BackwardScratch,
    d_trunk: Vec<f64>,
    d_tmp: Vec<f64>,
}

impl Nets {
    pub fn new(hidden: usize, shared: bool, rng: &mut Rng) -> Self {
        let g = std::f64::consts::SQRT_2;
        if shared {
            Nets::Shared {
                trunk: Mlp::new(&[OBS, hidden, hidden], true, g, g, rng),
                pi: Mlp::new(&[hidden, ACTIONS], false, g, 0.01, rng),
                v: Mlp::new(&[hidden, 1], false, g, 1.0, rng),
            }
        } else {
            Nets::Separate {
                actor: Mlp::new(&[OBS, hidden, hidden, ACTIONS], false, g, 0.01, rng),
                critic: Mlp::new(&[OBS, hidden, hidden, 1], false, g, 1.0, rng),
            }
        }
    }

    /// The networks, in the order their parameters are optimised and exported.
    pub fn mlps(&self) -> Vec<&Mlp> {
        match self {
            Nets::Separate { actor, critic } => vec![actor, critic],
            Nets::Shared { trunk, pi, v } => vec![trunk, pi, v],
        }
    }

    pub fn mlps_mut(&mut self) -> Vec<&mut Mlp> {
        match self {
            Nets::Separate { actor, critic } => vec![actor, critic],
            Nets::Shared { trunk, pi, v } => vec![trunk, pi, v],
        }
    }

    pub fn n_params(&self) -> usize {
        self.mlps().iter().map(|m| m.n_params()).sum()
    }

    pub fn hidden(&self) -> usize {
        match self {
            Nets::Separate { actor, .. } => actor.sizes[1],
            Nets::Shared { trunk, .. } => trunk.sizes[1],
        }
    }

    /// Forward pass on `rows` observations `(rows, 4)`.
    pub fn forward(&self, obs: &[f64], rows: usize, acts: &mut NetActs) {
        match self {
            Nets::Separate { actor, critic } => {
                actor.forward(obs, rows, &mut acts.a);
                critic.forward(obs, rows, &mut acts.b);
            }
            Nets::Shared { trunk, pi, v } => {
                trunk.forward(obs, rows, &mut acts.a);
                let h = acts.a.h.last().expect("trunk output");
                pi.forward(h, rows, &mut acts.b);
                v.forward(h, rows, &mut acts.c);
            }
        }
    }

    /// Logits `(rows, 2)` of the last forward pass.
    pub fn logits<'a>(&self, acts: &'a NetActs) -> &'a [f64] {
        match self {
            Nets::Separate { .. } => acts.a.h.last().expect("forward ran"),
            Nets::Shared { .. } => acts.b.h.last().expect("forward ran"),
        }
    }

    /// Values `(rows)` of the last forward pass.
    pub fn values<'a>(&self, acts: &'a NetActs) -> &'a [f64] {
        match self {
            Nets::Separate { .. } => acts.b.h.last().expect("forward ran"),
            Nets::Shared { .. } => acts.c.h.last().expect("forward ran"),
        }
    }

    /// Backward pass from dL/dlogits `(rows, 2)` and dL/dV `(rows)`, ADDING into `grads`
    /// (one vector per network, in [`Nets::mlps`] order).
    pub fn backward(
        &self,
        acts: &NetActs,
        d_logits: &[f64],
        d_values: &[f64],
        grads: &mut [Vec<f64>],
        scratch: &mut NetScratch,
    ) {
        match self {
            Nets::Separate { actor, critic } => {
                let (ga, gc) = grads.split_at_mut(1);
                actor.backward(&acts.a, d_logits, &mut ga[0], &mut scratch.s, None);
                critic.backward(&acts.b, d_values, &mut gc[0], &mut scratch.s, None);
            }
            Nets::Shared { trunk, pi, v } => {
                let (gt, rest) = grads.split_at_mut(1);
                let (gp, gv) = rest.split_at_mut(1);
                pi.backward(
                    &acts.b,
                    d_logits,
                    &mut gp[0],
                    &mut scratch.s,
                    Some(&mut scratch.d_trunk),
                );
                v.backward(
                    &acts.c,
                    d_values,
                    &mut gv[0],
                    &mut scratch.s,
                    Some(&mut scratch.d_tmp),
                );
                for (d, &e) in scratch.d_trunk.iter_mut().zip(&scratch.d_tmp) {
                    *d += e;
                }
                trunk.backward(&acts.a, &scratch.d_trunk, &mut gt[0], &mut scratch.s, None);
            }
        }
    }

    /// P(right | s) and V(s) for each observation (for the heatmaps and the animation).
    pub fn evaluate(&self, obs: &[f64], rows: usize) -> (Vec<f64>, Vec<f64>) {
        let mut acts = NetActs::default();
        self.forward(obs, rows, &mut acts);
        let mut logp = [0.0; ACTIONS];
        let p_right = self
            .logits(&acts)
            .chunks_exact(ACTIONS)
            .map(|z| {
                log_softmax(z, &mut logp);
                crate::math::exp(logp[1])
            })
            .collect();
        (p_right, self.values(&acts).to_vec())
    }

    pub fn all_finite(&self) -> bool {
        self.mlps()
            .iter()
            .all(|m| m.params.iter().all(|p| p.is_finite()))
    }
}

// ------------------------------------------------------------------------------------------
// The trainer.

/// One finished episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode {
    /// Environment steps taken (all envs together) when it ended.
    pub env_steps: usize,
    /// Its return (= its length: +1 per step).
    pub ret: f64,
}

/// Diagnostics of one update (losses and entropy averaged over the minibatches of the last
/// epoch; approx KL and clip fraction too).
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    /// 1, 2, ...
    pub update: usize,
    pub env_steps: usize,
    pub episodes: usize,
    /// Mean return of the last 20 finished episodes (of those so far, if fewer); NaN if none.
    pub mean_return_20: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_frac: f64,
    pub explained_var: f64,
    /// Learning rate and clip range this update used (after annealing).
    pub learning_rate: f64,
    pub clip_coef: f64,
    /// Epochs run (fewer than K after a target-KL stop).
    pub epochs: usize,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f64,
}

/// The rollout buffer, `(T, N, ...)` row-major, reused between updates.
#[derive(Clone, Debug, Default)]
struct Rollout {
    obs: Vec<f64>,
    actions: Vec<usize>,
    logp: Vec<f64>,
    values: Vec<f64>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
    ended: Vec<bool>,
    /// V(final observation) for ended-but-truncated steps (0 elsewhere).
    final_values: Vec<f64>,
    advantages: Vec<f64>,
    returns: Vec<f64>,
}

/// Where the trainer is.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Collecting step t of the rollout.
    Rollout { t: usize },
    /// Minibatch `mb` of epoch `epoch`, next chunk starting at `offset` within the minibatch.
    Update {
        epoch: usize,
        mb: usize,
        offset: usize,
    },
    /// Finished (budget spent, solved, or stopped by an error).
    Done,
}

/// The kind of the next unit of work (the browser budgets them by their measured cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    EnvStep,
    Chunk,
}

/// Per-update sums for the diagnostics.
#[derive(Clone, Debug, Default)]
struct Sums {
    pg: f64,
    value: f64,
    entropy: f64,
    kl: f64,
    clipped: usize,
    samples: usize,
    grad_norm: f64,
    minibatches: usize,
    /// Epoch mean approx KL (for the target-KL stop): sum and count this epoch.
    epoch_kl: f64,
    epoch_samples: usize,
}

/// The networks and optimiser before an update: what a diverging update falls back to.
#[derive(Clone, Debug)]
struct Snapshot {
    nets: Nets,
    adam: Adam,
}

/// PPO on CartPole-v1, one bounded unit of work at a time.
#[derive(Clone, Debug)]
pub struct Trainer {
    pub config: Config,
    /// A configuration to switch to at the start of the next rollout.
    pending: Option<Config>,
    pub nets: Nets,
    adam: Adam,
    envs: VecEnv,
    act_rng: Rng,
    perm_rng: Rng,
    /// Current observations `(N, 4)`.
    obs: Vec<f64>,
    buf: Rollout,
    phase: Phase,
    /// Shuffled sample indices of the current epoch.
    perm: Vec<usize>,
    // Per-rollout settings fixed when the update starts.
    lr_now: f64,
    clip_now: f64,
    // Minibatch state.
    grads: Vec<Vec<f64>>,
    mb_adv_mean: f64,
    mb_adv_std: f64,
    sums: Sums,
    acts: NetActs,
    scratch: NetScratch,
    chunk_obs: Vec<f64>,
    d_logits: Vec<f64>,
    d_values: Vec<f64>,
    snapshot: Option<Snapshot>,
    /// Every finished episode, in order.
    pub episodes: Vec<Episode>,
    /// Every update's diagnostics, in order.
    pub updates: Vec<UpdateStats>,
    pub env_steps: usize,
    /// Env steps at which the mean of the last 20 returns first reached 475.
    pub solved_at: Option<usize>,
    /// Why training stopped early (a diverging run); the networks are the last good ones.
    pub error: Option<String>,
    /// `(ratio, normalised advantage)` of every sample of the last minibatch.
    pub last_minibatch: Vec<(f64, f64)>,
    mb_points: Vec<(f64, f64)>,
}

/// Independent random streams from one seed, so that (say) the number of epochs does not
/// change which states the environments reset to.
fn stream(seed: u64, k: u64) -> Rng {
    Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k)
}

impl Trainer {
    pub fn new(config: Config) -> Self {
        let mut init_rng = stream(config.seed, 1);
        let nets = Nets::new(config.hidden, config.shared, &mut init_rng);
        let adam = Adam::new(nets.n_params());
        let envs = VecEnv::new(config.num_envs, stream(config.seed, 2));
        let mut obs = vec![0.0; config.num_envs * OBS];
        envs.observe_into(&mut obs);
        let grads = nets
            .mlps()
            .iter()
            .map(|m| vec![0.0; m.n_params()])
            .collect();
        Trainer {
            pending: None,
            nets,
            adam,
            envs,
            act_rng: stream(config.seed, 3),
            perm_rng: stream(config.seed, 4),
            obs,
            buf: Rollout::default(),
            phase: Phase::Rollout { t: 0 },
            perm: Vec::new(),
            lr_now: config.learning_rate,
            clip_now: config.clip_coef,
            grads,
            mb_adv_mean: 0.0,
            mb_adv_std: 1.0,
            sums: Sums::default(),
            acts: NetActs::default(),
            scratch: NetScratch::default(),
            chunk_obs: Vec::new(),
            d_logits: Vec::new(),
            d_values: Vec::new(),
            snapshot: None,
            episodes: Vec::new(),
            updates: Vec::new(),
            env_steps: 0,
            solved_at: None,
            error: None,
            last_minibatch: Vec::new(),
            mb_points: Vec::new(),
            config,
        }
    }

    /// Use `config` from the next rollout on (the networks' shape and the seed must not
    /// change: see [`Config::same_networks`]).
    pub fn set_config(&mut self, config: Config) {
        debug_assert!(self.config.same_networks(&config));
        if self.phase == Phase::Done && self.error.is_none() {
            // A finished run continues if the new budget or stop rule allows it.
            self.pending = Some(config);
            self.apply_pending();
            if !self.finished() {
                self.phase = Phase::Rollout { t: 0 };
            }
        } else {
            self.pending = Some(config);
            if self.phase == (Phase::Rollout { t: 0 }) {
                self.apply_pending();
            }
        }
    }

    fn apply_pending(&mut self) {
        if let Some(c) = self.pending.take() {
            if c.num_envs != self.envs.len() {
                self.envs.resize(c.num_envs);
                self.obs.resize(c.num_envs * OBS, 0.0);
                self.envs.observe_into(&mut self.obs);
            }
            self.config = c;
        }
    }

    /// Whether the run is over (budget spent, solved with stop-when-solved, or an error).
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn finished(&self) -> bool {
        self.env_steps >= self.config.total_steps
            || (self.config.stop_when_solved && self.solved_at.is_some())
    }

    /// Fraction of the step budget spent.
    pub fn progress(&self) -> f64 {
        (self.env_steps as f64 / self.config.total_steps.max(1) as f64).min(1.0)
    }

    pub fn next_unit(&self) -> Option<Unit> {
        match self.phase {
            Phase::Rollout { .. } => Some(Unit::EnvStep),
            Phase::Update { .. } => Some(Unit::Chunk),
            Phase::Done => None,
        }
    }

    /// Mean return of the last 20 finished episodes (of all, if fewer); NaN if none.
    pub fn mean_return_20(&self) -> f64 {
        let n = self.episodes.len().min(SOLVED_WINDOW);
        if n == 0 {
            return f64::NAN;
        }
        self.episodes[self.episodes.len() - n..]
            .iter()
            .map(|e| e.ret)
            .sum::<f64>()
            / n as f64
    }

    /// Does at most `units` units of work; returns the updates completed on the way.
    pub fn step(&mut self, units: usize) -> Vec<UpdateStats> {
        let mut done_updates = Vec::new();
        for _ in 0..units {
            match self.phase {
                Phase::Done => break,
                Phase::Rollout { t } => self.rollout_step(t),
                Phase::Update { epoch, mb, offset } => {
                    if let Some(stats) = self.update_chunk(epoch, mb, offset) {
                        done_updates.push(stats);
                    }
                }
            }
        }
        done_updates
    }

    /// Runs until the next update completes (or the run ends): the CLI's loop.
    pub fn run_update(&mut self) -> Option<UpdateStats> {
        loop {
            if self.done() {
                return None;
            }
            if let Some(s) = self.step(1).pop() {
                return Some(s);
            }
        }
    }

    fn rollout_step(&mut self, t: usize) {
        if t == 0 {
            self.apply_pending();
            self.begin_rollout();
        }
        let n = self.envs.len();
        self.nets.forward(&self.obs, n, &mut self.acts);
        let logits = self.nets.logits(&self.acts);
        let values = self.nets.values(&self.acts);
        let row = t * n;
        let mut actions = vec![0usize; n];
        let mut logp = [0.0; ACTIONS];
        for e in 0..n {
            log_softmax(&logits[e * ACTIONS..(e + 1) * ACTIONS], &mut logp);
            // Inverse-CDF sampling of the categorical policy.
            let u = self.act_rng.uniform();
            let mut a = ACTIONS - 1;
            let mut cdf = 0.0;
            for (k, &lp) in logp.iter().enumerate() {
                cdf += crate::math::exp(lp);
                if u < cdf {
                    a = k;
                    break;
                }
            }
            actions[e] = a;
            self.buf.actions[row + e] = a;
            self.buf.logp[row + e] = logp[a];
            self.buf.values[row + e] = values[e];
        }
        self.buf.obs[row * OBS..(row + n) * OBS].copy_from_slice(&self.obs);
        let mut out = vec![
            VecTransition {
                reward: 0.0,
                terminated: false,
                truncated: false,
                final_obs: None,
                episode_return: None,
            };
            n
        ];
        self.envs.step(&self.config.physics, &actions, &mut out);
        for (e, tr) in out.iter().enumerate() {
            self.env_steps += 1;
            self.buf.rewards[row + e] = tr.reward;
            self.buf.terminated[row + e] = tr.terminated;
            self.buf.ended[row + e] = tr.terminated || tr.truncated;
            self.buf.final_values[row + e] = 0.0;
            if let (false, true, Some(fo)) = (tr.terminated, tr.truncated, tr.final_obs) {
                // Truncated, not terminal: bootstrap from the final observation's value.
                let (_, v) = self.nets.evaluate(&fo, 1);
                self.buf.final_values[row + e] = v[0];
            }
            if let Some(ret) = tr.episode_return {
                self.episodes.push(Episode {
                    env_steps: self.env_steps,
                    ret,
                });
                if self.solved_at.is_none()
                    && self.episodes.len() >= SOLVED_WINDOW
                    && self.mean_return_20() >= SOLVED_RETURN
                {
                    self.solved_at = Some(self.env_steps);
                }
            }
        }
        self.envs.observe_into(&mut self.obs);
        if self.config.stop_when_solved && self.solved_at.is_some() {
            self.phase = Phase::Done;
        } else if t + 1 == self.config.num_steps {
            self.begin_update();
        } else {
            self.phase = Phase::Rollout { t: t + 1 };
        }
    }

    fn begin_rollout(&mut self) {
        let b = self.config.batch_size();
        let buf = &mut self.buf;
        buf.obs.resize(b * OBS, 0.0);
        buf.actions.resize(b, 0);
        buf.logp.resize(b, 0.0);
        buf.values.resize(b, 0.0);
        buf.rewards.resize(b, 0.0);
        buf.terminated.resize(b, false);
        buf.ended.resize(b, false);
        buf.final_values.resize(b, 0.0);
        // Annealing: the fraction of the budget left before this rollout (CleanRL's frac).
        let frac = (1.0 - self.env_steps as f64 / self.config.total_steps.max(1) as f64).max(0.0);
        let c = &self.config;
        self.lr_now = match c.anneal {
            Anneal::None => c.learning_rate,
            _ => c.learning_rate * frac,
        };
        self.clip_now = match c.anneal {
            Anneal::LrAndClip => c.clip_coef * frac,
            _ => c.clip_coef,
        };
    }

    /// GAE over the rollout, then the first minibatch.
    fn begin_update(&mut self) {
        let (n, t_max) = (self.envs.len(), self.config.num_steps);
        let b = n * t_max;
        // V of the observations after the last step, for bootstrapping.
        let (_, last_values) = self.nets.evaluate(&self.obs, n);
        let buf = &mut self.buf;
        buf.advantages.resize(b, 0.0);
        buf.returns.resize(b, 0.0);
        let (mut r, mut v, mut nv, mut term, mut end) = (
            vec![0.0; t_max],
            vec![0.0; t_max],
            vec![0.0; t_max],
            vec![false; t_max],
            vec![false; t_max],
        );
        for (e, &last_value) in last_values.iter().enumerate().take(n) {
            for t in 0..t_max {
                let i = t * n + e;
                r[t] = buf.rewards[i];
                v[t] = buf.values[i];
                term[t] = buf.terminated[i];
                end[t] = buf.ended[i];
                nv[t] = if buf.ended[i] {
                    buf.final_values[i]
                } else if t + 1 < t_max {
                    buf.values[i + n]
                } else {
                    last_value
                };
            }
            let adv = gae(
                &r,
                &v,
                &nv,
                &term,
                &end,
                self.config.gamma,
                self.config.gae_lambda,
            );
            for (t, &a) in adv.iter().enumerate() {
                let i = t * n + e;
                buf.advantages[i] = a;
                buf.returns[i] = a + buf.values[i];
            }
        }
        self.snapshot = Some(Snapshot {
            nets: self.nets.clone(),
            adam: self.adam.clone(),
        });
        self.sums = Sums::default();
        self.begin_epoch(0);
    }

    fn begin_epoch(&mut self, epoch: usize) {
        let b = self.buf.advantages.len();
        self.perm.clear();
        self.perm.extend(0..b);
        // Fisher-Yates with integer draws.
        for i in (1..b).rev() {
            let j = (self.perm_rng.next_u64() % (i as u64 + 1)) as usize;
            self.perm.swap(i, j);
        }
        self.sums.epoch_kl = 0.0;
        self.sums.epoch_samples = 0;
        // Only the last epoch's losses are reported.
        self.sums.pg = 0.0;
        self.sums.value = 0.0;
        self.sums.entropy = 0.0;
        self.sums.kl = 0.0;
        self.sums.clipped = 0;
        self.sums.samples = 0;
        self.begin_minibatch(epoch, 0);
    }

    fn minibatch_range(&self, mb: usize) -> (usize, usize) {
        let b = self.buf.advantages.len();
        let m = self.config.minibatch_size.clamp(1, b);
        (mb * m, ((mb + 1) * m).min(b))
    }

    fn begin_minibatch(&mut self, epoch: usize, mb: usize) {
        let (lo, hi) = self.minibatch_range(mb);
        // Advantage normalisation statistics over this minibatch (unbiased std, as torch).
        let m = (hi - lo) as f64;
        let idx = &self.perm[lo..hi];
        let mean = idx.iter().map(|&i| self.buf.advantages[i]).sum::<f64>() / m;
        let var = if hi - lo > 1 {
            idx.iter()
                .map(|&i| (self.buf.advantages[i] - mean) * (self.buf.advantages[i] - mean))
                .sum::<f64>()
                / (m - 1.0)
        } else {
            0.0
        };
        if self.config.norm_adv && hi - lo > 1 {
            self.mb_adv_mean = mean;
            self.mb_adv_std = f64::sqrt(var) + 1e-8;
        } else {
            self.mb_adv_mean = 0.0;
            self.mb_adv_std = 1.0;
        }
        for g in self.grads.iter_mut() {
            g.iter_mut().for_each(|x| *x = 0.0);
        }
        self.mb_points.clear();
        self.phase = Phase::Update {
            epoch,
            mb,
            offset: 0,
        };
    }

    /// One chunk of a minibatch; returns the update's stats when the update completes.
    fn update_chunk(&mut self, epoch: usize, mb: usize, offset: usize) -> Option<UpdateStats> {
        let (lo, hi) = self.minibatch_range(mb);
        let m = (hi - lo) as f64;
        let start = lo + offset;
        let end = (start + CHUNK).min(hi);
        let rows = end - start;
        self.chunk_obs.clear();
        for &i in &self.perm[start..end] {
            self.chunk_obs
                .extend_from_slice(&self.buf.obs[i * OBS..(i + 1) * OBS]);
        }
        self.nets.forward(&self.chunk_obs, rows, &mut self.acts);
        self.d_logits.resize(rows * ACTIONS, 0.0);
        self.d_values.resize(rows, 0.0);
        let coefs = LossCoefs {
            clip: self.config.clip.then_some(self.clip_now),
            clip_vloss: self.config.clip_vloss,
            ent_coef: self.config.ent_coef,
            vf_coef: self.config.vf_coef,
        };
        {
            let logits = self.nets.logits(&self.acts);
            let values = self.nets.values(&self.acts);
            for (r, &i) in self.perm[start..end].iter().enumerate() {
                let adv = (self.buf.advantages[i] - self.mb_adv_mean) / self.mb_adv_std;
                let target = SampleTarget {
                    action: self.buf.actions[i],
                    old_logp: self.buf.logp[i],
                    advantage: adv,
                    old_value: self.buf.values[i],
                    ret: self.buf.returns[i],
                };
                let (s, dv) = sample_loss(
                    &logits[r * ACTIONS..(r + 1) * ACTIONS],
                    values[r],
                    &target,
                    &coefs,
                    m,
                    &mut self.d_logits[r * ACTIONS..(r + 1) * ACTIONS],
                );
                self.d_values[r] = dv;
                let sums = &mut self.sums;
                sums.pg += s.pg;
                sums.value += s.value;
                sums.entropy += s.entropy;
                sums.kl += s.approx_kl;
                sums.epoch_kl += s.approx_kl;
                sums.clipped += usize::from(s.clipped);
                sums.samples += 1;
                sums.epoch_samples += 1;
                self.mb_points.push((s.ratio, adv));
            }
        }
        self.nets.backward(
            &self.acts,
            &self.d_logits,
            &self.d_values,
            &mut self.grads,
            &mut self.scratch,
        );
        if end < hi {
            self.phase = Phase::Update {
                epoch,
                mb,
                offset: offset + rows,
            };
            return None;
        }
        // The minibatch is complete: clip, step.
        let mut gs: Vec<&mut [f64]> = self.grads.iter_mut().map(|g| g.as_mut_slice()).collect();
        self.sums.grad_norm += clip_grad_norm(&mut gs, self.config.max_grad_norm);
        self.sums.minibatches += 1;
        {
            let grads: Vec<&[f64]> = self.grads.iter().map(|g| g.as_slice()).collect();
            let mut params: Vec<&mut [f64]> = self
                .nets
                .mlps_mut()
                .into_iter()
                .map(|m| m.params.as_mut_slice())
                .collect();
            self.adam.step(&mut params, &grads, self.lr_now);
        }
        std::mem::swap(&mut self.last_minibatch, &mut self.mb_points);
        let b = self.buf.advantages.len();
        if hi < b {
            self.begin_minibatch(epoch, mb + 1);
            return None;
        }
        // The epoch is complete.
        let epoch_kl = self.sums.epoch_kl / self.sums.epoch_samples.max(1) as f64;
        let kl_stop = self.config.target_kl.is_some_and(|k| epoch_kl > k);
        if epoch + 1 < self.config.update_epochs && !kl_stop {
            self.begin_epoch(epoch + 1);
            return None;
        }
        Some(self.finish_update(epoch + 1))
    }

    fn finish_update(&mut self, epochs: usize) -> UpdateStats {
        let s = &self.sums;
        let n = s.samples.max(1) as f64;
        // The sums hold (loss_i / m) over every sample of the last epoch: their total over
        // all minibatches divided by the number of minibatches is the mean minibatch loss.
        let mbs_last_epoch = {
            let b = self.buf.advantages.len();
            let m = self.config.minibatch_size.clamp(1, b);
            b.div_ceil(m) as f64
        };
        let stats = UpdateStats {
            update: self.updates.len() + 1,
            env_steps: self.env_steps,
            episodes: self.episodes.len(),
            mean_return_20: self.mean_return_20(),
            policy_loss: s.pg / mbs_last_epoch,
            value_loss: s.value / mbs_last_epoch,
            entropy: s.entropy / mbs_last_epoch,
            approx_kl: s.kl / n,
            clip_frac: s.clipped as f64 / n,
            explained_var: explained_variance(&self.buf.values, &self.buf.returns),
            learning_rate: self.lr_now,
            clip_coef: self.clip_now,
            epochs,
            grad_norm: s.grad_norm / s.minibatches.max(1) as f64,
        };
        let solved = stats.mean_return_20 >= SOLVED_RETURN;
        let what = if !self.nets.all_finite()
            || !stats.value_loss.is_finite()
            || !stats.policy_loss.is_finite()
        {
            Some("a loss or a weight became NaN or infinite".to_string())
        } else if !stats.approx_kl.is_finite() {
            Some("the policy ratio overflowed".to_string())
        } else if stats.value_loss > VALUE_LOSS_LIMIT {
            Some(format!(
                "the loss exploded: value loss {:.3e}",
                stats.value_loss
            ))
        } else if stats.entropy < ENTROPY_COLLAPSE && !solved {
            Some(format!(
                "the policy collapsed: entropy {:.1e} nats, so it always picks the same \
                 action, its gradient is zero and it cannot learn any more",
                stats.entropy
            ))
        } else {
            None
        };
        if let Some(what) = what {
            if let Some(snap) = self.snapshot.take() {
                self.nets = snap.nets;
                self.adam = snap.adam;
            }
            self.error = Some(format!(
                "Training diverged at update {}: {what}. The learning rate {} is likely too \
                 large. The networks are kept as they were before that update; lower the \
                 learning rate and press Restart.",
                stats.update, self.config.learning_rate
            ));
            self.phase = Phase::Done;
            return stats;
        }
        self.updates.push(stats.clone());
        self.phase = if self.finished() {
            Phase::Done
        } else {
            Phase::Rollout { t: 0 }
        };
        stats
    }
}
