//! Any bytes given as an exported figure (PNG, SVG or PDF) whose embedded settings and
//! regenerating command are read back.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pathscope::export::metadata::FigureMetadata::read(data);
});
