//! The denoiser of `<ml-diffusion>` and `<ml-flow-matching>`: an f32 MLP that reads a point
//! x in R^2 and a sinusoidal embedding of the time s in [0, 1], and predicts the noise
//! eps_theta(x_t, t) (DDPM, DDIM) or the velocity v_theta(x_t, t) (flow matching).
//!
//! ```text
//! input   r = [x_0, x_1, e(s)_0 .. e(s)_15]                                   (B, 18)
//! e(s)_k = sin(2 pi u_k),  e(s)_{8+k} = cos(2 pi u_k),  u_k = fract(s 2^k F0),  k = 0..7
//! h_1 = SiLU(r W_0^T + b_0),  h_2 = SiLU(h_1 W_1^T + b_1),  h_3 = SiLU(h_2 W_2^T + b_2)   (B, H)
//! out = h_3 W_3^T + b_3                                                        (B, 2)
//! L = 1/(2B) sum_{b,c} (out[b,c] - y[b,c])^2          SiLU(z) = z sigmoid(z)
//! backward: dOut = (out - y)/B;  dW_l = dZ_l^T h_l,  db_l = sum_rows dZ_l,  dH_l = dZ_l W_l,
//!           dZ_{l-1} = dH_l * sigmoid(z) (1 + z (1 - sigmoid(z)))
//! Adam (Kingma & Ba 2015): m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2,
//!           theta <- theta - lr (m / (1 - b1^n)) / (sqrt(v / (1 - b2^n)) + eps)
//! ```
//!
//! `F0 = 1/4` (the spec's default is 1; it lets the author of this file choose): with F0 = 1
//! the lowest frequency completes a whole period over [0, 1], so e(0) = e(1) and the noisiest
//! step looks like the cleanest one to the network. With 1/4 the lowest pair is monotone over
//! [0, 1] and the highest (k = 7) makes 32 periods, about 0.2 rad between neighbouring steps at
//! T = 1000.
//!
//! Layout, shared with the WGSL kernels (`gpu/diffusion.rs`): all parameters in one flat
//! `Vec<f32>`, layer l = 0..3 in order, W_l (out x in, row-major, `W[o * in + i]`) then b_l.
//! Initialisation is PyTorch's `nn.Linear` default, W and b ~ U(-1/sqrt(in), 1/sqrt(in)),
//! drawn from [`crate::rng::Rng`] in that flat order, so a PyTorch peer can load the same start.
//!
//! The fast path is plain loops in a fixed order (no fused multiply-add) with `exp`, `sin`,
//! `cos` from [`crate::math`] (in f64, rounded to f32), so the CLI and the browser give the
//! same bits. [`Mlp::forward_f64`] is the slow reference twin (ndarray `dot` in f64); the
//! tests check the hand-written gradient against finite differences of it.

use ndarray::{Array2, ArrayView2};

use crate::rng::Rng;

/// Width of the input: the point (2) and the time embedding (16).
pub const INPUT: usize = 18;
/// Width of the output: eps or v in R^2.
pub const OUTPUT: usize = 2;
/// Number of frequencies of the time embedding (sin and cos of each: 16 features).
pub const FREQS: usize = 8;
/// Base frequency F0 of the time embedding (cycles over s in [0, 1] of the lowest pair).
pub const F0: f32 = 0.25;
/// Default hidden width H (the spec allows up to 128).
pub const DEFAULT_HIDDEN: usize = 64;

/// Adam's beta1.
pub const ADAM_BETA1: f32 = 0.9;
/// Adam's beta2.
pub const ADAM_BETA2: f32 = 0.999;
/// Adam's epsilon.
pub const ADAM_EPS: f32 = 1e-8;

/// The 18 -> H -> H -> H -> 2 SiLU MLP, all parameters in one flat vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Hidden width H.
    pub hidden: usize,
    /// W_0, b_0, W_1, b_1, W_2, b_2, W_3, b_3; W_l is (out, in) row-major.
    pub params: Vec<f32>,
}

/// Layer widths, input first: `[18, H, H, H, 2]`.
pub fn sizes(hidden: usize) -> [usize; 5] {
    [INPUT, hidden, hidden, hidden, OUTPUT]
}

/// Number of parameters of the MLP of width `hidden`.
pub fn n_params(hidden: usize) -> usize {
    let s = sizes(hidden);
    (0..4).map(|l| s[l + 1] * s[l] + s[l + 1]).sum()
}

/// The time embedding e(s) in R^16 (see the module docs; the kernels receive it from here).
pub fn time_embedding(s: f32) -> [f32; 16] {
    let mut e = [0f32; 16];
    let mut scale = F0;
    for k in 0..FREQS {
        let a = s * scale; // exact: scale is a power of two
        let u = a - a.floor();
        let (sin, cos) = crate::math::sin_cos(std::f64::consts::TAU * u as f64);
        e[k] = sin as f32;
        e[FREQS + k] = cos as f32;
        scale *= 2.0;
    }
    e
}

/// The network's input rows `[x_0, x_1, e(s_b)]` for points `(B, 2)` and one time per row.
pub fn input_rows(points: ArrayView2<'_, f32>, s_per_row: &[f32]) -> Array2<f32> {
    assert_eq!(points.ncols(), 2, "points are (B, 2)");
    assert_eq!(points.nrows(), s_per_row.len(), "one time per row");
    let mut r = Array2::<f32>::zeros((points.nrows(), INPUT)); // (B, 18)
    for (b, mut row) in r.rows_mut().into_iter().enumerate() {
        row[0] = points[[b, 0]];
        row[1] = points[[b, 1]];
        for (k, e) in time_embedding(s_per_row[b]).into_iter().enumerate() {
            row[2 + k] = e;
        }
    }
    r
}

/// sigmoid(z) in f32 through [`crate::math::exp`] (same bits natively and in wasm).
pub fn sigmoid(z: f32) -> f32 {
    (1.0 / (1.0 + crate::math::exp(-(z as f64)))) as f32
}

/// Dot product of two equal-length slices with four running sums (fixed order, no FMA).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n4 = a.len() / 4 * 4;
    let mut s = [0f32; 4];
    for j in (0..n4).step_by(4) {
        s[0] += a[j] * b[j];
        s[1] += a[j + 1] * b[j + 1];
        s[2] += a[j + 2] * b[j + 2];
        s[3] += a[j + 3] * b[j + 3];
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for j in n4..a.len() {
        t += a[j] * b[j];
    }
    t
}

/// What one forward pass keeps for the backward pass.
#[derive(Clone, Debug, Default)]
struct Cache {
    rows: usize,
    /// `h[l]` is the input of layer l, `(rows, in_l)` row-major; `h[4]` is the output.
    h: Vec<Vec<f32>>,
    /// `sig[l]` = sigmoid of layer l's pre-activation, for the hidden layers l = 0..2.
    sig: Vec<Vec<f32>>,
    /// `z[l]` = layer l's pre-activation, for the hidden layers l = 0..2.
    z: Vec<Vec<f32>>,
}

impl Mlp {
    /// PyTorch's `nn.Linear` initialisation, U(-1/sqrt(in), 1/sqrt(in)) for W and b, drawn
    /// in the flat order from `Rng::new(seed)`.
    pub fn init(hidden: usize, seed: u64) -> Self {
        assert!(hidden > 0, "hidden width must be positive");
        let mut rng = Rng::new(seed);
        let s = sizes(hidden);
        let mut params = Vec::with_capacity(n_params(hidden));
        for l in 0..4 {
            let bound = 1.0 / (s[l] as f64).sqrt();
            for _ in 0..s[l + 1] * s[l] + s[l + 1] {
                params.push(rng.uniform_range(-bound, bound) as f32);
            }
        }
        Mlp { hidden, params }
    }

    /// A network of width `hidden` with the given flat parameters (checked for length).
    pub fn from_params(hidden: usize, params: Vec<f32>) -> Result<Self, String> {
        if hidden == 0 || params.len() != n_params(hidden) {
            return Err(format!(
                "{} parameters do not fit an MLP of width {hidden}",
                params.len()
            ));
        }
        Ok(Mlp { hidden, params })
    }

    /// Offsets of W_l and b_l in the flat vector.
    pub fn offsets(&self, l: usize) -> (usize, usize) {
        let s = sizes(self.hidden);
        let w: usize = (0..l).map(|k| s[k + 1] * s[k] + s[k + 1]).sum();
        (w, w + s[l + 1] * s[l])
    }

    fn forward_cached(&self, x: ArrayView2<'_, f32>, cache: &mut Cache) {
        assert_eq!(x.ncols(), INPUT, "inputs are (B, 18)");
        let rows = x.nrows();
        let s = sizes(self.hidden);
        cache.rows = rows;
        cache.h.clear();
        cache.sig.clear();
        cache.z.clear();
        cache.h.push(x.iter().copied().collect()); // (B, 18), row-major
        for l in 0..4 {
            let (ni, no) = (s[l], s[l + 1]);
            let (wo, bo) = self.offsets(l);
            let w = &self.params[wo..bo]; // (no, ni)
            let bias = &self.params[bo..bo + no]; // (no)
            let hin = &cache.h[l]; // (B, ni)
            let mut z = vec![0f32; rows * no]; // (B, no)
            for b in 0..rows {
                let xr = &hin[b * ni..(b + 1) * ni];
                for o in 0..no {
                    z[b * no + o] = bias[o] + dot(&w[o * ni..(o + 1) * ni], xr);
                }
            }
            if l < 3 {
                let sig: Vec<f32> = z.iter().map(|&v| sigmoid(v)).collect();
                let h: Vec<f32> = z.iter().zip(&sig).map(|(&v, &sg)| v * sg).collect();
                cache.sig.push(sig);
                cache.z.push(z);
                cache.h.push(h);
            } else {
                cache.h.push(z);
            }
        }
    }

    /// eps_theta or v_theta for each input row: `(B, 18) -> (B, 2)`.
    pub fn forward(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut cache = Cache::default();
        self.forward_cached(x, &mut cache);
        let out = cache.h.pop().expect("a forward pass ran");
        Array2::from_shape_vec((x.nrows(), OUTPUT), out).expect("(B, 2)")
    }

    /// The loss L = 1/(2B) sum (out - y)^2 and its exact gradient with respect to the flat
    /// parameters (same layout), by the hand-written backward pass of the module docs.
    pub fn loss_and_grad(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> (f32, Vec<f32>) {
        assert_eq!(y.dim(), (x.nrows(), OUTPUT), "targets are (B, 2)");
        let mut cache = Cache::default();
        self.forward_cached(x, &mut cache);
        let rows = cache.rows;
        let inv_b = 1.0 / rows.max(1) as f32;
        let out = &cache.h[4]; // (B, 2)
        let mut loss = 0f32;
        let mut dz = vec![0f32; rows * OUTPUT]; // dL/dout, (B, 2)
        for b in 0..rows {
            for c in 0..OUTPUT {
                let d = out[b * OUTPUT + c] - y[[b, c]];
                loss += d * d;
                dz[b * OUTPUT + c] = d * inv_b;
            }
        }
        loss *= 0.5 * inv_b;

        let s = sizes(self.hidden);
        let mut grad = vec![0f32; self.params.len()];
        for l in (0..4).rev() {
            let (ni, no) = (s[l], s[l + 1]);
            let (wo, bo) = self.offsets(l);
            let hin = &cache.h[l]; // (B, ni)
            {
                let (gw, gb) = grad[wo..bo + no].split_at_mut(bo - wo); // (no, ni), (no)
                for b in 0..rows {
                    let xr = &hin[b * ni..(b + 1) * ni];
                    for o in 0..no {
                        let d = dz[b * no + o];
                        gb[o] += d;
                        for (g, &xv) in gw[o * ni..(o + 1) * ni].iter_mut().zip(xr) {
                            *g += d * xv;
                        }
                    }
                }
            }
            if l == 0 {
                break;
            }
            // dH_l = dZ_l W_l, then through SiLU of layer l - 1.
            let w = &self.params[wo..bo]; // (no, ni)
            let mut dh = vec![0f32; rows * ni]; // (B, ni)
            for b in 0..rows {
                let dr = &mut dh[b * ni..(b + 1) * ni];
                for o in 0..no {
                    let d = dz[b * no + o];
                    for (h, &wv) in dr.iter_mut().zip(&w[o * ni..(o + 1) * ni]) {
                        *h += d * wv;
                    }
                }
            }
            let (z, sig) = (&cache.z[l - 1], &cache.sig[l - 1]);
            for ((h, &zv), &sg) in dh.iter_mut().zip(z).zip(sig) {
                *h *= sg * (1.0 + zv * (1.0 - sg));
            }
            dz = dh;
        }
        (loss, grad)
    }

    /// The slow reference twin: the same network in f64 with ndarray's `dot`.
    pub fn forward_f64(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let p: Vec<f64> = self.params.iter().map(|&v| v as f64).collect();
        forward_f64(self.hidden, &p, x)
    }
}

/// The reference forward pass in f64 for any flat parameters of the width-`hidden` layout
/// (the finite-difference checks perturb these in f64).
pub fn forward_f64(hidden: usize, params: &[f64], x: ArrayView2<'_, f64>) -> Array2<f64> {
    let s = sizes(hidden);
    assert_eq!(
        params.len(),
        n_params(hidden),
        "flat parameters of width {hidden}"
    );
    let mut h = x.to_owned(); // (B, 18)
    let mut off = 0;
    for l in 0..4 {
        let (ni, no) = (s[l], s[l + 1]);
        let w = ArrayView2::from_shape((no, ni), &params[off..off + no * ni]).expect("W_l"); // (out, in)
        let b = ndarray::ArrayView1::from(&params[off + no * ni..off + no * ni + no]); // (out)
        off += no * ni + no;
        let mut z = h.dot(&w.t()) + b; // (B, out)
        if l < 3 {
            z.mapv_inplace(|v| v / (1.0 + crate::math::exp(-v)));
        }
        h = z;
    }
    h
}

/// Adam over a flat parameter vector (same layout as the parameters).
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// First-moment estimate m.
    pub m: Vec<f32>,
    /// Second-moment estimate v.
    pub v: Vec<f32>,
    /// Steps taken so far (the next step is n + 1).
    pub n: u32,
    /// Learning rate.
    pub lr: f32,
}

impl Adam {
    /// Zero moments for `n_params` parameters.
    pub fn new(n_params: usize, lr: f32) -> Self {
        Adam {
            m: vec![0.0; n_params],
            v: vec![0.0; n_params],
            n: 0,
            lr,
        }
    }

    /// One Adam step, in f32 in exactly this order:
    /// `m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*(g*g); p -= lr * (m / c1) / (sqrt(v / c2) + eps)`
    /// with `c1 = 1 - b1^n`, `c2 = 1 - b2^n` (powers in f64, rounded to f32).
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        assert_eq!(
            params.len(),
            self.m.len(),
            "Adam state matches the parameters"
        );
        assert_eq!(grad.len(), self.m.len(), "gradient matches the parameters");
        self.n += 1;
        let c1 = (1.0 - crate::math::pow(ADAM_BETA1 as f64, self.n as f64)) as f32;
        let c2 = (1.0 - crate::math::pow(ADAM_BETA2 as f64, self.n as f64)) as f32;
        let (b1, b2) = (ADAM_BETA1, ADAM_BETA2);
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * (g * g);
            *p -= self.lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
        }
    }
}
