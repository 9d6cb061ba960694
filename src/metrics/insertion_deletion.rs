//! Insertion and deletion curves (Petsiuk et al., RISE; algorithms.md §4.1).
//!
//! Pixels are ranked by decreasing saliency (all channels of a pixel move together; ties
//! keep pixel order, a stable sort). Deletion starts at the image and replaces
//! `pixels_per_step` pixels per step with a fill (zeros in normalised space: the dataset
//! mean colour); insertion starts at a blurred copy and restores the image's pixels. After
//! N = ⌈HW / step⌉ steps every pixel has moved, so N + 1 images are scored. The area under
//! the curve is the trapezoid rule on [0, 1]. A good map has a high insertion AUC and a low
//! deletion AUC.

use crate::attribution::blur::{gaussian_blur, Boundary};

/// What is plotted against the fraction of pixels moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CurveScore {
    /// softmax probability of the class (RISE).
    #[default]
    Probability,
    /// probability divided by the probability on the unmodified image.
    ProbabilityRatio,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Fraction of pixels moved after each step, 0 ..= 1.
    pub fractions: Vec<f64>,
    pub scores: Vec<f64>,
    pub auc: f64,
}

/// Trapezoid AUC of N + 1 equally spaced scores on [0, 1]: (Σ s_i − s_0/2 − s_N/2) / N.
pub fn auc(scores: &[f64]) -> f64 {
    match scores.len() {
        0 => 0.0,
        1 => scores[0],
        n => {
            let sum: f64 = scores.iter().sum();
            (sum - scores[0] / 2.0 - scores[n - 1] / 2.0) / (n - 1) as f64
        }
    }
}

/// Pixel indices by decreasing saliency; NaN ranks last; ties keep pixel order.
pub fn pixel_order(saliency: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..saliency.len()).collect();
    let key = |i: usize| {
        if saliency[i].is_nan() {
            f32::NEG_INFINITY
        } else {
            saliency[i]
        }
    };
    idx.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
    idx
}

/// RISE's insertion start: an 11×11 blur whose kernel is scipy's reflect-mode σ = 5
/// filter applied to an 11-long impulse (nearly a box), convolved with zero padding 5.
pub fn rise_blur(image: &[f32], channels: usize, h: usize, w: usize) -> Vec<f32> {
    let mut impulse = vec![0f32; 11];
    impulse[5] = 1.0;
    let k1 = gaussian_blur(&impulse, 1, 1, 11, 5.0, Boundary::Reflect);
    let mut out = vec![0f32; image.len()];
    for c in 0..channels {
        let plane = &image[c * h * w..(c + 1) * h * w];
        let mut tmp = vec![0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0f64;
                for (t, &k) in k1.iter().enumerate() {
                    let xx = x as isize + t as isize - 5;
                    if xx >= 0 && (xx as usize) < w {
                        acc += k as f64 * plane[y * w + xx as usize] as f64;
                    }
                }
                tmp[y * w + x] = acc as f32;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0f64;
                for (t, &k) in k1.iter().enumerate() {
                    let yy = y as isize + t as isize - 5;
                    if yy >= 0 && (yy as usize) < h {
                        acc += k as f64 * tmp[yy as usize * w + x] as f64;
                    }
                }
                out[c * h * w + y * w + x] = acc as f32;
            }
        }
    }
    out
}

/// The image after `step` steps of a sweep from `start` to `finish` in `order` (the
/// image a curve scored at `fractions[step]`): `start` with its first
/// `min(step · pixels_per_step, HW)` pixels of `order` taken from `finish`. Only copies
/// pixels, so a UI can show any point of a curve without keeping the curve's images.
pub fn perturbed_image(
    start: &[f32],
    finish: &[f32],
    order: &[usize],
    channels: usize,
    pixels_per_step: usize,
    step: usize,
) -> Vec<f32> {
    let hw = order.len();
    let moved = step.saturating_mul(pixels_per_step.max(1)).min(hw);
    let mut image = start.to_vec();
    for &p in &order[..moved] {
        for c in 0..channels {
            image[c * hw + p] = finish[c * hw + p];
        }
    }
    image
}

/// Moves pixels from `start` towards `finish` in `order`, `pixels_per_step` at a time, and
/// scores every image with `score` (called with batches of at most `batch` images).
#[allow(clippy::too_many_arguments)]
fn sweep(
    start: &[f32],
    finish: &[f32],
    order: &[usize],
    channels: usize,
    hw: usize,
    pixels_per_step: usize,
    batch: usize,
    mut score: impl FnMut(&[Vec<f32>]) -> Vec<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let step = pixels_per_step.max(1);
    let n = hw.div_ceil(step);
    let mut current = start.to_vec();
    let mut images = Vec::with_capacity(batch);
    let mut scores = Vec::with_capacity(n + 1);
    let mut fractions = Vec::with_capacity(n + 1);
    for i in 0..=n {
        if i > 0 {
            for &p in &order[(i - 1) * step..(i * step).min(hw)] {
                for c in 0..channels {
                    current[c * hw + p] = finish[c * hw + p];
                }
            }
        }
        fractions.push((i * step).min(hw) as f64 / hw as f64);
        images.push(current.clone());
        if images.len() == batch.max(1) || i == n {
            scores.extend(score(&images));
            images.clear();
        }
    }
    (fractions, scores)
}

fn finish_curve(fractions: Vec<f64>, mut scores: Vec<f64>, kind: CurveScore, original: f64) -> Curve {
    if kind == CurveScore::ProbabilityRatio && original > 0.0 {
        scores.iter_mut().for_each(|s| *s /= original);
    }
    Curve {
        auc: auc(&scores),
        fractions,
        scores,
    }
}

/// The deletion curve: from `image` to `fill`, most salient pixels first.
#[allow(clippy::too_many_arguments)]
pub fn deletion(
    image: &[f32],
    fill: &[f32],
    saliency: &[f32],
    channels: usize,
    pixels_per_step: usize,
    batch: usize,
    kind: CurveScore,
    score: impl FnMut(&[Vec<f32>]) -> Vec<f64>,
) -> Curve {
    let hw = saliency.len();
    let order = pixel_order(saliency);
    let (fractions, scores) = sweep(image, fill, &order, channels, hw, pixels_per_step, batch, score);
    let original = scores[0];
    finish_curve(fractions, scores, kind, original)
}

/// The insertion curve: from `start` (RISE: [`rise_blur`] of the image) to `image`, most
/// salient pixels first. The ratio is taken against the score of `image` itself, the last
/// point of the curve.
#[allow(clippy::too_many_arguments)]
pub fn insertion(
    image: &[f32],
    start: &[f32],
    saliency: &[f32],
    channels: usize,
    pixels_per_step: usize,
    batch: usize,
    kind: CurveScore,
    score: impl FnMut(&[Vec<f32>]) -> Vec<f64>,
) -> Curve {
    let hw = saliency.len();
    let order = pixel_order(saliency);
    let (fractions, scores) = sweep(start, image, &order, channels, hw, pixels_per_step, batch, score);
    let original = *scores.last().unwrap_or(&0.0);
    finish_curve(fractions, scores, kind, original)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// algorithms.md §7 row 16.
    #[test]
    fn auc_of_known_curves() {
        assert!((auc(&[0.3; 11]) - 0.3).abs() < 1e-12);
        let linear: Vec<f64> = (0..=10).map(|i| 1.0 - i as f64 / 10.0).collect();
        assert!((auc(&linear) - 0.5).abs() < 1e-12);
        // PIC aggregation example's x grid: trapezoid of (0, .3, .4, .5, 1) on 5 points.
        assert!((auc(&[0.0, 0.3, 0.4, 0.5, 1.0]) - 0.425).abs() < 1e-12);
    }

    /// A synthetic "model": the probability is a sigmoid of a weighted sum over 36 pixels
    /// (one channel) where only a few pixels carry weight. The oracle map (the weights)
    /// beats a random map, which beats the inverted map, on both curves.
    #[test]
    fn oracle_beats_random_beats_inverted() {
        let hw = 36;
        let weights: Vec<f32> = (0..hw)
            .map(|i| if i % 7 == 0 { 2.0 + i as f32 * 0.1 } else { 0.01 })
            .collect();
        let image = vec![1.0f32; hw];
        let fill = vec![0.0f32; hw];
        let model = |imgs: &[Vec<f32>]| -> Vec<f64> {
            imgs.iter()
                .map(|x| {
                    let z: f64 = x
                        .iter()
                        .zip(&weights)
                        .map(|(a, w)| (*a as f64) * *w as f64)
                        .sum::<f64>()
                        - 5.0;
                    1.0 / (1.0 + (-z).exp())
                })
                .collect()
        };
        let random: Vec<f32> = (0..hw).map(|i| ((i * 17 + 5) % 36) as f32).collect();
        let inverted: Vec<f32> = weights.iter().map(|w| -w).collect();
        let del = |s: &[f32]| deletion(&image, &fill, s, 1, 2, 4, CurveScore::Probability, model).auc;
        let ins = |s: &[f32]| insertion(&image, &fill, s, 1, 2, 4, CurveScore::Probability, model).auc;
        assert!(del(&weights) < del(&random) && del(&random) < del(&inverted));
        assert!(ins(&weights) > ins(&random) && ins(&random) > ins(&inverted));
    }

    #[test]
    fn curve_has_n_plus_one_points_and_moves_every_pixel() {
        let hw = 10;
        let image: Vec<f32> = (0..2 * hw).map(|i| i as f32).collect();
        let fill = vec![-1.0f32; 2 * hw];
        let saliency: Vec<f32> = (0..hw).map(|i| i as f32).collect();
        let mut last = Vec::new();
        let c = deletion(&image, &fill, &saliency, 2, 3, 2, CurveScore::Probability, |imgs| {
            last = imgs.last().cloned().unwrap_or_default();
            imgs.iter().map(|x| x.iter().map(|&v| v as f64).sum::<f64>()).collect()
        });
        assert_eq!(c.scores.len(), 5); // ⌈10/3⌉ = 4 steps, 5 images
        assert_eq!(c.fractions, vec![0.0, 0.3, 0.6, 0.9, 1.0]);
        assert_eq!(last, fill, "after the last step every pixel is filled");
    }

    #[test]
    fn ratio_divides_by_the_original_score() {
        let c = deletion(
            &[1.0, 1.0],
            &[0.0, 0.0],
            &[2.0, 1.0],
            1,
            1,
            8,
            CurveScore::ProbabilityRatio,
            |imgs| imgs.iter().map(|x| 0.5 * (x[0] + x[1]) as f64 * 0.8).collect(),
        );
        assert_eq!(c.scores, vec![1.0, 0.5, 0.0]);
    }

    /// The image a UI rebuilds for a point of the curve is the image the curve scored there.
    #[test]
    fn perturbed_image_is_the_scored_image() {
        let hw = 10;
        let image: Vec<f32> = (0..2 * hw).map(|i| i as f32).collect();
        let fill = vec![-1.0f32; 2 * hw];
        let saliency: Vec<f32> = (0..hw).map(|i| ((i * 7) % 10) as f32).collect();
        let mut scored = Vec::new();
        deletion(&image, &fill, &saliency, 2, 3, 2, CurveScore::Probability, |imgs| {
            scored.extend(imgs.iter().cloned());
            vec![0.0; imgs.len()]
        });
        let order = pixel_order(&saliency);
        for (step, img) in scored.iter().enumerate() {
            assert_eq!(&perturbed_image(&image, &fill, &order, 2, 3, step), img, "step {step}");
        }
        assert_eq!(
            perturbed_image(&image, &fill, &order, 2, 3, 99),
            fill,
            "past the end: all moved"
        );
    }

    /// The RISE blur of a constant image is constant away from the (zero-padded) border,
    /// and its kernel sums to 1.
    #[test]
    fn rise_blur_keeps_constants_inside() {
        let img = vec![0.7f32; 3 * 30 * 30];
        let b = rise_blur(&img, 3, 30, 30);
        assert!((b[15 * 30 + 15] - 0.7).abs() < 1e-5);
        assert!(b[0] < 0.7 * 0.5, "corner darkened by zero padding: {}", b[0]);
    }
}
