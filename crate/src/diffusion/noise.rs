//! Counter-based Gaussian noise for the samplers: particle i's noise at step k is a pure
//! function of (seed, k, i), so the CPU sampler and the WGSL sampler draw the same numbers
//! without carrying any generator state, and any particle can be replayed alone (the widget's
//! trajectories).
//!
//! ```text
//! pcg(v)  = the PCG hash of Jarzynski & Olano 2020 ("Hash functions for GPU rendering"):
//!           state = v * 747796405 + 2891336453
//!           word  = ((state >> ((state >> 28) + 4)) ^ state) * 277803737
//!           pcg   = (word >> 22) ^ word                                   (wrapping u32)
//! uniform(seed, step, i, c) = (pcg(pcg(pcg(seed) ^ step) ^ (2 i + c)) >> 8) 2^-24 + 2^-25
//! z = sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2),  u1 = uniform(.., 0), u2 = uniform(.., 1)
//! ```
//!
//! The uniform is a multiple of 2^-24 plus half a step: never 0 (so ln is finite); its
//! largest value 1 - 2^-25 rounds to 1.0 in f32, which gives z = 0, harmlessly. Box-Muller
//! runs in f64 with [`crate::math`] and rounds to f32 (same bits natively and in wasm; the
//! WGSL mirror uses its own `log`, `cos`, `sin` and agrees to f32 rounding).
//! The initial noise x_T (x_0 for flow matching) uses step [`INITIAL_STEP`]; step k uses k.

/// The `step` of the initial noise x_T (or x_0 of flow matching).
pub const INITIAL_STEP: u32 = 0xFFFF_FFFF;

/// The PCG hash (Jarzynski & Olano 2020).
pub fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// Uniform in (0, 1] for particle `i`, coordinate `c`, at `step` of the stream `seed`.
pub fn uniform(seed: u32, step: u32, i: u32, c: u32) -> f32 {
    let h = pcg(pcg(pcg(seed) ^ step) ^ (2 * i + c));
    (h >> 8) as f32 * (1.0 / 16_777_216.0) + (1.0 / 33_554_432.0)
}

/// The standard normal pair z in R^2 of particle `i` at `step`.
pub fn normal2(seed: u32, step: u32, i: u32) -> [f32; 2] {
    let u1 = uniform(seed, step, i, 0) as f64;
    let u2 = uniform(seed, step, i, 1) as f64;
    let r = (-2.0 * crate::math::ln(u1)).sqrt();
    let (s, c) = crate::math::sin_cos(std::f64::consts::TAU * u2);
    [(r * c) as f32, (r * s) as f32]
}

/// The noise of particles `0..n` at `step`, `(n, 2)` row-major.
pub fn normals(seed: u32, step: u32, n: usize) -> Vec<f32> {
    let mut z = Vec::with_capacity(2 * n);
    for i in 0..n as u32 {
        z.extend_from_slice(&normal2(seed, step, i));
    }
    z
}
