//! The gradient oracle: the explained score f_c and its gradient with respect to the
//! input, for a batch of points. In eval mode the samples of a batch are independent,
//! so the gradient of Σ_b f_c(z_b) with respect to the stacked batch is the stack of the
//! per-sample gradients: one backward pass serves the whole batch.

use candle_core::{IndexOp, Tensor};
use candle_nn::ops::{log_softmax, softmax};

use super::{AttributionError, Result};
use crate::model::Classifier;

/// Which scalar of the model output is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Objective {
    /// The raw output z_c (Captum's behaviour on a logit model).
    #[default]
    Logit,
    /// softmax(z)_c.
    Probability,
    /// log softmax(z)_c.
    LogProbability,
}

impl Objective {
    /// f_c of every row of a batch of logits (flattened [K × classes]) and ∂f_c/∂z, the
    /// seed of the reverse pass. Softmax in f64, shifted by the row's maximum.
    pub fn scores_and_seed(self, logits: &[f32], classes: usize, target: usize) -> (Vec<f32>, Vec<f32>) {
        let mut scores = Vec::with_capacity(logits.len() / classes.max(1));
        let mut seed = vec![0f32; logits.len()];
        for (z, s) in logits.chunks(classes).zip(seed.chunks_mut(classes)) {
            if self == Objective::Logit {
                scores.push(z[target]);
                s[target] = 1.0;
                continue;
            }
            let m = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let total: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
            let p = |j: usize| (z[j] as f64 - m).exp() / total;
            let pt = p(target);
            for (j, sj) in s.iter_mut().enumerate() {
                let delta = if j == target { 1.0 } else { 0.0 };
                *sj = match self {
                    // ∂p_t/∂z_j = p_t (δ_tj − p_j)
                    Objective::Probability => pt * (delta - p(j)),
                    // ∂log p_t/∂z_j = δ_tj − p_j
                    _ => delta - p(j),
                } as f32;
            }
            scores.push(match self {
                Objective::Probability => pt as f32,
                _ => (z[target] as f64 - m - total.ln()) as f32,
            });
        }
        (scores, seed)
    }

    /// f_c for every row of a batch of logits [K, classes] -> [K].
    pub fn select(self, logits: &Tensor, target: usize) -> candle_core::Result<Tensor> {
        match self {
            Objective::Logit => logits.i((.., target)),
            Objective::Probability => softmax(logits, 1)?.i((.., target)),
            Objective::LogProbability => log_softmax(logits, 1)?.i((.., target)),
        }
    }
}

/// Anything that can score a batch of points and give the input gradient of the score.
/// Points are a tensor [K, ...] whose trailing shape is the input's.
pub trait GradientOracle {
    /// f_c at each point, [K] as f32.
    fn scores(&self, points: &Tensor, target: usize) -> Result<Vec<f32>>;
    /// f_c at each point and ∇f_c there, [K, ...].
    fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)>;
    /// Number of output classes (target indices must be below it).
    fn num_classes(&self) -> usize;
}

/// A classifier with an objective.
pub struct ModelOracle<'a> {
    pub model: &'a Classifier,
    pub objective: Objective,
}

impl<'a> ModelOracle<'a> {
    pub fn new(model: &'a Classifier, objective: Objective) -> Self {
        Self { model, objective }
    }

    fn check_target(&self, target: usize) -> Result<()> {
        if target >= self.model.num_classes() {
            return Err(AttributionError::InvalidArgument(format!(
                "target class {target} is out of range: the model has {} classes (0..{})",
                self.model.num_classes(),
                self.model.num_classes() - 1
            )));
        }
        Ok(())
    }
}

impl GradientOracle for ModelOracle<'_> {
    fn scores(&self, points: &Tensor, target: usize) -> Result<Vec<f32>> {
        self.check_target(target)?;
        let logits = self.model.forward(&points.detach())?;
        Ok(self.objective.select(&logits, target)?.to_vec1::<f32>()?)
    }

    fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
        self.check_target(target)?;
        let classes = self.model.num_classes();
        let mut scores = Vec::new();
        let (_, g) = self.model.logits_and_input_gradient(&points.detach(), |logits| {
            let (f, seed) = self.objective.scores_and_seed(logits, classes, target);
            scores = f;
            seed
        })?;
        Ok((scores, g))
    }

    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }
}
