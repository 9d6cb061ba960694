//! A loaded classifier: the architecture's network, run on the CPU tape or through
//! candle's autograd, with the logits and input gradients attribution asks for.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};

use std::collections::BTreeMap;

use super::architecture::{is_onnx, Architecture};
use super::conventions::{Conventions, ModelFacts, Overrides};
use super::efficientnet_lite::EfficientNetLite;
use super::error::ModelError;
use super::labels::Labels;
use super::onnx;
use super::preprocess::{Normalization, Preprocessing};
use super::resnet::ResNet;
use super::squeezenet::{SqueezeNet, SqueezeNetVersion};
use super::torchvision::{self, Family};
use super::weights::WeightStore;
use crate::net::candle_graph::CandleGraph;
use crate::net::cost::CostCounter;
use crate::net::graph::Graph;
use crate::net::line;
use crate::net::tape::{self, Tape};

enum Network {
    SqueezeNet(SqueezeNet),
    ResNet(ResNet),
    EfficientNetLite(EfficientNetLite),
    Torchvision(torchvision::Network),
    Onnx(onnx::OnnxNetwork),
}

/// What the model file itself says about its input, kept to resolve the conventions again
/// when the command line or the studio overrides them.
struct Declared {
    channels: usize,
    input_size: Option<(u32, u32)>,
    native: Option<Preprocessing>,
    metadata: Option<BTreeMap<String, String>>,
}

/// A loaded image classifier: maps a batch of normalised images [N, C, H, W] to logits
/// [N, classes], with the preprocessing and labels it expects.
pub struct Classifier {
    architecture: Architecture,
    network: Network,
    num_classes: usize,
    source: PathBuf,
    device: Device,
    declared: Declared,
    conventions: Conventions,
    /// Learned and buffer elements of a checkpoint (`None` for ONNX graphs).
    parameters: Option<u64>,
    /// Run candle's graph and autograd with candle's own ops even on the CPU (no tape, no
    /// custom ops): the path a GPU takes, checkable without one (`--device cpu:generic`).
    generic: bool,
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
        let input = network.input();
        let declared = Declared {
            channels: input.channels,
            input_size: input.size.map(|(h, w)| (h as u32, w as u32)),
            native: None,
            metadata: Some(network.metadata.clone()),
        };
        Self::with_conventions(
            Architecture::Onnx,
            network.num_classes(),
            Network::Onnx(network),
            path,
            device,
            declared,
        )
    }

    fn with_conventions(
        architecture: Architecture,
        num_classes: usize,
        network: Network,
        path: &Path,
        device: &Device,
        declared: Declared,
    ) -> Result<Self, ModelError> {
        let conventions = Self::resolve(path, num_classes, &declared, &Overrides::default())?;
        Ok(Self {
            architecture,
            num_classes,
            network,
            source: path.to_path_buf(),
            device: device.clone(),
            declared,
            conventions,
            parameters: None,
            generic: false,
        })
    }

    fn resolve(
        path: &Path,
        num_classes: usize,
        declared: &Declared,
        overrides: &Overrides,
    ) -> Result<Conventions, ModelError> {
        let facts = ModelFacts {
            path,
            channels: declared.channels,
            input_size: declared.input_size,
            num_classes,
            native: declared.native,
            metadata: declared.metadata.as_ref(),
        };
        Conventions::resolve_with(&facts, overrides).map_err(|source| ModelError::Conventions {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Applies the command line's or the studio's preprocessing and labels on top of the
    /// model's own (sidecar, metadata, preset, graph); on error nothing changes.
    pub fn override_conventions(&mut self, overrides: &Overrides) -> Result<(), ModelError> {
        self.conventions = Self::resolve(&self.source, self.num_classes, &self.declared, overrides)?;
        Ok(())
    }

    /// What [`Self::override_conventions`] would set, without setting it.
    pub fn conventions_with(&self, overrides: &Overrides) -> Result<Conventions, ModelError> {
        Self::resolve(&self.source, self.num_classes, &self.declared, overrides)
    }

    /// The preprocessing and labels in force, and where they came from.
    pub fn conventions(&self) -> &Conventions {
        &self.conventions
    }

    pub fn preprocessing(&self) -> &Preprocessing {
        &self.conventions.preprocessing
    }

    pub fn labels(&self) -> &Labels {
        &self.conventions.labels
    }

    /// Runs the model on the device-generic path (candle's ops and autograd only), as it
    /// would run on a GPU, or back on the CPU's tape and custom ops.
    pub fn set_generic(&mut self, generic: bool) {
        self.generic = generic;
    }

    /// Whether the model runs on the device-generic path.
    pub fn is_generic(&self) -> bool {
        self.generic
    }

    /// Channels of the input the model reads (1 for grey models).
    pub fn input_channels(&self) -> usize {
        self.declared.channels
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
        let network = match architecture {
            Architecture::SqueezeNet1_0 => {
                let classes = Self::head_rows(&w, "classifier.1.weight");
                Network::SqueezeNet(SqueezeNet::load(&mut w, SqueezeNetVersion::V1_0, classes)?)
            }
            Architecture::SqueezeNet1_1 => {
                let classes = Self::head_rows(&w, "classifier.1.weight");
                Network::SqueezeNet(SqueezeNet::load(&mut w, SqueezeNetVersion::V1_1, classes)?)
            }
            Architecture::ResNet(_) => Network::ResNet(ResNet::load(&mut w)?),
            Architecture::Torchvision(m) if m.family == Family::ResNet => Network::ResNet(ResNet::load(&mut w)?),
            Architecture::Torchvision(m) => Network::Torchvision(torchvision::Network::load(m, &mut w)?),
            Architecture::EfficientNetLite0 => {
                let classes = Self::head_rows(&w, "_fc.weight");
                Network::EfficientNetLite(EfficientNetLite::load_lite0(&mut w, classes)?)
            }
            // Never detected from named tensors; ONNX graphs come through `load`.
            Architecture::Onnx => {
                return Err(ModelError::UnknownArchitecture {
                    path: w.path().to_path_buf(),
                    hint: "an ONNX graph is not a checkpoint of named tensors".into(),
                })
            }
        };
        let num_classes = match &network {
            Network::SqueezeNet(_) => Self::head_rows(&w, "classifier.1.weight"),
            Network::EfficientNetLite(_) => Self::head_rows(&w, "_fc.weight"),
            Network::ResNet(m) => m.num_classes(),
            Network::Torchvision(m) => m.num_classes(),
            Network::Onnx(m) => m.num_classes(),
        };
        let input_size = match &network {
            Network::Torchvision(m) => m.input_size().map(|(h, w)| (h as u32, w as u32)),
            _ => None,
        };
        let source = w.path().to_path_buf();
        let device = w.device().clone();
        let parameters = w
            .names()
            .filter(|n| super::weights::is_learned_parameter(n))
            .filter_map(|n| w.shape(n))
            .map(|s| s.iter().product::<usize>() as u64)
            .sum();
        w.finish(&architecture.to_string())?;
        let mut native = architecture.preprocessing();
        if let Some(size) = input_size {
            // A ViT reads one size: crop to it, resizing in the preset's proportion.
            if native.crop != size {
                native = Preprocessing {
                    interpolation: native.interpolation,
                    ..Preprocessing::for_input(size.0, size.1, native.normalization)
                };
            }
        }
        let declared = Declared {
            channels: 3,
            input_size,
            native: Some(native),
            metadata: None,
        };
        let mut model = Self::with_conventions(architecture, num_classes, network, &source, &device, declared)?;
        model.parameters = Some(parameters);
        Ok(model)
    }

    /// Rows of a head's weight: its number of classes (1000 if absent, which `finish` then
    /// reports).
    fn head_rows(w: &WeightStore, name: &str) -> usize {
        w.shape(name).map(|s| s[0]).unwrap_or(1000)
    }

    /// Learned parameters (weights and biases) of a checkpoint; `None` for ONNX graphs.
    pub fn parameter_count(&self) -> Option<u64> {
        self.parameters
    }

    /// "11.7 M parameters, 224×224 input": what the studio shows beside the architecture.
    pub fn summary(&self) -> String {
        let (h, w) = self.conventions.preprocessing.crop;
        let size = format!("{h}×{w} input");
        match self.parameters {
            Some(p) if p >= 1_000_000 => format!("{:.1} M parameters, {size}", p as f64 / 1e6),
            Some(p) => format!("{:.1} k parameters, {size}", p as f64 / 1e3),
            None => size,
        }
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
        self.conventions.preprocessing.normalization
    }

    /// Runs the network on any [`Graph`].
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> candle_core::Result<G::Value> {
        match &self.network {
            Network::SqueezeNet(m) => m.build(g, x),
            Network::ResNet(m) => m.build(g, x),
            Network::EfficientNetLite(m) => m.build(g, x),
            Network::Torchvision(m) => m.build(g, x),
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
    /// bound: the reverse pass frees activations as it goes). On the device-generic path
    /// the activations are what candle's graph keeps, composites and the operand gradients
    /// its backward keeps included (10–40× the tape's; tests/generic_memory.rs measures
    /// them), as on CUDA. `None` for graphs priced only by running them.
    pub fn gradient_bytes_per_point(&self, h: usize, w: usize) -> Option<u64> {
        let input = (self.declared.channels * h * w) as u64;
        if let Some(counter) = self.costs(h, w) {
            return Some(2 * 4 * (counter.activation_elements + input));
        }
        // Graphs that turn data into indices cannot be priced from shapes alone: what their
        // nodes produced when the graph was loaded.
        match &self.network {
            Network::Onnx(m) => m.measured_elements(h, w).map(|e| 2 * 4 * (e + input)),
            _ => None,
        }
    }

    fn costs(&self, h: usize, w: usize) -> Option<CostCounter> {
        // Off the CPU tape (the device-generic path, CUDA) candle's graph runs the model.
        let mut counter = if self.generic || !self.device.is_cpu() {
            CostCounter::for_candle_graph()
        } else {
            CostCounter::default()
        };
        self.build(&mut counter, &vec![1, self.declared.channels, h, w]).ok()?;
        Some(counter)
    }

    /// Whether `x` can go through the CPU [`Tape`] (CPU weights and input, f32).
    fn uses_tape(&self, x: &Tensor) -> bool {
        !self.generic && self.device.is_cpu() && x.device().is_cpu() && x.dtype() == DType::F32
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
        self.build(&mut CandleGraph { generic: self.generic }, x)
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
