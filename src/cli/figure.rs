//! `pathscope figure`: maps of several methods (and images) in several display modes,
//! composed into one camera-ready PNG, SVG or PDF; optionally the raw maps and traces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::IndexOp;
use clap::Args;

use pathscope::attribution::catalog::{Family, MethodId};
use pathscope::attribution::display::{reduce_channels, ChannelReduction, ClipRule};
use pathscope::attribution::method::MethodSpec;
use pathscope::export::atomic::write_atomic;
use pathscope::export::figure::{ColorbarPlacement, Column, Figure, FigureStyle, Layout, MapRow, MM_PER_INCH};
use pathscope::export::metadata::{shell_command, software, FigureMetadata};
use pathscope::export::npy::npy_f32_bytes;
use pathscope::export::raw::{maps_safetensors, trace_safetensors};
use pathscope::export::{write_figure, FigureFormat};
use pathscope::model::preprocess::load_rgb;
use pathscope::render::colormap::Colormap;

use super::common::{self, load_model, MethodArgs, PreprocessArgs};

/// One entry of `--methods`: a method in the catalog's text form, kept as typed (it
/// names the maps in `--data` files and the figure's metadata).
#[derive(Debug, Clone)]
pub struct MethodToken {
    pub text: String,
    pub id: MethodId,
}

impl std::str::FromStr for MethodToken {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(MethodToken {
            text: s.to_string(),
            id: s.parse()?,
        })
    }
}

/// A length: `180mm`, `18cm`, `7in` or `504pt`; a bare number is millimetres.
#[derive(Debug, Clone, Copy)]
pub struct Length {
    pub mm: f32,
}

impl std::str::FromStr for Length {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, factor) = [
            ("mm", 1.0),
            ("cm", 10.0),
            ("in", MM_PER_INCH),
            ("pt", MM_PER_INCH / 72.0),
        ]
        .iter()
        .find_map(|(unit, f)| t.strip_suffix(unit).map(|n| (n, *f)))
        .unwrap_or((t, 1.0));
        let v: f32 = num
            .trim()
            .parse()
            .map_err(|_| format!("length `{s}`: expected a number with mm, cm, in or pt (e.g. 180mm, 7in)"))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(format!("length `{s}` must be positive"));
        }
        Ok(Length { mm: v * factor })
    }
}

#[derive(Args, Debug)]
pub struct FigureArgs {
    /// Model weights (.safetensors or PyTorch .pth) or an ONNX graph (.onnx); the embedded SqueezeNet-1.1 if omitted.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Photos, comma-separated (each gets its own rows).
    #[arg(long, value_name = "FILES", value_delimiter = ',', num_args = 1.., required = true)]
    images: Vec<PathBuf>,
    /// Methods, comma-separated, each METHOD[:PATH][:INTEGRATION][:RECALIBRATION], e.g.
    /// `ig,ig:blur,ig:guided`, `ig:straight:idgi`, `ig-uniform:valid-ip`, `gradient`.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "ig")]
    methods: Vec<MethodToken>,
    /// Columns, comma-separated: photo, signed, absolute, positive, negative.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "signed,absolute,positive,negative"
    )]
    modes: Vec<Column>,
    /// auto (a row per image × method, a column per mode), transposed, or ROWSxCOLS.
    #[arg(long, default_value = "auto")]
    layout: Layout,
    /// png, svg or pdf (default: from --out's extension).
    #[arg(long)]
    format: Option<FigureFormat>,
    /// The figure file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Figure width: 180mm (two columns), 85mm (one column), 7in, …
    #[arg(long, default_value = "180mm")]
    width: Length,
    /// Fixed figure height (default: as the panels need).
    #[arg(long)]
    height: Option<Length>,
    /// Resolution of PNG output.
    #[arg(long, default_value_t = 300.0)]
    dpi: f32,
    /// Title and label size in points (tick labels are 85 % of it).
    #[arg(long, default_value_t = 8.0)]
    font_size: f32,
    /// Colour scale of unsigned maps: reds, viridis, inferno (signed maps use rdbu).
    #[arg(long, default_value = "reds")]
    colormap: Colormap,
    /// Colour bars: none, panel (each panel its own range), column (shared per column),
    /// shared (one per colour scale).
    #[arg(long, default_value = "column")]
    colorbar: ColorbarPlacement,
    /// Colour range: pN (N-th percentile of |A|), max, or captumN (Captum's outlier mass).
    #[arg(long, default_value = "p99")]
    clip: ClipRule,
    /// 1: maps blended over the grey photo (as in the studio); 0: maps alone.
    #[arg(long, default_value_t = 1.0)]
    overlay: f32,
    /// No frames around the panels.
    #[arg(long)]
    no_frames: bool,
    /// A caption with the settings under the figure.
    #[arg(long)]
    caption: bool,
    /// `top1` (each image's predicted class) or a class index.
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
    /// Also write the raw data into DIR: attributions.safetensors (one tensor per map),
    /// one .npy per map and, for path methods, the per-step trace as .trace.safetensors.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    m: MethodArgs,
}

struct Computed {
    image: String,
    token: MethodToken,
    shape: Vec<usize>,
    values: Vec<f32>,
    trace: Option<pathscope::attribution::trace::TraceRecorder>,
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

pub fn run(args: FigureArgs) -> Result<()> {
    let format = match (args.format, FigureFormat::from_path(&args.out)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => bail!(
            "--out {} has no .png, .svg or .pdf extension; name the format with --format",
            args.out.display()
        ),
    };
    if args.colormap.is_diverging() {
        bail!("--colormap is the scale of unsigned maps: reds, viridis or inferno (signed maps always use rdbu)");
    }
    if !(0.0..=1.0).contains(&args.overlay) {
        bail!(
            "--overlay must be between 0 (maps alone) and 1 (over the photo), got {}",
            args.overlay
        );
    }
    if args.methods.is_empty() || args.modes.is_empty() {
        bail!("--methods and --modes need at least one entry each");
    }
    let style = FigureStyle {
        width_mm: args.width.mm,
        height_mm: args.height.map(|h| h.mm),
        dpi: args.dpi,
        font_pt: args.font_size,
        sequential: args.colormap,
        colorbar: args.colorbar,
        clip: args.clip,
        overlay: args.overlay,
        frames: !args.no_frames,
    };

    let compute = pathscope::device::select_compute(&args.device)?;
    let device = compute.device.clone();
    let overrides = args.preprocess.overrides(args.labels.as_deref())?;
    let model = load_model(args.model.as_deref(), &compute, &overrides)?;
    let labels = model.labels().clone();
    let pre = *model.preprocessing();
    let mut rows = Vec::new();
    let mut computed = Vec::new();
    let mut targets = Vec::new();
    for image in &args.images {
        let crop = pre.apply(&load_rgb(image)?);
        let input = pre.normalization.image_to_tensor(&crop, &device)?.squeeze(0)?;
        let logits = model.forward(&input.unsqueeze(0)?)?.i(0)?.to_vec1::<f32>()?;
        let target = common::resolve_target(&args.target, &logits, model.num_classes())?;
        targets.push(serde_json::json!({
            "image": image.display().to_string(),
            "target": target,
            "label": labels.name(target),
        }));
        let photo = Arc::new(crop);
        for token in &args.methods {
            let spec = common::method_spec(&args.m, token.id, &pre, &device)?;
            let what = format!("{} on {}", token.id.title(), file_stem(image));
            let record = args.data.is_some() && matches!(spec, MethodSpec::PathIntegral { .. });
            let e = common::compute(&args.m, &model, &input, target, &spec, &what, record)?;
            let shape = e.attribution.dims().to_vec();
            let values = e.attribution.flatten_all()?.to_vec1::<f32>()?;
            if values.iter().any(|v| !v.is_finite()) {
                bail!(
                    "{what}: the attribution contains NaN or infinite values (the model produced non-finite gradients)"
                );
            }
            let (c, h, w) = (shape[0], shape[1], shape[2]);
            let map = reduce_channels(&values, c, h * w, ChannelReduction::Sum);
            let label = if args.images.len() > 1 {
                format!("{}: {}", file_stem(image), token.id.title())
            } else {
                token.id.title()
            };
            rows.push(MapRow {
                label,
                map: Arc::new(map),
                width: w as u32,
                height: h as u32,
                photo: photo.clone(),
            });
            computed.push(Computed {
                image: file_stem(image),
                token: token.clone(),
                shape,
                values,
                trace: e.trace,
            });
        }
    }

    let mut argv: Vec<String> = vec!["pathscope".into()];
    argv.extend(std::env::args().skip(1));
    let command = shell_command(&argv);
    let settings = serde_json::json!({
        "software": software(),
        "model": model.source().display().to_string(),
        "architecture": model.architecture().to_string(),
        "images": targets,
        "methods": args.methods.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
        "modes": args.modes.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "layout": args.layout.name(),
        "format": format.extension(),
        "style": style.to_json(),
        "method_options": method_options(&args.m),
    });
    let caption = args
        .caption
        .then(|| caption_text(&args, &model, &targets_text(&settings), &style));
    let title = format!(
        "Pathscope: {} on {}",
        args.methods.iter().map(|t| t.id.title()).collect::<Vec<_>>().join(", "),
        args.images.iter().map(|p| file_stem(p)).collect::<Vec<_>>().join(", ")
    );
    let figure = Figure::method_grid(&rows, &args.modes, args.layout, style, caption)?;
    let scene = figure.layout()?;
    let meta = FigureMetadata {
        title,
        command: command.clone(),
        settings: settings.clone(),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_figure(&args.out, &scene, format, &meta)?;
    if let Some(dir) = &args.data {
        write_data(dir, &computed, &command, &settings)?;
    }
    println!(
        "{} panels ({}×{}) of {} map(s), {:.0} × {:.0} mm: wrote {}",
        figure.panels.iter().flatten().count(),
        figure.rows,
        figure.cols,
        rows.len(),
        scene.width / 72.0 * MM_PER_INCH,
        scene.height / 72.0 * MM_PER_INCH,
        args.out.display()
    );
    Ok(())
}

fn method_options(m: &MethodArgs) -> serde_json::Value {
    serde_json::json!({
        "baseline": m.baseline.to_string(),
        "steps": m.steps,
        "rule": m.rule.to_string(),
        "objective": m.objective.to_string(),
        "batch_size": m.batch_size,
        "seed": m.seed,
        "samples": m.samples,
        "noise": m.noise,
        "references": m.references,
        "points": m.points,
        "base_method": m.base_method.to_string(),
        "recal_compat": m.recal_compat.to_string(),
    })
}

fn targets_text(settings: &serde_json::Value) -> String {
    settings["images"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    format!(
                        "class {} ({}) for {}",
                        t["target"],
                        t["label"].as_str().unwrap_or_default(),
                        Path::new(t["image"].as_str().unwrap_or_default())
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The settings in a sentence or two, for `--caption`.
fn caption_text(args: &FigureArgs, model: &pathscope::model::Classifier, targets: &str, style: &FigureStyle) -> String {
    let m = &args.m;
    let mut s = format!("{}, {} of {targets}.", model.architecture(), m.objective);
    if args.methods.iter().any(|t| t.id.family() == Family::Ig) {
        let steps = m
            .steps
            .map_or("50/100/200 steps (straight/blur/guided)".to_string(), |n| {
                format!("{n} steps")
            });
        s += &format!(
            " Path methods: {} baseline (Blur IG: the blurred input), {steps}, {} rule on the straight line.",
            m.baseline, m.rule
        );
    }
    let range = match style.clip {
        ClipRule::Percentile(p) => format!("the {p}th percentile of |A|"),
        ClipRule::MaxAbs => "max |A|".into(),
        ClipRule::CaptumOutlierMass(p) => format!("Captum's {p} % outlier mass"),
    };
    let shared = match style.colorbar {
        ColorbarPlacement::Panel => "each panel its own",
        ColorbarPlacement::Column => "shared per column",
        ColorbarPlacement::Shared | ColorbarPlacement::None => "shared per colour scale",
    };
    s += &format!(" Channels summed; colour range: {range} ({shared})");
    if style.overlay > 0.0 {
        s += "; maps over the grey photo.";
    } else {
        s += ".";
    }
    s
}

/// `--data DIR`: every map in one safetensors file and as .npy, path traces as safetensors.
fn write_data(dir: &Path, computed: &[Computed], command: &str, settings: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let meta = HashMap::from([
        ("command".to_string(), command.to_string()),
        ("settings".to_string(), settings.to_string()),
        (
            "layout".to_string(),
            "one float32 [C, H, W] attribution per image/method, in the model's input space".to_string(),
        ),
    ]);
    let name = |c: &Computed| format!("{}/{}", c.image, c.token.text);
    let maps: Vec<(String, Vec<usize>, &[f32])> = computed
        .iter()
        .map(|c| (name(c), c.shape.clone(), c.values.as_slice()))
        .collect();
    let st = dir.join("attributions.safetensors");
    write_atomic(&st, &maps_safetensors(&maps, &meta)?).with_context(|| format!("writing {}", st.display()))?;
    for c in computed {
        let stem = format!("{}__{}", c.image, c.token.text.replace(':', "-"));
        let npy = dir.join(format!("{stem}.npy"));
        write_atomic(&npy, &npy_f32_bytes(&c.values, &c.shape))
            .with_context(|| format!("writing {}", npy.display()))?;
        if let Some(trace) = &c.trace {
            let mut m = meta.clone();
            m.insert("map".into(), name(c));
            let path = dir.join(format!("{stem}.trace.safetensors"));
            write_atomic(&path, &trace_safetensors(trace, &c.shape, &m)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
