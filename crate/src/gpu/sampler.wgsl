// Many particles through a sampler's rows (DDPM, DDIM, Euler, midpoint): the denoiser MLP
// (18 -> H -> H -> H -> 2, SiLU, H <= MAX_H) for TP = 16 particles per workgroup of 64
// threads, activations in workgroup memory (16 KiB), each weight read once per workgroup.
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
const TP: u32 = 16u; // particles per workgroup of `advance`
const HALF: u32 = 2048u; // TP * MAX_H
const NOISE: u32 = 4u;
const NO_RECORD: u32 = 0xFFFFFFFFu;

@group(0) @binding(0) var<uniform> st: Stage;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> prev: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> traj: array<vec2<f32>>;

// Two halves of TP x MAX_H activations: 16 KiB, WebGPU's guaranteed workgroup memory.
var<workgroup> act: array<f32, 4096>;

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

// The MLP for the workgroup's TP particles at once: activations in workgroup memory, two
// halves of TP x MAX_H floats (particle p's unit i at p * MAX_H + i), one layer from `src`
// into `dst`; thread t computes units t and t + 64 for all TP particles, each weight read
// once per workgroup and used TP times. dst[p][j] = SiLU(sum_i W[j, i] src[p][i] + b_j).
fn dense_tile(w: u32, k: u32, bias: u32, src: u32, dst: u32, t: u32) {
    let h = st.hidden;
    for (var half = 0u; half < 2u; half++) {
        let j = t + half * 64u;
        if (j < h) {
            let row = w + j * k;
            var acc0 = vec4<f32>(0.0);
            var acc1 = vec4<f32>(0.0);
            var acc2 = vec4<f32>(0.0);
            var acc3 = vec4<f32>(0.0);
            for (var i = 0u; i < k; i++) {
                let wv = theta[row + i];
                let a = src + i;
                acc0 += wv * vec4<f32>(act[a], act[a + MAX_H], act[a + 2u * MAX_H], act[a + 3u * MAX_H]);
                acc1 += wv * vec4<f32>(act[a + 4u * MAX_H], act[a + 5u * MAX_H], act[a + 6u * MAX_H], act[a + 7u * MAX_H]);
                acc2 += wv * vec4<f32>(act[a + 8u * MAX_H], act[a + 9u * MAX_H], act[a + 10u * MAX_H], act[a + 11u * MAX_H]);
                acc3 += wv * vec4<f32>(act[a + 12u * MAX_H], act[a + 13u * MAX_H], act[a + 14u * MAX_H], act[a + 15u * MAX_H]);
            }
            let bj = theta[bias + j];
            store4(dst + j, 0u, acc0 + bj);
            store4(dst + j, 4u, acc1 + bj);
            store4(dst + j, 8u, acc2 + bj);
            store4(dst + j, 12u, acc3 + bj);
        }
    }
    workgroupBarrier();
}

// act[at + p * MAX_H] = SiLU(z[p - p0]) for particles p0..p0 + 3.
fn store4(at: u32, p0: u32, z: vec4<f32>) {
    let s = z * (vec4<f32>(1.0) / (vec4<f32>(1.0) + exp(-z)));
    act[at + p0 * MAX_H] = s.x;
    act[at + (p0 + 1u) * MAX_H] = s.y;
    act[at + (p0 + 2u) * MAX_H] = s.z;
    act[at + (p0 + 3u) * MAX_H] = s.w;
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

// One workgroup per TP particles: wg = workgroup_id.x + workgroup_id.y * num_workgroups.x.
@compute @workgroup_size(64, 1, 1)
fn advance(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let first = (wid.x + wid.y * groups.x) * TP;
    let h = st.hidden;
    // Inputs (x, e(s)) of the TP particles into the first half; past n, zeros.
    for (var q = t; q < TP * IN; q += 64u) {
        let p = q / IN;
        let c = q % IN;
        let i = first + p;
        var v = 0.0;
        if (c >= 2u) {
            v = st.emb[(c - 2u) / 4u][(c - 2u) % 4u];
        } else if (i < st.n) {
            v = x[i][c];
        }
        act[p * MAX_H + c] = v;
    }
    workgroupBarrier();
    var w = 0u;
    dense_tile(w, IN, w + h * IN, 0u, HALF, t);
    w += h * (IN + 1u);
    dense_tile(w, h, w + h * h, HALF, 0u, t);
    w += h * (h + 1u);
    dense_tile(w, h, w + h * h, 0u, HALF, t);
    w += h * (h + 1u);
    // Output layer (H -> 2): thread t < 2 TP computes output t % 2 of particle t / 2, into the
    // first half (free again: the layer above read it before its barrier).
    if (t < 2u * TP) {
        let p = t / 2u;
        let c = t % 2u;
        var o = 0.0;
        for (var i = 0u; i < h; i++) {
            o += theta[w + c * h + i] * act[HALF + p * MAX_H + i];
        }
        act[t] = o + theta[w + 2u * h + c];
    }
    workgroupBarrier();
    if (t < TP) {
        let i = first + t;
        if (i < st.n) {
            let xi = x[i];
            let out = vec2<f32>(act[2u * t], act[2u * t + 1u]);
            var v = st.coef.x * xi + st.coef.y * out;
            if ((st.flags & NOISE) != 0u) {
                v += st.coef.z * gauss(st.seed, st.noise_step, i);
            }
            v += st.coef.w * prev[i];
            prev[i] = out;
            x[i] = v;
            record(i, v);
        }
    }
}
