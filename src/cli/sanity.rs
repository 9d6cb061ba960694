//! `pathscope sanity`: cascading model randomisation (Adebayo et al. 2018; algorithms.md
//! §4.5) of one image, for several methods at once.
//!
//! The checkpoint's blocks are re-drawn at random from the logits down; at each chosen depth
//! every method's map is recomputed (the methods share the stage's model) and compared with
//! the trained model's map by four similarities. `edge`, the Sobel edge map of the image,
//! ignores the model: it is the control whose similarity stays 1. The table goes to stdout,
//! one CSV row per method × depth to `--out`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::Args;

use pathscope::attribution::catalog::MethodId;
use pathscope::attribution::method::{explain, MethodSpec, RunOptions};
use pathscope::attribution::{ModelOracle, Monitor};
use pathscope::engine::{CheckpointSource, SanityDepths};
use pathscope::export::atomic::write_atomic;
use pathscope::metrics::sanity::{cascading_randomization_multi, sobel_edge_map, MapShape, SanityOptions, SanityStage};
use pathscope::model::preprocess::load_rgb;

use super::common::{self, MethodArgs};
use super::eval::EvalMethod;

/// A method of the catalog, or `edge`: the Sobel edge map, which ignores the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanityMethod {
    Edge,
    Map(MethodId),
}

impl SanityMethod {
    pub fn name(self) -> String {
        match self {
            SanityMethod::Edge => "edge".into(),
            SanityMethod::Map(m) => m.to_string(),
        }
    }
}

impl FromStr for SanityMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("edge") {
            return Ok(SanityMethod::Edge);
        }
        match EvalMethod::from_str(s) {
            Ok(EvalMethod::Random) => {
                Err("`random` does not depend on the model, so it says nothing here; `edge` is the control".into())
            }
            Ok(EvalMethod::Method(m)) => Ok(SanityMethod::Map(m)),
            Err(e) => Err(format!(
                "unknown method `{s}`: use edge, or a method as `explain --method` names it ({e})"
            )),
        }
    }
}

#[derive(Args, Debug)]
pub struct SanityArgs {
    /// Model weights (.safetensors or .pth); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// The photo (PNG, JPEG, TIFF, WebP, BMP); the trained model's top-1 class is explained.
    #[arg(long, value_name = "FILE")]
    image: PathBuf,
    /// Methods, comma-separated, as `explain --method` names them (ig, ig:idgi, gradient,
    /// smoothgrad, ...), and `edge`, the Sobel edge map that ignores the model (the control).
    #[arg(long, value_delimiter = ',', default_value = "gradient,edge")]
    methods: Vec<SanityMethod>,
    /// `all` (one stage per block), or N depths evenly spaced from the trained model to the
    /// fully randomised one, both included.
    #[arg(long, default_value = "6")]
    depths: SanityDepths,
    /// The CSV file: one row per method × depth.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// cpu, or cuda[:N] in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The method flags; `--seed` also seeds the re-drawn parameters.
    #[command(flatten)]
    m: MethodArgs,
}

pub fn run(mut args: SanityArgs) -> Result<()> {
    let mut seen = Vec::new();
    args.methods.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    if args.methods.is_empty() {
        bail!("--methods must name at least one method");
    }
    let compute = pathscope::device::select_compute(&args.device)?;
    if compute.generic {
        bail!("sanity re-initialises its networks on the CPU's own path; --device cpu:generic applies to explain, figure, eval and converge");
    }
    let device = compute.device;
    let source = CheckpointSource::from_path(args.model.clone());
    let checkpoint = source.open()?;
    let blocks = checkpoint.blocks()?;
    let depths = args.depths.resolve(blocks.len());

    let trained = checkpoint.classifier(&device)?;
    let pre = *trained.preprocessing();
    let norm = pre.normalization;
    let photo = load_rgb(&args.image)?;
    let input = pre.image_to_tensor(&photo, &device)?.squeeze(0)?;
    let logits = trained.forward(&input.unsqueeze(0)?)?.i(0)?.to_vec1::<f32>()?;
    let target = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .context("the model has no outputs")?;
    drop(trained);
    let (c, h, w) = input.dims3()?;
    let shape = MapShape::new(c, h, w);
    let mut pixels = input.flatten_all()?.to_vec1::<f32>()?;
    norm.denormalize(&mut pixels, h * w);
    let edge = sobel_edge_map(&pixels, shape)?;

    let objective = args.m.objective;
    let specs: Vec<Option<MethodSpec>> = args
        .methods
        .iter()
        .map(|m| match m {
            SanityMethod::Edge => Ok(None),
            SanityMethod::Map(id) => common::method_spec(&args.m, *id, &pre, &device).map(Some),
        })
        .collect::<Result<_>>()?;
    let seed = args.m.seed;
    let run_options = RunOptions {
        batch_size: args.m.batch_size as usize,
        seed,
        ..RunOptions::default()
    };
    eprintln!(
        "{} ({}): {} blocks, depths {depths:?}, target class {target}, seed {}",
        checkpoint.source.display(),
        checkpoint.architecture,
        blocks.len(),
        seed
    );
    let options = SanityOptions {
        seed,
        depths: Some(depths),
        shape,
    };
    let started = Instant::now();
    let results = cascading_randomization_multi(
        &checkpoint.tensors,
        &blocks,
        &device,
        &options,
        |model| {
            let oracle = ModelOracle::new(model, objective);
            specs
                .iter()
                .map(|spec| match spec {
                    None => Ok(edge.clone()),
                    Some(spec) => {
                        let e = explain(&oracle, &input, &norm, target, spec, &run_options, &mut Monitor::none())?;
                        Ok(e.attribution.flatten_all()?.to_vec1::<f32>()?)
                    }
                })
                .collect()
        },
        |done, total, row| {
            eprintln!(
                "  [{done}/{total}] depth {} ({}) {:.1} s",
                row[0].depth,
                row[0].label,
                started.elapsed().as_secs_f64()
            )
        },
    )
    .context("the cascade failed")?;

    let names: Vec<String> = args.methods.iter().map(|m| m.name()).collect();
    print!("{}", table(&names, &results));
    write_atomic(&args.out, &csv_bytes(&names, &results)?)
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
    println!(
        "{} rows in {} ({:.1} s)",
        results.iter().map(Vec::len).sum::<usize>(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One block of rows per method, aligned for reading.
fn table(names: &[String], results: &[Vec<SanityStage>]) -> String {
    let mut out = String::new();
    for (name, stages) in names.iter().zip(results) {
        let _ = writeln!(out, "{name}");
        let _ = writeln!(
            out,
            "{:>5}  {:<20} {:>12} {:>15} {:>8} {:>8}",
            "depth", "block", "spearman_abs", "spearman_signed", "ssim", "hog"
        );
        for s in stages {
            let _ = writeln!(
                out,
                "{:>5}  {:<20} {:>12.4} {:>15.4} {:>8.4} {:>8.4}",
                s.depth, s.label, s.spearman_abs, s.spearman_signed, s.ssim, s.hog
            );
        }
        out.push('\n');
    }
    out
}

fn csv_bytes(names: &[String], results: &[Vec<SanityStage>]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "method",
        "depth",
        "block",
        "spearman_abs",
        "spearman_signed",
        "ssim",
        "hog",
    ])?;
    for (name, stages) in names.iter().zip(results) {
        for s in stages {
            w.write_record([
                name.clone(),
                s.depth.to_string(),
                s.label.clone(),
                s.spearman_abs.to_string(),
                s.spearman_signed.to_string(),
                s.ssim.to_string(),
                s.hog.to_string(),
            ])?;
        }
    }
    w.into_inner().context("writing the CSV")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_with_the_edge_control() {
        assert_eq!("edge".parse::<SanityMethod>(), Ok(SanityMethod::Edge));
        assert_eq!(
            "Gradient".parse::<SanityMethod>(),
            Ok(SanityMethod::Map("gradient".parse().unwrap()))
        );
        assert_eq!(
            "ig-idgi".parse::<SanityMethod>(),
            Ok(SanityMethod::Map("ig:idgi".parse().unwrap()))
        );
        assert!("random".parse::<SanityMethod>().unwrap_err().contains("edge"));
        let err = "sobel".parse::<SanityMethod>().unwrap_err();
        assert!(
            err.contains("use edge, or a method") && err.contains("ig, gradient"),
            "{err}"
        );
    }
}
