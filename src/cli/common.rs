//! What the commands share: the method flags, turning a [`MethodId`] and the flags into a
//! [`MethodSpec`], loading the model, computing with a progress bar. Methods, paths,
//! baselines and the other choices are the library's own types, parsed from their text
//! forms, so the command line and the studio name them alike.

use std::path::Path;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pathscope::device::Compute;

use pathscope::attribution::catalog::{EnsembleBase, Family, MethodId, MethodParams};
use pathscope::attribution::method::{explain, Explanation, MethodSpec, RunOptions};
use pathscope::attribution::multi_reference::RecalCompat;
use pathscope::attribution::{Baseline, IntegrationRule, ModelOracle, Monitor, Objective};
use pathscope::model::conventions::Overrides;
use pathscope::model::preprocess::{image_files_in, load_rgb, parse_size, ChannelOrder, Interpolation, Resize};
use pathscope::model::{Classifier, Preprocessing};

/// Preprocessing flags: each overrides the model's sidecar, metadata and preset.
#[derive(Args, Debug, Clone, Default)]
pub struct PreprocessArgs {
    /// A torchvision weight transform by model name (resnet50, vit_b_16, efficientnet_b0,
    /// inception_v3, …) as the starting point.
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Resize before the crop: N (shorter side), HxW (exact) or none.
    #[arg(long, value_name = "N|HxW|none")]
    pub resize: Option<Resize>,
    /// Centre crop, N or HxW; must equal the model's input size when the graph fixes one.
    #[arg(long, value_name = "N|HxW")]
    pub crop: Option<String>,
    /// The resize's filter: bilinear or bicubic (antialiased, as torchvision on PIL images).
    #[arg(long)]
    pub interpolation: Option<Interpolation>,
    /// Per-channel mean of pixels in [0, 1], one value or three, comma-separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation, one value or three, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// The channels the model reads: rgb, bgr or grey.
    #[arg(long)]
    pub channels: Option<ChannelOrder>,
}

impl PreprocessArgs {
    /// The flags, with a labels file, as overrides of the model's conventions.
    pub fn overrides(&self, labels: Option<&Path>) -> Result<Overrides> {
        let crop = match &self.crop {
            None => None,
            Some(c) => Some(match parse_size(c).map_err(|e| anyhow::anyhow!("--crop: {e}"))? {
                (n, None) => (n, n),
                (h, Some(w)) => (h, w),
            }),
        };
        Ok(Overrides {
            preset: self.preset.clone(),
            resize: self.resize,
            interpolation: self.interpolation,
            crop,
            mean: self.mean.clone(),
            std: self.std.clone(),
            channels: self.channels,
            labels: labels.map(Path::to_path_buf),
        })
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
    /// The method an ensemble (smoothgrad, smoothgrad-sq, vargrad) averages: gradient,
    /// input-x-gradient or ig.
    #[arg(long, default_value = "gradient")]
    pub base_method: EnsembleBase,
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
    /// clean (the default), or reference: the reference code's quirks (slot pairing
    /// ρ(j) = j mod m, α(j) = grid[j mod k], valid-ip terms (g/k)·(x − p_j)), for
    /// reproducing its numbers only.
    #[arg(long, default_value = "clean")]
    pub recal_compat: RecalCompat,
    /// Quadrature rule: left, right, middle, trapezoid (Captum's), gauss-legendre.
    #[arg(long, default_value = "gauss-legendre")]
    pub rule: IntegrationRule,
    /// Tolerance mode on the straight and blur paths: add gradient points (adaptive
    /// Simpson panels placed by a forward-only pilot) until completeness and the map's own
    /// error estimate are both within this fraction (e.g. 0.01); --steps then caps the
    /// points (default 256). Without it, --steps points of --rule.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// The explained scalar: logit, probability or log-probability.
    #[arg(long, default_value = "logit")]
    pub objective: Objective,
    /// Interpolation points per forward/backward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Seed of every random draw (noise baselines, ensembles).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Loads the model on `compute` (its device and path) and applies the command line's
/// preprocessing and labels.
pub fn load_model(path: Option<&Path>, compute: &Compute, overrides: &Overrides) -> Result<Classifier> {
    let device = &compute.device;
    let mut model = match path {
        Some(p) => Classifier::load(p, device)?,
        None => pathscope::assets::default_classifier(device)?,
    };
    model.set_generic(compute.generic);
    if !overrides.is_empty() {
        model.override_conventions(overrides)?;
    }
    Ok(model)
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
    pre: &Preprocessing,
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
        .map(|f| Ok(pre.image_to_tensor(&load_rgb(f)?, device)?.squeeze(0)?))
        .collect()
}

impl MethodArgs {
    /// The flags as [`MethodParams`] for `method`; Expected Gradients' reference folder is
    /// read here, preprocessed with `pre`.
    pub fn params(&self, method: MethodId, pre: &Preprocessing, device: &candle_core::Device) -> Result<MethodParams> {
        if method.family().is_ensemble() && !(self.noise.is_finite() && self.noise >= 0.0) {
            bail!(
                "--noise must be a non-negative fraction of the pixel range, got {}",
                self.noise
            );
        }
        if let Some(t) = self.tolerance {
            if !(t > 0.0 && t < 1.0) {
                bail!("--tolerance must be a fraction between 0 and 1 (e.g. 0.01), got {t}");
            }
            let integrates_a_path = method.family() == Family::Ig
                || (method.family().is_ensemble() && self.base_method == EnsembleBase::Ig);
            if !integrates_a_path {
                bail!(
                    "--tolerance applies to methods that integrate a path (ig, or an ensemble with --base-method ig), not to {}",
                    method.family()
                );
            }
        }
        let (references, reference_pool) = match method.family() {
            Family::ExpectedGradients => (0, reference_pool(self, pre, device)?),
            Family::IgUniform | Family::IgSg | Family::IgSq => match self.references.parse::<usize>() {
                Ok(m) if m >= 1 => (m, Vec::new()),
                _ => bail!(
                    "--references must be a number of references (≥ 1) for method {}",
                    method.family()
                ),
            },
            _ => (self.references.parse().unwrap_or(0), Vec::new()),
        };
        Ok(MethodParams {
            baseline: self.baseline.clone(),
            steps: self.steps.map(|s| s as usize),
            rule: self.rule,
            tolerance: self.tolerance,
            ensemble_base: self.base_method,
            samples: self.samples as usize,
            noise: self.noise,
            references,
            points_per_reference: self.points as usize,
            compat: self.recal_compat,
            reference_pool: Arc::new(reference_pool),
            seed: self.seed,
            batch_size: self.batch_size as usize,
        })
    }
}

/// The computation `method` names with the shared flags.
pub fn method_spec(
    args: &MethodArgs,
    method: MethodId,
    pre: &Preprocessing,
    device: &candle_core::Device,
) -> Result<MethodSpec> {
    Ok(method.spec(&args.params(method, pre, device)?)?)
}

/// A progress bar on stderr labelled `what`, counting model points (length set as they
/// are reported).
pub fn progress_bar(what: &str) -> ProgressBar {
    let progress = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message(what.to_string());
    progress
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
    let oracle = ModelOracle::new(model, args.objective);
    let progress = progress_bar(what);
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
