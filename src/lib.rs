//! Pathscope: path-integral saliency maps (Integrated Gradients and its relatives) for
//! image classifiers, computed with candle.
//!
//! Rooms: [`model`] (architectures, weights, preprocessing), [`attribution`] (baselines,
//! paths, integration), [`render`] (colour maps), [`export`] (files). Computation never
//! depends on presentation.

pub mod assets;
pub mod attribution;
pub mod device;
pub mod engine;
pub mod export;
pub mod metrics;
pub mod model;
pub mod render;
pub mod session;
#[cfg(feature = "studio")]
pub mod ui;
