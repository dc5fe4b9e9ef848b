//! The Chinchilla loss law and its compute-optimal allocation (Hoffmann et al. 2022, eq. 2
//! and Approach 3; the replication of Besiroglu et al. 2024).
//!
//! ```text
//! L(N, D) = E + A / N^alpha + B / D^beta,        C = 6 N D
//! N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,
//! G = (alpha A / (beta B))^(1/(alpha+beta)),   a = beta/(alpha+beta),   b = alpha/(alpha+beta)
//! ```
//!
//! Derivation of the optimum (Hoffmann et al. 2022, Appendix D.2): along the iso-FLOP line
//! D = C/(6N), dL/dN = -alpha A N^(-alpha-1) + beta B (6/C)^beta N^(beta-1) = 0, so
//! N^(alpha+beta) = (alpha A / (beta B)) (C/6)^beta. [`Law::optimum_numeric`] is the slow
//! twin that finds the same point by golden-section search, and the tests compare the two.
//! Powers, exponentials and logarithms go through [`crate::math`], so the CLI and the
//! browser compute the same bits.

use crate::math::{exp, ln, pow};

/// The five constants of the parametric loss. `Default` is Hoffmann et al.'s fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Law {
    /// Irreducible loss E (nats per token): the entropy of text, reached with infinite N and D.
    pub e: f64,
    /// Coefficient A of the model-size term A / N^alpha.
    pub a: f64,
    /// Coefficient B of the data term B / D^beta.
    pub b: f64,
    /// Exponent alpha of the parameter count N.
    pub alpha: f64,
    /// Exponent beta of the token count D.
    pub beta: f64,
}

impl Law {
    /// Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", Approach 3
    /// (eq. 10): E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28.
    pub const HOFFMANN: Law = Law {
        e: 1.69,
        a: 406.4,
        b: 410.7,
        alpha: 0.34,
        beta: 0.28,
    };

    /// Besiroglu et al. 2024 (Epoch AI), "Chinchilla Scaling: A replication attempt", eq. 4:
    /// refitted to the data extracted from Hoffmann et al.'s Figure 4.
    pub const EPOCH: Law = Law {
        e: 1.8172,
        a: 482.01,
        b: 2085.43,
        alpha: 0.3478,
        beta: 0.3658,
    };

    /// The published constant set by its short name (`hoffmann` or `epoch`).
    pub fn named(name: &str) -> Option<Law> {
        match name {
            "hoffmann" => Some(Law::HOFFMANN),
            "epoch" => Some(Law::EPOCH),
            _ => None,
        }
    }

    /// L(N, D) in nats per token.
    pub fn loss(&self, n: f64, d: f64) -> f64 {
        self.e + self.a / pow(n, self.alpha) + self.b / pow(d, self.beta)
    }

    /// The loss of the model with N parameters trained on all of a budget C: D = C / (6N).
    pub fn loss_at_compute(&self, c: f64, n: f64) -> f64 {
        self.loss(n, tokens_for(c, n))
    }

    /// G = (alpha A / (beta B))^(1/(alpha+beta)).
    pub fn g(&self) -> f64 {
        pow(
            self.alpha * self.a / (self.beta * self.b),
            1.0 / (self.alpha + self.beta),
        )
    }

    /// Exponent a of N_opt ∝ C^a: beta / (alpha + beta).
    pub fn n_exponent(&self) -> f64 {
        self.beta / (self.alpha + self.beta)
    }

    /// Exponent b of D_opt ∝ C^b: alpha / (alpha + beta).
    pub fn d_exponent(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// N_opt(C) = G (C/6)^a.
    pub fn n_opt(&self, c: f64) -> f64 {
        self.g() * pow(c / 6.0, self.n_exponent())
    }

    /// D_opt(C) = (C/6)^b / G.
    pub fn d_opt(&self, c: f64) -> f64 {
        pow(c / 6.0, self.d_exponent()) / self.g()
    }

    /// The compute-optimal model for budget C, in closed form.
    pub fn optimum(&self, c: f64) -> Optimum {
        Optimum::at(self, c, self.n_opt(c))
    }

    /// The same optimum found numerically: golden-section search on log N along the
    /// iso-FLOP line. L is convex in log N there (a sum of two exponentials of log N plus a
    /// constant), so the search brackets the one minimum. The slow reference twin of
    /// [`Law::optimum`].
    pub fn optimum_numeric(&self, c: f64) -> Optimum {
        let f = |log_n: f64| self.loss_at_compute(c, exp(log_n));
        // N from one parameter up to C/6 (a model that sees a single token).
        let (mut lo, mut hi) = (0.0_f64, ln(c / 6.0));
        let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
        let mut x1 = hi - inv_phi * (hi - lo);
        let mut x2 = lo + inv_phi * (hi - lo);
        let (mut f1, mut f2) = (f(x1), f(x2));
        while hi - lo > 1e-12 * (1.0 + hi.abs()) {
            if f1 <= f2 {
                hi = x2;
                x2 = x1;
                f2 = f1;
                x1 = hi - inv_phi * (hi - lo);
                f1 = f(x1);
            } else {
                lo = x1;
                x1 = x2;
                f1 = f2;
                x2 = lo + inv_phi * (hi - lo);
                f2 = f(x2);
            }
        }
        Optimum::at(self, c, exp(0.5 * (lo + hi)))
    }
}

impl Default for Law {
    fn default() -> Self {
        Law::HOFFMANN
    }
}

/// Training FLOPs of a dense transformer: C = 6 N D (2 N D forward, 4 N D backward).
pub fn flops(n: f64, d: f64) -> f64 {
    6.0 * n * d
}

/// Tokens a budget C buys for a model of N parameters: D = C / (6N).
pub fn tokens_for(c: f64, n: f64) -> f64 {
    c / (6.0 * n)
}

/// A model size and token count for a budget, with its predicted loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimum {
    /// Compute budget C in FLOPs.
    pub compute: f64,
    /// Parameters N.
    pub n: f64,
    /// Training tokens D = C / (6N).
    pub d: f64,
    /// Predicted loss L(N, D).
    pub loss: f64,
}

impl Optimum {
    fn at(law: &Law, c: f64, n: f64) -> Optimum {
        let d = tokens_for(c, n);
        Optimum {
            compute: c,
            n,
            d,
            loss: law.loss(n, d),
        }
    }

    /// D / N: about 20 under Hoffmann et al.'s Approaches 1 and 2.
    pub fn tokens_per_param(&self) -> f64 {
        self.d / self.n
    }
}
