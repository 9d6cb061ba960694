//! ONNX graphs made only of what the CPU tape runs (convolutions, BatchNorm, ReLU/ReLU6,
//! max and global average pooling, channel concatenation, residual adds, a final linear
//! layer), translated node by node onto the [`Graph`] operations our own architectures
//! use: they run on the tape (input-gradient-only reverse pass) at the built-in models'
//! speed, and through candle elsewhere, with the same gradients.
//!
//! Every value is either a feature map [N, C, H, W] or, after global pooling, a feature
//! vector [N, C] (ONNX's [N, C, 1, 1]; Flatten, Reshape and Squeeze of it are no-ops).
//! Inference BatchNorm and ReLU/ReLU6 are folded into the convolution before them. A graph
//! that needs anything else is run by [`super::general`] instead.

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Tensor};

use super::proto::{self, NodeProto};
use super::tensor::{uniform, Attributes, Constant};
use super::{error_line, GraphInput};
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, MaxPool2d, Padding};

/// The operators (default ONNX domain) a graph may use to run on the tape.
pub const TAPE_OPERATORS: &[&str] = &[
    "Add",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MaxPool",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Squeeze",
];

/// What a value is, known at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// [N, C, H, W].
    FeatureMap { channels: usize },
    /// [N, C], ONNX's [N, C, 1, 1] or [N, C].
    Features { len: usize },
}

#[derive(Debug, Clone)]
enum Op {
    Conv { conv: Conv, act: Activation },
    Activation(Activation),
    MaxPool(MaxPool2d),
    Concat,
    Add,
    GlobalAveragePool,
    Linear(Linear),
}

#[derive(Debug, Clone)]
struct Step {
    op: Op,
    inputs: Vec<usize>,
    output: usize,
    /// The ONNX name of the output; after a fold, the name of the folded node's output.
    name: String,
}

/// A CNN graph, ready to run on any [`Graph`].
#[derive(Debug, Clone)]
pub struct TapeNetwork {
    steps: Vec<Step>,
    slots: usize,
    input: usize,
    output: usize,
    num_classes: usize,
}

impl TapeNetwork {
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Translates `graph` (its initializers already decoded into `constants`), or says
    /// why it cannot run on the tape.
    pub fn translate(
        graph: &proto::GraphProto,
        constants: HashMap<String, Constant>,
        input: &GraphInput,
        opset: i64,
        device: &Device,
    ) -> Result<Self, String> {
        Translator::new(device, constants).translate(graph, input, opset)
    }

    /// Runs the graph on `x` [N, C, H, W]; returns the logits [N, classes]. Errors are
    /// one line (no backtrace).
    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> candle_core::Result<G::Value> {
        self.run(g, x).map_err(|e| candle_core::Error::Msg(error_line(&e)))
    }

    fn run<G: Graph>(&self, g: &mut G, x: &G::Value) -> candle_core::Result<G::Value> {
        let mut values: Vec<Option<G::Value>> = vec![None; self.slots];
        values[self.input] = Some(x.clone());
        for step in &self.steps {
            let arg = |i: usize| {
                values[step.inputs[i]]
                    .as_ref()
                    .ok_or_else(|| candle_core::Error::Msg("ONNX value used before it was computed".into()))
            };
            let y = match &step.op {
                Op::Conv { conv, act } => g.conv(arg(0)?, conv, *act)?,
                Op::Activation(act) => g.activation(arg(0)?, *act)?,
                Op::MaxPool(pool) => g.max_pool(arg(0)?, *pool)?,
                Op::Concat => {
                    let mut acc = arg(0)?.clone();
                    for i in 1..step.inputs.len() {
                        acc = g.cat_channels(&acc, arg(i)?)?;
                    }
                    acc
                }
                Op::Add => g.add(arg(0)?, arg(1)?)?,
                Op::GlobalAveragePool => g.global_avg_pool(arg(0)?)?,
                Op::Linear(layer) => g.linear(arg(0)?, layer)?,
            };
            values[step.output] = Some(y);
        }
        values[self.output]
            .take()
            .ok_or_else(|| candle_core::Error::Msg("the ONNX graph's output was never computed".into()))
    }
}

struct Translator {
    device: Device,
    constants: HashMap<String, Constant>,
    slot_of: HashMap<String, usize>,
    kinds: Vec<Kind>,
    /// Which step produced each slot (None for the input).
    producer: Vec<Option<usize>>,
    /// How many nodes (or graph outputs) read each value name.
    readers: HashMap<String, usize>,
    steps: Vec<Step>,
}

impl Translator {
    fn new(device: &Device, constants: HashMap<String, Constant>) -> Self {
        Self {
            device: device.clone(),
            constants,
            slot_of: HashMap::new(),
            kinds: Vec::new(),
            producer: Vec::new(),
            readers: HashMap::new(),
            steps: Vec::new(),
        }
    }

    fn error(&self, message: String) -> String {
        message
    }

    fn translate(mut self, graph: &proto::GraphProto, input: &GraphInput, opset: i64) -> Result<TapeNetwork, String> {
        let mut outside: BTreeMap<&str, usize> = BTreeMap::new();
        for node in &graph.node {
            let standard = node.domain.is_empty() || node.domain == "ai.onnx";
            if !standard || !TAPE_OPERATORS.contains(&node.op_type.as_str()) {
                *outside.entry(node.op_type.as_str()).or_default() += 1;
            }
        }
        if !outside.is_empty() {
            let list: Vec<&str> = outside.keys().copied().collect();
            return Err(format!("operators the tape does not run: {}", list.join(", ")));
        }
        let input_slot = self.new_slot(
            &input.name,
            Kind::FeatureMap {
                channels: input.channels,
            },
            None,
        );

        for node in &graph.node {
            for name in &node.input {
                *self.readers.entry(name.clone()).or_default() += 1;
            }
        }
        for output in &graph.output {
            *self.readers.entry(output.name.clone()).or_default() += 1;
        }

        for node in &graph.node {
            self.node(node, opset).map_err(|m| {
                let label = if node.name.is_empty() {
                    node.op_type.clone()
                } else {
                    format!("{} `{}`", node.op_type, node.name)
                };
                self.error(format!("{label}: {m}"))
            })?;
        }

        let [output] = &graph.output[..] else {
            return Err(self.error(format!(
                "the graph has {} outputs; a classifier has one, the logits",
                graph.output.len()
            )));
        };
        let Some(&output_slot) = self.slot_of.get(&output.name) else {
            return Err(self.error(format!(
                "the graph output `{}` is not computed by any node",
                output.name
            )));
        };
        let num_classes = match self.kinds[output_slot] {
            Kind::Features { len: 0 } => {
                return Err(self.error(format!("the graph output `{}` has no class scores", output.name)))
            }
            Kind::Features { len } => len,
            Kind::FeatureMap { .. } => {
                return Err(self.error(format!(
                    "the graph output `{}` is a feature map, not a vector of class scores",
                    output.name
                )))
            }
        };
        if output_slot == input_slot || self.steps.is_empty() {
            return Err(self.error("the graph computes nothing from its input".into()));
        }
        Ok(TapeNetwork {
            slots: self.kinds.len(),
            steps: self.steps,
            input: input_slot,
            output: output_slot,
            num_classes,
        })
    }

    fn new_slot(&mut self, name: &str, kind: Kind, producer: Option<usize>) -> usize {
        let slot = self.kinds.len();
        self.kinds.push(kind);
        self.producer.push(producer);
        self.slot_of.insert(name.to_string(), slot);
        slot
    }

    /// The slot of a computed value (not a constant).
    fn value(&self, name: &str) -> Result<usize, String> {
        self.slot_of.get(name).copied().ok_or_else(|| {
            if self.constants.contains_key(name) {
                format!("`{name}` is a constant where a computed value is expected")
            } else {
                format!("`{name}` is not computed before it is used")
            }
        })
    }

    fn constant(&self, name: &str) -> Result<&Constant, String> {
        self.constants
            .get(name)
            .ok_or_else(|| format!("`{name}` must be a constant (an initializer or a Constant node)"))
    }

    /// The node's first output name (every supported operator has one that matters).
    fn output<'n>(&self, node: &'n NodeProto) -> Result<&'n str, String> {
        node.output
            .first()
            .map(String::as_str)
            .ok_or_else(|| "the node has no output".to_string())
    }

    fn push(&mut self, node: &NodeProto, op: Op, inputs: Vec<usize>, kind: Kind) -> Result<(), String> {
        let output = self.output(node)?.to_string();
        let index = self.steps.len();
        let slot = self.new_slot(&output, kind, Some(index));
        self.steps.push(Step {
            op,
            inputs,
            output: slot,
            name: output,
        });
        Ok(())
    }

    /// Makes `node`'s output another name for `slot`.
    fn alias(&mut self, node: &NodeProto, slot: usize) -> Result<(), String> {
        let output = self.output(node)?.to_string();
        self.slot_of.insert(output, slot);
        Ok(())
    }

    /// The convolution step producing `slot`, if its result is read only by the node at
    /// hand under the step's own name (not through an alias that others may also read),
    /// so an activation or BatchNorm can be folded into it.
    fn foldable_conv(&self, input_name: &str, slot: usize) -> Option<usize> {
        let step = self.producer[slot]?;
        let only_reader = self.steps[step].name == input_name && self.readers.get(input_name).copied() == Some(1);
        match &self.steps[step].op {
            Op::Conv {
                act: Activation::Identity,
                ..
            } if only_reader => Some(step),
            _ => None,
        }
    }

    fn feature_map(&self, slot: usize) -> Result<usize, String> {
        match self.kinds[slot] {
            Kind::FeatureMap { channels } => Ok(channels),
            Kind::Features { .. } => Err("expects a feature map [N, C, H, W], got a pooled vector".into()),
        }
    }

    fn tensor(&self, data: Vec<f32>, dims: &[usize]) -> Result<Tensor, String> {
        Tensor::from_vec(data, dims, &self.device).map_err(|e| error_line(&e))
    }

    fn node(&mut self, node: &NodeProto, opset: i64) -> Result<(), String> {
        let attrs = Attributes { node };
        let input = |i: usize| node.input.get(i).map(String::as_str).filter(|s| !s.is_empty());
        if node.op_type != "Constant" && input(0).is_none() {
            return Err("the node has no input".into());
        }
        let first = input(0).unwrap_or_default();
        match node.op_type.as_str() {
            "Constant" => {
                let value = attrs.constant_value()?;
                let name = self.output(node)?.to_string();
                self.constants.insert(name, value);
                Ok(())
            }
            "Identity" | "Dropout" => {
                if let Some(c) = self.constants.get(first).cloned() {
                    let name = self.output(node)?.to_string();
                    self.constants.insert(name, c);
                    return Ok(());
                }
                let slot = self.value(first)?;
                self.alias(node, slot)
            }
            "Conv" => self.conv(node, &attrs),
            "BatchNormalization" => self.batch_norm(node, &attrs),
            "Relu" => self.activation(node, Activation::Relu),
            "Clip" => {
                // Bounds are inputs from opset 11 on, attributes before.
                let bound = |i: usize, attr: &str| -> Result<Option<f32>, String> {
                    if opset < 11 {
                        return Ok(attrs.float(attr));
                    }
                    match input(i) {
                        None => Ok(None),
                        Some(name) => {
                            let c = self.constant(name)?.floats();
                            c.first().copied().map(Some).ok_or_else(|| format!("`{name}` is empty"))
                        }
                    }
                };
                let lo = bound(1, "min")?;
                let hi = bound(2, "max")?;
                let act = match (lo, hi) {
                    (Some(0.0), None) => Activation::Relu,
                    (Some(0.0), Some(h)) if h == f32::INFINITY || h >= f32::MAX => Activation::Relu,
                    (Some(0.0), Some(6.0)) => Activation::Relu6,
                    (lo, hi) => {
                        return Err(format!(
                            "Clip to [{}, {}]: only ReLU (0, ∞) and ReLU6 (0, 6) clips are supported",
                            lo.map_or("-∞".into(), |v| v.to_string()),
                            hi.map_or("∞".into(), |v| v.to_string())
                        ))
                    }
                };
                self.activation(node, act)
            }
            "MaxPool" => {
                let x = self.value(first)?;
                let channels = self.feature_map(x)?;
                if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
                    return Err("MaxPool with an Indices output is not supported".into());
                }
                let auto_pad = attrs.string("auto_pad").unwrap_or_default();
                if !(auto_pad.is_empty() || auto_pad == "NOTSET" || auto_pad == "VALID") {
                    return Err(format!("auto_pad {auto_pad} is not supported for MaxPool"));
                }
                if let Some(d) = attrs.ints("dilations") {
                    if d.iter().any(|&v| v != 1) {
                        return Err(format!("dilations {d:?} are not supported"));
                    }
                }
                let kernel = uniform(&attrs.ints("kernel_shape").ok_or("no kernel_shape")?, "kernel_shape")?;
                let stride = match attrs.ints("strides") {
                    Some(s) => uniform(&s, "strides")?,
                    None => 1,
                };
                let pad = match attrs.ints("pads") {
                    Some(p) if auto_pad != "VALID" => uniform(&p, "pads")?,
                    _ => 0,
                };
                if kernel == 0 || stride == 0 || 2 * pad > kernel {
                    return Err(format!(
                        "kernel {kernel}, stride {stride}, pad {pad} is not a valid pooling window"
                    ));
                }
                let pool = MaxPool2d {
                    kernel,
                    stride,
                    pad,
                    ceil: attrs.int("ceil_mode", 0) != 0,
                };
                self.push(node, Op::MaxPool(pool), vec![x], Kind::FeatureMap { channels })
            }
            "Concat" => {
                let axis = attrs.int("axis", 1);
                if axis != 1 && axis != -3 {
                    return Err(format!(
                        "Concat along axis {axis}; only the channel axis (1) is supported"
                    ));
                }
                let mut slots = Vec::new();
                let mut channels = 0;
                for name in node.input.iter().filter(|s| !s.is_empty()) {
                    let slot = self.value(name)?;
                    channels += self.feature_map(slot)?;
                    slots.push(slot);
                }
                if slots.is_empty() {
                    return Err("Concat of nothing".into());
                }
                self.push(node, Op::Concat, slots, Kind::FeatureMap { channels })
            }
            "Add" => {
                let a = self.value(first)?;
                let b = self.value(input(1).ok_or("Add needs two inputs")?)?;
                if self.kinds[a] != self.kinds[b] {
                    return Err(format!(
                        "adds values of different shapes ({:?} and {:?}); broadcasting is not supported",
                        self.kinds[a], self.kinds[b]
                    ));
                }
                let kind = self.kinds[a];
                self.push(node, Op::Add, vec![a, b], kind)
            }
            "GlobalAveragePool" => self.global_pool(node, first),
            "ReduceMean" => {
                // Axes are an attribute before opset 18, an optional input after.
                let axes = match (attrs.ints("axes"), input(1)) {
                    (Some(a), _) => a,
                    (None, Some(name)) => self.constant(name)?.ints(),
                    (None, None) => vec![],
                };
                let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + 4 } else { a }).collect();
                axes.sort();
                if axes != [2, 3] {
                    return Err(format!(
                        "ReduceMean over axes {axes:?}; only the mean over the spatial axes [2, 3] (global \
                         average pooling) is supported"
                    ));
                }
                self.global_pool(node, first)
            }
            "Flatten" | "Reshape" | "Squeeze" => {
                let x = self.value(first)?;
                let Kind::Features { len } = self.kinds[x] else {
                    return Err(format!(
                        "{} of a feature map [N, C, H, W]: only the pooled [N, C, 1, 1] result of global \
                         average pooling can be flattened",
                        node.op_type
                    ));
                };
                if node.op_type == "Flatten" && attrs.int("axis", 1) != 1 {
                    return Err(format!(
                        "Flatten with axis {}; only axis 1 is supported",
                        attrs.int("axis", 1)
                    ));
                }
                if node.op_type == "Reshape" {
                    let shape = self.constant(input(1).ok_or("Reshape without a shape")?)?.ints();
                    // [N, C] under any spelling of the batch axis (-1, 0, or an exported N).
                    let ok = matches!(shape[..], [_, c] if c == -1 || c == len as i64);
                    if !ok {
                        return Err(format!(
                            "Reshape of [N, {len}] to {shape:?}; only [N, {len}] is supported"
                        ));
                    }
                }
                self.alias(node, x)
            }
            "Gemm" => {
                let x = self.value(first)?;
                let Kind::Features { len } = self.kinds[x] else {
                    return Err("Gemm of a feature map; flatten a pooled [N, C] vector first".into());
                };
                if attrs.int("transA", 0) != 0 {
                    return Err("Gemm with transA = 1 is not supported".into());
                }
                let b = self.constant(input(1).ok_or("Gemm without B")?)?;
                let [r, c] = b.dims()[..] else {
                    return Err(format!("Gemm's B has shape {:?}, expected a matrix", b.dims()));
                };
                let alpha = attrs.float("alpha").unwrap_or(1.0);
                let beta = attrs.float("beta").unwrap_or(1.0);
                let data = b.floats();
                // W as [out, in]: B is [out, in] with transB, [in, out] without.
                let (n_out, weight) = if attrs.int("transB", 0) != 0 {
                    (r, data.iter().map(|v| v * alpha).collect::<Vec<_>>())
                } else {
                    let mut t = vec![0f32; r * c];
                    for i in 0..r {
                        for j in 0..c {
                            t[j * r + i] = data[i * c + j] * alpha;
                        }
                    }
                    (c, t)
                };
                let n_in = weight.len() / n_out.max(1);
                if n_in != len {
                    return Err(format!("Gemm takes {n_in} features, its input has {len}"));
                }
                let bias = match input(2) {
                    None => vec![0f32; n_out],
                    Some(name) => {
                        let c = self.constant(name)?.floats();
                        match c.len() {
                            1 => vec![c[0] * beta; n_out],
                            n if n == n_out => c.iter().map(|v| v * beta).collect(),
                            n => return Err(format!("Gemm's C has {n} values, expected {n_out}")),
                        }
                    }
                };
                let layer = Linear::new(self.tensor(weight, &[n_out, n_in])?, self.tensor(bias, &[n_out])?)
                    .map_err(|e| error_line(&e))?;
                self.push(node, Op::Linear(layer), vec![x], Kind::Features { len: n_out })
            }
            other => Err(format!("operator {other} is not supported")),
        }
    }

    fn global_pool(&mut self, node: &NodeProto, input: &str) -> Result<(), String> {
        let x = self.value(input)?;
        let channels = self.feature_map(x)?;
        self.push(node, Op::GlobalAveragePool, vec![x], Kind::Features { len: channels })
    }

    fn activation(&mut self, node: &NodeProto, act: Activation) -> Result<(), String> {
        let name = node.input.first().ok_or("the node has no input")?;
        let x = self.value(name)?;
        if let Some(step) = self.foldable_conv(name, x) {
            if let Op::Conv { act: a, .. } = &mut self.steps[step].op {
                *a = act;
            }
            self.steps[step].name = self.output(node)?.to_string();
            return self.alias(node, x);
        }
        let kind = self.kinds[x];
        self.push(node, Op::Activation(act), vec![x], kind)
    }

    fn conv(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<(), String> {
        let x = self.value(&node.input[0])?;
        let c_in = self.feature_map(x)?;
        let w = self.constant(node.input.get(1).ok_or("Conv without weights")?)?;
        let [c_out, c_in_per_group, kh, kw] = w.dims()[..] else {
            return Err(format!(
                "weights of shape {:?}; only 2-D convolutions are supported",
                w.dims()
            ));
        };
        if w.dims().contains(&0) {
            return Err(format!("weights of shape {:?} have a dimension of size 0", w.dims()));
        }
        let groups = usize::try_from(attrs.int("group", 1)).map_err(|_| "negative group count".to_string())?;
        if groups == 0 || c_in_per_group * groups != c_in || c_out % groups != 0 {
            return Err(format!(
                "weights {:?} with {groups} groups do not fit an input of {c_in} channels",
                w.dims()
            ));
        }
        if kh == 0 || kw == 0 {
            return Err("an empty kernel".into());
        }
        if let Some(d) = attrs.ints("dilations") {
            if d.iter().any(|&v| v != 1) {
                return Err(format!("dilations {d:?} are not supported"));
            }
        }
        if let Some(k) = attrs.ints("kernel_shape") {
            if k != [kh as i64, kw as i64] {
                return Err(format!("kernel_shape {k:?} disagrees with weights {:?}", w.dims()));
            }
        }
        let stride = match attrs.ints("strides") {
            Some(s) => uniform(&s, "strides")?,
            None => 1,
        };
        if stride == 0 {
            return Err("stride 0".into());
        }
        let auto_pad = attrs.string("auto_pad").unwrap_or_default();
        let padding = match auto_pad.as_str() {
            "" | "NOTSET" => {
                let pads = attrs.ints("pads").unwrap_or_else(|| vec![0; 4]);
                let p: Vec<usize> = pads
                    .iter()
                    .map(|&v| usize::try_from(v).ok().filter(|&v| v < kh.max(kw)))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("pads {pads:?} are negative or larger than the kernel"))?;
                match p[..] {
                    [t, l, b, r] if t == l && t == b && t == r => Padding::Symmetric(t),
                    [top, left, bottom, right] => Padding::Explicit {
                        top,
                        bottom,
                        left,
                        right,
                    },
                    _ => return Err(format!("pads {pads:?}: expected 4 values")),
                }
            }
            "VALID" => Padding::Symmetric(0),
            "SAME_UPPER" => Padding::TensorFlowSame,
            other => return Err(format!("auto_pad {other} is not supported")),
        };
        let weight = self.tensor(w.floats(), &[c_out, c_in_per_group, kh, kw])?;
        let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => {
                let b = self.constant(name)?.floats();
                if b.len() != c_out {
                    return Err(format!("bias of {} values for {c_out} output channels", b.len()));
                }
                Some(self.tensor(b, &[c_out])?)
            }
        };
        let conv = Conv::new(weight, bias, stride, padding, groups).map_err(|e| error_line(&e))?;
        self.push(
            node,
            Op::Conv {
                conv,
                act: Activation::Identity,
            },
            vec![x],
            Kind::FeatureMap { channels: c_out },
        )
    }

    /// Inference BatchNorm: folded into the convolution before it when that convolution
    /// feeds only this node; otherwise a per-channel affine map, run as a 1×1 depthwise
    /// convolution.
    fn batch_norm(&mut self, node: &NodeProto, attrs: &Attributes) -> Result<(), String> {
        if attrs.int("training_mode", 0) != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err("BatchNormalization in training mode is not supported (export the model in eval mode)".into());
        }
        let name = &node.input[0];
        let x = self.value(name)?;
        let channels = self.feature_map(x)?;
        let mut params = Vec::with_capacity(4);
        for i in 1..5 {
            let p = self.constant(node.input.get(i).ok_or("BatchNormalization needs 5 inputs")?)?;
            if p.dims().iter().product::<usize>() != channels {
                return Err(format!("a parameter of shape {:?} for {channels} channels", p.dims()));
            }
            params.push(self.tensor(p.floats(), &[channels])?);
        }
        let eps = attrs.float("epsilon").unwrap_or(1e-5) as f64;
        let [gamma, beta, mean, var] = &params[..] else {
            unreachable!("four parameters were pushed")
        };
        let fold = |conv: Conv| {
            conv.fold_batch_norm(gamma, beta, mean, var, eps)
                .map_err(|e| error_line(&e))
        };
        if let Some(step) = self.foldable_conv(name, x) {
            if let Op::Conv { conv, .. } = &self.steps[step].op {
                let folded = fold(conv.clone())?;
                self.steps[step].op = Op::Conv {
                    conv: folded,
                    act: Activation::Identity,
                };
            }
            self.steps[step].name = self.output(node)?.to_string();
            return self.alias(node, x);
        }
        let identity = self.tensor(vec![1.0; channels], &[channels, 1, 1, 1])?;
        let affine = Conv::new(identity, None, 1, Padding::Symmetric(0), channels).map_err(|e| error_line(&e))?;
        let conv = fold(affine)?;
        self.push(
            node,
            Op::Conv {
                conv,
                act: Activation::Identity,
            },
            vec![x],
            Kind::FeatureMap { channels },
        )
    }
}
