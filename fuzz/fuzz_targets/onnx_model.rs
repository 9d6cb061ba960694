//! Any bytes given as an .onnx graph: a classifier or an error naming the problem, never
//! a panic. A graph that loads also runs forward and backward on a small image, so shape
//! mismatches the loader let through must surface as errors there.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let device = candle_core::Device::Cpu;
    let Ok(model) = pathscope::model::Classifier::load_onnx_bytes(std::path::Path::new("fuzz.onnx"), data, &device)
    else {
        return;
    };
    let Ok(x) = candle_core::Tensor::zeros((1, 3, 16, 16), candle_core::DType::F32, &device) else {
        return;
    };
    let _ = model.logits_and_input_gradient(&x, |logits| vec![1.0; logits.len()]);
});
