//! Any ONNX classifier, evaluated node by node on candle tensors and differentiated by
//! candle's autograd: what vision transformers, ConvNeXt, EfficientNet, MobileNetV3 and
//! the other graphs the CPU tape does not cover need (attention, LayerNorm, GELU,
//! squeeze-excite, hard-swish, channel shuffle, average pooling).
//!
//! - Float values are candle tensors; integer values (shapes, indices, masks) are kept on
//!   the host, so shape arithmetic (Shape → Gather → Concat → Reshape, as the legacy
//!   exporter writes it) costs nothing and works for any batch size.
//! - Nodes that depend only on constants and on the input's *shape* are evaluated once per
//!   input shape and cached (Swin's attention masks, position indices).
//! - Convolutions, max-pooling and ReLU/clamps use the same CPU kernels as the tape (an
//!   input-gradient-only backward, PyTorch's derivative conventions); the rest are
//!   compositions of candle ops whose backward candle provides.
//! - A graph is run once on zeros when it is loaded, so a graph that cannot run (a Reshape
//!   to a wrong size, an operator used in a way not supported) is refused at load time with
//!   the node named.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Tensor};

use super::proto::{self, data_type, NodeProto};
use super::tensor::{decode_tensor, Attributes, Constant};
use super::GraphInput;
use crate::kernels::activation::{clamp, relu};
use crate::net::composite::max_pool2d;
use crate::net::layers::{Conv, Padding};

/// The operators this interpreter runs (default ONNX domain).
pub const GENERAL_OPERATORS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "Range",
    "Reciprocal",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "Relu",
    "Reshape",
    "ScatterND",
    "Shape",
    "Sigmoid",
    "Size",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// Integers on the host: shapes, indices, boolean masks.
#[derive(Debug, Clone, PartialEq)]
struct Ints {
    dims: Vec<usize>,
    data: Vec<i64>,
}

impl Ints {
    fn scalar(v: i64) -> Self {
        Self {
            dims: vec![],
            data: vec![v],
        }
    }

    fn vector(data: Vec<i64>) -> Self {
        Self {
            dims: vec![data.len()],
            data,
        }
    }
}

#[derive(Debug, Clone)]
enum Value {
    F(Tensor),
    I(Ints),
    /// The input while only its shape is known (evaluating the shape-only nodes).
    ShapeOnly(Vec<usize>),
}

impl Value {
    fn dims(&self) -> Vec<usize> {
        match self {
            Value::F(t) => t.dims().to_vec(),
            Value::I(i) => i.dims.clone(),
            Value::ShapeOnly(d) => d.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unary {
    Abs,
    Ceil,
    Erf,
    Exp,
    Floor,
    Log,
    Neg,
    Not,
    Reciprocal,
    Relu,
    Sigmoid,
    Sqrt,
    Tanh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    Mod { fmod: bool },
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Mean,
    Sum,
    Max,
    Min,
}

#[derive(Debug, Clone)]
enum Op {
    Identity,
    Unary(Unary),
    Binary(Binary),
    /// Sum, Max, Min with more than two inputs.
    Variadic(Binary),
    LeakyRelu(f32),
    Clip {
        lo: f32,
        hi: f32,
    },
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    Gelu {
        tanh: bool,
    },
    Softmax {
        axis: i64,
        log: bool,
        coerce_2d: bool,
    },
    Where,
    Conv(Conv),
    /// A convolution our kernel cannot run (dilated), through candle's conv2d.
    DilatedConv {
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
    },
    /// Inference BatchNorm as y = x·scale + shift per channel (axis 1).
    Affine {
        scale: Tensor,
        shift: Tensor,
    },
    LayerNorm {
        axis: i64,
        eps: f64,
    },
    MaxPool {
        kernel: usize,
        stride: usize,
        pad: usize,
        ceil: bool,
    },
    AveragePool(AvgPool),
    GlobalPool {
        max: bool,
    },
    Reduce {
        kind: Reduce,
        axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    MatMul,
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    Transpose(Option<Vec<usize>>),
    Reshape {
        allowzero: bool,
    },
    Flatten(i64),
    Squeeze(Option<Vec<i64>>),
    Unsqueeze(Option<Vec<i64>>),
    Concat(i64),
    Split {
        axis: i64,
        split: Option<Vec<i64>>,
        num_outputs: Option<usize>,
    },
    Slice,
    Gather(i64),
    Expand,
    Pad {
        mode: PadMode,
        pads: Option<Vec<i64>>,
        value: f32,
    },
    ConstantOfShape(Constant),
    Cast {
        to_float: bool,
        to_bool: bool,
    },
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Size,
    Range,
    ScatterND,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PadMode {
    Constant,
    Reflect,
    Edge,
}

#[derive(Debug, Clone, PartialEq)]
struct AvgPool {
    kernel: [usize; 2],
    stride: [usize; 2],
    /// top, left, bottom, right
    pads: [usize; 4],
    count_include_pad: bool,
    ceil: bool,
}

#[derive(Debug, Clone)]
struct Node {
    op: Op,
    /// Slots of the inputs; `None` for an omitted optional input.
    inputs: Vec<Option<usize>>,
    outputs: Vec<usize>,
    /// "Conv `name`", for errors.
    label: String,
}

/// The outputs of the shape-only nodes for one input shape, by slot.
type ShapeOnlyValues = Arc<Vec<(usize, Value)>>;

/// An ONNX graph run by the interpreter.
#[derive(Debug)]
pub struct GeneralNetwork {
    nodes: Vec<Node>,
    constants: Vec<(usize, Value)>,
    slots: usize,
    input: usize,
    output: usize,
    num_classes: usize,
    /// Nodes whose outputs depend only on constants and the input's shape.
    shape_only: Vec<bool>,
    /// Their outputs, by input shape.
    cache: Mutex<HashMap<Vec<usize>, ShapeOnlyValues>>,
    device: Device,
}

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(candle_core::Error::Msg(message.into()))
}

impl GeneralNetwork {
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Builds the interpreter for `graph` (its initializers already in `constants`) and
    /// checks it by running it once on zeros of the input's declared size.
    pub fn build(
        graph: &proto::GraphProto,
        constants: HashMap<String, Constant>,
        input: &GraphInput,
        opset: i64,
        device: &Device,
    ) -> std::result::Result<Self, String> {
        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let mut consts: Vec<(usize, Value)> = Vec::new();
        let mut const_by_slot: HashMap<usize, Constant> = HashMap::new();
        let mut next = 0usize;
        let mut new_slot = |name: &str, slot_of: &mut HashMap<String, usize>| {
            let s = next;
            next += 1;
            slot_of.insert(name.to_string(), s);
            s
        };
        for (name, c) in &constants {
            let s = new_slot(name, &mut slot_of);
            consts.push((s, constant_value(c, device).map_err(|e| e.to_string())?));
            const_by_slot.insert(s, c.clone());
        }
        let input_slot = new_slot(&input.name, &mut slot_of);
        let mut nodes = Vec::new();
        for node in &graph.node {
            let label = if node.name.is_empty() {
                node.op_type.clone()
            } else {
                format!("{} `{}`", node.op_type, node.name)
            };
            let inputs = node
                .input
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    slot_of.get(name).copied().map(Some).ok_or_else(|| {
                        format!("{label}: its input `{name}` is computed by no node before it (a cycle, or an unsorted graph)")
                    })
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            let attrs = Attributes { node };
            // The legacy exporter passes some weights through Identity: they stay constants.
            if matches!(node.op_type.as_str(), "Identity" | "Dropout") {
                if let (Some(Some(s)), Some(name)) = (inputs.first(), node.output.first()) {
                    if const_by_slot.contains_key(s) {
                        slot_of.insert(name.clone(), *s);
                        continue;
                    }
                }
            }
            if node.op_type == "Constant" {
                let c = attrs.constant_value().map_err(|m| format!("{label}: {m}"))?;
                let name = node.output.first().ok_or_else(|| format!("{label}: no output"))?;
                let s = new_slot(name, &mut slot_of);
                consts.push((s, constant_value(&c, device).map_err(|e| e.to_string())?));
                const_by_slot.insert(s, c);
                continue;
            }
            let op =
                parse_op(node, &attrs, &inputs, &const_by_slot, opset, device).map_err(|m| format!("{label}: {m}"))?;
            let outputs = node
                .output
                .iter()
                .map(|name| new_slot(if name.is_empty() { "" } else { name }, &mut slot_of))
                .collect();
            nodes.push(Node {
                op,
                inputs,
                outputs,
                label,
            });
        }
        let [output] = &graph.output[..] else {
            return Err(format!(
                "the graph has {} outputs; a classifier has one, the logits",
                graph.output.len()
            ));
        };
        let output_slot = *slot_of
            .get(&output.name)
            .ok_or_else(|| format!("the graph output `{}` is not computed by any node", output.name))?;
        if output_slot == input_slot || nodes.is_empty() {
            return Err("the graph computes nothing from its input".into());
        }
        // Shape-only nodes: every input a constant or itself shape-only, or a Shape/Size node.
        let mut known: Vec<bool> = vec![false; next];
        for (s, _) in &consts {
            known[*s] = true;
        }
        let mut shape_only = Vec::with_capacity(nodes.len());
        for node in &nodes {
            // Shape and Size of the input itself need only its shape.
            let of_input =
                matches!(node.op, Op::Shape { .. } | Op::Size) && node.inputs.first() == Some(&Some(input_slot));
            let only = of_input || node.inputs.iter().all(|i| i.is_none_or(|s| known[s]));
            if only {
                for &o in &node.outputs {
                    known[o] = true;
                }
            }
            shape_only.push(only);
        }
        let mut network = GeneralNetwork {
            nodes,
            constants: consts,
            slots: next,
            input: input_slot,
            output: output_slot,
            num_classes: 0,
            shape_only,
            cache: Mutex::new(HashMap::new()),
            device: device.clone(),
        };
        let (h, w) = input.size.unwrap_or((224, 224));
        let zeros = Tensor::zeros((1, input.channels, h, w), DType::F32, device).map_err(|e| e.to_string())?;
        let logits = network
            .forward(&zeros)
            .map_err(|e| format!("running the graph once on zeros of its input size ({h}×{w}) failed: {e}"))?;
        match logits.dims() {
            [1, classes] => network.num_classes = *classes,
            other => {
                return Err(format!(
                    "the graph's output has shape {other:?} for one image; a classifier outputs [N, classes]"
                ))
            }
        }
        Ok(network)
    }

    /// The logits [N, classes] of `x` [N, C, H, W], as candle operations (differentiable).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let statics = self.shape_only_values(x.dims())?;
        let mut values: Vec<Option<Value>> = vec![None; self.slots];
        for (s, v) in self.constants.iter().chain(statics.iter()) {
            values[*s] = Some(v.clone());
        }
        values[self.input] = Some(Value::F(x.clone()));
        for (node, &only) in self.nodes.iter().zip(&self.shape_only) {
            if !only {
                self.run_node(node, &mut values)?;
            }
        }
        match values[self.output].take() {
            Some(Value::F(t)) => Ok(t),
            Some(_) => err("the graph's output is not a float tensor"),
            None => err("the graph's output was never computed"),
        }
    }

    /// The outputs of the shape-only nodes for an input of `dims`, computed once.
    fn shape_only_values(&self, dims: &[usize]) -> Result<ShapeOnlyValues> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(dims).cloned()) {
            return Ok(hit);
        }
        let mut values: Vec<Option<Value>> = vec![None; self.slots];
        for (s, v) in &self.constants {
            values[*s] = Some(v.clone());
        }
        values[self.input] = Some(Value::ShapeOnly(dims.to_vec()));
        let mut out = Vec::new();
        for (node, &only) in self.nodes.iter().zip(&self.shape_only) {
            if only {
                self.run_node(node, &mut values)?;
                for &o in &node.outputs {
                    if let Some(v) = &values[o] {
                        out.push((o, v.clone()));
                    }
                }
            }
        }
        let out = Arc::new(out);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(dims.to_vec(), out.clone());
        }
        Ok(out)
    }

    fn run_node(&self, node: &Node, values: &mut [Option<Value>]) -> Result<()> {
        let args: Vec<Option<&Value>> = node.inputs.iter().map(|i| i.and_then(|s| values[s].as_ref())).collect();
        let outputs = self
            .eval(&node.op, &args)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", node.label)))?;
        for (slot, v) in node.outputs.iter().zip(outputs) {
            values[*slot] = Some(v);
        }
        Ok(())
    }

    fn float(&self, v: &Value) -> Result<Tensor> {
        match v {
            Value::F(t) => Ok(t.clone()),
            Value::I(i) => Tensor::from_vec(
                i.data.iter().map(|&x| x as f32).collect::<Vec<_>>(),
                i.dims.as_slice(),
                &self.device,
            ),
            Value::ShapeOnly(_) => err("the input's values are needed where only its shape is known"),
        }
    }

    fn eval(&self, op: &Op, args: &[Option<&Value>]) -> Result<Vec<Value>> {
        let arg = |i: usize| -> Result<&Value> {
            args.get(i)
                .copied()
                .flatten()
                .ok_or_else(|| candle_core::Error::Msg(format!("input {i} is missing")))
        };
        let f = |i: usize| -> Result<Tensor> { self.float(arg(i)?) };
        let one = |v: Value| Ok(vec![v]);
        match op {
            Op::Identity => one(arg(0)?.clone()),
            Op::Unary(u) => one(unary(*u, arg(0)?, self)?),
            Op::Binary(b) => one(binary(*b, arg(0)?, arg(1)?, self)?),
            Op::Variadic(b) => {
                let mut acc = arg(0)?.clone();
                for i in 1..args.len() {
                    acc = binary(*b, &acc, arg(i)?, self)?;
                }
                one(acc)
            }
            Op::LeakyRelu(alpha) => {
                let x = f(0)?;
                one(Value::F((relu(&x)? - (relu(&x.neg()?)? * *alpha as f64)?)?))
            }
            Op::Clip { lo, hi } => one(Value::F(clamp(&f(0)?, *lo, *hi)?)),
            Op::HardSigmoid { alpha, beta } => one(Value::F(hard_sigmoid(&f(0)?, *alpha, *beta)?)),
            Op::HardSwish => {
                let x = f(0)?;
                one(Value::F((&x * hard_sigmoid(&x, 1.0 / 6.0, 0.5)?)?))
            }
            Op::Gelu { tanh } => {
                let x = f(0)?;
                one(Value::F(if *tanh { x.gelu()? } else { x.gelu_erf()? }))
            }
            Op::Softmax { axis, log, coerce_2d } => one(Value::F(softmax(&f(0)?, *axis, *log, *coerce_2d)?)),
            Op::Where => one(where_op(arg(0)?, arg(1)?, arg(2)?, self)?),
            Op::Conv(conv) => one(Value::F(conv.forward(&f(0)?)?)),
            Op::DilatedConv {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
            } => {
                let y = f(0)?.conv2d(weight, *padding, *stride, *dilation, *groups)?;
                let y = match bias {
                    Some(b) => y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)?,
                    None => y,
                };
                one(Value::F(y))
            }
            Op::Affine { scale, shift } => {
                let x = f(0)?;
                let mut shape = vec![1usize; x.rank()];
                if x.rank() < 2 {
                    return err("BatchNormalization of a value without a channel axis");
                }
                shape[1] = x.dim(1)?;
                one(Value::F(
                    x.broadcast_mul(&scale.reshape(shape.as_slice())?)?
                        .broadcast_add(&shift.reshape(shape.as_slice())?)?,
                ))
            }
            Op::LayerNorm { axis, eps } => {
                let x = f(0)?;
                let scale = args.get(1).copied().flatten().map(|v| self.float(v)).transpose()?;
                let bias = args.get(2).copied().flatten().map(|v| self.float(v)).transpose()?;
                one(Value::F(layer_norm(&x, *axis, *eps, scale.as_ref(), bias.as_ref())?))
            }
            Op::MaxPool {
                kernel,
                stride,
                pad,
                ceil,
            } => {
                let x = f(0)?;
                if x.rank() != 4 {
                    return err(format!(
                        "MaxPool of a rank-{} value; only 2-D pooling is supported",
                        x.rank()
                    ));
                }
                one(Value::F(max_pool2d(&x, *kernel, *stride, *pad, *ceil)?))
            }
            Op::AveragePool(p) => one(Value::F(avg_pool(&f(0)?, p)?)),
            Op::GlobalPool { max } => {
                let x = f(0)?;
                let spatial: Vec<usize> = (2..x.rank()).collect();
                if spatial.is_empty() {
                    return err("global pooling of a value without spatial axes");
                }
                one(Value::F(if *max {
                    let mut y = x;
                    for &d in spatial.iter().rev() {
                        y = y.max_keepdim(d)?;
                    }
                    y
                } else {
                    x.mean_keepdim(spatial)?
                }))
            }
            Op::Reduce {
                kind,
                axes,
                keepdims,
                noop_with_empty_axes,
            } => {
                let x = arg(0)?;
                let rank = x.dims().len();
                let axes: Vec<i64> = match (axes, args.get(1).copied().flatten()) {
                    (Some(a), _) => a.clone(),
                    (None, Some(v)) => ints(v)?.data,
                    (None, None) => vec![],
                };
                if axes.is_empty() && *noop_with_empty_axes {
                    return one(x.clone());
                }
                let mut axes: Vec<usize> = if axes.is_empty() {
                    (0..rank).collect()
                } else {
                    axes.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?
                };
                axes.sort();
                axes.dedup();
                one(reduce(*kind, x, &axes, *keepdims, self)?)
            }
            Op::MatMul => one(Value::F(matmul(&f(0)?, &f(1)?)?)),
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                let a = f(0)?;
                let b = f(1)?;
                let a = if *trans_a { a.t()? } else { a };
                let b = if *trans_b { b.t()? } else { b };
                let mut y = a.contiguous()?.matmul(&b.contiguous()?)?;
                if *alpha != 1.0 {
                    y = (y * *alpha)?;
                }
                if let Some(c) = args.get(2).copied().flatten() {
                    let c = self.float(c)?;
                    let c = if *beta != 1.0 { (c * *beta)? } else { c };
                    y = y.broadcast_add(&c)?;
                }
                one(Value::F(y))
            }
            Op::Transpose(perm) => {
                let x = arg(0)?;
                let rank = x.dims().len();
                let perm: Vec<usize> = perm.clone().unwrap_or_else(|| (0..rank).rev().collect());
                if perm.len() != rank {
                    return err(format!("a permutation of {} axes for a rank-{rank} value", perm.len()));
                }
                one(match x {
                    Value::F(t) => Value::F(t.permute(perm)?),
                    Value::I(i) => Value::I(permute_ints(i, &perm)),
                    Value::ShapeOnly(_) => return err("the input's values are needed"),
                })
            }
            Op::Reshape { allowzero } => {
                let x = arg(0)?;
                let shape = ints(arg(1)?)?.data;
                let dims = reshape_dims(&x.dims(), &shape, *allowzero)?;
                one(reshaped(x, dims)?)
            }
            Op::Flatten(a) => {
                let x = arg(0)?;
                let d = x.dims();
                let a = if *a < 0 { *a + d.len() as i64 } else { *a } as usize;
                if a > d.len() {
                    return err(format!("Flatten at axis {a} of a rank-{} value", d.len()));
                }
                one(reshaped(x, vec![d[..a].iter().product(), d[a..].iter().product()])?)
            }
            Op::Squeeze(attr_axes) => {
                let x = arg(0)?;
                let d = x.dims();
                let axes: Option<Vec<i64>> = match (attr_axes, args.get(1).copied().flatten()) {
                    (Some(a), _) => Some(a.clone()),
                    (None, Some(v)) => Some(ints(v)?.data),
                    _ => None,
                };
                let keep: Vec<usize> = match axes {
                    None => d.iter().copied().filter(|&n| n != 1).collect(),
                    Some(axes) => {
                        let axes: Vec<usize> = axes.iter().map(|&a| axis(a, d.len())).collect::<Result<_>>()?;
                        for &a in &axes {
                            if d[a] != 1 {
                                return err(format!("Squeeze of axis {a}, of size {}", d[a]));
                            }
                        }
                        d.iter()
                            .enumerate()
                            .filter(|(i, _)| !axes.contains(i))
                            .map(|(_, &n)| n)
                            .collect()
                    }
                };
                one(reshaped(x, keep)?)
            }
            Op::Unsqueeze(attr_axes) => {
                let x = arg(0)?;
                let d = x.dims();
                let axes = match (attr_axes, args.get(1).copied().flatten()) {
                    (Some(a), _) => a.clone(),
                    (None, Some(v)) => ints(v)?.data,
                    _ => return err("Unsqueeze without axes"),
                };
                let rank = d.len() + axes.len();
                let mut axes: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?;
                axes.sort();
                let mut out = Vec::with_capacity(rank);
                let mut src = d.iter();
                for i in 0..rank {
                    if axes.contains(&i) {
                        out.push(1);
                    } else {
                        out.push(
                            *src.next()
                                .ok_or_else(|| candle_core::Error::Msg("Unsqueeze axes repeat".into()))?,
                        );
                    }
                }
                one(reshaped(x, out)?)
            }
            Op::Concat(a) => {
                let parts: Vec<&Value> = args.iter().filter_map(|v| *v).collect();
                let Some(first) = parts.first() else {
                    return err("Concat of nothing");
                };
                let rank = first.dims().len();
                let a = axis(*a, rank)?;
                if parts.iter().all(|p| matches!(p, Value::I(_))) {
                    let ints: Vec<Ints> = parts.iter().map(|p| ints(p)).collect::<Result<_>>()?;
                    one(Value::I(concat_ints(&ints, a)?))
                } else {
                    let tensors: Vec<Tensor> = parts.iter().map(|p| self.float(p)).collect::<Result<_>>()?;
                    one(Value::F(Tensor::cat(&tensors, a)?))
                }
            }
            Op::Split {
                axis: a,
                split,
                num_outputs,
            } => {
                let x = arg(0)?;
                let d = x.dims();
                let a = axis(*a, d.len())?;
                let sizes: Vec<usize> = match (split, args.get(1).copied().flatten()) {
                    (Some(s), _) => s.iter().map(|&v| v.max(0) as usize).collect(),
                    (None, Some(v)) => ints(v)?.data.iter().map(|&v| v.max(0) as usize).collect(),
                    (None, None) => {
                        let n = num_outputs.unwrap_or(1).max(1);
                        let each = d[a].div_ceil(n);
                        (0..n).map(|i| each.min(d[a].saturating_sub(i * each))).collect()
                    }
                };
                if sizes.iter().sum::<usize>() != d[a] {
                    return err(format!("Split of {} along axis {a} into {sizes:?}", d[a]));
                }
                let mut start = 0;
                let mut out = Vec::new();
                for s in sizes {
                    out.push(narrow(x, a, start, s)?);
                    start += s;
                }
                Ok(out)
            }
            Op::Slice => {
                let x = arg(0)?;
                let d = x.dims();
                let starts = ints(arg(1)?)?.data;
                let ends = ints(arg(2)?)?.data;
                let axes: Vec<i64> = match args.get(3).copied().flatten() {
                    Some(v) => ints(v)?.data,
                    None => (0..starts.len() as i64).collect(),
                };
                let steps: Vec<i64> = match args.get(4).copied().flatten() {
                    Some(v) => ints(v)?.data,
                    None => vec![1; starts.len()],
                };
                if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
                    return err("Slice's starts, ends, axes and steps differ in length");
                }
                let mut v = x.clone();
                for i in 0..starts.len() {
                    let a = axis(axes[i], d.len())?;
                    let indices = slice_indices(d[a] as i64, starts[i], ends[i], steps[i])?;
                    v = select(&v, a, &indices)?;
                }
                one(v)
            }
            Op::Gather(a) => {
                let x = arg(0)?;
                let d = x.dims();
                let a = axis(*a, d.len())?;
                let idx = ints(arg(1)?)?;
                let n = d[a] as i64;
                let flat: Vec<usize> = idx
                    .data
                    .iter()
                    .map(|&i| {
                        let j = if i < 0 { i + n } else { i };
                        if (0..n).contains(&j) {
                            Ok(j as usize)
                        } else {
                            err(format!("Gather index {i} out of range for an axis of {n}"))
                        }
                    })
                    .collect::<Result<_>>()?;
                let picked = select(x, a, &flat)?;
                let mut dims: Vec<usize> = d[..a].to_vec();
                dims.extend(&idx.dims);
                dims.extend(&d[a + 1..]);
                one(reshaped(&picked, dims)?)
            }
            Op::Expand => {
                let x = arg(0)?;
                let shape: Vec<usize> = ints(arg(1)?)?
                    .data
                    .iter()
                    .map(|&v| {
                        usize::try_from(v)
                            .map_err(|_| candle_core::Error::Msg(format!("Expand to a negative size {v}")))
                    })
                    .collect::<Result<_>>()?;
                let target = broadcast_shape(&x.dims(), &shape)?;
                one(match x {
                    Value::F(t) => Value::F(t.broadcast_as(target)?),
                    Value::I(i) => Value::I(broadcast_ints(i, &target)?),
                    Value::ShapeOnly(_) => return err("the input's values are needed"),
                })
            }
            Op::Pad { mode, pads, value } => {
                let x = f(0)?;
                let rank = x.rank();
                let pads: Vec<i64> = match (pads, args.get(1).copied().flatten()) {
                    (Some(p), _) => p.clone(),
                    (None, Some(v)) => ints(v)?.data,
                    _ => return err("Pad without pads"),
                };
                let value = match args.get(2).copied().flatten() {
                    Some(v) => self
                        .float(v)?
                        .flatten_all()?
                        .to_vec1::<f32>()?
                        .first()
                        .copied()
                        .unwrap_or(0.0),
                    None => *value,
                };
                let axes: Vec<usize> = match args.get(3).copied().flatten() {
                    Some(v) => ints(v)?.data.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?,
                    None => (0..rank).collect(),
                };
                if pads.len() != 2 * axes.len() {
                    return err(format!("{} pads for {} axes", pads.len(), axes.len()));
                }
                let mut y = x;
                for (k, &a) in axes.iter().enumerate() {
                    y = pad_axis(&y, a, pads[k], pads[k + axes.len()], *mode, value)?;
                }
                one(Value::F(y))
            }
            Op::ConstantOfShape(c) => {
                let shape: Vec<usize> = ints(arg(0)?)?.data.iter().map(|&v| v.max(0) as usize).collect();
                let n: usize = shape.iter().product();
                one(match c {
                    Constant::Float { data, .. } => {
                        let v = data.first().copied().unwrap_or(0.0);
                        Value::F(Tensor::full(v, shape.as_slice(), &self.device)?)
                    }
                    Constant::Int { data, .. } => Value::I(Ints {
                        dims: shape,
                        data: vec![data.first().copied().unwrap_or(0); n],
                    }),
                })
            }
            Op::Cast { to_float, to_bool } => {
                let x = arg(0)?;
                one(match (x, to_float) {
                    (Value::F(t), true) => Value::F(t.clone()),
                    (Value::I(_), true) => Value::F(self.float(x)?),
                    (Value::I(i), false) => Value::I(if *to_bool {
                        Ints {
                            dims: i.dims.clone(),
                            data: i.data.iter().map(|&v| (v != 0) as i64).collect(),
                        }
                    } else {
                        i.clone()
                    }),
                    (Value::F(t), false) => {
                        let data = t.flatten_all()?.to_vec1::<f32>()?;
                        Value::I(Ints {
                            dims: t.dims().to_vec(),
                            data: data
                                .iter()
                                .map(|&v| if *to_bool { (v != 0.0) as i64 } else { v as i64 })
                                .collect(),
                        })
                    }
                    (Value::ShapeOnly(_), _) => return err("the input's values are needed"),
                })
            }
            Op::Shape { start, end } => {
                let d = arg(0)?.dims();
                let r = d.len() as i64;
                let clip = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let s = clip(*start);
                let e = clip(end.unwrap_or(r));
                one(Value::I(Ints::vector(
                    d[s..e.max(s)].iter().map(|&v| v as i64).collect(),
                )))
            }
            Op::Size => one(Value::I(Ints::scalar(arg(0)?.dims().iter().product::<usize>() as i64))),
            Op::Range => {
                let (s, l, dl) = (arg(0)?, arg(1)?, arg(2)?);
                if let (Value::I(s), Value::I(l), Value::I(dl)) = (s, l, dl) {
                    let (s, l, dl) = (s.data[0], l.data[0], dl.data[0]);
                    if dl == 0 {
                        return err("Range with a zero step");
                    }
                    let n = ((l - s) as f64 / dl as f64).ceil().max(0.0) as i64;
                    one(Value::I(Ints::vector((0..n).map(|k| s + k * dl).collect())))
                } else {
                    let g = |v: &Value| -> Result<f32> { Ok(self.float(v)?.flatten_all()?.to_vec1::<f32>()?[0]) };
                    let (s, l, dl) = (g(s)?, g(l)?, g(dl)?);
                    if dl == 0.0 {
                        return err("Range with a zero step");
                    }
                    let n = ((l - s) / dl).ceil().max(0.0) as usize;
                    let v: Vec<f32> = (0..n).map(|k| s + k as f32 * dl).collect();
                    one(Value::F(Tensor::from_vec(v, n, &self.device)?))
                }
            }
            Op::ScatterND => one(scatter_nd(arg(0)?, &ints(arg(1)?)?, arg(2)?, self)?),
        }
    }
}

/// A constant as a value: floats as a tensor on `device`, integers on the host.
fn constant_value(c: &Constant, device: &Device) -> Result<Value> {
    Ok(match c {
        Constant::Float { dims, data } => Value::F(Tensor::from_vec(data.clone(), dims.as_slice(), device)?),
        Constant::Int { dims, data } => Value::I(Ints {
            dims: dims.clone(),
            data: data.clone(),
        }),
    })
}

fn ints(v: &Value) -> Result<Ints> {
    match v {
        Value::I(i) => Ok(i.clone()),
        Value::F(t) => Ok(Ints {
            dims: t.dims().to_vec(),
            data: t.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x as i64).collect(),
        }),
        Value::ShapeOnly(_) => err("the input's values are needed where only its shape is known"),
    }
}

/// A possibly negative axis of a rank-`rank` value.
fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let b = if a < 0 { a + r } else { a };
    if (0..r.max(1)).contains(&b) {
        Ok(b as usize)
    } else {
        err(format!("axis {a} of a rank-{rank} value"))
    }
}

/// The numpy broadcast of two shapes.
fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let x = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let y = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Row-major strides of `dims`, with 0 where `dims` is broadcast up to `target`.
fn broadcast_strides(dims: &[usize], target: &[usize]) -> Vec<usize> {
    let offset = target.len() - dims.len();
    let mut strides = vec![0; target.len()];
    let mut s = 1;
    for i in (0..dims.len()).rev() {
        strides[i + offset] = if dims[i] == 1 && target[i + offset] != 1 { 0 } else { s };
        s *= dims[i];
    }
    strides
}

fn for_each_index(target: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = target.iter().product();
    let mut idx = vec![0usize; target.len()];
    for _ in 0..n {
        f(&idx);
        for k in (0..target.len()).rev() {
            idx[k] += 1;
            if idx[k] < target[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

fn broadcast_ints(i: &Ints, target: &[usize]) -> Result<Ints> {
    let strides = broadcast_strides(&i.dims, target);
    let mut data = Vec::with_capacity(target.iter().product());
    for_each_index(target, |idx| {
        let off: usize = idx.iter().zip(&strides).map(|(a, b)| a * b).sum();
        data.push(i.data[off]);
    });
    Ok(Ints {
        dims: target.to_vec(),
        data,
    })
}

fn permute_ints(i: &Ints, perm: &[usize]) -> Ints {
    let dims: Vec<usize> = perm.iter().map(|&p| i.dims[p]).collect();
    let src = broadcast_strides(&i.dims, &i.dims);
    let strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    let mut data = Vec::with_capacity(i.data.len());
    for_each_index(&dims, |idx| {
        data.push(i.data[idx.iter().zip(&strides).map(|(a, b)| a * b).sum::<usize>()]);
    });
    Ints { dims, data }
}

fn concat_ints(parts: &[Ints], a: usize) -> Result<Ints> {
    let mut dims = parts[0].dims.clone();
    if dims.is_empty() {
        return err("Concat of scalars");
    }
    dims[a] = parts.iter().map(|p| p.dims.get(a).copied().unwrap_or(1)).sum();
    let outer: usize = dims[..a].iter().product();
    let mut data = Vec::with_capacity(dims.iter().product());
    for o in 0..outer {
        for p in parts {
            let inner: usize = p.dims[a..].iter().product();
            data.extend_from_slice(&p.data[o * inner..(o + 1) * inner]);
        }
    }
    Ok(Ints { dims, data })
}

/// The value with `dims` (the same elements in order).
fn reshaped(x: &Value, dims: Vec<usize>) -> Result<Value> {
    let n: usize = dims.iter().product();
    if n != x.dims().iter().product::<usize>() {
        return err(format!(
            "reshaping {:?} to {dims:?} changes the element count",
            x.dims()
        ));
    }
    Ok(match x {
        Value::F(t) => Value::F(t.reshape(dims)?),
        Value::I(i) => Value::I(Ints {
            dims,
            data: i.data.clone(),
        }),
        Value::ShapeOnly(_) => return err("the input's values are needed"),
    })
}

/// ONNX Reshape's target: 0 copies the input's size (unless `allowzero`), -1 is inferred.
fn reshape_dims(input: &[usize], shape: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| {
                    candle_core::Error::Msg(format!("Reshape copies axis {i}, which {input:?} lacks"))
                })?)
            }
            s if s >= 0 => out.push(s as usize),
            s => return err(format!("Reshape to {shape:?}: size {s}")),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return err(format!("Reshape of {input:?} to {shape:?}: the sizes do not divide"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return err(format!("Reshape of {input:?} ({total} elements) to {shape:?}"));
    }
    Ok(out)
}

fn narrow(x: &Value, a: usize, start: usize, len: usize) -> Result<Value> {
    let indices: Vec<usize> = (start..start + len).collect();
    select(x, a, &indices)
}

/// The elements at `indices` along axis `a` (differentiable for floats).
fn select(x: &Value, a: usize, indices: &[usize]) -> Result<Value> {
    Ok(match x {
        Value::F(t) => {
            let n = t.dim(a)?;
            let contiguous_run = indices.windows(2).all(|w| w[1] == w[0] + 1);
            if indices.is_empty() {
                let mut dims = t.dims().to_vec();
                dims[a] = 0;
                Value::F(Tensor::zeros(dims, t.dtype(), t.device())?)
            } else if contiguous_run && indices.len() == n && indices[0] == 0 {
                Value::F(t.clone())
            } else if contiguous_run {
                Value::F(t.narrow(a, indices[0], indices.len())?)
            } else {
                let ids: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
                let ids = Tensor::from_vec(ids, indices.len(), t.device())?;
                Value::F(t.contiguous()?.index_select(&ids, a)?)
            }
        }
        Value::I(i) => {
            let outer: usize = i.dims[..a].iter().product();
            let inner: usize = i.dims[a + 1..].iter().product();
            let n = i.dims[a];
            let mut data = Vec::with_capacity(outer * indices.len() * inner);
            for o in 0..outer {
                for &k in indices {
                    let base = (o * n + k) * inner;
                    data.extend_from_slice(&i.data[base..base + inner]);
                }
            }
            let mut dims = i.dims.clone();
            dims[a] = indices.len();
            Value::I(Ints { dims, data })
        }
        Value::ShapeOnly(_) => return err("the input's values are needed"),
    })
}

/// The indices ONNX Slice takes along an axis of size `n`.
fn slice_indices(n: i64, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    if step == 0 {
        return err("Slice with step 0");
    }
    let fix = |v: i64, lo: i64, hi: i64| (if v < 0 { v + n } else { v }).clamp(lo, hi);
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = (fix(start, 0, n), fix(end, 0, n));
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let (s, e) = (fix(start, -1, n - 1), fix(end, -1, n - 1));
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

fn pad_axis(x: &Tensor, a: usize, before: i64, after: i64, mode: PadMode, value: f32) -> Result<Tensor> {
    let n = x.dim(a)? as i64;
    // Negative pads crop.
    let x = if before < 0 || after < 0 {
        let s = (-before).max(0);
        let e = n - (-after).max(0);
        if e <= s {
            return err("Pad crops away the whole axis");
        }
        x.narrow(a, s as usize, (e - s) as usize)?
    } else {
        x.clone()
    };
    let (before, after) = (before.max(0) as usize, after.max(0) as usize);
    if before + after == 0 {
        return Ok(x);
    }
    let n = x.dim(a)?;
    match mode {
        PadMode::Constant => {
            let mut parts = Vec::with_capacity(3);
            let side = |len: usize| -> Result<Tensor> {
                let mut dims = x.dims().to_vec();
                dims[a] = len;
                Tensor::full(value, dims, x.device())?.to_dtype(x.dtype())
            };
            if before > 0 {
                parts.push(side(before)?);
            }
            parts.push(x.clone());
            if after > 0 {
                parts.push(side(after)?);
            }
            Tensor::cat(&parts, a)
        }
        PadMode::Reflect | PadMode::Edge => {
            let pick = |i: i64| -> usize {
                let last = n as i64 - 1;
                match mode {
                    PadMode::Edge => i.clamp(0, last) as usize,
                    _ => {
                        if last == 0 {
                            return 0;
                        }
                        let period = 2 * last;
                        let m = i.rem_euclid(period);
                        (if m > last { period - m } else { m }) as usize
                    }
                }
            };
            let ids: Vec<u32> = (-(before as i64)..(n + after) as i64).map(|i| pick(i) as u32).collect();
            let len = ids.len();
            x.contiguous()?
                .index_select(&Tensor::from_vec(ids, len, x.device())?, a)
        }
    }
}

fn hard_sigmoid(x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    clamp(&x.affine(alpha as f64, beta as f64)?, 0.0, 1.0)
}

fn softmax(x: &Tensor, a: i64, log: bool, coerce_2d: bool) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let a = axis(a, dims.len())?;
    // Opset < 13: the input is seen as 2-D [before axis, from axis on].
    let (y, last) = if coerce_2d {
        (
            x.reshape((dims[..a].iter().product::<usize>(), dims[a..].iter().product::<usize>()))?,
            1,
        )
    } else {
        (x.clone(), a)
    };
    // Shifted by the (constant) maximum, as PyTorch does; the shift has no gradient.
    let shifted = y.broadcast_sub(&y.max_keepdim(last)?.detach())?;
    let out = if log {
        shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(last)?.log()?)?
    } else {
        let e = shifted.exp()?;
        e.broadcast_div(&e.sum_keepdim(last)?)?
    };
    out.reshape(dims)
}

fn layer_norm(x: &Tensor, a: i64, eps: f64, scale: Option<&Tensor>, bias: Option<&Tensor>) -> Result<Tensor> {
    let a = axis(a, x.rank())?;
    let axes: Vec<usize> = (a..x.rank()).collect();
    let mean = x.mean_keepdim(axes.as_slice())?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(axes.as_slice())?;
    let mut y = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    if let Some(s) = scale {
        y = y.broadcast_mul(s)?;
    }
    if let Some(b) = bias {
        y = y.broadcast_add(b)?;
    }
    Ok(y)
}

fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    // 1-D operands as numpy treats them: a row vector on the left, a column on the right.
    let (a1, b1) = (a.rank() == 1, b.rank() == 1);
    let a = if a1 { a.unsqueeze(0)? } else { a.clone() };
    let b = if b1 { b.unsqueeze(1)? } else { b.clone() };
    let (a, b) = (a.contiguous()?, b.contiguous()?);
    let y = if a.rank() == 2 && b.rank() == 2 {
        a.matmul(&b)?
    } else if b.rank() == 2 {
        // [.., m, k] × [k, n]: one GEMM over the folded batch.
        let dims = a.dims().to_vec();
        let k = dims[dims.len() - 1];
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = a.reshape((rows, k))?.matmul(&b)?;
        let mut out = dims[..dims.len() - 1].to_vec();
        out.push(b.dim(1)?);
        y.reshape(out)?
    } else {
        a.broadcast_matmul(&b)?
    };
    let y = if a1 { y.squeeze(y.rank() - 2)? } else { y };
    if b1 {
        y.squeeze(y.rank() - 1)
    } else {
        Ok(y)
    }
}

fn unary(u: Unary, x: &Value, net: &GeneralNetwork) -> Result<Value> {
    if let Value::I(i) = x {
        let map = |f: fn(i64) -> i64| {
            Value::I(Ints {
                dims: i.dims.clone(),
                data: i.data.iter().map(|&v| f(v)).collect(),
            })
        };
        match u {
            Unary::Neg => return Ok(map(|v| -v)),
            Unary::Abs => return Ok(map(|v| v.abs())),
            Unary::Not => return Ok(map(|v| (v == 0) as i64)),
            Unary::Ceil | Unary::Floor => return Ok(x.clone()),
            _ => {}
        }
    }
    if u == Unary::Not {
        return err("Not of a float value");
    }
    let t = net.float(x)?;
    Ok(Value::F(match u {
        Unary::Abs => t.abs()?,
        Unary::Ceil => t.ceil()?,
        Unary::Floor => t.floor()?,
        Unary::Erf => t.erf()?,
        Unary::Exp => t.exp()?,
        Unary::Log => t.log()?,
        Unary::Neg => t.neg()?,
        Unary::Reciprocal => t.recip()?,
        Unary::Relu => relu(&t)?,
        Unary::Sigmoid => candle_nn::ops::sigmoid(&t)?,
        Unary::Sqrt => t.sqrt()?,
        Unary::Tanh => t.tanh()?,
        Unary::Not => unreachable!("handled above"),
    }))
}

fn binary(b: Binary, x: &Value, y: &Value, net: &GeneralNetwork) -> Result<Value> {
    let comparison = matches!(
        b,
        Binary::Equal
            | Binary::Less
            | Binary::LessOrEqual
            | Binary::Greater
            | Binary::GreaterOrEqual
            | Binary::And
            | Binary::Or
    );
    let host = matches!((x, y), (Value::I(_), Value::I(_))) || comparison || matches!(b, Binary::Mod { .. });
    if host {
        // Integers, comparisons and Mod: on the host (they carry no gradient).
        let fx = host_floats(x, net)?;
        let fy = host_floats(y, net)?;
        let target = broadcast_shape(&fx.0, &fy.0)?;
        let sx = broadcast_strides(&fx.0, &target);
        let sy = broadcast_strides(&fy.0, &target);
        let ints_out = matches!((x, y), (Value::I(_), Value::I(_))) || comparison;
        let mut out = Vec::with_capacity(target.iter().product());
        let mut bad = None;
        for_each_index(&target, |idx| {
            let a = fx.1[idx.iter().zip(&sx).map(|(i, s)| i * s).sum::<usize>()];
            let c = fy.1[idx.iter().zip(&sy).map(|(i, s)| i * s).sum::<usize>()];
            let v = match b {
                Binary::Add => a + c,
                Binary::Sub => a - c,
                Binary::Mul => a * c,
                Binary::Div if ints_out => {
                    if c == 0.0 {
                        bad = Some("integer division by zero");
                        0.0
                    } else {
                        (a / c).trunc()
                    }
                }
                Binary::Div => a / c,
                Binary::Pow => a.powf(c),
                Binary::Max => a.max(c),
                Binary::Min => a.min(c),
                Binary::Mod { fmod } => {
                    if c == 0.0 {
                        bad = Some("Mod by zero");
                        0.0
                    } else if fmod {
                        a % c
                    } else {
                        // The sign of the divisor, as Python's %.
                        a - c * (a / c).floor()
                    }
                }
                Binary::Equal => (a == c) as i64 as f64,
                Binary::Less => (a < c) as i64 as f64,
                Binary::LessOrEqual => (a <= c) as i64 as f64,
                Binary::Greater => (a > c) as i64 as f64,
                Binary::GreaterOrEqual => (a >= c) as i64 as f64,
                Binary::And => ((a != 0.0) && (c != 0.0)) as i64 as f64,
                Binary::Or => ((a != 0.0) || (c != 0.0)) as i64 as f64,
            };
            out.push(v);
        });
        if let Some(m) = bad {
            return err(m);
        }
        return Ok(if ints_out {
            Value::I(Ints {
                dims: target,
                data: out.iter().map(|&v| v as i64).collect(),
            })
        } else {
            Value::F(Tensor::from_vec(
                out.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                target.as_slice(),
                &net.device,
            )?)
        });
    }
    let a = net.float(x)?;
    let c = net.float(y)?;
    Ok(Value::F(match b {
        Binary::Add => a.broadcast_add(&c)?,
        Binary::Sub => a.broadcast_sub(&c)?,
        Binary::Mul => a.broadcast_mul(&c)?,
        Binary::Div => a.broadcast_div(&c)?,
        Binary::Max => a.broadcast_maximum(&c)?,
        Binary::Min => a.broadcast_minimum(&c)?,
        Binary::Pow => match constant_scalar(&c)? {
            Some(2.0) => a.sqr()?,
            Some(0.5) => a.sqrt()?,
            Some(1.0) => a,
            Some(e) => a.powf(e as f64)?,
            // a^c = exp(c·ln a), for a > 0.
            None => a.log()?.broadcast_mul(&c)?.exp()?,
        },
        _ => unreachable!("comparisons and Mod run on the host"),
    }))
}

/// The single value of a one-element tensor.
fn constant_scalar(t: &Tensor) -> Result<Option<f32>> {
    if t.elem_count() != 1 {
        return Ok(None);
    }
    Ok(t.flatten_all()?.to_vec1::<f32>()?.first().copied())
}

/// A value as host floats with its shape.
fn host_floats(v: &Value, net: &GeneralNetwork) -> Result<(Vec<usize>, Vec<f64>)> {
    Ok(match v {
        Value::I(i) => (i.dims.clone(), i.data.iter().map(|&x| x as f64).collect()),
        Value::F(_) => {
            let t = net.float(v)?;
            (
                t.dims().to_vec(),
                t.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x as f64).collect(),
            )
        }
        Value::ShapeOnly(_) => return err("the input's values are needed"),
    })
}

fn where_op(cond: &Value, x: &Value, y: &Value, net: &GeneralNetwork) -> Result<Value> {
    let c = ints(cond)?;
    if let (Value::I(a), Value::I(b)) = (x, y) {
        let target = broadcast_shape(&broadcast_shape(&c.dims, &a.dims)?, &b.dims)?;
        let (c, a, b) = (
            broadcast_ints(&c, &target)?,
            broadcast_ints(a, &target)?,
            broadcast_ints(b, &target)?,
        );
        let data = c
            .data
            .iter()
            .zip(a.data.iter().zip(&b.data))
            .map(|(&m, (&p, &q))| if m != 0 { p } else { q })
            .collect();
        return Ok(Value::I(Ints { dims: target, data }));
    }
    let a = net.float(x)?;
    let b = net.float(y)?;
    let target = broadcast_shape(&broadcast_shape(&c.dims, a.dims())?, b.dims())?;
    let mask: Vec<u8> = broadcast_ints(&c, &target)?
        .data
        .iter()
        .map(|&m| (m != 0) as u8)
        .collect();
    let mask = Tensor::from_vec(mask, target.as_slice(), &net.device)?;
    Ok(Value::F(mask.where_cond(
        &a.broadcast_as(target.as_slice())?.contiguous()?,
        &b.broadcast_as(target.as_slice())?.contiguous()?,
    )?))
}

fn reduce(kind: Reduce, x: &Value, axes: &[usize], keepdims: bool, net: &GeneralNetwork) -> Result<Value> {
    let t = net.float(x)?;
    let mut y = match kind {
        Reduce::Mean => t.mean_keepdim(axes)?,
        Reduce::Sum => t.sum_keepdim(axes)?,
        Reduce::Max | Reduce::Min => {
            let mut y = t;
            for &a in axes {
                y = if kind == Reduce::Max {
                    y.max_keepdim(a)?
                } else {
                    y.min_keepdim(a)?
                };
            }
            y
        }
    };
    if !keepdims {
        for &a in axes.iter().rev() {
            y = y.squeeze(a)?;
        }
    }
    Ok(match x {
        Value::I(_) => Value::I(ints(&Value::F(y))?),
        _ => Value::F(y),
    })
}

/// Average pooling as a sum of shifted strided views over the zero-padded input, divided
/// by PyTorch's window count (`count_include_pad` counts the padding, never the extra
/// rows `ceil_mode` adds).
fn avg_pool(x: &Tensor, p: &AvgPool) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    let [pt, pl, pb, pr] = p.pads;
    let out = |size: usize, k: usize, s: usize, before: usize, after: usize| -> Result<usize> {
        let span = (size + before + after).checked_sub(k).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "AveragePool window {k} larger than the padded input {}",
                size + before + after
            ))
        })?;
        let mut o = if p.ceil { span.div_ceil(s) } else { span / s } + 1;
        // PyTorch: with ceil_mode the last window must start inside the input or left padding.
        if p.ceil && (o - 1) * s >= size + before {
            o -= 1;
        }
        Ok(o)
    };
    let oh = out(h, kh, sh, pt, pb)?;
    let ow = out(w, kw, sw, pl, pr)?;
    let extra_h = ((oh - 1) * sh + kh).saturating_sub(h + pt + pb);
    let extra_w = ((ow - 1) * sw + kw).saturating_sub(w + pl + pr);
    let xp = x
        .pad_with_zeros(2, pt, pb + extra_h)?
        .pad_with_zeros(3, pl, pr + extra_w)?;
    let mut sum: Option<Tensor> = None;
    for dy in 0..kh {
        for dx in 0..kw {
            let rows: Vec<u32> = (0..oh).map(|i| (i * sh + dy) as u32).collect();
            let cols: Vec<u32> = (0..ow).map(|j| (j * sw + dx) as u32).collect();
            let v = xp
                .index_select(&Tensor::from_vec(rows, oh, x.device())?, 2)?
                .index_select(&Tensor::from_vec(cols, ow, x.device())?, 3)?;
            sum = Some(match sum {
                None => v,
                Some(s) => (s + v)?,
            });
        }
    }
    let sum = sum.ok_or_else(|| candle_core::Error::Msg("an empty pooling window".into()))?;
    // The divisor of each output position.
    let count = |o: usize, s: usize, k: usize, before: usize, size: usize, after: usize| -> f32 {
        let start = (o * s) as i64 - before as i64;
        let end = (start + k as i64).min((size + after) as i64);
        if p.count_include_pad {
            (end - start) as f32
        } else {
            (end.min(size as i64) - start.max(0)) as f32
        }
    };
    let mut inv = Vec::with_capacity(oh * ow);
    for i in 0..oh {
        for j in 0..ow {
            let n = count(i, sh, kh, pt, h, pb) * count(j, sw, kw, pl, w, pr);
            inv.push(if n > 0.0 { 1.0 / n } else { 0.0 });
        }
    }
    sum.broadcast_mul(&Tensor::from_vec(inv, (1, 1, oh, ow), x.device())?)
}

fn scatter_nd(data: &Value, indices: &Ints, updates: &Value, net: &GeneralNetwork) -> Result<Value> {
    let dims = data.dims();
    let k = *indices
        .dims
        .last()
        .ok_or_else(|| candle_core::Error::Msg("ScatterND with scalar indices".into()))?;
    if k > dims.len() {
        return err("ScatterND indices longer than the data's rank");
    }
    let slice: usize = dims[k..].iter().product();
    let strides = broadcast_strides(&dims, &dims);
    // Element positions each update row writes, in order.
    let mut positions = Vec::new();
    for tuple in indices.data.chunks(k.max(1)) {
        let mut base = 0usize;
        for (a, &i) in tuple.iter().enumerate().take(k) {
            let n = dims[a] as i64;
            let i = if i < 0 { i + n } else { i };
            if !(0..n).contains(&i) {
                return err(format!("ScatterND index {i} out of range for an axis of {n}"));
            }
            base += i as usize * strides[a];
        }
        positions.extend(base..base + slice);
    }
    match data {
        Value::I(d) => {
            let u = ints(updates)?;
            let mut out = d.data.clone();
            for (p, v) in positions.iter().zip(&u.data) {
                out[*p] = *v;
            }
            Ok(Value::I(Ints { dims, data: out }))
        }
        _ => {
            // out = data·keep + scatter(updates): differentiable in both.
            let d = net.float(data)?;
            let u = net.float(updates)?.flatten_all()?;
            if u.elem_count() != positions.len() {
                return err("ScatterND updates do not match its indices");
            }
            let n: usize = dims.iter().product();
            let mut keep = vec![1f32; n];
            for &p in &positions {
                keep[p] = 0.0;
            }
            let keep = Tensor::from_vec(keep, dims.as_slice(), &net.device)?;
            let ids: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
            let ids = Tensor::from_vec(ids, positions.len(), &net.device)?;
            let scattered = Tensor::zeros(n, DType::F32, &net.device)?.index_add(&ids, &u, 0)?;
            Ok(Value::F((d.mul(&keep)? + scattered.reshape(dims.as_slice())?)?))
        }
    }
}

/// The constant behind an input, if it is one.
fn const_input<'a>(inputs: &[Option<usize>], i: usize, consts: &'a HashMap<usize, Constant>) -> Option<&'a Constant> {
    inputs.get(i).copied().flatten().and_then(|s| consts.get(&s))
}

fn parse_op(
    node: &NodeProto,
    attrs: &Attributes,
    inputs: &[Option<usize>],
    consts: &HashMap<usize, Constant>,
    opset: i64,
    device: &Device,
) -> std::result::Result<Op, String> {
    let need = |n: usize| -> std::result::Result<(), String> {
        if inputs.iter().take(n).all(|i| i.is_some()) && inputs.len() >= n {
            Ok(())
        } else {
            Err(format!(
                "needs {n} input(s), has {}",
                inputs.iter().filter(|i| i.is_some()).count()
            ))
        }
    };
    need(1)?;
    let axes_attr = |name: &str| attrs.ints(name);
    Ok(match node.op_type.as_str() {
        "Identity" | "Dropout" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("a Dropout mask output is not supported".into());
            }
            Op::Identity
        }
        "Abs" => Op::Unary(Unary::Abs),
        "Ceil" => Op::Unary(Unary::Ceil),
        "Floor" => Op::Unary(Unary::Floor),
        "Erf" => Op::Unary(Unary::Erf),
        "Exp" => Op::Unary(Unary::Exp),
        "Log" => Op::Unary(Unary::Log),
        "Neg" => Op::Unary(Unary::Neg),
        "Not" => Op::Unary(Unary::Not),
        "Reciprocal" => Op::Unary(Unary::Reciprocal),
        "Relu" => Op::Unary(Unary::Relu),
        "Sigmoid" => Op::Unary(Unary::Sigmoid),
        "Sqrt" => Op::Unary(Unary::Sqrt),
        "Tanh" => Op::Unary(Unary::Tanh),
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual"
        | "And" | "Or" | "Mod" => {
            need(2)?;
            Op::Binary(match node.op_type.as_str() {
                "Add" => Binary::Add,
                "Sub" => Binary::Sub,
                "Mul" => Binary::Mul,
                "Div" => Binary::Div,
                "Pow" => Binary::Pow,
                "Equal" => Binary::Equal,
                "Less" => Binary::Less,
                "LessOrEqual" => Binary::LessOrEqual,
                "Greater" => Binary::Greater,
                "GreaterOrEqual" => Binary::GreaterOrEqual,
                "And" => Binary::And,
                "Or" => Binary::Or,
                _ => Binary::Mod {
                    fmod: attrs.int("fmod", 0) != 0,
                },
            })
        }
        "Sum" => Op::Variadic(Binary::Add),
        "Max" => Op::Variadic(Binary::Max),
        "Min" => Op::Variadic(Binary::Min),
        "LeakyRelu" => Op::LeakyRelu(attrs.float("alpha").unwrap_or(0.01)),
        "Clip" => {
            let bound = |i: usize, attr: &str, default: f32| -> std::result::Result<f32, String> {
                if opset < 11 {
                    return Ok(attrs.float(attr).unwrap_or(default));
                }
                match inputs.get(i).copied().flatten() {
                    None => Ok(default),
                    Some(_) => const_input(inputs, i, consts)
                        .and_then(|c| c.floats().first().copied())
                        .ok_or_else(|| format!("Clip bound {i} must be a constant")),
                }
            };
            Op::Clip {
                lo: bound(1, "min", f32::NEG_INFINITY)?,
                hi: bound(2, "max", f32::INFINITY)?,
            }
        }
        "HardSigmoid" => Op::HardSigmoid {
            alpha: attrs.float("alpha").unwrap_or(0.2),
            beta: attrs.float("beta").unwrap_or(0.5),
        },
        "HardSwish" => Op::HardSwish,
        "Gelu" => Op::Gelu {
            tanh: attrs.string("approximate").is_some_and(|a| a == "tanh"),
        },
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: attrs.int("axis", if opset < 13 { 1 } else { -1 }),
            log: node.op_type == "LogSoftmax",
            coerce_2d: opset < 13,
        },
        "Where" => {
            need(3)?;
            Op::Where
        }
        "Conv" => conv(node, attrs, inputs, consts, device)?,
        "BatchNormalization" => {
            need(5)?;
            if attrs.int("training_mode", 0) != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err(
                    "BatchNormalization in training mode is not supported (export the model in eval mode)".into(),
                );
            }
            let p = |i: usize| {
                const_input(inputs, i, consts)
                    .map(|c| c.floats())
                    .ok_or_else(|| format!("BatchNormalization parameter {i} must be a constant"))
            };
            let (gamma, beta, mean, var) = (p(1)?, p(2)?, p(3)?, p(4)?);
            let c = gamma.len();
            if [beta.len(), mean.len(), var.len()].iter().any(|&n| n != c) {
                return Err("BatchNormalization parameters differ in length".into());
            }
            let eps = attrs.float("epsilon").unwrap_or(1e-5) as f64;
            let scale: Vec<f32> = (0..c)
                .map(|i| (gamma[i] as f64 / (var[i] as f64 + eps).sqrt()) as f32)
                .collect();
            let shift: Vec<f32> = (0..c)
                .map(|i| (beta[i] as f64 - mean[i] as f64 * scale[i] as f64) as f32)
                .collect();
            let t = |v: Vec<f32>| Tensor::from_vec(v, c, device).map_err(|e| e.to_string());
            Op::Affine {
                scale: t(scale)?,
                shift: t(shift)?,
            }
        }
        "LayerNormalization" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("LayerNormalization's mean and inverse-deviation outputs are not supported".into());
            }
            Op::LayerNorm {
                axis: attrs.int("axis", -1),
                eps: attrs.float("epsilon").unwrap_or(1e-5) as f64,
            }
        }
        "MaxPool" => {
            if node.output.len() > 1 && node.output[1..].iter().any(|o| !o.is_empty()) {
                return Err("MaxPool with an Indices output is not supported".into());
            }
            let auto_pad = attrs.string("auto_pad").unwrap_or_default();
            if !(auto_pad.is_empty() || auto_pad == "NOTSET" || auto_pad == "VALID") {
                return Err(format!("auto_pad {auto_pad} is not supported for MaxPool"));
            }
            if attrs.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return Err("MaxPool with dilations is not supported".into());
            }
            let k = attrs.ints("kernel_shape").ok_or("MaxPool without kernel_shape")?;
            let kernel = super::tensor::uniform(&k, "kernel_shape")?;
            let stride = match attrs.ints("strides") {
                Some(s) => super::tensor::uniform(&s, "strides")?,
                None => 1,
            };
            let pad = match attrs.ints("pads") {
                Some(p) if auto_pad != "VALID" => super::tensor::uniform(&p, "pads")?,
                _ => 0,
            };
            if kernel == 0 || stride == 0 || 2 * pad > kernel {
                return Err(format!(
                    "kernel {kernel}, stride {stride}, pad {pad} is not a valid pooling window"
                ));
            }
            Op::MaxPool {
                kernel,
                stride,
                pad,
                ceil: attrs.int("ceil_mode", 0) != 0,
            }
        }
        "AveragePool" => {
            let k = attrs.ints("kernel_shape").ok_or("AveragePool without kernel_shape")?;
            let [kh, kw] = k[..] else {
                return Err(format!(
                    "AveragePool over {} axes; only 2-D pooling is supported",
                    k.len()
                ));
            };
            let auto_pad = attrs.string("auto_pad").unwrap_or_default();
            if !(auto_pad.is_empty() || auto_pad == "NOTSET" || auto_pad == "VALID") {
                return Err(format!("auto_pad {auto_pad} is not supported for AveragePool"));
            }
            if attrs.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return Err("AveragePool with dilations is not supported".into());
            }
            let s = attrs.ints("strides").unwrap_or_else(|| vec![1, 1]);
            let p = match attrs.ints("pads") {
                Some(p) if auto_pad != "VALID" => p,
                _ => vec![0; 4],
            };
            let us = |v: i64, what: &str| usize::try_from(v).map_err(|_| format!("negative {what} {v}"));
            if p.len() != 4 || s.len() != 2 || kh <= 0 || kw <= 0 || s.iter().any(|&v| v <= 0) {
                return Err(format!("AveragePool kernel {k:?}, strides {s:?}, pads {p:?}"));
            }
            Op::AveragePool(AvgPool {
                kernel: [us(kh, "kernel")?, us(kw, "kernel")?],
                stride: [us(s[0], "stride")?, us(s[1], "stride")?],
                pads: [us(p[0], "pad")?, us(p[1], "pad")?, us(p[2], "pad")?, us(p[3], "pad")?],
                count_include_pad: attrs.int("count_include_pad", 0) != 0,
                ceil: attrs.int("ceil_mode", 0) != 0,
            })
        }
        "GlobalAveragePool" => Op::GlobalPool { max: false },
        "GlobalMaxPool" => Op::GlobalPool { max: true },
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => Op::Reduce {
            kind: match node.op_type.as_str() {
                "ReduceMean" => Reduce::Mean,
                "ReduceSum" => Reduce::Sum,
                "ReduceMax" => Reduce::Max,
                _ => Reduce::Min,
            },
            axes: axes_attr("axes"),
            keepdims: attrs.int("keepdims", 1) != 0,
            noop_with_empty_axes: attrs.int("noop_with_empty_axes", 0) != 0,
        },
        "MatMul" => {
            need(2)?;
            Op::MatMul
        }
        "Gemm" => {
            need(2)?;
            Op::Gemm {
                alpha: attrs.float("alpha").unwrap_or(1.0) as f64,
                beta: attrs.float("beta").unwrap_or(1.0) as f64,
                trans_a: attrs.int("transA", 0) != 0,
                trans_b: attrs.int("transB", 0) != 0,
            }
        }
        "Transpose" => Op::Transpose(
            attrs
                .ints("perm")
                .map(|p| {
                    p.iter()
                        .map(|&v| usize::try_from(v).map_err(|_| format!("perm {p:?}")))
                        .collect()
                })
                .transpose()?,
        ),
        "Reshape" => {
            need(2)?;
            Op::Reshape {
                allowzero: attrs.int("allowzero", 0) != 0,
            }
        }
        "Flatten" => Op::Flatten(attrs.int("axis", 1)),
        "Squeeze" => Op::Squeeze(axes_attr("axes")),
        "Unsqueeze" => Op::Unsqueeze(axes_attr("axes")),
        "Concat" => Op::Concat(attrs.int("axis", 0)),
        "Split" => Op::Split {
            axis: attrs.int("axis", 0),
            split: axes_attr("split"),
            num_outputs: attrs
                .get("num_outputs")
                .map(|a| a.i as usize)
                .or(Some(node.output.len())),
        },
        "Slice" => {
            if opset < 10 {
                return Err("Slice of opset < 10 (attributes) is not supported".into());
            }
            need(3)?;
            Op::Slice
        }
        "Gather" => {
            need(2)?;
            Op::Gather(attrs.int("axis", 0))
        }
        "Expand" => {
            need(2)?;
            Op::Expand
        }
        "Pad" => Op::Pad {
            mode: match attrs.string("mode").as_deref().unwrap_or("constant") {
                "constant" => PadMode::Constant,
                "reflect" => PadMode::Reflect,
                "edge" => PadMode::Edge,
                other => return Err(format!("Pad mode `{other}` is not supported")),
            },
            pads: if opset < 11 { attrs.ints("pads") } else { None },
            value: attrs.float("value").unwrap_or(0.0),
        },
        "ConstantOfShape" => Op::ConstantOfShape(match attrs.get("value").and_then(|a| a.t.as_ref()) {
            Some(t) => decode_tensor(t)?,
            None => Constant::Float {
                dims: vec![1],
                data: vec![0.0],
            },
        }),
        "Cast" => {
            let to = attrs.int("to", data_type::FLOAT as i64) as i32;
            let to_float = matches!(to, data_type::FLOAT | data_type::DOUBLE | data_type::FLOAT16 | 16);
            let to_int = matches!(
                to,
                data_type::INT64 | data_type::INT32 | data_type::BOOL | data_type::UINT8 | data_type::INT8
            );
            if !to_float && !to_int {
                return Err(format!("Cast to ONNX data type {to} is not supported"));
            }
            Op::Cast {
                to_float,
                to_bool: to == data_type::BOOL,
            }
        }
        "Shape" => Op::Shape {
            start: attrs.int("start", 0),
            end: attrs.get("end").map(|a| a.i),
        },
        "Size" => Op::Size,
        "Range" => {
            need(3)?;
            Op::Range
        }
        "ScatterND" => {
            need(3)?;
            if attrs.string("reduction").is_some_and(|r| r != "none") {
                return Err("ScatterND with a reduction is not supported".into());
            }
            Op::ScatterND
        }
        other => return Err(format!("operator {other} is not supported")),
    })
}

fn conv(
    node: &NodeProto,
    attrs: &Attributes,
    inputs: &[Option<usize>],
    consts: &HashMap<usize, Constant>,
    device: &Device,
) -> std::result::Result<Op, String> {
    let w = const_input(inputs, 1, consts).ok_or("Conv weights must be a constant")?;
    let [c_out, c_in_per_group, kh, kw] = w.dims()[..] else {
        return Err(format!(
            "weights of shape {:?}; only 2-D convolutions are supported",
            w.dims()
        ));
    };
    let groups = usize::try_from(attrs.int("group", 1)).map_err(|_| "negative group count".to_string())?;
    if groups == 0 || c_out % groups != 0 || kh == 0 || kw == 0 || c_in_per_group == 0 {
        return Err(format!("weights {:?} with {groups} groups", w.dims()));
    }
    if let Some(k) = attrs.ints("kernel_shape") {
        if k != [kh as i64, kw as i64] {
            return Err(format!("kernel_shape {k:?} disagrees with weights {:?}", w.dims()));
        }
    }
    let strides = attrs.ints("strides").unwrap_or_else(|| vec![1, 1]);
    let stride = super::tensor::uniform(&strides, "strides")?;
    if stride == 0 {
        return Err("stride 0".into());
    }
    let weight = Tensor::from_vec(w.floats(), (c_out, c_in_per_group, kh, kw), device).map_err(|e| e.to_string())?;
    let bias = match const_input(inputs, 2, consts) {
        Some(b) if b.dims().iter().product::<usize>() == c_out => {
            Some(Tensor::from_vec(b.floats(), c_out, device).map_err(|e| e.to_string())?)
        }
        Some(b) => {
            return Err(format!(
                "bias of {} values for {c_out} output channels",
                b.floats().len()
            ))
        }
        None if inputs.get(2).copied().flatten().is_some() => return Err("Conv bias must be a constant".into()),
        None => None,
    };
    let auto_pad = attrs.string("auto_pad").unwrap_or_default();
    let pads = attrs.ints("pads").unwrap_or_else(|| vec![0; 4]);
    let dilation = attrs.ints("dilations").unwrap_or_else(|| vec![1, 1]);
    let dilation = super::tensor::uniform(&dilation, "dilations")?;
    if dilation != 1 {
        let padding = super::tensor::uniform(&pads, "pads")?;
        if !(auto_pad.is_empty() || auto_pad == "NOTSET") {
            return Err(format!("a dilated Conv with auto_pad {auto_pad} is not supported"));
        }
        return Ok(Op::DilatedConv {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
        });
    }
    let padding = match auto_pad.as_str() {
        "" | "NOTSET" => {
            let p: Vec<usize> = pads
                .iter()
                .map(|&v| usize::try_from(v).ok())
                .collect::<Option<_>>()
                .ok_or_else(|| format!("pads {pads:?} are negative"))?;
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
    let _ = node;
    Ok(Op::Conv(
        Conv::new(weight, bias, stride, padding, groups).map_err(|e| e.to_string())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_indices_follow_onnx() {
        assert_eq!(slice_indices(5, 1, 4, 1).unwrap(), [1, 2, 3]);
        assert_eq!(slice_indices(5, 0, i64::MAX, 2).unwrap(), [0, 2, 4]);
        assert_eq!(slice_indices(5, -1, i64::MIN, -1).unwrap(), [4, 3, 2, 1, 0]);
        assert_eq!(slice_indices(5, -2, 10, 1).unwrap(), [3, 4]);
        assert!(slice_indices(5, 0, 3, 0).is_err());
    }

    #[test]
    fn reshape_copies_zeros_and_infers_one_axis() {
        assert_eq!(reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(), [2, 12]);
        assert_eq!(reshape_dims(&[2, 3, 4], &[4, 0, 2], false).unwrap(), [4, 3, 2]);
        assert!(reshape_dims(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_dims(&[2, 3, 4], &[7], false).is_err());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[3, 1, 5], &[4, 1]).unwrap(), [3, 4, 5]);
        assert!(broadcast_shape(&[3], &[4]).is_err());
        let i = Ints {
            dims: vec![2, 1],
            data: vec![7, 8],
        };
        assert_eq!(broadcast_ints(&i, &[2, 3]).unwrap().data, [7, 7, 7, 8, 8, 8]);
        let t = Ints {
            dims: vec![2, 3],
            data: (0..6).collect(),
        };
        assert_eq!(permute_ints(&t, &[1, 0]).data, [0, 3, 1, 4, 2, 5]);
    }

    /// Average pooling against a direct loop, with padding, ceil mode and both counts.
    #[test]
    fn average_pooling_matches_a_direct_loop() {
        let (h, w) = (7usize, 6usize);
        let v: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 11) as f32 - 4.0).collect();
        let x = Tensor::from_vec(v.clone(), (1, 1, h, w), &Device::Cpu).unwrap();
        for (k, s, pad, include, ceil) in [
            (3, 2, 1, true, false),
            (3, 2, 1, false, true),
            (2, 2, 0, true, true),
            (3, 1, 1, false, false),
        ] {
            let p = AvgPool {
                kernel: [k, k],
                stride: [s, s],
                pads: [pad; 4],
                count_include_pad: include,
                ceil,
            };
            let y = avg_pool(&x, &p).unwrap();
            let (_, _, oh, ow) = y.dims4().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for i in 0..oh {
                for j in 0..ow {
                    let (y0, x0) = ((i * s) as i64 - pad as i64, (j * s) as i64 - pad as i64);
                    let (y1, x1) = (
                        (y0 + k as i64).min((h + pad) as i64),
                        (x0 + k as i64).min((w + pad) as i64),
                    );
                    let mut sum = 0.0;
                    let mut n = 0.0;
                    for yy in y0.max(0)..y1.min(h as i64) {
                        for xx in x0.max(0)..x1.min(w as i64) {
                            sum += v[yy as usize * w + xx as usize];
                            n += 1.0;
                        }
                    }
                    let div = if include { ((y1 - y0) * (x1 - x0)) as f32 } else { n };
                    let expect = sum / div;
                    assert!(
                        (y[i * ow + j] - expect).abs() < 1e-5,
                        "k{k} s{s} p{pad} {include} {ceil} ({i},{j}): {} vs {expect}",
                        y[i * ow + j]
                    );
                }
            }
        }
    }
}
