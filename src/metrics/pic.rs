//! Performance Information Curves: SIC and AIC (Kapishnikov et al., XRAI; PAIR
//! `saliency/metrics/pic.py`; algorithms.md §4.3).
//!
//! Images are HWC `u8` buffers (`img[(y * width + x) * channels + c]`) with
//! `channels = img.len() / (width · height)` ∈ {1, 2, 3, 4} (the layouts lossless WebP takes).
//! Saliency maps and masks are row-major `height × width`.
//!
//! Per image: a "bokeh" image keeps a random 1 % of the pixels and fills the rest by linear
//! interpolation over their Delaunay triangulation; for each threshold t the top-t pixels of the
//! saliency map are revealed as well. The x axis is the information of each image between the
//! bokeh (0) and the original (1), the y axis the model's score on the same scale.
//!
//! Where this differs from PAIR:
//! - Triangulation (spade instead of qhull): co-circular points (grids, image borders) have
//!   several valid Delaunay triangulations, so such pixels may differ from scipy by the choice of
//!   diagonal. Interpolation here is exact rational arithmetic rounded half to even (numpy's
//!   `round`), so e.g. a linear ramp is reproduced exactly.
//! - WebP sizes come from the image crate's lossless encoder, not libwebp: absolute byte counts
//!   differ from PIL's, so never mix encoders in one comparison.
//! - Duplicate information values: the curve keeps the largest y of the points that share an x
//!   (algorithms.md §4.3). scipy's `interp1d` with repeated x keeps the last one in its
//!   (stable-sorted) order, so there (0, 0), appended after the threshold points, wins at x = 0.
//! - The quantile is numpy's 'linear' one, computed in f64 on the f32 map.
//!
//! [`InformationLevel::MsSsim`] (IDGI, CVPR 2023 §4.5) replaces the WebP size by the MS-SSIM of
//! the image against the original: the mean over channels of the per-channel MS-SSIM (TF
//! `ssim_multiscale` and pytorch_msssim average channels the same way), data range 255. It is
//! normalised like the entropy, (s − s_blur)/(1 − s_blur), the original having s = 1 by
//! definition; that normalisation is our choice. MS-SSIM needs both sides ≥ 161 (224 works).
//!
//! Model calls: one batch with the original and the bokeh image, then (unless the image is
//! skipped) one batch with the `thresholds.len()` threshold images: 15 images at the defaults.
//! [`compute_sic_aic`] scores SIC and AIC from the same images and calls.

use std::fmt;

use image::codecs::webp::WebPEncoder;
use image::ExtendedColorType;
use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use spade::{DelaunayTriangulation, HasPosition, Point2, Triangulation};

use super::ssim::{ms_ssim, SsimOptions};
use super::MetricError;

/// PAIR's default saliency thresholds (fractions of the pixels revealed).
pub const PAIR_THRESHOLDS: [f64; 13] = [
    0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75,
];

/// Fraction of pixels in PAIR's random mask.
pub const RANDOM_MASK_FRACTION: f64 = 0.01;

/// Largest side accepted: the lossless WebP limit, which also keeps the integer interpolation
/// far from overflow.
const MAX_SIDE: usize = 16384;

/// What the x axis measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InformationLevel {
    /// Lossless WebP size, normalised between the bokeh and the original image (PAIR).
    #[default]
    NormalizedEntropy,
    /// MS-SSIM against the original, normalised between the bokeh image and 1 (IDGI).
    MsSsim,
}

/// Settings of [`compute_pic_metric`]; the default is PAIR's `compute_pic_metric` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PicOptions {
    /// Fractions t of the pixels revealed by saliency, each in [0, 1].
    pub thresholds: Vec<f64>,
    /// Images whose score on the original is below this are skipped.
    pub min_pred_value: f64,
    /// Plot the running maximum of the normalised score instead of the score.
    pub keep_monotonous: bool,
    /// Curve samples on [0, 1) (1.0 is appended): 1000 gives x = 0, 0.001, …, 1.
    pub num_data_points: usize,
    pub information: InformationLevel,
}

impl Default for PicOptions {
    fn default() -> Self {
        Self {
            thresholds: PAIR_THRESHOLDS.to_vec(),
            min_pred_value: 0.8,
            keep_monotonous: true,
            num_data_points: 1000,
            information: InformationLevel::NormalizedEntropy,
        }
    }
}

impl PicOptions {
    /// The defaults of PAIR's `pic_metrics.ipynb`: as [`Default`] but `min_pred_value` 0.5.
    pub fn notebook() -> Self {
        Self {
            min_pred_value: 0.5,
            ..Self::default()
        }
    }
}

/// Why an image was left out of the curve; researchers count these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PicSkip {
    /// The score on the original image is below `min_pred_value`.
    LowOriginalPrediction { prediction: f64, min_pred_value: f64 },
    /// The bokeh image carries no less information than the original.
    BlurNotLessInformative { blurred: f64, original: f64 },
    /// The model scores the bokeh image no lower than the original.
    BlurNotLessConfident { blurred: f64, original: f64 },
}

impl fmt::Display for PicSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LowOriginalPrediction {
                prediction,
                min_pred_value,
            } => write!(
                f,
                "score on the original {prediction} is below min_pred_value {min_pred_value}"
            ),
            Self::BlurNotLessInformative { blurred, original } => write!(
                f,
                "information of the bokeh image {blurred} is not below that of the original {original}"
            ),
            Self::BlurNotLessConfident { blurred, original } => {
                write!(
                    f,
                    "score on the bokeh image {blurred} is not below that on the original {original}"
                )
            }
        }
    }
}

/// One threshold image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PicPoint {
    pub threshold: f64,
    /// Raw information (WebP bytes or MS-SSIM).
    pub information: f64,
    /// Information normalised to [0, 1]: the x of the point.
    pub normalized_information: f64,
    /// Raw model score.
    pub prediction: f64,
    /// Score normalised to [0, 1], before the running maximum.
    pub normalized_prediction: f64,
    /// The y of the point (the running maximum when `keep_monotonous`).
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PicCurve {
    /// `num_data_points` samples of [0, 1) and then 1.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Trapezoid area under (x, y).
    pub auc: f64,
    /// The threshold images, in the order of the thresholds.
    pub points: Vec<PicPoint>,
    /// The knots interpolated: the points plus (0, 0) and (1, 1), sorted by x, one per x.
    pub knots: Vec<(f64, f64)>,
    pub original_information: f64,
    pub blurred_information: f64,
    pub original_prediction: f64,
    pub blurred_prediction: f64,
}

/// A curve, or the reason the image was skipped.
#[derive(Debug, Clone, PartialEq)]
pub enum PicOutcome {
    Curve(PicCurve),
    Skipped(PicSkip),
}

impl PicOutcome {
    pub fn curve(&self) -> Option<&PicCurve> {
        match self {
            Self::Curve(c) => Some(c),
            Self::Skipped(_) => None,
        }
    }

    pub fn skip_reason(&self) -> Option<&PicSkip> {
        match self {
            Self::Curve(_) => None,
            Self::Skipped(s) => Some(s),
        }
    }
}

/// SIC and AIC of one image, from one shared set of images and model calls.
#[derive(Debug, Clone, PartialEq)]
pub struct SicAic {
    pub sic: PicOutcome,
    pub aic: PicOutcome,
}

/// Checks an image buffer and returns its number of channels.
fn channels_of(img: &[u8], width: usize, height: usize) -> Result<usize, MetricError> {
    if width == 0 || height == 0 {
        return Err(MetricError::Empty("image"));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(MetricError::InvalidParameter(format!(
            "image {width}x{height}: each side must be at most {MAX_SIDE}"
        )));
    }
    let hw = width * height;
    let channels = img.len() / hw;
    if !img.len().is_multiple_of(hw) || !(1..=4).contains(&channels) {
        return Err(MetricError::SizeMismatch(format!(
            "image buffer of {} bytes is not {width}x{height} with 1 to 4 channels",
            img.len()
        )));
    }
    Ok(channels)
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), MetricError> {
    if expected != got {
        return Err(MetricError::LengthMismatch { what, expected, got });
    }
    Ok(())
}

/// A `height × width` mask with exactly ⌊HW·fraction⌋ true pixels, drawn without replacement
/// from `ChaCha8Rng::seed_from_u64(seed)` (one `rand::seq::index::sample` call).
pub fn random_mask(height: usize, width: usize, fraction: f64, seed: u64) -> Result<Vec<bool>, MetricError> {
    if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
        return Err(MetricError::InvalidParameter(format!(
            "fraction {fraction} is not in [0, 1]"
        )));
    }
    let hw = height * width;
    // Same f64 product as PAIR's int(h * w * fraction).
    let n = ((hw as f64 * fraction).floor() as usize).min(hw);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mask = vec![false; hw];
    for i in index::sample(&mut rng, hw, n).iter() {
        mask[i] = true;
    }
    Ok(mask)
}

/// Information proxy of PAIR: the byte length of the image as lossless WebP.
pub fn estimate_image_entropy(img: &[u8], width: usize, height: usize) -> Result<usize, MetricError> {
    let channels = channels_of(img, width, height)?;
    let color = match channels {
        1 => ExtendedColorType::L8,
        2 => ExtendedColorType::La8,
        3 => ExtendedColorType::Rgb8,
        _ => ExtendedColorType::Rgba8,
    };
    let mut bytes = Vec::new();
    // Sizes were checked above, so the encoder's length assertion cannot fire.
    WebPEncoder::new_lossless(&mut bytes)
        .encode(img, width as u32, height as u32, color)
        .map_err(|e| MetricError::InvalidParameter(format!("WebP encoding failed: {e}")))?;
    Ok(bytes.len())
}

/// A known pixel as a triangulation vertex; `index` is its row-major pixel index.
#[derive(Debug, Clone, Copy)]
struct KnownPixel {
    position: Point2<f64>,
    index: u32,
}

impl HasPosition for KnownPixel {
    type Scalar = f64;
    fn position(&self) -> Point2<f64> {
        self.position
    }
}

/// `num / den` (num ≥ 0, den > 0) rounded half to even, like numpy's `round`.
fn round_ratio(num: i64, den: i64) -> i64 {
    let q = num.div_euclid(den);
    let twice_r = 2 * num.rem_euclid(den);
    if twice_r > den || (twice_r == den && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

/// Inclusive x range of one row where `a·x + b ≥ 0`, intersected with `[lo, hi]`; `None` if
/// empty. Exact integer arithmetic, so no pixel on a shared edge is lost.
fn half_plane_span(a: i64, b: i64, lo: i64, hi: i64) -> Option<(i64, i64)> {
    let (lo, hi) = match a.cmp(&0) {
        std::cmp::Ordering::Greater => (lo.max(-(b.div_euclid(a))), hi),
        std::cmp::Ordering::Less => (lo, hi.min(b.div_euclid(-a))),
        std::cmp::Ordering::Equal => {
            if b < 0 {
                return None;
            }
            (lo, hi)
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// PAIR's "bokeh" image: the pixels in `mask` (plus the 4 corners, always) are kept, every other
/// pixel is the linear (barycentric) interpolation of the known pixels over their Delaunay
/// triangulation, rounded half to even. A mask that is all true returns the image.
///
/// Cost: one triangulation of the known pixels (shared by the channels) and one pass over each
/// triangle's pixels; no point location per pixel.
pub fn create_blurred_image(img: &[u8], width: usize, height: usize, mask: &[bool]) -> Result<Vec<u8>, MetricError> {
    let channels = channels_of(img, width, height)?;
    check_len("mask", width * height, mask.len())?;
    let mut known = mask.to_vec();
    for p in [0, width - 1, (height - 1) * width, height * width - 1] {
        known[p] = true;
    }
    if known.iter().all(|&k| k) {
        return Ok(img.to_vec());
    }
    if width == 1 || height == 1 {
        // All pixels on one line: there are no triangles, so interpolate along the line.
        return Ok(interpolate_line(img, channels, &known));
    }
    let vertices: Vec<KnownPixel> = known
        .iter()
        .enumerate()
        .filter(|(_, &k)| k)
        .map(|(p, _)| KnownPixel {
            position: Point2::new((p % width) as f64, (p / width) as f64),
            index: p as u32,
        })
        .collect();
    let triangulation: DelaunayTriangulation<KnownPixel> = DelaunayTriangulation::bulk_load(vertices)
        .map_err(|e| MetricError::InvalidParameter(format!("Delaunay triangulation failed: {e:?}")))?;

    let mut out = img.to_vec();
    let (w, ch) = (width as i64, channels);
    for face in triangulation.inner_faces() {
        let [a, b, c] = face.vertices().map(|v| {
            let p = v.data().index as i64;
            (p % w, p / w, p as usize)
        });
        // area2 > 0 for the vertex order used below; swap two vertices if needed.
        let edge = |(ax, ay, _): (i64, i64, usize), (bx, by, _): (i64, i64, usize), x: i64, y: i64| {
            (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        };
        let mut area2 = edge(a, b, c.0, c.1);
        let (a, b, c) = match area2.cmp(&0) {
            std::cmp::Ordering::Equal => continue,
            std::cmp::Ordering::Less => {
                area2 = -area2;
                (a, c, b)
            }
            std::cmp::Ordering::Greater => (a, b, c),
        };
        let y_min = a.1.min(b.1).min(c.1);
        let y_max = a.1.max(b.1).max(c.1);
        let x_min = a.0.min(b.0).min(c.0);
        let x_max = a.0.max(b.0).max(c.0);
        for y in y_min..=y_max {
            // Each edge function is linear in x along the row: E(x) = −(by − ay)·x + const.
            let mut span = Some((x_min, x_max));
            for (p, q) in [(a, b), (b, c), (c, a)] {
                span = span.and_then(|(lo, hi)| {
                    let slope = -(q.1 - p.1);
                    let offset = (q.0 - p.0) * (y - p.1) + (q.1 - p.1) * p.0;
                    half_plane_span(slope, offset, lo, hi)
                });
            }
            let Some((lo, hi)) = span else { continue };
            for x in lo..=hi {
                let pixel = (y * w + x) as usize;
                if known[pixel] {
                    continue;
                }
                // Barycentric weights × area2 (each ≥ 0, summing to area2).
                let (wa, wb, wc) = (edge(b, c, x, y), edge(c, a, x, y), edge(a, b, x, y));
                for k in 0..ch {
                    let num =
                        wa * img[a.2 * ch + k] as i64 + wb * img[b.2 * ch + k] as i64 + wc * img[c.2 * ch + k] as i64;
                    out[pixel * ch + k] = round_ratio(num, area2).clamp(0, 255) as u8;
                }
                // Pixels on a shared edge get the same value from either triangle: fill once.
                known[pixel] = true;
            }
        }
    }
    if known.iter().any(|&k| !k) {
        // Unreachable with the corners known (the hull is the whole image); scipy's fill value
        // for points outside the hull is the channel mean.
        fill_with_mean(img, &mut out, channels, &known);
    }
    Ok(out)
}

/// Linear interpolation along a 1-pixel-wide image between consecutive known pixels (both ends
/// are known).
fn interpolate_line(img: &[u8], channels: usize, known: &[bool]) -> Vec<u8> {
    let mut out = img.to_vec();
    let known_idx: Vec<usize> = (0..known.len()).filter(|&p| known[p]).collect();
    for pair in known_idx.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let den = (b - a) as i64;
        for p in a + 1..b {
            for k in 0..channels {
                let num = img[a * channels + k] as i64 * (b - p) as i64 + img[b * channels + k] as i64 * (p - a) as i64;
                out[p * channels + k] = round_ratio(num, den).clamp(0, 255) as u8;
            }
        }
    }
    out
}

fn fill_with_mean(img: &[u8], out: &mut [u8], channels: usize, known: &[bool]) {
    let hw = known.len() as f64;
    for k in 0..channels {
        let mean = img.iter().skip(k).step_by(channels).map(|&v| v as f64).sum::<f64>() / hw;
        let value = mean.round_ties_even().clamp(0.0, 255.0) as u8;
        for (p, _) in known.iter().enumerate().filter(|(_, &is_known)| !is_known) {
            out[p * channels + k] = value;
        }
    }
}

/// numpy's default ('linear') quantile of sorted values, including its two-sided lerp.
fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = (h.floor() as usize).min(sorted.len() - 1);
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = h - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// Mean over channels of the per-channel MS-SSIM of two HWC images, data range 255.
fn ms_ssim_u8(a: &[u8], b: &[u8], width: usize, height: usize, channels: usize) -> Result<f64, MetricError> {
    let options = SsimOptions {
        data_range: 255.0,
        sample_covariance: false,
    };
    let mut sum = 0.0;
    for k in 0..channels {
        let pa: Vec<f32> = a.iter().skip(k).step_by(channels).map(|&v| v as f32).collect();
        let pb: Vec<f32> = b.iter().skip(k).step_by(channels).map(|&v| v as f32).collect();
        sum += ms_ssim(&pa, &pb, width, height, &options)?;
    }
    Ok(sum / channels as f64)
}

/// Normalises `v` between `lo` and `hi` and clips to [0, 1].
fn normalise(v: f64, lo: f64, hi: f64) -> f64 {
    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// Sorts the knots by x, keeps the largest y per x, and samples the piecewise-linear curve at
/// `i / n`, i < n, then appends (1, 1); returns (x, y, knots).
fn sample_curve(mut knots: Vec<(f64, f64)>, n: usize) -> (Vec<f64>, Vec<f64>, Vec<(f64, f64)>) {
    knots.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut unique: Vec<(f64, f64)> = Vec::with_capacity(knots.len());
    for (x, y) in knots {
        match unique.last_mut() {
            Some(last) if last.0 == x => last.1 = last.1.max(y),
            _ => unique.push((x, y)),
        }
    }
    // numpy linspace(0, 1, n, endpoint=False): i·step with step = 1/n.
    let step = 1.0 / n as f64;
    let mut xs: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
    let mut j = 0;
    let mut ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            while j + 2 < unique.len() && unique[j + 1].0 <= x {
                j += 1;
            }
            let (x0, y0) = unique[j];
            let (x1, y1) = unique[(j + 1).min(unique.len() - 1)];
            if x1 > x0 {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            } else {
                y0
            }
        })
        .collect();
    xs.push(1.0);
    ys.push(1.0);
    (xs, ys, unique)
}

/// Trapezoid area under (x, y), numpy `trapz`.
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
        .sum()
}

/// The images and information levels shared by SIC and AIC.
struct Information {
    original: f64,
    blurred: f64,
    /// Per threshold, in order.
    thresholds: Vec<f64>,
}

fn check_options(options: &PicOptions) -> Result<(), MetricError> {
    if options.thresholds.is_empty() {
        return Err(MetricError::Empty("thresholds"));
    }
    if let Some(t) = options
        .thresholds
        .iter()
        .find(|t| !(t.is_finite() && (0.0..=1.0).contains(*t)))
    {
        return Err(MetricError::InvalidParameter(format!("threshold {t} is not in [0, 1]")));
    }
    if !options.min_pred_value.is_finite() {
        return Err(MetricError::NonFinite("min_pred_value"));
    }
    if options.num_data_points == 0 {
        return Err(MetricError::InvalidParameter("num_data_points must be > 0".into()));
    }
    Ok(())
}

/// The PIC pipeline for `K` scores per image (SIC, AIC or both). `predict` maps a batch of
/// images to K scores each; each score gets its own outcome.
fn pic_core<const K: usize>(
    img: &[u8],
    width: usize,
    height: usize,
    saliency: &[f32],
    random_mask: &[bool],
    options: &PicOptions,
    mut predict: impl FnMut(&[Vec<u8>]) -> Result<Vec<[f64; K]>, MetricError>,
) -> Result<[PicOutcome; K], MetricError> {
    let channels = channels_of(img, width, height)?;
    let hw = width * height;
    check_len("saliency", hw, saliency.len())?;
    check_len("random_mask", hw, random_mask.len())?;
    if saliency.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite("saliency"));
    }
    check_options(options)?;

    let information = |candidate: &[u8]| -> Result<f64, MetricError> {
        match options.information {
            InformationLevel::NormalizedEntropy => Ok(estimate_image_entropy(candidate, width, height)? as f64),
            InformationLevel::MsSsim => ms_ssim_u8(candidate, img, width, height, channels),
        }
    };
    let blurred = create_blurred_image(img, width, height, random_mask)?;
    let (info_orig, info_blur) = match options.information {
        InformationLevel::NormalizedEntropy => (information(img)?, information(&blurred)?),
        // MS-SSIM(x, x) = 1; also rejects images too small for 5 scales before any model call.
        InformationLevel::MsSsim => (1.0, information(&blurred)?),
    };
    if info_blur >= info_orig {
        let skip = PicSkip::BlurNotLessInformative {
            blurred: info_blur,
            original: info_orig,
        };
        return Ok(std::array::from_fn(|_| PicOutcome::Skipped(skip)));
    }

    let ends = predict(&[img.to_vec(), blurred])?;
    check_len("predictions of the original and bokeh images", 2, ends.len())?;
    let skips: [Option<PicSkip>; K] = std::array::from_fn(|k| {
        let (p_orig, p_blur) = (ends[0][k], ends[1][k]);
        if p_orig < options.min_pred_value {
            Some(PicSkip::LowOriginalPrediction {
                prediction: p_orig,
                min_pred_value: options.min_pred_value,
            })
        } else if p_blur >= p_orig {
            Some(PicSkip::BlurNotLessConfident {
                blurred: p_blur,
                original: p_orig,
            })
        } else {
            None
        }
    });
    // The threshold images are needed only for a score that was not skipped.
    let (info, preds) = if skips.iter().any(Option::is_none) {
        threshold_images(
            img,
            width,
            height,
            saliency,
            random_mask,
            options,
            &information,
            &mut predict,
        )?
    } else {
        (Vec::new(), Vec::new())
    };
    let info = Information {
        original: info_orig,
        blurred: info_blur,
        thresholds: info,
    };

    Ok(std::array::from_fn(|k| match skips[k] {
        Some(skip) => PicOutcome::Skipped(skip),
        None => PicOutcome::Curve(build_curve(
            &info,
            ends[0][k],
            ends[1][k],
            preds.iter().map(|p| p[k]),
            options,
        )),
    }))
}

/// Builds the threshold images (in parallel: they are independent), measures their information
/// and scores them in one batch; returns (information, scores) per threshold.
#[allow(clippy::too_many_arguments)]
fn threshold_images<const K: usize>(
    img: &[u8],
    width: usize,
    height: usize,
    saliency: &[f32],
    random_mask: &[bool],
    options: &PicOptions,
    information: &(impl Fn(&[u8]) -> Result<f64, MetricError> + Sync),
    predict: &mut impl FnMut(&[Vec<u8>]) -> Result<Vec<[f64; K]>, MetricError>,
) -> Result<(Vec<f64>, Vec<[f64; K]>), MetricError> {
    let mut sorted: Vec<f64> = saliency.iter().map(|&v| v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let images: Vec<(Vec<u8>, f64)> = options
        .thresholds
        .par_iter()
        .map(|&t| {
            let q = quantile_linear(&sorted, 1.0 - t);
            let mask: Vec<bool> = saliency
                .iter()
                .zip(random_mask)
                .map(|(&s, &r)| s as f64 >= q || r)
                .collect();
            let image = create_blurred_image(img, width, height, &mask)?;
            let info = information(&image)?;
            Ok((image, info))
        })
        .collect::<Result<_, MetricError>>()?;
    let (images, infos): (Vec<Vec<u8>>, Vec<f64>) = images.into_iter().unzip();
    let preds = predict(&images)?;
    check_len("predictions of the threshold images", images.len(), preds.len())?;
    Ok((infos, preds))
}

fn build_curve(
    info: &Information,
    p_orig: f64,
    p_blur: f64,
    preds: impl Iterator<Item = f64>,
    options: &PicOptions,
) -> PicCurve {
    let mut best = 0.0f64;
    let points: Vec<PicPoint> = options
        .thresholds
        .iter()
        .zip(&info.thresholds)
        .zip(preds)
        .map(|((&threshold, &information), prediction)| {
            let normalized_prediction = normalise(prediction, p_blur, p_orig);
            best = best.max(normalized_prediction);
            PicPoint {
                threshold,
                information,
                normalized_information: normalise(information, info.blurred, info.original),
                prediction,
                normalized_prediction,
                y: if options.keep_monotonous {
                    best
                } else {
                    normalized_prediction
                },
            }
        })
        .collect();
    let knots: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.normalized_information, p.y))
        .chain([(0.0, 0.0), (1.0, 1.0)])
        .collect();
    let (x, y, knots) = sample_curve(knots, options.num_data_points);
    PicCurve {
        auc: trapezoid(&x, &y),
        x,
        y,
        points,
        knots,
        original_information: info.original,
        blurred_information: info.blurred,
        original_prediction: p_orig,
        blurred_prediction: p_blur,
    }
}

/// Checks a batch of scores from the caller's closure.
fn checked_scores(scores: Vec<f64>, expected: usize) -> Result<Vec<[f64; 1]>, MetricError> {
    check_len("pred_func output", expected, scores.len())?;
    if scores.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite("pred_func output"));
    }
    Ok(scores.into_iter().map(|s| [s]).collect())
}

/// The PIC curve of one image (PAIR `compute_pic_metric`).
///
/// - `img`: HWC `u8`, `width × height`; `saliency`: `height × width`, higher = more important
///   (the caller decides on |·|; PAIR's notebook uses |Σ_c A|).
/// - `random_mask`: see [`random_mask`]; use the same one for every method on an image.
/// - `pred_func`: a batch of HWC `u8` images of the same size → one score each (the softmax
///   probability of the class for SIC, 1.0/0.0 for "argmax is the class" for AIC). Called twice:
///   with [original, bokeh], then with all threshold images.
///
/// Returns [`PicOutcome::Skipped`] (not an error) for the images PAIR rejects.
pub fn compute_pic_metric(
    img: &[u8],
    width: usize,
    height: usize,
    saliency: &[f32],
    random_mask: &[bool],
    mut pred_func: impl FnMut(&[Vec<u8>]) -> Vec<f64>,
    options: &PicOptions,
) -> Result<PicOutcome, MetricError> {
    let [outcome] = pic_core::<1>(img, width, height, saliency, random_mask, options, |batch| {
        checked_scores(pred_func(batch), batch.len())
    })?;
    Ok(outcome)
}

/// SIC and AIC of one image from one set of bokeh images and one pair of model calls.
///
/// `probabilities`: a batch of HWC `u8` images → the softmax probabilities over all classes of
/// each. SIC uses `probabilities[class]`; AIC uses 1.0 when `class` is the argmax (the first
/// maximum, as numpy/torch), else 0.0.
#[allow(clippy::too_many_arguments)]
pub fn compute_sic_aic(
    img: &[u8],
    width: usize,
    height: usize,
    saliency: &[f32],
    random_mask: &[bool],
    class: usize,
    mut probabilities: impl FnMut(&[Vec<u8>]) -> Vec<Vec<f64>>,
    options: &PicOptions,
) -> Result<SicAic, MetricError> {
    let [sic, aic] = pic_core::<2>(img, width, height, saliency, random_mask, options, |batch| {
        let probs = probabilities(batch);
        check_len("probabilities output", batch.len(), probs.len())?;
        probs
            .iter()
            .map(|p| {
                if p.iter().any(|v| !v.is_finite()) {
                    return Err(MetricError::NonFinite("probabilities output"));
                }
                let Some(&prob) = p.get(class) else {
                    return Err(MetricError::InvalidParameter(format!(
                        "class {class} is out of range for {} probabilities",
                        p.len()
                    )));
                };
                let first_max = p
                    .iter()
                    .enumerate()
                    .fold(0, |best, (i, &v)| if v > p[best] { i } else { best });
                Ok([prob, if first_max == class { 1.0 } else { 0.0 }])
            })
            .collect()
    })?;
    Ok(SicAic { sic, aic })
}

/// How [`aggregate_curves`] combines the curves at each x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    /// PAIR's default.
    #[default]
    Median,
    Mean,
}

/// A curve over many images (PAIR `aggregate_individual_pic_results`).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCurve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub auc: f64,
}

/// The per-x median or mean of curves that share one x grid, and its trapezoid AUC. The
/// median of an even count is the mean of the two middle values (numpy).
pub fn aggregate_curves<'a>(
    curves: impl IntoIterator<Item = &'a PicCurve>,
    method: Aggregation,
) -> Result<AggregateCurve, MetricError> {
    let curves: Vec<&PicCurve> = curves.into_iter().collect();
    let first = curves.first().ok_or(MetricError::Empty("curves"))?;
    for c in &curves {
        check_len("curve y", first.x.len(), c.y.len())?;
        if c.x != first.x {
            return Err(MetricError::SizeMismatch("the curves have different x grids".into()));
        }
    }
    let ys: Vec<&[f64]> = curves.iter().map(|c| c.y.as_slice()).collect();
    Ok(aggregate_samples(&first.x, &ys, method))
}

/// A curve's samples rebuilt from its knots (e.g. read back from a results file), exactly
/// as [`compute_pic_metric`] samples them: (x, y).
pub fn sample_knots(knots: Vec<(f64, f64)>, num_data_points: usize) -> Result<(Vec<f64>, Vec<f64>), MetricError> {
    if knots.is_empty() || num_data_points == 0 {
        return Err(MetricError::Empty("knots"));
    }
    if knots.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return Err(MetricError::NonFinite("knots"));
    }
    let (x, y, _) = sample_curve(knots, num_data_points);
    Ok((x, y))
}

/// The per-x median or mean of sampled curves `ys` on the grid `x`, and its trapezoid AUC.
pub fn aggregate_samples(x: &[f64], ys: &[&[f64]], method: Aggregation) -> AggregateCurve {
    let mut column = Vec::with_capacity(ys.len());
    let y: Vec<f64> = (0..x.len())
        .map(|i| {
            column.clear();
            column.extend(ys.iter().map(|c| c[i]));
            match method {
                Aggregation::Mean => column.iter().sum::<f64>() / column.len() as f64,
                Aggregation::Median => {
                    column.sort_by(f64::total_cmp);
                    let n = column.len();
                    if n % 2 == 1 {
                        column[n / 2]
                    } else {
                        (column[n / 2 - 1] + column[n / 2]) / 2.0
                    }
                }
            }
        })
        .collect();
    AggregateCurve {
        auc: trapezoid(x, &y),
        x: x.to_vec(),
        y,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Deterministic bytes from an LCG.
    fn noise_u8(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 56) as u8
            })
            .collect()
    }

    fn curve_with_y(x: &[f64], y: &[f64]) -> PicCurve {
        PicCurve {
            x: x.to_vec(),
            y: y.to_vec(),
            auc: trapezoid(x, y),
            points: Vec::new(),
            knots: Vec::new(),
            original_information: 1.0,
            blurred_information: 0.0,
            original_prediction: 1.0,
            blurred_prediction: 0.0,
        }
    }

    #[test]
    fn full_mask_returns_the_image() {
        let img = noise_u8(7 * 5 * 3, 1);
        let out = create_blurred_image(&img, 7, 5, &[true; 35]).unwrap();
        assert_eq!(out, img);
    }

    #[test]
    fn corners_of_ones_fill_a_3x3_image_with_ones() {
        for channels in [1usize, 3] {
            let mut img = vec![0u8; 9 * channels];
            for p in [0, 2, 6, 8] {
                img[p * channels..(p + 1) * channels].fill(1);
            }
            let out = create_blurred_image(&img, 3, 3, &[false; 9]).unwrap();
            assert_eq!(out, vec![1u8; 9 * channels], "channels {channels}");
        }
    }

    #[test]
    fn linear_ramp_is_reproduced_exactly() {
        // v = 2x + 3y + 5 (+ 40 per channel): linear interpolation of a linear function is exact,
        // including on a regular grid, whose Delaunay triangulation is not unique.
        let (w, h, ch) = (40usize, 30usize, 3usize);
        let mut img = vec![0u8; w * h * ch];
        for y in 0..h {
            for x in 0..w {
                for c in 0..ch {
                    img[(y * w + x) * ch + c] = (2 * x + 3 * y + 5 + 40 * c) as u8;
                }
            }
        }
        let grid: Vec<bool> = (0..w * h).map(|p| (p % w) % 4 == 0 && (p / w) % 3 == 0).collect();
        let random = random_mask(h, w, 0.05, 3).unwrap();
        for (name, mask) in [("grid", grid), ("random", random), ("corners", vec![false; w * h])] {
            let out = create_blurred_image(&img, w, h, &mask).unwrap();
            assert_eq!(out, img, "{name} mask");
        }
    }

    #[test]
    fn rounding_is_half_to_even() {
        // 1×3 line 0, ?, 1 → 0.5 → 0; 1×3 line 1, ?, 2 → 1.5 → 2 (numpy round).
        assert_eq!(
            create_blurred_image(&[0, 9, 1], 3, 1, &[false; 3]).unwrap(),
            vec![0, 0, 1]
        );
        assert_eq!(
            create_blurred_image(&[1, 9, 2], 1, 3, &[false; 3]).unwrap(),
            vec![1, 2, 2]
        );
        assert_eq!(round_ratio(5, 2), 2);
        assert_eq!(round_ratio(7, 2), 4);
        assert_eq!(round_ratio(7, 3), 2);
        assert_eq!(round_ratio(8, 3), 3);
    }

    #[test]
    fn tiny_and_degenerate_images_do_not_panic() {
        assert_eq!(create_blurred_image(&[7], 1, 1, &[false]).unwrap(), vec![7]);
        let img = noise_u8(2 * 2 * 3, 4);
        assert_eq!(create_blurred_image(&img, 2, 2, &[false; 4]).unwrap(), img);
        // A line of collinear known pixels inside a 2-row image.
        let img = noise_u8(50 * 2, 5);
        let mask: Vec<bool> = (0..100).map(|p| p < 50).collect();
        let out = create_blurred_image(&img, 50, 2, &mask).unwrap();
        assert_eq!(out[..50], img[..50]);
        assert!(matches!(
            create_blurred_image(&img, 50, 3, &mask),
            Err(MetricError::SizeMismatch(_))
        ));
        assert!(matches!(
            create_blurred_image(&img, 50, 2, &mask[..99]),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            create_blurred_image(&[], 0, 0, &[]),
            Err(MetricError::Empty(_))
        ));
    }

    #[test]
    fn entropy_grows_with_the_mask_fraction() {
        // Smooth structure plus mild noise: pure noise is incompressible at any mask fraction.
        let (w, h) = (64usize, 64usize);
        let noise = noise_u8(w * h * 3, 6);
        let img: Vec<u8> = (0..w * h * 3)
            .map(|i| {
                let (p, c) = (i / 3, i % 3);
                let (x, y) = ((p % w) as f64, (p / w) as f64);
                let smooth = 128.0 + 60.0 * (x / 3.0 + c as f64).sin() * (y / 5.0).cos();
                (smooth + noise[i] as f64 / 8.0 - 16.0).round() as u8
            })
            .collect();
        let mut previous = 0;
        for (i, fraction) in [0.01, 0.1, 0.3, 0.6, 0.9].into_iter().enumerate() {
            let mask = random_mask(h, w, fraction, 10 + i as u64).unwrap();
            let bytes = estimate_image_entropy(&create_blurred_image(&img, w, h, &mask).unwrap(), w, h).unwrap();
            assert!(bytes > previous, "fraction {fraction}: {bytes} bytes ≤ {previous}");
            previous = bytes;
        }
        let full = estimate_image_entropy(&img, w, h).unwrap();
        assert!(full > previous, "original {full} bytes ≤ {previous}");
    }

    #[test]
    fn random_mask_count_is_exact_and_seeded() {
        for (h, w, fraction, expected) in [
            (224, 224, 0.01, 501),
            (10, 10, 0.0, 0),
            (10, 10, 1.0, 100),
            (7, 3, 0.5, 10),
        ] {
            let mask = random_mask(h, w, fraction, 1).unwrap();
            assert_eq!(mask.len(), h * w);
            assert_eq!(mask.iter().filter(|&&m| m).count(), expected, "{h}x{w} · {fraction}");
        }
        assert_eq!(
            random_mask(50, 50, 0.1, 9).unwrap(),
            random_mask(50, 50, 0.1, 9).unwrap()
        );
        assert_ne!(
            random_mask(50, 50, 0.1, 9).unwrap(),
            random_mask(50, 50, 0.1, 8).unwrap()
        );
        assert!(random_mask(5, 5, 1.5, 0).is_err());
        assert!(random_mask(5, 5, f64::NAN, 0).is_err());
    }

    #[test]
    fn aggregation_median_and_mean() {
        let x = [0.0, 0.25, 0.5, 0.75, 1.0];
        let a = curve_with_y(&x, &[0.0, 0.2, 0.4, 0.6, 1.0]);
        let b = curve_with_y(&x, &[0.0, 0.4, 0.4, 0.4, 1.0]);
        for method in [Aggregation::Median, Aggregation::Mean] {
            // Two curves: the median is the mean of the two.
            let agg = aggregate_curves([&a, &b], method).unwrap();
            assert_eq!(agg.x, x.to_vec());
            for (got, want) in agg.y.iter().zip([0.0, 0.3, 0.4, 0.5, 1.0]) {
                assert!((got - want).abs() < 1e-12, "{method:?}: {:?}", agg.y);
            }
            assert!((agg.auc - 0.425).abs() < 1e-12, "{method:?}: {}", agg.auc);
        }
        let c = curve_with_y(&x, &[0.0, 0.9, 0.9, 0.9, 1.0]);
        let median = aggregate_curves([&a, &b, &c], Aggregation::Median).unwrap();
        assert_eq!(median.y, vec![0.0, 0.4, 0.4, 0.6, 1.0]);
        assert_eq!(
            aggregate_curves([], Aggregation::Mean),
            Err(MetricError::Empty("curves"))
        );
        let other = curve_with_y(&[0.0, 0.5, 1.0], &[0.0, 0.5, 1.0]);
        assert!(aggregate_curves([&a, &other], Aggregation::Mean).is_err());
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // np.quantile([1, 2, 3, 4], q) for q = 0, 0.3, 0.5, 0.95, 1.
        for (q, want) in [(0.0, 1.0), (0.3, 1.9), (0.5, 2.5), (0.95, 3.85), (1.0, 4.0)] {
            assert!((quantile_linear(&v, q) - want).abs() < 1e-12, "q {q}");
        }
        assert_eq!(quantile_linear(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn curve_sorts_knots_and_keeps_the_largest_y_per_x() {
        let knots = vec![(0.5, 0.2), (0.0, 0.4), (0.5, 0.8), (0.0, 0.0), (1.0, 1.0)];
        let (x, y, unique) = sample_curve(knots, 4);
        assert_eq!(unique, vec![(0.0, 0.4), (0.5, 0.8), (1.0, 1.0)]);
        assert_eq!(x, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let want = [0.4, 0.6, 0.8, 0.9, 1.0];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{y:?}");
        }
        assert!((trapezoid(&x, &y) - 0.25 * (0.5 + 0.7 + 0.85 + 0.95)).abs() < 1e-12);
    }

    /// A noise image whose "object" is the top-left `side × side` square, and a model whose
    /// probability is the fraction of object bytes within ±2 of the original.
    fn object_scene(w: usize, h: usize, side: usize) -> (Vec<u8>, impl Fn(&[u8]) -> f64 + Clone) {
        let img = noise_u8(w * h * 3, 11);
        let reference = img.clone();
        let model = move |candidate: &[u8]| {
            let mut hits = 0usize;
            for y in 0..side {
                for x in 0..side {
                    for c in 0..3 {
                        let i = (y * w + x) * 3 + c;
                        hits += (candidate[i].abs_diff(reference[i]) <= 2) as usize;
                    }
                }
            }
            hits as f64 / (side * side * 3) as f64
        };
        (img, model)
    }

    fn object_map(w: usize, h: usize, side: usize, sign: f32) -> Vec<f32> {
        let jitter: Vec<f32> = noise_u8(w * h, 12).iter().map(|&v| v as f32 / 256.0).collect();
        (0..w * h)
            .map(|p| sign * (jitter[p] + if p % w < side && p / w < side { 1.0 } else { 0.0 }))
            .collect()
    }

    #[test]
    fn a_good_map_beats_an_inverted_map_on_sic() {
        let (w, h, side) = (64usize, 64usize, 16usize);
        let (img, model) = object_scene(w, h, side);
        let mask = random_mask(h, w, RANDOM_MASK_FRACTION, 7).unwrap();
        let options = PicOptions::default();
        let auc = |sign: f32| {
            let mut calls = Vec::new();
            let outcome = compute_pic_metric(
                &img,
                w,
                h,
                &object_map(w, h, side, sign),
                &mask,
                |batch| {
                    calls.push(batch.len());
                    batch.iter().map(|i| model(i)).collect()
                },
                &options,
            )
            .unwrap();
            assert_eq!(calls, vec![2, 13], "batched model calls");
            let curve = outcome.curve().expect("not skipped").clone();
            assert_eq!(curve.x.len(), 1001);
            assert_eq!(curve.points.len(), 13);
            assert!(curve.y.windows(2).all(|p| p[1] >= p[0] - 1e-12), "monotone curve");
            // A results file keeps only the knots; they give back the same samples.
            let (x, y) = sample_knots(curve.knots.clone(), 1000).unwrap();
            assert_eq!((x, y), (curve.x.clone(), curve.y.clone()));
            curve.auc
        };
        let (good, inverted) = (auc(1.0), auc(-1.0));
        assert!(good > inverted + 0.3, "good {good} vs inverted {inverted}");
    }

    #[test]
    fn sic_and_aic_share_one_set_of_images_and_calls() {
        let (w, h, side) = (64usize, 64usize, 16usize);
        let (img, model) = object_scene(w, h, side);
        let mask = random_mask(h, w, RANDOM_MASK_FRACTION, 7).unwrap();
        let saliency = object_map(w, h, side, 1.0);
        let mut calls = Vec::new();
        // Two classes: p(0) = the object score; class 0 is the argmax when p > 0.5.
        let both = compute_sic_aic(
            &img,
            w,
            h,
            &saliency,
            &mask,
            0,
            |batch| {
                calls.push(batch.len());
                batch.iter().map(|i| model(i)).map(|p| vec![p, 1.0 - p]).collect()
            },
            &PicOptions::default(),
        )
        .unwrap();
        assert_eq!(calls, vec![2, 13]);
        let sic = both.sic.curve().expect("sic");
        let aic = both.aic.curve().expect("aic");
        // Same images, so the same x of every point.
        for (s, a) in sic.points.iter().zip(&aic.points) {
            assert_eq!(s.normalized_information, a.normalized_information);
            assert_eq!(a.prediction, if s.prediction > 0.5 { 1.0 } else { 0.0 });
        }
        let single = compute_pic_metric(
            &img,
            w,
            h,
            &saliency,
            &mask,
            |batch| batch.iter().map(|i| model(i)).collect(),
            &PicOptions::default(),
        )
        .unwrap();
        assert_eq!(single.curve(), Some(sic));
    }

    #[test]
    fn skipped_images_give_a_reason_and_no_threshold_calls() {
        let (w, h) = (32usize, 32usize);
        let mask = random_mask(h, w, RANDOM_MASK_FRACTION, 1).unwrap();
        let saliency: Vec<f32> = (0..w * h).map(|p| p as f32).collect();
        let options = PicOptions::default();
        let run = |img: &[u8], score: &dyn Fn(&[u8]) -> f64| {
            let mut calls = 0;
            let outcome = compute_pic_metric(
                img,
                w,
                h,
                &saliency,
                &mask,
                |batch| {
                    calls += 1;
                    batch.iter().map(|i| score(i)).collect()
                },
                &options,
            )
            .unwrap();
            (outcome, calls)
        };
        // A flat image: the bokeh image is the image, no less information.
        let (outcome, calls) = run(&vec![90u8; w * h * 3], &|_| 1.0);
        assert!(matches!(
            outcome.skip_reason(),
            Some(PicSkip::BlurNotLessInformative { .. })
        ));
        assert_eq!(calls, 0);
        let img = noise_u8(w * h * 3, 2);
        let original = img.clone();
        let (outcome, calls) = run(&img, &|i| if i == original.as_slice() { 0.5 } else { 0.1 });
        assert_eq!(
            outcome,
            PicOutcome::Skipped(PicSkip::LowOriginalPrediction {
                prediction: 0.5,
                min_pred_value: 0.8
            })
        );
        assert_eq!(calls, 1);
        let (outcome, _) = run(&img, &|_| 0.9);
        assert_eq!(
            outcome,
            PicOutcome::Skipped(PicSkip::BlurNotLessConfident {
                blurred: 0.9,
                original: 0.9
            })
        );
        assert!(!outcome.skip_reason().unwrap().to_string().is_empty());
        // The notebook's lower threshold accepts the 0.5 image.
        let mut calls = 0;
        let notebook = compute_pic_metric(
            &img,
            w,
            h,
            &saliency,
            &mask,
            |batch| {
                calls += 1;
                batch.iter().map(|i| if i == &original { 0.5 } else { 0.1 }).collect()
            },
            &PicOptions::notebook(),
        )
        .unwrap();
        assert!(notebook.curve().is_some());
        assert_eq!(calls, 2);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (w, h) = (16usize, 16usize);
        let img = noise_u8(w * h * 3, 3);
        let mask = vec![false; w * h];
        let saliency = vec![0.5f32; w * h];
        let score = |batch: &[Vec<u8>]| vec![1.0; batch.len()];
        let o = PicOptions::default();
        assert!(matches!(
            compute_pic_metric(&img, w, h, &saliency[1..], &mask, score, &o),
            Err(MetricError::LengthMismatch { what: "saliency", .. })
        ));
        let mut nan = saliency.clone();
        nan[3] = f32::NAN;
        assert_eq!(
            compute_pic_metric(&img, w, h, &nan, &mask, score, &o),
            Err(MetricError::NonFinite("saliency"))
        );
        let bad = PicOptions {
            thresholds: vec![0.1, 1.5],
            ..PicOptions::default()
        };
        assert!(compute_pic_metric(&img, w, h, &saliency, &mask, score, &bad).is_err());
        // Wrong number of scores, and non-finite scores.
        let few = |_: &[Vec<u8>]| vec![1.0];
        assert!(matches!(
            compute_pic_metric(&img, w, h, &saliency, &mask, few, &o),
            Err(MetricError::LengthMismatch { .. })
        ));
        let nan_scores = |b: &[Vec<u8>]| vec![f64::NAN; b.len()];
        assert!(compute_pic_metric(&img, w, h, &saliency, &mask, nan_scores, &o).is_err());
        let short = |b: &[Vec<u8>]| vec![vec![1.0]; b.len()];
        assert!(matches!(
            compute_sic_aic(&img, w, h, &saliency, &mask, 3, short, &o),
            Err(MetricError::InvalidParameter(_))
        ));
        // MS-SSIM needs 5 scales.
        let ms = PicOptions {
            information: InformationLevel::MsSsim,
            ..PicOptions::default()
        };
        assert!(matches!(
            compute_pic_metric(&img, w, h, &saliency, &mask, score, &ms),
            Err(MetricError::TooSmall { .. })
        ));
    }

    #[test]
    fn ms_ssim_information_on_224() {
        let (w, h, side) = (224usize, 224usize, 56usize);
        let (img, model) = object_scene(w, h, side);
        let mask = random_mask(h, w, RANDOM_MASK_FRACTION, 5).unwrap();
        let options = PicOptions {
            information: InformationLevel::MsSsim,
            ..PicOptions::default()
        };
        let outcome = compute_pic_metric(
            &img,
            w,
            h,
            &object_map(w, h, side, 1.0),
            &mask,
            |batch| batch.iter().map(|i| model(i)).collect(),
            &options,
        )
        .unwrap();
        let curve = outcome.curve().expect("not skipped");
        assert_eq!(curve.original_information, 1.0);
        assert!(curve.blurred_information < 0.5, "{}", curve.blurred_information);
        let xs: Vec<f64> = curve.points.iter().map(|p| p.normalized_information).collect();
        assert!(
            xs.windows(2).all(|p| p[1] >= p[0]),
            "MS-SSIM grows as pixels are revealed: {xs:?}"
        );
        assert!(curve.auc > 0.5, "{}", curve.auc);
    }

    /// Properties of one 224×224 bokeh image with half the pixels known, and its cost (printed).
    #[test]
    fn bokeh_224_half_known() {
        let (w, h, ch) = (224usize, 224usize, 3usize);
        let img = noise_u8(w * h * ch, 21);
        let mask = random_mask(h, w, 0.5, 22).unwrap();
        let start = Instant::now();
        let out = create_blurred_image(&img, w, h, &mask).unwrap();
        let elapsed = start.elapsed();
        println!("bokeh 224x224x3, 50% known: {:.2} ms", elapsed.as_secs_f64() * 1e3);
        let mut known = mask.clone();
        for p in [0, w - 1, (h - 1) * w, h * w - 1] {
            known[p] = true;
        }
        for c in 0..ch {
            let values = || (0..w * h).filter(|&p| known[p]).map(|p| img[p * ch + c]);
            let (lo, hi) = (values().min().unwrap(), values().max().unwrap());
            for p in 0..w * h {
                let v = out[p * ch + c];
                if known[p] {
                    assert_eq!(v, img[p * ch + c], "known pixel {p} changed");
                } else {
                    assert!(
                        (lo..=hi).contains(&v),
                        "pixel {p} channel {c}: {v} outside [{lo}, {hi}]"
                    );
                }
            }
        }
        let start = Instant::now();
        let bytes = estimate_image_entropy(&out, w, h).unwrap();
        println!(
            "lossless WebP 224x224x3: {bytes} bytes, {:.2} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}
