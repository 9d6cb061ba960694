//! Separable Gaussian blur of CHW images, with scipy.ndimage's kernel
//! (exp(−t²/2σ²) over |t| ≤ ⌊4σ + 0.5⌋, normalised) and its boundary modes.
//!
//! [`gaussian_blur`] convolves directly, costing 2(2r + 1) per pixel. Blur IG needs up to
//! radius 200 (σ = 50) twice per step, so [`gaussian_blur_zero_gemm`] and
//! [`gaussian_blur_zero_with_derivative`] write each axis's zero-boundary blur as a dense
//! n×n matrix and run GEMMs: 2n per pixel whatever σ, at GEMM speed.

use gemm::Parallelism;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Zero outside the image (`mode='constant'`): PAIR's Blur IG.
    Zero,
    /// Half-sample symmetric (`mode='reflect'`, d c b a | a b c d | d c b a).
    Reflect,
}

/// The normalised 1-D kernel for `sigma` (a single 1 for σ = 0).
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let radius = (4.0 * sigma + 0.5).floor() as i64;
    let k: Vec<f64> = (-radius..=radius)
        .map(|t| (-(t * t) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

fn reflect_index(i: i64, n: i64) -> usize {
    // Half-sample symmetric reflection, periodic with period 2n.
    let p = 2 * n;
    let mut m = i.rem_euclid(p);
    if m >= n {
        m = p - 1 - m;
    }
    m as usize
}

fn blur_line(src: &[f32], dst: &mut [f32], stride: usize, len: usize, kernel: &[f64], boundary: Boundary) {
    let r = (kernel.len() / 2) as i64;
    let n = len as i64;
    for i in 0..n {
        let mut acc = 0f64;
        for (j, &k) in kernel.iter().enumerate() {
            let idx = i + j as i64 - r;
            let v = if (0..n).contains(&idx) {
                src[idx as usize * stride]
            } else {
                match boundary {
                    Boundary::Zero => 0.0,
                    Boundary::Reflect => src[reflect_index(idx, n) * stride],
                }
            };
            acc += k * v as f64;
        }
        dst[i as usize * stride] = acc as f32;
    }
}

/// Blurs each of the `channels` planes of a flat CHW image of size h×w along both
/// spatial axes (never across channels).
pub fn gaussian_blur(image: &[f32], channels: usize, h: usize, w: usize, sigma: f64, boundary: Boundary) -> Vec<f32> {
    if sigma <= 0.0 {
        return image.to_vec();
    }
    let kernel = gaussian_kernel(sigma);
    let mut tmp = vec![0f32; image.len()];
    let mut out = vec![0f32; image.len()];
    for c in 0..channels {
        let plane = &image[c * h * w..(c + 1) * h * w];
        let tplane = &mut tmp[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            blur_line(&plane[y * w..], &mut tplane[y * w..], 1, w, &kernel, boundary);
        }
        let oplane = &mut out[c * h * w..(c + 1) * h * w];
        for x in 0..w {
            blur_line(&tplane[x..], &mut oplane[x..], w, h, &kernel, boundary);
        }
    }
    out
}

/// The zero-boundary blur along an axis of length `n` as a row-major n×n matrix:
/// M[i][j] = k[j − i + r] for |j − i| ≤ r, else 0 (output i = Σ_j M[i][j] · input j).
/// Symmetric, since the kernel is. σ ≤ 0 gives the identity.
pub fn zero_boundary_blur_matrix(n: usize, sigma: f64) -> Vec<f64> {
    let kernel = gaussian_kernel(sigma);
    let r = (kernel.len() / 2) as i64;
    let mut m = vec![0f64; n * n];
    for i in 0..n as i64 {
        for j in (i - r).max(0)..(i + r + 1).min(n as i64) {
            m[i as usize * n + j as usize] = kernel[(j - i + r) as usize];
        }
    }
    m
}

/// The GEMM of [`crate::kernels::gemm`], single-threaded: callers parallelise over images, and one blur
/// is too small to split well.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    c: &mut [f32],
    accumulate: bool,
) {
    crate::kernels::gemm::matmul(m, n, k, a, a_strides, b, b_strides, c, accumulate, Parallelism::None)
}

/// Every row of the flat (rows × w) `image` blurred by the w×w matrix `m`: image · mᵀ.
fn blur_rows(image: &[f32], rows: usize, w: usize, m: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; rows * w];
    // B[j][i] = m[i][j]: row stride 1, column stride w.
    matmul(rows, w, w, image, (w, 1), m, (1, w), &mut out, false);
    out
}

/// Every column of each h×w plane of `image` blurred by the h×h matrix `m`: m · plane,
/// written to (or added to) `out`.
fn blur_columns(image: &[f32], channels: usize, h: usize, w: usize, m: &[f32], out: &mut [f32], accumulate: bool) {
    for (src, dst) in image.chunks(h * w).zip(out.chunks_mut(h * w)).take(channels) {
        matmul(h, w, h, m, (h, 1), src, (w, 1), dst, accumulate);
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// [`gaussian_blur`] with [`Boundary::Zero`], by two GEMMs (f32, so within ~1e-6 of the
/// direct f64-accumulated result for values of order 1).
pub fn gaussian_blur_zero_gemm(image: &[f32], channels: usize, h: usize, w: usize, sigma: f64) -> Vec<f32> {
    assert_eq!(image.len(), channels * h * w, "image size");
    if gaussian_kernel(sigma).len() == 1 {
        return image.to_vec();
    }
    let rows = blur_rows(image, channels * h, w, &to_f32(&zero_boundary_blur_matrix(w, sigma)));
    let mut out = vec![0f32; image.len()];
    blur_columns(
        &rows,
        channels,
        h,
        w,
        &to_f32(&zero_boundary_blur_matrix(h, sigma)),
        &mut out,
        false,
    );
    out
}

/// The zero-boundary blur G(x, σ) and the forward difference (G(x, σ + step) − G(x, σ)) / step,
/// as Blur IG uses them.
///
/// The difference is not formed by subtracting two f32 blurs, which would lose digits to
/// cancellation amplified by 1/step (1/0.01 by default). With B, A the column and row
/// matrices at σ and B′, A′ at σ + step, B′XA′ᵀ − BXAᵀ = (B′ − B)·(XA′ᵀ) + B·(X(A′ − A)ᵀ),
/// and the difference matrices are formed in f64: the result is the same quantity with
/// relative error ~1e-6 of itself. Cost: five GEMMs, against four for two separate blurs.
pub fn gaussian_blur_zero_with_derivative(
    image: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    sigma: f64,
    step: f64,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(image.len(), channels * h * w, "image size");
    assert!(step > 0.0, "difference step must be positive");
    let diff = |n: usize| {
        let (m0, m1) = (
            zero_boundary_blur_matrix(n, sigma),
            zero_boundary_blur_matrix(n, sigma + step),
        );
        let d: Vec<f64> = m1.iter().zip(&m0).map(|(a, b)| (a - b) / step).collect();
        (to_f32(&m0), to_f32(&d))
    };
    let (a, da) = diff(w);
    let (b, db) = if h == w { (a.clone(), da.clone()) } else { diff(h) };
    let rows = channels * h;
    let t0 = blur_rows(image, rows, w, &a); // X Aᵀ
    let t2 = blur_rows(image, rows, w, &da); // X (A′ − A)ᵀ / step
    let t1: Vec<f32> = t0.iter().zip(&t2).map(|(&p, &q)| p + (step as f32) * q).collect(); // X A′ᵀ
    let mut blurred = vec![0f32; image.len()];
    blur_columns(&t0, channels, h, w, &b, &mut blurred, false);
    let mut derivative = vec![0f32; image.len()];
    blur_columns(&t1, channels, h, w, &db, &mut derivative, false);
    blur_columns(&t2, channels, h, w, &b, &mut derivative, true);
    (blurred, derivative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_is_normalised_with_scipy_radius() {
        let k = gaussian_kernel(5.0);
        assert_eq!(k.len(), 41); // radius ⌊20.5⌋ = 20
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(gaussian_kernel(0.0), vec![1.0]);
    }

    #[test]
    fn reflect_blur_keeps_constants_and_zero_blur_darkens_edges() {
        let img = vec![0.5f32; 2 * 6 * 7];
        let r = gaussian_blur(&img, 2, 6, 7, 2.0, Boundary::Reflect);
        assert!(r.iter().all(|v| (v - 0.5).abs() < 1e-6));
        let z = gaussian_blur(&img, 2, 6, 7, 2.0, Boundary::Zero);
        assert!(z[0] < 0.4, "corner should darken with zero padding: {}", z[0]);
    }

    /// The RISE insertion kernel of algorithms.md §4.1: scipy's reflect-mode σ = 5 filter
    /// applied to an 11-long impulse.
    #[test]
    fn rise_kernel_reference_values() {
        let mut impulse = vec![0f32; 11];
        impulse[5] = 1.0;
        let k = gaussian_blur(&impulse, 1, 1, 11, 5.0, Boundary::Reflect);
        let expected = [0.087958, 0.088896, 0.090474, 0.092191, 0.093489, 0.093982];
        for (i, e) in expected.iter().enumerate() {
            assert!((k[i] as f64 - e).abs() < 2e-6, "{i}: {} vs {e}", k[i]);
            assert!((k[10 - i] as f64 - e).abs() < 2e-6);
        }
    }

    use crate::attribution::testing::lcg_uniform as random;

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// The GEMM blur is the direct zero-boundary blur, on square and non-square images.
    #[test]
    fn gemm_blur_matches_direct_zero_blur() {
        let img = random(3 * 224 * 224, 1);
        for sigma in [0.0, 0.5, 3.0, 50.0] {
            let d = max_diff(
                &gaussian_blur_zero_gemm(&img, 3, 224, 224, sigma),
                &gaussian_blur(&img, 3, 224, 224, sigma, Boundary::Zero),
            );
            assert!(d < 1e-5, "σ = {sigma}: {d}");
        }
        let img = random(2 * 5 * 9, 2);
        for sigma in [0.3, 2.0, 50.0] {
            let d = max_diff(
                &gaussian_blur_zero_gemm(&img, 2, 5, 9, sigma),
                &gaussian_blur(&img, 2, 5, 9, sigma, Boundary::Zero),
            );
            assert!(d < 1e-5, "σ = {sigma}: {d}");
        }
    }

    /// The blur and forward σ-difference equal those of two direct blurs, including a σ
    /// whose step crosses a change of kernel radius (2.87 → 2.88: radius 11 → 12), and σ = 0
    /// (σ = 0.01 still has radius 0, so the difference is exactly 0, as in PAIR).
    #[test]
    fn blur_with_derivative_matches_difference_of_direct_blurs() {
        let (c, h, w, step) = (3, 40, 50, 0.01);
        let img = random(c * h * w, 3);
        for sigma in [0.0, 0.3, 2.87, 50.0] {
            let (g, d) = gaussian_blur_zero_with_derivative(&img, c, h, w, sigma, step);
            let g0 = gaussian_blur(&img, c, h, w, sigma, Boundary::Zero);
            let g1 = gaussian_blur(&img, c, h, w, sigma + step, Boundary::Zero);
            let fd: Vec<f32> = g1
                .iter()
                .zip(&g0)
                .map(|(a, b)| ((*a as f64 - *b as f64) / step) as f32)
                .collect();
            assert!(max_diff(&g, &g0) < 1e-5, "σ = {sigma}");
            let scale = fd.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(
                max_diff(&d, &fd) < 1e-4 * (1.0 + scale),
                "σ = {sigma}: {} (scale {scale})",
                max_diff(&d, &fd)
            );
            if sigma == 0.0 {
                assert!(d.iter().all(|&v| v == 0.0));
            }
        }
    }
}
