//! torchvision's EfficientNet B0–B7 (Tan & Le 2019) and EfficientNetV2 S/M/L (Tan & Le
//! 2021): a 3×3 stem, stages of MBConv blocks (1×1 expansion unless the ratio is 1, k×k
//! depthwise, squeeze-excite with a SiLU and a sigmoid gate, linear 1×1 projection) and, in
//! V2, FusedMBConv blocks (a k×k expansion and a 1×1 projection, or one k×k convolution
//! when the ratio is 1), a 1×1 head convolution, global average pooling and one linear
//! layer; SiLU throughout. Widths, kernel sizes and depths come from the tensors; strides
//! from torchvision's table by stage. Stochastic depth is the identity at inference.
//! BatchNorm is folded: eps 1e-5 for B0–B4 and custom B-style models, 1e-3 for B5–B7 and
//! V2 (torchvision's builders). This is not the `efficientnet_pytorch` layout
//! (`_conv_stem`, …) of EfficientNet-Lite0, which has its own loader.

use candle_core::Result;

use super::blocks::{self, Act, SqueezeExcite, BN_EPS};
use super::mobilenet_v2::{checked_conv_bn, checked_linear, too_deep, Kind};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Conv, Linear};

const FAMILY: &str = "EfficientNet";

/// The first block's stride in stage `features.s` (s from 1): [1, 2, 2, 2, 1, 2, 1] in
/// every torchvision EfficientNet, B and V2 (V2-S has the first six stages). Later blocks
/// of a stage have stride 1.
const STAGE_STRIDES: [usize; 7] = [1, 2, 2, 2, 1, 2, 1];

/// A torchvision builder's layout.
struct Variant {
    name: &'static str,
    /// FusedMBConv blocks (V2).
    fused: bool,
    stem: usize,
    /// Blocks per stage.
    depths: &'static [usize],
    /// Output channels per stage.
    widths: &'static [usize],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "efficientnet_b0",
        fused: false,
        stem: 32,
        depths: &[1, 2, 2, 3, 3, 4, 1],
        widths: &[16, 24, 40, 80, 112, 192, 320],
    },
    Variant {
        name: "efficientnet_b1",
        fused: false,
        stem: 32,
        depths: &[2, 3, 3, 4, 4, 5, 2],
        widths: &[16, 24, 40, 80, 112, 192, 320],
    },
    Variant {
        name: "efficientnet_b2",
        fused: false,
        stem: 32,
        depths: &[2, 3, 3, 4, 4, 5, 2],
        widths: &[16, 24, 48, 88, 120, 208, 352],
    },
    Variant {
        name: "efficientnet_b3",
        fused: false,
        stem: 40,
        depths: &[2, 3, 3, 5, 5, 6, 2],
        widths: &[24, 32, 48, 96, 136, 232, 384],
    },
    Variant {
        name: "efficientnet_b4",
        fused: false,
        stem: 48,
        depths: &[2, 4, 4, 6, 6, 8, 2],
        widths: &[24, 32, 56, 112, 160, 272, 448],
    },
    Variant {
        name: "efficientnet_b5",
        fused: false,
        stem: 48,
        depths: &[3, 5, 5, 7, 7, 9, 3],
        widths: &[24, 40, 64, 128, 176, 304, 512],
    },
    Variant {
        name: "efficientnet_b6",
        fused: false,
        stem: 56,
        depths: &[3, 6, 6, 8, 8, 11, 3],
        widths: &[32, 40, 72, 144, 200, 344, 576],
    },
    Variant {
        name: "efficientnet_b7",
        fused: false,
        stem: 64,
        depths: &[4, 7, 7, 10, 10, 13, 4],
        widths: &[32, 48, 80, 160, 224, 384, 640],
    },
    Variant {
        name: "efficientnet_v2_s",
        fused: true,
        stem: 24,
        depths: &[2, 4, 4, 6, 9, 15],
        widths: &[24, 48, 64, 128, 160, 256],
    },
    Variant {
        name: "efficientnet_v2_m",
        fused: true,
        stem: 24,
        depths: &[3, 5, 5, 7, 14, 18, 5],
        widths: &[24, 48, 80, 160, 176, 304, 512],
    },
    Variant {
        name: "efficientnet_v2_l",
        fused: true,
        stem: 32,
        depths: &[4, 7, 7, 10, 19, 25, 7],
        widths: &[32, 64, 96, 192, 224, 384, 640],
    },
];

/// The builders whose BatchNorm eps is 1e-3 rather than PyTorch's default.
const EPS_1E3: &[&str] = &["efficientnet_b5", "efficientnet_b6", "efficientnet_b7"];

/// Blocks per stage, `features.1` .. `features.S`, from the names.
fn depths(w: &WeightStore) -> Vec<usize> {
    let mut depths = Vec::new();
    loop {
        let s = depths.len() + 1;
        let mut n = 0;
        while w.contains(&format!("features.{s}.{n}.block.0.0.weight")) {
            n += 1;
        }
        if n == 0 {
            return depths;
        }
        depths.push(n);
    }
}

/// The layout of block `prefix` (`features.s.b.block`), from the names it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// MBConv (it alone has a squeeze-excite), with or without its expansion.
    MbConv { expand: bool },
    /// FusedMBConv: a k×k expansion and a 1×1 projection.
    FusedExpand,
    /// FusedMBConv with ratio 1: one k×k convolution.
    FusedSingle,
}

fn layout(w: &WeightStore, prefix: &str) -> Layout {
    let mut convs = 0;
    let mut se = false;
    for j in 0.. {
        if w.contains(&format!("{prefix}.{j}.0.weight")) {
            convs += 1;
        } else if w.contains(&format!("{prefix}.{j}.fc1.weight")) {
            se = true;
        } else {
            break;
        }
    }
    match (se, convs) {
        (true, c) => Layout::MbConv { expand: c >= 3 },
        (false, 1) => Layout::FusedSingle,
        (false, _) => Layout::FusedExpand,
    }
}

/// Whether any block is a FusedMBConv: an EfficientNetV2.
fn has_fused(w: &WeightStore, depths: &[usize]) -> bool {
    depths.iter().enumerate().any(|(s, &n)| {
        (0..n).any(|b| {
            !matches!(
                layout(w, &format!("features.{}.{b}.block", s + 1)),
                Layout::MbConv { .. }
            )
        })
    })
}

/// The torchvision builder the stem width, depths and stage widths match, if any.
fn variant(w: &WeightStore) -> &'static str {
    let depths = depths(w);
    let fused = has_fused(w, &depths);
    let stem = w.shape("features.0.0.weight").and_then(|s| s.first().copied());
    // A stage's width is its last block's projection's output channels.
    let widths: Vec<Option<usize>> = depths
        .iter()
        .enumerate()
        .map(|(s, &n)| {
            let p = format!("features.{}.{}.block", s + 1, n - 1);
            let last = match layout(w, &p) {
                Layout::MbConv { expand } => 2 + usize::from(expand),
                Layout::FusedExpand => 1,
                Layout::FusedSingle => 0,
            };
            w.shape(&format!("{p}.{last}.0.weight"))
                .and_then(|s| s.first().copied())
        })
        .collect();
    VARIANTS
        .iter()
        .find(|v| {
            v.fused == fused
                && stem == Some(v.stem)
                && depths == v.depths
                && widths.iter().copied().eq(v.widths.iter().map(|&x| Some(x)))
        })
        .map_or(CUSTOM, |v| v.name)
}

/// EfficientNet's names: stages of blocks `features.s.b.block.j` and the head
/// `classifier.1`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("features.0.0.weight")
        && w.contains("features.1.0.block.0.0.weight")
        && w.contains("classifier.1.weight"))
    {
        return None;
    }
    Some(Ok(variant(w)))
}

struct Block {
    /// The convolutions in order, each with its activation (SiLU, or none for the
    /// projection), and where the squeeze-excite goes (after convolution `se.0`).
    convs: Vec<(Conv, Act)>,
    se: Option<(usize, SqueezeExcite)>,
    residual: bool,
}

pub struct EfficientNet {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    classifier: Linear,
}

impl EfficientNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let depths = depths(w);
        if depths.len() > STAGE_STRIDES.len() {
            return Err(too_deep(w, FAMILY, "stages", STAGE_STRIDES.len()));
        }
        let eps = if has_fused(w, &depths) || EPS_1E3.contains(&variant(w)) {
            1e-3
        } else {
            BN_EPS
        };
        let conv_bn = |w: &mut WeightStore, p: &str, c_in: usize, stride: usize, kind: Kind| {
            checked_conv_bn(w, &format!("{p}.0"), &format!("{p}.1"), c_in, stride, kind, eps, FAMILY)
        };
        let stem = conv_bn(w, "features.0", 3, 2, Kind::Dense)?;
        let mut c = blocks::out_channels(&stem);
        let mut layers = Vec::new();
        for (s, (&n, &stage_stride)) in depths.iter().zip(&STAGE_STRIDES).enumerate() {
            for b in 0..n {
                let stride = if b == 0 { stage_stride } else { 1 };
                let p = format!("features.{}.{b}.block", s + 1);
                let mut convs = Vec::with_capacity(3);
                let mut se = None;
                match layout(w, &p) {
                    Layout::MbConv { expand } => {
                        let mut hidden = c;
                        if expand {
                            let e = conv_bn(w, &format!("{p}.0"), c, 1, Kind::Dense)?;
                            hidden = blocks::out_channels(&e);
                            convs.push((e, Act::Silu));
                        }
                        let j = usize::from(expand);
                        let d = conv_bn(w, &format!("{p}.{j}"), hidden, stride, Kind::Depthwise)?;
                        convs.push((d, Act::Silu));
                        let excite =
                            SqueezeExcite::load(w, &format!("{p}.{}", j + 1), hidden, Act::Silu, Act::Sigmoid)?;
                        se = Some((convs.len(), excite));
                        let pr = conv_bn(w, &format!("{p}.{}", j + 2), hidden, 1, Kind::Dense)?;
                        convs.push((pr, Act::Identity));
                    }
                    Layout::FusedExpand => {
                        let e = conv_bn(w, &format!("{p}.0"), c, stride, Kind::Dense)?;
                        let hidden = blocks::out_channels(&e);
                        convs.push((e, Act::Silu));
                        let pr = conv_bn(w, &format!("{p}.1"), hidden, 1, Kind::Dense)?;
                        convs.push((pr, Act::Identity));
                    }
                    Layout::FusedSingle => {
                        let f = conv_bn(w, &format!("{p}.0"), c, stride, Kind::Dense)?;
                        convs.push((f, Act::Silu));
                    }
                }
                let c_out = convs.last().map_or(c, |(conv, _)| blocks::out_channels(conv));
                layers.push(Block {
                    convs,
                    se,
                    residual: stride == 1 && c_out == c,
                });
                c = c_out;
            }
        }
        let head = conv_bn(w, &format!("features.{}", depths.len() + 1), c, 1, Kind::Dense)?;
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
        let mut x = blocks::conv_act(g, x, &self.stem, Act::Silu)?;
        for b in &self.blocks {
            let mut y = x.clone();
            for (i, (c, a)) in b.convs.iter().enumerate() {
                if let Some((at, se)) = &b.se {
                    if *at == i {
                        y = se.apply(g, &y)?;
                    }
                }
                y = blocks::conv_act(g, &y, c, *a)?;
            }
            x = if b.residual { g.add(&x, &y)? } else { y };
        }
        let x = blocks::conv_act(g, &x, &self.head, Act::Silu)?;
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.classifier)
    }
}
