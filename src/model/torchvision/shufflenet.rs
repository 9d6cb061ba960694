//! torchvision's ShuffleNetV2 (Ma et al. 2018): a 3×3 stride-2 stem and 3×3 max pool,
//! three stages of units (the first of a stage has stride 2 and two branches over the whole
//! input; the others pass half the channels through and transform the other half), each
//! followed by a shuffle of the two halves, a 1×1 head convolution, the mean over H and W
//! and one linear layer. Widths and depths come from the tensors; which units have stride 2
//! from their names (only those have `branch1`). BatchNorm (eps 1e-5) is folded.

use candle_core::Result;

use super::blocks::{self, BN_EPS};
use super::mobilenet_v2::{checked_conv_bn, checked_linear, Kind};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{Graph, Reduction};
use crate::net::layers::{Activation, Conv, Linear};

const FAMILY: &str = "ShuffleNet V2";

/// torchvision's builders: (name, output channels of the stem, the three stages and conv5);
/// all have [4, 8, 4] units per stage.
const VARIANTS: &[(&str, [usize; 5])] = &[
    ("shufflenet_v2_x0_5", [24, 48, 96, 192, 1024]),
    ("shufflenet_v2_x1_0", [24, 116, 232, 464, 1024]),
    ("shufflenet_v2_x1_5", [24, 176, 352, 704, 1024]),
    ("shufflenet_v2_x2_0", [24, 244, 488, 976, 2048]),
];

const STAGES: [usize; 3] = [2, 3, 4];

fn units(w: &WeightStore, stage: usize) -> usize {
    let mut n = 0;
    while w.contains(&format!("stage{stage}.{n}.branch2.0.weight")) {
        n += 1;
    }
    n
}

/// ShuffleNetV2's names: `conv1.0` and `stage2.0.branch1`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("conv1.0.weight") && w.contains("stage2.0.branch1.0.weight") && w.contains("conv5.0.weight")) {
        return None;
    }
    let width = |name: &str| w.shape(name).and_then(|s| s.first().copied());
    let mut widths = vec![width("conv1.0.weight")];
    for s in STAGES {
        // The stage's output: both branches' last 1×1 convolutions.
        let n = units(w, s);
        let half = width(&format!("stage{s}.{}.branch2.5.weight", n.saturating_sub(1)));
        widths.push(half.map(|h| 2 * h));
    }
    widths.push(width("conv5.0.weight"));
    let repeats = STAGES.map(|s| units(w, s));
    let variant = VARIANTS
        .iter()
        .find(|(_, wd)| repeats == [4, 8, 4] && widths.iter().copied().eq(wd.iter().map(|&x| Some(x))));
    Some(Ok(variant.map_or(CUSTOM, |v| v.0)))
}

/// A unit: `branch1` (stride 2 only: depthwise 3×3 + BN, 1×1 + BN + ReLU) and `branch2`
/// (1×1 + BN + ReLU, depthwise 3×3 + BN, 1×1 + BN + ReLU).
struct Unit {
    branch1: Option<[Conv; 2]>,
    branch2: [Conv; 3],
}

pub struct ShuffleNetV2 {
    stem: Conv,
    units: Vec<Unit>,
    head: Conv,
    fc: Linear,
}

impl ShuffleNetV2 {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let conv_bn = |w: &mut WeightStore, p: &str, conv: usize, c_in: usize, stride: usize, kind: Kind| {
            checked_conv_bn(
                w,
                &format!("{p}.{conv}"),
                &format!("{p}.{}", conv + 1),
                c_in,
                stride,
                kind,
                BN_EPS,
                FAMILY,
            )
        };
        let stem = conv_bn(w, "conv1", 0, 3, 2, Kind::Dense)?;
        let mut c = blocks::out_channels(&stem);
        let mut layers = Vec::new();
        for s in STAGES {
            for i in 0..units(w, s) {
                let p = format!("stage{s}.{i}");
                let (branch1, c_in2, stride) = if w.contains(&format!("{p}.branch1.0.weight")) {
                    let b = format!("{p}.branch1");
                    let dw = conv_bn(w, &b, 0, c, 2, Kind::Depthwise)?;
                    let pw = conv_bn(w, &b, 2, c, 1, Kind::Dense)?;
                    (Some([dw, pw]), c, 2)
                } else {
                    if !c.is_multiple_of(2) {
                        let name = format!("{p}.branch2.0.weight");
                        let found = w.shape(&name).unwrap_or(&[]).to_vec();
                        return Err(blocks::shape_error(w, &name, &[c / 2, c / 2, 1, 1], &found));
                    }
                    (None, c / 2, 1)
                };
                let b = format!("{p}.branch2");
                let a = conv_bn(w, &b, 0, c_in2, 1, Kind::Dense)?;
                let half = blocks::out_channels(&a);
                let dw = conv_bn(w, &b, 3, half, stride, Kind::Depthwise)?;
                let pw = conv_bn(w, &b, 5, half, 1, Kind::Dense)?;
                // Both halves have torchvision's `branch_features` channels, which the
                // shuffle relies on.
                let other = match &branch1 {
                    Some([_, pw1]) => blocks::out_channels(pw1),
                    None => c_in2,
                };
                if blocks::out_channels(&pw) != other {
                    let name = format!("{b}.5.weight");
                    return Err(blocks::shape_error(w, &name, &[other, half, 1, 1], pw.weight().dims()));
                }
                let c_out = 2 * other;
                layers.push(Unit {
                    branch1,
                    branch2: [a, dw, pw],
                });
                c = c_out;
            }
        }
        let head = conv_bn(w, "conv5", 0, c, 1, Kind::Dense)?;
        let fc = checked_linear(w, "fc", blocks::out_channels(&head))?;
        Ok(Self {
            stem,
            units: layers,
            head,
            fc,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.fc).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.stem, Activation::Relu)?;
        let mut x = g.max_pool(&x, blocks::STEM_MAX_POOL)?;
        for u in &self.units {
            let c = g.dims(&x)[1];
            let (left, right) = match &u.branch1 {
                Some([dw, pw]) => {
                    let y = g.conv(&x, dw, Activation::Identity)?;
                    (g.conv(&y, pw, Activation::Relu)?, x.clone())
                }
                None => {
                    let half = c / 2;
                    let x1 = g.select(&x, 1, &(0..half).collect::<Vec<_>>())?;
                    let x2 = g.select(&x, 1, &(half..c).collect::<Vec<_>>())?;
                    (x1, x2)
                }
            };
            let [a, dw, pw] = &u.branch2;
            let y = g.conv(&right, a, Activation::Relu)?;
            let y = g.conv(&y, dw, Activation::Identity)?;
            let y = g.conv(&y, pw, Activation::Relu)?;
            let cat = g.cat_channels(&left, &y)?;
            x = channel_shuffle(g, &cat)?;
        }
        let x = g.conv(&x, &self.head, Activation::Relu)?;
        let x = g.reduce(&x, &[2, 3], Reduction::Mean)?;
        let x = blocks::flatten(g, &x)?;
        g.linear(&x, &self.fc)
    }
}

/// torchvision's `channel_shuffle(x, 2)`: the channels viewed as [2, C/2], transposed and
/// flattened, so output channel k is input channel (k mod 2)·C/2 + ⌊k/2⌋ (one gather).
fn channel_shuffle<G: Graph>(g: &mut G, x: &G::Value) -> Result<G::Value> {
    let c = g.dims(x)[1];
    let half = c / 2;
    let order: Vec<usize> = (0..c).map(|k| (k % 2) * half + k / 2).collect();
    g.select(x, 1, &order)
}
