// The transformer of crate/src/transformer/model.rs trained on the GPU: forward, backward,
// the global-norm clip and Adam, as passes through global memory. Every pass reads and writes
// one f32 arena `mem` (parameters, gradient, Adam's m and v, activations, scratch) at offsets
// the host puts in the pass's uniform, so one kernel serves every tensor it applies to:
//
//   gemm          C[z] = (beta C[z] +) alpha A[z] B[z] (+ bias), A, B, C strided (transposes
//                 are strides), z = z1 Z2 + z2 a batch of problems (sequences x heads).
//                 16 x 16 output tiles, K in order 0..K-1 through workgroup memory.
//   embed         x[r] = E[tok[r]] + P[r mod T]   (P: learned rows or the sinusoid table, or none)
//   layer_norm    per row: mu, var (biased), rstd = 1/sqrt(var + 1e-5), xhat = (x - mu) rstd,
//                 y = xhat g + b
//   ln_back       per row: dxh = dy g;  dx (+)= rstd (dxh - mean(dxh) - xhat mean(dxh xhat))
//   col_sum       out[c] += sum_{i < n} a[i s + c] (times b[i s + c] when b is given):
//                 bias and gain gradients (s = width), learned-position gradients (s = T D)
//   rope          the rotation R_{sign t} of every head's pairs (i, i + dh/2) of q and k
//   softmax_causal per row i of a T x T score block: softmax over j <= i, 0 above
//   softmax_back  dS = A (dA - sum_j dA A) scale, in place over dA
//   gelu          f = 0.5 u (1 + tanh(c (u + 0.044715 u^3))), c = sqrt(2/pi)
//   gelu_back     du *= GELU'(u)
//   xent          per row: if scored, p = softmax(logits), dlogits = w (p - onehot(y)),
//                 loss term = logsumexp - z_y, correct = (first argmax == y); else zeros
//   embed_back    dE[v, j] += sum over rows with tok[r] = v of dx[r, j] (rows in order)
//   finish        one workgroup: loss = sum terms / n, accuracy = sum correct / n,
//                 grad norm = sqrt(sum g^2)
//   adam          coef = clip / (norm + 1e-6) if below 1; g *= coef;
//                 m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//                 theta -= step_size m / (sqrt(v) / bias2_sqrt + eps)   (crate::nn::Adam);
//                 nothing moves when the loss or the norm is not finite
//
// Bindings (group 0):
//   0 op    uniform Op            24 words, a[0..24], their meaning per entry point below
//   1 mem   storage read_write    the arena (offsets in floats)
//   2 ids   storage read          tokens (R), then targets (R; 0xffffffff where none)
// Twin: crate::transformer::model::Model::{forward, loss_sum, backward}, crate::nn::{Adam,
// clip_grad_norm}.

struct Op {
    w: array<vec4<u32>, 6>,
}

@group(0) @binding(0) var<uniform> op: Op;
@group(0) @binding(1) var<storage, read_write> mem: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;

const NONE: u32 = 0xffffffffu;
const WG: u32 = 64u;
const TILE: u32 = 16u;
const LN_EPS: f32 = 1e-5;
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.99;
// 1 - beta as the f32 nearest the exact value (1.0 - BETA1 in f32 would carry BETA1's own
// rounding, 4 u relative for 0.1 and 17 u for 0.01, into every update).
const ONE_MINUS_BETA1: f32 = 0.1;
const ONE_MINUS_BETA2: f32 = 0.01;
const ADAM_EPS: f32 = 1e-8;

fn a(i: u32) -> u32 {
    return op.w[i / 4u][i % 4u];
}

fn af(i: u32) -> f32 {
    return bitcast<f32>(a(i));
}

fn flat(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * WG;
}

fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

// a: 0 M, 1 N, 2 K, 3 Z2, 4 a_off, 5 a_rs, 6 a_cs, 7 a_z1, 8 a_z2, 9 b_off, 10 b_rs, 11 b_cs,
// 12 b_z1, 13 b_z2, 14 c_off, 15 c_rs, 16 c_z1, 17 c_z2, 18 beta (0 or 1), 19 bias_off or
// NONE, 20 alpha (f32 bits). C's columns are contiguous. Workgroups (ceil(N/16), ceil(M/16), Z).
@compute @workgroup_size(16, 16, 1)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let mm = a(0u);
    let nn = a(1u);
    let kk = a(2u);
    let z1 = wg.z / a(3u);
    let z2 = wg.z % a(3u);
    let m = wg.y * TILE + lid.y;
    let n = wg.x * TILE + lid.x;
    let a0 = a(4u) + z1 * a(7u) + z2 * a(8u);
    let b0 = a(9u) + z1 * a(12u) + z2 * a(13u);
    var acc = 0.0;
    for (var k0 = 0u; k0 < kk; k0 += TILE) {
        let ka = k0 + lid.x;
        var va = 0.0;
        if (m < mm && ka < kk) {
            va = mem[a0 + m * a(5u) + ka * a(6u)];
        }
        ta[lid.y][lid.x] = va;
        let kb = k0 + lid.y;
        var vb = 0.0;
        if (kb < kk && n < nn) {
            vb = mem[b0 + kb * a(10u) + n * a(11u)];
        }
        tb[lid.y][lid.x] = vb;
        workgroupBarrier();
        let steps = min(TILE, kk - k0);
        for (var k = 0u; k < steps; k++) {
            acc += ta[lid.y][k] * tb[k][lid.x];
        }
        workgroupBarrier();
    }
    if (m < mm && n < nn) {
        let c = a(14u) + z1 * a(16u) + z2 * a(17u) + m * a(15u) + n;
        var out = af(20u) * acc;
        if (a(18u) != 0u) {
            out = mem[c] + out;
        }
        if (a(19u) != NONE) {
            out = out + mem[a(19u) + n];
        }
        mem[c] = out;
    }
}

// a: 0 R, 1 D, 2 T, 3 e_off, 4 p_off or NONE, 5 x_off. One thread per (r, j).
@compute @workgroup_size(64, 1, 1)
fn embed(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let d = a(1u);
    if (t >= a(0u) * d) {
        return;
    }
    let r = t / d;
    let j = t % d;
    var x = mem[a(3u) + ids[r] * d + j];
    if (a(4u) != NONE) {
        x = x + mem[a(4u) + (r % a(2u)) * d + j];
    }
    mem[a(5u) + t] = x;
}

// a: 0 R, 1 D, 2 x_off, 3 g_off, 4 b_off, 5 xhat_off, 6 rstd_off, 7 y_off. One thread per row.
@compute @workgroup_size(64, 1, 1)
fn layer_norm(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat(id, groups);
    if (r >= a(0u)) {
        return;
    }
    let d = a(1u);
    let x0 = a(2u) + r * d;
    var s = 0.0;
    for (var j = 0u; j < d; j++) {
        s += mem[x0 + j];
    }
    let mu = s / f32(d);
    var q = 0.0;
    for (var j = 0u; j < d; j++) {
        let c = mem[x0 + j] - mu;
        q += c * c;
    }
    let rs = 1.0 / sqrt(q / f32(d) + LN_EPS);
    mem[a(6u) + r] = rs;
    for (var j = 0u; j < d; j++) {
        let xh = (mem[x0 + j] - mu) * rs;
        mem[a(5u) + r * d + j] = xh;
        mem[a(7u) + r * d + j] = xh * mem[a(3u) + j] + mem[a(4u) + j];
    }
}

// a: 0 R, 1 D, 2 dy_off, 3 xhat_off, 4 rstd_off, 5 g_off, 6 dx_off, 7 accumulate (0 or 1).
// One thread per row.
@compute @workgroup_size(64, 1, 1)
fn ln_back(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat(id, groups);
    if (r >= a(0u)) {
        return;
    }
    let d = a(1u);
    let dy0 = a(2u) + r * d;
    let xh0 = a(3u) + r * d;
    var m1 = 0.0;
    var m2 = 0.0;
    for (var j = 0u; j < d; j++) {
        let dxh = mem[dy0 + j] * mem[a(5u) + j];
        m1 += dxh;
        m2 += dxh * mem[xh0 + j];
    }
    m1 = m1 / f32(d);
    m2 = m2 / f32(d);
    let rs = mem[a(4u) + r];
    for (var j = 0u; j < d; j++) {
        let dxh = mem[dy0 + j] * mem[a(5u) + j];
        let v = rs * (dxh - m1 - mem[xh0 + j] * m2);
        let o = a(6u) + r * d + j;
        if (a(7u) != 0u) {
            mem[o] = mem[o] + v;
        } else {
            mem[o] = v;
        }
    }
}

// a: 0 C (columns), 1 n (rows), 2 s (row stride), 3 a_off, 4 b_off or NONE, 5 out_off.
// One thread per column c: out[c] += sum_{i < n} a[i s + c] (b[i s + c]).
@compute @workgroup_size(64, 1, 1)
fn col_sum(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let c = flat(id, groups);
    if (c >= a(0u)) {
        return;
    }
    let s = a(2u);
    var acc = 0.0;
    for (var i = 0u; i < a(1u); i++) {
        var v = mem[a(3u) + i * s + c];
        if (a(4u) != NONE) {
            v = v * mem[a(4u) + i * s + c];
        }
        acc += v;
    }
    mem[a(5u) + c] = mem[a(5u) + c] + acc;
}

// a: 0 R, 1 D, 2 T, 3 dh, 4 x_off, 5 z stride (q to k), 6 cos_off, 7 sin_off, 8 sign (f32).
// The tables are (T, dh/2): cos and sin of t theta_i. One thread per (z, r, head, i < dh/2).
@compute @workgroup_size(64, 1, 1)
fn rope(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let d = a(1u);
    let half = a(3u) / 2u;
    let per_row = d / 2u;
    if (t >= 2u * a(0u) * per_row) {
        return;
    }
    let z = t / (a(0u) * per_row);
    let rest = t % (a(0u) * per_row);
    let r = rest / per_row;
    let hp = rest % per_row;
    let h = hp / half;
    let i = hp % half;
    let pos = r % a(2u);
    let c = mem[a(6u) + pos * half + i];
    let s = af(8u) * mem[a(7u) + pos * half + i];
    let base = a(4u) + z * a(5u) + r * d + h * a(3u);
    let xa = mem[base + i];
    let xb = mem[base + i + half];
    mem[base + i] = xa * c - xb * s;
    mem[base + i + half] = xa * s + xb * c;
}

// a: 0 rows (Z T), 1 T, 2 s_off. One thread per row; in place.
@compute @workgroup_size(64, 1, 1)
fn softmax_causal(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = flat(id, groups);
    if (row >= a(0u)) {
        return;
    }
    let tt = a(1u);
    let i = row % tt;
    let base = a(2u) + row * tt;
    var m = mem[base];
    for (var j = 1u; j <= i; j++) {
        m = max(m, mem[base + j]);
    }
    var z = 0.0;
    for (var j = 0u; j <= i; j++) {
        let e = exp(mem[base + j] - m);
        mem[base + j] = e;
        z += e;
    }
    for (var j = 0u; j < tt; j++) {
        if (j <= i) {
            mem[base + j] = mem[base + j] / z;
        } else {
            mem[base + j] = 0.0;
        }
    }
}

// a: 0 rows (Z T), 1 T, 2 attn_off, 3 da_off, 4 scale (f32). One thread per row; in place
// over dA.
@compute @workgroup_size(64, 1, 1)
fn softmax_back(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = flat(id, groups);
    if (row >= a(0u)) {
        return;
    }
    let tt = a(1u);
    let i = row % tt;
    let pa = a(2u) + row * tt;
    let pd = a(3u) + row * tt;
    var dot = 0.0;
    for (var j = 0u; j <= i; j++) {
        dot += mem[pd + j] * mem[pa + j];
    }
    for (var j = 0u; j < tt; j++) {
        if (j <= i) {
            mem[pd + j] = mem[pa + j] * (mem[pd + j] - dot) * af(4u);
        } else {
            mem[pd + j] = 0.0;
        }
    }
}

// tanh through exp of a non-positive argument (no overflow): sign(x) (1 - e) / (1 + e),
// e = exp(-2 |x|).
fn tanh_(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}

const GELU_C: f32 = 0.7978845608028654;

// a: 0 n, 1 u_off, 2 f_off. One thread per element.
@compute @workgroup_size(64, 1, 1)
fn gelu(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    if (t >= a(0u)) {
        return;
    }
    let u = mem[a(1u) + t];
    mem[a(2u) + t] = 0.5 * u * (1.0 + tanh_(GELU_C * (u + 0.044715 * u * u * u)));
}

// a: 0 n, 1 du_off, 2 u_off. One thread per element.
@compute @workgroup_size(64, 1, 1)
fn gelu_back(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    if (t >= a(0u)) {
        return;
    }
    let u = mem[a(2u) + t];
    let th = tanh_(GELU_C * (u + 0.044715 * u * u * u));
    let g = 0.5 * (1.0 + th) + 0.5 * u * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * 0.044715 * u * u);
    mem[a(1u) + t] = mem[a(1u) + t] * g;
}

// a: 0 R, 1 V, 2 logits_off, 3 dlogits_off, 4 rows_off (loss terms R, then correct R),
// 5 scalars_off (mem[scalars] = w = 1/n). One thread per row.
@compute @workgroup_size(64, 1, 1)
fn xent(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = flat(id, groups);
    let rr = a(0u);
    if (r >= rr) {
        return;
    }
    let v = a(1u);
    let l0 = a(2u) + r * v;
    let d0 = a(3u) + r * v;
    let y = ids[rr + r];
    if (y == NONE) {
        for (var i = 0u; i < v; i++) {
            mem[d0 + i] = 0.0;
        }
        mem[a(4u) + r] = 0.0;
        mem[a(4u) + rr + r] = 0.0;
        return;
    }
    var m = mem[l0];
    var best = 0u;
    for (var i = 1u; i < v; i++) {
        let z = mem[l0 + i];
        if (z > mem[l0 + best]) {
            best = i;
        }
        m = max(m, z);
    }
    var s = 0.0;
    for (var i = 0u; i < v; i++) {
        s += exp(mem[l0 + i] - m);
    }
    let w = mem[a(5u)];
    for (var i = 0u; i < v; i++) {
        var g = w * exp(mem[l0 + i] - m) / s;
        if (i == y) {
            g = g - w;
        }
        mem[d0 + i] = g;
    }
    mem[a(4u) + r] = m + log(s) - mem[l0 + y];
    mem[a(4u) + rr + r] = select(0.0, 1.0, best == y);
}

// a: 0 V, 1 D, 2 R, 3 dx_off, 4 out_off. One thread per (v, j).
@compute @workgroup_size(64, 1, 1)
fn embed_back(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let d = a(1u);
    if (t >= a(0u) * d) {
        return;
    }
    let v = t / d;
    let j = t % d;
    var acc = 0.0;
    for (var r = 0u; r < a(2u); r++) {
        if (ids[r] == v) {
            acc += mem[a(3u) + r * d + j];
        }
    }
    mem[a(4u) + t] = mem[a(4u) + t] + acc;
}

var<workgroup> red: array<f32, 256>;

fn reduce(t: u32, x: f32) -> f32 {
    red[t] = x;
    for (var stride = 128u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (t < stride) {
            red[t] += red[t + stride];
        }
    }
    workgroupBarrier();
    let total = red[0];
    workgroupBarrier();
    return total;
}

// a: 0 R, 1 P, 2 rows_off, 3 grad_off, 4 scalars_off. One workgroup of 256. Scalars:
// [0] w = 1/n, [1] n, ..., writes [4] loss, [5] accuracy, [6] gradient norm.
@compute @workgroup_size(256, 1, 1)
fn finish(@builtin(local_invocation_index) t: u32) {
    let rr = a(0u);
    var l = 0.0;
    var c = 0.0;
    for (var i = t; i < rr; i += 256u) {
        l += mem[a(2u) + i];
        c += mem[a(2u) + rr + i];
    }
    var q = 0.0;
    for (var i = t; i < a(1u); i += 256u) {
        let g = mem[a(3u) + i];
        q += g * g;
    }
    let loss = reduce(t, l);
    let correct = reduce(t, c);
    let sq = reduce(t, q);
    if (t == 0u) {
        let s = a(4u);
        mem[s + 4u] = loss / mem[s + 1u];
        mem[s + 5u] = correct / mem[s + 1u];
        mem[s + 6u] = sqrt(sq);
    }
}

// a: 0 P, 1 theta_off, 2 grad_off, 3 m_off, 4 v_off, 5 scalars_off. Scalars: [2] step_size =
// lr / (1 - b1^t), [3] bias2_sqrt = sqrt(1 - b2^t), [7] clip; [4] loss and [6] norm from
// `finish`. One thread per parameter.
@compute @workgroup_size(64, 1, 1)
fn adam(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = flat(id, groups);
    if (p >= a(0u)) {
        return;
    }
    let s = a(5u);
    let norm = mem[s + 6u];
    if (!finite(norm) || !finite(mem[s + 4u])) {
        return;
    }
    var g = mem[a(2u) + p];
    let coef = mem[s + 7u] / (norm + 1e-6);
    if (coef < 1.0) {
        g = g * coef;
    }
    let m = BETA1 * mem[a(3u) + p] + ONE_MINUS_BETA1 * g;
    let v = BETA2 * mem[a(4u) + p] + ONE_MINUS_BETA2 * g * g;
    mem[a(3u) + p] = m;
    mem[a(4u) + p] = v;
    let denom = sqrt(v) / mem[s + 3u] + ADAM_EPS;
    mem[a(1u) + p] = mem[a(1u) + p] - mem[s + 2u] * m / denom;
}
