//! Any bytes given as a .safetensors checkpoint: a classifier or an error naming the
//! problem, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pathscope::model::Classifier::load_bytes(
        std::path::Path::new("fuzz.safetensors"),
        data,
        &candle_core::Device::Cpu,
    );
});
