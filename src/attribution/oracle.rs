//! The gradient oracle: the explained score f_c and its gradient with respect to the
//! input, for a batch of points. In eval mode the samples of a batch are independent,
//! so the gradient of Σ_b f_c(z_b) with respect to the stacked batch is the stack of the
//! per-sample gradients: one backward pass serves the whole batch.

use candle_core::{DType, IndexOp, Tensor};
use candle_nn::ops::{log_softmax, softmax};

use super::{AttributionError, Result};
use crate::model::Classifier;
use crate::net::line::{add_weighted_points, line_points};

/// Which scalar of the model output is explained. Text form: `logit`, `probability`,
/// `log-probability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The raw output z_c (Captum's behaviour on a logit model).
    #[default]
    #[serde(alias = "Logit")]
    Logit,
    /// softmax(z)_c.
    #[serde(alias = "Probability")]
    Probability,
    /// log softmax(z)_c.
    #[serde(alias = "LogProbability")]
    LogProbability,
}

text_form!(Objective, "objective");

impl Objective {
    pub const ALL: [Objective; 3] = [Objective::Logit, Objective::Probability, Objective::LogProbability];

    /// The words a person reads (the studio's controls).
    pub fn label(self) -> &'static str {
        match self {
            Objective::Logit => "logit",
            Objective::Probability => "probability (softmax)",
            Objective::LogProbability => "log probability (log-softmax)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Objective::Logit => "logit",
            Objective::Probability => "probability",
            Objective::LogProbability => "log-probability",
        }
    }

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

    /// f_c and ∇f_c at the points start + α_k (end − start), [K, ...]: one batch of a
    /// straight path. The default builds the points; [`ModelOracle`] lets the model run its
    /// first convolution on the two ends only, with the same rounding as
    /// [`Self::line_gradient_sum`], so a map summed step by step (the studio's) and one
    /// summed directly agree to summation order.
    fn line_scores_and_gradients(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        target: usize,
    ) -> Result<(Vec<f32>, Tensor)> {
        self.scores_and_gradients(&line_points(start, end, alphas)?, target)
    }

    /// Σ_k w_k ∇f_c(start + α_k (end − start)), flattened, in f64: one batch of a
    /// straight-path Riemann sum. This default sums [`Self::line_scores_and_gradients`];
    /// [`ModelOracle`] lets the model skip the per-point work of its first convolution.
    fn line_gradient_sum(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        weights: &[f64],
        target: usize,
    ) -> Result<Vec<f64>> {
        let (_, grads) = self.line_scores_and_gradients(start, end, alphas, target)?;
        let grads = grads.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut sum = vec![0f64; start.elem_count()];
        add_weighted_points(&mut sum, &grads, weights);
        Ok(sum)
    }
}

/// A classifier with an objective.
pub struct ModelOracle<'a> {
    pub model: &'a Classifier,
    pub objective: Objective,
    /// Bytes a gradient pass may hold; larger batches are split into sub-batches.
    memory_budget: u64,
}

/// Half of the memory the kernel reports available (4 GiB where it cannot be read): a
/// batch size chosen for a small model must not exhaust memory on a large one.
pub fn default_memory_budget() -> u64 {
    memory_budget_on(&candle_core::Device::Cpu)
}

/// Half of the memory free on `device` (the GPU's own on CUDA), as
/// [`default_memory_budget`].
fn memory_budget_on(device: &candle_core::Device) -> u64 {
    crate::device::free_memory(device).map_or(4 << 30, |bytes| bytes / 2)
}

impl<'a> ModelOracle<'a> {
    pub fn new(model: &'a Classifier, objective: Objective) -> Self {
        Self {
            model,
            objective,
            memory_budget: memory_budget_on(model.device()),
        }
    }

    /// Caps the memory of one gradient pass (the batch is split to fit; results do not
    /// change).
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// How many of `n` points of shape `point_dims` ([C, H, W]) one pass may take within
    /// the budget: all `n` when the model cannot tell a point's cost, never 0.
    fn max_points(&self, n: usize, point_dims: &[usize]) -> usize {
        let per_point = match point_dims {
            [_, h, w] => self.model.gradient_bytes_per_point(*h, *w).unwrap_or(0),
            _ => 0,
        };
        if per_point == 0 {
            return n.max(1);
        }
        let points = ((self.memory_budget / per_point) as usize).max(1);
        // Let the tape's buffer pool keep a whole pass, so the next pass reuses its
        // buffers instead of faulting fresh pages in.
        if self.model.device().is_cpu() && !self.model.is_generic() {
            crate::kernels::buffers::keep_at_least(points.min(n.max(1)) as u64 * per_point);
        }
        points
    }

    fn scores_and_gradients_unsplit(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
        let classes = self.model.num_classes();
        let mut scores = Vec::new();
        let (_, g) = self.model.logits_and_input_gradient(&points.detach(), |logits| {
            let (f, seed) = self.objective.scores_and_seed(logits, classes, target);
            scores = f;
            seed
        })?;
        Ok((scores, g))
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
        let n = points.dim(0)?;
        // A forward pass frees as it goes, but the same split keeps its peak bounded too.
        let chunk = self.max_points(n, &points.dims()[1..]);
        let mut scores = Vec::with_capacity(n);
        for start in (0..n).step_by(chunk) {
            let part = points.narrow(0, start, chunk.min(n - start))?.detach();
            let logits = self.model.forward(&part)?;
            scores.extend(self.objective.select(&logits, target)?.to_vec1::<f32>()?);
        }
        Ok(scores)
    }

    fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
        self.check_target(target)?;
        let n = points.dim(0)?;
        let chunk = self.max_points(n, &points.dims()[1..]);
        if n <= chunk {
            return self.scores_and_gradients_unsplit(points, target);
        }
        let (mut scores, mut grads) = (Vec::with_capacity(n), Vec::new());
        for start in (0..n).step_by(chunk) {
            let part = points.narrow(0, start, chunk.min(n - start))?;
            let (s, g) = self.scores_and_gradients_unsplit(&part, target)?;
            scores.extend(s);
            grads.push(g);
        }
        Ok((scores, Tensor::cat(&grads, 0)?))
    }

    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }

    fn line_scores_and_gradients(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        target: usize,
    ) -> Result<(Vec<f32>, Tensor)> {
        self.check_target(target)?;
        let classes = self.model.num_classes();
        let chunk = self.max_points(alphas.len(), start.dims());
        let (mut scores, mut grads) = (Vec::with_capacity(alphas.len()), Vec::new());
        for a in alphas.chunks(chunk) {
            let (_, g) = self
                .model
                .logits_and_line_gradients(&start.detach(), &end.detach(), a, |logits| {
                    let (f, seed) = self.objective.scores_and_seed(logits, classes, target);
                    scores.extend(f);
                    seed
                })?;
            grads.push(g);
        }
        let grads = if grads.len() == 1 {
            grads.remove(0)
        } else {
            Tensor::cat(&grads, 0)?
        };
        Ok((scores, grads))
    }

    fn line_gradient_sum(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        weights: &[f64],
        target: usize,
    ) -> Result<Vec<f64>> {
        self.check_target(target)?;
        let classes = self.model.num_classes();
        let chunk = self.max_points(alphas.len(), start.dims());
        let mut total = vec![0f64; start.elem_count()];
        for (a, w) in alphas.chunks(chunk).zip(weights.chunks(chunk)) {
            let (_, sum) = self
                .model
                .logits_and_line_gradient_sum(&start.detach(), &end.detach(), a, w, |logits| {
                    self.objective.scores_and_seed(logits, classes, target).1
                })?;
            total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A budget too small for even two points splits every batch into single points; the
    /// scores and gradients must not change (samples are independent in eval mode).
    #[test]
    fn a_batch_split_to_fit_memory_gives_the_same_results() {
        let model = crate::assets::default_classifier(&Device::Cpu).unwrap();
        let per_point = model.gradient_bytes_per_point(224, 224).unwrap();
        // SqueezeNet-1.1 keeps about 10 M activation values per 224² point.
        assert!((20 << 20..200 << 20).contains(&per_point), "{per_point}");
        let points = Tensor::randn(0f32, 1.0, (3, 3, 224, 224), &Device::Cpu).unwrap();
        let whole = ModelOracle::new(&model, Objective::Probability);
        let split = ModelOracle::new(&model, Objective::Probability).with_memory_budget(per_point);
        assert_eq!(split.max_points(3, &points.dims()[1..]), 1);
        // A shape the cost model cannot price goes through whole, however many points.
        assert_eq!(split.max_points(7, &[3, 224]), 7);
        let (s1, g1) = whole.scores_and_gradients(&points, 281).unwrap();
        let (s2, g2) = split.scores_and_gradients(&points, 281).unwrap();
        assert_eq!(g1.dims(), g2.dims());
        for (a, b) in s1.iter().zip(&s2) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-12), "{a} vs {b}");
        }
        let (a, b) = (
            g1.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            g2.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let num: f64 = a.iter().zip(&b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
        assert!((num / den).sqrt() < 1e-5, "rel L2 {}", (num / den).sqrt());
        // The forward-only path's softmax is candle's (f32): equal to a few ulp.
        for (a, b) in whole
            .scores(&points, 281)
            .unwrap()
            .iter()
            .zip(split.scores(&points, 281).unwrap())
        {
            assert!((a - b).abs() <= 1e-6 * a.abs(), "{a} vs {b}");
        }
    }
}
