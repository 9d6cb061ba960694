//! Reading candle's CPU storage from a custom op.

use candle_core::{CpuStorage, Layout, Result};

/// The f32 elements a CPU custom op reads: its input must be contiguous; `op` names it
/// in the error.
pub(crate) fn contiguous_f32<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}
