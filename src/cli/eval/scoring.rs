//! The metrics of `eval`, wired to a classifier: each metric in `pathscope::metrics` takes
//! the model as a batch-scoring closure; here the closures run the model in batches.

use std::cell::RefCell;

use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::ops::softmax;

use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::metrics::imputation::Imputation;
use pathscope::metrics::insertion_deletion::{deletion, insertion, rise_blur, CurveScore};
use pathscope::metrics::pic::{
    compute_sic_aic, random_mask, InformationLevel, PicOptions, PicOutcome, SicAic, RANDOM_MASK_FRACTION,
};
use pathscope::metrics::pixel_perturbation::{diff_id, DIFFID_RATIOS};
use pathscope::metrics::road::{road, Road, RoadOrder, RoadParams};
use pathscope::metrics::scoring::probability_scorer;
use pathscope::metrics::sensitivity::sensitivity_n;
use pathscope::model::Classifier;

use super::{EvalMetric, Settings};

pub struct Scorer<'a> {
    model: &'a Classifier,
    /// The normalised input, flat CHW.
    image: Vec<f32>,
    dims: (usize, usize, usize),
    /// The 8-bit crop, HWC (PIC).
    crop: &'a image::RgbImage,
    target: usize,
    batch: usize,
    /// PIC's 1 % random pixels: one mask per image, shared by every method (as in PAIR).
    random_mask: Vec<bool>,
    /// The image's seed (PIC's mask, ROAD's imputation noise).
    seed: u64,
}

/// Work two metrics of one map share: SIC and AIC come from the same bokeh images and
/// forward passes.
#[derive(Default)]
pub struct SharedWork {
    entropy: Option<SicAic>,
    ms_ssim: Option<SicAic>,
    /// ROAD's MoRF and LeRF curves come from one set of imputed images per imputation.
    road_linear: Option<Road>,
    road_mean: Option<Road>,
}

impl<'a> Scorer<'a> {
    pub fn new(model: &'a Classifier, prepared: &'a super::Prepared, batch: usize, mask_seed: u64) -> Result<Self> {
        let (c, h, w) = prepared.input.dims3()?;
        Ok(Self {
            model,
            image: prepared.input.flatten_all()?.to_vec1::<f32>()?,
            dims: (c, h, w),
            crop: &prepared.crop,
            target: prepared.target,
            batch: batch.max(1),
            random_mask: random_mask(h, w, RANDOM_MASK_FRACTION, mask_seed)?,
            seed: mask_seed,
        })
    }

    /// Softmax probabilities of 8-bit HWC images (PIC's `pred_func`).
    fn probabilities_u8(&self, images: &[Vec<u8>]) -> Result<Vec<Vec<f64>>> {
        let (_, h, w) = self.dims;
        let norm = self.model.normalization();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch) {
            let tensors = chunk
                .iter()
                .map(|bytes| {
                    let img = image::RgbImage::from_raw(w as u32, h as u32, bytes.clone())
                        .ok_or_else(|| anyhow::anyhow!("PIC image of the wrong size"))?;
                    Ok(norm.image_to_tensor(&img, self.model.device())?)
                })
                .collect::<Result<Vec<Tensor>>>()?;
            let x = Tensor::cat(&tensors, 0)?;
            let p = softmax(&self.model.forward(&x)?, 1)?.to_vec2::<f32>()?;
            out.extend(p.into_iter().map(|row| row.into_iter().map(f64::from).collect()));
        }
        Ok(out)
    }

    fn sic_aic(&self, map: &[f32], information: InformationLevel, settings: &Settings) -> Result<SicAic> {
        let (c, h, w) = self.dims;
        // PAIR's notebook ranks pixels by |Σ_c A|.
        let saliency: Vec<f32> = reduce_channels(map, c, h * w, ChannelReduction::Sum)
            .into_iter()
            .map(f32::abs)
            .collect();
        let options = PicOptions {
            min_pred_value: settings.pic_min_pred,
            information,
            ..PicOptions::default()
        };
        let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
        let result = compute_sic_aic(
            self.crop.as_raw(),
            w,
            h,
            &saliency,
            &self.random_mask,
            self.target,
            |batch| match self.probabilities_u8(batch) {
                Ok(p) => p,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    vec![vec![f64::NAN; self.model.num_classes()]; batch.len()]
                }
            },
            &options,
        );
        if let Some(e) = failure.into_inner() {
            return Err(e.context("running the model"));
        }
        Ok(result?)
    }

    /// Both ROAD curves of `map` with `imputation`, ranked by Σ_c |A| as the other ranking
    /// metrics of eval.
    fn road(&self, map: &[f32], imputation: Imputation) -> Result<Road> {
        let (c, h, w) = self.dims;
        let magnitude = reduce_channels(map, c, h * w, ChannelReduction::AbsSum);
        let std = self.model.normalization().std;
        let scale: Vec<f32> = (0..c).map(|ch| 1.0 / std[ch.min(2)]).collect();
        let params = RoadParams {
            imputation,
            batch: self.batch,
            seed: self.seed,
            ..RoadParams::default()
        };
        let mut model_score = probability_scorer(self.model, self.target, self.dims);
        let mut failure = None;
        let result = road(&self.image, self.dims, &magnitude, &params, &scale, |images| {
            model_score(images).inspect_err(|e| failure = Some(e.to_string()))
        });
        match (result, failure) {
            (Ok(r), _) => Ok(r),
            (Err(_), Some(e)) => bail!("running the model: {e}"),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// Logits of flat CHW images, in batches of `self.batch`.
    pub fn logits(&self, images: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let (c, h, w) = self.dims;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch) {
            let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
            let x = Tensor::from_vec(flat, (chunk.len(), c, h, w), self.model.device())?;
            out.extend(self.model.forward(&x)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// softmax probability of the target class for each image, in batches.
    fn probabilities(&self, images: &[Vec<f32>]) -> Result<Vec<f64>> {
        let mut score = probability_scorer(self.model, self.target, self.dims);
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch) {
            out.extend(score(chunk)?);
        }
        Ok(out)
    }

    /// The metric's value for `map` ([C, H, W] flat), or a note why there is none.
    pub fn score(
        &self,
        metric: EvalMetric,
        map: &[f32],
        settings: &Settings,
        shared: &mut SharedWork,
    ) -> Result<(Option<f64>, String)> {
        let (c, h, w) = self.dims;
        if map.len() != c * h * w {
            bail!("the map has {} values, the input {}", map.len(), c * h * w);
        }
        // The closures of the metrics cannot return errors; the first one is kept here and
        // reported after the metric returns.
        let failure: RefCell<Option<anyhow::Error>> = RefCell::new(None);
        let prob = |batch: &[Vec<f32>]| -> Vec<f64> {
            match self.probabilities(batch) {
                Ok(p) => p,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    vec![f64::NAN; batch.len()]
                }
            }
        };
        // Ranking metrics use the magnitude per pixel, Σ_c |A| (PAIR's grayscale view).
        let magnitude = reduce_channels(map, c, h * w, ChannelReduction::AbsSum);
        let result = match metric {
            EvalMetric::Insertion => {
                let start = rise_blur(&self.image, c, h, w);
                let curve = insertion(
                    &self.image,
                    &start,
                    &magnitude,
                    c,
                    settings.pixels_per_step,
                    self.batch,
                    CurveScore::Probability,
                    prob,
                );
                (Some(curve.auc), String::new())
            }
            EvalMetric::Deletion => {
                let fill = vec![0f32; self.image.len()];
                let curve = deletion(
                    &self.image,
                    &fill,
                    &magnitude,
                    c,
                    settings.pixels_per_step,
                    self.batch,
                    CurveScore::Probability,
                    prob,
                );
                (Some(curve.auc), String::new())
            }
            EvalMetric::SensitivityN => {
                let signed = reduce_channels(map, c, h * w, ChannelReduction::Sum);
                let reference = vec![0f32; self.image.len()];
                let fractions: Vec<f64> = (1..=9).map(|i| i as f64 / 10.0).collect();
                let logit = |x: &[f32]| -> f64 {
                    match self.logits(&[x.to_vec()]) {
                        Ok(l) => l[0][self.target] as f64,
                        Err(e) => {
                            failure.borrow_mut().get_or_insert(e);
                            f64::NAN
                        }
                    }
                };
                let per_fraction = sensitivity_n(
                    &self.image,
                    &reference,
                    &signed,
                    c,
                    &fractions,
                    10,
                    settings.seed,
                    logit,
                )?;
                let defined: Vec<f64> = per_fraction.iter().filter_map(|(_, r)| *r).collect();
                if defined.is_empty() {
                    (None, "no fraction gave a defined correlation".into())
                } else {
                    let note = if defined.len() < per_fraction.len() {
                        format!(
                            "mean over {} of {} fractions (constant sides dropped)",
                            defined.len(),
                            per_fraction.len()
                        )
                    } else {
                        String::new()
                    };
                    (Some(defined.iter().sum::<f64>() / defined.len() as f64), note)
                }
            }
            EvalMetric::Sic | EvalMetric::Aic | EvalMetric::SicMsssim | EvalMetric::AicMsssim => {
                let ms_ssim = matches!(metric, EvalMetric::SicMsssim | EvalMetric::AicMsssim);
                let slot = if ms_ssim {
                    &mut shared.ms_ssim
                } else {
                    &mut shared.entropy
                };
                if slot.is_none() {
                    let information = if ms_ssim {
                        InformationLevel::MsSsim
                    } else {
                        InformationLevel::NormalizedEntropy
                    };
                    *slot = Some(self.sic_aic(map, information, settings)?);
                }
                let both = slot.as_ref().expect("filled above");
                let outcome = if matches!(metric, EvalMetric::Sic | EvalMetric::SicMsssim) {
                    &both.sic
                } else {
                    &both.aic
                };
                match outcome {
                    PicOutcome::Curve(curve) => (Some(curve.auc), knots_note(&curve.knots)),
                    PicOutcome::Skipped(reason) => (None, format!("skipped: {reason}")),
                }
            }
            EvalMetric::Diffid => {
                let logits = |batch: &[Vec<f32>]| -> Vec<Vec<f32>> {
                    match self.logits(batch) {
                        Ok(l) => l,
                        Err(e) => {
                            failure.borrow_mut().get_or_insert(e);
                            vec![vec![f32::NAN; self.model.num_classes()]; batch.len()]
                        }
                    }
                };
                let d = diff_id(&self.image, map, c, self.target, &DIFFID_RATIOS, logits)?;
                let note = format!("mean Diff of accuracy {:.4}", d.mean_diff_accuracy);
                match d.mean_diff_logit {
                    Some(v) => (Some(v), note),
                    None => (
                        None,
                        format!(
                            "skipped: the target logit on the image is {} (≤ 0), a logit ratio is meaningless",
                            d.original_logit
                        ),
                    ),
                }
            }
            EvalMetric::RoadMorf | EvalMetric::RoadLerf | EvalMetric::RoadMorfMean | EvalMetric::RoadLerfMean => {
                let mean = matches!(metric, EvalMetric::RoadMorfMean | EvalMetric::RoadLerfMean);
                let (slot, imputation) = if mean {
                    (&mut shared.road_mean, Imputation::Mean)
                } else {
                    (&mut shared.road_linear, Imputation::default())
                };
                if slot.is_none() {
                    *slot = Some(self.road(map, imputation)?);
                }
                let both = slot.as_ref().expect("filled above");
                let order = if matches!(metric, EvalMetric::RoadMorf | EvalMetric::RoadMorfMean) {
                    RoadOrder::Morf
                } else {
                    RoadOrder::Lerf
                };
                let curve = both.curve(order);
                (Some(curve.auc), road_note(&curve.fractions, &curve.scores))
            }
        };
        if let Some(e) = failure.into_inner() {
            return Err(e.context("running the model"));
        }
        Ok(result)
    }
}

/// A ROAD curve in a results row, so a reader can plot it: `p@10%=0.8123 p@20%=…`.
fn road_note(fractions: &[f64], scores: &[f64]) -> String {
    let points: Vec<String> = fractions
        .iter()
        .zip(scores)
        .map(|(f, p)| format!("p@{}%={p:.4}", (f * 100.0).round()))
        .collect();
    points.join(" ")
}

/// A PIC curve's knots in a results row, so the summary can aggregate the curves by their
/// per-x median as PAIR does (the AUC of the median curve is not the median of the AUCs).
pub const KNOTS_PREFIX: &str = "knots=";

fn knots_note(knots: &[(f64, f64)]) -> String {
    let pairs: Vec<[f64; 2]> = knots.iter().map(|&(x, y)| [x, y]).collect();
    format!("{KNOTS_PREFIX}{}", serde_json::to_string(&pairs).unwrap_or_default())
}

pub fn parse_knots(note: &str) -> Option<Vec<(f64, f64)>> {
    let json = note.strip_prefix(KNOTS_PREFIX)?;
    let pairs: Vec<[f64; 2]> = serde_json::from_str(json).ok()?;
    Some(pairs.into_iter().map(|[x, y]| (x, y)).collect())
}
