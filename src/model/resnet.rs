//! torchvision ResNets (He et al. 2016): BasicBlock (18, 34) and Bottleneck (50, 101, 152)
//! variants, ResNeXt (grouped 3×3 convolutions) and Wide ResNet (wider bottlenecks). Block
//! counts come from the names, widths and groups from the shapes, so other widths (a
//! reduced model, a fine-tuned head of any size) load too. BatchNorm is folded into the
//! convolutions at load time (eps 1e-5).

use candle_core::Result;

use super::error::ModelError;
use super::torchvision::blocks::{self, BN_EPS};
use super::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, Padding};

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

/// Number of blocks in `layer{1..4}` and whether they are bottlenecks, read from names
/// (a block counts when any tensor is named under it, so that a missing convolution is
/// reported by name rather than shortening the network).
pub fn block_layout(w: &WeightStore) -> ([usize; 4], bool) {
    let mut counts = [0usize; 4];
    for name in w.names() {
        let mut parts = name.split('.');
        let (Some(layer), Some(block)) = (parts.next(), parts.next()) else {
            continue;
        };
        let layer = layer.strip_prefix("layer").and_then(|l| l.parse::<usize>().ok());
        if let (Some(l @ 1..=4), Ok(b)) = (layer, block.parse::<usize>()) {
            counts[l - 1] = counts[l - 1].max(b + 1);
        }
    }
    let bottleneck = w.names().any(|n| n.starts_with("layer1.0.conv3."));
    (counts, bottleneck)
}

impl ResNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let (counts, bottleneck) = block_layout(w);
        let stem = blocks::conv_bn(w, "conv1", "bn1", 3, 2, Some(Padding::Symmetric(3)), BN_EPS)?;
        let mut c_in = blocks::out_channels(&stem);
        let mut layers = Vec::new();
        for (layer, &count) in counts.iter().enumerate() {
            for b in 0..count {
                let stride = if layer > 0 && b == 0 { 2 } else { 1 };
                let p = format!("layer{}.{b}", layer + 1);
                let mut convs = Vec::new();
                let mut c = c_in;
                let names: &[(&str, usize)] = if bottleneck {
                    &[("1", 1), ("2", stride), ("3", 1)]
                } else {
                    &[("1", stride), ("2", 1)]
                };
                for &(i, s) in names {
                    let conv = blocks::conv_bn(w, &format!("{p}.conv{i}"), &format!("{p}.bn{i}"), c, s, None, BN_EPS)?;
                    c = blocks::out_channels(&conv);
                    convs.push(conv);
                }
                let downsample = if w.contains(&format!("{p}.downsample.0.weight")) {
                    let d = blocks::conv_bn(
                        w,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        c_in,
                        stride,
                        Some(Padding::Symmetric(0)),
                        BN_EPS,
                    )?;
                    Some(d)
                } else {
                    if c != c_in || stride != 1 {
                        let name = format!("{p}.downsample.0.weight");
                        return Err(ModelError::TensorMismatch {
                            path: w.path().to_path_buf(),
                            architecture: "ResNet".into(),
                            missing: vec![name],
                            unexpected: Vec::new(),
                        });
                    }
                    None
                };
                layers.push(Block { convs, downsample });
                c_in = c;
            }
        }
        let fc = blocks::linear(w, "fc")?;
        let (_, fc_in) = blocks::linear_dims(&fc);
        if fc_in != c_in {
            let dims = w.shape("fc.weight").unwrap_or(&[]).to_vec();
            return Err(blocks::shape_error(w, "fc.weight", &[dims[0], c_in], &dims));
        }
        Ok(Self {
            stem,
            blocks: layers,
            fc,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.fc).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.stem, Activation::Relu)?;
        let mut x = g.max_pool(&x, blocks::STEM_MAX_POOL)?;
        for b in &self.blocks {
            x = b.build(g, &x)?;
        }
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.fc)
    }
}
