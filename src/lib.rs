//! Pathscope: path-integral saliency maps (Integrated Gradients and its relatives) for
//! image classifiers, computed with candle.
//!
//! Rooms, from the bottom up: [`kernels`] (CPU f32 kernels), [`net`] (the network
//! description and its interpreters), [`model`] (architectures, loaders, preprocessing),
//! [`attribution`] (the method catalog, baselines, paths, integration), [`metrics`],
//! [`engine`] (the background worker), [`render`] (colour maps), [`export`] (files),
//! [`session`], and the studio in [`ui`]. Computation never depends on presentation;
//! `docs/ARCHITECTURE.md` says which room may use which.

pub mod assets;
pub mod attribution;
pub mod device;
pub mod engine;
pub mod export;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod net;
pub mod render;
pub mod session;
#[cfg(feature = "studio")]
pub mod ui;
