//! torchvision's AlexNet (Krizhevsky 2014's "one weird trick" variant): five convolutions
//! at fixed `features` indices with ReLU and 3×3 stride-2 max pools, a 6×6 adaptive pool
//! and three Linear layers at `classifier.1/4/6`. Widths and the head come from the shapes.

use candle_core::Result;

use super::vgg::{has_classifier, plain_conv, plain_features, Head};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, MaxPool2d, Padding};

const FAMILY: &str = "AlexNet";

/// `features` index, stride, padding, and whether a max pool follows.
const CONVS: [(usize, usize, usize, bool); 5] = [
    (0, 4, 2, true),
    (3, 1, 2, true),
    (6, 1, 1, false),
    (8, 1, 1, false),
    (10, 1, 1, true),
];

/// torchvision's widths.
const WIDTHS: [usize; 5] = [64, 192, 384, 256, 256];

/// AlexNet: a plain `features` stack and the head at `classifier.1/4/6` (VGG's is at
/// 0/3/6). Any of `classifier.1/4` identifies it, so that a missing layer is reported by
/// name.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    let alexnet_head = [1, 4].iter().any(|&i| has_classifier(w, i));
    let vgg_head = [0, 3].iter().any(|&i| has_classifier(w, i));
    if !plain_features(w) || !alexnet_head || vgg_head {
        return None;
    }
    let first = w.shape("features.0.weight")?;
    let widths: Vec<usize> = CONVS
        .iter()
        .map(|(i, ..)| {
            w.shape(&format!("features.{i}.weight"))
                .and_then(|s| s.first().copied())
                .unwrap_or(0)
        })
        .collect();
    let kernel = &first[2..];
    Some(Ok(if widths == WIDTHS && kernel == [11, 11] {
        "alexnet"
    } else {
        CUSTOM
    }))
}

pub struct AlexNet {
    /// Each convolution (ReLU fused) and whether a max pool follows it.
    convs: Vec<(Conv, bool)>,
    head: Head,
}

impl AlexNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let mut c = 3;
        let mut convs = Vec::with_capacity(CONVS.len());
        for &(i, stride, pad, pool) in &CONVS {
            let prefix = format!("features.{i}");
            let conv = plain_conv(w, FAMILY, &prefix, c, stride, Some(Padding::Symmetric(pad)))?;
            c = conv.weight().dims()[0];
            convs.push((conv, pool));
        }
        let head = Head::load(w, FAMILY, &[1, 4, 6], c)?;
        Ok(Self { convs, head })
    }

    pub fn num_classes(&self) -> usize {
        self.head.num_classes()
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let pool = MaxPool2d {
            kernel: 3,
            stride: 2,
            pad: 0,
            ceil: false,
        };
        let mut x = x.clone();
        for (conv, pooled) in &self.convs {
            x = g.conv(&x, conv, Activation::Relu)?;
            if *pooled {
                x = g.max_pool(&x, pool)?;
            }
        }
        self.head.build(g, &x)
    }
}
