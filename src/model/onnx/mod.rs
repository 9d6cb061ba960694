//! ONNX classifiers: the files `torch.onnx.export` writes (the legacy TorchScript exporter
//! and the default dynamo one, weights inline or in a `.onnx.data` file beside the graph),
//! and those of timm and tf2onnx.
//!
//! A graph made only of the operators the CPU tape runs (convolutional networks:
//! [`cnn::TAPE_OPERATORS`]) is translated onto our own layers and runs on the tape at the
//! built-in models' speed. Any other graph is run by the interpreter of [`general`] on
//! candle tensors, differentiated by candle's autograd (convolutions, pooling and clamps
//! still on our CPU kernels). Operators neither supports are refused up front, listed by
//! name with their counts.
//!
//! candle-onnx was considered: it needs `protoc` at build time, and its evaluator has no
//! GlobalAveragePool and no padded MaxPool, which every torchvision CNN export uses.

pub mod cnn;
pub mod general;
pub mod proto;
pub mod tensor;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Device;
use prost::Message;

use crate::model::error::ModelError;
use crate::net::graph::Graph;
use cnn::TapeNetwork;
use general::{GeneralNetwork, GENERAL_OPERATORS};
use proto::data_type;
use tensor::{decode_tensor_with, ExternalData};

/// The image input of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInput {
    pub name: String,
    pub channels: usize,
    /// The fixed height and width the graph declares, if it declares them.
    pub size: Option<(usize, usize)>,
}

#[derive(Debug)]
enum Runner {
    Tape(TapeNetwork),
    General(GeneralNetwork),
}

/// An ONNX classifier graph, ready to run.
#[derive(Debug)]
pub struct OnnxNetwork {
    runner: Runner,
    input: GraphInput,
    /// The model's `metadata_props` (e.g. preprocessing and labels).
    pub metadata: BTreeMap<String, String>,
    /// "pytorch 2.15.0, opset 20, 17 nodes, on the tape", for the model's description.
    pub summary: String,
}

impl OnnxNetwork {
    pub fn num_classes(&self) -> usize {
        match &self.runner {
            Runner::Tape(t) => t.num_classes(),
            Runner::General(g) => g.num_classes(),
        }
    }

    pub fn input(&self) -> &GraphInput {
        &self.input
    }

    /// Float elements the interpreter's nodes produce for one `h`×`w` image, as measured
    /// at load time (`None` for translated graphs, which the cost counter prices).
    pub fn measured_elements(&self, h: usize, w: usize) -> Option<u64> {
        match &self.runner {
            Runner::General(g) => Some(g.elements_per_image(h, w)),
            Runner::Tape(_) => None,
        }
    }

    /// Runs the graph on any [`Graph`].
    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> candle_core::Result<G::Value> {
        match &self.runner {
            Runner::Tape(t) => t.build(g, x),
            Runner::General(n) => n.build_on(g, x),
        }
    }

    /// Reads and translates an `.onnx` file; external data is read from beside it.
    pub fn open(path: &Path, device: &Device) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(path, &bytes, ExternalData::beside(path), device)
    }

    /// Translates an ONNX model held in memory; `path` names it in errors. It cannot have
    /// external data.
    pub fn from_bytes(path: &Path, bytes: &[u8], device: &Device) -> Result<Self, ModelError> {
        Self::load(path, bytes, ExternalData::none(), device)
    }

    fn load(path: &Path, bytes: &[u8], mut external: ExternalData, device: &Device) -> Result<Self, ModelError> {
        let error = |message: String| ModelError::Format {
            path: path.to_path_buf(),
            message,
        };
        let model =
            proto::ModelProto::decode(bytes).map_err(|e| error(format!("not a valid ONNX model (protobuf: {e})")))?;
        let Some(graph) = &model.graph else {
            return Err(error("the ONNX model has no graph".into()));
        };
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(1);

        // Refuse graphs with operators neither runner has, naming all of them, before
        // reading any weights.
        let mut unsupported: BTreeMap<String, usize> = BTreeMap::new();
        for node in &graph.node {
            let standard = node.domain.is_empty() || node.domain == "ai.onnx";
            if !standard || !GENERAL_OPERATORS.contains(&node.op_type.as_str()) {
                let name = if standard {
                    node.op_type.clone()
                } else {
                    format!("{}::{}", node.domain, node.op_type)
                };
                *unsupported.entry(name).or_default() += 1;
            }
        }
        if !unsupported.is_empty() {
            let list = unsupported
                .iter()
                .map(|(op, n)| if *n > 1 { format!("{op} (×{n})") } else { op.clone() })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(error(format!(
                "the ONNX graph uses operators Pathscope cannot run and differentiate: {list}. Supported: {}",
                GENERAL_OPERATORS.join(", ")
            )));
        }

        let mut constants: HashMap<String, tensor::Constant> = HashMap::new();
        for t in &graph.initializer {
            let c = decode_tensor_with(t, &mut external).map_err(error)?;
            constants.insert(t.name.clone(), c);
        }
        let input = graph_input(graph, &constants).map_err(error)?;
        let runner = match TapeNetwork::translate(graph, constants.clone(), &input, opset, device) {
            Ok(t) => Runner::Tape(t),
            Err(_) => Runner::General(GeneralNetwork::build(graph, constants, &input, opset, device).map_err(error)?),
        };
        let producer = if model.producer_name.is_empty() {
            "unknown exporter".to_string()
        } else {
            format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string()
        };
        let how = match runner {
            Runner::Tape(_) => "translated onto the built-in layers",
            Runner::General(_) => "interpreted node by node",
        };
        Ok(Self {
            summary: format!("{producer}, opset {opset}, {} nodes, {how}", graph.node.len()),
            runner,
            input,
            metadata: model
                .metadata_props
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
        })
    }
}

/// A candle error's message on one line, as the loader's errors are: without the
/// backtrace candle appends when `RUST_BACKTRACE` is set, contexts joined with ": ".
pub(crate) fn error_line(e: &candle_core::Error) -> String {
    use candle_core::Error;
    match e {
        Error::WithBacktrace { inner, .. } => error_line(inner),
        Error::Context { inner, context } => format!("{context}: {}", error_line(inner)),
        Error::WithPath { inner, path } => format!("{}: {}", path.display(), error_line(inner)),
        other => other
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(": "),
    }
}

/// The largest height or width a graph's input may declare (as `--input-size` allows).
const MAX_INPUT_SIDE: usize = 8192;

/// The graph's one image input [N, C, H, W] (float32).
fn graph_input(graph: &proto::GraphProto, constants: &HashMap<String, tensor::Constant>) -> Result<GraphInput, String> {
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !constants.contains_key(&i.name))
        .collect();
    let [input] = inputs[..] else {
        return Err(format!(
            "the graph has {} inputs ({}); an image classifier has exactly one, the image batch",
            inputs.len(),
            inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    };
    let tensor = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let Some(tensor) = tensor else {
        return Err(format!("the input `{}` is not a tensor", input.name));
    };
    if tensor.elem_type != data_type::FLOAT {
        return Err(format!(
            "the input `{}` has ONNX data type {}; Pathscope feeds float32 images",
            input.name, tensor.elem_type
        ));
    }
    let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
    if dims.len() != 4 {
        return Err(format!(
            "the input `{}` has {} dimensions; an image batch is [N, C, H, W]",
            input.name,
            dims.len()
        ));
    }
    let fixed = |i: usize| {
        dims[i]
            .dim_value
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v > 0)
    };
    let channels = fixed(1).unwrap_or(3);
    if !(channels == 1 || channels == 3) {
        return Err(format!(
            "the input `{}` has {channels} channels; Pathscope feeds RGB (3) or grayscale (1) images",
            input.name
        ));
    }
    let size = match (fixed(2), fixed(3)) {
        (Some(h), Some(w)) => Some((h, w)),
        _ => None,
    };
    // The graph is run once on an image of this size when it is loaded.
    if let Some((h, w)) = size.filter(|&(h, w)| h.max(w) > MAX_INPUT_SIDE) {
        return Err(format!(
            "the input `{}` declares a {h}×{w} image; Pathscope runs images of at most {MAX_INPUT_SIDE} pixels a side",
            input.name
        ));
    }
    Ok(GraphInput {
        name: input.name.clone(),
        channels,
        size,
    })
}
