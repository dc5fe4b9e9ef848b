//! Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer", section 3.4), seen as
//! rotations, and why attention scores then depend only on the offset m - n.
//!
//! A head vector x of even dimension d is cut into d/2 pairs; pair i is rotated by the angle
//! `m * theta_i` at position m:
//!
//! ```text
//! theta_i = base^(-2i/d),  i = 0 .. d/2 - 1          (base 10,000; Llama 3: 500,000)
//! (x_a, x_b) -> (x_a cos(m theta_i) - x_b sin(m theta_i),  x_a sin(m theta_i) + x_b cos(m theta_i))
//! score(m, n) = (R_m q) . (R_n k) = q . (R_m^T R_n k) = q . R_{n-m} k
//!             = Re sum_i q~_i conj(k~_i) e^{i (m - n) theta_i},   q~_i = q_a + i q_b
//! ```
//!
//! A rotation is orthogonal (norms are kept) and `R_m^T R_n = R_{n-m}`, so the score is a
//! function of m - n only: the score matrix over all (m, n) is Toeplitz (constant along each
//! diagonal). Two ways of cutting x into pairs are in use, and this module names both:
//!
//! - [`Pairing::Interleaved`]: (x0, x1), (x2, x3), ... (Meta's Llama code, the paper);
//! - [`Pairing::Halves`]: x_i with x_{i + d/2} (Hugging Face's `rotate_half`).
//!
//! They give the same scores once the weight rows of W_q and W_k are permuted by
//! [`permutation`] (what Hugging Face's Llama conversion script does): pair i's two
//! components move from rows (2i, 2i+1) to rows (i, i + d/2).
//!
//! For comparison, [`sinusoidal`] is the absolute encoding of Vaswani et al. 2017 (section
//! 3.5), *added* to the embedding: PE(pos, 2i) = sin(pos / base^(2i/d)),
//! PE(pos, 2i+1) = cos(pos / base^(2i/d)). Then (q + p_m) . (k + p_n) has the cross terms
//! q . p_n and p_m . k, which depend on m and n themselves: its diagonals are not constant.
//!
//! Long-term decay (RoFormer section 3.4.3): with h_i = q~_i conj(k~_i) and partial sums
//! S_j = sum_{l<j} e^{i (m-n) theta_l}, Abel summation gives
//! |score| <= (max_i |h_{i+1} - h_i|) sum_{j=1}^{d/2} |S_j|, and the "relative upper bound"
//! (2/d) sum_{j=1}^{d/2} |S_j| falls as |m - n| grows ([`relative_bound`]).
//!
//! Longer contexts than the model was trained on (context L stretched to s L):
//!
//! - Linear position interpolation (Chen, Wong, Chen & Tian 2023, "Extending Context Window
//!   of Large Language Models via Positional Interpolation", arXiv:2306.15595): positions are
//!   divided by s, f'(x, m) = f(x, m / s), i.e. `theta'_i = theta_i / s` for every pair;
//!   every wavelength grows by s.
//! - NTK-aware scaling (bloc97 2023; the formula as written in Peng, Quesnelle, Fan &
//!   Shippole 2023, "YaRN", arXiv:2309.00071, section 3.1): the base is raised,
//!   `base' = base * s^(d / (d - 2))`, so `theta'_i = theta_i * s^(-2i / (d - 2))`: pair 0
//!   (the fastest, local position) is untouched and the slowest pair is slowed by exactly s.
//!
//! Precision: everything is f64. The angle `m * theta_i` is a large number for large m, and
//! its rounding error grows with it: [`shift_tolerance`] derives the bound the shift-
//! invariance tests use. (In f32 the same bound at positions near 4096 is about 3e-3 |q||k|,
//! visible on a plot; in f64 it is below 1e-11 |q||k|.)
//!
//! Sines, cosines, powers and logarithms come from [`crate::math`], not the platform's
//! maths library, so the CLI and the browser compute the same bits.
//!
//! Used by `<ml-rope>` (`crate::web::rope` draws it) and `mlplay rope`.

use ndarray::{Array1, Array2, ArrayView1, Axis};

use crate::json::Json;
use crate::math;
use crate::params::{ParamSpec, Params, WidgetSpec};
use crate::rng::Rng;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "rope",
    title: "RoPE: positions as rotations",
    summary: "Rotary embeddings turn each pair of a head vector by m·θᵢ, so the score q·k depends only on the offset m − n.",
    trainer: false,
    params: &[
        ParamSpec::number(
            "dim",
            "Head dimension d",
            "d",
            "Size of the query and key head vectors: d/2 pairs, each rotating at its own frequency (Llama: 128).",
            64.0,
            2.0,
            256.0,
            2.0,
        ),
        ParamSpec::number(
            "base",
            "Base b",
            "b",
            "θᵢ = b^(−2i/d). The slider is logarithmic (about 12% per notch) because useful bases span decades: 10,000 is RoFormer and Llama 2, 500,000 Llama 3; attributes, URLs and --base take any exact value.",
            10000.0,
            10.0,
            10_000_000.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "m",
            "Query position m",
            "m",
            "Position of the query token: its pairs turn by m·θᵢ.",
            7.0,
            0.0,
            1024.0,
            1.0,
        ),
        ParamSpec::number(
            "n",
            "Key position n",
            "n",
            "Position of the key token: its pairs turn by n·θᵢ.",
            3.0,
            0.0,
            1024.0,
            1.0,
        ),
        ParamSpec::number(
            "shift",
            "Shift both by Δ",
            "Δ",
            "Moves query and key together to m + Δ and n + Δ: both arrows turn, the angle between them and the score stay fixed.",
            0.0,
            0.0,
            1024.0,
            1.0,
        ),
        ParamSpec::number(
            "pair",
            "Pair index i",
            "i",
            "Which 2D pair the dial shows (0 turns fastest); above d/2 − 1 the last pair is shown.",
            0.0,
            0.0,
            127.0,
            1.0,
        ),
        ParamSpec::number(
            "max_pos",
            "Positions in the matrix P",
            "P",
            "The score matrix covers query and key positions 0 to P − 1.",
            48.0,
            4.0,
            128.0,
            1.0,
        ),
        ParamSpec::number(
            "sim",
            "Similarity of k to q ρ",
            "ρ",
            "Content vectors: k = ρ q + √(1 − ρ²) z with q, z standard normal. At ρ = 0 q and k are unrelated and the mean |score| does not decay with distance.",
            0.8,
            0.0,
            1.0,
            0.05,
        ),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed for the content vectors q, k and the random pairs of the decay panel.",
            1.0,
            0.0,
            9999.0,
            1.0,
        ),
        ParamSpec::choice(
            "pairing",
            "Pairing",
            "pairing",
            "interleaved pairs (x0,x1),(x2,x3),... (Meta's Llama); halves pairs xᵢ with x_{i+d/2} (Hugging Face rotate_half). The content is permuted with it, as the weight rows are, so the scores do not change.",
            0,
            &["interleaved", "halves"],
        ),
        ParamSpec::choice(
            "scaling",
            "Context scaling",
            "scaling",
            "Stretching a trained context L to s·L: none; linear position interpolation (θᵢ/s, Chen et al. 2023); NTK-aware base scaling (b·s^(d/(d−2)), bloc97 / YaRN).",
            0,
            &["none", "linear", "ntk"],
        ),
        ParamSpec::number(
            "factor",
            "Stretch factor s",
            "s",
            "How many times longer the new context is than the trained one (used when scaling is on).",
            4.0,
            1.0,
            32.0,
            0.5,
        ),
        ParamSpec::number(
            "ctx",
            "Trained context L",
            "L",
            "The context length the model was trained on; pairs whose wavelength exceeds it never complete a turn in training. Logarithmic slider.",
            4096.0,
            128.0,
            131_072.0,
            1.0,
        )
        .log_scale(),
    ],
};

/// How the d components of a head vector are cut into d/2 rotating pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairing {
    /// Pair i is (x_{2i}, x_{2i+1}): Meta's Llama code and the RoFormer paper.
    Interleaved,
    /// Pair i is (x_i, x_{i+d/2}): Hugging Face's `rotate_half`.
    Halves,
}

impl Pairing {
    pub fn name(self) -> &'static str {
        match self {
            Pairing::Interleaved => "interleaved",
            Pairing::Halves => "halves",
        }
    }

    pub fn from_name(name: &str) -> Option<Pairing> {
        match name {
            "interleaved" => Some(Pairing::Interleaved),
            "halves" => Some(Pairing::Halves),
            _ => None,
        }
    }

    /// The two components (a, b) of pair i in a vector of dimension d; the rotation takes
    /// (x_a, x_b) to (x_a cos - x_b sin, x_a sin + x_b cos).
    pub fn pair(self, d: usize, i: usize) -> (usize, usize) {
        match self {
            Pairing::Interleaved => (2 * i, 2 * i + 1),
            Pairing::Halves => (i, i + d / 2),
        }
    }
}

/// Stretching the trained context by a factor s (see the module docs for the formulas).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scaling {
    None,
    /// Linear position interpolation: theta'_i = theta_i / s.
    Linear(f64),
    /// NTK-aware: base' = base * s^(d / (d - 2)).
    Ntk(f64),
}

impl Scaling {
    pub fn name(self) -> &'static str {
        match self {
            Scaling::None => "none",
            Scaling::Linear(_) => "linear",
            Scaling::Ntk(_) => "ntk",
        }
    }

    /// The stretch factor s (1 without scaling).
    pub fn factor(self) -> f64 {
        match self {
            Scaling::None => 1.0,
            Scaling::Linear(s) | Scaling::Ntk(s) => s,
        }
    }
}

/// The typed configuration of `<ml-rope>`, read once from the parameter table.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Head dimension d (even).
    pub head_dim: usize,
    /// RoPE base (`rope_theta` in Hugging Face configs).
    pub base: f64,
    /// Query position m.
    pub m: usize,
    /// Key position n.
    pub n: usize,
    /// Common shift of both positions, Delta.
    pub shift: usize,
    /// Pair index the dial shows, as asked for (may exceed d/2 - 1; see [`Config::pair`]).
    pub pair_requested: usize,
    /// The score matrix covers positions 0 .. max_pos - 1.
    pub max_pos: usize,
    /// Similarity rho of k to q in the content vectors.
    pub similarity: f64,
    pub seed: u64,
    pub pairing: Pairing,
    pub scaling: Scaling,
    /// Trained context length L (frequencies panel).
    pub train_ctx: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        let factor = p.get("factor");
        Config {
            head_dim: p.get("dim") as usize,
            base: p.get("base"),
            m: p.get("m") as usize,
            n: p.get("n") as usize,
            shift: p.get("shift") as usize,
            pair_requested: p.get("pair") as usize,
            max_pos: p.get("max_pos") as usize,
            similarity: p.get("sim"),
            seed: p.get("seed") as u64,
            pairing: Pairing::from_name(p.choice("pairing")).expect("a pairing of the table"),
            scaling: match p.choice("scaling") {
                "linear" => Scaling::Linear(factor),
                "ntk" => Scaling::Ntk(factor),
                _ => Scaling::None,
            },
            train_ctx: p.get("ctx") as usize,
        }
    }

    /// The pair the dial shows: the one asked for, or the last one, d/2 - 1.
    pub fn pair(&self) -> usize {
        self.pair_requested.min(self.head_dim / 2 - 1)
    }

    /// The frequencies in use: the base's, scaled as configured.
    pub fn thetas(&self) -> Array1<f64> {
        scaled_thetas(self.head_dim, self.base, self.scaling)
    }
}

/// theta_i = base^(-2i/d) for i = 0 .. d/2 - 1, in radians per token.
pub fn thetas(d: usize, base: f64) -> Array1<f64> {
    assert!(
        d >= 2 && d % 2 == 0,
        "RoPE needs an even head dimension, got {d}"
    );
    Array1::from_shape_fn(d / 2, |i| math::pow(base, -2.0 * i as f64 / d as f64))
    // (d/2,)
}

/// The NTK-aware base for a stretch factor s: base * s^(d / (d - 2)).
/// For d = 2 the only pair has theta_0 = 1 whatever the base, so the base is left alone.
pub fn ntk_base(base: f64, d: usize, factor: f64) -> f64 {
    if d <= 2 {
        return base;
    }
    base * math::pow(factor, d as f64 / (d as f64 - 2.0))
}

/// The frequencies after context scaling (module docs: linear interpolation, NTK-aware).
pub fn scaled_thetas(d: usize, base: f64, scaling: Scaling) -> Array1<f64> {
    match scaling {
        Scaling::None => thetas(d, base),
        Scaling::Linear(s) => thetas(d, base) / s,
        Scaling::Ntk(s) => thetas(d, ntk_base(base, d, s)),
    }
}

/// Wavelength of each pair in tokens, 2 pi / theta_i: how far apart two positions are
/// before pair i has turned once.
pub fn wavelengths(thetas: &Array1<f64>) -> Array1<f64> {
    thetas.mapv(|t| std::f64::consts::TAU / t)
}

/// R_pos x, the fast way: one cos/sin per pair, applied in place of a matrix.
/// `pos` may be fractional (interpolated positions) or negative (R_{-m} = R_m^T).
pub fn rotate(x: ArrayView1<f64>, pos: f64, thetas: &Array1<f64>, pairing: Pairing) -> Array1<f64> {
    let d = x.len();
    assert_eq!(
        d,
        2 * thetas.len(),
        "vector of dimension {d} for {} pairs",
        thetas.len()
    );
    let mut out = x.to_owned(); // (d,)
    for (i, &theta) in thetas.iter().enumerate() {
        let (a, b) = pairing.pair(d, i);
        let (sin, cos) = math::sin_cos(pos * theta);
        out[a] = x[a] * cos - x[b] * sin;
        out[b] = x[a] * sin + x[b] * cos;
    }
    out
}

/// The block rotation matrix R_pos (d x d): an explicit 2x2 rotation
/// [[cos, -sin], [sin, cos]] of angle pos * theta_i in rows and columns (a, b) of pair i,
/// zeros elsewhere. The slow reference twin of [`rotate`].
pub fn rotation_matrix(d: usize, pos: f64, thetas: &Array1<f64>, pairing: Pairing) -> Array2<f64> {
    assert_eq!(d, 2 * thetas.len());
    let mut r = Array2::<f64>::zeros((d, d)); // (d, d)
    for (i, &theta) in thetas.iter().enumerate() {
        let (a, b) = pairing.pair(d, i);
        let angle = pos * theta;
        let (sin, cos) = math::sin_cos(angle);
        let block = [[cos, -sin], [sin, cos]]; // (2, 2)
        for (row, &ri) in [a, b].iter().enumerate() {
            for (col, &ci) in [a, b].iter().enumerate() {
                r[[ri, ci]] = block[row][col];
            }
        }
    }
    r
}

/// R_pos x by the full matrix product: slow (d^2), obviously right.
pub fn rotate_slow(
    x: ArrayView1<f64>,
    pos: f64,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> Array1<f64> {
    rotation_matrix(x.len(), pos, thetas, pairing).dot(&x) // (d, d) . (d,) -> (d,)
}

/// The permutation taking the interleaved layout to the halves layout:
/// `halves[j] = interleaved[perm[j]]`, i.e. pair i's components move from (2i, 2i+1) to
/// (i, i + d/2). Applied to the rows of W_q and W_k it makes a checkpoint trained with one
/// pairing give the same scores with the other.
pub fn permutation(d: usize) -> Vec<usize> {
    let half = d / 2;
    (0..d)
        .map(|j| if j < half { 2 * j } else { 2 * (j - half) + 1 })
        .collect()
}

/// `x[perm]`: component j of the result is component `perm[j]` of x.
pub fn permute(x: ArrayView1<f64>, perm: &[usize]) -> Array1<f64> {
    Array1::from_shape_fn(perm.len(), |j| x[perm[j]])
}

/// The attention score (R_m q) . (R_n k), without the 1/sqrt(d) scaling.
pub fn score(
    q: ArrayView1<f64>,
    k: ArrayView1<f64>,
    m: f64,
    n: f64,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> f64 {
    rotate(q, m, thetas, pairing).dot(&rotate(k, n, thetas, pairing))
}

/// The same score written with the offset only: q . R_{n-m} k (R_m^T R_n = R_{n-m}).
/// `offset` is m - n. This is the identity RoPE rests on, evaluated directly.
pub fn score_relative(
    q: ArrayView1<f64>,
    k: ArrayView1<f64>,
    offset: f64,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> f64 {
    q.dot(&rotate(k, -offset, thetas, pairing))
}

/// Each pair's term of the score at offset m - n: Re(q~_i conj(k~_i) e^{i (m-n) theta_i}).
/// They sum to [`score_relative`].
pub fn pair_contributions(
    q: ArrayView1<f64>,
    k: ArrayView1<f64>,
    offset: f64,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> Array1<f64> {
    let d = q.len();
    Array1::from_shape_fn(thetas.len(), |i| {
        let (a, b) = pairing.pair(d, i);
        let h = (q[a] * k[a] + q[b] * k[b], q[b] * k[a] - q[a] * k[b]); // q~ conj(k~)
        let (sin, cos) = math::sin_cos(offset * thetas[i]);
        h.0 * cos - h.1 * sin
    }) // (d/2,)
}

/// The rotated vectors R_0 x, ..., R_{P-1} x as the rows of a (P, d) matrix.
fn rotated_rows(
    x: ArrayView1<f64>,
    max_pos: usize,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> Array2<f64> {
    let mut rows = Array2::<f64>::zeros((max_pos, x.len())); // (P, d)
    for (pos, mut row) in rows.axis_iter_mut(Axis(0)).enumerate() {
        row.assign(&rotate(x, pos as f64, thetas, pairing));
    }
    rows
}

/// a . b^T by row dot products: (P, d) x (P, d) -> (P, P). P and d are small here, and
/// this keeps a general matrix-multiply kernel out of the wasm.
fn gram(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
    Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| a.row(i).dot(&b.row(j)))
}

/// S[m, n] = (R_m q) . (R_n k) for m, n in 0 .. P - 1.
pub fn score_matrix(
    q: ArrayView1<f64>,
    k: ArrayView1<f64>,
    max_pos: usize,
    thetas: &Array1<f64>,
    pairing: Pairing,
) -> Array2<f64> {
    let q_rot = rotated_rows(q, max_pos, thetas, pairing); // (P, d)
    let k_rot = rotated_rows(k, max_pos, thetas, pairing); // (P, d)
    gram(&q_rot, &k_rot) // (P, P)
}

/// The sinusoidal absolute encoding of position `pos` (Vaswani et al. 2017, section 3.5):
/// PE[2i] = sin(pos * w_i), PE[2i+1] = cos(pos * w_i), w_i = base^(-2i/d).
pub fn sinusoidal(pos: f64, d: usize, base: f64) -> Array1<f64> {
    let w = thetas(d, base); // (d/2,)
    Array1::from_shape_fn(d, |j| {
        let angle = pos * w[j / 2];
        if j % 2 == 0 {
            math::sin(angle)
        } else {
            math::cos(angle)
        }
    })
}

/// S[m, n] = (q + p_m) . (k + p_n) with sinusoidal p added to the content, for m, n < P.
pub fn sinusoidal_score_matrix(
    q: ArrayView1<f64>,
    k: ArrayView1<f64>,
    max_pos: usize,
    base: f64,
) -> Array2<f64> {
    let d = q.len();
    let mut qp = Array2::<f64>::zeros((max_pos, d)); // (P, d)
    let mut kp = Array2::<f64>::zeros((max_pos, d)); // (P, d)
    for pos in 0..max_pos {
        let p = sinusoidal(pos as f64, d, base); // (d,)
        qp.row_mut(pos).assign(&(&q + &p));
        kp.row_mut(pos).assign(&(&k + &p));
    }
    gram(&qp, &kp) // (P, P)
}

/// How far a square matrix is from Toeplitz: the largest range (max - min) along any of its
/// diagonals m - n = const, as a fraction of its largest |entry|. Zero for a Toeplitz matrix.
pub fn diagonal_spread(s: &Array2<f64>) -> f64 {
    let p = s.nrows();
    let scale = s.fold(0.0f64, |a, &v| a.max(v.abs()));
    if p < 2 || scale == 0.0 {
        return 0.0;
    }
    let mut worst = 0.0f64;
    for offset in -(p as isize - 1)..=(p as isize - 1) {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for m in 0..p {
            let n = m as isize - offset;
            if (0..p as isize).contains(&n) {
                let v = s[[m, n as usize]];
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        worst = worst.max(hi - lo);
    }
    worst / scale
}

/// A bound on |score(m + Delta, n + Delta) - score(m, n)| from f64 rounding alone, for
/// positions m, n, shift Delta, dimension d and content norms |q|, |k|.
///
/// Derivation (eps = f64::EPSILON = 2^-52, one ulp at 1; theta_i <= 1):
/// - theta_i from `pow` carries a relative error of about an ulp, and the product
///   pos * theta_i another half ulp, so the angle is off by at most 2 eps pos theta_i <= 2 eps pos;
/// - a rotation by a wrong angle moves a pair by at most that angle error times its length,
///   and rounding sin, cos and `x_a cos - x_b sin` adds at most 4 eps |pair|; so the rotated
///   pair is within (2 pos + 4) eps of the exact one, relative to its length;
/// - the dot product of the rotated vectors adds d eps |q||k| (the classic summation bound),
///   and by Cauchy-Schwarz over pairs the rotation errors add (2m + 2n + 8) eps |q||k|;
/// - the two scores compared are each within that of the exact value, which is the same
///   for both (it depends on m - n only). Summing both: (4(m + n + Delta) + 16 + 2d) eps |q||k|.
///
/// At positions near 4096 and d = 128 this is about 8e-12 |q||k|; in f32 it would be
/// about 3e-3 |q||k|.
pub fn shift_tolerance(m: f64, n: f64, shift: f64, d: usize, q_norm: f64, k_norm: f64) -> f64 {
    (4.0 * (m + n + shift) + 16.0 + 2.0 * d as f64) * f64::EPSILON * q_norm * k_norm
}

/// RoFormer's relative upper bound at each offset r: (2/d) sum_{j=1}^{d/2} |S_j(r)|,
/// S_j(r) = sum_{l<j} e^{i r theta_l}. At r = 0 it is (d/2 + 1) / 2.
pub fn relative_bound(offsets: &[f64], thetas: &Array1<f64>) -> Vec<f64> {
    let half = thetas.len() as f64;
    offsets
        .iter()
        .map(|&r| {
            let (mut re, mut im, mut total) = (0.0, 0.0, 0.0);
            for &theta in thetas {
                let (sin, cos) = math::sin_cos(r * theta);
                re += cos;
                im += sin;
                total += math::hypot(re, im); // |S_j| for j = 1 .. d/2
            }
            total / half
        })
        .collect()
}

/// The mean over the given (q, k) pairs of |score| at each offset r = m - n, by the complex
/// form Re sum_i h_i e^{i r theta_i}, h_i = q~_i conj(k~_i) (interleaved pairs).
pub fn mean_abs_score(
    offsets: &[f64],
    thetas: &Array1<f64>,
    samples: &[(Array1<f64>, Array1<f64>)],
) -> Vec<f64> {
    let half = thetas.len();
    // h for every sample, real and imaginary parts: (N, d/2) each.
    let mut h_re = Array2::<f64>::zeros((samples.len(), half));
    let mut h_im = Array2::<f64>::zeros((samples.len(), half));
    for (s, (q, k)) in samples.iter().enumerate() {
        for i in 0..half {
            let (a, b) = (2 * i, 2 * i + 1);
            h_re[[s, i]] = q[a] * k[a] + q[b] * k[b];
            h_im[[s, i]] = q[b] * k[a] - q[a] * k[b];
        }
    }
    offsets
        .iter()
        .map(|&r| {
            let angles = thetas.mapv(|t| r * t); // (d/2,)
            let cos = angles.mapv(math::cos); // (d/2,)
            let sin = angles.mapv(math::sin); // (d/2,)
            let scores = h_re.dot(&cos) - h_im.dot(&sin); // (N,)
            scores.mapv(f64::abs).mean().unwrap_or(0.0)
        })
        .collect()
}

/// The content vectors: q ~ N(0, I_d), k = rho q + sqrt(1 - rho^2) z with z ~ N(0, I_d),
/// in the interleaved layout. Same seed, same vectors, on the CLI and in the browser.
pub fn content_vectors(d: usize, similarity: f64, rng: &mut Rng) -> (Array1<f64>, Array1<f64>) {
    let q = Array1::from_shape_fn(d, |_| rng.normal()); // (d,)
    let z = Array1::from_shape_fn(d, |_| rng.normal()); // (d,)
    let k = &q * similarity + &z * (1.0 - similarity * similarity).max(0.0).sqrt(); // (d,)
    (q, k)
}

/// The seeded content of `<ml-rope>` in the layout of the configured pairing: drawn
/// interleaved, then permuted like the weight rows when the pairing is halves.
pub fn seeded_content(config: &Config) -> (Array1<f64>, Array1<f64>) {
    let mut rng = Rng::new(config.seed);
    let (q, k) = content_vectors(config.head_dim, config.similarity, &mut rng);
    layout(q, k, config.head_dim, config.pairing)
}

fn layout(
    q: Array1<f64>,
    k: Array1<f64>,
    d: usize,
    pairing: Pairing,
) -> (Array1<f64>, Array1<f64>) {
    match pairing {
        Pairing::Interleaved => (q, k),
        Pairing::Halves => {
            let perm = permutation(d);
            (permute(q.view(), &perm), permute(k.view(), &perm))
        }
    }
}

/// Random (q, k) pairs for the decay panel, `count` of them, after the content vectors in
/// the seed's stream.
pub fn decay_samples(config: &Config, count: usize) -> Vec<(Array1<f64>, Array1<f64>)> {
    let mut rng = Rng::new(config.seed);
    let _content = content_vectors(config.head_dim, config.similarity, &mut rng);
    (0..count)
        .map(|_| content_vectors(config.head_dim, config.similarity, &mut rng))
        .collect()
}

/// Offsets for the decay curves, in bins: bin 0 is {0}; then `bins` bins spread evenly on
/// a log scale from 1 to `max`, each holding its whole offsets, or `per_bin` of them spread
/// geometrically over it when it has more. Empty bins (between two whole numbers) are
/// left out. Averaging over a bin shows the trend through the fast oscillation of
/// e^{i r theta_i} at large r, which the paper's plot of single offsets leaves in.
pub fn decay_bins(max: usize, bins: usize, per_bin: usize) -> Vec<Vec<f64>> {
    let edge = |j: usize| math::pow(max as f64, j as f64 / bins as f64);
    let mut out = vec![vec![0.0]];
    for j in 0..bins {
        let (lo, hi) = (edge(j).ceil(), edge(j + 1));
        let last = j + 1 == bins;
        let top = if last {
            hi.round()
        } else {
            (hi - 1e-9).ceil() - 1.0
        };
        if top < lo {
            continue;
        }
        let count = (top - lo + 1.0) as usize;
        let members: Vec<f64> = if count <= per_bin {
            (0..count).map(|t| lo + t as f64).collect()
        } else {
            let mut v: Vec<f64> = (0..per_bin)
                .map(|t| (lo * math::pow(top / lo, t as f64 / (per_bin - 1) as f64)).round())
                .collect();
            v.dedup();
            v
        };
        out.push(members);
    }
    out
}

/// Where a bin is plotted: the geometric mean of its offsets (0 for the bin {0}).
pub fn bin_center(bin: &[f64]) -> f64 {
    if bin.contains(&0.0) {
        return 0.0;
    }
    math::exp(bin.iter().map(|&r| math::ln(r)).sum::<f64>() / bin.len() as f64)
}

/// Per-bin means of values computed on the flattened offsets of `bins`.
fn bin_means(bins: &[Vec<f64>], values: &[f64]) -> Vec<f64> {
    let mut at = 0;
    bins.iter()
        .map(|b| {
            let mean = values[at..at + b.len()].iter().sum::<f64>() / b.len() as f64;
            at += b.len();
            mean
        })
        .collect()
}

/// What the dial panel shows for one pair, and the whole score.
#[derive(Clone, Debug, PartialEq)]
pub struct Dial {
    /// The pair shown (clamped to d/2 - 1) and its frequency.
    pub pair: usize,
    pub theta: f64,
    /// The positions in use, m + Delta and n + Delta.
    pub m_pos: usize,
    pub n_pos: usize,
    /// Pair i of q and k before rotation, (x_a, x_b).
    pub q_pair: [f64; 2],
    pub k_pair: [f64; 2],
    /// The same pairs after rotating by (m + Delta) theta_i and (n + Delta) theta_i.
    pub q_rot_pair: [f64; 2],
    pub k_rot_pair: [f64; 2],
    /// Rotation angles (m + Delta) theta_i and (n + Delta) theta_i, radians.
    pub angle_q: f64,
    pub angle_k: f64,
    /// Angle from the rotated k pair to the rotated q pair, wrapped to (-pi, pi]:
    /// (m - n) theta_i + phase(q~_i) - phase(k~_i), from the offset alone.
    pub angle_between: f64,
    /// (R_{m+D} q) . (R_{n+D} k), computed from the rotated vectors.
    pub score: f64,
    /// q . R_{n-m} k, the same number from the offset alone; what the widget displays.
    pub score_relative: f64,
    /// `score_relative` to the display's precision.
    pub score_text: String,
    /// Each pair's term of the score (they sum to `score_relative`).
    pub contributions: Array1<f64>,
    /// The f64 rounding bound on |score - score at Delta = 0| ([`shift_tolerance`]).
    pub tolerance: f64,
}

/// Wrap an angle to (-pi, pi].
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let w = a.rem_euclid(TAU);
    if w > PI {
        w - TAU
    } else {
        w
    }
}

/// A score as the widget displays it: three decimals, never "-0.000".
pub fn format_score(x: f64) -> String {
    let s = format!("{x:.3}");
    if s == "-0.000" {
        "0.000".to_string()
    } else {
        s
    }
}

impl Dial {
    pub fn compute(
        config: &Config,
        q: &Array1<f64>,
        k: &Array1<f64>,
        thetas: &Array1<f64>,
    ) -> Dial {
        let d = config.head_dim;
        let i = config.pair();
        let (a, b) = config.pairing.pair(d, i);
        let (m_pos, n_pos) = (config.m + config.shift, config.n + config.shift);
        let q_rot = rotate(q.view(), m_pos as f64, thetas, config.pairing); // (d,)
        let k_rot = rotate(k.view(), n_pos as f64, thetas, config.pairing); // (d,)
        let offset = config.m as f64 - config.n as f64;
        let score_relative = score_relative(q.view(), k.view(), offset, thetas, config.pairing);
        let phase = |x: &Array1<f64>| math::atan2(x[b], x[a]);
        Dial {
            pair: i,
            theta: thetas[i],
            m_pos,
            n_pos,
            q_pair: [q[a], q[b]],
            k_pair: [k[a], k[b]],
            q_rot_pair: [q_rot[a], q_rot[b]],
            k_rot_pair: [k_rot[a], k_rot[b]],
            angle_q: m_pos as f64 * thetas[i],
            angle_k: n_pos as f64 * thetas[i],
            angle_between: wrap_angle(offset * thetas[i] + phase(q) - phase(k)),
            score: q_rot.dot(&k_rot),
            score_relative,
            score_text: format_score(score_relative),
            contributions: pair_contributions(q.view(), k.view(), offset, thetas, config.pairing),
            tolerance: shift_tolerance(
                config.m as f64,
                config.n as f64,
                config.shift as f64,
                d,
                q.dot(q).sqrt(),
                k.dot(k).sqrt(),
            ),
        }
    }

    pub fn to_json(&self) -> Json {
        Json::obj([
            ("pair", Json::Num(self.pair as f64)),
            ("theta", Json::Num(self.theta)),
            ("m_pos", Json::Num(self.m_pos as f64)),
            ("n_pos", Json::Num(self.n_pos as f64)),
            ("q_pair", Json::nums(&self.q_pair)),
            ("k_pair", Json::nums(&self.k_pair)),
            ("q_rot_pair", Json::nums(&self.q_rot_pair)),
            ("k_rot_pair", Json::nums(&self.k_rot_pair)),
            ("angle_q", Json::Num(self.angle_q)),
            ("angle_k", Json::Num(self.angle_k)),
            ("angle_between", Json::Num(self.angle_between)),
            ("score", Json::Num(self.score)),
            ("score_relative", Json::Num(self.score_relative)),
            ("score_text", Json::str(&self.score_text)),
            ("contributions", Json::nums(&self.contributions)),
            ("tolerance", Json::Num(self.tolerance)),
        ])
    }
}

/// A matrix as a JSON array of its rows.
pub fn matrix_json(s: &Array2<f64>) -> Json {
    Json::Arr(s.rows().into_iter().map(Json::nums).collect())
}

/// The score matrices of the second panel.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrices {
    /// RoPE scores over positions 0 .. P - 1 in the configured pairing, (P, P).
    pub rope: Array2<f64>,
    /// Scores with sinusoidal absolute encodings added to the content instead, (P, P).
    pub sinusoidal: Array2<f64>,
    pub spread_rope: f64,
    pub spread_sinusoidal: f64,
    /// Largest |S_interleaved - S_halves| over the matrix, the halves one on permuted
    /// content: the pairing check.
    pub pairing_max_diff: f64,
}

impl Matrices {
    /// `q`, `k` are in the interleaved layout; the halves matrix uses them permuted.
    pub fn compute(
        config: &Config,
        q: &Array1<f64>,
        k: &Array1<f64>,
        thetas: &Array1<f64>,
    ) -> Matrices {
        let p = config.max_pos;
        let d = config.head_dim;
        let interleaved = score_matrix(q.view(), k.view(), p, thetas, Pairing::Interleaved); // (P, P)
        let perm = permutation(d);
        let (qh, kh) = (permute(q.view(), &perm), permute(k.view(), &perm)); // (d,), (d,)
        let halves = score_matrix(qh.view(), kh.view(), p, thetas, Pairing::Halves); // (P, P)
        let pairing_max_diff = (&interleaved - &halves).fold(0.0f64, |a, &v| a.max(v.abs()));
        let rope = match config.pairing {
            Pairing::Interleaved => interleaved,
            Pairing::Halves => halves,
        };
        let sinusoidal = sinusoidal_score_matrix(q.view(), k.view(), p, config.base); // (P, P)
        Matrices {
            spread_rope: diagonal_spread(&rope),
            spread_sinusoidal: diagonal_spread(&sinusoidal),
            rope,
            sinusoidal,
            pairing_max_diff,
        }
    }

    pub fn to_json(&self) -> Json {
        let rows = matrix_json;
        Json::obj([
            ("max_pos", Json::Num(self.rope.nrows() as f64)),
            ("rope", rows(&self.rope)),
            ("sinusoidal", rows(&self.sinusoidal)),
            ("spread_rope", Json::Num(self.spread_rope)),
            ("spread_sinusoidal", Json::Num(self.spread_sinusoidal)),
            ("pairing_max_diff", Json::Num(self.pairing_max_diff)),
        ])
    }
}

/// One base's decay curves, each divided by its value at offset 0.
#[derive(Clone, Debug, PartialEq)]
pub struct DecayCurve {
    pub label: String,
    pub base: f64,
    pub mean_abs: Vec<f64>,
    pub bound: Vec<f64>,
}

/// The third panel: mean |score| and RoFormer's bound against the offset |m - n|.
#[derive(Clone, Debug, PartialEq)]
pub struct Decay {
    /// Where each bin is plotted ([`bin_center`]); bin 0 is the offset 0 alone.
    pub offsets: Vec<f64>,
    /// How many offsets each bin averages over.
    pub bin_sizes: Vec<usize>,
    /// The configured base (with its scaling) first, then 10,000 and 500,000 unless the
    /// configured one is one of them.
    pub curves: Vec<DecayCurve>,
    pub samples: usize,
}

/// Random (q, k) pairs averaged over in the decay panel.
pub const DECAY_SAMPLES: usize = 256;
/// The decay panel's offsets run to 2^17 = 131,072 tokens (Llama 3.1's context is 128k).
pub const DECAY_MAX_OFFSET: usize = 131_072;
/// Log bins of offsets on the decay panel, and offsets averaged per bin at most.
pub const DECAY_BINS: usize = 64;
pub const DECAY_PER_BIN: usize = 12;
/// The reference bases overlaid on the decay panel.
pub const REFERENCE_BASES: [(f64, &str); 2] = [
    (10_000.0, "10,000 (RoFormer, Llama 2)"),
    (500_000.0, "500,000 (Llama 3)"),
];

fn normalised(v: Vec<f64>) -> Vec<f64> {
    let first = v.first().copied().unwrap_or(1.0);
    if first == 0.0 {
        return v;
    }
    v.into_iter().map(|x| x / first).collect()
}

impl Decay {
    pub fn compute(config: &Config) -> Decay {
        let d = config.head_dim;
        let bins = decay_bins(DECAY_MAX_OFFSET, DECAY_BINS, DECAY_PER_BIN);
        let flat: Vec<f64> = bins.iter().flatten().copied().collect();
        let samples = decay_samples(config, DECAY_SAMPLES);
        let curve = |label: String, base: f64, th: &Array1<f64>| DecayCurve {
            label,
            base,
            mean_abs: normalised(bin_means(&bins, &mean_abs_score(&flat, th, &samples))),
            bound: normalised(bin_means(&bins, &relative_bound(&flat, th))),
        };
        let same = |base: f64| config.scaling == Scaling::None && config.base == base;
        let chosen_label = match (config.scaling, REFERENCE_BASES.iter().find(|r| same(r.0))) {
            (_, Some((_, name))) => format!("as set: b = {name}"),
            (Scaling::None, None) => format!("as set: b = {}", group_thousands(config.base)),
            (s, None) => format!(
                "as set: b = {}, {} ×{}",
                group_thousands(config.base),
                s.name(),
                s.factor()
            ),
        };
        let mut curves = vec![curve(chosen_label, config.base, &config.thetas())];
        for (base, label) in REFERENCE_BASES {
            if !same(base) {
                curves.push(curve(format!("b = {label}"), base, &thetas(d, base)));
            }
        }
        Decay {
            offsets: bins.iter().map(|b| bin_center(b)).collect(),
            bin_sizes: bins.iter().map(Vec::len).collect(),
            curves,
            samples: DECAY_SAMPLES,
        }
    }

    pub fn to_json(&self) -> Json {
        Json::obj([
            ("offsets", Json::nums(&self.offsets)),
            (
                "bin_sizes",
                Json::Arr(
                    self.bin_sizes
                        .iter()
                        .map(|&n| Json::Num(n as f64))
                        .collect(),
                ),
            ),
            ("samples", Json::Num(self.samples as f64)),
            (
                "curves",
                Json::Arr(
                    self.curves
                        .iter()
                        .map(|c| {
                            Json::obj([
                                ("label", Json::str(&c.label)),
                                ("base", Json::Num(c.base)),
                                ("mean_abs", Json::nums(&c.mean_abs)),
                                ("bound", Json::nums(&c.bound)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }
}

/// A whole number with thousands separators: 500000 -> "500,000"; others as they are.
pub fn group_thousands(x: f64) -> String {
    if x.fract() != 0.0 || x.abs() >= 1e15 {
        return format!("{x}");
    }
    let digits = format!("{}", x.abs() as u64);
    let mut out = String::new();
    for (j, c) in digits.chars().enumerate() {
        if j > 0 && (digits.len() - j) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The fourth panel: each pair's frequency and wavelength, before and after scaling.
#[derive(Clone, Debug, PartialEq)]
pub struct Frequencies {
    pub theta: Array1<f64>,
    pub wavelength: Array1<f64>,
    pub theta_scaled: Array1<f64>,
    pub wavelength_scaled: Array1<f64>,
    pub scaling: Scaling,
    pub train_ctx: usize,
    /// Pairs whose wavelength exceeds the trained context (less than one turn in training).
    pub slow_pairs: usize,
}

impl Frequencies {
    pub fn compute(config: &Config) -> Frequencies {
        let theta = thetas(config.head_dim, config.base);
        let theta_scaled = config.thetas();
        let wavelength = wavelengths(&theta);
        let slow_pairs = wavelength
            .iter()
            .filter(|&&l| l > config.train_ctx as f64)
            .count();
        Frequencies {
            wavelength_scaled: wavelengths(&theta_scaled),
            wavelength,
            theta,
            theta_scaled,
            scaling: config.scaling,
            train_ctx: config.train_ctx,
            slow_pairs,
        }
    }

    pub fn to_json(&self) -> Json {
        Json::obj([
            ("theta", Json::nums(&self.theta)),
            ("wavelength", Json::nums(&self.wavelength)),
            ("theta_scaled", Json::nums(&self.theta_scaled)),
            ("wavelength_scaled", Json::nums(&self.wavelength_scaled)),
            ("scaling", Json::str(self.scaling.name())),
            ("factor", Json::Num(self.scaling.factor())),
            ("train_ctx", Json::Num(self.train_ctx as f64)),
            ("slow_pairs", Json::Num(self.slow_pairs as f64)),
        ])
    }
}

/// Everything `<ml-rope>` plots.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub config: Config,
    /// Content vectors in the configured layout.
    pub q: Array1<f64>,
    pub k: Array1<f64>,
    pub dial: Dial,
    pub matrices: Matrices,
    pub decay: Decay,
    pub frequencies: Frequencies,
}

/// Panel 0 the dial, 1 the score matrices, 2 the decay, 3 the frequencies.
pub const PANELS: usize = 4;

pub fn compute(config: &Config) -> Data {
    let thetas = config.thetas();
    let mut rng = Rng::new(config.seed);
    let (q0, k0) = content_vectors(config.head_dim, config.similarity, &mut rng); // interleaved
    let (q, k) = layout(q0.clone(), k0.clone(), config.head_dim, config.pairing);
    Data {
        dial: Dial::compute(config, &q, &k, &thetas),
        matrices: Matrices::compute(config, &q0, &k0, &thetas),
        decay: Decay::compute(config),
        frequencies: Frequencies::compute(config),
        q,
        k,
        config: config.clone(),
    }
}

impl Data {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("pairing", Json::str(self.config.pairing.name())),
            ("q", Json::nums(&self.q)),
            ("k", Json::nums(&self.k)),
            ("dial", self.dial.to_json()),
            ("matrix", self.matrices.to_json()),
            ("decay", self.decay.to_json()),
            ("frequencies", self.frequencies.to_json()),
        ])
    }

    /// The data plotted in one panel, for the JSON export.
    pub fn panel_json(&self, panel: usize) -> Json {
        match panel {
            0 => Json::obj([
                ("q", Json::nums(&self.q)),
                ("k", Json::nums(&self.k)),
                ("dial", self.dial.to_json()),
            ]),
            1 => self.matrices.to_json(),
            2 => self.decay.to_json(),
            _ => self.frequencies.to_json(),
        }
    }

    /// The data plotted in one panel as CSV with a header row, for the CSV export.
    pub fn panel_csv(&self, panel: usize) -> String {
        let mut out = String::new();
        match panel {
            0 => {
                out.push_str("pair,theta,q_a,q_b,k_a,k_b,contribution\n");
                let d = self.config.head_dim;
                for (i, c) in self.dial.contributions.iter().enumerate() {
                    let (a, b) = self.config.pairing.pair(d, i);
                    out.push_str(&format!(
                        "{i},{},{},{},{},{},{c}\n",
                        self.config.thetas()[i],
                        self.q[a],
                        self.q[b],
                        self.k[a],
                        self.k[b]
                    ));
                }
            }
            1 => {
                out.push_str("m,n,rope,sinusoidal\n");
                let m = &self.matrices;
                for ((mi, ni), v) in m.rope.indexed_iter() {
                    out.push_str(&format!("{mi},{ni},{v},{}\n", m.sinusoidal[[mi, ni]]));
                }
            }
            2 => {
                let curves = &self.decay.curves;
                let mut header = vec!["offset".to_string()];
                for c in curves {
                    header.push(format!("mean_abs(b={})", c.base));
                    header.push(format!("bound(b={})", c.base));
                }
                out.push_str(&header.join(","));
                out.push('\n');
                for (j, r) in self.decay.offsets.iter().enumerate() {
                    let mut row = vec![r.to_string()];
                    for c in curves {
                        row.push(c.mean_abs[j].to_string());
                        row.push(c.bound[j].to_string());
                    }
                    out.push_str(&row.join(","));
                    out.push('\n');
                }
            }
            _ => {
                let f = &self.frequencies;
                out.push_str("pair,theta,wavelength,theta_scaled,wavelength_scaled\n");
                for i in 0..f.theta.len() {
                    out.push_str(&format!(
                        "{i},{},{},{},{}\n",
                        f.theta[i], f.wavelength[i], f.theta_scaled[i], f.wavelength_scaled[i]
                    ));
                }
            }
        }
        out
    }
}

/// Parse `v1,v2,...` for `--q` / `--k`: exactly `d` finite numbers.
fn parse_vector(key: &str, raw: &str, d: usize) -> Result<Array1<f64>, String> {
    let mut out = Vec::new();
    for part in raw.split(',') {
        let part = part.trim();
        match crate::math::parse_f64(part) {
            Some(v) if v.is_finite() => out.push(v),
            _ => {
                return Err(format!(
                    "invalid value \"{part}\" in --{key}: --{key} must be {d} comma-separated finite numbers (one per component, --dim {d})"
                ))
            }
        }
    }
    if out.len() != d {
        return Err(format!(
            "--{key} has {} numbers: it must be {d} comma-separated numbers (one per component, --dim {d})",
            out.len()
        ));
    }
    Ok(Array1::from(out))
}

/// `mlplay rope` with arguments the parameter table cannot express: explicit vectors
/// (`--q v1,... --k v1,...`) and the score matrix (`--matrix`). Returns `None` when none of
/// them is given (the generic widget path then prints the widget's data), otherwise the JSON
/// to print or an error message (exit code 2). Slider keys go through the same strict
/// validation as the generic path; `--max-pos` is accepted for `--max_pos`.
///
/// - `--q ... --k ...`: `{"q_rot", "k_rot", "score"}`, the vectors rotated to positions
///   m + shift and n + shift in the given pairing, score = q_rot . k_rot (no 1/sqrt(d)).
/// - `--matrix`: the score matrix over positions 0 .. max_pos - 1 for the seeded content
///   (the widget's) or for `--q`/`--k` when given.
pub fn cli(args: &[String]) -> Option<Result<Json, String>> {
    let ours = |a: &String| {
        let key = a.split('=').next().unwrap_or("");
        key == "--q" || key == "--k" || key == "--matrix"
    };
    if !args.iter().any(ours) {
        return None;
    }
    Some(cli_run(args))
}

fn cli_run(args: &[String]) -> Result<Json, String> {
    let mut params = Params::defaults(&SPEC);
    let (mut q_raw, mut k_raw, mut matrix) = (None, None, false);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--json" {
            continue;
        }
        if flag == "--matrix" {
            matrix = true;
            continue;
        }
        let Some(key) = flag.strip_prefix("--") else {
            return Err(format!("expected --key value, got {flag:?}"));
        };
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match rest.next() {
                Some(v) => (key.to_string(), v.clone()),
                None => return Err(format!("--{key} needs a value")),
            },
        };
        match key.as_str() {
            "q" => q_raw = Some(value),
            "k" => k_raw = Some(value),
            "matrix" => return Err("--matrix takes no value".to_string()),
            _ => params.set_strict(&key.replace('-', "_"), &value)?,
        }
    }
    let config = Config::from_params(&params);
    let d = config.head_dim;
    let given = match (q_raw, k_raw) {
        (Some(q), Some(k)) => Some((parse_vector("q", &q, d)?, parse_vector("k", &k, d)?)),
        (None, None) => None,
        _ => {
            return Err(format!(
                "--q and --k go together: give both, {d} comma-separated numbers each"
            ))
        }
    };
    let thetas = config.thetas();
    if matrix {
        let (q, k) = given.unwrap_or_else(|| seeded_content(&config));
        let s = score_matrix(q.view(), k.view(), config.max_pos, &thetas, config.pairing); // (P, P)
        return Ok(Json::obj([
            ("pairing", Json::str(config.pairing.name())),
            ("max_pos", Json::Num(config.max_pos as f64)),
            ("q", Json::nums(&q)),
            ("k", Json::nums(&k)),
            ("matrix", matrix_json(&s)),
            ("diagonal_spread", Json::Num(diagonal_spread(&s))),
        ]));
    }
    let (q, k) = given.expect("--q/--k given when not --matrix");
    let q_rot = rotate(
        q.view(),
        (config.m + config.shift) as f64,
        &thetas,
        config.pairing,
    );
    let k_rot = rotate(
        k.view(),
        (config.n + config.shift) as f64,
        &thetas,
        config.pairing,
    );
    Ok(Json::obj([
        ("q_rot", Json::nums(&q_rot)),
        ("k_rot", Json::nums(&k_rot)),
        ("score", Json::Num(q_rot.dot(&k_rot))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_bins_cover_every_offset_once_in_order() {
        let bins = decay_bins(DECAY_MAX_OFFSET, DECAY_BINS, DECAY_PER_BIN);
        assert_eq!(bins[0], vec![0.0]);
        assert_eq!(bins[1], vec![1.0]);
        let flat: Vec<f64> = bins.iter().flatten().copied().collect();
        assert!(flat.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
        assert_eq!(*flat.last().unwrap(), DECAY_MAX_OFFSET as f64);
        assert!(bins
            .iter()
            .all(|b| !b.is_empty() && b.len() <= DECAY_PER_BIN));
        // Small offsets are all there: 0..=20 each once.
        for r in 0..=20 {
            assert!(flat.contains(&(r as f64)), "{r}");
        }
        let centers: Vec<f64> = bins.iter().map(|b| bin_center(b)).collect();
        assert!(centers.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn thousands_and_scores_format() {
        assert_eq!(group_thousands(500000.0), "500,000");
        assert_eq!(group_thousands(10000.0), "10,000");
        assert_eq!(group_thousands(999.0), "999");
        assert_eq!(format_score(-0.0001), "0.000");
        assert_eq!(format_score(1.23456), "1.235");
    }
}
