//! Turning 2-D maps into colours. `colormap` is the single definition of every colour
//! scale; the GPU shader and the CPU exporters both read it. `heatmap` draws maps with our
//! WGSL shader and holds its CPU reference.

pub mod colormap;
pub mod heatmap;
