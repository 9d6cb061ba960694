//! torchvision ResNets (He et al. 2016): BasicBlock (18, 34) and Bottleneck (50, 101, 152)
//! variants, with the block counts read from the checkpoint. BatchNorm is folded into the
//! convolutions at load time (eps 1e-5).

use candle_core::Result;

use super::error::ModelError;
use super::weights::{ConvSpec, WeightStore};
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, MaxPool2d, Padding};

const BN_EPS: f64 = 1e-5;

struct Block {
    convs: Vec<Conv>,
    downsample: Option<Conv>,
}

impl Block {
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut y = x.clone();
        let last = self.convs.len() - 1;
        for (i, c) in self.convs.iter().enumerate() {
            let act = if i != last {
                Activation::Relu
            } else {
                Activation::Identity
            };
            y = g.conv(&y, c, act)?;
        }
        let identity = match &self.downsample {
            Some(d) => g.conv(x, d, Activation::Identity)?,
            None => x.clone(),
        };
        let sum = g.add(&y, &identity)?;
        g.activation(&sum, Activation::Relu)
    }
}

pub struct ResNet {
    stem: Conv,
    blocks: Vec<Block>,
    fc: Linear,
}

/// Number of blocks in `layer{1..4}` and whether they are bottlenecks, read from names.
pub fn block_layout(w: &WeightStore) -> ([usize; 4], bool) {
    let mut counts = [0usize; 4];
    for (i, count) in counts.iter_mut().enumerate() {
        while w.contains(&format!("layer{}.{}.conv1.weight", i + 1, *count)) {
            *count += 1;
        }
    }
    (counts, w.contains("layer1.0.conv3.weight"))
}

impl ResNet {
    pub fn load(w: &mut WeightStore, num_classes: usize) -> std::result::Result<Self, ModelError> {
        let (counts, bottleneck) = block_layout(w);
        let stem = w.conv("conv1", ConvSpec::new(3, 64, 7, 2, Padding::Symmetric(3)))?;
        let stem = w.fold_bn(stem, "bn1", BN_EPS)?;
        let expansion = if bottleneck { 4 } else { 1 };
        let mut c_in = 64;
        let mut blocks = Vec::new();
        for (layer, &count) in counts.iter().enumerate() {
            let width = 64 << layer;
            for b in 0..count {
                let stride = if layer > 0 && b == 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}", layer + 1);
                let c_out = width * expansion;
                let convs = if bottleneck {
                    let c1 = w.conv(
                        &format!("{p}.conv1"),
                        ConvSpec::new(c_in, width, 1, 1, Padding::Symmetric(0)),
                    )?;
                    let c2 = w.conv(
                        &format!("{p}.conv2"),
                        ConvSpec::new(width, width, 3, stride, Padding::Symmetric(1)),
                    )?;
                    let c3 = w.conv(
                        &format!("{p}.conv3"),
                        ConvSpec::new(width, c_out, 1, 1, Padding::Symmetric(0)),
                    )?;
                    vec![
                        w.fold_bn(c1, &format!("{p}.bn1"), BN_EPS)?,
                        w.fold_bn(c2, &format!("{p}.bn2"), BN_EPS)?,
                        w.fold_bn(c3, &format!("{p}.bn3"), BN_EPS)?,
                    ]
                } else {
                    let c1 = w.conv(
                        &format!("{p}.conv1"),
                        ConvSpec::new(c_in, width, 3, stride, Padding::Symmetric(1)),
                    )?;
                    let c2 = w.conv(
                        &format!("{p}.conv2"),
                        ConvSpec::new(width, width, 3, 1, Padding::Symmetric(1)),
                    )?;
                    vec![
                        w.fold_bn(c1, &format!("{p}.bn1"), BN_EPS)?,
                        w.fold_bn(c2, &format!("{p}.bn2"), BN_EPS)?,
                    ]
                };
                let downsample = if stride != 1 || c_in != c_out {
                    let d = w.conv(
                        &format!("{p}.downsample.0"),
                        ConvSpec::new(c_in, c_out, 1, stride, Padding::Symmetric(0)),
                    )?;
                    Some(w.fold_bn(d, &format!("{p}.downsample.1"), BN_EPS)?)
                } else {
                    None
                };
                blocks.push(Block { convs, downsample });
                c_in = c_out;
            }
        }
        let fc_weight = w.get("fc.weight", Some(&[num_classes, c_in]))?;
        let fc_bias = w.get("fc.bias", Some(&[num_classes]))?;
        Ok(Self {
            stem,
            blocks,
            fc: Linear::new(fc_weight, fc_bias).map_err(|e| ModelError::candle(w.path(), e))?,
        })
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.stem, Activation::Relu)?;
        let pool = MaxPool2d {
            kernel: 3,
            stride: 2,
            pad: 1,
            ceil: false,
        };
        let mut x = g.max_pool(&x, pool)?;
        for b in &self.blocks {
            x = b.build(g, &x)?;
        }
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.fc)
    }
}
