//! The MLP of `<ml-cartpole-ppo>`: fast kernels against the slow twin, the hand-written
//! backward pass against central finite differences, orthogonal init, Adam and clipping.

use mlplay::nn::{
    clip_grad_norm, gemm_acc, normal, orthogonal, Activations, Adam, BackwardScratch, Mlp,
};
use mlplay::rng::Rng;
use ndarray::{Array2, ArrayView2};

fn random_input(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..rows * cols)
        .map(|_| rng.uniform_range(-1.5, 1.5))
        .collect()
}

/// A network with random (not orthogonal-looking) biases too, so every term is exercised.
fn random_mlp(sizes: &[usize], tanh_last: bool, seed: u64) -> Mlp {
    let mut rng = Rng::new(seed);
    let mut m = Mlp::new(sizes, tanh_last, 1.3, 0.7, &mut rng);
    for p in m.params.iter_mut() {
        *p += 0.1 * normal(&mut rng);
    }
    m
}

/// The blocked kernel adds each C element's terms in the order k = 0, 1, ...: bit for bit
/// what the plain triple loop does, for shapes that do and do not divide into 4 x 4 tiles
/// and for all three layouts the MLP uses.
#[test]
fn gemm_is_bit_identical_to_the_plain_loop() {
    for &(m, n, k) in &[
        (4, 4, 4),
        (7, 5, 3),
        (1, 9, 64),
        (33, 17, 6),
        (64, 2, 32),
        (5, 1, 4),
    ] {
        let a = random_input(m, k, 1);
        let b = random_input(k, n, 2);
        let c0 = random_input(m, n, 3);
        // Layouts: A (m,k) row-major or its transpose stored (k,m); B likewise.
        for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
            let (as_m, as_k) = if a_t { (1, m) } else { (k, 1) };
            let (bs_k, bs_n) = if b_t { (1, k) } else { (n, 1) };
            let mut fast = c0.clone();
            gemm_acc((m, n, k), &a, (as_m, as_k), &b, (bs_k, bs_n), &mut fast);
            let mut slow = c0.clone();
            for i in 0..m {
                for j in 0..n {
                    let mut acc = slow[i * n + j];
                    for kk in 0..k {
                        acc += a[i * as_m + kk * as_k] * b[kk * bs_k + j * bs_n];
                    }
                    slow[i * n + j] = acc;
                }
            }
            assert_eq!(fast, slow, "m={m} n={n} k={k} a_t={a_t} b_t={b_t}");
        }
    }
}

/// The fast forward pass against the slow twin (ndarray's `dot`, std's `tanh`): equal up to
/// rounding.
#[test]
fn forward_matches_the_ndarray_reference() {
    for (sizes, tanh_last) in [
        (vec![4, 64, 64, 2], false),
        (vec![4, 32, 32, 1], false),
        (vec![4, 13, 7], true),
        (vec![3, 5], false),
    ] {
        let net = random_mlp(&sizes, tanh_last, 7);
        for rows in [1, 4, 9, 64] {
            let x = random_input(rows, sizes[0], 8);
            let fast = net.predict(&x, rows);
            let slow = net.forward_reference(ArrayView2::from_shape((rows, sizes[0]), &x).unwrap());
            assert_eq!(fast.dim(), slow.dim());
            for (a, b) in fast.iter().zip(slow.iter()) {
                assert!((a - b).abs() < 1e-12, "{sizes:?} rows={rows}: {a} vs {b}");
            }
        }
    }
}

/// dL/dθ and dL/dx of L = Σ c ⊙ output against central differences, for a random c.
#[test]
fn backward_matches_finite_differences() {
    let h = 1e-6;
    for (sizes, tanh_last) in [
        (vec![4, 8, 8, 2], false),
        (vec![4, 6, 5], true),
        (vec![3, 4, 1], false),
    ] {
        let net = random_mlp(&sizes, tanh_last, 11);
        let rows = 5;
        let x = random_input(rows, sizes[0], 12);
        let c = random_input(rows, *sizes.last().unwrap(), 13);
        let loss = |net: &Mlp, x: &[f64]| -> f64 {
            net.predict(x, rows)
                .iter()
                .zip(&c)
                .map(|(o, c)| o * c)
                .sum()
        };
        let mut acts = Activations::default();
        net.forward(&x, rows, &mut acts);
        let mut grads = vec![0.0; net.n_params()];
        let mut dx = Vec::new();
        net.backward(
            &acts,
            &c,
            &mut grads,
            &mut BackwardScratch::default(),
            Some(&mut dx),
        );
        for (i, &g) in grads.iter().enumerate() {
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.params[i] += h;
            minus.params[i] -= h;
            let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            assert!(
                (fd - g).abs() < 1e-7 * (1.0 + fd.abs()),
                "{sizes:?} param {i}: backward {g} vs fd {fd}"
            );
        }
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss(&net, &xp) - loss(&net, &xm)) / (2.0 * h);
            assert!(
                (fd - dx[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                "input {i}: {} vs {fd}",
                dx[i]
            );
        }
        // The backward pass ADDS: a second call doubles the gradients.
        let first = grads.clone();
        net.backward(&acts, &c, &mut grads, &mut BackwardScratch::default(), None);
        for (g, f) in grads.iter().zip(&first) {
            assert!((g - 2.0 * f).abs() < 1e-12 * (1.0 + f.abs()));
        }
    }
}

/// PyTorch's orthogonal_: a (rows, cols) matrix whose rows (rows <= cols) or columns
/// (rows >= cols) are orthonormal, times the gain.
#[test]
fn orthogonal_init_is_orthogonal_with_the_gain() {
    let mut rng = Rng::new(3);
    for &(rows, cols, gain) in &[
        (64, 64, 2f64.sqrt()),
        (2, 64, 0.01),
        (64, 4, 1.0),
        (1, 64, 1.0),
    ] {
        let w = orthogonal(rows, cols, gain, &mut rng);
        assert_eq!(w.dim(), (rows, cols));
        let gram: Array2<f64> = if rows <= cols {
            w.dot(&w.t())
        } else {
            w.t().dot(&w)
        };
        let n = rows.min(cols);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { gain * gain } else { 0.0 };
                assert!(
                    (gram[[i, j]] - want).abs() < 1e-12 * (1.0 + gain * gain),
                    "({i},{j})"
                );
            }
        }
    }
    // The networks: hidden layers orthogonal with gain √2, zero biases.
    let net = Mlp::new(&[4, 64, 64, 2], false, 2f64.sqrt(), 0.01, &mut rng);
    let w1 = net.weight(1); // (in 64, out 64)
    let g = w1.t().dot(&w1);
    assert!((g[[5, 5]] - 2.0).abs() < 1e-12 && g[[5, 6]].abs() < 1e-12);
    assert!(net
        .bias(0)
        .iter()
        .chain(net.bias(2).iter())
        .all(|&b| b == 0.0));
    // Policy head gain 0.01: its (64, 2) weight has orthogonal columns of norm 0.01.
    let head = net.weight(2);
    let hg = head.t().dot(&head);
    assert!((hg[[0, 0]] - 1e-4).abs() < 1e-15 && hg[[0, 1]].abs() < 1e-15);
}

/// Adam's first step is lr · g / (|g| + ε) in every coordinate (m̂ = g, v̂ = g² after bias
/// correction); the second, with g₁ and g₂, is lr · m̂ / (√v̂ + ε) with
/// m̂ = (0.09 g₁ + 0.1 g₂) / 0.19 and v̂ = (0.000999 g₁² + 0.001 g₂²) / 0.001999.
#[test]
fn adam_steps_by_hand() {
    let mut adam = Adam::new(3);
    let mut p = vec![1.0, -2.0, 0.5];
    let g1 = [0.3, -4.0, 1e-7];
    let lr = 0.01;
    adam.step(&mut [&mut p], &[&g1], lr);
    let want1: Vec<f64> = [1.0, -2.0, 0.5]
        .iter()
        .zip(&g1)
        .map(|(p, g)| p - lr * g / (g.abs() + 1e-5))
        .collect();
    for (a, b) in p.iter().zip(&want1) {
        assert!((a - b).abs() < 1e-15, "{a} vs {b}");
    }
    // A tiny gradient moves its parameter much less than lr: ε = 1e-5 dominates.
    assert!((p[2] - 0.5).abs() < 0.01 * lr);
    let g2 = [-0.1, 2.0, 0.0];
    adam.step(&mut [&mut p], &[&g2], lr);
    for i in 0..3 {
        let m_hat = (0.09 * g1[i] + 0.1 * g2[i]) / 0.19;
        let v_hat = (0.000999 * g1[i] * g1[i] + 0.001 * g2[i] * g2[i]) / 0.001999;
        let want = want1[i] - lr * m_hat / (v_hat.sqrt() + 1e-5);
        assert!(
            (p[i] - want).abs() < 1e-12,
            "coordinate {i}: {} vs {want}",
            p[i]
        );
    }
    assert_eq!(adam.steps, 2);
}

#[test]
fn adam_minimises_a_quadratic() {
    // f(p) = Σ (p_i − t_i)², gradient 2 (p − t).
    let target = [3.0, -1.0, 0.25];
    let mut p = vec![0.0; 3];
    let mut adam = Adam::new(3);
    for _ in 0..3000 {
        let g: Vec<f64> = p.iter().zip(&target).map(|(p, t)| 2.0 * (p - t)).collect();
        adam.step(&mut [&mut p], &[&g], 0.01);
    }
    for (a, t) in p.iter().zip(&target) {
        assert!((a - t).abs() < 1e-3, "{a} vs {t}");
    }
}

/// Global norm of (3, 4) and (12) is 13: clipped to 1 the gradients become (3, 4, 12) / 13
/// (times 13 / (13 + 1e-6), PyTorch's guard); below the limit nothing changes.
#[test]
fn gradient_norm_clipping_by_hand() {
    let (mut a, mut b) = (vec![3.0, 4.0], vec![12.0]);
    let norm = clip_grad_norm(&mut [&mut a, &mut b], 1.0);
    assert_eq!(norm, 13.0);
    let f = 1.0 / (13.0 + 1e-6);
    assert!((a[0] - 3.0 * f).abs() < 1e-15 && (a[1] - 4.0 * f).abs() < 1e-15);
    assert!((b[0] - 12.0 * f).abs() < 1e-15);
    let (mut a, mut b) = (vec![0.3, 0.4], vec![0.0]);
    assert!((clip_grad_norm(&mut [&mut a, &mut b], 1.0) - 0.5).abs() < 1e-15);
    assert_eq!(a, vec![0.3, 0.4]);
}

#[test]
fn normal_draws_have_unit_variance() {
    let mut rng = Rng::new(9);
    let n = 100_000;
    let z: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    // Standard errors: mean 1/√n ≈ 0.0032, variance √(2/n) ≈ 0.0045.
    assert!(
        mean.abs() < 0.015 && (var - 1.0).abs() < 0.02,
        "{mean} {var}"
    );
}
