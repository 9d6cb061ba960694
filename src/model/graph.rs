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

/// Counts, from shapes alone (no arithmetic), the multiply–adds of a forward pass (the
/// numerator of a benchmark's achieved GFLOP/s) and the elements of every value it
/// produces (what a recording tape keeps alive until its reverse pass).
#[derive(Debug, Default)]
pub struct CostCounter {
    pub macs: u64,
    pub activation_elements: u64,
}

impl CostCounter {
    fn produced(&mut self, dims: Vec<usize>) -> Vec<usize> {
        self.activation_elements += dims.iter().product::<usize>() as u64;
        dims
    }
}

impl Graph for CostCounter {
    type Value = Vec<usize>;

    fn conv(&mut self, x: &Vec<usize>, conv: &Conv, _act: Activation) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("conv input must be NCHW, got {x:?}");
        };
        let Some(op) = conv.cpu_op(h, w) else {
            candle_core::bail!("counting needs CPU weights");
        };
        op.check_input(c, h, w)?;
        let k = &op.kernel;
        let (oh, ow) = op.out_size(h, w);
        self.macs += (n * k.c_out * oh * ow * (k.c_in / k.groups) * k.kh * k.kw) as u64;
        Ok(self.produced(vec![n, k.c_out, oh, ow]))
    }

    fn activation(&mut self, x: &Vec<usize>, _act: Activation) -> Result<Vec<usize>> {
        Ok(self.produced(x.clone()))
    }

    fn max_pool(&mut self, x: &Vec<usize>, pool: MaxPool2d) -> Result<Vec<usize>> {
        let [n, c, h, w] = x[..] else {
            candle_core::bail!("max-pool input must be NCHW, got {x:?}");
        };
        pool.check_input(h, w)?;
        let (oh, ow) = pool.geometry(h, w);
        // The recorded argmax (u32) is as large as the pooled output.
        self.activation_elements += (n * c * oh * ow) as u64;
        Ok(self.produced(vec![n, c, oh, ow]))
    }

    fn cat_channels(&mut self, a: &Vec<usize>, b: &Vec<usize>) -> Result<Vec<usize>> {
        let mut d = a.clone();
        d[1] += b[1];
        Ok(self.produced(d))
    }

    fn conv_pair_cat(&mut self, x: &Vec<usize>, a: &Conv, b: &Conv, act: Activation) -> Result<Vec<usize>> {
        // The tape keeps only the concatenation, not the two outputs apart.
        let kept = self.activation_elements;
        let ya = self.conv(x, a, act)?;
        let yb = self.conv(x, b, act)?;
        self.activation_elements = kept;
        self.cat_channels(&ya, &yb)
    }

    fn add(&mut self, a: &Vec<usize>, _b: &Vec<usize>) -> Result<Vec<usize>> {
        Ok(self.produced(a.clone()))
    }

    fn global_avg_pool(&mut self, x: &Vec<usize>) -> Result<Vec<usize>> {
        Ok(self.produced(x[..2].to_vec()))
    }

    fn linear(&mut self, x: &Vec<usize>, layer: &Linear) -> Result<Vec<usize>> {
        let k = &layer.cpu;
        self.macs += (x[0] * k.n_in * k.n_out) as u64;
        Ok(self.produced(vec![x[0], k.n_out]))
    }
}

#[cfg(test)]
mod tests {
    /// SqueezeNet-1.1 on 224×224: 352 M multiply–adds (torchvision's model card lists
    /// 0.35 "GFLOPS", which counts multiply–adds).
    #[test]
    fn squeezenet_mac_count_matches_the_published_figure() {
        let model = crate::assets::default_classifier(&candle_core::Device::Cpu).unwrap();
        let macs = model.forward_macs(224, 224).unwrap();
        assert!((macs as f64 / 1e6 - 352.0).abs() < 3.0, "{macs}");
    }
}
