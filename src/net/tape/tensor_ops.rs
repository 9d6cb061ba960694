//! The tape's general tensor operations (what transformers, ConvNeXt, squeeze-excite and
//! ONNX graphs add to convolution stacks): each forward on plain f32 buffers through the
//! kernels of [`crate::kernels`], and each reverse step computing only the gradients of
//! the values that depend on the input.

use std::sync::Arc;

use candle_core::{bail, Result};
use rayon::prelude::*;

use super::{accumulate, Tape, Value};
use crate::kernels::buffers;
use crate::kernels::gemm::BatchedMatmul;
use crate::kernels::layout::{
    broadcast_to, concat, concat_backward, inverse_permutation, pad_constant, permute, select, select_backward,
};
use crate::kernels::pointwise::{
    binary_backward, binary_forward, broadcast_shape, broadcast_strides, sum_to, unary_backward, unary_forward, Binary,
    Unary,
};
use crate::kernels::reduce::{
    layer_norm_rows, layer_norm_rows_backward, reduce, reduce_backward, softmax_rows, softmax_rows_backward, AvgPool2d,
    Reduction,
};
use crate::net::layers::Constant;

/// A recorded general operation and what its reverse step needs.
pub(super) enum TensorOp {
    /// No gradient flows into a constant.
    Constant,
    Unary {
        x: usize,
        /// The input, kept when the derivative needs it.
        input: Option<Value>,
        op: Unary,
    },
    Binary {
        a: Value,
        b: Value,
        op: Binary,
    },
    Matmul {
        a: Value,
        b: Value,
        trans_b: bool,
    },
    Permute {
        x: usize,
        perm: Vec<usize>,
    },
    Reshape {
        x: usize,
    },
    Select {
        x: usize,
        dims: Vec<usize>,
        axis: usize,
        indices: Vec<usize>,
    },
    Concat {
        parts: Vec<usize>,
        sizes: Vec<usize>,
        axis: usize,
    },
    BroadcastTo {
        x: usize,
        dims: Vec<usize>,
    },
    Pad {
        x: usize,
        axis: usize,
        before: usize,
        len: usize,
    },
    Reduce {
        input: Value,
        axes: Vec<usize>,
        op: Reduction,
    },
    Softmax {
        x: usize,
        log: bool,
    },
    LayerNorm {
        x: usize,
        len: usize,
        inv_std: Vec<f32>,
    },
    AvgPool {
        x: usize,
        pool: AvgPool2d,
        h: usize,
        w: usize,
    },
    Where {
        a: usize,
        a_dims: Vec<usize>,
        b: usize,
        b_dims: Vec<usize>,
        mask: Arc<Vec<f32>>,
        mask_dims: Vec<usize>,
    },
    Scatter {
        data: usize,
        updates: usize,
        positions: Vec<usize>,
    },
}

/// `b` read as a matrix product operand that is `trans_b` (stored with its last two axes
/// swapped): a constant's contiguous copy of the other layout when `trans_b`, so that
/// the GEMM reads rows. Returns the elements, their dims and whether they are transposed.
fn matmul_operand(b: &Value, trans_b: bool) -> (&[f32], Vec<usize>, bool) {
    if trans_b {
        if let Some(t) = b.constant().and_then(|c| c.host_transposed()) {
            let mut dims = b.dims().to_vec();
            let r = dims.len();
            dims.swap(r - 1, r - 2);
            return (t, dims, false);
        }
    }
    (b.data(), b.dims().to_vec(), trans_b)
}

fn shape_error<T>(what: &str, a: &[usize], b: &[usize]) -> Result<T> {
    bail!("{what}: shapes {a:?} and {b:?} do not fit")
}

impl Tape {
    pub(super) fn tensor_constant(&mut self, c: &Constant) -> Result<Value> {
        if c.host().is_none() {
            bail!("the tape needs constants on the CPU");
        }
        Ok(self.push_constant(c))
    }

    pub(super) fn tensor_unary(&mut self, x: &Value, op: Unary) -> Result<Value> {
        let y = unary_forward(x.data(), op);
        let input = op.needs_input().then(|| x.clone());
        let rec = TensorOp::Unary { x: x.id(), input, op };
        Ok(self.push_tensor(x.dims().to_vec(), y, rec, &[x.id()]))
    }

    pub(super) fn tensor_binary(&mut self, a: &Value, b: &Value, op: Binary) -> Result<Value> {
        let Some((y, dims)) = binary_forward(a.data(), a.dims(), b.data(), b.dims(), op) else {
            return shape_error("binary operation", a.dims(), b.dims());
        };
        let rec = TensorOp::Binary {
            a: a.clone(),
            b: b.clone(),
            op,
        };
        Ok(self.push_tensor(dims, y, rec, &[a.id(), b.id()]))
    }

    pub(super) fn tensor_matmul(&mut self, a: &Value, b: &Value, trans_b: bool) -> Result<Value> {
        // A constant stored transposed is read through its contiguous copy.
        let (b_data, b_dims, read_trans_b) = matmul_operand(b, trans_b);
        let product = BatchedMatmul {
            a: a.data(),
            a_dims: a.dims(),
            trans_a: false,
            b: b_data,
            b_dims: &b_dims,
            trans_b: read_trans_b,
        };
        let Some((y, dims)) = product.run() else {
            return shape_error("matmul", a.dims(), b.dims());
        };
        let rec = TensorOp::Matmul {
            a: a.clone(),
            b: b.clone(),
            trans_b,
        };
        Ok(self.push_tensor(dims, y, rec, &[a.id(), b.id()]))
    }

    pub(super) fn tensor_permute(&mut self, x: &Value, perm: &[usize]) -> Result<Value> {
        if perm.len() != x.dims().len() {
            bail!("a permutation of {} axes for {:?}", perm.len(), x.dims());
        }
        let (y, dims) = permute(x.data(), x.dims(), perm);
        let rec = TensorOp::Permute {
            x: x.id(),
            perm: perm.to_vec(),
        };
        Ok(self.push_tensor(dims, y, rec, &[x.id()]))
    }

    pub(super) fn tensor_reshape(&mut self, x: &Value, dims: &[usize]) -> Result<Value> {
        if dims.iter().product::<usize>() != x.data().len() {
            return shape_error("reshape", x.dims(), dims);
        }
        Ok(self.push_alias(dims.to_vec(), x, TensorOp::Reshape { x: x.id() }))
    }

    pub(super) fn tensor_select(&mut self, x: &Value, axis: usize, indices: &[usize]) -> Result<Value> {
        let n = *x
            .dims()
            .get(axis)
            .ok_or_else(|| candle_core::Error::Msg(format!("axis {axis} of {:?}", x.dims())))?;
        if indices.iter().any(|&i| i >= n) {
            bail!("an index beyond {n} along axis {axis}");
        }
        let (y, dims) = select(x.data(), x.dims(), axis, indices);
        let rec = TensorOp::Select {
            x: x.id(),
            dims: x.dims().to_vec(),
            axis,
            indices: indices.to_vec(),
        };
        Ok(self.push_tensor(dims, y, rec, &[x.id()]))
    }

    pub(super) fn tensor_concat(&mut self, parts: &[Value], axis: usize) -> Result<Value> {
        let Some(first) = parts.first() else {
            bail!("a concatenation of nothing");
        };
        for p in parts {
            let (a, b) = (first.dims(), p.dims());
            if a.len() != b.len() || (0..a.len()).any(|i| i != axis && a[i] != b[i]) {
                return shape_error("concatenation", a, b);
            }
        }
        let views: Vec<(&[f32], &[usize])> = parts.iter().map(|p| (p.data(), p.dims())).collect();
        let (y, dims) = concat(&views, axis);
        let rec = TensorOp::Concat {
            parts: parts.iter().map(Value::id).collect(),
            sizes: parts.iter().map(|p| p.dims()[axis]).collect(),
            axis,
        };
        let ids: Vec<usize> = parts.iter().map(Value::id).collect();
        Ok(self.push_tensor(dims, y, rec, &ids))
    }

    pub(super) fn tensor_broadcast_to(&mut self, x: &Value, dims: &[usize]) -> Result<Value> {
        if broadcast_shape(x.dims(), dims).as_deref() != Some(dims) {
            return shape_error("broadcast", x.dims(), dims);
        }
        let y = broadcast_to(x.data(), x.dims(), dims);
        let rec = TensorOp::BroadcastTo {
            x: x.id(),
            dims: x.dims().to_vec(),
        };
        Ok(self.push_tensor(dims.to_vec(), y, rec, &[x.id()]))
    }

    pub(super) fn tensor_pad(
        &mut self,
        x: &Value,
        axis: usize,
        before: usize,
        after: usize,
        value: f32,
    ) -> Result<Value> {
        let (y, dims) = pad_constant(x.data(), x.dims(), axis, before, after, value);
        let rec = TensorOp::Pad {
            x: x.id(),
            axis,
            before,
            len: x.dims()[axis],
        };
        Ok(self.push_tensor(dims, y, rec, &[x.id()]))
    }

    pub(super) fn tensor_reduce(&mut self, x: &Value, axes: &[usize], op: Reduction) -> Result<Value> {
        let y = reduce(x.data(), x.dims(), axes, op);
        let dims = crate::kernels::reduce::reduced_dims(x.dims(), axes);
        let rec = TensorOp::Reduce {
            input: x.clone(),
            axes: axes.to_vec(),
            op,
        };
        Ok(self.push_tensor(dims, y, rec, &[x.id()]))
    }

    pub(super) fn tensor_softmax(&mut self, x: &Value, log: bool) -> Result<Value> {
        let len = *x.dims().last().unwrap_or(&1);
        let y = softmax_rows(x.data(), len, log);
        Ok(self.push_tensor(x.dims().to_vec(), y, TensorOp::Softmax { x: x.id(), log }, &[x.id()]))
    }

    pub(super) fn tensor_layer_norm(&mut self, x: &Value, from_axis: usize, eps: f64) -> Result<Value> {
        let len: usize = x.dims()[from_axis..].iter().product();
        let (y, inv_std) = layer_norm_rows(x.data(), len, eps);
        let rec = TensorOp::LayerNorm {
            x: x.id(),
            len,
            inv_std,
        };
        Ok(self.push_tensor(x.dims().to_vec(), y, rec, &[x.id()]))
    }

    pub(super) fn tensor_avg_pool(&mut self, x: &Value, pool: AvgPool2d) -> Result<Value> {
        let (n, c, h, w) = x.dims4()?;
        let Some((y, oh, ow)) = pool.forward(x.data(), h, w) else {
            bail!(
                "an average-pooling window {:?} larger than the padded {h}×{w} input",
                pool.kernel
            );
        };
        let rec = TensorOp::AvgPool { x: x.id(), pool, h, w };
        Ok(self.push_tensor(vec![n, c, oh, ow], y, rec, &[x.id()]))
    }

    pub(super) fn tensor_where(&mut self, mask: &Constant, a: &Value, b: &Value) -> Result<Value> {
        let Some(host) = mask.host() else {
            bail!("the tape needs masks on the CPU");
        };
        let Some(target) = broadcast_shape(mask.dims(), a.dims()).and_then(|t| broadcast_shape(&t, b.dims())) else {
            return shape_error("where", a.dims(), b.dims());
        };
        let m = broadcast_to(host, mask.dims(), &target);
        let av = broadcast_to(a.data(), a.dims(), &target);
        let bv = broadcast_to(b.data(), b.dims(), &target);
        let mut y = buffers::take(m.len());
        y.par_iter_mut()
            .zip(m.par_iter().zip(av.par_iter().zip(bv.par_iter())))
            .for_each(|(o, (&k, (&p, &q)))| *o = if k != 0.0 { p } else { q });
        buffers::give(m);
        buffers::give(av);
        buffers::give(bv);
        let rec = TensorOp::Where {
            a: a.id(),
            a_dims: a.dims().to_vec(),
            b: b.id(),
            b_dims: b.dims().to_vec(),
            mask: host.clone(),
            mask_dims: mask.dims().to_vec(),
        };
        Ok(self.push_tensor(target, y, rec, &[a.id(), b.id()]))
    }

    pub(super) fn tensor_scatter(&mut self, data: &Value, positions: &[usize], updates: &Value) -> Result<Value> {
        if positions.len() != updates.data().len() || positions.iter().any(|&p| p >= data.data().len()) {
            bail!("scatter of {} updates into {:?}", updates.data().len(), data.dims());
        }
        let mut y = buffers::take(data.data().len());
        y.copy_from_slice(data.data());
        for (&p, &v) in positions.iter().zip(updates.data()) {
            y[p] = v;
        }
        let rec = TensorOp::Scatter {
            data: data.id(),
            updates: updates.id(),
            positions: positions.to_vec(),
        };
        Ok(self.push_tensor(data.dims().to_vec(), y, rec, &[data.id(), updates.id()]))
    }
}

impl TensorOp {
    /// The reverse step: `g` is the gradient of `out`; adds the gradients of the inputs
    /// that need one into `grads`.
    pub(super) fn backward(self, out: &Value, mut g: Vec<f32>, grads: &mut [Option<Vec<f32>>], needs: &[bool]) {
        let mut add = |id: usize, v: Vec<f32>| {
            if needs[id] {
                accumulate(&mut grads[id], v);
            } else {
                buffers::give(v);
            }
        };
        match self {
            TensorOp::Constant => buffers::give(g),
            TensorOp::Unary { x, input, op } => {
                let xs: &[f32] = input.as_ref().map_or(&[], |v| v.data());
                unary_backward(&mut g, xs, out.data(), op);
                add(x, g);
            }
            TensorOp::Binary { a, b, op } => {
                let (ga, gb) = binary_backward(
                    &g,
                    a.data(),
                    a.dims(),
                    b.data(),
                    b.dims(),
                    op,
                    needs[a.id()],
                    needs[b.id()],
                );
                buffers::give(g);
                if let Some(ga) = ga {
                    add(a.id(), ga);
                }
                if let Some(gb) = gb {
                    add(b.id(), gb);
                }
            }
            TensorOp::Matmul { a, b, trans_b } => {
                let out_dims = out.dims();
                if needs[a.id()] {
                    // dA = g · Bᵀ (B stored [n, k] with trans_b: dA = g · B).
                    let (b_data, b_dims, read_trans_b) = matmul_operand(&b, !trans_b);
                    let product = BatchedMatmul {
                        a: &g,
                        a_dims: out_dims,
                        trans_a: false,
                        b: b_data,
                        b_dims: &b_dims,
                        trans_b: read_trans_b,
                    };
                    if let Some((ga, dims)) = product.run() {
                        let ga = if dims.as_slice() == a.dims() {
                            ga
                        } else {
                            sum_to(&ga, &dims, a.dims())
                        };
                        add(a.id(), ga);
                    }
                }
                if needs[b.id()] {
                    // dB = Aᵀ · g, stored transposed again with trans_b.
                    let product = BatchedMatmul {
                        a: a.data(),
                        a_dims: a.dims(),
                        trans_a: true,
                        b: &g,
                        b_dims: out_dims,
                        trans_b: false,
                    };
                    if let Some((gb, dims)) = product.run() {
                        let (gb, dims) = if trans_b {
                            let mut perm: Vec<usize> = (0..dims.len()).collect();
                            perm.swap(dims.len() - 1, dims.len() - 2);
                            permute(&gb, &dims, &perm)
                        } else {
                            (gb, dims)
                        };
                        let gb = if dims.as_slice() == b.dims() {
                            gb
                        } else {
                            sum_to(&gb, &dims, b.dims())
                        };
                        add(b.id(), gb);
                    }
                }
                buffers::give(g);
            }
            TensorOp::Permute { x, perm } => {
                let (gx, _) = permute(&g, out.dims(), &inverse_permutation(&perm));
                buffers::give(g);
                add(x, gx);
            }
            TensorOp::Reshape { x } => add(x, g),
            TensorOp::Select { x, dims, axis, indices } => {
                let gx = select_backward(&g, &dims, axis, &indices);
                buffers::give(g);
                add(x, gx);
            }
            TensorOp::Concat { parts, sizes, axis } => {
                for (i, &p) in parts.iter().enumerate() {
                    if needs[p] {
                        add(p, concat_backward(&g, out.dims(), axis, &sizes, i));
                    }
                }
                buffers::give(g);
            }
            TensorOp::BroadcastTo { x, dims } => {
                let gx = sum_to(&g, out.dims(), &dims);
                buffers::give(g);
                add(x, gx);
            }
            TensorOp::Pad { x, axis, before, len } => {
                let indices: Vec<usize> = (before..before + len).collect();
                let (gx, _) = select(&g, out.dims(), axis, &indices);
                buffers::give(g);
                add(x, gx);
            }
            TensorOp::Reduce { input, axes, op } => {
                let gx = reduce_backward(&g, input.data(), out.data(), input.dims(), &axes, op);
                buffers::give(g);
                add(input.id(), gx);
            }
            TensorOp::Softmax { x, log } => {
                let len = *out.dims().last().unwrap_or(&1);
                softmax_rows_backward(&mut g, out.data(), len, log);
                add(x, g);
            }
            TensorOp::LayerNorm { x, len, inv_std } => {
                layer_norm_rows_backward(&mut g, out.data(), &inv_std, len);
                add(x, g);
            }
            TensorOp::AvgPool { x, pool, h, w } => {
                let gx = pool.backward(&g, h, w);
                buffers::give(g);
                add(x, gx);
            }
            TensorOp::Where {
                a,
                a_dims,
                b,
                b_dims,
                mask,
                mask_dims,
            } => {
                let target = out.dims();
                let s = broadcast_strides(&mask_dims, target);
                let m = broadcast_to(&mask, &mask_dims, target);
                let _ = s;
                if needs[a] {
                    let ga: Vec<f32> = g
                        .iter()
                        .zip(&m)
                        .map(|(v, &k)| if k != 0.0 { *v } else { 0.0 })
                        .collect();
                    add(a, sum_to(&ga, target, &a_dims));
                }
                if needs[b] {
                    let gb: Vec<f32> = g
                        .iter()
                        .zip(&m)
                        .map(|(v, &k)| if k != 0.0 { 0.0 } else { *v })
                        .collect();
                    add(b, sum_to(&gb, target, &b_dims));
                }
                buffers::give(m);
                buffers::give(g);
            }
            TensorOp::Scatter {
                data,
                updates,
                positions,
            } => {
                if needs[updates] {
                    add(updates, positions.iter().map(|&p| g[p]).collect());
                }
                if needs[data] {
                    for &p in &positions {
                        g[p] = 0.0;
                    }
                    add(data, g);
                } else {
                    buffers::give(g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::net::candle_graph::CandleGraph;
    use crate::net::graph::Graph;

    /// One small network per operation (each reads the input through it, then a weighted
    /// sum), built on any [`Graph`].
    fn case<G: Graph>(name: &str, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let c = |g: &mut G, dims: &[usize], seed: usize| -> Result<G::Value> {
            let n: usize = dims.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|i| (((i * 31 + seed * 17) % 23) as f32 - 11.0) / 9.0)
                .collect();
            g.constant(&Constant::new(Tensor::from_vec(v, dims, &Device::Cpu)?)?)
        };
        Ok(match name {
            "gelu" => g.unary(x, Unary::GeluErf)?,
            "gelu_tanh" => g.unary(x, Unary::GeluTanh)?,
            "sigmoid" => g.unary(x, Unary::Sigmoid)?,
            "tanh_erf" => {
                let t = g.unary(x, Unary::Tanh)?;
                g.unary(&t, Unary::Erf)?
            }
            "clamp" => g.unary(x, Unary::Clamp { lo: -0.5, hi: 0.7 })?,
            "hard_and_leaky" => {
                let s = g.unary(x, Unary::Affine { mul: 4.0, add: 0.1 })?;
                let a = g.unary(&s, Unary::HardSwish)?;
                let b = g.unary(&s, Unary::HardSigmoid { alpha: 0.2, beta: 0.5 })?;
                let c = g.unary(x, Unary::LeakyRelu(0.1))?;
                let y = g.binary(&a, &b, Binary::Add)?;
                let y = g.binary(&y, &c, Binary::Mul)?;
                g.unary(&y, Unary::Powf(2.0))?
            }
            "mul_broadcast" => {
                let w = c(g, &[1, 3, 1, 1], 1)?;
                let y = g.binary(x, &w, Binary::Mul)?;
                let d = c(g, &[5, 1], 7)?;
                let d = g.unary(&d, Unary::Affine { mul: 0.1, add: 2.0 })?;
                let z = g.binary(&y, &d, Binary::Div)?;
                let z = g.binary(&z, x, Binary::Sub)?;
                g.binary(&z, x, Binary::Max)?
            }
            "se" => {
                // Squeeze-excite: x · σ(mean over space of x).
                let m = g.reduce(x, &[2, 3], Reduction::Mean)?;
                let s = g.unary(&m, Unary::Sigmoid)?;
                g.binary(x, &s, Binary::Mul)?
            }
            "matmul_attention" => {
                // [N, C, H, W] → tokens [N, HW, C]; q·kᵀ, softmax, ·v.
                let d = g.dims(x);
                let t = g.reshape(x, &[d[0], d[1], d[2] * d[3]])?;
                let t = g.permute(&t, &[0, 2, 1])?;
                let wq = c(g, &[d[1], 4], 2)?;
                let q = g.matmul(&t, &wq, false)?;
                let wk = c(g, &[4, d[1]], 3)?;
                let k = g.matmul(&t, &wk, true)?;
                let a = g.matmul(&q, &k, true)?;
                let a = g.softmax(&a, false)?;
                g.matmul(&a, &t, false)?
            }
            "layer_norm" => {
                let y = g.layer_norm(x, 1, 1e-5)?;
                let w = c(g, &[3, 5, 4], 4)?;
                g.binary(&y, &w, Binary::Mul)?
            }
            "log_softmax" => g.softmax(x, true)?,
            "layout" => {
                let p = g.pad(x, 3, 1, 2, 0.5)?;
                let s = g.select(&p, 2, &[4, 0, 0, 2])?;
                let b = g.select(&p, 2, &[1, 3, 2, 0])?;
                let k = g.concat(&[s.clone(), b], 1)?;
                let r = g.reduce(&k, &[1], Reduction::Max)?;
                let r = g.broadcast_to(&r, &[2, 6, 4, 7])?;
                g.binary(&r, &k.clone(), Binary::Mul)?
            }
            "avg_pool" => g.avg_pool(
                x,
                AvgPool2d {
                    kernel: [3, 2],
                    stride: [2, 1],
                    pads: [1, 0, 1, 1],
                    count_include_pad: false,
                    ceil: true,
                },
            )?,
            "where_scatter" => {
                let mask = Constant::new(Tensor::from_vec(vec![1f32, 0.0, 1.0, 1.0], (1, 1, 1, 4), &Device::Cpu)?)?;
                let z = c(g, &[1, 3, 1, 1], 5)?;
                let y = g.select_where(&mask, x, &z)?;
                let u = g.select(x, 3, &[0, 1])?;
                let u = g.reshape(&u, &[2 * 3 * 5 * 2])?;
                let positions: Vec<usize> = (0..60).map(|i| i * 2).collect();
                g.scatter(&y, &positions, &u)?
            }
            other => panic!("no case {other}"),
        })
    }

    /// The tape's value and input gradient equal candle's autograd on the same network.
    #[test]
    fn tape_operations_match_candle_autograd() {
        let dev = Device::Cpu;
        let dims = [2usize, 3, 5, 4];
        let n: usize = dims.iter().product();
        let xs: Vec<f32> = (0..n).map(|i| ((i * 7919 % 101) as f32 - 50.5) / 37.0).collect();
        for name in [
            "gelu",
            "gelu_tanh",
            "sigmoid",
            "tanh_erf",
            "clamp",
            "hard_and_leaky",
            "mul_broadcast",
            "se",
            "matmul_attention",
            "layer_norm",
            "log_softmax",
            "layout",
            "avg_pool",
            "where_scatter",
        ] {
            let x = Tensor::from_vec(xs.clone(), &dims[..], &dev).unwrap();
            let v = Var::from_tensor(&x).unwrap();
            let y = case(name, &mut CandleGraph::default(), v.as_tensor()).unwrap();
            let weights: Vec<f32> = (0..y.elem_count())
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
                .collect();
            let w = Tensor::from_vec(weights.clone(), y.dims(), &dev).unwrap();
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let expected = grads
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let expected_y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();

            let mut tape = Tape::new(true);
            let input = tape.input(&x).unwrap();
            let out = case(name, &mut tape, &input).unwrap();
            assert_eq!(out.dims(), y.dims(), "{name}");
            let rel = |a: &[f32], b: &[f32]| {
                let d: f64 = a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum();
                let m: f64 = b.iter().map(|q| (*q as f64).powi(2)).sum();
                (d / m.max(1e-30)).sqrt()
            };
            let ey = rel(out.data(), &expected_y);
            let got = tape.input_gradient(&out, weights).unwrap();
            let eg = rel(&got, &expected);
            assert!(ey < 1e-6 && eg < 1e-5, "{name}: value {ey:.1e}, gradient {eg:.1e}");
        }
    }
}
