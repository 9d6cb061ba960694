//! ROAD: RemOve And Debias (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
//! Strategy for Attribution Methods"), after the reference code (`road/road.py`,
//! `road/imputed_dataset.py` of github.com/tleemann/road_evaluation).
//!
//! For each fraction f of the pixels, the ⌊HW·f⌋ most relevant pixels (MoRF) or least
//! relevant ones (LeRF) are removed by imputation ([`super::imputation`]: ROAD's noisy
//! linear imputation, or the image's per-channel mean, the reference's "fixed" imputer) and
//! the model's softmax probability of the target class is recorded. No retraining: the
//! imputation leaks less of the removed pixels' shape than a constant fill, which is the
//! paper's point. A good map makes the MoRF curve fall fast (low MoRF AUC) and keeps the
//! LeRF curve high (high LeRF AUC).
//!
//! Conventions (and where they differ from the reference):
//! - Fractions: 0.1, 0.2, …, 0.9 by default ([`ROAD_FRACTIONS`], the paper's figures; the
//!   reference's notebook times 0.1–0.5, 0.7, 0.9). Both orders are plotted against the
//!   fraction *removed*: the reference's LeRF at `th_p` keeps the top `th_p` and removes
//!   the rest, i.e. our LeRF at 1 − `th_p`.
//! - AUC: the trapezoid rule over the fractions, divided by their span, so it reads as the
//!   curve's mean probability (a constant p gives p).
//! - Ranking: pixels by decreasing value of the 2-D map the caller gives (eval: Σ_c |A|, as
//!   its other ranking metrics; the reference sums the signed channels), ties in pixel
//!   order (a stable sort; the reference breaks ties with 1e-4 random noise).
//! - The noise: ROAD's σ = 0.01 is in the reference's [0, 1] pixel scale; our images are
//!   normalised, so each channel's noise is scaled by `channel_scale` (1 / the
//!   normalisation's std). Linear imputation commutes with the per-channel affine
//!   normalisation, so only the noise needs the scale.
//! - Seeds: each (order, fraction) image has its own seed derived from [`RoadParams::seed`].

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;
use rayon::prelude::*;

use super::imputation::{channel_means, impute, Imputation};
use super::insertion_deletion::pixel_order;
use super::scoring::probability_scorer;
use super::MetricError;
use crate::model::Classifier;

/// The paper's fractions of pixels removed.
pub const ROAD_FRACTIONS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Which pixels go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoadOrder {
    /// Most relevant first: a good map makes the probability fall fast.
    Morf,
    /// Least relevant first: a good map keeps the probability up.
    Lerf,
}

text_form!(RoadOrder, "removal order");

impl RoadOrder {
    pub const ALL: [RoadOrder; 2] = [RoadOrder::Morf, RoadOrder::Lerf];

    pub fn name(self) -> &'static str {
        match self {
            RoadOrder::Morf => "morf",
            RoadOrder::Lerf => "lerf",
        }
    }

    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            RoadOrder::Morf => "MoRF",
            RoadOrder::Lerf => "LeRF",
        }
    }
}

/// How the ROAD curves are sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadParams {
    /// Fractions of pixels removed, increasing, in [0, 1].
    pub fractions: Vec<f64>,
    pub imputation: Imputation,
    /// Images per forward pass.
    pub batch: usize,
    /// Seeds the imputation noise.
    pub seed: u64,
}

impl Default for RoadParams {
    fn default() -> Self {
        Self {
            fractions: ROAD_FRACTIONS.to_vec(),
            imputation: Imputation::default(),
            batch: 16,
            seed: 0,
        }
    }
}

impl RoadParams {
    fn check(&self) -> Result<(), MetricError> {
        if self.fractions.is_empty() {
            return Err(MetricError::Empty("ROAD fractions"));
        }
        let in_range = self.fractions.iter().all(|f| (0.0..=1.0).contains(f));
        let increasing = self.fractions.windows(2).all(|w| w[0] < w[1]);
        if !in_range || !increasing {
            return Err(MetricError::InvalidParameter(
                "ROAD fractions must increase and lie in [0, 1]".into(),
            ));
        }
        if self.batch == 0 {
            return Err(MetricError::InvalidParameter("batch must be at least 1".into()));
        }
        Ok(())
    }

    /// Images the two curves score.
    pub fn images(&self) -> usize {
        2 * self.fractions.len()
    }
}

/// One ROAD curve: probability of the target against the fraction of pixels removed.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadCurve {
    pub order: RoadOrder,
    pub fractions: Vec<f64>,
    pub scores: Vec<f64>,
    /// Trapezoid area over the fractions divided by their span (see the module doc).
    pub auc: f64,
}

/// Both curves of one map.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    pub morf: RoadCurve,
    pub lerf: RoadCurve,
    pub params: RoadParams,
}

impl Road {
    pub fn curve(&self, order: RoadOrder) -> &RoadCurve {
        match order {
            RoadOrder::Morf => &self.morf,
            RoadOrder::Lerf => &self.lerf,
        }
    }
}

/// Trapezoid area of `scores` over `fractions`, divided by the span; one point: its score.
pub fn road_auc(fractions: &[f64], scores: &[f64]) -> f64 {
    let span = match (fractions.first(), fractions.last()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => return scores.first().copied().unwrap_or(0.0),
    };
    let area: f64 = fractions
        .windows(2)
        .zip(scores.windows(2))
        .map(|(f, s)| (f[1] - f[0]) * (s[0] + s[1]) / 2.0)
        .sum();
    area / span
}

/// The pixels removed at `fraction` in `order`, given the pixels by decreasing relevance
/// (`ranked`): the first (MoRF) or last (LeRF) ⌊HW·f⌋ of them.
pub fn removal_mask(ranked: &[usize], order: RoadOrder, fraction: f64) -> Vec<bool> {
    let hw = ranked.len();
    let n = ((hw as f64 * fraction).floor() as usize).min(hw);
    let mut removed = vec![false; hw];
    let chosen = match order {
        RoadOrder::Morf => &ranked[..n],
        RoadOrder::Lerf => &ranked[hw - n..],
    };
    for &p in chosen {
        removed[p] = true;
    }
    removed
}

/// Seed of one (order, fraction) image, so every image's noise is its own and fixed.
fn image_seed(seed: u64, order: RoadOrder, index: usize) -> u64 {
    let o = match order {
        RoadOrder::Morf => 1u64,
        RoadOrder::Lerf => 2u64,
    };
    seed ^ (o << 56) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The images ROAD scores, MoRF's then LeRF's, each in fraction order. `image` is C×H×W;
/// `saliency` H×W; `channel_scale[c]` converts ROAD's [0, 1]-scale noise to channel c's
/// units (1 / std for a normalised input; 1 for raw pixels).
pub fn road_images(
    image: &[f32],
    (c, h, w): (usize, usize, usize),
    saliency: &[f32],
    params: &RoadParams,
    channel_scale: &[f32],
) -> Result<Vec<Vec<f32>>, MetricError> {
    params.check()?;
    let hw = h * w;
    if image.len() != c * hw {
        return Err(MetricError::LengthMismatch {
            what: "image",
            expected: c * hw,
            got: image.len(),
        });
    }
    if saliency.len() != hw {
        return Err(MetricError::LengthMismatch {
            what: "saliency map",
            expected: hw,
            got: saliency.len(),
        });
    }
    if channel_scale.len() != c {
        return Err(MetricError::LengthMismatch {
            what: "channel scale",
            expected: c,
            got: channel_scale.len(),
        });
    }
    let ranked = pixel_order(saliency);
    let fill = channel_means(image, c);
    let jobs: Vec<(RoadOrder, usize, f64)> = RoadOrder::ALL
        .into_iter()
        .flat_map(|o| params.fractions.iter().enumerate().map(move |(i, &f)| (o, i, f)))
        .collect();
    // The linear solves dominate and are independent: one image per thread.
    jobs.par_iter()
        .map(|&(order, index, fraction)| {
            let removed = removal_mask(&ranked, order, fraction);
            let seed = image_seed(params.seed, order, index);
            let mut out = Vec::with_capacity(image.len());
            // Channel by channel, so each channel's noise has its own scale.
            for ch in 0..c {
                let imputation = match params.imputation {
                    Imputation::NoisyLinear { noise_std } => Imputation::NoisyLinear {
                        noise_std: noise_std * channel_scale[ch],
                    },
                    Imputation::Mean => Imputation::Mean,
                };
                let plane = &image[ch * hw..(ch + 1) * hw];
                let seed = seed.wrapping_add(ch as u64);
                out.extend(impute(plane, 1, h, w, &removed, imputation, &fill[ch..=ch], seed)?);
            }
            Ok(out)
        })
        .collect()
}

/// Both ROAD curves of `saliency` for `image`, scored by `score` (batches of at most
/// `params.batch` images; it returns the target's probability of each).
pub fn road(
    image: &[f32],
    dims: (usize, usize, usize),
    saliency: &[f32],
    params: &RoadParams,
    channel_scale: &[f32],
    mut score: impl FnMut(&[Vec<f32>]) -> Result<Vec<f64>, MetricError>,
) -> Result<Road, MetricError> {
    let images = road_images(image, dims, saliency, params, channel_scale)?;
    let mut scores = Vec::with_capacity(images.len());
    for chunk in images.chunks(params.batch) {
        let s = score(chunk)?;
        if s.len() != chunk.len() {
            return Err(MetricError::LengthMismatch {
                what: "scores",
                expected: chunk.len(),
                got: s.len(),
            });
        }
        scores.extend(s);
    }
    let k = params.fractions.len();
    let curve = |order: RoadOrder, scores: &[f64]| RoadCurve {
        order,
        fractions: params.fractions.clone(),
        scores: scores.to_vec(),
        auc: road_auc(&params.fractions, scores),
    };
    Ok(Road {
        morf: curve(RoadOrder::Morf, &scores[..k]),
        lerf: curve(RoadOrder::Lerf, &scores[k..]),
        params: params.clone(),
    })
}

/// Both ROAD curves of `saliency` ([H, W]) for the normalised `input` ([C, H, W]) on the
/// classifier, probability of `target`. `on_progress(done, total)` counts scored images;
/// raising `cancel` stops the work within one batch with [`MetricError::Cancelled`].
pub fn road_curves(
    model: &Classifier,
    input: &Tensor,
    saliency: &[f32],
    target: usize,
    params: &RoadParams,
    on_progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
) -> Result<Road, MetricError> {
    let (c, h, w) = input
        .dims3()
        .map_err(|e| MetricError::SizeMismatch(format!("input: {e}")))?;
    if target >= model.num_classes() {
        return Err(MetricError::InvalidParameter(format!(
            "target class {target}: the model has {} classes",
            model.num_classes()
        )));
    }
    let image = input
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| MetricError::Model(e.to_string()))?;
    let std = model.normalization().std;
    let scale: Vec<f32> = (0..c).map(|ch| 1.0 / std[ch.min(2)]).collect();
    let cancelled = || cancel.is_some_and(|f| f.load(Ordering::Relaxed));
    if cancelled() {
        return Err(MetricError::Cancelled);
    }
    let total = params.images();
    let mut done = 0;
    let mut model_score = probability_scorer(model, target, (c, h, w));
    road(&image, (c, h, w), saliency, params, &scale, |images| {
        if cancelled() {
            return Err(MetricError::Cancelled);
        }
        let s = model_score(images)?;
        done += images.len();
        on_progress(done, total);
        Ok(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16×16 grey image: a dark background with 16 isolated bright "key" pixels, and a
    /// "model" whose probability is the mean value of the key pixels (clamped to [0, 1]).
    fn keyed() -> (Vec<f32>, Vec<bool>) {
        let (h, w) = (16, 16);
        let key: Vec<bool> = (0..h * w).map(|p| (p / w) % 4 == 1 && (p % w) % 4 == 1).collect();
        let image = key.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        (image, key)
    }

    fn key_model(key: &[bool]) -> impl FnMut(&[Vec<f32>]) -> Result<Vec<f64>, MetricError> + '_ {
        move |images| {
            let n = key.iter().filter(|&&k| k).count() as f64;
            Ok(images
                .iter()
                .map(|x| {
                    let s: f64 = x.iter().zip(key).filter(|(_, &k)| k).map(|(&v, _)| v as f64).sum();
                    (s / n).clamp(0.0, 1.0)
                })
                .collect())
        }
    }

    /// The oracle map ranks the 16 key pixels (6.25 % of the image) first. MoRF removes them
    /// all by 10 %: linear imputation from their dark neighbours gives ~0 (plus noise), the
    /// mean fill the image mean 1/16, so
    /// the oracle's MoRF curve is ~0 while the inverted map keeps every key pixel up to 90 %
    /// (curve 1). LeRF is the mirror image. A map-independent check of both orders and both
    /// imputations.
    #[test]
    fn oracle_beats_inverted_in_both_orders() {
        let (image, key) = keyed();
        // Distinct values, key pixels highest, so the ranking has no ties.
        let oracle: Vec<f32> = (0..256)
            .map(|p| if key[p] { 1000.0 + p as f32 } else { p as f32 })
            .collect();
        let inverted: Vec<f32> = oracle.iter().map(|v| -v).collect();
        for imputation in Imputation::ALL {
            let params = RoadParams {
                imputation,
                batch: 4,
                ..RoadParams::default()
            };
            let run = |map: &[f32]| road(&image, (1, 16, 16), map, &params, &[1.0], key_model(&key)).unwrap();
            let (good, bad) = (run(&oracle), run(&inverted));
            assert!(good.morf.auc < 0.1, "{imputation}: oracle MoRF {:?}", good.morf.scores);
            assert_eq!(bad.morf.scores, vec![1.0; 9], "{imputation}: inverted keeps the keys");
            assert_eq!(
                good.lerf.scores,
                vec![1.0; 9],
                "{imputation}: oracle LeRF keeps the keys"
            );
            assert!(bad.lerf.auc < 0.1, "{imputation}: inverted LeRF {:?}", bad.lerf.scores);
            assert!(good.morf.auc < bad.morf.auc && good.lerf.auc > bad.lerf.auc);
        }
    }

    #[test]
    fn fraction_zero_is_the_unperturbed_image_and_one_is_all_fill() {
        let (image, key) = keyed();
        let map: Vec<f32> = (0..256).map(|p| p as f32).collect();
        let params = RoadParams {
            fractions: vec![0.0, 0.5, 1.0],
            ..RoadParams::default()
        };
        let images = road_images(&image, (1, 16, 16), &map, &params, &[1.0]).unwrap();
        assert_eq!(images.len(), 6);
        assert_eq!(images[0], image, "MoRF at 0");
        assert_eq!(images[3], image, "LeRF at 0");
        let mean = 16.0 / 256.0;
        assert!(
            images[2].iter().chain(&images[5]).all(|&v| v == mean),
            "all removed: the mean fill"
        );
        // MoRF at 50 % removes the 128 highest of the map (pixels 128..256), LeRF the others.
        assert!(images[1][..128] == image[..128] && images[4][128..] == image[128..]);
        let r = road(&image, (1, 16, 16), &map, &params, &[1.0], key_model(&key)).unwrap();
        assert_eq!(r.morf.scores[0], 1.0, "first point: the model on the image");
        assert_eq!(r.lerf.scores[0], 1.0);
    }

    #[test]
    fn same_seed_same_curve() {
        let (image, key) = keyed();
        let map: Vec<f32> = (0..256).map(|p| ((p * 37) % 256) as f32).collect();
        let params = RoadParams::default();
        let a = road(&image, (1, 16, 16), &map, &params, &[1.0], key_model(&key)).unwrap();
        let b = road(&image, (1, 16, 16), &map, &params, &[1.0], key_model(&key)).unwrap();
        assert_eq!(a, b);
        let other = RoadParams { seed: 1, ..params };
        let images = |p: &RoadParams| road_images(&image, (1, 16, 16), &map, p, &[1.0]).unwrap();
        assert_ne!(images(&RoadParams::default()), images(&other));
    }

    /// The noise is ROAD's σ times the channel's scale.
    #[test]
    fn noise_follows_the_channel_scale() {
        let (h, w) = (32, 32);
        let image = vec![0f32; 2 * h * w];
        let map: Vec<f32> = (0..h * w).map(|p| ((p * 7919) % (h * w)) as f32).collect();
        let params = RoadParams {
            fractions: vec![0.5],
            ..RoadParams::default()
        };
        let images = road_images(&image, (2, h, w), &map, &params, &[1.0, 10.0]).unwrap();
        let removed = removal_mask(&pixel_order(&map), RoadOrder::Morf, 0.5);
        let std = |ch: usize| {
            let v: Vec<f64> = (0..h * w)
                .filter(|&p| removed[p])
                .map(|p| images[0][ch * h * w + p] as f64)
                .collect();
            (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
        };
        // A zero image imputes to zero; what is left is the noise.
        assert!((std(0) - 0.01).abs() < 0.002, "{}", std(0));
        assert!((std(1) - 0.1).abs() < 0.02, "{}", std(1));
    }

    #[test]
    fn auc_is_the_mean_probability() {
        let f = ROAD_FRACTIONS;
        assert!((road_auc(&f, &[0.4; 9]) - 0.4).abs() < 1e-12);
        let linear: Vec<f64> = f.iter().map(|x| 1.0 - x).collect();
        assert!((road_auc(&f, &linear) - 0.5).abs() < 1e-12);
        assert!((road_auc(&[0.0, 0.5, 1.0], &[1.0, 1.0, 0.0]) - 0.75).abs() < 1e-12);
        assert_eq!(road_auc(&[0.3], &[0.7]), 0.7);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let image = vec![0f32; 16];
        let map = vec![0f32; 16];
        let bad = |fractions: Vec<f64>| RoadParams {
            fractions,
            ..RoadParams::default()
        };
        for p in [bad(vec![]), bad(vec![0.5, 0.2]), bad(vec![1.5]), bad(vec![f64::NAN])] {
            assert!(
                road_images(&image, (1, 4, 4), &map, &p, &[1.0]).is_err(),
                "{:?}",
                p.fractions
            );
        }
        let p = RoadParams::default();
        assert!(road_images(&image, (1, 4, 4), &map[..15], &p, &[1.0]).is_err());
        assert!(road_images(&image, (1, 4, 4), &map, &p, &[]).is_err());
    }

    #[test]
    fn order_text_forms() {
        for o in RoadOrder::ALL {
            assert_eq!(o.to_string().parse::<RoadOrder>(), Ok(o));
        }
    }
}
