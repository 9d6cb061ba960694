//! Convolution as a candle custom op whose backward computes only the input gradient.
//!
//! Attribution differentiates with respect to the image, never the weights, but candle's
//! generic conv2d backward always computes the weight gradient too and takes the input
//! gradient through a naive CPU transposed convolution (7–10× the forward's cost on
//! ResNet-18). Here the forward is im2col + GEMM, the backward is Wᵀ·dY + col2im (both
//! GEMMs through the `gemm` crate candle itself uses), 3×3 stride-1 layers take Winograd's
//! F(2×2, 3×3) both ways ([`super::winograd`]), and depthwise layers are direct loops.
//! Padding may be asymmetric (TensorFlow "SAME"), so no separate pad op runs.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::buffers;
use super::gemm::{matmul, matmul_strided};
use super::geometry::Pads;
use super::simd::with_wide_vectors;
use super::storage::contiguous_f32;
use super::winograd::{self, WinogradWeights};

/// A convolution's constant weights and geometry, shared by every call of the op.
#[derive(Debug)]
pub struct ConvKernel {
    /// [c_out, c_in / groups, kh, kw], row-major.
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub c_out: usize,
    pub c_in: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub groups: usize,
    /// Winograd-transformed weights of a 3×3 stride-1 layer, made on first use, forward
    /// and input-gradient direction (16/9 of the weights' size each).
    pub winograd: OnceLock<WinogradWeights>,
    pub winograd_transposed: OnceLock<WinogradWeights>,
}

/// Input size (h, w) and output width of one call (im2col and col2im take output rows
/// as a range).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    ow: usize,
}

/// The op applied to one input: the kernel plus that input's padding.
#[derive(Debug, Clone)]
pub struct ConvOp {
    pub kernel: Arc<ConvKernel>,
    pub pads: Pads,
}

impl ConvOp {
    /// An error unless an `h`×`w` input with this channel count fits the layer (the
    /// padded input must be at least as large as the kernel).
    pub(crate) fn check_input(&self, c: usize, h: usize, w: usize) -> Result<()> {
        let k = &self.kernel;
        if c != k.c_in {
            candle_core::bail!("conv2d: input has {c} channels, the layer expects {}", k.c_in);
        }
        if h + self.pads.top + self.pads.bottom < k.kh || w + self.pads.left + self.pads.right < k.kw {
            candle_core::bail!(
                "conv2d: a {h}×{w} input is smaller than the layer's {}×{} kernel",
                k.kh,
                k.kw
            );
        }
        Ok(())
    }

    pub(crate) fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let k = &self.kernel;
        let ph = h + self.pads.top + self.pads.bottom;
        let pw = w + self.pads.left + self.pads.right;
        ((ph - k.kh) / k.stride + 1, (pw - k.kw) / k.stride + 1)
    }

    fn is_pointwise(&self) -> bool {
        let k = &self.kernel;
        k.kh == 1 && k.kw == 1 && k.stride == 1 && k.groups == 1 && self.pads == Pads::default()
    }

    /// A dense 3×3 stride-1 layer whose padding is at most 2 on each side, so that its
    /// input gradient is also a padded 3×3 convolution: both directions run through
    /// [`winograd::conv3x3`].
    fn is_winograd(&self) -> bool {
        let k = &self.kernel;
        let p = self.pads;
        k.kh == 3 && k.kw == 3 && k.stride == 1 && k.groups == 1 && p.top.max(p.bottom).max(p.left).max(p.right) <= 2
    }

    /// Padding of the input gradient's convolution: the output gradient padded by
    /// (kernel − 1 − pad) on each side gives back the input's size.
    fn transposed_pads(&self) -> Pads {
        let p = self.pads;
        Pads {
            top: 2 - p.top,
            bottom: 2 - p.bottom,
            left: 2 - p.left,
            right: 2 - p.right,
        }
    }

    fn is_depthwise(&self) -> bool {
        let k = &self.kernel;
        k.groups > 1 && k.groups == k.c_in && k.groups == k.c_out
    }

    /// The input position read by output (oy, ox) at tap (dy, dx), if inside the image.
    #[inline]
    fn source(&self, o: usize, d: usize, before: usize, size: usize) -> Option<usize> {
        let i = (o * self.kernel.stride + d) as isize - before as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }

    /// Output columns ox whose tap dx reads inside the row (0 ≤ ox·s + dx − left < w), and
    /// the input column of the first: im2col and col2im copy those as one strided run.
    fn valid_columns(&self, dx: usize, w: usize, ow: usize) -> (Range<usize>, usize) {
        let (s, left) = (self.kernel.stride, self.pads.left);
        let lo = left.saturating_sub(dx).div_ceil(s).min(ow);
        let hi = if w + left > dx {
            ((w - 1 + left - dx) / s + 1).clamp(lo, ow)
        } else {
            lo
        };
        (lo..hi, (lo * s + dx).saturating_sub(left))
    }

    /// im2col of one sample's channels `channels` for the output rows `out_rows`: rows
    /// (c, dy, dx), columns (oy, ox).
    fn im2col(&self, x: &[f32], g: Geometry, channels: Range<usize>, out_rows: Range<usize>, cols: &mut [f32]) {
        let Geometry { h, w, ow, .. } = g;
        let (c0, cg) = (channels.start, channels.len());
        let band = out_rows.len() * ow;
        let k = &self.kernel;
        let s = k.stride;
        for c in 0..cg {
            let plane = &x[(c0 + c) * h * w..(c0 + c + 1) * h * w];
            for dy in 0..k.kh {
                for dx in 0..k.kw {
                    let (valid, ix0) = self.valid_columns(dx, w, ow);
                    let row = &mut cols[((c * k.kh + dy) * k.kw + dx) * band..][..band];
                    for (dst, oy) in row.chunks_exact_mut(ow).zip(out_rows.clone()) {
                        let Some(iy) = self.source(oy, dy, self.pads.top, h) else {
                            dst.fill(0.0);
                            continue;
                        };
                        dst[..valid.start].fill(0.0);
                        dst[valid.end..].fill(0.0);
                        if valid.is_empty() {
                            continue;
                        }
                        let src = &plane[iy * w + ix0..];
                        let dst = &mut dst[valid.clone()];
                        if s == 1 {
                            dst.copy_from_slice(&src[..dst.len()]);
                        } else {
                            for (d, v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                                *d = *v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`Self::im2col`]: scatter-adds columns back into the image.
    fn col2im(&self, cols: &[f32], g: Geometry, channels: Range<usize>, out_rows: Range<usize>, dx_img: &mut [f32]) {
        let Geometry { h, w, ow, .. } = g;
        let (c0, cg) = (channels.start, channels.len());
        let band = out_rows.len() * ow;
        let k = &self.kernel;
        let s = k.stride;
        for c in 0..cg {
            let plane = &mut dx_img[(c0 + c) * h * w..(c0 + c + 1) * h * w];
            for dy in 0..k.kh {
                for dx in 0..k.kw {
                    let (valid, ix0) = self.valid_columns(dx, w, ow);
                    let row = &cols[((c * k.kh + dy) * k.kw + dx) * band..][..band];
                    for (src, oy) in row.chunks_exact(ow).zip(out_rows.clone()) {
                        let Some(iy) = self.source(oy, dy, self.pads.top, h).filter(|_| !valid.is_empty()) else {
                            continue;
                        };
                        let src = &src[valid.clone()];
                        let dst = &mut plane[iy * w + ix0..];
                        if s == 1 {
                            for (d, v) in dst.iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (d, v) in dst.iter_mut().step_by(s).zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Depthwise forward of channel `c`: one vectorised multiply–add pass per tap over the
    /// whole plane (see [`PhaseLayout`]). The output is computed `wq` wide, its columns
    /// past `ow` are discarded. No bounds tests in the inner loop, and no short rows: the
    /// 7×7 and 14×14 planes of EfficientNet run as one run of 77 or 224+ values. Each
    /// output element takes its taps in (dy, dx) order. Inlined into a
    /// [`with_wide_vectors`] closure by its caller, so its loops run 16 or 8 lanes wide.
    #[inline(always)]
    fn depthwise_forward_plane(
        &self,
        c: usize,
        plane: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
        scratch: &mut DepthwiseScratch,
    ) {
        let k = &self.kernel;
        let (oh, ow) = self.out_size(h, w);
        let layout = PhaseLayout::new(self, h, w);
        // The padding in `phases` is never written, so it is still zero from the scratch's
        // creation; every image position is overwritten here.
        let DepthwiseScratch { phases, full } = scratch;
        for (y, row) in plane.chunks_exact(w).enumerate() {
            for (x0, start) in layout.row_runs(y) {
                if k.stride == 1 {
                    phases[start..start + w - x0].copy_from_slice(&row[x0..]);
                } else {
                    for (d, &v) in phases[start..].iter_mut().zip(row[x0..].iter().step_by(k.stride)) {
                        *d = v;
                    }
                }
            }
        }
        let n = oh * layout.wq;
        let full = &mut full[..n];
        let wk = &k.weight[c * k.kh * k.kw..(c + 1) * k.kh * k.kw];
        for dy in 0..k.kh {
            for dx in 0..k.kw {
                let shift = layout.tap_shift(dy, dx);
                let wv = wk[dy * k.kw + dx];
                let taps = full.iter_mut().zip(&phases[shift..shift + n]);
                if (dy, dx) == (0, 0) {
                    // The first tap sets the sum (0 + a = a exactly, as before).
                    taps.for_each(|(o, &v)| *o = wv * v);
                } else {
                    taps.for_each(|(o, &v)| *o += wv * v);
                }
            }
        }
        for (dst, src) in out.chunks_exact_mut(ow).zip(full.chunks_exact(layout.wq)) {
            dst.copy_from_slice(&src[..ow]);
        }
    }

    /// Input gradient of [`Self::depthwise_forward_plane`]: the output gradient laid
    /// out `wq` wide (zeros past `ow`), added into the phases by the same shifted runs, then
    /// un-phased and cropped to the plane.
    #[inline(always)]
    fn depthwise_backward_plane(
        &self,
        c: usize,
        g: &[f32],
        h: usize,
        w: usize,
        plane: &mut [f32],
        scratch: &mut DepthwiseScratch,
    ) {
        let k = &self.kernel;
        let (oh, ow) = self.out_size(h, w);
        let layout = PhaseLayout::new(self, h, w);
        let n = oh * layout.wq;
        let DepthwiseScratch { phases, full } = scratch;
        // Columns ow..wq of `full` are never written: still zero from the scratch's creation.
        let full = &mut full[..n];
        for (dst, src) in full.chunks_exact_mut(layout.wq).zip(g.chunks_exact(ow)) {
            dst[..ow].copy_from_slice(src);
        }
        phases.fill(0.0);
        let wk = &k.weight[c * k.kh * k.kw..(c + 1) * k.kh * k.kw];
        for dy in 0..k.kh {
            for dx in 0..k.kw {
                let shift = layout.tap_shift(dy, dx);
                let wv = wk[dy * k.kw + dx];
                for (d, &gv) in phases[shift..shift + n].iter_mut().zip(full.iter()) {
                    *d += wv * gv;
                }
            }
        }
        for (y, row) in plane.chunks_exact_mut(w).enumerate() {
            for (x0, start) in layout.row_runs(y) {
                if k.stride == 1 {
                    row[x0..].copy_from_slice(&phases[start..start + w - x0]);
                } else {
                    for (v, &d) in row[x0..].iter_mut().step_by(k.stride).zip(&phases[start..]) {
                        *v = d;
                    }
                }
            }
        }
    }

    /// Forward of one sample: x [c_in, h, w] → y [c_out, oh, ow].
    fn forward_sample(&self, x: &[f32], h: usize, w: usize, y: &mut [f32], par: Parallelism) {
        let k = &self.kernel;
        let (oh, ow) = self.out_size(h, w);
        let hw_out = oh * ow;
        if self.is_depthwise() {
            y.par_chunks_mut(hw_out).enumerate().for_each_init(
                || DepthwiseScratch::new(self, h, w),
                |scratch, (c, out)| {
                    let plane = &x[c * h * w..(c + 1) * h * w];
                    with_wide_vectors(
                        #[inline(always)]
                        || self.depthwise_forward_plane(c, plane, h, w, out, scratch),
                    )
                },
            );
        } else if self.is_pointwise() {
            matmul(
                k.c_out,
                hw_out,
                k.c_in,
                &k.weight,
                (k.c_in, 1),
                x,
                (h * w, 1),
                y,
                false,
                par,
            );
        } else {
            let cg = k.c_in / k.groups;
            let og = k.c_out / k.groups;
            let kk = cg * k.kh * k.kw;
            let band_rows = band_rows(kk, oh, ow);
            // Every element is written by im2col.
            let mut cols = buffers::take(kk * band_rows * ow);
            let geometry = Geometry { h, w, ow };
            for g in 0..k.groups {
                let wg = &k.weight[g * og * kk..(g + 1) * og * kk];
                for oy0 in (0..oh).step_by(band_rows) {
                    let rows = oy0..(oy0 + band_rows).min(oh);
                    let nb = rows.len() * ow;
                    self.im2col(x, geometry, g * cg..(g + 1) * cg, rows, &mut cols[..kk * nb]);
                    matmul_strided(
                        og,
                        nb,
                        kk,
                        wg,
                        (kk, 1),
                        &cols,
                        (nb, 1),
                        (&mut y[g * og * hw_out + oy0 * ow..], hw_out),
                        false,
                        par,
                    );
                }
            }
            buffers::give(cols);
        }
        if let Some(b) = &k.bias {
            for (c, out) in y.chunks_mut(hw_out).enumerate() {
                out.iter_mut().for_each(|v| *v += b[c]);
            }
        }
    }

    /// Input gradient of one sample: dy [c_out, oh, ow] → dx [c_in, h, w].
    fn backward_sample(&self, dy: &[f32], h: usize, w: usize, dx: &mut [f32], par: Parallelism) {
        let k = &self.kernel;
        let (oh, ow) = self.out_size(h, w);
        let hw_out = oh * ow;
        if self.is_depthwise() {
            dx.par_chunks_mut(h * w).enumerate().for_each_init(
                || DepthwiseScratch::new(self, h, w),
                |scratch, (c, plane)| {
                    let g = &dy[c * hw_out..(c + 1) * hw_out];
                    with_wide_vectors(
                        #[inline(always)]
                        || self.depthwise_backward_plane(c, g, h, w, plane, scratch),
                    )
                },
            );
        } else if self.is_pointwise() {
            // dX = Wᵀ·dY: Wᵀ is W [c_out, c_in] read with swapped strides.
            matmul(
                k.c_in,
                hw_out,
                k.c_out,
                &k.weight,
                (1, k.c_in),
                dy,
                (hw_out, 1),
                dx,
                false,
                par,
            );
        } else {
            let cg = k.c_in / k.groups;
            let og = k.c_out / k.groups;
            let kk = cg * k.kh * k.kw;
            let band_rows = band_rows(kk, oh, ow);
            // Every element is written by the GEMM.
            let mut cols = buffers::take(kk * band_rows * ow);
            let geometry = Geometry { h, w, ow };
            dx.fill(0.0);
            for g in 0..k.groups {
                let wg = &k.weight[g * og * kk..(g + 1) * og * kk];
                for oy0 in (0..oh).step_by(band_rows) {
                    let rows = oy0..(oy0 + band_rows).min(oh);
                    let nb = rows.len() * ow;
                    matmul(
                        kk,
                        nb,
                        og,
                        wg,
                        (1, kk),
                        &dy[g * og * hw_out + oy0 * ow..],
                        (hw_out, 1),
                        &mut cols[..kk * nb],
                        false,
                        par,
                    );
                    self.col2im(&cols, geometry, g * cg..(g + 1) * cg, rows, dx);
                }
            }
            buffers::give(cols);
        }
    }
}

/// The zero-padded input plane of a depthwise layer, split into stride² phases (rows ≡ py
/// and columns ≡ px mod s), each `hq`×`wq`, laid out one after another. Tap (dy, dx) of
/// output (oy, ox) reads phase (dy mod s, dx mod s) at (oy + dy/s, ox + dx/s): for a whole
/// plane, one contiguous run shifted by a constant ([`Self::tap_shift`]).
struct PhaseLayout {
    stride: usize,
    pads: Pads,
    w: usize,
    hq: usize,
    wq: usize,
}

impl PhaseLayout {
    fn new(op: &ConvOp, h: usize, w: usize) -> Self {
        let (s, pads) = (op.kernel.stride, op.pads);
        Self {
            stride: s,
            pads,
            w,
            hq: (h + pads.top + pads.bottom).div_ceil(s),
            wq: (w + pads.left + pads.right).div_ceil(s),
        }
    }

    /// Elements of the layout, plus one spare row: runs for the junk columns past `ow` may
    /// read a little beyond the last phase.
    fn len(&self) -> usize {
        self.stride * self.stride * self.hq * self.wq + self.wq
    }

    /// Where tap (dy, dx)'s run starts: its phase, then (dy/s, dx/s) into it.
    fn tap_shift(&self, dy: usize, dx: usize) -> usize {
        let s = self.stride;
        ((dy % s) * s + dx % s) * self.hq * self.wq + (dy / s) * self.wq + dx / s
    }

    /// For input row `y`, one (x0, start) per phase it has columns in: the columns x0,
    /// x0 + s, … (those with (x + left) ≡ px mod s) sit contiguously in the layout from
    /// `start`.
    fn row_runs(&self, y: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let s = self.stride;
        let yp = y + self.pads.top;
        let (py, qy) = (yp % s, yp / s);
        (0..s).filter_map(move |px| {
            let x0 = (px + s - self.pads.left % s) % s;
            (x0 < self.w).then(|| (x0, ((py * s + px) * self.hq + qy) * self.wq + (x0 + self.pads.left) / s))
        })
    }
}

/// One task's buffers for the depthwise planes of one call, zeroed once and reused plane
/// after plane: the padding of `phases` and the junk columns of `full` are never written,
/// so they stay zero without a fill per plane.
struct DepthwiseScratch {
    phases: Vec<f32>,
    full: Vec<f32>,
}

impl DepthwiseScratch {
    fn new(op: &ConvOp, h: usize, w: usize) -> Self {
        let layout = PhaseLayout::new(op, h, w);
        let (oh, _) = op.out_size(h, w);
        Self {
            phases: vec![0f32; layout.len()],
            full: vec![0f32; oh * layout.wq],
        }
    }
}

/// Output rows per im2col band: the band's columns (kk rows of band·ow values) stay
/// within about 512 KiB, a quarter of a core's L2, so the GEMM reads them from cache
/// instead of from memory. At least one row.
fn band_rows(kk: usize, oh: usize, ow: usize) -> usize {
    const BAND_BYTES: usize = 512 << 10;
    (BAND_BYTES / (kk * ow * 4).max(1)).clamp(1, oh.max(1))
}

/// Splits a batch across threads when there are several samples; a single sample lets
/// GEMM use the threads instead.
fn split_batch(n: usize) -> Parallelism {
    if n > 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

impl CustomOp1 for ConvOp {
    fn name(&self) -> &'static str {
        "pathscope-conv2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        self.check_input(c, h, w)?;
        let x = contiguous_f32("conv2d", storage, layout)?;
        let (y, oh, ow) = self.forward_batch(x, n, h, w, None);
        Ok((CpuStorage::F32(y), Shape::from((n, self.kernel.c_out, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = arg.dims4()?;
        let g = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let (oh, ow) = self.out_size(h, w);
        let dx = self.backward_batch((&g, self.kernel.c_out * oh * ow), n, h, w);
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}

impl ConvOp {
    /// y = clamp(conv(x)) for a batch x [n, c_in, h, w] (row-major); the optional clamp
    /// (lo, hi) is the fused activation, applied while the sample's output is in cache.
    pub(crate) fn forward_batch(
        &self,
        x: &[f32],
        n: usize,
        h: usize,
        w: usize,
        clamp: Option<(f32, f32)>,
    ) -> (Vec<f32>, usize, usize) {
        let (oh, ow) = self.out_size(h, w);
        let per_out = self.kernel.c_out * oh * ow;
        // Every element is written: by the GEMMs, the Winograd output transform, or the
        // depthwise planes.
        let mut y = buffers::take(n * per_out);
        self.forward_batch_into(x, n, h, w, clamp, (&mut y, per_out));
        (y, oh, ow)
    }

    /// [`Self::forward_batch`] writing sample s's output [c_out, oh, ow] to
    /// `out[s·stride..]`: with a stride larger than that, one operand of a channel
    /// concatenation is written in place.
    pub(crate) fn forward_batch_into(
        &self,
        x: &[f32],
        n: usize,
        h: usize,
        w: usize,
        clamp: Option<(f32, f32)>,
        (out, stride): (&mut [f32], usize),
    ) {
        let k = &self.kernel;
        let per_in = k.c_in * h * w;
        if self.is_winograd() {
            let weights = k
                .winograd
                .get_or_init(|| WinogradWeights::forward(&k.weight, k.c_out, k.c_in));
            let pads = self.pads;
            winograd::conv3x3(
                weights,
                (x, per_in),
                n,
                (h, w),
                pads,
                k.bias.as_deref(),
                clamp,
                (out, stride),
            );
            return;
        }
        let (oh, ow) = self.out_size(h, w);
        let per_out = k.c_out * oh * ow;
        assert!(stride >= per_out && (n == 0 || (n - 1) * stride + per_out <= out.len()));
        let par = split_batch(n);
        out.par_chunks_mut(stride)
            .zip(x.par_chunks(per_in))
            .for_each(|(ys, xs)| {
                let ys = &mut ys[..per_out];
                self.forward_sample(xs, h, w, ys, par);
                if let Some((lo, hi)) = clamp {
                    ys.iter_mut().for_each(|v| *v = v.max(lo).min(hi));
                }
            });
    }

    /// Input gradient of a batch: dy [n, c_out, oh, ow] with sample s at `dy[s·stride..]`
    /// (`stride` > c_out·oh·ow for one operand of a channel concatenation) →
    /// dx [n, c_in, h, w].
    pub(crate) fn backward_batch(&self, (dy, stride): (&[f32], usize), n: usize, h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = self.out_size(h, w);
        let k = &self.kernel;
        let per_in = k.c_in * h * w;
        // Every element is written: by the Winograd output transform, the GEMM, the
        // depthwise planes, or zero-filled first on the im2col path (col2im adds).
        let mut dx = buffers::take(n * per_in);
        if self.is_winograd() {
            let weights = k
                .winograd_transposed
                .get_or_init(|| WinogradWeights::input_gradient(&k.weight, k.c_out, k.c_in));
            let pads = self.transposed_pads();
            winograd::conv3x3(weights, (dy, stride), n, (oh, ow), pads, None, None, (&mut dx, per_in));
            return dx;
        }
        let per_out = k.c_out * oh * ow;
        assert!(stride >= per_out && (n == 0 || (n - 1) * stride + per_out <= dy.len()));
        let par = split_batch(n);
        dx.par_chunks_mut(per_in)
            .zip(dy.par_chunks(stride))
            .for_each(|(d, gs)| self.backward_sample(&gs[..per_out], h, w, d, par));
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// `x` padded with zeros on each side (candle's own op, the reference's padding).
    fn zero_pad(x: &Tensor, pads: Pads) -> Tensor {
        x.pad_with_zeros(2, pads.top, pads.bottom)
            .and_then(|x| x.pad_with_zeros(3, pads.left, pads.right))
            .unwrap()
    }

    /// The batch read or written `stride` elements apart per sample, from an offset (one
    /// operand of a channel concatenation) gives the same numbers as the packed batch, and
    /// leaves the elements between samples alone.
    fn check_strided_batches(op: &ConvOp, x: &[f32], (h, w): (usize, usize), case: usize) {
        let n = x.len() / (op.kernel.c_in * h * w);
        let (packed, oh, ow) = op.forward_batch(x, n, h, w, Some((-0.5, 0.5)));
        let per_out = op.kernel.c_out * oh * ow;
        let (offset, stride) = (3, per_out + 5);
        let mut wide = vec![f32::NAN; offset + n * stride];
        op.forward_batch_into(x, n, h, w, Some((-0.5, 0.5)), (&mut wide[offset..], stride));
        for s in 0..n {
            let at = offset + s * stride;
            assert_eq!(
                &wide[at..at + per_out],
                &packed[s * per_out..(s + 1) * per_out],
                "case {case}"
            );
            assert!(wide[at + per_out..(at + stride).min(wide.len())]
                .iter()
                .all(|v| v.is_nan()));
        }
        assert!(wide[..offset].iter().all(|v| v.is_nan()), "case {case}");
        let dy: Vec<f32> = (0..n * per_out).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let mut wide_dy = vec![f32::NAN; offset + n * stride];
        for s in 0..n {
            wide_dy[offset + s * stride..][..per_out].copy_from_slice(&dy[s * per_out..(s + 1) * per_out]);
        }
        let dx_packed = op.backward_batch((&dy, per_out), n, h, w);
        let dx_wide = op.backward_batch((&wide_dy[offset..], stride), n, h, w);
        assert!(
            dx_wide == dx_packed,
            "case {case}: the input gradient read from a strided batch differs"
        );
    }

    /// Our op against candle's conv2d (padding applied explicitly), values and input
    /// gradients, for the geometries the architectures use.
    #[test]
    fn matches_candle_conv2d_in_value_and_input_gradient() {
        // An output element the op leaves unwritten comes out NaN and fails the comparison.
        crate::kernels::buffers::poison_taken_buffers();
        let dev = Device::Cpu;
        // (c_in, c_out, k, stride, groups, pads, h, w)
        let cases = [
            (3, 8, 1, 1, 1, Pads::default(), 9, 7),
            (
                4,
                6,
                3,
                1,
                1,
                Pads {
                    top: 1,
                    bottom: 1,
                    left: 1,
                    right: 1,
                },
                9,
                8,
            ),
            (3, 5, 3, 2, 1, Pads::default(), 11, 11),
            (
                3,
                4,
                7,
                2,
                1,
                Pads {
                    top: 3,
                    bottom: 3,
                    left: 3,
                    right: 3,
                },
                16,
                13,
            ),
            (
                4,
                6,
                3,
                2,
                1,
                Pads {
                    top: 0,
                    bottom: 1,
                    left: 0,
                    right: 1,
                },
                10,
                12,
            ),
            (
                6,
                6,
                3,
                1,
                6,
                Pads {
                    top: 1,
                    bottom: 1,
                    left: 1,
                    right: 1,
                },
                9,
                9,
            ),
            (
                5,
                5,
                5,
                2,
                5,
                Pads {
                    top: 1,
                    bottom: 2,
                    left: 1,
                    right: 2,
                },
                12,
                11,
            ),
            (
                4,
                6,
                3,
                1,
                2,
                Pads {
                    top: 1,
                    bottom: 1,
                    left: 1,
                    right: 1,
                },
                7,
                7,
            ),
        ];
        // Depthwise geometries for the fused taps: stride 2 with TF "SAME" padding, 5×5,
        // a long row (the fused loop runs wide), planes too small for any fused column,
        // and a 7×7 kernel (tap by tap).
        let p = |top, bottom, left, right| Pads {
            top,
            bottom,
            left,
            right,
        };
        let depthwise = [
            (4, 4, 3, 2, 4, p(0, 1, 0, 1), 8, 8),
            (4, 4, 3, 2, 4, p(0, 1, 0, 1), 7, 9),
            (3, 3, 5, 1, 3, p(2, 2, 2, 2), 7, 7),
            (3, 3, 5, 2, 3, p(1, 2, 1, 2), 9, 10),
            (2, 2, 3, 1, 2, p(1, 1, 1, 1), 3, 40),
            (2, 2, 5, 1, 2, p(2, 2, 2, 2), 2, 2),
            (2, 2, 5, 2, 2, p(2, 2, 2, 2), 1, 3),
            (2, 2, 7, 1, 2, p(3, 3, 3, 3), 9, 12),
        ];
        // Winograd geometries (3×3, stride 1): no padding, asymmetric padding, a 1×1
        // input, odd sizes whose last tiles overhang, more channels, and padding 3 (too
        // wide for the transposed direction: im2col instead).
        let winograd = [
            (5, 7, 3, 1, 1, p(0, 0, 0, 0), 8, 9),
            (3, 4, 3, 1, 1, p(2, 0, 1, 2), 7, 5),
            (2, 3, 3, 1, 1, p(1, 1, 1, 1), 1, 1),
            (16, 8, 3, 1, 1, p(1, 1, 1, 1), 13, 11),
            (2, 2, 3, 1, 1, p(3, 3, 3, 3), 4, 4),
            // im2col taps that fall wholly in the padding for some columns.
            (2, 3, 5, 2, 1, p(4, 4, 4, 4), 1, 2),
            // Several im2col bands (400 rows × 40 columns: 64 KiB per output row, 8 rows
            // per band), the last one short.
            (16, 8, 5, 2, 1, p(2, 2, 2, 2), 79, 80),
        ];
        let cases: Vec<_> = cases.iter().chain(&depthwise).chain(&winograd).collect();
        for (i, &&(c_in, c_out, k, stride, groups, pads, h, w)) in cases.iter().enumerate() {
            let weight = Tensor::randn(0f32, 1.0, (c_out, c_in / groups, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, c_out, &dev).unwrap();
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, c_in, h, w), &dev).unwrap()).unwrap();
            let op = ConvOp {
                kernel: Arc::new(ConvKernel {
                    weight: weight.flatten_all().unwrap().to_vec1().unwrap(),
                    bias: Some(bias.to_vec1().unwrap()),
                    c_out,
                    c_in,
                    kh: k,
                    kw: k,
                    stride,
                    groups,
                    winograd: OnceLock::new(),
                    winograd_transposed: OnceLock::new(),
                }),
                pads,
            };
            check_strided_batches(&op, &x.as_tensor().flatten_all().unwrap().to_vec1().unwrap(), (h, w), i);
            let ours = x.as_tensor().apply_op1(op).unwrap();
            let padded = zero_pad(x.as_tensor(), pads);
            let reference = padded
                .conv2d(&weight, 0, stride, 1, groups)
                .unwrap()
                .broadcast_add(&bias.reshape((1, c_out, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(ours.dims(), reference.dims(), "case {i}");
            let a = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-4 * (1.0 + q.abs()), "case {i}: forward {p} vs {q}");
            }
            // The input gradient is the adjoint Lᵀr of the linear map L (the convolution
            // without bias): ⟨L x₂, r⟩ = ⟨x₂, Lᵀ r⟩ for any x₂. (Candle's own conv2d backward
            // cannot serve as the reference: it returns a wrongly shaped gradient for some
            // stride-2 geometries.)
            let r = Tensor::randn(0f32, 1.0, ours.dims(), &dev).unwrap();
            let grads = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let lt_r = grads.get(x.as_tensor()).unwrap();
            assert_eq!(lt_r.dims(), x.as_tensor().dims());
            for _ in 0..3 {
                let x2 = Tensor::randn(0f32, 1.0, x.as_tensor().dims(), &dev).unwrap();
                let lx2 = zero_pad(&x2, pads).conv2d(&weight, 0, stride, 1, groups).unwrap();
                // Both inner products in f64; they cancel heavily (terms of order 1, sums
                // of order 0.1), so the tolerance is relative to the sum of |terms|.
                let dot = |a: &Tensor, b: &Tensor| {
                    let (a, b) = (a.flatten_all().unwrap(), b.flatten_all().unwrap());
                    let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
                    a.iter().zip(&b).fold((0f64, 0f64), |(s, m), (&p, &q)| {
                        (s + p as f64 * q as f64, m + (p as f64 * q as f64).abs())
                    })
                };
                let (lhs, scale) = dot(&lx2, &r);
                let (rhs, _) = dot(&x2, lt_r);
                assert!(
                    (lhs - rhs).abs() < 1e-5 * scale,
                    "case {i}: adjoint {lhs} vs {rhs} (scale {scale})"
                );
            }
        }
    }
}
