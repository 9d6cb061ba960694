//! Insertion and deletion curves of one map on a classifier (algorithms.md §4.1): the
//! model-facing half of [`super::insertion_deletion`], which stays pure. Runs in the
//! engine's worker, reporting progress and stopping on a cancel flag.
//!
//! The score is the softmax probability of `target` (RISE). The map is a 2-D saliency
//! [H, W]; the caller decides how a [C, H, W] attribution becomes one (the studio uses
//! the panel's map as displayed: the channel sum, or its magnitude on the absolute panel).

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;

use super::insertion_deletion::{deletion, insertion, rise_blur, Curve, CurveScore};
use super::MetricError;
use crate::attribution::Objective;
use crate::model::Classifier;

/// How the curves are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurveParams {
    /// Pixels moved per step (RISE: 224, so 224 steps on a 224×224 image).
    pub pixels_per_step: usize,
    /// Images per forward pass.
    pub batch: usize,
}

impl Default for CurveParams {
    fn default() -> Self {
        Self {
            pixels_per_step: 224,
            batch: 16,
        }
    }
}

impl CurveParams {
    /// Images one curve scores on an image of `hw` pixels: N + 1 with N = ⌈HW / step⌉.
    pub fn images_per_curve(&self, hw: usize) -> usize {
        hw.div_ceil(self.pixels_per_step.max(1)) + 1
    }
}

/// Both curves of one map, probability against the fraction of pixels moved.
#[derive(Debug, Clone, PartialEq)]
pub struct InsertionDeletion {
    /// From the RISE blur of the image to the image, most salient pixels first.
    pub insertion: Curve,
    /// From the image to zeros in normalised space (the dataset mean colour).
    pub deletion: Curve,
    pub params: CurveParams,
}

/// Scores batches of flat [C, H, W] images with the softmax probability of `target`.
pub fn probability_scorer<'a>(
    model: &'a Classifier,
    target: usize,
    (c, h, w): (usize, usize, usize),
) -> impl FnMut(&[Vec<f32>]) -> Result<Vec<f64>, MetricError> + 'a {
    move |images: &[Vec<f32>]| {
        let flat: Vec<f32> = images.iter().flat_map(|i| i.iter().copied()).collect();
        let run = || -> candle_core::Result<Vec<f32>> {
            let batch = Tensor::from_vec(flat, (images.len(), c, h, w), model.device())?;
            let logits = model.forward(&batch)?;
            Objective::Probability.select(&logits, target)?.to_vec1::<f32>()
        };
        run()
            .map(|p| p.into_iter().map(f64::from).collect())
            .map_err(|e| MetricError::Model(e.to_string()))
    }
}

/// Insertion then deletion curves of `saliency` ([H, W]) for the normalised `input`
/// ([C, H, W]). `on_progress(done, total)` counts scored images; raising `cancel` stops
/// the work within one batch with [`MetricError::Cancelled`].
pub fn insertion_deletion_curves(
    model: &Classifier,
    input: &Tensor,
    saliency: &[f32],
    target: usize,
    params: CurveParams,
    on_progress: &mut dyn FnMut(usize, usize),
    cancel: Option<&AtomicBool>,
) -> Result<InsertionDeletion, MetricError> {
    let (c, h, w) = input
        .dims3()
        .map_err(|e| MetricError::SizeMismatch(format!("input: {e}")))?;
    if saliency.len() != h * w {
        return Err(MetricError::LengthMismatch {
            what: "saliency map",
            expected: h * w,
            got: saliency.len(),
        });
    }
    if target >= model.num_classes() {
        return Err(MetricError::InvalidParameter(format!(
            "target class {target}: the model has {} classes",
            model.num_classes()
        )));
    }
    if params.pixels_per_step == 0 || params.batch == 0 {
        return Err(MetricError::InvalidParameter(
            "pixels per step and batch must be at least 1".into(),
        ));
    }
    let image = input
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| MetricError::Model(e.to_string()))?;
    let blurred = rise_blur(&image, c, h, w);
    let zeros = vec![0f32; image.len()];
    let total = 2 * params.images_per_curve(h * w);
    let mut done = 0;
    let mut failure: Option<MetricError> = None;
    let mut model_score = probability_scorer(model, target, (c, h, w));
    // The pure sweeps take an infallible scorer: after a failure or a cancel it returns
    // zeros without running the model, and the error is reported once the sweep ends.
    let mut score = |images: &[Vec<f32>]| -> Vec<f64> {
        if failure.is_none() && cancel.is_some_and(|f| f.load(Ordering::Relaxed)) {
            failure = Some(MetricError::Cancelled);
        }
        if failure.is_some() {
            return vec![0.0; images.len()];
        }
        match model_score(images) {
            Ok(s) => {
                done += images.len();
                on_progress(done, total);
                s
            }
            Err(e) => {
                failure = Some(e);
                vec![0.0; images.len()]
            }
        }
    };
    let (step, batch, kind) = (params.pixels_per_step, params.batch, CurveScore::Probability);
    let insertion = insertion(&image, &blurred, saliency, c, step, batch, kind, &mut score);
    let deletion = deletion(&image, &zeros, saliency, c, step, batch, kind, &mut score);
    match failure {
        Some(e) => Err(e),
        None => Ok(InsertionDeletion {
            insertion,
            deletion,
            params,
        }),
    }
}
