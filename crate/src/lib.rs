//! mlplay: the mathematics of modern machine learning as interactive widgets.
//!
//! Map of the crate:
//! - the math, ndarray + std only, one algorithm per file: [`ppo_clip`], [`rope`],
//!   [`scaling`], [`dpo`], [`grpo`], [`attention`], [`flash`], [`kvcache`], [`transformer`];
//!   [`cartpole`] (the environment), [`nn`] (MLP, backward pass, Adam), [`ppo`] (the trainer),
//!   with [`cartpole_ppo`] the widget's table, presets and CLI; [`diffusion`] (DDPM, DDIM
//!   and flow matching on 2D data: the f32 denoiser, schedules, samplers, CLI and widget tables);
//! - [`rng`]: the one seeded PRNG, passed explicitly (no global randomness);
//! - [`params`]: one `ParamSpec` table per widget; attributes, URL parameters, sliders and
//!   CLI flags are all validated against it;
//! - [`widgets`]: the registry that runs each widget's core headless (CLI and `state`);
//! - [`json`]: the small JSON writer (and reader) the CLI and the browser use;
//! - `gpu` (feature `gpu`): WGSL compute kernels through wgpu, each beside its CPU twin's
//!   file in the math above; one `GpuContext` shared by everything that computes;
//! - [`math`]: sin, cos, pow, ln, ... with the same bits natively and in wasm;
//! - `web` (feature `web`, wasm only): the wasm-bindgen layer that owns element handles and
//!   draws into canvases; the custom elements themselves live in `www/mlplay.js`.

pub mod attention;
pub mod cartpole;
pub mod cartpole_ppo;
pub mod diffusion;
pub mod dpo;
pub mod flash;
pub mod grpo;
pub mod json;
pub mod kvcache;
pub mod math;
pub mod nn;
pub mod params;
pub mod ppo;
pub mod ppo_clip;
pub mod rng;
pub mod rope;
pub mod scaling;
pub mod transformer;
pub mod widgets;

#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(feature = "web")]
pub mod web;
