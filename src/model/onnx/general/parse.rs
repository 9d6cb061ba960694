//! ONNX nodes as operations of the interpreter: attributes read and checked once, at load
//! time, so that a graph the interpreter cannot run is refused with the node, the operator
//! and the attribute named.

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::super::error_line;
use super::super::proto::{data_type, NodeProto};
use super::super::tensor::{self, decode_tensor, uniform, Attributes};
use crate::net::graph::{AvgPool2d, Reduction, Unary};
use crate::net::layers::{self, Activation, Conv, MaxPool2d, Padding};

/// An elementwise operator: a differentiable function of floats, or one ONNX also applies
/// to integers (shape arithmetic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Elementwise {
    Float(Unary),
    Neg,
    Abs,
    Ceil,
    Floor,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
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

impl BinaryOp {
    /// Whether the result is a boolean (computed on the host, without gradient).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::Less
                | BinaryOp::LessOrEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterOrEqual
                | BinaryOp::And
                | BinaryOp::Or
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Inference BatchNorm as y = x·scale + shift along axis 1, with the per-channel factors
/// shaped for inputs of rank 2, 3 and 4 ([C], [C, 1], [C, 1, 1]).
#[derive(Debug, Clone)]
pub(super) struct BatchNorm {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub by_rank: Vec<(layers::Constant, layers::Constant)>,
    /// γ, β, μ, σ² and ε, to fold into a convolution before it.
    pub params: [Tensor; 4],
    pub eps: f64,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Identity,
    Elementwise(Elementwise),
    Binary(BinaryOp),
    /// Sum, Max, Min of any number of inputs.
    Variadic(BinaryOp),
    Softmax {
        axis: i64,
        log: bool,
        coerce_2d: bool,
    },
    Where,
    Conv(Conv, Activation),
    BatchNorm(Box<BatchNorm>),
    LayerNorm {
        axis: i64,
        eps: f64,
    },
    MaxPool(MaxPool2d),
    AveragePool(AvgPool2d),
    GlobalPool {
        max: bool,
    },
    Reduce {
        kind: Reduction,
        axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    MatMul,
    Gemm {
        alpha: f32,
        beta: f32,
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
        num_outputs: usize,
    },
    Slice,
    Gather(i64),
    Expand,
    Pad {
        mode: PadMode,
        pads: Option<Vec<i64>>,
        value: f32,
    },
    ConstantOfShape(tensor::Constant),
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

/// The operators the interpreter runs (default ONNX domain).
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

/// The constant behind an input, if it is one.
fn const_input<'a>(
    inputs: &[Option<usize>],
    i: usize,
    consts: &'a HashMap<usize, tensor::Constant>,
) -> Option<&'a tensor::Constant> {
    inputs.get(i).copied().flatten().and_then(|s| consts.get(&s))
}

fn tensor_of(data: Vec<f32>, dims: &[usize], device: &Device) -> Result<Tensor, String> {
    Tensor::from_vec(data, dims, device).map_err(|e| error_line(&e))
}

fn held(data: Vec<f32>, dims: &[usize], device: &Device) -> Result<layers::Constant, String> {
    layers::Constant::new(tensor_of(data, dims, device)?).map_err(|e| error_line(&e))
}

/// Auto-padding must be absent or VALID (SAME is supported only for convolutions).
fn explicit_pads_only(attrs: &Attributes, op: &str) -> Result<bool, String> {
    let auto_pad = attrs.string("auto_pad").unwrap_or_default();
    match auto_pad.as_str() {
        "" | "NOTSET" => Ok(false),
        "VALID" => Ok(true),
        other => Err(format!("attribute auto_pad = {other} is not supported for {op}")),
    }
}

pub(super) fn parse_op(
    node: &NodeProto,
    attrs: &Attributes,
    inputs: &[Option<usize>],
    consts: &HashMap<usize, tensor::Constant>,
    opset: i64,
    device: &Device,
) -> Result<Op, String> {
    let need = |n: usize| -> Result<(), String> {
        if inputs.len() >= n && inputs.iter().take(n).all(|i| i.is_some()) {
            Ok(())
        } else {
            Err(format!(
                "needs {n} input(s), has {}",
                inputs.iter().filter(|i| i.is_some()).count()
            ))
        }
    };
    need(1)?;
    let float = |u: Unary| Op::Elementwise(Elementwise::Float(u));
    Ok(match node.op_type.as_str() {
        "Identity" | "Dropout" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("a Dropout mask output is not supported".into());
            }
            Op::Identity
        }
        "Abs" => Op::Elementwise(Elementwise::Abs),
        "Ceil" => Op::Elementwise(Elementwise::Ceil),
        "Floor" => Op::Elementwise(Elementwise::Floor),
        "Neg" => Op::Elementwise(Elementwise::Neg),
        "Not" => Op::Elementwise(Elementwise::Not),
        "Erf" => float(Unary::Erf),
        "Exp" => float(Unary::Exp),
        "Log" => float(Unary::Log),
        "Reciprocal" => float(Unary::Recip),
        "Relu" => float(Unary::Clamp {
            lo: 0.0,
            hi: f32::INFINITY,
        }),
        "Sigmoid" => float(Unary::Sigmoid),
        "Sqrt" => float(Unary::Sqrt),
        "Tanh" => float(Unary::Tanh),
        "LeakyRelu" => float(Unary::LeakyRelu(attrs.float("alpha").unwrap_or(0.01))),
        "HardSigmoid" => float(Unary::HardSigmoid {
            alpha: attrs.float("alpha").unwrap_or(0.2),
            beta: attrs.float("beta").unwrap_or(0.5),
        }),
        "HardSwish" => float(Unary::HardSwish),
        "Gelu" => match attrs.string("approximate").as_deref().unwrap_or("none") {
            "none" => float(Unary::GeluErf),
            "tanh" => float(Unary::GeluTanh),
            other => return Err(format!("attribute approximate = {other} is not supported")),
        },
        "Clip" => {
            let bound = |i: usize, attr: &str, default: f32| -> Result<f32, String> {
                if opset < 11 {
                    return Ok(attrs.float(attr).unwrap_or(default));
                }
                match inputs.get(i).copied().flatten() {
                    None => Ok(default),
                    Some(_) => const_input(inputs, i, consts)
                        .and_then(|c| c.floats().first().copied())
                        .ok_or_else(|| format!("input {i} (a bound) must be a constant")),
                }
            };
            float(Unary::Clamp {
                lo: bound(1, "min", f32::NEG_INFINITY)?,
                hi: bound(2, "max", f32::INFINITY)?,
            })
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual"
        | "And" | "Or" | "Mod" => {
            need(2)?;
            Op::Binary(match node.op_type.as_str() {
                "Add" => BinaryOp::Add,
                "Sub" => BinaryOp::Sub,
                "Mul" => BinaryOp::Mul,
                "Div" => BinaryOp::Div,
                "Pow" => BinaryOp::Pow,
                "Equal" => BinaryOp::Equal,
                "Less" => BinaryOp::Less,
                "LessOrEqual" => BinaryOp::LessOrEqual,
                "Greater" => BinaryOp::Greater,
                "GreaterOrEqual" => BinaryOp::GreaterOrEqual,
                "And" => BinaryOp::And,
                "Or" => BinaryOp::Or,
                _ => BinaryOp::Mod {
                    fmod: attrs.int("fmod", 0) != 0,
                },
            })
        }
        "Sum" => Op::Variadic(BinaryOp::Add),
        "Max" => Op::Variadic(BinaryOp::Max),
        "Min" => Op::Variadic(BinaryOp::Min),
        "Softmax" | "LogSoftmax" => Op::Softmax {
            axis: attrs.int("axis", if opset < 13 { 1 } else { -1 }),
            log: node.op_type == "LogSoftmax",
            coerce_2d: opset < 13,
        },
        "Where" => {
            need(3)?;
            Op::Where
        }
        "Conv" => conv(attrs, inputs, consts, device)?,
        "BatchNormalization" => {
            need(5)?;
            if attrs.int("training_mode", 0) != 0 || node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("training mode is not supported (export the model in eval mode)".into());
            }
            let p = |i: usize| {
                const_input(inputs, i, consts)
                    .map(|c| c.floats())
                    .ok_or_else(|| format!("input {i} (a parameter) must be a constant"))
            };
            let (gamma, beta, mean, var) = (p(1)?, p(2)?, p(3)?, p(4)?);
            let c = gamma.len();
            if [beta.len(), mean.len(), var.len()].iter().any(|&n| n != c) {
                return Err("its parameters differ in length".into());
            }
            let eps = attrs.float("epsilon").unwrap_or(1e-5) as f64;
            let scale: Vec<f32> = (0..c)
                .map(|i| (gamma[i] as f64 / (var[i] as f64 + eps).sqrt()) as f32)
                .collect();
            let shift: Vec<f32> = (0..c)
                .map(|i| (beta[i] as f64 - mean[i] as f64 * scale[i] as f64) as f32)
                .collect();
            let by_rank = (2..=4)
                .map(|rank| {
                    let mut dims = vec![c];
                    dims.resize(rank - 1, 1);
                    Ok((held(scale.clone(), &dims, device)?, held(shift.clone(), &dims, device)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Op::BatchNorm(Box::new(BatchNorm {
                scale,
                shift,
                by_rank,
                params: [
                    tensor_of(gamma, &[c], device)?,
                    tensor_of(beta, &[c], device)?,
                    tensor_of(mean, &[c], device)?,
                    tensor_of(var, &[c], device)?,
                ],
                eps,
            }))
        }
        "LayerNormalization" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("its mean and inverse-deviation outputs are not supported".into());
            }
            Op::LayerNorm {
                axis: attrs.int("axis", -1),
                eps: attrs.float("epsilon").unwrap_or(1e-5) as f64,
            }
        }
        "MaxPool" => {
            if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                return Err("an Indices output is not supported".into());
            }
            let valid = explicit_pads_only(attrs, "MaxPool")?;
            if attrs.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return Err("attribute dilations ≠ 1 is not supported".into());
            }
            if attrs.int("storage_order", 0) != 0 {
                return Err("attribute storage_order = 1 is not supported".into());
            }
            let k = attrs.ints("kernel_shape").ok_or("attribute kernel_shape is missing")?;
            if k.len() != 2 {
                return Err(format!("kernel_shape {k:?}: only 2-D pooling is supported"));
            }
            let kernel = uniform(&k, "kernel_shape")?;
            let stride = match attrs.ints("strides") {
                Some(s) => uniform(&s, "strides")?,
                None => 1,
            };
            let pad = match attrs.ints("pads") {
                Some(p) if !valid => uniform(&p, "pads")?,
                _ => 0,
            };
            if kernel == 0 || stride == 0 || 2 * pad > kernel {
                return Err(format!(
                    "kernel {kernel}, stride {stride}, pad {pad} is not a valid pooling window"
                ));
            }
            Op::MaxPool(MaxPool2d {
                kernel,
                stride,
                pad,
                ceil: attrs.int("ceil_mode", 0) != 0,
            })
        }
        "AveragePool" => {
            let k = attrs.ints("kernel_shape").ok_or("attribute kernel_shape is missing")?;
            let [kh, kw] = k[..] else {
                return Err(format!("kernel_shape {k:?}: only 2-D pooling is supported"));
            };
            let valid = explicit_pads_only(attrs, "AveragePool")?;
            if attrs.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                return Err("attribute dilations ≠ 1 is not supported".into());
            }
            let s = attrs.ints("strides").unwrap_or_else(|| vec![1, 1]);
            let p = match attrs.ints("pads") {
                Some(p) if !valid => p,
                _ => vec![0; 4],
            };
            let us = |v: i64| usize::try_from(v).ok().filter(|&v| v < 1 << 20);
            let (Some(kh), Some(kw)) = (us(kh), us(kw)) else {
                return Err(format!("kernel_shape {k:?}"));
            };
            let stride = match s[..] {
                [a, b] => [us(a), us(b)],
                _ => [None, None],
            };
            let pads: Vec<Option<usize>> = p.iter().map(|&v| us(v)).collect();
            let ([Some(sh), Some(sw)], [Some(pt), Some(pl), Some(pb), Some(pr)]) = (stride, &pads[..]) else {
                return Err(format!("strides {s:?}, pads {p:?}"));
            };
            if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
                return Err(format!("kernel_shape {k:?}, strides {s:?}"));
            }
            Op::AveragePool(AvgPool2d {
                kernel: [kh, kw],
                stride: [sh, sw],
                pads: [*pt, *pl, *pb, *pr],
                count_include_pad: attrs.int("count_include_pad", 0) != 0,
                ceil: attrs.int("ceil_mode", 0) != 0,
            })
        }
        "GlobalAveragePool" => Op::GlobalPool { max: false },
        "GlobalMaxPool" => Op::GlobalPool { max: true },
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => Op::Reduce {
            kind: match node.op_type.as_str() {
                "ReduceMean" => Reduction::Mean,
                "ReduceSum" => Reduction::Sum,
                "ReduceMax" => Reduction::Max,
                _ => Reduction::Min,
            },
            axes: attrs.ints("axes"),
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
                alpha: attrs.float("alpha").unwrap_or(1.0),
                beta: attrs.float("beta").unwrap_or(1.0),
                trans_a: attrs.int("transA", 0) != 0,
                trans_b: attrs.int("transB", 0) != 0,
            }
        }
        "Transpose" => Op::Transpose(
            attrs
                .ints("perm")
                .map(|p| {
                    let perm: Option<Vec<usize>> = p.iter().map(|&v| usize::try_from(v).ok()).collect();
                    let mut sorted = perm.clone().unwrap_or_default();
                    sorted.sort();
                    match perm {
                        Some(perm) if sorted.iter().enumerate().all(|(i, &v)| i == v) => Ok(perm),
                        _ => Err(format!("attribute perm = {p:?} is not a permutation")),
                    }
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
        "Squeeze" => Op::Squeeze(attrs.ints("axes")),
        "Unsqueeze" => Op::Unsqueeze(attrs.ints("axes")),
        "Concat" => Op::Concat(attrs.int("axis", 0)),
        "Split" => Op::Split {
            axis: attrs.int("axis", 0),
            split: attrs.ints("split"),
            num_outputs: attrs
                .get("num_outputs")
                .and_then(|a| usize::try_from(a.i).ok())
                .unwrap_or(node.output.len())
                .max(1),
        },
        "Slice" => {
            if opset < 10 {
                return Err("Slice of opset < 10 (with attributes) is not supported".into());
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
                other => return Err(format!("attribute mode = {other} is not supported")),
            },
            pads: if opset < 11 { attrs.ints("pads") } else { None },
            value: attrs.float("value").unwrap_or(0.0),
        },
        "ConstantOfShape" => Op::ConstantOfShape(match attrs.get("value").and_then(|a| a.t.as_ref()) {
            Some(t) => decode_tensor(t)?,
            None => tensor::Constant::Float {
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
                return Err(format!("attribute to = {to} (an ONNX data type) is not supported"));
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
                return Err("attribute reduction is not supported".into());
            }
            Op::ScatterND
        }
        other => return Err(format!("operator {other} is not supported")),
    })
}

fn conv(
    attrs: &Attributes,
    inputs: &[Option<usize>],
    consts: &HashMap<usize, tensor::Constant>,
    device: &Device,
) -> Result<Op, String> {
    let w = const_input(inputs, 1, consts).ok_or("its weights (input 1) must be a constant")?;
    let [c_out, c_in_per_group, kh, kw] = w.dims()[..] else {
        return Err(format!(
            "weights of shape {:?}: only 2-D convolutions are supported",
            w.dims()
        ));
    };
    let groups = usize::try_from(attrs.int("group", 1)).map_err(|_| "attribute group is negative".to_string())?;
    if w.dims().contains(&0) {
        return Err(format!("weights of shape {:?} have a dimension of size 0", w.dims()));
    }
    if groups == 0 || c_out % groups != 0 {
        return Err(format!(
            "weights of shape {:?} do not split into {groups} groups (attribute group)",
            w.dims()
        ));
    }
    if let Some(k) = attrs.ints("kernel_shape") {
        if k != [kh as i64, kw as i64] {
            return Err(format!(
                "attribute kernel_shape = {k:?} disagrees with weights {:?}",
                w.dims()
            ));
        }
    }
    let stride = uniform(&attrs.ints("strides").unwrap_or_else(|| vec![1, 1]), "strides")?;
    if stride == 0 {
        return Err("attribute strides = 0".into());
    }
    let dilation = uniform(&attrs.ints("dilations").unwrap_or_else(|| vec![1, 1]), "dilations")?;
    if dilation == 0 || dilation > 64 {
        return Err(format!("attribute dilations = {dilation} is not supported"));
    }
    // A dilated kernel is the ordinary kernel with dilation − 1 zeros between its taps:
    // the same sums, the same gradients, on the same kernels (dilation is rare in
    // classifiers, so the wasted multiplications by zero do not matter).
    let (weights, kh, kw) = if dilation == 1 {
        (w.floats(), kh, kw)
    } else {
        let (dh, dw) = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1);
        let src = w.floats();
        let mut out = vec![0f32; c_out * c_in_per_group * dh * dw];
        for plane in 0..c_out * c_in_per_group {
            for y in 0..kh {
                for x in 0..kw {
                    out[(plane * dh + y * dilation) * dw + x * dilation] = src[(plane * kh + y) * kw + x];
                }
            }
        }
        (out, dh, dw)
    };
    let weight = tensor_of(weights, &[c_out, c_in_per_group, kh, kw], device)?;
    let bias = match const_input(inputs, 2, consts) {
        Some(b) if b.dims().iter().product::<usize>() == c_out => Some(tensor_of(b.floats(), &[c_out], device)?),
        Some(b) => {
            return Err(format!(
                "bias of {} values for {c_out} output channels",
                b.floats().len()
            ))
        }
        None if inputs.get(2).copied().flatten().is_some() => {
            return Err("its bias (input 2) must be a constant".into())
        }
        None => None,
    };
    let auto_pad = attrs.string("auto_pad").unwrap_or_default();
    let padding = match auto_pad.as_str() {
        "" | "NOTSET" => {
            let pads = attrs.ints("pads").unwrap_or_else(|| vec![0; 4]);
            let p: Vec<usize> = pads
                .iter()
                .map(|&v| usize::try_from(v).ok().filter(|&v| v < 1 << 16))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("attribute pads = {pads:?} is negative or too large"))?;
            match p[..] {
                [t, l, b, r] if t == l && t == b && t == r => Padding::Symmetric(t),
                [top, left, bottom, right] => Padding::Explicit {
                    top,
                    bottom,
                    left,
                    right,
                },
                _ => return Err(format!("attribute pads = {pads:?}: expected 4 values")),
            }
        }
        "VALID" => Padding::Symmetric(0),
        "SAME_UPPER" => Padding::TensorFlowSame,
        other => return Err(format!("attribute auto_pad = {other} is not supported")),
    };
    let conv = Conv::new(weight, bias, stride, padding, groups).map_err(|e| error_line(&e))?;
    Ok(Op::Conv(conv, Activation::Identity))
}
