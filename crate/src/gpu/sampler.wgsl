// Many particles through a sampler's rows (DDPM, DDIM, Euler, midpoint), one thread per
// particle, the whole denoiser MLP in the thread (18 -> H -> H -> H -> 2, SiLU, H <= MAX_H).
// The rows are crate::diffusion::sample's table: every particle carries its position x and
// the previous row's network output prev (zero before row 0), and row r does
//
//   init   x_i = z(seed, noise_step, i)       (noise_step = 0xFFFFFFFF: x_T, or x_0 for flow)
//   advance  out = net(x_i, e(s_r))
//            x_i <- a x_i + b out + c z(seed, r, i) + d prev_i     (c z only when NOISE: c != 0)
//            prev_i <- out
//   in f32 in that order, as the CPU's sample::Run::step. (Midpoint: the row with d = -h/2
//   turns x_t + h/2 v(x_t) + h v(x_mid) - h/2 v(x_t) into x_t + h v(x_mid).)
//
// The noise is the counter-based one of the spec, so no state travels between steps:
//   pcg(v)  = the PCG hash of Jarzynski & Olano (2020)
//   u(seed, step, i, c) = (pcg(pcg(pcg(seed) ^ step) ^ (2i + c)) >> 8) * 2^-24 + 2^-25
//   z = sqrt(-2 ln u1) (cos 2 pi u2, sin 2 pi u2),  u1 = u(.., 0), u2 = u(.., 1)   (Box-Muller)
// ln, cos and sin are computed here (argument reduction and short series, ~1 ulp), not by
// WGSL's built-ins, whose accuracy is only loosely specified (sin and cos to 2^-11 absolute):
// the GPU's noise must equal the CPU's to f32 rounding.
//
// The row record is a uniform at a dynamic offset (one record per dispatch, all uploaded
// once): record 0 is for init, record 1 + r for row r.
//
// Bindings (group 0):
//   0 st     uniform Stage (dynamic offset)    coefficients, embedding, counts, flags
//   1 theta  storage read         P            the MLP's flat parameters (W_l then b_l, l = 0..3)
//   2 x      storage read_write   n x vec2     particle positions
//   3 prev   storage read_write   n x vec2     the previous row's network outputs
//   4 traj   storage read_write   (1 + R) x n_traj x vec2   positions of the first n_traj particles
//                                              after the draw and after every row
// Twin: crate::diffusion::sample::Run (the CPU sampler) and crate::diffusion::noise.

struct Stage {
    coef: vec4<f32>,          // a, b, c, d
    emb: array<vec4<f32>, 4>, // the time embedding e(s) of this stage
    n: u32,                   // particles
    hidden: u32,              // H
    seed: u32,
    noise_step: u32,
    flags: u32,               // NOISE
    record: u32,              // trajectory row to write, or NO_RECORD
    n_traj: u32,
    _pad: u32,
}

const MAX_H: u32 = 128u;
const IN: u32 = 18u;
const NOISE: u32 = 4u;
const NO_RECORD: u32 = 0xFFFFFFFFu;

@group(0) @binding(0) var<uniform> st: Stage;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> prev: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> traj: array<vec2<f32>>;

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

fn uniform01(seed: u32, step: u32, i: u32, c: u32) -> f32 {
    let h = pcg(pcg(pcg(seed) ^ step) ^ (2u * i + c));
    return f32(h >> 8u) * 5.9604645e-8 + 2.9802322e-8; // 2^-24, 2^-25
}

// ln u for u in (0, 1]: u = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| <= 0.172, the series to s^11 (next term below 2^-33 relative).
fn ln(u: f32) -> f32 {
    let bits = bitcast<u32>(u);
    var e = i32((bits >> 23u) & 0xFFu) - 127;
    var m = bitcast<f32>((bits & 0x7FFFFFu) | 0x3F800000u);
    if (m > 1.4142135) {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let series = 1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 / 11.0))));
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with 15 significant bits so that e * LN2_HI is exact.
    let fe = f32(e);
    return fe * 0.693145751953125 + (2.0 * s * series + fe * 1.4286068e-6);
}

// (cos t, sin t) for t in [0, 2 pi]: t = q pi/2 + f, pi/2 split in three (Cody & Waite) so
// that f is exact to f32, |f| <= pi/4, Taylor series to f^11 / f^10 (error below 2e-9).
fn cos_sin(t: f32) -> vec2<f32> {
    let q = round(t * 0.63661975);
    let f = ((t - q * 1.5703125) - q * 4.8375130e-4) - q * 7.5497901e-8;
    let f2 = f * f;
    let s = f + f * f2 * (-1.0 / 6.0 + f2 * (1.0 / 120.0 + f2 * (-1.0 / 5040.0 + f2 * (1.0 / 362880.0 - f2 / 39916800.0))));
    let c = 1.0 + f2 * (-0.5 + f2 * (1.0 / 24.0 + f2 * (-1.0 / 720.0 + f2 * (1.0 / 40320.0 - f2 / 3628800.0))));
    switch (i32(q) & 3) {
        case 0: { return vec2<f32>(c, s); }
        case 1: { return vec2<f32>(-s, c); }
        case 2: { return vec2<f32>(-c, -s); }
        default: { return vec2<f32>(s, -c); }
    }
}

fn gauss(seed: u32, step: u32, i: u32) -> vec2<f32> {
    let u1 = uniform01(seed, step, i, 0u);
    let u2 = uniform01(seed, step, i, 1u);
    let r = sqrt(-2.0 * ln(u1));
    return r * cos_sin(6.2831855 * u2);
}

fn silu(z: f32) -> f32 {
    return z * (1.0 / (1.0 + exp(-z)));
}

// b_j + sum_i W[j, i] src[i], i < k (W row-major at w, b at bias), in the CPU twin's order:
// four running sums over the first 4 floor(k / 4) terms, (s0 + s1) + (s2 + s3), then the rest.
fn dense(w: u32, k: u32, bias: u32, j: u32, src: ptr<function, array<f32, MAX_H>>) -> f32 {
    let row = w + j * k;
    let n4 = k / 4u * 4u;
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < n4; i += 4u) {
        let wv = vec4<f32>(theta[row + i], theta[row + i + 1u], theta[row + i + 2u], theta[row + i + 3u]);
        s += wv * vec4<f32>((*src)[i], (*src)[i + 1u], (*src)[i + 2u], (*src)[i + 3u]);
    }
    var t = (s.x + s.y) + (s.z + s.w);
    for (var i = n4; i < k; i++) {
        t += theta[row + i] * (*src)[i];
    }
    return theta[bias + j] + t;
}

// The MLP at point p with the stage's embedding: W_l (out x in, row-major) then b_l.
fn net(p: vec2<f32>) -> vec2<f32> {
    let h = st.hidden;
    var a: array<f32, MAX_H>;
    var b: array<f32, MAX_H>;
    a[0] = p.x;
    a[1] = p.y;
    for (var k = 0u; k < 16u; k++) {
        a[2u + k] = st.emb[k / 4u][k % 4u];
    }
    // Layer 0 (18 -> H) from a into b, layer 1 back into a, layer 2 into b, output from b.
    var w = 0u;
    for (var j = 0u; j < h; j++) {
        b[j] = silu(dense(w, IN, w + h * IN, j, &a));
    }
    w += h * (IN + 1u);
    for (var j = 0u; j < h; j++) {
        a[j] = silu(dense(w, h, w + h * h, j, &b));
    }
    w += h * (h + 1u);
    for (var j = 0u; j < h; j++) {
        b[j] = silu(dense(w, h, w + h * h, j, &a));
    }
    w += h * (h + 1u);
    return vec2<f32>(dense(w, h, w + 2u * h, 0u, &b), dense(w, h, w + 2u * h, 1u, &b));
}

fn record(i: u32, v: vec2<f32>) {
    if (st.record != NO_RECORD && i < st.n_traj) {
        traj[st.record * st.n_traj + i] = v;
    }
}

@compute @workgroup_size(64, 1, 1)
fn init(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.x + id.y * groups.x * 64u;
    if (i >= st.n) {
        return;
    }
    let v = gauss(st.seed, st.noise_step, i);
    x[i] = v;
    prev[i] = vec2<f32>(0.0);
    record(i, v);
}

@compute @workgroup_size(64, 1, 1)
fn advance(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = id.x + id.y * groups.x * 64u;
    if (i >= st.n) {
        return;
    }
    let xi = x[i];
    let out = net(xi);
    var v = st.coef.x * xi + st.coef.y * out;
    if ((st.flags & NOISE) != 0u) {
        v += st.coef.z * gauss(st.seed, st.noise_step, i);
    }
    v += st.coef.w * prev[i];
    prev[i] = out;
    x[i] = v;
    record(i, v);
}
