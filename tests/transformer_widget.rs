//! `<ml-transformer>`'s core: the sliced training step equals `Trainer::step` bit for bit,
//! the table's defaults are the trainer's, the uniform-attention baselines against hand
//! sums, prompts and their notices, and the step-0 data.

use mlplay::params::Params;
use mlplay::transformer::model::Pos;
use mlplay::transformer::tasks::Task;
use mlplay::transformer::train::{TrainConfig, Trainer};
use mlplay::transformer::widget::{
    default_prompt, parse_prompt, run, train_config, uniform_entropy, uniform_scores, Analysis,
    Run, SPEC,
};

#[test]
fn the_sliced_step_is_trainer_step_bit_for_bit() {
    for (task, pos, tied) in [
        (Task::Induction, Pos::Learned, true),
        (Task::Brackets, Pos::Rope, false),
        (Task::Text, Pos::Sinusoidal, true),
    ] {
        let c = TrainConfig {
            task,
            pos,
            tied,
            n_layers: 2,
            n_heads: 2,
            d_model: 16,
            ctx: 12,
            batch: 3,
            ..TrainConfig::default()
        };
        let mut reference = Trainer::new(c.clone()).unwrap();
        let mut sliced = Run::new(c).unwrap();
        for k in 1..=4u64 {
            let want = reference.step().unwrap();
            // One sequence per call: two calls do nothing visible, the third completes it.
            let mut got = None;
            for i in 0..3 {
                let r = sliced.work();
                assert_eq!(r.is_some(), i == 2, "{task:?} step {k} unit {i}");
                got = r;
            }
            let got = got.unwrap().unwrap();
            assert_eq!(got, want, "{task:?} step {k}");
            assert_eq!(got.step, k);
            assert_eq!(
                sliced.trainer.model.params, reference.model.params,
                "{task:?} weights after step {k}"
            );
        }
    }
}

#[test]
fn a_learning_rate_change_applies_at_the_next_step() {
    let c = TrainConfig {
        d_model: 16,
        batch: 2,
        ..TrainConfig::default()
    };
    let mut reference = Trainer::new(c.clone()).unwrap();
    let mut sliced = Run::new(c).unwrap();
    reference.step().unwrap();
    while sliced.work().is_none() {}
    reference.config.lr = 1e-2;
    sliced.trainer.config.lr = 1e-2;
    reference.step().unwrap();
    while sliced.work().is_none() {}
    assert_eq!(sliced.trainer.model.params, reference.model.params);
}

#[test]
fn the_table_defaults_are_the_trainers() {
    let p = Params::defaults(&SPEC);
    let (c, note) = train_config(&p);
    assert_eq!(c, TrainConfig::default());
    assert_eq!(note, None);
}

#[test]
fn heads_that_do_not_fit_are_lowered_with_a_note() {
    let mut p = Params::defaults(&SPEC);
    p.set("d_model", "24");
    p.set("heads", "5");
    p.set("pos", "learned");
    let (c, note) = train_config(&p);
    // 24 = 2^3 * 3: divisors up to 5 are 1, 2, 3, 4, so 4.
    assert_eq!(c.n_heads, 4);
    assert!(note.unwrap().contains("using 4"));
    p.set("heads", "8");
    p.set("pos", "rope");
    // RoPE needs 24 / H even: H = 8 gives 3, 6 gives 4 (even).
    assert_eq!(train_config(&p).0.n_heads, 6);
}

#[test]
fn uniform_baselines_against_hand_sums() {
    // ctx 8: T = 8, previous-token mean of 1/(i+1) for i = 1..7 = (H_8 - 1)/7,
    // H_8 = 761/280, so (481/280)/7 = 481/1960 = 0.245408...; induction over i = 4..7:
    // (1/5 + 1/6 + 1/7 + 1/8)/4 = (533/840)/4 = 533/3360 = 0.158630...
    let (p, i) = uniform_scores(8);
    assert!((p - 481.0 / 1960.0).abs() < 1e-15, "{p}");
    assert!((i - 533.0 / 3360.0).abs() < 1e-15, "{i}");
    // The mark is twice the largest baseline the table allows (ctx 8 is its minimum).
    assert!(mlplay::transformer::widget::MARK >= 2.0 * p);
    // Uniform entropy of a 3-token map: (ln 1 + ln 2 + ln 3)/3 = ln(6)/3.
    assert!((uniform_entropy(3) - 6f64.ln() / 3.0).abs() < 1e-12);
}

#[test]
fn uniform_attention_maps_score_the_baseline() {
    // An untrained model attends nearly uniformly (scores near the baseline, far below MARK).
    let c = TrainConfig::default();
    let model = mlplay::transformer::model::Model::init(c.model_config(), c.seed);
    let a = Analysis::full(&model, 0, default_prompt(c.task, c.ctx, c.seed));
    let (bp, bi) = uniform_scores(c.ctx);
    for l in 0..c.n_layers {
        for h in 0..c.n_heads {
            assert!(
                (a.prev[l][h] - bp).abs() < 0.05,
                "{l},{h}: {}",
                a.prev[l][h]
            );
            assert!(
                (a.induction[l][h] - bi).abs() < 0.05,
                "{l},{h}: {}",
                a.induction[l][h]
            );
            assert_eq!(a.marks(l, h), (false, false));
            // Entropy near the uniform map's (the most a causal head can have).
            let u = uniform_entropy(a.probe.len());
            assert!(a.entropy[l][h] <= u + 1e-12 && a.entropy[l][h] > 0.9 * u);
        }
    }
}

#[test]
fn prompts_are_checked_against_the_alphabet() {
    assert_eq!(parse_prompt(Task::Induction, "abc").unwrap(), vec![0, 1, 2]);
    let e = parse_prompt(Task::Induction, "abC").unwrap_err();
    assert!(e.contains("'C'") && e.contains("kept"), "{e}");
    assert!(parse_prompt(Task::Brackets, "").is_err());
    assert_eq!(
        parse_prompt(Task::Brackets, "([])=").unwrap(),
        vec![0, 2, 3, 1, 4]
    );
}

#[test]
fn default_prompts_stop_where_the_answer_starts() {
    // copy: n = ctx/2 symbols then the bar; the next token is the first symbol again.
    let p = default_prompt(Task::Copy, 24, 1);
    assert_eq!(p.len(), 13);
    assert_eq!(p[12], 16, "ends with the bar");
    // brackets: the string then '='.
    let p = default_prompt(Task::Brackets, 24, 1);
    assert_eq!(*p.last().unwrap(), 4);
}

#[test]
fn step_zero_data_is_what_the_cli_model_gives() {
    let p = Params::defaults(&SPEC);
    let j = run(&p).to_string();
    assert!(j.contains("\"analysis\"") && j.contains("\"generation\""));
    let c = TrainConfig::default();
    let model = mlplay::transformer::model::Model::init(c.model_config(), c.seed);
    let (prev, _) = mlplay::transformer::train::head_scores(
        &model,
        mlplay::transformer::PROBE_SEQUENCES,
        mlplay::transformer::PROBE_SEED,
    );
    // The same scores the CLI prints, in the same JSON.
    assert!(j.contains(&mlplay::json::Json::nums(&prev[0]).to_string()));
}
