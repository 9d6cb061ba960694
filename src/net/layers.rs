//! The layers our networks are described with: convolution (BatchNorm folded in),
//! activation, fully connected. Each holds candle tensors for the device-generic path and,
//! on the CPU, the plain buffers its hand-written kernel reads.

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Result, Tensor};

use super::composite::{depthwise_conv2d, pad2d};
use crate::kernels::activation;
use crate::kernels::conv::{ConvKernel, ConvOp};
use crate::kernels::geometry::Pads;
pub use crate::kernels::maxpool::MaxPool2d;

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

/// A convolution's geometry for one input size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvShape {
    pub c_out: usize,
    pub c_in: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub groups: usize,
    pub has_bias: bool,
    pub pads: Pads,
    pub out: (usize, usize),
}

/// A convolution with its bias; inference BatchNorm, when present, is folded in at load
/// time (w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β), so the forward pass is one op.
/// On the CPU it runs as [`ConvOp`] (input-gradient-only backward);
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

    /// The layer's geometry for an input of `h`×`w`, on any device (shapes only).
    pub(crate) fn shape(&self, h: usize, w: usize) -> Result<ConvShape> {
        let (c_out, c_in_per_group, kh, kw) = self.weight.dims4()?;
        let pads = self.padding.amounts(h, w, kh, kw, self.stride);
        let (ph, pw) = (h + pads.top + pads.bottom, w + pads.left + pads.right);
        if ph < kh || pw < kw {
            candle_core::bail!("conv2d: a {h}×{w} input is smaller than the layer's {kh}×{kw} kernel");
        }
        Ok(ConvShape {
            c_out,
            c_in: c_in_per_group * self.groups,
            kh,
            kw,
            stride: self.stride,
            groups: self.groups,
            has_bias: self.bias.is_some(),
            pads,
            out: ((ph - kh) / self.stride + 1, (pw - kw) / self.stride + 1),
        })
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
        let (_, _, h, w) = x.dims4()?;
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            if let Some(op) = self.cpu_op(h, w) {
                return x.contiguous()?.apply_op1(op);
            }
        }
        self.forward_composite(x)
    }

    /// The convolution through candle's own conv2d, as on devices without the CPU op (and
    /// on the CPU's device-generic path).
    pub fn forward_composite(&self, x: &Tensor) -> Result<Tensor> {
        let (c_out, c_in_per_group, kh, kw) = self.weight.dims4()?;
        let (_, _, h, w) = x.dims4()?;
        let Pads {
            top,
            bottom,
            left,
            right,
        } = self.padding.amounts(h, w, kh, kw, self.stride);
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
/// PyTorch's derivative [lo < x < hi] (see [`crate::kernels::activation`]).
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
            Activation::Relu => activation::relu(x),
            Activation::Relu6 => activation::relu6(x),
        }
    }

    /// [`Self::apply`] from candle's own ops only (the device-generic path).
    pub fn apply_composite(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => activation::clamp_composite(x, 0.0, f32::INFINITY),
            Activation::Relu6 => activation::clamp_composite(x, 0.0, 6.0),
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

/// A constant tensor of a network (a weight an operation reads, a mask), held both as a
/// candle tensor and, on the CPU, as a shared f32 buffer the tape reads without copying.
#[derive(Debug, Clone)]
pub struct Constant {
    tensor: Tensor,
    host: Option<Arc<Vec<f32>>>,
    /// The host elements with the last two axes swapped, made on first use and shared by
    /// every clone: a matrix product reads a weight matrix one way forward and the other
    /// way backward, and the GEMM is up to twice as fast on contiguous rows.
    transposed: Arc<OnceLock<Vec<f32>>>,
}

impl Constant {
    pub fn new(tensor: Tensor) -> Result<Self> {
        let host = if tensor.device().is_cpu() {
            Some(Arc::new(tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?))
        } else {
            None
        };
        Ok(Self {
            tensor,
            host,
            transposed: Arc::new(OnceLock::new()),
        })
    }

    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    pub fn dims(&self) -> &[usize] {
        self.tensor.dims()
    }

    /// The values on the host (CPU constants only).
    pub fn host(&self) -> Option<&Arc<Vec<f32>>> {
        self.host.as_ref()
    }

    /// The host values with the last two axes swapped (CPU constants of rank ≥ 2 only).
    pub fn host_transposed(&self) -> Option<&[f32]> {
        let host = self.host.as_ref()?;
        let dims = self.dims();
        let rank = dims.len();
        if rank < 2 {
            return None;
        }
        Some(self.transposed.get_or_init(|| {
            let (rows, cols) = (dims[rank - 2], dims[rank - 1]);
            let mut out = vec![0f32; host.len()];
            // In 32×32 tiles, so that both sides stay in cache.
            const TILE: usize = 32;
            for (src, dst) in host.chunks(rows * cols).zip(out.chunks_mut(rows * cols)) {
                for r0 in (0..rows).step_by(TILE) {
                    for c0 in (0..cols).step_by(TILE) {
                        for r in r0..(r0 + TILE).min(rows) {
                            for c in c0..(c0 + TILE).min(cols) {
                                dst[c * rows + r] = src[r * cols + c];
                            }
                        }
                    }
                }
            }
            out
        }))
    }
}
