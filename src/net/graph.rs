//! The handful of operations our architectures are made of, as a trait, so that each
//! network is described once and runs three ways:
//! - [`CandleGraph`](super::candle_graph::CandleGraph): candle tensors on any device,
//!   differentiable by candle's autograd (the reference, and the path for CUDA);
//! - [`Tape`](super::tape::Tape): plain CPU buffers with an input-gradient-only reverse
//!   pass. Candle's backward seeds every node's gradient with a zero tensor and adds into
//!   it, which roughly triples the memory traffic of a pass; attribution only ever needs
//!   ∂f/∂input, so the tape skips all of that;
//! - [`CostCounter`](super::cost::CostCounter): shapes only, counting multiply–adds and
//!   the memory a recording pass keeps.

use candle_core::Result;

pub use crate::kernels::pointwise::{Binary, Unary};
pub use crate::kernels::reduce::{AvgPool2d, Reduction};

use super::layers::{Activation, Constant, Conv, Linear, MaxPool2d};

pub trait Graph {
    /// A value flowing through the network: NCHW feature maps, or [N, features] after
    /// pooling.
    type Value: Clone;

    /// act(conv(x)).
    fn conv(&mut self, x: &Self::Value, conv: &Conv, act: Activation) -> Result<Self::Value>;
    fn activation(&mut self, x: &Self::Value, act: Activation) -> Result<Self::Value>;
    fn max_pool(&mut self, x: &Self::Value, pool: MaxPool2d) -> Result<Self::Value>;
    /// Concatenation along the channel axis.
    fn cat_channels(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// cat_channels(act(a(x)), act(b(x))): SqueezeNet's fire expand. The tape overrides it
    /// to write both convolutions straight into the concatenation (and to read their
    /// gradients from it in place) instead of copying both ways.
    fn conv_pair_cat(&mut self, x: &Self::Value, a: &Conv, b: &Conv, act: Activation) -> Result<Self::Value> {
        let ya = self.conv(x, a, act)?;
        let yb = self.conv(x, b, act)?;
        self.cat_channels(&ya, &yb)
    }
    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// Mean over the spatial axes: [N, C, H, W] -> [N, C].
    fn global_avg_pool(&mut self, x: &Self::Value) -> Result<Self::Value>;
    fn linear(&mut self, x: &Self::Value, layer: &Linear) -> Result<Self::Value>;

    // General tensor operations, for networks beyond convolution stacks (transformers,
    // ConvNeXt, squeeze-excite, graphs read from ONNX). Values are row-major tensors of any
    // rank; binary operations broadcast as numpy does.

    /// The shape of a value.
    fn dims(&self, x: &Self::Value) -> Vec<usize>;
    /// A constant (weights, masks): no gradient flows into it.
    fn constant(&mut self, c: &Constant) -> Result<Self::Value>;
    /// A value's elements on the host, for the rare place a graph turns data into indices
    /// (no gradient flows through them).
    fn host(&self, x: &Self::Value) -> Result<Vec<f32>>;
    fn unary(&mut self, x: &Self::Value, op: Unary) -> Result<Self::Value>;
    fn binary(&mut self, a: &Self::Value, b: &Self::Value, op: Binary) -> Result<Self::Value>;
    /// `a` [..., m, k] × `b` [..., k, n] (or `b` stored [..., n, k] with `trans_b`), batch
    /// axes broadcast.
    fn matmul(&mut self, a: &Self::Value, b: &Self::Value, trans_b: bool) -> Result<Self::Value>;
    /// Axes reordered: output axis i is input axis `perm[i]`.
    fn permute(&mut self, x: &Self::Value, perm: &[usize]) -> Result<Self::Value>;
    /// The same elements under another shape.
    fn reshape(&mut self, x: &Self::Value, dims: &[usize]) -> Result<Self::Value>;
    /// The elements at `indices` along `axis` (slices, gathers, reflections; repeats allowed).
    fn select(&mut self, x: &Self::Value, axis: usize, indices: &[usize]) -> Result<Self::Value>;
    fn concat(&mut self, parts: &[Self::Value], axis: usize) -> Result<Self::Value>;
    fn broadcast_to(&mut self, x: &Self::Value, dims: &[usize]) -> Result<Self::Value>;
    /// `before` and `after` elements of `value` on each side along `axis`.
    fn pad(&mut self, x: &Self::Value, axis: usize, before: usize, after: usize, value: f32) -> Result<Self::Value>;
    /// A reduction over `axes` (sorted), keeping them as size-1 axes.
    fn reduce(&mut self, x: &Self::Value, axes: &[usize], op: Reduction) -> Result<Self::Value>;
    /// Softmax (or log-softmax) along the last axis.
    fn softmax(&mut self, x: &Self::Value, log: bool) -> Result<Self::Value>;
    /// (x − mean) / √(var + eps) over the axes from `from_axis` on.
    fn layer_norm(&mut self, x: &Self::Value, from_axis: usize, eps: f64) -> Result<Self::Value>;
    /// 2-D average pooling of an NCHW value.
    fn avg_pool(&mut self, x: &Self::Value, pool: AvgPool2d) -> Result<Self::Value>;
    /// `a` where `mask` (a constant of 0s and 1s, broadcast) is 1, else `b`.
    fn select_where(&mut self, mask: &Constant, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// `data` with the elements at `positions` (flat, row-major) replaced by `updates`, in order.
    fn scatter(&mut self, data: &Self::Value, positions: &[usize], updates: &Self::Value) -> Result<Self::Value>;
}
