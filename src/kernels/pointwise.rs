//! Elementwise functions and their derivatives, and binary operations with numpy
//! broadcasting (forward, and the reverse pass that sums each operand's gradient back to
//! its own shape). Plain row-major f32 buffers; shapes are given as dims.

use rayon::prelude::*;

use super::buffers;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// A function applied to each element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// clamp(x, lo, hi), derivative [lo < x < hi] (PyTorch's convention).
    Clamp {
        lo: f32,
        hi: f32,
    },
    Sigmoid,
    /// x·σ(x) (SiLU, "swish") in one op: as a sigmoid and a product it took two buffers
    /// and four passes in the reverse pass.
    Silu,
    Tanh,
    Erf,
    /// x·Φ(x) with the exact normal CDF.
    GeluErf,
    /// PyTorch's tanh approximation of GELU.
    GeluTanh,
    Exp,
    Log,
    Sqrt,
    Neg,
    Recip,
    Abs,
    /// a·x + b.
    Affine {
        mul: f32,
        add: f32,
    },
    /// x^p for a constant p.
    Powf(f32),
    /// x for x > 0, else αx; derivative α at 0 (PyTorch's convention).
    LeakyRelu(f32),
    /// clamp(αx + β, 0, 1), derivative α strictly inside.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// x·relu6(x + 3)/6, with PyTorch's derivative (x/3 + ½ on [−3, 3]).
    HardSwish,
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

fn erf(x: f32) -> f32 {
    candle_core::cpu::erf::erf_f32(x)
}

impl Unary {
    fn apply(self, x: f32) -> f32 {
        match self {
            Unary::Clamp { lo, hi } => x.max(lo).min(hi),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Silu => x / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::Erf => erf(x),
            Unary::GeluErf => 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2)),
            Unary::GeluTanh => 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh()),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Neg => -x,
            Unary::Recip => 1.0 / x,
            Unary::Abs => x.abs(),
            Unary::Affine { mul, add } => mul * x + add,
            Unary::Powf(p) => x.powf(p),
            Unary::LeakyRelu(alpha) => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Unary::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        }
    }

    /// dy/dx at input `x` with output `y`.
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Unary::Clamp { lo, hi } => {
                if (x > lo) & (x < hi) {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::Sigmoid => y * (1.0 - y),
            Unary::Silu => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 + x * (1.0 - s))
            }
            Unary::Tanh => 1.0 - y * y,
            Unary::Erf => std::f32::consts::FRAC_2_SQRT_PI * (-x * x).exp(),
            Unary::GeluErf => {
                let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() * (FRAC_1_SQRT_2 * std::f32::consts::FRAC_2_SQRT_PI * 0.5);
                cdf + x * pdf
            }
            Unary::GeluTanh => {
                let inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
                let t = inner.tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
            }
            Unary::Exp => y,
            Unary::Log => 1.0 / x,
            Unary::Sqrt => 0.5 / y,
            Unary::Neg => -1.0,
            Unary::Recip => -y * y,
            Unary::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Unary::Affine { mul, .. } => mul,
            Unary::Powf(p) => p * x.powf(p - 1.0),
            Unary::LeakyRelu(alpha) => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Unary::HardSigmoid { alpha, beta } => {
                let v = alpha * x + beta;
                if (v > 0.0) & (v < 1.0) {
                    alpha
                } else {
                    0.0
                }
            }
            Unary::HardSwish => {
                if x < -3.0 {
                    0.0
                } else if x <= 3.0 {
                    x / 3.0 + 0.5
                } else {
                    1.0
                }
            }
        }
    }

    /// Whether the reverse pass needs the input (else the output alone will do).
    pub fn needs_input(self) -> bool {
        !matches!(
            self,
            Unary::Sigmoid | Unary::Tanh | Unary::Exp | Unary::Neg | Unary::Affine { .. }
        )
    }
}

pub fn unary_forward(x: &[f32], op: Unary) -> Vec<f32> {
    let mut y = buffers::take(x.len());
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(ys, xs)| {
        for (o, &v) in ys.iter_mut().zip(xs) {
            *o = op.apply(v);
        }
    });
    y
}

/// g ← g · dy/dx, in place; `x` is the input (or empty where not needed), `y` the output.
pub fn unary_backward(g: &mut [f32], x: &[f32], y: &[f32], op: Unary) {
    let xs: &[f32] = if x.is_empty() { y } else { x };
    g.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK))
        .zip(y.par_chunks(CHUNK))
        .for_each(|((gs, xs), ys)| {
            for ((gv, &xv), &yv) in gs.iter_mut().zip(xs).zip(ys) {
                *gv *= op.derivative(xv, yv);
            }
        });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// The numpy broadcast of two shapes, or `None`.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let x = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let y = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        *o = match (x, y) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides of `dims` (row-major) laid over `target`, 0 along broadcast axes.
pub fn broadcast_strides(dims: &[usize], target: &[usize]) -> Vec<usize> {
    let offset = target.len() - dims.len();
    let mut strides = vec![0; target.len()];
    let mut s = 1;
    for i in (0..dims.len()).rev() {
        strides[i + offset] = if dims[i] == 1 && target[i + offset] != 1 { 0 } else { s };
        s *= dims[i];
    }
    strides
}

/// Calls `f(row, offsets)` for every row of `target` (all axes but the last), with the
/// offsets of that row's first element in each operand, given their strides.
fn for_each_row<const K: usize>(target: &[usize], strides: [&[usize]; K], mut f: impl FnMut(usize, [usize; K])) {
    let rank = target.len();
    if rank == 0 {
        f(0, [0; K]);
        return;
    }
    let rows: usize = target[..rank - 1].iter().product();
    let mut idx = vec![0usize; rank - 1];
    let mut off = [0usize; K];
    for row in 0..rows {
        f(row, off);
        // Next row index, keeping the offsets up to date.
        for axis in (0..rank - 1).rev() {
            idx[axis] += 1;
            for k in 0..K {
                off[k] += strides[k][axis];
            }
            if idx[axis] < target[axis] {
                break;
            }
            for k in 0..K {
                off[k] -= strides[k][axis] * target[axis];
            }
            idx[axis] = 0;
        }
    }
}

/// a ∘ b with broadcasting; returns the result and its shape.
pub fn binary_forward(
    a: &[f32],
    a_dims: &[usize],
    b: &[f32],
    b_dims: &[usize],
    op: Binary,
) -> Option<(Vec<f32>, Vec<usize>)> {
    let target = broadcast_shape(a_dims, b_dims)?;
    let n: usize = target.iter().product();
    let mut out = buffers::take(n);
    let f = move |x: f32, y: f32| match op {
        Binary::Add => x + y,
        Binary::Sub => x - y,
        Binary::Mul => x * y,
        Binary::Div => x / y,
        Binary::Max => x.max(y),
        Binary::Min => x.min(y),
    };
    if a_dims == b_dims {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (xs, ys))| {
                for ((o, &x), &y) in o.iter_mut().zip(xs).zip(ys) {
                    *o = f(x, y);
                }
            });
        return Some((out, target));
    }
    let sa = broadcast_strides(a_dims, &target);
    let sb = broadcast_strides(b_dims, &target);
    let last = *target.last().unwrap_or(&1);
    let (la, lb) = (*sa.last().unwrap_or(&0), *sb.last().unwrap_or(&0));
    let mut starts = Vec::with_capacity(n / last.max(1));
    for_each_row(&target, [&sa, &sb], |_, [oa, ob]| starts.push((oa, ob)));
    out.par_chunks_mut(last.max(1))
        .zip(starts.par_iter())
        .for_each(|(row, &(oa, ob))| {
            for (j, o) in row.iter_mut().enumerate() {
                *o = f(a[oa + j * la], b[ob + j * lb]);
            }
        });
    Some((out, target))
}

/// Sums `g` (shaped `target`) down to `dims` (which broadcasts to `target`).
pub fn sum_to(g: &[f32], target: &[usize], dims: &[usize]) -> Vec<f32> {
    let n: usize = dims.iter().product();
    if dims == target {
        let mut out = buffers::take(n);
        out.copy_from_slice(g);
        return out;
    }
    let s = broadcast_strides(dims, target);
    let last = *target.last().unwrap_or(&1);
    let ls = *s.last().unwrap_or(&0);
    let mut out = vec![0f32; n];
    for_each_row(target, [&s], |row, [o]| {
        let gr = &g[row * last..(row + 1) * last];
        if ls == 0 {
            out[o] += gr.iter().sum::<f32>();
        } else {
            for (j, &v) in gr.iter().enumerate() {
                out[o + j] += v;
            }
        }
    });
    out
}

fn tie(wins: bool, equal: bool) -> f32 {
    if wins {
        1.0
    } else if equal {
        0.5
    } else {
        0.0
    }
}

/// The gradients of a ∘ b with respect to a and b (each summed to its own shape), from the
/// gradient `g` of the result; `None` for an operand that needs none.
#[allow(clippy::too_many_arguments)]
pub fn binary_backward(
    g: &[f32],
    a: &[f32],
    a_dims: &[usize],
    b: &[f32],
    b_dims: &[usize],
    op: Binary,
    want_a: bool,
    want_b: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let Some(target) = broadcast_shape(a_dims, b_dims) else {
        return (None, None);
    };
    // Each operand's elementwise factor, over the target shape.
    let factor = |which_a: bool| -> Vec<f32> {
        let sa = broadcast_strides(a_dims, &target);
        let sb = broadcast_strides(b_dims, &target);
        let last = *target.last().unwrap_or(&1);
        let (la, lb) = (*sa.last().unwrap_or(&0), *sb.last().unwrap_or(&0));
        let mut out = vec![0f32; g.len()];
        let mut starts = Vec::new();
        for_each_row(&target, [&sa, &sb], |_, [oa, ob]| starts.push((oa, ob)));
        out.par_chunks_mut(last.max(1))
            .zip(g.par_chunks(last.max(1)))
            .zip(starts.par_iter())
            .for_each(|((row, gr), &(oa, ob))| {
                for (j, o) in row.iter_mut().enumerate() {
                    let (x, y) = (a[oa + j * la], b[ob + j * lb]);
                    let d = match (op, which_a) {
                        (Binary::Add, _) => 1.0,
                        (Binary::Sub, true) => 1.0,
                        (Binary::Sub, false) => -1.0,
                        (Binary::Mul, true) => y,
                        (Binary::Mul, false) => x,
                        (Binary::Div, true) => 1.0 / y,
                        (Binary::Div, false) => -x / (y * y),
                        // Ties split the gradient in halves, as PyTorch's maximum does.
                        (Binary::Max, true) | (Binary::Min, false) => tie(x > y, x == y),
                        (Binary::Max, false) | (Binary::Min, true) => tie(x < y, x == y),
                    };
                    *o = gr[j] * d;
                }
            });
        out
    };
    let ga = want_a.then(|| {
        if matches!(op, Binary::Add | Binary::Sub) {
            sum_to(g, &target, a_dims)
        } else {
            sum_to(&factor(true), &target, a_dims)
        }
    });
    let gb = want_b.then(|| match op {
        Binary::Add => sum_to(g, &target, b_dims),
        _ => sum_to(&factor(false), &target, b_dims),
    });
    (ga, gb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_adds_rows_and_sums_back() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let b = vec![10.0, 20.0, 30.0];
        let (y, dims) = binary_forward(&a, &[2, 3], &b, &[3], Binary::Add).unwrap();
        assert_eq!(dims, [2, 3]);
        assert_eq!(y, [10., 21., 32., 13., 24., 35.]);
        let (y, _) = binary_forward(&b, &[3, 1], &a[..2], &[1, 2], Binary::Mul).unwrap();
        assert_eq!(y, [0., 10., 0., 20., 0., 30.]);
        let g = vec![1.0; 6];
        let (ga, gb) = binary_backward(&g, &a, &[2, 3], &b, &[3], Binary::Mul, true, true);
        assert_eq!(ga.unwrap(), [10., 20., 30., 10., 20., 30.]);
        assert_eq!(gb.unwrap(), [3., 5., 7.]);
    }

    /// Every derivative against a central difference in f64 of the f32 function.
    #[test]
    fn derivatives_match_finite_differences() {
        let ops = [
            Unary::Sigmoid,
            Unary::Silu,
            Unary::Tanh,
            Unary::Erf,
            Unary::GeluErf,
            Unary::GeluTanh,
            Unary::Exp,
            Unary::Log,
            Unary::Sqrt,
            Unary::Recip,
            Unary::Affine { mul: 0.5, add: 1.0 },
            Unary::Powf(3.0),
        ];
        for op in ops {
            // Negative inputs for the functions defined there.
            let negative: &[f32] = if matches!(op, Unary::Sigmoid | Unary::Silu | Unary::Tanh | Unary::Erf) {
                &[-1.3, -4.0]
            } else {
                &[]
            };
            for &x in [0.3f32, 0.9, 1.7, 2.5].iter().chain(negative) {
                let h = 1e-3f32;
                let num = (op.apply(x + h) as f64 - op.apply(x - h) as f64) / (2.0 * h as f64);
                let d = op.derivative(x, op.apply(x)) as f64;
                assert!((num - d).abs() < 2e-3 * (1.0 + d.abs()), "{op:?} at {x}: {d} vs {num}");
            }
        }
    }
}
