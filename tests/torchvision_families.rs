//! torchvision's families from their state dicts, reduced (few channels and blocks, the
//! layers of the full model) and built with torchvision's own classes: both the
//! `.safetensors` and the `.pth` of each load, are recognised as their family, and give
//! PyTorch's logits (within 1e-4 relative L2) and input gradient of one logit (within 1e-3),
//! on the CPU tape and through candle's autograd, which agree within 1e-4, and on the
//! device-generic path (the GPU's) with the same tolerances. References:
//! `tests/data/torchvision/`, written by `bench/.venv/bin/python
//! tests/data/make_torchvision_refs.py`.

use std::path::{Path, PathBuf};

mod common;

use candle_core::{Device, Tensor};
use common::{autograd_gradient, rel_l2, target_gradient, to_vec};
use pathscope::export::npy::parse_npy_f32;
use pathscope::model::Classifier;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/torchvision")
        .join(name)
}

fn npy(name: &str) -> (Vec<f32>, Vec<usize>) {
    parse_npy_f32(&std::fs::read(data(name)).unwrap()).unwrap()
}

/// Loads `file` and checks it against the references of `reference`; the architecture's
/// name must contain `architecture`.
fn check_file(file: &str, reference: &str, architecture: &str) {
    let (input, dims) = npy(&format!("{reference}_input.npy"));
    let (expected_logits, _) = npy(&format!("{reference}_logits.npy"));
    let (expected_grad, _) = npy(&format!("{reference}_grad.npy"));
    let target: usize = std::fs::read_to_string(data(&format!("{reference}_target.txt")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let x = Tensor::from_vec(input, dims.as_slice(), &Device::Cpu).unwrap();
    let m = Classifier::load(&data(file), &Device::Cpu).unwrap_or_else(|e| panic!("{file}: {e}"));
    let name = m.architecture().to_string();
    assert!(
        name.contains(architecture),
        "{file}: recognised as {name}, expected {architecture}"
    );
    assert_eq!(m.num_classes(), expected_logits.len(), "{file}");
    let logits = to_vec(&m.forward(&x).unwrap());
    let logit_err = rel_l2(&logits, &expected_logits);
    let grad = target_gradient(&m, &x, target);
    let grad_err = rel_l2(&grad, &expected_grad);
    let candle = autograd_gradient(&m, &x, target);
    let candle_err = rel_l2(&candle, &expected_grad);
    let paths_err = rel_l2(&grad, &candle);
    println!(
        "{file:32} {name:40} logits {logit_err:.1e} grad {grad_err:.1e} candle {candle_err:.1e} tape↔candle {paths_err:.1e}"
    );
    assert!(logit_err < 1e-4, "{file}: logits rel L2 {logit_err:.2e}");
    assert!(grad_err < 1e-3, "{file}: gradient rel L2 {grad_err:.2e}");
    assert!(candle_err < 1e-3, "{file}: candle's gradient rel L2 {candle_err:.2e}");
    assert!(paths_err < 1e-4, "{file}: tape against candle {paths_err:.2e}");

    // The device-generic path (the GPU's: candle's own ops and autograd, composites for
    // max-pool and the clamps), against PyTorch with the same tolerances.
    let mut m = m;
    m.set_generic(true);
    let logits = to_vec(&m.forward(&x).unwrap());
    let logit_err = rel_l2(&logits, &expected_logits);
    let grad = target_gradient(&m, &x, target);
    let grad_err = rel_l2(&grad, &expected_grad);
    println!("{file:32} {name:40} generic path: logits {logit_err:.1e} grad {grad_err:.1e}");
    assert!(logit_err < 1e-4, "{file} (generic): logits rel L2 {logit_err:.2e}");
    assert!(grad_err < 1e-3, "{file} (generic): gradient rel L2 {grad_err:.2e}");
}

/// Both files of a reduced family.
fn check_family(reference: &str, architecture: &str) {
    for ext in ["safetensors", "pth"] {
        check_file(&format!("{reference}.{ext}"), reference, architecture);
    }
}

macro_rules! family_tests {
    ($($test:ident: $reference:literal recognised as $architecture:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check_family($reference, $architecture);
            }
        )*
    };
}

family_tests! {
    resnet_basic_blocks: "resnet18" recognised as "ResNet";
    resnext_grouped_bottlenecks: "resnext50_32x4d" recognised as "ResNet";
    resnet_two_class_head: "resnet18_2class" recognised as "ResNet";
    vgg: "vgg16" recognised as "VGG";
    vgg_with_batch_norm: "vgg16_bn" recognised as "VGG";
    alexnet: "alexnet" recognised as "AlexNet";
    densenet: "densenet121" recognised as "DenseNet";
    googlenet: "googlenet" recognised as "GoogLeNet";
    inception_v3: "inception_v3" recognised as "Inception-v3";
    mobilenet_v2: "mobilenet_v2" recognised as "MobileNet V2";
    mobilenet_v3_large: "mobilenet_v3_large" recognised as "MobileNet V3";
    mobilenet_v3_small: "mobilenet_v3_small" recognised as "MobileNet V3";
    efficientnet_b: "efficientnet_b0" recognised as "EfficientNet";
    efficientnet_v2: "efficientnet_v2_s" recognised as "EfficientNet";
    regnet_y: "regnet_y_400mf" recognised as "RegNet";
    regnet_x: "regnet_x_400mf" recognised as "RegNet";
    shufflenet_v2: "shufflenet_v2_x1_0" recognised as "ShuffleNet V2";
    convnext: "convnext_tiny" recognised as "ConvNeXt";
    vit: "vit_b_16" recognised as "Vision Transformer";
    swin: "swin_t" recognised as "Swin Transformer";
}

/// A `.pth` saved as `{"state_dict": …}` with DataParallel's `module.` prefix on every name
/// loads as the plain state dict does.
#[test]
fn wrapped_and_prefixed_checkpoint_loads() {
    check_file("resnet18_wrapped.pth", "resnet18", "ResNet");
}

/// `reference`'s safetensors with `edit` applied, loaded from a copy: the error, or "loaded".
fn load_edited(reference: &str, edit: impl FnOnce(&mut std::collections::HashMap<String, Tensor>)) -> String {
    let mut tensors = candle_core::safetensors::load(data(&format!("{reference}.safetensors")), &Device::Cpu).unwrap();
    edit(&mut tensors);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tv_edited_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{reference}_edited.safetensors"));
    candle_core::safetensors::save(&tensors, &file).unwrap();
    match Classifier::load(&file, &Device::Cpu) {
        Ok(_) => "loaded".into(),
        Err(e) => e.to_string(),
    }
}

/// A checkpoint with a family's names but a tensor missing or of the wrong shape: an error
/// that names the tensor, for families sized from shapes and for fixed layers alike.
#[test]
fn missing_or_misshaped_tensors_are_named() {
    let cases: [(&str, &str); 4] = [
        ("resnet18", "layer2.0.conv1.weight"),
        ("vgg16", "classifier.3.weight"),
        ("densenet121", "features.denseblock2.denselayer1.conv2.weight"),
        ("convnext_tiny", "features.1.0.block.3.weight"),
    ];
    for (reference, name) in cases {
        assert_eq!(load_edited(reference, |_| {}), "loaded", "{reference} unedited");
        let missing = load_edited(reference, |t| {
            t.remove(name).unwrap();
        });
        assert!(
            missing.contains(name) && missing.contains("missing"),
            "{reference}: {missing}"
        );
        let misshaped = load_edited(reference, |t| {
            let w = t.remove(name).unwrap();
            let n = w.elem_count();
            t.insert(name.to_string(), w.flatten_all().unwrap().narrow(0, 0, n - 1).unwrap());
        });
        assert!(misshaped.contains(name), "{reference}: {misshaped}");
        assert!(
            !misshaped.contains('\n') && !missing.contains('\n'),
            "one line: {misshaped}"
        );
    }
}
