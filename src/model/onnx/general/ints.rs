//! Integers on the host (shapes, indices, boolean masks) and the shape arithmetic ONNX
//! graphs do with them. Nothing here carries a gradient.

use candle_core::Result;

use crate::kernels::pointwise::broadcast_strides;

pub(super) fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(candle_core::Error::Msg(message.into()))
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ints {
    pub dims: Vec<usize>,
    pub data: Vec<i64>,
}

impl Ints {
    pub fn scalar(v: i64) -> Self {
        Self {
            dims: vec![],
            data: vec![v],
        }
    }

    pub fn vector(data: Vec<i64>) -> Self {
        Self {
            dims: vec![data.len()],
            data,
        }
    }

    pub fn map(&self, f: impl Fn(i64) -> i64) -> Self {
        Self {
            dims: self.dims.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    pub fn reshaped(&self, dims: Vec<usize>) -> Result<Self> {
        if dims.iter().product::<usize>() != self.data.len() {
            return err(format!(
                "reshaping {:?} to {dims:?} changes the element count",
                self.dims
            ));
        }
        Ok(Self {
            dims,
            data: self.data.clone(),
        })
    }

    pub fn broadcast_to(&self, target: &[usize]) -> Self {
        let strides = broadcast_strides(&self.dims, target);
        let mut data = Vec::with_capacity(target.iter().product());
        for_each_index(target, |idx| {
            let off: usize = idx.iter().zip(&strides).map(|(a, b)| a * b).sum();
            data.push(self.data[off]);
        });
        Self {
            dims: target.to_vec(),
            data,
        }
    }

    pub fn permute(&self, perm: &[usize]) -> Self {
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let src = broadcast_strides(&self.dims, &self.dims);
        let strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
        let mut data = Vec::with_capacity(self.data.len());
        for_each_index(&dims, |idx| {
            data.push(self.data[idx.iter().zip(&strides).map(|(a, b)| a * b).sum::<usize>()]);
        });
        Self { dims, data }
    }

    /// The elements at `indices` along axis `a`.
    pub fn select(&self, a: usize, indices: &[usize]) -> Self {
        let outer: usize = self.dims[..a].iter().product();
        let inner: usize = self.dims[a + 1..].iter().product();
        let n = self.dims[a];
        let mut data = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &k in indices {
                let base = (o * n + k) * inner;
                data.extend_from_slice(&self.data[base..base + inner]);
            }
        }
        let mut dims = self.dims.clone();
        dims[a] = indices.len();
        Self { dims, data }
    }

    pub fn concat(parts: &[Ints], a: usize) -> Result<Self> {
        let mut dims = parts[0].dims.clone();
        if dims.is_empty() {
            return err("Concat of scalars");
        }
        for p in parts {
            if p.dims.len() != dims.len() || p.dims.iter().zip(&dims).enumerate().any(|(i, (x, y))| i != a && x != y) {
                return err(format!("Concat of shapes {:?} and {:?}", parts[0].dims, p.dims));
            }
        }
        dims[a] = parts.iter().map(|p| p.dims[a]).sum();
        let outer: usize = dims[..a].iter().product();
        let mut data = Vec::with_capacity(dims.iter().product());
        for o in 0..outer {
            for p in parts {
                let inner: usize = p.dims[a..].iter().product();
                data.extend_from_slice(&p.data[o * inner..(o + 1) * inner]);
            }
        }
        Ok(Self { dims, data })
    }

    /// A reduction over `axes` (sorted), keeping them as size-1 axes.
    pub fn reduce(&self, axes: &[usize], f: impl Fn(&[i64]) -> i64) -> Self {
        let mut out_dims = self.dims.clone();
        for &a in axes {
            out_dims[a] = 1;
        }
        let strides = broadcast_strides(&self.dims, &self.dims);
        let reduced: Vec<usize> = axes.iter().map(|&a| self.dims[a]).collect();
        let mut data = Vec::with_capacity(out_dims.iter().product());
        for_each_index(&out_dims, |base| {
            let start: usize = base.iter().zip(&strides).map(|(a, b)| a * b).sum();
            let mut group = Vec::new();
            for_each_index(&reduced, |r| {
                let off: usize = r.iter().zip(axes).map(|(i, &a)| i * strides[a]).sum();
                group.push(self.data[start + off]);
            });
            data.push(f(&group));
        });
        Self { dims: out_dims, data }
    }
}

/// Calls `f` with every index of `target`, in row-major order.
pub(super) fn for_each_index(target: &[usize], mut f: impl FnMut(&[usize])) {
    let n: usize = target.iter().product();
    let mut idx = vec![0usize; target.len()];
    for _ in 0..n {
        f(&idx);
        for k in (0..target.len()).rev() {
            idx[k] += 1;
            if idx[k] < target[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// The most elements a value an operator sizes from its inputs (Expand, Pad,
/// ConstantOfShape, Range) may have: a hostile graph must not ask for terabytes.
pub(super) const MAX_ELEMENTS: usize = 1 << 28;

/// Refuses a shape of more than [`MAX_ELEMENTS`] elements.
pub(super) fn check_elements(dims: &[usize], what: &str) -> Result<()> {
    match dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => err(format!("{what} to {dims:?} asks for more than {MAX_ELEMENTS} elements")),
    }
}

/// A possibly negative axis of a rank-`rank` value.
pub(super) fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let b = if a < 0 { a + r } else { a };
    if (0..r.max(1)).contains(&b) {
        Ok(b as usize)
    } else {
        err(format!("axis {a} of a rank-{rank} value"))
    }
}

/// Sorted, deduplicated axes of a rank-`rank` value.
pub(super) fn axes(list: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out: Vec<usize> = list.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The numpy broadcast of two shapes.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    match crate::kernels::pointwise::broadcast_shape(a, b) {
        Some(d) => Ok(d),
        None => err(format!("shapes {a:?} and {b:?} do not broadcast")),
    }
}

/// ONNX Reshape's target: 0 copies the input's size (unless `allowzero`), -1 is inferred.
pub(super) fn reshape_dims(input: &[usize], shape: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| {
                    candle_core::Error::Msg(format!("Reshape copies axis {i}, which {input:?} lacks"))
                })?)
            }
            s if s >= 0 => out.push(s as usize),
            s => return err(format!("Reshape to {shape:?}: size {s}")),
        }
    }
    let product = |dims: &[usize]| dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if let Some(i) = infer {
        let known = product(&out).unwrap_or(0);
        if known == 0 || !total.is_multiple_of(known) {
            return err(format!("Reshape of {input:?} to {shape:?}: the sizes do not divide"));
        }
        out[i] = total / known;
    }
    if product(&out) != Some(total) {
        return err(format!("Reshape of {input:?} ({total} elements) to {shape:?}"));
    }
    Ok(out)
}

/// The indices ONNX Slice takes along an axis of size `n`.
pub(super) fn slice_indices(n: i64, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    if step == 0 {
        return err("Slice with step 0");
    }
    let fix = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(n) } else { v }).clamp(lo, hi);
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = (fix(start, 0, n), fix(end, 0, n));
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        let (s, e) = (fix(start, -1, n - 1), fix(end, -1, n - 1));
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    Ok(out)
}

/// The indices a reflect or edge Pad reads along an axis of size `n`.
pub(super) fn pad_indices(n: usize, before: usize, after: usize, reflect: bool) -> Result<Vec<usize>> {
    if n == 0 {
        return err("padding an empty axis");
    }
    let last = n as i64 - 1;
    Ok((-(before as i64)..(n + after) as i64)
        .map(|i| {
            if !reflect {
                i.clamp(0, last) as usize
            } else if last == 0 {
                0
            } else {
                let period = 2 * last;
                let m = i.rem_euclid(period);
                (if m > last { period - m } else { m }) as usize
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_indices_follow_onnx() {
        assert_eq!(slice_indices(5, 1, 4, 1).unwrap(), [1, 2, 3]);
        assert_eq!(slice_indices(5, 0, i64::MAX, 2).unwrap(), [0, 2, 4]);
        assert_eq!(slice_indices(5, -1, i64::MIN, -1).unwrap(), [4, 3, 2, 1, 0]);
        assert_eq!(slice_indices(5, -2, 10, 1).unwrap(), [3, 4]);
        assert!(slice_indices(5, 0, 3, 0).is_err());
    }

    #[test]
    fn reshape_copies_zeros_and_infers_one_axis() {
        assert_eq!(reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(), [2, 12]);
        assert_eq!(reshape_dims(&[2, 3, 4], &[4, 0, 2], false).unwrap(), [4, 3, 2]);
        assert!(reshape_dims(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_dims(&[2, 3, 4], &[7], false).is_err());
    }

    #[test]
    fn integer_layout_follows_numpy() {
        assert_eq!(broadcast_shape(&[3, 1, 5], &[4, 1]).unwrap(), [3, 4, 5]);
        assert!(broadcast_shape(&[3], &[4]).is_err());
        let i = Ints {
            dims: vec![2, 1],
            data: vec![7, 8],
        };
        assert_eq!(i.broadcast_to(&[2, 3]).data, [7, 7, 7, 8, 8, 8]);
        let t = Ints {
            dims: vec![2, 3],
            data: (0..6).collect(),
        };
        assert_eq!(t.permute(&[1, 0]).data, [0, 3, 1, 4, 2, 5]);
        assert_eq!(t.select(1, &[2, 0]).data, [2, 0, 5, 3]);
        assert_eq!(t.reduce(&[1], |g| g.iter().sum()).data, [3, 12]);
        assert_eq!(t.reduce(&[0], |g| *g.iter().max().unwrap()).data, [3, 4, 5]);
        assert_eq!(pad_indices(3, 2, 2, true).unwrap(), [2, 1, 0, 1, 2, 1, 0]);
        assert_eq!(pad_indices(3, 2, 1, false).unwrap(), [0, 0, 0, 1, 2, 2]);
    }
}
