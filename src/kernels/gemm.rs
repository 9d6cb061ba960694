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
