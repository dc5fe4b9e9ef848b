//! Denoising diffusion (DDPM, DDIM) and flow matching on 2D point clouds: the math behind
//! `<ml-diffusion>` and `<ml-flow-matching>`.
//!
//! - [`mlp`]: the denoiser eps_theta(x, t) / velocity v_theta(x, t), an f32 MLP with a
//!   sinusoidal time embedding, its hand-written backward pass and Adam (the CPU twin of the
//!   WGSL kernels in `gpu/diffusion.rs`, same flat parameter layout);
//! - [`noise`]: counter-based Gaussian noise (PCG hash + Box-Muller), the same draws on the
//!   CPU and in WGSL for any particle at any step.
//!
//! All arithmetic is f32 so that the GPU kernels and the CPU twin agree to f32 rounding; the
//! interface between the two is written down in `/work/diffusion-spec.md` (and in the module
//! docs of [`mlp`] and [`noise`]).

pub mod mlp;
pub mod noise;
