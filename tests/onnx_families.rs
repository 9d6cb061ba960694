//! Real exports of twelve torchvision families, reduced (few channels and blocks, the
//! operators of the full model), by both `torch.onnx.export` exporters: the legacy
//! TorchScript one and the default dynamo one, which keeps the weights in a `.onnx.data`
//! file beside the graph. Also a non-square input and a one-channel model. Logits and the
//! input gradient of one logit are compared with PyTorch's (committed `.npy`, written by
//! `bench/.venv/bin/python tests/data/make_tiny_onnx.py families`), on whichever path the
//! graph runs (the CPU tape or candle's autograd), and the two paths with each other where
//! both apply.

use std::path::{Path, PathBuf};

mod common;

use candle_core::{Device, Tensor};
use common::{autograd_gradient, target_gradient};
use pathscope::export::npy::parse_npy_f32;
use pathscope::model::Classifier;

const FAMILIES: [&str; 14] = [
    "resnet50",
    "vgg16",
    "densenet121",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "googlenet",
    "swin_t",
    "nonsquare",
    "gray",
];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx").join(name)
}

fn npy(name: &str) -> (Vec<f32>, Vec<usize>) {
    parse_npy_f32(&std::fs::read(data(name)).unwrap()).unwrap()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n.max(1e-30)).sqrt()
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Logits within 1e-4 and input gradients within 1e-3 relative L2 of PyTorch's, for every
/// family and both exporters.
#[test]
fn every_family_matches_pytorch_from_both_exporters() {
    let mut report = Vec::new();
    for family in FAMILIES {
        let (input, dims) = npy(&format!("{family}_input.npy"));
        let (expected_logits, _) = npy(&format!("{family}_logits.npy"));
        let (expected_grad, _) = npy(&format!("{family}_grad.npy"));
        let target: usize = std::fs::read_to_string(data(&format!("{family}_target.txt")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let x = Tensor::from_vec(input, dims.as_slice(), &Device::Cpu).unwrap();
        for exporter in ["legacy", "dynamo"] {
            let file = data(&format!("{family}_{exporter}.onnx"));
            let mut m = Classifier::load(&file, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.num_classes(), expected_logits.len(), "{family} {exporter}");
            let logits = to_vec(&m.forward(&x).unwrap());
            let logit_err = rel_l2(&logits, &expected_logits);
            let grad = target_gradient(&m, &x, target);
            let grad_err = rel_l2(&grad, &expected_grad);
            let candle = autograd_gradient(&m, &x, target);
            let candle_err = rel_l2(&candle, &expected_grad);
            let paths_err = rel_l2(&grad, &candle);
            report.push(format!(
                "{family:20} {exporter:6} logits {logit_err:.1e} grad {grad_err:.1e} candle {candle_err:.1e} tape↔candle {paths_err:.1e}"
            ));
            assert!(logit_err < 1e-4, "{family} {exporter}: logits rel L2 {logit_err:.2e}");
            assert!(grad_err < 1e-3, "{family} {exporter}: gradient rel L2 {grad_err:.2e}");
            assert!(
                candle_err < 1e-3,
                "{family} {exporter}: candle's gradient rel L2 {candle_err:.2e}"
            );
            assert!(
                paths_err < 1e-4,
                "{family} {exporter}: tape against candle {paths_err:.2e}"
            );

            // The device-generic path (the GPU's), same tolerances.
            m.set_generic(true);
            let logit_err = rel_l2(&to_vec(&m.forward(&x).unwrap()), &expected_logits);
            let grad = target_gradient(&m, &x, target);
            let grad_err = rel_l2(&grad, &expected_grad);
            report.push(format!(
                "{family:20} {exporter:6} generic path: logits {logit_err:.1e} grad {grad_err:.1e}"
            ));
            assert!(
                logit_err < 1e-4,
                "{family} {exporter} (generic): logits rel L2 {logit_err:.2e}"
            );
            assert!(
                grad_err < 1e-3,
                "{family} {exporter} (generic): gradient rel L2 {grad_err:.2e}"
            );
        }
    }
    println!("{}", report.join("\n"));
}

/// A graph loads in a copy of its folder; `edit` breaks its external data.
fn load_copy(edit: impl Fn(&Path)) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("onnx_external_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["mobilenet_v2_dynamo.onnx", "mobilenet_v2_dynamo.onnx.data"] {
        std::fs::copy(data(name), dir.join(name)).unwrap();
    }
    edit(&dir);
    match Classifier::load(&dir.join("mobilenet_v2_dynamo.onnx"), &Device::Cpu) {
        Ok(_) => "loaded".into(),
        Err(e) => e.to_string(),
    }
}

/// The dynamo exporter's `.onnx.data`: found beside the graph; missing or cut short, an
/// error naming the path it expected or the bytes it could not find.
#[test]
fn external_data_is_read_beside_the_model_and_checked() {
    assert_eq!(load_copy(|_| {}), "loaded");
    let missing = load_copy(|dir| std::fs::remove_file(dir.join("mobilenet_v2_dynamo.onnx.data")).unwrap());
    assert!(
        missing.contains("mobilenet_v2_dynamo.onnx.data`, which cannot be read")
            && missing.contains("keep the .onnx.data file beside the model"),
        "{missing}"
    );
    let truncated = load_copy(|dir| {
        let f = dir.join("mobilenet_v2_dynamo.onnx.data");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        truncated.contains("past the end of the file") && truncated.contains("cut short"),
        "{truncated}"
    );
}

/// The same families exported at the oldest opset the issue names (13; 14 where attention
/// needs it) and the newest (21, dynamo): `tests/data/onnx/opsets/`, written by
/// `make_tiny_onnx.py opsets` with the weights of the default exports, so the same
/// references and tolerances apply.
#[test]
fn opsets_13_to_21_match_pytorch() {
    let dir = data("opsets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{} files in {}", files.len(), dir.display());
    let mut opsets = std::collections::BTreeSet::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (family, export) = stem.rsplit_once('_').unwrap();
        opsets.insert(export.trim_start_matches(char::is_alphabetic).to_string());
        let (input, dims) = npy(&format!("{family}_input.npy"));
        let (expected_logits, _) = npy(&format!("{family}_logits.npy"));
        let (expected_grad, _) = npy(&format!("{family}_grad.npy"));
        let target: usize = std::fs::read_to_string(data(&format!("{family}_target.txt")))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let x = Tensor::from_vec(input, dims.as_slice(), &Device::Cpu).unwrap();
        let m = Classifier::load(&file, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let logit_err = rel_l2(&to_vec(&m.forward(&x).unwrap()), &expected_logits);
        let grad = target_gradient(&m, &x, target);
        let grad_err = rel_l2(&grad, &expected_grad);
        assert!(logit_err < 1e-4, "{stem}: logits rel L2 {logit_err:.2e}");
        assert!(grad_err < 1e-3, "{stem}: gradient rel L2 {grad_err:.2e}");
    }
    assert!(opsets.contains("13") && opsets.contains("21"), "{opsets:?}");
}
