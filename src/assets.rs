//! What ships inside the binary: the default model (SqueezeNet-1.1, ImageNet weights,
//! Apache-2.0) and a few sample photos (licences in assets/README.md).

/// Name shown for the embedded model.
pub const DEFAULT_MODEL_NAME: &str = "squeezenet1_1_imagenet.safetensors (embedded)";
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/squeezenet1_1_imagenet.safetensors");

/// A bundled photo.
pub struct SampleImage {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub credit: &'static str,
}

pub const SAMPLE_IMAGES: &[SampleImage] = &[
    SampleImage {
        name: "chelsea_cat.png",
        bytes: include_bytes!("../assets/images/chelsea_cat.png"),
        credit: "Stefan van der Walt, CC0 (scikit-image)",
    },
    SampleImage {
        name: "coffee.png",
        bytes: include_bytes!("../assets/images/coffee.png"),
        credit: "Rachel Michetti, CC0 (scikit-image)",
    },
    SampleImage {
        name: "grace_hopper.jpg",
        bytes: include_bytes!("../assets/images/grace_hopper.jpg"),
        credit: "U.S. Navy, public domain (matplotlib)",
    },
    SampleImage {
        name: "rocket.jpg",
        bytes: include_bytes!("../assets/images/rocket.jpg"),
        credit: "SpaceX, public domain (scikit-image)",
    },
];

/// The embedded default model's checkpoint, for the sanity check's randomisation.
pub fn default_checkpoint() -> Result<crate::model::randomize::Checkpoint, crate::model::ModelError> {
    crate::model::randomize::Checkpoint::from_bytes(std::path::Path::new(DEFAULT_MODEL_NAME), DEFAULT_MODEL)
}

/// Loads the embedded default classifier.
pub fn default_classifier(device: &candle_core::Device) -> Result<crate::model::Classifier, crate::model::ModelError> {
    crate::model::Classifier::load_bytes(std::path::Path::new(DEFAULT_MODEL_NAME), DEFAULT_MODEL, device)
}
