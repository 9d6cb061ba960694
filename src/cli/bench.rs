//! `pathscope bench`: how fast the gradient oracle and IG run on this machine, per model:
//! forward, forward + input gradient at several batch sizes (ms per point), IG end to end,
//! and the machine's f32 matrix-multiply rate measured in the same run (the ceiling a
//! GEMM-bound network can approach). Prints a table and writes JSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use serde::Serialize;

use pathscope::attribution::{
    integrated_gradients, Baseline, GradientOracle, IgConfig, IntegrationRule, ModelOracle, Monitor, Objective,
};
use pathscope::device::Compute;
use pathscope::export::atomic::write_atomic;
use pathscope::model::preprocess::decode_rgb;
use pathscope::model::Classifier;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Models to time (.safetensors/.pth); the embedded SqueezeNet-1.1 if none.
    #[arg(long = "model", value_name = "FILE")]
    models: Vec<PathBuf>,
    /// Interpolation batch sizes to time the gradient oracle at.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32")]
    batch_sizes: Vec<usize>,
    /// IG step counts to time end to end.
    #[arg(long, value_delimiter = ',', default_value = "50,200")]
    steps: Vec<usize>,
    /// Repetitions of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Also time the studio's default run (its default settings, all panels, through the
    /// engine as the studio submits them) on the first model and the sample photo: seconds
    /// to the first map and to all maps, median of --repeats fresh engines.
    #[arg(long)]
    studio_run: bool,
    /// Time to a converged map on the photos of this folder (the first --photos of them,
    /// sorted by name): for each model, a `--reference-steps` Gauss–Legendre reference per
    /// photo (not timed; written with the input to --converged-out for the Captum side),
    /// then the tolerance mode timed and checked against the reference.
    #[arg(long, value_name = "DIR")]
    converged: Option<PathBuf>,
    /// Photos of --converged to use (all if 0).
    #[arg(long, default_value_t = 0)]
    photos: usize,
    /// The tolerance mode's tolerance in --converged.
    #[arg(long, default_value_t = 0.01)]
    tolerance: f64,
    /// Gauss–Legendre points of --converged's reference maps.
    #[arg(long, default_value_t = 1024)]
    reference_steps: usize,
    /// Where --converged writes inputs, references and its JSON.
    #[arg(long, value_name = "DIR", default_value = "bench/out/converged")]
    converged_out: PathBuf,
    /// Where to write the JSON results.
    #[arg(long, value_name = "FILE", default_value = "pathscope-bench.json")]
    json: PathBuf,
    /// cpu, cpu:generic (candle's ops and autograd only, the path a GPU takes), or cuda[:N]
    /// in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Serialize)]
struct OracleTiming {
    batch_size: usize,
    forward_ms_per_point: f64,
    forward_gradient_ms_per_point: f64,
    /// Achieved rate: 2 FLOP per multiply–add of the forward pass.
    forward_gflops: f64,
    /// The input gradient of a convolution or linear layer costs as many multiply–adds as
    /// its forward, so a forward + input-gradient point is 4 FLOP per forward MAC.
    forward_gradient_gflops: f64,
}

#[derive(Serialize)]
struct IgTiming {
    steps: usize,
    batch_size: usize,
    seconds: f64,
    /// The process's peak resident memory during the timed runs (Linux; reset before them).
    peak_rss_mb: Option<f64>,
}

/// Resets the process's peak resident set size (Linux: `5` to /proc/self/clear_refs), so
/// that [`peak_rss_mb`] measures what comes after.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size in MiB (VmHWM), where the system says.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[derive(Serialize)]
struct ModelReport {
    model: String,
    architecture: String,
    /// Multiply–adds of one 224×224 forward pass.
    forward_macs: u64,
    oracle: Vec<OracleTiming>,
    best_batch_size: usize,
    ig: Vec<IgTiming>,
}

#[derive(Serialize)]
struct Report {
    threads: usize,
    /// `CPU`, `CPU (device-generic path)` or `CUDA`.
    device: String,
    matmul_gflops: f64,
    models: Vec<ModelReport>,
    studio_run: Option<StudioRun>,
    /// The same run with every panel its own job (IDGI walks the path again): the studio
    /// before the walks were shared, timed in the same run.
    studio_run_separate_walks: Option<StudioRun>,
}

/// The studio's default run: when each panel's map arrived, seconds after Run.
#[derive(Serialize)]
struct StudioRun {
    model: String,
    settings: String,
    /// (panel, seconds), in the order they finished; medians over the repeats.
    panels: Vec<(String, f64)>,
    first_map_seconds: f64,
    all_maps_seconds: f64,
}

/// Runs the studio's default settings once on a fresh engine: (panel, seconds) as each
/// map finishes.
/// `share_walks`: as the studio submits them (IDGI on the vanilla panel's walk); otherwise
/// every panel its own job, as before the walks were shared.
fn studio_run_once(
    model: &std::sync::Arc<Classifier>,
    photo: &image::RgbImage,
    share_walks: bool,
) -> Result<Vec<(String, f64)>> {
    use pathscope::engine::plan::{walk_groups, RunPlan};
    use pathscope::engine::{Engine, Event};
    let plan = RunPlan::studio_default();
    let crop = model.preprocessing().apply(photo);
    let input = model
        .normalization()
        .image_to_tensor(&crop, model.device())?
        .squeeze(0)?;
    let logits = model.forward(&input.unsqueeze(0)?)?.squeeze(0)?.to_vec1::<f32>()?;
    let target = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap_or(0);
    let input = std::sync::Arc::new(input);
    let (requests, refused) = plan.requests(&input, target);
    if let Some((v, e)) = refused.first() {
        anyhow::bail!("the studio's default {v} panel is refused: {e}");
    }
    let mut engine = Engine::new(model.clone());
    let started = Instant::now();
    let mut jobs = Vec::new();
    let groups = if share_walks {
        walk_groups(requests)
    } else {
        requests.into_iter().map(|r| vec![r]).collect()
    };
    for group in groups {
        let variants: Vec<_> = group.iter().map(|(v, _)| *v).collect();
        let ids = engine.submit_walk(group.into_iter().map(|(_, r)| r).collect());
        jobs.extend(ids.into_iter().zip(variants));
    }
    let mut finished = Vec::new();
    for (job, variant) in jobs {
        let events = engine.wait(job, std::time::Duration::from_secs(600));
        match events.iter().rev().find(|e| e.job() == job && e.ends_job()) {
            Some(Event::Finished { .. }) => finished.push((variant.to_string(), started.elapsed().as_secs_f64())),
            Some(Event::Failed { message, .. }) => anyhow::bail!("the {variant} panel failed: {message}"),
            _ => anyhow::bail!("the {variant} panel did not finish within 10 minutes"),
        }
    }
    Ok(finished)
}

fn studio_run(
    model: &std::sync::Arc<Classifier>,
    photo: &image::RgbImage,
    repeats: usize,
    share_walks: bool,
) -> Result<StudioRun> {
    let name = model.source().display().to_string();
    let runs: Vec<Vec<(String, f64)>> = (0..repeats.max(1))
        .map(|_| studio_run_once(model, photo, share_walks))
        .collect::<Result<_>>()?;
    let panels: Vec<(String, f64)> = runs[0]
        .iter()
        .enumerate()
        .map(|(i, (label, _))| (label.clone(), median(runs.iter().map(|r| r[i].1).collect())))
        .collect();
    let first = panels.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let all = panels.iter().map(|p| p.1).fold(0.0, f64::max);
    Ok(StudioRun {
        model: name,
        settings: format!(
            "IG, black baseline, 50 Gauss–Legendre points; IDGI {}; IG-Uniform (valid-ip), 10 references",
            if share_walks {
                "on the same walk"
            } else {
                "walking the path again (every panel its own job)"
            }
        ),
        panels,
        first_map_seconds: first,
        all_maps_seconds: all,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(repeats: usize, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    f()?; // warm-up
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    Ok(median(t))
}

/// f32 GEMM rate: 1024×1024 by 1024×1024 through candle (the same GEMM the convolutions use).
fn matmul_gflops(repeats: usize, device: &Device) -> Result<f64> {
    let n = 1024;
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?;
    let s = time(repeats.max(3), || {
        let c = a.matmul(&b)?;
        // A GPU queues the product: wait for it.
        device.synchronize()?;
        Ok(c)
    })?;
    Ok(2.0 * (n as f64).powi(3) / s / 1e9)
}

/// One photo of the time-to-converged bench.
#[derive(Serialize)]
struct ConvergedPhoto {
    photo: String,
    target: usize,
    gradient_points: usize,
    forward_points: usize,
    seconds: f64,
    completeness_error: f64,
    map_error: f64,
    /// Both bench criteria met (completeness ≤ 1 %, map ≤ 2 % of the reference).
    met: bool,
}

#[derive(Serialize)]
struct ConvergedModel {
    model: String,
    architecture: String,
    tolerance: f64,
    reference_steps: usize,
    photos: Vec<ConvergedPhoto>,
}

fn rel_l2(a: &[f32], reference: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(reference).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = reference.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// The tolerance mode against a Gauss–Legendre reference on each photo; inputs and
/// references go to `out/<model>/<photo>.{input,reference}.npy` for bench/captum_converged.py.
fn converged(args: &BenchArgs, dir: &std::path::Path, model: &Classifier) -> Result<ConvergedModel> {
    use pathscope::attribution::method::{explain, MethodSpec, PathKind, RunOptions};
    use pathscope::attribution::path::Integration;
    use pathscope::export::npy::npy_f32_bytes;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            matches!(ext.as_str(), "png" | "jpg" | "jpeg")
        })
        .collect();
    files.sort();
    if args.photos > 0 {
        files.truncate(args.photos);
    }
    if files.is_empty() {
        anyhow::bail!("{}: no PNG or JPEG photos", dir.display());
    }
    let stem = model
        .source()
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    let out = args.converged_out.join(&stem);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let oracle = ModelOracle::new(model, Objective::Logit);
    let norm = model.normalization();
    let mut photos = Vec::new();
    for file in &files {
        let crop = model
            .preprocessing()
            .apply(&pathscope::model::preprocess::load_rgb(file)?);
        let input = norm.image_to_tensor(&crop, model.device())?.squeeze(0)?;
        let logits = model.forward(&input.unsqueeze(0)?)?.squeeze(0)?.to_vec1::<f32>()?;
        let target = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap_or(0);
        let name = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let baseline = Baseline::Zero.build(&input, &norm, 0)?;
        let reference = integrated_gradients(
            &oracle,
            &input,
            &baseline,
            target,
            &IgConfig {
                steps: args.reference_steps,
                rule: IntegrationRule::GaussLegendre,
                batch_size: 16,
            },
            &mut Monitor::none(),
        )?;
        let reference_map = reference.attribution.flatten_all()?.to_vec1::<f32>()?;
        let change = reference.score_input as f64 - reference.score_baseline as f64;
        let dims = input.dims().to_vec();
        write_atomic(
            &out.join(format!("{name}.input.npy")),
            &npy_f32_bytes(&input.flatten_all()?.to_vec1::<f32>()?, &dims),
        )?;
        write_atomic(
            &out.join(format!("{name}.reference.npy")),
            &npy_f32_bytes(&reference_map, &dims),
        )?;
        let spec = MethodSpec::PathIntegral {
            path: PathKind::Straight,
            integration: Integration::Riemann,
            baseline: Baseline::Zero,
            steps: pathscope::attribution::adaptive::DEFAULT_MAX_POINTS,
            rule: IntegrationRule::GaussLegendre,
            tolerance: Some(args.tolerance),
        };
        let options = RunOptions {
            batch_size: 16,
            ..RunOptions::default()
        };
        let started = Instant::now();
        let e = explain(&oracle, &input, &norm, target, &spec, &options, &mut Monitor::none())?;
        let seconds = started.elapsed().as_secs_f64();
        let map = e.attribution.flatten_all()?.to_vec1::<f32>()?;
        let q = e.quadrature.context("the tolerance mode reported no points")?;
        let completeness_error = (e.attribution_sum - change).abs() / change.abs().max(1e-12);
        let map_error = rel_l2(&map, &reference_map);
        let met = completeness_error <= 0.01 && map_error <= 0.02;
        println!(
            "  {name:<28} {:>4} gradients + {:>2} forwards {seconds:>6.2} s  completeness {:>6.2}%  map {:>6.2}%{}",
            q.gradient_points,
            q.forward_points,
            100.0 * completeness_error,
            100.0 * map_error,
            if met { "" } else { "  (criteria NOT met)" }
        );
        photos.push(ConvergedPhoto {
            photo: name,
            target,
            gradient_points: q.gradient_points,
            forward_points: q.forward_points,
            seconds,
            completeness_error,
            map_error,
            met,
        });
    }
    Ok(ConvergedModel {
        model: model.source().display().to_string(),
        architecture: model.architecture().to_string(),
        tolerance: args.tolerance,
        reference_steps: args.reference_steps,
        photos,
    })
}

/// A model to time on `compute` (the embedded SqueezeNet-1.1 when `source` is `None`).
fn load(source: Option<&std::path::Path>, compute: &Compute) -> Result<Classifier> {
    super::common::load_model(source, compute, &Default::default())
}

pub fn run(args: BenchArgs) -> Result<()> {
    let compute = pathscope::device::select_compute(&args.device)?;
    let device = compute.device.clone();
    if let Some(dir) = args.converged.clone() {
        let sources: Vec<Option<PathBuf>> = if args.models.is_empty() {
            vec![None]
        } else {
            args.models.iter().cloned().map(Some).collect()
        };
        let mut reports = Vec::new();
        for source in sources {
            let model = load(source.as_deref(), &compute)?;
            println!(
                "{}: tolerance {} against a {}-point Gauss–Legendre reference",
                model.architecture(),
                args.tolerance,
                args.reference_steps
            );
            reports.push(converged(&args, &dir, &model)?);
        }
        write_atomic(&args.json, serde_json::to_string_pretty(&reports)?.as_bytes())
            .with_context(|| format!("writing {}", args.json.display()))?;
        println!("\nwrote {}", args.json.display());
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let gflops = matmul_gflops(args.repeats, &device)?;
    println!(
        "machine: {threads} threads; device {}, f32 matrix multiply {gflops:.1} GFLOP/s (1024³, candle)",
        compute.describe()
    );
    let sample = &pathscope::assets::SAMPLE_IMAGES[0];
    let photo = decode_rgb(std::path::Path::new(sample.name), sample.bytes)?;
    let mut models = Vec::new();
    let sources: Vec<Option<PathBuf>> = if args.models.is_empty() {
        vec![None]
    } else {
        args.models.iter().cloned().map(Some).collect()
    };
    for source in sources {
        let model = load(source.as_deref(), &compute)?;
        let name = model.source().display().to_string();
        let (h, w) = model.preprocessing().crop;
        let macs = model.forward_macs(h as usize, w as usize).unwrap_or(0);
        println!(
            "\n{} ({name}): {:.3} G multiply-adds per forward pass",
            model.architecture(),
            macs as f64 / 1e9
        );
        println!(
            "{:>6} {:>14} {:>10} {:>16} {:>10}",
            "batch", "forward ms/pt", "GFLOP/s", "fwd+grad ms/pt", "GFLOP/s"
        );
        let input = model.preprocessing().image_to_tensor(&photo, &device)?.squeeze(0)?;
        let oracle = ModelOracle::new(&model, Objective::Logit);
        let mut oracle_rows = Vec::new();
        for &b in &args.batch_sizes {
            let points = Tensor::stack(&vec![input.clone(); b.max(1)], 0)?;
            let fwd = time(args.repeats, || Ok(oracle.scores(&points, 0)?))? * 1e3 / b as f64;
            let grad = time(args.repeats, || {
                let r = oracle.scores_and_gradients(&points, 0)?;
                device.synchronize()?;
                Ok(r)
            })? * 1e3
                / b as f64;
            let fwd_rate = 2.0 * macs as f64 / (fwd * 1e-3) / 1e9;
            let grad_rate = 4.0 * macs as f64 / (grad * 1e-3) / 1e9;
            println!(
                "{b:>6} {fwd:>14.1} {fwd_rate:>4.0} ({:>2.0}%) {grad:>16.1} {grad_rate:>4.0} ({:>2.0}%)",
                100.0 * fwd_rate / gflops,
                100.0 * grad_rate / gflops
            );
            oracle_rows.push(OracleTiming {
                batch_size: b,
                forward_ms_per_point: fwd,
                forward_gradient_ms_per_point: grad,
                forward_gflops: fwd_rate,
                forward_gradient_gflops: grad_rate,
            });
        }
        let best = oracle_rows
            .iter()
            .min_by(|a, b| {
                a.forward_gradient_ms_per_point
                    .total_cmp(&b.forward_gradient_ms_per_point)
            })
            .map(|r| r.batch_size)
            .unwrap_or(16);
        let baseline = Baseline::Zero.build(&input, &model.normalization(), 0)?;
        let mut ig_rows = Vec::new();
        for &steps in &args.steps {
            let config = IgConfig {
                steps,
                rule: IntegrationRule::RiemannRight,
                batch_size: best,
            };
            reset_peak_rss();
            let s = time(args.repeats.min(2), || {
                Ok(integrated_gradients(
                    &oracle,
                    &input,
                    &baseline,
                    0,
                    &config,
                    &mut Monitor::none(),
                )?)
            })?;
            let peak = peak_rss_mb();
            let peak_text = peak.map(|m| format!(", peak memory {m:.0} MiB")).unwrap_or_default();
            println!("IG {steps:>4} steps, zero baseline, riemann_right, batch {best}: {s:.2} s{peak_text}");
            ig_rows.push(IgTiming {
                steps,
                batch_size: best,
                seconds: s,
                peak_rss_mb: peak,
            });
        }
        models.push(ModelReport {
            model: name,
            architecture: model.architecture().to_string(),
            forward_macs: macs,
            oracle: oracle_rows,
            best_batch_size: best,
            ig: ig_rows,
        });
    }
    let (studio, studio_separate) = if args.studio_run {
        let model = std::sync::Arc::new(load(args.models.first().map(|p| p.as_path()), &compute)?);
        let separate = studio_run(&model, &photo, args.repeats, false)?;
        let run = studio_run(&model, &photo, args.repeats, true)?;
        for r in [&separate, &run] {
            println!("\nstudio default run ({}; {}):", r.model, r.settings);
            for (panel, s) in &r.panels {
                println!("  {panel:<16} map at {s:.2} s");
            }
            println!(
                "  first map {:.2} s, all maps {:.2} s",
                r.first_map_seconds, r.all_maps_seconds
            );
        }
        (Some(run), Some(separate))
    } else {
        (None, None)
    };
    let report = Report {
        threads,
        device: compute.describe(),
        matmul_gflops: gflops,
        models,
        studio_run: studio,
        studio_run_separate_walks: studio_separate,
    };
    write_atomic(&args.json, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("\nwrote {}", args.json.display());
    Ok(())
}
