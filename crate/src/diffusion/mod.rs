//! Denoising diffusion (DDPM, DDIM) and flow matching on 2D point clouds: the math behind
//! `<ml-diffusion>` and `<ml-flow-matching>`.
//!
//! - [`mlp`]: the denoiser eps_theta(x, t) / velocity v_theta(x, t), an f32 MLP with a
//!   sinusoidal time embedding, its hand-written backward pass and Adam (the CPU twin of the
//!   WGSL kernels in `gpu/diffusion.rs`, same flat parameter layout);
//! - [`noise`]: counter-based Gaussian noise (PCG hash + Box-Muller), the same draws on the
//!   CPU and in WGSL for any particle at any step;
//! - [`schedule`]: linear and cosine beta schedules, alpha_bar, the posterior q(x_{t-1}|x_t, x_0),
//!   the forward marginal q(x_t | x_0) in closed form and by iterated steps;
//! - [`data`]: the seeded 2D data sets (and the user's drawn points);
//! - [`train`]: DDPM's simple loss and flow matching, one Adam step at a time;
//! - [`sample`]: DDPM (both sigmas), DDIM (eta), Euler and midpoint as per-step coefficient
//!   tables run by one generic update;
//! - [`swd`]: the sliced Wasserstein distance, the one measure of sample quality;
//! - [`weights`]: the weights file (CLI output, the widgets' default weights);
//! - [`cli`]: `mlplay diffusion-schedule`, `diffusion-train`, `diffusion-sample`;
//! - [`widget`]: the parameter tables of the two widgets and their headless core.
//!
//! All arithmetic is f32 so that the GPU kernels and the CPU twin agree to f32 rounding; the
//! interface between the two is written down in `/work/diffusion-spec.md` (and in the module
//! docs of [`mlp`] and [`noise`]).

pub mod cli;
pub mod data;
pub mod mlp;
pub mod noise;
pub mod sample;
pub mod schedule;
pub mod swd;
pub mod train;
pub mod weights;
pub mod widget;
