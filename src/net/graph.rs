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

use super::layers::{Activation, Conv, Linear, MaxPool2d};

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
}
