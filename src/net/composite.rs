//! Operations built from candle's own ops, whose autograd is correct: the path on devices
//! without our CPU kernels (CUDA), and the reference the kernels are tested against.
//!
//! Candle's own `max_pool2d` backward is wrong (gradient scaled by 1/k², and it refuses
//! kernel ≠ stride; huggingface/candle#1851, #1593), so max-pooling here is our own op on
//! the CPU and a composite of `maximum` ops elsewhere. Grouped convolution in candle
//! splits the input into one convolution per group; for depthwise layers with hundreds of
//! channels that is slow, so depthwise convolution is a sum of k² shifted,
//! per-channel-scaled views instead.

use candle_core::{DType, IndexOp, Result, Tensor, D};

use crate::kernels::geometry::window_out;
use crate::kernels::maxpool::MaxPool2d;

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

/// Max pooling with PyTorch semantics (`padding`, `ceil_mode`) in value and gradient. On
/// the CPU this is the [`MaxPool2d`] custom op; elsewhere a composite of candle's ops with
/// the same tie rule.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        return x.contiguous()?.apply_op1(MaxPool2d {
            kernel,
            stride,
            pad,
            ceil,
        });
    }
    max_pool2d_composite(x, kernel, stride, pad, ceil)
}

/// Max pooling for devices without the custom op: PyTorch's value, tie rule (the first
/// maximum in the window's row-by-row scan takes the gradient) and gradient.
///
/// The winning element of each window is found on a detached copy, so the comparisons
/// stay out of the graph; the output is a `gather` of the winners, whose backward is a
/// scatter-add. The graph keeps the indices and the output (one pooled map each), where a
/// chain of `maximum`s and masks kept about six per window element (~50 for a 3×3 pool)
/// and a chain of `maximum`s alone would split a tie's gradient.
pub fn max_pool2d_composite(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let oh = window_out(h, kernel, stride, pad, ceil);
    let ow = window_out(w, kernel, stride, pad, ceil);
    let device = x.device();
    let xd = x.detach();
    // Pad with -inf so padding never wins (or ties) a max.
    let extra_h = ((oh - 1) * stride + kernel).saturating_sub(h + pad);
    let extra_w = ((ow - 1) * stride + kernel).saturating_sub(w + pad);
    let xp = if pad + extra_h + extra_w > 0 {
        pad2d(&xd, pad, extra_h, pad, extra_w, f32::NEG_INFINITY)?
    } else {
        xd
    };
    // Every window's elements as strided views, in PyTorch's scan order, stacked:
    // [N, C, k², OH, OW].
    let mut views = Vec::with_capacity(kernel * kernel);
    for dy in 0..kernel {
        let rows = strided(&xp, 2, dy, stride, oh)?;
        for dx in 0..kernel {
            views.push(strided(&rows, 3, dx, stride, ow)?);
        }
    }
    let window = Tensor::stack(&views, 2)?;
    drop(views);
    let kk = kernel * kernel;
    // k² − j for the maxima (j the scan position), 0 elsewhere: the largest is the first
    // maximum, unique even among ties.
    let rank: Vec<f32> = (0..kk).map(|j| (kk - j) as f32).collect();
    let rank = Tensor::from_vec(rank, (1, 1, kk, 1, 1), device)?;
    let is_max = window.broadcast_eq(&window.max_keepdim(2)?)?.to_dtype(DType::F32)?;
    let first = (kk as f64 - is_max.broadcast_mul(&rank)?.max(2)?)?; // [N, C, OH, OW]
    let dy = (&first / kernel as f64)?.floor()?;
    let dx = (&first - (&dy * kernel as f64)?)?;
    // The window's first maximum in the unpadded input: row oy·s + dy − pad, column
    // ox·s + dx − pad (clamped: only a window of all −inf could point into the padding).
    let oy =
        (Tensor::arange(0u32, oh as u32, device)?.to_dtype(DType::F32)? * stride as f64)?.reshape((1, 1, oh, 1))?;
    let ox =
        (Tensor::arange(0u32, ow as u32, device)?.to_dtype(DType::F32)? * stride as f64)?.reshape((1, 1, 1, ow))?;
    let row = (dy.broadcast_add(&oy)? - pad as f64)?.clamp(0f32, (h - 1) as f32)?;
    let col = (dx.broadcast_add(&ox)? - pad as f64)?.clamp(0f32, (w - 1) as f32)?;
    let flat = ((row * w as f64)? + col)?
        .to_dtype(DType::U32)?
        .reshape((n, c, oh * ow))?;
    x.reshape((n, c, h * w))?.gather(&flat, 2)?.reshape((n, c, oh, ow))
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

/// 2-D average pooling with PyTorch's window counts: a sum of shifted views of the
/// zero-padded input, times each window's 1/count.
pub fn avg_pool2d(x: &Tensor, pool: crate::kernels::reduce::AvgPool2d) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let Some((oh, ow)) = pool.out_size(h, w) else {
        candle_core::bail!(
            "an average-pooling window {:?} larger than the padded {h}×{w} input",
            pool.kernel
        );
    };
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    let [pt, pl, pb, pr] = pool.pads;
    let extra_h = ((oh - 1) * sh + kh).saturating_sub(h + pt + pb);
    let extra_w = ((ow - 1) * sw + kw).saturating_sub(w + pl + pr);
    let xp = x
        .pad_with_zeros(2, pt, pb + extra_h)?
        .pad_with_zeros(3, pl, pr + extra_w)?;
    let mut sum: Option<Tensor> = None;
    for dy in 0..kh {
        let rows = strided(&xp, 2, dy, sh, oh)?;
        for dx in 0..kw {
            let v = strided(&rows, 3, dx, sw, ow)?;
            sum = Some(match sum {
                None => v,
                Some(s) => (s + v)?,
            });
        }
    }
    let sum = sum.ok_or_else(|| candle_core::Error::Msg("an empty pooling window".into()))?;
    let inv = Tensor::from_vec(pool.inverse_counts(h, w), (1, 1, oh, ow), x.device())?.to_dtype(x.dtype())?;
    sum.broadcast_mul(&inv)
}

/// Mean over the two spatial dimensions: [N, C, H, W] -> [N, C].
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The CPU custom op, through the dispatch every caller uses.
    fn pool(x: &Tensor, k: usize, s: usize, p: usize, ceil: bool) -> Tensor {
        max_pool2d(x, k, s, p, ceil).unwrap()
    }

    #[test]
    fn the_composite_gives_a_tie_to_the_first_maximum_as_the_custom_op_does() {
        // Constant input (every window a tie, as a black image makes after a ReLU), and a
        // few repeated values.
        let n = 2 * 3 * 9 * 8;
        for v in [vec![0.5f32; n], (0..n).map(|i| (i % 3) as f32).collect::<Vec<f32>>()] {
            for (k, s, p, ceil) in [(3, 2, 0, true), (3, 2, 1, false), (2, 2, 0, false)] {
                let x = Var::from_tensor(&Tensor::from_vec(v.clone(), (2, 3, 9, 8), &Device::Cpu).unwrap()).unwrap();
                let y1 = pool(x.as_tensor(), k, s, p, ceil);
                let y2 = max_pool2d_composite(x.as_tensor(), k, s, p, ceil).unwrap();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(flat(&y1), flat(&y2));
                let g1 = y1.sum_all().unwrap().backward().unwrap();
                let g2 = y2.sum_all().unwrap().backward().unwrap();
                assert_eq!(
                    flat(g1.get(x.as_tensor()).unwrap()),
                    flat(g2.get(x.as_tensor()).unwrap()),
                    "k{k} s{s} p{p} ceil {ceil}"
                );
            }
        }
    }

    #[test]
    fn forward_and_gradient_match_composite_without_ties() {
        // An output the pool leaves unwritten comes out NaN and fails the comparison.
        crate::kernels::buffers::poison_taken_buffers();
        // Distinct values: no ties, so the composite's exact subgradient is the same.
        let n = 2 * 3 * 13 * 11;
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1009) as f32 / 1009.0 + i as f32 * 1e-6)
            .collect();
        for (k, s, p, ceil) in [(3, 2, 0, true), (3, 2, 1, false), (2, 2, 0, false), (3, 1, 1, false)] {
            let x = Var::from_tensor(&Tensor::from_vec(v.clone(), (2, 3, 13, 11), &Device::Cpu).unwrap()).unwrap();
            let y1 = pool(x.as_tensor(), k, s, p, ceil);
            let y2 = max_pool2d_composite(x.as_tensor(), k, s, p, ceil).unwrap();
            assert_eq!(y1.dims(), y2.dims());
            assert_eq!(
                y1.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                y2.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
            let weights = Tensor::rand(0f32, 1f32, y1.dims(), &Device::Cpu).unwrap();
            let g1 = (&y1 * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&y2 * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let a = g1
                .get(x.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let b = g2
                .get(x.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert!((p - q).abs() < 1e-6, "k{k} s{s} p{p}: grad {i}: {p} vs {q}");
            }
        }
    }
}
