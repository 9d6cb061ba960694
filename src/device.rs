//! Choosing the compute device, and what the machine has. The CPU is the default and the
//! reference; CUDA exists only in builds with the `cuda` feature and runs exactly the
//! same model code.

use candle_core::Device;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (expected `cpu`, `cuda` or `cuda:N`)")]
    Unknown(String),
    #[error("this build of pathscope has no CUDA support; rebuild with `cargo build --release --features cuda`")]
    CudaNotBuilt,
    #[error("could not open CUDA device {index}: {message}")]
    Cuda { index: usize, message: String },
}

/// Parses `cpu`, `cuda` or `cuda:N` and opens that device.
pub fn select_device(name: &str) -> Result<Device, DeviceError> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let index = match name.as_str() {
        "cuda" | "gpu" => 0,
        _ => match name.strip_prefix("cuda:").and_then(|i| i.parse::<usize>().ok()) {
            Some(i) => i,
            None => return Err(DeviceError::Unknown(name)),
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(DeviceError::CudaNotBuilt);
    }
    Device::new_cuda(index).map_err(|e| DeviceError::Cuda {
        index,
        message: e.to_string(),
    })
}

/// The memory the kernel reports available (`MemAvailable`), in bytes; `None` where it
/// cannot be read.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A short human description, e.g. for the UI and summaries.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "CPU".to_string(),
        Device::Cuda(_) => "CUDA".to_string(),
        Device::Metal(_) => "Metal".to_string(),
    }
}
