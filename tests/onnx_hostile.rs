//! Malformed and hostile ONNX files (issue 19, "Bad input"): each is refused with one
//! line that names the problem (the escaping path, the node, the operator, the tensor),
//! never a panic, a hang or an allocation the machine cannot make. The files come from
//! `tests/data/make_hostile_onnx.py`; each is a small classifier with one thing broken.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use pathscope::model::Classifier;

/// Each file and a part of the message that says what is wrong with it.
const CASES: &[(&str, &str)] = &[
    ("ext_escape.onnx", "`../secret.bin` leaves the model's folder"),
    ("ext_absolute.onnx", "`/etc/passwd` leaves the model's folder"),
    ("ext_past_end.onnx", "bytes 64..496 of"),
    ("ext_offset_overflow.onnx", "past the end of the file"),
    (
        "ext_missing.onnx",
        "hostile/ext_missing.onnx.data`, which cannot be read",
    ),
    (
        "const_external.onnx",
        "Constant `k`: tensor `k` is stored in an external file",
    ),
    (
        "cycle.onnx",
        "Add `A`: its input `b` is computed only by this node or a later one",
    ),
    ("dangling_input.onnx", "Relu `relu`: its input `ghost` is not"),
    (
        "reshape_wrong_size.onnx",
        "Reshape `reshape`: Reshape of [1, 4] (4 elements) to [1, 5]",
    ),
    (
        "zero_sized_weight.onnx",
        "Conv `conv`: weights of shape [0, 3, 3, 3] have a dimension of size 0",
    ),
    (
        "conv_channels.onnx",
        "Conv `conv`: conv2d: input has 3 channels, the layer expects 5",
    ),
    (
        "gather_out_of_range.onnx",
        "Gather `gather`: Gather index 99 out of range",
    ),
    (
        "raw_data_short.onnx",
        "tensor `W` has shape [4, 3, 3, 3] (108 elements) but holds 2 values",
    ),
    ("huge_dimension.onnx", "tensor `W` has shape [1099511627776, 3, 3, 3]"),
    (
        "expand_huge.onnx",
        "Expand `expand`: Expand to [1, 4, 2097152, 2097152] asks for more than",
    ),
    ("input_huge.onnx", "declares a 1048576×1048576 image"),
    ("no_outputs.onnx", "the graph has 0 outputs"),
    ("integer_input.onnx", "the input `x` has ONNX data type 7"),
    ("pad_wrap.onnx", "Pad `pad`: attribute mode = wrap is not supported"),
    ("truncated.onnx", "not a valid ONNX model"),
];

fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/hostile")
}

/// The error as `pathscope` prints it (src/main.rs `one_line`): the cause chain joined
/// with ": ", a cause the line already holds skipped.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Loads `path` and, if that succeeds, runs a forward and backward pass on zeros of the
/// models' input size; the first error, as printed.
fn first_error(path: &Path) -> Option<String> {
    let device = Device::Cpu;
    let model = match Classifier::load(path, &device) {
        Ok(model) => model,
        Err(e) => return Some(one_line(&anyhow::Error::from(e))),
    };
    let x = Tensor::zeros((1, 3, 8, 8), DType::F32, &device).unwrap();
    match model.logits_and_input_gradient(&x, |l| vec![1.0; l.len()]) {
        Ok(_) => None,
        Err(e) => Some(one_line(&anyhow::Error::from(e))),
    }
}

#[test]
fn hostile_onnx_files_are_refused_in_one_line() {
    // Candle then appends a backtrace to its errors' text, as it does for users who set
    // RUST_BACKTRACE: the messages must stay one line all the same.
    std::env::set_var("RUST_LIB_BACKTRACE", "1");
    let dir = hostile_dir();
    let mut failures = Vec::new();
    for &(file, expected) in CASES {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "{} is missing; run tests/data/make_hostile_onnx.py",
            path.display()
        );
        let outcome = std::panic::catch_unwind(|| first_error(&path));
        let message = match outcome {
            Err(_) => {
                failures.push(format!("{file}: panicked"));
                continue;
            }
            Ok(None) => {
                failures.push(format!("{file}: loaded and ran without an error"));
                continue;
            }
            Ok(Some(message)) => message,
        };
        println!("{message}");
        // The length without the checkout's own path, which the message names once or twice.
        let short = message.replace(&dir.display().to_string(), "hostile");
        if message.contains('\n') || short.chars().count() >= 300 || !message.contains(expected) {
            failures.push(format!(
                "{file}: expected one line under 300 characters containing {expected:?}, got {message:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every file the script writes is in the table, and every model file of the table is small.
#[test]
fn every_hostile_file_is_checked() {
    let mut files: Vec<String> = std::fs::read_dir(hostile_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".onnx"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
    for (file, _) in CASES {
        let size = std::fs::metadata(hostile_dir().join(file)).unwrap().len();
        assert!(size < 20_000, "{file}: {size} bytes");
    }
}
