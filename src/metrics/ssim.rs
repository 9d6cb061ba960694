//! SSIM and MS-SSIM on single-channel 2-D images (algorithms.md §4.6, §4.5 item 3).
//!
//! Images are row-major `f32` slices of `width × height` pixels (`img[y * width + x]`).
//! All arithmetic is done in `f64`.
//!
//! SSIM uses an 11×11 Gaussian window (σ = 1.5, truncated at 3.5σ → radius 5, normalised to
//! sum 1), applied as a separable *valid* filter, so the mean is taken over the image less a
//! border of 5 pixels. This equals skimage's `structural_similarity(gaussian_weights=True,
//! sigma=1.5)`, which filters with reflect padding and then crops that same border.

use super::MetricError;

/// Gaussian σ of the SSIM window.
const SIGMA: f64 = 1.5;
/// Window radius: ⌊3.5·σ + 0.5⌋ = 5 (scipy/skimage `truncate = 3.5`).
const RADIUS: usize = 5;
/// Window side (11).
const WIN: usize = 2 * RADIUS + 1;
const K1: f64 = 0.01;
const K2: f64 = 0.03;
/// MS-SSIM scale weights, finest → coarsest (Wang et al. 2003; TF `ssim_multiscale`).
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// SSIM settings. The default follows Wang et al. 2004 (data_range 1, population covariance);
/// the old skimage `compare_ssim` defaults are `data_range: 2.0, sample_covariance: true`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsimOptions {
    /// Dynamic range L of the pixel values; C1 = (0.01L)², C2 = (0.03L)².
    pub data_range: f64,
    /// Use the sample covariance (scale the window variances by NP/(NP−1), NP = 121).
    pub sample_covariance: bool,
}

impl Default for SsimOptions {
    fn default() -> Self {
        Self {
            data_range: 1.0,
            sample_covariance: false,
        }
    }
}

impl SsimOptions {
    /// The old skimage defaults used in the SANITY notebook (§4.5 item 3).
    pub fn skimage_legacy() -> Self {
        Self {
            data_range: 2.0,
            sample_covariance: true,
        }
    }
}

fn gaussian_kernel() -> [f64; WIN] {
    let mut k = [0.0; WIN];
    let mut sum = 0.0;
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - RADIUS as f64;
        *v = (-0.5 * x * x / (SIGMA * SIGMA)).exp();
        sum += *v;
    }
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Separable valid Gaussian filter of an f64 image; output is (w − 10) × (h − 10).
fn filter_valid(img: &[f64], w: usize, h: usize, k: &[f64; WIN]) -> Vec<f64> {
    let ow = w - WIN + 1;
    let oh = h - WIN + 1;
    let mut tmp = vec![0.0; ow * h];
    for y in 0..h {
        let row = &img[y * w..(y + 1) * w];
        for x in 0..ow {
            tmp[y * ow + x] = k.iter().zip(&row[x..x + WIN]).map(|(a, b)| a * b).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = k.iter().enumerate().map(|(i, kv)| kv * tmp[(y + i) * ow + x]).sum();
        }
    }
    out
}

/// Means over the valid region of (l·cs) and cs.
fn ssim_and_cs(a: &[f64], b: &[f64], w: usize, h: usize, options: &SsimOptions) -> (f64, f64) {
    let k = gaussian_kernel();
    let c1 = (K1 * options.data_range).powi(2);
    let c2 = (K2 * options.data_range).powi(2);
    let np = (WIN * WIN) as f64;
    let cov_norm = if options.sample_covariance {
        np / (np - 1.0)
    } else {
        1.0
    };
    let prod = |f: &dyn Fn(f64, f64) -> f64| a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect::<Vec<f64>>();
    let ux = filter_valid(a, w, h, &k);
    let uy = filter_valid(b, w, h, &k);
    let uxx = filter_valid(&prod(&|x, _| x * x), w, h, &k);
    let uyy = filter_valid(&prod(&|_, y| y * y), w, h, &k);
    let uxy = filter_valid(&prod(&|x, y| x * y), w, h, &k);
    let n = ux.len();
    let (mut sum_s, mut sum_cs) = (0.0, 0.0);
    for i in 0..n {
        let (mx, my) = (ux[i], uy[i]);
        let vx = cov_norm * (uxx[i] - mx * mx);
        let vy = cov_norm * (uyy[i] - my * my);
        let vxy = cov_norm * (uxy[i] - mx * my);
        let l = (2.0 * mx * my + c1) / (mx * mx + my * my + c1);
        let cs = (2.0 * vxy + c2) / (vx + vy + c2);
        sum_s += l * cs;
        sum_cs += cs;
    }
    (sum_s / n as f64, sum_cs / n as f64)
}

fn check(a: &[f32], b: &[f32], width: usize, height: usize, options: &SsimOptions) -> Result<(), MetricError> {
    let n = width
        .checked_mul(height)
        .ok_or_else(|| MetricError::SizeMismatch("width*height overflows".into()))?;
    if a.len() != n || b.len() != n {
        return Err(MetricError::SizeMismatch(format!(
            "expected {width}x{height} = {n} pixels, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    if !(options.data_range.is_finite() && options.data_range > 0.0) {
        return Err(MetricError::InvalidParameter(format!(
            "data_range must be > 0, got {}",
            options.data_range
        )));
    }
    Ok(())
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Mean SSIM of two `width × height` images over the valid region (border of 5 excluded).
/// Both sides must be at least 11.
pub fn ssim(a: &[f32], b: &[f32], width: usize, height: usize, options: &SsimOptions) -> Result<f64, MetricError> {
    check(a, b, width, height, options)?;
    if width < WIN || height < WIN {
        return Err(MetricError::TooSmall {
            width,
            height,
            min_side: WIN,
        });
    }
    Ok(ssim_and_cs(&to_f64(a), &to_f64(b), width, height, options).0)
}

/// 2×2 average pooling; an odd last row/column is dropped.
fn avg_pool2(img: &[f64], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    let (ow, oh) = (w / 2, h / 2);
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let i = 2 * y * w + 2 * x;
            out[y * ow + x] = 0.25 * (img[i] + img[i + 1] + img[i + w] + img[i + w + 1]);
        }
    }
    (out, ow, oh)
}

/// MS-SSIM with 5 scales and weights [`MS_SSIM_WEIGHTS`]: Π_{j<5} relu(mean cs_j)^{β_j} ·
/// relu(mean SSIM_5)^{β_5}, downsampling by 2×2 average pooling between scales.
/// The smaller side must exceed (11 − 1)·2⁴ = 160.
pub fn ms_ssim(a: &[f32], b: &[f32], width: usize, height: usize, options: &SsimOptions) -> Result<f64, MetricError> {
    check(a, b, width, height, options)?;
    let min_side = (WIN - 1) * (1 << (MS_SSIM_WEIGHTS.len() - 1)) + 1;
    if width < min_side || height < min_side {
        return Err(MetricError::TooSmall {
            width,
            height,
            min_side,
        });
    }
    let (mut x, mut y, mut w, mut h) = (to_f64(a), to_f64(b), width, height);
    let mut result = 1.0;
    let last = MS_SSIM_WEIGHTS.len() - 1;
    for (scale, &beta) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let (s, cs) = ssim_and_cs(&x, &y, w, h, options);
        let term = if scale == last { s } else { cs };
        result *= term.max(0.0).powf(beta);
        if scale != last {
            let (px, nw, nh) = avg_pool2(&x, w, h);
            let (py, _, _) = avg_pool2(&y, w, h);
            (x, y, w, h) = (px, py, nw, nh);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::attribution::testing::lcg_uniform as random_image;

    /// a[i,j] = ((7i + 13j) mod 17)/16, b = clip(a + ((3i + 5j) mod 11)/40, 0, 1); i = row.
    fn reference_pair() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (h, w) = (48usize, 64usize);
        let mut a = Vec::with_capacity(w * h);
        let mut b = Vec::with_capacity(w * h);
        for i in 0..h {
            for j in 0..w {
                let av = ((i * 7 + j * 13) % 17) as f64 / 16.0;
                let bv = (av + ((i * 3 + j * 5) % 11) as f64 / 40.0).clamp(0.0, 1.0);
                a.push(av as f32);
                b.push(bv as f32);
            }
        }
        (a, b, w, h)
    }

    #[test]
    fn ssim_identical_is_one() {
        let a = random_image(224 * 224, 1);
        for opts in [SsimOptions::default(), SsimOptions::skimage_legacy()] {
            let s = ssim(&a, &a, 224, 224, &opts).unwrap();
            assert!((s - 1.0).abs() < 1e-12, "ssim(a,a) = {s}");
        }
    }

    #[test]
    fn ms_ssim_identical_is_one() {
        let a = random_image(224 * 224, 2);
        for opts in [SsimOptions::default(), SsimOptions::skimage_legacy()] {
            let s = ms_ssim(&a, &a, 224, 224, &opts).unwrap();
            assert!((s - 1.0).abs() < 1e-12, "ms_ssim(a,a) = {s}");
        }
    }

    #[test]
    fn ssim_is_symmetric() {
        let a = random_image(64 * 40, 3);
        let b = random_image(64 * 40, 4);
        let o = SsimOptions::default();
        let ab = ssim(&a, &b, 64, 40, &o).unwrap();
        let ba = ssim(&b, &a, 64, 40, &o).unwrap();
        assert!(ab < 0.5, "unrelated images too similar: {ab}");
        assert!((ab - ba).abs() < 1e-12, "{ab} vs {ba}");
    }

    #[test]
    fn ssim_decreases_with_noise_and_shift() {
        let (w, h) = (224, 224);
        let a = random_image(w * h, 5);
        let noise = random_image(w * h, 6);
        let o = SsimOptions::default();
        let shifted: Vec<f32> = a.iter().map(|v| v + 0.2).collect();
        let s_shift = ssim(&a, &shifted, w, h, &o).unwrap();
        assert!(s_shift < 1.0 - 1e-3, "shifted ssim {s_shift}");
        let mut prev = 1.0;
        for level in [0.05f32, 0.1, 0.2, 0.4] {
            let noisy: Vec<f32> = a.iter().zip(&noise).map(|(x, n)| x + level * (n - 0.5)).collect();
            let s = ssim(&a, &noisy, w, h, &o).unwrap();
            let ms = ms_ssim(&a, &noisy, w, h, &o).unwrap();
            assert!(s < prev, "ssim {s} at noise {level} not below {prev}");
            assert!(ms < 1.0 && ms > 0.0, "ms_ssim {ms}");
            prev = s;
        }
    }

    #[test]
    fn errors_not_panics() {
        let a = random_image(100 * 100, 7);
        let o = SsimOptions::default();
        assert!(matches!(
            ssim(&a, &a[..9999], 100, 100, &o),
            Err(MetricError::SizeMismatch(_))
        ));
        assert!(matches!(ssim(&a, &a, 50, 100, &o), Err(MetricError::SizeMismatch(_))));
        assert!(matches!(
            ms_ssim(&a, &a, 100, 100, &o),
            Err(MetricError::TooSmall { .. })
        ));
        assert!(ms_ssim(&a, &a[..9999], 100, 100, &o).is_err());
        let small = random_image(10 * 20, 8);
        assert!(matches!(
            ssim(&small, &small, 10, 20, &o),
            Err(MetricError::TooSmall { .. })
        ));
        let bad = SsimOptions {
            data_range: 0.0,
            sample_covariance: false,
        };
        assert!(matches!(
            ssim(&a, &a, 100, 100, &bad),
            Err(MetricError::InvalidParameter(_))
        ));
        // 161 is the smallest side MS-SSIM accepts (> 160).
        let b = random_image(161 * 161, 9);
        assert!(ms_ssim(&b, &b, 161, 161, &o).is_ok());
        assert!(ms_ssim(&b[..160 * 161], &b[..160 * 161], 160, 161, &o).is_err());
    }

    /// Reference values from scikit-image 0.26.0 (numpy 2.4.6, scipy 1.17.1, Python 3.11.7):
    /// ```text
    /// H, W = 48, 64
    /// i, j = np.meshgrid(np.arange(H), np.arange(W), indexing='ij')
    /// a = ((i*7 + j*13) % 17) / 16.0
    /// b = np.clip(a + ((i*3 + j*5) % 11) / 40.0, 0.0, 1.0)
    /// structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    ///                       use_sample_covariance=False, data_range=1.0)  # 0.9465574648259526
    /// structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    ///                       use_sample_covariance=True, data_range=2.0)   # 0.9470554917032911
    /// ```
    #[test]
    fn ssim_matches_skimage() {
        let (a, b, w, h) = reference_pair();
        let wang = ssim(&a, &b, w, h, &SsimOptions::default()).unwrap();
        let legacy = ssim(&a, &b, w, h, &SsimOptions::skimage_legacy()).unwrap();
        eprintln!(
            "wang diff {:e}, legacy diff {:e}",
            wang - 0.9465574648259526,
            legacy - 0.9470554917032911
        );
        assert!((wang - 0.9465574648259526).abs() < 1e-6, "wang {wang}");
        assert!((legacy - 0.9470554917032911).abs() < 1e-6, "legacy {legacy}");
    }
}
