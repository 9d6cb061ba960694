//! `pathscope converge`: the convergence study of one image: every rule, the tolerance
//! mode and IDGI against gradient evaluations, as a CSV, a figure and a summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::Args;
use serde::Serialize;

use pathscope::attribution::adaptive::MAP_TOLERANCE_FACTOR;
use pathscope::attribution::convergence::{convergence_study, Direction, Scheme, StudyConfig};
use pathscope::attribution::{Baseline, ModelOracle, Monitor, Objective};
use pathscope::export::atomic::write_atomic;
use pathscope::export::chart::chart_scene;
use pathscope::export::convergence_figure::convergence_charts;
use pathscope::export::metadata::{shell_command, FigureMetadata};
use pathscope::export::{write_figure, FigureFormat};
use pathscope::model::preprocess::load_rgb;

use super::common::{self, load_model, PreprocessArgs};

#[derive(Args, Debug)]
pub struct ConvergeArgs {
    /// Model weights (.safetensors or .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The photo whose straight path is studied.
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// `top1` (the predicted class) or a class index.
    #[arg(long, default_value = "top1")]
    target: String,
    /// Label file, one class name per line, as many as the model has outputs.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    /// The path's start x′: black, white, zero, blur[:SIGMA], uniform, gaussian[:FRACTION] or an image file.
    #[arg(long, default_value = "black")]
    baseline: Baseline,
    /// What to measure, comma-separated: left, right, middle, trapezoid, gauss-legendre,
    /// adaptive (the tolerance mode, one row per refinement round), idgi.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "left,right,middle,trapezoid,gauss-legendre,adaptive,idgi"
    )]
    schemes: Vec<Scheme>,
    /// Points of the fixed rules and IDGI, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64,128")]
    steps: Vec<usize>,
    /// The tolerance mode's tolerance (it refines until completeness is within it and its
    /// map estimate within twice it, or --max-points).
    #[arg(long, default_value_t = 0.002)]
    tolerance: f64,
    /// The tolerance mode's most gradients.
    #[arg(long, default_value_t = 256)]
    max_points: usize,
    /// to-input (baseline → input), to-baseline (the path reversed) or both, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "to-input,to-baseline")]
    directions: Vec<Direction>,
    /// Gauss–Legendre points of the reference map every error is measured against.
    #[arg(long, default_value_t = 1024)]
    reference_steps: usize,
    /// The explained scalar: logit, probability or log-probability.
    #[arg(long, default_value = "logit")]
    objective: Objective,
    /// Interpolation points per forward/backward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Seed of the random baselines.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Figure formats, comma-separated: png, svg, pdf.
    #[arg(long, value_delimiter = ',', default_value = "png")]
    format: Vec<FigureFormat>,
    /// Raster resolution of the PNG figure.
    #[arg(long, default_value_t = 200.0)]
    dpi: f32,
    /// cpu, cpu:generic (candle's ops and autograd only, the path a GPU takes), or cuda[:N]
    /// in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output directory: convergence.csv, convergence.png (…), summary.json.
    #[arg(long, value_name = "DIR", default_value = "pathscope-converge")]
    out: PathBuf,
}

/// The fewest gradients each scheme needed for a map error of 1 % (and of 0.5 %).
#[derive(Serialize)]
struct Reached {
    direction: String,
    scheme: String,
    map_error_1_percent: Option<usize>,
    map_error_half_percent: Option<usize>,
}

#[derive(Serialize)]
struct Summary {
    model: String,
    image: String,
    target: usize,
    label: String,
    baseline: String,
    objective: String,
    reference_steps: usize,
    reference_completeness_error: f64,
    score_change: f64,
    tolerance: f64,
    map_tolerance: f64,
    max_points: usize,
    reached: Vec<Reached>,
    seconds: f64,
    command: String,
}

pub fn run(args: ConvergeArgs) -> Result<()> {
    let started = Instant::now();
    if !(args.tolerance > 0.0 && args.tolerance < 1.0) {
        bail!("--tolerance must be a fraction between 0 and 1, got {}", args.tolerance);
    }
    if !(args.dpi.is_finite() && (10.0..=2400.0).contains(&args.dpi)) {
        bail!("--dpi must be between 10 and 2400, got {}", args.dpi);
    }
    let config = StudyConfig {
        schemes: args.schemes.clone(),
        steps: args.steps.clone(),
        tolerance: args.tolerance,
        max_points: args.max_points,
        directions: args.directions.clone(),
        reference_steps: args.reference_steps,
        batch_size: args.batch_size,
    };
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;

    // The output directory first: a study takes minutes, and should not end in "cannot write".
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let compute = pathscope::device::select_compute(&args.device)?;
    let device = compute.device.clone();
    let overrides = args.preprocess.overrides(args.labels.as_deref())?;
    let model = load_model(args.model.as_deref(), &compute, &overrides)?;
    let photo = load_rgb(&args.image)?;
    let crop = model.preprocessing().apply(&photo);
    let norm = model.normalization();
    let input = norm.image_to_tensor(&crop, &device)?.squeeze(0)?;
    let logits = model.forward(&input.unsqueeze(0)?)?.i(0)?.to_vec1::<f32>()?;
    let target = common::resolve_target(&args.target, &logits, model.num_classes())?;
    let baseline = args.baseline.build(&input, &norm, args.seed)?;
    let oracle = ModelOracle::new(&model, args.objective);

    let progress = common::progress_bar("convergence study (gradients)");
    let mut on_progress = |done: usize, total: usize| {
        progress.set_length(total as u64);
        progress.set_position(done as u64);
    };
    let mut monitor = Monitor {
        on_progress: Some(&mut on_progress),
        cancel: None,
    };
    let study = convergence_study(&oracle, &input, &baseline, target, &config, &mut monitor)
        .context("computing the convergence study")?;
    progress.finish_and_clear();

    let csv = args.out.join("convergence.csv");
    write_atomic(&csv, study.to_csv().as_bytes()).with_context(|| format!("writing {}", csv.display()))?;

    let label = model.labels().name(target);
    let caption = format!(
        "{} — {label} ({target}), {} baseline; errors against {} Gauss–Legendre points (their completeness error {:.1e})",
        args.image.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        args.baseline.label(),
        study.reference_steps,
        study.reference_completeness_error
    );
    let charts = convergence_charts(&study, args.tolerance);
    let scene = chart_scene(&charts, 2, Some(&caption), args.dpi)?;
    let command = shell_command(&std::env::args().collect::<Vec<_>>());
    let meta = FigureMetadata {
        title: "Convergence study".into(),
        command: command.clone(),
        settings: serde_json::json!({
            "baseline": args.baseline.to_string(),
            "schemes": args.schemes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "steps": args.steps,
            "tolerance": args.tolerance,
            "reference_steps": args.reference_steps,
            "target": target,
        }),
    };
    let mut written = vec![csv.display().to_string()];
    for format in &args.format {
        let path = args.out.join(format!("convergence.{}", format.extension()));
        write_figure(&path, &scene, *format, &meta)?;
        written.push(path.display().to_string());
    }

    let mut reached = Vec::new();
    println!(
        "{:<14} {:<28} {:>12} {:>12}",
        "direction", "scheme", "gradients≤1%", "gradients≤0.5%"
    );
    for &direction in &args.directions {
        for &scheme in &args.schemes {
            let r = Reached {
                direction: direction.to_string(),
                scheme: scheme.to_string(),
                map_error_1_percent: study.points_to_reach(scheme, direction, f64::INFINITY, 0.01),
                map_error_half_percent: study.points_to_reach(scheme, direction, f64::INFINITY, 0.005),
            };
            let show = |v: Option<usize>| v.map_or_else(|| "—".to_string(), |n| n.to_string());
            println!(
                "{:<14} {:<28} {:>12} {:>12}",
                direction.to_string(),
                scheme.label(),
                show(r.map_error_1_percent),
                show(r.map_error_half_percent)
            );
            reached.push(r);
        }
    }
    let summary = Summary {
        model: model.source().display().to_string(),
        image: args.image.display().to_string(),
        target,
        label,
        baseline: args.baseline.to_string(),
        objective: args.objective.to_string(),
        reference_steps: study.reference_steps,
        reference_completeness_error: study.reference_completeness_error,
        score_change: study.score_change,
        tolerance: args.tolerance,
        map_tolerance: MAP_TOLERANCE_FACTOR * args.tolerance,
        max_points: args.max_points,
        reached,
        seconds: started.elapsed().as_secs_f64(),
        command,
    };
    let json = args.out.join("summary.json");
    write_atomic(&json, serde_json::to_string_pretty(&summary)?.as_bytes())
        .with_context(|| format!("writing {}", json.display()))?;
    written.push(json.display().to_string());
    println!(
        "{} rows in {:.1} s; wrote {}",
        study.rows.len(),
        started.elapsed().as_secs_f64(),
        written.join(", ")
    );
    Ok(())
}
