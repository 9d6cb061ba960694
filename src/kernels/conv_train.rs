//! A 3×3, stride-1, padding-1 convolution that candle's autograd can train: gradients for
//! both the input and the weights, by im2col and three GEMMs. Candle's own CPU `conv2d`
//! (and an im2col built from candle's ops) ran ROAR's small network at about a tenth of
//! the GEMM's speed; this keeps a retrain to seconds.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;

use super::gemm::matmul;
use super::storage::contiguous_f32;

/// The op: `x.apply_op3(w, b, Conv3x3)` = ReLU(conv(x, w) + b) with x [N, C, H, W],
/// w [O, C, 3, 3] and b [O], f32 on the CPU. The bias and ReLU are fused: as separate
/// candle ops they cost as much as the convolution. The ReLU's derivative at 0 is 0.
pub struct Conv3x3;

/// Sizes of one call.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
}

impl Dims {
    fn of(x: &Shape, w: &Shape) -> Result<Dims> {
        let (n, c, h, wd) = x.dims4()?;
        let (o, wc, kh, kw) = w.dims4()?;
        if wc != c || kh != 3 || kw != 3 {
            candle_core::bail!("conv3x3: weights {w:?} do not fit input {x:?}");
        }
        Ok(Dims { n, c, h, w: wd, o })
    }

    /// Columns of the im2col matrix: one per output pixel of the batch.
    fn pixels(self) -> usize {
        self.n * self.h * self.w
    }

    fn parallelism(self) -> Parallelism {
        if self.pixels() * self.o >= 1 << 16 {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        }
    }
}

/// For a kernel offset k (0..3) along a side of length `len`: the output positions that
/// read inside the image, and the input position the first of them reads.
fn valid(k: usize, len: usize) -> (std::ops::Range<usize>, usize) {
    match k {
        0 => (1..len, 0),
        1 => (0..len, 0),
        _ => (0..len.saturating_sub(1), 1),
    }
}

/// [C·9 × N·H·W]: row (c, ky, kx), column (n, y, x) holds x[n, c, y+ky−1, x+kx−1] (0 outside).
fn im2col(x: &[f32], d: Dims) -> Vec<f32> {
    let (hw, np) = (d.h * d.w, d.pixels());
    let mut cols = vec![0f32; d.c * 9 * np];
    for c in 0..d.c {
        for k in 0..9 {
            let ((ys, sy0), (xs, sx0)) = (valid(k / 3, d.h), valid(k % 3, d.w));
            let row = &mut cols[(c * 9 + k) * np..(c * 9 + k + 1) * np];
            for n in 0..d.n {
                let plane = &x[(n * d.c + c) * hw..(n * d.c + c + 1) * hw];
                for (i, y) in ys.clone().enumerate() {
                    let from = (sy0 + i) * d.w + sx0;
                    let to = n * hw + y * d.w + xs.start;
                    row[to..to + xs.len()].copy_from_slice(&plane[from..from + xs.len()]);
                }
            }
        }
    }
    cols
}

/// The adjoint of [`im2col`]: every column entry added back to the pixel it came from.
fn col2im(cols: &[f32], d: Dims) -> Vec<f32> {
    let (hw, np) = (d.h * d.w, d.pixels());
    let mut x = vec![0f32; d.n * d.c * hw];
    for c in 0..d.c {
        for k in 0..9 {
            let ((ys, sy0), (xs, sx0)) = (valid(k / 3, d.h), valid(k % 3, d.w));
            let row = &cols[(c * 9 + k) * np..(c * 9 + k + 1) * np];
            for n in 0..d.n {
                let plane = &mut x[(n * d.c + c) * hw..(n * d.c + c + 1) * hw];
                for (i, y) in ys.clone().enumerate() {
                    let to = (sy0 + i) * d.w + sx0;
                    let from = n * hw + y * d.w + xs.start;
                    for (p, &v) in plane[to..to + xs.len()].iter_mut().zip(&row[from..from + xs.len()]) {
                        *p += v;
                    }
                }
            }
        }
    }
    x
}

/// [N, O, H·W] as [O × N·H·W] (and back with `inverse`).
fn batch_to_rows(values: &[f32], d: Dims, inverse: bool) -> Vec<f32> {
    let hw = d.h * d.w;
    let mut out = vec![0f32; values.len()];
    for n in 0..d.n {
        for o in 0..d.o {
            let batch = (n * d.o + o) * hw;
            let rows = o * d.pixels() + n * hw;
            if inverse {
                out[batch..batch + hw].copy_from_slice(&values[rows..rows + hw]);
            } else {
                out[rows..rows + hw].copy_from_slice(&values[batch..batch + hw]);
            }
        }
    }
    out
}

impl CustomOp3 for Conv3x3 {
    fn name(&self) -> &'static str {
        "pathscope-conv3x3-relu-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(xl.shape(), wl.shape())?;
        let x = contiguous_f32("conv3x3", xs, xl)?;
        let w = contiguous_f32("conv3x3", ws, wl)?;
        let b = contiguous_f32("conv3x3", bs, bl)?;
        if b.len() != d.o {
            candle_core::bail!("conv3x3: {} biases for {} outputs", b.len(), d.o);
        }
        let cols = im2col(x, d);
        let (k, np) = (d.c * 9, d.pixels());
        let mut rows = vec![0f32; d.o * np];
        for (row, &bias) in rows.chunks_mut(np).zip(b) {
            row.fill(bias);
        }
        matmul(d.o, np, k, w, (k, 1), &cols, (np, 1), &mut rows, true, d.parallelism());
        rows.iter_mut().for_each(|v| *v = v.max(0.0));
        Ok((
            CpuStorage::F32(batch_to_rows(&rows, d, true)),
            Shape::from((d.n, d.o, d.h, d.w)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = Dims::of(x.shape(), w.shape())?;
        let xv = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let wv = w.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let y = res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let mut g = grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        // Through the ReLU: nothing passes where the output is 0.
        g.iter_mut().zip(&y).for_each(|(g, &y)| {
            if y <= 0.0 {
                *g = 0.0
            }
        });
        let g = batch_to_rows(&g, d, false);
        let (k, np) = (d.c * 9, d.pixels());
        let db: Vec<f32> = g
            .chunks(np)
            .map(|row| row.iter().map(|&v| v as f64).sum::<f64>() as f32)
            .collect();
        // dW [O × C·9] = G [O × NP] · colsᵀ.
        let cols = im2col(&xv, d);
        let mut dw = vec![0f32; d.o * k];
        matmul(d.o, k, np, &g, (np, 1), &cols, (1, np), &mut dw, false, d.parallelism());
        // dcols [C·9 × NP] = Wᵀ · G, folded back onto the input.
        let mut dcols = cols;
        matmul(k, np, d.o, &wv, (1, k), &g, (np, 1), &mut dcols, false, d.parallelism());
        let dx = col2im(&dcols, d);
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
            Some(Tensor::from_vec(db, b.shape(), b.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_in_value_and_every_gradient() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4, 5, 6), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (7, 4, 3, 3), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 7, &dev).unwrap()).unwrap();
        let probe = Tensor::randn(0f32, 1.0, (3, 7, 5, 6), &dev).unwrap();
        let ours = x.as_tensor().apply_op3(w.as_tensor(), b.as_tensor(), Conv3x3).unwrap();
        let theirs = x
            .as_tensor()
            .conv2d(w.as_tensor(), 1, 1, 1, 1)
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, 7, 1, 1)).unwrap())
            .unwrap()
            .relu()
            .unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| {
            a.sub(b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(max_diff(&ours, &theirs) < 1e-4);
        let g1 = ours.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = theirs.mul(&probe).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            let (a, b) = (g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap());
            assert!(max_diff(a, b) < 1e-3, "{}", max_diff(a, b));
        }
    }
}
