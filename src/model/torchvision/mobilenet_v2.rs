//! torchvision's MobileNetV2 (Sandler et al. 2018): a 3×3 stem, inverted residual blocks
//! (1×1 expansion unless the ratio is 1, 3×3 depthwise, linear 1×1 projection; ReLU6), a
//! 1×1 head convolution, global average pooling and one linear layer. Widths and kernel
//! sizes come from the shapes; BatchNorm (eps 1e-5) is folded into the convolutions.

use candle_core::Result;

use super::blocks::{self, BN_EPS};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear};

const FAMILY: &str = "MobileNet V2";

/// The depthwise convolution's stride of block `features.i` (i from 1), by block index
/// from torchvision's default setting: stages of [1, 2, 3, 4, 3, 3, 1] blocks with strides
/// [1, 2, 2, 2, 1, 2, 1], i.e. stride 2 at blocks 2, 4, 7 and 14. A stride is not in any
/// shape, and neither are the stage boundaries (a stage may keep its channel count, as the
/// reduced test model's second stage does), so this table is the rule: it is right for
/// every width multiplier and for a model that keeps the first blocks of torchvision's
/// layout, and wrong for a custom `inverted_residual_setting` with other depths or strides.
const STRIDES: [usize; 17] = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];

/// Output channels of torchvision's `mobilenet_v2` (width 1.0) blocks.
const WIDTHS: [usize; 17] = [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320];

/// Number of inverted residual blocks: `features.1` .. `features.n` (the head convolution
/// `features.{n+1}` has no `conv`).
fn block_count(w: &WeightStore) -> usize {
    let mut n = 0;
    while w.contains(&format!("features.{}.conv.0.0.weight", n + 1)) {
        n += 1;
    }
    n
}

/// MobileNetV2's names: the stem `features.0.0`, a first block `features.1.conv.0.0` and
/// the head `classifier.1`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("features.0.0.weight")
        && w.contains("features.1.conv.0.0.weight")
        && w.contains("classifier.1.weight"))
    {
        return None;
    }
    let n = block_count(w);
    let widths: Vec<usize> = (1..=n)
        .filter_map(|i| {
            let proj = if w.contains(&format!("features.{i}.conv.3.weight")) {
                2
            } else {
                1
            };
            w.shape(&format!("features.{i}.conv.{proj}.weight"))
                .and_then(|s| s.first().copied())
        })
        .collect();
    let stem = w.shape("features.0.0.weight").and_then(|s| s.first().copied());
    let head = w
        .shape(&format!("features.{}.0.weight", n + 1))
        .and_then(|s| s.first().copied());
    Some(Ok(if widths == WIDTHS && stem == Some(32) && head == Some(1280) {
        "mobilenet_v2"
    } else {
        CUSTOM
    }))
}

/// How a convolution's input channels must relate to its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Every output reads every input channel (groups 1).
    Dense,
    /// One filter per channel (groups = channels = output channels).
    Depthwise,
}

/// [`blocks::conv_bn`] after checking that the weight is a `kind` convolution of `c_in`
/// channels, so that a file whose widths do not chain is an error naming the tensor rather
/// than a grouped convolution nobody asked for.
#[allow(clippy::too_many_arguments)]
pub(super) fn checked_conv_bn(
    w: &mut WeightStore,
    prefix: &str,
    bn: &str,
    c_in: usize,
    stride: usize,
    kind: Kind,
    eps: f64,
    family: &str,
) -> std::result::Result<Conv, ModelError> {
    let name = format!("{prefix}.weight");
    let dims = blocks::shape(w, &name, family)?;
    let ok = match (kind, &dims[..]) {
        (Kind::Dense, [_, i, _, _]) => *i == c_in,
        (Kind::Depthwise, [o, 1, _, _]) => *o == c_in,
        _ => false,
    };
    if !ok {
        // The kernel as found (any size is allowed); 1×1 where the weight is not 4-D.
        let (kh, kw) = match dims[..] {
            [_, _, kh, kw] => (kh, kw),
            _ => (1, 1),
        };
        let expected = match kind {
            Kind::Dense => [dims.first().copied().unwrap_or(0), c_in, kh, kw],
            Kind::Depthwise => [c_in, 1, kh, kw],
        };
        return Err(blocks::shape_error(w, &name, &expected, &dims));
    }
    blocks::conv_bn(w, prefix, bn, c_in, stride, None, eps)
}

/// A linear layer reading `c_in` features.
pub(super) fn checked_linear(
    w: &mut WeightStore,
    prefix: &str,
    c_in: usize,
) -> std::result::Result<Linear, ModelError> {
    let l = blocks::linear(w, prefix)?;
    let (out, n_in) = blocks::linear_dims(&l);
    if n_in != c_in {
        let name = format!("{prefix}.weight");
        return Err(blocks::shape_error(w, &name, &[out, c_in], &[out, n_in]));
    }
    Ok(l)
}

/// An error for a model deeper than the table that gives its strides.
pub(super) fn too_deep(w: &WeightStore, family: &str, what: &str, max: usize) -> ModelError {
    ModelError::UnknownArchitecture {
        path: w.path().to_path_buf(),
        hint: format!("{family} with more than {max} {what}: torchvision's layout gives no strides beyond that"),
    }
}

struct Block {
    /// Expansion (ReLU6), depthwise (ReLU6) and projection (linear) convolutions.
    convs: Vec<Conv>,
    residual: bool,
}

pub struct MobileNetV2 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    classifier: Linear,
}

impl MobileNetV2 {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let n = block_count(w);
        if n > STRIDES.len() {
            return Err(too_deep(w, FAMILY, "inverted residual blocks", STRIDES.len()));
        }
        let stem = checked_conv_bn(w, "features.0.0", "features.0.1", 3, 2, Kind::Dense, BN_EPS, FAMILY)?;
        let mut c = blocks::out_channels(&stem);
        let mut layers = Vec::with_capacity(n);
        for (i, &stride) in (1..=n).zip(STRIDES.iter()) {
            let p = format!("features.{i}.conv");
            // With an expansion: conv.0 (1×1), conv.1 (depthwise), conv.2 + conv.3 (project,
            // BN); without: conv.0 (depthwise), conv.1 + conv.2.
            let expand = w.contains(&format!("{p}.3.weight"));
            let mut convs = Vec::with_capacity(3);
            let mut hidden = c;
            if expand {
                let e = checked_conv_bn(
                    w,
                    &format!("{p}.0.0"),
                    &format!("{p}.0.1"),
                    c,
                    1,
                    Kind::Dense,
                    BN_EPS,
                    FAMILY,
                )?;
                hidden = blocks::out_channels(&e);
                convs.push(e);
            }
            let (dw, proj, bn) = if expand { (1, 2, 3) } else { (0, 1, 2) };
            let d = checked_conv_bn(
                w,
                &format!("{p}.{dw}.0"),
                &format!("{p}.{dw}.1"),
                hidden,
                stride,
                Kind::Depthwise,
                BN_EPS,
                FAMILY,
            )?;
            convs.push(d);
            let pr = checked_conv_bn(
                w,
                &format!("{p}.{proj}"),
                &format!("{p}.{bn}"),
                hidden,
                1,
                Kind::Dense,
                BN_EPS,
                FAMILY,
            )?;
            let c_out = blocks::out_channels(&pr);
            convs.push(pr);
            layers.push(Block {
                convs,
                residual: stride == 1 && c_out == c,
            });
            c = c_out;
        }
        let h = format!("features.{}", n + 1);
        let head = checked_conv_bn(
            w,
            &format!("{h}.0"),
            &format!("{h}.1"),
            c,
            1,
            Kind::Dense,
            BN_EPS,
            FAMILY,
        )?;
        let classifier = checked_linear(w, "classifier.1", blocks::out_channels(&head))?;
        Ok(Self {
            stem,
            blocks: layers,
            head,
            classifier,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.classifier).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut x = g.conv(x, &self.stem, Activation::Relu6)?;
        for b in &self.blocks {
            let mut y = x.clone();
            let last = b.convs.len() - 1;
            for (i, c) in b.convs.iter().enumerate() {
                let act = if i == last {
                    Activation::Identity
                } else {
                    Activation::Relu6
                };
                y = g.conv(&y, c, act)?;
            }
            x = if b.residual { g.add(&x, &y)? } else { y };
        }
        let x = g.conv(&x, &self.head, Activation::Relu6)?;
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.classifier)
    }
}
