//! torchvision's GoogLeNet (Inception v1, Szegedy et al. 2015). Every convolution is a
//! `BasicConv2d` (convolution, BatchNorm eps 0.001 folded in, ReLU). Inception blocks have
//! four branches: 1×1; 1×1 → 3×3; 1×1 → 3×3 (torchvision's port has 3×3 where the paper
//! has 5×5; the kernel is read from the shape either way); 3×3 max pool → 1×1. The input is
//! first turned from ImageNet normalisation into the ±1 range the published weights were
//! trained on (`transform_input`, which torchvision sets whenever it loads them). The
//! auxiliary heads only train the network: their tensors are taken and left unused.

use candle_core::Result;

use super::blocks::{self, transform_input, transform_input_constants};
use super::vgg::plain_conv;
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Constant, Conv, Linear, MaxPool2d, Padding};

const FAMILY: &str = "GoogLeNet";

/// The BatchNorm eps of `BasicConv2d` (GoogLeNet and Inception-v3).
pub(super) const BASIC_CONV_EPS: f64 = 1e-3;

/// `BasicConv2d` at `prefix` (`prefix.conv`, `prefix.bn`) reading `c_in` channels; `padding`
/// `None` is (k − 1)/2 per axis. Apply with ReLU.
pub(super) fn basic_conv(
    w: &mut WeightStore,
    prefix: &str,
    c_in: usize,
    stride: usize,
    padding: Option<Padding>,
    family: &str,
) -> std::result::Result<Conv, ModelError> {
    let c = plain_conv(w, family, &format!("{prefix}.conv"), c_in, stride, padding)?;
    w.fold_bn(c, &format!("{prefix}.bn"), BASIC_CONV_EPS)
}

/// Takes every tensor under `prefix` (auxiliary training heads) so that they are not
/// reported as unexpected.
pub(super) fn consume(w: &mut WeightStore, prefix: &str) -> std::result::Result<(), ModelError> {
    let names: Vec<String> = w
        .names()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    for name in names {
        w.get(&name, None)?;
    }
    Ok(())
}

/// The nine Inception blocks in order, with torchvision's widths: 1×1, 3×3 reduce, 3×3,
/// "5×5" reduce, "5×5", pool projection.
const INCEPTIONS: [(&str, [usize; 6]); 9] = [
    ("inception3a", [64, 96, 128, 16, 32, 32]),
    ("inception3b", [128, 128, 192, 32, 96, 64]),
    ("inception4a", [192, 96, 208, 16, 48, 64]),
    ("inception4b", [160, 112, 224, 24, 64, 64]),
    ("inception4c", [128, 128, 256, 24, 64, 64]),
    ("inception4d", [112, 144, 288, 32, 64, 64]),
    ("inception4e", [256, 160, 320, 32, 128, 128]),
    ("inception5a", [256, 160, 320, 32, 128, 128]),
    ("inception5b", [384, 192, 384, 48, 128, 128]),
];

/// The convolutions of an Inception block, in the order of [`INCEPTIONS`]' widths.
const BRANCH_CONVS: [&str; 6] = [
    "branch1",
    "branch2.0",
    "branch2.1",
    "branch3.0",
    "branch3.1",
    "branch4.1",
];

/// GoogLeNet: `conv1.conv` and `inception3a`.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !w.contains("conv1.conv.weight") || !w.contains("inception3a.branch1.conv.weight") {
        return None;
    }
    let width = |name: &str| w.shape(&format!("{name}.conv.weight")).and_then(|s| s.first().copied());
    let stem = ["conv1", "conv2", "conv3"].map(width) == [Some(64), Some(64), Some(192)];
    let inceptions = INCEPTIONS.iter().all(|(block, widths)| {
        BRANCH_CONVS
            .iter()
            .zip(widths)
            .all(|(branch, &c)| width(&format!("{block}.{branch}")) == Some(c))
    });
    Some(Ok(if stem && inceptions { "googlenet" } else { CUSTOM }))
}

struct Inception {
    branch1: Conv,
    branch2: [Conv; 2],
    branch3: [Conv; 2],
    branch4: Conv,
}

impl Inception {
    fn load(w: &mut WeightStore, prefix: &str, c: usize) -> std::result::Result<Self, ModelError> {
        let pair = |w: &mut WeightStore, branch: &str| -> std::result::Result<[Conv; 2], ModelError> {
            let a = basic_conv(w, &format!("{prefix}.{branch}.0"), c, 1, None, FAMILY)?;
            let b = basic_conv(
                w,
                &format!("{prefix}.{branch}.1"),
                blocks::out_channels(&a),
                1,
                None,
                FAMILY,
            )?;
            Ok([a, b])
        };
        Ok(Self {
            branch1: basic_conv(w, &format!("{prefix}.branch1"), c, 1, None, FAMILY)?,
            branch2: pair(w, "branch2")?,
            branch3: pair(w, "branch3")?,
            branch4: basic_conv(w, &format!("{prefix}.branch4.1"), c, 1, None, FAMILY)?,
        })
    }

    fn out_channels(&self) -> usize {
        [&self.branch1, &self.branch2[1], &self.branch3[1], &self.branch4]
            .into_iter()
            .map(blocks::out_channels)
            .sum()
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let relu = Activation::Relu;
        let b1 = g.conv(x, &self.branch1, relu)?;
        let b2 = g.conv(x, &self.branch2[0], relu)?;
        let b2 = g.conv(&b2, &self.branch2[1], relu)?;
        let b3 = g.conv(x, &self.branch3[0], relu)?;
        let b3 = g.conv(&b3, &self.branch3[1], relu)?;
        let pool = MaxPool2d {
            kernel: 3,
            stride: 1,
            pad: 1,
            ceil: true,
        };
        let b4 = g.max_pool(x, pool)?;
        let b4 = g.conv(&b4, &self.branch4, relu)?;
        g.concat(&[b1, b2, b3, b4], 1)
    }
}

pub struct GoogLeNet {
    transform: (Constant, Constant),
    /// conv1, conv2, conv3.
    stem: [Conv; 3],
    inceptions: Vec<Inception>,
    fc: Linear,
}

/// A max pool with ceil mode, as all of GoogLeNet's between stages are.
fn ceil_pool(kernel: usize) -> MaxPool2d {
    MaxPool2d {
        kernel,
        stride: 2,
        pad: 0,
        ceil: true,
    }
}

impl GoogLeNet {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let conv1 = basic_conv(w, "conv1", 3, 2, Some(Padding::Symmetric(3)), FAMILY)?;
        let conv2 = basic_conv(w, "conv2", blocks::out_channels(&conv1), 1, None, FAMILY)?;
        let conv3 = basic_conv(w, "conv3", blocks::out_channels(&conv2), 1, None, FAMILY)?;
        let mut c = blocks::out_channels(&conv3);
        let mut inceptions = Vec::with_capacity(INCEPTIONS.len());
        for (name, _) in INCEPTIONS {
            let block = Inception::load(w, name, c)?;
            c = block.out_channels();
            inceptions.push(block);
        }
        let fc = blocks::linear(w, "fc")?;
        let (out, inp) = blocks::linear_dims(&fc);
        if inp != c {
            return Err(blocks::shape_error(w, "fc.weight", &[out, c], &[out, inp]));
        }
        consume(w, "aux1.")?;
        consume(w, "aux2.")?;
        Ok(Self {
            transform: transform_input_constants(w)?,
            stem: [conv1, conv2, conv3],
            inceptions,
            fc,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.fc).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let relu = Activation::Relu;
        let x = transform_input(g, x, &self.transform.0, &self.transform.1)?;
        let x = g.conv(&x, &self.stem[0], relu)?;
        let x = g.max_pool(&x, ceil_pool(3))?;
        let x = g.conv(&x, &self.stem[1], relu)?;
        let x = g.conv(&x, &self.stem[2], relu)?;
        let mut x = g.max_pool(&x, ceil_pool(3))?;
        for (i, block) in self.inceptions.iter().enumerate() {
            x = block.build(g, &x)?;
            // maxpool3 after inception3b, maxpool4 (2×2) after inception4e.
            match i {
                1 => x = g.max_pool(&x, ceil_pool(3))?,
                6 => x = g.max_pool(&x, ceil_pool(2))?,
                _ => {}
            }
        }
        let x = g.global_avg_pool(&x)?;
        g.linear(&x, &self.fc)
    }
}
