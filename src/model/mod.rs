//! Image classifiers in candle: architectures, weight loading, preprocessing, labels.
//!
//! The architecture is recognised from the checkpoint's tensor names (torchvision or
//! `efficientnet_lite_pytorch` conventions); anything else is an error that names what
//! was expected and what was found.

pub mod activation;
pub mod buffers;
pub mod conv;
pub mod efficientnet_lite;
pub mod graph;
pub mod labels;
pub mod line;
pub mod maxpool;
pub mod onnx;
pub mod ops;
pub mod preprocess;
pub mod randomize;
pub mod resnet;
mod simd;
pub mod squeezenet;
pub mod tape;
pub mod weights;
pub mod winograd;

use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};

use graph::{CandleGraph, CostCounter, Graph};
use tape::Tape;

use efficientnet_lite::EfficientNetLite;
pub use preprocess::Normalization;
use resnet::ResNet;
use squeezenet::{SqueezeNet, SqueezeNetVersion};
pub use weights::WeightStore;

/// Errors while loading a model. Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: unknown architecture: {hint}", path.display())]
    UnknownArchitecture { path: PathBuf, hint: String },
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: not a valid {architecture} checkpoint: {}", path.display(), describe_mismatch(missing, unexpected))]
    TensorMismatch {
        path: PathBuf,
        architecture: String,
        missing: Vec<String>,
        unexpected: Vec<String>,
    },
    #[error("{}: tensor `{name}` contains NaN or infinite values", path.display())]
    NonFinite { path: PathBuf, name: String },
    #[error("{}: {message}", path.display())]
    Compute { path: PathBuf, message: String },
}

impl ModelError {
    pub(crate) fn candle(path: &Path, e: candle_core::Error) -> Self {
        ModelError::Compute {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 6;
    let mut s = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

fn describe_mismatch(missing: &[String], unexpected: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing tensor(s): {}", missing.len(), list_names(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected tensor(s): {}",
            unexpected.len(),
            list_names(unexpected)
        ));
    }
    parts.join("; ")
}

/// The architectures Pathscope can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    SqueezeNet1_0,
    SqueezeNet1_1,
    /// torchvision ResNet with the given depth (18, 34, 50, 101, 152).
    ResNet(usize),
    EfficientNetLite0,
    /// A graph read from an ONNX file (see [`onnx`]); expects ImageNet normalisation.
    Onnx,
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::SqueezeNet1_0 => write!(f, "SqueezeNet-1.0"),
            Architecture::SqueezeNet1_1 => write!(f, "SqueezeNet-1.1"),
            Architecture::ResNet(d) => write!(f, "ResNet-{d}"),
            Architecture::EfficientNetLite0 => write!(f, "EfficientNet-Lite0"),
            Architecture::Onnx => write!(f, "ONNX graph"),
        }
    }
}

impl Architecture {
    /// The input normalisation the architecture's published weights expect.
    pub fn normalization(self) -> Normalization {
        match self {
            Architecture::EfficientNetLite0 => Normalization::TF_LITE,
            _ => Normalization::IMAGENET,
        }
    }

    /// Recognises the architecture from tensor names and shapes.
    pub fn detect(w: &WeightStore) -> Result<Self, ModelError> {
        if let Some(shape) = w.shape("features.0.weight") {
            if w.contains("features.3.squeeze.weight") {
                return match shape {
                    [64, 3, 3, 3] => Ok(Architecture::SqueezeNet1_1),
                    [96, 3, 7, 7] => Ok(Architecture::SqueezeNet1_0),
                    other => Err(ModelError::UnknownArchitecture {
                        path: w.path().to_path_buf(),
                        hint: format!(
                            "looks like SqueezeNet, but `features.0.weight` has shape {other:?} \
                             (1.1 has [64, 3, 3, 3], 1.0 has [96, 3, 7, 7])"
                        ),
                    }),
                };
            }
        }
        if w.contains("conv1.weight") && w.contains("layer1.0.conv1.weight") {
            let (counts, bottleneck) = resnet::block_layout(w);
            let depth = match (counts, bottleneck) {
                ([2, 2, 2, 2], false) => 18,
                ([3, 4, 6, 3], false) => 34,
                ([3, 4, 6, 3], true) => 50,
                ([3, 4, 23, 3], true) => 101,
                ([3, 8, 36, 3], true) => 152,
                _ => {
                    return Err(ModelError::UnknownArchitecture {
                        path: w.path().to_path_buf(),
                        hint: format!(
                            "looks like a ResNet, but its block counts {counts:?} ({}) match no \
                             torchvision ResNet (18, 34, 50, 101, 152)",
                            if bottleneck { "bottleneck" } else { "basic" }
                        ),
                    })
                }
            };
            return Ok(Architecture::ResNet(depth));
        }
        if w.contains("_conv_stem.weight") {
            let blocks = (0..)
                .take_while(|i| w.contains(&format!("_blocks.{i}._depthwise_conv.weight")))
                .count();
            if blocks == efficientnet_lite::LITE0_BLOCKS && !w.contains("_blocks.0._se_reduce.weight") {
                return Ok(Architecture::EfficientNetLite0);
            }
            return Err(ModelError::UnknownArchitecture {
                path: w.path().to_path_buf(),
                hint: format!(
                    "looks like an EfficientNet with {blocks} blocks{}; only EfficientNet-Lite0 \
                     (16 blocks, no squeeze-excitation) is supported",
                    if w.contains("_blocks.0._se_reduce.weight") {
                        " and squeeze-excitation"
                    } else {
                        ""
                    }
                ),
            });
        }
        let mut names: Vec<String> = w.names().map(str::to_string).collect();
        names.sort();
        Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: format!(
                "the tensor names match none of SqueezeNet 1.0/1.1, ResNet 18/34/50/101/152 \
                 (torchvision names) or EfficientNet-Lite0; the file has {} tensors, e.g. {}",
                names.len(),
                list_names(&names)
            ),
        })
    }
}

/// File extensions of the models Pathscope opens (checkpoints and ONNX graphs), for file
/// dialogs and dropped files.
pub const MODEL_EXTENSIONS: &[&str] = &["safetensors", "pth", "pt", "bin", "ckpt", "onnx"];

/// Whether `path` names an ONNX file (by its extension; protobuf has no magic number).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

enum Network {
    SqueezeNet(SqueezeNet),
    ResNet(ResNet),
    EfficientNetLite(EfficientNetLite),
    Onnx(onnx::OnnxNetwork),
}

/// A loaded image classifier: maps a batch of normalised images [N, 3, H, W] to logits
/// [N, classes].
pub struct Classifier {
    architecture: Architecture,
    network: Network,
    num_classes: usize,
    source: PathBuf,
    device: Device,
}

impl Classifier {
    /// Loads a checkpoint from a file, recognising its architecture, or an `.onnx` graph.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ModelError> {
        if is_onnx(path) {
            return Self::from_onnx(path, onnx::OnnxNetwork::open(path, device)?, device);
        }
        Self::from_store(WeightStore::open(path, device)?)
    }

    /// An ONNX graph held in memory; `name` names it in errors.
    pub fn load_onnx_bytes(name: &Path, bytes: &[u8], device: &Device) -> Result<Self, ModelError> {
        Self::from_onnx(name, onnx::OnnxNetwork::from_bytes(name, bytes, device)?, device)
    }

    fn from_onnx(path: &Path, network: onnx::OnnxNetwork, device: &Device) -> Result<Self, ModelError> {
        Ok(Self {
            architecture: Architecture::Onnx,
            num_classes: network.num_classes(),
            network: Network::Onnx(network),
            source: path.to_path_buf(),
            device: device.clone(),
        })
    }

    /// Loads a checkpoint held in memory (e.g. the embedded default model).
    pub fn load_bytes(name: &Path, bytes: &[u8], device: &Device) -> Result<Self, ModelError> {
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| ModelError::Format {
            path: name.to_path_buf(),
            message: format!("invalid safetensors file: {e}"),
        })?;
        Self::from_store(WeightStore::from_tensors(name, tensors, device)?)
    }

    /// Builds the network the tensors describe, on the store's device.
    pub fn from_store(mut w: WeightStore) -> Result<Self, ModelError> {
        let architecture = Architecture::detect(&w)?;
        let num_classes = Self::infer_classes(&w, architecture);
        let network = match architecture {
            Architecture::SqueezeNet1_0 => {
                Network::SqueezeNet(SqueezeNet::load(&mut w, SqueezeNetVersion::V1_0, num_classes)?)
            }
            Architecture::SqueezeNet1_1 => {
                Network::SqueezeNet(SqueezeNet::load(&mut w, SqueezeNetVersion::V1_1, num_classes)?)
            }
            Architecture::ResNet(_) => Network::ResNet(ResNet::load(&mut w, num_classes)?),
            Architecture::EfficientNetLite0 => {
                Network::EfficientNetLite(EfficientNetLite::load_lite0(&mut w, num_classes)?)
            }
            // Never detected from named tensors; ONNX graphs come through `load`.
            Architecture::Onnx => {
                return Err(ModelError::UnknownArchitecture {
                    path: w.path().to_path_buf(),
                    hint: "an ONNX graph is not a checkpoint of named tensors".into(),
                })
            }
        };
        let source = w.path().to_path_buf();
        let device = w.device().clone();
        w.finish(&architecture.to_string())?;
        Ok(Self {
            architecture,
            network,
            num_classes,
            source,
            device,
        })
    }

    fn infer_classes(w: &WeightStore, arch: Architecture) -> usize {
        let name = match arch {
            Architecture::SqueezeNet1_0 | Architecture::SqueezeNet1_1 => "classifier.1.weight",
            Architecture::ResNet(_) => "fc.weight",
            Architecture::EfficientNetLite0 => "_fc.weight",
            Architecture::Onnx => return 1000,
        };
        w.shape(name).map(|s| s[0]).unwrap_or(1000)
    }

    pub fn architecture(&self) -> Architecture {
        self.architecture
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn normalization(&self) -> Normalization {
        self.architecture.normalization()
    }

    /// Runs the network on any [`Graph`].
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> candle_core::Result<G::Value> {
        match &self.network {
            Network::SqueezeNet(m) => m.build(g, x),
            Network::ResNet(m) => m.build(g, x),
            Network::EfficientNetLite(m) => m.build(g, x),
            Network::Onnx(m) => m.build(g, x),
        }
    }

    /// Multiply–adds of one forward pass of a single 3×`h`×`w` image (convolutions and
    /// the final linear layer; pointwise ops are not counted). `None` off the CPU.
    pub fn forward_macs(&self, h: usize, w: usize) -> Option<u64> {
        Some(self.costs(h, w)?.macs)
    }

    /// Bytes one 3×`h`×`w` point holds during a forward + input-gradient pass: every
    /// recorded activation, plus as much again for the gradients in flight (a generous
    /// bound: the reverse pass frees activations as it goes). `None` off the CPU.
    pub fn gradient_bytes_per_point(&self, h: usize, w: usize) -> Option<u64> {
        let counter = self.costs(h, w)?;
        Some(2 * 4 * (counter.activation_elements + (3 * h * w) as u64))
    }

    fn costs(&self, h: usize, w: usize) -> Option<CostCounter> {
        let mut counter = CostCounter::default();
        self.build(&mut counter, &vec![1, 3, h, w]).ok()?;
        Some(counter)
    }

    /// Whether `x` can go through the CPU [`Tape`] (CPU weights and input, f32).
    fn uses_tape(&self, x: &Tensor) -> bool {
        self.device.is_cpu() && x.device().is_cpu() && x.dtype() == DType::F32
    }

    /// Logits for a batch of normalised images [N, 3, H, W]. Not differentiable by candle
    /// on the CPU (it runs on the tape); see [`Self::forward_autograd`] and
    /// [`Self::logits_and_input_gradient`].
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if self.uses_tape(x) {
            let mut tape = Tape::new(false);
            let input = tape.input(x)?;
            return self.build(&mut tape, &input)?.to_tensor(x.device());
        }
        self.forward_autograd(x)
    }

    /// Logits as candle operations, differentiable by candle's autograd (the reference for
    /// the tape, and the path on other devices).
    pub fn forward_autograd(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.build(&mut CandleGraph, x)
    }

    /// The logits of a batch (flattened, [N × classes]) and the vector–Jacobian product
    /// ∂(Σ seed · logits)/∂x, where `seed` is computed from the logits (the gradient of
    /// the explained score with respect to them). Only the input gradient is computed.
    pub fn logits_and_input_gradient(
        &self,
        x: &Tensor,
        seed: impl FnOnce(&[f32]) -> Vec<f32>,
    ) -> candle_core::Result<(Vec<f32>, Tensor)> {
        if self.uses_tape(x) {
            let mut tape = Tape::new(true);
            let input = tape.input(x)?;
            let logits = self.build(&mut tape, &input)?;
            let values = logits.data().to_vec();
            let s = seed(&values);
            let g = tape.input_gradient(&logits, s)?;
            return Ok((values, Tensor::from_vec(g, x.dims(), x.device())?));
        }
        let var = Var::from_tensor(&x.detach())?;
        let logits = self.forward_autograd(var.as_tensor())?;
        let values = logits.flatten_all()?.to_vec1::<f32>()?;
        let s = Tensor::from_vec(seed(&values), logits.dims(), logits.device())?;
        let grads = (&logits * &s)?.sum_all()?.backward()?;
        let g = grads
            .get(var.as_tensor())
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("the score does not depend on the input".into()))?;
        Ok((values, g))
    }

    /// For the points `start + α_k (end − start)` (see [`line::line_points`]): their
    /// logits (flattened, [K × classes]) and each point's ∂(seed_k · logits_k)/∂point_k,
    /// [K, ...start's shape]. On the CPU the first convolution runs on the two ends only
    /// ([`line`]), so these match [`Self::logits_and_line_gradient_sum`] up to summation
    /// order; elsewhere this is [`Self::logits_and_input_gradient`] of the points.
    pub fn logits_and_line_gradients(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        seed: impl FnOnce(&[f32]) -> Vec<f32>,
    ) -> candle_core::Result<(Vec<f32>, Tensor)> {
        if !(self.uses_tape(start) && self.uses_tape(end)) {
            return self.logits_and_input_gradient(&line::line_points(start, end, alphas)?, seed);
        }
        let (tape, points_dims, logits) = self.line_tape(start, end, alphas)?;
        let values = logits.data().to_vec();
        let g = tape.input_gradient(&logits, seed(&values))?;
        Ok((values, Tensor::from_vec(g, points_dims, start.device())?))
    }

    /// As [`Self::logits_and_line_gradients`], but only Σ_k w_k ∂(seed_k · logits_k)/∂point_k,
    /// one image's elements in f64: on the CPU the first convolution's reverse pass then
    /// runs once on the weighted sum of its output gradients instead of once per point.
    pub fn logits_and_line_gradient_sum(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
        weights: &[f64],
        seed: impl FnOnce(&[f32]) -> Vec<f32>,
    ) -> candle_core::Result<(Vec<f32>, Vec<f64>)> {
        if alphas.len() != weights.len() {
            candle_core::bail!("{} points but {} weights", alphas.len(), weights.len());
        }
        if self.uses_tape(start) && self.uses_tape(end) {
            let (tape, _, logits) = self.line_tape(start, end, alphas)?;
            let values = logits.data().to_vec();
            let sum = tape.line_gradient_sum(&logits, seed(&values), weights)?;
            return Ok((values, sum));
        }
        let (values, g) = self.logits_and_input_gradient(&line::line_points(start, end, alphas)?, seed)?;
        let g = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut sum = vec![0f64; start.elem_count()];
        line::add_weighted_points(&mut sum, &g, weights);
        Ok((values, sum))
    }

    /// The recorded forward pass of a line input (CPU, f32), the points' shape and the
    /// logits.
    fn line_tape(
        &self,
        start: &Tensor,
        end: &Tensor,
        alphas: &[f64],
    ) -> candle_core::Result<(Tape, Vec<usize>, tape::Value)> {
        let mut tape = Tape::new(true);
        let input = tape.line_input(start, end, alphas)?;
        let logits = self.build(&mut tape, &input)?;
        Ok((tape, input.dims().to_vec(), logits))
    }
}
