//! The handful of operations our architectures are made of, as a trait, so that each
//! network is described once and runs two ways:
//! - [`CandleGraph`]: candle tensors on any device, differentiable by candle's autograd
//!   (the reference, and the path for CUDA);
//! - [`Tape`](super::tape::Tape): plain CPU buffers with an input-gradient-only reverse
//!   pass. Candle's backward seeds every node's gradient with a zero tensor and adds into
//!   it, which roughly triples the memory traffic of a pass; attribution only ever needs
//!   ∂f/∂input, so the tape skips all of that.

use candle_core::{Result, Tensor};

use super::maxpool::MaxPool2d;
use super::ops::{global_avg_pool, max_pool2d, Activation, Conv, Linear};

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
    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    /// Mean over the spatial axes: [N, C, H, W] -> [N, C].
    fn global_avg_pool(&mut self, x: &Self::Value) -> Result<Self::Value>;
    fn linear(&mut self, x: &Self::Value, layer: &Linear) -> Result<Self::Value>;
}

/// Runs a network as candle tensor operations.
pub struct CandleGraph;

impl Graph for CandleGraph {
    type Value = Tensor;

    fn conv(&mut self, x: &Tensor, conv: &Conv, act: Activation) -> Result<Tensor> {
        act.apply(&conv.forward(x)?)
    }

    fn activation(&mut self, x: &Tensor, act: Activation) -> Result<Tensor> {
        act.apply(x)
    }

    fn max_pool(&mut self, x: &Tensor, pool: MaxPool2d) -> Result<Tensor> {
        max_pool2d(x, pool.kernel, pool.stride, pool.pad, pool.ceil)
    }

    fn cat_channels(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Tensor::cat(&[a, b], 1)
    }

    fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a + b
    }

    fn global_avg_pool(&mut self, x: &Tensor) -> Result<Tensor> {
        global_avg_pool(x)
    }

    fn linear(&mut self, x: &Tensor, layer: &Linear) -> Result<Tensor> {
        layer.forward(x)
    }
}
