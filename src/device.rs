//! Choosing the compute device, and what the machine has. The CPU is the default and the
//! reference; CUDA exists only in builds with the `cuda` feature and runs exactly the
//! same model code.

use candle_core::Device;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}` (expected `cpu`, `cpu:generic`, `cuda` or `cuda:N`)")]
    Unknown(String),
    #[error("this build of pathscope has no CUDA support; rebuild with `cargo build --release --features cuda`")]
    CudaNotBuilt,
    #[error("could not open CUDA device {index}: {message}")]
    Cuda { index: usize, message: String },
}

/// Where and how a model runs: a device, and on the CPU whether it takes the
/// device-generic path (candle's ops and autograd only, as on a GPU) instead of the tape.
#[derive(Debug, Clone)]
pub struct Compute {
    pub device: Device,
    pub generic: bool,
}

/// The CPU with its tape: the default and the reference.
impl Default for Compute {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            generic: false,
        }
    }
}

impl Compute {
    /// What a person reads: `CPU`, `CPU (device-generic path)`, `CUDA`.
    pub fn describe(&self) -> String {
        if self.generic && self.device.is_cpu() {
            "CPU (device-generic path)".into()
        } else {
            describe(&self.device)
        }
    }
}

/// Parses `cpu`, `cpu:generic`, `cuda` or `cuda:N` and opens that device.
pub fn select_compute(name: &str) -> Result<Compute, DeviceError> {
    let generic = name.trim().eq_ignore_ascii_case("cpu:generic");
    let device = select_device(if generic { "cpu" } else { name })?;
    Ok(Compute { device, generic })
}

/// Parses `cpu`, `cuda` or `cuda:N` and opens that device (`cpu:generic` is the CPU; see
/// [`select_compute`] for the path it asks for).
pub fn select_device(name: &str) -> Result<Device, DeviceError> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" || name == "cpu:generic" {
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

/// The memory free for tensors on `device`, in bytes: the host's available memory for
/// the CPU, the GPU's free memory for CUDA; `None` where it cannot be read.
pub fn free_memory(device: &Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64),
        Device::Cpu => available_memory(),
        _ => None,
    }
}

/// A short human description, e.g. for the UI and summaries.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "CPU".to_string(),
        Device::Cuda(_) => "CUDA".to_string(),
        Device::Metal(_) => "Metal".to_string(),
    }
}
