//! Hand-written CPU f32 kernels and the candle custom ops that call them. This room knows
//! no network: a kernel takes buffers and sizes (a convolution's weights and geometry, a
//! pooling window) and computes one operation and its input gradient.
//!
//! Why they exist: candle's CPU backward computes weight gradients attribution never needs
//! and runs convolutions' input gradients through a naive loop; its max-pool gradient is
//! wrong. See each module for what it does instead.

pub mod activation;
pub mod buffers;
pub mod conv;
pub mod conv_train;
pub mod gemm;
pub mod geometry;
pub mod layout;
pub mod maxpool;
pub mod pointwise;
pub mod reduce;
mod simd;
pub mod storage;
pub mod winograd;
