//! Blur IG (Xu et al., CVPR 2020), as PAIR-code/saliency `blur_ig.py` computes it
//! (algorithms.md §2.6): the path runs from the input blurred with σ_max (the baseline) to
//! the input, through Gaussian blurs G(x, σ) with zero padding, and
//! A = −Σ_{i<S} Δσ_i · ((G(x, σ_i + h) − G(x, σ_i)) / h) ⊙ ∇f(G(x, σ_i)),
//! σ_i = i·σ_max/S, Δσ_i = σ_{i+1} − σ_i, h = `grad_step`. The minus sign is there because σ
//! grows from the input to the baseline; Σ A ≈ f(x) − f(G(x, σ_max)).

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use super::blur::{gaussian_blur_zero_gemm, gaussian_blur_zero_with_derivative};
use super::path::{Integration, PathStep, RiemannSink, StepPoint, StepSink, Walk};
use super::{AttributionError, GradientOracle, Monitor, Result};
use crate::model::preprocess::Normalization;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlurIgConfig {
    /// σ of the baseline, in pixels.
    pub max_sigma: f64,
    /// Number of path segments S (gradient evaluations).
    pub steps: usize,
    /// h of the forward difference that estimates ∂G/∂σ.
    pub grad_step: f64,
    /// PAIR's `sqrt` option: σ_i = sqrt(i·σ_max/S), so the baseline is blurred with
    /// sqrt(σ_max) (≈ 7.07 for 50), not σ_max. Each point is weighted by its own Δσ_i;
    /// PAIR weights a whole batch by the Δσ of its last point, which is wrong for this
    /// non-uniform spacing when its batch_size > 1.
    pub sqrt: bool,
    /// Path points per forward/backward pass.
    pub batch_size: usize,
}

impl Default for BlurIgConfig {
    /// PAIR's defaults, except batch_size (PAIR: 1).
    fn default() -> Self {
        Self {
            max_sigma: 50.0,
            steps: 100,
            grad_step: 0.01,
            sqrt: false,
            batch_size: 16,
        }
    }
}

impl BlurIgConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(AttributionError::InvalidArgument(m.into()));
        if !(self.max_sigma.is_finite() && self.max_sigma > 0.0) {
            return bad("max sigma must be a positive number");
        }
        if !(self.grad_step.is_finite() && self.grad_step > 0.0) {
            return bad("gradient step must be a positive number");
        }
        if self.steps == 0 {
            return bad("steps must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        Ok(())
    }

    /// σ_0 = 0, …, σ_S.
    pub fn sigmas(&self) -> Vec<f64> {
        (0..=self.steps)
            .map(|i| {
                let s = i as f64 * self.max_sigma / self.steps as f64;
                if self.sqrt {
                    s.sqrt()
                } else {
                    s
                }
            })
            .collect()
    }
}

/// Which values the blur acts on.
#[derive(Debug, Clone, Copy)]
pub enum BlurSpace<'a> {
    /// The model's input values themselves (the analytic tests; PAIR with a model that
    /// takes raw pixels).
    Raw,
    /// The input is normalised with this; blur the pixels behind it: denormalise, blur
    /// (zero = black padding), normalise. PAIR blurs raw pixels before preprocessing;
    /// blurring normalised values would pad with the mean colour instead.
    Pixels(&'a Normalization),
}

/// Input geometry and the image the blur acts on.
struct Plan<'a> {
    channels: usize,
    h: usize,
    w: usize,
    /// The input in blur space.
    source: Vec<f32>,
    /// The input as given (exactly the σ = 0 point).
    input: Vec<f32>,
    space: BlurSpace<'a>,
}

impl Plan<'_> {
    /// G(x, σ) in model space and, if `with_derivative`, ∂G/∂σ estimated as PAIR does
    /// (forward difference with step h), also in model space.
    fn point(&self, sigma: f64, h: f64, with_derivative: bool) -> (Vec<f32>, Vec<f32>) {
        let (c, hh, w) = (self.channels, self.h, self.w);
        let (mut g, mut d) = if with_derivative {
            gaussian_blur_zero_with_derivative(&self.source, c, hh, w, sigma, h)
        } else {
            (gaussian_blur_zero_gemm(&self.source, c, hh, w, sigma), Vec::new())
        };
        if let BlurSpace::Pixels(norm) = self.space {
            norm.normalize_pixels(&mut g, hh * w);
            // normalise(p) = (p − μ)/s is affine, so differences scale by 1/s.
            for (ch, chunk) in d.chunks_mut(hh * w).enumerate() {
                chunk.iter_mut().for_each(|v| *v /= norm.std[ch]);
            }
        }
        if sigma == 0.0 {
            // G(x, 0) = x: skip the denormalise/normalise round trip's rounding.
            g.copy_from_slice(&self.input);
        }
        (g, d)
    }
}

/// The Blur IG path, evaluated and sent to `sink` step by step in path order
/// (baseline → input, i.e. decreasing σ), `batch_size` gradient evaluations per oracle call.
///
/// - Riemann: PAIR's points σ_{S−1}, …, σ_0 (the input included, the baseline not); each
///   step's contribution is −Δσ_i · ∂G/∂σ(σ_i) ⊙ g(G(x, σ_i)), so a [`RiemannSink`] sums
///   to PAIR's Blur IG.
/// - IDGI: gradients at σ_S = σ_max, …, σ_1 and the input's score, so an IDGI sink gets
///   Σ A = f(x) − f(G(x, σ_max)). Without Riemann, contributions are empty (skipping
///   ∂G/∂σ halves the blur work) and the input is scored only.
/// - Both: gradients at σ_S, …, σ_0; σ_S contributes nothing to the Riemann sum.
///
/// `input` is [C, H, W] without a batch dimension. `alpha` is 1 − σ/σ_S (σ_S = sqrt(σ_max)
/// with `sqrt`), so it runs over [0, 1] either way.
/// A pixel-space blur undoes the model's normalisation: the input must have the channels
/// it normalises (3, or 1 for a grey model).
fn check_channels(space: BlurSpace, channels: usize) -> Result<()> {
    match space {
        BlurSpace::Pixels(norm) if norm.channels.count() != channels => {
            Err(AttributionError::InvalidArgument(format!(
                "pixel-space blur of a {}-channel normalisation, the input has {channels} channels",
                norm.channels.count()
            )))
        }
        _ => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn blur_ig_path(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    space: BlurSpace,
    target: usize,
    config: &BlurIgConfig,
    walk: impl Into<Walk>,
    sink: &mut dyn StepSink,
    monitor: &mut Monitor,
) -> Result<()> {
    let walk: Walk = walk.into();
    config.validate()?;
    let &[channels, h, w] = input.dims() else {
        return Err(AttributionError::InvalidArgument(format!(
            "Blur IG needs a [C, H, W] input, got shape {:?}",
            input.dims()
        )));
    };
    check_channels(space, channels)?;
    let values = input.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut source = values.clone();
    if let BlurSpace::Pixels(norm) = space {
        norm.denormalize(&mut source, h * w);
    }
    let plan = Plan {
        channels,
        h,
        w,
        source,
        input: values,
        space,
    };
    let len = plan.input.len();
    let sigmas = config.sigmas();
    let s = config.steps;
    let sigma_end = sigmas[s];
    let riemann = walk.riemann;
    // Indices into `sigmas` of the gradient points, in path order.
    let first = if riemann { 0 } else { 1 };
    let last = if walk.idgi { s } else { s - 1 };
    let order: Vec<usize> = (first..=last).rev().collect();
    let total = order.len();
    let mut contribution = vec![0f32; if riemann { len } else { 0 }];
    let mut done = 0;
    for chunk in order.chunks(config.batch_size) {
        monitor.check_cancel()?;
        let points: Vec<(Vec<f32>, Vec<f32>)> = chunk
            .par_iter()
            .map(|&i| plan.point(sigmas[i], config.grad_step, riemann && i < s))
            .collect();
        let flat: Vec<f32> = points.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        let batch = Tensor::from_vec(flat, (chunk.len(), channels, h, w), input.device())?.to_dtype(input.dtype())?;
        let (scores, grads) = oracle.scores_and_gradients(&batch, target)?;
        let grads = grads.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        if grads.len() != chunk.len() * len || scores.len() != chunk.len() {
            return Err(AttributionError::InvalidArgument(format!(
                "the oracle returned {} scores and {} gradient values for {} points of {len}",
                scores.len(),
                grads.len(),
                chunk.len()
            )));
        }
        for (k, (&i, (_, derivative))) in chunk.iter().zip(&points).enumerate() {
            let g = &grads[k * len..(k + 1) * len];
            let contributes = riemann && i < s;
            if contributes {
                let weight = -(sigmas[i + 1] - sigmas[i]);
                for ((c, &gi), &di) in contribution.iter_mut().zip(g).zip(derivative) {
                    *c = (weight * di as f64 * gi as f64) as f32;
                }
            }
            sink.step(&PathStep {
                index: done + k,
                alpha: 1.0 - sigmas[i] / sigma_end,
                point: StepPoint::Blurred { sigma: sigmas[i] },
                score: scores[k],
                gradient: Some(g),
                contribution: if contributes { &contribution } else { &[] },
            })?;
        }
        done += chunk.len();
        monitor.step(done, total)?;
    }
    if !riemann {
        let score = oracle.scores(&input.unsqueeze(0)?, target)?[0];
        sink.step(&PathStep {
            index: total,
            alpha: 1.0,
            point: StepPoint::Blurred { sigma: 0.0 },
            score,
            gradient: None,
            contribution: &[],
        })?;
    }
    Ok(())
}

/// The blur path for the tolerance mode: t ∈ [0, 1], σ(t) = σ_max (1 − t), x(t) =
/// G(x, σ(t)) and x′(t) = −σ_max ∂G/∂σ (PAIR's forward difference with step `grad_step`).
pub struct BlurGeometry<'a> {
    oracle: &'a dyn GradientOracle,
    plan: Plan<'a>,
    target: usize,
    max_sigma: f64,
    grad_step: f64,
    device: candle_core::Device,
    dtype: DType,
}

impl<'a> BlurGeometry<'a> {
    pub fn new(
        oracle: &'a dyn GradientOracle,
        input: &Tensor,
        space: BlurSpace<'a>,
        target: usize,
        config: &BlurIgConfig,
    ) -> Result<Self> {
        config.validate()?;
        let &[channels, h, w] = input.dims() else {
            return Err(AttributionError::InvalidArgument(format!(
                "Blur IG needs a [C, H, W] input, got shape {:?}",
                input.dims()
            )));
        };
        check_channels(space, channels)?;
        let values = input.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut source = values.clone();
        if let BlurSpace::Pixels(norm) = space {
            norm.denormalize(&mut source, h * w);
        }
        Ok(Self {
            oracle,
            plan: Plan {
                channels,
                h,
                w,
                source,
                input: values,
                space,
            },
            target,
            max_sigma: config.max_sigma,
            grad_step: config.grad_step,
            device: input.device().clone(),
            dtype: input.dtype(),
        })
    }

    fn sigma(&self, t: f64) -> f64 {
        (self.max_sigma * (1.0 - t)).max(0.0)
    }

    fn batch(&self, points: &[(Vec<f32>, Vec<f32>)]) -> Result<Tensor> {
        let p = &self.plan;
        let flat: Vec<f32> = points.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        Ok(Tensor::from_vec(flat, (points.len(), p.channels, p.h, p.w), &self.device)?.to_dtype(self.dtype)?)
    }
}

impl super::adaptive::PathGeometry for BlurGeometry<'_> {
    fn values_per_point(&self) -> usize {
        self.plan.input.len()
    }

    fn scores(&self, ts: &[f64]) -> Result<Vec<f32>> {
        let (plan, grad_step, max_sigma) = (&self.plan, self.grad_step, self.max_sigma);
        let sigma = |t: f64| (max_sigma * (1.0 - t)).max(0.0);
        let points: Vec<(Vec<f32>, Vec<f32>)> =
            ts.par_iter().map(|&t| plan.point(sigma(t), grad_step, false)).collect();
        self.oracle.scores(&self.batch(&points)?, self.target)
    }

    fn gradients(&self, ts: &[f64]) -> Result<super::adaptive::Evaluated> {
        let (plan, grad_step, max_sigma) = (&self.plan, self.grad_step, self.max_sigma);
        let sigma = |t: f64| (max_sigma * (1.0 - t)).max(0.0);
        let points: Vec<(Vec<f32>, Vec<f32>)> = ts.par_iter().map(|&t| plan.point(sigma(t), grad_step, true)).collect();
        let (scores, grads) = self.oracle.scores_and_gradients(&self.batch(&points)?, self.target)?;
        let velocities = points
            .iter()
            .flat_map(|(_, d)| d.iter().map(|&v| (-self.max_sigma * v as f64) as f32))
            .collect();
        Ok(super::adaptive::Evaluated {
            scores,
            gradients: grads.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            velocities: Some(velocities),
        })
    }

    fn constant_velocity(&self) -> Option<&[f32]> {
        None
    }

    fn step_point(&self, t: f64) -> StepPoint<'static> {
        StepPoint::Blurred { sigma: self.sigma(t) }
    }
}

/// PAIR's Blur IG attribution (the Riemann sum of [`blur_ig_path`]), with the input's shape.
pub fn blur_ig(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    space: BlurSpace,
    target: usize,
    config: &BlurIgConfig,
    monitor: &mut Monitor,
) -> Result<Tensor> {
    let mut sink = RiemannSink::new(input.elem_count());
    blur_ig_path(
        oracle,
        input,
        space,
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
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};

    use candle_core::Device;

    use super::*;
    use crate::attribution::blur::{gaussian_blur, Boundary};
    use crate::attribution::path::{IdgiSink, ZeroGradientPolicy};
    use crate::attribution::testing::FnOracle;

    use crate::attribution::testing::lcg_uniform as random;

    fn tensor(v: &[f32], c: usize, h: usize, w: usize) -> Tensor {
        Tensor::from_slice(v, (c, h, w), &Device::Cpu).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn sines() -> FnOracle {
        FnOracle {
            f: |x| x.iter().map(|v| v.sin()).sum(),
            grad: |x| x.iter().map(|v| v.cos()).collect(),
        }
    }

    fn config(max_sigma: f64, steps: usize) -> BlurIgConfig {
        BlurIgConfig {
            max_sigma,
            steps,
            ..BlurIgConfig::default()
        }
    }

    /// PAIR blur_ig_test.py (algorithms.md §7 #11): f = Σ sin, so each pixel's attribution
    /// is sin(x) − sin(G(x, 10)); the blurred baseline gives every pixel a non-zero value.
    #[test]
    fn pair_sine_test() {
        let mut x = vec![0f32; 25];
        x[6] = 0.7;
        x[12] = 1.0;
        let a = blur_ig(
            &sines(),
            &tensor(&x, 1, 5, 5),
            BlurSpace::Raw,
            0,
            &config(10.0, 4000),
            &mut Monitor::none(),
        );
        let a = flat(&a.unwrap());
        let baseline = gaussian_blur(&x, 1, 5, 5, 10.0, Boundary::Zero);
        for i in 0..25 {
            let expected = (x[i] as f64).sin() - (baseline[i] as f64).sin();
            assert!(
                (a[i] as f64 - expected).abs() < 1e-2,
                "pixel {i}: {} vs {expected}",
                a[i]
            );
            assert!(a[i] != 0.0, "pixel {i} has zero attribution");
        }
        assert!(
            (a[6] - 0.641).abs() < 1e-2 && (a[12] - 0.838).abs() < 1e-2,
            "{} {}",
            a[6],
            a[12]
        );
    }

    /// Zero padding means only an image that is zero *in blur space* is left unchanged by
    /// every blur, so that is the constant image whose attribution is zero: black pixels.
    /// In pixel space black is the normalised constant −μ/s, which a Raw-space blur would
    /// darken towards 0 at the borders and so attribute.
    #[test]
    fn black_image_gets_zero_attribution() {
        let cfg = config(5.0, 20);
        let zero = tensor(&[0.0; 3 * 6 * 7], 3, 6, 7);
        let a = flat(&blur_ig(&sines(), &zero, BlurSpace::Raw, 0, &cfg, &mut Monitor::none()).unwrap());
        assert!(a.iter().all(|&v| v == 0.0), "{a:?}");

        let norm = Normalization::IMAGENET;
        let mut black = vec![0f32; 3 * 6 * 7];
        norm.normalize_pixels(&mut black, 42);
        let black = tensor(&black, 3, 6, 7);
        let a = flat(
            &blur_ig(
                &sines(),
                &black,
                BlurSpace::Pixels(&norm),
                0,
                &cfg,
                &mut Monitor::none(),
            )
            .unwrap(),
        );
        assert!(a.iter().all(|&v| v.abs() < 1e-6), "{a:?}");
        let a = flat(&blur_ig(&sines(), &black, BlurSpace::Raw, 0, &cfg, &mut Monitor::none()).unwrap());
        assert!(
            a.iter().any(|&v| v.abs() > 0.1),
            "a Raw blur of −μ/s should move it: {a:?}"
        );
    }

    /// A smooth non-separable f: Σ_j (1 + j/n) sin x_j + 2 (mean x)².
    fn smooth() -> FnOracle {
        FnOracle {
            f: |x| {
                let n = x.len() as f64;
                let m = x.iter().sum::<f64>() / n;
                x.iter()
                    .enumerate()
                    .map(|(j, v)| (1.0 + j as f64 / n) * v.sin())
                    .sum::<f64>()
                    + 2.0 * m * m
            },
            grad: |x| {
                let n = x.len() as f64;
                let m = x.iter().sum::<f64>() / n;
                x.iter()
                    .enumerate()
                    .map(|(j, v)| (1.0 + j as f64 / n) * v.cos() + 4.0 * m / n)
                    .collect()
            },
        }
    }

    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    /// Σ A ≈ f(x) − f(G(x, σ_max)) with many steps (the Riemann sum converges).
    #[test]
    fn riemann_sum_is_complete_with_many_steps() {
        let x = random(2 * 6 * 7, 7);
        let oracle = smooth();
        let a = blur_ig(
            &oracle,
            &tensor(&x, 2, 6, 7),
            BlurSpace::Raw,
            0,
            &config(3.0, 1000),
            &mut Monitor::none(),
        );
        let total: f64 = flat(&a.unwrap()).iter().map(|&v| v as f64).sum();
        let baseline = gaussian_blur(&x, 2, 6, 7, 3.0, Boundary::Zero);
        let expected = (oracle.f)(&f64s(&x)) - (oracle.f)(&f64s(&baseline));
        assert!(expected.abs() > 1.0, "the test needs a real score change: {expected}");
        assert!(
            (total - expected).abs() < 1e-2 * expected.abs(),
            "{total} vs {expected}"
        );
    }

    /// On the IDGI grid (σ_max → 0, input scored last) Σ A = f(x) − f(G(x, σ_max)) exactly.
    #[test]
    fn idgi_on_the_blur_path_is_exactly_complete() {
        let x = random(2 * 6 * 7, 11);
        let oracle = FnOracle {
            f: |x| x.iter().map(|v| v * v).sum(),
            grad: |x| x.iter().map(|v| 2.0 * v).collect(),
        };
        let mut sink = IdgiSink::new(x.len(), ZeroGradientPolicy::default());
        let cfg = config(3.0, 20);
        let input = tensor(&x, 2, 6, 7);
        blur_ig_path(
            &oracle,
            &input,
            BlurSpace::Raw,
            0,
            &cfg,
            Integration::Idgi,
            &mut sink,
            &mut Monitor::none(),
        )
        .unwrap();
        let total: f64 = sink.sum.iter().sum();
        let baseline = gaussian_blur(&x, 2, 6, 7, 3.0, Boundary::Zero);
        let expected = (oracle.f)(&f64s(&x)) - (oracle.f)(&f64s(&baseline));
        assert!(expected > 1.0, "{expected}");
        assert!(
            (total - expected).abs() < 1e-6 * expected.abs(),
            "{total} vs {expected}"
        );
        assert_eq!(sink.zero_gradient_steps, 0);
    }

    struct Recorder(Vec<(usize, f64, f64, bool, usize)>);

    impl StepSink for Recorder {
        fn step(&mut self, s: &PathStep) -> Result<()> {
            let StepPoint::Blurred { sigma } = s.point else {
                panic!("not a blur point")
            };
            self.0
                .push((s.index, s.alpha, sigma, s.gradient.is_some(), s.contribution.len()));
            Ok(())
        }
    }

    /// Counts oracle calls and the points they carry.
    struct Counting {
        inner: FnOracle,
        gradient_calls: Cell<usize>,
        score_calls: Cell<usize>,
    }

    impl GradientOracle for Counting {
        fn scores(&self, points: &Tensor, target: usize) -> Result<Vec<f32>> {
            self.score_calls.set(self.score_calls.get() + 1);
            self.inner.scores(points, target)
        }
        fn scores_and_gradients(&self, points: &Tensor, target: usize) -> Result<(Vec<f32>, Tensor)> {
            self.gradient_calls.set(self.gradient_calls.get() + 1);
            self.inner.scores_and_gradients(points, target)
        }
        fn num_classes(&self) -> usize {
            1
        }
    }

    fn run(integration: Integration, progress: &mut Vec<(usize, usize)>) -> (Recorder, usize, usize) {
        let oracle = Counting {
            inner: sines(),
            gradient_calls: Cell::new(0),
            score_calls: Cell::new(0),
        };
        let cfg = BlurIgConfig {
            batch_size: 4,
            ..config(5.0, 10)
        };
        let mut on_progress = |d, t| progress.push((d, t));
        let mut monitor = Monitor {
            on_progress: Some(&mut on_progress),
            cancel: None,
        };
        let mut rec = Recorder(Vec::new());
        let x = tensor(&random(12, 3), 1, 3, 4);
        blur_ig_path(
            &oracle,
            &x,
            BlurSpace::Raw,
            0,
            &cfg,
            integration,
            &mut rec,
            &mut monitor,
        )
        .unwrap();
        (rec, oracle.gradient_calls.get(), oracle.score_calls.get())
    }

    /// Steps arrive baseline → input (σ decreasing), in batches, with progress per batch.
    #[test]
    fn steps_are_delivered_in_path_order_and_batched() {
        let mut progress = Vec::new();
        let (rec, grad_calls, score_calls) = run(Integration::Riemann, &mut progress);
        assert_eq!((grad_calls, score_calls), (3, 0));
        assert_eq!(progress, vec![(4, 10), (8, 10), (10, 10)]);
        assert_eq!(rec.0.len(), 10);
        for (k, &(index, alpha, sigma, has_grad, contribution)) in rec.0.iter().enumerate() {
            let expected_sigma = (9 - k) as f64 * 0.5; // σ_9 … σ_0
            assert_eq!(index, k);
            assert!((sigma - expected_sigma).abs() < 1e-12, "{k}: {sigma}");
            assert!((alpha - (1.0 - expected_sigma / 5.0)).abs() < 1e-12);
            assert!(has_grad && contribution == 12);
        }

        let mut progress = Vec::new();
        let (rec, grad_calls, score_calls) = run(Integration::Idgi, &mut progress);
        assert_eq!((grad_calls, score_calls), (3, 1));
        assert_eq!(progress, vec![(4, 10), (8, 10), (10, 10)]);
        assert_eq!(rec.0.len(), 11);
        for (k, &(index, alpha, sigma, has_grad, contribution)) in rec.0.iter().enumerate() {
            let expected_sigma = (10 - k) as f64 * 0.5; // σ_10 = σ_max … σ_0 = 0
            assert_eq!(index, k);
            assert!((sigma - expected_sigma).abs() < 1e-12 && (alpha - k as f64 / 10.0).abs() < 1e-12);
            assert_eq!((has_grad, contribution), (k < 10, 0));
        }
    }

    /// A cancel raised during progress reporting stops the path after that batch.
    #[test]
    fn cancellation_stops_between_batches() {
        let cancel = AtomicBool::new(false);
        let mut on_progress = |_, _| cancel.store(true, Ordering::Relaxed);
        let mut monitor = Monitor {
            on_progress: Some(&mut on_progress),
            cancel: Some(&cancel),
        };
        let cfg = BlurIgConfig {
            batch_size: 3,
            ..config(2.0, 10)
        };
        let mut rec = Recorder(Vec::new());
        let x = tensor(&random(12, 5), 1, 3, 4);
        let r = blur_ig_path(
            &sines(),
            &x,
            BlurSpace::Raw,
            0,
            &cfg,
            Integration::Riemann,
            &mut rec,
            &mut monitor,
        );
        assert!(matches!(r, Err(AttributionError::Cancelled)), "{r:?}");
        assert_eq!(rec.0.len(), 3);
    }

    /// With `sqrt` the baseline is G(x, sqrt(σ_max)), and each point carries its own Δσ:
    /// the result does not depend on the batch size (PAIR's batching would make it).
    /// This schedule converges slowly (its steps are coarse around σ ≈ 0.3, where the
    /// kernel's first neighbours switch on): ~2e-3 per unit weight at S = 2000.
    #[test]
    fn sqrt_schedule_weights_each_point_by_its_own_delta_sigma() {
        let cfg = |batch_size| BlurIgConfig {
            sqrt: true,
            batch_size,
            ..config(9.0, 2000)
        };
        assert_eq!(*cfg(1).sigmas().last().unwrap(), 3.0);
        let linear = FnOracle {
            f: |x| x.iter().enumerate().map(|(j, v)| (1.0 + (j % 5) as f64) * v).sum(),
            grad: |x| (0..x.len()).map(|j| 1.0 + (j % 5) as f64).collect(),
        };
        let x = random(2 * 5 * 6, 9);
        let input = tensor(&x, 2, 5, 6);
        let a1 = flat(&blur_ig(&linear, &input, BlurSpace::Raw, 0, &cfg(1), &mut Monitor::none()).unwrap());
        let a7 = flat(&blur_ig(&linear, &input, BlurSpace::Raw, 0, &cfg(7), &mut Monitor::none()).unwrap());
        assert_eq!(a1, a7);
        let baseline = gaussian_blur(&x, 2, 5, 6, 3.0, Boundary::Zero);
        for j in 0..x.len() {
            let expected = (1.0 + (j % 5) as f64) * (x[j] - baseline[j]) as f64;
            let tolerance = 5e-3 * (1.0 + (j % 5) as f64);
            assert!(
                (a1[j] as f64 - expected).abs() < tolerance,
                "{j}: {} vs {expected}",
                a1[j]
            );
        }
    }

    const HW: usize = 4 * 5;

    /// f(z) = Σ sin z on normalised values, as a function of [0, 1] pixels.
    fn sines_of_normalised_pixels() -> FnOracle {
        fn z(j: usize, p: f64) -> (f64, f64) {
            let n = Normalization::IMAGENET;
            let c = j / HW;
            let s = n.std[c] as f64;
            ((p - n.mean[c] as f64) / s, s)
        }
        FnOracle {
            f: |p| p.iter().enumerate().map(|(j, &v)| z(j, v).0.sin()).sum(),
            grad: |p| {
                p.iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        let (z, s) = z(j, v);
                        z.cos() / s
                    })
                    .collect()
            },
        }
    }

    /// Blurring in pixel space a normalised input is Blur IG of the pixels with the
    /// normalisation moved into the model (the attribution is invariant to the affine map).
    #[test]
    fn pixel_space_matches_raw_blur_of_pixels_with_normalisation_in_the_model() {
        let norm = Normalization::IMAGENET;
        let pixels = random(3 * HW, 13);
        let mut normalised = pixels.clone();
        norm.normalize_pixels(&mut normalised, HW);
        let cfg = config(4.0, 50);
        let a_pix = blur_ig(
            &sines(),
            &tensor(&normalised, 3, 4, 5),
            BlurSpace::Pixels(&norm),
            0,
            &cfg,
            &mut Monitor::none(),
        );
        let raw = sines_of_normalised_pixels();
        let a_raw = blur_ig(
            &raw,
            &tensor(&pixels, 3, 4, 5),
            BlurSpace::Raw,
            0,
            &cfg,
            &mut Monitor::none(),
        );
        let (a_pix, a_raw) = (flat(&a_pix.unwrap()), flat(&a_raw.unwrap()));
        for j in 0..a_pix.len() {
            assert!((a_pix[j] - a_raw[j]).abs() < 1e-4, "{j}: {} vs {}", a_pix[j], a_raw[j]);
        }
        assert!(a_raw.iter().map(|v| v.abs()).sum::<f32>() > 1.0);
    }

    #[test]
    fn invalid_arguments_are_errors_not_panics() {
        let norm = Normalization::IMAGENET;
        let x = tensor(&[0.5; 12], 1, 3, 4);
        let run = |x: &Tensor, space, cfg: &BlurIgConfig| blur_ig(&sines(), x, space, 0, cfg, &mut Monitor::none());
        assert!(run(&x, BlurSpace::Pixels(&norm), &BlurIgConfig::default()).is_err());
        assert!(run(&x.flatten_all().unwrap(), BlurSpace::Raw, &BlurIgConfig::default()).is_err());
        for cfg in [config(0.0, 10), config(5.0, 0), config(f64::NAN, 10)] {
            assert!(run(&x, BlurSpace::Raw, &cfg).is_err());
        }
        let cfg = BlurIgConfig {
            batch_size: 0,
            ..BlurIgConfig::default()
        };
        assert!(run(&x, BlurSpace::Raw, &cfg).is_err());
    }

    /// The blur overhead at the default settings on a 3×224×224 input, with an oracle that
    /// costs next to nothing. Run with `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_default_settings_224() {
        struct Flat;
        impl GradientOracle for Flat {
            fn scores(&self, points: &Tensor, _: usize) -> Result<Vec<f32>> {
                Ok(vec![0.0; points.dim(0)?])
            }
            fn scores_and_gradients(&self, points: &Tensor, _: usize) -> Result<(Vec<f32>, Tensor)> {
                Ok((vec![0.0; points.dim(0)?], points.ones_like()?))
            }
            fn num_classes(&self) -> usize {
                1
            }
        }
        let norm = Normalization::IMAGENET;
        let x = tensor(&random(3 * 224 * 224, 1), 3, 224, 224);
        for (name, integration) in [("riemann", Integration::Riemann), ("idgi", Integration::Idgi)] {
            let t = std::time::Instant::now();
            let mut sink = RiemannSink::new(x.elem_count());
            let cfg = BlurIgConfig::default();
            blur_ig_path(
                &Flat,
                &x,
                BlurSpace::Pixels(&norm),
                0,
                &cfg,
                integration,
                &mut sink,
                &mut Monitor::none(),
            )
            .unwrap();
            println!("{name}: default Blur IG without the model: {:?}", t.elapsed());
        }
    }
}
