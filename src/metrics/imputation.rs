//! Removing pixels by imputation: the fill ROAD (Rong et al., ICML 2022) and ROAR (Hooker
//! et al., NeurIPS 2019) put where a map's pixels were.
//!
//! - [`Imputation::Mean`]: every removed pixel takes a per-channel value (ROAR's dataset
//!   mean; ROAD's "fixed" imputer uses the image's own channel mean).
//! - [`Imputation::NoisyLinear`]: ROAD's noisy linear imputation (`road/imputations.py`,
//!   `NoisyLinearImputer`, of github.com/tleemann/road_evaluation). Each removed pixel is
//!   the weighted mean of its in-image 8 neighbours, direct ones weighing 1/6 and diagonal
//!   ones 1/12; at the border the weights of the neighbours outside the image are dropped
//!   and the rest renormalised (the reference subtracts them from the diagonal). Kept
//!   neighbours enter as constants, so the removed pixels of one channel solve
//!   (D − W) x = b, with D the in-image weight sums, W the weights between removed
//!   pixels and b the weighted kept neighbours: symmetric (the weights are), and positive
//!   definite as soon as one pixel is kept (every connected patch of removed pixels then
//!   touches a kept one). Then N(0, σ²) noise is added to every imputed value (σ = 0.01
//!   in the reference, whose images are in [0, 1]).
//!
//! Differences from the reference:
//! - The reference factorises the system exactly (scipy's `spsolve`); here it is solved by
//!   SSOR-preconditioned conjugate gradients in f64 to a relative residual
//!   ‖b − Ax‖ ≤ [`CG_TOLERANCE`]·‖b‖, far below the f32 the values are stored in.
//! - Nothing kept leaves the system singular (the reference's `spsolve` fails); the mean
//!   fill is used instead.
//! - The noise comes from a seeded ChaCha8 generator, not torch's global one.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::MetricError;

/// Relative residual the linear solve stops at.
pub const CG_TOLERANCE: f64 = 1e-8;

/// SSOR's relaxation factor (1.5–1.9 all work; measured on 224×224 masks).
const SSOR_OMEGA: f64 = 1.7;

/// ROAD's default noise: 0.01 in the [0, 1] pixel scale of the reference's images.
pub const ROAD_NOISE_STD: f32 = 0.01;

/// The 8 neighbours' offsets (dy, dx) and weights, as in the reference.
pub const NEIGHBOURS: [(isize, isize, f64); 8] = [
    (-1, -1, 1.0 / 12.0),
    (-1, 0, 1.0 / 6.0),
    (-1, 1, 1.0 / 12.0),
    (0, -1, 1.0 / 6.0),
    (0, 1, 1.0 / 6.0),
    (1, -1, 1.0 / 12.0),
    (1, 0, 1.0 / 6.0),
    (1, 1, 1.0 / 12.0),
];

/// How removed pixels are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Imputation {
    /// The per-channel fill value.
    Mean,
    /// ROAD's noisy linear imputation; `noise_std` is in the image's own units.
    NoisyLinear { noise_std: f32 },
}

impl Default for Imputation {
    fn default() -> Self {
        Imputation::NoisyLinear {
            noise_std: ROAD_NOISE_STD,
        }
    }
}

impl Imputation {
    /// The text forms, the noisy linear one with ROAD's default noise.
    pub const ALL: [Imputation; 2] = [
        Imputation::Mean,
        Imputation::NoisyLinear {
            noise_std: ROAD_NOISE_STD,
        },
    ];

    pub fn name(self) -> &'static str {
        match self {
            Imputation::Mean => "mean",
            Imputation::NoisyLinear { .. } => "road",
        }
    }

    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Imputation::Mean => "mean colour",
            Imputation::NoisyLinear { .. } => "noisy linear (ROAD)",
        }
    }
}

impl std::fmt::Display for Imputation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Imputation {
    type Err = String;
    /// `mean`, or `road` (alias `linear`, the reference's name) with ROAD's default noise.
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "linear" {
            return Ok(Imputation::default());
        }
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
            format!("unknown imputation `{s}`: expected {} (or linear)", names.join(", "))
        })
    }
}

/// The sparse system of one mask: the removed pixels, their diagonal and their removed
/// neighbours. It does not depend on the channel, so it is built once per image.
struct System {
    /// Pixel index of each unknown.
    pixels: Vec<usize>,
    /// Sum of the in-image neighbours' weights (the diagonal of D − W).
    diagonal: Vec<f64>,
    /// CSR of W between unknowns: row i's entries are `start[i]..start[i + 1]`.
    start: Vec<usize>,
    neighbour: Vec<usize>,
    weight: Vec<f64>,
    /// Kept neighbours per unknown, for the right-hand side: (pixel, weight).
    kept_start: Vec<usize>,
    kept: Vec<(usize, f64)>,
}

impl System {
    fn new(height: usize, width: usize, removed: &[bool]) -> Self {
        let mut unknown = vec![usize::MAX; removed.len()];
        let pixels: Vec<usize> = (0..removed.len()).filter(|&p| removed[p]).collect();
        for (i, &p) in pixels.iter().enumerate() {
            unknown[p] = i;
        }
        let mut s = System {
            diagonal: Vec::with_capacity(pixels.len()),
            start: vec![0],
            neighbour: Vec::new(),
            weight: Vec::new(),
            kept_start: vec![0],
            kept: Vec::new(),
            pixels,
        };
        for &p in &s.pixels {
            let (y, x) = ((p / width) as isize, (p % width) as isize);
            let mut d = 0.0;
            for (dy, dx, w) in NEIGHBOURS {
                let (ny, nx) = (y + dy, x + dx);
                if ny < 0 || nx < 0 || ny >= height as isize || nx >= width as isize {
                    continue;
                }
                d += w;
                let q = ny as usize * width + nx as usize;
                if removed[q] {
                    s.neighbour.push(unknown[q]);
                    s.weight.push(w);
                } else {
                    s.kept.push((q, w));
                }
            }
            s.diagonal.push(d);
            s.start.push(s.neighbour.len());
            s.kept_start.push(s.kept.len());
        }
        s
    }

    fn len(&self) -> usize {
        self.pixels.len()
    }

    /// y = (D − W) x.
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for i in 0..x.len() {
            let mut acc = self.diagonal[i] * x[i];
            for k in self.start[i]..self.start[i + 1] {
                acc -= self.weight[k] * x[self.neighbour[k]];
            }
            y[i] = acc;
        }
    }

    /// b: the weighted kept neighbours of each unknown in `plane`.
    fn rhs(&self, plane: &[f32]) -> Vec<f64> {
        (0..self.len())
            .map(|i| {
                self.kept[self.kept_start[i]..self.kept_start[i + 1]]
                    .iter()
                    .map(|&(q, w)| w * plane[q] as f64)
                    .sum()
            })
            .collect()
    }

    /// z = M⁻¹ r for the SSOR preconditioner M = (D − ωL) D⁻¹ (D − ωLᵀ) / (ω(2 − ω)), L
    /// the weights to unknowns of lower index: a forward and a backward sweep.
    fn precondition(&self, r: &[f64], z: &mut [f64]) {
        let n = r.len();
        for i in 0..n {
            let mut acc = r[i];
            for k in self.start[i]..self.start[i + 1] {
                let j = self.neighbour[k];
                if j < i {
                    acc += SSOR_OMEGA * self.weight[k] * z[j];
                }
            }
            z[i] = acc / self.diagonal[i];
        }
        z.iter_mut().zip(&self.diagonal).for_each(|(v, d)| *v *= d);
        for i in (0..n).rev() {
            let mut acc = z[i];
            for k in self.start[i]..self.start[i + 1] {
                let j = self.neighbour[k];
                if j > i {
                    acc += SSOR_OMEGA * self.weight[k] * z[j];
                }
            }
            z[i] = acc / self.diagonal[i];
        }
        let scale = SSOR_OMEGA * (2.0 - SSOR_OMEGA);
        z.iter_mut().for_each(|v| *v *= scale);
    }

    /// Solves (D − W) x = b by SSOR-preconditioned conjugate gradients from `x`, to a
    /// relative residual of [`CG_TOLERANCE`]. (Against Jacobi preconditioning, SSOR took a
    /// map that removes one smooth blob from 10 s to 4 s for ROAD's 18 images of 224×224.)
    fn solve(&self, b: &[f64], x: &mut [f64]) -> Result<(), MetricError> {
        let n = self.len();
        let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let b_norm = norm(b);
        if b_norm == 0.0 {
            // The kept neighbours are all 0 in this channel: so is the solution.
            x.iter_mut().for_each(|v| *v = 0.0);
            return Ok(());
        }
        let mut r = vec![0f64; n];
        self.apply(x, &mut r);
        r.iter_mut().zip(b).for_each(|(r, b)| *r = b - *r);
        let mut z = vec![0f64; n];
        self.precondition(&r, &mut z);
        let mut p = z.clone();
        let mut q = vec![0f64; n];
        let mut rz: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
        // CG ends in n steps in exact arithmetic; the bound only guards against a stall.
        let max_iterations = 10 * n + 100;
        for _ in 0..max_iterations {
            if norm(&r) <= CG_TOLERANCE * b_norm {
                return Ok(());
            }
            self.apply(&p, &mut q);
            let pq: f64 = p.iter().zip(&q).map(|(a, b)| a * b).sum();
            let alpha = rz / pq;
            for i in 0..n {
                x[i] += alpha * p[i];
                r[i] -= alpha * q[i];
            }
            self.precondition(&r, &mut z);
            let rz_next: f64 = r.iter().zip(&z).map(|(a, b)| a * b).sum();
            let beta = rz_next / rz;
            rz = rz_next;
            for i in 0..n {
                p[i] = z[i] + beta * p[i];
            }
        }
        Err(MetricError::NotConverged(format!(
            "linear imputation of {n} pixels: conjugate gradients did not reach a relative residual of \
             {CG_TOLERANCE:e} in {max_iterations} iterations"
        )))
    }
}

/// `image` (C×H×W planar) with the pixels where `removed` (H×W) is true replaced as
/// `imputation` says; kept pixels are copied bit for bit. `fill` (one value per channel) is
/// the mean fill, and the linear imputation's fallback when nothing is kept. `seed` seeds
/// the noise.
#[allow(clippy::too_many_arguments)]
pub fn impute(
    image: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    removed: &[bool],
    imputation: Imputation,
    fill: &[f32],
    seed: u64,
) -> Result<Vec<f32>, MetricError> {
    let hw = height * width;
    if hw == 0 || channels == 0 {
        return Err(MetricError::Empty("image"));
    }
    if image.len() != channels * hw {
        return Err(MetricError::LengthMismatch {
            what: "image",
            expected: channels * hw,
            got: image.len(),
        });
    }
    if removed.len() != hw {
        return Err(MetricError::LengthMismatch {
            what: "removal mask",
            expected: hw,
            got: removed.len(),
        });
    }
    if fill.len() != channels {
        return Err(MetricError::LengthMismatch {
            what: "fill",
            expected: channels,
            got: fill.len(),
        });
    }
    let mut out = image.to_vec();
    let nothing_kept = removed.iter().all(|&r| r);
    let noise_std = match imputation {
        Imputation::NoisyLinear { noise_std } if !(noise_std.is_finite() && noise_std >= 0.0) => {
            return Err(MetricError::InvalidParameter(format!(
                "imputation noise {noise_std}: must be finite and at least 0"
            )));
        }
        Imputation::NoisyLinear { noise_std } if !nothing_kept => noise_std,
        _ => {
            for c in 0..channels {
                let plane = &mut out[c * hw..(c + 1) * hw];
                for (v, _) in plane.iter_mut().zip(removed).filter(|(_, &r)| r) {
                    *v = fill[c];
                }
            }
            return Ok(out);
        }
    };
    let system = System::new(height, width, removed);
    if system.len() == 0 {
        return Ok(out);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for c in 0..channels {
        let plane = &image[c * hw..(c + 1) * hw];
        let b = system.rhs(plane);
        // Starting from the kept pixels' mean saves the iterations that would only find
        // the level of the image.
        let kept: Vec<f64> = plane
            .iter()
            .zip(removed)
            .filter(|(_, &r)| !r)
            .map(|(&v, _)| v as f64)
            .collect();
        let level = kept.iter().sum::<f64>() / kept.len() as f64;
        let mut x = vec![level; system.len()];
        system.solve(&b, &mut x)?;
        let out_plane = &mut out[c * hw..(c + 1) * hw];
        for (&p, &v) in system.pixels.iter().zip(&x) {
            let noise: f64 = if noise_std > 0.0 {
                StandardNormal.sample(&mut rng)
            } else {
                0.0
            };
            out_plane[p] = (v + noise_std as f64 * noise) as f32;
        }
    }
    Ok(out)
}

/// Per-channel mean of a C×H×W image (ROAD's fixed fill: the image's own mean colour).
pub fn channel_means(image: &[f32], channels: usize) -> Vec<f32> {
    let hw = image.len() / channels.max(1);
    (0..channels)
        .map(|c| {
            let plane = &image[c * hw..(c + 1) * hw];
            (plane.iter().map(|&v| v as f64).sum::<f64>() / hw.max(1) as f64) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        use rand::Rng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
    }

    fn mask(h: usize, w: usize, seed: u64, fraction: f32) -> Vec<bool> {
        pseudo_random(h * w, seed)
            .iter()
            .map(|v| (v + 1.0) / 2.0 < fraction)
            .collect()
    }

    /// Each removed pixel minus the weighted mean of its in-image neighbours, recomputed
    /// from the output alone; the largest relative to the image's scale.
    fn worst_equation_error(out: &[f32], c: usize, h: usize, w: usize, removed: &[bool]) -> f64 {
        let hw = h * w;
        let mut worst = 0f64;
        for ch in 0..c {
            let plane = &out[ch * hw..(ch + 1) * hw];
            for p in (0..hw).filter(|&p| removed[p]) {
                let (y, x) = ((p / w) as isize, (p % w) as isize);
                let (mut sum, mut weights) = (0f64, 0f64);
                for (dy, dx, wt) in NEIGHBOURS {
                    let (ny, nx) = (y + dy, x + dx);
                    if ny >= 0 && nx >= 0 && ny < h as isize && nx < w as isize {
                        sum += wt * plane[ny as usize * w + nx as usize] as f64;
                        weights += wt;
                    }
                }
                worst = worst.max((plane[p] as f64 - sum / weights).abs());
            }
        }
        worst
    }

    /// The solver's own system: its residual, recomputed here from the definition (not by
    /// `System::apply`), is below the stated tolerance.
    #[test]
    fn linear_system_is_solved_to_the_tolerance() {
        let (h, w) = (40, 50);
        let removed = mask(h, w, 7, 0.6);
        let plane = pseudo_random(h * w, 3);
        let system = System::new(h, w, &removed);
        let b = system.rhs(&plane);
        let mut x = vec![0.0; system.len()];
        system.solve(&b, &mut x).unwrap();
        let mut value = vec![0f64; h * w];
        for (p, v) in value.iter_mut().enumerate() {
            *v = plane[p] as f64;
        }
        for (&p, &v) in system.pixels.iter().zip(&x) {
            value[p] = v;
        }
        // residual_i = Σ_in-image w (value_i − value_j), over every in-image neighbour.
        let (mut r2, mut b2) = (0f64, 0f64);
        for (i, &p) in system.pixels.iter().enumerate() {
            let (y, x0) = ((p / w) as isize, (p % w) as isize);
            let mut r = 0.0;
            for (dy, dx, wt) in NEIGHBOURS {
                let (ny, nx) = (y + dy, x0 + dx);
                if ny >= 0 && nx >= 0 && ny < h as isize && nx < w as isize {
                    r += wt * (value[p] - value[ny as usize * w + nx as usize]);
                }
            }
            r2 += r * r;
            b2 += b[i] * b[i];
        }
        let relative = r2.sqrt() / b2.sqrt();
        assert!(relative <= CG_TOLERANCE, "relative residual {relative:e}");
        // And through the public entry point (f32 output): each pixel is its neighbours' mean.
        let out = impute(
            &plane,
            1,
            h,
            w,
            &removed,
            Imputation::NoisyLinear { noise_std: 0.0 },
            &[0.0],
            1,
        )
        .unwrap();
        let err = worst_equation_error(&out, 1, h, w, &removed);
        assert!(err < 1e-5, "largest equation error {err:e}");
    }

    #[test]
    fn kept_pixels_are_untouched() {
        let (c, h, w) = (3, 20, 24);
        let image = pseudo_random(c * h * w, 11);
        let removed = mask(h, w, 5, 0.5);
        for imputation in [Imputation::Mean, Imputation::default()] {
            let out = impute(&image, c, h, w, &removed, imputation, &[0.1, 0.2, 0.3], 9).unwrap();
            for ch in 0..c {
                for p in (0..h * w).filter(|&p| !removed[p]) {
                    let i = ch * h * w + p;
                    assert_eq!(
                        out[i].to_bits(),
                        image[i].to_bits(),
                        "{imputation} channel {ch} pixel {p}"
                    );
                }
            }
            let changed = (0..h * w).filter(|&p| removed[p] && out[p] != image[p]).count();
            assert!(changed > 0, "{imputation}: nothing imputed");
        }
    }

    /// A plane a + b·y + c·x equals the mean of its 8 neighbours wherever all 8 are in the
    /// image (the weights are symmetric), so with the border kept, linear imputation without
    /// noise gives it back exactly. (At the border the one-sided mean does not.)
    #[test]
    fn linear_ramp_is_reproduced() {
        let (h, w) = (30, 36);
        let ramp: Vec<f32> = (0..h * w)
            .map(|p| 0.25 + 0.03 * (p / w) as f32 - 0.02 * (p % w) as f32)
            .collect();
        let mut removed = mask(h, w, 2, 0.7);
        for (p, r) in removed.iter_mut().enumerate() {
            let (y, x) = (p / w, p % w);
            if y == 0 || x == 0 || y == h - 1 || x == w - 1 {
                *r = false;
            }
        }
        // A solid block too, far from every kept pixel but its rim.
        for y in 5..20 {
            for x in 8..30 {
                removed[y * w + x] = true;
            }
        }
        let out = impute(
            &ramp,
            1,
            h,
            w,
            &removed,
            Imputation::NoisyLinear { noise_std: 0.0 },
            &[9.0],
            0,
        )
        .unwrap();
        let worst = out.iter().zip(&ramp).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "largest error {worst:e}");
    }

    #[test]
    fn same_seed_same_output_other_seed_other_noise() {
        let (c, h, w) = (2, 16, 16);
        let image = pseudo_random(c * h * w, 4);
        let removed = mask(h, w, 8, 0.4);
        let run = |seed| impute(&image, c, h, w, &removed, Imputation::default(), &[0.0, 0.0], seed).unwrap();
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        // The noise has the stated size: imputed minus noiseless, over many pixels.
        let quiet = impute(
            &image,
            c,
            h,
            w,
            &removed,
            Imputation::NoisyLinear { noise_std: 0.0 },
            &[0.0, 0.0],
            42,
        )
        .unwrap();
        let noisy = run(42);
        let diffs: Vec<f64> = (0..c * h * w)
            .filter(|&i| removed[i % (h * w)])
            .map(|i| (noisy[i] - quiet[i]) as f64)
            .collect();
        let std = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
        assert!((std - 0.01).abs() < 0.002, "noise std {std}");
    }

    #[test]
    fn mean_fills_with_fill_and_nothing_kept_falls_back_to_it() {
        let (c, h, w) = (2, 4, 5);
        let image = pseudo_random(c * h * w, 1);
        let removed = mask(h, w, 3, 0.5);
        let out = impute(&image, c, h, w, &removed, Imputation::Mean, &[0.5, -2.0], 0).unwrap();
        for p in (0..h * w).filter(|&p| removed[p]) {
            assert_eq!(out[p], 0.5);
            assert_eq!(out[h * w + p], -2.0);
        }
        let all = vec![true; h * w];
        let out = impute(&image, c, h, w, &all, Imputation::default(), &[0.5, -2.0], 0).unwrap();
        assert!(out[..h * w].iter().all(|&v| v == 0.5) && out[h * w..].iter().all(|&v| v == -2.0));
        // Nothing removed: the image itself.
        let none = vec![false; h * w];
        assert_eq!(
            impute(&image, c, h, w, &none, Imputation::default(), &[0.0; 2], 0).unwrap(),
            image
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let image = vec![0f32; 12];
        let removed = vec![true; 4];
        assert!(impute(&image, 3, 2, 2, &removed[..3], Imputation::Mean, &[0.0; 3], 0).is_err());
        assert!(impute(&image, 3, 2, 2, &removed, Imputation::Mean, &[0.0; 2], 0).is_err());
        assert!(impute(&image[..11], 3, 2, 2, &removed, Imputation::Mean, &[0.0; 3], 0).is_err());
        let nan = Imputation::NoisyLinear { noise_std: f32::NAN };
        assert!(impute(&image, 3, 2, 2, &[true, false, false, false], nan, &[0.0; 3], 0).is_err());
    }

    #[test]
    fn text_forms_round_trip() {
        for i in Imputation::ALL {
            assert_eq!(i.to_string().parse::<Imputation>(), Ok(i));
        }
        assert_eq!("linear".parse::<Imputation>(), Ok(Imputation::default()));
        assert!("zero".parse::<Imputation>().unwrap_err().contains("mean, road"));
    }
}
