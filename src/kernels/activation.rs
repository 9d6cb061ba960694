//! ReLU and ReLU6 with PyTorch's derivative at the kinks.
//!
//! Candle's `relu` backward passes the gradient where x ≥ 0; PyTorch's passes it only
//! where x > 0 (and ReLU6, PyTorch's `hardtanh(0, 6)`, only where 0 < x < 6). The
//! difference is invisible on photos but not on inputs whose pre-activations are exactly
//! zero — an all-zero baseline through a network with zero BatchNorm shifts makes every
//! unit sit on the kink, and the two conventions then give entirely different gradients.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::storage::contiguous_f32;

/// y = clamp(x, lo, hi), dy/dx = 1 strictly inside (lo, hi), 0 elsewhere.
#[derive(Debug, Clone, Copy)]
struct Clamp {
    lo: f32,
    hi: f32,
}

const CHUNK: usize = 1 << 14;

impl CustomOp1 for Clamp {
    fn name(&self) -> &'static str {
        "pathscope-clamp"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = clamp_slice(contiguous_f32("clamp", storage, layout)?, self.lo, self.hi);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let x = arg.flatten_all()?.to_vec1::<f32>()?;
        let mut dx = grad_res.flatten_all()?.to_vec1::<f32>()?;
        zero_outside(&mut dx, &x, self.lo, self.hi);
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}

/// y = clamp(x, lo, hi) elementwise, in parallel chunks.
pub(crate) fn clamp_slice(x: &[f32], lo: f32, hi: f32) -> Vec<f32> {
    let mut y = super::buffers::take(x.len());
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(ys, xs)| {
        for (o, &v) in ys.iter_mut().zip(xs) {
            *o = v.max(lo).min(hi);
        }
    });
    y
}

/// The clamp's derivative applied to a gradient: zeroes `g` wherever `at` is not strictly
/// inside (lo, hi). `at` may be the clamp's input or its output: lo < y < hi exactly
/// when lo < x < hi.
pub(crate) fn zero_outside(g: &mut [f32], at: &[f32], lo: f32, hi: f32) {
    g.par_chunks_mut(CHUNK).zip(at.par_chunks(CHUNK)).for_each(|(gs, vs)| {
        for (gv, &v) in gs.iter_mut().zip(vs) {
            // Non-short-circuit `&` and a select: the loop vectorises.
            *gv = if (v > lo) & (v < hi) { *gv } else { 0.0 };
        }
    });
}

/// y = clamp(x, lo, hi) with the derivative [lo < x < hi] (PyTorch's `hardtanh`, `clamp` away
/// from the bounds).
pub fn clamp(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return x.contiguous()?.apply_op1(Clamp { lo, hi });
    }
    clamp_composite(x, lo, hi)
}

/// [`clamp`] from candle's own ops, as it runs on devices without the CPU op (and on the
/// CPU's device-generic path).
pub fn clamp_composite(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    // where([lo < x < hi], x, clamp(x)): the gradient passes only strictly inside, as in
    // PyTorch. Mask and clamped values come from a detached copy, so the graph keeps a
    // byte mask and one copy (a chain of comparisons and products kept about ten).
    let xd = x.detach();
    let inside = xd.gt(lo as f64)?;
    let inside = if hi.is_finite() {
        inside.mul(&xd.lt(hi as f64)?)?
    } else {
        inside
    };
    inside.where_cond(x, &xd.clamp(lo, hi)?)
}

/// max(x, 0), derivative [x > 0].
pub fn relu(x: &Tensor) -> Result<Tensor> {
    clamp(x, 0.0, f32::INFINITY)
}

/// min(max(x, 0), 6), derivative [0 < x < 6].
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    clamp(x, 0.0, 6.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn grad_of(f: fn(&Tensor) -> Result<Tensor>, xs: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let x = Var::from_tensor(&Tensor::new(xs, &Device::Cpu).unwrap()).unwrap();
        let y = f(x.as_tensor()).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        (y.to_vec1().unwrap(), g.get(x.as_tensor()).unwrap().to_vec1().unwrap())
    }

    fn relu_composite(x: &Tensor) -> Result<Tensor> {
        clamp_composite(x, 0.0, f32::INFINITY)
    }

    fn relu6_composite(x: &Tensor) -> Result<Tensor> {
        clamp_composite(x, 0.0, 6.0)
    }

    /// The custom op and the composite (the GPU's path) alike.
    #[test]
    fn relu_has_pytorch_derivative_at_zero() {
        for f in [relu, relu_composite] {
            let (y, g) = grad_of(f, &[-1.0, 0.0, 2.0]);
            assert_eq!(y, vec![0.0, 0.0, 2.0]);
            assert_eq!(g, vec![0.0, 0.0, 1.0]);
        }
    }

    #[test]
    fn relu6_has_hardtanh_derivative_at_both_kinks() {
        for f in [relu6, relu6_composite] {
            let (y, g) = grad_of(f, &[-1.0, 0.0, 3.0, 6.0, 7.0]);
            assert_eq!(y, vec![0.0, 0.0, 3.0, 6.0, 6.0]);
            assert_eq!(g, vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        }
    }
}
