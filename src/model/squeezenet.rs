//! SqueezeNet 1.0 and 1.1 (Iandola et al. 2016) with torchvision tensor names.
//!
//! Note that torchvision's "logits" are post-ReLU averages of a 1×1 convolution, so they
//! are never negative.

use candle_core::{Result, Tensor};

use super::activation::relu;
use super::ops::{global_avg_pool, max_pool2d, Conv, Padding};
use super::weights::{ConvSpec, WeightStore};
use super::ModelError;

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

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.squeeze.forward(x)?.apply(&relu)?;
        let a = self.expand1x1.forward(&s)?.apply(&relu)?;
        let b = self.expand3x3.forward(&s)?.apply(&relu)?;
        Tensor::cat(&[a, b], 1)
    }
}

enum Layer {
    MaxPool,
    Fire(Fire),
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
                layers.push(Layer::Fire(Fire::load(
                    w,
                    &format!("features.{idx}"),
                    c,
                    squeeze,
                    expand,
                )?));
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

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.stem.forward(x)?.apply(&relu)?;
        for layer in &self.layers {
            x = match layer {
                Layer::MaxPool => max_pool2d(&x, 3, 2, 0, true)?,
                Layer::Fire(f) => f.forward(&x)?,
            };
        }
        // Dropout is the identity at inference.
        let x = self.classifier.forward(&x)?.apply(&relu)?;
        global_avg_pool(&x)
    }
}
