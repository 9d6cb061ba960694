//! Layers torchvision's families share, read from a state dict. Channel counts, kernel
//! sizes, groups and head sizes come from the tensors' shapes, so a fine-tuned head, a
//! ResNeXt's groups or a reduced test model load the same way as the published weights;
//! what shapes cannot tell (strides, activations, eps) each family states.

use candle_core::{Result, Tensor};

use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{AvgPool2d, Binary, Graph, Reduction, Unary};
use crate::net::layers::{Activation, Constant, Conv, Linear, MaxPool2d, Padding};

/// The 3×3, stride-2, pad-1 max pool after the stem of ResNet, DenseNet and ShuffleNet.
pub const STEM_MAX_POOL: MaxPool2d = MaxPool2d {
    kernel: 3,
    stride: 2,
    pad: 1,
    ceil: false,
};

/// torchvision's BatchNorm eps (EfficientNet V2 uses 1e-3).
pub const BN_EPS: f64 = 1e-5;

/// The shape of tensor `name`; its absence is an error naming it, since the layers after it
/// cannot be sized without it.
pub fn shape(w: &WeightStore, name: &str, family: &str) -> std::result::Result<Vec<usize>, ModelError> {
    w.shape(name)
        .map(<[usize]>::to_vec)
        .ok_or_else(|| ModelError::TensorMismatch {
            path: w.path().to_path_buf(),
            architecture: family.to_string(),
            missing: vec![name.to_string()],
            unexpected: Vec::new(),
        })
}

/// A shape error for `name`: what the family expected and what the file holds.
pub fn shape_error(w: &WeightStore, name: &str, expected: &[usize], found: &[usize]) -> ModelError {
    ModelError::Shape {
        path: w.path().to_path_buf(),
        name: name.to_string(),
        expected: expected.to_vec(),
        found: found.to_vec(),
    }
}

/// Zero padding (k − 1)/2 per axis: torchvision's `padding=k // 2`, and Inception's (0, 3)
/// and (3, 0) for its 1×7 and 7×1 kernels.
pub fn same_padding(kh: usize, kw: usize) -> Padding {
    let (ph, pw) = ((kh - 1) / 2, (kw - 1) / 2);
    if ph == pw {
        Padding::Symmetric(ph)
    } else {
        Padding::Explicit {
            top: ph,
            bottom: ph,
            left: pw,
            right: pw,
        }
    }
}

/// The convolution `prefix` (`.weight`, and `.bias` if present) reading `c_in` channels:
/// output channels, kernel and groups (`c_in` / the weight's input channels) from the
/// weight's shape. `padding` `None` is [`same_padding`].
pub fn conv(
    w: &mut WeightStore,
    prefix: &str,
    c_in: usize,
    stride: usize,
    padding: Option<Padding>,
) -> std::result::Result<Conv, ModelError> {
    let name = format!("{prefix}.weight");
    let dims = shape(w, &name, "torchvision")?;
    let [c_out, per_group, kh, kw] = dims[..] else {
        return Err(shape_error(w, &name, &[0, c_in, 0, 0], &dims));
    };
    if per_group == 0 || !c_in.is_multiple_of(per_group) || !c_out.is_multiple_of(c_in / per_group) {
        return Err(shape_error(w, &name, &[c_out, c_in, kh, kw], &dims));
    }
    let groups = c_in / per_group;
    let weight = w.get(&name, Some(&dims))?;
    let bias_name = format!("{prefix}.bias");
    let bias = if w.contains(&bias_name) {
        Some(w.get(&bias_name, Some(&[c_out]))?)
    } else {
        None
    };
    let padding = padding.unwrap_or_else(|| same_padding(kh, kw));
    Conv::new(weight, bias, stride, padding, groups).map_err(|e| ModelError::candle(w.path(), e))
}

/// [`conv`] with the BatchNorm at `bn` folded in.
pub fn conv_bn(
    w: &mut WeightStore,
    prefix: &str,
    bn: &str,
    c_in: usize,
    stride: usize,
    padding: Option<Padding>,
    eps: f64,
) -> std::result::Result<Conv, ModelError> {
    let c = conv(w, prefix, c_in, stride, padding)?;
    w.fold_bn(c, bn, eps)
}

/// Output channels of a convolution.
pub fn out_channels(c: &Conv) -> usize {
    c.weight().dims()[0]
}

/// The fully connected layer `prefix` ([out, in] weight and [out] bias), sized by its weight.
pub fn linear(w: &mut WeightStore, prefix: &str) -> std::result::Result<Linear, ModelError> {
    let name = format!("{prefix}.weight");
    let dims = shape(w, &name, "torchvision")?;
    if dims.len() != 2 {
        return Err(shape_error(w, &name, &[0, 0], &dims));
    }
    let weight = w.get(&name, Some(&dims))?;
    let bias = w.get(&format!("{prefix}.bias"), Some(&dims[..1]))?;
    Linear::new(weight, bias).map_err(|e| ModelError::candle(w.path(), e))
}

/// (out, in) features of a fully connected layer.
pub fn linear_dims(l: &Linear) -> (usize, usize) {
    (l.cpu.n_out, l.cpu.n_in)
}

fn constant(w: &WeightStore, t: Tensor) -> std::result::Result<Constant, ModelError> {
    Constant::new(t).map_err(|e| ModelError::candle(w.path(), e))
}

/// A per-channel scale and shift of an NCHW value: a BatchNorm that cannot be folded into
/// a convolution (DenseNet's and ShuffleNet's pre-activation norms).
#[derive(Debug, Clone)]
pub struct ChannelAffine {
    scale: Constant,
    shift: Constant,
}

impl ChannelAffine {
    /// Inference BatchNorm `prefix` over `c` channels: γ/√(σ²+ε) and β − μγ/√(σ²+ε).
    pub fn batch_norm(w: &mut WeightStore, prefix: &str, c: usize, eps: f64) -> std::result::Result<Self, ModelError> {
        let get = |w: &mut WeightStore, what: &str| w.get(&format!("{prefix}.{what}"), Some(&[c]));
        let (gamma, beta, mean, var) = (
            get(w, "weight")?,
            get(w, "bias")?,
            get(w, "running_mean")?,
            get(w, "running_var")?,
        );
        let make = || -> Result<(Tensor, Tensor)> {
            let scale = gamma.div(&(var + eps)?.sqrt()?)?;
            let shift = (beta - mean.mul(&scale)?)?;
            Ok((scale.reshape((1, c, 1, 1))?, shift.reshape((1, c, 1, 1))?))
        };
        let (scale, shift) = make().map_err(|e| ModelError::candle(w.path(), e))?;
        Ok(Self {
            scale: constant(w, scale)?,
            shift: constant(w, shift)?,
        })
    }

    pub fn apply<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let scale = g.constant(&self.scale)?;
        let shift = g.constant(&self.shift)?;
        let y = g.binary(x, &scale, Binary::Mul)?;
        g.binary(&y, &shift, Binary::Add)
    }
}

/// y = x·Wᵀ + b over the last axis of a value of any rank (tokens [N, T, D]).
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Constant,
    bias: Option<Constant>,
}

impl Dense {
    /// `prefix.weight` [out, in] and `prefix.bias` [out] if present.
    pub fn load(w: &mut WeightStore, prefix: &str) -> std::result::Result<Self, ModelError> {
        let name = format!("{prefix}.weight");
        let dims = shape(w, &name, "torchvision")?;
        if dims.len() != 2 {
            return Err(shape_error(w, &name, &[0, 0], &dims));
        }
        let weight = w.get(&name, Some(&dims))?;
        let bias_name = format!("{prefix}.bias");
        let bias = if w.contains(&bias_name) {
            Some(w.get(&bias_name, Some(&dims[..1]))?)
        } else {
            None
        };
        Self::from_tensors(w, weight, bias)
    }

    /// From tensors already taken (e.g. rows of a fused in-projection).
    pub fn from_tensors(
        w: &WeightStore,
        weight: Tensor,
        bias: Option<Tensor>,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            weight: constant(w, weight)?,
            bias: bias.map(|b| constant(w, b)).transpose()?,
        })
    }

    /// (out, in) features.
    pub fn dims(&self) -> (usize, usize) {
        let d = self.weight.dims();
        (d[0], d[1])
    }

    pub fn apply<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let weight = g.constant(&self.weight)?;
        let y = g.matmul(x, &weight, true)?;
        match &self.bias {
            Some(b) => {
                let b = g.constant(b)?;
                g.binary(&y, &b, Binary::Add)
            }
            None => Ok(y),
        }
    }
}

/// LayerNorm over the last axis with its affine weight and bias.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Constant,
    bias: Constant,
    eps: f64,
}

impl LayerNorm {
    /// `prefix.weight` and `prefix.bias`, both [d].
    pub fn load(w: &mut WeightStore, prefix: &str, eps: f64) -> std::result::Result<Self, ModelError> {
        let name = format!("{prefix}.weight");
        let dims = shape(w, &name, "torchvision")?;
        if dims.len() != 1 {
            return Err(shape_error(w, &name, &[0], &dims));
        }
        let weight = w.get(&name, Some(&dims))?;
        let bias = w.get(&format!("{prefix}.bias"), Some(&dims))?;
        Ok(Self {
            weight: constant(w, weight)?,
            bias: constant(w, bias)?,
            eps,
        })
    }

    pub fn dim(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Normalises the last axis (channels-last values).
    pub fn apply<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let rank = g.dims(x).len();
        let y = g.layer_norm(x, rank - 1, self.eps)?;
        let weight = g.constant(&self.weight)?;
        let bias = g.constant(&self.bias)?;
        let y = g.binary(&y, &weight, Binary::Mul)?;
        g.binary(&y, &bias, Binary::Add)
    }

    /// Normalises the channel axis of an NCHW value (torchvision's `LayerNorm2d`).
    pub fn apply_channels_first<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = g.permute(x, &[0, 2, 3, 1])?;
        let y = self.apply(g, &y)?;
        g.permute(&y, &[0, 3, 1, 2])
    }
}

/// The activations torchvision's families use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Identity,
    Relu,
    Relu6,
    /// x·σ(x) (EfficientNet, RegNet's squeeze-excite gate uses [`Act::Sigmoid`]).
    Silu,
    HardSwish,
    /// x·relu6(x + 3)/6's gate: relu6(x + 3)/6 (PyTorch's Hardsigmoid).
    HardSigmoid,
    Sigmoid,
    /// The exact (erf) GELU.
    Gelu,
}

/// `act(x)`.
pub fn act<G: Graph>(g: &mut G, x: &G::Value, a: Act) -> Result<G::Value> {
    match a {
        Act::Identity => Ok(x.clone()),
        Act::Relu => g.activation(x, Activation::Relu),
        Act::Relu6 => g.activation(x, Activation::Relu6),
        Act::Silu => g.unary(x, Unary::Silu),
        Act::HardSwish => g.unary(x, Unary::HardSwish),
        Act::HardSigmoid => g.unary(
            x,
            Unary::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
        ),
        Act::Sigmoid => g.unary(x, Unary::Sigmoid),
        Act::Gelu => g.unary(x, Unary::GeluErf),
    }
}

/// `act(conv(x))`, fused into the convolution where the kernel can (ReLU, ReLU6).
pub fn conv_act<G: Graph>(g: &mut G, x: &G::Value, c: &Conv, a: Act) -> Result<G::Value> {
    match a {
        Act::Identity => g.conv(x, c, Activation::Identity),
        Act::Relu => g.conv(x, c, Activation::Relu),
        Act::Relu6 => g.conv(x, c, Activation::Relu6),
        other => {
            let y = g.conv(x, c, Activation::Identity)?;
            act(g, &y, other)
        }
    }
}

/// torchvision's `SqueezeExcitation`: x · gate(fc2(act(fc1(mean over H, W of x)))), with
/// `fc1`/`fc2` 1×1 convolutions.
#[derive(Debug, Clone)]
pub struct SqueezeExcite {
    pub fc1: Conv,
    pub fc2: Conv,
    pub act: Act,
    pub gate: Act,
}

impl SqueezeExcite {
    /// `prefix.fc1` and `prefix.fc2` (torchvision's names) on `c` channels.
    pub fn load(
        w: &mut WeightStore,
        prefix: &str,
        c: usize,
        act: Act,
        gate: Act,
    ) -> std::result::Result<Self, ModelError> {
        let fc1 = conv(w, &format!("{prefix}.fc1"), c, 1, None)?;
        let fc2 = conv(w, &format!("{prefix}.fc2"), out_channels(&fc1), 1, None)?;
        if out_channels(&fc2) != c {
            let name = format!("{prefix}.fc2.weight");
            return Err(shape_error(
                w,
                &name,
                &[c, out_channels(&fc1), 1, 1],
                fc2.weight().dims(),
            ));
        }
        Ok(Self { fc1, fc2, act, gate })
    }

    pub fn apply<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let s = g.reduce(x, &[2, 3], Reduction::Mean)?;
        let s = conv_act(g, &s, &self.fc1, self.act)?;
        let s = conv_act(g, &s, &self.fc2, self.gate)?;
        g.binary(x, &s, Binary::Mul)
    }
}

/// PyTorch's `AdaptiveAvgPool2d((oh, ow))` of an NCHW value: bin i covers
/// ⌊i·H/oh⌋ .. ⌈(i+1)·H/oh⌉. One average pool when the bins are equal and disjoint; else
/// one mean per bin (VGG's 7×7 pool on inputs other than 224²).
pub fn adaptive_avg_pool<G: Graph>(g: &mut G, x: &G::Value, oh: usize, ow: usize) -> Result<G::Value> {
    let dims = g.dims(x);
    let (h, w) = (dims[2], dims[3]);
    if (h, w) == (oh, ow) {
        return Ok(x.clone());
    }
    if oh == 1 && ow == 1 {
        return g.reduce(x, &[2, 3], Reduction::Mean);
    }
    if h % oh == 0 && w % ow == 0 {
        let (kh, kw) = (h / oh, w / ow);
        return g.avg_pool(
            x,
            AvgPool2d {
                kernel: [kh, kw],
                stride: [kh, kw],
                pads: [0; 4],
                count_include_pad: true,
                ceil: false,
            },
        );
    }
    let bins = |size: usize, out: usize| -> Vec<(usize, usize)> {
        (0..out)
            .map(|i| (i * size / out, ((i + 1) * size).div_ceil(out)))
            .collect()
    };
    let mut rows = Vec::with_capacity(oh);
    for (r0, r1) in bins(h, oh) {
        let band = g.select(x, 2, &(r0..r1).collect::<Vec<_>>())?;
        let mut cells = Vec::with_capacity(ow);
        for (c0, c1) in bins(w, ow) {
            let cell = g.select(&band, 3, &(c0..c1).collect::<Vec<_>>())?;
            cells.push(g.reduce(&cell, &[2, 3], Reduction::Mean)?);
        }
        rows.push(g.concat(&cells, 3)?);
    }
    g.concat(&rows, 2)
}

/// [N, C, 1, 1] or [N, C, H, W] → [N, C·H·W] (torch.flatten(x, 1)).
pub fn flatten<G: Graph>(g: &mut G, x: &G::Value) -> Result<G::Value> {
    let dims = g.dims(x);
    let n = dims[0];
    let rest = dims[1..].iter().product();
    g.reshape(x, &[n, rest])
}

/// torchvision's GoogLeNet and Inception-v3 `transform_input`: their published weights
/// were trained on inputs normalised with mean 0.5 and std 0.5, and the model turns an
/// ImageNet-normalised input into that: x_c · (std_c / 0.5) + (mean_c − 0.5) / 0.5.
pub fn transform_input<G: Graph>(g: &mut G, x: &G::Value, scale: &Constant, shift: &Constant) -> Result<G::Value> {
    let s = g.constant(scale)?;
    let b = g.constant(shift)?;
    let y = g.binary(x, &s, Binary::Mul)?;
    g.binary(&y, &b, Binary::Add)
}

/// The constants of [`transform_input`], [1, 3, 1, 1] each, on the store's device.
pub fn transform_input_constants(w: &WeightStore) -> std::result::Result<(Constant, Constant), ModelError> {
    const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
    const STD: [f32; 3] = [0.229, 0.224, 0.225];
    let scale: Vec<f32> = STD.iter().map(|s| s / 0.5).collect();
    let shift: Vec<f32> = MEAN.iter().map(|m| (m - 0.5) / 0.5).collect();
    let make = |v: Vec<f32>| -> std::result::Result<Constant, ModelError> {
        let t = Tensor::from_vec(v, (1, 3, 1, 1), w.device()).map_err(|e| ModelError::candle(w.path(), e))?;
        constant(w, t)
    };
    Ok((make(scale)?, make(shift)?))
}
