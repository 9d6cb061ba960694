//! What a model expects besides its weights — the preprocessing and the class labels —
//! and where each came from. The first source that says something wins, field by field:
//!
//! 1. the command line or the studio's controls ([`Overrides`], applied by the caller);
//! 2. a sidecar `MODEL.json` beside the model file (`resnet.onnx` → `resnet.json`);
//! 3. the ONNX file's `metadata_props` (the same keys, each value JSON or plain text);
//! 4. a torchvision preset ([`PRESETS`]) named by 1–3; else the architecture's own for
//!    built-in families; else a preset named by an ONNX file's name
//!    (`vit_b_16_finetuned.onnx` → `vit_b_16`) when its crop fits the graph's input;
//! 5. the graph's declared input (channels, height × width) with torchvision's ImageNet
//!    conventions (resize the shorter side to 256/224 of the crop).
//!
//! Labels: `--labels`, the sidecar's `labels`, the metadata's `labels`; ImageNet's names
//! only for a 1000-class model that nothing else names; otherwise `class N`. A list whose
//! length differs from the model's outputs is an error naming both counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::labels::{Labels, LabelsError};
use super::preprocess::{parse_size, ChannelOrder, Interpolation, Normalization, Preprocessing, Resize};

/// A torchvision weight transform: `(name, resize, crop, interpolation, mean, std)`, from
/// `torchvision.models.get_model_weights(name).DEFAULT.transforms()` (torchvision 0.29;
/// `tests/data/make_presets.py` prints this table).
type PresetRow = (&'static str, u32, u32, Interpolation, [f32; 3], [f32; 3]);

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
const HALF: [f32; 3] = [0.5, 0.5, 0.5];
use Interpolation::{Bicubic, Bilinear};

pub const PRESETS: &[PresetRow] = &[
    ("alexnet", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("convnext_base", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("convnext_large", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("convnext_small", 230, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("convnext_tiny", 236, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("densenet121", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("densenet161", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("densenet169", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("densenet201", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b0", 256, 224, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b1", 255, 240, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b2", 288, 288, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b3", 320, 300, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b4", 384, 380, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b5", 456, 456, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b6", 528, 528, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_b7", 600, 600, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_v2_l", 480, 480, Bicubic, HALF, HALF),
    ("efficientnet_v2_m", 480, 480, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("efficientnet_v2_s", 384, 384, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("googlenet", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("inception_v3", 342, 299, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("mobilenet_v2", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("mobilenet_v3_large", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("mobilenet_v3_small", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("regnet_x_400mf", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("regnet_y_400mf", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("resnet101", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("resnet152", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("resnet18", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("resnet34", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("resnet50", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("shufflenet_v2_x1_0", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("squeezenet1_0", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("squeezenet1_1", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("swin_b", 238, 224, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("swin_s", 246, 224, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("swin_t", 232, 224, Bicubic, IMAGENET_MEAN, IMAGENET_STD),
    ("vgg16", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("vgg16_bn", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("vgg19", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("vit_b_16", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("vit_b_32", 256, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("vit_l_16", 242, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
    ("wide_resnet50_2", 232, 224, Bilinear, IMAGENET_MEAN, IMAGENET_STD),
];

/// A named torchvision preset, for `channels` input channels.
pub fn preset(name: &str) -> Option<Preprocessing> {
    PRESETS
        .iter()
        .find(|p| p.0 == name)
        .map(|&(_, resize, crop, interpolation, mean, std)| Preprocessing {
            resize: Resize::Shorter(resize),
            interpolation,
            crop: (crop, crop),
            normalization: Normalization {
                mean,
                std,
                channels: ChannelOrder::Rgb,
            },
        })
}

#[derive(Debug, thiserror::Error)]
pub enum ConventionsError {
    #[error("{}: {message}", path.display())]
    Sidecar { path: PathBuf, message: String },
    #[error("the model's metadata_props: {0}")]
    Metadata(String),
    #[error("{0}")]
    Labels(#[from] LabelsError),
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

/// A size in a sidecar: `256`, `[299, 299]`, `"299x299"` or `"none"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeSpec {
    Side(u32),
    Pair([u32; 2]),
    Text(String),
}

/// Labels in a sidecar: the list itself, or a file (one per line) relative to the sidecar.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum LabelsSpec {
    List(Vec<String>),
    Text(String),
}

/// One value or one per channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PerChannel {
    One(f32),
    Each(Vec<f32>),
}

/// The keys a sidecar or the metadata may hold (documented in the README).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    preset: Option<String>,
    resize: Option<SizeSpec>,
    interpolation: Option<String>,
    crop: Option<SizeSpec>,
    mean: Option<PerChannel>,
    std: Option<PerChannel>,
    /// `x · scale + offset` of pixel values in 0..=255 (Keras' `Rescaling`), instead of
    /// mean and std.
    scale: Option<f32>,
    offset: Option<PerChannel>,
    channels: Option<String>,
    labels: Option<LabelsSpec>,
}

const SPEC_KEYS: [&str; 10] = [
    "preset",
    "resize",
    "interpolation",
    "crop",
    "mean",
    "std",
    "scale",
    "offset",
    "channels",
    "labels",
];

/// What the command line or the studio sets, each field overriding every other source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub preset: Option<String>,
    pub resize: Option<Resize>,
    pub interpolation: Option<Interpolation>,
    pub crop: Option<(u32, u32)>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub channels: Option<ChannelOrder>,
    pub labels: Option<PathBuf>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }
}

/// The preprocessing and labels in force, with the sources people are told.
#[derive(Debug, Clone)]
pub struct Conventions {
    pub preprocessing: Preprocessing,
    /// "sidecar resnet.json", "preset vit_b_16 (from the file name)", …
    pub preprocessing_source: String,
    pub labels: Labels,
    pub labels_source: String,
}

/// What the model itself says: its input and outputs.
#[derive(Debug, Clone)]
pub struct ModelFacts<'a> {
    pub path: &'a Path,
    /// Channels of the input, and its fixed height × width if the graph declares one.
    pub channels: usize,
    pub input_size: Option<(u32, u32)>,
    pub num_classes: usize,
    /// The architecture's own preprocessing (built-in families), used before the graph's.
    pub native: Option<Preprocessing>,
    pub metadata: Option<&'a BTreeMap<String, String>>,
}

/// The sidecar file of a model: `MODEL.json` beside it, `MODEL` being the file's stem.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

impl Conventions {
    /// Resolves the preprocessing and labels from every source below the command line.
    pub fn resolve(facts: &ModelFacts) -> Result<Self, ConventionsError> {
        Self::resolve_with(facts, &Overrides::default())
    }

    /// Resolves with the command line's `overrides` on top.
    pub fn resolve_with(facts: &ModelFacts, overrides: &Overrides) -> Result<Self, ConventionsError> {
        let sidecar_file = sidecar_path(facts.path);
        let sidecar = if sidecar_file.is_file() && sidecar_file != facts.path {
            Some(read_sidecar(&sidecar_file)?)
        } else {
            None
        };
        let metadata = match facts.metadata {
            Some(m) => Some(metadata_spec(m)?),
            None => None,
        };
        let sidecar_name = sidecar_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();

        // The base: a preset someone named, else the file name's preset, else the model's.
        let named_preset = overrides
            .preset
            .as_ref()
            .map(|p| (p.clone(), "flags or studio controls".to_string()))
            .or_else(|| {
                let s = sidecar.as_ref()?.preset.clone()?;
                Some((s, format!("sidecar {sidecar_name}")))
            })
            .or_else(|| Some((metadata.as_ref()?.preset.clone()?, "ONNX metadata".to_string())));
        let (mut pre, mut source) = match named_preset {
            Some((name, from)) => {
                let p = preset(&name).ok_or_else(|| ConventionsError::Invalid {
                    what: format!("preset `{name}` ({from})"),
                    message: format!("unknown preset; known: {}", preset_names()),
                })?;
                (p, format!("preset {name} ({from})"))
            }
            None => base_from_model(facts),
        };
        if facts.channels == 1 {
            pre.normalization.channels = ChannelOrder::Grey;
        }

        // Field by field, lowest priority first.
        let mut sources: Vec<String> = Vec::new();
        if let Some(spec) = &metadata {
            if apply_spec(&mut pre, spec, "the model's metadata_props")? {
                sources.push("ONNX metadata".into());
            }
        }
        if let Some(spec) = &sidecar {
            if apply_spec(&mut pre, spec, &sidecar_file.display().to_string())? {
                sources.push(format!("sidecar {sidecar_name}"));
            }
        }
        if apply_overrides(&mut pre, overrides)? {
            sources.push("flags or studio controls".into());
        }
        if !sources.is_empty() {
            sources.reverse();
            source = format!("{}, over {source}", sources.join(", "));
        }
        check(&pre, facts)?;

        let (labels, labels_source) = resolve_labels(facts, overrides, &sidecar, &sidecar_file, &metadata)?;
        Ok(Conventions {
            preprocessing: pre,
            preprocessing_source: source,
            labels,
            labels_source,
        })
    }
}

fn preset_names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

/// The preprocessing the model's file name or input suggests, and why.
fn base_from_model(facts: &ModelFacts) -> (Preprocessing, String) {
    let stem = facts
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    // The longest preset name the file name starts with (`resnet50` before `resnet5…`).
    let by_name = PRESETS
        .iter()
        .filter(|p| stem.starts_with(p.0) && !stem[p.0.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
        .max_by_key(|p| p.0.len());
    if let Some(native) = facts.native {
        return (native, "the architecture's published weights".into());
    }
    if let Some(&(name, _, crop, ..)) = by_name {
        if facts.input_size.is_none_or(|s| s == (crop, crop)) && facts.channels == 3 {
            if let Some(p) = preset(name) {
                return (p, format!("preset {name} (from the file name)"));
            }
        }
    }
    match facts.input_size {
        Some((h, w)) if (h, w) != (224, 224) => (
            Preprocessing::for_input(h, w, Normalization::IMAGENET),
            format!("the graph's {h}×{w} input, ImageNet statistics"),
        ),
        Some(_) => (
            Preprocessing::IMAGENET,
            "the graph's 224×224 input, ImageNet statistics".into(),
        ),
        None => (
            Preprocessing::IMAGENET,
            "ImageNet defaults (the graph fixes no input size)".into(),
        ),
    }
}

fn read_sidecar(path: &Path) -> Result<Spec, ConventionsError> {
    let error = |message: String| ConventionsError::Sidecar {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| error(format!("not a valid model description: {e}")))
}

/// The schema's keys among the metadata, each value read as JSON or else as a string.
fn metadata_spec(metadata: &BTreeMap<String, String>) -> Result<Spec, ConventionsError> {
    let mut map = serde_json::Map::new();
    for key in SPEC_KEYS {
        if let Some(text) = metadata.get(key) {
            let value = serde_json::from_str(text).unwrap_or_else(|_| {
                if key == "labels" {
                    // Plain text: one label per line, or comma-separated on one line.
                    let sep = if text.contains('\n') { '\n' } else { ',' };
                    serde_json::Value::Array(
                        text.split(sep)
                            .map(|l| l.trim())
                            .filter(|l| !l.is_empty())
                            .map(|l| serde_json::Value::String(l.to_string()))
                            .collect(),
                    )
                } else {
                    serde_json::Value::String(text.clone())
                }
            });
            map.insert(key.to_string(), value);
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| ConventionsError::Metadata(e.to_string()))
}

fn size_of(spec: &SizeSpec, what: &str, origin: &str) -> Result<Option<(u32, Option<u32>)>, ConventionsError> {
    let invalid = |message: String| ConventionsError::Invalid {
        what: format!("{origin}: `{what}`"),
        message,
    };
    match spec {
        SizeSpec::Side(n) => parse_size(&n.to_string()).map(Some).map_err(invalid),
        SizeSpec::Pair([h, w]) => parse_size(&format!("{h}x{w}")).map(Some).map_err(invalid),
        SizeSpec::Text(t) if t == "none" => Ok(None),
        SizeSpec::Text(t) => parse_size(t).map(Some).map_err(invalid),
    }
}

fn per_channel(v: &PerChannel, what: &str, origin: &str) -> Result<Vec<f32>, ConventionsError> {
    let values = match v {
        PerChannel::One(x) => vec![*x],
        PerChannel::Each(xs) => xs.clone(),
    };
    if values.is_empty() || values.len() > 3 || values.iter().any(|x| !x.is_finite()) {
        return Err(ConventionsError::Invalid {
            what: format!("{origin}: `{what}`"),
            message: format!("expected 1 or 3 finite numbers, got {values:?}"),
        });
    }
    Ok(values)
}

/// Sets `target` from one value (all channels) or three.
fn set_channels(target: &mut [f32; 3], values: &[f32]) {
    for (c, t) in target.iter_mut().enumerate() {
        *t = values[c.min(values.len() - 1)];
    }
}

/// Applies a sidecar's or the metadata's fields; whether it set any preprocessing field.
fn apply_spec(pre: &mut Preprocessing, spec: &Spec, origin: &str) -> Result<bool, ConventionsError> {
    let invalid = |what: &str, message: String| ConventionsError::Invalid {
        what: format!("{origin}: `{what}`"),
        message,
    };
    let mut any = false;
    if let Some(r) = &spec.resize {
        pre.resize = match size_of(r, "resize", origin)? {
            None => Resize::None,
            Some((n, None)) => Resize::Shorter(n),
            Some((height, Some(width))) => Resize::Exact { height, width },
        };
        any = true;
    }
    if let Some(c) = &spec.crop {
        pre.crop = match size_of(c, "crop", origin)? {
            Some((n, None)) => (n, n),
            Some((h, Some(w))) => (h, w),
            None => return Err(invalid("crop", "a crop size is needed: N or [H, W]".into())),
        };
        any = true;
    }
    if let Some(i) = &spec.interpolation {
        pre.interpolation = i.parse().map_err(|e| invalid("interpolation", e))?;
        any = true;
    }
    if let Some(c) = &spec.channels {
        pre.normalization.channels = c.parse().map_err(|e| invalid("channels", e))?;
        any = true;
    }
    if spec.scale.is_some() && (spec.mean.is_some() || spec.std.is_some()) {
        return Err(invalid(
            "scale",
            "give either mean and std, or scale and offset, not both".into(),
        ));
    }
    if let Some(m) = &spec.mean {
        set_channels(&mut pre.normalization.mean, &per_channel(m, "mean", origin)?);
        any = true;
    }
    if let Some(s) = &spec.std {
        let s = per_channel(s, "std", origin)?;
        if s.contains(&0.0) {
            return Err(invalid("std", "a standard deviation of 0 divides by zero".into()));
        }
        set_channels(&mut pre.normalization.std, &s);
        any = true;
    }
    if let Some(scale) = spec.scale {
        if scale == 0.0 || !scale.is_finite() {
            return Err(invalid("scale", format!("{scale} is not a usable scale")));
        }
        let offset = match &spec.offset {
            Some(o) => per_channel(o, "offset", origin)?,
            None => vec![0.0],
        };
        // x·255·scale + offset = (x − mean)/std with std = 1/(255·scale), mean = −offset·std.
        let std = 1.0 / (255.0 * scale);
        pre.normalization.std = [std; 3];
        let mut o = [0f32; 3];
        set_channels(&mut o, &offset);
        pre.normalization.mean = o.map(|o| -o * std);
        any = true;
    } else if spec.offset.is_some() {
        return Err(invalid("offset", "an offset needs a scale".into()));
    }
    Ok(any)
}

fn apply_overrides(pre: &mut Preprocessing, o: &Overrides) -> Result<bool, ConventionsError> {
    let mut any = false;
    if let Some(r) = o.resize {
        pre.resize = r;
        any = true;
    }
    if let Some(c) = o.crop {
        pre.crop = c;
        any = true;
    }
    if let Some(i) = o.interpolation {
        pre.interpolation = i;
        any = true;
    }
    if let Some(c) = o.channels {
        pre.normalization.channels = c;
        any = true;
    }
    let origin = "flags or studio controls";
    if let Some(m) = &o.mean {
        set_channels(
            &mut pre.normalization.mean,
            &per_channel(&PerChannel::Each(m.clone()), "mean", origin)?,
        );
        any = true;
    }
    if let Some(s) = &o.std {
        let s = per_channel(&PerChannel::Each(s.clone()), "std", origin)?;
        if s.contains(&0.0) {
            return Err(ConventionsError::Invalid {
                what: "--std".into(),
                message: "a standard deviation of 0 divides by zero".into(),
            });
        }
        set_channels(&mut pre.normalization.std, &s);
        any = true;
    }
    Ok(any)
}

/// The preprocessing must produce what the graph reads.
fn check(pre: &Preprocessing, facts: &ModelFacts) -> Result<(), ConventionsError> {
    let channels = pre.normalization.channels.count();
    if channels != facts.channels {
        return Err(ConventionsError::Invalid {
            what: "preprocessing".into(),
            message: format!(
                "channels `{}` give {channels} channel(s), but the model reads {}",
                pre.normalization.channels, facts.channels
            ),
        });
    }
    if let Some((h, w)) = facts.input_size {
        if pre.crop != (h, w) {
            return Err(ConventionsError::Invalid {
                what: "preprocessing".into(),
                message: format!(
                    "the crop is {}×{}, but the model's input is {h}×{w}",
                    pre.crop.0, pre.crop.1
                ),
            });
        }
    }
    Ok(())
}

fn resolve_labels(
    facts: &ModelFacts,
    overrides: &Overrides,
    sidecar: &Option<Spec>,
    sidecar_file: &Path,
    metadata: &Option<Spec>,
) -> Result<(Labels, String), ConventionsError> {
    let classes = facts.num_classes;
    let (labels, source) = if let Some(path) = &overrides.labels {
        (Labels::from_file(path)?, format!("--labels {}", path.display()))
    } else if let Some(spec) = sidecar.as_ref().and_then(|s| s.labels.as_ref()) {
        let name = sidecar_file.display().to_string();
        match spec {
            LabelsSpec::List(names) => (Labels::from_names(names, &name)?, format!("sidecar {name}")),
            LabelsSpec::Text(file) => {
                let path = sidecar_file.parent().unwrap_or(Path::new(".")).join(file);
                (
                    Labels::from_file(&path)?,
                    format!("{} (named by {name})", path.display()),
                )
            }
        }
    } else if let Some(spec) = metadata.as_ref().and_then(|s| s.labels.as_ref()) {
        match spec {
            LabelsSpec::List(names) => (
                Labels::from_names(names, "the model's metadata_props")?,
                "ONNX metadata".to_string(),
            ),
            LabelsSpec::Text(text) => (
                Labels::from_names(std::slice::from_ref(text), "the model's metadata_props")?,
                "ONNX metadata".to_string(),
            ),
        }
    } else if classes == 1000 {
        return Ok((Labels::imagenet(), "ImageNet-1k (the model has 1000 outputs)".into()));
    } else {
        return Ok((
            Labels::numbered(),
            format!("none: the model's {classes} outputs show as `class N`"),
        ));
    };
    if labels.len() != classes {
        return Err(ConventionsError::Invalid {
            what: format!("labels from {source}"),
            message: format!(
                "{} labels for a model with {classes} outputs; give exactly one label per output",
                labels.len()
            ),
        });
    }
    Ok((labels, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &Path, channels: usize, size: Option<(u32, u32)>, classes: usize) -> ModelFacts<'_> {
        ModelFacts {
            path,
            channels,
            input_size: size,
            num_classes: classes,
            native: None,
            metadata: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pathscope-conventions-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_graph_input_sets_the_crop_and_torchvision_ratio() {
        let p = Path::new("/nowhere/model.onnx");
        let c = Conventions::resolve(&facts(p, 3, Some((299, 299)), 1000)).unwrap();
        assert_eq!(c.preprocessing.crop, (299, 299));
        assert_eq!(c.preprocessing.resize, Resize::Shorter(342));
        let c = Conventions::resolve(&facts(p, 1, Some((64, 96)), 10)).unwrap();
        assert_eq!(c.preprocessing.crop, (64, 96));
        assert_eq!(c.preprocessing.normalization.channels, ChannelOrder::Grey);
        assert_eq!(c.labels.name(3), "class 3");
        assert!(c.labels_source.contains("10 outputs"), "{}", c.labels_source);
    }

    #[test]
    fn file_names_pick_presets_only_when_the_input_fits() {
        let c = Conventions::resolve(&facts(Path::new("/x/efficientnet_b0_ft.onnx"), 3, Some((224, 224)), 5)).unwrap();
        assert_eq!(c.preprocessing.interpolation, Interpolation::Bicubic);
        assert!(
            c.preprocessing_source.contains("preset efficientnet_b0"),
            "{}",
            c.preprocessing_source
        );
        // resnet50 must not match resnet5, nor resnet18 a file called resnet180.
        let c = Conventions::resolve(&facts(Path::new("/x/resnet180.onnx"), 3, Some((224, 224)), 5)).unwrap();
        assert_eq!(c.preprocessing, Preprocessing::IMAGENET);
        let c = Conventions::resolve(&facts(Path::new("/x/inception_v3.onnx"), 3, Some((224, 224)), 5)).unwrap();
        assert_eq!(c.preprocessing.crop, (224, 224), "the graph's input wins over the name");
    }

    #[test]
    fn sidecar_then_command_line_override_field_by_field() {
        let dir = scratch("sidecar");
        let model = dir.join("net.onnx");
        std::fs::write(
            dir.join("net.json"),
            r#"{"preset": "vit_b_16", "interpolation": "bicubic", "scale": 0.00784313725, "offset": -1,
                "channels": "bgr", "labels": ["cat", "dog"]}"#,
        )
        .unwrap();
        let c = Conventions::resolve(&facts(&model, 3, Some((224, 224)), 2)).unwrap();
        let n = c.preprocessing.normalization;
        assert_eq!(c.preprocessing.interpolation, Interpolation::Bicubic);
        assert_eq!(n.channels, ChannelOrder::Bgr);
        // scale 2/255, offset −1 is (x − 0.5)/0.5 on [0, 1] pixels.
        assert!((n.std[0] - 0.5).abs() < 1e-6 && (n.mean[2] - 0.5).abs() < 1e-6, "{n:?}");
        assert_eq!(c.labels.name(1), "dog");
        assert!(
            c.preprocessing_source.contains("sidecar net.json"),
            "{}",
            c.preprocessing_source
        );
        let o = Overrides {
            resize: Some(Resize::Exact {
                height: 224,
                width: 224,
            }),
            channels: Some(ChannelOrder::Rgb),
            ..Default::default()
        };
        let c = Conventions::resolve_with(&facts(&model, 3, Some((224, 224)), 2), &o).unwrap();
        assert_eq!(c.preprocessing.normalization.channels, ChannelOrder::Rgb);
        assert_eq!(c.preprocessing.interpolation, Interpolation::Bicubic);
        assert!(
            c.preprocessing_source.starts_with("flags or studio controls"),
            "{}",
            c.preprocessing_source
        );
    }

    #[test]
    fn label_counts_must_match_the_outputs() {
        let dir = scratch("labels");
        let file = dir.join("two.txt");
        std::fs::write(&file, "cat\ndog\n").unwrap();
        let o = Overrides {
            labels: Some(file),
            ..Default::default()
        };
        let e = Conventions::resolve_with(&facts(&dir.join("m.onnx"), 3, None, 1000), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 labels") && e.contains("1000 outputs"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn metadata_props_are_read_as_json_or_text() {
        let mut m = BTreeMap::new();
        m.insert("mean".to_string(), "[0.5, 0.5, 0.5]".to_string());
        m.insert("resize".to_string(), "80x100".to_string());
        m.insert("labels".to_string(), "a, b, c".to_string());
        m.insert("producer_note".to_string(), "ignored".to_string());
        let mut f = facts(Path::new("/x/m.onnx"), 3, Some((64, 64)), 3);
        f.metadata = Some(&m);
        let c = Conventions::resolve(&f).unwrap();
        assert_eq!(c.preprocessing.resize, Resize::Exact { height: 80, width: 100 });
        assert_eq!(c.preprocessing.normalization.mean, [0.5; 3]);
        assert_eq!(c.labels.name(2), "c");
        assert_eq!(
            c.preprocessing_source,
            "ONNX metadata, over the graph's 64×64 input, ImageNet statistics"
        );
    }

    #[test]
    fn a_crop_that_does_not_fit_the_graph_is_refused() {
        let o = Overrides {
            crop: Some((256, 256)),
            ..Default::default()
        };
        let e = Conventions::resolve_with(&facts(Path::new("/x/m.onnx"), 3, Some((224, 224)), 3), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("256×256") && e.contains("224×224"), "{e}");
    }
}
