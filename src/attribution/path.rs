//! Paths and what integrates along them.
//!
//! A path method (straight line, Blur IG, Guided IG) evaluates the model at a sequence of
//! points ordered **from the baseline to the input** and hands each evaluated point to one
//! or more [`StepSink`]s as a [`PathStep`]. Sinks do the integrating:
//! - [`RiemannSink`] sums each step's own contribution (the method's usual estimator);
//! - [`IdgiSink`] applies IDGI (Yang et al., CVPR 2023; algorithms.md §2.9);
//! - [`TraceRecorder`](super::trace::TraceRecorder) keeps every step for the studio.
//!
//! Streaming keeps memory flat: IDGI needs only the previous step's gradient.

use super::{AttributionError, Result};

/// How the gradients along a path become an attribution. Text form: `riemann`, `idgi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Integration {
    /// The path method's own estimator (Captum's rule on the straight line, PAIR's sums
    /// for Blur IG and Guided IG).
    #[default]
    Riemann,
    /// Important-direction integration. Needs the path's endpoints scored: the grid
    /// includes the baseline (with its gradient) and the input (score only).
    Idgi,
}

impl Integration {
    pub const ALL: [Integration; 2] = [Integration::Riemann, Integration::Idgi];

    pub fn name(self) -> &'static str {
        match self {
            Integration::Riemann => "riemann",
            Integration::Idgi => "idgi",
        }
    }
}

text_form!(Integration, "integration");

/// What the sinks of one walk need from it: the Riemann estimator's weighted
/// contributions, IDGI's two ends (a gradient at the start, a score at the input), or
/// both, so that one walk feeds every integration over the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    pub riemann: bool,
    pub idgi: bool,
}

impl Walk {
    /// The walk that serves all of `integrations`.
    pub fn serving(integrations: &[Integration]) -> Walk {
        Walk {
            riemann: integrations.contains(&Integration::Riemann),
            idgi: integrations.contains(&Integration::Idgi),
        }
    }
}

impl From<Integration> for Walk {
    fn from(integration: Integration) -> Walk {
        Walk::serving(&[integration])
    }
}

/// One evaluated point of a path.
#[derive(Debug, Clone, Copy)]
pub struct PathStep<'a> {
    /// 0-based position in path order (baseline → input).
    pub index: usize,
    /// Progress along the path in [0, 1]: α on the straight line, 1 − σ/σ_max on the blur
    /// path, the fraction of the L1 distance covered on the guided path.
    pub alpha: f64,
    /// Where the point is: enough for a UI to show the path image.
    pub point: StepPoint<'a>,
    /// f_c at the point.
    pub score: f32,
    /// ∇f_c at the point; `None` for a point that was only scored (the input at the end of
    /// an IDGI path, whose gradient IDGI never uses).
    pub gradient: Option<&'a [f32]>,
    /// This step's term of the method's own Riemann estimator (zero-length when the step
    /// contributes nothing, e.g. a score-only endpoint).
    pub contribution: &'a [f32],
}

/// The location of a path point, as cheaply as it can be given.
#[derive(Debug, Clone, Copy)]
pub enum StepPoint<'a> {
    /// x′ + α (x − x′) on the straight line.
    Straight { alpha: f64 },
    /// The input blurred with a Gaussian of this σ (pixels, zero boundary).
    Blurred { sigma: f64 },
    /// The point itself (paths that cannot be recomputed cheaply, e.g. Guided IG).
    Values(&'a [f32]),
}

/// Receives the steps of a path, in order.
pub trait StepSink {
    fn step(&mut self, step: &PathStep) -> Result<()>;
}

/// Sends each step to several sinks.
pub struct Tee<'s> {
    pub sinks: Vec<&'s mut dyn StepSink>,
}

impl StepSink for Tee<'_> {
    fn step(&mut self, step: &PathStep) -> Result<()> {
        for s in self.sinks.iter_mut() {
            s.step(step)?;
        }
        Ok(())
    }
}

/// Σ of the steps' contributions, in f64.
#[derive(Debug, Clone)]
pub struct RiemannSink {
    pub sum: Vec<f64>,
}

impl RiemannSink {
    pub fn new(len: usize) -> Self {
        Self { sum: vec![0.0; len] }
    }

    pub fn attribution(&self) -> Vec<f32> {
        self.sum.iter().map(|&v| v as f32).collect()
    }
}

impl StepSink for RiemannSink {
    fn step(&mut self, step: &PathStep) -> Result<()> {
        if step.contribution.is_empty() {
            return Ok(());
        }
        if step.contribution.len() != self.sum.len() {
            return Err(AttributionError::InvalidArgument(format!(
                "step {} contributes {} values, expected {}",
                step.index,
                step.contribution.len(),
                self.sum.len()
            )));
        }
        for (a, &c) in self.sum.iter_mut().zip(step.contribution) {
            *a += c as f64;
        }
        Ok(())
    }
}

/// What IDGI does with a step whose gradient is identically zero (Σ G² = 0), where the
/// reference code divides 0 by 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroGradientPolicy {
    /// Spread the step's score change uniformly over all features, so that completeness
    /// still holds exactly (the default).
    #[default]
    SpreadUniformly,
    /// Skip the step: its score change is lost from completeness.
    Skip,
}

/// Important-direction gradient integration: for consecutive points j, j + 1,
/// A += G_j² · (P_{j+1} − P_j) / Σ G_j², so each step adds exactly P_{j+1} − P_j and
/// Σ A = P_last − P_first whatever the number of steps. Sums run in f64, and the squares
/// are taken after scaling by max |G| so that tiny softmax gradients cannot underflow.
#[derive(Debug, Clone)]
pub struct IdgiSink {
    pub sum: Vec<f64>,
    pub policy: ZeroGradientPolicy,
    previous: Option<(f32, Vec<f32>)>,
    first_score: Option<f32>,
    last_score: Option<f32>,
    /// Steps whose gradient was zero (handled by `policy`).
    pub zero_gradient_steps: usize,
}

impl IdgiSink {
    pub fn new(len: usize, policy: ZeroGradientPolicy) -> Self {
        Self {
            sum: vec![0.0; len],
            policy,
            previous: None,
            first_score: None,
            last_score: None,
            zero_gradient_steps: 0,
        }
    }

    pub fn attribution(&self) -> Vec<f32> {
        self.sum.iter().map(|&v| v as f32).collect()
    }

    /// P_last − P_first: what Σ A must equal.
    pub fn score_change(&self) -> Option<f64> {
        Some(self.last_score? as f64 - self.first_score? as f64)
    }
}

impl StepSink for IdgiSink {
    fn step(&mut self, step: &PathStep) -> Result<()> {
        if self.first_score.is_none() {
            self.first_score = Some(step.score);
        }
        self.last_score = Some(step.score);
        if let Some((p_prev, g_prev)) = self.previous.take() {
            let d = step.score as f64 - p_prev as f64;
            let m = g_prev.iter().fold(0f32, |m, g| m.max(g.abs())) as f64;
            let s: f64 = if m > 0.0 {
                g_prev.iter().map(|&g| (g as f64 / m).powi(2)).sum()
            } else {
                0.0
            };
            if s > 0.0 && s.is_finite() {
                for (a, &g) in self.sum.iter_mut().zip(&g_prev) {
                    *a += (g as f64 / m).powi(2) * d / s;
                }
            } else {
                self.zero_gradient_steps += 1;
                if self.policy == ZeroGradientPolicy::SpreadUniformly {
                    let share = d / self.sum.len() as f64;
                    self.sum.iter_mut().for_each(|a| *a += share);
                }
            }
        }
        if let Some(g) = step.gradient {
            if g.len() != self.sum.len() {
                return Err(AttributionError::InvalidArgument(format!(
                    "step {} has {} gradient values, expected {}",
                    step.index,
                    g.len(),
                    self.sum.len()
                )));
            }
            self.previous = Some((step.score, g.to_vec()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(sink: &mut dyn StepSink, steps: &[(f32, Option<Vec<f32>>)]) {
        for (i, (score, grad)) in steps.iter().enumerate() {
            sink.step(&PathStep {
                index: i,
                alpha: i as f64 / (steps.len() - 1) as f64,
                point: StepPoint::Straight {
                    alpha: i as f64 / (steps.len() - 1) as f64,
                },
                score: *score,
                gradient: grad.as_deref(),
                contribution: &[],
            })
            .unwrap();
        }
    }

    /// algorithms.md §2.9 worked example: f = x₀² + 3x₁ from 0 to (1, 1) at α = 0, ½, 1.
    #[test]
    fn idgi_worked_example() {
        let mut s = IdgiSink::new(2, ZeroGradientPolicy::default());
        feed(
            &mut s,
            &[(0.0, Some(vec![0.0, 3.0])), (1.75, Some(vec![1.0, 3.0])), (4.0, None)],
        );
        let a = s.attribution();
        assert!((a[0] - 0.225).abs() < 1e-6 && (a[1] - 3.775).abs() < 1e-6, "{a:?}");
    }

    /// Σ A = P_last − P_0 for arbitrary scores and gradients (completeness per step).
    #[test]
    fn idgi_is_complete_on_random_paths() {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        };
        for n in [2usize, 3, 17, 64] {
            let steps: Vec<(f32, Option<Vec<f32>>)> = (0..n)
                .map(|i| (rnd() * 10.0, (i + 1 < n).then(|| (0..50).map(|_| rnd()).collect())))
                .collect();
            let mut s = IdgiSink::new(50, ZeroGradientPolicy::default());
            feed(&mut s, &steps);
            let total: f64 = s.sum.iter().sum();
            let expected = steps[n - 1].0 as f64 - steps[0].0 as f64;
            assert!(
                (total - expected).abs() < 1e-6 * (1.0 + expected.abs()),
                "n={n}: {total} vs {expected}"
            );
        }
    }

    /// A zero gradient never yields NaN; the policy decides where its score change goes.
    #[test]
    fn idgi_zero_gradient_policy() {
        let steps = vec![(0.0, Some(vec![0.0, 0.0])), (2.0, Some(vec![1.0, 0.0])), (3.0, None)];
        let mut spread = IdgiSink::new(2, ZeroGradientPolicy::SpreadUniformly);
        feed(&mut spread, &steps);
        assert_eq!(spread.attribution(), vec![2.0, 1.0]);
        assert_eq!(spread.zero_gradient_steps, 1);
        let mut skip = IdgiSink::new(2, ZeroGradientPolicy::Skip);
        feed(&mut skip, &steps);
        assert_eq!(skip.attribution(), vec![1.0, 0.0]);
        assert!(skip.attribution().iter().all(|v| v.is_finite()));
    }

    /// Gradients of order 1e-30 (saturated softmax) do not underflow to a NaN or a zero.
    #[test]
    fn idgi_tiny_gradients_keep_their_direction() {
        let mut s = IdgiSink::new(2, ZeroGradientPolicy::Skip);
        feed(&mut s, &[(0.0, Some(vec![3e-30, 1e-30])), (1.0, None)]);
        let a = s.attribution();
        assert!((a[0] - 0.9).abs() < 1e-6 && (a[1] - 0.1).abs() < 1e-6, "{a:?}");
    }
}
