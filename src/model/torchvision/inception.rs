//! torchvision's Inception-v3 (Szegedy et al. 2016). Every convolution is a `BasicConv2d`
//! (convolution, BatchNorm eps 0.001 folded in, ReLU); the stride-2 ones and three of the
//! stem's are unpadded, the others keep the size ((0, 3) for 1×7 kernels). The `Mixed_*`
//! blocks are of five kinds, told apart by their branch names: A (5×5 and double 3×3), B
//! (grid reduction with 3×3s), C (factorised 7×7s), D (grid reduction with 7×7s), E
//! (split 1×3 / 3×1 outputs). Their pool branches average 3×3 windows counting the zero
//! padding, as PyTorch's `avg_pool2d` does by default. As GoogLeNet, the input is first
//! turned into the ±1 range of the published weights (`transform_input`), and the
//! auxiliary head's tensors are taken and left unused.

use candle_core::Result;

use super::blocks::{self, transform_input, transform_input_constants};
use super::googlenet::{basic_conv, consume};
use super::vgg::missing;
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::{AvgPool2d, Graph};
use crate::net::layers::{Activation, Constant, Conv, Linear, MaxPool2d, Padding};

const FAMILY: &str = "Inception-v3";

/// The `Mixed_*` blocks in torchvision's order.
const MIXED: [&str; 11] = [
    "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a",
    "Mixed_7b", "Mixed_7c",
];

/// What a branch does before its convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pre {
    None,
    /// 3×3, stride 1, padding 1, counting the padding.
    AvgPool,
    /// 3×3, stride 2 (the grid reductions).
    MaxPool,
}

/// A branch: `pre`, then convolutions (name, stride) in sequence, then optionally two
/// convolutions of the result whose outputs are concatenated (block E).
struct BranchSpec {
    pre: Pre,
    convs: &'static [(&'static str, usize)],
    split: Option<[&'static str; 2]>,
}

const fn chain(convs: &'static [(&'static str, usize)]) -> BranchSpec {
    BranchSpec {
        pre: Pre::None,
        convs,
        split: None,
    }
}

const POOL_PROJECTION: BranchSpec = BranchSpec {
    pre: Pre::AvgPool,
    convs: &[("branch_pool", 1)],
    split: None,
};

const MAX_POOL: BranchSpec = BranchSpec {
    pre: Pre::MaxPool,
    convs: &[],
    split: None,
};

const BLOCK_A: [BranchSpec; 4] = [
    chain(&[("branch1x1", 1)]),
    chain(&[("branch5x5_1", 1), ("branch5x5_2", 1)]),
    chain(&[("branch3x3dbl_1", 1), ("branch3x3dbl_2", 1), ("branch3x3dbl_3", 1)]),
    POOL_PROJECTION,
];

const BLOCK_B: [BranchSpec; 3] = [
    chain(&[("branch3x3", 2)]),
    chain(&[("branch3x3dbl_1", 1), ("branch3x3dbl_2", 1), ("branch3x3dbl_3", 2)]),
    MAX_POOL,
];

const BLOCK_C: [BranchSpec; 4] = [
    chain(&[("branch1x1", 1)]),
    chain(&[("branch7x7_1", 1), ("branch7x7_2", 1), ("branch7x7_3", 1)]),
    chain(&[
        ("branch7x7dbl_1", 1),
        ("branch7x7dbl_2", 1),
        ("branch7x7dbl_3", 1),
        ("branch7x7dbl_4", 1),
        ("branch7x7dbl_5", 1),
    ]),
    POOL_PROJECTION,
];

const BLOCK_D: [BranchSpec; 3] = [
    chain(&[("branch3x3_1", 1), ("branch3x3_2", 2)]),
    chain(&[
        ("branch7x7x3_1", 1),
        ("branch7x7x3_2", 1),
        ("branch7x7x3_3", 1),
        ("branch7x7x3_4", 2),
    ]),
    MAX_POOL,
];

const BLOCK_E: [BranchSpec; 4] = [
    chain(&[("branch1x1", 1)]),
    BranchSpec {
        pre: Pre::None,
        convs: &[("branch3x3_1", 1)],
        split: Some(["branch3x3_2a", "branch3x3_2b"]),
    },
    BranchSpec {
        pre: Pre::None,
        convs: &[("branch3x3dbl_1", 1), ("branch3x3dbl_2", 1)],
        split: Some(["branch3x3dbl_3a", "branch3x3dbl_3b"]),
    },
    POOL_PROJECTION,
];

/// The kind of block `prefix` is, by a branch only that kind has.
fn block_spec(w: &WeightStore, prefix: &str) -> Option<&'static [BranchSpec]> {
    let has = |branch: &str| w.contains(&format!("{prefix}.{branch}.conv.weight"));
    if has("branch5x5_1") {
        Some(&BLOCK_A)
    } else if has("branch3x3") {
        Some(&BLOCK_B)
    } else if has("branch7x7_1") {
        Some(&BLOCK_C)
    } else if has("branch7x7x3_1") {
        Some(&BLOCK_D)
    } else if has("branch3x3_2a") {
        Some(&BLOCK_E)
    } else {
        None
    }
}

/// Inception-v3: `Conv2d_1a_3x3` and `Mixed_5b`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !w.contains("Conv2d_1a_3x3.conv.weight") || !w.contains("Mixed_5b.branch1x1.conv.weight") {
        return None;
    }
    // Widths that differ between the blocks of torchvision's Inception3.
    const WIDTHS: [(&str, usize); 10] = [
        ("Conv2d_1a_3x3", 32),
        ("Conv2d_2b_3x3", 64),
        ("Conv2d_3b_1x1", 80),
        ("Conv2d_4a_3x3", 192),
        ("Mixed_5b.branch_pool", 32),
        ("Mixed_5c.branch_pool", 64),
        ("Mixed_6b.branch7x7_1", 128),
        ("Mixed_6c.branch7x7_1", 160),
        ("Mixed_6e.branch7x7_1", 192),
        ("Mixed_7c.branch3x3dbl_1", 448),
    ];
    let full = WIDTHS
        .iter()
        .all(|&(name, c)| w.shape(&format!("{name}.conv.weight")).and_then(|s| s.first().copied()) == Some(c));
    Some(Ok(if full { "inception_v3" } else { CUSTOM }))
}

struct Branch {
    pre: Pre,
    convs: Vec<Conv>,
    split: Option<[Conv; 2]>,
}

impl Branch {
    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut y = match self.pre {
            Pre::None => x.clone(),
            Pre::AvgPool => g.avg_pool(
                x,
                AvgPool2d {
                    kernel: [3, 3],
                    stride: [1, 1],
                    pads: [1; 4],
                    count_include_pad: true,
                    ceil: false,
                },
            )?,
            Pre::MaxPool => g.max_pool(x, max_pool())?,
        };
        for c in &self.convs {
            y = g.conv(&y, c, Activation::Relu)?;
        }
        match &self.split {
            Some([a, b]) => {
                let ya = g.conv(&y, a, Activation::Relu)?;
                let yb = g.conv(&y, b, Activation::Relu)?;
                g.concat(&[ya, yb], 1)
            }
            None => Ok(y),
        }
    }
}

struct Block {
    branches: Vec<Branch>,
}

impl Block {
    /// Block `prefix` on `c` channels, and its output channels.
    fn load(w: &mut WeightStore, prefix: &str, c: usize) -> std::result::Result<(Self, usize), ModelError> {
        let Some(spec) = block_spec(w, prefix) else {
            return Err(missing(w, FAMILY, &format!("{prefix}.branch1x1.conv.weight")));
        };
        let mut branches = Vec::with_capacity(spec.len());
        let mut c_out = 0;
        for s in spec {
            let mut c_branch = c;
            let mut convs = Vec::with_capacity(s.convs.len());
            for &(name, stride) in s.convs {
                let conv = load_conv(w, &format!("{prefix}.{name}"), c_branch, stride)?;
                c_branch = blocks::out_channels(&conv);
                convs.push(conv);
            }
            let split = match s.split {
                Some([a, b]) => {
                    let a = load_conv(w, &format!("{prefix}.{a}"), c_branch, 1)?;
                    let b = load_conv(w, &format!("{prefix}.{b}"), c_branch, 1)?;
                    c_branch = blocks::out_channels(&a) + blocks::out_channels(&b);
                    Some([a, b])
                }
                None => None,
            };
            c_out += c_branch;
            branches.push(Branch {
                pre: s.pre,
                convs,
                split,
            });
        }
        Ok((Self { branches }, c_out))
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let outs = self
            .branches
            .iter()
            .map(|b| b.build(g, x))
            .collect::<Result<Vec<_>>>()?;
        g.concat(&outs, 1)
    }
}

/// A `BasicConv2d`: stride-2 convolutions are unpadded, the others keep the size.
fn load_conv(w: &mut WeightStore, prefix: &str, c_in: usize, stride: usize) -> std::result::Result<Conv, ModelError> {
    let padding = (stride != 1).then_some(Padding::Symmetric(0));
    basic_conv(w, prefix, c_in, stride, padding, FAMILY)
}

/// The 3×3 stride-2 max pool of the stem and the grid reductions.
fn max_pool() -> MaxPool2d {
    MaxPool2d {
        kernel: 3,
        stride: 2,
        pad: 0,
        ceil: false,
    }
}

/// The stem's convolutions: name, stride, padding, and whether a max pool follows.
const STEM: [(&str, usize, usize, bool); 5] = [
    ("Conv2d_1a_3x3", 2, 0, false),
    ("Conv2d_2a_3x3", 1, 0, false),
    ("Conv2d_2b_3x3", 1, 1, true),
    ("Conv2d_3b_1x1", 1, 0, false),
    ("Conv2d_4a_3x3", 1, 0, true),
];

pub struct InceptionV3 {
    transform: (Constant, Constant),
    /// Each stem convolution and whether a max pool follows it.
    stem: Vec<(Conv, bool)>,
    blocks: Vec<Block>,
    fc: Linear,
}

impl InceptionV3 {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let mut c = 3;
        let mut stem = Vec::with_capacity(STEM.len());
        for (name, stride, pad, pool) in STEM {
            let conv = basic_conv(w, name, c, stride, Some(Padding::Symmetric(pad)), FAMILY)?;
            c = blocks::out_channels(&conv);
            stem.push((conv, pool));
        }
        let mut mixed = Vec::with_capacity(MIXED.len());
        for name in MIXED {
            let (block, c_out) = Block::load(w, name, c)?;
            c = c_out;
            mixed.push(block);
        }
        let fc = blocks::linear(w, "fc")?;
        let (out, inp) = blocks::linear_dims(&fc);
        if inp != c {
            return Err(blocks::shape_error(w, "fc.weight", &[out, c], &[out, inp]));
        }
        consume(w, "AuxLogits.")?;
        Ok(Self {
            transform: transform_input_constants(w)?,
            stem,
            blocks: mixed,
            fc,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.fc).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let mut x = transform_input(g, x, &self.transform.0, &self.transform.1)?;
        for (conv, pool) in &self.stem {
            x = g.conv(&x, conv, Activation::Relu)?;
            if *pool {
                x = g.max_pool(&x, max_pool())?;
            }
        }
        for block in &self.blocks {
            x = block.build(g, &x)?;
        }
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.fc)
    }
}
