//! `pathscope explain`: one image, one method, files in a directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::Args;
use serde::Serialize;

use pathscope::attribution::agi::AgiConfig;
use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::attribution::method::{Explanation, MethodSpec, PathKind};
use pathscope::attribution::multi_reference::{MultiReferenceConfig, MultiReferenceMethod};
use pathscope::attribution::path::Integration;
use pathscope::attribution::recalibration::Recalibration;
use pathscope::attribution::Objective;
use pathscope::export::atomic::write_atomic;
use pathscope::export::heatmap::{colorbar, default_span, overlay, side_by_side, signed_overlay};
use pathscope::export::npy::npy_f32_bytes;
use pathscope::model::labels::Labels;
use pathscope::model::preprocess::{load_rgb, resize_and_crop};
use pathscope::model::{Classifier, Normalization};
use pathscope::render::colormap::Colormap;

use super::common::{self, load_model, top_k, IntegrationArg, Method, MethodArgs, PathArg, RecalibrationArg};
// Other commands name the shared enums through `explain`, where they used to live.
#[allow(unused_imports)]
pub use super::common::ObjectiveArg;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model weights (.safetensors or PyTorch .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The photo to explain (PNG, JPEG, TIFF, WebP, BMP).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    #[arg(long, value_enum, default_value = "ig")]
    method: Method,
    /// The path of `--method ig`.
    #[arg(long, value_enum, default_value = "straight")]
    path: PathArg,
    /// How gradients along the path become the attribution.
    #[arg(long, value_enum, default_value = "riemann")]
    integration: IntegrationArg,
    /// Re-calibration of the multi-reference methods and AGI.
    #[arg(long, value_enum, default_value = "valid-ip")]
    recalibration: RecalibrationArg,
    #[command(flatten)]
    m: MethodArgs,
    /// Also write the vanilla, absolute and IDGI variants, each in its own directory, and a
    /// side-by-side `compare.png` with one colour scale.
    #[arg(long)]
    compare: bool,
    /// `top1` (the predicted class) or a class index.
    #[arg(long, default_value = "top1")]
    target: String,
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
    let target = common::resolve_target(&args.target, &logits, model.num_classes())?;
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

/// The method the flags describe, with `integration` overriding `--integration`.
fn method_spec(
    args: &ExplainArgs,
    integration: Integration,
    norm: Normalization,
    device: &candle_core::Device,
) -> Result<MethodSpec> {
    common::method_spec(
        &args.m,
        args.method,
        args.path.into(),
        integration,
        args.recalibration.into(),
        norm,
        device,
    )
}

fn compute(args: &ExplainArgs, ctx: &Prepared, spec: &MethodSpec, what: &str) -> Result<Explanation> {
    common::compute(&args.m, &ctx.model, &ctx.input, ctx.target, spec, what, false)
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
        objective: format!("{:?}", Objective::from(args.m.objective)).to_lowercase(),
        seed: args.m.seed,
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
                        seed: args.m.seed,
                        batch_size: args.m.batch_size as usize,
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
