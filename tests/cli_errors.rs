//! Bad input to `pathscope explain`: each case must exit non-zero with a one-line error
//! that names the file and the problem, and must never panic.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pathscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pathscope"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_errors").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sample_image() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/images/chelsea_cat.png")
}

/// Runs `explain` and returns stderr, asserting failure, a single line, no panic, and
/// that every `needles` fragment appears.
fn expect_error(args: &[&str], needles: &[&str]) -> String {
    let out = pathscope().arg("explain").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure for {args:?}, got success");
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    assert_ne!(out.status.code(), Some(101), "exit code 101 means a panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected a one-line error for {args:?}, got:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error for {args:?} should mention `{n}`: {stderr}");
    }
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn missing_image_file() {
    let out = scratch("missing_image");
    expect_error(
        &["--image", "/nonexistent/cat.png", "--out", s(&out)],
        &["/nonexistent/cat.png", "No such file"],
    );
}

#[test]
fn image_that_is_not_an_image() {
    let dir = scratch("not_image");
    let f = dir.join("notes.png");
    std::fs::write(&f, "these are my notes, not a picture").unwrap();
    expect_error(
        &["--image", s(&f), "--out", s(&dir)],
        &["notes.png", "not a supported image"],
    );
}

#[test]
fn truncated_png() {
    let dir = scratch("truncated_png");
    let bytes = std::fs::read(sample_image()).unwrap();
    let f = dir.join("half.png");
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    expect_error(&["--image", s(&f), "--out", s(&dir)], &["half.png"]);
}

#[test]
fn missing_model_file() {
    let dir = scratch("missing_model");
    expect_error(
        &[
            "--model",
            "/nonexistent/model.safetensors",
            "--image",
            s(&sample_image()),
            "--out",
            s(&dir),
        ],
        &["/nonexistent/model.safetensors", "No such file"],
    );
}

#[test]
fn truncated_safetensors() {
    let dir = scratch("truncated_model");
    let bytes = pathscope::assets::DEFAULT_MODEL;
    let f = dir.join("cut.safetensors");
    std::fs::write(&f, &bytes[..bytes.len() / 3]).unwrap();
    expect_error(
        &["--model", s(&f), "--image", s(&sample_image()), "--out", s(&dir)],
        &["cut.safetensors", "invalid safetensors"],
    );
}

fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    use candle_core::{Device, Tensor};
    let map: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .map(|(n, shape)| {
            (
                n.to_string(),
                Tensor::zeros(shape.as_slice(), candle_core::DType::F32, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&map, path).unwrap();
}

#[test]
fn model_with_unknown_tensor_names() {
    let dir = scratch("unknown_arch");
    let f = dir.join("mystery.safetensors");
    write_safetensors(&f, &[("encoder.block.0.weight", vec![4, 4]), ("head.bias", vec![4])]);
    expect_error(
        &["--model", s(&f), "--image", s(&sample_image()), "--out", s(&dir)],
        &["mystery.safetensors", "unknown architecture", "encoder.block.0.weight"],
    );
}

#[test]
fn model_with_missing_tensors_names_them() {
    // A SqueezeNet-1.1 checkpoint with its classifier removed.
    let dir = scratch("missing_tensors");
    let tensors =
        candle_core::safetensors::load_buffer(pathscope::assets::DEFAULT_MODEL, &candle_core::Device::Cpu).unwrap();
    let kept: std::collections::HashMap<_, _> = tensors
        .into_iter()
        .filter(|(k, _)| !k.starts_with("classifier"))
        .collect();
    let f = dir.join("headless.safetensors");
    candle_core::safetensors::save(&kept, &f).unwrap();
    expect_error(
        &["--model", s(&f), "--image", s(&sample_image()), "--out", s(&dir)],
        &[
            "headless.safetensors",
            "SqueezeNet-1.1",
            "missing",
            "classifier.1.weight",
        ],
    );
}

#[test]
fn model_with_wrong_shape() {
    let dir = scratch("wrong_shape");
    let mut tensors =
        candle_core::safetensors::load_buffer(pathscope::assets::DEFAULT_MODEL, &candle_core::Device::Cpu).unwrap();
    tensors.insert(
        "features.3.squeeze.weight".into(),
        candle_core::Tensor::zeros((16, 32, 1, 1), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    let f = dir.join("reshaped.safetensors");
    candle_core::safetensors::save(&tensors, &f).unwrap();
    expect_error(
        &["--model", s(&f), "--image", s(&sample_image()), "--out", s(&dir)],
        &["reshaped.safetensors", "features.3.squeeze.weight", "shape"],
    );
}

#[test]
fn target_out_of_range() {
    let dir = scratch("target_range");
    expect_error(
        &["--image", s(&sample_image()), "--target", "1000", "--out", s(&dir)],
        &["--target 1000", "out of range"],
    );
}

#[test]
fn negative_noise_is_named_not_mistaken_for_a_flag() {
    let dir = scratch("negative_noise");
    expect_error(
        &[
            "--image",
            s(&sample_image()),
            "--method",
            "smoothgrad",
            "--noise",
            "-1",
            "--out",
            s(&dir),
        ],
        &["--noise must be a non-negative", "-1"],
    );
}

#[test]
fn zero_steps_rejected_by_argument_parser() {
    let dir = scratch("zero_steps");
    let out = pathscope()
        .args([
            "explain",
            "--image",
            s(&sample_image()),
            "--steps",
            "0",
            "--out",
            s(&dir),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit with 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--steps"));
}

#[test]
fn missing_baseline_image() {
    let dir = scratch("missing_baseline");
    expect_error(
        &[
            "--image",
            s(&sample_image()),
            "--baseline",
            "/nonexistent/ref.png",
            "--steps",
            "2",
            "--out",
            s(&dir),
        ],
        &["/nonexistent/ref.png"],
    );
}

#[test]
fn unwritable_output_directory() {
    let dir = scratch("unwritable");
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out_dir = blocker.join("sub");
    expect_error(
        &[
            "--image",
            s(&sample_image()),
            "--method",
            "gradient",
            "--out",
            s(&out_dir),
        ],
        &["file/sub"],
    );
}

#[test]
fn a_directory_given_as_the_image() {
    let dir = scratch("image_is_dir");
    let err = expect_error(
        &["--image", s(&dir), "--out", s(&dir)],
        &["image_is_dir", "Is a directory"],
    );
    assert_eq!(err.matches("Is a directory").count(), 1, "cause printed twice: {err}");
}

#[test]
fn an_empty_image_file() {
    let dir = scratch("empty_image");
    let f = dir.join("empty.png");
    std::fs::write(&f, b"").unwrap();
    expect_error(
        &["--image", s(&f), "--out", s(&dir)],
        &["empty.png", "not a supported image"],
    );
}

#[test]
fn an_image_larger_than_the_decoder_limit() {
    // A valid PNG header claiming 30 000 × 30 000 pixels (the limit is 20 000 a side):
    // refused from the header, before any pixel memory is allocated.
    let dir = scratch("huge_image");
    let f = dir.join("huge.png");
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, 30_000, 30_000);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Only the header: the writer is dropped before any image data.
        let w = enc.write_header().unwrap();
        drop(w);
    }
    std::fs::write(&f, &png).unwrap();
    expect_error(&["--image", s(&f), "--out", s(&dir)], &["huge.png", "exceeds limit"]);
}

#[test]
fn model_with_nan_weights() {
    use candle_core::{Device, Tensor};
    let dir = scratch("nan_weights");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/squeezenet1_1_imagenet.safetensors");
    let mut tensors = candle_core::safetensors::load(&src, &Device::Cpu).unwrap();
    let w = tensors["features.3.squeeze.weight"].clone();
    let mut v = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[7] = f32::NAN;
    tensors.insert(
        "features.3.squeeze.weight".into(),
        Tensor::from_vec(v, w.dims(), &Device::Cpu).unwrap(),
    );
    let f = dir.join("poisoned.safetensors");
    candle_core::safetensors::save(&tensors, &f).unwrap();
    expect_error(
        &["--model", s(&f), "--image", s(&sample_image()), "--out", s(&dir)],
        &["poisoned.safetensors", "features.3.squeeze.weight", "NaN"],
    );
}

#[test]
fn tolerance_outside_zero_one_or_on_a_method_without_a_path() {
    let out = scratch("tolerance");
    let img = sample_image();
    expect_error(
        &["--image", s(&img), "--out", s(&out), "--tolerance", "1.5"],
        &["--tolerance", "1.5"],
    );
    expect_error(
        &[
            "--image",
            s(&img),
            "--out",
            s(&out),
            "--method",
            "gradient",
            "--tolerance",
            "0.01",
        ],
        &["--tolerance", "gradient"],
    );
    expect_error(
        &[
            "--image",
            s(&img),
            "--out",
            s(&out),
            "--path",
            "guided",
            "--tolerance",
            "0.01",
        ],
        &["Guided IG", "step count"],
    );
}

/// `--device cuda` in a build without the `cuda` feature, and a device that does not
/// exist, are one line for every command that takes `--device`, the studio included (it
/// stops before opening a window).
#[test]
fn an_unavailable_or_unknown_device_is_one_line_everywhere() {
    let image = sample_image();
    let cases: Vec<(&str, &str)> = if cfg!(feature = "cuda") {
        vec![("tpu", "unknown device `tpu`")]
    } else {
        vec![("cuda", "no CUDA support"), ("tpu", "unknown device `tpu`")]
    };
    for (device, needle) in cases {
        let mut commands = vec![
            vec!["explain", "--image", s(&image), "--device", device],
            vec!["bench", "--device", device],
        ];
        if cfg!(feature = "studio") {
            commands.push(vec!["gui", "--no-autosave", "--device", device]);
        }
        for command in commands {
            let out = pathscope().args(&command).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} succeeded");
            assert_ne!(out.status.code(), Some(101), "{command:?} panicked: {stderr}");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{command:?}: expected one line, got:\n{stderr}");
            assert!(stderr.contains(needle), "{command:?}: {stderr}");
        }
    }
}
