//! mlplay: the mathematics of modern machine learning as interactive widgets.
//!
//! Map of the crate:
//! - the math, ndarray + std only, one algorithm per file: [`ppo_clip`], [`rope`],
//!   [`attention`], [`flash`], [`kvcache`];
//! - [`rng`]: the one seeded PRNG, passed explicitly (no global randomness);
//! - [`params`]: one `ParamSpec` table per widget; attributes, URL parameters, sliders and
//!   CLI flags are all validated against it;
//! - [`widgets`]: the registry that runs each widget's core headless (CLI and `state`);
//! - [`json`]: the small JSON writer both the CLI and the browser use;
//! - `gpu` (feature `gpu`): WGSL compute kernels through wgpu, each beside its CPU twin's
//!   file in the math above; one `GpuContext` shared by everything that computes;
//! - [`math`]: sin, cos, pow, ln, ... with the same bits natively and in wasm;
//! - `web` (feature `web`, wasm only): the wasm-bindgen layer that owns element handles and
//!   draws into canvases; the custom elements themselves live in `www/mlplay.js`.

pub mod attention;
pub mod flash;
pub mod json;
pub mod kvcache;
pub mod math;
pub mod params;
pub mod ppo_clip;
pub mod rng;
pub mod rope;
pub mod widgets;

#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(feature = "web")]
pub mod web;
