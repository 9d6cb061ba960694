//! torchvision's MobileNetV3 Large and Small (Howard et al. 2019): a 3×3 stem (Hardswish),
//! inverted residual blocks (1×1 expansion when the width changes, k×k depthwise,
//! squeeze-excite with a ReLU and a Hardsigmoid gate where present, linear 1×1
//! projection), a 1×1 head convolution (Hardswish), global average pooling and a two-layer
//! classifier with a Hardswish between. Widths, kernel sizes, squeeze widths and where the
//! squeeze-excites are come from the tensors; each block's activation and stride come from
//! torchvision's tables, since no shape tells them. BatchNorm (eps 1e-3) is folded.

use candle_core::Result;

use super::blocks::{self, Act, SqueezeExcite};
use super::mobilenet_v2::{checked_conv_bn, checked_linear, too_deep, Kind};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Conv, Linear};

const FAMILY: &str = "MobileNet V3";

/// MobileNetV3's BatchNorm eps (torchvision's `norm_layer` for both sizes).
const EPS: f64 = 1e-3;

/// Per block (`features.1` on): Hardswish (else ReLU) and the depthwise stride, from
/// torchvision's `_mobilenet_v3_conf("mobilenet_v3_large")`.
const LARGE: [(bool, usize); 15] = [
    (false, 1),
    (false, 2),
    (false, 1),
    (false, 2),
    (false, 1),
    (false, 1),
    (true, 2),
    (true, 1),
    (true, 1),
    (true, 1),
    (true, 1),
    (true, 1),
    (true, 2),
    (true, 1),
    (true, 1),
];

/// As [`LARGE`], for `mobilenet_v3_small`.
const SMALL: [(bool, usize); 11] = [
    (false, 2),
    (false, 2),
    (false, 1),
    (true, 2),
    (true, 1),
    (true, 1),
    (true, 1),
    (true, 1),
    (true, 2),
    (true, 1),
    (true, 1),
];

/// Output widths of the full-size models' blocks, their head convolution and the hidden
/// layer of their classifier (width 1.0, not the `reduced_tail` segmentation backbone).
const LARGE_WIDTHS: [usize; 15] = [16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160];
const SMALL_WIDTHS: [usize; 11] = [16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96];

fn block_count(w: &WeightStore) -> usize {
    let mut n = 0;
    while w.contains(&format!("features.{}.block.0.0.weight", n + 1)) {
        n += 1;
    }
    n
}

/// The small model's first block has a squeeze-excite (`block.1.fc1`) and no expansion;
/// the large model's has neither.
fn is_small(w: &WeightStore) -> bool {
    w.contains("features.1.block.1.fc1.weight")
}

/// The parts of block `features.i`: whether it expands, and whether it has a
/// squeeze-excite, read from the names `block.0`, `block.1`, … it holds.
fn block_parts(w: &WeightStore, i: usize) -> (bool, bool) {
    let p = format!("features.{i}.block");
    let mut convs = 0;
    let mut se = false;
    for j in 0.. {
        if w.contains(&format!("{p}.{j}.0.weight")) {
            convs += 1;
        } else if w.contains(&format!("{p}.{j}.fc1.weight")) {
            se = true;
        } else {
            break;
        }
    }
    (convs >= 3, se)
}

/// MobileNetV3's names: blocks `features.i.block.j` and the two-layer `classifier.0` /
/// `classifier.3` head.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("features.0.0.weight")
        && w.contains("features.1.block.0.0.weight")
        && w.contains("classifier.0.weight")
        && w.contains("classifier.3.weight"))
    {
        return None;
    }
    let n = block_count(w);
    let widths: Vec<usize> = (1..=n)
        .filter_map(|i| {
            let (expand, se) = block_parts(w, i);
            let proj = 1 + usize::from(expand) + usize::from(se);
            w.shape(&format!("features.{i}.block.{proj}.0.weight"))
                .and_then(|s| s.first().copied())
        })
        .collect();
    let width = |name: &str| w.shape(name).and_then(|s| s.first().copied());
    let stem = width("features.0.0.weight");
    let head = width(&format!("features.{}.0.weight", n + 1));
    let hidden = width("classifier.0.weight");
    let variant = if is_small(w) {
        (widths == SMALL_WIDTHS && stem == Some(16) && head == Some(576) && hidden == Some(1024))
            .then_some("mobilenet_v3_small")
    } else {
        (widths == LARGE_WIDTHS && stem == Some(16) && head == Some(960) && hidden == Some(1280))
            .then_some("mobilenet_v3_large")
    };
    Some(Ok(variant.unwrap_or(CUSTOM)))
}

struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    se: Option<SqueezeExcite>,
    project: Conv,
    act: Act,
    residual: bool,
}

pub struct MobileNetV3 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    hidden: Linear,
    classifier: Linear,
}

impl MobileNetV3 {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let table: &[(bool, usize)] = if is_small(w) { &SMALL } else { &LARGE };
        let n = block_count(w);
        if n > table.len() {
            return Err(too_deep(w, FAMILY, "inverted residual blocks", table.len()));
        }
        let stem = checked_conv_bn(w, "features.0.0", "features.0.1", 3, 2, Kind::Dense, EPS, FAMILY)?;
        let mut c = blocks::out_channels(&stem);
        let mut layers = Vec::with_capacity(n);
        for (i, &(hs, stride)) in (1..=n).zip(table) {
            let act = if hs { Act::HardSwish } else { Act::Relu };
            let p = format!("features.{i}.block");
            let (has_expand, has_se) = block_parts(w, i);
            let mut j = 0;
            let mut next = || {
                j += 1;
                j - 1
            };
            let expand = if has_expand {
                let k = next();
                Some(checked_conv_bn(
                    w,
                    &format!("{p}.{k}.0"),
                    &format!("{p}.{k}.1"),
                    c,
                    1,
                    Kind::Dense,
                    EPS,
                    FAMILY,
                )?)
            } else {
                None
            };
            let hidden = expand.as_ref().map_or(c, blocks::out_channels);
            let k = next();
            let depthwise = checked_conv_bn(
                w,
                &format!("{p}.{k}.0"),
                &format!("{p}.{k}.1"),
                hidden,
                stride,
                Kind::Depthwise,
                EPS,
                FAMILY,
            )?;
            let se = if has_se {
                let k = next();
                Some(SqueezeExcite::load(
                    w,
                    &format!("{p}.{k}"),
                    hidden,
                    Act::Relu,
                    Act::HardSigmoid,
                )?)
            } else {
                None
            };
            let k = next();
            let project = checked_conv_bn(
                w,
                &format!("{p}.{k}.0"),
                &format!("{p}.{k}.1"),
                hidden,
                1,
                Kind::Dense,
                EPS,
                FAMILY,
            )?;
            let c_out = blocks::out_channels(&project);
            layers.push(Block {
                expand,
                depthwise,
                se,
                project,
                act,
                residual: stride == 1 && c_out == c,
            });
            c = c_out;
        }
        let h = format!("features.{}", n + 1);
        let head = checked_conv_bn(w, &format!("{h}.0"), &format!("{h}.1"), c, 1, Kind::Dense, EPS, FAMILY)?;
        let hidden = checked_linear(w, "classifier.0", blocks::out_channels(&head))?;
        let classifier = checked_linear(w, "classifier.3", blocks::linear_dims(&hidden).0)?;
        Ok(Self {
            stem,
            blocks: layers,
            head,
            hidden,
            classifier,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.classifier).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut x = blocks::conv_act(g, x, &self.stem, Act::HardSwish)?;
        for b in &self.blocks {
            let mut y = x.clone();
            if let Some(e) = &b.expand {
                y = blocks::conv_act(g, &y, e, b.act)?;
            }
            y = blocks::conv_act(g, &y, &b.depthwise, b.act)?;
            if let Some(se) = &b.se {
                y = se.apply(g, &y)?;
            }
            y = blocks::conv_act(g, &y, &b.project, Act::Identity)?;
            x = if b.residual { g.add(&x, &y)? } else { y };
        }
        let x = blocks::conv_act(g, &x, &self.head, Act::HardSwish)?;
        let x = g.global_avg_pool(&x)?;
        let x = g.linear(&x, &self.hidden)?;
        let x = blocks::act(g, &x, Act::HardSwish)?;
        g.linear(&x, &self.classifier)
    }
}
