//! Every WGSL file under crate/src/gpu/ parses and validates with naga (the shader compiler
//! inside wgpu), in a plain `cargo test`: no GPU, no `gpu` feature needed. A shader added
//! beside a new kernel is picked up without touching this file.

use std::path::{Path, PathBuf};

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wgsl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
}

/// Parse and validate; the error names the file, line and column.
pub fn validate(name: &str, source: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| format!("{name}: {}", e.emit_to_string_with_path(source, name)))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| format!("{name}: {}", e.emit_to_string_with_path(source, name)))?;
    Ok(module)
}

#[test]
fn every_shader_validates_without_optional_capabilities() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/src/gpu");
    let mut files = Vec::new();
    wgsl_files(&dir, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("flash.wgsl"))
            && files.iter().any(|f| f.ends_with("attention.wgsl")),
        "expected the attention shaders in {dir:?}, found {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("mlp.wgsl"))
            && files.iter().any(|f| f.ends_with("sampler.wgsl")),
        "expected the diffusion shaders in {dir:?}, found {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("transformer.wgsl")),
        "expected the transformer's shader in {dir:?}, found {files:?}"
    );
    for f in &files {
        let source = std::fs::read_to_string(f).unwrap();
        let module = validate(&f.display().to_string(), &source).unwrap_or_else(|e| panic!("{e}"));
        assert!(!module.entry_points.is_empty(), "{f:?} has no entry point");
        // The house rule: a header comment naming the bindings.
        assert!(
            source.starts_with("//") && source.contains("Bindings"),
            "{f:?} should open with a comment naming its bindings and its math"
        );
    }
}

#[test]
fn entry_points_are_compute_with_the_documented_workgroup_sizes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/src/gpu");
    let naive = validate(
        "attention.wgsl",
        &std::fs::read_to_string(dir.join("attention.wgsl")).unwrap(),
    )
    .unwrap();
    let sizes: Vec<(String, [u32; 3])> = naive
        .entry_points
        .iter()
        .map(|e| (e.name.clone(), e.workgroup_size))
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("scores".to_string(), [16, 16, 1]),
            ("softmax_rows".to_string(), [64, 1, 1]),
            ("weighted_sum".to_string(), [64, 1, 1]),
            ("pool".to_string(), [8, 8, 1]),
        ]
    );
    let flash = validate(
        "flash.wgsl",
        &std::fs::read_to_string(dir.join("flash.wgsl")).unwrap(),
    )
    .unwrap();
    assert_eq!(flash.entry_points.len(), 1);
    assert_eq!(flash.entry_points[0].workgroup_size, [8, 16, 1]);
}

#[test]
fn diffusion_entry_points_are_the_ones_the_host_dispatches() {
    // crate/src/gpu/{mlp,sampler}.rs build pipelines by these names and dispatch 64-thread
    // workgroups (the flat thread index of the shaders assumes 64).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/src/gpu");
    for (file, names) in [
        (
            "mlp.wgsl",
            &[
                "forward_hidden",
                "forward_out",
                "backward_hidden",
                "grad_partial",
                "adam",
                "loss_sum",
            ][..],
        ),
        ("sampler.wgsl", &["init", "advance"][..]),
    ] {
        let module = validate(file, &std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let found: Vec<(String, [u32; 3])> = module
            .entry_points
            .iter()
            .map(|e| (e.name.clone(), e.workgroup_size))
            .collect();
        let want: Vec<(String, [u32; 3])> =
            names.iter().map(|n| (n.to_string(), [64, 1, 1])).collect();
        assert_eq!(found, want, "{file}");
    }
}

#[test]
fn transformer_entry_points_are_the_ones_the_host_dispatches() {
    // crate/src/gpu/transformer.rs builds its pipelines by these names (ENTRY_POINTS, in this
    // order); the GEMM's 16 x 16 tile, the reductions' 256 threads and the 64-thread flat
    // kernels are assumed by the host's workgroup counts.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/src/gpu");
    let file = "transformer.wgsl";
    let module = validate(file, &std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    let found: Vec<(String, [u32; 3])> = module
        .entry_points
        .iter()
        .map(|e| (e.name.clone(), e.workgroup_size))
        .collect();
    let want: Vec<(String, [u32; 3])> = [
        ("gemm", [16, 16, 1]),
        ("embed", [64, 1, 1]),
        ("layer_norm", [64, 1, 1]),
        ("ln_back", [64, 1, 1]),
        ("col_sum", [64, 1, 1]),
        ("rope", [64, 1, 1]),
        ("softmax_causal", [64, 1, 1]),
        ("softmax_back", [64, 1, 1]),
        ("gelu", [64, 1, 1]),
        ("gelu_back", [64, 1, 1]),
        ("xent", [64, 1, 1]),
        ("embed_back", [64, 1, 1]),
        ("finish", [256, 1, 1]),
        ("adam", [64, 1, 1]),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), *s))
    .collect();
    assert_eq!(found, want, "{file}");
}

#[test]
fn a_broken_shader_is_reported() {
    // The validator must be able to fail: a type error and an out-of-range binding use.
    assert!(validate("bad.wgsl", "fn f() -> f32 { return 1u; }").is_err());
    assert!(validate(
        "bad.wgsl",
        "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
         @compute @workgroup_size(1) fn main() { x[0] = 1.0; }"
    )
    .is_err());
}
