//! RECAL's pixel-perturbation metric "DiffID" (evaluator.py `DiffID`; algorithms.md §4.2).
//!
//! The map is reduced to Σ_c |A_c|, min-max normalised per image (`/ (max + 1e-10)`) and tiled
//! to the image's channels, so the ranking is over all C·H·W elements, the channels of a pixel
//! tying. For each ratio r, n = ⌊CHW·r⌋ elements are replaced by one scalar, the mean of the
//! image's kept elements (in the normalised input space):
//! - Deletion(r) removes the n highest-ranked elements (keeps the least important 1 − r);
//! - Insertion(r) removes the n lowest-ranked ones (keeps the most important 1 − r).
//!
//! Scores: the logit ratio z_t(x̃)/z_t(x) and the accuracy [argmax z(x̃) = t];
//! Diff(r) = Ins(r) − Del(r), higher is better.
//!
//! Differences from RECAL:
//! - Ties are ranked by a stable sort (equal values keep their flat CHW order, in both
//!   directions); torch's `argsort` is unstable, so its order of ties is unspecified.
//! - z_t(x) ≤ 0 makes the logit ratio meaningless: it is reported as `None` instead of divided.
//! - The single number [`DiffId::mean_diff_logit`] (mean of Diff over the ratios) is our choice;
//!   RECAL only reports Diff per ratio.
//!
//! Model calls: one batch of 1 + 2·ratios images (19 at the defaults): the image, then the
//! deletions, then the insertions, in ratio order.

use super::MetricError;

/// RECAL's ratios 0.1, …, 0.9 (the same f64 literals, so n = ⌊CHW·r⌋ matches Python's
/// `int(num_elements * ratio)`).
pub const DIFFID_RATIOS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// The scores at one ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffIdRatio {
    pub ratio: f64,
    /// Elements replaced, ⌊CHW·r⌋.
    pub removed: usize,
    /// The fill values (mean of the kept elements).
    pub deletion_fill: f32,
    pub insertion_fill: f32,
    /// z_t of the perturbed images.
    pub deletion_logit: f32,
    pub insertion_logit: f32,
    /// z_t(x̃)/z_t(x); `None` when z_t(x) ≤ 0.
    pub deletion_logit_ratio: Option<f64>,
    pub insertion_logit_ratio: Option<f64>,
    /// argmax z(x̃) = t.
    pub deletion_correct: bool,
    pub insertion_correct: bool,
}

impl DiffIdRatio {
    /// Ins − Del of the logit ratios.
    pub fn diff_logit(&self) -> Option<f64> {
        Some(self.insertion_logit_ratio? - self.deletion_logit_ratio?)
    }

    /// Ins − Del of the accuracies: −1, 0 or 1 for one image.
    pub fn diff_accuracy(&self) -> f64 {
        self.insertion_correct as u8 as f64 - self.deletion_correct as u8 as f64
    }
}

/// DiffID of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffId {
    /// z_t(x).
    pub original_logit: f32,
    pub original_correct: bool,
    pub ratios: Vec<DiffIdRatio>,
    /// Mean of Diff(r) of the logit ratios over the ratios (our single number); `None` when
    /// z_t(x) ≤ 0.
    pub mean_diff_logit: Option<f64>,
    /// Mean of Diff(r) of the accuracies over the ratios.
    pub mean_diff_accuracy: f64,
}

/// RECAL's `normalize_saliency_map`: Σ_c |A_c| per pixel (`map_channels` planes), min-max
/// normalised with +1e-10, tiled to `channels` planes. All in f32, as in torch.
fn normalized_map(attribution: &[f32], map_channels: usize, channels: usize, hw: usize) -> Vec<f32> {
    let mut s = vec![0f32; hw];
    for c in 0..map_channels {
        for (acc, &a) in s.iter_mut().zip(&attribution[c * hw..(c + 1) * hw]) {
            *acc += a.abs();
        }
    }
    let min = s.iter().copied().fold(f32::INFINITY, f32::min);
    s.iter_mut().for_each(|v| *v -= min);
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    s.iter_mut().for_each(|v| *v /= max + 1e-10);
    s.repeat(channels)
}

/// The image with the first `n` elements of `order` replaced by the mean of the others.
fn perturb(image: &[f32], order: &[usize], n: usize) -> (Vec<f32>, f32) {
    let kept = &order[n..];
    let fill = if kept.is_empty() {
        // Nothing kept (r = 1): torch's mean of an empty tensor is NaN; 0 (the dataset mean in
        // normalised space) keeps the model input finite.
        0.0
    } else {
        (kept.iter().map(|&i| image[i] as f64).sum::<f64>() / kept.len() as f64) as f32
    };
    let mut out = image.to_vec();
    for &i in &order[..n] {
        out[i] = fill;
    }
    (out, fill)
}

/// Index of the first maximum (torch `max`/`argmax` on CPU and numpy return the first).
fn first_argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > logits[best] { i } else { best })
}

/// DiffID of one image.
///
/// - `image`: flat CHW in the model's normalised input space, `channels` planes.
/// - `attribution`: flat, `channels` planes or 1 plane of the same H·W pixels.
/// - `target`: the class t (RECAL uses the label, which is also the class explained).
/// - `ratios`: each in [0, 1]; [`DIFFID_RATIOS`] is RECAL's list.
/// - `logits_fn`: a batch of flat CHW images → the logits of each; called once with
///   1 + 2·`ratios.len()` images.
pub fn diff_id(
    image: &[f32],
    attribution: &[f32],
    channels: usize,
    target: usize,
    ratios: &[f64],
    mut logits_fn: impl FnMut(&[Vec<f32>]) -> Vec<Vec<f32>>,
) -> Result<DiffId, MetricError> {
    if image.is_empty() {
        return Err(MetricError::Empty("image"));
    }
    if channels == 0 || !image.len().is_multiple_of(channels) {
        return Err(MetricError::InvalidParameter(format!(
            "image length {} is not a positive multiple of channels = {channels}",
            image.len()
        )));
    }
    let hw = image.len() / channels;
    let map_channels = if attribution.len() == image.len() {
        channels
    } else if attribution.len() == hw {
        1
    } else {
        return Err(MetricError::LengthMismatch {
            what: "attribution",
            expected: image.len(),
            got: attribution.len(),
        });
    };
    if image.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite("image"));
    }
    if attribution.iter().any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite("attribution"));
    }
    if ratios.is_empty() {
        return Err(MetricError::Empty("ratios"));
    }
    if let Some(r) = ratios.iter().find(|r| !(r.is_finite() && (0.0..=1.0).contains(*r))) {
        return Err(MetricError::InvalidParameter(format!("ratio {r} is not in [0, 1]")));
    }

    let map = normalized_map(attribution, map_channels, channels, hw);
    // Stable sorts: ties keep flat CHW order in both directions.
    let mut descending: Vec<usize> = (0..map.len()).collect();
    descending.sort_by(|&a, &b| map[b].total_cmp(&map[a]));
    let mut ascending: Vec<usize> = (0..map.len()).collect();
    ascending.sort_by(|&a, &b| map[a].total_cmp(&map[b]));

    let removed: Vec<usize> = ratios
        .iter()
        .map(|&r| ((image.len() as f64 * r).floor() as usize).min(image.len()))
        .collect();
    let mut batch = Vec::with_capacity(1 + 2 * ratios.len());
    let mut fills = Vec::with_capacity(2 * ratios.len());
    batch.push(image.to_vec());
    for order in [&descending, &ascending] {
        for &n in &removed {
            let (img, fill) = perturb(image, order, n);
            batch.push(img);
            fills.push(fill);
        }
    }

    let logits = logits_fn(&batch);
    if logits.len() != batch.len() {
        return Err(MetricError::LengthMismatch {
            what: "logits_fn output",
            expected: batch.len(),
            got: logits.len(),
        });
    }
    for l in &logits {
        if l.len() <= target {
            return Err(MetricError::InvalidParameter(format!(
                "target {target} is out of range for {} logits",
                l.len()
            )));
        }
        if l.iter().any(|v| !v.is_finite()) {
            return Err(MetricError::NonFinite("logits_fn output"));
        }
    }

    let z = logits[0][target];
    let ratio_of = |zt: f32| (z > 0.0).then(|| zt as f64 / z as f64);
    let k = ratios.len();
    let per_ratio: Vec<DiffIdRatio> = (0..k)
        .map(|i| {
            let (del, ins) = (&logits[1 + i], &logits[1 + k + i]);
            DiffIdRatio {
                ratio: ratios[i],
                removed: removed[i],
                deletion_fill: fills[i],
                insertion_fill: fills[k + i],
                deletion_logit: del[target],
                insertion_logit: ins[target],
                deletion_logit_ratio: ratio_of(del[target]),
                insertion_logit_ratio: ratio_of(ins[target]),
                deletion_correct: first_argmax(del) == target,
                insertion_correct: first_argmax(ins) == target,
            }
        })
        .collect();
    let mean_diff_logit = per_ratio
        .iter()
        .map(DiffIdRatio::diff_logit)
        .sum::<Option<f64>>()
        .map(|s| s / k as f64);
    let mean_diff_accuracy = per_ratio.iter().map(DiffIdRatio::diff_accuracy).sum::<f64>() / k as f64;
    Ok(DiffId {
        original_logit: z,
        original_correct: first_argmax(&logits[0]) == target,
        ratios: per_ratio,
        mean_diff_logit,
        mean_diff_accuracy,
    })
}

/// DiffID over a data set, as RECAL reports it: per ratio, the mean logit ratios and
/// accuracies over the images, and their differences.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffIdSummary {
    pub ratios: Vec<f64>,
    /// Mean over the images with z_t(x) > 0; `None` if there is none.
    pub deletion_logit: Vec<Option<f64>>,
    pub insertion_logit: Vec<Option<f64>>,
    /// Mean over all images.
    pub deletion_accuracy: Vec<f64>,
    pub insertion_accuracy: Vec<f64>,
    /// Ins − Del per ratio.
    pub diff_logit: Vec<Option<f64>>,
    pub diff_accuracy: Vec<f64>,
    /// Means of the Diff rows over the ratios (our single numbers).
    pub mean_diff_logit: Option<f64>,
    pub mean_diff_accuracy: f64,
    /// Images left out of the logit means because z_t(x) ≤ 0.
    pub excluded_from_logit: usize,
}

/// Aggregates per-image results computed with the same ratios.
pub fn summarise_diff_id(results: &[DiffId]) -> Result<DiffIdSummary, MetricError> {
    let first = results.first().ok_or(MetricError::Empty("results"))?;
    let ratios: Vec<f64> = first.ratios.iter().map(|r| r.ratio).collect();
    for r in results {
        if r.ratios.iter().map(|r| r.ratio).ne(ratios.iter().copied()) {
            return Err(MetricError::SizeMismatch("the results use different ratios".into()));
        }
    }
    let valid: Vec<&DiffId> = results.iter().filter(|r| r.original_logit > 0.0).collect();
    let n = results.len() as f64;
    let mean_logit = |pick: fn(&DiffIdRatio) -> Option<f64>, i: usize| {
        let values: Option<Vec<f64>> = valid.iter().map(|r| pick(&r.ratios[i])).collect();
        values
            .filter(|v| !v.is_empty())
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    let mean_acc =
        |pick: fn(&DiffIdRatio) -> bool, i: usize| results.iter().filter(|r| pick(&r.ratios[i])).count() as f64 / n;
    let k = ratios.len();
    let deletion_logit: Vec<Option<f64>> = (0..k).map(|i| mean_logit(|r| r.deletion_logit_ratio, i)).collect();
    let insertion_logit: Vec<Option<f64>> = (0..k).map(|i| mean_logit(|r| r.insertion_logit_ratio, i)).collect();
    let deletion_accuracy: Vec<f64> = (0..k).map(|i| mean_acc(|r| r.deletion_correct, i)).collect();
    let insertion_accuracy: Vec<f64> = (0..k).map(|i| mean_acc(|r| r.insertion_correct, i)).collect();
    let diff_logit: Vec<Option<f64>> = (0..k).map(|i| Some(insertion_logit[i]? - deletion_logit[i]?)).collect();
    let diff_accuracy: Vec<f64> = (0..k).map(|i| insertion_accuracy[i] - deletion_accuracy[i]).collect();
    let mean_diff_logit = diff_logit.iter().copied().sum::<Option<f64>>().map(|s| s / k as f64);
    let mean_diff_accuracy = diff_accuracy.iter().sum::<f64>() / k as f64;
    Ok(DiffIdSummary {
        ratios,
        deletion_logit,
        insertion_logit,
        deletion_accuracy,
        insertion_accuracy,
        diff_logit,
        diff_accuracy,
        mean_diff_logit,
        mean_diff_accuracy,
        excluded_from_logit: results.len() - valid.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::attribution::testing::lcg_uniform;

    /// An 8×8×3 scene: the "object" (top-left 3×3) is bright, the background dark; a linear
    /// model weights the object 1 and the background 0.1 for class 0; class 1 is a constant
    /// half of the class-0 logit of the scene.
    fn scene() -> (Vec<f32>, Vec<f32>, usize) {
        let (w, h, ch) = (8usize, 8usize, 3usize);
        let noise = lcg_uniform(w * h * ch, 3);
        let mut image = vec![0f32; w * h * ch];
        let mut weights = vec![0f32; w * h * ch];
        for c in 0..ch {
            for p in 0..w * h {
                let object = p % w < 3 && p / w < 3;
                let i = c * w * h + p;
                image[i] = if object { 1.0 } else { 0.1 * noise[i] };
                weights[i] = if object { 1.0 } else { 0.1 };
            }
        }
        (image, weights, ch)
    }

    fn linear_model(weights: Vec<f32>, other: f32) -> impl FnMut(&[Vec<f32>]) -> Vec<Vec<f32>> {
        move |batch| {
            batch
                .iter()
                .map(|x| vec![x.iter().zip(&weights).map(|(a, b)| a * b).sum(), other])
                .collect()
        }
    }

    #[test]
    fn oracle_map_beats_the_inverted_map() {
        let (image, weights, ch) = scene();
        let z: f32 = image.iter().zip(&weights).map(|(a, b)| a * b).sum();
        // IG of a linear model from a zero baseline: w ⊙ x.
        let oracle: Vec<f32> = image.iter().zip(&weights).map(|(x, w)| x * w).collect();
        let max = oracle.iter().copied().fold(0.0, f32::max);
        let inverted: Vec<f32> = oracle.iter().map(|a| max - a).collect();
        let mut calls = Vec::new();
        let mut model = linear_model(weights.clone(), 0.5 * z);
        let mut counted = |batch: &[Vec<f32>]| {
            calls.push(batch.len());
            model(batch)
        };
        let good = diff_id(&image, &oracle, ch, 0, &DIFFID_RATIOS, &mut counted).unwrap();
        let bad = diff_id(&image, &inverted, ch, 0, &DIFFID_RATIOS, &mut counted).unwrap();
        assert_eq!(calls, vec![19, 19], "one batch of 19 images per call");
        let (g, b) = (good.mean_diff_logit.unwrap(), bad.mean_diff_logit.unwrap());
        assert!(g > 0.0 && b < 0.0, "oracle {g}, inverted {b}");
        assert!(good.mean_diff_accuracy >= bad.mean_diff_accuracy);
        assert!(good.original_correct);
        assert_eq!(good.ratios.len(), 9);
        assert_eq!(good.ratios[2].removed, (192.0f64 * 0.3) as usize);
        let summary = summarise_diff_id(&[good.clone(), good.clone()]).unwrap();
        assert!((summary.mean_diff_logit.unwrap() - g).abs() < 1e-12);
        assert_eq!(summary.excluded_from_logit, 0);
    }

    #[test]
    fn fill_is_the_mean_of_the_kept_elements() {
        // 1 channel 2×2, map ranks the pixels 0 > 1 > 2 > 3; r = 0.5 removes 2 elements.
        let image = [1.0f32, 2.0, 3.0, 4.0];
        let map = [4.0f32, 3.0, 2.0, 1.0];
        let mut seen = Vec::new();
        let result = diff_id(&image, &map, 1, 0, &[0.5], |batch| {
            seen = batch.to_vec();
            vec![vec![1.0, 0.0]; batch.len()]
        })
        .unwrap();
        assert_eq!(seen[0], image.to_vec());
        assert_eq!(
            seen[1],
            vec![3.5, 3.5, 3.0, 4.0],
            "deletion: top 2 replaced by mean(3, 4)"
        );
        assert_eq!(
            seen[2],
            vec![1.0, 2.0, 1.5, 1.5],
            "insertion: bottom 2 replaced by mean(1, 2)"
        );
        assert_eq!(result.ratios[0].deletion_fill, 3.5);
        assert_eq!(result.ratios[0].insertion_fill, 1.5);

        // 3 channels, 1×2 pixels, a 1-plane map: channels tie and are tiled; the mean runs
        // over the kept elements of all channels. n = ⌊6·0.5⌋ = 3: the stable order removes
        // pixel 0 of every channel.
        let image = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0];
        let map = [-5.0f32, 1.0];
        let mut seen = Vec::new();
        diff_id(&image, &map, 3, 0, &[0.5], |batch| {
            seen = batch.to_vec();
            vec![vec![1.0]; batch.len()]
        })
        .unwrap();
        assert_eq!(seen[1], vec![20.0, 10.0, 20.0, 20.0, 20.0, 30.0]);
        assert_eq!(seen[2], vec![1.0, 2.0, 2.0, 2.0, 3.0, 2.0]);
    }

    #[test]
    fn ties_keep_flat_order() {
        // All equal: both directions remove the first n elements.
        let image = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let mut seen = Vec::new();
        diff_id(&image, &[0.0; 5], 1, 0, &[0.4], |batch| {
            seen = batch.to_vec();
            vec![vec![1.0]; batch.len()]
        })
        .unwrap();
        assert_eq!(seen[1], vec![4.0, 4.0, 3.0, 4.0, 5.0]);
        assert_eq!(seen[2], seen[1]);
    }

    #[test]
    fn non_positive_original_logit_gives_no_ratio() {
        let (image, weights, ch) = scene();
        let negated: Vec<f32> = weights.iter().map(|w| -w).collect();
        let result = diff_id(&image, &weights, ch, 0, &DIFFID_RATIOS, linear_model(negated, -100.0)).unwrap();
        assert!(result.original_logit < 0.0);
        assert!(result
            .ratios
            .iter()
            .all(|r| r.deletion_logit_ratio.is_none() && r.diff_logit().is_none()));
        assert_eq!(result.mean_diff_logit, None);
        // Accuracy is still defined.
        assert!(result.original_correct);
        assert!(result.mean_diff_accuracy.is_finite());
        let summary = summarise_diff_id(&[result]).unwrap();
        assert_eq!(summary.excluded_from_logit, 1);
        assert_eq!(summary.mean_diff_logit, None);
        assert_eq!(summary.deletion_accuracy.len(), 9);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let image = [0.5f32; 12];
        let ok = |b: &[Vec<f32>]| vec![vec![1.0f32, 0.0]; b.len()];
        assert!(matches!(
            diff_id(&image, &[0.0; 5], 3, 0, &DIFFID_RATIOS, ok),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(diff_id(&image, &[0.0; 4], 5, 0, &DIFFID_RATIOS, ok).is_err());
        assert!(diff_id(&image, &[0.0; 4], 3, 0, &[1.5], ok).is_err());
        assert!(diff_id(&image, &[0.0; 4], 3, 0, &[], ok).is_err());
        assert!(diff_id(&image, &[f32::NAN; 4], 3, 0, &DIFFID_RATIOS, ok).is_err());
        assert!(matches!(
            diff_id(&image, &[0.0; 4], 3, 7, &DIFFID_RATIOS, ok),
            Err(MetricError::InvalidParameter(_))
        ));
        let short = |_: &[Vec<f32>]| vec![vec![1.0f32]];
        assert!(matches!(
            diff_id(&image, &[0.0; 4], 3, 0, &DIFFID_RATIOS, short),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert_eq!(summarise_diff_id(&[]), Err(MetricError::Empty("results")));
    }
}
