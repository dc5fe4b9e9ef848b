//! The weights file of a trained denoiser (`mlplay diffusion-train --out FILE`, and the
//! default weights under `www/weights/` that the widgets fetch on demand), little-endian:
//!
//! ```text
//! offset  0  b"MLPD"                 magic
//!         4  u32 version = 1
//!         8  u32 method              0 ddpm, 1 flow
//!        12  u32 schedule            0 linear, 1 cosine
//!        16  u32 T                   diffusion steps
//!        20  u32 H                   hidden width
//!        24  u32 data set            index in data::NAMES
//!        28  u32 training steps
//!        32  u64 seed
//!        40  f32 x n_params(H)       the flat parameters of mlp.rs
//! ```

use super::data::NAMES as DATASETS;
use super::mlp::{n_params, Mlp};
use super::schedule::ScheduleKind;
use super::train::{Method, Model};

pub const MAGIC: &[u8; 4] = b"MLPD";
pub const VERSION: u32 = 1;
pub const HEADER: usize = 40;

/// The file's bytes.
pub fn to_bytes(m: &Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 4 * m.net.params.len());
    out.extend_from_slice(MAGIC);
    for v in [
        VERSION,
        m.method as u32,
        m.schedule as u32,
        m.big_t as u32,
        m.net.hidden as u32,
        m.dataset as u32,
        m.steps,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&m.seed.to_le_bytes());
    for p in &m.net.params {
        out.extend_from_slice(&p.to_le_bytes());
    }
    out
}

/// A model from the file's bytes, with a message saying what is wrong otherwise.
pub fn from_bytes(b: &[u8]) -> Result<Model, String> {
    if b.len() < HEADER || &b[..4] != MAGIC {
        return Err("not a mlplay diffusion weights file (no MLPD header)".into());
    }
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if u(4) != VERSION {
        return Err(format!(
            "weights file version {} (this mlplay reads {VERSION})",
            u(4)
        ));
    }
    let method = match u(8) {
        0 => Method::Ddpm,
        1 => Method::Flow,
        v => return Err(format!("unknown method {v} in the weights file")),
    };
    let schedule = match u(12) {
        0 => ScheduleKind::Linear,
        1 => ScheduleKind::Cosine,
        v => return Err(format!("unknown schedule {v} in the weights file")),
    };
    let (big_t, hidden, dataset, steps) = (u(16) as usize, u(20) as usize, u(24) as usize, u(28));
    if big_t == 0 || hidden == 0 || hidden > 1024 || dataset >= DATASETS.len() {
        return Err("corrupt weights file header".into());
    }
    let seed = u64::from_le_bytes(b[32..40].try_into().expect("8 bytes"));
    let n = n_params(hidden);
    if b.len() != HEADER + 4 * n {
        return Err(format!(
            "weights file has {} bytes, an MLP of width {hidden} needs {}",
            b.len(),
            HEADER + 4 * n
        ));
    }
    let params: Vec<f32> = b[HEADER..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if params.iter().any(|v| !v.is_finite()) {
        return Err("weights file holds non-finite parameters".into());
    }
    Ok(Model {
        method,
        schedule,
        big_t,
        steps,
        dataset,
        seed,
        net: Mlp::from_params(hidden, params)?,
    })
}
