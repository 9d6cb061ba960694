//! Any bytes given as an image: a decoded image or an error, never a panic, and the
//! decoder limits keep allocations bounded. Decoded images also go through the resize.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = pathscope::model::preprocess::decode_rgb(std::path::Path::new("fuzz"), data) {
        // Only small images: the fuzzer's time goes to the decoders, not to resampling.
        if u64::from(img.width()) * u64::from(img.height()) <= 1 << 16 {
            let _ = pathscope::model::preprocess::resize_and_crop(&img);
        }
    }
});
