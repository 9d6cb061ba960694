//! `pathscope explain`: one image, one method, files in a directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::Args;
use serde::Serialize;

use pathscope::attribution::catalog::{Family, MethodId, MethodOptions, Variant};
use pathscope::attribution::display::{reduce_channels, ChannelReduction};
use pathscope::attribution::method::{Explanation, MethodSpec, PathKind};
use pathscope::attribution::path::Integration;
use pathscope::attribution::recalibration::Recalibration;
use pathscope::export::atomic::write_atomic;
use pathscope::export::heatmap::{colorbar, default_span, overlay, side_by_side, signed_overlay};
use pathscope::export::npy::npy_f32_bytes;
use pathscope::model::labels::Labels;
use pathscope::model::preprocess::load_rgb;
use pathscope::model::{Classifier, Preprocessing};
use pathscope::render::colormap::Colormap;

use super::common::{self, load_model, top_k, MethodArgs, PreprocessArgs};

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model weights (.safetensors or PyTorch .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The photo to explain (PNG, JPEG, TIFF, WebP, BMP).
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// The method, METHOD[:PATH][:INTEGRATION][:RECALIBRATION]: ig, gradient,
    /// input-x-gradient, smoothgrad, smoothgrad-sq, vargrad, ig-uniform, ig-sg, ig-sq,
    /// expected-gradients or agi, with options such as `ig:blur:idgi` or
    /// `ig-uniform:valid-ref`. Options written here win over the three flags below.
    #[arg(long, default_value = "ig")]
    method: String,
    /// The path of `--method ig`: straight, blur or guided.
    #[arg(long, default_value = "straight")]
    path: PathKind,
    /// How gradients along the path become the attribution: riemann or idgi.
    #[arg(long, default_value = "riemann")]
    integration: Integration,
    /// Re-calibration of the multi-reference methods and AGI: vanilla, valid-ip or valid-ref.
    #[arg(long, default_value = "valid-ip")]
    recalibration: Recalibration,
    #[command(flatten)]
    m: MethodArgs,
    /// Also write the vanilla, absolute and IDGI variants, each in its own directory, and a
    /// side-by-side `compare.png` with one colour scale.
    #[arg(long)]
    compare: bool,
    /// `top1` (the predicted class) or a class index.
    #[arg(long, default_value = "top1")]
    target: String,
    /// Label file, one class name per line, as many as the model has outputs (default:
    /// the model's sidecar or metadata, else ImageNet's for 1000 outputs).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// cpu, cpu:generic (candle's ops and autograd only, the path a GPU takes), or cuda[:N]
    /// in builds with the `cuda` feature.
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
    /// The preprocessing in force (`resize 256 bilinear, crop 224×224, …`) and its source.
    preprocessing: String,
    preprocessing_source: String,
    labels_source: String,
    /// The family (`ig`, `gradient`, ...), as `--method` names it.
    method: String,
    /// The method and its options in the catalog's canonical text form (`ig:blur:idgi`).
    method_id: String,
    variant: String,
    path: Option<String>,
    integration: Option<String>,
    baseline: Option<String>,
    steps: Option<usize>,
    rule: Option<String>,
    /// The tolerance mode: its tolerance, the gradients and pilot forwards it used,
    /// whether it met both criteria, and its own estimate of the map's relative error.
    tolerance: Option<f64>,
    gradient_points: Option<usize>,
    forward_points: Option<usize>,
    converged: Option<bool>,
    map_error_estimate: Option<f64>,
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
    compute: pathscope::device::Compute,
}

fn prepare(args: &ExplainArgs) -> Result<Prepared> {
    let compute = pathscope::device::select_compute(&args.device)?;
    let device = compute.device.clone();
    let overrides = args.preprocess.overrides(args.labels.as_deref())?;
    let model = load_model(args.model.as_deref(), &compute, &overrides)?;
    let labels = model.labels().clone();
    let photo = load_rgb(&args.image)?;
    let crop = model.preprocessing().apply(&photo);
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
        compute,
    })
}

/// The method `--method` and the option flags name.
fn method_id(args: &ExplainArgs) -> Result<MethodId> {
    let defaults = MethodOptions {
        path: args.path,
        integration: args.integration,
        recalibration: args.recalibration,
    };
    MethodId::parse_over(&args.method, defaults).map_err(|e| anyhow::anyhow!("--method: {e}"))
}

fn method_spec(
    args: &ExplainArgs,
    method: MethodId,
    pre: &Preprocessing,
    device: &candle_core::Device,
) -> Result<MethodSpec> {
    common::method_spec(&args.m, method, pre, device)
}

fn compute(args: &ExplainArgs, ctx: &Prepared, spec: &MethodSpec, what: &str) -> Result<Explanation> {
    common::compute(&args.m, &ctx.model, &ctx.input, ctx.target, spec, what, false)
}

/// Writes attribution.npy, heatmap.png and summary.json for one result into `dir`.
#[allow(clippy::too_many_arguments)]
fn write_result(
    args: &ExplainArgs,
    ctx: &Prepared,
    method: MethodId,
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
            ..
        } => (
            Some(path.to_string()),
            Some(integration.to_string()),
            (*path != PathKind::Blur).then(|| baseline.to_string()),
            Some(*steps),
            (*path == PathKind::Straight && e.quadrature.is_none()).then(|| rule.to_string()),
        ),
        _ => (None, None, None, None, None),
    };
    let summary = Summary {
        model: ctx.model.source().display().to_string(),
        architecture: ctx.model.architecture().to_string(),
        device: ctx.compute.describe(),
        image: args.image.display().to_string(),
        preprocessing: ctx.model.preprocessing().describe(),
        preprocessing_source: ctx.model.conventions().preprocessing_source.clone(),
        labels_source: ctx.model.conventions().labels_source.clone(),
        method: method.family().to_string(),
        method_id: method.to_string(),
        variant: variant.to_string(),
        path,
        integration,
        baseline,
        steps,
        rule,
        tolerance: e.quadrature.map(|q| q.tolerance),
        gradient_points: e.quadrature.map(|q| q.gradient_points),
        forward_points: e.quadrature.map(|q| q.forward_points),
        converged: e.quadrature.map(|q| q.converged),
        map_error_estimate: e.quadrature.map(|q| q.map_error_estimate),
        objective: args.m.objective.to_string(),
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
    let method = method_id(&args)?;
    let ctx = prepare(&args)?;
    let spec = method_spec(&args, method, ctx.model.preprocessing(), &ctx.device)?;
    let e = compute(&args, &ctx, &spec, "explaining")?;
    write_result(&args, &ctx, method, &spec, "main", &e, &args.out, started)?;
    println!(
        "{} → {} ({}), score {:.4}; attribution sum {:.4}{}{}; wrote {}",
        args.image.display(),
        ctx.labels.name(ctx.target),
        ctx.target,
        e.score_input,
        e.attribution_sum,
        e.convergence_delta
            .map(|d| format!(", convergence delta {d:.4}"))
            .unwrap_or_default(),
        e.quadrature
            .map(|q| format!(
                "; {} gradients + {} pilot forwards, {} tolerance {} (map error estimate {:.2}%)",
                q.gradient_points,
                q.forward_points,
                if q.converged { "within" } else { "NOT within" },
                q.tolerance,
                100.0 * q.map_error_estimate
            ))
            .unwrap_or_default(),
        args.out.display()
    );
    if args.compare {
        compare(&args, &ctx, started, method, &e)?;
    }
    Ok(())
}

/// The comparison of `--compare`, each variant in `OUT/<variant>/` and side by side in
/// `OUT/compare.png` on one colour scale (the largest of their 99th percentiles), a colour
/// bar under each panel; panel order and range in `OUT/compare.json`. The panels are the
/// catalog's comparison of the method ([`MethodId::variant`]): vanilla, its absolute
/// value, re-calibrated (with `--recalibration`, valid-ip if vanilla was asked; IG on the
/// straight line compares with IG-Uniform at RECAL's defaults, 10 references × 5 points)
/// and IDGI (path methods).
fn compare(
    args: &ExplainArgs,
    ctx: &Prepared,
    started: Instant,
    main_method: MethodId,
    main: &Explanation,
) -> Result<()> {
    let recalibration = recalibrated_mode(main_method.recalibration().unwrap_or(args.recalibration));
    let mut panels: Vec<(String, Vec<f32>, bool)> = Vec::new();
    for variant in [Variant::Vanilla, Variant::Recalibrated, Variant::Idgi] {
        let Some(method) = main_method.variant(variant, recalibration) else {
            continue;
        };
        let name = variant.name();
        let spec = if method.family() == Family::IgUniform && main_method.family() == Family::Ig {
            // IG's re-calibrated panel: IG-Uniform at RECAL's defaults, whatever the flags.
            method.spec(&pathscope::attribution::catalog::MethodParams {
                seed: args.m.seed,
                batch_size: args.m.batch_size as usize,
                ..Default::default()
            })?
        } else {
            method_spec(args, method, ctx.model.preprocessing(), &ctx.device)?
        };
        let computed;
        let e = if method == main_method {
            main
        } else {
            computed = compute(args, ctx, &spec, name)?;
            &computed
        };
        let map = write_result(args, ctx, method, &spec, name, e, &args.out.join(name), started)?;
        if variant == Variant::Vanilla {
            let abs: Vec<f32> = map.iter().map(|v| v.abs()).collect();
            panels.push((name.into(), map, true));
            let absolute = Variant::Absolute.name();
            std::fs::create_dir_all(args.out.join(absolute))?;
            write_png(
                &args.out.join(absolute).join("heatmap.png"),
                &overlay(&ctx.crop, &abs, default_span(&abs), Colormap::Reds),
            )?;
            panels.push((absolute.into(), abs, false));
        } else {
            // Re-calibrated maps are non-negative by construction: a sequential scale.
            panels.push((name.to_string(), map, variant.is_signed()));
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
