//! `pathscope roar`: remove (or keep) the top pixels of every image by each estimator,
//! retrain a small CNN from scratch, and write the test accuracies as resumable CSV rows,
//! a summary table and a figure; `roar merge` joins the shards of a batch job.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;

use super::common::progress_bar;
use super::eval::Shard;
use pathscope::export::chart::chart_scene;
use pathscope::export::metadata::{shell_command, FigureMetadata};
use pathscope::export::{write_figure, FigureFormat};
use pathscope::metrics::imputation::Imputation;
use pathscope::roar::dataset::{digits, image_folder, Split};
use pathscope::roar::estimator::{Estimator, MapSettings};
use pathscope::roar::experiment::{run as run_experiment, shard_cells, Progress, RoarConfig};
use pathscope::roar::figure::roar_charts;
use pathscope::roar::network::TrainConfig;
use pathscope::roar::removal::Mode;
use pathscope::roar::table::{done_cells, merge, read_rows, summary_table, write_rows, Row, RowWriter};

#[derive(Subcommand, Debug)]
pub enum RoarAction {
    /// Join the results files of several shards into one, checking they belong to one run.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The merged results file (.csv).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Results files to merge.
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RoarArgs {
    #[command(subcommand)]
    action: Option<RoarAction>,
    /// A folder of class subfolders (DIR/CLASS/*.png, or DIR/train/CLASS and DIR/test/CLASS
    /// or DIR/val/CLASS); the shipped 8×8 handwritten digits (UCI, 1,797 images) if omitted.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Side in pixels the images of --data are resized to.
    #[arg(long, default_value_t = 32)]
    image_size: usize,
    /// Share of each class held out for testing when the data has no split of its own.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Estimators, comma-separated: random, sobel, a method in the text form of `explain
    /// --method` (gradient, ig, ig:idgi, ig:blur, ig:guided:idgi, ig-uniform:valid-ip, ...),
    /// or an ensemble with its base after `+` (smoothgrad, vargrad+ig, ...). Default: all
    /// of these (17 estimators).
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<Estimator>>,
    /// Percentages of pixels removed (or kept with --kar), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10,30,50,70,90")]
    fractions: Vec<f64>,
    /// Networks retrained from scratch per estimator and fraction.
    #[arg(long, default_value_t = 3)]
    retrains: usize,
    /// What replaces a removed pixel: mean (the training set's per-channel mean, as the
    /// survey) or road (ROAD's noisy linear imputation from the pixels that stay).
    #[arg(long, default_value = "mean")]
    removal: Imputation,
    /// Keep the top pixels and remove the rest (KAR) instead of removing the top (ROAR).
    #[arg(long)]
    kar: bool,
    /// Epochs of every training.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Images per training step.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f64,
    /// Points of every path method (straight, blur, guided).
    #[arg(long, default_value_t = MapSettings::default().steps)]
    steps: usize,
    /// Noisy samples of the ensembles.
    #[arg(long, default_value_t = MapSettings::default().samples)]
    samples: usize,
    /// Seed of the split, the networks, the maps' noise and the removal.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Take only the K-th of N contiguous blocks of the run's cells (1-based), e.g. 2/4;
    /// join the shards' files with `roar merge`.
    #[arg(long, default_value = "1/1")]
    shard: Shard,
    /// Results file (.csv). Rows already there are skipped, so a killed run resumes.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Figure files (.png, .svg, .pdf) of accuracy against the fraction; repeatable.
    #[arg(long, value_name = "FILE")]
    figure: Vec<PathBuf>,
    /// Print the summary as a Markdown table.
    #[arg(long)]
    markdown: bool,
}

pub fn run(args: RoarArgs) -> Result<()> {
    if let Some(RoarAction::Merge(m)) = args.action {
        return run_merge(m);
    }
    let out = args
        .out
        .clone()
        .context("--out FILE.csv is required: the results file (rows already there are skipped)")?;
    let formats: Vec<FigureFormat> = args
        .figure
        .iter()
        .map(|p| {
            FigureFormat::from_path(p)
                .with_context(|| format!("--figure {}: the name must end in .png, .svg or .pdf", p.display()))
        })
        .collect::<Result<_>>()?;
    if let Some(f) = args.fractions.iter().find(|f| !(**f > 0.0 && **f < 100.0)) {
        bail!("--fractions are percentages strictly between 0 and 100, got {f}");
    }
    let config = RoarConfig {
        estimators: args.methods.clone().unwrap_or_else(Estimator::defaults),
        fractions: args.fractions.iter().map(|f| f / 100.0).collect(),
        retrains: args.retrains,
        mode: if args.kar { Mode::Keep } else { Mode::Remove },
        imputation: args.removal,
        training: TrainConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
        },
        maps: MapSettings {
            steps: args.steps,
            samples: args.samples,
            seed: args.seed,
        },
        seed: args.seed,
    };
    config.validate()?;
    if !(args.learning_rate.is_finite() && args.learning_rate > 0.0) {
        bail!("--learning-rate must be a positive number, got {}", args.learning_rate);
    }
    let data = load_data(&args)?;
    eprintln!(
        "{}: {} training and {} test images of {}×{}×{}, {} classes",
        data.name,
        data.train.len(),
        data.test.len(),
        data.train.channels,
        data.train.height,
        data.train.width,
        data.train.classes.len()
    );

    let existing = if out.exists() {
        read_rows(&out, true)?
    } else {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Vec::new()
    };
    let run_key = (
        data.name.clone(),
        config.mode.name().to_string(),
        config.imputation.name().to_string(),
        config.seed,
    );
    if let Some(other) = existing.iter().find(|r| r.run() != run_key) {
        bail!(
            "{} holds rows of another run ({} {} {} seed {}); choose another --out for {} {} {} seed {}",
            out.display(),
            other.dataset,
            other.mode,
            other.removal,
            other.seed,
            run_key.0,
            run_key.1,
            run_key.2,
            run_key.3
        );
    }
    let cells = shard_cells(config.cells(), args.shard.index, args.shard.count);
    let done: HashSet<_> = done_cells(&existing);
    let pending = cells.iter().filter(|c| !done.contains(&c.key())).count();
    if pending < cells.len() {
        eprintln!(
            "{}: {} of this shard's {} networks already trained; resuming",
            out.display(),
            cells.len() - pending,
            cells.len()
        );
    }

    let mut writer = RowWriter::append_to(&out)?;
    let bar: Mutex<Option<(&'static str, ProgressBar)>> = Mutex::new(None);
    let on_progress = |p: Progress| {
        let mut guard = bar.lock().unwrap_or_else(|e| e.into_inner());
        let (stage, done, total) = match p {
            Progress::BaseTrained { test_accuracy } => {
                eprintln!(
                    "network on the unmodified data: {:.1} % test accuracy",
                    100.0 * test_accuracy
                );
                return;
            }
            Progress::Maps { done, total } => ("maps (images)", done, total),
            Progress::Cells { done, total } => ("retrained networks", done, total),
        };
        if guard.as_ref().is_none_or(|(s, _)| *s != stage) {
            if let Some((_, old)) = guard.take() {
                old.finish();
            }
            *guard = Some((stage, progress_bar(stage)));
        }
        if let Some((_, b)) = guard.as_ref() {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let mut written = 0usize;
    let mut on_row = |row: Row| {
        written += 1;
        writer.append(&row)
    };
    let cancel = AtomicBool::new(false);
    run_experiment(&config, &data, &cells, &done, &on_progress, &mut on_row, &cancel)?;
    if let Some((_, b)) = bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
        b.finish();
    }

    let rows = read_rows(&out, false)?;
    let titles = |name: &str| name.parse::<Estimator>().map_or(name.to_string(), |e| e.title());
    println!(
        "test accuracy (%), mean ± std over retrains, by {}; pixels replaced by the {} fill; {}",
        config.mode.fraction_label(),
        config.imputation.label(),
        data.name
    );
    print!("{}", summary_table(&rows, &titles, args.markdown));
    write_figures(&rows, config.mode, &args.figure, &formats, &data.name)?;
    eprintln!("{} rows written to {}", written, out.display());
    Ok(())
}

fn load_data(args: &RoarArgs) -> Result<Split> {
    Ok(match &args.data {
        None => digits(args.test_fraction, args.seed)?,
        Some(dir) => image_folder(dir, args.image_size, args.test_fraction, args.seed)?,
    })
}

fn write_figures(rows: &[Row], mode: Mode, paths: &[PathBuf], formats: &[FigureFormat], dataset: &str) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let charts = roar_charts(rows, mode);
    if charts.is_empty() {
        bail!("no rows to draw");
    }
    let removal = rows.first().map_or("mean", |r| r.removal.as_str());
    let fill = removal.parse::<Imputation>().map_or(removal, |i| i.label());
    let caption = format!(
        "{} on {dataset}: test accuracy after retraining, mean ± std over retrains; pixels replaced by the {fill} fill",
        mode.name().to_uppercase()
    );
    let scene = chart_scene(&charts, 2, Some(&caption), 150.0)?;
    let meta = FigureMetadata {
        title: format!("{} on {dataset}", mode.name().to_uppercase()),
        command: shell_command(&std::env::args().collect::<Vec<_>>()),
        settings: serde_json::json!({ "dataset": dataset, "mode": mode.name(), "removal": removal }),
    };
    for (path, format) in paths.iter().zip(formats) {
        write_figure(path, &scene, *format, &meta).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("figure written to {}", path.display());
    }
    Ok(())
}

fn run_merge(args: MergeArgs) -> Result<()> {
    let rows = merge(&args.inputs)?;
    if rows.is_empty() {
        bail!("no rows in {}", list(&args.inputs));
    }
    write_rows(&args.out, &rows)?;
    eprintln!(
        "{} rows from {} written to {}",
        rows.len(),
        list(&args.inputs),
        args.out.display()
    );
    Ok(())
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
