//! Image classifiers: one architecture per file (torchvision or `efficientnet_lite_pytorch`
//! tensor names), their loaders (safetensors, PyTorch `.pth`, ONNX graphs), weights,
//! randomisation for sanity checks, the preprocessing each expects, and class labels.
//!
//! The architecture is recognised from the checkpoint's tensor names (see
//! [`architecture`]); anything else is an error that names what was expected and what was
//! found. Networks are described with the layers of [`crate::net`].

pub mod architecture;
pub mod classifier;
pub mod conventions;
pub mod efficientnet_lite;
pub mod error;
pub mod labels;
pub mod onnx;
pub mod preprocess;
pub mod randomize;
pub mod resnet;
pub mod squeezenet;
pub mod torchvision;
pub mod weights;

pub use architecture::{is_onnx, Architecture, MODEL_EXTENSIONS};
pub use classifier::Classifier;
pub use error::ModelError;
pub use preprocess::{Normalization, Preprocessing};
pub use weights::WeightStore;
