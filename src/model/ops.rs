//! Building blocks whose candle autograd is correct.
//!
//! Candle's own `max_pool2d` backward is wrong (gradient scaled by 1/k², and it refuses
//! kernel ≠ stride; huggingface/candle#1851, #1593), so max-pooling here is our own op. Grouped convolution in
//! candle splits the input into one convolution per group; for depthwise layers with
//! hundreds of channels that is slow, so depthwise convolution is a sum of k² shifted,
//! per-channel-scaled views instead.

use std::sync::Arc;

use candle_core::{CpuStorage, DType, IndexOp, Layout, Result, Tensor, D};

use super::conv::{ConvKernel, ConvOp, Pads};

/// Pads the two spatial dimensions of an NCHW tensor with a constant.
pub fn pad2d(x: &Tensor, top: usize, bottom: usize, left: usize, right: usize, value: f32) -> Result<Tensor> {
    if value == 0.0 {
        return x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right);
    }
    let (n, c, h, w) = x.dims4()?;
    let mut x = x.clone();
    if top + bottom > 0 {
        let mut parts = Vec::with_capacity(3);
        if top > 0 {
            parts.push(Tensor::full(value, (n, c, top, w), x.device())?.to_dtype(x.dtype())?);
        }
        parts.push(x.clone());
        if bottom > 0 {
            parts.push(Tensor::full(value, (n, c, bottom, w), x.device())?.to_dtype(x.dtype())?);
        }
        x = Tensor::cat(&parts, 2)?;
    }
    let h = h + top + bottom;
    if left + right > 0 {
        let mut parts = Vec::with_capacity(3);
        if left > 0 {
            parts.push(Tensor::full(value, (n, c, h, left), x.device())?.to_dtype(x.dtype())?);
        }
        parts.push(x.clone());
        if right > 0 {
            parts.push(Tensor::full(value, (n, c, h, right), x.device())?.to_dtype(x.dtype())?);
        }
        x = Tensor::cat(&parts, 3)?;
    }
    Ok(x)
}

/// The view `x[:, :, off::stride][:count]` along `dim` (2 or 3), built from a reshape so
/// that autograd sees only narrow/reshape/index ops. `x`'s size along `dim` must be at
/// least `off + (count - 1) * stride + 1`.
fn strided(x: &Tensor, dim: usize, off: usize, stride: usize, count: usize) -> Result<Tensor> {
    if stride == 1 {
        return x.narrow(dim, off, count);
    }
    let size = x.dim(dim)?;
    let needed = count * stride;
    // Take `count * stride` elements starting at `off`, padding at the end if the last
    // window's tail runs past the edge (those padded elements are never selected).
    let avail = size - off;
    let x = if avail >= needed {
        x.narrow(dim, off, needed)?
    } else {
        x.narrow(dim, off, avail)?.pad_with_zeros(dim, 0, needed - avail)?
    };
    let mut shape = x.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    let x = x.reshape(shape)?;
    // Select phase 0 of each group of `stride`.
    x.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Output size of a pooling or convolution window along one axis.
/// The f32 elements a CPU custom op reads: its input must be contiguous; `op` names it
/// in the error.
pub(crate) fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

pub fn window_out(size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> usize {
    let span = size + 2 * pad - kernel;
    let mut out = if ceil { span.div_ceil(stride) } else { span / stride } + 1;
    // PyTorch: with ceil_mode the last window must start inside the input or left padding.
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    out
}

/// Max pooling with PyTorch semantics (`padding`, `ceil_mode`) in value and gradient. On
/// the CPU this is the [`MaxPool2d`](super::maxpool::MaxPool2d) custom op; elsewhere a
/// composite of `maximum` ops (exact gradients, but split between tied maxima).
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        return x.contiguous()?.apply_op1(super::maxpool::MaxPool2d {
            kernel,
            stride,
            pad,
            ceil,
        });
    }
    max_pool2d_composite(x, kernel, stride, pad, ceil)
}

/// Max pooling from strided views and `maximum`, for devices without the custom op.
pub fn max_pool2d_composite(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let oh = window_out(h, kernel, stride, pad, ceil);
    let ow = window_out(w, kernel, stride, pad, ceil);
    // Pad with -inf so padding never wins (or ties) a max.
    let extra_h = ((oh - 1) * stride + kernel).saturating_sub(h + pad);
    let extra_w = ((ow - 1) * stride + kernel).saturating_sub(w + pad);
    let xp = if pad + extra_h + extra_w > 0 {
        pad2d(x, pad, extra_h, pad, extra_w, f32::NEG_INFINITY)?
    } else {
        x.clone()
    };
    let mut rows: Option<Tensor> = None;
    for dy in 0..kernel {
        let v = strided(&xp, 2, dy, stride, oh)?;
        rows = Some(match rows {
            None => v,
            Some(r) => r.maximum(&v)?,
        });
    }
    let rows = rows.expect("kernel >= 1");
    let mut out: Option<Tensor> = None;
    for dx in 0..kernel {
        let v = strided(&rows, 3, dx, stride, ow)?;
        out = Some(match out {
            None => v,
            Some(o) => o.maximum(&v)?,
        });
    }
    Ok(out.expect("kernel >= 1"))
}

/// Depthwise convolution (groups = channels) of an already padded input.
/// `weight` is [C, 1, k, k]; `bias` is [C].
pub fn depthwise_conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (wc, _, kh, kw) = weight.dims4()?;
    if wc != c {
        candle_core::bail!("depthwise weight has {wc} channels, input has {c}");
    }
    let oh = (h - kh) / stride + 1;
    let ow = (w - kw) / stride + 1;
    let mut acc: Option<Tensor> = None;
    for dy in 0..kh {
        let rows = strided(x, 2, dy, stride, oh)?;
        for dx in 0..kw {
            let view = strided(&rows, 3, dx, stride, ow)?;
            let k = weight.i((.., 0, dy, dx))?.reshape((1, c, 1, 1))?;
            let term = view.broadcast_mul(&k)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    let out = acc.expect("kernel >= 1");
    match bias {
        Some(b) => out.broadcast_add(&b.reshape((1, c, 1, 1))?),
        None => Ok(out),
    }
}

/// Mean over the two spatial dimensions: [N, C, H, W] -> [N, C].
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

/// Zero padding of a convolution. PyTorch convolutions pad symmetrically; TensorFlow's
/// "SAME" padding (EfficientNet-Lite) puts the odd extra row/column at the bottom/right
/// and depends on the input size, so it is computed per forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Symmetric(usize),
    TensorFlowSame,
    /// Fixed amounts per side, as ONNX graphs may give them (e.g. tf2onnx's "SAME").
    Explicit {
        top: usize,
        bottom: usize,
        left: usize,
        right: usize,
    },
}

impl Padding {
    /// (top, bottom, left, right) padding of an `h`×`w` input for a `kh`×`kw` kernel.
    fn amounts(self, h: usize, w: usize, kh: usize, kw: usize, stride: usize) -> Pads {
        let same = |size: usize, kernel: usize| {
            let total = ((size.div_ceil(stride) - 1) * stride + kernel).saturating_sub(size);
            (total / 2, total - total / 2)
        };
        let ((top, bottom), (left, right)) = match self {
            Padding::Symmetric(p) => ((p, p), (p, p)),
            Padding::TensorFlowSame => (same(h, kh), same(w, kw)),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => ((top, bottom), (left, right)),
        };
        Pads {
            top,
            bottom,
            left,
            right,
        }
    }
}

/// A convolution with its bias; inference BatchNorm, when present, is folded in at load
/// time (w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β), so the forward pass is one op.
/// On the CPU it runs as [`ConvOp`](super::conv::ConvOp) (input-gradient-only backward);
/// elsewhere through candle's conv2d.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: Padding,
    groups: usize,
    kernel: Option<Arc<ConvKernel>>,
}

impl Conv {
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: Padding, groups: usize) -> Result<Self> {
        let kernel = if weight.device().is_cpu() {
            let (c_out, c_in_per_group, kh, kw) = weight.dims4()?;
            Some(Arc::new(ConvKernel {
                weight: weight.flatten_all()?.to_vec1::<f32>()?,
                bias: bias.as_ref().map(|b| b.to_vec1::<f32>()).transpose()?,
                c_out,
                c_in: c_in_per_group * groups,
                kh,
                kw,
                stride,
                groups,
                winograd: Default::default(),
                winograd_transposed: Default::default(),
            }))
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            stride,
            padding,
            groups,
            kernel,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The CPU op for an input of `h`×`w` (its padding depends on the size for "SAME").
    pub(crate) fn cpu_op(&self, h: usize, w: usize) -> Option<ConvOp> {
        let kernel = self.kernel.as_ref()?;
        Some(ConvOp {
            kernel: kernel.clone(),
            pads: self.padding.amounts(h, w, kernel.kh, kernel.kw, self.stride),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c_out, c_in_per_group, kh, kw) = self.weight.dims4()?;
        let (_, _, h, w) = x.dims4()?;
        let Pads {
            top,
            bottom,
            left,
            right,
        } = self.padding.amounts(h, w, kh, kw, self.stride);
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            if let Some(op) = self.cpu_op(h, w) {
                return x.contiguous()?.apply_op1(op);
            }
        }
        let depthwise = self.groups > 1 && c_in_per_group == 1 && self.groups == c_out;
        let symmetric = top == bottom && left == right && top == left;
        if depthwise || !symmetric {
            let x = if top + bottom + left + right > 0 {
                pad2d(x, top, bottom, left, right, 0.0)?
            } else {
                x.clone()
            };
            if depthwise {
                return depthwise_conv2d(&x, &self.weight, self.bias.as_ref(), self.stride);
            }
            return self.add_bias(x.conv2d(&self.weight, 0, self.stride, 1, self.groups)?);
        }
        self.add_bias(x.conv2d(&self.weight, top, self.stride, 1, self.groups)?)
    }

    fn add_bias(&self, y: Tensor) -> Result<Tensor> {
        let c_out = self.weight.dim(0)?;
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, c_out, 1, 1))?),
            None => Ok(y),
        }
    }

    /// Folds an inference BatchNorm (`gamma`, `beta`, running mean and variance) into this
    /// convolution.
    pub fn fold_batch_norm(self, gamma: &Tensor, beta: &Tensor, mean: &Tensor, var: &Tensor, eps: f64) -> Result<Self> {
        let c_out = self.weight.dim(0)?;
        // Fold in f64 so the folded weights are as close to the unfolded maths as f32 allows.
        let scale = (gamma.to_dtype(DType::F64)? / (var.to_dtype(DType::F64)? + eps)?.sqrt()?)?;
        let w = self
            .weight
            .to_dtype(DType::F64)?
            .broadcast_mul(&scale.reshape((c_out, 1, 1, 1))?)?;
        let b0 = match &self.bias {
            Some(b) => b.to_dtype(DType::F64)?,
            None => Tensor::zeros(c_out, DType::F64, gamma.device())?,
        };
        let b = ((b0 - mean.to_dtype(DType::F64)?)? * &scale)?.add(&beta.to_dtype(DType::F64)?)?;
        Conv::new(
            w.to_dtype(DType::F32)?,
            Some(b.to_dtype(DType::F32)?),
            self.stride,
            self.padding,
            self.groups,
        )
    }
}

/// The pointwise nonlinearity after a layer. Both are clamps, y = clamp(x, lo, hi), with
/// PyTorch's derivative [lo < x < hi] (see [`super::activation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    Relu6,
}

impl Activation {
    /// (lo, hi) of the clamp, or `None` for the identity.
    pub fn bounds(self) -> Option<(f32, f32)> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::Relu6 => Some((0.0, 6.0)),
        }
    }

    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => super::activation::relu(x),
            Activation::Relu6 => super::activation::relu6(x),
        }
    }
}

/// A fully connected layer y = x·Wᵀ + b, with a CPU copy of its weights for the tape.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    pub(crate) cpu: Arc<LinearKernel>,
}

/// W [out, in] row-major and b [out].
#[derive(Debug)]
pub(crate) struct LinearKernel {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub n_out: usize,
    pub n_in: usize,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        let (n_out, n_in) = weight.dims2()?;
        let cpu = Arc::new(LinearKernel {
            weight: weight.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
            bias: bias.to_dtype(DType::F32)?.to_vec1()?,
            n_out,
            n_in,
        });
        Ok(Self { weight, bias, cpu })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}
