//! The 2D data sets of `<ml-diffusion>` and `<ml-flow-matching>`, each a seeded sampler of
//! points in about [-2, 2]^2 (a scale the unit Gaussian noise covers).
//!
//! - `moons`: scikit-learn's `make_moons` (two interleaved half circles, noise 0.05), centred
//!   at (0.5, 0.25) and scaled by 1.3;
//! - `swiss-roll`: the 2D swiss roll, angle tau = 1.5 pi (1 + 2u), point tau (cos tau, sin tau)
//!   / 7 plus noise 0.02;
//! - `8-gaussians`: eight Gaussians of std 0.1 on the circle of radius 1.6;
//! - `checkerboard`: FFJORD's (Grathwohl et al. 2019) eight squares of side 1 in [-2, 2]^2;
//! - `ring`: a circle of radius 1.5 with radial noise 0.05;
//! - `drawn`: points the user drew, each sample one of them (uniformly) plus noise 0.04.

use ndarray::Array2;

use crate::rng::Rng;

/// A data distribution in the plane.
#[derive(Clone, Debug, PartialEq)]
pub enum Dataset {
    Moons,
    SwissRoll,
    Gaussians8,
    Checkerboard,
    Ring,
    /// The user's points (at least one).
    Drawn(Vec<[f32; 2]>),
}

/// The names, in the order of the widget's menu.
pub const NAMES: [&str; 6] = [
    "moons",
    "swiss-roll",
    "8-gaussians",
    "checkerboard",
    "ring",
    "drawn",
];

/// Jitter around each drawn point.
pub const DRAWN_NOISE: f64 = 0.04;

impl Dataset {
    /// A built-in data set by name (`drawn` needs [`Dataset::drawn`]).
    pub fn from_name(name: &str) -> Result<Self, String> {
        Ok(match name {
            "moons" => Self::Moons,
            "swiss-roll" => Self::SwissRoll,
            "8-gaussians" => Self::Gaussians8,
            "checkerboard" => Self::Checkerboard,
            "ring" => Self::Ring,
            "drawn" => return Err("the drawn data set needs points".into()),
            _ => return Err(format!("unknown data set {name:?} ({})", NAMES.join(", "))),
        })
    }

    /// The user's points as a data set; they must be finite and at least one.
    pub fn drawn(points: Vec<[f32; 2]>) -> Result<Self, String> {
        if points.is_empty() {
            return Err("draw at least one point".into());
        }
        if points.iter().flatten().any(|v| !v.is_finite()) {
            return Err("drawn points must be finite numbers".into());
        }
        Ok(Self::Drawn(points))
    }

    /// The index of this data set in [`NAMES`] (its id in the weights file).
    pub fn id(&self) -> usize {
        match self {
            Self::Moons => 0,
            Self::SwissRoll => 1,
            Self::Gaussians8 => 2,
            Self::Checkerboard => 3,
            Self::Ring => 4,
            Self::Drawn(_) => 5,
        }
    }

    pub fn name(&self) -> &'static str {
        NAMES[self.id()]
    }

    /// One point.
    pub fn draw(&self, rng: &mut Rng) -> [f32; 2] {
        use std::f64::consts::PI;
        let (x, y) = match self {
            Self::Moons => {
                let upper = rng.uniform() < 0.5;
                let a = PI * rng.uniform();
                let (s, c) = crate::math::sin_cos(a);
                let (x, y) = if upper { (c, s) } else { (1.0 - c, 0.5 - s) };
                let (nx, ny) = (0.05 * rng.normal(), 0.05 * rng.normal());
                (1.3 * (x + nx - 0.5), 1.3 * (y + ny - 0.25))
            }
            Self::SwissRoll => {
                let tau = 1.5 * PI * (1.0 + 2.0 * rng.uniform());
                let (s, c) = crate::math::sin_cos(tau);
                let (nx, ny) = (0.02 * rng.normal(), 0.02 * rng.normal());
                (tau * c / 7.0 + nx, tau * s / 7.0 + ny)
            }
            Self::Gaussians8 => {
                let k = (rng.uniform() * 8.0) as usize % 8;
                let (s, c) = crate::math::sin_cos(k as f64 * PI / 4.0);
                (1.6 * c + 0.1 * rng.normal(), 1.6 * s + 0.1 * rng.normal())
            }
            Self::Checkerboard => {
                // FFJORD: x1 ~ U(-2, 2), x2 ~ U(0, 1) - 2 {0, 1} + (floor(x1) mod 2).
                let x1 = 4.0 * rng.uniform() - 2.0;
                let shift = if rng.uniform() < 0.5 { 0.0 } else { -2.0 };
                let x2 = rng.uniform() + shift + x1.floor().rem_euclid(2.0);
                (x1, x2)
            }
            Self::Ring => {
                let (s, c) = crate::math::sin_cos(2.0 * PI * rng.uniform());
                let r = 1.5 + 0.05 * rng.normal();
                (r * c, r * s)
            }
            Self::Drawn(points) => {
                let p =
                    points[((rng.uniform() * points.len() as f64) as usize).min(points.len() - 1)];
                (
                    p[0] as f64 + DRAWN_NOISE * rng.normal(),
                    p[1] as f64 + DRAWN_NOISE * rng.normal(),
                )
            }
        };
        [x as f32, y as f32]
    }

    /// `n` points, `(n, 2)`.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Array2<f32> {
        let mut out = Array2::zeros((n, 2)); // (n, 2)
        for mut row in out.rows_mut() {
            let p = self.draw(rng);
            row[0] = p[0];
            row[1] = p[1];
        }
        out
    }

    /// `n` points from `Rng::new(seed)`, `(n, 2)`.
    pub fn sample_seeded(&self, n: usize, seed: u64) -> Array2<f32> {
        self.sample(n, &mut Rng::new(seed))
    }
}

/// Points written as `x,y;x,y;...` (the CLI's and the widget's drawn data).
pub fn parse_points(text: &str) -> Result<Vec<[f32; 2]>, String> {
    let mut pts = Vec::new();
    for pair in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let mut it = pair
            .split(',')
            .map(|v| crate::math::parse_f64(v.trim()).map(|v| v as f32));
        match (it.next(), it.next(), it.next()) {
            (Some(Some(x)), Some(Some(y)), None) if x.is_finite() && y.is_finite() => {
                pts.push([x, y])
            }
            _ => return Err(format!("bad point {pair:?} (write x,y;x,y;...)")),
        }
    }
    Ok(pts)
}
