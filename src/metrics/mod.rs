//! Scoring attribution maps (algorithms.md §4): pure computation on maps, images and a
//! classifier's scores; no UI.

pub mod imputation;
pub mod insertion_deletion;
pub mod localisation;
pub mod pic;
pub mod pixel_perturbation;
pub mod road;
pub mod sanity;
pub mod scoring;
pub mod sensitivity;
pub mod ssim;

/// Errors of the metrics: inputs of the wrong size or content, or parameters out of range.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricError {
    #[error("length mismatch: {what} has {got} elements, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Two images, or an image and its stated dimensions, disagree in size.
    #[error("size mismatch: {0}")]
    SizeMismatch(String),
    /// The image is too small for the window (SSIM) or for 5 scales (MS-SSIM).
    #[error("image {width}x{height} too small: the smaller side must be at least {min_side}")]
    TooSmall {
        width: usize,
        height: usize,
        min_side: usize,
    },
    #[error("empty input: {0}")]
    Empty(&'static str),
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    #[error("at least 2 samples are needed for a correlation, got {0}")]
    TooFewSamples(usize),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A model pass failed while scoring.
    #[error("model: {0}")]
    Model(String),
    /// An iterative solver stopped short of its tolerance.
    #[error("{0}")]
    NotConverged(String),
    /// The computation was stopped through its cancel flag.
    #[error("cancelled")]
    Cancelled,
}
