//! Adversarial Gradient Integration (Pan et al., AAAI 2021), with the structure of RECAL's
//! adv_grad_integration.py (algorithms.md §2.5.2) and its re-calibration (§2.10).
//!
//! For each of `classes` adversarial classes l ≠ c, starting at the input pixels u, repeat
//! `steps` times:
//!   p ← clamp(u + eps·sign(∇f_l(p)), 0, 1)     (pixel space; every step restarts from u)
//!   T ← ∇_u f_c(p) ⊙ (u − p)                    (the term; ∇ in pixel space)
//! - Vanilla: A = Σ over classes and steps of T (no averaging, as RECAL and the original).
//! - ValidIp: every T re-calibrated over all (class, step) terms.
//! - ValidRef: each class's Σ_steps T re-calibrated over the classes.
//!
//! Kept from RECAL: g_lab at the *new* point, no early stop, random classes, perturbations
//! that restart from u at every step (the path never leaves the eps-ball), eps in [0, 1]
//! pixel units, and torch's sign(0) = 0 (see [`sign`]).
//! Dropped quirks: RECAL feeds the unnormalised p to the model for the adversarial gradient
//! (here the model sees normalise(p), as trained); its class sampler may return the target
//! and never returns the last two classes (here: distinct classes ≠ target, drawn from all).
//! The objective is the oracle's, for both gradients: logit with RECAL's setting
//! ([`Objective::Logit`](super::Objective)), softmax probability for the original AGI.
//!
//! Everything is computed in the oracle's normalised space: ∇_u = ∇_x / σ_c and only the
//! sign of the adversarial gradient is used, so T = ∇_x f_c ⊙ (u − p)/σ_c equals RECAL's
//! pixel-space term.

use candle_core::{DType, Tensor};
use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::recalibration::{RecalAccumulator, Recalibration};
use super::{AttributionError, GradientOracle, Monitor, Result};
use crate::model::Normalization;

/// torch's sign: 0 for ±0 (and NaN), unlike `f32::signum`, which gives ±1. A feature whose
/// adversarial gradient is zero does not move.
pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgiConfig {
    /// Adversarial classes (RECAL `top_k`, set to `bg_size`).
    pub classes: usize,
    /// Perturbation steps per class (RECAL `k`).
    pub steps: usize,
    /// Step size in [0, 1] pixel units (0.05 ≈ 12.75/255).
    pub eps: f64,
    pub recalibration: Recalibration,
    /// Drives the choice of adversarial classes, the only randomness.
    pub seed: u64,
    /// Points per label-gradient pass (the adversarial gradients have one target each, so
    /// they go one point per pass).
    pub batch_size: usize,
}

impl Default for AgiConfig {
    /// RECAL's CLI defaults: 10 classes, 5 steps, eps 0.05, valid_ip.
    fn default() -> Self {
        Self {
            classes: 10,
            steps: 5,
            eps: 0.05,
            recalibration: Recalibration::default(),
            seed: 0,
            batch_size: 16,
        }
    }
}

impl AgiConfig {
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(AttributionError::InvalidArgument(m));
        if self.classes == 0 || self.steps == 0 || self.batch_size == 0 {
            return invalid("classes, steps and batch size must all be at least 1".into());
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return invalid(format!("eps must be a positive number, got {}", self.eps));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct AgiResult {
    /// The attribution, with the input's shape.
    pub attribution: Tensor,
    /// The adversarial classes, in the order drawn.
    pub classes: Vec<usize>,
    /// Fraction of (term, feature) pairs kept by re-calibration; 1 for vanilla.
    pub valid_fraction: f64,
    /// Points sent through a forward and a backward pass (2 · classes · steps).
    pub gradient_evaluations: usize,
}

/// AGI of `input` ([C, H, W], normalised with `norm`) for class `target`.
pub fn agi_attribution(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    config: &AgiConfig,
    monitor: &mut Monitor,
) -> Result<AgiResult> {
    config.validate()?;
    let num_classes = oracle.num_classes();
    if target >= num_classes || config.classes > num_classes - 1 {
        return Err(AttributionError::InvalidArgument(format!(
            "target {target} and {} adversarial classes need a model with more classes than {num_classes}",
            config.classes
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let classes: Vec<usize> = index::sample(&mut rng, num_classes - 1, config.classes)
        .iter()
        .map(|i| if i >= target { i + 1 } else { i })
        .collect();

    let (c, h, w) = input.dims3()?;
    let hw = h * w;
    let n = c * hw;
    let mut u = input.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    norm.denormalize(&mut u, hw);
    // normalize_pixels leaves channels beyond the third unchanged: σ = 1 there.
    let channel_std = |i: usize| norm.std.get(i / hw).copied().unwrap_or(1.0) as f64;
    let normalized = |p: &[f32]| {
        let mut v = p.to_vec();
        norm.normalize_pixels(&mut v, hw);
        v
    };
    let eps = config.eps as f32;
    let total = 2 * config.classes * config.steps;
    let mut done = 0;
    let mut acc = RecalAccumulator::new(n, config.recalibration.filters());
    // ValidRef re-calibrates each class's sum over its steps, so those sums are kept apart.
    let per_class = config.recalibration == Recalibration::ValidRef;
    let mut class_sums = vec![vec![0f64; n]; if per_class { config.classes } else { 0 }];
    let mut points = vec![u.clone(); config.classes];

    for _ in 0..config.steps {
        for (p, &l) in points.iter_mut().zip(&classes) {
            let batch = Tensor::from_vec(normalized(p), (1, c, h, w), input.device())?;
            let (_, g_adv) = oracle.scores_and_gradients(&batch, l)?;
            let g_adv = g_adv.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            for ((pi, &ui), &gi) in p.iter_mut().zip(&u).zip(&g_adv) {
                *pi = (ui + eps * sign(gi)).clamp(0.0, 1.0);
            }
            done += 1;
            monitor.step(done, total)?;
        }
        for first in (0..config.classes).step_by(config.batch_size) {
            let last = (first + config.batch_size).min(config.classes);
            let flat: Vec<f32> = points[first..last].iter().flat_map(|p| normalized(p)).collect();
            let batch = Tensor::from_vec(flat, (last - first, c, h, w), input.device())?;
            let (_, g_lab) = oracle.scores_and_gradients(&batch, target)?;
            let g_lab = g_lab.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            for (row, class) in (first..last).enumerate() {
                let (p, g) = (&points[class], &g_lab[row * n..(row + 1) * n]);
                for i in 0..n {
                    let term = g[i] as f64 * (u[i] - p[i]) as f64 / channel_std(i);
                    if per_class {
                        class_sums[class][i] += term;
                    } else {
                        acc.add(i, term, term);
                    }
                }
            }
            done += last - first;
            monitor.step(done, total)?;
        }
    }
    for sum in &class_sums {
        for (i, &t) in sum.iter().enumerate() {
            acc.add(i, t, t);
        }
    }
    let attribution = match config.recalibration {
        Recalibration::Vanilla => acc.total(),
        _ => acc.mean(),
    };
    Ok(AgiResult {
        attribution: Tensor::from_vec(attribution, (c, h, w), input.device())?,
        classes,
        valid_fraction: acc.kept_fraction(),
        gradient_evaluations: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    const NORM: Normalization = Normalization::IMAGENET;

    /// f_c(x) = W_c · x in normalised space, honouring the target.
    struct LinearOracle {
        weights: Vec<Vec<f32>>,
    }

    impl GradientOracle for LinearOracle {
        fn scores(&self, points: &Tensor, target: usize) -> Result<Vec<f32>> {
            let rows = points.flatten_from(1)?.to_vec2::<f32>()?;
            Ok(rows
                .iter()
                .map(|r| r.iter().zip(&self.weights[target]).map(|(a, b)| a * b).sum())
                .collect())
        }
        fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
            let k = points.dim(0)?;
            let g = Tensor::new(self.weights[target].as_slice(), points.device())?
                .reshape(points.dims()[1..].to_vec())?
                .unsqueeze(0)?
                .repeat(k)?;
            Ok((self.scores(points, target)?, g.contiguous()?))
        }
        fn num_classes(&self) -> usize {
            self.weights.len()
        }
    }

    const U: [f32; 6] = [0.3, 0.6, 0.5, 0.2, 0.7, 0.4];
    const W0: [f32; 6] = [1.0, -2.0, 0.5, 3.0, -1.0, 0.25];
    const W1: [f32; 6] = [0.5, 0.0, -1.0, 2.0, 1.5, -0.3];

    fn input() -> Tensor {
        let mut x = U.to_vec();
        NORM.normalize_pixels(&mut x, 2);
        Tensor::from_vec(x, (3, 1, 2), &Device::Cpu).unwrap()
    }

    fn run(oracle: &dyn GradientOracle, config: &AgiConfig) -> AgiResult {
        agi_attribution(oracle, &input(), &NORM, 0, config, &mut Monitor::none()).unwrap()
    }

    /// algorithms.md §7 #25.
    #[test]
    fn sign_of_zero_is_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(sign(f32::NAN), 0.0);
        assert_eq!(sign(3.5), 1.0);
        assert_eq!(sign(-1e-30), -1.0);
    }

    /// algorithms.md §2.5.2: z = Wx, c = 0, l = 1 (the only other class). One step moves u
    /// by eps·sign(W₁) (away from the clamp bounds; W₁'s zero leaves feature 1 in place),
    /// and T = ∇_u f_0 ⊙ (u − p) = W₀/σ_c ⊙ (u − p). With 3 steps the same T repeats.
    #[test]
    fn linear_model_matches_the_hand_computed_step() {
        let oracle = LinearOracle {
            weights: vec![W0.to_vec(), W1.to_vec()],
        };
        // u − p = −0.05·sign(W₁), by hand.
        let delta = [-0.05, 0.0, 0.05, -0.05, -0.05, 0.05];
        let sd = [0.229, 0.229, 0.224, 0.224, 0.225, 0.225];
        let t: Vec<f64> = (0..6).map(|i| W0[i] as f64 * delta[i] / sd[i]).collect();
        assert!(t.iter().any(|&v| v < 0.0) && t.iter().any(|&v| v > 0.0));
        for steps in [1usize, 3] {
            let s = steps as f64;
            let cases = [
                (Recalibration::Vanilla, t.iter().map(|&v| s * v).collect::<Vec<_>>()),
                (Recalibration::ValidIp, t.iter().map(|&v| v.max(0.0)).collect()),
                (Recalibration::ValidRef, t.iter().map(|&v| s * v.max(0.0)).collect()),
            ];
            for (recalibration, expected) in cases {
                let config = AgiConfig {
                    classes: 1,
                    steps,
                    recalibration,
                    ..AgiConfig::default()
                };
                let r = run(&oracle, &config);
                assert_eq!(r.classes, vec![1]);
                assert_eq!(r.gradient_evaluations, 2 * steps);
                let a = r.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for i in 0..6 {
                    assert!(
                        (a[i] as f64 - expected[i]).abs() < 1e-5,
                        "{recalibration:?} steps {steps} feature {i}: {} vs {}",
                        a[i],
                        expected[i]
                    );
                }
            }
        }
    }

    fn many_classes() -> LinearOracle {
        LinearOracle {
            weights: (0..8)
                .map(|c| (0..6).map(|i| ((c * 6 + i) as f32 * 1.3).sin()).collect())
                .collect(),
        }
    }

    #[test]
    fn classes_are_distinct_exclude_the_target_and_follow_the_seed() {
        let oracle = many_classes();
        let config = |seed| AgiConfig {
            classes: 3,
            seed,
            ..AgiConfig::default()
        };
        let a = run(&oracle, &config(1));
        let b = run(&oracle, &config(1));
        let c = run(&oracle, &config(2));
        let bits = |r: &AgiResult| r.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bits(&a), bits(&b));
        assert_eq!(a.classes, b.classes);
        assert_ne!(a.classes, c.classes);
        assert_ne!(bits(&a), bits(&c));
        let all = run(
            &oracle,
            &AgiConfig {
                classes: 7,
                ..AgiConfig::default()
            },
        );
        let mut sorted = all.classes.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn recalibrated_agi_is_non_negative_and_batches_report_progress() {
        let oracle = many_classes();
        for recalibration in [Recalibration::ValidIp, Recalibration::ValidRef] {
            let mut calls = Vec::new();
            let mut record = |done, total| calls.push((done, total));
            let mut monitor = Monitor {
                on_progress: Some(&mut record),
                cancel: None,
            };
            let config = AgiConfig {
                classes: 5,
                steps: 2,
                batch_size: 3,
                recalibration,
                ..AgiConfig::default()
            };
            let r = agi_attribution(&oracle, &input(), &NORM, 0, &config, &mut monitor).unwrap();
            let a = r.attribution.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(a.iter().all(|&v| v >= 0.0), "{recalibration:?}: {a:?}");
            // Per step: 5 one-point adversarial passes, then label passes of 3 and 2 points.
            let dones: Vec<usize> = calls.iter().map(|c| c.0).collect();
            assert_eq!(dones, vec![1, 2, 3, 4, 5, 8, 10, 11, 12, 13, 14, 15, 18, 20]);
            assert!(calls.iter().all(|c| c.1 == 20));
        }
    }

    #[test]
    fn too_many_classes_is_an_error() {
        let oracle = many_classes();
        let config = AgiConfig {
            classes: 8,
            ..AgiConfig::default()
        };
        assert!(agi_attribution(&oracle, &input(), &NORM, 0, &config, &mut Monitor::none()).is_err());
        assert!(agi_attribution(&oracle, &input(), &NORM, 8, &AgiConfig::default(), &mut Monitor::none()).is_err());
    }
}
