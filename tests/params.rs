//! Parameter parsing, clamping, notices and URL round trips against the widget tables.

use mlplay::params::Params;
use mlplay::ppo_clip::SPEC;
use mlplay::rng::Rng;
use mlplay::widgets;

#[test]
fn defaults_are_inside_their_ranges_for_every_widget() {
    for w in widgets::ALL {
        for p in w.params {
            // The default in force: the table's or the one the core supplies.
            let default = w.default_of(p);
            assert!(p.min <= default && default <= p.max, "{}.{}", w.name, p.key);
            assert!(p.step > 0.0, "{}.{}", w.name, p.key);
            assert!(!p.label.is_empty() && !p.doc.is_empty());
        }
        let keys: Vec<_> = w.params.iter().map(|p| p.key).collect();
        let mut dedup = keys.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(keys.len(), dedup.len(), "duplicate key in {}", w.name);
    }
}

#[test]
fn lenient_set_clamps_defaults_and_rounds_with_a_notice() {
    let mut p = Params::defaults(&SPEC);
    assert_eq!(p.set("eps", "0.3"), None);
    assert_eq!(p.get("eps"), 0.3);

    let n = p.set("eps", "7").expect("a notice");
    assert_eq!(n.key, "eps");
    assert!(
        n.message.contains("above the maximum") && n.message.contains("0.50"),
        "{}",
        n.message
    );
    assert_eq!(p.get("eps"), 0.5);

    let n = p.set("eps", "-1").expect("a notice");
    assert!(n.message.contains("below the minimum"));
    assert_eq!(p.get("eps"), 0.01);

    for garbage in ["banana", "", "NaN", "inf", "1e999", "0x10"] {
        let n = p.set("adv", garbage).expect("a notice");
        assert!(
            n.message.contains("not a number"),
            "{garbage}: {}",
            n.message
        );
        assert_eq!(p.get("adv"), 1.0, "{garbage}");
    }

    let n = p.set("epochs", "2.5").expect("a notice");
    assert!(n.message.contains("whole number"));
    assert_eq!(p.get("epochs"), 3.0);

    let n = p.set("nope", "1").expect("a notice");
    assert!(n.message.contains("unknown parameter"));
    assert_eq!(p, {
        let mut q = Params::defaults(&SPEC);
        q.set("eps", "-1");
        q.set("epochs", "3");
        q
    });
}

#[test]
fn strict_set_names_the_key_and_range() {
    let mut p = Params::defaults(&SPEC);
    let e = p.set_strict("eps", "0.9").unwrap_err();
    assert!(e.contains("--eps") && e.contains("0.01 to 0.50"), "{e}");
    let e = p.set_strict("epochs", "1.5").unwrap_err();
    assert!(e.contains("whole number") && e.contains("1 to 100"), "{e}");
    let e = p.set_strict("bogus", "1").unwrap_err();
    assert!(e.contains("--bogus") && e.contains("--eps"), "{e}");
    assert_eq!(
        p,
        Params::defaults(&SPEC),
        "a rejected value changes nothing"
    );
    p.set_strict("eps", " 0.25 ").unwrap();
    assert_eq!(p.get("eps"), 0.25);
}

#[test]
fn query_round_trip_is_exact_for_random_valid_states() {
    let mut rng = Rng::new(42);
    for _ in 0..500 {
        let mut p = Params::defaults(&SPEC);
        for spec in SPEC.params {
            let mut v = rng.uniform_range(spec.min, spec.max);
            if spec.is_integer() {
                v = v.round();
            }
            assert_eq!(p.set(spec.key, &format!("{v}")), None);
        }
        let q = p.to_query();
        let (back, notices) = Params::from_query(&SPEC, &q, &[]);
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(back, p, "{q}");
    }
}

#[test]
fn query_parsing_decodes_ignores_page_keys_and_reports_the_rest() {
    let (p, notices) = Params::from_query(
        &SPEC,
        "?w=ppo-clip&eps=0%2E3&adv=%2D1&theme=dark&zzz=1&seed=12&epochs=abc%ZZ",
        &["w", "theme"],
    );
    assert_eq!(p.get("eps"), 0.3);
    assert_eq!(p.get("adv"), -1.0);
    assert_eq!(p.get("seed"), 12.0);
    assert_eq!(p.get("epochs"), 20.0);
    let keys: Vec<_> = notices.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["zzz", "epochs"]);
    // Malformed escapes and multi-byte text never panic.
    let (_, n) = Params::from_query(&SPEC, "eps=%&adv=%e2%82&seed=é&&=&lr", &[]);
    let keys: Vec<_> = n.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["eps", "adv", "seed", "lr"], "{n:?}");
}

static CHOICES: mlplay::params::WidgetSpec = mlplay::params::WidgetSpec {
    name: "test-choices",
    title: "A widget with a menu",
    summary: "For tests.",
    trainer: false,
    params: &[
        mlplay::params::ParamSpec::choice(
            "pairing",
            "Pairing",
            "pairing",
            "Which coordinates form a rotation pair.",
            0,
            &["interleaved", "halves"],
        ),
        mlplay::params::ParamSpec::number(
            "d",
            "Dimension",
            "d",
            "Head dimension.",
            8.0,
            2.0,
            64.0,
            2.0,
        ),
    ],
};

#[test]
fn choices_are_written_and_read_by_name() {
    let mut p = Params::defaults(&CHOICES);
    assert_eq!(p.choice("pairing"), "interleaved");
    assert_eq!(p.set("pairing", "HALVES"), None);
    assert_eq!(p.choice("pairing"), "halves");
    assert_eq!(p.to_query(), "pairing=halves&d=8");
    assert_eq!(p.to_json().to_string(), r#"{"pairing":"halves","d":8}"#);
    let (back, n) = Params::from_query(&CHOICES, &p.to_query(), &[]);
    assert!(n.is_empty());
    assert_eq!(back, p);

    let n = p.set("pairing", "diagonal").expect("a notice");
    assert!(
        n.message.contains("one of interleaved, halves"),
        "{}",
        n.message
    );
    assert_eq!(p.choice("pairing"), "interleaved");
    let e = p.set_strict("pairing", "diagonal").unwrap_err();
    assert!(
        e.contains("--pairing must be one of interleaved, halves"),
        "{e}"
    );
    // A whole-number step of 2 from 2 keeps d whole, and the range is enforced.
    assert!(p.set("d", "65").is_some());
    assert_eq!(p.get("d"), 64.0);
}
