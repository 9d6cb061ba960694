//! f32 matrix products through the `gemm` crate (candle's own GEMM), with bounds checked
//! before the unsafe call: the convolutions' im2col and Winograd products, the tape's
//! linear layers, and the blur of Blur IG.

use gemm::Parallelism;

/// C = A·B (+ C if `accumulate`), with A m×k and B k×n given by (row stride, column stride)
/// and C row-major m×n: a bounds-checked wrapper of the `gemm` crate (candle's own GEMM).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    c: &mut [f32],
    accumulate: bool,
    parallelism: Parallelism,
) {
    matmul_strided(
        m,
        n,
        k,
        a,
        (a_rs, a_cs),
        b,
        (b_rs, b_cs),
        (c, n),
        accumulate,
        parallelism,
    )
}

/// [`matmul`] with C's rows `c_rs` apart (C = A·B into a row-major m×n view of `c`).
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    (c, c_rs): (&mut [f32], usize),
    accumulate: bool,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: C = 0 (C may be a reused buffer holding stale values).
        if !accumulate {
            c.chunks_mut(c_rs).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    assert!((m - 1) * a_rs + (k - 1) * a_cs < a.len(), "lhs out of bounds");
    assert!((k - 1) * b_rs + (n - 1) * b_cs < b.len(), "rhs out of bounds");
    assert!(n <= c_rs && (m - 1) * c_rs + n <= c.len(), "dst out of bounds");
    // SAFETY: the asserts above keep every index the strides reach inside the slices; the
    // destination is m×n with rows c_rs ≥ n apart and does not alias the inputs (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A matrix product of stacks: `a` [..., m, k] × `b` [..., k, n] with the batch axes
/// broadcast (numpy's matmul); each operand may be read transposed in place
/// (`trans`: its last two axes swapped, so `a` is then stored [..., k, m]).
pub struct BatchedMatmul<'a> {
    pub a: &'a [f32],
    pub a_dims: &'a [usize],
    pub trans_a: bool,
    pub b: &'a [f32],
    pub b_dims: &'a [usize],
    pub trans_b: bool,
}

impl BatchedMatmul<'_> {
    /// (batch dims, m, k, n), or `None` if the shapes do not fit.
    fn geometry(&self) -> Option<(Vec<usize>, usize, usize, usize)> {
        let (ra, rb) = (self.a_dims.len(), self.b_dims.len());
        if ra < 2 || rb < 2 {
            return None;
        }
        let (m, ka) = if self.trans_a {
            (self.a_dims[ra - 1], self.a_dims[ra - 2])
        } else {
            (self.a_dims[ra - 2], self.a_dims[ra - 1])
        };
        let (kb, n) = if self.trans_b {
            (self.b_dims[rb - 1], self.b_dims[rb - 2])
        } else {
            (self.b_dims[rb - 2], self.b_dims[rb - 1])
        };
        if ka != kb {
            return None;
        }
        let batch = super::pointwise::broadcast_shape(&self.a_dims[..ra - 2], &self.b_dims[..rb - 2])?;
        Some((batch, m, ka, n))
    }

    /// The product and its dims.
    pub fn run(&self) -> Option<(Vec<f32>, Vec<usize>)> {
        let (batch, m, k, n) = self.geometry()?;
        let count: usize = batch.iter().product();
        let sa = super::pointwise::broadcast_strides(&self.a_dims[..self.a_dims.len() - 2], &batch);
        let sb = super::pointwise::broadcast_strides(&self.b_dims[..self.b_dims.len() - 2], &batch);
        let (per_a, per_b) = (m * k, k * n);
        let a_strides = if self.trans_a { (1, m) } else { (k, 1) };
        let b_strides = if self.trans_b { (1, k) } else { (n, 1) };
        let mut out = super::buffers::take(count * m * n);
        // One product for the whole stack when `b` is shared by every matrix of `a` (a
        // layer's weights): `a` [..., m, k] is then one [(...·m), k] matrix, and so is the
        // output. Transformer graphs often put the batch between the rows ([L, N, C]), where
        // a product per matrix would be a row at a time.
        let a_whole = !self.trans_a && self.a_dims.len() - 2 == batch.len() && self.a_dims[..batch.len()] == batch[..];
        if count >= 2 && a_whole && sb.iter().zip(&batch).all(|(&s, &len)| s == 0 || len == 1) {
            matmul(
                count * m,
                n,
                k,
                &self.a[..count * per_a],
                a_strides,
                &self.b[..per_b],
                b_strides,
                &mut out,
                false,
                Parallelism::Rayon(0),
            );
            let mut dims = batch;
            dims.extend([m, n]);
            return Some((out, dims));
        }
        let offsets = |index: usize| -> (usize, usize) {
            let mut rem = index;
            let (mut oa, mut ob) = (0, 0);
            for axis in (0..batch.len()).rev() {
                let i = rem % batch[axis];
                rem /= batch[axis];
                oa += i * sa[axis];
                ob += i * sb[axis];
            }
            (oa * per_a, ob * per_b)
        };
        let one = |index: usize, c: &mut [f32], parallelism: Parallelism| {
            let (oa, ob) = offsets(index);
            matmul(
                m,
                n,
                k,
                &self.a[oa..oa + per_a],
                a_strides,
                &self.b[ob..ob + per_b],
                b_strides,
                c,
                false,
                parallelism,
            );
        };
        use rayon::prelude::*;
        if count >= 2 {
            out.par_chunks_mut((m * n).max(1))
                .enumerate()
                .for_each(|(i, c)| one(i, c, Parallelism::None));
        } else if count == 1 {
            one(0, &mut out, Parallelism::Rayon(0));
        }
        let mut dims = batch;
        dims.extend([m, n]);
        Some((out, dims))
    }
}
