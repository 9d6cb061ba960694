//! What `explain` and `figure` share: the method flags and their enums, turning them into
//! a [`MethodSpec`], loading the model, computing with a progress bar.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use pathscope::attribution::agi::AgiConfig;
use pathscope::attribution::ensemble::{EnsembleConfig, EnsembleKind};
use pathscope::attribution::method::{explain, Explanation, MethodSpec, PathKind, RunOptions};
use pathscope::attribution::multi_reference::{MultiReferenceConfig, MultiReferenceMethod, RecalCompat};
use pathscope::attribution::path::Integration;
use pathscope::attribution::recalibration::Recalibration;
use pathscope::attribution::{Baseline, IntegrationRule, ModelOracle, Monitor, Objective};
use pathscope::model::preprocess::{image_files_in, load_rgb, resize_and_crop};
use pathscope::model::{Classifier, Normalization};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A path integral: IG on the straight path, Blur IG or Guided IG (see --path).
    Ig,
    /// The vanilla gradient ∇f(x).
    Gradient,
    /// x ⊙ ∇f(x).
    InputXGradient,
    /// SmoothGrad: the mean of --base-method over --samples noisy inputs.
    Smoothgrad,
    /// SmoothGrad²: the mean of the squared maps.
    SmoothgradSq,
    /// VarGrad: the variance of the maps.
    Vargrad,
    /// IG averaged over uniform-noise references (RECAL's IG-Uniform).
    IgUniform,
    /// IG averaged over Gaussian references around the input (IG-SG).
    IgSg,
    /// IG-SG with squared mean gradients (IG-SQ).
    IgSq,
    /// Expected Gradients: references are images from --references DIR, α random.
    ExpectedGradients,
    /// Adversarial Gradient Integration.
    Agi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecalibrationArg {
    /// Average all terms (no re-calibration).
    Vanilla,
    /// Keep, per feature, the interpolation-point terms with g·(x − p) ≥ 0 (RECAL's default).
    ValidIp,
    /// Keep, per feature, the references whose whole term is ≥ 0.
    ValidRef,
}

impl From<RecalibrationArg> for Recalibration {
    fn from(r: RecalibrationArg) -> Self {
        match r {
            RecalibrationArg::Vanilla => Recalibration::Vanilla,
            RecalibrationArg::ValidIp => Recalibration::ValidIp,
            RecalibrationArg::ValidRef => Recalibration::ValidRef,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecalCompatArg {
    /// Each reference gets its own α grid; terms use (x − r); no 1/k.
    Clean,
    /// The reference code's quirks: slot pairing ρ(j) = j mod m, α(j) = grid[j mod k], and
    /// valid-ip terms (g/k)·(x − p_j). For reproducing its numbers only.
    Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PathArg {
    Straight,
    Blur,
    Guided,
}

impl From<PathArg> for PathKind {
    fn from(p: PathArg) -> Self {
        match p {
            PathArg::Straight => PathKind::Straight,
            PathArg::Blur => PathKind::Blur,
            PathArg::Guided => PathKind::Guided,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntegrationArg {
    /// The path method's own Riemann sum.
    Riemann,
    /// Important-direction gradient integration (CVPR 2023).
    Idgi,
}

impl From<IntegrationArg> for Integration {
    fn from(i: IntegrationArg) -> Self {
        match i {
            IntegrationArg::Riemann => Integration::Riemann,
            IntegrationArg::Idgi => Integration::Idgi,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BaseMethod {
    Gradient,
    InputXGradient,
    Ig,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ObjectiveArg {
    Logit,
    Probability,
    LogProbability,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Self {
        match o {
            ObjectiveArg::Logit => Objective::Logit,
            ObjectiveArg::Probability => Objective::Probability,
            ObjectiveArg::LogProbability => Objective::LogProbability,
        }
    }
}

/// Method options `explain` and `figure` share.
#[derive(Args, Debug, Clone)]
pub struct MethodArgs {
    /// black, white, zero (normalised space, Captum's default), blur[:SIGMA], uniform,
    /// gaussian[:FRACTION], or an image file.
    #[arg(long, default_value = "black")]
    pub baseline: Baseline,
    /// Points along the path (default: 50 straight, 100 blur, 200 guided).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub steps: Option<u32>,
    /// The method an ensemble (smoothgrad, smoothgrad-sq, vargrad) averages.
    #[arg(long, value_enum, default_value = "gradient")]
    pub base_method: BaseMethod,
    /// Noisy samples of an ensemble.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: u32,
    /// Ensemble noise σ as a fraction of the input's pixel range.
    #[arg(long, default_value_t = 0.15, allow_negative_numbers = true)]
    pub noise: f64,
    /// Multi-reference methods: the number of references m, or (expected-gradients) a
    /// folder of reference images.
    #[arg(long, default_value = "10")]
    pub references: String,
    /// Interpolation points per reference (k) of the multi-reference methods.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub points: u32,
    /// Clean formulation (default) or the reference code's quirks.
    #[arg(long, value_enum, default_value = "clean")]
    pub recal_compat: RecalCompatArg,
    /// Quadrature rule: left, right, middle, trapezoid (Captum's), gauss-legendre.
    #[arg(long, default_value = "gauss-legendre")]
    pub rule: IntegrationRule,
    /// The explained scalar.
    #[arg(long, value_enum, default_value = "logit")]
    pub objective: ObjectiveArg,
    /// Interpolation points per forward/backward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Seed of every random draw (noise baselines, ensembles).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn load_model(path: Option<&Path>, device: &candle_core::Device) -> Result<Classifier> {
    Ok(match path {
        Some(p) => Classifier::load(p, device)?,
        None => pathscope::assets::default_classifier(device)?,
    })
}

pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32, f32)> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.into_iter()
        .take(k)
        .map(|i| (i, logits[i], (((logits[i] - max) as f64).exp() / z) as f32))
        .collect()
}

/// The class a `--target` flag names: `top1` (the largest logit, first on ties) or a class
/// index below `num_classes`.
pub fn resolve_target(flag: &str, logits: &[f32], num_classes: usize) -> Result<usize> {
    match flag {
        "top1" => top_k(logits, 1)
            .first()
            .map(|&(i, _, _)| i)
            .context("the model has no outputs"),
        s => {
            let t: usize = s
                .parse()
                .with_context(|| format!("--target must be `top1` or a class index, got `{s}`"))?;
            if t >= num_classes {
                bail!(
                    "--target {t} is out of range: the model has {} classes (0..{})",
                    num_classes,
                    num_classes - 1
                );
            }
            Ok(t)
        }
    }
}

/// The reference images of Expected Gradients: every image in `--references DIR`,
/// preprocessed like the input.
fn reference_pool(
    args: &MethodArgs,
    norm: Normalization,
    device: &candle_core::Device,
) -> Result<Vec<candle_core::Tensor>> {
    let dir = Path::new(&args.references);
    if !dir.is_dir() {
        bail!(
            "--method expected-gradients needs --references DIR, a folder of reference images; `{}` is not a folder",
            args.references
        );
    }
    let files = image_files_in(dir)?;
    if files.is_empty() {
        bail!(
            "{}: no images (png, jpg, tif, webp, bmp) in the reference folder",
            dir.display()
        );
    }
    files
        .iter()
        .map(|f| {
            let crop = resize_and_crop(&load_rgb(f)?);
            Ok(norm.image_to_tensor(&crop, device)?.squeeze(0)?)
        })
        .collect()
}

/// The method `method` on `path` with `integration` and `recalibration` (each used by the
/// methods it applies to), the rest from the shared flags.
pub fn method_spec(
    args: &MethodArgs,
    method: Method,
    path: PathKind,
    integration: Integration,
    recalibration: Recalibration,
    norm: Normalization,
    device: &candle_core::Device,
) -> Result<MethodSpec> {
    let path_integral = |path: PathKind| MethodSpec::PathIntegral {
        path,
        integration,
        baseline: args.baseline.clone(),
        steps: args.steps.map(|s| s as usize).unwrap_or(path.default_steps()),
        rule: args.rule,
    };
    let ensemble = |kind| -> Result<MethodSpec> {
        if !(args.noise.is_finite() && args.noise >= 0.0) {
            bail!(
                "--noise must be a non-negative fraction of the pixel range, got {}",
                args.noise
            );
        }
        let base = match args.base_method {
            BaseMethod::Gradient => MethodSpec::Gradient,
            BaseMethod::InputXGradient => MethodSpec::InputXGradient,
            BaseMethod::Ig => path_integral(path),
        };
        Ok(MethodSpec::Ensemble {
            base: Box::new(base),
            config: EnsembleConfig {
                kind,
                samples: args.samples as usize,
                noise: args.noise,
                seed: args.seed,
            },
        })
    };
    let multi = |method: MultiReferenceMethod, recalibration: Recalibration| -> Result<MethodSpec> {
        let references = match (&method, args.references.parse::<usize>()) {
            (MultiReferenceMethod::ExpectedGradients { pool }, _) => pool.len().min(10),
            (_, Ok(m)) if m >= 1 => m,
            _ => bail!(
                "--references must be a number of references (≥ 1) for method {:?}",
                method
            ),
        };
        Ok(MethodSpec::MultiReference(MultiReferenceConfig {
            method,
            recalibration,
            compat: match args.recal_compat {
                RecalCompatArg::Clean => RecalCompat::Clean,
                RecalCompatArg::Reference => RecalCompat::Reference,
            },
            references,
            points_per_reference: args.points as usize,
            seed: args.seed,
            batch_size: args.batch_size as usize,
            ..MultiReferenceConfig::default()
        }))
    };
    Ok(match method {
        Method::Ig => path_integral(path),
        Method::IgUniform => multi(MultiReferenceMethod::IgUniform, recalibration)?,
        Method::IgSg => multi(MultiReferenceMethod::IgSg, recalibration)?,
        Method::IgSq => multi(MultiReferenceMethod::IgSq, recalibration)?,
        Method::ExpectedGradients => multi(
            MultiReferenceMethod::ExpectedGradients {
                pool: reference_pool(args, norm, device)?,
            },
            recalibration,
        )?,
        Method::Agi => MethodSpec::Agi(AgiConfig {
            recalibration,
            seed: args.seed,
            batch_size: args.batch_size as usize,
            ..AgiConfig::default()
        }),
        Method::Gradient => MethodSpec::Gradient,
        Method::InputXGradient => MethodSpec::InputXGradient,
        Method::Smoothgrad => ensemble(EnsembleKind::SmoothGrad)?,
        Method::SmoothgradSq => ensemble(EnsembleKind::SmoothGradSquared)?,
        Method::Vargrad => ensemble(EnsembleKind::VarGrad)?,
    })
}

/// Computes `spec` for `target` of `input` with a progress bar on stderr labelled `what`;
/// `record_trace` keeps a path method's per-step trace.
pub fn compute(
    args: &MethodArgs,
    model: &Classifier,
    input: &Tensor,
    target: usize,
    spec: &MethodSpec,
    what: &str,
    record_trace: bool,
) -> Result<Explanation> {
    let objective: Objective = args.objective.into();
    let oracle = ModelOracle::new(model, objective);
    let progress = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message(what.to_string());
    let mut on_progress = |done: usize, total: usize| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    };
    let mut monitor = Monitor {
        on_progress: Some(&mut on_progress),
        cancel: None,
    };
    let options = RunOptions {
        batch_size: args.batch_size as usize,
        seed: args.seed,
        record_trace,
        ..RunOptions::default()
    };
    let norm = model.normalization();
    let e = explain(&oracle, input, &norm, target, spec, &options, &mut monitor)
        .with_context(|| format!("computing {what}"))?;
    progress.finish_and_clear();
    Ok(e)
}
