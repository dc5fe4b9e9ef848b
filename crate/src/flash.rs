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

// ---------------------------------------------------------------------------------------
// <ml-flash-attention>: the trace on a small example, the HBM model, and its parameters.

use crate::attention::{attention, Dims};
use crate::json::Json;
use crate::params::{ParamSpec, Params, WidgetSpec};

/// Tokens of the stepped example.
pub const DEMO_N: usize = 16;
/// Its head width (small, so the output can be drawn).
pub const DEMO_D: usize = 8;
/// Its tiles: B_r = B_c = 4.
pub const DEMO_TILE: usize = 4;
/// Sequence lengths of the live timing, and the head width it uses.
pub const TIMING_NS: &[usize] = &[128, 256, 512, 1024, 2048, 4096];
pub const TIMING_D: usize = 64;

pub const SPEC: WidgetSpec = WidgetSpec {
    name: "flash-attention",
    title: "FlashAttention: tiles and the online softmax",
    summary: "Step through the tiled algorithm with its running max and sum until it equals naive attention; count the memory traffic it saves; time both kernels on your GPU.",
    trainer: false,
    params: &[
        ParamSpec::number(
            "step",
            "Tile step",
            "t",
            "How many key/value tiles have been processed, query tile by query tile (16 tokens in 4 x 4 tiles).",
            6.0,
            0.0,
            16.0,
            1.0,
        ),
        ParamSpec::choice(
            "causal",
            "Causal mask",
            "mask",
            "On: tiles above the diagonal are skipped, 10 steps instead of 16.",
            0,
            &["off", "on"],
        ),
        ParamSpec::number(
            "seed",
            "Seed",
            "seed",
            "Seed of the example's Q, K and V.",
            2.0,
            0.0,
            9999.0,
            1.0,
        ),
        ParamSpec::number(
            "n",
            "Sequence length N",
            "N",
            "Tokens, for the memory-traffic calculator.",
            4096.0,
            256.0,
            131072.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::choice(
            "d",
            "Head width d",
            "d",
            "Width of one head, for the calculator.",
            0,
            &["64", "128"],
        ),
        ParamSpec::number(
            "sram",
            "On-chip memory M, KiB",
            "M",
            "Fast memory per streaming multiprocessor the tiles live in (A100: 192 KiB, H100: 228 KiB).",
            192.0,
            16.0,
            256.0,
            1.0,
        )
        .log_scale(),
        ParamSpec::number(
            "heads",
            "Heads (live timing)",
            "H",
            "Heads of the problems the live timing runs (d = 64).",
            4.0,
            1.0,
            8.0,
            1.0,
        ),
    ],
};

/// The typed configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub step: usize,
    pub causal: bool,
    pub seed: u64,
    pub n: usize,
    pub d: usize,
    pub sram_kib: f64,
    pub heads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_params(&Params::defaults(&SPEC))
    }
}

impl Config {
    pub fn from_params(p: &Params) -> Self {
        Config {
            step: p.get("step") as usize,
            causal: p.choice("causal") == "on",
            seed: p.get("seed") as u64,
            n: p.get("n") as usize,
            d: p.choice("d").parse().unwrap_or(64),
            sram_kib: p.get("sram"),
            heads: p.get("heads") as usize,
        }
    }

    /// On-chip memory in fp16 elements (the paper's accounting, 2 bytes each).
    pub fn sram_elements(&self) -> f64 {
        self.sram_kib * 1024.0 / 2.0
    }
}

/// The stepped example after `step` steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Demo {
    pub qkv: Qkv,
    /// Every step of the trace.
    pub steps: Vec<Step>,
    /// Steps done (the parameter, at most `steps.len()`).
    pub done: usize,
    /// Naive attention's output (N, d) and weights (N, N).
    pub naive: Array2<f32>,
    pub weights: Array2<f32>,
    /// The flash output so far (N, d): finished query tiles normalised, the current tile
    /// provisionally (O / l), rows not reached NaN.
    pub flash: Array2<f32>,
    pub causal: bool,
}

impl Demo {
    pub fn new(c: &Config) -> Demo {
        let dims = Dims {
            n_heads: 1,
            n_kv_heads: 1,
            seq_len: DEMO_N,
            head_dim: DEMO_D,
        };
        let qkv = Qkv::random(dims, c.seed);
        let opts = Options {
            causal: c.causal,
            temperature: 1.0,
        };
        let (q, k, v) = (
            qkv.q.index_axis(Axis(0), 0),
            qkv.k.index_axis(Axis(0), 0),
            qkv.v.index_axis(Axis(0), 0),
        );
        let steps = trace_head(q, k, v, opts, DEMO_TILE, DEMO_TILE);
        let done = c.step.min(steps.len());
        let mut flash = Array2::from_elem((DEMO_N, DEMO_D), f32::NAN);
        // The last step of each query tile among those done holds its state.
        for st in steps[..done].iter() {
            let r0 = st.q_tile * DEMO_TILE;
            let rows = st.state.m.len();
            flash
                .slice_mut(s![r0..r0 + rows, ..])
                .assign(&st.state.normalised());
        }
        let naive = attention(&qkv, opts).index_axis(Axis(0), 0).to_owned();
        let weights = crate::attention::attention_weights(q, k, opts);
        Demo {
            steps,
            done,
            naive,
            weights,
            flash,
            qkv,
            causal: c.causal,
        }
    }

    /// The step shown: the last one done, if any.
    pub fn current(&self) -> Option<&Step> {
        self.done.checked_sub(1).map(|i| &self.steps[i])
    }

    /// Largest |O_flash - O_naive| over the rows whose query tile is finished.
    pub fn finished_error(&self) -> Option<f32> {
        let finished = self.finished_rows();
        (finished > 0).then(|| {
            crate::attention::max_abs_diff(
                self.flash.slice(s![..finished, ..]),
                self.naive.slice(s![..finished, ..]),
            )
        })
    }

    /// Each query tile's latest step among those done (None for tiles not reached).
    pub fn latest(&self) -> Vec<Option<&Step>> {
        let mut out = vec![None; DEMO_N.div_ceil(DEMO_TILE)];
        for st in &self.steps[..self.done] {
            out[st.q_tile] = Some(st);
        }
        out
    }

    /// The step before the current one on the same query tile (for the rescale factor).
    pub fn previous(&self) -> Option<&Step> {
        let cur = self.current()?;
        self.steps[..self.done - 1]
            .iter()
            .rev()
            .find(|s| s.q_tile == cur.q_tile)
    }

    /// Rows of the query tiles whose last key tile has been consumed.
    pub fn finished_rows(&self) -> usize {
        let mut rows = 0;
        for st in &self.steps[..self.done] {
            let r0 = st.q_tile * DEMO_TILE;
            let last = kv_tiles(r0, DEMO_TILE, DEMO_N, DEMO_TILE, self.causal) - 1;
            if st.kv_tile == last {
                rows = r0 + st.state.m.len();
            }
        }
        rows
    }
}

/// The memory-traffic calculator's curves over N, in bytes (fp16).
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    pub ns: Vec<f64>,
    pub standard: Vec<f64>,
    pub flash: Vec<f64>,
    pub flash2: Vec<f64>,
    /// At the chosen N.
    pub at_n: (f64, f64, f64),
    pub blocks: (f64, f64),
}

pub fn traffic(c: &Config) -> Traffic {
    let d = c.d as f64;
    let m = c.sram_elements();
    let (br, bc) = paper_blocks(m, d);
    let ns: Vec<f64> = (8..=17).map(|e| f64::from(1u32 << e)).collect();
    let bytes = |x: f64| 2.0 * x;
    Traffic {
        standard: ns.iter().map(|&n| bytes(hbm_standard(n, d))).collect(),
        flash: ns.iter().map(|&n| bytes(hbm_flash(n, d, m))).collect(),
        flash2: ns.iter().map(|&n| bytes(hbm_flash2(n, d, br))).collect(),
        at_n: {
            let n = c.n as f64;
            (
                bytes(hbm_standard(n, d)),
                bytes(hbm_flash(n, d, m)),
                bytes(hbm_flash2(n, d, br)),
            )
        },
        blocks: (br, bc),
        ns,
    }
}

fn arr2(x: ndarray::ArrayView2<f32>) -> Json {
    Json::Arr(
        x.rows()
            .into_iter()
            .map(|r| {
                Json::Arr(
                    r.iter()
                        .map(|&v| {
                            if v.is_finite() {
                                Json::Num(f64::from(v))
                            } else {
                                Json::Null
                            }
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

fn vec1(x: &Array1<f32>) -> Json {
    Json::Arr(
        x.iter()
            .map(|&v| {
                if v.is_finite() {
                    Json::Num(f64::from(v))
                } else {
                    Json::Null
                }
            })
            .collect(),
    )
}

impl Demo {
    pub fn to_json(&self) -> Json {
        let cur = self.current();
        Json::obj([
            ("steps", Json::Num(self.steps.len() as f64)),
            ("done", Json::Num(self.done as f64)),
            (
                "q_tile",
                cur.map_or(Json::Null, |s| Json::Num(s.q_tile as f64)),
            ),
            (
                "kv_tile",
                cur.map_or(Json::Null, |s| Json::Num(s.kv_tile as f64)),
            ),
            ("m", cur.map_or(Json::Null, |s| vec1(&s.state.m))),
            ("l", cur.map_or(Json::Null, |s| vec1(&s.state.l))),
            ("scores", cur.map_or(Json::Null, |s| arr2(s.scores.view()))),
            ("flash", arr2(self.flash.view())),
            ("naive", arr2(self.naive.view())),
            ("finished_rows", Json::Num(self.finished_rows() as f64)),
            (
                "finished_max_abs_diff",
                self.finished_error()
                    .map_or(Json::Null, |e| Json::Num(f64::from(e))),
            ),
            (
                "tiles",
                Json::Arr(
                    self.steps
                        .iter()
                        .map(|s| {
                            Json::Arr(vec![
                                Json::Num(s.q_tile as f64),
                                Json::Num(s.kv_tile as f64),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }
}

impl Traffic {
    pub fn to_json(&self) -> Json {
        Json::obj([
            ("n", Json::nums(&self.ns)),
            ("standard_bytes", Json::nums(&self.standard)),
            ("flash_bytes", Json::nums(&self.flash)),
            ("flash2_bytes", Json::nums(&self.flash2)),
            (
                "at_n",
                Json::obj([
                    ("standard_bytes", Json::Num(self.at_n.0)),
                    ("flash_bytes", Json::Num(self.at_n.1)),
                    ("flash2_bytes", Json::Num(self.at_n.2)),
                ]),
            ),
            ("block_rows", Json::Num(self.blocks.0)),
            ("block_cols", Json::Num(self.blocks.1)),
        ])
    }
}

/// What the CLI (`mlplay flash-attention`) prints: the demo and the traffic model.
pub fn widget_json(c: &Config) -> Json {
    Json::obj([
        ("demo", Demo::new(c).to_json()),
        ("traffic", traffic(c).to_json()),
    ])
}
