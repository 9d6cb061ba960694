//! Guided Integrated Gradients (Kapishnikov et al., CVPR 2021), as PAIR's `guided_ig.py`
//! computes it (algorithms.md §2.7).
//!
//! The path starts at the baseline and, in each of S steps, shrinks the L1 distance to the
//! input by L1tot/S, moving the features with the smallest |gradient| first. No feature may
//! leave the band [α − max_dist, α + max_dist] around the straight-line anchor α = (s+1)/S.
//! The gradient is taken once per step, at the step's start, so the path cannot be batched:
//! one model call per step. The selection runs on the CPU in f64, as PAIR's numpy code does;
//! only the gradient call goes through candle.

use candle_core::{DType, Tensor};

use super::path::{Integration, PathStep, RiemannSink, StepPoint, StepSink, Walk};
use super::{AttributionError, GradientOracle, Monitor, Result};

/// PAIR's tolerance for "the step reached its L1 target" (`math.isclose`, rel = abs).
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuidedIgConfig {
    /// Number of steps S (one gradient call each).
    pub steps: usize,
    /// Fraction of the features, by smallest |gradient|, moved in each round of a step.
    pub fraction: f64,
    /// How far (in α) a feature may stray from the straight line: 0 gives left-Riemann IG,
    /// 1 the unbounded Guided IG.
    pub max_dist: f64,
}

impl Default for GuidedIgConfig {
    /// PAIR's `GetMask` defaults.
    fn default() -> Self {
        Self {
            steps: 200,
            fraction: 0.25,
            max_dist: 0.02,
        }
    }
}

impl GuidedIgConfig {
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(invalid("Guided IG needs at least 1 step"));
        }
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(invalid(format!(
                "Guided IG fraction must be in (0, 1], got {}",
                self.fraction
            )));
        }
        if !(self.max_dist >= 0.0 && self.max_dist.is_finite()) {
            return Err(invalid(format!(
                "Guided IG max_dist must be finite and at least 0, got {}",
                self.max_dist
            )));
        }
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> AttributionError {
    AttributionError::InvalidArgument(msg.into())
}

/// Σ |a − b| in f64.
fn l1_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).sum()
}

/// Python's `math.isclose(a, b, rel_tol=EPSILON, abs_tol=EPSILON)`.
fn is_close(a: f64, b: f64) -> bool {
    (a - b).abs() <= (EPSILON * a.abs().max(b.abs())).max(EPSILON)
}

/// numpy's `quantile(values, fraction, method='lower')`: the element of rank
/// ⌊fraction · (N − 1)⌋. `values` must be non-empty and free of NaN.
fn quantile_lower(values: &[f64], fraction: f64) -> f64 {
    let mut v = values.to_vec();
    let last = v.len() - 1;
    let k = ((last as f64) * fraction).floor() as usize;
    *v.select_nth_unstable_by(k.min(last), f64::total_cmp).1
}

/// The flattened values of a tensor as f64 (through f32, the dtype the oracle sees).
fn to_f64(t: &Tensor) -> Result<Vec<f64>> {
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(v.into_iter().map(f64::from).collect())
}

/// Moves `x` through step `step` of the guided path with the gradient `grad` held fixed
/// (PAIR's inner `while` loop). Ends when the L1 distance to the input has reached its
/// target (1 − (step+1)/S)·L1tot.
fn advance_step(x: &mut [f64], grad: &[f64], input: &[f64], baseline: &[f64], step: usize, config: &GuidedIgConfig) {
    let alpha = (step + 1) as f64 / config.steps as f64;
    let lo = (alpha - config.max_dist).max(0.0);
    let hi = (alpha + config.max_dist).min(1.0);
    let x_lo: Vec<f64> = baseline.iter().zip(input).map(|(b, i)| b + (i - b) * lo).collect();
    let x_hi: Vec<f64> = baseline.iter().zip(input).map(|(b, i)| b + (i - b) * hi).collect();
    let target = l1_distance(input, baseline) * (1.0 - alpha);
    // |g|, with +∞ marking features that reached x_hi (they take part in the quantile but
    // are never selected).
    let mut rank: Vec<f64> = grad.iter().map(|g| g.abs()).collect();
    loop {
        // Lagging features catch up with the band. A feature with input == baseline counts
        // as being at `hi`, so it never lags (and, sitting at x_hi, is never selected).
        for i in 0..x.len() {
            let d = input[i] - baseline[i];
            let a = if d != 0.0 { (x[i] - baseline[i]) / d } else { hi };
            if a < lo {
                x[i] = x_lo[i];
            }
        }
        let current = l1_distance(x, input);
        if is_close(target, current) {
            return;
        }
        for (r, (xi, hi_i)) in rank.iter_mut().zip(x.iter().zip(&x_hi)) {
            if xi == hi_i {
                *r = f64::INFINITY;
            }
        }
        let threshold = quantile_lower(&rank, config.fraction);
        let selected: Vec<bool> = rank.iter().map(|&r| r <= threshold && r != f64::INFINITY).collect();
        let room: f64 = (0..x.len())
            .filter(|&i| selected[i])
            .map(|i| (x[i] - x_hi[i]).abs())
            .sum();
        if room == 0.0 {
            // Nothing is selected: every feature is at x_hi. PAIR would loop forever here
            // (γ = ∞ moves nothing); the step cannot go further, so it ends.
            return;
        }
        let gamma = (current - target) / room;
        for i in (0..x.len()).filter(|&i| selected[i]) {
            if gamma > 1.0 {
                x[i] = x_hi[i];
            } else if gamma > 0.0 {
                x[i] += (x_hi[i] - x[i]) * gamma;
            }
        }
        // γ ≤ 1: the selected features closed the gap exactly. (γ ≤ 0, where PAIR asserts,
        // would mean the target was already passed by more than the tolerance: stop there.)
        if gamma <= 1.0 {
            return;
        }
    }
}

/// Runs the guided path from `baseline` to `input` (same shape, no batch dimension) and
/// sends each step to `sink`, in path order.
///
/// Step s is the point x at the start of step s, with f_c(x) and the gradient used for the
/// whole step; `alpha` is the fraction of the L1 distance covered there (0 at the
/// baseline) and `contribution` is (x_end − x_start) ⊙ g, which is PAIR's per-round sum
/// Σ (x − x_old) ⊙ g telescoped, so the steps' [`RiemannSink`] sum is PAIR's attribution.
/// With [`Integration::Idgi`] one more step follows: the input, scored only (no gradient,
/// no contribution), so that IDGI sees both endpoints.
///
/// When the input equals the baseline nothing is sent and the model is not called (the
/// attribution is zero).
#[allow(clippy::too_many_arguments)]
pub fn guided_ig_path(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    config: &GuidedIgConfig,
    walk: impl Into<Walk>,
    sink: &mut dyn StepSink,
    monitor: &mut Monitor,
) -> Result<()> {
    let walk: Walk = walk.into();
    config.validate()?;
    if input.dims() != baseline.dims() {
        return Err(invalid(format!(
            "baseline shape {:?} differs from input shape {:?}",
            baseline.dims(),
            input.dims()
        )));
    }
    let x_in = to_f64(input)?;
    let x_base = to_f64(baseline)?;
    if x_in.iter().chain(&x_base).any(|v| !v.is_finite()) {
        return Err(invalid("Guided IG needs finite input and baseline values"));
    }
    let l1_total = l1_distance(&x_in, &x_base);
    if l1_total == 0.0 {
        return Ok(());
    }
    let n = x_in.len();
    let batch_shape: Vec<usize> = std::iter::once(1).chain(input.dims().iter().copied()).collect();
    let single_score = |scores: Vec<f32>| {
        scores
            .first()
            .copied()
            .ok_or_else(|| invalid("the oracle returned no score for a batch of 1"))
    };

    let mut x = x_base.clone();
    for s in 0..config.steps {
        let point: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let batch = Tensor::from_vec(point.clone(), batch_shape.as_slice(), input.device())?;
        let (scores, grads) = oracle.scores_and_gradients(&batch, target)?;
        let score = single_score(scores)?;
        let g32 = grads.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if g32.len() != n {
            return Err(invalid(format!(
                "the oracle returned {} gradient values, expected {n}",
                g32.len()
            )));
        }
        // A NaN or infinite gradient would stall the selection (PAIR hangs on NaN).
        if g32.iter().any(|g| !g.is_finite()) {
            return Err(invalid(format!("the gradient at Guided IG step {s} is not finite")));
        }
        let g: Vec<f64> = g32.iter().map(|&v| f64::from(v)).collect();
        let start = x.clone();
        advance_step(&mut x, &g, &x_in, &x_base, s, config);
        let contribution: Vec<f32> = x
            .iter()
            .zip(&start)
            .zip(&g)
            .map(|((end, start), g)| ((end - start) * g) as f32)
            .collect();
        sink.step(&PathStep {
            index: s,
            alpha: (1.0 - l1_distance(&start, &x_in) / l1_total).clamp(0.0, 1.0),
            point: StepPoint::Values(&point),
            score,
            gradient: Some(&g32),
            contribution: &contribution,
        })?;
        monitor.step(s + 1, config.steps)?;
    }

    if walk.idgi {
        let point: Vec<f32> = x_in.iter().map(|&v| v as f32).collect();
        let batch = Tensor::from_vec(point.clone(), batch_shape.as_slice(), input.device())?;
        let score = single_score(oracle.scores(&batch, target)?)?;
        sink.step(&PathStep {
            index: config.steps,
            alpha: 1.0,
            point: StepPoint::Values(&point),
            score,
            gradient: None,
            contribution: &[],
        })?;
    }
    Ok(())
}

/// The Guided IG attribution (the Riemann sum of the path's steps), with the input's shape.
pub fn guided_ig(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    config: &GuidedIgConfig,
    monitor: &mut Monitor,
) -> Result<Tensor> {
    let mut sink = RiemannSink::new(input.elem_count());
    guided_ig_path(
        oracle,
        input,
        baseline,
        target,
        config,
        Integration::Riemann,
        &mut sink,
        monitor,
    )?;
    Ok(Tensor::from_vec(sink.attribution(), input.dims(), input.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::path::{IdgiSink, ZeroGradientPolicy};
    use crate::attribution::testing::FnOracle;
    use crate::attribution::{integrated_gradients, IgConfig, IntegrationRule};
    use candle_core::Device;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    fn cfg(steps: usize, fraction: f64, max_dist: f64) -> GuidedIgConfig {
        GuidedIgConfig {
            steps,
            fraction,
            max_dist,
        }
    }

    fn run(oracle: &FnOracle, x: &[f32], b: &[f32], config: GuidedIgConfig) -> Vec<f32> {
        guided_ig(oracle, &t(x), &t(b), 0, &config, &mut Monitor::none())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    }

    fn assert_rel(a: &[f32], expected: &[f64], rtol: f64) {
        for (x, e) in a.iter().zip(expected) {
            assert!(
                (*x as f64 - e).abs() <= rtol * e.abs(),
                "{a:?} vs {expected:?} (rtol {rtol})"
            );
        }
    }

    fn sum(a: &[f32]) -> f64 {
        a.iter().map(|&v| v as f64).sum()
    }

    /// f = 2x₁ + x₂.
    fn linear() -> FnOracle {
        FnOracle {
            f: |x| 2.0 * x[0] + x[1],
            grad: |_| vec![2.0, 1.0],
        }
    }

    /// f = 2x₁² + x₂² (independent partials).
    fn quadratic_independent() -> FnOracle {
        FnOracle {
            f: |x| 2.0 * x[0] * x[0] + x[1] * x[1],
            grad: |x| vec![4.0 * x[0], 2.0 * x[1]],
        }
    }

    /// f = (2x₁ + x₂)² (dependent partials).
    fn quadratic_dependent() -> FnOracle {
        FnOracle {
            f: |x| (2.0 * x[0] + x[1]).powi(2),
            grad: |x| vec![4.0 * (2.0 * x[0] + x[1]), 2.0 * (2.0 * x[0] + x[1])],
        }
    }

    /// A non-linear function of 4 features, the last of which has input == baseline below.
    fn nonlinear() -> FnOracle {
        FnOracle {
            f: |x| x[0].sin() * x[1] + x[2].powi(3) + x[0] * x[2] + x[3] * x[3],
            grad: |x| {
                vec![
                    x[0].cos() * x[1] + x[2],
                    x[0].sin(),
                    3.0 * x[2] * x[2] + x[0],
                    2.0 * x[3],
                ]
            },
        }
    }
    const NL_X: [f32; 4] = [1.5, -2.0, 0.75, 0.25];
    const NL_B: [f32; 4] = [0.0, 0.5, -0.5, 0.25];

    /// PAIR testGuidedIGLinearWithBaseline: a linear f gives IG, whatever the settings.
    #[test]
    fn guided_linear_with_baseline_is_ig_for_any_settings() {
        for c in [
            cfg(10, 0.1, 0.5),
            GuidedIgConfig::default(),
            cfg(7, 1.0, 0.0),
            cfg(50, 0.5, 1.0),
            cfg(1, 0.25, 0.02),
        ] {
            let a = run(&linear(), &[10.0, 5.0], &[-1.0, -3.0], c);
            assert_rel(&a, &[22.0, 8.0], 1e-6);
        }
    }

    /// PAIR testLinearWithoutBaseline.
    #[test]
    fn guided_linear_zero_baseline() {
        for c in [cfg(10, 0.1, 0.5), GuidedIgConfig::default()] {
            let a = run(&linear(), &[10.0, 5.0], &[0.0, 0.0], c);
            assert_rel(&a, &[20.0, 5.0], 1e-6);
        }
    }

    /// PAIR testIndependentQuadratic and …InputIsLessThanBaseline.
    #[test]
    fn guided_independent_quadratic_is_ig() {
        let o = quadratic_independent();
        assert_rel(
            &run(&o, &[3.0, 3.0], &[0.0, 0.0], cfg(1000, 0.1, 0.4)),
            &[18.0, 9.0],
            0.01,
        );
        assert_rel(
            &run(&o, &[0.0, 0.0], &[3.0, 3.0], cfg(1000, 0.1, 0.4)),
            &[-18.0, -9.0],
            0.01,
        );
    }

    /// PAIR testDependentQuadraticIG: max_dist = 0 or fraction = 1 give IG's [54, 27].
    #[test]
    fn guided_dependent_quadratic_reduces_to_ig() {
        let o = quadratic_dependent();
        for c in [cfg(1000, 0.1, 0.0), cfg(1000, 1.0, 0.5)] {
            let a = run(&o, &[3.0, 3.0], &[0.0, 0.0], c);
            assert_rel(&a, &[54.0, 27.0], 0.01);
            assert!((sum(&a) - 81.0).abs() < 0.81, "{a:?}");
        }
    }

    /// PAIR testDependentQuadraticUnbound: the unbounded path gives [72, 9].
    #[test]
    fn guided_dependent_quadratic_unbounded() {
        let a = run(&quadratic_dependent(), &[3.0, 3.0], &[0.0, 0.0], cfg(1000, 0.1, 1.0));
        assert_rel(&a, &[72.0, 9.0], 0.01);
        assert!((sum(&a) - 81.0).abs() < 0.81, "{a:?}");
    }

    /// PAIR testDependentQuadratic: a bounded path lies between IG and unbounded Guided IG
    /// and stays complete.
    #[test]
    fn guided_dependent_quadratic_bounded() {
        let a = run(&quadratic_dependent(), &[3.0, 3.0], &[0.0, 0.0], cfg(1000, 0.1, 0.2));
        assert!((sum(&a) - 81.0).abs() < 0.1, "{a:?}");
        assert!(55.0 < a[0] && a[0] < 71.0 && 10.0 < a[1] && a[1] < 26.0, "{a:?}");
    }

    /// max_dist = 0 is left-Riemann IG on the straight line, also for a non-linear f and a
    /// feature whose input equals its baseline.
    #[test]
    fn guided_max_dist_zero_is_left_riemann_ig() {
        let o = nonlinear();
        let (x, b) = (t(&NL_X), t(&NL_B));
        for steps in [1usize, 5, 64] {
            let gig = guided_ig(&o, &x, &b, 0, &cfg(steps, 0.25, 0.0), &mut Monitor::none())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let ig_cfg = IgConfig {
                steps,
                rule: IntegrationRule::RiemannLeft,
                batch_size: 8,
            };
            let ig = integrated_gradients(&o, &x, &b, 0, &ig_cfg, &mut Monitor::none())
                .unwrap()
                .attribution
                .to_vec1::<f32>()
                .unwrap();
            for (g, i) in gig.iter().zip(&ig) {
                assert!(
                    (g - i).abs() <= 1e-5 * (1.0 + i.abs()),
                    "steps={steps}: {gig:?} vs {ig:?}"
                );
            }
            assert_eq!(gig[3], 0.0);
        }
    }

    /// Records what a sink is sent.
    #[derive(Default)]
    struct Recorder {
        indices: Vec<usize>,
        alphas: Vec<f64>,
        has_gradient: Vec<bool>,
        contribution_sum: f64,
        points: Vec<Vec<f32>>,
    }

    impl StepSink for Recorder {
        fn step(&mut self, step: &PathStep) -> Result<()> {
            self.indices.push(step.index);
            self.alphas.push(step.alpha);
            self.has_gradient.push(step.gradient.is_some());
            self.contribution_sum += step.contribution.iter().map(|&c| c as f64).sum::<f64>();
            match step.point {
                StepPoint::Values(p) => self.points.push(p.to_vec()),
                other => panic!("Guided IG sent {other:?}"),
            }
            Ok(())
        }
    }

    fn record(integration: Integration, steps: usize) -> Recorder {
        let mut rec = Recorder::default();
        let c = cfg(steps, 0.25, 0.1);
        guided_ig_path(
            &nonlinear(),
            &t(&NL_X),
            &t(&NL_B),
            0,
            &c,
            integration,
            &mut rec,
            &mut Monitor::none(),
        )
        .unwrap();
        rec
    }

    /// The sink gets `steps` steps (+1 score-only step at the input with IDGI), in path
    /// order, with α rising from 0.
    #[test]
    fn guided_path_step_count_and_order() {
        for steps in [1usize, 3, 20] {
            let r = record(Integration::Riemann, steps);
            assert_eq!(r.indices, (0..steps).collect::<Vec<_>>());
            assert!(r.has_gradient.iter().all(|&g| g));
            assert_eq!(r.alphas[0], 0.0);
            assert!(r.alphas.windows(2).all(|w| w[0] < w[1]), "{:?}", r.alphas);
            for (s, a) in r.alphas.iter().enumerate() {
                assert!((a - s as f64 / steps as f64).abs() < 1e-6, "{:?}", r.alphas);
            }
            let gig = run(&nonlinear(), &NL_X, &NL_B, cfg(steps, 0.25, 0.1));
            assert!((r.contribution_sum - sum(&gig)).abs() < 1e-5);

            let r = record(Integration::Idgi, steps);
            assert_eq!(r.indices, (0..=steps).collect::<Vec<_>>());
            assert_eq!(r.has_gradient.last(), Some(&false));
            assert!(r.has_gradient[..steps].iter().all(|&g| g));
            assert_eq!(r.alphas.last(), Some(&1.0));
        }
    }

    /// No feature leaves the band [α − max_dist, α + max_dist] around the straight line.
    /// f = (x₁ + x₂ + 5x₃)² moves x₁, x₂ ahead to the band's top, so x₃ falls behind and
    /// must be caught up to the band's bottom (two features could not show this: the
    /// laggard would sit exactly at the bottom).
    #[test]
    fn guided_path_stays_in_band() {
        let o = FnOracle {
            f: |x| (x[0] + x[1] + 5.0 * x[2]).powi(2),
            grad: |x| {
                let u = 2.0 * (x[0] + x[1] + 5.0 * x[2]);
                vec![u, u, 5.0 * u]
            },
        };
        let (steps, max_dist) = (20, 0.1);
        let mut rec = Recorder::default();
        let c = cfg(steps, 0.25, max_dist);
        let (x, b) = (t(&[1.0, 1.0, 1.0]), t(&[0.0, 0.0, 0.0]));
        guided_ig_path(&o, &x, &b, 0, &c, Integration::Riemann, &mut rec, &mut Monitor::none()).unwrap();
        let mut lagged = false;
        for (s, p) in rec.points.iter().enumerate() {
            let alpha = s as f64 / steps as f64;
            let (lo, hi) = ((alpha - max_dist).max(0.0), (alpha + max_dist).min(1.0));
            for &v in p {
                assert!(lo - 1e-5 <= v as f64 && v as f64 <= hi + 1e-5, "step {s}: {p:?}");
            }
            lagged |= (p[2] as f64 - lo).abs() < 1e-5 && lo > 0.0;
        }
        assert!(lagged, "x₃ never sat at the band's bottom: {:?}", rec.points);
    }

    /// IDGI on the guided path is complete: Σ A = f(x) − f(x′).
    #[test]
    fn guided_idgi_is_complete() {
        let o = nonlinear();
        let widen = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let expected = (o.f)(&widen(&NL_X)) - (o.f)(&widen(&NL_B));
        for c in [cfg(10, 0.25, 0.02), cfg(50, 0.1, 1.0)] {
            let mut sink = IdgiSink::new(4, ZeroGradientPolicy::default());
            guided_ig_path(
                &o,
                &t(&NL_X),
                &t(&NL_B),
                0,
                &c,
                Integration::Idgi,
                &mut sink,
                &mut Monitor::none(),
            )
            .unwrap();
            let total: f64 = sink.sum.iter().sum();
            assert!(
                (total - expected).abs() <= 1e-6 * expected.abs(),
                "{total} vs {expected}"
            );
            assert_eq!(sink.zero_gradient_steps, 0);
        }
    }

    /// Raising the cancel flag from the progress callback stops the path after that step.
    #[test]
    fn guided_cancellation_stops_with_cancelled() {
        let flag = AtomicBool::new(false);
        let mut calls = 0;
        let mut progress = |done: usize, _total: usize| {
            calls += 1;
            if done == 3 {
                flag.store(true, Ordering::Relaxed);
            }
        };
        let mut monitor = Monitor {
            on_progress: Some(&mut progress),
            cancel: Some(&flag),
        };
        let r = guided_ig(
            &nonlinear(),
            &t(&NL_X),
            &t(&NL_B),
            0,
            &cfg(20, 0.25, 0.02),
            &mut monitor,
        );
        assert!(matches!(r, Err(AttributionError::Cancelled)), "{r:?}");
        assert_eq!(calls, 3);
    }

    /// Input == baseline: zero attribution and the model is never called.
    #[test]
    fn guided_zero_distance_gives_zero_without_model_calls() {
        let o = FnOracle {
            f: |_| panic!("the model must not be scored"),
            grad: |_| panic!("the model must not be differentiated"),
        };
        let a = run(&o, &[1.0, -2.0, 3.0], &[1.0, -2.0, 3.0], GuidedIgConfig::default());
        assert_eq!(a, vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn guided_invalid_arguments_are_errors() {
        let o = linear();
        let (x, b) = (t(&[1.0, 2.0]), t(&[0.0, 0.0]));
        let bad = [
            cfg(0, 0.25, 0.02),
            cfg(10, 0.0, 0.02),
            cfg(10, 1.5, 0.02),
            cfg(10, f64::NAN, 0.02),
            cfg(10, 0.25, -0.1),
            cfg(10, 0.25, f64::INFINITY),
            cfg(10, 0.25, f64::NAN),
        ];
        for c in bad {
            let r = guided_ig(&o, &x, &b, 0, &c, &mut Monitor::none());
            assert!(matches!(r, Err(AttributionError::InvalidArgument(_))), "{c:?}");
        }
        let c = GuidedIgConfig::default();
        let r = guided_ig(&o, &x, &t(&[0.0, 0.0, 0.0]), 0, &c, &mut Monitor::none());
        assert!(matches!(r, Err(AttributionError::InvalidArgument(_))));
        let r = guided_ig(&o, &t(&[f32::NAN, 1.0]), &b, 0, &c, &mut Monitor::none());
        assert!(matches!(r, Err(AttributionError::InvalidArgument(_))));
    }

    /// numpy's 'lower' quantile: rank ⌊q (N − 1)⌋, with +∞ entries taking part.
    #[test]
    fn guided_quantile_lower_matches_numpy() {
        assert_eq!(quantile_lower(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.25), 2.0);
        assert_eq!(quantile_lower(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.49), 2.0);
        assert_eq!(quantile_lower(&[5.0, 1.0, 4.0, 2.0, 3.0], 1.0), 5.0);
        let inf = f64::INFINITY;
        assert_eq!(quantile_lower(&[inf, 1.0, inf, 2.0], 0.5), 2.0);
        assert_eq!(quantile_lower(&[inf, 1.0, inf, 2.0], 0.7), inf);
        assert_eq!(quantile_lower(&[7.0], 0.1), 7.0);
    }
}
