//! The diffusion core (`crate::diffusion`): the f32 MLP's hand-written gradient against
//! finite differences of its f64 reference twin, Adam against hand-derived steps, the time
//! embedding at hand-derived points, and the counter-based noise's hash and moments.

use mlplay::diffusion::mlp::{self, Adam, Mlp};
use mlplay::diffusion::noise;
use ndarray::{Array2, ArrayView2};

/// A batch of B inputs (points in [-2, 2]^2, times spread over [0, 1]) and targets.
fn batch(b: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = mlplay::rng::Rng::new(seed);
    let pts = Array2::from_shape_simple_fn((b, 2), || rng.uniform_range(-2.0, 2.0) as f32);
    let s: Vec<f32> = (0..b).map(|i| (i as f32 + 0.5) / b as f32).collect();
    let y = Array2::from_shape_simple_fn((b, 2), || rng.normal() as f32);
    (mlp::input_rows(pts.view(), &s), y)
}

/// L = 1/(2B) sum (out - y)^2 in f64 through the reference twin.
fn loss_f64(hidden: usize, p: &[f64], x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> f64 {
    let out = mlp::forward_f64(hidden, p, x);
    (&out - &y).mapv(|d| d * d).sum() / (2.0 * x.nrows() as f64)
}

/// Every parameter's analytic gradient (f32) against a central difference of the f64 loss.
/// In f64 a step of 1e-5 leaves a truncation error ~h^2 |L'''| ~ 1e-10 and a rounding error
/// ~1e-16 / 1e-5 = 1e-11, so the difference is the true gradient to ~1e-9. The f32 gradient
/// carries rounding from sums of at most 3H + 18 terms per entry (relative 6e-8 each, i.e.
/// a few 1e-6 of the largest terms); the tolerance 1e-4 max|g| + 1e-3 |g| is 30x that and
/// still 1000x below the size of the typical gradient entry, so a wrong term fails.
fn check_gradient(hidden: usize, b: usize, seed: u64, indices: &[usize]) {
    let net = Mlp::init(hidden, seed);
    let (x, y) = batch(b, seed + 1);
    let (loss, grad) = net.loss_and_grad(x.view(), y.view());
    let x64 = x.mapv(|v| v as f64);
    let y64 = y.mapv(|v| v as f64);
    let p: Vec<f64> = net.params.iter().map(|&v| v as f64).collect();
    let l64 = loss_f64(hidden, &p, x64.view(), y64.view());
    assert!(
        (loss as f64 - l64).abs() <= 1e-5 * l64,
        "loss {loss} vs f64 {l64}"
    );
    let h = 1e-5;
    let mut fd = Vec::new();
    for &j in indices {
        let mut pp = p.clone();
        pp[j] += h;
        let lp = loss_f64(hidden, &pp, x64.view(), y64.view());
        pp[j] -= 2.0 * h;
        let lm = loss_f64(hidden, &pp, x64.view(), y64.view());
        fd.push((lp - lm) / (2.0 * h));
    }
    let gmax = fd.iter().fold(0f64, |a, &g| a.max(g.abs()));
    assert!(gmax > 1e-3, "the gradient is not trivially zero ({gmax})");
    for (k, &j) in indices.iter().enumerate() {
        let err = (grad[j] as f64 - fd[k]).abs();
        assert!(
            err <= 1e-4 * gmax + 1e-3 * fd[k].abs(),
            "param {j}: analytic {} vs finite difference {} (max {gmax})",
            grad[j],
            fd[k]
        );
    }
}

#[test]
fn gradient_matches_finite_differences_for_every_parameter() {
    let hidden = 8;
    let all: Vec<usize> = (0..mlp::n_params(hidden)).collect();
    check_gradient(hidden, 5, 11, &all);
}

#[test]
fn gradient_matches_finite_differences_at_the_default_width() {
    // Every 37th parameter of the 9666 (all four layers, weights and biases), batch 16.
    let hidden = mlp::DEFAULT_HIDDEN;
    let idx: Vec<usize> = (0..mlp::n_params(hidden)).step_by(37).collect();
    check_gradient(hidden, 16, 3, &idx);
    // The last bias of the output layer (index n - 1) and the first weight too.
    check_gradient(hidden, 16, 4, &[0, mlp::n_params(hidden) - 1]);
}

#[test]
fn forward_equals_the_f64_reference_twin() {
    let net = Mlp::init(32, 5);
    let (x, _) = batch(64, 6);
    let fast = net.forward(x.view());
    let slow = net.forward_f64(x.mapv(|v| v as f64).view());
    assert_eq!(fast.dim(), (64, 2));
    for (a, b) in fast.iter().zip(slow.iter()) {
        // Outputs are O(1); f32 rounding over 18 + 2*32 + 32 terms stays below 1e-5.
        assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn layout_and_initialisation() {
    // 18H + H + 2 (H^2 + H) + 2H + 2 = 1152 + 64 + 8320 + 130 at H = 64.
    assert_eq!(mlp::n_params(64), 9666);
    assert_eq!(mlp::n_params(8), 18 * 8 + 8 + 2 * (64 + 8) + 16 + 2);
    let net = Mlp::init(64, 1);
    assert_eq!(net.params.len(), 9666);
    assert_eq!(net.offsets(0), (0, 1152));
    assert_eq!(net.offsets(1), (1216, 1216 + 4096));
    assert_eq!(net.offsets(3), (9666 - 130, 9666 - 2));
    // PyTorch's nn.Linear bounds 1/sqrt(in): 1/sqrt(18) for layer 0, 1/8 for the others.
    let b0 = 1.0 / 18f32.sqrt();
    assert!(net.params[..1216].iter().all(|v| v.abs() <= b0));
    assert!(net.params[..1216].iter().any(|v| v.abs() > 0.9 * b0));
    assert!(net.params[1216..].iter().all(|v| v.abs() <= 0.125));
    assert_eq!(net, Mlp::init(64, 1));
    assert_ne!(net, Mlp::init(64, 2));
    assert!(Mlp::from_params(64, vec![0.0; 9665]).is_err());
}

#[test]
fn adam_two_steps_by_hand() {
    // theta = 1, lr = 0.1, gradients 0.5 then -1.
    // n = 1: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25:
    //        theta = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002.
    // n = 2: m = 0.9 * 0.05 - 0.1 = -0.055, v = 0.999 * 0.00025 + 0.001 = 0.00124975,
    //        m_hat = -0.055 / 0.19 = -0.28947368, v_hat = 0.00124975 / 0.001999 = 0.62518759,
    //        theta = 0.9 + 0.1 * 0.28947368 / 0.79068805 = 0.93661035.
    let mut p = vec![1.0f32, -2.0];
    let mut adam = Adam::new(2, 0.1);
    adam.step(&mut p, &[0.5, 0.0]);
    assert!((p[0] - 0.9).abs() < 1e-6, "{}", p[0]);
    assert_eq!(p[1], -2.0, "a zero gradient moves nothing");
    assert_eq!(adam.n, 1);
    adam.step(&mut p, &[-1.0, 0.0]);
    assert!((adam.m[0] + 0.055).abs() < 1e-7);
    // f32 holds 0.999 as 0.99899995, so 1 - b2 = 0.00100005 (relative 5e-5 off 0.001).
    assert!(
        (adam.v[0] - 0.001_249_75).abs() < 1e-4 * 0.001_249_75,
        "{}",
        adam.v[0]
    );
    assert!((p[0] - 0.936_610_35).abs() < 1e-6, "{}", p[0]);
}

#[test]
fn time_embedding_at_hand_derived_points() {
    // u_k = fract(s 2^k / 4). s = 0: every u = 0 -> sin 0, cos 1.
    let e0 = mlp::time_embedding(0.0);
    for k in 0..8 {
        assert_eq!((e0[k], e0[8 + k]), (0.0, 1.0));
    }
    // s = 1: u = 1/4, 1/2, then 0 -> (1, 0), (0, -1), (0, 1) ...
    let e1 = mlp::time_embedding(1.0);
    let want = [(1.0, 0.0), (0.0, -1.0), (0.0, 1.0), (0.0, 1.0)];
    for (k, &(s, c)) in want.iter().enumerate() {
        assert!(
            (e1[k] - s).abs() < 1e-7 && (e1[8 + k] - c).abs() < 1e-7,
            "k {k}"
        );
    }
    // s = 1/2: u = 1/8 -> (sqrt 2/2, sqrt 2/2); 1/4 -> (1, 0); 1/2 -> (0, -1); 0 ...
    let e = mlp::time_embedding(0.5);
    let r = std::f32::consts::FRAC_1_SQRT_2;
    assert!((e[0] - r).abs() < 1e-7 && (e[8] - r).abs() < 1e-7);
    assert!((e[1] - 1.0).abs() < 1e-7 && (e[2]).abs() < 1e-7 && (e[10] + 1.0).abs() < 1e-7);
    assert!((e[3]).abs() < 1e-7 && (e[11] - 1.0).abs() < 1e-7);
    // The lowest pair is monotone over [0, 1]: the noisiest step differs from the cleanest.
    assert!(mlp::time_embedding(0.3)[0] < mlp::time_embedding(0.6)[0]);

    let pts = Array2::from_shape_vec((2, 2), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let rows = mlp::input_rows(pts.view(), &[0.0, 0.5]);
    assert_eq!(rows.dim(), (2, 18));
    assert_eq!(rows.row(1).as_slice().unwrap()[0..2], [3.0, 4.0]);
    assert_eq!(rows.row(1).as_slice().unwrap()[2..], e[..]);
    assert_eq!(rows.row(0).as_slice().unwrap()[2..], e0[..]);
}

#[test]
fn training_steps_reduce_the_loss() {
    // Regress a fixed batch: 200 Adam steps at lr 1e-2 must cut the loss by half at least
    // (a sign error in any layer's gradient makes it grow instead).
    let mut net = Mlp::init(32, 9);
    let (x, y) = batch(64, 10);
    let mut adam = Adam::new(net.params.len(), 1e-2);
    let (l0, _) = net.loss_and_grad(x.view(), y.view());
    for _ in 0..200 {
        let (_, g) = net.loss_and_grad(x.view(), y.view());
        adam.step(&mut net.params, &g);
    }
    let (l1, _) = net.loss_and_grad(x.view(), y.view());
    assert!(l1 < 0.5 * l0, "loss {l0} -> {l1}");
}

#[test]
fn pcg_hash_by_hand() {
    // pcg(0): state = 2891336453 = 0xAC564B05, state >> 28 = 10, shift 14:
    // (0xAC564B05 >> 14) ^ 0xAC564B05 = 0xAC54FA5C; * 277803737 mod 2^32 = word,
    // word >> 22 ^ word = 129708002 (checked against a Python transcription of the paper's C).
    assert_eq!(noise::pcg(0), 129_708_002);
    assert_eq!(noise::pcg(1), 2_831_084_092);
    assert_eq!(noise::pcg(12345), 4_099_845_390);
    // The uniform is (h >> 8) 2^-24 + 2^-25: inside (0, 1].
    for i in 0..1000 {
        let u = noise::uniform(7, 3, i, 0);
        assert!(u > 0.0 && u <= 1.0);
        let h = noise::pcg(noise::pcg(noise::pcg(7) ^ 3) ^ (2 * i));
        assert_eq!(u, (h >> 8) as f32 / 16_777_216.0 + 1.0 / 33_554_432.0);
    }
}

#[test]
fn noise_moments_within_sampling_error() {
    // n = 100k particles, two coordinates each. Standard errors: of a mean 1/sqrt(n) =
    // 3.2e-3; of a variance sqrt(2/n) = 4.5e-3; of E[z^4] sqrt((105 - 9)/n) = 0.031; of a
    // correlation 1/sqrt(n) = 3.2e-3. Tolerances are 5 standard errors (a false failure
    // has probability below 1e-6 per check; a wrong Box-Muller or a shared stream is off
    // by far more).
    let n = 100_000usize;
    let z = noise::normals(42, 0, n);
    let z2 = noise::normals(42, 1, n);
    let zt = noise::normals(42, noise::INITIAL_STEP, n);
    let nf = n as f64;
    for c in 0..2 {
        let xs: Vec<f64> = (0..n).map(|i| z[2 * i + c] as f64).collect();
        let mean = xs.iter().sum::<f64>() / nf;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / nf;
        let m4 = xs.iter().map(|x| x.powi(4)).sum::<f64>() / nf;
        assert!(mean.abs() < 5.0 * 3.2e-3, "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * 4.5e-3, "variance {var}");
        assert!((m4 - 3.0).abs() < 5.0 * 0.031, "fourth moment {m4}");
    }
    let corr = |a: &[f32], ca: usize, b: &[f32], cb: usize| {
        (0..n)
            .map(|i| a[2 * i + ca] as f64 * b[2 * i + cb] as f64)
            .sum::<f64>()
            / nf
    };
    assert!(corr(&z, 0, &z, 1).abs() < 5.0 * 3.2e-3, "z0 with z1");
    assert!(
        corr(&z, 0, &z2, 0).abs() < 5.0 * 3.2e-3,
        "step 0 with step 1"
    );
    assert!(
        corr(&z, 1, &zt, 1).abs() < 5.0 * 3.2e-3,
        "step 0 with the initial noise"
    );
    // Neighbouring particles are independent too (2i + c must not collide).
    let shifted: Vec<f32> = z[2..].to_vec();
    let c_next = (0..n - 1)
        .map(|i| z[2 * i] as f64 * shifted[2 * i] as f64)
        .sum::<f64>()
        / nf;
    assert!(c_next.abs() < 5.0 * 3.2e-3, "particle i with i + 1");
    // Pure function of (seed, step, i).
    assert_eq!(noise::normal2(42, 1, 777), [z2[1554], z2[1555]]);
    assert_ne!(noise::normals(43, 0, 4), z[..8]);
}
