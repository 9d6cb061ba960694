//! Any bytes given as a PyTorch .pth checkpoint (a zip holding a pickle): candle's
//! pickle reader works from a path, so each input is written to a file first.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Pathscope turns a panic inside candle's pickle reader into an error (catch_unwind);
    // libFuzzer's hook would abort at the panic before that, so a silent hook stands in.
    // A panic that escapes Pathscope still reaches libfuzzer-sys and counts as a crash.
    std::panic::set_hook(Box::new(|_| {}));
    let dir = std::env::temp_dir().join(format!("pathscope-fuzz-pth-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("model.pth");
    if std::fs::write(&path, data).is_ok() {
        let _ = pathscope::model::Classifier::load(&path, &candle_core::Device::Cpu);
    }
});
