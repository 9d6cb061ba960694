//! torchvision's VGG (Simonyan & Zisserman 2015), 11/13/16/19 layers, with and without
//! BatchNorm. `features` is a flat `nn.Sequential`, so the layout is read from the indices
//! that hold tensors: a convolution (3×3, padding 1) takes 2 slots (conv, ReLU) or 3 with
//! BatchNorm, and every further index skipped before the next convolution is a 2×2 max
//! pool. torchvision's configurations all end with a pool, which the indices cannot show,
//! so one is assumed there. The head's 7×7 adaptive pool is sized from `classifier.0`.

use candle_core::Result;

use super::blocks::{self, BN_EPS};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, MaxPool2d, Padding};

const FAMILY: &str = "VGG";

/// torchvision's configurations A, B, D, E (0 = max pool) and their builder names.
const CONFIGS: [(&str, &[usize]); 4] = [
    ("vgg11", &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0]),
    (
        "vgg13",
        &[64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0],
    ),
    (
        "vgg16",
        &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
        ],
    ),
    (
        "vgg19",
        &[
            64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
        ],
    ),
];

/// A tensor the layout needs is absent.
pub(super) fn missing(w: &WeightStore, family: &str, name: &str) -> ModelError {
    ModelError::TensorMismatch {
        path: w.path().to_path_buf(),
        architecture: family.to_string(),
        missing: vec![name.to_string()],
        unexpected: Vec::new(),
    }
}

/// [`blocks::conv`] for families without grouped convolutions: a weight whose input
/// channels differ from `c_in` is a shape error rather than a grouped convolution.
pub(super) fn plain_conv(
    w: &mut WeightStore,
    family: &str,
    prefix: &str,
    c_in: usize,
    stride: usize,
    padding: Option<Padding>,
) -> std::result::Result<Conv, ModelError> {
    let name = format!("{prefix}.weight");
    let dims = blocks::shape(w, &name, family)?;
    if dims.len() != 4 || dims[1] != c_in {
        let at = |i: usize, default: usize| dims.get(i).copied().unwrap_or(default);
        return Err(blocks::shape_error(
            w,
            &name,
            &[at(0, 0), c_in, at(2, 1), at(3, 1)],
            &dims,
        ));
    }
    blocks::conv(w, prefix, c_in, stride, padding)
}

/// VGG's and AlexNet's head: `s`×`s` adaptive average pool, flatten, then Linear layers
/// with ReLU between them (their Dropouts are identities at inference).
pub(super) struct Head {
    pub pool: usize,
    pub fcs: Vec<Linear>,
}

impl Head {
    /// The Linear layers `classifier.{i}` for `indices`, after `c` feature channels; the
    /// pool's side is √(in_features / c) of the first.
    pub fn load(
        w: &mut WeightStore,
        family: &str,
        indices: &[usize],
        c: usize,
    ) -> std::result::Result<Self, ModelError> {
        let mut fcs = Vec::with_capacity(indices.len());
        let mut pool = 0;
        let mut n_in = 0;
        for (k, i) in indices.iter().enumerate() {
            let prefix = format!("classifier.{i}");
            let name = format!("{prefix}.weight");
            if !w.contains(&name) {
                return Err(missing(w, family, &name));
            }
            let fc = blocks::linear(w, &prefix)?;
            let (out, inp) = blocks::linear_dims(&fc);
            if k == 0 {
                pool = (1..=inp).find(|s| s * s * c >= inp.max(1)).unwrap_or(0);
                if pool == 0 || pool * pool * c != inp {
                    return Err(blocks::shape_error(w, &name, &[out, c * 49], &[out, inp]));
                }
            } else if inp != n_in {
                return Err(blocks::shape_error(w, &name, &[out, n_in], &[out, inp]));
            }
            n_in = out;
            fcs.push(fc);
        }
        Ok(Self { pool, fcs })
    }

    pub fn num_classes(&self) -> usize {
        self.fcs.last().map_or(0, |fc| blocks::linear_dims(fc).0)
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = blocks::adaptive_avg_pool(g, x, self.pool, self.pool)?;
        let mut x = blocks::flatten(g, &x)?;
        let last = self.fcs.len().saturating_sub(1);
        for (i, fc) in self.fcs.iter().enumerate() {
            x = g.linear(&x, fc)?;
            if i != last {
                x = g.activation(&x, Activation::Relu)?;
            }
        }
        Ok(x)
    }
}

/// One entry of `features`: a convolution at its index, or a max pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Conv { index: usize, width: usize },
    Pool,
}

/// The layout of `features` from its indices, and whether it has BatchNorm.
fn layout(w: &WeightStore) -> std::result::Result<(Vec<Item>, bool), ModelError> {
    let mut indices: Vec<usize> = w
        .names()
        .filter_map(|n| n.strip_prefix("features.")?.split('.').next()?.parse().ok())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let is_conv = |i: usize| w.shape(&format!("features.{i}.weight")).is_some_and(|s| s.len() == 4);
    // BatchNorm weights are the only 1-D weights.
    let batch_norm = indices
        .iter()
        .any(|i| w.shape(&format!("features.{i}.weight")).is_some_and(|s| s.len() == 1));
    let slots = if batch_norm { 3 } else { 2 };
    let convs: Vec<usize> = indices.iter().copied().filter(|&i| is_conv(i)).collect();
    if convs.first() != Some(&0) {
        return Err(missing(w, FAMILY, "features.0.weight"));
    }
    let mut items = Vec::new();
    for (k, &i) in convs.iter().enumerate() {
        let width = w.shape(&format!("features.{i}.weight")).map_or(0, |s| s[0]);
        items.push(Item::Conv { index: i, width });
        let next = convs.get(k + 1).copied();
        let pools = match next {
            // The gap between two convolutions, beyond their own slots, is pools.
            Some(j) => j.checked_sub(i + slots).ok_or_else(|| {
                let name = format!("features.{}.weight", i + 1);
                missing(w, FAMILY, &name)
            })?,
            None => 1,
        };
        items.extend(std::iter::repeat_n(Item::Pool, pools));
    }
    Ok((items, batch_norm))
}

/// Whether `classifier.{i}` has a tensor.
pub(super) fn has_classifier(w: &WeightStore, i: usize) -> bool {
    w.contains(&format!("classifier.{i}.weight")) || w.contains(&format!("classifier.{i}.bias"))
}

/// `features.0` a convolution and no SqueezeNet fire modules: AlexNet or VGG, told apart by
/// their heads' indices.
pub(super) fn plain_features(w: &WeightStore) -> bool {
    w.shape("features.0.weight").is_some_and(|s| s.len() == 4) && !w.names().any(|n| n.contains(".squeeze."))
}

/// VGG: a plain `features` stack and the head at `classifier.0/3/6` (AlexNet's is at
/// 1/4/6). Any of the head's layers identifies it, so that a missing one is reported by
/// name.
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    let vgg_head = [0, 3, 6].iter().any(|&i| has_classifier(w, i));
    let alexnet_head = [1, 4].iter().any(|&i| has_classifier(w, i));
    if !plain_features(w) || !vgg_head || alexnet_head {
        return None;
    }
    Some(layout(w).map(|(items, batch_norm)| {
        let config: Vec<usize> = items
            .iter()
            .map(|it| match it {
                Item::Conv { width, .. } => *width,
                Item::Pool => 0,
            })
            .collect();
        let name = CONFIGS.iter().find(|(_, c)| *c == config.as_slice()).map(|(n, _)| *n);
        match (name, batch_norm) {
            (Some("vgg11"), true) => "vgg11_bn",
            (Some("vgg13"), true) => "vgg13_bn",
            (Some("vgg16"), true) => "vgg16_bn",
            (Some("vgg19"), true) => "vgg19_bn",
            (Some(n), false) => n,
            _ => CUSTOM,
        }
    }))
}

enum Layer {
    /// Convolution (BatchNorm folded) with its ReLU.
    Conv(Conv),
    Pool,
}

pub struct Vgg {
    layers: Vec<Layer>,
    head: Head,
}

impl Vgg {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let (items, batch_norm) = layout(w)?;
        let mut c = 3;
        let mut layers = Vec::with_capacity(items.len());
        for item in items {
            layers.push(match item {
                Item::Conv { index, .. } => {
                    let prefix = format!("features.{index}");
                    let mut conv = plain_conv(w, FAMILY, &prefix, c, 1, Some(Padding::Symmetric(1)))?;
                    if batch_norm {
                        conv = w.fold_bn(conv, &format!("features.{}", index + 1), BN_EPS)?;
                    }
                    c = blocks::out_channels(&conv);
                    Layer::Conv(conv)
                }
                Item::Pool => Layer::Pool,
            });
        }
        let head = Head::load(w, FAMILY, &[0, 3, 6], c)?;
        Ok(Self { layers, head })
    }

    pub fn num_classes(&self) -> usize {
        self.head.num_classes()
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let pool = MaxPool2d {
            kernel: 2,
            stride: 2,
            pad: 0,
            ceil: false,
        };
        let mut x = x.clone();
        for layer in &self.layers {
            x = match layer {
                Layer::Conv(c) => g.conv(&x, c, Activation::Relu)?,
                Layer::Pool => g.max_pool(&x, pool)?,
            };
        }
        self.head.build(g, &x)
    }
}
