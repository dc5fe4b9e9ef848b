//! FlashAttention's tiled algorithm with the online softmax (Dao et al. 2022; the FA-2 loop
//! order of Dao 2023), on the CPU: the twin of `gpu/flash.wgsl`, the step-by-step trace that
//! `<ml-flash-attention>` draws, and the HBM-traffic model of the paper's Theorem 2.
//!
//! For each tile of `B_r` query rows, loop over tiles of `B_c` keys/values, keeping per row a
//! running maximum m, a running sum l and an unnormalised output O:
//!
//! ```text
//! S   = Q_i K_j^T / (sqrt(d) T)                 (B_r, B_c), masked like naive attention
//! m'  = max(m, rowmax S)
//! l'  = e^{m - m'} l + rowsum e^{S - m'}
//! O'  = e^{m - m'} O + e^{S - m'} V_j
//! O_i = O / l                                   once, after the last tile (FA-2)
//! ```
//!
//! The result equals `attention::attention` up to rounding, for any tile sizes, including
//! ones that do not divide N. Causal attention skips the key tiles that start after the
//! tile's last query.

use ndarray::{s, Array1, Array2, Array3, ArrayView2, Axis};

use crate::attention::{exp, Options, Qkv};

/// The state of one query tile after it has consumed some key/value tiles.
#[derive(Clone, Debug, PartialEq)]
pub struct TileState {
    /// Running row maximum m (B_r,).
    pub m: Array1<f32>,
    /// Running row sum l (B_r,), relative to m.
    pub l: Array1<f32>,
    /// Unnormalised output O (B_r, d).
    pub o: Array2<f32>,
}

impl TileState {
    fn new(rows: usize, head_dim: usize) -> Self {
        TileState {
            m: Array1::from_elem(rows, f32::NEG_INFINITY),
            l: Array1::zeros(rows),
            o: Array2::zeros((rows, head_dim)),
        }
    }

    /// O / l: the output the tile would give if it stopped here.
    pub fn normalised(&self) -> Array2<f32> {
        let l = self.l.view().insert_axis(Axis(1)); // (B_r, 1)
        &self.o / &l
    }
}

/// Rows `r0..r0 + rows` against keys `c0..c0 + cols`: consume one key/value tile.
#[allow(clippy::too_many_arguments)]
pub fn consume_tile(
    state: &mut TileState,
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    r0: usize,
    c0: usize,
    opts: Options,
) -> Array2<f32> {
    let scale = opts.scale(q.ncols());
    let mut s = q.dot(&k.t()) * scale; // (B_r, B_c)
    if opts.causal {
        for ((r, c), x) in s.indexed_iter_mut() {
            if c0 + c > r0 + r {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    let mut p = s.clone(); // becomes e^{S - m'} row by row
    for (r, mut row) in p.axis_iter_mut(Axis(0)).enumerate() {
        let m_tile = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let m_new = state.m[r].max(m_tile);
        // A row whose keys are all masked so far keeps m = -inf; it contributes nothing yet.
        if m_new == f32::NEG_INFINITY {
            continue;
        }
        let alpha = exp(state.m[r] - m_new); // e^{m - m'}; 0 when m = -inf
        row.mapv_inplace(|x| exp(x - m_new)); // e^{S - m'}
        state.l[r] = alpha * state.l[r] + row.sum();
        let mut o = state.o.row_mut(r);
        o *= alpha;
        o += &row.dot(&v); // (d,)
        state.m[r] = m_new;
    }
    s
}

/// Key tiles a query tile visits: all of them, or for causal attention those that start at
/// or before its last query.
pub fn kv_tiles(r0: usize, rows: usize, seq_len: usize, bc: usize, causal: bool) -> usize {
    let end = if causal {
        (r0 + rows).min(seq_len)
    } else {
        seq_len
    };
    end.div_ceil(bc)
}

/// One head: `(N, d)` output with query tiles of `br` rows and key tiles of `bc` keys.
pub fn flash_head(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    opts: Options,
    br: usize,
    bc: usize,
) -> Array2<f32> {
    let (n, d) = q.dim();
    let mut out = Array2::zeros((n, d)); // (N, d)
    for r0 in (0..n).step_by(br) {
        let r1 = (r0 + br).min(n);
        let mut state = TileState::new(r1 - r0, d);
        for j in 0..kv_tiles(r0, r1 - r0, n, bc, opts.causal) {
            let (c0, c1) = (j * bc, ((j + 1) * bc).min(n));
            consume_tile(
                &mut state,
                q.slice(s![r0..r1, ..]),
                k.slice(s![c0..c1, ..]),
                v.slice(s![c0..c1, ..]),
                r0,
                c0,
                opts,
            );
        }
        out.slice_mut(s![r0..r1, ..]).assign(&state.normalised());
    }
    out
}

/// Every head, `(H, N, d)`, with GQA as in `attention::attention`.
pub fn flash_attention(qkv: &Qkv, opts: Options, br: usize, bc: usize) -> Array3<f32> {
    let dims = qkv.dims();
    let mut out = Array3::zeros(qkv.q.dim());
    for h in 0..dims.n_heads {
        let g = dims.kv_head(h);
        out.index_axis_mut(Axis(0), h).assign(&flash_head(
            qkv.q.index_axis(Axis(0), h),
            qkv.k.index_axis(Axis(0), g),
            qkv.v.index_axis(Axis(0), g),
            opts,
            br,
            bc,
        ));
    }
    out
}

/// One step of the trace: query tile `q_tile` has just consumed key tile `kv_tile`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub q_tile: usize,
    pub kv_tile: usize,
    /// The scaled, masked scores of this tile, before the exponential (B_r, B_c).
    pub scores: Array2<f32>,
    /// State of this query tile after the step.
    pub state: TileState,
}

/// The whole algorithm on one head, step by step in the order one worker runs it (query
/// tiles in turn, key tiles inner): what `<ml-flash-attention>` steps through.
pub fn trace_head(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    opts: Options,
    br: usize,
    bc: usize,
) -> Vec<Step> {
    let (n, d) = q.dim();
    let mut steps = Vec::new();
    for (i, r0) in (0..n).step_by(br).enumerate() {
        let r1 = (r0 + br).min(n);
        let mut state = TileState::new(r1 - r0, d);
        for j in 0..kv_tiles(r0, r1 - r0, n, bc, opts.causal) {
            let (c0, c1) = (j * bc, ((j + 1) * bc).min(n));
            let scores = consume_tile(
                &mut state,
                q.slice(s![r0..r1, ..]),
                k.slice(s![c0..c1, ..]),
                v.slice(s![c0..c1, ..]),
                r0,
                c0,
                opts,
            );
            steps.push(Step {
                q_tile: i,
                kv_tile: j,
                scores,
                state: state.clone(),
            });
        }
    }
    steps
}

/// HBM accesses (in elements) of standard attention, Algorithm 0 of Dao et al. 2022 for one
/// head: read Q, K and write S; read S and write P; read P, V and write O: 4 N d + 4 N^2.
pub fn hbm_standard(n: f64, d: f64) -> f64 {
    4.0 * n * d + 4.0 * n * n
}

/// Block sizes of the paper's Algorithm 1 for on-chip memory of `m` elements:
/// B_c = ceil(M / 4d), B_r = min(ceil(M / 4d), d).
pub fn paper_blocks(m: f64, d: f64) -> (f64, f64) {
    let bc = (m / (4.0 * d)).ceil().max(1.0);
    (bc.min(d), bc)
}

/// HBM accesses (elements) of FlashAttention's Algorithm 1 (K/V tiles outer, Q tiles inner),
/// one head: K and V read once (2 N d); for each of the T_c = ceil(N / B_c) outer steps every
/// query row reads Q_i, O_i, l_i, m_i and writes O_i, l_i, m_i (3 d + 4 per row). This is
/// Theta(N^2 d^2 / M) (Theorem 2).
pub fn hbm_flash(n: f64, d: f64, m: f64) -> f64 {
    let (_, bc) = paper_blocks(m, d);
    2.0 * n * d + (n / bc).ceil() * n * (3.0 * d + 4.0)
}

/// HBM accesses (elements) of the FA-2 loop order that `gpu/flash.wgsl` runs: Q read and O
/// written once, and every query tile of `br` rows reads all of K and V: 2 N d + 2 N d ceil(N / B_r).
pub fn hbm_flash2(n: f64, d: f64, br: f64) -> f64 {
    2.0 * n * d + 2.0 * n * d * (n / br).ceil()
}
