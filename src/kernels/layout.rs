//! Moving elements without arithmetic, and the reverse of each move: permuting axes,
//! picking indices along an axis (slices, gathers, reflect/edge padding), concatenating,
//! padding with a constant, broadcasting. Row-major f32 buffers with their dims.

use rayon::prelude::*;

use super::buffers;

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// x with its axes reordered: output axis i is input axis `perm[i]`.
pub fn permute(x: &[f32], dims: &[usize], perm: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let src = strides(dims);
    let s: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    let n = x.len();
    let mut out = buffers::take(n);
    let rank = out_dims.len();
    if rank == 0 || n == 0 {
        out.copy_from_slice(x);
        return (out, out_dims);
    }
    let last = out_dims[rank - 1];
    let ls = s[rank - 1];
    // Rows of the output in parallel; each row walks the input with the last stride.
    out.par_chunks_mut(last.max(1)).enumerate().for_each(|(row, dst)| {
        let mut rem = row;
        let mut base = 0;
        for axis in (0..rank - 1).rev() {
            base += (rem % out_dims[axis]) * s[axis];
            rem /= out_dims[axis];
        }
        for (j, d) in dst.iter_mut().enumerate() {
            *d = x[base + j * ls];
        }
    });
    (out, out_dims)
}

/// The inverse permutation of `perm`.
pub fn inverse_permutation(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// (outer, axis length, inner) of an axis.
fn split(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    )
}

/// The elements at `indices` along `axis` (repeats allowed).
pub fn select(x: &[f32], dims: &[usize], axis: usize, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let (outer, n, inner) = split(dims, axis);
    let k = indices.len();
    let mut out = buffers::take(outer * k * inner);
    out.par_chunks_mut((k * inner).max(1)).enumerate().for_each(|(o, dst)| {
        for (j, &i) in indices.iter().enumerate() {
            let src = (o * n + i) * inner;
            dst[j * inner..(j + 1) * inner].copy_from_slice(&x[src..src + inner]);
        }
    });
    let mut out_dims = dims.to_vec();
    out_dims[axis] = k;
    (out, out_dims)
}

/// The reverse of [`select`]: each index's gradient added back to its place.
pub fn select_backward(g: &[f32], dims: &[usize], axis: usize, indices: &[usize]) -> Vec<f32> {
    let (outer, n, inner) = split(dims, axis);
    let k = indices.len();
    let mut dx = vec![0f32; outer * n * inner];
    dx.par_chunks_mut((n * inner).max(1)).enumerate().for_each(|(o, dst)| {
        for (j, &i) in indices.iter().enumerate() {
            let src = (o * k + j) * inner;
            for (d, &v) in dst[i * inner..(i + 1) * inner].iter_mut().zip(&g[src..src + inner]) {
                *d += v;
            }
        }
    });
    dx
}

/// Values of the same rank, side by side along `axis`.
pub fn concat(parts: &[(&[f32], &[usize])], axis: usize) -> (Vec<f32>, Vec<usize>) {
    let mut dims = parts[0].1.to_vec();
    dims[axis] = parts.iter().map(|(_, d)| d[axis]).sum();
    let (outer, total, inner) = split(&dims, axis);
    let mut out = buffers::take(outer * total * inner);
    out.par_chunks_mut((total * inner).max(1))
        .enumerate()
        .for_each(|(o, dst)| {
            let mut at = 0;
            for (data, d) in parts {
                let len = d[axis] * inner;
                dst[at..at + len].copy_from_slice(&data[o * len..(o + 1) * len]);
                at += len;
            }
        });
    (out, dims)
}

/// The reverse of [`concat`]: part `index`'s share of the gradient (its sizes along `axis`
/// given by `sizes`).
pub fn concat_backward(g: &[f32], dims: &[usize], axis: usize, sizes: &[usize], index: usize) -> Vec<f32> {
    let (outer, total, inner) = split(dims, axis);
    let start: usize = sizes[..index].iter().sum();
    let len = sizes[index] * inner;
    let mut out = buffers::take(outer * len);
    out.par_chunks_mut(len.max(1)).enumerate().for_each(|(o, dst)| {
        let src = o * total * inner + start * inner;
        dst.copy_from_slice(&g[src..src + len]);
    });
    out
}

/// x padded along `axis` with `before` and `after` elements of `value`.
pub fn pad_constant(
    x: &[f32],
    dims: &[usize],
    axis: usize,
    before: usize,
    after: usize,
    value: f32,
) -> (Vec<f32>, Vec<usize>) {
    let (outer, n, inner) = split(dims, axis);
    let m = n + before + after;
    let mut out = buffers::take(outer * m * inner);
    out.par_chunks_mut((m * inner).max(1)).enumerate().for_each(|(o, dst)| {
        dst[..before * inner].fill(value);
        dst[before * inner..(before + n) * inner].copy_from_slice(&x[o * n * inner..(o + 1) * n * inner]);
        dst[(before + n) * inner..].fill(value);
    });
    let mut out_dims = dims.to_vec();
    out_dims[axis] = m;
    (out, out_dims)
}

/// x (shaped `dims`) repeated along the axes where `target` is larger.
pub fn broadcast_to(x: &[f32], dims: &[usize], target: &[usize]) -> Vec<f32> {
    let s = super::pointwise::broadcast_strides(dims, target);
    let n: usize = target.iter().product();
    let rank = target.len();
    let mut out = buffers::take(n);
    if rank == 0 {
        out.copy_from_slice(x);
        return out;
    }
    let last = target[rank - 1];
    let ls = s[rank - 1];
    out.par_chunks_mut(last.max(1)).enumerate().for_each(|(row, dst)| {
        let mut rem = row;
        let mut base = 0;
        for axis in (0..rank - 1).rev() {
            base += (rem % target[axis]) * s[axis];
            rem /= target[axis];
        }
        for (j, d) in dst.iter_mut().enumerate() {
            *d = x[base + j * ls];
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_select_concat_pad_and_their_reverses() {
        let x: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let (y, d) = permute(&x, &[2, 3, 4], &[2, 0, 1]);
        assert_eq!(d, [4, 2, 3]);
        assert_eq!(y[..6], [0., 4., 8., 12., 16., 20.]);
        let (back, _) = permute(&y, &d, &inverse_permutation(&[2, 0, 1]));
        assert_eq!(back, x);

        let (s, sd) = select(&x, &[2, 3, 4], 1, &[2, 0, 2]);
        assert_eq!(sd, [2, 3, 4]);
        assert_eq!(s[..4], [8., 9., 10., 11.]);
        let g = select_backward(&[1.0; 24], &[2, 3, 4], 1, &[2, 0, 2]);
        assert_eq!(g[..12], [1., 1., 1., 1., 0., 0., 0., 0., 2., 2., 2., 2.]);

        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0];
        let (c, cd) = concat(&[(&a, &[2, 2]), (&b, &[2, 1])], 1);
        assert_eq!(
            (c.as_slice(), cd.as_slice()),
            (&[1., 2., 5., 3., 4., 6.][..], &[2, 3][..])
        );
        assert_eq!(concat_backward(&c, &cd, 1, &[2, 1], 1), [5., 6.]);

        let (p, pd) = pad_constant(&a, &[2, 2], 1, 1, 2, -1.0);
        assert_eq!(pd, [2, 5]);
        assert_eq!(p, [-1., 1., 2., -1., -1., -1., 3., 4., -1., -1.]);
        assert_eq!(broadcast_to(&b, &[2, 1], &[2, 3]), [5., 5., 5., 6., 6., 6.]);
    }
}
