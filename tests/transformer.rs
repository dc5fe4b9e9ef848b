//! The transformer core (`mlplay::transformer`): the hand-written backward pass against
//! central finite differences, the causal mask, the tasks' structure, and that a seeded model
//! learns the copy task.

use mlplay::rng::Rng;
use mlplay::transformer::model::{causal_softmax, gelu, gelu_grad, Config, Model, Pos};
use mlplay::transformer::tasks::{is_balanced, Task};
use mlplay::transformer::train::{head_scores, TrainConfig, Trainer};
use ndarray::Array2;

fn tiny(pos: Pos, tied: bool) -> Config {
    Config {
        vocab: 7,
        d_model: 8,
        n_layers: 2,
        n_heads: 2,
        ctx: 6,
        pos,
        tied,
    }
}

/// Sum of the scored cross-entropies, times `weight`: the quantity `backward` differentiates.
fn loss(model: &Model, tokens: &[usize], targets: &[Option<usize>], weight: f64) -> f64 {
    let fw = model.forward(tokens);
    weight * Model::loss_sum(&fw, targets).0
}

/// Central differences with h = 1e-5 in f64: truncation error ~ h^2 |f'''| / 6 (about 1e-11
/// here) and rounding error ~ eps |f| / h (about 1e-10 for a loss of order 10), so analytic
/// and numerical gradients agree to 1e-7 unless the backward pass is wrong.
fn check_gradient(config: Config, seed: u64, stride: usize) {
    let mut model = Model::init(config.clone(), seed);
    let mut rng = Rng::new(seed + 100);
    // Larger weights than the 0.02 init, so that every path (attention included) matters.
    for p in model.params.iter_mut() {
        *p += 0.3 * rng.normal();
    }
    let t_len = config.ctx;
    let tokens: Vec<usize> = (0..t_len)
        .map(|_| rng.next_u64() as usize % config.vocab)
        .collect();
    let targets: Vec<Option<usize>> = (0..t_len)
        .map(|t| (t != 1).then(|| rng.next_u64() as usize % config.vocab))
        .collect();
    let weight = 0.7;
    let mut grad = vec![0.0; model.n_params()];
    let fw = model.forward(&tokens);
    model.backward(&fw, &targets, weight, &mut grad);
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    for i in (0..model.n_params()).step_by(stride) {
        let orig = model.params[i];
        model.params[i] = orig + h;
        let up = loss(&model, &tokens, &targets, weight);
        model.params[i] = orig - h;
        let down = loss(&model, &tokens, &targets, weight);
        model.params[i] = orig;
        let fd = (up - down) / (2.0 * h);
        let err = (grad[i] - fd).abs();
        assert!(
            err <= 1e-7 * (1.0 + fd.abs()),
            "{:?} tied={}: parameter {i}: backward {} vs finite difference {fd}",
            config.pos,
            config.tied,
            grad[i]
        );
        worst = worst.max(err);
        checked += 1;
    }
    assert!(checked > 50, "checked {checked} parameters");
    // The check must have had something to check: gradients of order 1e-2 or more.
    assert!(grad.iter().any(|g| g.abs() > 1e-2));
}

#[test]
fn backward_matches_finite_differences_learned_positions_untied() {
    check_gradient(tiny(Pos::Learned, false), 1, 1);
}

#[test]
fn backward_matches_finite_differences_sinusoidal_tied() {
    check_gradient(tiny(Pos::Sinusoidal, true), 2, 3);
}

#[test]
fn backward_matches_finite_differences_rope() {
    check_gradient(tiny(Pos::Rope, true), 3, 3);
    check_gradient(tiny(Pos::Rope, false), 4, 5);
}

#[test]
fn gelu_values_and_derivative() {
    // GELU_tanh(0) = 0; GELU_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) 1.044715)) = 0.841192 (to 6 places).
    assert_eq!(gelu(0.0), 0.0);
    assert!((gelu(1.0) - 0.841192).abs() < 1e-6, "{}", gelu(1.0));
    // Large arguments: the identity and zero.
    assert!((gelu(10.0) - 10.0).abs() < 1e-12 && gelu(-10.0).abs() < 1e-12);
    // d/du at 0 is exactly 1/2.
    assert_eq!(gelu_grad(0.0), 0.5);
    for &u in &[-3.0, -1.2, -0.3, 0.4, 1.7, 2.9] {
        let h = 1e-6;
        let fd = (gelu(u + h) - gelu(u - h)) / (2.0 * h);
        assert!((gelu_grad(u) - fd).abs() < 1e-8, "u = {u}");
    }
}

#[test]
fn causal_softmax_rows_are_distributions_over_the_past() {
    let mut rng = Rng::new(5);
    let s = Array2::from_shape_fn((5, 5), |_| 3.0 * rng.normal());
    let a = causal_softmax(&s);
    for i in 0..5 {
        let sum: f64 = a.row(i).sum();
        assert!((sum - 1.0).abs() < 1e-12);
        for j in 0..5 {
            if j > i {
                assert_eq!(a[[i, j]], 0.0);
            } else {
                assert!(a[[i, j]] > 0.0);
            }
        }
    }
    // Row 0 sees only itself.
    assert_eq!(a[[0, 0]], 1.0);
}

#[test]
fn the_causal_mask_leaks_nothing_from_the_future() {
    for pos in [Pos::Learned, Pos::Sinusoidal, Pos::Rope] {
        let config = Config {
            ctx: 10,
            ..tiny(pos, false)
        };
        let mut model = Model::init(config, 9);
        let mut rng = Rng::new(10);
        for p in model.params.iter_mut() {
            *p += 0.3 * rng.normal();
        }
        let a: Vec<usize> = vec![1, 4, 2, 6, 0, 3, 5, 2, 1, 4];
        for changed in 1..a.len() {
            let mut b = a.clone();
            b[changed] = (b[changed] + 3) % 7;
            let (fa, fb) = (model.forward(&a), model.forward(&b));
            for t in 0..changed {
                assert_eq!(
                    fa.logits.row(t),
                    fb.logits.row(t),
                    "{pos:?}: position {t} saw token {changed}"
                );
            }
            assert_ne!(fa.logits.row(changed), fb.logits.row(changed));
        }
    }
}

#[test]
fn tasks_have_the_stated_structure() {
    let mut rng = Rng::new(3);
    // copy with ctx 8: n = 4 symbols, the bar (16), the same 4; 8 tokens read, the 4 after
    // the bar scored, each target the symbol copied.
    let e = Task::Copy.example(8, &mut rng);
    assert_eq!(e.tokens.len(), 8);
    assert_eq!(e.tokens[4], 16);
    assert_eq!(&e.tokens[5..8], &e.tokens[0..3]);
    let scored: Vec<usize> = (0..8).filter(|&t| e.targets[t].is_some()).collect();
    assert_eq!(scored, vec![4, 5, 6, 7]);
    assert_eq!(e.targets[7], Some(e.tokens[3]));
    // reverse: after the bar the symbols come back last first.
    let e = Task::Reverse.example(8, &mut rng);
    assert_eq!(e.tokens[5], e.tokens[3]);
    assert_eq!(e.targets[7], Some(e.tokens[0]));
    // induction: filler, a segment r of length n in 6 ..= 8 (24 + 1 tokens: 25 / 4 = 6 to
    // 26 / 3 = 8), filler, r again at the end; the 25 - n tokens before the second copy are
    // distinct (fewer than 26 letters); the copies are m apart, m in n ..= 25 - n; exactly the
    // targets inside the second copy are scored (its first token cannot be known), each the
    // token m places earlier.
    let (mut lengths, mut gaps) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..400 {
        let e = Task::Induction.example(24, &mut rng);
        let full: Vec<usize> = e
            .tokens
            .iter()
            .copied()
            .chain(e.targets.last().unwrap().iter().copied())
            .collect();
        assert_eq!(full.len(), 25);
        // m is the distance back to the earlier occurrence of the last token, n the length of
        // the stretch that repeats at that distance.
        let m = (1..25)
            .find(|&d| full[24 - d] == full[24])
            .expect("repeats");
        let n = (1..=25 - m)
            .take_while(|&k| full[25 - k] == full[25 - k - m])
            .count();
        assert!(
            (6..=8).contains(&n) && (n..=25 - n).contains(&m),
            "n {n} m {m}"
        );
        lengths.insert(n);
        gaps.insert(m);
        let second = 25 - n;
        let mut before = full[..second].to_vec();
        before.sort_unstable();
        before.dedup();
        assert_eq!(before.len(), second, "distinct before the second copy");
        for t in 0..24 {
            if t >= second {
                assert_eq!(e.targets[t], Some(full[t + 1 - m]));
            } else {
                assert_eq!(e.targets[t], None);
            }
        }
    }
    // All lengths and distances occur in 400 draws (the rarest distances, 6 and 19, need n = 6,
    // a third of draws, then 1 of 14 distances: 1/42 each, missed with probability
    // (41/42)^400 < 1e-4).
    assert_eq!(lengths.into_iter().collect::<Vec<_>>(), vec![6, 7, 8]);
    assert_eq!(
        gaps.into_iter().collect::<Vec<_>>(),
        (6..=19).collect::<Vec<_>>()
    );
    // brackets: the label after '=' (4) is Y (5) exactly when the string is balanced.
    let (mut yes, mut no) = (0, 0);
    for _ in 0..400 {
        let e = Task::Brackets.example(12, &mut rng);
        let last = e.tokens.len() - 1;
        assert_eq!(e.tokens[last], 4);
        let label = e.targets[last].expect("label scored");
        assert_eq!(label == 5, is_balanced(&e.tokens[..last]));
        assert_eq!(e.targets.iter().filter(|t| t.is_some()).count(), 1);
        if label == 5 {
            yes += 1
        } else {
            no += 1
        }
    }
    // Half balanced, half not: 200 +- 4 standard deviations (sqrt(400 / 4) = 10).
    assert!(
        (160..=240).contains(&yes) && yes + no == 400,
        "{yes} balanced of 400"
    );
    assert!(is_balanced(&[0, 2, 3, 1]) && !is_balanced(&[0, 2, 1, 3]) && !is_balanced(&[0, 0, 1]));
    // text: every target is the next character of the passage.
    let e = Task::Text.example(16, &mut rng);
    assert!(e.targets.iter().all(Option::is_some));
    assert_eq!(Task::Text.decode(&e.tokens).len(), 16);
}

#[test]
fn a_two_layer_model_learns_to_copy() {
    // Budget: with 16 symbols a model that has not learned to copy scores about 1/16; one
    // that has is near 100 %. This small model (d_model 16, 2 heads, ctx 8, batch 16, Adam
    // 3e-3) reached 100 % training accuracy by step 200 for seed 1 and at least 97 % by step
    // 400 for seeds 1 to 5 in a release build; 400 steps for seed 1 leave a margin of 2x.
    let config = TrainConfig {
        task: Task::Copy,
        ctx: 8,
        d_model: 16,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config).expect("valid");
    for _ in 0..400 {
        trainer.step().expect("finite");
    }
    let (loss, accuracy) = trainer.evaluate(64, 777);
    assert!(
        accuracy >= 0.99,
        "held-out copy accuracy {accuracy} (loss {loss})"
    );
}

/// A one-layer, one-head model that attends from position t to t - k (for t >= k), built by
/// hand: position t's embedding is the one-hot e_t (d_model = ctx), W_k the identity and
/// W_q = 20 * shift(-k). Layer norm of a one-hot row keeps its largest component at t
/// (x_hat = (e_t - 1/ctx) / sigma with gain 1, bias 0), so q_t . k_j is largest at j = t - k,
/// by a margin of 20 * 1/sigma^2 / sqrt(ctx) (about 20 here): a weight near 1 after the softmax.
fn offset_head(ctx: usize, k: usize) -> Model {
    let config = Config {
        vocab: 4,
        d_model: ctx,
        n_layers: 1,
        n_heads: 1,
        ctx,
        pos: Pos::Learned,
        tied: true,
    };
    let mut model = Model::init(config, 1);
    let lo = model.layout.clone();
    let d = ctx;
    for x in model.params.iter_mut() {
        *x = 0.0;
    }
    for t in 0..ctx {
        model.params[lo.pos_emb + t * d + t] = 1.0;
    }
    let l = &lo.layers[0];
    for j in 0..d {
        model.params[l.ln1_g + j] = 1.0;
        model.params[lo.lnf_g + j] = 1.0;
        model.params[l.ln2_g + j] = 1.0;
        model.params[l.w_k + j * d + j] = 1.0;
        if j >= k {
            // q = h W_q: row j (input) to column j - k (output).
            model.params[l.w_q + j * d + (j - k)] = 20.0;
        }
    }
    Model::from_params(model.config.clone(), model.params)
}

#[test]
fn head_scores_of_a_hand_built_pattern() {
    // The previous-token head (offset 1) scores near 1 as such and near 0 as an induction head
    // (the probe's copies are at least 3 apart, so the token after the previous occurrence is
    // never the previous token).
    let model = offset_head(8, 1);
    let (prev, ind) = head_scores(&model, 4, 1);
    assert!(prev[0][0] > 0.95, "previous-token score {}", prev[0][0]);
    assert!(ind[0][0] < 0.05, "induction score {}", ind[0][0]);
}

#[test]
fn a_fixed_offset_head_is_not_an_induction_head() {
    // A head that always looks 7 back sits exactly on the stripe i - 8 + 1 of a probe `r r`
    // with |r| = ctx / 2 = 8, and a fixed-length probe would score it as a perfect induction
    // head. At ctx 16 the probes' copies are m apart with |r| = n uniform in 4 ..= 6 and m
    // uniform in n ..= 17 - n, so the head is on the stripe only when m = 8:
    // P = (1/10 + 1/8 + 1/6) / 3 = 0.131, with standard deviation sqrt(0.131 * 0.869 / 64)
    // = 0.042 over 64 probes; 0.3 is 4 of them above.
    let model = offset_head(16, 7);
    let tokens: Vec<usize> = (0..16).map(|t| t % 4).collect();
    let a = &model.forward(&tokens).blocks[0].attn[0];
    let on_offset = (7..16).map(|i| a[[i, i - 7]]).sum::<f64>() / 9.0;
    assert!(on_offset > 0.95, "the head looks 7 back: {on_offset}");
    let (prev, ind) = head_scores(&model, 64, 2);
    assert!(
        ind[0][0] > 0.03 && ind[0][0] < 0.3,
        "induction score {}",
        ind[0][0]
    );
    // Rows 1 ..= 6 have no key 7 back and attend uniformly (q = 0), giving the previous token
    // 1/(i + 1); rows 7 ..= 15 give it about 0: (H_7 - 1) / 15 = 0.106 in all.
    assert!(
        (prev[0][0] - 0.106).abs() < 0.01,
        "previous-token score {}",
        prev[0][0]
    );
}

/// Attention that is uniform over the visible keys: the model with W_q = W_k = 0 (every score
/// 0). Its head scores are the baselines a trained head must beat.
fn uniform_attention(config: Config) -> Model {
    let mut model = Model::init(config, 1);
    let lo = model.layout.clone();
    let d = model.config.d_model;
    for l in &lo.layers {
        model.params[l.w_q..l.w_q + d * d].fill(0.0);
        model.params[l.w_k..l.w_k + d * d].fill(0.0);
    }
    model
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "about 20 s in release, minutes in debug: cargo test --release --test transformer"
)]
fn the_default_model_forms_an_induction_head() {
    // The widget's default (two layers of two heads, d_model 32, RoPE, ctx 16, batch 16, Adam
    // 3e-3) on the induction task, seed 1. Measured in a release build, seed 1: the loss sits
    // near 2.4-2.9 nats (guessing among the tokens seen) with no induction head until about
    // step 2,000, then within 250 steps a previous-token head in layer 0 (score 0.70 -> 0.83)
    // and induction heads in layer 1 (0.43 -> 0.97) appear and the accuracy goes from 0.35 to
    // 1.00. 3,000 steps leave a margin of about 1.5x for seed 1. Not every seed is this
    // quick: seed 4 formed its heads more gradually (layer-1 induction 0.24 at step 2,000, 0.53
    // at 2,750, 0.97 at 3,750); seeds 2, 3 and 5 were still on the plateau at step 4,000 and
    // seed 6 at 2,750 (loss 2.6-2.9, a previous-token score of 0.3-0.5 in layer 1 instead of
    // layer 0; batches of 32 or Adam 1e-2 did not help seeds 2 and 3). So this asserts one
    // known seed, not the phase change's timing in general.
    let config = TrainConfig::default();
    assert_eq!(config.task, Task::Induction);
    let baseline = uniform_attention(config.model_config());
    let (base_prev, base_ind) = head_scores(&baseline, 32, 7);
    // Uniform attention scores 1/(i + 1): previous-token (H_16 - 1) / 15 = 0.159 over
    // i = 1 ..= 15; induction over the second copy (i >= 11) below 1/12 = 0.083.
    assert!(
        (base_prev[0][0] - 0.159).abs() < 1e-3,
        "uniform previous-token score {}",
        base_prev[0][0]
    );
    assert!(
        base_ind[1][0] < 0.083,
        "uniform induction score {}",
        base_ind[1][0]
    );
    let mut trainer = Trainer::new(config).expect("valid");
    for _ in 0..3000 {
        trainer.step().expect("finite");
    }
    let (prev, ind) = head_scores(&trainer.model, 32, 7);
    let (loss, accuracy) = trainer.evaluate(64, 777);
    // 0.5 is 6x the uniform baseline and well above what a head at any fixed offset can score
    // (it sits on the stripe only for the one distance between the copies it matches, at most
    // (1/10 + 1/8 + 1/6) / 3 = 0.13 of the probes, see a_fixed_offset_head_is_not_an_induction_head).
    let best_ind = ind[1].iter().copied().fold(0.0, f64::max);
    let best_prev = prev[0].iter().copied().fold(0.0, f64::max);
    assert!(
        best_ind > 0.5,
        "no induction head in layer 1: {ind:?} (loss {loss}, accuracy {accuracy})"
    );
    assert!(
        best_prev > 0.5,
        "no previous-token head in layer 0: {prev:?} (induction {ind:?})"
    );
    // With the head in place the second copy is predicted: held-out accuracy near 1 (chance is
    // about 1/13, one of the tokens seen).
    assert!(accuracy > 0.9, "held-out accuracy {accuracy} (loss {loss})");
}

fn mlplay(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlplay"))
        .args(args)
        .output()
        .expect("run mlplay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_prints_logged_steps_then_the_head_scores() {
    let (code, out, err) = mlplay(&[
        "transformer",
        "--task",
        "copy",
        "--layers",
        "1",
        "--heads",
        "2",
        "--d-model",
        "8",
        "--ctx",
        "6",
        "--pos",
        "rope",
        "--steps",
        "10",
        "--seed",
        "3",
        "--backend",
        "cpu",
        "--log-every",
        "5",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, step) in lines.iter().zip([5.0, 10.0]) {
        assert_eq!(line["step"], step);
        let loss = line["loss"].as_f64().unwrap();
        // Near ln 17 (17 tokens, nearly uniform at init) this early.
        assert!(loss > 1.0 && loss < 4.0, "{loss}");
        let acc = line["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        assert!(line["wall_ms"].as_f64().unwrap() >= 0.0);
    }
    let last = &lines[2];
    assert_eq!(last["task"], "copy");
    // One layer, two heads: [[a, b]] for each score, each a mean attention weight in [0, 1].
    for key in ["induction", "previous_token"] {
        let s = last[key].as_array().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].as_array().unwrap().len(), 2);
        assert!(s[0]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap())));
    }
    // Same seed, same numbers.
    let (_, again, _) = mlplay(&[
        "transformer",
        "--task",
        "copy",
        "--layers",
        "1",
        "--heads",
        "2",
        "--d-model",
        "8",
        "--ctx",
        "6",
        "--pos",
        "rope",
        "--steps",
        "10",
        "--seed",
        "3",
        "--backend",
        "cpu",
        "--log-every",
        "5",
        "--json",
    ]);
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("wall_ms");
                v.to_string()
            })
            .collect()
    };
    assert_eq!(strip(&out), strip(&again));
}

#[test]
fn cli_rejects_bad_arguments_with_exit_code_2() {
    for (args, needle) in [
        (
            vec!["transformer", "--heads", "3", "--d-model", "16"],
            "must divide",
        ),
        (
            vec!["transformer", "--task", "poetry"],
            "--task must be one of",
        ),
        (
            vec!["transformer", "--pos", "alibi"],
            "--pos must be one of",
        ),
        (
            vec!["transformer", "--layers", "9"],
            "--layers must be a whole number from 1 to 4",
        ),
        (
            vec!["transformer", "--backend", "tpu"],
            "--backend must be cpu or gpu",
        ),
    ] {
        let (code, _, err) = mlplay(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn cli_attention_maps_are_causal_distributions() {
    let (code, out, err) = mlplay(&[
        "transformer",
        "--task",
        "induction",
        "--layers",
        "2",
        "--heads",
        "2",
        "--d-model",
        "8",
        "--ctx",
        "8",
        "--steps",
        "2",
        "--seed",
        "1",
        "--backend",
        "cpu",
        "--attention",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let probe: Vec<u64> = last["probe"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // ctx 8 (9 tokens drawn, 8 read): r has length 3 (9 / 4 < 3 = 10 / 3) and its second
    // copy starts at 9 - 3 = 6, m = 3 ..= 6 after the first, so tokens 6 and 7 repeat tokens
    // 6 - m and 7 - m.
    assert_eq!(probe.len(), 8);
    let m = last["probe_offset"].as_u64().unwrap() as usize;
    assert!((3..=6).contains(&m), "{m}");
    for i in 6..8 {
        assert_eq!(probe[i], probe[i - m]);
    }
    let maps = last["attention"].as_array().unwrap();
    assert_eq!(maps.len(), 2);
    for head in maps.iter().flat_map(|l| l.as_array().unwrap()) {
        for (i, row) in head.as_array().unwrap().iter().enumerate() {
            let row: Vec<f64> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert!(row[i + 1..].iter().all(|&w| w == 0.0));
        }
    }
}
