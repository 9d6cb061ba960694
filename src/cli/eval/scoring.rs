//! The metrics of `eval`, wired to a classifier: each metric in `pathscope::metrics` takes
//! the model as a batch-scoring closure; here the closures run the model in batches.

use std::cell::RefCell;

use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::ops::softmax;

use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::metrics::insertion_deletion::{deletion, insertion, rise_blur, CurveScore};
use pathscope::metrics::sensitivity::sensitivity_n;
use pathscope::model::Classifier;

use super::{EvalMetric, Settings};

pub struct Scorer<'a> {
    model: &'a Classifier,
    /// The normalised input, flat CHW.
    image: Vec<f32>,
    dims: (usize, usize, usize),
    target: usize,
    batch: usize,
}

impl<'a> Scorer<'a> {
    pub fn new(model: &'a Classifier, input: &Tensor, target: usize, batch: usize) -> Result<Self> {
        Ok(Self {
            model,
            image: input.flatten_all()?.to_vec1::<f32>()?,
            dims: input.dims3()?,
            target,
            batch: batch.max(1),
        })
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

    /// softmax probability of the target class for each image.
    fn probabilities(&self, images: &[Vec<f32>]) -> Result<Vec<f64>> {
        let (c, h, w) = self.dims;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch) {
            let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
            let x = Tensor::from_vec(flat, (chunk.len(), c, h, w), self.model.device())?;
            let p = softmax(&self.model.forward(&x)?, 1)?.to_vec2::<f32>()?;
            out.extend(p.iter().map(|row| row[self.target] as f64));
        }
        Ok(out)
    }

    /// The metric's value for `map` ([C, H, W] flat), or a note why there is none.
    pub fn score(&self, metric: EvalMetric, map: &[f32], settings: &Settings) -> Result<(Option<f64>, String)> {
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
        };
        if let Some(e) = failure.into_inner() {
            return Err(e.context("running the model"));
        }
        Ok(result)
    }
}
