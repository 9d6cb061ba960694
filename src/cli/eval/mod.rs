//! `pathscope eval`: score attribution maps over a folder of images for a paper's table.
//!
//! One row per image × method × metric goes to a CSV or JSON Lines file as soon as it is
//! known; a rerun with the same `--out` skips the rows already there (resume), `--shard K/N`
//! takes every N-th image so a large set can be split across machines, and `eval merge`
//! joins the shard files. Maps are cached as .npy beside the results, so adding a metric
//! later does not recompute the attributions.

pub mod methods;
mod scoring;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, IndexOp, Tensor};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use pathscope::attribution::catalog::{MethodId, MethodParams};
use pathscope::attribution::method::{explain, MethodSpec, RunOptions};
use pathscope::attribution::{ModelOracle, Monitor, Objective};
use pathscope::export::atomic::write_atomic;
use pathscope::export::npy::{npy_f32_bytes, parse_npy_f32};
use pathscope::model::preprocess::{image_files_in, load_rgb};
use pathscope::model::Classifier;

pub use methods::EvalMethod;
use scoring::Scorer;
use table::{read_rows, Row, RowWriter};

use super::common::{load_model, MethodArgs, PreprocessArgs};

/// The scores `eval` can compute (algorithms.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalMetric {
    /// RISE insertion AUC (probability of the predicted class, blurred start).
    Insertion,
    /// RISE deletion AUC (to the mean colour); lower is better.
    Deletion,
    /// Sensitivity-n: mean Pearson correlation over subset fractions 0.1..0.9 (logit, mean-colour reference).
    SensitivityN,
    /// PIC softmax information curve AUC, normalised WebP entropy as the information level.
    Sic,
    /// PIC accuracy information curve AUC (entropy information level).
    Aic,
    /// SIC with MS-SSIM to the original as the information level (IDGI paper §4.5).
    SicMsssim,
    /// AIC with the MS-SSIM information level.
    AicMsssim,
    /// RECAL's DiffID: mean over r = 0.1..0.9 of Ins(r) − Del(r) of the logit ratio (predicted class).
    Diffid,
    /// ROAD, most relevant pixels first, noisy linear imputation: mean probability over 10..90 % removed; lower is better.
    RoadMorf,
    /// ROAD, least relevant pixels first, noisy linear imputation; higher is better.
    RoadLerf,
    /// ROAD MoRF with the image's mean colour as the fill (the reference's "fixed" imputer); lower is better.
    RoadMorfMean,
    /// ROAD LeRF with the mean-colour fill; higher is better.
    RoadLerfMean,
}

impl EvalMetric {
    /// Deletion and ROAD's MoRF: the faster a good map's pixels destroy the class, the lower.
    pub fn lower_is_better(self) -> bool {
        matches!(
            self,
            EvalMetric::Deletion | EvalMetric::RoadMorf | EvalMetric::RoadMorfMean
        )
    }

    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// A method and the metrics of it still to score for one image.
type MethodTodo = (EvalMethod, Vec<EvalMetric>);

/// `K/N`: the K-th of N shards (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parsed = s
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && (1..=count).contains(&index) => Ok(Shard { index, count }),
            _ => Err(format!("`{s}` is not a shard: write K/N with 1 ≤ K ≤ N, e.g. 2/4")),
        }
    }
}

impl Shard {
    /// Images are taken round-robin in name order, so shards get similar mixes.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

#[derive(Subcommand, Debug)]
pub enum EvalAction {
    /// Join the results files of several shards (or runs) into one, deduplicating rows.
    Merge(MergeArgs),
    /// Print the mean ± std table of one or more results files.
    Summary(SummaryArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The merged file (.csv, or .json/.jsonl for JSON Lines).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Results files to merge.
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Print a Markdown table.
    #[arg(long)]
    markdown: bool,
    /// Only images scored by every method × metric of their model (drops a partly scored
    /// last image of an interrupted run, so every cell averages the same images).
    #[arg(long)]
    complete_only: bool,
    /// Paired comparisons `A:B` (e.g. ig:ig-idgi): mean of B − A and on how many images B
    /// is better, per metric. Repeatable.
    #[arg(long = "pair", value_name = "A:B")]
    pairs: Vec<String>,
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    action: Option<EvalAction>,
    /// Model weights (.safetensors or .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// A folder of images (png, jpg, tif, webp, bmp), or one image file.
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Methods to score, comma-separated, each in the text form of `explain --method`
    /// (ig, ig:idgi, ig:blur, ig-uniform:vanilla, gradient, smoothgrad, ...), or `random`,
    /// a random map (the floor every method should beat).
    #[arg(long, value_delimiter = ',', default_value = "ig,ig:idgi")]
    methods: Vec<EvalMethod>,
    /// Metrics, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "insertion,deletion")]
    metrics: Vec<EvalMetric>,
    /// Results file: .csv, or .json/.jsonl for JSON Lines. Rows already there are skipped.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Take only the K-th of N round-robin parts of the image list (1-based), e.g. 2/4.
    #[arg(long, default_value = "1/1")]
    shard: Shard,
    /// Only the first N images of the folder (before sharding).
    #[arg(long)]
    limit: Option<usize>,
    /// PIC: images whose probability on the original is below this are skipped (PAIR's
    /// function default is 0.8, its notebook uses 0.5).
    #[arg(long, default_value_t = 0.5)]
    pic_min_pred: f64,
    /// Pixels moved per insertion/deletion step (RISE: 224, i.e. 225 forward passes per curve).
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pixels_per_step: u32,
    /// Where computed maps are cached (default: FILE.maps beside --out).
    #[arg(long, value_name = "DIR")]
    maps: Option<PathBuf>,
    /// Do not cache maps on disk.
    #[arg(long)]
    no_map_cache: bool,
    /// cpu, cpu:generic (candle's ops and autograd only, the path a GPU takes), or cuda[:N]
    /// in builds with the `cuda` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    #[command(flatten)]
    preprocess: PreprocessArgs,
    #[command(flatten)]
    m: MethodArgs,
}

pub fn run(mut args: EvalArgs) -> Result<()> {
    match &args.action {
        Some(EvalAction::Merge(m)) => return merge(m),
        Some(EvalAction::Summary(s)) => return summary(s),
        None => {}
    }
    let Some(images) = args.images.as_deref() else {
        bail!("--images DIR is required (a folder of photos, or one image file)");
    };
    let Some(out) = args.out.as_deref() else {
        bail!("--out FILE is required (.csv, or .json/.jsonl for JSON Lines)");
    };
    // A method or metric named twice is scored once.
    dedup_in_order(&mut args.methods);
    dedup_in_order(&mut args.metrics);
    if args.methods.is_empty() || args.metrics.is_empty() {
        bail!("--methods and --metrics must each name at least one");
    }
    let mut files = if images.is_dir() {
        image_files_in(images)?
    } else if images.is_file() {
        vec![images.to_path_buf()]
    } else {
        bail!("{}: no such folder or image file", images.display());
    };
    if files.is_empty() {
        bail!(
            "{}: no images (png, jpg, tif, webp, bmp) in the folder",
            images.display()
        );
    }
    if let Some(n) = args.limit {
        files.truncate(n);
    }
    let files: Vec<(usize, PathBuf)> = files
        .into_iter()
        .enumerate()
        .filter(|(i, _)| args.shard.contains(*i))
        .collect();

    let compute = pathscope::device::select_compute(&args.device)?;
    let device = compute.device.clone();
    let model = load_model(args.model.as_deref(), &compute, &args.preprocess.overrides(None)?)?;
    let model_name = model_name(args.model.as_deref());

    let existing = if out.exists() {
        read_rows(out, true)?
    } else {
        Vec::new()
    };
    let done: HashSet<_> = table::done_keys(&existing);
    let mut writer = RowWriter::append_to(out)?;
    let maps_dir = if args.no_map_cache {
        None
    } else {
        Some(args.maps.clone().unwrap_or_else(|| {
            let mut p = out.as_os_str().to_owned();
            p.push(".maps");
            PathBuf::from(p)
        }))
    };

    // Work units: image × method with at least one metric not yet in the file.
    let pending: Vec<(usize, PathBuf, Vec<MethodTodo>)> = files
        .into_iter()
        .map(|(i, file)| {
            let image = image_name(&file);
            let todo = args
                .methods
                .iter()
                .map(|&m| {
                    let metrics: Vec<EvalMetric> = args
                        .metrics
                        .iter()
                        .copied()
                        .filter(|metric| !done.contains(&(image.clone(), model_name.clone(), m.name(), metric.name())))
                        .collect();
                    (m, metrics)
                })
                .filter(|(_, metrics)| !metrics.is_empty())
                .collect();
            (i, file, todo)
        })
        .collect();
    let units: usize = pending.iter().map(|(_, _, t)| t.len()).sum();
    let skipped = existing.len();
    if skipped > 0 {
        eprintln!(
            "{}: {} rows already there; {} image × method units left",
            out.display(),
            skipped,
            units
        );
    }

    let progress = ProgressBar::with_draw_target(Some(units as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} maps, elapsed {elapsed}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let settings = Settings::from_args(&args, model.preprocessing(), &device)?;
    for (position, file, todo) in pending {
        if todo.is_empty() {
            continue;
        }
        let image = image_name(&file);
        let prepared = match Prepared::load(&file, &model, &device) {
            Ok(p) => p,
            Err(e) => {
                // A bad image becomes rows with the reason, so the run goes on and the
                // table says which images were left out and why.
                let rows: Vec<Row> = todo
                    .iter()
                    .flat_map(|(m, metrics)| {
                        metrics.iter().map(|metric| Row {
                            image: image.clone(),
                            model: model_name.clone(),
                            method: m.name(),
                            metric: metric.name(),
                            value: None,
                            note: format!("image not usable: {e:#}"),
                            seconds: 0.0,
                        })
                    })
                    .collect();
                writer.append(&rows)?;
                progress.inc(todo.len() as u64);
                continue;
            }
        };
        let scorer = Scorer::new(
            &model,
            &prepared,
            args.m.batch_size as usize,
            args.m.seed ^ (position as u64).wrapping_mul(0x9E37_79B9),
        )?;
        for (method, metrics) in todo {
            progress.set_message(format!("{image} {}", method.name()));
            let started = Instant::now();
            let map = load_or_compute_map(
                &settings,
                maps_dir.as_deref(),
                &model,
                &model_name,
                &image,
                position,
                &prepared,
                method,
            )
            .with_context(|| format!("{image}: computing {}", method.name()))?;
            let map_seconds = started.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            let mut shared = scoring::SharedWork::default();
            for metric in metrics {
                let t = Instant::now();
                let (value, note) = match scorer.score(metric, &map, &settings, &mut shared) {
                    Ok(v) => v,
                    Err(e) => (None, format!("{e:#}")),
                };
                rows.push(Row {
                    image: image.clone(),
                    model: model_name.clone(),
                    method: method.name(),
                    metric: metric.name(),
                    value,
                    note,
                    seconds: map_seconds + t.elapsed().as_secs_f64(),
                });
            }
            writer.append(&rows)?;
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    let all = read_rows(out, false)?;
    println!("{}", table::summary_table(&all, false));
    println!("{} rows in {}", all.len(), out.display());
    Ok(())
}

fn merge(args: &MergeArgs) -> Result<()> {
    let (rows, conflicts) = table::merge(&args.inputs)?;
    table::write_rows(&args.out, &rows)?;
    println!(
        "merged {} files: {} rows{} -> {}",
        args.inputs.len(),
        rows.len(),
        if conflicts > 0 {
            format!(" ({conflicts} conflicting duplicates, first kept)")
        } else {
            String::new()
        },
        args.out.display()
    );
    Ok(())
}

fn summary(args: &SummaryArgs) -> Result<()> {
    let (mut rows, _) = table::merge(&args.inputs)?;
    if args.complete_only {
        rows = table::complete_images_only(rows);
    }
    print!("{}", table::summary_table(&rows, args.markdown));
    for pair in &args.pairs {
        let (a, b) = methods::split_pair(pair).map_err(anyhow::Error::msg)?;
        let (a, b) = (a.name(), b.name());
        println!("\n{a} -> {b}:\n");
        print!("{}", table::paired_table(&rows, &a, &b, args.markdown));
    }
    Ok(())
}

/// The model's name in the table: the file stem, or the embedded model's.
fn model_name(path: Option<&Path>) -> String {
    match path {
        Some(p) => p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string()),
        None => "squeezenet1_1_imagenet".into(),
    }
}

fn image_name(path: &Path) -> String {
    path.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// What every method of a run shares.
pub struct Settings {
    /// Each method's parameters from the flags (Expected Gradients' references read once).
    params: HashMap<MethodId, MethodParams>,
    objective: Objective,
    seed: u64,
    batch_size: usize,
    pub pixels_per_step: usize,
    pub pic_min_pred: f64,
}

impl Settings {
    fn from_args(args: &EvalArgs, pre: &pathscope::model::Preprocessing, device: &Device) -> Result<Self> {
        Ok(Self {
            pixels_per_step: args.pixels_per_step as usize,
            pic_min_pred: args.pic_min_pred,
            ..Self::new(&args.m, &args.methods, pre, device)?
        })
    }

    /// The method settings alone (`pathscope sanity` shares the methods and their flags;
    /// RISE's default step).
    pub(crate) fn new(
        m: &MethodArgs,
        methods: &[EvalMethod],
        pre: &pathscope::model::Preprocessing,
        device: &Device,
    ) -> Result<Self> {
        // Flags are checked (and a reference folder read) up front, for the methods that use them.
        let mut params = HashMap::new();
        for method in methods {
            if let EvalMethod::Method(id) = *method {
                params.insert(id, m.params(id, pre, device)?);
            }
        }
        Ok(Self {
            params,
            objective: m.objective,
            seed: m.seed,
            batch_size: m.batch_size as usize,
            pixels_per_step: 224,
            pic_min_pred: 0.5,
        })
    }

    /// The computation of `method`; `None` for the random map, which needs no model.
    pub(crate) fn spec(&self, method: EvalMethod) -> Result<Option<MethodSpec>> {
        match method {
            EvalMethod::Random => Ok(None),
            EvalMethod::Method(id) => {
                let params = self
                    .params
                    .get(&id)
                    .with_context(|| format!("{id}: not among the methods of this run"))?;
                Ok(Some(id.spec(params)?))
            }
        }
    }

    /// A key for everything `method`'s map depends on besides the image and the target, for
    /// the names of cached maps: the method, the flags it reads (content, not names: a
    /// reference folder's images are hashed), the objective and the seed.
    fn cache_key(&self, method: EvalMethod) -> Result<u64> {
        let mut key = pathscope::attribution::key::ContentKey::new();
        key.text(&method.name());
        if let Some(spec) = self.spec(method)? {
            key.spec(&spec)?;
        }
        key.text(self.objective.name());
        key.u64(self.seed);
        Ok(key.finish())
    }
}

/// One image, preprocessed, with the class every metric scores: the model's top-1
/// prediction (RISE and PIC explain the predicted class; the folder has no labels).
pub struct Prepared {
    pub input: Tensor,
    /// The crop the input was made from (PIC works on 8-bit images).
    pub crop: image::RgbImage,
    pub target: usize,
}

impl Prepared {
    fn load(file: &Path, model: &Classifier, device: &Device) -> Result<Self> {
        let photo = load_rgb(file)?;
        let crop = model.preprocessing().apply(&photo);
        let input = model.normalization().image_to_tensor(&crop, device)?.squeeze(0)?;
        let logits = model.forward(&input.unsqueeze(0)?)?.i(0)?.to_vec1::<f32>()?;
        let target = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .context("the model has no outputs")?;
        Ok(Self { input, crop, target })
    }
}

/// The map of `method` for this image: from the cache when the same settings made it
/// before, else computed (and cached).
#[allow(clippy::too_many_arguments)]
fn load_or_compute_map(
    settings: &Settings,
    maps_dir: Option<&Path>,
    model: &Classifier,
    model_name: &str,
    image: &str,
    position: usize,
    prepared: &Prepared,
    method: EvalMethod,
) -> Result<Vec<f32>> {
    let spec = settings.spec(method)?;
    let shape = prepared.input.dims().to_vec();
    let cache_file = match maps_dir {
        // The key names everything that changes the map, so a change of settings never
        // reuses a stale map.
        Some(dir) => {
            let mut key = pathscope::attribution::key::ContentKey::new();
            key.u64(settings.cache_key(method)?);
            key.u64(prepared.target as u64);
            key.u64(position as u64);
            let file_name = format!("{image}.{}.{:016x}.npy", method.name().replace(':', "-"), key.finish());
            Some(dir.join(model_name).join(file_name))
        }
        None => None,
    };
    if let Some(f) = cache_file.as_ref().filter(|f| f.is_file()) {
        if let Ok((values, dims)) = std::fs::read(f)
            .map_err(|e| e.to_string())
            .and_then(|b| parse_npy_f32(&b))
        {
            if dims == shape {
                return Ok(values);
            }
        }
        eprintln!("{}: unreadable cached map, recomputing", f.display());
    }
    let values = match spec {
        None => random_map(
            prepared.input.elem_count(),
            settings.seed ^ (position as u64).wrapping_mul(0x9E37),
        ),
        Some(spec) => {
            let oracle = ModelOracle::new(model, settings.objective);
            let options = RunOptions {
                batch_size: settings.batch_size,
                seed: settings.seed,
                ..RunOptions::default()
            };
            let e = explain(
                &oracle,
                &prepared.input,
                &model.normalization(),
                prepared.target,
                &spec,
                &options,
                &mut Monitor::none(),
            )?;
            e.attribution.flatten_all()?.to_vec1::<f32>()?
        }
    };
    if values.iter().any(|v| !v.is_finite()) {
        bail!("the map contains NaN or infinite values");
    }
    if let Some(f) = cache_file {
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        write_atomic(&f, &npy_f32_bytes(&values, &shape)).with_context(|| format!("{}: cannot write", f.display()))?;
    }
    Ok(values)
}

fn dedup_in_order<T: PartialEq + Copy>(items: &mut Vec<T>) {
    let mut seen = Vec::new();
    items.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
}

fn random_map(len: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random::<f32>()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_images() {
        let shards: Vec<Shard> = (1..=3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        for i in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(i)).count(), 1);
        }
        for bad in ["0/3", "4/3", "1/0", "x", "1/"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
