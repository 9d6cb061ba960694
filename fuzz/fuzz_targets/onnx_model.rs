//! Any bytes given as an .onnx graph and its external data file: a classifier or an error
//! naming the problem, never a panic. A graph that loads also runs forward and backward on
//! zeros of its input size (at most 64 a side), so shape mismatches the loader let through
//! must surface as errors there.
//!
//! The input is `[n: u32 LE][n bytes: the model][the rest: the external data]`, written as
//! `model.onnx` and `model.onnx.data` into a folder of this process's own, so external data
//! (its locations, offsets and lengths) is fuzzed through the loader's real file path. When
//! `n` does not fit, the whole input is the model and there is no data file: a plain .onnx
//! file (its first four bytes are a protobuf tag and length, far larger than the file)
//! stays a seed as it is.
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn folder() -> &'static PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pathscope-fuzz-onnx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        dir
    })
}

fn split(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    let Some(header) = data.get(..4) else {
        return (data, None);
    };
    let n = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    match data[4..].split_at_checked(n) {
        Some((model, external)) => (model, Some(external)),
        None => (data, None),
    }
}

fuzz_target!(|data: &[u8]| {
    let (model_bytes, external) = split(data);
    let model_path = folder().join("model.onnx");
    let data_path = folder().join("model.onnx.data");
    std::fs::write(&model_path, model_bytes).expect("writing the model");
    match external {
        Some(bytes) => std::fs::write(&data_path, bytes).expect("writing the external data"),
        None => {
            let _ = std::fs::remove_file(&data_path);
        }
    }

    let device = candle_core::Device::Cpu;
    let Ok(model) = pathscope::model::Classifier::load(&model_path, &device) else {
        return;
    };
    let (h, w) = model.preprocessing().crop;
    let (h, w) = (h.clamp(1, 64) as usize, w.clamp(1, 64) as usize);
    let Ok(x) = candle_core::Tensor::zeros((1, model.input_channels(), h, w), candle_core::DType::F32, &device) else {
        return;
    };
    let _ = model.logits_and_input_gradient(&x, |logits| vec![1.0; logits.len()]);
});
