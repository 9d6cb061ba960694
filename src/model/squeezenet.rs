//! SqueezeNet 1.0 and 1.1 (Iandola et al. 2016) with torchvision tensor names.
//!
//! Note that torchvision's "logits" are post-ReLU averages of a 1×1 convolution, so they
//! are never negative.

use candle_core::Result;

use super::error::ModelError;
use super::weights::{ConvSpec, WeightStore};
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, MaxPool2d, Padding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqueezeNetVersion {
    V1_0,
    V1_1,
}

struct Fire {
    squeeze: Conv,
    expand1x1: Conv,
    expand3x3: Conv,
}

impl Fire {
    fn load(
        w: &mut WeightStore,
        prefix: &str,
        c_in: usize,
        squeeze: usize,
        expand: usize,
    ) -> std::result::Result<Self, ModelError> {
        Ok(Self {
            squeeze: w.conv(
                &format!("{prefix}.squeeze"),
                ConvSpec::new(c_in, squeeze, 1, 1, Padding::Symmetric(0)),
            )?,
            expand1x1: w.conv(
                &format!("{prefix}.expand1x1"),
                ConvSpec::new(squeeze, expand, 1, 1, Padding::Symmetric(0)),
            )?,
            expand3x3: w.conv(
                &format!("{prefix}.expand3x3"),
                ConvSpec::new(squeeze, expand, 3, 1, Padding::Symmetric(1)),
            )?,
        })
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let s = g.conv(x, &self.squeeze, Activation::Relu)?;
        g.conv_pair_cat(&s, &self.expand1x1, &self.expand3x3, Activation::Relu)
    }
}

enum Layer {
    MaxPool,
    Fire(Box<Fire>),
}

pub struct SqueezeNet {
    stem: Conv,
    layers: Vec<Layer>,
    classifier: Conv,
}

impl SqueezeNet {
    pub fn load(
        w: &mut WeightStore,
        version: SqueezeNetVersion,
        num_classes: usize,
    ) -> std::result::Result<Self, ModelError> {
        // (index in torchvision's `features`, squeeze, expand) or a max-pool.
        let (stem, plan): (Conv, &[(usize, usize, usize)]) = match version {
            SqueezeNetVersion::V1_0 => (
                w.conv("features.0", ConvSpec::new(3, 96, 7, 2, Padding::Symmetric(0)))?,
                &[
                    (2, 0, 0),
                    (3, 16, 64),
                    (4, 16, 64),
                    (5, 32, 128),
                    (6, 0, 0),
                    (7, 32, 128),
                    (8, 48, 192),
                    (9, 48, 192),
                    (10, 64, 256),
                    (11, 0, 0),
                    (12, 64, 256),
                ],
            ),
            SqueezeNetVersion::V1_1 => (
                w.conv("features.0", ConvSpec::new(3, 64, 3, 2, Padding::Symmetric(0)))?,
                &[
                    (2, 0, 0),
                    (3, 16, 64),
                    (4, 16, 64),
                    (5, 0, 0),
                    (6, 32, 128),
                    (7, 32, 128),
                    (8, 0, 0),
                    (9, 48, 192),
                    (10, 48, 192),
                    (11, 64, 256),
                    (12, 64, 256),
                ],
            ),
        };
        let mut c = stem.weight().dims()[0];
        let mut layers = Vec::new();
        for &(idx, squeeze, expand) in plan {
            if squeeze == 0 {
                layers.push(Layer::MaxPool);
            } else {
                layers.push(Layer::Fire(Box::new(Fire::load(
                    w,
                    &format!("features.{idx}"),
                    c,
                    squeeze,
                    expand,
                )?)));
                c = 2 * expand;
            }
        }
        let classifier = w.conv(
            "classifier.1",
            ConvSpec::new(c, num_classes, 1, 1, Padding::Symmetric(0)),
        )?;
        Ok(Self {
            stem,
            layers,
            classifier,
        })
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let pool = MaxPool2d {
            kernel: 3,
            stride: 2,
            pad: 0,
            ceil: true,
        };
        let mut x = g.conv(x, &self.stem, Activation::Relu)?;
        for layer in &self.layers {
            x = match layer {
                Layer::MaxPool => g.max_pool(&x, pool)?,
                Layer::Fire(f) => f.build(g, &x)?,
            };
        }
        // Dropout is the identity at inference.
        let x = g.conv(&x, &self.classifier, Activation::Relu)?;
        g.global_avg_pool(&x)
    }
}
