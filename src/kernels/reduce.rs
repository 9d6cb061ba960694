//! Reductions and normalisations with their input gradients: sums, means and maxima over
//! axes, softmax and log-softmax along the last axis, layer normalisation over trailing
//! axes, and 2-D average pooling with PyTorch's window counts.

use rayon::prelude::*;

use super::buffers;
use super::layout::broadcast_to;
use super::pointwise::{broadcast_strides, sum_to};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
}

/// `dims` with the axes in `axes` set to 1 (the kept-dims shape of a reduction).
pub fn reduced_dims(dims: &[usize], axes: &[usize]) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// x reduced over `axes`; the result has `reduced_dims(dims, axes)`.
pub fn reduce(x: &[f32], dims: &[usize], axes: &[usize], op: Reduction) -> Vec<f32> {
    let keep = reduced_dims(dims, axes);
    let count: usize = axes.iter().map(|&a| dims[a]).product();
    match op {
        Reduction::Sum => sum_to(x, dims, &keep),
        Reduction::Mean => {
            let mut s = sum_to(x, dims, &keep);
            let inv = 1.0 / count.max(1) as f32;
            s.iter_mut().for_each(|v| *v *= inv);
            s
        }
        Reduction::Max | Reduction::Min => {
            let n: usize = keep.iter().product();
            let init = if op == Reduction::Max {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            };
            let mut out = vec![init; n];
            let s = broadcast_strides(&keep, dims);
            let mut idx = vec![0usize; dims.len()];
            for &v in x {
                let o: usize = idx.iter().zip(&s).map(|(i, st)| i * st).sum();
                out[o] = if op == Reduction::Max {
                    out[o].max(v)
                } else {
                    out[o].min(v)
                };
                for axis in (0..dims.len()).rev() {
                    idx[axis] += 1;
                    if idx[axis] < dims[axis] {
                        break;
                    }
                    idx[axis] = 0;
                }
            }
            out
        }
    }
}

/// The gradient of a reduction: `g` (kept-dims shape) spread back over `dims`. Maxima and
/// minima share their gradient equally between tied elements (PyTorch's `amax`).
pub fn reduce_backward(g: &[f32], x: &[f32], y: &[f32], dims: &[usize], axes: &[usize], op: Reduction) -> Vec<f32> {
    let keep = reduced_dims(dims, axes);
    let count: usize = axes.iter().map(|&a| dims[a]).product();
    let mut dx = broadcast_to(g, &keep, dims);
    match op {
        Reduction::Sum => {}
        Reduction::Mean => {
            let inv = 1.0 / count.max(1) as f32;
            dx.par_iter_mut().for_each(|v| *v *= inv);
        }
        Reduction::Max | Reduction::Min => {
            let yb = broadcast_to(y, &keep, dims);
            let hits: Vec<f32> = x.iter().zip(&yb).map(|(a, b)| (a == b) as u8 as f32).collect();
            let ties = sum_to(&hits, dims, &keep);
            let ties_b = broadcast_to(&ties, &keep, dims);
            for ((d, h), t) in dx.iter_mut().zip(&hits).zip(&ties_b) {
                *d *= h / t.max(1.0);
            }
            buffers::give(yb);
            buffers::give(ties_b);
        }
    }
    dx
}

/// Softmax (or log-softmax) of each row of length `len`, shifted by the row's maximum.
pub fn softmax_rows(x: &[f32], len: usize, log: bool) -> Vec<f32> {
    let mut y = buffers::take(x.len());
    y.par_chunks_mut(len.max(1))
        .zip(x.par_chunks(len.max(1)))
        .for_each(|(ys, xs)| {
            let m = xs.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0f32;
            for (o, &v) in ys.iter_mut().zip(xs) {
                let e = (v - m).exp();
                *o = e;
                sum += e;
            }
            if log {
                let ls = sum.ln();
                for (o, &v) in ys.iter_mut().zip(xs) {
                    *o = v - m - ls;
                }
            } else {
                let inv = 1.0 / sum;
                ys.iter_mut().for_each(|o| *o *= inv);
            }
        });
    y
}

/// g ← the input gradient of [`softmax_rows`], from its output `y`, in place.
pub fn softmax_rows_backward(g: &mut [f32], y: &[f32], len: usize, log: bool) {
    g.par_chunks_mut(len.max(1))
        .zip(y.par_chunks(len.max(1)))
        .for_each(|(gs, ys)| {
            if log {
                // d/dx log softmax: g − softmax · Σg.
                let total: f32 = gs.iter().sum();
                for (gv, &yv) in gs.iter_mut().zip(ys) {
                    *gv -= yv.exp() * total;
                }
            } else {
                let dot: f32 = gs.iter().zip(ys).map(|(a, b)| a * b).sum();
                for (gv, &yv) in gs.iter_mut().zip(ys) {
                    *gv = yv * (*gv - dot);
                }
            }
        });
}

/// (x − mean) / √(var + eps) over each row of length `len` (population variance); also
/// each row's 1/√(var + eps), which the reverse pass needs.
pub fn layer_norm_rows(x: &[f32], len: usize, eps: f64) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / len.max(1);
    let mut y = buffers::take(x.len());
    let mut inv_std = vec![0f32; rows];
    y.par_chunks_mut(len.max(1))
        .zip(x.par_chunks(len.max(1)))
        .zip(inv_std.par_iter_mut())
        .for_each(|((ys, xs), is)| {
            let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let inv = 1.0 / (var + eps).sqrt();
            *is = inv as f32;
            for (o, &v) in ys.iter_mut().zip(xs) {
                *o = ((v as f64 - mean) * inv) as f32;
            }
        });
    (y, inv_std)
}

/// g ← the input gradient of [`layer_norm_rows`], from its output `y` (the normalised
/// rows) and the rows' 1/σ, in place.
pub fn layer_norm_rows_backward(g: &mut [f32], y: &[f32], inv_std: &[f32], len: usize) {
    g.par_chunks_mut(len.max(1))
        .zip(y.par_chunks(len.max(1)))
        .zip(inv_std.par_iter())
        .for_each(|((gs, ys), &is)| {
            let n = len as f32;
            let sum_g: f32 = gs.iter().sum();
            let sum_gy: f32 = gs.iter().zip(ys).map(|(a, b)| a * b).sum();
            for (gv, &yv) in gs.iter_mut().zip(ys) {
                *gv = is / n * (n * *gv - sum_g - yv * sum_gy);
            }
        });
}

/// A 2-D average pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// top, left, bottom, right
    pub pads: [usize; 4],
    pub count_include_pad: bool,
    pub ceil: bool,
}

impl AvgPool2d {
    /// The output size of an `h`×`w` input, or `None` if the window does not fit.
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let out = |size: usize, k: usize, s: usize, before: usize, after: usize| -> Option<usize> {
            let span = (size + before + after).checked_sub(k)?;
            let mut o = if self.ceil { span.div_ceil(s) } else { span / s } + 1;
            // PyTorch: with ceil_mode the last window must start inside the input or left padding.
            if self.ceil && (o - 1) * s >= size + before {
                o -= 1;
            }
            Some(o)
        };
        Some((
            out(h, self.kernel[0], self.stride[0], self.pads[0], self.pads[2])?,
            out(w, self.kernel[1], self.stride[1], self.pads[1], self.pads[3])?,
        ))
    }

    /// The window of output (i, j): its input rows and columns, and its divisor.
    fn window(&self, i: usize, j: usize, h: usize, w: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>, f32) {
        let span = |o: usize, s: usize, k: usize, before: usize, size: usize, after: usize| {
            let start = (o * s) as i64 - before as i64;
            let end = (start + k as i64).min((size + after) as i64);
            let counted = if self.count_include_pad {
                end - start
            } else {
                end.min(size as i64) - start.max(0)
            };
            (start.max(0) as usize..end.min(size as i64).max(0) as usize, counted)
        };
        let (rows, nh) = span(i, self.stride[0], self.kernel[0], self.pads[0], h, self.pads[2]);
        let (cols, nw) = span(j, self.stride[1], self.kernel[1], self.pads[1], w, self.pads[3]);
        let n = (nh * nw) as f32;
        (rows, cols, if n > 0.0 { 1.0 / n } else { 0.0 })
    }

    /// Each output position's 1/divisor, row-major [oh, ow].
    pub fn inverse_counts(&self, h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = self.out_size(h, w).unwrap_or((0, 0));
        (0..oh * ow).map(|p| self.window(p / ow, p % ow, h, w).2).collect()
    }

    /// Planes of `h`×`w` (any count) pooled; returns the output and its size.
    pub fn forward(&self, x: &[f32], h: usize, w: usize) -> Option<(Vec<f32>, usize, usize)> {
        let (oh, ow) = self.out_size(h, w)?;
        let planes = x.len() / (h * w).max(1);
        let mut out = buffers::take(planes * oh * ow);
        out.par_chunks_mut((oh * ow).max(1))
            .zip(x.par_chunks((h * w).max(1)))
            .for_each(|(o, plane)| {
                for i in 0..oh {
                    for j in 0..ow {
                        let (rows, cols, scale) = self.window(i, j, h, w);
                        let mut s = 0f32;
                        for r in rows {
                            s += plane[r * w + cols.start..r * w + cols.end].iter().sum::<f32>();
                        }
                        o[i * ow + j] = s * scale;
                    }
                }
            });
        let _ = planes;
        Some((out, oh, ow))
    }

    /// The input gradient of [`Self::forward`].
    pub fn backward(&self, g: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = self.out_size(h, w).unwrap_or((0, 0));
        let planes = g.len() / (oh * ow).max(1);
        let mut dx = vec![0f32; planes * h * w];
        dx.par_chunks_mut((h * w).max(1))
            .zip(g.par_chunks((oh * ow).max(1)))
            .for_each(|(plane, go)| {
                for i in 0..oh {
                    for j in 0..ow {
                        let (rows, cols, scale) = self.window(i, j, h, w);
                        let v = go[i * ow + j] * scale;
                        for r in rows {
                            plane[r * w + cols.start..r * w + cols.end]
                                .iter_mut()
                                .for_each(|d| *d += v);
                        }
                    }
                }
            });
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_and_their_gradients() {
        let x = [1.0, 5.0, 5.0, 2.0, 0.0, 3.0];
        assert_eq!(reduce(&x, &[2, 3], &[1], Reduction::Sum), [11., 5.]);
        assert_eq!(reduce(&x, &[2, 3], &[0], Reduction::Mean), [1.5, 2.5, 4.0]);
        let y = reduce(&x, &[2, 3], &[1], Reduction::Max);
        assert_eq!(y, [5., 3.]);
        // Two tied maxima share the gradient.
        assert_eq!(
            reduce_backward(&[1.0, 1.0], &x, &y, &[2, 3], &[1], Reduction::Max),
            [0., 0.5, 0.5, 0., 0., 1.]
        );
    }

    /// Softmax and layer norm gradients against finite differences of a weighted sum.
    #[test]
    fn softmax_and_layer_norm_gradients() {
        let x = [0.3f32, -1.2, 2.0, 0.7, 0.1, -0.4];
        let wts = [0.5f32, -1.0, 2.0, 0.3, 1.5, -0.7];
        let loss = |f: &dyn Fn(&[f32]) -> Vec<f32>, x: &[f32]| -> f64 {
            f(x).iter().zip(&wts).map(|(a, b)| (*a * *b) as f64).sum()
        };
        let soft = |x: &[f32]| softmax_rows(x, 3, false);
        let logsoft = |x: &[f32]| softmax_rows(x, 3, true);
        let ln = |x: &[f32]| layer_norm_rows(x, 3, 1e-5).0;
        for (name, f) in [
            ("softmax", &soft as &dyn Fn(&[f32]) -> Vec<f32>),
            ("log_softmax", &logsoft),
            ("layer_norm", &ln),
        ] {
            let mut g = wts.to_vec();
            match name {
                "layer_norm" => {
                    let (y, inv) = layer_norm_rows(&x, 3, 1e-5);
                    layer_norm_rows_backward(&mut g, &y, &inv, 3);
                }
                _ => softmax_rows_backward(&mut g, &f(&x), 3, name == "log_softmax"),
            }
            for i in 0..x.len() {
                let h = 1e-3;
                let (mut a, mut b) = (x, x);
                a[i] += h;
                b[i] -= h;
                let num = (loss(f, &a) - loss(f, &b)) / (2.0 * h as f64);
                assert!((num - g[i] as f64).abs() < 2e-3, "{name} {i}: {} vs {num}", g[i]);
            }
        }
    }
}
