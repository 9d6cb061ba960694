//! Integrated Gradients on the straight path (Sundararajan et al. 2017), as Captum
//! computes it: A = (x − x′) ⊙ Σ_k w_k ∇f(x′ + α_k (x − x′)), with the convergence delta
//! δ = Σ A − (f(x) − f(x′)).

use candle_core::{DType, Tensor};

use super::path::{PathStep, StepPoint, StepSink, Walk};
use super::{AttributionError, GradientOracle, IntegrationRule, Monitor, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IgConfig {
    pub steps: usize,
    pub rule: IntegrationRule,
    /// Interpolation points per forward/backward pass.
    pub batch_size: usize,
}

impl Default for IgConfig {
    fn default() -> Self {
        Self {
            steps: 50,
            rule: IntegrationRule::RiemannRight,
            batch_size: 16,
        }
    }
}

impl IgConfig {
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(AttributionError::InvalidArgument("steps must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(AttributionError::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct IgResult {
    /// The attribution, with the input's shape.
    pub attribution: Tensor,
    pub score_input: f32,
    pub score_baseline: f32,
    /// Σ A, accumulated in f64.
    pub attribution_sum: f64,
    /// Σ A − (f(x) − f(x′)).
    pub convergence_delta: f64,
}

/// The straight line from `baseline` to `input`, evaluated and sent to `sink` step by step.
///
/// The points are the rule's nodes α_k, each with its contribution w_k ∇f(x′ + α_k Δ) ⊙ Δ
/// (Δ = x − x′), so a [`RiemannSink`](super::path::RiemannSink) sums to Captum's IG. A walk
/// for IDGI also has both ends: a gradient at α = 0 (no contribution) unless the rule has
/// that node, and the input's score at α = 1 unless it has that one; IDGI integrates over
/// the same points (with the left rule, α = j/n: the IDGI paper's grid). Without Riemann,
/// a node at α = 1 is scored only, since IDGI never uses the input's gradient.
#[allow(clippy::too_many_arguments)]
pub fn straight_path(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    config: &IgConfig,
    walk: impl Into<Walk>,
    sink: &mut dyn StepSink,
    monitor: &mut Monitor,
) -> Result<()> {
    let walk: Walk = walk.into();
    config.validate()?;
    check_same_shape(input, baseline)?;
    let (mut alphas, mut weights) = config.rule.nodes(config.steps);
    let mut score_input_only = false;
    if walk.idgi {
        if alphas.first().is_some_and(|&a| a > 0.0) {
            alphas.insert(0, 0.0);
            weights.insert(0, 0.0);
        }
        let ends_at_input = alphas.last().is_some_and(|&a| a >= 1.0);
        if ends_at_input && !walk.riemann {
            alphas.pop();
            weights.pop();
        }
        score_input_only = !ends_at_input || !walk.riemann;
    }
    let n = alphas.len();
    let delta = (input - baseline)?.flatten_all()?.to_vec1::<f32>()?;
    let len = delta.len();
    let mut contribution = vec![0f32; len];
    let mut done = 0;
    for (a_chunk, w_chunk) in alphas.chunks(config.batch_size).zip(weights.chunks(config.batch_size)) {
        monitor.check_cancel()?;
        let (scores, grads) = oracle.line_scores_and_gradients(baseline, input, a_chunk, target)?;
        let grads = grads.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for (k, (&alpha, &w)) in a_chunk.iter().zip(w_chunk).enumerate() {
            let g = &grads[k * len..(k + 1) * len];
            let contributes = walk.riemann && w != 0.0;
            if contributes {
                for ((c, &gi), &d) in contribution.iter_mut().zip(g).zip(&delta) {
                    *c = (w * gi as f64) as f32 * d;
                }
            }
            sink.step(&PathStep {
                index: done + k,
                alpha,
                point: StepPoint::Straight { alpha },
                score: scores[k],
                gradient: Some(g),
                contribution: if contributes { &contribution } else { &[] },
            })?;
        }
        done += a_chunk.len();
        monitor.step(done, n)?;
    }
    if score_input_only {
        let score = oracle.scores(&input.unsqueeze(0)?, target)?[0];
        sink.step(&PathStep {
            index: n,
            alpha: 1.0,
            point: StepPoint::Straight { alpha: 1.0 },
            score,
            gradient: None,
            contribution: &[],
        })?;
    }
    Ok(())
}

/// Integrated Gradients of `oracle`'s score for class `target`, from `baseline` to `input`
/// (both with the same shape, without a batch dimension).
///
/// The weighted gradients are accumulated in f64 and multiplied by Δ once at the end, as
/// Captum does (rather than summing the per-step contributions, which rounds Δ·w·g each
/// step). Only the sum is formed, batch by batch ([`GradientOracle::line_gradient_sum`]);
/// [`straight_path`] gives every step's gradient.
pub fn integrated_gradients(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    config: &IgConfig,
    monitor: &mut Monitor,
) -> Result<IgResult> {
    config.validate()?;
    check_same_shape(input, baseline)?;
    let (alphas, weights) = config.rule.nodes(config.steps);
    let mut acc = vec![0f64; input.elem_count()];
    let mut done = 0;
    for (a, w) in alphas.chunks(config.batch_size).zip(weights.chunks(config.batch_size)) {
        monitor.check_cancel()?;
        let sum = oracle.line_gradient_sum(baseline, input, a, w, target)?;
        acc.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
        done += a.len();
        monitor.step(done, config.steps)?;
    }
    let diff = (input - baseline)?.flatten_all()?.to_vec1::<f32>()?;
    let attribution: Vec<f32> = acc.iter().zip(&diff).map(|(g, d)| (g * *d as f64) as f32).collect();
    let attribution = Tensor::from_vec(attribution, input.dims(), input.device())?;
    path_result(oracle, input, baseline, target, attribution)
}

fn check_same_shape(input: &Tensor, baseline: &Tensor) -> Result<()> {
    if input.dims() != baseline.dims() {
        return Err(AttributionError::InvalidArgument(format!(
            "baseline shape {:?} differs from input shape {:?}",
            baseline.dims(),
            input.dims()
        )));
    }
    Ok(())
}

/// Scores the two ends of a path and packages an attribution with its convergence delta.
pub fn path_result(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    baseline: &Tensor,
    target: usize,
    attribution: Tensor,
) -> Result<IgResult> {
    let attribution_sum: f64 = attribution
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| v as f64)
        .sum();
    let ends = Tensor::stack(&[input, baseline], 0)?;
    let scores = oracle.scores(&ends, target)?;
    let (score_input, score_baseline) = (scores[0], scores[1]);
    Ok(IgResult {
        attribution,
        score_input,
        score_baseline,
        attribution_sum,
        convergence_delta: attribution_sum - (score_input as f64 - score_baseline as f64),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attribution::path::Integration;
    use candle_core::Device;

    /// An oracle for f(x) = Σ_i h_i(x_i) with known derivatives, for exact checks.
    pub struct SeparableOracle {
        pub f: fn(usize, f64) -> f64,
        pub df: fn(usize, f64) -> f64,
    }

    impl GradientOracle for SeparableOracle {
        fn scores(&self, points: &Tensor, _target: usize) -> Result<Vec<f32>> {
            let rows = points.flatten_from(1)?.to_vec2::<f32>()?;
            Ok(rows
                .iter()
                .map(|r| r.iter().enumerate().map(|(i, &x)| (self.f)(i, x as f64)).sum::<f64>() as f32)
                .collect())
        }
        fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
            let rows = points.flatten_from(1)?.to_vec2::<f32>()?;
            let g: Vec<f32> = rows
                .iter()
                .flat_map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(i, &x)| (self.df)(i, x as f64) as f32)
                        .collect::<Vec<_>>()
                })
                .collect();
            Ok((
                self.scores(points, target)?,
                Tensor::from_vec(g, points.dims(), points.device())?,
            ))
        }
        fn num_classes(&self) -> usize {
            1
        }
    }

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    const W: [f64; 4] = [0.5, -2.0, 3.0, 0.25];

    /// IG of f(x) = w·x equals (Σ_k w_k) · w ⊙ (x − x′): exactly w ⊙ (x − x′) for every
    /// rule whose weights sum to 1, and (n−1)/n of it for Captum's trapezoid (½ at n = 1).
    #[test]
    fn linear_model_gives_w_times_delta_for_every_rule() {
        let oracle = SeparableOracle {
            f: |i, x| W[i] * x,
            df: |i, _| W[i],
        };
        let x = t(&[1.0, 2.0, -1.0, 4.0]);
        let b = t(&[0.5, -1.0, 0.0, 2.0]);
        for rule in IntegrationRule::ALL {
            for steps in [1usize, 7, 32] {
                let cfg = IgConfig {
                    steps,
                    rule,
                    batch_size: 3,
                };
                let r = integrated_gradients(&oracle, &x, &b, 0, &cfg, &mut Monitor::none()).unwrap();
                let a = r.attribution.to_vec1::<f32>().unwrap();
                let scale = match (rule, steps) {
                    (IntegrationRule::RiemannTrapezoid, 1) => 0.5,
                    (IntegrationRule::RiemannTrapezoid, n) => (n as f64 - 1.0) / n as f64,
                    _ => 1.0,
                };
                let xs = [1.0, 2.0, -1.0, 4.0];
                let bs = [0.5, -1.0, 0.0, 2.0];
                for i in 0..4 {
                    let expected = scale * W[i] * (xs[i] - bs[i]);
                    assert!(
                        (a[i] as f64 - expected).abs() < 1e-5,
                        "{rule} n={steps} i={i}: {} vs {expected}",
                        a[i]
                    );
                }
            }
        }
    }

    /// algorithms.md §7 #1 (PAIR's test): F = 5x₀ + x₁² + sin x₂, x′ = (.5, 1, 1),
    /// x = (1, 2, 3): A = (2.5, 3.0, sin 3 − sin 1).
    #[test]
    fn separable_function_matches_closed_form() {
        let oracle = SeparableOracle {
            f: |i, x| match i {
                0 => 5.0 * x,
                1 => x * x,
                _ => x.sin(),
            },
            df: |i, x| match i {
                0 => 5.0,
                1 => 2.0 * x,
                _ => x.cos(),
            },
        };
        let x = t(&[1.0, 2.0, 3.0]);
        let b = t(&[0.5, 1.0, 1.0]);
        let cfg = IgConfig {
            steps: 1000,
            rule: IntegrationRule::RiemannMiddle,
            batch_size: 128,
        };
        let r = integrated_gradients(&oracle, &x, &b, 0, &cfg, &mut Monitor::none()).unwrap();
        let a = r.attribution.to_vec1::<f32>().unwrap();
        let expected = [2.5, 3.0, 3f64.sin() - 1f64.sin()];
        for i in 0..3 {
            assert!(
                (a[i] as f64 - expected[i]).abs() < 1e-4,
                "{i}: {} vs {}",
                a[i],
                expected[i]
            );
        }
        assert!(r.convergence_delta.abs() < 1e-4);
    }

    /// Completeness error shrinks as the number of steps grows (smooth integrand):
    /// left Riemann error is O(1/n), Gauss–Legendre is exact to float precision quickly.
    #[test]
    fn completeness_converges_with_steps() {
        let oracle = SeparableOracle {
            f: |i, x| (x * (i as f64 + 1.0)).sin() + x * x * x,
            df: |i, x| (i as f64 + 1.0) * (x * (i as f64 + 1.0)).cos() + 3.0 * x * x,
        };
        let x = t(&[0.9, -0.4, 1.3, 0.2]);
        let b = t(&[0.0, 0.0, 0.0, 0.0]);
        let delta = |rule, steps| {
            let cfg = IgConfig {
                steps,
                rule,
                batch_size: 64,
            };
            integrated_gradients(&oracle, &x, &b, 0, &cfg, &mut Monitor::none())
                .unwrap()
                .convergence_delta
                .abs()
        };
        let (d10, d100, d1000) = (
            delta(IntegrationRule::RiemannLeft, 10),
            delta(IntegrationRule::RiemannLeft, 100),
            delta(IntegrationRule::RiemannLeft, 1000),
        );
        assert!(d100 < d10 / 5.0 && d1000 < d100 / 5.0, "{d10} {d100} {d1000}");
        assert!(delta(IntegrationRule::GaussLegendre, 16) < 1e-5);
    }

    /// Summing the streamed contributions gives the same IG, and IDGI on the straight
    /// line is complete: Σ A = f(x) − f(x′) to float precision.
    #[test]
    fn straight_path_sinks_agree_with_ig_and_idgi_is_complete() {
        use crate::attribution::path::{IdgiSink, RiemannSink, ZeroGradientPolicy};
        let oracle = SeparableOracle {
            f: |i, x| (x * (i as f64 + 1.0)).sin() + x * x,
            df: |i, x| (i as f64 + 1.0) * (x * (i as f64 + 1.0)).cos() + 2.0 * x,
        };
        let x = t(&[0.9, -0.4, 1.3, 0.2]);
        let b = t(&[0.1, 0.3, -0.2, 0.0]);
        let cfg = IgConfig {
            steps: 20,
            rule: IntegrationRule::GaussLegendre,
            batch_size: 6,
        };
        let ig = integrated_gradients(&oracle, &x, &b, 0, &cfg, &mut Monitor::none()).unwrap();
        let mut riemann = RiemannSink::new(4);
        straight_path(
            &oracle,
            &x,
            &b,
            0,
            &cfg,
            Integration::Riemann,
            &mut riemann,
            &mut Monitor::none(),
        )
        .unwrap();
        for (p, q) in riemann
            .attribution()
            .iter()
            .zip(ig.attribution.to_vec1::<f32>().unwrap())
        {
            assert!((p - q).abs() < 1e-6, "{p} vs {q}");
        }
        let mut idgi = IdgiSink::new(4, ZeroGradientPolicy::default());
        straight_path(
            &oracle,
            &x,
            &b,
            0,
            &cfg,
            Integration::Idgi,
            &mut idgi,
            &mut Monitor::none(),
        )
        .unwrap();
        let total: f64 = idgi.sum.iter().sum();
        let gap = ig.score_input as f64 - ig.score_baseline as f64;
        assert!((total - gap).abs() < 1e-5 * gap.abs().max(1.0), "{total} vs {gap}");
    }

    /// A fixed two-layer ReLU MLP on 4 inputs: f(x) = Σ_j v_j relu(w_j·x + b_j).
    const MLP_W: [[f64; 4]; 6] = [
        [0.9, -0.4, 0.3, 0.7],
        [-0.6, 0.8, 0.5, -0.2],
        [0.4, 0.4, -0.9, 0.1],
        [-0.3, -0.7, 0.2, 0.6],
        [0.8, 0.1, 0.6, -0.5],
        [0.2, -0.9, -0.4, 0.3],
    ];
    const MLP_B: [f64; 6] = [0.1, -0.2, 0.05, 0.3, -0.1, 0.0];
    const MLP_V: [f64; 6] = [1.2, -0.8, 0.9, 0.5, -1.1, 0.7];

    fn mlp(x: &[f64]) -> f64 {
        (0..6)
            .map(|j| MLP_V[j] * (MLP_W[j].iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + MLP_B[j]).max(0.0))
            .sum()
    }

    fn mlp_grad(x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; 4];
        for j in 0..6 {
            if MLP_W[j].iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + MLP_B[j] > 0.0 {
                for (gi, w) in g.iter_mut().zip(MLP_W[j]) {
                    *gi += MLP_V[j] * w;
                }
            }
        }
        g
    }

    /// algorithms.md §7 row 4: completeness on a tiny ReLU MLP, Gauss–Legendre n = 64:
    /// |Σ A − Δf| / |Δf| < 1e-2 (the kinks make the integrand piecewise constant).
    #[test]
    fn completeness_on_a_relu_mlp() {
        use crate::attribution::testing::FnOracle;
        let oracle = FnOracle { f: mlp, grad: mlp_grad };
        let x = t(&[1.3, -0.7, 0.9, 2.1]);
        let b = t(&[-0.5, 0.6, -1.2, 0.0]);
        let cfg = IgConfig {
            steps: 64,
            rule: IntegrationRule::GaussLegendre,
            batch_size: 16,
        };
        let r = integrated_gradients(&oracle, &x, &b, 0, &cfg, &mut Monitor::none()).unwrap();
        let gap = r.score_input as f64 - r.score_baseline as f64;
        assert!(gap.abs() > 0.5, "the test needs a real change in f: {gap}");
        assert!(
            r.convergence_delta.abs() / gap.abs() < 1e-2,
            "relative completeness error {}",
            r.convergence_delta / gap
        );
    }

    /// algorithms.md §7 row 5: the same model with the normalisation inside (taking
    /// pixels) or outside (taking normalised values) gives the same IG (Δx scales by σ,
    /// the gradient by 1/σ), while vanilla gradients differ by exactly 1/σ per channel.
    #[test]
    fn ig_is_invariant_to_where_the_affine_normalisation_happens() {
        use crate::attribution::gradient::gradient;
        use crate::attribution::testing::FnOracle;
        // Two "channels" of two features each: μ = (0.4, 0.6), σ = (0.2, 0.5).
        fn normalise(p: &[f64]) -> Vec<f64> {
            p.iter()
                .enumerate()
                .map(|(i, v)| (v - [0.4, 0.6][i / 2]) / [0.2, 0.5][i / 2])
                .collect()
        }
        let outside = FnOracle { f: mlp, grad: mlp_grad };
        let inside = FnOracle {
            f: |p| mlp(&normalise(p)),
            grad: |p| {
                mlp_grad(&normalise(p))
                    .iter()
                    .enumerate()
                    .map(|(i, g)| g / [0.2, 0.5][i / 2])
                    .collect()
            },
        };
        let pix = [0.9f32, 0.1, 0.75, 0.3];
        let pix_base = [0.0f32, 0.0, 0.0, 0.0];
        let norm = |p: &[f32]| -> Vec<f32> {
            normalise(&p.iter().map(|&v| v as f64).collect::<Vec<_>>())
                .iter()
                .map(|&v| v as f32)
                .collect()
        };
        let cfg = IgConfig {
            steps: 200,
            rule: IntegrationRule::RiemannMiddle,
            batch_size: 50,
        };
        let a_in = integrated_gradients(&inside, &t(&pix), &t(&pix_base), 0, &cfg, &mut Monitor::none()).unwrap();
        let a_out = integrated_gradients(
            &outside,
            &t(&norm(&pix)),
            &t(&norm(&pix_base)),
            0,
            &cfg,
            &mut Monitor::none(),
        )
        .unwrap();
        let (p, q) = (
            a_in.attribution.to_vec1::<f32>().unwrap(),
            a_out.attribution.to_vec1::<f32>().unwrap(),
        );
        for (a, b) in p.iter().zip(&q) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "IG differs: {a} vs {b}");
        }
        let g_in = gradient(&inside, &t(&pix), 0).unwrap().1.to_vec1::<f32>().unwrap();
        let g_out = gradient(&outside, &t(&norm(&pix)), 0)
            .unwrap()
            .1
            .to_vec1::<f32>()
            .unwrap();
        for (i, (a, b)) in g_in.iter().zip(&g_out).enumerate() {
            let sigma = [0.2f32, 0.5][i / 2];
            assert!(
                (a - b / sigma).abs() <= 1e-5 * (1.0 + a.abs()),
                "gradient {i}: {a} vs {b}/{sigma}"
            );
        }
    }

    #[test]
    fn baseline_equal_to_input_gives_zero() {
        let oracle = SeparableOracle {
            f: |_, x| x * x,
            df: |_, x| 2.0 * x,
        };
        let x = t(&[1.0, -3.0]);
        let r = integrated_gradients(&oracle, &x, &x, 0, &IgConfig::default(), &mut Monitor::none()).unwrap();
        assert_eq!(r.attribution.to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
    }

    #[test]
    fn zero_steps_is_an_error_not_a_panic() {
        let oracle = SeparableOracle {
            f: |_, x| x,
            df: |_, _| 1.0,
        };
        let x = t(&[1.0]);
        let cfg = IgConfig {
            steps: 0,
            ..IgConfig::default()
        };
        assert!(integrated_gradients(&oracle, &x, &x, 0, &cfg, &mut Monitor::none()).is_err());
    }
}
