//! The CPU twins: naive attention against hand-derived values, flash (tiled, online softmax)
//! against naive, the invariants of the flash trace, and the HBM-traffic model of
//! Dao et al. 2022 against hand counts.

use mlplay::attention::{
    attention, attention_weights, block_start, max_abs_diff, pool_weights, Dims, Options, Qkv,
};
use mlplay::flash::{
    flash_attention, hbm_flash, hbm_flash2, hbm_standard, kv_tiles, paper_blocks, trace_head,
};
use ndarray::{array, s, Array3, Axis};

fn dims(n_heads: usize, n_kv_heads: usize, seq_len: usize, head_dim: usize) -> Dims {
    Dims {
        n_heads,
        n_kv_heads,
        seq_len,
        head_dim,
    }
}

/// d = 1, so the scale is 1 / T. Q = (2, 0), K = (1, 0), V = (1, 3):
/// row 0 scores (2, 0) -> softmax (e^2, 1) / (e^2 + 1) = (0.880797, 0.119203),
///   o_0 = 0.880797 + 3 * 0.119203 = 1.238406;
/// row 1 scores (0, 0) -> (0.5, 0.5), o_1 = 2.
/// Causal: row 0 sees only key 0, o_0 = 1; row 1 unchanged.
/// T = 2: row 0 scores (1, 0) -> (e, 1) / (e + 1) = (0.731059, 0.268941), o_0 = 1.537883.
fn tiny() -> Qkv {
    Qkv {
        q: array![[[2.0f32], [0.0]]],
        k: array![[[1.0f32], [0.0]]],
        v: array![[[1.0f32], [3.0]]],
    }
}

#[test]
fn naive_attention_matches_the_hand_computation() {
    let qkv = tiny();
    let p = attention_weights(
        qkv.q.index_axis(Axis(0), 0),
        qkv.k.index_axis(Axis(0), 0),
        Options::default(),
    );
    assert!(max_abs_diff(&p, &array![[0.880797f32, 0.119203], [0.5, 0.5]]) < 1e-6);
    let o = attention(&qkv, Options::default());
    assert!((o[[0, 0, 0]] - 1.238406).abs() < 1e-5);
    assert!((o[[0, 1, 0]] - 2.0).abs() < 1e-6);
    let causal = attention(
        &qkv,
        Options {
            causal: true,
            temperature: 1.0,
        },
    );
    assert_eq!(causal[[0, 0, 0]], 1.0);
    assert!((causal[[0, 1, 0]] - 2.0).abs() < 1e-6);
    let warm = attention(
        &qkv,
        Options {
            causal: false,
            temperature: 2.0,
        },
    );
    assert!((warm[[0, 0, 0]] - 1.537883).abs() < 1e-5);
}

#[test]
fn scale_is_one_over_sqrt_d_times_temperature() {
    let o = Options {
        causal: false,
        temperature: 0.5,
    };
    assert_eq!(o.scale(64), 1.0 / (8.0 * 0.5));
    assert_eq!(Options::default().scale(16), 0.25);
}

#[test]
fn rows_are_distributions_and_causal_rows_ignore_the_future() {
    let qkv = Qkv::random(dims(1, 1, 12, 8), 1);
    for causal in [false, true] {
        let p = attention_weights(
            qkv.q.index_axis(Axis(0), 0),
            qkv.k.index_axis(Axis(0), 0),
            Options {
                causal,
                temperature: 1.0,
            },
        );
        for (i, row) in p.rows().into_iter().enumerate() {
            assert!((row.sum() - 1.0).abs() < 1e-6);
            assert!(row.iter().all(|&x| x >= 0.0));
            if causal {
                assert!(row.slice(s![i + 1..]).iter().all(|&x| x == 0.0));
            }
        }
    }
}

#[test]
fn temperature_sharpens_and_flattens() {
    // Entropy of every row falls as T falls (softmax of z / T).
    let qkv = Qkv::random(dims(1, 1, 10, 16), 2);
    let entropy = |t: f32| {
        let p = attention_weights(
            qkv.q.index_axis(Axis(0), 0),
            qkv.k.index_axis(Axis(0), 0),
            Options {
                causal: false,
                temperature: t,
            },
        );
        p.rows()
            .into_iter()
            .map(|r| {
                -r.iter()
                    .map(|&x| if x > 0.0 { x * x.ln() } else { 0.0 })
                    .sum::<f32>()
            })
            .collect::<Vec<_>>()
    };
    let (cold, warm, hot) = (entropy(0.25), entropy(1.0), entropy(4.0));
    for i in 0..10 {
        assert!(cold[i] < warm[i] && warm[i] < hot[i], "row {i}");
        assert!(hot[i] <= (10f32).ln() + 1e-5);
    }
}

#[test]
fn gqa_equals_mha_with_the_kv_heads_repeated_and_mqa_is_one_group() {
    let gqa = Qkv::random(dims(6, 2, 9, 8), 4);
    assert_eq!(gqa.dims().group_size(), 3);
    assert_eq!(
        (0..6).map(|h| gqa.dims().kv_head(h)).collect::<Vec<_>>(),
        vec![0, 0, 0, 1, 1, 1]
    );
    let rep = |x: &Array3<f32>| {
        let mut out = Array3::zeros((6, 9, 8));
        for h in 0..6 {
            out.slice_mut(s![h, .., ..])
                .assign(&x.slice(s![h / 3, .., ..]));
        }
        out
    };
    let mha = Qkv {
        q: gqa.q.clone(),
        k: rep(&gqa.k),
        v: rep(&gqa.v),
    };
    let opts = Options::default();
    assert!(max_abs_diff(&attention(&gqa, opts), &attention(&mha, opts)) == 0.0);
    assert!(dims(8, 3, 4, 4).validate().is_err());
    assert!(dims(8, 1, 4, 4).validate().is_ok());
}

#[test]
fn flash_equals_naive_for_tiles_that_do_not_divide_n() {
    for (case, d) in [dims(4, 2, 37, 24), dims(1, 1, 1, 4), dims(3, 1, 50, 16)]
        .into_iter()
        .enumerate()
    {
        let qkv = Qkv::random(d, case as u64);
        for causal in [false, true] {
            let opts = Options {
                causal,
                temperature: 0.9,
            };
            let want = attention(&qkv, opts);
            for (br, bc) in [(1, 1), (4, 3), (16, 16), (5, 64), (7, 2)] {
                let got = flash_attention(&qkv, opts, br, bc);
                let e = max_abs_diff(&got, &want);
                assert!(e <= 1e-5, "{d:?} br={br} bc={bc} causal={causal}: {e}");
            }
        }
    }
}

#[test]
fn the_trace_keeps_the_online_softmax_invariants() {
    // At every step, for every row: m is the max of the scores seen so far, and
    // l = sum over seen keys of e^{S - m}; O / l after the last key tile equals naive.
    let qkv = Qkv::random(dims(1, 1, 16, 8), 6);
    let (q, k, v) = (
        qkv.q.index_axis(Axis(0), 0),
        qkv.k.index_axis(Axis(0), 0),
        qkv.v.index_axis(Axis(0), 0),
    );
    for causal in [false, true] {
        let opts = Options {
            causal,
            temperature: 1.0,
        };
        let steps = trace_head(q, k, v, opts, 4, 4);
        // 4 query tiles x 4 key tiles, or the 10 on and below the diagonal.
        assert_eq!(steps.len(), if causal { 10 } else { 16 });
        let scale = opts.scale(8);
        let full = q.dot(&k.t()) * scale; // (16, 16)
        let naive = attention(&qkv, opts);
        for st in &steps {
            let seen = (st.kv_tile + 1) * 4;
            for r in 0..4 {
                let i = st.q_tile * 4 + r;
                let keys = if causal { seen.min(i + 1) } else { seen };
                let row = full.slice(s![i, ..keys]);
                let m = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let l: f32 = row.iter().map(|&x| (x - m).exp()).sum();
                assert!(
                    (st.state.m[r] - m).abs() < 1e-6,
                    "m step {:?}",
                    (st.q_tile, st.kv_tile)
                );
                assert!((st.state.l[r] - l).abs() < 1e-5 * l.max(1.0), "l");
            }
            let last = kv_tiles(st.q_tile * 4, 4, 16, 4, causal) - 1;
            if st.kv_tile == last {
                let got = st.state.normalised();
                let want = naive.slice(s![0, st.q_tile * 4..st.q_tile * 4 + 4, ..]);
                assert!(max_abs_diff(&got, want) < 1e-5);
            }
        }
    }
}

#[test]
fn pooling_keeps_rows_as_distributions_and_is_exact_for_one_block_per_token() {
    let qkv = Qkv::random(dims(1, 1, 30, 8), 8);
    let p = attention_weights(
        qkv.q.index_axis(Axis(0), 0),
        qkv.k.index_axis(Axis(0), 0),
        Options::default(),
    );
    assert_eq!(pool_weights(p.view(), 30), p);
    let pooled = pool_weights(p.view(), 7);
    for row in pooled.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
    // Blocks of 30 over 7: starts 0, 4, 8, 12, 17, 21, 25, 30.
    let starts: Vec<usize> = (0..=7).map(|b| block_start(b, 7, 30)).collect();
    assert_eq!(starts, vec![0, 4, 8, 12, 17, 21, 25, 30]);
    let by_hand = p.slice(s![4..8, 12..17]).sum() / 4.0;
    assert!((pooled[[1, 3]] - by_hand).abs() < 1e-6);
}

#[test]
fn hbm_traffic_matches_hand_counts_and_theorem_2() {
    // Standard: 4 N d + 4 N^2 = 4 * 1024 * 64 + 4 * 1024^2 = 262144 + 4194304.
    assert_eq!(hbm_standard(1024.0, 64.0), 4_456_448.0);
    // Flash, M = 100000 elements, d = 64: B_c = ceil(100000 / 256) = 391, B_r = min(391, 64) = 64;
    // 2 N d + ceil(1024 / 391) N (3 d + 4) = 131072 + 3 * 1024 * 196 = 733184.
    assert_eq!(paper_blocks(100_000.0, 64.0), (64.0, 391.0));
    assert_eq!(hbm_flash(1024.0, 64.0, 100_000.0), 733_184.0);
    // FA-2 order with B_r = 64: 2 N d + 2 N d ceil(N / 64) = 131072 + 131072 * 16.
    assert_eq!(hbm_flash2(1024.0, 64.0, 64.0), 131_072.0 * 17.0);
    // Theta(N^2 d^2 / M): with N = 65536, d = 64, M = 131072 (B_c = 512 divides N) the
    // quadratic term is 128 * 65536 * 196 = 1644167168 and the linear one 2 N d = 8388608.
    // Doubling N multiplies the first by 4 and the second by 2; doubling M halves the first.
    let (n, d, m) = (65_536.0, 64.0, 131_072.0);
    assert_eq!(hbm_flash(n, d, m), 1_644_167_168.0 + 8_388_608.0);
    assert_eq!(
        hbm_flash(2.0 * n, d, m),
        4.0 * 1_644_167_168.0 + 2.0 * 8_388_608.0
    );
    assert_eq!(
        hbm_flash(n, d, 2.0 * m),
        1_644_167_168.0 / 2.0 + 8_388_608.0
    );
    let r_n = hbm_flash(2.0 * n, d, m) / hbm_flash(n, d, m);
    assert!(r_n > 3.98 && r_n < 4.0, "{r_n}");
    // And flash moves less than standard whenever M is larger than about d^2.
    assert!(hbm_flash(4096.0, 64.0, 100_000.0) < hbm_standard(4096.0, 64.0) / 5.0);
}

#[test]
fn random_inputs_are_seeded_and_in_the_documented_order() {
    let a = Qkv::random(dims(2, 1, 3, 4), 42);
    let b = Qkv::random(dims(2, 1, 3, 4), 42);
    let c = Qkv::random(dims(2, 1, 3, 4), 43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Q is drawn first: the first 24 normals of the stream.
    let mut rng = mlplay::rng::Rng::new(42);
    let first: Vec<f32> = (0..24).map(|_| rng.normal() as f32).collect();
    assert_eq!(a.q.iter().copied().collect::<Vec<_>>(), first);
    let next = rng.normal() as f32;
    assert_eq!(a.k[[0, 0, 0]], next);
}

// ------------------------------------------------------------- <ml-attention>'s model

use mlplay::attention::{
    compute, compute_with, long_qkv, long_tokens, tokenize, widget_json, Config, Model, D_HEAD,
    D_MODEL, SENTENCES, VOCAB,
};
use mlplay::params::Params;

fn widget(pairs: &[(&str, &str)]) -> Config {
    let mut p = Params::defaults(&mlplay::attention::SPEC);
    for (k, v) in pairs {
        p.set_strict(k, v).unwrap();
    }
    Config::from_params(&p)
}

#[test]
fn tokenize_takes_vocabulary_words_and_names_the_rest() {
    assert_eq!(tokenize("The cat, sat!").unwrap(), vec![0, 2, 4]);
    let err = tokenize("the unicorn sat on the moon").unwrap_err();
    assert!(err.contains("\"unicorn\", \"moon\""), "{err}");
    assert!(tokenize("  ").is_err());
    assert!(tokenize(&"the ".repeat(17))
        .unwrap_err()
        .contains("at most 16"));
    for s in SENTENCES {
        assert!(tokenize(s).unwrap().len() <= 16, "{s}");
    }
    assert_eq!(VOCAB.len(), 32);
}

#[test]
fn positions_are_the_sinusoids_of_vaswani_et_al() {
    // x_t = E[token] + PE(t); PE(0) = (0, 1, 0, 1, ...); PE(1, 0) = sin 1, PE(1, 1) = cos 1;
    // PE(1, 2) = sin(1 / 10000^(2/32)) = sin(0.5623413).
    let m = Model::new(3, 1, 1);
    let x = m.inputs(&[5, 5]);
    for j in 0..D_MODEL {
        let pe0 = x[[0, j]] - m.embed[[5, j]];
        assert!(
            (pe0 - if j % 2 == 0 { 0.0 } else { 1.0 }).abs() < 1e-6,
            "PE(0, {j})"
        );
    }
    assert!((x[[1, 0]] - m.embed[[5, 0]] - 1f32.sin()).abs() < 1e-6);
    assert!((x[[1, 1]] - m.embed[[5, 1]] - 1f32.cos()).abs() < 1e-6);
    assert!((x[[1, 2]] - m.embed[[5, 2]] - 0.562_341_3f32.sin()).abs() < 1e-6);
}

#[test]
fn heads_keep_their_projections_when_the_head_count_changes() {
    let a = Model::new(7, 4, 2);
    let b = Model::new(7, 8, 8);
    assert_eq!(a.w_q[3], b.w_q[3]);
    assert_eq!(a.w_k[1], b.w_k[1]);
    assert_ne!(a.w_q[0], a.w_q[1]);
    assert_ne!(Model::new(8, 4, 2).w_q[0], a.w_q[0]);
    let qkv = a.qkv(&[1, 2, 3]);
    assert_eq!(qkv.q.dim(), (4, 3, D_HEAD));
    assert_eq!(qkv.k.dim(), (2, 3, D_HEAD));
}

#[test]
fn the_sentence_weights_are_attention_over_the_model() {
    let c = widget(&[
        ("temp", "0.5"),
        ("causal", "on"),
        ("heads", "6"),
        ("kv-heads", "4"),
    ]);
    // 4 does not divide 6: the nearest divisor below, 3.
    assert_eq!(c.kv_heads().0, 3);
    let d = compute(&c);
    assert_eq!(d.n_kv_heads, 3);
    assert!(d.note.as_ref().unwrap().contains("using 3"));
    let tokens = tokenize(SENTENCES[0]).unwrap();
    let qkv = Model::new(1, 6, 3).qkv(&tokens);
    for h in 0..6 {
        let want = attention_weights(
            qkv.q.index_axis(Axis(0), h),
            qkv.k.index_axis(Axis(0), h / 2),
            c.options(),
        );
        assert!(max_abs_diff(d.weights.index_axis(Axis(0), h), &want) == 0.0);
        for (i, row) in want.rows().into_iter().enumerate() {
            assert!((row.sum() - 1.0).abs() < 1e-5);
            assert!(row.iter().skip(i + 1).all(|&p| p == 0.0));
        }
    }
    // The query row is clamped to the sentence.
    let short = compute_with(
        &widget(&[("query", "15")]),
        &tokenize("the dog ran").unwrap(),
    );
    assert_eq!(short.query, 2);
    // The JSON the CLI prints carries the same weights.
    let j = widget_json(&c).to_string();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let w0 = v["sentence"]["weights"][2][4][1].as_f64().unwrap();
    assert_eq!(w0, f64::from(d.weights[[2, 4, 1]]));
    assert_eq!(
        v["sentence"]["kv_head_of"],
        serde_json::json!([0, 0, 1, 1, 2, 2])
    );
}

#[test]
fn temperature_is_a_power_of_the_t1_weights() {
    // softmax(s / T) = softmax(log softmax(s) / T): the weights at T follow from those at 1.
    let d1 = compute(&widget(&[]));
    let dt = compute(&widget(&[("temp", "2.5")]));
    for h in 0..4 {
        for i in 0..d1.tokens.len() {
            let row = d1.weights.slice(s![h, i, ..]);
            let z: Vec<f32> = row.iter().map(|p| (p.ln() / 2.5).exp()).collect();
            let total: f32 = z.iter().sum();
            for (j, zj) in z.iter().enumerate() {
                assert!((dt.weights[[h, i, j]] - zj / total).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn the_long_sequence_is_seeded_vocabulary_through_the_same_model() {
    let a = long_tokens(500, 3);
    assert_eq!(a, long_tokens(500, 3));
    assert_ne!(a, long_tokens(500, 4));
    assert!(a.iter().all(|&t| t < VOCAB.len()));
    // Every word turns up in 500 uniform draws over 32 (a miss has probability ~ 32 e^-15.6).
    for t in 0..VOCAB.len() {
        assert!(a.contains(&t), "token {t}");
    }
    let c = widget(&[("heads", "2"), ("kv-heads", "1")]);
    let qkv = long_qkv(&c, 40);
    assert_eq!(
        qkv.dims(),
        Dims {
            n_heads: 2,
            n_kv_heads: 1,
            seq_len: 40,
            head_dim: D_HEAD
        }
    );
    assert_eq!(qkv, Model::new(1, 2, 1).qkv(&long_tokens(40, 1)));
}

// ---------------------------------------------------------- <ml-flash-attention>'s core

use mlplay::flash::{traffic, Config as FlashConfig, Demo, DEMO_D, DEMO_N};

fn flash_widget(pairs: &[(&str, &str)]) -> FlashConfig {
    let mut p = Params::defaults(&mlplay::flash::SPEC);
    for (k, v) in pairs {
        p.set_strict(k, v).unwrap();
    }
    FlashConfig::from_params(&p)
}

#[test]
fn the_demo_converges_to_naive_attention_tile_by_tile() {
    for causal in ["off", "on"] {
        let last = if causal == "on" { 10 } else { 16 };
        let mut finished_before = 0;
        for step in 0..=16 {
            let d = Demo::new(&flash_widget(&[
                ("step", &step.to_string()),
                ("causal", causal),
            ]));
            assert_eq!(d.steps.len(), last);
            assert_eq!(d.done, step.min(last));
            // Finished rows only grow, 4 at a time, and equal naive attention there.
            let f = d.finished_rows();
            assert!(f >= finished_before && f % 4 == 0);
            finished_before = f;
            if let Some(e) = d.finished_error() {
                assert!(e < 1e-5, "step {step}: {e}");
            }
            // Rows not reached are blank (NaN), rows reached are numbers.
            for i in 0..DEMO_N {
                let reached = d.latest()[i / 4].is_some();
                assert_eq!(
                    d.flash.row(i).iter().all(|v| v.is_finite()),
                    reached,
                    "row {i}"
                );
            }
        }
        let done = Demo::new(&flash_widget(&[("step", "16"), ("causal", causal)]));
        assert_eq!(done.finished_rows(), DEMO_N);
        assert!(max_abs_diff(&done.flash, &done.naive) < 1e-5);
        assert_eq!(done.flash.dim(), (DEMO_N, DEMO_D));
    }
}

#[test]
fn a_new_maximum_rescales_by_e_to_the_old_minus_new() {
    // Between two steps of one query tile, l' = e^{m - m'} l + rowsum e^{S - m'} exactly as
    // REFERENCE.md writes it, recomputed here from the step's own scores.
    let d = Demo::new(&flash_widget(&[("step", "3"), ("seed", "9")]));
    let cur = d.current().unwrap();
    let prev = d.previous().unwrap();
    assert_eq!((cur.q_tile, cur.kv_tile), (0, 2));
    assert_eq!((prev.q_tile, prev.kv_tile), (0, 1));
    for r in 0..4 {
        let row = cur.scores.row(r);
        let m_new = row.fold(prev.state.m[r], |a, &b| a.max(b));
        assert_eq!(cur.state.m[r], m_new);
        let l_new = (prev.state.m[r] - m_new).exp() * prev.state.l[r]
            + row.iter().map(|&x| (x - m_new).exp()).sum::<f32>();
        assert!((cur.state.l[r] - l_new).abs() < 1e-5 * l_new);
    }
}

#[test]
fn the_traffic_calculator_uses_the_paper_blocks() {
    // M = 192 KiB of fp16 = 98304 elements, d = 64: B_c = ceil(98304 / 256) = 384,
    // B_r = min(384, 64) = 64. At N = 4096: standard 2 (4 N d + 4 N^2) bytes
    // = 2 (1048576 + 67108864) = 136314880; flash 2 (2 N d + ceil(4096 / 384) N (3 d + 4))
    // = 2 (524288 + 11 * 4096 * 196) = 2 (524288 + 8830976) = 18710528.
    let t = traffic(&flash_widget(&[]));
    assert_eq!(t.blocks, (64.0, 384.0));
    assert_eq!(t.at_n.0, 136_314_880.0);
    assert_eq!(t.at_n.1, 18_710_528.0);
    // FA-2 order with B_r = 64: 2 (2 N d + 2 N d ceil(N / 64)) = 2 * 524288 * 65.
    assert_eq!(t.at_n.2, 2.0 * 524_288.0 * 65.0);
    assert_eq!(t.ns.first(), Some(&256.0));
    assert_eq!(t.ns.last(), Some(&131_072.0));
    // More on-chip memory, less traffic; wider heads, more.
    let big = traffic(&flash_widget(&[("sram", "256")]));
    assert!(big.at_n.1 < t.at_n.1);
    let wide = traffic(&flash_widget(&[("d", "128")]));
    assert!(wide.at_n.1 > t.at_n.1);
}
