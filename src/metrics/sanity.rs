//! Model-parameter sanity checks: cascading randomisation (Adebayo et al. 2018; algorithms.md
//! §4.5).
//!
//! The blocks of a trained model are re-drawn from the top (logits) down, cumulatively; after
//! each stage the map is recomputed for the same image and compared with the trained model's
//! map. A method that explains the model should lose its similarity as layers are randomised;
//! one whose map stays similar is insensitive to the model (like [`sobel_edge_map`], the
//! control that ignores the model altogether).
//!
//! Similarity measures, as in the SANITY notebook; maps are flat CHW:
//! 1. Spearman rank correlation of the abs-normalised maps ([`abs_normalized`], PAIR grayscale).
//! 2. Spearman of the diverging-normalised maps ([`diverging_normalized`]).
//! 3. SSIM of the min-max [0, 1] maps ([`min_max_normalized`]), skimage's legacy settings
//!    ([`SsimOptions::skimage_legacy`]); for several channels, the mean of the per-channel SSIMs
//!    (skimage's `multichannel=True`).
//! 4. Spearman of the [`hog`] features of those [0, 1] maps.
//!
//! A correlation is NaN when it is undefined: a side is constant (e.g. a model whose target
//! logit is dead everywhere gives an all-zero map).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::sensitivity::pearson;
use super::ssim::{ssim, SsimOptions};
use super::MetricError;
use crate::attribution::display::percentile;
use crate::attribution::AttributionError;
use crate::model::randomize::{build_classifier, randomize_top_blocks, Block, RandomizeError};
use crate::model::{Classifier, ModelError};

/// The layout of a flat CHW map: `channels` planes of `height × width` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl MapShape {
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    pub fn hw(&self) -> usize {
        self.height * self.width
    }

    pub fn len(&self) -> usize {
        self.channels * self.hw()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, what: &'static str, values: &[f32]) -> Result<(), MetricError> {
        if self.is_empty() {
            return Err(MetricError::Empty(what));
        }
        if values.len() != self.len() {
            return Err(MetricError::LengthMismatch {
                what,
                expected: self.len(),
                got: values.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(MetricError::NonFinite(what));
        }
        Ok(())
    }
}

/// 1-based ranks of `values`; tied values share the mean of their ranks (scipy `rankdata`'s
/// default `average`). NaNs rank last, in their order of appearance.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) hold equal values: ranks i+1..=j, mean (i + 1 + j) / 2.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        i = j;
    }
    ranks
}

/// Spearman rank correlation: the Pearson correlation of the average ranks. `None` when it is
/// undefined (lengths differ, fewer than 2 values, a non-finite value, a constant side).
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Guards the 0/0 of a constant map the way RECAL does (+1e-10 on the denominator).
const DIV_EPS: f32 = 1e-10;

/// PAIR `VisualizeImageGrayscale(A, 99)` (§3.1): s = Σ_c |A_c|, then
/// clip((s − min s) / (p99(s) − min s), 0, 1); one plane of H·W values.
pub fn abs_normalized(map: &[f32], shape: MapShape) -> Result<Vec<f32>, MetricError> {
    shape.check("map", map)?;
    let s = crate::attribution::display::reduce_channels(
        map,
        shape.channels,
        shape.hw(),
        crate::attribution::display::ChannelReduction::AbsSum,
    );
    let vmax = percentile(&s, 99.0);
    let vmin = s.iter().copied().fold(f32::INFINITY, f32::min);
    let span = if vmax > vmin { vmax - vmin } else { DIV_EPS };
    Ok(s.iter().map(|&v| ((v - vmin) / span).clamp(0.0, 1.0)).collect())
}

/// PAIR `VisualizeImageDiverging(A, 99)` (§3.1): s = Σ_c A_c, span = |p99(s)|, then
/// clip((s + span) / (2·span), −1, 1); zero maps to 0.5. One plane of H·W values.
pub fn diverging_normalized(map: &[f32], shape: MapShape) -> Result<Vec<f32>, MetricError> {
    shape.check("map", map)?;
    let s = crate::attribution::display::reduce_channels(
        map,
        shape.channels,
        shape.hw(),
        crate::attribution::display::ChannelReduction::Sum,
    );
    let span = percentile(&s, 99.0).abs();
    let span = if span > 0.0 { span } else { DIV_EPS };
    Ok(s.iter()
        .map(|&v| ((v + span) / (2.0 * span)).clamp(-1.0, 1.0))
        .collect())
}

/// (x − min) / (max − min) over all values; a constant map becomes all zeros (NumPy would give
/// NaN).
pub fn min_max_normalized(map: &[f32]) -> Vec<f32> {
    let (lo, hi) = map.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    if hi <= lo {
        return vec![0.0; map.len()];
    }
    map.iter().map(|&v| (v - lo) / (hi - lo)).collect()
}

/// HOG block normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockNorm {
    /// v / (‖v‖₁ + ε): the skimage default before 0.15, i.e. in 2018.
    L1,
    /// L2, clip at 0.2, L2 again: skimage's default since 0.15.
    #[default]
    L2Hys,
}

/// skimage `hog` parameters; the default is skimage's (9 orientations, 3×3 cells per block,
/// L2-Hys) with SANITY's 16×16 pixels per cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HogOptions {
    pub orientations: usize,
    /// (rows, columns).
    pub pixels_per_cell: (usize, usize),
    /// (rows, columns).
    pub cells_per_block: (usize, usize),
    pub block_norm: BlockNorm,
}

impl Default for HogOptions {
    fn default() -> Self {
        Self {
            orientations: 9,
            pixels_per_cell: (16, 16),
            cells_per_block: (3, 3),
            block_norm: BlockNorm::L2Hys,
        }
    }
}

/// Histogram of oriented gradients, as skimage's `hog(image, feature_vector=True)` without
/// `transform_sqrt`:
/// - gradients by central differences (x[i+1] − x[i−1], no ½), zero on the border rows/columns;
///   with several channels, each pixel takes the gradient of the channel where it is largest;
/// - unsigned orientation atan2(g_row, g_col) mod 180°, hard-binned into `orientations` equal
///   bins (skimage does not interpolate between bins or cells either);
/// - each cell's bin holds Σ magnitude / (cell area); only whole cells count;
/// - blocks of `cells_per_block` cells, stride one cell, normalised with ε = 1e-5;
/// - output in (block row, block col, cell row, cell col, orientation) order.
pub fn hog(image: &[f32], shape: MapShape, options: &HogOptions) -> Result<Vec<f64>, MetricError> {
    shape.check("image", image)?;
    let HogOptions {
        orientations,
        pixels_per_cell: (pr, pc),
        cells_per_block: (br, bc),
        block_norm,
    } = *options;
    if orientations == 0 || pr == 0 || pc == 0 || br == 0 || bc == 0 {
        return Err(MetricError::InvalidParameter(format!(
            "HOG parameters must be positive: {options:?}"
        )));
    }
    let (h, w) = (shape.height, shape.width);
    let (n_cells_r, n_cells_c) = (h / pr, w / pc);
    if n_cells_r < br || n_cells_c < bc {
        return Err(MetricError::TooSmall {
            width: w,
            height: h,
            min_side: (pr * br).max(pc * bc),
        });
    }
    // Per-pixel gradient of the channel with the largest magnitude (first such channel on ties,
    // like NumPy's argmax).
    let mut mag = vec![0f64; h * w];
    let mut ori = vec![0f64; h * w];
    for y in 0..h {
        for x in 0..w {
            let (mut best, mut best_r, mut best_c) = (-1.0f64, 0.0f64, 0.0f64);
            for ch in 0..shape.channels {
                let p = |yy: usize, xx: usize| image[ch * h * w + yy * w + xx] as f64;
                let gr = if y > 0 && y + 1 < h {
                    p(y + 1, x) - p(y - 1, x)
                } else {
                    0.0
                };
                let gc = if x > 0 && x + 1 < w {
                    p(y, x + 1) - p(y, x - 1)
                } else {
                    0.0
                };
                let m = gr.hypot(gc);
                if m > best {
                    (best, best_r, best_c) = (m, gr, gc);
                }
            }
            mag[y * w + x] = best;
            ori[y * w + x] = best_r.atan2(best_c).to_degrees().rem_euclid(180.0);
        }
    }
    let per_bin = 180.0 / orientations as f64;
    let area = (pr * pc) as f64;
    let mut hist = vec![0f64; n_cells_r * n_cells_c * orientations];
    for cy in 0..n_cells_r {
        for cx in 0..n_cells_c {
            let cell = &mut hist[(cy * n_cells_c + cx) * orientations..][..orientations];
            for y in cy * pr..(cy + 1) * pr {
                for x in cx * pc..(cx + 1) * pc {
                    let bin = (ori[y * w + x] / per_bin).floor() as usize;
                    // rem_euclid can round up to exactly 180°, which skimage's bins also miss.
                    if bin < orientations {
                        cell[bin] += mag[y * w + x];
                    }
                }
            }
            cell.iter_mut().for_each(|v| *v /= area);
        }
    }
    const EPS: f64 = 1e-5;
    let (n_blocks_r, n_blocks_c) = (n_cells_r - br + 1, n_cells_c - bc + 1);
    let mut out = Vec::with_capacity(n_blocks_r * n_blocks_c * br * bc * orientations);
    let mut block = Vec::with_capacity(br * bc * orientations);
    for by in 0..n_blocks_r {
        for bx in 0..n_blocks_c {
            block.clear();
            for cy in by..by + br {
                let row = (cy * n_cells_c + bx) * orientations;
                block.extend_from_slice(&hist[row..row + bc * orientations]);
            }
            match block_norm {
                BlockNorm::L1 => {
                    let norm = block.iter().map(|v| v.abs()).sum::<f64>() + EPS;
                    out.extend(block.iter().map(|v| v / norm));
                }
                BlockNorm::L2Hys => {
                    let l2 = |b: &[f64]| (b.iter().map(|v| v * v).sum::<f64>() + EPS * EPS).sqrt();
                    let n1 = l2(&block);
                    block.iter_mut().for_each(|v| *v = (*v / n1).min(0.2));
                    let n2 = l2(&block);
                    out.extend(block.iter().map(|v| v / n2));
                }
            }
        }
    }
    Ok(out)
}

/// The four similarities of §4.5 between two maps of the same shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapSimilarity {
    pub spearman_abs: f64,
    pub spearman_signed: f64,
    pub ssim: f64,
    pub hog: f64,
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The maps normalised once, so a reference can be compared with many others.
struct NormalizedMap {
    abs: Vec<f64>,
    signed: Vec<f64>,
    unit: Vec<f32>,
    hog: Vec<f64>,
}

impl NormalizedMap {
    fn new(map: &[f32], shape: MapShape) -> Result<Self, MetricError> {
        let unit = min_max_normalized(map);
        Ok(Self {
            abs: to_f64(&abs_normalized(map, shape)?),
            signed: to_f64(&diverging_normalized(map, shape)?),
            hog: hog(&unit, shape, &HogOptions::default())?,
            unit,
        })
    }

    fn compare(&self, other: &Self, shape: MapShape) -> Result<MapSimilarity, MetricError> {
        let hw = shape.hw();
        let mut s = 0.0;
        for c in 0..shape.channels {
            let plane = |m: &NormalizedMap| m.unit[c * hw..(c + 1) * hw].to_vec();
            s += ssim(
                &plane(self),
                &plane(other),
                shape.width,
                shape.height,
                &SsimOptions::skimage_legacy(),
            )?;
        }
        Ok(MapSimilarity {
            spearman_abs: spearman(&self.abs, &other.abs).unwrap_or(f64::NAN),
            spearman_signed: spearman(&self.signed, &other.signed).unwrap_or(f64::NAN),
            ssim: s / shape.channels as f64,
            hog: spearman(&self.hog, &other.hog).unwrap_or(f64::NAN),
        })
    }
}

/// The §4.5 similarities of `other` to `reference` (flat CHW maps of `shape`). Needs
/// H, W ≥ 48 for the HOG blocks (and ≥ 11 for SSIM).
pub fn map_similarity(reference: &[f32], other: &[f32], shape: MapShape) -> Result<MapSimilarity, MetricError> {
    NormalizedMap::new(reference, shape)?.compare(&NormalizedMap::new(other, shape)?, shape)
}

/// The control "method" that ignores the model: per channel, the Sobel gradient magnitude
/// √(Gx² + Gy²) of `image` (pass the denormalised pixels, flat CHW), with the border pixels
/// replicated. Its similarity to itself under any randomisation is 1 by construction; a
/// method whose numbers look like this control's has not passed the check.
pub fn sobel_edge_map(image: &[f32], shape: MapShape) -> Result<Vec<f32>, MetricError> {
    shape.check("image", image)?;
    let (h, w) = (shape.height as isize, shape.width as isize);
    let mut out = vec![0f32; shape.len()];
    for c in 0..shape.channels {
        let plane = &image[c * shape.hw()..(c + 1) * shape.hw()];
        let p = |y: isize, x: isize| plane[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize];
        for y in 0..h {
            for x in 0..w {
                let gx = (p(y - 1, x + 1) + 2.0 * p(y, x + 1) + p(y + 1, x + 1))
                    - (p(y - 1, x - 1) + 2.0 * p(y, x - 1) + p(y + 1, x - 1));
                let gy = (p(y + 1, x - 1) + 2.0 * p(y + 1, x) + p(y + 1, x + 1))
                    - (p(y - 1, x - 1) + 2.0 * p(y - 1, x) + p(y - 1, x + 1));
                out[c * shape.hw() + (y * w + x) as usize] = gx.hypot(gy);
            }
        }
    }
    Ok(out)
}

/// `count` depths from 0 (the trained model) to `blocks` (everything randomised), as evenly
/// spaced as integers allow, ascending and without repeats; both ends are always included.
pub fn evenly_spaced_depths(blocks: usize, count: usize) -> Vec<usize> {
    if blocks == 0 {
        return vec![0];
    }
    let count = count.clamp(2, blocks + 1);
    let mut depths: Vec<usize> = (0..count)
        .map(|i| ((i * blocks) as f64 / (count - 1) as f64).round() as usize)
        .collect();
    depths.dedup();
    depths
}

/// Settings of a cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct SanityOptions {
    /// Seeds the re-drawn parameters ([`randomize_top_blocks`]).
    pub seed: u64,
    /// Which depths to compute (numbers of top blocks randomised, each ≤ the number of
    /// blocks); `None` computes every depth. Depth 0, the reference, is always computed.
    pub depths: Option<Vec<usize>>,
    /// The layout of the maps the explain function returns.
    pub shape: MapShape,
}

/// One stage of a cascade: the similarities of its map to the trained model's.
#[derive(Debug, Clone, PartialEq)]
pub struct SanityStage {
    /// The block randomised last ("original" for depth 0).
    pub label: String,
    /// How many top blocks are randomised.
    pub depth: usize,
    pub spearman_abs: f64,
    pub spearman_signed: f64,
    pub ssim: f64,
    pub hog: f64,
}

impl SanityStage {
    fn new(label: String, depth: usize, s: MapSimilarity) -> Self {
        Self {
            label,
            depth,
            spearman_abs: s.spearman_abs,
            spearman_signed: s.spearman_signed,
            ssim: s.ssim,
            hog: s.hog,
        }
    }
}

/// Errors of a cascade, from whichever step failed.
#[derive(Debug, thiserror::Error)]
pub enum SanityError {
    #[error(transparent)]
    Randomize(#[from] RandomizeError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Attribution(#[from] AttributionError),
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error("invalid sanity-check settings: {0}")]
    InvalidOptions(String),
}

/// The depths to run, ascending, starting at 0.
fn stage_depths(options: &SanityOptions, blocks: usize) -> Result<Vec<usize>, SanityError> {
    let mut depths = match &options.depths {
        None => (0..=blocks).collect(),
        Some(d) => d.clone(),
    };
    if let Some(&bad) = depths.iter().find(|&&d| d > blocks) {
        return Err(SanityError::InvalidOptions(format!(
            "depth {bad} exceeds the {blocks} randomisation blocks"
        )));
    }
    depths.push(0);
    depths.sort_unstable();
    depths.dedup();
    Ok(depths)
}

/// Cascading randomisation of one method. `explain_fn` computes the map (flat CHW of
/// `options.shape`) of a model; it is called once per stage with the model of that stage.
/// `progress(done, total, stage)` is called after each stage. Returns the stages in order of
/// depth; stage 0 is the trained model compared with itself.
pub fn cascading_randomization(
    tensors: &HashMap<String, Tensor>,
    blocks: &[Block],
    device: &Device,
    options: &SanityOptions,
    mut explain_fn: impl FnMut(&Classifier) -> Result<Vec<f32>, AttributionError>,
    mut progress: impl FnMut(usize, usize, &SanityStage),
) -> Result<Vec<SanityStage>, SanityError> {
    let stages = cascading_randomization_multi(
        tensors,
        blocks,
        device,
        options,
        |model| Ok(vec![explain_fn(model)?]),
        |done, total, stages| progress(done, total, &stages[0]),
    )?;
    Ok(stages.into_iter().next().unwrap_or_default())
}

/// As [`cascading_randomization`] for several methods at once, sharing each stage's model:
/// `explain_fn` returns one map per method, always in the same order. The result is indexed
/// `[method][stage]`; `progress` gets one stage per method.
pub fn cascading_randomization_multi(
    tensors: &HashMap<String, Tensor>,
    blocks: &[Block],
    device: &Device,
    options: &SanityOptions,
    mut explain_fn: impl FnMut(&Classifier) -> Result<Vec<Vec<f32>>, AttributionError>,
    mut progress: impl FnMut(usize, usize, &[SanityStage]),
) -> Result<Vec<Vec<SanityStage>>, SanityError> {
    let depths = stage_depths(options, blocks.len())?;
    let shape = options.shape;
    let mut references: Vec<NormalizedMap> = Vec::new();
    let mut result: Vec<Vec<SanityStage>> = Vec::new();
    for (done, &depth) in depths.iter().enumerate() {
        let label = match depth {
            0 => "original".to_string(),
            d => blocks[d - 1].name.clone(),
        };
        let randomized = randomize_top_blocks(tensors, blocks, depth, options.seed)?;
        let source = format!("randomised top {depth} block(s)");
        let model = build_classifier(Path::new(&source), randomized, device)?;
        let maps = explain_fn(&model)?;
        drop(model);
        if depth == 0 {
            references = maps
                .iter()
                .map(|m| NormalizedMap::new(m, shape))
                .collect::<Result<_, _>>()?;
            result = vec![Vec::with_capacity(depths.len()); maps.len()];
        } else if maps.len() != references.len() {
            return Err(SanityError::InvalidOptions(format!(
                "the explain function returned {} maps at depth {depth} but {} for the trained model",
                maps.len(),
                references.len()
            )));
        }
        let mut row = Vec::with_capacity(maps.len());
        for (i, map) in maps.iter().enumerate() {
            let similarity = references[i].compare(&NormalizedMap::new(map, shape)?, shape)?;
            let stage = SanityStage::new(label.clone(), depth, similarity);
            result[i].push(stage.clone());
            row.push(stage);
        }
        progress(done + 1, depths.len(), &row);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(average_ranks(&[10.0, 20.0, 20.0, 30.0]), [1.0, 2.5, 2.5, 4.0]);
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 3.0]), [3.0, 1.0, 3.0, 3.0]);
        assert_eq!(average_ranks(&[-1.0, -5.0]), [2.0, 1.0]);
    }

    #[test]
    fn spearman_known_values() {
        // scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((r - 0.820_782_681_668_123_3).abs() < 1e-12, "{r}");
        // Monotone but non-linear: rank correlation 1, reversed −1.
        let a: Vec<f64> = (1..20).map(|x| x as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x.powi(3)).collect();
        let c: Vec<f64> = a.iter().map(|x| -x.exp()).collect();
        assert!((spearman(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &c).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&a, &vec![2.0; a.len()]), None);
    }

    #[test]
    fn normalisations_follow_pair() {
        // 100 values 0..99 in one channel, plus a second channel that flips signs.
        let shape = MapShape::new(2, 10, 10);
        let mut map: Vec<f32> = (0..100).map(|i| i as f32).collect();
        map.extend((0..100).map(|i| -(i as f32)));
        // s = 2i; p99 = 2·98.01 = 196.02; min 0.
        let abs = abs_normalized(&map, shape).unwrap();
        assert!((abs[50] - 100.0 / 196.02).abs() < 1e-6);
        assert_eq!(abs[99], 1.0);
        // Signed sum is 0 everywhere: span falls back to ε and every value maps to 0.5.
        assert!(diverging_normalized(&map, shape).unwrap().iter().all(|&v| v == 0.5));
        let one = MapShape::new(1, 10, 10);
        let d = diverging_normalized(&map[..100], one).unwrap();
        // span = p99 = 98.01; 99 lies above it and is clipped to 1.
        assert!((d[0] - 0.5).abs() < 1e-7 && (d[50] - (50.0 + 98.01) / (2.0 * 98.01)).abs() < 1e-6);
        assert_eq!(d[99], 1.0);
        assert_eq!(min_max_normalized(&[2.0, 4.0, 3.0]), [0.0, 1.0, 0.5]);
        assert_eq!(min_max_normalized(&[2.0, 2.0]), [0.0, 0.0]);
        assert!(matches!(
            abs_normalized(&map, one),
            Err(MetricError::LengthMismatch { .. })
        ));
    }

    /// A 48×48 image has 3×3 cells of 16 px, i.e. one 3×3 block: 81 features.
    #[test]
    fn hog_of_a_step_edge() {
        let shape = MapShape::new(1, 48, 48);
        let vertical: Vec<f32> = (0..48 * 48).map(|i| if i % 48 >= 24 { 1.0 } else { 0.0 }).collect();
        let f = hog(&vertical, shape, &HogOptions::default()).unwrap();
        assert_eq!(f.len(), 81);
        // Columns 23 and 24 have g_col = 1 on every row: orientation 0°, all in cell column 1,
        // so cells (r, 1), bin 0, each hold 16·2/256; after L2-Hys each is 1/√3.
        let expected = 1.0 / 3f64.sqrt();
        for (i, &v) in f.iter().enumerate() {
            let want = if [9, 36, 63].contains(&i) { expected } else { 0.0 };
            assert!((v - want).abs() < 1e-6, "feature {i}: {v} vs {want}");
        }
        // The transposed edge has g_row only: 90°, bin 4, cells (1, c).
        let horizontal: Vec<f32> = (0..48 * 48).map(|i| if i / 48 >= 24 { 1.0 } else { 0.0 }).collect();
        let f = hog(&horizontal, shape, &HogOptions::default()).unwrap();
        for (i, &v) in f.iter().enumerate() {
            let want = if [31, 40, 49].contains(&i) { expected } else { 0.0 };
            assert!((v - want).abs() < 1e-6, "feature {i}: {v} vs {want}");
        }
        // L1 blocks: each of the three equal cells gets 1/3 (less ε).
        let l1 = HogOptions {
            block_norm: BlockNorm::L1,
            ..HogOptions::default()
        };
        let f = hog(&vertical, shape, &l1).unwrap();
        assert!((f[9] - 1.0 / 3.0).abs() < 1e-4);
    }

    #[test]
    fn hog_shape_and_multichannel() {
        // 224 px: 14 cells, 12 blocks per side, 3·3·9 values per block.
        let shape = MapShape::new(3, 224, 224);
        let img: Vec<f32> = (0..shape.len()).map(|i| ((i * 7919) % 101) as f32 / 100.0).collect();
        assert_eq!(hog(&img, shape, &HogOptions::default()).unwrap().len(), 12 * 12 * 81);
        // Channels: the strongest channel's gradient wins per pixel, so a weak copy in another
        // channel changes nothing.
        let one = MapShape::new(1, 48, 48);
        let edge: Vec<f32> = (0..48 * 48).map(|i| if i % 48 >= 24 { 1.0 } else { 0.0 }).collect();
        let mut three = edge.iter().map(|v| v * 0.5).collect::<Vec<_>>();
        three.extend(&edge);
        three.extend(vec![0.0; 48 * 48]);
        assert_eq!(
            hog(&three, MapShape::new(3, 48, 48), &HogOptions::default()).unwrap(),
            hog(&edge, one, &HogOptions::default()).unwrap()
        );
        assert!(matches!(
            hog(&edge[..40 * 40], MapShape::new(1, 40, 40), &HogOptions::default()),
            Err(MetricError::TooSmall { min_side: 48, .. })
        ));
    }

    #[test]
    fn identical_maps_are_fully_similar_and_noise_is_not() {
        let shape = MapShape::new(3, 64, 64);
        let a = crate::attribution::testing::lcg_uniform(shape.len(), 1);
        let b = crate::attribution::testing::lcg_uniform(shape.len(), 2);
        let same = map_similarity(&a, &a, shape).unwrap();
        assert!((same.spearman_abs - 1.0).abs() < 1e-12);
        assert!((same.spearman_signed - 1.0).abs() < 1e-12);
        assert!((same.ssim - 1.0).abs() < 1e-12);
        assert!((same.hog - 1.0).abs() < 1e-12);
        let other = map_similarity(&a, &b, shape).unwrap();
        assert!(other.spearman_abs.abs() < 0.1, "{other:?}");
        assert!(other.ssim < 0.2, "{other:?}");
    }

    #[test]
    fn sobel_of_a_ramp_and_a_constant() {
        let shape = MapShape::new(1, 5, 5);
        // x-ramp of slope 1: Gx = 2·(1+2+1)/… interior = 8, Gy = 0.
        let ramp: Vec<f32> = (0..25).map(|i| (i % 5) as f32).collect();
        let e = sobel_edge_map(&ramp, shape).unwrap();
        assert_eq!(e[2 * 5 + 2], 8.0);
        // At the replicated left border the difference spans one pixel only.
        assert_eq!(e[2 * 5], 4.0);
        assert!(sobel_edge_map(&[3.0; 25], shape).unwrap().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn depth_sampling() {
        assert_eq!(evenly_spaced_depths(19, 6), [0, 4, 8, 11, 15, 19]);
        assert_eq!(evenly_spaced_depths(3, 10), [0, 1, 2, 3]);
        assert_eq!(evenly_spaced_depths(0, 5), [0]);
        let options = SanityOptions {
            seed: 0,
            depths: Some(vec![5, 2, 5]),
            shape: MapShape::new(1, 1, 1),
        };
        assert_eq!(stage_depths(&options, 5).unwrap(), [0, 2, 5]);
        assert!(stage_depths(&options, 4).is_err());
    }
}
