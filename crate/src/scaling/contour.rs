//! Contour lines of a function sampled on a grid: marching squares (Lorensen & Cline's
//! marching cubes in two dimensions), with the segments joined into polylines so a canvas
//! draws a dozen paths instead of thousands of line segments.
//!
//! A crossing on a grid edge is placed by linear interpolation between the edge's two
//! samples and computed once per edge, so neighbouring cells share endpoints exactly and
//! the segments chain. Saddle cells (two opposite corners above the level) are split by the
//! average of the four corners, the usual disambiguation.

use ndarray::Array2;

/// One contour line: a polyline in (x, y) coordinates, closed when its ends coincide.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub level: f64,
    pub points: Vec<(f64, f64)>,
}

/// The lines where `z == level`; `z[[j, i]]` is the sample at (`xs[i]`, `ys[j]`).
pub fn contour(xs: &[f64], ys: &[f64], z: &Array2<f64>, level: f64) -> Vec<Line> {
    let (ny, nx) = z.dim();
    assert_eq!((nx, ny), (xs.len(), ys.len()), "grid and axes disagree");
    // Edge ids: horizontal edge (i, j)-(i+1, j) is j * nx + i; vertical (i, j)-(i, j+1) is
    // h_edges + j * nx + i.
    let h_edges = ny * nx;
    let above = |i: usize, j: usize| z[[j, i]] > level;
    let cross = |e: usize| -> (f64, f64) {
        let (i0, j0, i1, j1) = if e < h_edges {
            (e % nx, e / nx, e % nx + 1, e / nx)
        } else {
            let e = e - h_edges;
            (e % nx, e / nx, e % nx, e / nx + 1)
        };
        let (z0, z1) = (z[[j0, i0]], z[[j1, i1]]);
        let t = ((level - z0) / (z1 - z0)).clamp(0.0, 1.0);
        (
            xs[i0] + t * (xs[i1] - xs[i0]),
            ys[j0] + t * (ys[j1] - ys[j0]),
        )
    };
    let mut segments: Vec<(usize, usize)> = Vec::new();
    for j in 0..ny.saturating_sub(1) {
        for i in 0..nx.saturating_sub(1) {
            let bottom = j * nx + i;
            let top = (j + 1) * nx + i;
            let left = h_edges + j * nx + i;
            let right = h_edges + j * nx + i + 1;
            // Corner bits: 1 = (i, j), 2 = (i+1, j), 4 = (i+1, j+1), 8 = (i, j+1).
            let case = usize::from(above(i, j))
                | usize::from(above(i + 1, j)) << 1
                | usize::from(above(i + 1, j + 1)) << 2
                | usize::from(above(i, j + 1)) << 3;
            match case {
                0 | 15 => {}
                1 | 14 => segments.push((left, bottom)),
                2 | 13 => segments.push((bottom, right)),
                3 | 12 => segments.push((left, right)),
                4 | 11 => segments.push((right, top)),
                6 | 9 => segments.push((bottom, top)),
                7 | 8 => segments.push((left, top)),
                5 | 10 => {
                    let centre =
                        (z[[j, i]] + z[[j, i + 1]] + z[[j + 1, i + 1]] + z[[j + 1, i]]) / 4.0;
                    // Case 5: corners (i, j) and (i+1, j+1) above. If the centre is above too,
                    // the above region joins them and the two segments cut off the others.
                    if (case == 5) == (centre > level) {
                        segments.push((left, top));
                        segments.push((bottom, right));
                    } else {
                        segments.push((left, bottom));
                        segments.push((right, top));
                    }
                }
                _ => unreachable!("four corner bits"),
            }
        }
    }
    chain(&segments, cross, level)
}

/// Join segments that share an edge crossing into polylines. Each crossing belongs to at
/// most two segments (one per cell beside its edge), so two slots per edge index them.
fn chain(
    segments: &[(usize, usize)],
    cross: impl Fn(usize) -> (f64, f64),
    level: f64,
) -> Vec<Line> {
    const NONE: usize = usize::MAX;
    let edges = segments
        .iter()
        .map(|&(a, b)| a.max(b) + 1)
        .max()
        .unwrap_or(0);
    let mut slots = vec![[NONE; 2]; edges];
    for (s, &(a, b)) in segments.iter().enumerate() {
        for e in [a, b] {
            let slot = &mut slots[e];
            if slot[0] == NONE {
                slot[0] = s;
            } else {
                slot[1] = s;
            }
        }
    }
    let degree = |e: usize| slots[e].iter().filter(|&&s| s != NONE).count();
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    // Open lines first, walked from an end (a crossing with one segment); then the loops.
    for pass in 0..2 {
        for s in 0..segments.len() {
            let (a, b) = segments[s];
            let is_end = degree(a) == 1 || degree(b) == 1;
            if used[s] || (pass == 0 && !is_end) {
                continue;
            }
            let mut edge = if degree(a) == 1 { a } else { b };
            let mut points = vec![cross(edge)];
            let mut seg = s;
            loop {
                used[seg] = true;
                let (a, b) = segments[seg];
                edge = if a == edge { b } else { a };
                points.push(cross(edge));
                match slots[edge].iter().find(|&&t| t != NONE && !used[t]) {
                    Some(&t) => seg = t,
                    None => break,
                }
            }
            lines.push(Line { level, points });
        }
    }
    lines
}
