//! The network as candle tensor operations: differentiable by candle's autograd, on any
//! device (the reference for the tape, and the path for CUDA).

use candle_core::{Result, Tensor};

use super::composite::{global_avg_pool, max_pool2d};
use super::graph::Graph;
use super::layers::{Activation, Conv, Linear, MaxPool2d};

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
        let (_, _, h, w) = x.dims4()?;
        pool.check_input(h, w)?;
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
