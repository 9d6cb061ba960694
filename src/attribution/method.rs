//! One entry point for every method: a [`MethodSpec`] says what to compute, [`explain`]
//! computes it. The CLI and the studio's engine both go through here, so a map means the
//! same thing wherever it is made.

use candle_core::Tensor;

use super::adaptive::{adaptive_path, AdaptiveConfig, StraightGeometry};
use super::agi::{agi_attribution, AgiConfig};
use super::blur::gaussian_blur_zero_gemm;
use super::blur_ig::{blur_ig_path, BlurGeometry, BlurIgConfig, BlurSpace};
use super::ensemble::{ensemble, EnsembleConfig};
use super::gradient::{gradient, input_x_gradient};
use super::guided_ig::{guided_ig_path, GuidedIgConfig};
use super::integrated_gradients::{integrated_gradients, path_result, straight_path};
use super::multi_reference::{multi_reference_attribution, MultiReferenceConfig};
use super::path::{IdgiSink, Integration, RiemannSink, StepSink, Tee, Walk, ZeroGradientPolicy};
use super::trace::{TraceRecorder, DEFAULT_TRACE_BUDGET};
use super::{AttributionError, Baseline, GradientOracle, IgConfig, IntegrationRule, Monitor, Result};
use crate::model::Normalization;

/// Which path a path-integral method follows. Text form (CLI, session files): `straight`,
/// `blur`, `guided`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// x′ + α (x − x′): Integrated Gradients.
    #[default]
    #[serde(alias = "Straight")]
    Straight,
    /// Gaussian scale space from the blurred input to the input: Blur IG.
    #[serde(alias = "Blur")]
    Blur,
    /// The adaptive path of Guided IG.
    #[serde(alias = "Guided")]
    Guided,
}

impl PathKind {
    pub const ALL: [PathKind; 3] = [PathKind::Straight, PathKind::Blur, PathKind::Guided];

    /// The words a person reads (the studio's controls).
    pub fn label(self) -> &'static str {
        match self {
            PathKind::Straight => "straight line (IG)",
            PathKind::Blur => "blur scale space (Blur IG)",
            PathKind::Guided => "guided (Guided IG)",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PathKind::Straight => "straight",
            PathKind::Blur => "blur",
            PathKind::Guided => "guided",
        }
    }
}

text_form!(PathKind, "path");

impl PathKind {
    /// The number of steps PAIR uses by default (Captum's 50 for the straight line).
    pub fn default_steps(self) -> usize {
        match self {
            PathKind::Straight => 50,
            PathKind::Blur => 100,
            PathKind::Guided => 200,
        }
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub enum MethodSpec {
    /// ∇f(x).
    Gradient,
    /// x ⊙ ∇f(x).
    InputXGradient,
    /// A single-baseline path integral (IG, Blur IG, Guided IG), Riemann or IDGI.
    PathIntegral {
        path: PathKind,
        integration: Integration,
        /// Ignored by Blur IG, whose baseline is the blurred input.
        baseline: Baseline,
        steps: usize,
        /// The straight line's quadrature rule (Riemann integration only).
        rule: IntegrationRule,
        /// The tolerance mode (straight and blur paths): points are added until both
        /// completeness and the map's own error estimate are within this fraction, and
        /// `steps` is the most gradients it may take. `None`: the fixed-n rule.
        tolerance: Option<f64>,
    },
    /// SmoothGrad / SmoothGrad² / VarGrad around another method.
    Ensemble {
        base: Box<MethodSpec>,
        config: EnsembleConfig,
    },
    /// IG with many references (uniform noise, Gaussian around x, images), vanilla or
    /// re-calibrated (ICLR 2023).
    MultiReference(MultiReferenceConfig),
    /// Adversarial Gradient Integration, vanilla or re-calibrated.
    Agi(AgiConfig),
}

impl MethodSpec {
    /// Whether this is a single-baseline path integral (IG, Blur IG, Guided IG).
    pub fn is_path_integral(&self) -> bool {
        matches!(self, MethodSpec::PathIntegral { .. })
    }

    /// About how many input gradients the method takes: the weight of its job in a run's
    /// overall progress (jobs report progress in their own units).
    pub fn gradient_count(&self) -> usize {
        match self {
            MethodSpec::Gradient | MethodSpec::InputXGradient => 1,
            // Guided IG takes a gradient per step and a few to choose its features.
            MethodSpec::PathIntegral { steps, .. } => steps + 1,
            MethodSpec::Ensemble { base, config } => config.samples.max(1) * base.gradient_count(),
            MethodSpec::MultiReference(c) => c.references.max(1) * c.points_per_reference.max(1),
            MethodSpec::Agi(c) => c.classes.max(1) * c.steps.max(1),
        }
    }
}

/// Settings that do not change what a method means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOptions {
    pub batch_size: usize,
    pub seed: u64,
    /// Record a [`TraceRecorder`] of the path (path integrals only).
    pub record_trace: bool,
    pub trace_budget: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            batch_size: 16,
            seed: 0,
            record_trace: false,
            trace_budget: DEFAULT_TRACE_BUDGET,
        }
    }
}

/// A computed attribution and what is known about it.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// Same shape as the input ([C, H, W]), in the model's input space.
    pub attribution: Tensor,
    pub score_input: f32,
    /// f at the path's start, for path methods.
    pub score_baseline: Option<f32>,
    pub attribution_sum: f64,
    /// Σ A − (f(x) − f(x′)), for path methods.
    pub convergence_delta: Option<f64>,
    pub trace: Option<TraceRecorder>,
    /// How the tolerance mode ended (points used, whether it converged).
    pub quadrature: Option<QuadratureReport>,
}

/// What the tolerance mode used and reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadratureReport {
    pub tolerance: f64,
    /// Gradient evaluations.
    pub gradient_points: usize,
    /// Forward-only evaluations (the pilot).
    pub forward_points: usize,
    /// The map's relative error as the rule estimates it.
    pub map_error_estimate: f64,
    /// |Σ A − Δf| / |Δf| on the walk's own scores.
    pub completeness_error: f64,
    pub converged: bool,
}

/// Computes `spec` for class `target` of `input` ([C, H, W], normalised with `norm`).
pub fn explain(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    spec: &MethodSpec,
    options: &RunOptions,
    monitor: &mut Monitor,
) -> Result<Explanation> {
    explain_observed(oracle, input, norm, target, spec, options, monitor, None)
}

/// As [`explain`], also sending every step of a path method to `observer` (e.g. to
/// stream the map accumulated so far to a UI).
#[allow(clippy::too_many_arguments)]
pub fn explain_observed(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    spec: &MethodSpec,
    options: &RunOptions,
    monitor: &mut Monitor,
    observer: Option<&mut dyn StepSink>,
) -> Result<Explanation> {
    if target >= oracle.num_classes() {
        return Err(AttributionError::InvalidArgument(format!(
            "target class {target} is out of range: the model has {} classes",
            oracle.num_classes()
        )));
    }
    match spec {
        MethodSpec::MultiReference(config) => {
            let r = multi_reference_attribution(oracle, input, norm, target, config, monitor)?;
            scored_at_input(oracle, input, target, r.attribution)
        }
        MethodSpec::Agi(config) => {
            let r = agi_attribution(oracle, input, norm, target, config, monitor)?;
            scored_at_input(oracle, input, target, r.attribution)
        }
        MethodSpec::Gradient | MethodSpec::InputXGradient => {
            let (score, map) = if matches!(spec, MethodSpec::Gradient) {
                gradient(oracle, input, target)?
            } else {
                input_x_gradient(oracle, input, target)?
            };
            monitor.step(1, 1)?;
            single_point(map, score)
        }
        MethodSpec::PathIntegral {
            path,
            integration,
            baseline,
            steps,
            rule,
            tolerance,
        } => path_integral(
            oracle,
            input,
            norm,
            target,
            *path,
            *integration,
            baseline,
            *steps,
            *rule,
            *tolerance,
            options,
            monitor,
            observer,
        ),
        MethodSpec::Ensemble { base, config } => {
            if matches!(**base, MethodSpec::Ensemble { .. }) {
                return Err(AttributionError::InvalidArgument("ensembles cannot be nested".into()));
            }
            let inner = RunOptions {
                record_trace: false,
                ..*options
            };
            let attribution = ensemble(input, norm, config, monitor, |noisy| {
                Ok(explain(oracle, noisy, norm, target, base, &inner, &mut Monitor::none())?.attribution)
            })?;
            scored_at_input(oracle, input, target, attribution)
        }
    }
}

/// A map that is not a path integral, with f_c at the input scored by one forward pass.
fn scored_at_input(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    target: usize,
    attribution: Tensor,
) -> Result<Explanation> {
    let score_input = oracle.scores(&input.unsqueeze(0)?, target)?[0];
    single_point(attribution, score_input)
}

fn single_point(attribution: Tensor, score_input: f32) -> Result<Explanation> {
    let attribution_sum = attribution
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| v as f64)
        .sum();
    Ok(Explanation {
        attribution,
        score_input,
        score_baseline: None,
        attribution_sum,
        convergence_delta: None,
        trace: None,
        quadrature: None,
    })
}

/// A path integral's settings, apart from its integration.
#[derive(Debug, Clone, Copy)]
struct PathSettings<'a> {
    path: PathKind,
    baseline: &'a Baseline,
    steps: usize,
    rule: IntegrationRule,
    tolerance: Option<f64>,
}

#[allow(clippy::too_many_arguments)]
fn path_integral(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    path: PathKind,
    integration: Integration,
    baseline: &Baseline,
    steps: usize,
    rule: IntegrationRule,
    tolerance: Option<f64>,
    options: &RunOptions,
    monitor: &mut Monitor,
    observer: Option<&mut dyn StepSink>,
) -> Result<Explanation> {
    let settings = PathSettings {
        path,
        baseline,
        steps,
        rule,
        tolerance,
    };
    if tolerance.is_none()
        && path == PathKind::Straight
        && integration == Integration::Riemann
        && !options.record_trace
        && observer.is_none()
    {
        // Nothing needs the steps one by one: the oracle may form the sum directly.
        let config = IgConfig {
            steps,
            rule,
            batch_size: options.batch_size,
        };
        let b = baseline.build(input, norm, options.seed)?;
        let r = integrated_gradients(oracle, input, &b, target, &config, monitor)?;
        return Ok(Explanation {
            attribution: r.attribution,
            score_input: r.score_input,
            score_baseline: Some(r.score_baseline),
            attribution_sum: r.attribution_sum,
            convergence_delta: Some(r.convergence_delta),
            trace: None,
            quadrature: None,
        });
    }
    let mut maps = walk_path(
        oracle,
        input,
        norm,
        target,
        &settings,
        &[integration],
        options,
        monitor,
        observer,
    )?;
    Ok(maps.remove(0))
}

/// As [`explain_observed`] for a path integral, and the same path's maps under `also`'s
/// integrations from the same walk (IDGI beside vanilla IG: the gradients are computed
/// once). The trace, if asked for, belongs to the first map.
#[allow(clippy::too_many_arguments)]
pub fn explain_walk(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    spec: &MethodSpec,
    also: &[Integration],
    options: &RunOptions,
    monitor: &mut Monitor,
    observer: Option<&mut dyn StepSink>,
) -> Result<Vec<Explanation>> {
    let MethodSpec::PathIntegral {
        path,
        integration,
        baseline,
        steps,
        rule,
        tolerance,
    } = spec
    else {
        if also.is_empty() {
            return Ok(vec![explain_observed(
                oracle, input, norm, target, spec, options, monitor, observer,
            )?]);
        }
        return Err(AttributionError::InvalidArgument(
            "only a path integral's walk can be shared".into(),
        ));
    };
    if target >= oracle.num_classes() {
        return Err(AttributionError::InvalidArgument(format!(
            "target class {target} is out of range: the model has {} classes",
            oracle.num_classes()
        )));
    }
    let settings = PathSettings {
        path: *path,
        baseline,
        steps: *steps,
        rule: *rule,
        tolerance: *tolerance,
    };
    let integrations: Vec<Integration> = std::iter::once(*integration).chain(also.iter().copied()).collect();
    walk_path(
        oracle,
        input,
        norm,
        target,
        &settings,
        &integrations,
        options,
        monitor,
        observer,
    )
}

/// Walks the path once and integrates it every way `integrations` asks, in that order.
#[allow(clippy::too_many_arguments)]
fn walk_path(
    oracle: &dyn GradientOracle,
    input: &Tensor,
    norm: &Normalization,
    target: usize,
    settings: &PathSettings,
    integrations: &[Integration],
    options: &RunOptions,
    monitor: &mut Monitor,
    observer: Option<&mut dyn StepSink>,
) -> Result<Vec<Explanation>> {
    let PathSettings {
        path,
        baseline,
        steps,
        rule,
        tolerance,
    } = *settings;
    if tolerance.is_some() && path == PathKind::Guided {
        return Err(AttributionError::InvalidArgument(
            "the tolerance mode walks the straight and blur paths; Guided IG chooses its own path, so give it a step count"
                .into(),
        ));
    }
    let len = input.elem_count();
    let mut riemann = RiemannSink::new(len);
    let mut idgi = IdgiSink::new(len, ZeroGradientPolicy::default());
    let walk = Walk::serving(integrations);
    let mut report = None;
    let mut trace = options
        .record_trace
        .then(|| TraceRecorder::new(len, steps + 2, path == PathKind::Guided, options.trace_budget));
    let baseline_tensor = match path {
        PathKind::Blur => None,
        _ => Some(baseline.build(input, norm, options.seed)?),
    };
    {
        let mut sinks: Vec<&mut dyn StepSink> = Vec::new();
        if walk.riemann {
            sinks.push(&mut riemann);
        }
        if walk.idgi {
            sinks.push(&mut idgi);
        }
        if let Some(t) = trace.as_mut() {
            sinks.push(t);
        }
        if let Some(o) = observer {
            sinks.push(o);
        }
        let mut tee = Tee { sinks };
        match (path, tolerance) {
            (PathKind::Straight | PathKind::Blur, Some(tolerance)) => {
                let config = AdaptiveConfig::new(tolerance, steps, options.batch_size);
                let outcome = match &baseline_tensor {
                    Some(b) => {
                        let geometry = StraightGeometry::new(oracle, input, b, target)?;
                        adaptive_path(&geometry, &config, &mut tee, monitor, false)?
                    }
                    None => {
                        let blur = BlurIgConfig::default();
                        let geometry = BlurGeometry::new(oracle, input, BlurSpace::Pixels(norm), target, &blur)?;
                        adaptive_path(&geometry, &config, &mut tee, monitor, false)?
                    }
                };
                report = Some(QuadratureReport {
                    tolerance,
                    gradient_points: outcome.gradient_points,
                    forward_points: outcome.forward_points,
                    map_error_estimate: outcome.map_error_estimate,
                    completeness_error: outcome.completeness_error,
                    converged: outcome.converged,
                });
            }
            (PathKind::Straight, None) => {
                let config = IgConfig {
                    steps,
                    rule,
                    batch_size: options.batch_size,
                };
                let b = baseline_tensor.as_ref().expect("straight paths have a baseline");
                straight_path(oracle, input, b, target, &config, walk, &mut tee, monitor)?;
            }
            (PathKind::Guided, _) => {
                let config = GuidedIgConfig {
                    steps,
                    ..GuidedIgConfig::default()
                };
                let b = baseline_tensor.as_ref().expect("guided paths have a baseline");
                guided_ig_path(oracle, input, b, target, &config, walk, &mut tee, monitor)?;
            }
            (PathKind::Blur, None) => {
                let config = BlurIgConfig {
                    steps,
                    batch_size: options.batch_size,
                    ..BlurIgConfig::default()
                };
                blur_ig_path(
                    oracle,
                    input,
                    BlurSpace::Pixels(norm),
                    target,
                    &config,
                    walk,
                    &mut tee,
                    monitor,
                )?;
            }
        }
    }
    let start = match &baseline_tensor {
        Some(b) => b.clone(),
        None => fully_blurred(input, norm, &BlurIgConfig::default())?,
    };
    let mut out = Vec::with_capacity(integrations.len());
    for (i, integration) in integrations.iter().enumerate() {
        let values = match integration {
            Integration::Riemann => riemann.attribution(),
            Integration::Idgi => idgi.attribution(),
        };
        let attribution = Tensor::from_vec(values, input.dims(), input.device())?;
        let r = path_result(oracle, input, &start, target, attribution)?;
        out.push(Explanation {
            attribution: r.attribution,
            score_input: r.score_input,
            score_baseline: Some(r.score_baseline),
            attribution_sum: r.attribution_sum,
            convergence_delta: Some(r.convergence_delta),
            trace: if i == 0 { trace.take() } else { None },
            quadrature: report,
        });
    }
    Ok(out)
}

/// The start of the blur path: the input blurred in pixel space with the largest σ.
fn fully_blurred(input: &Tensor, norm: &Normalization, config: &BlurIgConfig) -> Result<Tensor> {
    let (c, h, w) = input.dims3()?;
    let mut pixels = input.flatten_all()?.to_vec1::<f32>()?;
    norm.denormalize(&mut pixels, h * w);
    let sigma = config.sigmas().last().copied().unwrap_or(config.max_sigma);
    let mut blurred = gaussian_blur_zero_gemm(&pixels, c, h, w, sigma);
    norm.normalize_pixels(&mut blurred, h * w);
    Ok(Tensor::from_vec(blurred, (c, h, w), input.device())?)
}
