// Naive attention: the textbook algorithm, every intermediate through global memory.
//
//   scores        S[h, r, j] = scale * <q[h, i], k[g, j]>, i = row0 + r; masked (j > i, causal) to MASKED
//   softmax_rows  P[h, r, :] = exp(S[h, r, :] - max) / sum exp(S[h, r, :] - max), in place in S
//   weighted_sum  o[h, i, :] = sum_j P[h, r, j] v[g, j, :]
//   pool          pooled[h, a, b] += (1 / rows of block a) * sum over rows of block a in this
//                 chunk and keys of block b of P[h, r, j]      (a heatmap of a long sequence)
//
// g = h / (n_heads / n_kv_heads): grouped-query attention (MQA at 1 K/V head, MHA at n_heads).
// scale = 1 / (sqrt(head_dim) * temperature). Query rows go in chunks [row0, row0 + chunk_rows)
// so that one chunk's S, (H, chunk_rows, N) floats, fits a storage binding; the host encodes
// the four passes once per chunk, in order.
//
// Bindings (group 0):
//   0 params  uniform Params
//   1 q       storage read        (H, N, DP/4) vec4<f32>    heads zero-padded to DP = 4 ceil(d/4)
//   2 k       storage read        (G, N, DP/4) vec4<f32>
//   3 v       storage read        (G, N, DP/4) vec4<f32>
//   4 s       storage read_write  (H, chunk_rows, N) f32    scores, then probabilities
//   5 o       storage read_write  (H, N, DP/4) vec4<f32>    output
//   6 pooled  storage read_write  (H, B, B) f32             cleared by the host before chunk 0
// Twin: crate::attention::{attention, attention_weights, pool_weights}.

struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    seq_len: u32,
    dp4: u32,        // DP / 4
    causal: u32,     // 1: mask keys after the query
    row0: u32,       // first query row of this chunk
    chunk_rows: u32, // rows in this chunk
    blocks: u32,     // B, pooled heatmap side
    scale: f32,
}

// exp(MASKED - max) is exactly 0 in f32 for any real row maximum.
const MASKED: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> pooled: array<f32>;

fn kv_head(h: u32) -> u32 {
    return h / (params.n_heads / params.n_kv_heads);
}

// One thread per score: x = key j, y = chunk row r, z = head h.
@compute @workgroup_size(16, 16, 1)
fn scores(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    let r = id.y;
    let h = id.z;
    let n = params.seq_len;
    let i = params.row0 + r;
    if (j >= n || r >= params.chunk_rows || i >= n) {
        return;
    }
    let qb = (h * n + i) * params.dp4;
    let kb = (kv_head(h) * n + j) * params.dp4;
    var acc = 0.0;
    for (var c = 0u; c < params.dp4; c++) {
        acc += dot(q[qb + c], k[kb + c]);
    }
    let masked = params.causal == 1u && j > i;
    s[(h * params.chunk_rows + r) * n + j] = select(acc * params.scale, MASKED, masked);
}

const SOFTMAX_THREADS: u32 = 64u;
var<workgroup> partial: array<f32, SOFTMAX_THREADS>;

// Tree reduction of `partial` (max when is_max, else sum); the result is in partial[0].
fn reduce(t: u32, is_max: bool) {
    for (var stride = SOFTMAX_THREADS / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (t < stride) {
            let a = partial[t];
            let b = partial[t + stride];
            partial[t] = select(a + b, max(a, b), is_max);
        }
    }
    workgroupBarrier();
}

// One workgroup per row: x = chunk row r, y = head h.
@compute @workgroup_size(64, 1, 1)
fn softmax_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = wg.x;
    let h = wg.y;
    let n = params.seq_len;
    if (params.row0 + r >= n) {
        return; // uniform across the workgroup
    }
    let base = (h * params.chunk_rows + r) * n;
    var m = MASKED;
    for (var j = t; j < n; j += SOFTMAX_THREADS) {
        m = max(m, s[base + j]);
    }
    partial[t] = m;
    reduce(t, true);
    m = partial[0];
    workgroupBarrier();
    var l = 0.0;
    for (var j = t; j < n; j += SOFTMAX_THREADS) {
        let e = exp(s[base + j] - m);
        s[base + j] = e;
        l += e;
    }
    partial[t] = l;
    reduce(t, false);
    let inv = 1.0 / partial[0];
    for (var j = t; j < n; j += SOFTMAX_THREADS) {
        s[base + j] *= inv;
    }
}

// One thread per (chunk row, 4 output dims): x = r * DP/4 + c, y = head h.
@compute @workgroup_size(64, 1, 1)
fn weighted_sum(@builtin(global_invocation_id) id: vec3<u32>) {
    let h = id.y;
    let r = id.x / params.dp4;
    let c = id.x % params.dp4;
    let n = params.seq_len;
    let i = params.row0 + r;
    if (r >= params.chunk_rows || i >= n) {
        return;
    }
    let base = (h * params.chunk_rows + r) * n;
    let vb = kv_head(h) * n;
    // Causal rows stop at the diagonal: the probabilities beyond it are exactly 0.
    let last = select(n, i + 1u, params.causal == 1u);
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < last; j++) {
        acc += s[base + j] * v[(vb + j) * params.dp4 + c];
    }
    o[(h * n + i) * params.dp4 + c] = acc;
}

fn block_start(b: u32) -> u32 {
    return b * params.seq_len / params.blocks;
}

// One thread per pooled cell: x = key block b, y = row block a, z = head h.
@compute @workgroup_size(8, 8, 1)
fn pool(@builtin(global_invocation_id) id: vec3<u32>) {
    let b = id.x;
    let a = id.y;
    let h = id.z;
    if (a >= params.blocks || b >= params.blocks) {
        return;
    }
    let n = params.seq_len;
    let r_lo = max(block_start(a), params.row0);
    let r_hi = min(block_start(a + 1u), params.row0 + params.chunk_rows);
    if (r_lo >= r_hi) {
        return; // block a has no rows in this chunk
    }
    let c_lo = block_start(b);
    let c_hi = block_start(b + 1u);
    var acc = 0.0;
    for (var i = r_lo; i < r_hi; i++) {
        let base = (h * params.chunk_rows + (i - params.row0)) * n;
        for (var j = c_lo; j < c_hi; j++) {
            acc += s[base + j];
        }
    }
    let rows = f32(block_start(a + 1u) - block_start(a));
    let at = (h * params.blocks + a) * params.blocks + b;
    pooled[at] += acc / rows;
}
