//! Any bytes given as a .npy array (maps cache, raw exports).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pathscope::export::npy::parse_npy_f32(data);
});
