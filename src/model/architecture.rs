//! Which architecture a checkpoint holds, recognised from its tensor names and shapes.

use std::fmt;
use std::path::Path;

use super::conventions;
use super::efficientnet_lite;
use super::error::{list_names, ModelError};
use super::preprocess::Normalization;
use super::preprocess::Preprocessing;
use super::resnet;
use super::torchvision;
use super::weights::WeightStore;

/// The architectures Pathscope can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    SqueezeNet1_0,
    SqueezeNet1_1,
    /// torchvision ResNet with the given depth (18, 34, 50, 101, 152).
    ResNet(usize),
    EfficientNetLite0,
    /// One of torchvision's other families (and ResNet variants beyond the plain five:
    /// ResNeXt, Wide ResNet, other widths), by family and variant.
    Torchvision(torchvision::Model),
    /// A graph read from an ONNX file (see [`onnx`]); expects ImageNet normalisation.
    Onnx,
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::SqueezeNet1_0 => write!(f, "SqueezeNet-1.0"),
            Architecture::SqueezeNet1_1 => write!(f, "SqueezeNet-1.1"),
            Architecture::ResNet(d) => write!(f, "ResNet-{d}"),
            Architecture::EfficientNetLite0 => write!(f, "EfficientNet-Lite0"),
            Architecture::Torchvision(m) => write!(f, "{m}"),
            Architecture::Onnx => write!(f, "ONNX graph"),
        }
    }
}

impl Architecture {
    /// The input normalisation the architecture's published weights expect.
    pub fn normalization(self) -> Normalization {
        match self {
            Architecture::EfficientNetLite0 => Normalization::TF_LITE,
            _ => Normalization::IMAGENET,
        }
    }

    /// The preprocessing of the architecture's published weights: torchvision's weight
    /// transform for its variant (or its family's, for custom widths).
    pub fn preprocessing(self) -> Preprocessing {
        let preset = match self {
            Architecture::SqueezeNet1_0 => conventions::preset("squeezenet1_0"),
            Architecture::SqueezeNet1_1 => conventions::preset("squeezenet1_1"),
            Architecture::ResNet(depth) => conventions::preset(&format!("resnet{depth}")),
            Architecture::Torchvision(m) => {
                conventions::preset(m.variant).or_else(|| conventions::preset(m.family.default_preset()))
            }
            Architecture::EfficientNetLite0 | Architecture::Onnx => None,
        };
        preset.unwrap_or(Preprocessing {
            normalization: self.normalization(),
            ..Preprocessing::IMAGENET
        })
    }

    /// Recognises the architecture from tensor names and shapes.
    pub fn detect(w: &WeightStore) -> Result<Self, ModelError> {
        if let Some(shape) = w.shape("features.0.weight") {
            if w.contains("features.3.squeeze.weight") {
                return match shape {
                    [64, 3, 3, 3] => Ok(Architecture::SqueezeNet1_1),
                    [96, 3, 7, 7] => Ok(Architecture::SqueezeNet1_0),
                    other => Err(ModelError::UnknownArchitecture {
                        path: w.path().to_path_buf(),
                        hint: format!(
                            "looks like SqueezeNet, but `features.0.weight` has shape {other:?} \
                             (1.1 has [64, 3, 3, 3], 1.0 has [96, 3, 7, 7])"
                        ),
                    }),
                };
            }
        }
        if w.contains("conv1.weight") && w.contains("layer1.0.conv1.weight") {
            return detect_resnet(w);
        }
        if let Some(found) = torchvision::detect(w) {
            return found.map(Architecture::Torchvision);
        }
        if w.contains("_conv_stem.weight") {
            let blocks = (0..)
                .take_while(|i| w.contains(&format!("_blocks.{i}._depthwise_conv.weight")))
                .count();
            if blocks == efficientnet_lite::LITE0_BLOCKS && !w.contains("_blocks.0._se_reduce.weight") {
                return Ok(Architecture::EfficientNetLite0);
            }
            return Err(ModelError::UnknownArchitecture {
                path: w.path().to_path_buf(),
                hint: format!(
                    "looks like an EfficientNet with {blocks} blocks{}; only EfficientNet-Lite0 \
                     (16 blocks, no squeeze-excitation) is supported",
                    if w.contains("_blocks.0._se_reduce.weight") {
                        " and squeeze-excitation"
                    } else {
                        ""
                    }
                ),
            });
        }
        let mut names: Vec<String> = w.names().map(str::to_string).collect();
        names.sort();
        Err(ModelError::UnknownArchitecture {
            path: w.path().to_path_buf(),
            hint: format!(
                "the tensor names match none of torchvision's families (AlexNet, ConvNeXt, \
                 DenseNet, EfficientNet, GoogLeNet, Inception-v3, MobileNet V2/V3, RegNet, ResNet, \
                 ShuffleNet V2, SqueezeNet, Swin, VGG, ViT) or EfficientNet-Lite0; the file has {} \
                 tensors, e.g. {}",
                names.len(),
                list_names(&names)
            ),
        })
    }
}

/// The variant the names and shapes describe: [`Architecture::ResNet`] for the five plain
/// ResNets at torchvision's widths, otherwise a torchvision ResNet variant (ResNeXt, Wide
/// ResNet) or a custom one.
fn detect_resnet(w: &WeightStore) -> std::result::Result<Architecture, ModelError> {
    let (counts, bottleneck) = resnet::block_layout(w);
    let depth = match (counts, bottleneck) {
        ([2, 2, 2, 2], false) => Some(18),
        ([3, 4, 6, 3], false) => Some(34),
        ([3, 4, 6, 3], true) => Some(50),
        ([3, 4, 23, 3], true) => Some(101),
        ([3, 8, 36, 3], true) => Some(152),
        _ => None,
    };
    // Width of layer1's 3×3 convolution and its groups: 64/1 plain, 128/32 ResNeXt-50
    // 32×4d, 256/32 ResNeXt-101 32×8d, 256/64 ResNeXt-101 64×4d, 128/1 Wide ResNet-50-2.
    let conv2 = w.shape("layer1.0.conv2.weight").map(<[usize]>::to_vec);
    let stem = w.shape("conv1.weight").map(|s| s[0]);
    let shape = match (conv2, stem) {
        (Some(s), Some(stem)) if s.len() == 4 && s[1] > 0 => Some((stem, s[0], s[0] / s[1])),
        _ => None,
    };
    let variant = match (depth, bottleneck, shape) {
        (Some(d), _, Some((64, 64, 1))) => return Ok(Architecture::ResNet(d)),
        (Some(50), true, Some((64, 128, 32))) => "resnext50_32x4d",
        (Some(101), true, Some((64, 256, 32))) => "resnext101_32x8d",
        (Some(101), true, Some((64, 256, 64))) => "resnext101_64x4d",
        (Some(50), true, Some((64, 128, 1))) => "wide_resnet50_2",
        (Some(101), true, Some((64, 128, 1))) => "wide_resnet101_2",
        _ => torchvision::CUSTOM,
    };
    Ok(Architecture::Torchvision(torchvision::Model {
        family: torchvision::Family::ResNet,
        variant,
    }))
}

/// File extensions of the models Pathscope opens (checkpoints and ONNX graphs), for file
/// dialogs and dropped files.
pub const MODEL_EXTENSIONS: &[&str] = &["safetensors", "pth", "pt", "bin", "ckpt", "onnx"];

/// Whether `path` names an ONNX file (by its extension; protobuf has no magic number).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}
