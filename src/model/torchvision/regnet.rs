//! torchvision's RegNetX and RegNetY (Radosavovic et al. 2020): a 3×3 stride-2 stem and
//! four stages of residual bottlenecks (1×1, grouped 3×3, squeeze-excite with a ReLU and a
//! sigmoid gate in RegNetY, 1×1; a 1×1 projection on the shortcut where the shape changes;
//! ReLU after the sum), global average pooling and one linear layer. Widths, groups, depths
//! and the squeeze widths come from the tensors; every stage's first block has stride 2
//! (torchvision's `BlockParams.from_init_params`). BatchNorm (eps 1e-5) is folded.

use candle_core::Result;

use super::blocks::{self, Act, SqueezeExcite, BN_EPS};
use super::mobilenet_v2::{checked_conv_bn, checked_linear, Kind};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear};

const FAMILY: &str = "RegNet";

/// torchvision's builders: (name, squeeze-excite, blocks per stage, stage widths); every
/// one has a 32-channel stem.
const VARIANTS: &[(&str, bool, [usize; 4], [usize; 4])] = &[
    ("regnet_y_400mf", true, [1, 3, 6, 6], [48, 104, 208, 440]),
    ("regnet_y_800mf", true, [1, 3, 8, 2], [64, 144, 320, 784]),
    ("regnet_y_1_6gf", true, [2, 6, 17, 2], [48, 120, 336, 888]),
    ("regnet_y_3_2gf", true, [2, 5, 13, 1], [72, 216, 576, 1512]),
    ("regnet_y_8gf", true, [2, 4, 10, 1], [224, 448, 896, 2016]),
    ("regnet_y_16gf", true, [2, 4, 11, 1], [224, 448, 1232, 3024]),
    ("regnet_y_32gf", true, [2, 5, 12, 1], [232, 696, 1392, 3712]),
    ("regnet_y_128gf", true, [2, 7, 17, 1], [528, 1056, 2904, 7392]),
    ("regnet_x_400mf", false, [1, 2, 7, 12], [32, 64, 160, 400]),
    ("regnet_x_800mf", false, [1, 3, 7, 5], [64, 128, 288, 672]),
    ("regnet_x_1_6gf", false, [2, 4, 10, 2], [72, 168, 408, 912]),
    ("regnet_x_3_2gf", false, [2, 6, 15, 2], [96, 192, 432, 1008]),
    ("regnet_x_8gf", false, [2, 5, 15, 1], [80, 240, 720, 1920]),
    ("regnet_x_16gf", false, [2, 6, 13, 1], [256, 512, 896, 2048]),
    ("regnet_x_32gf", false, [2, 7, 13, 1], [336, 672, 1344, 2520]),
];

fn block_name(stage: usize, block: usize) -> String {
    format!("trunk_output.block{stage}.block{stage}-{block}")
}

/// Blocks per stage (`trunk_output.block1` on), from the names.
fn depths(w: &WeightStore) -> Vec<usize> {
    let mut depths = Vec::new();
    loop {
        let s = depths.len() + 1;
        let mut n = 0;
        while w.contains(&format!("{}.f.a.0.weight", block_name(s, n))) {
            n += 1;
        }
        if n == 0 {
            return depths;
        }
        depths.push(n);
    }
}

/// RegNet's names: `stem.0` and `trunk_output.block1.block1-0`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("stem.0.weight")
        && w.contains("trunk_output.block1.block1-0.f.a.0.weight")
        && w.contains("fc.weight"))
    {
        return None;
    }
    let depths = depths(w);
    let se = w.contains("trunk_output.block1.block1-0.f.se.fc1.weight");
    let stem = w.shape("stem.0.weight").and_then(|s| s.first().copied());
    let widths: Vec<Option<usize>> = (1..=depths.len())
        .map(|s| {
            w.shape(&format!("{}.f.c.0.weight", block_name(s, 0)))
                .and_then(|d| d.first().copied())
        })
        .collect();
    let variant = VARIANTS.iter().find(|(_, v_se, d, wd)| {
        *v_se == se && stem == Some(32) && depths == d && widths.iter().copied().eq(wd.iter().map(|&x| Some(x)))
    });
    Some(Ok(variant.map_or(CUSTOM, |v| v.0)))
}

struct Block {
    proj: Option<Conv>,
    a: Conv,
    b: Conv,
    se: Option<SqueezeExcite>,
    c: Conv,
}

pub struct RegNet {
    stem: Conv,
    blocks: Vec<Block>,
    fc: Linear,
}

impl RegNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let depths = depths(w);
        let stem = checked_conv_bn(w, "stem.0", "stem.1", 3, 2, Kind::Dense, BN_EPS, FAMILY)?;
        let mut c = blocks::out_channels(&stem);
        let mut layers = Vec::new();
        for (s, &n) in depths.iter().enumerate() {
            for i in 0..n {
                let stride = if i == 0 { 2 } else { 1 };
                let p = block_name(s + 1, i);
                let f = |part: &str| format!("{p}.f.{part}");
                let a = checked_conv_bn(w, &f("a.0"), &f("a.1"), c, 1, Kind::Dense, BN_EPS, FAMILY)?;
                let width = blocks::out_channels(&a);
                // The 3×3's groups are the width over its weight's input channels.
                let b = blocks::conv_bn(w, &f("b.0"), &f("b.1"), width, stride, None, BN_EPS)?;
                if blocks::out_channels(&b) != width {
                    let name = f("b.0.weight");
                    let found = b.weight().dims().to_vec();
                    let expected = [width, found.get(1).copied().unwrap_or(0), 3, 3];
                    return Err(blocks::shape_error(w, &name, &expected, &found));
                }
                let se = if w.contains(&f("se.fc1.weight")) {
                    Some(SqueezeExcite::load(w, &f("se"), width, Act::Relu, Act::Sigmoid)?)
                } else {
                    None
                };
                let cc = checked_conv_bn(w, &f("c.0"), &f("c.1"), width, 1, Kind::Dense, BN_EPS, FAMILY)?;
                let c_out = blocks::out_channels(&cc);
                let proj = if w.contains(&format!("{p}.proj.0.weight")) {
                    let conv = checked_conv_bn(
                        w,
                        &format!("{p}.proj.0"),
                        &format!("{p}.proj.1"),
                        c,
                        stride,
                        Kind::Dense,
                        BN_EPS,
                        FAMILY,
                    )?;
                    if blocks::out_channels(&conv) != c_out {
                        let name = format!("{p}.proj.0.weight");
                        return Err(blocks::shape_error(w, &name, &[c_out, c, 1, 1], conv.weight().dims()));
                    }
                    Some(conv)
                } else if stride != 1 || c_out != c {
                    return Err(ModelError::TensorMismatch {
                        path: w.path().to_path_buf(),
                        architecture: FAMILY.into(),
                        missing: vec![format!("{p}.proj.0.weight")],
                        unexpected: Vec::new(),
                    });
                } else {
                    None
                };
                layers.push(Block { proj, a, b, se, c: cc });
                c = c_out;
            }
        }
        let fc = checked_linear(w, "fc", c)?;
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
        let mut x = g.conv(x, &self.stem, Activation::Relu)?;
        for b in &self.blocks {
            let y = g.conv(&x, &b.a, Activation::Relu)?;
            let mut y = g.conv(&y, &b.b, Activation::Relu)?;
            if let Some(se) = &b.se {
                y = se.apply(g, &y)?;
            }
            let y = g.conv(&y, &b.c, Activation::Identity)?;
            let shortcut = match &b.proj {
                Some(p) => g.conv(&x, p, Activation::Identity)?,
                None => x.clone(),
            };
            let sum = g.add(&shortcut, &y)?;
            x = g.activation(&sum, Activation::Relu)?;
        }
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.fc)
    }
}
