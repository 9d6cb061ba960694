//! Writing results: raw arrays, heatmap images, and (later) publication figures. Every
//! file is written atomically (temporary file, then rename), so a crash never leaves a
//! half-written result behind.

pub mod atomic;
pub mod heatmap;
pub mod npy;
