//! Preprocessing and labels that follow the model (issue 19): torchvision's crops byte for
//! byte (bicubic, exact sizes, non-square, grey), the presets against torchvision's weight
//! transforms, and the sources — graph input, sidecar, ONNX metadata, command line — on
//! the reduced exports of `tests/data/onnx`.
//!
//! `tests/data/preprocess/` comes from `tests/data/make_preprocess_refs.py` (torchvision
//! 0.29, Pillow's resampler on PIL images).

use std::path::{Path, PathBuf};

use candle_core::Device;
use pathscope::model::conventions::{preset, Overrides, PRESETS};
use pathscope::model::onnx::proto::{ModelProto, StringStringEntryProto};
use pathscope::model::preprocess::{decode_rgb, ChannelOrder, Interpolation, Normalization, Preprocessing, Resize};
use pathscope::model::Classifier;
use prost::Message;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn cat() -> image::RgbImage {
    let s = &pathscope::assets::SAMPLE_IMAGES[0];
    decode_rgb(Path::new(s.name), s.bytes).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pathscope-conventions-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of a reduced export (and its external data) in a folder of its own.
fn copy_model(family: &str, exporter: &str, dir: &Path) -> PathBuf {
    let name = format!("{family}_{exporter}.onnx");
    std::fs::copy(data(&format!("onnx/{name}")), dir.join(&name)).unwrap();
    let ext = data(&format!("onnx/{name}.data"));
    if ext.exists() {
        std::fs::copy(ext, dir.join(format!("{name}.data"))).unwrap();
    }
    dir.join(name)
}

fn imagenet_with(resize: Resize, crop: (u32, u32), interpolation: Interpolation, grey: bool) -> Preprocessing {
    Preprocessing {
        resize,
        interpolation,
        crop,
        normalization: Normalization {
            channels: if grey { ChannelOrder::Grey } else { ChannelOrder::Rgb },
            ..Normalization::IMAGENET
        },
    }
}

/// Pillow's bytes exactly: bicubic (with its negative lobes clipped), exact and non-square
/// sizes, upscaling, and `convert("L")`.
#[test]
fn crops_match_torchvision_byte_for_byte() {
    let photo = cat();
    let cases = [
        (
            "bicubic_80_crop_64x72.png",
            imagenet_with(Resize::Shorter(80), (64, 72), Interpolation::Bicubic, false),
        ),
        (
            "bilinear_exact_50x90_crop_48.png",
            imagenet_with(
                Resize::Exact { height: 50, width: 90 },
                (48, 48),
                Interpolation::Bilinear,
                false,
            ),
        ),
        (
            "bicubic_up_520_crop_24x40.png",
            imagenet_with(Resize::Shorter(520), (24, 40), Interpolation::Bicubic, false),
        ),
        (
            "grey_bilinear_40_crop_32.png",
            imagenet_with(Resize::Shorter(40), (32, 32), Interpolation::Bilinear, true),
        ),
    ];
    for (file, pre) in cases {
        let expected = image::open(data(&format!("preprocess/{file}"))).unwrap().to_rgb8();
        let ours = pre.apply(&photo);
        assert_eq!(ours.dimensions(), expected.dimensions(), "{file}");
        let differing = ours
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0, "{file}: {differing} bytes differ from torchvision's");
    }
    // A grey model reads one channel: the luminance, normalised with the first statistics.
    let grey = imagenet_with(Resize::Shorter(40), (32, 32), Interpolation::Bilinear, true);
    let x = grey.image_to_tensor(&photo, &Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[1, 1, 32, 32]);
}

/// Every preset is torchvision's DEFAULT weight transform for that model.
#[test]
fn presets_are_torchvision_weight_transforms() {
    let text = std::fs::read_to_string(data("preprocess/presets.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let reference = json["presets"].as_object().unwrap();
    assert_eq!(
        reference.len(),
        PRESETS.len(),
        "the table and the reference list differ"
    );
    for (name, t) in reference {
        let p = preset(name).unwrap_or_else(|| panic!("no preset {name}"));
        assert_eq!(
            p.resize,
            Resize::Shorter(t["resize"].as_u64().unwrap() as u32),
            "{name}"
        );
        let crop = t["crop"].as_u64().unwrap() as u32;
        assert_eq!(p.crop, (crop, crop), "{name}");
        assert_eq!(p.interpolation.name(), t["interpolation"].as_str().unwrap(), "{name}");
        for c in 0..3 {
            assert!(
                (p.normalization.mean[c] as f64 - t["mean"][c].as_f64().unwrap()).abs() < 1e-7,
                "{name}"
            );
            assert!(
                (p.normalization.std[c] as f64 - t["std"][c].as_f64().unwrap()).abs() < 1e-7,
                "{name}"
            );
        }
    }
}

/// The graph's input decides the crop and the channels: 32×48 stays non-square (the
/// shorter side resized to 37 = round(32·256/224)), the 1-channel model reads grey.
#[test]
fn the_graph_input_sets_size_and_channels() {
    let photo = cat();
    let m = Classifier::load(&data("onnx/nonsquare_dynamo.onnx"), &Device::Cpu).unwrap();
    assert_eq!(m.preprocessing().crop, (32, 48));
    assert_eq!(m.preprocessing().resize, Resize::Shorter(37));
    let x = m.preprocessing().image_to_tensor(&photo, &Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[1, 3, 32, 48]);
    assert_eq!(m.forward(&x).unwrap().dims(), &[1, 10]);

    let g = Classifier::load(&data("onnx/gray_legacy.onnx"), &Device::Cpu).unwrap();
    assert_eq!(g.preprocessing().normalization.channels, ChannelOrder::Grey);
    assert_eq!(g.preprocessing().crop, (28, 28));
    let x = g.preprocessing().image_to_tensor(&photo, &Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[1, 1, 28, 28]);
    let (logits, grad) = g.logits_and_input_gradient(&x, |l| vec![1.0; l.len()]).unwrap();
    assert_eq!((logits.len(), grad.dims().to_vec()), (2, vec![1, 1, 28, 28]));
    // Two outputs and nothing naming them: numbered, not ImageNet's.
    assert_eq!(g.labels().name(1), "class 1");
    // Three channels cannot feed it.
    let e = g
        .conventions_with(&Overrides {
            channels: Some(ChannelOrder::Rgb),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("reads 1"), "{e}");
}

/// A 10-class head named by a sidecar, then by a labels file of the wrong length (an error
/// naming both counts), then by the command line's file of the right length.
#[test]
fn labels_follow_the_sidecar_and_must_match_the_outputs() {
    let dir = scratch("labels");
    let model = copy_model("resnet50", "dynamo", &dir);
    let names: Vec<String> = (0..10).map(|i| format!("tissue type {i}")).collect();
    std::fs::write(
        dir.join("resnet50_dynamo.json"),
        serde_json::json!({"labels": names, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5], "std": 0.25})
            .to_string(),
    )
    .unwrap();
    let m = Classifier::load(&model, &Device::Cpu).unwrap();
    assert_eq!(m.labels().name(7), "tissue type 7");
    let pre = m.preprocessing();
    assert_eq!(pre.interpolation, Interpolation::Bicubic);
    assert_eq!((pre.normalization.mean, pre.normalization.std), ([0.5; 3], [0.25; 3]));
    assert!(
        m.conventions()
            .preprocessing_source
            .starts_with("sidecar resnet50_dynamo.json"),
        "{}",
        m.conventions().preprocessing_source
    );

    let two = dir.join("two.txt");
    std::fs::write(&two, "benign\nmalignant\n").unwrap();
    let e = m
        .conventions_with(&Overrides {
            labels: Some(two),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 labels") && e.contains("10 outputs"), "{e}");
    assert!(!e.contains('\n'), "{e}");

    // The same count mismatch in the sidecar refuses the model at load.
    std::fs::write(dir.join("resnet50_dynamo.json"), r#"{"labels": ["a", "b"]}"#).unwrap();
    let e = Classifier::load(&model, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("2 labels") && e.contains("10 outputs"), "{e}");
    // A sidecar that is not JSON names itself.
    std::fs::write(dir.join("resnet50_dynamo.json"), "{resize: 256").unwrap();
    let e = Classifier::load(&model, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("resnet50_dynamo.json") && !e.contains('\n'), "{e}");
}

/// `metadata_props` written into the file: labels and preprocessing, each value JSON or
/// text; the sidecar wins field by field.
#[test]
fn onnx_metadata_props_are_a_source() {
    let dir = scratch("metadata");
    let model = copy_model("vgg16", "legacy", &dir);
    let mut proto = ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
    let entry = |key: &str, value: &str| StringStringEntryProto {
        key: key.into(),
        value: value.into(),
    };
    proto.metadata_props.push(entry(
        "labels",
        &(0..10).map(|i| format!("c{i}")).collect::<Vec<_>>().join("\n"),
    ));
    proto.metadata_props.push(entry("resize", "[40, 50]"));
    proto.metadata_props.push(entry("channels", "bgr"));
    std::fs::write(&model, proto.encode_to_vec()).unwrap();
    let m = Classifier::load(&model, &Device::Cpu).unwrap();
    assert_eq!(m.labels().name(9), "c9");
    assert_eq!(m.preprocessing().resize, Resize::Exact { height: 40, width: 50 });
    assert_eq!(m.preprocessing().normalization.channels, ChannelOrder::Bgr);
    assert!(m.conventions().labels_source.contains("ONNX metadata"));

    std::fs::write(dir.join("vgg16_legacy.json"), r#"{"channels": "rgb"}"#).unwrap();
    let m = Classifier::load(&model, &Device::Cpu).unwrap();
    assert_eq!(m.preprocessing().normalization.channels, ChannelOrder::Rgb);
    assert_eq!(m.preprocessing().resize, Resize::Exact { height: 40, width: 50 });
    // BGR swaps the planes the model reads.
    let photo = cat();
    let bgr = Normalization {
        channels: ChannelOrder::Bgr,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let rgb = Normalization {
        channels: ChannelOrder::Rgb,
        ..bgr
    };
    let crop = m.preprocessing().apply(&photo);
    let a = bgr
        .image_to_tensor(&crop, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = rgb
        .image_to_tensor(&crop, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let plane = a.len() / 3;
    assert_eq!(a[..plane], b[2 * plane..]);
}
