//! A small multilayer perceptron with tanh hidden layers, its hand-written backward pass,
//! orthogonal initialisation, Adam, and global gradient-norm clipping.
//!
//! ```text
//! h_0 = x,   h_{l+1} = tanh(h_l W_l + b_l)   (the last layer is linear unless `tanh_last`)
//! backward:  dZ_l = dH_{l+1} ⊙ (1 − h_{l+1}²),  dW_l = h_lᵀ dZ_l,  db_l = Σ_rows dZ_l,  dH_l = dZ_l W_lᵀ
//! Adam:      m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  θ ← θ − η m̂ / (√v̂ + ε),  ε = 1e-5
//! ```
//!
//! Orthogonal init follows PyTorch's `nn.init.orthogonal_` (Saxe et al. 2014) with the
//! gains of the PPO implementation details (Huang et al. 2022): √2 for hidden layers, 0.01
//! for a policy head, 1 for a value head, zero biases.
//!
//! All weights and biases of a network live in one flat `Vec<f64>` (layer by layer: W_l as
//! (in, out) row-major, then b_l), so Adam, clipping and export are loops over one slice.
//! The fast kernels are plain loops in a fixed order with no fused multiply-add and the
//! [`crate::math`]'s `tanh`, so native and WebAssembly builds give the same bits; the slow
//! reference twin [`Mlp::forward_reference`] uses ndarray's `dot`, and the tests compare the
//! two. Used by [`crate::ppo`] (the actor and critic of `<ml-cartpole-ppo>`).

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::rng::Rng;

/// A tanh MLP with all its parameters in one flat vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Layer widths, input first: `[4, 64, 64, 2]`.
    pub sizes: Vec<usize>,
    /// Whether the last layer is followed by tanh too (a shared trunk) or is linear (a head).
    pub tanh_last: bool,
    /// Weights and biases, layer by layer: W_l (in, out) row-major, then b_l (out).
    pub params: Vec<f64>,
}

/// The activations of one forward pass, kept for the backward pass: `h[0]` is the input,
/// `h[l + 1]` the output of layer l, each `(rows, width)` row-major.
#[derive(Clone, Debug, Default)]
pub struct Activations {
    pub rows: usize,
    pub h: Vec<Vec<f64>>,
}

impl Activations {
    /// The network's output, `(rows, out)`.
    pub fn output(&self) -> ArrayView2<'_, f64> {
        let last = self.h.last().expect("a forward pass ran");
        ArrayView2::from_shape((self.rows, last.len() / self.rows.max(1)), last)
            .expect("contiguous rows")
    }
}

/// Scratch space for the backward pass (reused between calls: no allocation per minibatch).
#[derive(Clone, Debug, Default)]
pub struct BackwardScratch {
    dz: Vec<f64>,
    dh: Vec<f64>,
}

/// Standard normal draw by Box-Muller with [`crate::math`]'s `ln` and `cos`, so that it is
/// the same on every platform.
pub fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.uniform(); // (0, 1]: the log is finite
    let u2 = rng.uniform();
    f64::sqrt(-2.0 * crate::math::ln(u1)) * crate::math::cos(std::f64::consts::TAU * u2)
}

/// A `(rows, cols)` matrix with orthonormal rows (rows <= cols) or columns (rows >= cols),
/// times `gain`: PyTorch's `orthogonal_`, QR of a Gaussian matrix by modified Gram-Schmidt
/// (whose R has a positive diagonal, so no sign correction is needed).
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Array2<f64> {
    let (tall, short) = (rows.max(cols), rows.min(cols));
    // q's columns are orthonormalised: (tall, short).
    let mut q = Array2::from_shape_simple_fn((tall, short), || normal(rng));
    for j in 0..short {
        for k in 0..j {
            let dot: f64 = (0..tall).map(|i| q[[i, j]] * q[[i, k]]).sum();
            for i in 0..tall {
                q[[i, j]] -= dot * q[[i, k]];
            }
        }
        let norm = f64::sqrt((0..tall).map(|i| q[[i, j]] * q[[i, j]]).sum());
        for i in 0..tall {
            q[[i, j]] /= norm;
        }
    }
    let q = if rows >= cols { q } else { q.t().to_owned() };
    q * gain
}

/// `C[i, j] += Σ_k A[i, k] B[k, j]` for an (m, n) block of C stored row-major with row
/// stride `n`, A and B read through strides (so transposes cost nothing). Every element of C
/// adds its k terms one at a time in the order k = 0, 1, ..., starting from its value in
/// C: the order fixes the bits, whatever the blocking (4 x 4 register tiles, scalar edges).
#[allow(clippy::too_many_arguments)]
pub fn gemm_acc(
    (m, n, k): (usize, usize, usize),
    a: &[f64],
    (as_m, as_k): (usize, usize),
    b: &[f64],
    (bs_k, bs_n): (usize, usize),
    c: &mut [f64],
) {
    const T: usize = 4;
    if m == 0 || n == 0 {
        return;
    }
    // Every index below is at most these (checked once here, so the loops need no checks).
    assert!(c.len() >= m * n, "C too short");
    if k > 0 {
        assert!((m - 1) * as_m + (k - 1) * as_k < a.len(), "A too short");
        assert!((k - 1) * bs_k + (n - 1) * bs_n < b.len(), "B too short");
    }
    // SAFETY: the asserts above bound every index used with these accessors.
    let at = |i: usize| unsafe { *a.get_unchecked(i) };
    let bt = |i: usize| unsafe { *b.get_unchecked(i) };
    let (m4, n4) = (m - m % T, n - n % T);
    // Written out by hand (16 accumulators in registers): the release profile optimises for
    // size and would not unroll a loop over a small array.
    for i0 in (0..m4).step_by(T) {
        for j0 in (0..n4).step_by(T) {
            let (r0, r1, r2, r3) = (
                i0 * n + j0,
                (i0 + 1) * n + j0,
                (i0 + 2) * n + j0,
                (i0 + 3) * n + j0,
            );
            let (mut c00, mut c01, mut c02, mut c03) = (c[r0], c[r0 + 1], c[r0 + 2], c[r0 + 3]);
            let (mut c10, mut c11, mut c12, mut c13) = (c[r1], c[r1 + 1], c[r1 + 2], c[r1 + 3]);
            let (mut c20, mut c21, mut c22, mut c23) = (c[r2], c[r2 + 1], c[r2 + 2], c[r2 + 3]);
            let (mut c30, mut c31, mut c32, mut c33) = (c[r3], c[r3 + 1], c[r3 + 2], c[r3 + 3]);
            let (a0, a1, a2, a3) = (i0 * as_m, (i0 + 1) * as_m, (i0 + 2) * as_m, (i0 + 3) * as_m);
            let (b0, b1, b2, b3) = (j0 * bs_n, (j0 + 1) * bs_n, (j0 + 2) * bs_n, (j0 + 3) * bs_n);
            for kk in 0..k {
                let (ak, bk) = (kk * as_k, kk * bs_k);
                let (x0, x1, x2, x3) = (at(a0 + ak), at(a1 + ak), at(a2 + ak), at(a3 + ak));
                let (y0, y1, y2, y3) = (bt(bk + b0), bt(bk + b1), bt(bk + b2), bt(bk + b3));
                c00 += x0 * y0;
                c01 += x0 * y1;
                c02 += x0 * y2;
                c03 += x0 * y3;
                c10 += x1 * y0;
                c11 += x1 * y1;
                c12 += x1 * y2;
                c13 += x1 * y3;
                c20 += x2 * y0;
                c21 += x2 * y1;
                c22 += x2 * y2;
                c23 += x2 * y3;
                c30 += x3 * y0;
                c31 += x3 * y1;
                c32 += x3 * y2;
                c33 += x3 * y3;
            }
            c[r0..r0 + 4].copy_from_slice(&[c00, c01, c02, c03]);
            c[r1..r1 + 4].copy_from_slice(&[c10, c11, c12, c13]);
            c[r2..r2 + 4].copy_from_slice(&[c20, c21, c22, c23]);
            c[r3..r3 + 4].copy_from_slice(&[c30, c31, c32, c33]);
        }
    }
    // The edges: rows below m4 with every column, and the last columns of the first m4 rows.
    let edge = |i: usize, j: usize, c: &mut [f64]| {
        let mut acc = c[i * n + j];
        for kk in 0..k {
            acc += at(i * as_m + kk * as_k) * bt(kk * bs_k + j * bs_n);
        }
        c[i * n + j] = acc;
    };
    for i in 0..m4 {
        for j in n4..n {
            edge(i, j, c);
        }
    }
    for i in m4..m {
        for j in 0..n {
            edge(i, j, c);
        }
    }
}

/// `out = x W + b` for `rows` rows: x `(rows, n_in)`, W `(n_in, n_out)`, b `(n_out)`.
fn affine(x: &[f64], rows: usize, w: &[f64], b: &[f64], out: &mut [f64]) {
    let n_out = b.len();
    let n_in = w.len() / n_out;
    for r in 0..rows {
        out[r * n_out..(r + 1) * n_out].copy_from_slice(b);
    }
    gemm_acc((rows, n_out, n_in), x, (n_in, 1), w, (n_out, 1), out);
}

impl Mlp {
    /// Orthogonal weights (gain `hidden_gain` for every layer but the last, `out_gain` for the
    /// last), zero biases.
    pub fn new(
        sizes: &[usize],
        tanh_last: bool,
        hidden_gain: f64,
        out_gain: f64,
        rng: &mut Rng,
    ) -> Self {
        assert!(
            sizes.len() >= 2,
            "an MLP needs an input and an output width"
        );
        let layers = sizes.len() - 1;
        let mut params = Vec::new();
        for l in 0..layers {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let gain = if l + 1 == layers {
                out_gain
            } else {
                hidden_gain
            };
            // PyTorch's weight is (out, in); ours is its transpose, (in, out).
            let w = orthogonal(n_out, n_in, gain, rng).reversed_axes(); // (in, out)
            params.extend(w.iter());
            params.extend(std::iter::repeat_n(0.0, n_out));
        }
        Mlp {
            sizes: sizes.to_vec(),
            tanh_last,
            params,
        }
    }

    pub fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Offsets of layer l's weight and bias in the flat vector.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let mut off = 0;
        for k in 0..l {
            off += self.sizes[k] * self.sizes[k + 1] + self.sizes[k + 1];
        }
        (off, off + self.sizes[l] * self.sizes[l + 1])
    }

    /// Layer l's weight `(in, out)`.
    pub fn weight(&self, l: usize) -> ArrayView2<'_, f64> {
        let (w, b) = self.offsets(l);
        ArrayView2::from_shape((self.sizes[l], self.sizes[l + 1]), &self.params[w..b])
            .expect("weight shape")
    }

    /// Layer l's bias `(out)`.
    pub fn bias(&self, l: usize) -> ArrayView1<'_, f64> {
        let (_, b) = self.offsets(l);
        ArrayView1::from(&self.params[b..b + self.sizes[l + 1]])
    }

    fn has_tanh(&self, l: usize) -> bool {
        l + 1 < self.layers() || self.tanh_last
    }

    /// Forward pass on `rows` inputs `x` `(rows, in)` row-major, keeping the activations.
    pub fn forward(&self, x: &[f64], rows: usize, acts: &mut Activations) {
        let layers = self.layers();
        acts.rows = rows;
        acts.h.resize_with(layers + 1, Vec::new);
        acts.h[0].clear();
        acts.h[0].extend_from_slice(&x[..rows * self.sizes[0]]);
        for l in 0..layers {
            let (wo, bo) = self.offsets(l);
            let n_out = self.sizes[l + 1];
            let (before, after) = acts.h.split_at_mut(l + 1);
            let out = &mut after[0];
            out.resize(rows * n_out, 0.0);
            affine(
                &before[l],
                rows,
                &self.params[wo..bo],
                &self.params[bo..bo + n_out],
                out,
            );
            if self.has_tanh(l) {
                for v in out.iter_mut() {
                    *v = crate::math::tanh(*v);
                }
            }
        }
    }

    /// Forward pass without keeping anything: the output `(rows, out)`.
    pub fn predict(&self, x: &[f64], rows: usize) -> Array2<f64> {
        let mut acts = Activations::default();
        self.forward(x, rows, &mut acts);
        acts.output().to_owned()
    }

    /// The slow reference twin of [`Mlp::forward`]: ndarray's `dot` (a different order of
    /// summation, so equal only up to rounding) and std's `tanh`.
    pub fn forward_reference(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut h = x.to_owned();
        for l in 0..self.layers() {
            let z = h.dot(&self.weight(l)) + self.bias(l); // (rows, out)
            h = if self.has_tanh(l) {
                z.mapv(f64::tanh)
            } else {
                z
            };
        }
        h
    }

    /// Backward pass: given dLoss/dOutput `d_out` `(rows, out)` for the forward pass `acts`,
    /// ADD dLoss/dParams into `grads` (same layout as `params`). When `d_input` is given it
    /// receives dLoss/dInput `(rows, in)` (a shared trunk's heads pass it down).
    pub fn backward(
        &self,
        acts: &Activations,
        d_out: &[f64],
        grads: &mut [f64],
        scratch: &mut BackwardScratch,
        d_input: Option<&mut Vec<f64>>,
    ) {
        let rows = acts.rows;
        let layers = self.layers();
        scratch.dh.clear();
        scratch
            .dh
            .extend_from_slice(&d_out[..rows * self.sizes[layers]]);
        let mut d_input = d_input;
        for l in (0..layers).rev() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let h_out = &acts.h[l + 1];
            let h_in = &acts.h[l];
            // dZ = dH ⊙ tanh'(z) = dH ⊙ (1 − h²) on tanh layers.
            scratch.dz.clear();
            if self.has_tanh(l) {
                scratch.dz.extend(
                    scratch
                        .dh
                        .iter()
                        .zip(h_out)
                        .map(|(&d, &h)| d * (1.0 - h * h)),
                );
            } else {
                scratch.dz.extend_from_slice(&scratch.dh);
            }
            let dz = &scratch.dz;
            // dW += h_inᵀ dZ (in, out); db += Σ_rows dZ.
            {
                let (gw, gb) = grads[wo..bo + n_out].split_at_mut(bo - wo);
                gemm_acc((n_in, n_out, rows), h_in, (1, n_in), dz, (n_out, 1), gw);
                for dzr in dz.chunks_exact(n_out) {
                    for (g, &d) in gb.iter_mut().zip(dzr) {
                        *g += d;
                    }
                }
            }
            // dH_in = dZ Wᵀ (rows, in): needed below layer 0 only for the input gradient.
            if l == 0 && d_input.is_none() {
                break;
            }
            let w = &self.params[wo..bo];
            scratch.dh.clear();
            scratch.dh.resize(rows * n_in, 0.0);
            gemm_acc(
                (rows, n_in, n_out),
                dz,
                (n_out, 1),
                w,
                (1, n_out),
                &mut scratch.dh,
            );
            if l == 0 {
                if let Some(d) = d_input.as_deref_mut() {
                    d.clear();
                    d.extend_from_slice(&scratch.dh);
                }
            }
        }
    }
}

/// Adam (Kingma & Ba 2015) as PyTorch implements it, with its own running powers of the betas.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    /// β₁ᵗ and β₂ᵗ, kept as products so that no `powi` differs between platforms.
    beta1_t: f64,
    beta2_t: f64,
    pub steps: u64,
}

impl Adam {
    /// Adam over `n` parameters with β = (0.9, 0.999) and ε = 1e-5 (the PPO detail).
    pub fn new(n: usize) -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
            m: vec![0.0; n],
            v: vec![0.0; n],
            beta1_t: 1.0,
            beta2_t: 1.0,
            steps: 0,
        }
    }

    /// One step: `params -= lr m̂ / (√v̂ + ε)`, gradients given in the same order as the params.
    pub fn step(&mut self, params: &mut [&mut [f64]], grads: &[&[f64]], lr: f64) {
        self.steps += 1;
        self.beta1_t *= self.beta1;
        self.beta2_t *= self.beta2;
        let (b1, b2) = (self.beta1, self.beta2);
        let bias1 = 1.0 - self.beta1_t;
        let bias2_sqrt = f64::sqrt(1.0 - self.beta2_t);
        // PyTorch: step_size = lr / bias1; denom = sqrt(v) / sqrt(bias2) + eps.
        let step_size = lr / bias1;
        let mut k = 0;
        for (p, g) in params.iter_mut().zip(grads) {
            for (pi, &gi) in p.iter_mut().zip(g.iter()) {
                let m = &mut self.m[k];
                let v = &mut self.v[k];
                *m = b1 * *m + (1.0 - b1) * gi;
                *v = b2 * *v + (1.0 - b2) * gi * gi;
                let denom = f64::sqrt(*v) / bias2_sqrt + self.eps;
                *pi -= step_size * *m / denom;
                k += 1;
            }
        }
    }
}

/// Scales all gradients together so that their global L2 norm is at most `max_norm`
/// (PyTorch's `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Returns
/// the norm before clipping.
pub fn clip_grad_norm(grads: &mut [&mut [f64]], max_norm: f64) -> f64 {
    let sq: f64 = grads
        .iter()
        .map(|g| g.iter().map(|x| x * x).sum::<f64>())
        .sum();
    let norm = f64::sqrt(sq);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            for x in g.iter_mut() {
                *x *= coef;
            }
        }
    }
    norm
}
