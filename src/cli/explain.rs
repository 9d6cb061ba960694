//! `pathscope explain`: one image, one method, files in a directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::attribution::gradient::{gradient, input_x_gradient};
use pathscope::attribution::{
    integrated_gradients, Baseline, IgConfig, IntegrationRule, ModelOracle, Monitor, Objective,
};
use pathscope::export::atomic::write_atomic;
use pathscope::export::heatmap::signed_overlay;
use pathscope::export::npy::npy_f32_bytes;
use pathscope::model::labels::Labels;
use pathscope::model::preprocess::{load_rgb, resize_and_crop};
use pathscope::model::Classifier;

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Integrated Gradients on the straight path.
    Ig,
    /// The vanilla gradient ∇f(x).
    Gradient,
    /// x ⊙ ∇f(x).
    InputXGradient,
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
    /// Interpolation points for IG.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    steps: u32,
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
    /// Seed of the noise baselines.
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
    baseline: Option<String>,
    steps: Option<u32>,
    rule: Option<String>,
    objective: String,
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

pub fn run(args: ExplainArgs) -> Result<()> {
    let started = Instant::now();
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
    let norm = model.normalization();
    let input = norm.image_to_tensor(&crop, &device)?.squeeze(0)?;

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

    let objective: Objective = args.objective.into();
    let oracle = ModelOracle::new(&model, objective);
    let progress = ProgressBar::with_draw_target(Some(args.steps as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message("integrating");

    let (attribution, score_input, score_baseline, delta) = match args.method {
        Method::Ig => {
            let baseline = args
                .baseline
                .build(&input, &norm, args.seed)
                .with_context(|| format!("building the `{}` baseline", args.baseline))?;
            let config = IgConfig {
                steps: args.steps as usize,
                rule: args.rule,
                batch_size: args.batch_size as usize,
            };
            let mut on_progress = |done: usize, _total: usize| progress.set_position(done as u64);
            let mut monitor = Monitor {
                on_progress: Some(&mut on_progress),
                cancel: None,
            };
            let r = integrated_gradients(&oracle, &input, &baseline, target, &config, &mut monitor)?;
            progress.finish_and_clear();
            (
                r.attribution,
                r.score_input,
                Some(r.score_baseline),
                Some(r.convergence_delta),
            )
        }
        Method::Gradient => {
            let (s, g) = gradient(&oracle, &input, target)?;
            (g, s, None, None)
        }
        Method::InputXGradient => {
            let (s, g) = input_x_gradient(&oracle, &input, target)?;
            (g, s, None, None)
        }
    };

    let shape = attribution.dims().to_vec();
    let values = attribution.flatten_all()?.to_vec1::<f32>()?;
    if values.iter().any(|v| !v.is_finite()) {
        bail!("the attribution contains NaN or infinite values (model or input produced non-finite gradients)");
    }
    let attribution_sum: f64 = values.iter().map(|&v| v as f64).sum();

    std::fs::create_dir_all(&args.out).with_context(|| format!("creating output directory {}", args.out.display()))?;
    let npy = args.out.join("attribution.npy");
    write_atomic(&npy, &npy_f32_bytes(&values, &shape)).with_context(|| format!("writing {}", npy.display()))?;

    let (h, w) = (shape[1], shape[2]);
    let map = reduce_channels(&values, shape[0], h * w, ChannelReduction::Sum);
    let overlay = signed_overlay(&crop, &map);
    let mut png = Vec::new();
    overlay
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding heatmap.png")?;
    let heat = args.out.join("heatmap.png");
    write_atomic(&heat, &png).with_context(|| format!("writing {}", heat.display()))?;

    let summary = Summary {
        model: model.source().display().to_string(),
        architecture: model.architecture().to_string(),
        device: pathscope::device::describe(&device),
        image: args.image.display().to_string(),
        method: args.method,
        baseline: matches!(args.method, Method::Ig).then(|| args.baseline.to_string()),
        steps: matches!(args.method, Method::Ig).then_some(args.steps),
        rule: matches!(args.method, Method::Ig).then(|| args.rule.to_string()),
        objective: format!("{objective:?}").to_lowercase(),
        target,
        label: labels.name(target),
        score_input,
        score_baseline,
        attribution_sum,
        convergence_delta: delta,
        top5: top5
            .iter()
            .map(|&(index, logit, probability)| TopClass {
                index,
                label: labels.name(index),
                logit,
                probability,
            })
            .collect(),
        attribution_shape: shape,
        seconds: started.elapsed().as_secs_f64(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let json = serde_json::to_string_pretty(&summary)?;
    let sum_path = args.out.join("summary.json");
    write_atomic(&sum_path, json.as_bytes()).with_context(|| format!("writing {}", sum_path.display()))?;

    println!(
        "{} → {} ({}), score {:.4}; attribution sum {:.4}{}; wrote {}",
        args.image.display(),
        summary.label,
        target,
        score_input,
        attribution_sum,
        delta.map(|d| format!(", convergence delta {d:.4}")).unwrap_or_default(),
        args.out.display()
    );
    Ok(())
}
