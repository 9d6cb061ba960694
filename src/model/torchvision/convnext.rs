//! torchvision's ConvNeXt (Liu et al. 2022): a 4×4 stride-4 patchify stem, stages of
//! CNBlocks (7×7 depthwise convolution, channels-last LayerNorm, an inverted MLP with GELU,
//! a per-channel layer scale, a residual add) and LayerNorm + 2×2 stride-2 convolutions
//! between stages. Stages and blocks are counted from the names, widths read from the
//! shapes; LayerNorm eps is torchvision's 1e-6.

use candle_core::{Result, Tensor};

use super::blocks::{self, Act, Dense, LayerNorm};
use super::CUSTOM;
use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;
use crate::net::layers::{Activation, Conv, Linear, Padding};

const FAMILY: &str = "ConvNeXt";
const LN_EPS: f64 = 1e-6;

/// torchvision's builders: stage widths and depths.
const VARIANTS: &[(&str, [usize; 4], [usize; 4])] = &[
    ("convnext_tiny", [96, 192, 384, 768], [3, 3, 9, 3]),
    ("convnext_small", [96, 192, 384, 768], [3, 3, 27, 3]),
    ("convnext_base", [128, 256, 512, 1024], [3, 3, 27, 3]),
    ("convnext_large", [192, 384, 768, 1536], [3, 3, 27, 3]),
];

/// What `features.{i}` is.
enum Layer {
    /// CNBlocks: their count.
    Stage(usize),
    /// LayerNorm2d + 2×2 convolution.
    Downsample,
}

/// The layers after the stem, from the names: a stage has `features.{i}.0.layer_scale`, a
/// downsampling layer `features.{i}.1.weight` (its convolution).
fn layout(w: &WeightStore) -> Vec<Layer> {
    let mut layers = Vec::new();
    for i in 1.. {
        let blocks = (0..)
            .take_while(|b| w.contains(&format!("features.{i}.{b}.layer_scale")))
            .count();
        if blocks > 0 {
            layers.push(Layer::Stage(blocks));
        } else if w.contains(&format!("features.{i}.1.weight")) && w.contains(&format!("features.{i}.0.weight")) {
            layers.push(Layer::Downsample);
        } else {
            break;
        }
    }
    layers
}

/// ConvNeXt when the stem, the first block's layer scale and depthwise convolution are
/// there (MobileNet V2 shares `features.0.0`, but has no layer scales).
pub fn detect(w: &WeightStore) -> Option<std::result::Result<&'static str, ModelError>> {
    if !(w.contains("features.0.0.weight")
        && w.contains("features.1.0.layer_scale")
        && w.contains("features.1.0.block.0.weight"))
    {
        return None;
    }
    let mut widths = Vec::new();
    let mut depths = Vec::new();
    for (i, layer) in layout(w).iter().enumerate() {
        if let Layer::Stage(n) = layer {
            depths.push(*n);
            widths.push(
                w.shape(&format!("features.{}.0.layer_scale", i + 1))
                    .and_then(|s| s.first().copied())
                    .unwrap_or(0),
            );
        }
    }
    let variant = VARIANTS
        .iter()
        .find(|(_, wd, dp)| widths == wd[..] && depths == dp[..])
        .map_or(CUSTOM, |(name, _, _)| name);
    Some(Ok(variant))
}

/// x + γ·Linear(GELU(Linear(LayerNorm(dwconv(x))))), γ folded into the second Linear.
struct CnBlock {
    dwconv: Conv,
    norm: LayerNorm,
    fc1: Dense,
    fc2: Dense,
}

impl CnBlock {
    fn load(w: &mut WeightStore, p: &str, c: usize) -> std::result::Result<Self, ModelError> {
        let dwconv = blocks::conv(w, &format!("{p}.block.0"), c, 1, None)?;
        if blocks::out_channels(&dwconv) != c {
            let name = format!("{p}.block.0.weight");
            return Err(blocks::shape_error(w, &name, &[c, 1, 7, 7], dwconv.weight().dims()));
        }
        let norm = LayerNorm::load(w, &format!("{p}.block.2"), LN_EPS)?;
        if norm.dim() != c {
            let name = format!("{p}.block.2.weight");
            return Err(blocks::shape_error(w, &name, &[c], &[norm.dim()]));
        }
        let fc1 = Dense::load(w, &format!("{p}.block.3"))?;
        let (hidden, fc1_in) = fc1.dims();
        if fc1_in != c {
            let name = format!("{p}.block.3.weight");
            return Err(blocks::shape_error(w, &name, &[hidden, c], &[hidden, fc1_in]));
        }
        // The layer scale multiplies the second Linear's rows and bias: one op less.
        let fc2_name = format!("{p}.block.5.weight");
        let fc2_weight = w.get(&fc2_name, Some(&[c, hidden]))?;
        let fc2_bias = w.get(&format!("{p}.block.5.bias"), Some(&[c]))?;
        let gamma = w.get(&format!("{p}.layer_scale"), Some(&[c, 1, 1]))?;
        let scale = |gamma: &Tensor| -> Result<(Tensor, Tensor)> {
            let g = gamma.reshape((c, 1))?;
            let weight = fc2_weight.broadcast_mul(&g)?;
            let bias = fc2_bias.mul(&g.reshape(c)?)?;
            Ok((weight, bias))
        };
        let (weight, bias) = scale(&gamma).map_err(|e| ModelError::candle(w.path(), e))?;
        let fc2 = Dense::from_tensors(w, weight, Some(bias))?;
        Ok(Self { dwconv, norm, fc1, fc2 })
    }

    fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let y = g.conv(x, &self.dwconv, Activation::Identity)?;
        let y = g.permute(&y, &[0, 2, 3, 1])?;
        let y = self.norm.apply(g, &y)?;
        let y = self.fc1.apply(g, &y)?;
        let y = blocks::act(g, &y, Act::Gelu)?;
        let y = self.fc2.apply(g, &y)?;
        let y = g.permute(&y, &[0, 3, 1, 2])?;
        g.add(&y, x)
    }
}

enum Stage {
    Blocks(Vec<CnBlock>),
    Downsample(LayerNorm, Conv),
}

pub struct ConvNeXt {
    stem: Conv,
    stem_norm: LayerNorm,
    stages: Vec<Stage>,
    head_norm: LayerNorm,
    fc: Linear,
}

/// An error unless the LayerNorm `prefix` normalises `c` channels.
fn check_norm(w: &WeightStore, prefix: &str, norm: &LayerNorm, c: usize) -> std::result::Result<(), ModelError> {
    if norm.dim() == c {
        Ok(())
    } else {
        Err(blocks::shape_error(w, &format!("{prefix}.weight"), &[c], &[norm.dim()]))
    }
}

impl ConvNeXt {
    pub fn load(w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        let dims = blocks::shape(w, "features.0.0.weight", FAMILY)?;
        let &[_, _, k, kw] = &dims[..] else {
            return Err(blocks::shape_error(w, "features.0.0.weight", &[0, 3, 4, 4], &dims));
        };
        if k != kw || k == 0 {
            return Err(blocks::shape_error(
                w,
                "features.0.0.weight",
                &[dims[0], 3, 4, 4],
                &dims,
            ));
        }
        // The stem patchifies: kernel = stride, no padding.
        let stem = blocks::conv(w, "features.0.0", 3, k, Some(Padding::Symmetric(0)))?;
        let mut c = blocks::out_channels(&stem);
        let stem_norm = LayerNorm::load(w, "features.0.1", LN_EPS)?;
        check_norm(w, "features.0.1", &stem_norm, c)?;
        let mut stages = Vec::new();
        for (i, layer) in layout(w).into_iter().enumerate() {
            let i = i + 1;
            match layer {
                Layer::Stage(n) => {
                    let blocks = (0..n)
                        .map(|b| CnBlock::load(w, &format!("features.{i}.{b}"), c))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    stages.push(Stage::Blocks(blocks));
                }
                Layer::Downsample => {
                    let norm = LayerNorm::load(w, &format!("features.{i}.0"), LN_EPS)?;
                    check_norm(w, &format!("features.{i}.0"), &norm, c)?;
                    let conv = blocks::conv(w, &format!("features.{i}.1"), c, 2, Some(Padding::Symmetric(0)))?;
                    c = blocks::out_channels(&conv);
                    stages.push(Stage::Downsample(norm, conv));
                }
            }
        }
        let head_norm = LayerNorm::load(w, "classifier.0", LN_EPS)?;
        check_norm(w, "classifier.0", &head_norm, c)?;
        let fc = blocks::linear(w, "classifier.2")?;
        let (classes, fc_in) = blocks::linear_dims(&fc);
        if fc_in != c {
            return Err(blocks::shape_error(
                w,
                "classifier.2.weight",
                &[classes, c],
                &[classes, fc_in],
            ));
        }
        Ok(Self {
            stem,
            stem_norm,
            stages,
            head_norm,
            fc,
        })
    }

    pub fn num_classes(&self) -> usize {
        blocks::linear_dims(&self.fc).0
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        let x = g.conv(x, &self.stem, Activation::Identity)?;
        let mut x = self.stem_norm.apply_channels_first(g, &x)?;
        for stage in &self.stages {
            x = match stage {
                Stage::Blocks(blocks) => {
                    for b in blocks {
                        x = b.build(g, &x)?;
                    }
                    x
                }
                Stage::Downsample(norm, conv) => {
                    let y = norm.apply_channels_first(g, &x)?;
                    g.conv(&y, conv, Activation::Identity)?
                }
            };
        }
        // The pooled [N, C, 1, 1] map's LayerNorm2d is a LayerNorm of [N, C].
        let x = g.global_avg_pool(&x)?;
        let x = self.head_norm.apply(g, &x)?;
        g.linear(&x, &self.fc)
    }
}
