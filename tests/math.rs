//! `math::parse_f64`: the grammar and the bits of `str::parse::<f64>`, which it replaces so
//! the wasm need not carry core's float parser (the browser converts with `parseFloat`;
//! tests/wasm.rs checks those bits against the constants below).

use mlplay::math::parse_f64;
use mlplay::rng::Rng;

/// Strings with their nearest doubles as bit patterns, from IEEE 754 (checked with CPython's
/// `struct.pack('<d', float(s))`): 0.1 = 0x3FB999999999999A; 1e23 is not representable and
/// its neighbours are far apart (a classic for parsers that round twice); 5e-324 = 2^-1074 is
/// the smallest subnormal, bit pattern 1; 1.7976931348623157e308 the largest finite double.
const EXACT: &[(&str, u64)] = &[
    ("0.1", 0x3FB9_9999_9999_999A),
    ("1", 0x3FF0_0000_0000_0000),
    ("-2.5", 0xC004_0000_0000_0000),
    ("1e23", 0x44B5_2D02_C7E1_4AF6),
    ("5e-324", 0x0000_0000_0000_0001),
    ("1.7976931348623157e308", 0x7FEF_FFFF_FFFF_FFFF),
    ("0.30000000000000004", 0x3FD3_3333_3333_3334),
    (".5", 0x3FE0_0000_0000_0000),
    ("3.", 0x4008_0000_0000_0000),
    ("+1E+2", 0x4059_0000_0000_0000),
];

#[test]
fn exact_bits_of_hand_checked_values() {
    for &(s, bits) in EXACT {
        assert_eq!(parse_f64(s).map(f64::to_bits), Some(bits), "{s}");
    }
}

#[test]
fn rejects_what_str_parse_rejects() {
    for bad in [
        "", "-", ".", "e5", "1e", "1e+", "0x10", "1.2.3", " 1", "1 ", "1,5", "--1", "in", "nana",
        "1_0",
    ] {
        assert_eq!(parse_f64(bad), None, "{bad:?}");
        assert!(
            bad.parse::<f64>().is_err(),
            "{bad:?} is accepted by str::parse"
        );
    }
}

#[test]
fn specials_like_str_parse() {
    assert_eq!(parse_f64("inf"), Some(f64::INFINITY));
    assert_eq!(parse_f64("-Infinity"), Some(f64::NEG_INFINITY));
    assert!(parse_f64("NaN").unwrap().is_nan());
    assert_eq!(parse_f64("1e400"), Some(f64::INFINITY));
    assert_eq!(
        parse_f64("-1e-400").map(f64::to_bits),
        Some((-0.0f64).to_bits())
    );
}

/// Property: on random decimal strings of every shape the grammar allows, the same answer as
/// `str::parse` (including which strings are rejected).
#[test]
fn agrees_with_str_parse_on_random_strings() {
    let mut rng = Rng::new(7);
    let alphabet = b"0123456789.eE+-";
    for _ in 0..20_000 {
        let len = 1 + (rng.uniform() * 12.0) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(rng.uniform() * alphabet.len() as f64) as usize] as char)
            .collect();
        let want = s.parse::<f64>().ok().map(f64::to_bits);
        assert_eq!(parse_f64(&s).map(f64::to_bits), want, "{s:?}");
    }
}
