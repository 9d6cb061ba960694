//! Turning 2-D maps into colours. `colormap` is the single definition of every colour
//! scale; the GPU shader and the CPU exporters both read it.

pub mod colormap;
