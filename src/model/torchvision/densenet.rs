//! torchvision's DenseNet-BC (Huang et al. 2017), 121/161/169/201: a stem, dense blocks
//! whose layers each append `growth` channels to their input, and transitions that halve
//! channels and resolution. Block and layer counts come from the names, widths from the
//! shapes. The norms before each ReLU cannot be folded into a convolution except `norm2`,
//! which directly follows `conv1`. Both the names torchvision's modules give
//! (`denselayer1.norm1`) and the older ones of its published files (`denselayer1.norm.1`,
//! which torchvision renames when it loads them) are read.

use candle_core::Result;

use super::blocks::{self, ChannelAffine, BN_EPS};
use super::vgg::{missing, plain_conv};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{AvgPool2d, Graph};
use crate::net::layers::{Activation, Conv, Linear, Padding};

const FAMILY: &str = "DenseNet";

/// The prefix of dense layer `layer` of block `block` (both from 1).
fn layer_prefix(block: usize, layer: usize) -> String {
    format!("features.denseblock{block}.denselayer{layer}")
}

/// The names of a dense layer's norm or convolution `i` (1 or 2) under `prefix`: `norm1`,
/// or the published files' `norm.1`.
fn part(w: &WeightStore, prefix: &str, what: &str, i: usize) -> String {
    let legacy = format!("{prefix}.{what}.{i}");
    if w.contains(&format!("{legacy}.weight")) {
        legacy
    } else {
        format!("{prefix}.{what}{i}")
    }
}

fn layer_exists(w: &WeightStore, block: usize, layer: usize) -> bool {
    let p = layer_prefix(block, layer);
    w.contains(&format!("{p}.conv1.weight")) || w.contains(&format!("{p}.conv.1.weight"))
}

/// Layers per dense block, from the names.
fn block_config(w: &WeightStore) -> Vec<usize> {
    let mut config = Vec::new();
    while layer_exists(w, config.len() + 1, 1) {
        let block = config.len() + 1;
        let mut n = 1;
        while layer_exists(w, block, n + 1) {
            n += 1;
        }
        config.push(n);
    }
    config
}

/// DenseNet: `features.conv0` and `features.denseblock1.denselayer1`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !w.contains("features.conv0.weight") || !layer_exists(w, 1, 1) {
        return None;
    }
    let config = block_config(w);
    let stem = w.shape("features.conv0.weight").and_then(|s| s.first().copied());
    let conv2 = part(w, &layer_prefix(1, 1), "conv", 2);
    let growth = w.shape(&format!("{conv2}.weight")).and_then(|s| s.first().copied());
    let variant = match (config.as_slice(), growth, stem) {
        ([6, 12, 24, 16], Some(32), Some(64)) => "densenet121",
        ([6, 12, 36, 24], Some(48), Some(96)) => "densenet161",
        ([6, 12, 32, 32], Some(32), Some(64)) => "densenet169",
        ([6, 12, 48, 32], Some(32), Some(64)) => "densenet201",
        _ => CUSTOM,
    };
    Some(Ok(variant))
}

struct DenseLayer {
    norm1: ChannelAffine,
    /// `conv1` with `norm2` folded in (ReLU follows).
    conv1: Conv,
    conv2: Conv,
}

impl DenseLayer {
    fn load(w: &mut WeightStore, prefix: &str, c: usize) -> std::result::Result<Self, ModelError> {
        let [norm1, conv1, norm2, conv2] =
            [("norm", 1), ("conv", 1), ("norm", 2), ("conv", 2)].map(|(what, i)| part(w, prefix, what, i));
        let norm1 = ChannelAffine::batch_norm(w, &norm1, c, BN_EPS)?;
        let conv1 = plain_conv(w, FAMILY, &conv1, c, 1, Some(Padding::Symmetric(0)))?;
        let conv1 = w.fold_bn(conv1, &norm2, BN_EPS)?;
        let conv2 = plain_conv(
            w,
            FAMILY,
            &conv2,
            blocks::out_channels(&conv1),
            1,
            Some(Padding::Symmetric(1)),
        )?;
        Ok(Self { norm1, conv1, conv2 })
    }

    /// The input with the layer's new channels appended.
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = self.norm1.apply(g, x)?;
        let y = g.activation(&y, Activation::Relu)?;
        let y = g.conv(&y, &self.conv1, Activation::Relu)?;
        let y = g.conv(&y, &self.conv2, Activation::Identity)?;
        g.concat(&[x.clone(), y], 1)
    }
}

struct Transition {
    norm: ChannelAffine,
    conv: Conv,
}

impl Transition {
    /// norm, ReLU, 1×1 convolution, 2×2 average pool. The pool runs before the convolution:
    /// both are linear per pixel, so they commute, and the convolution then reads a quarter
    /// of the pixels.
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = self.norm.apply(g, x)?;
        let y = g.activation(&y, Activation::Relu)?;
        let pool = AvgPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            pads: [0; 4],
            count_include_pad: true,
            ceil: false,
        };
        let y = g.avg_pool(&y, pool)?;
        g.conv(&y, &self.conv, Activation::Identity)
    }
}

pub struct DenseNet {
    /// `conv0` with `norm0` folded in.
    stem: Conv,
    /// Each block's layers and the transition after it (none after the last).
    blocks: Vec<(Vec<DenseLayer>, Option<Transition>)>,
    norm5: ChannelAffine,
    classifier: Linear,
}

impl DenseNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let config = block_config(w);
        if config.is_empty() {
            return Err(missing(w, FAMILY, &format!("{}.conv1.weight", layer_prefix(1, 1))));
        }
        let stem = plain_conv(w, FAMILY, "features.conv0", 3, 2, Some(Padding::Symmetric(3)))?;
        let stem = w.fold_bn(stem, "features.norm0", BN_EPS)?;
        let mut c = blocks::out_channels(&stem);
        let mut dense_blocks = Vec::with_capacity(config.len());
        for (b, &n) in config.iter().enumerate() {
            let mut layers = Vec::with_capacity(n);
            for l in 0..n {
                let layer = DenseLayer::load(w, &layer_prefix(b + 1, l + 1), c)?;
                c += blocks::out_channels(&layer.conv2);
                layers.push(layer);
            }
            let transition = if b + 1 < config.len() {
                let p = format!("features.transition{}", b + 1);
                let norm = ChannelAffine::batch_norm(w, &format!("{p}.norm"), c, BN_EPS)?;
                let conv = plain_conv(w, FAMILY, &format!("{p}.conv"), c, 1, Some(Padding::Symmetric(0)))?;
                c = blocks::out_channels(&conv);
                Some(Transition { norm, conv })
            } else {
                None
            };
            dense_blocks.push((layers, transition));
        }
        let norm5 = ChannelAffine::batch_norm(w, "features.norm5", c, BN_EPS)?;
        let classifier = blocks::linear(w, "classifier")?;
        let (out, inp) = blocks::linear_dims(&classifier);
        if inp != c {
            return Err(blocks::shape_error(w, "classifier.weight", &[out, c], &[out, inp]));
        }
        Ok(Self {
            stem,
            blocks: dense_blocks,
            norm5,
            classifier,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.classifier).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.stem, Activation::Relu)?;
        let mut x = g.max_pool(&x, blocks::STEM_MAX_POOL)?;
        for (layers, transition) in &self.blocks {
            for layer in layers {
                x = layer.build(g, &x)?;
            }
            if let Some(t) = transition {
                x = t.build(g, &x)?;
            }
        }
        let x = self.norm5.apply(g, &x)?;
        let x = g.activation(&x, Activation::Relu)?;
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.classifier)
    }
}
