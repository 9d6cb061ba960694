//! Sizes of windowed operations: the padding of one convolution call, and how many
//! windows fit along an axis.

/// Padding amounts (top, bottom, left, right) for one input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pads {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

/// Output size of a pooling or convolution window along one axis (PyTorch's rule, with
/// `ceil` its `ceil_mode`).
pub fn window_out(size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> usize {
    let span = size + 2 * pad - kernel;
    let mut out = if ceil { span.div_ceil(stride) } else { span / stride } + 1;
    // PyTorch: with ceil_mode the last window must start inside the input or left padding.
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    out
}
