// Flash attention (Dao et al. 2022, FA-2 loop order): one workgroup per (query tile, head).
// The query tile stays in workgroup memory; the kernel walks over key/value tiles, keeping
// per query row a running maximum m, a running sum l and an unnormalised output O:
//
//   S  = Q_i K_j^T * scale          scale = 1 / (sqrt(head_dim) T), masked like naive attention
//   m' = max(m, rowmax S)
//   l' = 2^(m - m') l + rowsum 2^(S - m')         (scores carry a factor log2(e), so 2^x = e^(x / log2 e))
//   O' = 2^(m - m') O + 2^(S - m') V_j
//   O  = O / l                       once, at the end
//
// Register tiling: the workgroup is TX x TY threads; a thread owns 4 query rows
// (ty + TY a, a = 0..3), 4 key columns of each tile (tx + TX b) and DP / (4 TX) vec4s of
// output dims per row (tx + TX e). Rows and columns interleave so that the vec4 reads of
// the Q and K tiles (row stride DP/4 + 1) hit distinct banks. Causal attention skips the
// key tiles after the query tile's last row. Any N: rows and keys past N are zero and masked.
//
// Bindings (group 0):
//   0 params  uniform Params
//   1 q       storage read        (H, N, DP/4) vec4<f32>, head dims zero-padded to DP
//   2 k       storage read        (G, N, DP/4) vec4<f32>
//   3 v       storage read        (G, N, DP/4) vec4<f32>
//   4 o       storage read_write  (H, N, DP/4) vec4<f32>
// Workgroup memory: (BR + BC) (DP + 4) + BC DP + BR (BC + 4) + BR TX floats.
// Twin: crate::flash::flash_attention.

// Tile configuration: gpu/flash.rs rewrites these three lines per pipeline (the values here
// are one valid configuration, the one naga validates in `cargo test`).
const TX: u32 = 8u;
const TY: u32 = 16u;
const DP: u32 = 64u;

const BR: u32 = 4u * TY;        // query rows per workgroup
const BC: u32 = 4u * TX;        // keys per K/V tile
const D4: u32 = DP / 4u;        // vec4s per head row
const DN: u32 = D4 / TX;        // output vec4s per thread and row
const QS: u32 = D4 + 1u;        // row stride (vec4s) of the Q and K tiles
const PS: u32 = BC / 4u + 1u;   // row stride (vec4s) of the P tile
const THREADS: u32 = TX * TY;
// 2^(MASKED - m) is exactly 0 in f32 for any real row maximum m.
const MASKED: f32 = -1.0e30;

struct Params {
    n_heads: u32,
    n_kv_heads: u32,
    seq_len: u32,
    causal: u32,
    scale_log2: f32, // log2(e) / (sqrt(head_dim) T)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<f32>>;

var<workgroup> q_tile: array<vec4<f32>, BR * QS>;
var<workgroup> k_tile: array<vec4<f32>, BC * QS>;
var<workgroup> v_tile: array<vec4<f32>, BC * D4>;
var<workgroup> p_tile: array<vec4<f32>, BR * PS>;
var<workgroup> red: array<f32, BR * TX>;

fn max4(x: vec4<f32>) -> f32 {
    return max(max(x.x, x.y), max(x.z, x.w));
}

fn sum4(x: vec4<f32>) -> f32 {
    return dot(x, vec4<f32>(1.0));
}

// Scores of keys past N, and for causal attention of keys after the query, become MASKED.
fn mask(s: vec4<f32>, cols: vec4<u32>, row: u32) -> vec4<f32> {
    var valid = cols < vec4<u32>(params.seq_len);
    if (params.causal == 1u) {
        valid = valid & (cols <= vec4<u32>(row));
    }
    return select(vec4<f32>(MASKED), s, valid);
}

// Row r of the P tile, columns tx + TX b (b = 0..3), from one thread's four values.
fn store_p(r: u32, tx: u32, p: vec4<f32>) {
    for (var b = 0u; b < 4u; b++) {
        let col = tx + TX * b;
        p_tile[r * PS + col / 4u][col % 4u] = p[b];
    }
}

// The four rows a thread owns, one per vector lane.
fn red_rows(ty: u32, t: u32) -> vec4<f32> {
    return vec4<f32>(
        red[ty * TX + t],
        red[(ty + TY) * TX + t],
        red[(ty + 2u * TY) * TX + t],
        red[(ty + 3u * TY) * TX + t],
    );
}

fn store_red(ty: u32, tx: u32, x: vec4<f32>) {
    red[ty * TX + tx] = x.x;
    red[(ty + TY) * TX + tx] = x.y;
    red[(ty + 2u * TY) * TX + tx] = x.z;
    red[(ty + 3u * TY) * TX + tx] = x.w;
}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * TX + tx;
    let n = params.seq_len;
    let h = wg.y;
    let qrow = h * n; // first row of this head in q and o
    let krow = (h / (params.n_heads / params.n_kv_heads)) * n; // same in k and v
    let q0 = wg.x * BR;

    // The query tile, pre-multiplied by the scale (in log2 units).
    for (var idx = tid; idx < BR * D4; idx += THREADS) {
        let r = idx / D4;
        let c = idx % D4;
        var x = vec4<f32>(0.0);
        if (q0 + r < n) {
            x = q[(qrow + q0 + r) * D4 + c] * params.scale_log2;
        }
        q_tile[r * QS + c] = x;
    }

    var m = vec4<f32>(MASKED); // running row maxima, one lane per owned row
    var l = vec4<f32>(0.0); // running row sums over this thread's columns
    var acc: array<vec4<f32>, 4u * DN>; // unnormalised O: row a, dims tx + TX e at [a DN + e]
    for (var e = 0u; e < 4u * DN; e++) {
        acc[e] = vec4<f32>(0.0);
    }
    let rows = vec4<u32>(q0 + ty, q0 + ty + TY, q0 + ty + 2u * TY, q0 + ty + 3u * TY);

    let kv_end = select(n, min(n, q0 + BR), params.causal == 1u);
    for (var kv0 = 0u; kv0 < kv_end; kv0 += BC) {
        workgroupBarrier(); // everyone is done with the previous K, V and P tiles
        for (var idx = tid; idx < BC * D4; idx += THREADS) {
            let r = idx / D4;
            let c = idx % D4;
            var kx = vec4<f32>(0.0);
            var vx = vec4<f32>(0.0);
            if (kv0 + r < n) {
                kx = k[(krow + kv0 + r) * D4 + c];
                vx = v[(krow + kv0 + r) * D4 + c];
            }
            k_tile[r * QS + c] = kx;
            v_tile[r * D4 + c] = vx;
        }
        workgroupBarrier();

        // S: 4 rows x 4 columns per thread.
        var s0 = vec4<f32>(0.0);
        var s1 = vec4<f32>(0.0);
        var s2 = vec4<f32>(0.0);
        var s3 = vec4<f32>(0.0);
        for (var c = 0u; c < D4; c++) {
            let k0 = k_tile[tx * QS + c];
            let k1 = k_tile[(tx + TX) * QS + c];
            let k2 = k_tile[(tx + 2u * TX) * QS + c];
            let k3 = k_tile[(tx + 3u * TX) * QS + c];
            let a0 = q_tile[ty * QS + c];
            let a1 = q_tile[(ty + TY) * QS + c];
            let a2 = q_tile[(ty + 2u * TY) * QS + c];
            let a3 = q_tile[(ty + 3u * TY) * QS + c];
            // One fma per multiply-add (a dot product per column would add a sum per call).
            let kx = vec4<f32>(k0.x, k1.x, k2.x, k3.x);
            let ky = vec4<f32>(k0.y, k1.y, k2.y, k3.y);
            let kz = vec4<f32>(k0.z, k1.z, k2.z, k3.z);
            let kw = vec4<f32>(k0.w, k1.w, k2.w, k3.w);
            s0 = fma(vec4<f32>(a0.w), kw, fma(vec4<f32>(a0.z), kz, fma(vec4<f32>(a0.y), ky, fma(vec4<f32>(a0.x), kx, s0))));
            s1 = fma(vec4<f32>(a1.w), kw, fma(vec4<f32>(a1.z), kz, fma(vec4<f32>(a1.y), ky, fma(vec4<f32>(a1.x), kx, s1))));
            s2 = fma(vec4<f32>(a2.w), kw, fma(vec4<f32>(a2.z), kz, fma(vec4<f32>(a2.y), ky, fma(vec4<f32>(a2.x), kx, s2))));
            s3 = fma(vec4<f32>(a3.w), kw, fma(vec4<f32>(a3.z), kz, fma(vec4<f32>(a3.y), ky, fma(vec4<f32>(a3.x), kx, s3))));
        }
        let cols = vec4<u32>(kv0 + tx, kv0 + tx + TX, kv0 + tx + 2u * TX, kv0 + tx + 3u * TX);
        s0 = mask(s0, cols, rows.x);
        s1 = mask(s1, cols, rows.y);
        s2 = mask(s2, cols, rows.z);
        s3 = mask(s3, cols, rows.w);

        // New row maxima: this thread's four columns, then across the TX threads of a row.
        store_red(ty, tx, vec4<f32>(max4(s0), max4(s1), max4(s2), max4(s3)));
        workgroupBarrier();
        var m_new = m;
        for (var t = 0u; t < TX; t++) {
            m_new = max(m_new, red_rows(ty, t));
        }
        let alpha = exp2(m - m_new); // rescales what was accumulated under the old maxima
        m = m_new;
        let p0 = exp2(s0 - m_new.x);
        let p1 = exp2(s1 - m_new.y);
        let p2 = exp2(s2 - m_new.z);
        let p3 = exp2(s3 - m_new.w);
        l = l * alpha + vec4<f32>(sum4(p0), sum4(p1), sum4(p2), sum4(p3));
        store_p(ty, tx, p0);
        store_p(ty + TY, tx, p1);
        store_p(ty + 2u * TY, tx, p2);
        store_p(ty + 3u * TY, tx, p3);
        for (var e = 0u; e < DN; e++) {
            acc[e] *= alpha.x;
            acc[DN + e] *= alpha.y;
            acc[2u * DN + e] *= alpha.z;
            acc[3u * DN + e] *= alpha.w;
        }
        workgroupBarrier();

        // O += P V, four keys at a time.
        for (var j4 = 0u; j4 < BC / 4u; j4++) {
            let pa0 = p_tile[ty * PS + j4];
            let pa1 = p_tile[(ty + TY) * PS + j4];
            let pa2 = p_tile[(ty + 2u * TY) * PS + j4];
            let pa3 = p_tile[(ty + 3u * TY) * PS + j4];
            for (var e = 0u; e < DN; e++) {
                let col = tx + TX * e;
                let v0 = v_tile[(4u * j4) * D4 + col];
                let v1 = v_tile[(4u * j4 + 1u) * D4 + col];
                let v2 = v_tile[(4u * j4 + 2u) * D4 + col];
                let v3 = v_tile[(4u * j4 + 3u) * D4 + col];
                acc[e] = fma(vec4<f32>(pa0.w), v3, fma(vec4<f32>(pa0.z), v2, fma(vec4<f32>(pa0.y), v1, fma(vec4<f32>(pa0.x), v0, acc[e]))));
                acc[DN + e] = fma(vec4<f32>(pa1.w), v3, fma(vec4<f32>(pa1.z), v2, fma(vec4<f32>(pa1.y), v1, fma(vec4<f32>(pa1.x), v0, acc[DN + e]))));
                acc[2u * DN + e] = fma(vec4<f32>(pa2.w), v3, fma(vec4<f32>(pa2.z), v2, fma(vec4<f32>(pa2.y), v1, fma(vec4<f32>(pa2.x), v0, acc[2u * DN + e]))));
                acc[3u * DN + e] = fma(vec4<f32>(pa3.w), v3, fma(vec4<f32>(pa3.z), v2, fma(vec4<f32>(pa3.y), v1, fma(vec4<f32>(pa3.x), v0, acc[3u * DN + e]))));
            }
        }
    }

    // l: the TX threads of a row each summed their own columns; add them up, divide once.
    workgroupBarrier();
    store_red(ty, tx, l);
    workgroupBarrier();
    var l_row = vec4<f32>(0.0);
    for (var t = 0u; t < TX; t++) {
        l_row += red_rows(ty, t);
    }
    let inv = 1.0 / l_row;
    for (var a = 0u; a < 4u; a++) {
        let i = rows[a];
        if (i < n) {
            for (var e = 0u; e < DN; e++) {
                o[(qrow + i) * D4 + tx + TX * e] = acc[a * DN + e] * inv[a];
            }
        }
    }
}
