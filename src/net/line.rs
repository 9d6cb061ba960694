//! Points on a straight line, x′ + α_k (x − x′), as a network input.
//!
//! A convolution that reads such points directly is affine in α: its output at α_k is
//! u₀ + α_k (u₁ − u₀), with u₀ and u₁ its outputs at x′ and x (the bias included). So the
//! tape runs it on the two ends instead of on every point. Its input gradient is linear
//! in its output gradient, so a weighted sum of input gradients over the points (a
//! Riemann sum of Integrated Gradients) needs one transposed convolution of the summed
//! output gradients instead of one per point.

use candle_core::{bail, DType, Result, Tensor};
use rayon::prelude::*;

use crate::kernels::buffers;
use crate::kernels::conv::ConvOp;

/// Output elements per parallel chunk.
const CHUNK: usize = 1 << 14;
/// Elements per chunk of a weighted sum, whose f64 accumulator lives on the stack.
const SUM_CHUNK: usize = 1 << 12;

/// The points `start + α (end − start)` for each α, stacked: [K, ...start's shape].
/// Computed in f32 as Captum does (α rounded to f32, then α·Δ + start).
pub fn line_points(start: &Tensor, end: &Tensor, alphas: &[f64]) -> Result<Tensor> {
    if start.device().is_cpu() && start.dtype() == DType::F32 && end.dtype() == DType::F32 {
        // One pass into one buffer; candle's broadcasts would allocate three tensors.
        let line = Line::new(start, end, alphas)?;
        return Tensor::from_vec(line.points(), line.points_dims(), start.device());
    }
    check_ends(start, end)?;
    let diff = (end - start)?;
    let mut shape = vec![alphas.len()];
    shape.extend(std::iter::repeat_n(1, start.rank()));
    let a: Vec<f32> = alphas.iter().map(|&a| a as f32).collect();
    let a = Tensor::from_vec(a, shape, start.device())?;
    a.broadcast_mul(&diff.unsqueeze(0)?)?
        .broadcast_add(&start.unsqueeze(0)?)
}

/// Adds Σ_k w_k g_k to `sum`, for per-point gradients g [K, sum.len()] (f64 accumulation):
/// a batch of a Riemann sum, where each point's gradient was computed.
pub fn add_weighted_points(sum: &mut [f64], g: &[f32], weights: &[f64]) {
    for (gk, &wk) in g.chunks(sum.len().max(1)).zip(weights) {
        sum.iter_mut().zip(gk).for_each(|(s, &v)| *s += wk * v as f64);
    }
}

fn check_ends(start: &Tensor, end: &Tensor) -> Result<()> {
    if start.dims() != end.dims() {
        bail!(
            "the line's ends differ in shape: {:?} and {:?}",
            start.dims(),
            end.dims()
        );
    }
    Ok(())
}

/// What the tape keeps of a line input.
pub(crate) struct Line {
    /// x′ then x: a batch of two images.
    ends: Vec<f32>,
    /// The shape of one end.
    dims: Vec<usize>,
    alphas: Vec<f32>,
}

impl Line {
    /// The line from `start` to `end` (f32 tensors of one shape) through `alphas`.
    pub(crate) fn new(start: &Tensor, end: &Tensor, alphas: &[f64]) -> Result<Self> {
        check_ends(start, end)?;
        let mut ends = start.flatten_all()?.to_vec1::<f32>()?;
        ends.extend(end.flatten_all()?.to_vec1::<f32>()?);
        Ok(Self {
            ends,
            dims: start.dims().to_vec(),
            alphas: alphas.iter().map(|&a| a as f32).collect(),
        })
    }

    /// The shape of the points: [K, ...an end's shape].
    pub(crate) fn points_dims(&self) -> Vec<usize> {
        let mut dims = vec![self.alphas.len()];
        dims.extend_from_slice(&self.dims);
        dims
    }

    /// The points themselves, [K, ...] flattened, with the same f32 arithmetic as
    /// Captum (α·Δ, then + x′).
    pub(crate) fn points(&self) -> Vec<f32> {
        let (start, end) = self.ends.split_at(self.ends.len() / 2);
        let per = start.len();
        // Every element is written.
        let mut points = buffers::take(self.alphas.len() * per);
        points
            .par_chunks_mut(per.max(1))
            .zip(&self.alphas)
            .for_each(|(point, &a)| {
                point.par_chunks_mut(CHUNK).enumerate().for_each(|(c, ps)| {
                    let at = c * CHUNK;
                    let (s, e) = (&start[at..at + ps.len()], &end[at..at + ps.len()]);
                    for ((p, &s), &e) in ps.iter_mut().zip(s).zip(e) {
                        *p = a * (e - s) + s;
                    }
                });
            });
        points
    }

    /// clamp(conv(x′ + α_k Δ)) for every α_k, from the convolution of the two ends.
    pub(crate) fn conv(&self, op: &ConvOp, h: usize, w: usize, clamp: Option<(f32, f32)>) -> (Vec<f32>, usize, usize) {
        let (mut u, oh, ow) = op.forward_batch(&self.ends, 2, h, w, None);
        let per = u.len() / 2;
        let (u0, u1) = u.split_at_mut(per);
        u1.iter_mut().zip(u0.iter()).for_each(|(d, &a)| *d -= a);
        let (u0, d) = (&*u0, &*u1);
        // Every element is written.
        let mut y = buffers::take(self.alphas.len() * per);
        y.par_chunks_mut(per.max(1)).zip(&self.alphas).for_each(|(ys, &a)| {
            ys.par_chunks_mut(CHUNK).enumerate().for_each(|(c, ys)| {
                let at = c * CHUNK;
                let (u0, d) = (&u0[at..at + ys.len()], &d[at..at + ys.len()]);
                let values = ys.iter_mut().zip(u0).zip(d);
                match clamp {
                    Some((lo, hi)) => values.for_each(|((v, &b), &s)| *v = (b + a * s).max(lo).min(hi)),
                    None => values.for_each(|((v, &b), &s)| *v = b + a * s),
                }
            });
        });
        buffers::give(u);
        (y, oh, ow)
    }
}

/// Σ_k w_k g_k [lo < y_k < hi] over a batch of output gradients g [K, per] (accumulated
/// in f64): the clamp's derivative (y its output, when it has one) and the weighted sum in
/// one pass, which one transposed convolution turns into the weighted sum of the input
/// gradients.
pub(crate) fn masked_weighted_sum(
    g: &[f32],
    per: usize,
    weights: &[f64],
    clamp: Option<(&[f32], f32, f32)>,
) -> Vec<f32> {
    assert_eq!(g.len(), per * weights.len());
    // Every element is written.
    let mut out = buffers::take(per);
    out.par_chunks_mut(SUM_CHUNK).enumerate().for_each(|(c, o)| {
        let at = c * SUM_CHUNK;
        let mut acc = [0f64; SUM_CHUNK];
        let acc = &mut acc[..o.len()];
        for (k, &wk) in weights.iter().enumerate() {
            let gk = &g[k * per + at..][..o.len()];
            match clamp {
                Some((y, lo, hi)) => {
                    let yk = &y[k * per + at..][..o.len()];
                    for ((a, &v), &yv) in acc.iter_mut().zip(gk).zip(yk) {
                        // Non-short-circuit `&` and a select, as in `zero_outside`.
                        *a += if (yv > lo) & (yv < hi) { wk * v as f64 } else { 0.0 };
                    }
                }
                None => acc.iter_mut().zip(gk).for_each(|(a, &v)| *a += wk * v as f64),
            }
        }
        o.iter_mut().zip(acc.iter()).for_each(|(o, &a)| *o = a as f32);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_weighted_sum_adds_each_points_gradient_times_its_weight_inside_the_clamp() {
        let per = 2 * SUM_CHUNK + 3; // three chunks, the last short
        let g: Vec<f32> = (0..3 * per).map(|i| (i % 97) as f32 - 40.0).collect();
        let y: Vec<f32> = (0..3 * per).map(|i| (i % 11) as f32 - 2.0).collect();
        let weights = [0.5, -2.0, 0.25];
        let plain = masked_weighted_sum(&g, per, &weights, None);
        let relu6 = masked_weighted_sum(&g, per, &weights, Some((&y, 0.0, 6.0)));
        for i in [0, 1, SUM_CHUNK - 1, SUM_CHUNK, per - 1] {
            let term = |k: usize| weights[k] * g[k * per + i] as f64;
            let inside = |k: usize| y[k * per + i] > 0.0 && y[k * per + i] < 6.0;
            let expected: f64 = (0..3).map(term).sum();
            assert_eq!(plain[i] as f64, expected, "element {i}");
            let expected: f64 = (0..3).filter(|&k| inside(k)).map(term).sum();
            assert_eq!(relu6[i] as f64, expected, "element {i}, clamped");
        }
    }
}
