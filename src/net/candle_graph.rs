//! The network as candle tensor operations: differentiable by candle's autograd, on any
//! device (the reference for the tape, and the path for CUDA).

use candle_core::{DType, Result, Tensor};

use super::composite::{global_avg_pool, max_pool2d, max_pool2d_composite};
use super::graph::{AvgPool2d, Binary, Graph, Reduction, Unary};
use super::layers::{Activation, Constant, Conv, Linear, MaxPool2d};
use crate::kernels::activation::{clamp, clamp_composite};

/// Runs a network as candle tensor operations. On the CPU, convolution, max-pool and the
/// clamps use our kernels' custom ops unless `generic`: then every op is one candle has on
/// every device, so the CPU runs the network exactly as a GPU would (`--device cpu:generic`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleGraph {
    pub generic: bool,
}

impl CandleGraph {
    pub fn generic() -> Self {
        Self { generic: true }
    }
}

impl Graph for CandleGraph {
    type Value = Tensor;

    fn conv(&mut self, x: &Tensor, conv: &Conv, act: Activation) -> Result<Tensor> {
        if self.generic {
            return act.apply_composite(&conv.forward_composite(x)?);
        }
        act.apply(&conv.forward(x)?)
    }

    fn activation(&mut self, x: &Tensor, act: Activation) -> Result<Tensor> {
        if self.generic {
            return act.apply_composite(x);
        }
        act.apply(x)
    }

    fn max_pool(&mut self, x: &Tensor, pool: MaxPool2d) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        pool.check_input(h, w)?;
        if self.generic {
            return max_pool2d_composite(x, pool.kernel, pool.stride, pool.pad, pool.ceil);
        }
        max_pool2d(x, pool.kernel, pool.stride, pool.pad, pool.ceil)
    }

    fn cat_channels(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Tensor::cat(&[a, b], 1)
    }

    fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a + b
    }

    fn global_avg_pool(&mut self, x: &Tensor) -> Result<Tensor> {
        global_avg_pool(x)
    }

    fn linear(&mut self, x: &Tensor, layer: &Linear) -> Result<Tensor> {
        layer.forward(x)
    }

    fn dims(&self, x: &Tensor) -> Vec<usize> {
        x.dims().to_vec()
    }

    fn constant(&mut self, c: &Constant) -> Result<Tensor> {
        Ok(c.tensor().clone())
    }

    fn host(&self, x: &Tensor) -> Result<Vec<f32>> {
        x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
    }

    fn unary(&mut self, x: &Tensor, op: Unary) -> Result<Tensor> {
        let generic = self.generic;
        let clamp = |x: &Tensor, lo: f32, hi: f32| {
            if generic {
                clamp_composite(x, lo, hi)
            } else {
                clamp(x, lo, hi)
            }
        };
        let relu = |x: &Tensor| clamp(x, 0.0, f32::INFINITY);
        match op {
            Unary::Clamp { lo, hi } => clamp(x, lo, hi),
            Unary::Sigmoid => candle_nn::ops::sigmoid(x),
            Unary::Silu => x.silu(),
            Unary::Tanh => x.tanh(),
            Unary::Erf => x.erf(),
            Unary::GeluErf => x.gelu_erf(),
            Unary::GeluTanh => x.gelu(),
            Unary::Exp => x.exp(),
            Unary::Log => x.log(),
            Unary::Sqrt => x.sqrt(),
            Unary::Neg => x.neg(),
            Unary::Recip => x.recip(),
            Unary::Abs => x.abs(),
            Unary::Affine { mul, add } => x.affine(mul as f64, add as f64),
            Unary::Powf(p) => x.powf(p as f64),
            // relu(x) − α·relu(−x).
            Unary::LeakyRelu(alpha) => relu(x)? - (relu(&x.neg()?)? * alpha as f64)?,
            Unary::HardSigmoid { alpha, beta } => clamp(&x.affine(alpha as f64, beta as f64)?, 0.0, 1.0),
            Unary::HardSwish => x * clamp(&x.affine(1.0 / 6.0, 0.5)?, 0.0, 1.0)?,
        }
    }

    fn binary(&mut self, a: &Tensor, b: &Tensor, op: Binary) -> Result<Tensor> {
        match op {
            Binary::Add => a.broadcast_add(b),
            Binary::Sub => a.broadcast_sub(b),
            Binary::Mul => a.broadcast_mul(b),
            Binary::Div => a.broadcast_div(b),
            Binary::Max => a.broadcast_maximum(b),
            Binary::Min => a.broadcast_minimum(b),
        }
    }

    fn matmul(&mut self, a: &Tensor, b: &Tensor, trans_b: bool) -> Result<Tensor> {
        let b = if trans_b { b.t()? } else { b.clone() };
        let (a, b) = (a.contiguous()?, b.contiguous()?);
        if b.rank() == 2 && a.rank() > 2 {
            // [.., m, k] × [k, n]: one product over the folded batch.
            let dims = a.dims().to_vec();
            let k = dims[dims.len() - 1];
            let rows: usize = dims[..dims.len() - 1].iter().product();
            let y = a.reshape((rows, k))?.matmul(&b)?;
            let mut out = dims[..dims.len() - 1].to_vec();
            out.push(b.dim(1)?);
            return y.reshape(out);
        }
        a.broadcast_matmul(&b)
    }

    fn permute(&mut self, x: &Tensor, perm: &[usize]) -> Result<Tensor> {
        x.permute(perm.to_vec())
    }

    fn reshape(&mut self, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        x.reshape(dims.to_vec())
    }

    fn select(&mut self, x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor> {
        let n = x.dim(axis)?;
        let run = indices.windows(2).all(|w| w[1] == w[0] + 1);
        if run && !indices.is_empty() {
            if indices.len() == n {
                return Ok(x.clone());
            }
            return x.narrow(axis, indices[0], indices.len());
        }
        if indices.is_empty() {
            let mut dims = x.dims().to_vec();
            dims[axis] = 0;
            return Tensor::zeros(dims, x.dtype(), x.device());
        }
        let ids: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let ids = Tensor::from_vec(ids, indices.len(), x.device())?;
        x.contiguous()?.index_select(&ids, axis)
    }

    fn concat(&mut self, parts: &[Tensor], axis: usize) -> Result<Tensor> {
        Tensor::cat(parts, axis)
    }

    fn broadcast_to(&mut self, x: &Tensor, dims: &[usize]) -> Result<Tensor> {
        x.broadcast_as(dims.to_vec())
    }

    fn pad(&mut self, x: &Tensor, axis: usize, before: usize, after: usize, value: f32) -> Result<Tensor> {
        if value == 0.0 {
            return x.pad_with_zeros(axis, before, after);
        }
        let side = |len: usize| -> Result<Tensor> {
            let mut dims = x.dims().to_vec();
            dims[axis] = len;
            Tensor::full(value, dims, x.device())?.to_dtype(x.dtype())
        };
        let mut parts = Vec::with_capacity(3);
        if before > 0 {
            parts.push(side(before)?);
        }
        parts.push(x.clone());
        if after > 0 {
            parts.push(side(after)?);
        }
        Tensor::cat(&parts, axis)
    }

    fn reduce(&mut self, x: &Tensor, axes: &[usize], op: Reduction) -> Result<Tensor> {
        match op {
            Reduction::Sum => x.sum_keepdim(axes),
            Reduction::Mean => x.mean_keepdim(axes),
            Reduction::Max | Reduction::Min => {
                let mut y = x.clone();
                for &a in axes {
                    y = if op == Reduction::Max {
                        y.max_keepdim(a)?
                    } else {
                        y.min_keepdim(a)?
                    };
                }
                Ok(y)
            }
        }
    }

    fn softmax(&mut self, x: &Tensor, log: bool) -> Result<Tensor> {
        let last = x.rank() - 1;
        // Shifted by the (constant) maximum, as PyTorch does; the shift has no gradient.
        let shifted = x.broadcast_sub(&x.max_keepdim(last)?.detach())?;
        if log {
            shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(last)?.log()?)
        } else {
            let e = shifted.exp()?;
            e.broadcast_div(&e.sum_keepdim(last)?)
        }
    }

    fn layer_norm(&mut self, x: &Tensor, from_axis: usize, eps: f64) -> Result<Tensor> {
        let axes: Vec<usize> = (from_axis..x.rank()).collect();
        let mean = x.mean_keepdim(axes.as_slice())?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(axes.as_slice())?;
        centred.broadcast_div(&(var + eps)?.sqrt()?)
    }

    fn avg_pool(&mut self, x: &Tensor, pool: AvgPool2d) -> Result<Tensor> {
        super::composite::avg_pool2d(x, pool)
    }

    fn select_where(&mut self, mask: &Constant, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let m = mask.tensor();
        let target = crate::kernels::pointwise::broadcast_shape(m.dims(), a.dims())
            .and_then(|t| crate::kernels::pointwise::broadcast_shape(&t, b.dims()))
            .ok_or_else(|| {
                candle_core::Error::Msg(format!("where: shapes {:?}, {:?}, {:?}", m.dims(), a.dims(), b.dims()))
            })?;
        let m = m.ne(0f64)?.broadcast_as(target.as_slice())?.contiguous()?;
        m.where_cond(
            &a.broadcast_as(target.as_slice())?.contiguous()?,
            &b.broadcast_as(target.as_slice())?.contiguous()?,
        )
    }

    fn scatter(&mut self, data: &Tensor, positions: &[usize], updates: &Tensor) -> Result<Tensor> {
        // data·keep + the updates added at their positions: differentiable in both.
        let n = data.elem_count();
        let mut keep = vec![1f32; n];
        for &p in positions {
            keep[p] = 0.0;
        }
        let keep = Tensor::from_vec(keep, data.dims(), data.device())?;
        let ids: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let ids = Tensor::from_vec(ids, positions.len(), data.device())?;
        let scattered = Tensor::zeros(n, data.dtype(), data.device())?.index_add(&ids, &updates.flatten_all()?, 0)?;
        data.mul(&keep)? + scattered.reshape(data.dims())?
    }
}
