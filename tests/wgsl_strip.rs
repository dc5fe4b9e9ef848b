//! The shipped WGSL (`gpu::wgsl!`, comments stripped at compile time) against the files:
//! the same code lines in the same order, nothing but comments and blank lines gone, and it
//! still validates with naga; plus hand-written cases for the stripper itself.
#![cfg(feature = "gpu")]

use mlplay::gpu::{attention, flash, mlp, sampler, strip_wgsl};

/// The reference: every line cut at its first `//`, trailing whitespace dropped, lines left
/// empty dropped, each remaining line ended by a newline. Written with `str` methods,
/// independently of the `const fn`'s byte loop.
fn reference(src: &str) -> String {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or("").trim_end())
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

fn strip(src: &str) -> String {
    let n = strip_wgsl(src, &mut []);
    let mut out = vec![0u8; n];
    assert_eq!(strip_wgsl(src, &mut out), n, "measuring and writing agree");
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

const FILES: [(&str, &str, &str); 4] = [
    (
        "attention.wgsl",
        include_str!("../crate/src/gpu/attention.wgsl"),
        attention::WGSL,
    ),
    (
        "flash.wgsl",
        include_str!("../crate/src/gpu/flash.wgsl"),
        flash::WGSL,
    ),
    (
        "mlp.wgsl",
        include_str!("../crate/src/gpu/mlp.wgsl"),
        mlp::WGSL,
    ),
    (
        "sampler.wgsl",
        include_str!("../crate/src/gpu/sampler.wgsl"),
        sampler::WGSL,
    ),
];

#[test]
fn shipped_shaders_are_the_files_less_their_comments() {
    for (name, file, shipped) in FILES {
        assert_eq!(shipped, reference(file), "{name}");
        assert!(!shipped.contains("//"), "{name} still has a comment");
        // Something was stripped (both files are commented), and no code line was lost.
        assert!(shipped.len() < file.len(), "{name}");
        let code_lines = file
            .lines()
            .filter(|l| !l.trim_start().starts_with("//") && !l.trim().is_empty())
            .count();
        assert_eq!(shipped.lines().count(), code_lines, "{name}");
    }
}

#[test]
fn shipped_shaders_validate_with_naga() {
    for (name, _, shipped) in FILES {
        let module = naga::front::wgsl::parse_str(shipped)
            .map_err(|e| e.emit_to_string_with_path(shipped, name))
            .unwrap();
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string_with_path(shipped, name)));
    }
}

#[test]
fn flash_tile_rewrites_still_find_their_lines() {
    // TileConfig::source rewrites `const TX: u32 = 8u;` etc. in the shipped text (and
    // asserts it found each line); the rewritten shader must still validate.
    let c = flash::TileConfig {
        tx: 4,
        ty: 8,
        dp: 32,
    };
    let src = c.source();
    for line in [
        "const TX: u32 = 4u;",
        "const TY: u32 = 8u;",
        "const DP: u32 = 32u;",
    ] {
        assert!(src.contains(line), "{line}");
    }
    naga::front::wgsl::parse_str(&src).expect("the rewritten shader parses");
}

#[test]
fn stripper_cases_by_hand() {
    // (input, expected): comments, indentation kept, trailing blanks and CRLF.
    let cases = [
        ("", ""),
        ("// only a comment", ""),
        ("fn f() {}", "fn f() {}\n"),
        ("a // b\n\n  // c\n  x = 1;  // d\n}", "a\n  x = 1;\n}\n"),
        ("a\r\n// b\r\nc\r\n", "a\nc\n"),
        ("x = a / b; // not / but //\n", "x = a / b;\n"),
        ("   \n\t\nz", "z\n"),
        ("p // é ü → ∑\nq", "p\nq\n"),
    ];
    for (input, want) in cases {
        assert_eq!(strip(input), want, "{input:?}");
        assert_eq!(reference(input), want, "reference on {input:?}");
    }
    // A too-short buffer is filled as far as it reaches; the length is still the whole.
    let mut short = [0u8; 3];
    assert_eq!(strip_wgsl("abcdef // x\n", &mut short), 7);
    assert_eq!(&short, b"abc");
}
