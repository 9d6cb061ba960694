//! EfficientNet-Lite0 (EfficientNet-B0 without squeeze-excitation, ReLU6, fixed stem and
//! head) with the tensor names of `efficientnet_lite_pytorch`. TensorFlow conventions:
//! "SAME" padding and BatchNorm eps 1e-3 (folded into the convolutions at load time).

use candle_core::Result;

use super::error::ModelError;
use super::weights::{ConvSpec, WeightStore};
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, Padding};

const BN_EPS: f64 = 1e-3;

/// Stages of Lite0: (repeats, kernel, stride of the first block, expand ratio, out channels).
const LITE0_STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

/// Number of MBConv blocks of Lite0; used to recognise the checkpoint.
pub const LITE0_BLOCKS: usize = 16;

struct MbConv {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

impl MbConv {
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut y = match &self.expand {
            Some(e) => g.conv(x, e, Activation::Relu6)?,
            None => x.clone(),
        };
        y = g.conv(&y, &self.depthwise, Activation::Relu6)?;
        y = g.conv(&y, &self.project, Activation::Identity)?;
        if self.residual {
            y = g.add(&y, x)?;
        }
        Ok(y)
    }
}

pub struct EfficientNetLite {
    stem: Conv,
    blocks: Vec<MbConv>,
    head: Conv,
    fc: Linear,
}

impl EfficientNetLite {
    pub fn load_lite0(w: &mut WeightStore, num_classes: usize) -> std::result::Result<Self, ModelError> {
        let same = Padding::TensorFlowSame;
        let stem = w.conv("_conv_stem", ConvSpec::new(3, 32, 3, 2, same))?;
        let stem = w.fold_bn(stem, "_bn0", BN_EPS)?;
        let mut blocks = Vec::new();
        let mut c_in = 32;
        let mut idx = 0;
        for &(repeats, kernel, first_stride, ratio, c_out) in &LITE0_STAGES {
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let p = format!("_blocks.{idx}");
                let hidden = c_in * ratio;
                let expand = if ratio != 1 {
                    let e = w.conv(&format!("{p}._expand_conv"), ConvSpec::new(c_in, hidden, 1, 1, same))?;
                    Some(w.fold_bn(e, &format!("{p}._bn0"), BN_EPS)?)
                } else {
                    None
                };
                let dw = w.conv(
                    &format!("{p}._depthwise_conv"),
                    ConvSpec::new(hidden, hidden, kernel, stride, same).depthwise(),
                )?;
                let depthwise = w.fold_bn(dw, &format!("{p}._bn1"), BN_EPS)?;
                let pr = w.conv(&format!("{p}._project_conv"), ConvSpec::new(hidden, c_out, 1, 1, same))?;
                let project = w.fold_bn(pr, &format!("{p}._bn2"), BN_EPS)?;
                blocks.push(MbConv {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && c_in == c_out,
                });
                c_in = c_out;
                idx += 1;
            }
        }
        let head = w.conv("_conv_head", ConvSpec::new(c_in, 1280, 1, 1, same))?;
        let head = w.fold_bn(head, "_bn1", BN_EPS)?;
        let fc_weight = w.get("_fc.weight", Some(&[num_classes, 1280]))?;
        let fc_bias = w.get("_fc.bias", Some(&[num_classes]))?;
        Ok(Self {
            stem,
            blocks,
            head,
            fc: Linear::new(fc_weight, fc_bias).map_err(|e| ModelError::candle(w.path(), e))?,
        })
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut x = g.conv(x, &self.stem, Activation::Relu6)?;
        for b in &self.blocks {
            x = b.build(g, &x)?;
        }
        let x = g.conv(&x, &self.head, Activation::Relu6)?;
        let x = g.global_avg_pool(&x)?;
        // Dropout is the identity at inference.
        g.linear(&x, &self.fc)
    }
}
