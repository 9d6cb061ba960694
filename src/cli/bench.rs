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
    /// Where to write the JSON results.
    #[arg(long, value_name = "FILE", default_value = "pathscope-bench.json")]
    json: PathBuf,
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
    matmul_gflops: f64,
    models: Vec<ModelReport>,
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
fn matmul_gflops(repeats: usize) -> Result<f64> {
    let n = 1024;
    let a = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let s = time(repeats.max(3), || Ok(a.matmul(&b)?))?;
    Ok(2.0 * (n as f64).powi(3) / s / 1e9)
}

pub fn run(args: BenchArgs) -> Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let gflops = matmul_gflops(args.repeats)?;
    println!("machine: {threads} threads, f32 matrix multiply {gflops:.1} GFLOP/s (1024³, candle)");
    let sample = &pathscope::assets::SAMPLE_IMAGES[0];
    let photo = decode_rgb(std::path::Path::new(sample.name), sample.bytes)?;
    let mut models = Vec::new();
    let sources: Vec<Option<PathBuf>> = if args.models.is_empty() {
        vec![None]
    } else {
        args.models.iter().cloned().map(Some).collect()
    };
    for source in sources {
        let model = match &source {
            Some(p) => Classifier::load(p, &Device::Cpu)?,
            None => pathscope::assets::default_classifier(&Device::Cpu)?,
        };
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
        let input = model
            .preprocessing()
            .image_to_tensor(&photo, &Device::Cpu)?
            .squeeze(0)?;
        let oracle = ModelOracle::new(&model, Objective::Logit);
        let mut oracle_rows = Vec::new();
        for &b in &args.batch_sizes {
            let points = Tensor::stack(&vec![input.clone(); b.max(1)], 0)?;
            let fwd = time(args.repeats, || Ok(oracle.scores(&points, 0)?))? * 1e3 / b as f64;
            let grad = time(args.repeats, || Ok(oracle.scores_and_gradients(&points, 0)?))? * 1e3 / b as f64;
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
    let report = Report {
        threads,
        matmul_gflops: gflops,
        models,
    };
    write_atomic(&args.json, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("writing {}", args.json.display()))?;
    println!("\nwrote {}", args.json.display());
    Ok(())
}
