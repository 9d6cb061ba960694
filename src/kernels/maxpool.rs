//! Max pooling as a candle custom op with PyTorch's semantics in both directions.
//!
//! Candle's built-in `max_pool2d` backward is wrong (huggingface/candle#1851, #1593). A
//! composite of `maximum` ops has correct gradients but splits them between tied
//! elements, while PyTorch routes each window's gradient to its *first* maximum (row-major
//! scan, strict `>`); on constant regions (a black baseline) the two differ by several
//! percent. This op reproduces PyTorch exactly, and is faster than the composite.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::buffers;
use super::geometry::window_out;
use super::simd::with_wide_vectors;
use super::storage::contiguous_f32;

#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub ceil: bool,
}

impl MaxPool2d {
    /// Pools every h×w plane of `src` (any number of planes, row-major); returns the
    /// pooled planes and their size.
    pub(crate) fn forward_planes(&self, src: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
        let (oh, ow) = self.geometry(h, w);
        let planes = src.len() / (h * w);
        // Every window writes its output.
        let mut out = buffers::take(planes * oh * ow);
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, dst)| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            self.plane(plane, h, w, oh, ow, |o, v, _| dst[o] = v);
        });
        (out, oh, ow)
    }

    /// Like [`Self::forward_planes`], and also the flat in-plane index of each window's
    /// first maximum, so the reverse pass need not search the windows again.
    pub(crate) fn forward_planes_with_argmax(
        &self,
        src: &[f32],
        h: usize,
        w: usize,
    ) -> (Vec<f32>, Vec<u32>, usize, usize) {
        let (oh, ow) = self.geometry(h, w);
        let planes = src.len() / (h * w);
        // Every window writes its output.
        let mut out = buffers::take(planes * oh * ow);
        let mut arg = buffers::take_indices(planes * oh * ow);
        out.par_chunks_mut(oh * ow)
            .zip(arg.par_chunks_mut(oh * ow))
            .enumerate()
            .for_each(|(p, (dst, idx))| {
                let plane = &src[p * h * w..(p + 1) * h * w];
                self.plane(plane, h, w, oh, ow, |o, v, a| {
                    dst[o] = v;
                    idx[o] = a as u32;
                });
            });
        (out, arg, oh, ow)
    }

    /// Scatters each window's gradient to the input position `argmax` recorded for it.
    pub(crate) fn backward_from_argmax(grad_out: &[f32], argmax: &[u32], hw_in: usize, hw_out: usize) -> Vec<f32> {
        let planes = grad_out.len() / hw_out;
        let mut grad = buffers::take(planes * hw_in);
        grad.par_chunks_mut(hw_in)
            .zip(grad_out.par_chunks(hw_out).zip(argmax.par_chunks(hw_out)))
            .for_each(|(dst, (g, a))| {
                // Zeroed a plane at a time, while it is in cache for the scatter.
                dst.fill(0.0);
                for (&gv, &i) in g.iter().zip(a) {
                    dst[i as usize] += gv;
                }
            });
        grad
    }

    /// Input gradient of [`Self::forward_planes`]: each window's gradient goes to its
    /// first maximum in `src`.
    pub(crate) fn backward_planes(&self, src: &[f32], grad_out: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = self.geometry(h, w);
        let mut grad = vec![0f32; src.len()];
        grad.par_chunks_mut(h * w).enumerate().for_each(|(p, dst)| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            let gp = &grad_out[p * oh * ow..(p + 1) * oh * ow];
            self.plane(plane, h, w, oh, ow, |o, _, a| dst[a] += gp[o]);
        });
        grad
    }

    /// An error unless an `h`×`w` input (with padding) holds at least one window.
    pub(crate) fn check_input(&self, h: usize, w: usize) -> Result<()> {
        if h + 2 * self.pad < self.kernel || w + 2 * self.pad < self.kernel {
            candle_core::bail!(
                "max-pool: a {h}×{w} input is smaller than the {0}×{0} window",
                self.kernel
            );
        }
        Ok(())
    }

    pub(crate) fn geometry(&self, h: usize, w: usize) -> (usize, usize) {
        (
            window_out(h, self.kernel, self.stride, self.pad, self.ceil),
            window_out(w, self.kernel, self.stride, self.pad, self.ceil),
        )
    }

    /// For one plane: (max value, flat index of the first max) of every output window.
    ///
    /// Windows wholly inside the plane are scanned a tap at a time across the output row
    /// (compiled for wide vectors, see [`with_wide_vectors`]); each window still sees its
    /// elements in row-major order with a strict `>`, so the first maximum wins as in
    /// PyTorch. Windows cut by the padding or the ceil-mode edge take the scalar scan.
    fn plane(&self, src: &[f32], h: usize, w: usize, oh: usize, ow: usize, mut visit: impl FnMut(usize, f32, usize)) {
        let (k, s, pad) = (self.kernel, self.stride, self.pad);
        // Output columns whose window lies inside the row: pad ≤ ox·s, ox·s − pad + k ≤ w.
        let lo = pad.div_ceil(s).min(ow);
        let hi = if w + pad >= k {
            ((w + pad - k) / s + 1).clamp(lo, ow)
        } else {
            lo
        };
        // Rows of fewer than 16 inner windows gain nothing from vectors: scan them all by
        // window, with the running maximum in registers.
        let (lo, hi) = if hi - lo < 16 { (ow, ow) } else { (lo, hi) };
        let mut best = vec![0f32; ow];
        let mut arg = vec![0u32; ow];
        for oy in 0..oh {
            let y0 = (oy * s) as isize - pad as isize;
            let ys = y0.max(0) as usize;
            let ye = ((y0 + k as isize) as usize).min(h);
            with_wide_vectors(
                #[inline(always)]
                || scan_inner_windows(src, w, (ys, ye), (lo, hi), (k, s, pad), &mut best, &mut arg),
            );
            for ox in (0..lo).chain(hi..ow) {
                let x0 = (ox * s) as isize - pad as isize;
                let xs = x0.max(0) as usize;
                let xe = ((x0 + k as isize) as usize).min(w);
                let mut b = f32::NEG_INFINITY;
                let mut a = ys * w + xs;
                for y in ys..ye {
                    let row = &src[y * w..(y + 1) * w];
                    for (x, &v) in row.iter().enumerate().take(xe).skip(xs) {
                        let take = (v > b) | v.is_nan();
                        b = if take { v } else { b };
                        a = if take { y * w + x } else { a };
                    }
                }
                best[ox] = b;
                arg[ox] = a as u32;
            }
            for ox in 0..ow {
                visit(oy * ow + ox, best[ox], arg[ox] as usize);
            }
        }
    }
}

/// The windows of output columns lo..hi (all inside the row) over input rows ys..ye: best
/// value and flat index of its first occurrence, tap by tap in row-major order.
/// Branch-free selects: on photos the comparison is unpredictable.
#[inline(always)]
fn scan_inner_windows(
    src: &[f32],
    w: usize,
    (ys, ye): (usize, usize),
    (lo, hi): (usize, usize),
    (k, s, pad): (usize, usize, usize),
    best: &mut [f32],
    arg: &mut [u32],
) {
    if lo >= hi {
        return;
    }
    let (best, arg) = (&mut best[lo..hi], &mut arg[lo..hi]);
    best.fill(f32::NEG_INFINITY);
    arg.fill(0);
    for y in ys..ye {
        let row = &src[y * w..(y + 1) * w];
        for dx in 0..k {
            // Column of output lo's tap dx; output lo + i reads column first + i·s.
            let first = lo * s + dx - pad;
            let taps = &row[first..first + (hi - lo - 1) * s + 1];
            let base = (y * w + first) as u32;
            // Called with a literal stride where it is 1 or 2: inlined, the stride is then a
            // constant and the loop vectorises (strided loads as shuffles).
            match s {
                1 => scan_tap(taps, 1, base, best, arg),
                2 => scan_tap(taps, 2, base, best, arg),
                _ => scan_tap(taps, s, base, best, arg),
            }
        }
    }
}

/// One tap for every window: output i reads taps[i·stride], at flat index base + i·stride.
#[inline(always)]
fn scan_tap(taps: &[f32], stride: usize, base: u32, best: &mut [f32], arg: &mut [u32]) {
    let n = best.len().min(arg.len());
    assert!(n == 0 || (n - 1) * stride < taps.len());
    for i in 0..n {
        // SAFETY: i·stride ≤ (n − 1)·stride < taps.len() (asserted above).
        let v = unsafe { *taps.get_unchecked(i * stride) };
        let take = (v > best[i]) | v.is_nan();
        best[i] = if take { v } else { best[i] };
        arg[i] = if take { base + (i * stride) as u32 } else { arg[i] };
    }
}

impl CustomOp1 for MaxPool2d {
    fn name(&self) -> &'static str {
        "pathscope-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        self.check_input(h, w)?;
        let src = contiguous_f32("max_pool2d", storage, layout)?;
        let (out, oh, ow) = self.forward_planes(src, h, w);
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let src = arg.flatten_all()?.to_vec1::<f32>()?;
        let g = grad_res.flatten_all()?.to_vec1::<f32>()?;
        let grad = self.backward_planes(&src, &g, h, w);
        Ok(Some(Tensor::from_vec(grad, (n, c, h, w), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn pool(x: &Tensor, k: usize, s: usize, p: usize, ceil: bool) -> Tensor {
        x.contiguous()
            .unwrap()
            .apply_op1(MaxPool2d {
                kernel: k,
                stride: s,
                pad: p,
                ceil,
            })
            .unwrap()
    }

    #[test]
    fn ties_route_the_gradient_to_the_first_maximum_like_pytorch() {
        let x = Var::from_tensor(&Tensor::ones((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap();
        let y = pool(x.as_tensor(), 2, 2, 0, false);
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Each 2×2 window sends its whole gradient to its top-left element.
        let expected = [1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0.];
        assert_eq!(gx, expected);
    }

    /// Windows split between the vectorised inner scan and the scalar edge scan must pick
    /// the same element as one row-major scan with a strict `>`: values on four levels (many
    /// ties), every geometry the architectures use and some odd ones. Rows are 53 wide so
    /// that every geometry has at least 16 inner windows per row (the vectorised scan).
    #[test]
    fn argmax_is_the_first_maximum_of_a_row_major_scan_with_ties() {
        let (h, w) = (9, 53);
        let src: Vec<f32> = (0..2 * h * w).map(|i| ((i * 7919) % 13 % 4) as f32).collect();
        for (k, s, p, ceil) in [
            (3, 2, 0, true),
            (3, 2, 1, false),
            (2, 2, 0, false),
            (3, 1, 1, false),
            (5, 3, 2, true),
        ] {
            let pool = MaxPool2d {
                kernel: k,
                stride: s,
                pad: p,
                ceil,
            };
            let (values, arg, oh, ow) = pool.forward_planes_with_argmax(&src, h, w);
            for plane in 0..2 {
                let x = &src[plane * h * w..(plane + 1) * h * w];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (mut best, mut at) = (f32::NEG_INFINITY, usize::MAX);
                        for y in (oy * s).saturating_sub(p)..(oy * s + k - p).min(h) {
                            for x_ in (ox * s).saturating_sub(p)..(ox * s + k - p).min(w) {
                                if x[y * w + x_] > best {
                                    (best, at) = (x[y * w + x_], y * w + x_);
                                }
                            }
                        }
                        let o = (plane * oh + oy) * ow + ox;
                        assert_eq!((values[o], arg[o] as usize), (best, at), "k{k} s{s} p{p}: ({oy}, {ox})");
                    }
                }
            }
        }
    }

    #[test]
    fn ceil_mode_output_size_matches_pytorch() {
        // SqueezeNet: 111 → 55 → 27 → 13 with k3 s2 ceil_mode.
        let x = Tensor::zeros((1, 1, 111, 111), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(pool(&x, 3, 2, 0, true).dims(), &[1, 1, 55, 55]);
        let x = Tensor::zeros((1, 1, 54, 54), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(pool(&x, 3, 2, 0, true).dims(), &[1, 1, 27, 27]);
        // ResNet stem: 112 → 56 with k3 s2 p1.
        let x = Tensor::zeros((1, 1, 112, 112), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert_eq!(pool(&x, 3, 2, 1, false).dims(), &[1, 1, 56, 56]);
    }
}
