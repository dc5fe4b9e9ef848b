// The denoiser MLP eps_theta(x, e) of /work/diffusion-spec.md on the GPU: forward, exact
// backward and Adam, as passes through global memory (no workgroup memory, no subgroups,
// no f16). Layers 18 -> H -> H -> H -> 2, SiLU after each hidden layer, linear output.
//
//   forward_hidden   layer l = 0, 1, 2:  z = W_l a_{l-1} + b_l   (a_{-1} = the 18 inputs)
//                    (dot products in the twin's order: see dot4)
//                    A_l = z sigma(z),  G_l = SiLU'(z) = sigma(z) (1 + z (1 - sigma(z)))
//   forward_out      o = W_3 A_2 + b_3;  r = o - y;  loss terms r^2;  D_3 = dL/do = r / B
//                    (L = 1/(2B) sum_{b,c} r[b,c]^2)
//   backward_hidden  layer l = 2, 1, 0:  D_l[b, j] = G_l[b, j] sum_k W_{l+1}[k, j] D_{l+1}[b, k]
//   grad_partial     per parameter p and batch chunk c (CHUNK samples):
//                    W_l[o, i]: sum_{b in c} D_l[b, o] a_{l-1}[b, i];   b_l[o]: sum_{b in c} D_l[b, o]
//   adam             g_p = sum_c partial[c, p] (c in order); if apply:
//                    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
//                    theta -= lr (m / bc1) / (sqrt(v / bc2) + eps),  bc1 = 1 - b1^n, bc2 = 1 - b2^n
//   loss_sum         one workgroup: L = (sum of the 2B loss terms) / (2B), into loss[0]
//
// Flat parameters (the CPU twin's layout): for l = 0..3, W_l (out x in, row-major) then b_l.
// Threads are numbered flat, t = gid.x + gid.y * 64 * num_workgroups.x (the host splits
// dispatches wider than 65535 workgroups over y); every entry point returns for t past its work.
//
// Bindings (group 0):
//   0 pass     uniform Pass                 one per pass (the adam one rewritten every step)
//   1 theta    storage read_write  P        parameters
//   2 moments  storage read_write  2P       Adam m (0..P) then v (P..2P)
//   3 batch    storage read        B*18 + B*2   inputs X (B x 18) then targets Y (B x 2)
//   4 act      storage read_write  2B + 6*B*H   O (B x 2), then A_0, G_0, A_1, G_1, A_2, G_2 (each B x H)
//   5 delta    storage read_write  3*B*H + 2B   D_0, D_1, D_2 (each B x H), then D_3 (B x 2)
//   6 partial  storage read_write  (1 + C) * P  the gradient g, then the per-chunk sums (chunk c at (1 + c) P)
//   7 loss     storage read_write  1 + 2B       L, then the loss terms r^2
// Twin: crate::diffusion::mlp::{Mlp::forward, Mlp::loss_and_grad, Adam::step}.

struct Pass {
    batch: u32,    // B
    hidden: u32,   // H
    layer: u32,    // l of this pass
    n_chunks: u32, // C = ceil(B / CHUNK)
    n_params: u32, // P
    apply: u32,    // adam: 1 updates theta, m, v; 0 only writes g
    _pad0: u32,
    _pad1: u32,
    lr: f32,
    bc1: f32, // 1 - beta1^n
    bc2: f32, // 1 - beta2^n
    _pad2: f32,
}

const IN: u32 = 18u;
const OUT: u32 = 2u;
const CHUNK: u32 = 32u;
const WG: u32 = 64u;
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

@group(0) @binding(0) var<uniform> pass_: Pass;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> moments: array<f32>;
@group(0) @binding(3) var<storage, read> batch: array<f32>;
@group(0) @binding(4) var<storage, read_write> act: array<f32>;
@group(0) @binding(5) var<storage, read_write> delta: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;
@group(0) @binding(7) var<storage, read_write> loss: array<f32>;

fn flat(id: vec3<u32>, groups: vec3<u32>) -> u32 {
    return id.x + id.y * groups.x * WG;
}

fn n_in(l: u32) -> u32 {
    return select(pass_.hidden, IN, l == 0u);
}

fn n_out(l: u32) -> u32 {
    return select(pass_.hidden, OUT, l == 3u);
}

// Offset of W_l in theta (b_l follows it).
fn w_off(l: u32) -> u32 {
    var off = 0u;
    for (var k = 0u; k < l; k++) {
        off += n_out(k) * (n_in(k) + 1u);
    }
    return off;
}

// sum_i theta[row + i] a_{l-1}[b, i], i < k, in the CPU twin's order: four running sums over
// the first 4 floor(k / 4) terms, combined as (s0 + s1) + (s2 + s3), then the rest in order.
// Two copies, one per source buffer (WGSL has no pointers into storage to choose between).
fn dot_batch(row: u32, k: u32, base: u32) -> f32 {
    let n4 = k / 4u * 4u;
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < n4; i += 4u) {
        let w = vec4<f32>(theta[row + i], theta[row + i + 1u], theta[row + i + 2u], theta[row + i + 3u]);
        s += w * vec4<f32>(batch[base + i], batch[base + i + 1u], batch[base + i + 2u], batch[base + i + 3u]);
    }
    var t = (s.x + s.y) + (s.z + s.w);
    for (var i = n4; i < k; i++) {
        t += theta[row + i] * batch[base + i];
    }
    return t;
}

fn dot_act(row: u32, k: u32, base: u32) -> f32 {
    let n4 = k / 4u * 4u;
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < n4; i += 4u) {
        let w = vec4<f32>(theta[row + i], theta[row + i + 1u], theta[row + i + 2u], theta[row + i + 3u]);
        s += w * vec4<f32>(act[base + i], act[base + i + 1u], act[base + i + 2u], act[base + i + 3u]);
    }
    var t = (s.x + s.y) + (s.z + s.w);
    for (var i = n4; i < k; i++) {
        t += theta[row + i] * act[base + i];
    }
    return t;
}

// The dot product of W_l's row starting at `row` with sample b's input to layer l.
fn dot4(row: u32, k: u32, l: u32, b: u32) -> f32 {
    if (l == 0u) {
        return dot_batch(row, k, b * IN);
    }
    let bh = pass_.batch * pass_.hidden;
    return dot_act(row, k, 2u * pass_.batch + 2u * (l - 1u) * bh + b * pass_.hidden);
}

// One thread per (b, j): x-flat t = b * H + j.
@compute @workgroup_size(64, 1, 1)
fn forward_hidden(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let h = pass_.hidden;
    let l = pass_.layer;
    if (t >= pass_.batch * h) {
        return;
    }
    let b = t / h;
    let j = t % h;
    let k = n_in(l);
    let w = w_off(l);
    let z = theta[w + h * k + j] + dot4(w + j * k, k, l, b);
    let s = 1.0 / (1.0 + exp(-z));
    let base = 2u * pass_.batch + 2u * l * pass_.batch * h;
    act[base + t] = z * s;
    act[base + pass_.batch * h + t] = s * (1.0 + z * (1.0 - s));
}

// One thread per (b, c): t = b * 2 + c.
@compute @workgroup_size(64, 1, 1)
fn forward_out(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let bsz = pass_.batch;
    if (t >= bsz * OUT) {
        return;
    }
    let b = t / OUT;
    let c = t % OUT;
    let h = pass_.hidden;
    let w = w_off(3u);
    let o = theta[w + OUT * h + c] + dot4(w + c * h, h, 3u, b);
    act[t] = o;
    let r = o - batch[bsz * IN + t];
    loss[1u + t] = r * r;
    delta[3u * bsz * h + t] = r * (1.0 / f32(bsz));
}

// One thread per (b, j) of layer l: t = b * H + j.
@compute @workgroup_size(64, 1, 1)
fn backward_hidden(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let h = pass_.hidden;
    let l = pass_.layer;
    if (t >= pass_.batch * h) {
        return;
    }
    let b = t / h;
    let j = t % h;
    let next = l + 1u;
    let w = w_off(next);
    let kn = n_out(next);
    let d = next * pass_.batch * h + b * kn; // D_{l+1}[b, k] = delta[d + k]
    var acc = 0.0;
    for (var k = 0u; k < kn; k++) {
        acc += theta[w + k * h + j] * delta[d + k];
    }
    let bh = pass_.batch * h;
    delta[l * bh + t] = act[2u * pass_.batch + (2u * l + 1u) * bh + t] * acc;
}

// One thread per (chunk c, parameter p): t = c * P + p.
@compute @workgroup_size(64, 1, 1)
fn grad_partial(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = flat(id, groups);
    let np = pass_.n_params;
    if (t >= np * pass_.n_chunks) {
        return;
    }
    let c = t / np;
    let p = t % np;
    // Which layer, and where in it.
    var l = 0u;
    var q = p;
    loop {
        let size = n_out(l) * (n_in(l) + 1u);
        if (q < size || l == 3u) {
            break;
        }
        q -= size;
        l += 1u;
    }
    let k = n_in(l);
    let b0 = c * CHUNK;
    let b1 = min(b0 + CHUNK, pass_.batch);
    let no = n_out(l);
    let h = pass_.hidden;
    let d0 = l * pass_.batch * h; // D_l[b, o] = delta[d0 + b * no + o]
    var acc = 0.0;
    if (q < no * k) {
        let o = q / k;
        let i = q % k;
        if (l == 0u) {
            for (var b = b0; b < b1; b++) {
                acc += delta[d0 + b * no + o] * batch[b * IN + i];
            }
        } else {
            let a0 = 2u * pass_.batch + 2u * (l - 1u) * pass_.batch * h + i;
            for (var b = b0; b < b1; b++) {
                acc += delta[d0 + b * no + o] * act[a0 + b * h];
            }
        }
    } else {
        let o = q - no * k;
        for (var b = b0; b < b1; b++) {
            acc += delta[d0 + b * no + o];
        }
    }
    partial[np + t] = acc;
}

// One thread per parameter p.
@compute @workgroup_size(64, 1, 1)
fn adam(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = flat(id, groups);
    let np = pass_.n_params;
    if (p >= np) {
        return;
    }
    var g = 0.0;
    for (var c = 0u; c < pass_.n_chunks; c++) {
        g += partial[(1u + c) * np + p];
    }
    partial[p] = g;
    if (pass_.apply == 0u) {
        return;
    }
    let m = BETA1 * moments[p] + (1.0 - BETA1) * g;
    let v = BETA2 * moments[np + p] + (1.0 - BETA2) * g * g;
    moments[p] = m;
    moments[np + p] = v;
    theta[p] -= pass_.lr * (m / pass_.bc1) / (sqrt(v / pass_.bc2) + EPS);
}

var<workgroup> sums: array<f32, WG>;

// One workgroup: strided sums, then a tree; L = total / (2B).
@compute @workgroup_size(64, 1, 1)
fn loss_sum(@builtin(local_invocation_index) t: u32) {
    let n = pass_.batch * OUT;
    var acc = 0.0;
    for (var i = t; i < n; i += WG) {
        acc += loss[1u + i];
    }
    sums[t] = acc;
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (t < stride) {
            sums[t] += sums[t + stride];
        }
    }
    if (t == 0u) {
        loss[0] = sums[0] / f32(n);
    }
}
