//! CartPole-v1 exactly as Gymnasium defines it (`gymnasium/envs/classic_control/cartpole.py`).
//!
//! A pole hinged on a cart; the agent pushes the cart left or right with a force of
//! `force_mag` newtons every `tau` = 0.02 s. With `F = ±force_mag`,
//!
//! ```text
//! temp      = (F + m_p l θ̇² sin θ) / (m_c + m_p)
//! θ̈         = (g sin θ − cos θ · temp) / (l (4/3 − m_p cos² θ / (m_c + m_p)))
//! ẍ         = temp − m_p l θ̈ cos θ / (m_c + m_p)
//! ```
//!
//! where `l` is HALF the pole's length (Gymnasium's `length` = 0.5). The default integrator
//! is explicit Euler (positions move with the OLD velocities); semi-implicit Euler updates the
//! velocities first. An episode terminates when |x| > 2.4 or |θ| > 12°, and is truncated after
//! 500 steps; every step, the terminating one included, earns reward +1. Reset draws all
//! four state variables uniformly from [−0.05, 0.05].
//!
//! The state is f64 as in Gymnasium; the observation an agent sees is that state rounded to
//! f32, as Gymnasium returns it. `sin`, `cos` come from [`crate::math`] so that native and
//! WebAssembly builds agree bit for bit. Used by `<ml-cartpole-ppo>` and `mlplay cartpole-trace`.

use crate::json::Json;
use crate::rng::Rng;

/// State `[x, ẋ, θ, θ̇]`: cart position (m), cart velocity (m/s), pole angle from vertical
/// (rad, positive clockwise: leaning right), pole angular velocity (rad/s).
pub type State = [f64; 4];

/// |x| beyond this (m) terminates the episode.
pub const X_THRESHOLD: f64 = 2.4;
/// |θ| beyond this (rad, 12 degrees) terminates the episode.
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Gymnasium's `TimeLimit` for CartPole-v1.
pub const MAX_EPISODE_STEPS: usize = 500;
/// A mean return of at least this over the last 20 episodes counts as solved.
pub const SOLVED_RETURN: f64 = 475.0;
/// Reset draws each state variable from U(−RESET_BOUND, RESET_BOUND).
pub const RESET_BOUND: f64 = 0.05;

/// How the state is advanced over one time step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrator {
    /// Gymnasium's default: `x += τ ẋ; ẋ += τ ẍ; θ += τ θ̇; θ̇ += τ θ̈`.
    Euler,
    /// `ẋ += τ ẍ; x += τ ẋ; θ̇ += τ θ̈; θ += τ θ̇` (new velocities move the positions).
    SemiImplicitEuler,
}

/// The physical constants; `Default` is Gymnasium's CartPole-v1.
#[derive(Clone, Debug, PartialEq)]
pub struct Physics {
    /// Gravitational acceleration g (m/s²).
    pub gravity: f64,
    /// Cart mass m_c (kg).
    pub masscart: f64,
    /// Pole mass m_p (kg).
    pub masspole: f64,
    /// HALF the pole's length l (m), as Gymnasium's `length`.
    pub length: f64,
    /// Magnitude of the push (N); action 1 pushes right (+), action 0 left (−).
    pub force_mag: f64,
    /// Seconds per step.
    pub tau: f64,
    pub integrator: Integrator,
}

impl Default for Physics {
    fn default() -> Self {
        Physics {
            gravity: 9.8,
            masscart: 1.0,
            masspole: 0.1,
            length: 0.5,
            force_mag: 10.0,
            tau: 0.02,
            integrator: Integrator::Euler,
        }
    }
}

impl Physics {
    pub fn total_mass(&self) -> f64 {
        self.masspole + self.masscart
    }

    pub fn polemass_length(&self) -> f64 {
        self.masspole * self.length
    }

    /// `(ẍ, θ̈)` at state `s` under a horizontal force `force` (N), in Gymnasium's order of
    /// floating-point operations.
    pub fn accelerations(&self, s: &State, force: f64) -> (f64, f64) {
        let [_, _, theta, theta_dot] = *s;
        let (sintheta, costheta) = (crate::math::sin(theta), crate::math::cos(theta));
        let total_mass = self.total_mass();
        let polemass_length = self.polemass_length();
        let temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
        let thetaacc = (self.gravity * sintheta - costheta * temp)
            / (self.length * (4.0 / 3.0 - self.masspole * (costheta * costheta) / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        (xacc, thetaacc)
    }

    /// The state one step later under a force `force` (N). Agents use [`Physics::step`];
    /// a person driving the cart may also push with no force at all.
    pub fn step_force(&self, s: &State, force: f64) -> State {
        let [x, x_dot, theta, theta_dot] = *s;
        let (xacc, thetaacc) = self.accelerations(s, force);
        let tau = self.tau;
        match self.integrator {
            Integrator::Euler => [
                x + tau * x_dot,
                x_dot + tau * xacc,
                theta + tau * theta_dot,
                theta_dot + tau * thetaacc,
            ],
            Integrator::SemiImplicitEuler => {
                let x_dot = x_dot + tau * xacc;
                let theta_dot = theta_dot + tau * thetaacc;
                [x + tau * x_dot, x_dot, theta + tau * theta_dot, theta_dot]
            }
        }
    }

    /// The state one step later after action 0 (push left) or 1 (push right).
    pub fn step(&self, s: &State, action: usize) -> State {
        let force = if action == 1 {
            self.force_mag
        } else {
            -self.force_mag
        };
        self.step_force(s, force)
    }
}

/// Whether a state is outside the allowed region (|x| > 2.4 or |θ| > 12°).
pub fn is_terminal(s: &State) -> bool {
    s[0] < -X_THRESHOLD || s[0] > X_THRESHOLD || s[2] < -THETA_THRESHOLD || s[2] > THETA_THRESHOLD
}

/// What the agent sees: the state rounded to f32, as Gymnasium's observation is.
pub fn observe(s: &State) -> [f64; 4] {
    s.map(|v| v as f32 as f64)
}

/// A reset state: each variable uniform in [−0.05, 0.05].
pub fn reset_state(rng: &mut Rng) -> State {
    std::array::from_fn(|_| rng.uniform_range(-RESET_BOUND, RESET_BOUND))
}

/// What one step of an episode produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
}

/// One CartPole-v1 episode in progress: the state and the steps taken (for the time limit).
#[derive(Clone, Debug, PartialEq)]
pub struct CartPole {
    pub state: State,
    pub steps: usize,
}

impl CartPole {
    pub fn new(state: State) -> Self {
        CartPole { state, steps: 0 }
    }

    pub fn reset(rng: &mut Rng) -> Self {
        CartPole::new(reset_state(rng))
    }

    /// One step (Gymnasium's `step` inside `TimeLimit(500)`): reward 1, terminated when the
    /// new state is outside the allowed region, truncated at the 500th step.
    pub fn step(&mut self, physics: &Physics, action: usize) -> Transition {
        self.state = physics.step(&self.state, action);
        self.steps += 1;
        Transition {
            reward: 1.0,
            terminated: is_terminal(&self.state),
            truncated: self.steps >= MAX_EPISODE_STEPS,
        }
    }
}

/// N CartPoles stepped together, with same-step auto-reset: an environment whose episode
/// ends is reset at once, its next observation is the new episode's first one, and the
/// ended episode's final observation is kept for bootstrapping (a truncation is not a
/// terminal: the value of that final observation still counts).
#[derive(Clone, Debug)]
pub struct VecEnv {
    pub envs: Vec<CartPole>,
    /// Return of each environment's episode in progress.
    pub episode_returns: Vec<f64>,
    rng: Rng,
}

/// One environment's part of a vectorised step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VecTransition {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    /// The observation the episode ended on (only when it ended; the env is already reset).
    pub final_obs: Option<[f64; 4]>,
    /// The return of the episode that just ended.
    pub episode_return: Option<f64>,
}

impl VecEnv {
    /// `n` environments, reset one after the other from `rng`.
    pub fn new(n: usize, mut rng: Rng) -> Self {
        let envs = (0..n).map(|_| CartPole::reset(&mut rng)).collect();
        VecEnv {
            envs,
            episode_returns: vec![0.0; n],
            rng,
        }
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Grow (new environments start fresh episodes) or shrink (the last ones are dropped).
    pub fn resize(&mut self, n: usize) {
        while self.envs.len() < n {
            self.envs.push(CartPole::reset(&mut self.rng));
            self.episode_returns.push(0.0);
        }
        self.envs.truncate(n);
        self.episode_returns.truncate(n);
    }

    /// Observations of every environment, `(N, 4)` row-major, written into `out`.
    pub fn observe_into(&self, out: &mut [f64]) {
        for (row, env) in out.chunks_exact_mut(4).zip(&self.envs) {
            row.copy_from_slice(&observe(&env.state));
        }
    }

    /// Step every environment with its action; ended episodes are reset at once.
    pub fn step(&mut self, physics: &Physics, actions: &[usize], out: &mut [VecTransition]) {
        for (i, env) in self.envs.iter_mut().enumerate() {
            let t = env.step(physics, actions[i]);
            self.episode_returns[i] += t.reward;
            let ended = t.terminated || t.truncated;
            out[i] = VecTransition {
                reward: t.reward,
                terminated: t.terminated,
                truncated: t.truncated,
                final_obs: ended.then(|| observe(&env.state)),
                episode_return: ended.then_some(self.episode_returns[i]),
            };
            if ended {
                *env = CartPole::reset(&mut self.rng);
                self.episode_returns[i] = 0.0;
            }
        }
    }
}

/// `mlplay cartpole-trace`: the states after each action from a reset (or given) state.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub initial_state: State,
    pub actions: Vec<usize>,
    pub states: Vec<State>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
}

/// Replays `actions` from `initial` (or from a reset drawn with `seed`), stopping after the
/// first terminated step; the time limit counts from the initial state.
pub fn trace(physics: &Physics, seed: u64, initial: Option<State>, actions: &[usize]) -> Trace {
    let initial_state = initial.unwrap_or_else(|| reset_state(&mut Rng::new(seed)));
    let mut env = CartPole::new(initial_state);
    let mut t = Trace {
        initial_state,
        actions: Vec::new(),
        states: Vec::new(),
        terminated: Vec::new(),
        truncated: Vec::new(),
    };
    for &a in actions {
        let step = env.step(physics, a);
        t.actions.push(a);
        t.states.push(env.state);
        t.terminated.push(step.terminated);
        t.truncated.push(step.truncated);
        if step.terminated {
            break;
        }
    }
    t
}

impl Trace {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("initial_state", Json::nums(&self.initial_state)),
            (
                "actions",
                Json::Arr(self.actions.iter().map(|&a| Json::Num(a as f64)).collect()),
            ),
            (
                "states",
                Json::Arr(self.states.iter().map(Json::nums).collect()),
            ),
            (
                "terminated",
                Json::Arr(self.terminated.iter().map(|&b| Json::Bool(b)).collect()),
            ),
            (
                "truncated",
                Json::Arr(self.truncated.iter().map(|&b| Json::Bool(b)).collect()),
            ),
        ])
    }
}
