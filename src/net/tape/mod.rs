//! A CPU tape: runs a network on plain f32 buffers, records what the reverse pass needs,
//! and computes only the gradient with respect to the input.
//!
//! Compared with candle's autograd on the same ops, the reverse pass here moves the first
//! gradient that reaches a value instead of adding it to a fresh zero tensor, applies the
//! ReLU/ReLU6 mask in place (fused with the convolution in both directions), and frees
//! each activation as soon as the reverse pass has gone past it.

use std::rc::Rc;
use std::sync::Arc;

use candle_core::{bail, Device, Result, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

mod tensor_ops;

use super::graph::{AvgPool2d, Binary, Graph, Reduction, Unary};
use super::layers::{Activation, Constant, Conv, Linear, LinearKernel, MaxPool2d};
use super::line::{masked_weighted_sum, Line};
use crate::kernels::activation::{clamp_slice, zero_outside};
use crate::kernels::buffers;
use crate::kernels::conv::ConvOp;
use crate::kernels::gemm::matmul;
use crate::kernels::storage::contiguous_f32;
use tensor_ops::TensorOp;

/// Elements per parallel chunk of the pointwise loops.
const CHUNK: usize = 1 << 15;

/// The id of a tape's input: its first value.
const INPUT: usize = 0;

#[derive(Debug)]
struct Buffer {
    id: usize,
    dims: Vec<usize>,
    data: Data,
}

/// A value's elements: a pooled buffer of the tape's own, a constant's shared one, or
/// another value's (a reshape, which moves no element).
#[derive(Debug)]
enum Data {
    Pooled(Vec<f32>),
    Constant(Constant),
    Alias(Rc<Buffer>),
}

impl Buffer {
    fn elements(&self) -> &[f32] {
        match &self.data {
            Data::Pooled(v) => v,
            Data::Constant(c) => c.host().map(|h| h.as_slice()).unwrap_or(&[]),
            Data::Alias(b) => b.elements(),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Data::Pooled(v) = &mut self.data {
            buffers::give(std::mem::take(v));
        }
    }
}

/// A value on the tape: a row-major buffer with its shape.
#[derive(Debug, Clone)]
pub struct Value(Rc<Buffer>);

impl Value {
    pub fn dims(&self) -> &[usize] {
        &self.0.dims
    }

    pub fn data(&self) -> &[f32] {
        self.0.elements()
    }

    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_slice(self.data(), self.0.dims.as_slice(), device)
    }

    fn id(&self) -> usize {
        self.0.id
    }

    /// The constant behind this value, if it is one.
    fn constant(&self) -> Option<&Constant> {
        match &self.0.data {
            Data::Constant(c) => Some(c),
            _ => None,
        }
    }

    fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        match *self.dims() {
            [n, c, h, w] => Ok((n, c, h, w)),
            ref d => bail!("expected an NCHW feature map, got shape {d:?}"),
        }
    }
}

enum Op {
    Input,
    Conv {
        x: usize,
        op: ConvOp,
        h: usize,
        w: usize,
        clamp: Option<(f32, f32)>,
    },
    /// Two convolutions of x written side by side into one channel concatenation.
    ConvPairCat {
        x: usize,
        a: ConvOp,
        b: ConvOp,
        h: usize,
        w: usize,
        clamp: Option<(f32, f32)>,
    },
    Clamp {
        x: usize,
        lo: f32,
        hi: f32,
    },
    MaxPool {
        x: usize,
        argmax: Vec<u32>,
        hw_in: usize,
    },
    Cat {
        a: usize,
        b: usize,
        /// Elements per sample of a and of b.
        per_a: usize,
        per_b: usize,
    },
    Add {
        a: usize,
        b: usize,
    },
    GlobalAvgPool {
        x: usize,
        hw: usize,
    },
    Linear {
        x: usize,
        kernel: Arc<LinearKernel>,
    },
    Tensor(TensorOp),
}

/// Runs a network forward on the CPU; with `record`, keeps what [`Tape::input_gradient`]
/// needs (without it, each activation is freed as soon as the next layer has read it).
pub struct Tape {
    record: bool,
    next_id: usize,
    /// Whether each value depends on the input (else the reverse pass skips it).
    needs: Vec<bool>,
    steps: Vec<(Value, Op)>,
    /// Set when the input is points on a straight line ([`Tape::line_input`]).
    line: Option<Line>,
}

/// What the reverse pass produced for the input.
struct InputGradients {
    /// ∂/∂ each point, [K, ...], where some op took the per-point route.
    per_point: Option<Vec<f32>>,
    /// Σ_k w_k ∂/∂ point k, where a convolution of a line input summed first.
    summed: Option<Vec<f32>>,
}

impl Tape {
    pub fn new(record: bool) -> Self {
        Self {
            record,
            next_id: 0,
            needs: Vec::new(),
            steps: Vec::new(),
            line: None,
        }
    }

    /// The points `start + α_k (end − start)` as the network's input, [K, ...start's
    /// shape]. A convolution reading them runs on the two ends only (see
    /// [`super::line`]), and [`Tape::line_gradient_sum`] can sum through it.
    pub fn line_input(&mut self, start: &Tensor, end: &Tensor, alphas: &[f64]) -> Result<Value> {
        if self.next_id != INPUT {
            bail!("the tape's input must be its first value");
        }
        let line = Line::new(start, end, alphas)?;
        let (data, dims) = (line.points(), line.points_dims());
        self.line = Some(line);
        Ok(self.push(dims, data, Op::Input))
    }

    /// The network's input, copied from an f32 tensor.
    pub fn input(&mut self, x: &Tensor) -> Result<Value> {
        if self.next_id != INPUT {
            bail!("the tape's input must be its first value");
        }
        // Into a pooled buffer: a fresh one per pass costs its page faults.
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            bail!("the tape's input must be a CPU tensor");
        };
        let src = contiguous_f32("the tape", cpu, layout)?;
        let mut data = buffers::take(src.len());
        data.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(d, s)| d.copy_from_slice(s));
        Ok(self.push(x.dims().to_vec(), data, Op::Input))
    }

    fn push(&mut self, dims: Vec<usize>, data: Vec<f32>, op: Op) -> Value {
        self.push_data(dims, Data::Pooled(data), op, true)
    }

    fn push_data(&mut self, dims: Vec<usize>, data: Data, op: Op, needs: bool) -> Value {
        let value = Value(Rc::new(Buffer {
            id: self.next_id,
            dims,
            data,
        }));
        self.next_id += 1;
        self.needs.push(needs);
        if self.record {
            self.steps.push((value.clone(), op));
        }
        value
    }

    /// A general operation's result; it needs a gradient when any of `inputs` does.
    fn push_tensor(&mut self, dims: Vec<usize>, data: Vec<f32>, op: TensorOp, inputs: &[usize]) -> Value {
        let needs = inputs.iter().any(|&i| self.needs[i]);
        self.push_data(dims, Data::Pooled(data), Op::Tensor(op), needs)
    }

    /// `x`'s elements under another shape, without a copy.
    fn push_alias(&mut self, dims: Vec<usize>, x: &Value, op: TensorOp) -> Value {
        let needs = self.needs[x.id()];
        self.push_data(dims, Data::Alias(x.0.clone()), Op::Tensor(op), needs)
    }

    /// A constant, read in place.
    fn push_constant(&mut self, c: &Constant) -> Value {
        self.push_data(
            c.dims().to_vec(),
            Data::Constant(c.clone()),
            Op::Tensor(TensorOp::Constant),
            false,
        )
    }

    /// ∂(Σ seed · output)/∂input: the vector–Jacobian product of the recorded pass with
    /// `seed` (the gradient of the explained score with respect to `output`).
    pub fn input_gradient(self, output: &Value, seed: Vec<f32>) -> Result<Vec<f32>> {
        match self.reverse(output, seed, None)?.per_point {
            Some(g) => Ok(g),
            None => bail!("the score does not depend on the input"),
        }
    }

    /// Σ_k w_k ∂(seed_k · output_k)/∂point_k over the K points of a [`Tape::line_input`]:
    /// a batch of a straight-path Riemann sum, without any per-point gradient of the
    /// convolution that reads the line.
    pub fn line_gradient_sum(self, output: &Value, seed: Vec<f32>, weights: &[f64]) -> Result<Vec<f64>> {
        let Some((input, _)) = self.steps.first() else {
            bail!("line_gradient_sum needs a tape that recorded its forward pass");
        };
        let (points, per) = (input.dims()[0], input.data().len() / input.dims()[0].max(1));
        if self.line.is_none() || weights.len() != points {
            bail!("line_gradient_sum needs a line input and one weight per point ({points})");
        }
        let r = self.reverse(output, seed, Some(weights))?;
        if r.per_point.is_none() && r.summed.is_none() {
            bail!("the score does not depend on the input");
        }
        let mut sum: Vec<f64> = match &r.summed {
            Some(s) => s.iter().map(|&v| v as f64).collect(),
            None => vec![0.0; per],
        };
        if let Some(g) = &r.per_point {
            super::line::add_weighted_points(&mut sum, g, weights);
        }
        Ok(sum)
    }

    /// The reverse pass. With `line_weights`, a convolution of a line input sums its
    /// output gradients with those weights and returns the weighted input-gradient sum.
    fn reverse(mut self, output: &Value, seed: Vec<f32>, line_weights: Option<&[f64]>) -> Result<InputGradients> {
        if !self.record {
            bail!("a gradient needs a tape that recorded its forward pass");
        }
        if seed.len() != output.data().len() {
            bail!("seed has {} elements, the output {}", seed.len(), output.data().len());
        }
        let sum_line = if self.line.is_some() { line_weights } else { None };
        let mut summed = None;
        let mut grads: Vec<Option<Vec<f32>>> = (0..self.next_id).map(|_| None).collect();
        grads[output.id()] = Some(seed);
        // Popping frees each activation once its own backward step is done: no earlier
        // step reads a later step's values.
        while let Some((out, op)) = self.steps.pop() {
            let Some(mut g) = grads[out.id()].take() else {
                continue;
            };
            match op {
                Op::Input => {
                    return Ok(InputGradients {
                        per_point: Some(g),
                        summed,
                    })
                }
                Op::Conv { x, op, h, w, clamp } => {
                    let n = out.dims()[0];
                    let per_out = g.len() / n.max(1);
                    match sum_line {
                        Some(weights) if x == INPUT => {
                            let mask = clamp.map(|(lo, hi)| (out.data(), lo, hi));
                            let dy = masked_weighted_sum(&g, per_out, weights, mask);
                            accumulate(&mut summed, op.backward_batch((&dy, per_out), 1, h, w));
                            buffers::give(dy);
                        }
                        _ => {
                            if let Some((lo, hi)) = clamp {
                                zero_outside(&mut g, out.data(), lo, hi);
                            }
                            accumulate(&mut grads[x], op.backward_batch((&g, per_out), n, h, w));
                        }
                    }
                    buffers::give(g);
                }
                Op::ConvPairCat { x, a, b, h, w, clamp } => {
                    if let Some((lo, hi)) = clamp {
                        zero_outside(&mut g, out.data(), lo, hi);
                    }
                    // Each convolution reads its own channels of the concatenation's
                    // gradient in place.
                    let n = out.dims()[0];
                    let stride = g.len() / n.max(1);
                    let (oh, ow) = a.out_size(h, w);
                    let b_offset = a.kernel.c_out * oh * ow; // where b's channels start in a sample
                    accumulate(&mut grads[x], a.backward_batch((&g, stride), n, h, w));
                    accumulate(&mut grads[x], b.backward_batch((&g[b_offset..], stride), n, h, w));
                    buffers::give(g);
                }
                Op::Clamp { x, lo, hi } => {
                    zero_outside(&mut g, out.data(), lo, hi);
                    accumulate(&mut grads[x], g);
                }
                Op::MaxPool { x, argmax, hw_in } => {
                    let (_, _, oh, ow) = out.dims4()?;
                    let dx = MaxPool2d::backward_from_argmax(&g, &argmax, hw_in, oh * ow);
                    buffers::give_indices(argmax);
                    accumulate(&mut grads[x], dx);
                    buffers::give(g);
                }
                Op::Cat { a, b, per_a, per_b } => {
                    let n = g.len() / (per_a + per_b);
                    let mut ga = buffers::take(n * per_a);
                    let mut gb = buffers::take(n * per_b);
                    ga.par_chunks_mut(per_a)
                        .zip(gb.par_chunks_mut(per_b))
                        .zip(g.par_chunks(per_a + per_b))
                        .for_each(|((da, db), sample)| {
                            da.copy_from_slice(&sample[..per_a]);
                            db.copy_from_slice(&sample[per_a..]);
                        });
                    buffers::give(g);
                    accumulate(&mut grads[a], ga);
                    accumulate(&mut grads[b], gb);
                }
                Op::Add { a, b } => {
                    let mut copy = buffers::take(g.len());
                    copy.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|(d, s)| d.copy_from_slice(s));
                    accumulate(&mut grads[a], copy);
                    accumulate(&mut grads[b], g);
                }
                Op::GlobalAvgPool { x, hw } => {
                    let scale = 1.0 / hw as f32;
                    let mut dx = buffers::take(g.len() * hw);
                    dx.par_chunks_mut(hw)
                        .zip(g.par_iter())
                        .for_each(|(plane, &v)| plane.fill(v * scale));
                    buffers::give(g);
                    accumulate(&mut grads[x], dx);
                }
                Op::Tensor(t) => t.backward(&out, g, &mut grads, &self.needs),
                Op::Linear { x, kernel } => {
                    // dX = dY · W: [n, out] · [out, in].
                    let n = g.len() / kernel.n_out;
                    let mut dx = buffers::take(n * kernel.n_in);
                    matmul(
                        n,
                        kernel.n_in,
                        kernel.n_out,
                        &g,
                        (kernel.n_out, 1),
                        &kernel.weight,
                        (kernel.n_in, 1),
                        &mut dx,
                        false,
                        Parallelism::Rayon(0),
                    );
                    buffers::give(g);
                    accumulate(&mut grads[x], dx);
                }
            }
        }
        Ok(InputGradients {
            per_point: None,
            summed,
        })
    }
}

/// Adds `g` into a value's gradient, taking it whole when it is the first to arrive.
pub(super) fn accumulate(slot: &mut Option<Vec<f32>>, g: Vec<f32>) {
    match slot {
        None => *slot = Some(g),
        Some(acc) => {
            acc.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(a, b)| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            });
            buffers::give(g);
        }
    }
}

impl Graph for Tape {
    type Value = Value;

    fn conv(&mut self, x: &Value, conv: &Conv, act: Activation) -> Result<Value> {
        let (n, c, h, w) = x.dims4()?;
        let Some(op) = conv.cpu_op(h, w) else {
            bail!("the tape needs a convolution with CPU weights");
        };
        op.check_input(c, h, w)?;
        let clamp = act.bounds();
        let (y, oh, ow) = match &self.line {
            Some(line) if x.id() == INPUT => line.conv(&op, h, w, clamp),
            _ => op.forward_batch(x.data(), n, h, w, clamp),
        };
        let dims = vec![n, op.kernel.c_out, oh, ow];
        Ok(self.push(
            dims,
            y,
            Op::Conv {
                x: x.id(),
                op,
                h,
                w,
                clamp,
            },
        ))
    }

    fn conv_pair_cat(&mut self, x: &Value, a: &Conv, b: &Conv, act: Activation) -> Result<Value> {
        let (n, c, h, w) = x.dims4()?;
        let (Some(op_a), Some(op_b)) = (a.cpu_op(h, w), b.cpu_op(h, w)) else {
            bail!("the tape needs convolutions with CPU weights");
        };
        op_a.check_input(c, h, w)?;
        op_b.check_input(c, h, w)?;
        let (oh, ow) = op_a.out_size(h, w);
        if op_b.out_size(h, w) != (oh, ow) {
            bail!(
                "cannot concatenate a {oh}×{ow} output with a {:?} one along channels",
                op_b.out_size(h, w)
            );
        }
        let (ca, cb) = (op_a.kernel.c_out, op_b.kernel.c_out);
        let stride = (ca + cb) * oh * ow;
        // Every element is written: a's channels by a, b's by b.
        let mut y = buffers::take(n * stride);
        let clamp = act.bounds();
        op_a.forward_batch_into(x.data(), n, h, w, clamp, (&mut y, stride));
        op_b.forward_batch_into(x.data(), n, h, w, clamp, (&mut y[ca * oh * ow..], stride));
        let op = Op::ConvPairCat {
            x: x.id(),
            a: op_a,
            b: op_b,
            h,
            w,
            clamp,
        };
        Ok(self.push(vec![n, ca + cb, oh, ow], y, op))
    }

    fn activation(&mut self, x: &Value, act: Activation) -> Result<Value> {
        let Some((lo, hi)) = act.bounds() else {
            return Ok(x.clone());
        };
        let y = clamp_slice(x.data(), lo, hi);
        Ok(self.push(x.dims().to_vec(), y, Op::Clamp { x: x.id(), lo, hi }))
    }

    fn max_pool(&mut self, x: &Value, pool: MaxPool2d) -> Result<Value> {
        let (n, c, h, w) = x.dims4()?;
        pool.check_input(h, w)?;
        if !self.record {
            let (y, oh, ow) = pool.forward_planes(x.data(), h, w);
            // Not recorded: the op is dropped by `push`.
            return Ok(self.push(vec![n, c, oh, ow], y, Op::Input));
        }
        let (y, argmax, oh, ow) = pool.forward_planes_with_argmax(x.data(), h, w);
        let op = Op::MaxPool {
            x: x.id(),
            argmax,
            hw_in: h * w,
        };
        Ok(self.push(vec![n, c, oh, ow], y, op))
    }

    fn cat_channels(&mut self, a: &Value, b: &Value) -> Result<Value> {
        let (n, ca, h, w) = a.dims4()?;
        let (nb, cb, hb, wb) = b.dims4()?;
        if (n, h, w) != (nb, hb, wb) {
            bail!("cannot concatenate {:?} and {:?} along channels", a.dims(), b.dims());
        }
        let (per_a, per_b) = (ca * h * w, cb * h * w);
        let mut y = buffers::take(n * (per_a + per_b));
        y.par_chunks_mut(per_a + per_b)
            .zip(a.data().par_chunks(per_a).zip(b.data().par_chunks(per_b)))
            .for_each(|(sample, (sa, sb))| {
                sample[..per_a].copy_from_slice(sa);
                sample[per_a..].copy_from_slice(sb);
            });
        Ok(self.push(
            vec![n, ca + cb, h, w],
            y,
            Op::Cat {
                a: a.id(),
                b: b.id(),
                per_a,
                per_b,
            },
        ))
    }

    fn add(&mut self, a: &Value, b: &Value) -> Result<Value> {
        if a.dims() != b.dims() {
            bail!("cannot add {:?} and {:?}", a.dims(), b.dims());
        }
        let mut y = buffers::take(a.data().len());
        y.par_chunks_mut(CHUNK)
            .zip(a.data().par_chunks(CHUNK).zip(b.data().par_chunks(CHUNK)))
            .for_each(|(ys, (as_, bs))| {
                for ((s, u), v) in ys.iter_mut().zip(as_).zip(bs) {
                    *s = u + v;
                }
            });
        Ok(self.push(a.dims().to_vec(), y, Op::Add { a: a.id(), b: b.id() }))
    }

    fn global_avg_pool(&mut self, x: &Value) -> Result<Value> {
        let (n, c, h, w) = x.dims4()?;
        let hw = h * w;
        // Sum in f64: planes of 10⁴ elements, and the logits are compared to 1e-6.
        let y: Vec<f32> = x
            .data()
            .par_chunks(hw)
            .map(|plane| (plane.iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32)
            .collect();
        Ok(self.push(vec![n, c], y, Op::GlobalAvgPool { x: x.id(), hw }))
    }

    fn linear(&mut self, x: &Value, layer: &Linear) -> Result<Value> {
        let kernel = layer.cpu.clone();
        let [n, features] = *x.dims() else {
            bail!("a linear layer needs [N, features], got {:?}", x.dims());
        };
        if features != kernel.n_in {
            bail!("linear layer expects {} features, got {features}", kernel.n_in);
        }
        // Y = X · Wᵀ + b: Wᵀ is W [out, in] read with swapped strides.
        let mut y = buffers::take(n * kernel.n_out);
        matmul(
            n,
            kernel.n_out,
            kernel.n_in,
            x.data(),
            (kernel.n_in, 1),
            &kernel.weight,
            (1, kernel.n_in),
            &mut y,
            false,
            Parallelism::Rayon(0),
        );
        for row in y.chunks_mut(kernel.n_out) {
            row.iter_mut().zip(&kernel.bias).for_each(|(v, b)| *v += b);
        }
        Ok(self.push(vec![n, kernel.n_out], y, Op::Linear { x: x.id(), kernel }))
    }

    fn dims(&self, x: &Value) -> Vec<usize> {
        x.dims().to_vec()
    }

    fn constant(&mut self, c: &Constant) -> Result<Value> {
        self.tensor_constant(c)
    }

    fn host(&self, x: &Value) -> Result<Vec<f32>> {
        Ok(x.data().to_vec())
    }

    fn unary(&mut self, x: &Value, op: Unary) -> Result<Value> {
        self.tensor_unary(x, op)
    }

    fn binary(&mut self, a: &Value, b: &Value, op: Binary) -> Result<Value> {
        self.tensor_binary(a, b, op)
    }

    fn matmul(&mut self, a: &Value, b: &Value, trans_b: bool) -> Result<Value> {
        self.tensor_matmul(a, b, trans_b)
    }

    fn permute(&mut self, x: &Value, perm: &[usize]) -> Result<Value> {
        self.tensor_permute(x, perm)
    }

    fn reshape(&mut self, x: &Value, dims: &[usize]) -> Result<Value> {
        self.tensor_reshape(x, dims)
    }

    fn select(&mut self, x: &Value, axis: usize, indices: &[usize]) -> Result<Value> {
        self.tensor_select(x, axis, indices)
    }

    fn concat(&mut self, parts: &[Value], axis: usize) -> Result<Value> {
        self.tensor_concat(parts, axis)
    }

    fn broadcast_to(&mut self, x: &Value, dims: &[usize]) -> Result<Value> {
        self.tensor_broadcast_to(x, dims)
    }

    fn pad(&mut self, x: &Value, axis: usize, before: usize, after: usize, value: f32) -> Result<Value> {
        self.tensor_pad(x, axis, before, after, value)
    }

    fn reduce(&mut self, x: &Value, axes: &[usize], op: Reduction) -> Result<Value> {
        self.tensor_reduce(x, axes, op)
    }

    fn softmax(&mut self, x: &Value, log: bool) -> Result<Value> {
        self.tensor_softmax(x, log)
    }

    fn layer_norm(&mut self, x: &Value, from_axis: usize, eps: f64) -> Result<Value> {
        self.tensor_layer_norm(x, from_axis, eps)
    }

    fn avg_pool(&mut self, x: &Value, pool: AvgPool2d) -> Result<Value> {
        self.tensor_avg_pool(x, pool)
    }

    fn select_where(&mut self, mask: &Constant, a: &Value, b: &Value) -> Result<Value> {
        self.tensor_where(mask, a, b)
    }

    fn scatter(&mut self, data: &Value, positions: &[usize], updates: &Value) -> Result<Value> {
        self.tensor_scatter(data, positions, updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::layers::Padding;

    /// Small integers (and multiples of ¼) stay exact in f32 through every op below, so
    /// summing the first convolution's output gradients before its reverse pass must give
    /// exactly the weighted sum of the per-point gradients.
    fn integers(len: usize, seed: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % modulus) as f32 - (modulus / 2) as f32)
            .collect()
    }

    /// input → relu(conv a) + conv b(relu(input)) + conv a → mean → linear: conv a reads
    /// the line twice, with and without an activation (summed), the clamp reads it too
    /// (per point), so both routes meet at the input.
    fn build(g: &mut Tape, x: &Value, a: &Conv, b: &Conv, fc: &Linear) -> Result<Value> {
        let ya = g.conv(x, a, Activation::Relu)?;
        let r = g.activation(x, Activation::Relu)?;
        let yb = g.conv(&r, b, Activation::Identity)?;
        let yc = g.conv(x, a, Activation::Identity)?;
        let s = g.add(&ya, &yb)?;
        let s = g.add(&s, &yc)?;
        let p = g.global_avg_pool(&s)?;
        g.linear(&p, fc)
    }

    #[test]
    fn line_gradient_sum_is_exactly_the_weighted_sum_of_point_gradients() {
        let cpu = Device::Cpu;
        let conv = |seed| {
            let w = Tensor::from_vec(integers(3 * 2 * 9, seed, 5), (3, 2, 3, 3), &cpu).unwrap();
            let b = Tensor::from_vec(integers(3, seed, 7), 3, &cpu).unwrap();
            Conv::new(w, Some(b), 1, Padding::Symmetric(1), 1).unwrap()
        };
        let (a, b) = (conv(1), conv(2));
        let fc = Linear::new(
            Tensor::from_vec(integers(4 * 3, 3, 8), (4, 3), &cpu).unwrap(),
            Tensor::zeros(4, candle_core::DType::F32, &cpu).unwrap(),
        )
        .unwrap();
        // 4×8 planes: the mean's 1/32 is exact. Ends differ by multiples of 4, so every
        // point at α = j/4 is an integer image.
        let start = Tensor::from_vec(integers(2 * 4 * 8, 4, 9), (2, 4, 8), &cpu).unwrap();
        let step: Vec<f32> = integers(2 * 4 * 8, 5, 5).iter().map(|v| 4.0 * v).collect();
        let end = (&start + Tensor::from_vec(step, (2, 4, 8), &cpu).unwrap()).unwrap();
        let alphas = [0.25, 0.5, 0.75, 1.0];
        let weights = [0.5, -1.0, 0.25, 2.0];
        let seed = [1.0, -2.0, 0.5, 0.0].repeat(alphas.len());

        let mut line = Tape::new(true);
        let x = line.line_input(&start, &end, &alphas).unwrap();
        let line_out = build(&mut line, &x, &a, &b, &fc).unwrap();
        let line_logits = line_out.data().to_vec();
        let sum = line.line_gradient_sum(&line_out, seed.clone(), &weights).unwrap();

        let points = crate::net::line::line_points(&start, &end, &alphas).unwrap();
        let mut tape = Tape::new(true);
        let x = tape.input(&points).unwrap();
        let out = build(&mut tape, &x, &a, &b, &fc).unwrap();
        assert_eq!(line_logits, out.data(), "the line's forward pass");
        let g = tape.input_gradient(&out, seed).unwrap();
        let per = g.len() / alphas.len();
        let mut expected = vec![0f64; per];
        for (gk, w) in g.chunks(per).zip(weights) {
            expected.iter_mut().zip(gk).for_each(|(e, &v)| *e += w * v as f64);
        }
        assert!(expected.iter().any(|&v| v != 0.0));
        assert_eq!(sum, expected);
    }
}
