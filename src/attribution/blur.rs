//! Separable Gaussian blur of CHW images, with scipy.ndimage's kernel
//! (exp(−t²/2σ²) over |t| ≤ ⌊4σ + 0.5⌋, normalised) and its boundary modes.

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
}
