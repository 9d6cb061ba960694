//! `pathscope explain`: one image, one method, files in a directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use pathscope::attribution::agi::AgiConfig;
use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::attribution::ensemble::{EnsembleConfig, EnsembleKind};
use pathscope::attribution::method::{explain, Explanation, MethodSpec, PathKind, RunOptions};
use pathscope::attribution::multi_reference::{MultiReferenceConfig, MultiReferenceMethod, RecalCompat};
use pathscope::attribution::path::Integration;
use pathscope::attribution::recalibration::Recalibration;
use pathscope::attribution::{Baseline, IntegrationRule, ModelOracle, Monitor, Objective};
use pathscope::export::atomic::write_atomic;
use pathscope::export::heatmap::{colorbar, default_span, overlay, side_by_side, signed_overlay};
use pathscope::export::npy::npy_f32_bytes;
use pathscope::model::labels::Labels;
use pathscope::model::preprocess::{image_files_in, load_rgb, resize_and_crop};
use pathscope::model::{Classifier, Normalization};
use pathscope::render::colormap::Colormap;

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

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model weights (.safetensors or PyTorch .pth); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The photo to explain (PNG, JPEG, TIFF, WebP, BMP).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    #[arg(long, value_enum, default_value = "ig")]
    method: Method,
    /// black, white, zero (normalised space, Captum's default), blur[:SIGMA], uniform,
    /// gaussian[:FRACTION], or an image file.
    #[arg(long, default_value = "black")]
    baseline: Baseline,
    /// The path of `--method ig`.
    #[arg(long, value_enum, default_value = "straight")]
    path: PathArg,
    /// How gradients along the path become the attribution.
    #[arg(long, value_enum, default_value = "riemann")]
    integration: IntegrationArg,
    /// Points along the path (default: 50 straight, 100 blur, 200 guided).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    steps: Option<u32>,
    /// The method an ensemble (smoothgrad, smoothgrad-sq, vargrad) averages.
    #[arg(long, value_enum, default_value = "gradient")]
    base_method: BaseMethod,
    /// Noisy samples of an ensemble.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    samples: u32,
    /// Ensemble noise σ as a fraction of the input's pixel range.
    #[arg(long, default_value_t = 0.15)]
    noise: f64,
    /// Re-calibration of the multi-reference methods and AGI.
    #[arg(long, value_enum, default_value = "valid-ip")]
    recalibration: RecalibrationArg,
    /// Multi-reference methods: the number of references m, or (expected-gradients) a
    /// folder of reference images.
    #[arg(long, default_value = "10")]
    references: String,
    /// Interpolation points per reference (k) of the multi-reference methods.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    points: u32,
    /// Clean formulation (default) or the reference code's quirks.
    #[arg(long, value_enum, default_value = "clean")]
    recal_compat: RecalCompatArg,
    /// Also write the vanilla, absolute and IDGI variants, each in its own directory, and a
    /// side-by-side `compare.png` with one colour scale.
    #[arg(long)]
    compare: bool,
    /// Quadrature rule: left, right, middle, trapezoid (Captum's), gauss-legendre.
    #[arg(long, default_value = "gauss-legendre")]
    rule: IntegrationRule,
    /// `top1` (the predicted class) or a class index.
    #[arg(long, default_value = "top1")]
    target: String,
    /// The explained scalar.
    #[arg(long, value_enum, default_value = "logit")]
    objective: ObjectiveArg,
    /// Interpolation points per forward/backward pass.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    batch_size: u32,
    /// Seed of every random draw (noise baselines, ensembles).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Label file, one class name per line (ImageNet's by default).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// cpu, or cuda[:N] in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory (created if needed).
    #[arg(long, value_name = "DIR", default_value = "pathscope-out")]
    out: PathBuf,
}

#[derive(Serialize)]
struct TopClass {
    index: usize,
    label: String,
    logit: f32,
    probability: f32,
}

#[derive(Serialize)]
struct Summary {
    model: String,
    architecture: String,
    device: String,
    image: String,
    method: Method,
    variant: String,
    path: Option<String>,
    integration: Option<String>,
    baseline: Option<String>,
    steps: Option<usize>,
    rule: Option<String>,
    objective: String,
    seed: u64,
    target: usize,
    label: String,
    score_input: f32,
    score_baseline: Option<f32>,
    attribution_sum: f64,
    convergence_delta: Option<f64>,
    top5: Vec<TopClass>,
    attribution_shape: Vec<usize>,
    seconds: f64,
    command: String,
}

fn load_model(path: Option<&Path>, device: &candle_core::Device) -> Result<Classifier> {
    Ok(match path {
        Some(p) => Classifier::load(p, device)?,
        None => pathscope::assets::default_classifier(device)?,
    })
}

fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32, f32)> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.into_iter()
        .take(k)
        .map(|i| (i, logits[i], (((logits[i] - max) as f64).exp() / z) as f32))
        .collect()
}

/// The reference images of Expected Gradients: every image in `--references DIR`,
/// preprocessed like the input.
fn reference_pool(
    args: &ExplainArgs,
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

/// The method the flags describe, with `integration` overriding `--integration` and
/// `recalibration` overriding `--recalibration` when given.
fn method_spec(
    args: &ExplainArgs,
    integration: Integration,
    norm: Normalization,
    device: &candle_core::Device,
) -> Result<MethodSpec> {
    let path: PathKind = args.path.into();
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
                "--references must be a number of references (≥ 1) for --method {:?}",
                args.method
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
    let recalibration: Recalibration = args.recalibration.into();
    Ok(match args.method {
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

struct Prepared {
    model: Classifier,
    labels: Labels,
    crop: image::RgbImage,
    input: candle_core::Tensor,
    target: usize,
    top5: Vec<(usize, f32, f32)>,
    device: candle_core::Device,
}

fn prepare(args: &ExplainArgs) -> Result<Prepared> {
    let device = pathscope::device::select_device(&args.device)?;
    let model = load_model(args.model.as_deref(), &device)?;
    let labels = match &args.labels {
        Some(p) => Labels::from_file(p)?,
        None => Labels::imagenet(),
    };
    if labels.len() != model.num_classes() {
        eprintln!(
            "warning: {} labels for a model with {} classes; unnamed classes are shown as `class N`",
            labels.len(),
            model.num_classes()
        );
    }
    let photo = load_rgb(&args.image)?;
    let crop = resize_and_crop(&photo);
    let input = model.normalization().image_to_tensor(&crop, &device)?.squeeze(0)?;
    let logits = model.forward(&input.unsqueeze(0)?)?.i(0)?.to_vec1::<f32>()?;
    let top5 = top_k(&logits, 5.min(logits.len()));
    let target = match args.target.as_str() {
        "top1" => top5[0].0,
        s => {
            let t: usize = s
                .parse()
                .with_context(|| format!("--target must be `top1` or a class index, got `{s}`"))?;
            if t >= model.num_classes() {
                bail!(
                    "--target {t} is out of range: the model has {} classes (0..{})",
                    model.num_classes(),
                    model.num_classes() - 1
                );
            }
            t
        }
    };
    Ok(Prepared {
        model,
        labels,
        crop,
        input,
        target,
        top5,
        device,
    })
}

fn compute(args: &ExplainArgs, ctx: &Prepared, spec: &MethodSpec, what: &str) -> Result<Explanation> {
    let objective: Objective = args.objective.into();
    let oracle = ModelOracle::new(&ctx.model, objective);
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
        ..RunOptions::default()
    };
    let norm = ctx.model.normalization();
    let e = explain(&oracle, &ctx.input, &norm, ctx.target, spec, &options, &mut monitor)
        .with_context(|| format!("computing {what}"))?;
    progress.finish_and_clear();
    Ok(e)
}

/// Writes attribution.npy, heatmap.png and summary.json for one result into `dir`.
#[allow(clippy::too_many_arguments)]
fn write_result(
    args: &ExplainArgs,
    ctx: &Prepared,
    spec: &MethodSpec,
    variant: &str,
    e: &Explanation,
    dir: &Path,
    started: Instant,
) -> Result<Vec<f32>> {
    let shape = e.attribution.dims().to_vec();
    let values = e.attribution.flatten_all()?.to_vec1::<f32>()?;
    if values.iter().any(|v| !v.is_finite()) {
        bail!("the {variant} attribution contains NaN or infinite values (the model produced non-finite gradients)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating output directory {}", dir.display()))?;
    let npy = dir.join("attribution.npy");
    write_atomic(&npy, &npy_f32_bytes(&values, &shape)).with_context(|| format!("writing {}", npy.display()))?;

    let (h, w) = (shape[1], shape[2]);
    let map = reduce_channels(&values, shape[0], h * w, ChannelReduction::Sum);
    write_png(&dir.join("heatmap.png"), &signed_overlay(&ctx.crop, &map))?;

    let (path, integration, baseline, steps, rule) = match spec {
        MethodSpec::PathIntegral {
            path,
            integration,
            baseline,
            steps,
            rule,
        } => (
            Some(path.to_string()),
            Some(format!("{integration:?}").to_lowercase()),
            (*path != PathKind::Blur).then(|| baseline.to_string()),
            Some(*steps),
            (*path == PathKind::Straight && *integration == Integration::Riemann).then(|| rule.to_string()),
        ),
        _ => (None, None, None, None, None),
    };
    let summary = Summary {
        model: ctx.model.source().display().to_string(),
        architecture: ctx.model.architecture().to_string(),
        device: pathscope::device::describe(&ctx.device),
        image: args.image.display().to_string(),
        method: args.method,
        variant: variant.to_string(),
        path,
        integration,
        baseline,
        steps,
        rule,
        objective: format!("{:?}", Objective::from(args.objective)).to_lowercase(),
        seed: args.seed,
        target: ctx.target,
        label: ctx.labels.name(ctx.target),
        score_input: e.score_input,
        score_baseline: e.score_baseline,
        attribution_sum: e.attribution_sum,
        convergence_delta: e.convergence_delta,
        top5: ctx
            .top5
            .iter()
            .map(|&(index, logit, probability)| TopClass {
                index,
                label: ctx.labels.name(index),
                logit,
                probability,
            })
            .collect(),
        attribution_shape: shape,
        seconds: started.elapsed().as_secs_f64(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let json = serde_json::to_string_pretty(&summary)?;
    let sum_path = dir.join("summary.json");
    write_atomic(&sum_path, json.as_bytes()).with_context(|| format!("writing {}", sum_path.display()))?;
    Ok(map)
}

fn write_png(path: &Path, img: &image::RgbImage) -> Result<()> {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomic(path, &png).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let started = Instant::now();
    let ctx = prepare(&args)?;
    let integration: Integration = args.integration.into();
    let spec = method_spec(&args, integration, ctx.model.normalization(), &ctx.device)?;
    let e = compute(&args, &ctx, &spec, "explaining")?;
    write_result(&args, &ctx, &spec, "main", &e, &args.out, started)?;
    println!(
        "{} → {} ({}), score {:.4}; attribution sum {:.4}{}; wrote {}",
        args.image.display(),
        ctx.labels.name(ctx.target),
        ctx.target,
        e.score_input,
        e.attribution_sum,
        e.convergence_delta
            .map(|d| format!(", convergence delta {d:.4}"))
            .unwrap_or_default(),
        args.out.display()
    );
    if args.compare {
        compare(&args, &ctx, started, &spec, &e)?;
    }
    Ok(())
}

/// The comparison of `--compare`, each variant in `OUT/<variant>/` and side by side in
/// `OUT/compare.png` on one colour scale (the largest of their 99th percentiles), a colour
/// bar under each panel; panel order and range in `OUT/compare.json`.
/// - vanilla: the method with Riemann integration and no re-calibration, signed;
/// - absolute: |vanilla|;
/// - re-calibrated: for a multi-reference method or AGI, its `--recalibration` (valid-ip
///   if vanilla was asked); for IG on the straight line, IG-Uniform re-calibrated with
///   valid-ip (RECAL's defaults: 10 references × 5 points), the multi-reference form of IG
///   the re-calibration paper defines;
/// - IDGI: the same path integrated with IDGI (path methods only).
fn compare(
    args: &ExplainArgs,
    ctx: &Prepared,
    started: Instant,
    main_spec: &MethodSpec,
    main: &Explanation,
) -> Result<()> {
    let norm = ctx.model.normalization();
    let mut variants: Vec<(&str, MethodSpec)> = Vec::new();
    match main_spec {
        MethodSpec::PathIntegral { path, .. } => {
            variants.push(("vanilla", method_spec(args, Integration::Riemann, norm, &ctx.device)?));
            if *path == PathKind::Straight {
                variants.push((
                    "recalibrated",
                    MethodSpec::MultiReference(MultiReferenceConfig {
                        method: MultiReferenceMethod::IgUniform,
                        recalibration: Recalibration::ValidIp,
                        seed: args.seed,
                        batch_size: args.batch_size as usize,
                        ..MultiReferenceConfig::default()
                    }),
                ));
            }
            variants.push(("idgi", method_spec(args, Integration::Idgi, norm, &ctx.device)?));
        }
        MethodSpec::MultiReference(config) => {
            let with = |r| {
                MethodSpec::MultiReference(MultiReferenceConfig {
                    recalibration: r,
                    ..config.clone()
                })
            };
            variants.push(("vanilla", with(Recalibration::Vanilla)));
            variants.push(("recalibrated", with(recalibrated_mode(config.recalibration))));
        }
        MethodSpec::Agi(config) => {
            let with = |r| {
                MethodSpec::Agi(AgiConfig {
                    recalibration: r,
                    ..*config
                })
            };
            variants.push(("vanilla", with(Recalibration::Vanilla)));
            variants.push(("recalibrated", with(recalibrated_mode(config.recalibration))));
        }
        other => variants.push(("vanilla", other.clone())),
    }
    let main_key = format!("{main_spec:?}");
    let mut panels: Vec<(String, Vec<f32>, bool)> = Vec::new();
    for (name, spec) in &variants {
        let computed;
        let e = if format!("{spec:?}") == main_key {
            main
        } else {
            computed = compute(args, ctx, spec, name)?;
            &computed
        };
        let map = write_result(args, ctx, spec, name, e, &args.out.join(name), started)?;
        if *name == "vanilla" {
            let abs: Vec<f32> = map.iter().map(|v| v.abs()).collect();
            panels.push(("vanilla".into(), map, true));
            std::fs::create_dir_all(args.out.join("absolute"))?;
            write_png(
                &args.out.join("absolute/heatmap.png"),
                &overlay(&ctx.crop, &abs, default_span(&abs), Colormap::Reds),
            )?;
            panels.push(("absolute".into(), abs, false));
        } else {
            // Re-calibrated maps are non-negative by construction: a sequential scale.
            let signed = *name != "recalibrated";
            panels.push((name.to_string(), map, signed));
        }
    }
    let span = panels.iter().map(|(_, m, _)| default_span(m)).fold(0f32, f32::max);
    let images: Vec<image::RgbImage> = panels
        .iter()
        .map(|(_, m, signed)| {
            let cmap = if *signed { Colormap::RdBu } else { Colormap::Reds };
            let (w, h) = ctx.crop.dimensions();
            let mut panel = image::RgbImage::from_pixel(w, h + 14, image::Rgb([255, 255, 255]));
            image::imageops::overlay(&mut panel, &overlay(&ctx.crop, m, span, cmap), 0, 0);
            image::imageops::overlay(&mut panel, &colorbar(cmap, w, 8), 0, h as i64 + 6);
            panel
        })
        .collect();
    write_png(&args.out.join("compare.png"), &side_by_side(&images, 8))?;
    let legend = serde_json::json!({
        "panels": panels.iter().map(|(n, _, signed)| serde_json::json!({
            "name": n,
            "colormap": if *signed { "RdBu: −range blue, 0 white, +range red" } else { "Reds: 0 white, range dark red" },
        })).collect::<Vec<_>>(),
        "shared_range": span,
        "range_rule": "largest 99th percentile of |channel-summed attribution| over the panels",
    });
    write_atomic(
        &args.out.join("compare.json"),
        serde_json::to_string_pretty(&legend)?.as_bytes(),
    )?;
    println!(
        "compare: {} ({}) in {}",
        panels.len(),
        panels.iter().map(|p| p.0.as_str()).collect::<Vec<_>>().join(", "),
        args.out.join("compare.png").display()
    );
    Ok(())
}

/// The mode the "re-calibrated" panel shows: the one asked for, valid-ip if that was vanilla.
fn recalibrated_mode(asked: Recalibration) -> Recalibration {
    if asked == Recalibration::Vanilla {
        Recalibration::ValidIp
    } else {
        asked
    }
}
