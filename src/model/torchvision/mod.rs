//! torchvision's classifier families, recognised from the tensor names of their state
//! dicts (one file per family; shared layers in [`blocks`]). Each family file offers:
//! - `detect(&WeightStore) -> Option<Result<&'static str, ModelError>>`: `None` when the
//!   names are not the family's; otherwise the torchvision builder name of the variant the
//!   shapes match (`"resnext50_32x4d"`), or [`CUSTOM`] for other widths and depths (a
//!   reduced or modified model), or an error naming what is missing;
//! - a network type with `load(&mut WeightStore)`, `num_classes()` and
//!   `build<G: Graph>(g, x)`, which reads every size it can from the tensors' shapes.

pub mod blocks;

pub mod alexnet;
pub mod convnext;
pub mod densenet;
pub mod efficientnet;
pub mod googlenet;
pub mod inception;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
pub mod regnet;
pub mod shufflenet;
pub mod swin;
pub mod vgg;
pub mod vit;

use std::fmt;

use candle_core::Result;

use crate::model::error::ModelError;
use crate::model::weights::WeightStore;
use crate::net::graph::Graph;

/// The variant name of a model whose widths or depths match no torchvision builder.
pub const CUSTOM: &str = "custom";

/// A torchvision family (ResNet and SqueezeNet have their own [`super::Architecture`]
/// variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    AlexNet,
    ConvNeXt,
    DenseNet,
    EfficientNet,
    GoogLeNet,
    InceptionV3,
    MobileNetV2,
    MobileNetV3,
    RegNet,
    ResNet,
    ShuffleNetV2,
    Swin,
    Vgg,
    Vit,
}

impl Family {
    /// The family's name as its paper and torchvision's documentation write it.
    pub fn name(self) -> &'static str {
        match self {
            Family::AlexNet => "AlexNet",
            Family::ConvNeXt => "ConvNeXt",
            Family::DenseNet => "DenseNet",
            Family::EfficientNet => "EfficientNet",
            Family::GoogLeNet => "GoogLeNet",
            Family::InceptionV3 => "Inception-v3",
            Family::MobileNetV2 => "MobileNet V2",
            Family::MobileNetV3 => "MobileNet V3",
            Family::RegNet => "RegNet",
            Family::ResNet => "ResNet",
            Family::ShuffleNetV2 => "ShuffleNet V2",
            Family::Swin => "Swin Transformer",
            Family::Vgg => "VGG",
            Family::Vit => "Vision Transformer",
        }
    }

    /// The torchvision preset whose preprocessing a custom variant of the family gets.
    pub fn default_preset(self) -> &'static str {
        match self {
            Family::AlexNet => "alexnet",
            Family::ConvNeXt => "convnext_tiny",
            Family::DenseNet => "densenet121",
            Family::EfficientNet => "efficientnet_b0",
            Family::GoogLeNet => "googlenet",
            Family::InceptionV3 => "inception_v3",
            Family::MobileNetV2 => "mobilenet_v2",
            Family::MobileNetV3 => "mobilenet_v3_large",
            Family::RegNet => "regnet_y_400mf",
            Family::ResNet => "resnet50",
            Family::ShuffleNetV2 => "shufflenet_v2_x1_0",
            Family::Swin => "swin_t",
            Family::Vgg => "vgg16",
            Family::Vit => "vit_b_16",
        }
    }
}

/// A recognised torchvision model: its family and variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Model {
    pub family: Family,
    /// torchvision's builder name (`"vgg16_bn"`), or [`CUSTOM`].
    pub variant: &'static str,
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.variant == CUSTOM {
            write!(f, "{} (custom widths or depths)", self.family.name())
        } else {
            write!(f, "{} ({})", self.family.name(), self.variant)
        }
    }
}

/// A loaded network of one of the families.
pub enum Network {
    AlexNet(alexnet::AlexNet),
    ConvNeXt(convnext::ConvNeXt),
    DenseNet(densenet::DenseNet),
    EfficientNet(efficientnet::EfficientNet),
    GoogLeNet(googlenet::GoogLeNet),
    InceptionV3(inception::InceptionV3),
    MobileNetV2(mobilenet_v2::MobileNetV2),
    MobileNetV3(mobilenet_v3::MobileNetV3),
    RegNet(regnet::RegNet),
    ShuffleNetV2(shufflenet::ShuffleNetV2),
    Swin(swin::Swin),
    Vgg(vgg::Vgg),
    Vit(vit::Vit),
}

/// Tries each family's names, most specific first (ConvNeXt and Swin before MobileNet V2,
/// whose `features.0.0` they share; AlexNet before VGG).
pub fn detect(w: &WeightStore) -> Option<std::result::Result<Model, ModelError>> {
    type Detector = fn(&WeightStore) -> Option<std::result::Result<&'static str, ModelError>>;
    const DETECTORS: &[(Family, Detector)] = &[
        (Family::Swin, swin::detect),
        (Family::ConvNeXt, convnext::detect),
        (Family::Vit, vit::detect),
        (Family::EfficientNet, efficientnet::detect),
        (Family::MobileNetV3, mobilenet_v3::detect),
        (Family::MobileNetV2, mobilenet_v2::detect),
        (Family::DenseNet, densenet::detect),
        (Family::InceptionV3, inception::detect),
        (Family::GoogLeNet, googlenet::detect),
        (Family::RegNet, regnet::detect),
        (Family::ShuffleNetV2, shufflenet::detect),
        (Family::AlexNet, alexnet::detect),
        (Family::Vgg, vgg::detect),
    ];
    DETECTORS
        .iter()
        .find_map(|&(family, detect)| detect(w).map(|r| r.map(|variant| Model { family, variant })))
}

impl Network {
    /// Builds the network of `model` from the store's tensors.
    pub fn load(model: Model, w: &mut WeightStore) -> std::result::Result<Self, ModelError> {
        Ok(match model.family {
            Family::AlexNet => Network::AlexNet(alexnet::AlexNet::load(w)?),
            Family::ConvNeXt => Network::ConvNeXt(convnext::ConvNeXt::load(w)?),
            Family::DenseNet => Network::DenseNet(densenet::DenseNet::load(w)?),
            Family::EfficientNet => Network::EfficientNet(efficientnet::EfficientNet::load(w)?),
            Family::GoogLeNet => Network::GoogLeNet(googlenet::GoogLeNet::load(w)?),
            Family::InceptionV3 => Network::InceptionV3(inception::InceptionV3::load(w)?),
            Family::MobileNetV2 => Network::MobileNetV2(mobilenet_v2::MobileNetV2::load(w)?),
            Family::MobileNetV3 => Network::MobileNetV3(mobilenet_v3::MobileNetV3::load(w)?),
            Family::RegNet => Network::RegNet(regnet::RegNet::load(w)?),
            Family::ShuffleNetV2 => Network::ShuffleNetV2(shufflenet::ShuffleNetV2::load(w)?),
            Family::Swin => Network::Swin(swin::Swin::load(w)?),
            Family::Vgg => Network::Vgg(vgg::Vgg::load(w)?),
            Family::Vit => Network::Vit(vit::Vit::load(w)?),
            Family::ResNet => {
                return Err(ModelError::UnknownArchitecture {
                    path: w.path().to_path_buf(),
                    hint: "ResNets load through the ResNet architecture".into(),
                })
            }
        })
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Network::AlexNet(m) => m.num_classes(),
            Network::ConvNeXt(m) => m.num_classes(),
            Network::DenseNet(m) => m.num_classes(),
            Network::EfficientNet(m) => m.num_classes(),
            Network::GoogLeNet(m) => m.num_classes(),
            Network::InceptionV3(m) => m.num_classes(),
            Network::MobileNetV2(m) => m.num_classes(),
            Network::MobileNetV3(m) => m.num_classes(),
            Network::RegNet(m) => m.num_classes(),
            Network::ShuffleNetV2(m) => m.num_classes(),
            Network::Swin(m) => m.num_classes(),
            Network::Vgg(m) => m.num_classes(),
            Network::Vit(m) => m.num_classes(),
        }
    }

    /// The one input size the network accepts, where it has one (ViT's position embedding
    /// fixes it).
    pub fn input_size(&self) -> Option<(usize, usize)> {
        match self {
            Network::Vit(m) => Some(m.input_size()),
            _ => None,
        }
    }

    pub fn build<G: Graph>(&self, g: &mut G, x: &G::Value) -> Result<G::Value> {
        match self {
            Network::AlexNet(m) => m.build(g, x),
            Network::ConvNeXt(m) => m.build(g, x),
            Network::DenseNet(m) => m.build(g, x),
            Network::EfficientNet(m) => m.build(g, x),
            Network::GoogLeNet(m) => m.build(g, x),
            Network::InceptionV3(m) => m.build(g, x),
            Network::MobileNetV2(m) => m.build(g, x),
            Network::MobileNetV3(m) => m.build(g, x),
            Network::RegNet(m) => m.build(g, x),
            Network::ShuffleNetV2(m) => m.build(g, x),
            Network::Swin(m) => m.build(g, x),
            Network::Vgg(m) => m.build(g, x),
            Network::Vit(m) => m.build(g, x),
        }
    }
}
